# PyTorch reference for examples/peak.dl (Gaussian peak plus baseline,
# Adam).
#   /usr/bin/python3 examples/ref/peak.py [--f64] > examples/ref/peak[.f64].out
import math, sys, torch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float


def param(v):
    return torch.tensor(v, dtype=dtype, requires_grad=True)


x = torch.linspace(0, 10, 400, dtype=dtype)
y = 2.5 * torch.exp(-(x - 4.2) ** 2 / (2 * 0.8 ** 2)) + 0.3 + 0.03 * torch.sin(13 * x)

A = param(1.0)
m = param(5.0)
s = param(1.5)
c = param(0.0)

opt = torch.optim.Adam([A, m, s, c], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
for step in range(1000):
    opt.zero_grad()
    fit = A * torch.exp(-(x - m) ** 2 / (2 * s ** 2)) + c
    loss = ((fit - y) ** 2).sum()
    if step % 100 == 99:
        print(step, loss.item())
    loss.backward()
    opt.step()

with torch.no_grad():
    print(f"A = {A.item()}  m = {m.item()}  s = {s.item()}  c = {c.item()}")
    two = torch.tensor(2.0, dtype=dtype)
    print(f"FWHM = {(2 * torch.sqrt(2 * torch.log(two)) * s).item()}")
