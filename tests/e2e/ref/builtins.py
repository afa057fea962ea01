# Reference for tests/e2e/builtins_f64.dl: every elementwise built-in at a
# few points, in double precision, from math/numpy/torch.
#   /usr/bin/python3 tests/e2e/ref/builtins.py
import math, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fmt import line

x = 0.7
sp = lambda v: torch.nn.functional.softplus(torch.tensor(v, dtype=torch.double)).item()
sig = lambda v: torch.sigmoid(torch.tensor(v, dtype=torch.double)).item()
print(line(math.sin(x), math.cos(x), math.tan(x), math.exp(x), math.log(x), math.sqrt(x)))
print(line(math.tanh(x), sig(x), sig(-x), abs(-x), math.log1p(x), math.expm1(x)))
print(line(math.atan(x), max(x, 0), max(-x, 0), sp(x), sp(-30.0), sp(25.0)))
print(line(min(x, 0.3), max(x, 0.3), x ** 2.5, x ** -1.5, float(np.sign(-x)), 0.0))
print(line(math.log1p(1e-10), math.expm1(1e-10), math.exp(-20), math.atan(1) * 4, -math.sin(x)))
v = np.linspace(-2, 2, 5)
print(line(np.tanh(v)))
print(line(np.maximum(v, 0.5 * v * v)))
# derivatives at the kinks, as torch computes them: min/max split a tie
# half and half, abs and relu have derivative 0 at 0
t = torch.tensor(x, dtype=torch.double, requires_grad=True)
ds = []
for f in (lambda t: torch.minimum(t, torch.tensor(0.7, dtype=torch.double)),
          lambda t: torch.maximum(torch.tensor(0.7, dtype=torch.double), t),
          lambda t: torch.abs(t - 0.7), lambda t: torch.relu(t - 0.7)):
    (g,) = torch.autograd.grad(f(t), t)
    ds.append(g.item())
print(line(*ds))
