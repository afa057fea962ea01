# PyTorch reference for examples/nn_tutorial.dl (PyTorch's "Learning
# PyTorch with Examples", nn version: sin(x) by a linear layer on
# [x, x^2, x^3], RMSprop on the summed squared error).
#   /usr/bin/python3 examples/ref/nn_tutorial.py [--f64] > examples/ref/nn_tutorial[.f64].out
# randn(3, seed = 1) is dl's generator (tests/e2e/ref/rng.py), computed in
# double and rounded once to the working precision; `* 0.5` is then done in
# that precision. x^2 and x^3 are repeated multiplications.
import math, os, sys, torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e", "ref"))
from rng import randn

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float


def param(t):
    return t.detach().clone().requires_grad_(True)


x = torch.linspace(-math.pi, math.pi, 2000, dtype=dtype)
y = torch.sin(x)
X = torch.stack([x, x * x, x * x * x], dim=1)             # 2000 x 3

W = param(torch.tensor(randn(3, seed=1), dtype=dtype) * 0.5)
b = param(torch.tensor(0.0, dtype=dtype))


def loss_fn():
    d = X @ W + b - y
    return (d * d).sum()


opt = torch.optim.RMSprop([W, b], lr=1e-3, alpha=0.99, eps=1e-8)
for step in range(2000):
    opt.zero_grad()
    loss = loss_fn()
    if step % 100 == 99:
        print(step, loss.item())
    loss.backward()
    opt.step()

with torch.no_grad():
    print(f"Result: y = {b.item()} + {W[0].item()} x + {W[1].item()} x^2 + {W[2].item()} x^3")
