# PyTorch reference for examples/digits.dl (a 64-32-10 tanh perceptron on
# the UCI handwritten digits, minibatch Adam).
#   /usr/bin/python3 examples/data/make_iris_digits.py   # data/digits.csv, once
#   /usr/bin/python3 examples/ref/digits.py [--f64] > examples/ref/digits[.f64].out
# randn(r, c, seed = S) is the first r*c numbers of dl's randn (tests/e2e/
# ref/rng.py) in row-major order, computed in double and rounded once to the
# working precision; the scaling is then done in that precision. The data
# (X, the labels, their one-hot rows) are computed once in the working
# precision; minibatches as in iris.py: each epoch's 64-row batches (23 of
# 64, one of 28) are consecutive slices of the identity order shuffled by
# Fisher-Yates with one xoshiro256** generator seeded by `shuffle`, the log
# line the mean of the epoch's batch losses.
import csv, os, sys, torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e", "ref"))
from rng import randn

import minibatch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float
CSV = os.path.join(HERE, "..", "data", "digits.csv")


def load_csv(path):  # every column, as a matrix
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return torch.tensor([[float(v) for v in r] for r in rows[1:]], dtype=dtype)


def param(t):
    return t.detach().clone().requires_grad_(True)


def randn_mat(r, c, seed):
    return torch.tensor(randn(r * c, seed=seed), dtype=dtype).reshape(r, c)



D = load_csv(CSV)                                         # 1797 x 65
X = D[:, 0:64] / 16
labels = D[:, 64]
Xtrain, ytrain = X[0:1500, :], labels[0:1500]
Xtest, ytest = X[1500:1797, :], labels[1500:1797]
onehot = torch.nn.functional.one_hot(ytrain.long(), 10).to(dtype)

W1 = param(randn_mat(64, 32, seed=1) * 0.125)
b1 = param(torch.zeros(32, dtype=dtype))
W2 = param(randn_mat(32, 10, seed=2) * 0.18)
b2 = param(torch.zeros(10, dtype=dtype))


def logits(X):
    return torch.tanh(X @ W1 + b1) @ W2 + b2


def loss_fn(X, onehot):
    return -(onehot * torch.log_softmax(logits(X), dim=1)).sum(dim=1).mean()


def accuracy(X, y):
    return (torch.argmax(logits(X), dim=1).to(dtype) == y).to(dtype).mean()


opt = torch.optim.Adam([W1, b1, W2, b2], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
minibatch.train(opt, loss_fn, [Xtrain, onehot], epochs=20, batch=64, shuffle=7, log_every=5, dtype=dtype)

with torch.no_grad():
    print(f"train accuracy {accuracy(Xtrain, ytrain).item()}")
    print(f"test accuracy {accuracy(Xtest, ytest).item()}")
