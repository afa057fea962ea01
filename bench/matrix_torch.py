# bench/matrix_torch.py — PyTorch eager's step time (one thread) for the
# matrix examples and bench/mlp256.dl.in, the same models as the .dl files
# (full batch for nn_tutorial, mlp_sin, mlp256; minibatches for iris and
# digits, timed per batch step). Prints `NAME MICROSECONDS_PER_STEP`.
import math, os, sys, time
import torch

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "examples", "data")


def timed(name, params, loss_fn, opt, steps, batches=None):
    def step(k):
        opt.zero_grad()
        loss = loss_fn(batches[k % len(batches)]) if batches else loss_fn(None)
        loss.backward()
        opt.step()
    for k in range(5):
        step(k)
    t0 = time.perf_counter()
    for k in range(steps):
        step(k)
    print(name, round((time.perf_counter() - t0) / steps * 1e6, 1))


def p(t):
    return t.clone().requires_grad_(True)


x = torch.linspace(-math.pi, math.pi, 2000)
X = torch.stack([x, x * x, x * x * x], 1)
y = torch.sin(x)
W, b = p(torch.randn(3) * 0.5), p(torch.tensor(0.0))
timed("nn_tutorial", [W, b], lambda _: ((X @ W + b - y) ** 2).sum(),
      torch.optim.RMSprop([W, b], lr=1e-3), 2000)

x = torch.linspace(-math.pi, math.pi, 200)
X, y = x[:, None], torch.sin(x)
W1, b1 = p(torch.randn(1, 32) * 0.5), p(torch.randn(32) * 0.5)
W2, b2 = p(torch.randn(32) * 0.2), p(torch.tensor(0.0))
timed("mlp_sin", [W1, b1, W2, b2], lambda _: ((torch.tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2).mean(),
      torch.optim.Adam([W1, b1, W2, b2], lr=0.01), 1000)


def csv(name):
    rows = [l.strip().split(",") for l in open(os.path.join(DATA, name))][1:]
    return torch.tensor([[float(v) for v in r] for r in rows])


D = csv("iris.csv")
X, lab = D[:, :4], D[:, 4]
Xs = (X - X.mean(0)) / ((X - X.mean(0)) ** 2).mean(0).sqrt()
Y = torch.nn.functional.one_hot(lab.long(), 3).float()
W, b = p(torch.zeros(4, 3)), p(torch.zeros(3))
perm = torch.randperm(150)
batches = [perm[i:i + 16] for i in range(0, 150, 16)]
timed("iris", [W, b], lambda r: -(Y[r] * torch.log_softmax(Xs[r] @ W + b, 1)).sum(1).mean(),
      torch.optim.SGD([W, b], lr=0.1), 500, batches)

D = csv("digits.csv")
X, lab = D[:1500, :64] / 16, D[:1500, 64]
Y = torch.nn.functional.one_hot(lab.long(), 10).float()
W1, b1 = p(torch.randn(64, 32) * 0.125), p(torch.zeros(32))
W2, b2 = p(torch.randn(32, 10) * 0.18), p(torch.zeros(10))
perm = torch.randperm(1500)
batches = [perm[i:i + 64] for i in range(0, 1500, 64)]
timed("digits", [W1, b1, W2, b2],
      lambda r: -(Y[r] * torch.log_softmax(torch.tanh(X[r] @ W1 + b1) @ W2 + b2, 1)).sum(1).mean(),
      torch.optim.Adam([W1, b1, W2, b2], lr=0.01), 500, batches)

x = torch.linspace(-math.pi, math.pi, 1024)
X, y = x[:, None], torch.sin(x)
ps = [p(torch.randn(1, 256)), p(torch.randn(256) * 0.1), p(torch.randn(256, 256) * 0.0625),
      p(torch.zeros(256)), p(torch.randn(256) * 0.0625), p(torch.tensor(0.0))]
W1, b1, W2, b2, W3, b3 = ps
timed("mlp256", ps, lambda _: ((torch.tanh(torch.tanh(X @ W1 + b1) @ W2 + b2) @ W3 + b3 - y) ** 2).mean(),
      torch.optim.Adam(ps, lr=1e-3), 50)
