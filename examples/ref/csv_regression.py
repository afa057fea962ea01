# PyTorch reference for examples/csv_regression.dl (linear regression on
# data/houses.csv, RMSprop).
#   /usr/bin/python3 examples/ref/csv_regression.py [--f64] > examples/ref/csv_regression[.f64].out
# The CSV is read as dlc's load_csv does: header row, then one number per
# field, converted to the working precision.
import csv, os, sys, torch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float
HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, "..", "data", "houses.csv")


def load_csv(path, column):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    j = header.index(column) if isinstance(column, str) else column
    return torch.tensor([float(r[j]) for r in rows], dtype=dtype)


def param(v):
    return torch.tensor(v, dtype=dtype, requires_grad=True)


area = load_csv(CSV, "area")
rooms = load_csv(CSV, 1)
price = load_csv(CSV, "price")

w_area = param(0.0)
w_rooms = param(0.0)
b = param(0.0)


def loss_fn():
    predicted = w_area * area + w_rooms * rooms + b
    return ((predicted - price) ** 2).mean()


opt = torch.optim.RMSprop([w_area, w_rooms, b], lr=0.01, alpha=0.999, eps=1e-8)
for step in range(2000):
    opt.zero_grad()
    loss = loss_fn()
    if step % 200 == 199:
        print(step, loss.item())
    loss.backward()
    opt.step()

with torch.no_grad():
    print(f"price = {w_area.item()} * area + {w_rooms.item()} * rooms + {b.item()}")
    print(f"rms error = {torch.sqrt(loss_fn()).item()}")
