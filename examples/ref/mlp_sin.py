# PyTorch reference for examples/mlp_sin.dl (a two-layer perceptron,
# 32 tanh units, fitting sin(x); Adam).
#   /usr/bin/python3 examples/ref/mlp_sin.py [--f64] > examples/ref/mlp_sin[.f64].out
# randn(1, 32, seed = 1) is the first 32 numbers of dl's randn(32, seed = 1)
# (tests/e2e/ref/rng.py) in row-major order, computed in double and rounded
# once to the working precision; `* 0.5` is then done in that precision.
import math, os, sys, torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e", "ref"))
from rng import randn

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float


def param(t):
    return t.detach().clone().requires_grad_(True)


def randn_mat(r, c, seed):
    return torch.tensor(randn(r * c, seed=seed), dtype=dtype).reshape(r, c)


x = torch.linspace(-math.pi, math.pi, 200, dtype=dtype)
y = torch.sin(x)
X = x.reshape(200, 1)                                     # stack(x): 200 x 1

W1 = param(randn_mat(1, 32, seed=1) * 0.5)
b1 = param(torch.tensor(randn(32, seed=3), dtype=dtype) * 0.5)
W2 = param(torch.tensor(randn(32, seed=2), dtype=dtype) * 0.2)
b2 = param(torch.tensor(0.0, dtype=dtype))


def predict():
    h = torch.tanh(X @ W1 + b1)                           # 200 x 32
    return h @ W2 + b2                                    # 200


def loss_fn():
    d = predict() - y
    return (d * d).mean()


opt = torch.optim.Adam([W1, b1, W2, b2], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
for step in range(1000):
    opt.zero_grad()
    loss = loss_fn()
    if step % 100 == 99:
        print(step, loss.item())
    loss.backward()
    opt.step()

with torch.no_grad():
    print(f"final loss {loss_fn().item()}")
    y_pred = predict()
    print(f"y_pred at 0 and pi/2: {y_pred[100].item()} {y_pred[150].item()}")
