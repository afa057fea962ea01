# PyTorch reference for examples/iris.dl (softmax regression on Fisher's
# iris data, minibatch SGD).
#   /usr/bin/python3 examples/data/make_iris_digits.py   # data/iris.csv, once
#   /usr/bin/python3 examples/ref/iris.py [--f64] > examples/ref/iris[.f64].out
# The data (X, labels, mu, sd, Xs, the one-hot labels) are computed once on
# all 150 rows in the working precision; each epoch's batches are
# consecutive 16-row slices (the last one 6 rows) of an order that starts
# from the identity and is shuffled by Fisher-Yates with one xoshiro256**
# generator (tests/e2e/ref/rng.py) seeded by `shuffle` when the train
# starts; the loss of a batch is the .dl's loss on that batch's rows. The log
# line of an epoch is the mean of its batch losses (each .item(), summed in
# double), rounded to the working precision.
import csv, os, sys, torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e", "ref"))
import minibatch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float
CSV = os.path.join(HERE, "..", "data", "iris.csv")


def load_csv(path, columns):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    js = [header.index(c) for c in columns]
    return torch.tensor([[float(r[j]) for j in js] for r in rows], dtype=dtype)


def param(t):
    return t.detach().clone().requires_grad_(True)



X = load_csv(CSV, ["sepal_length", "sepal_width", "petal_length", "petal_width"])
labels = load_csv(CSV, ["species"])[:, 0]

mu = X.mean(dim=0)
d = X - mu
sd = torch.sqrt((d * d).mean(dim=0))
Xs = (X - mu) / sd
onehot = torch.nn.functional.one_hot(labels.long(), 3).to(dtype)

W = param(torch.zeros(4, 3, dtype=dtype))
b = param(torch.zeros(3, dtype=dtype))


def logits_of(Xs):
    return Xs @ W + b


def loss_fn(Xs, onehot):
    return -(onehot * torch.log_softmax(logits_of(Xs), dim=1)).sum(dim=1).mean()


opt = torch.optim.SGD([W, b], lr=0.1)
minibatch.train(opt, loss_fn, [Xs, onehot], epochs=50, batch=16, shuffle=1, log_every=10, dtype=dtype)

with torch.no_grad():
    pred = torch.argmax(logits_of(Xs), dim=1).to(dtype)
    print(f"accuracy {(pred == labels).to(dtype).mean().item()}")
