# Reference for tests/e2e/constructors.dl (f32). linspace follows the rule
# of docs/language.md §4.6 (fmt.linspace); for the short vectors it equals
# torch.linspace, checked below. (torch 1.13's vectorised CPU kernel gives
# 3.1384494 instead of 3.1384497 for the second-last element of
# linspace(-pi, pi, 2000) in float32.)
#   /usr/bin/python3 tests/e2e/ref/constructors.py
import os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fmt import line, linspace

f = np.float32
x = linspace(-1, 2, 7, f)
assert (x == torch.linspace(-1, 2, 7).numpy()).all()
assert (linspace(0, 1, 11, f) == torch.linspace(0, 1, 11).numpy()).all()
print(line(x, f64=False))
print(line(linspace(-np.pi, np.pi, 2000, f), f64=False))
print(line(linspace(0, 1, 11, f), f64=False))
print(line(linspace(3, 7, 1, f), np.zeros(3), np.ones(2), np.full(4, 2.5), f64=False))
# sums of values computed once accumulate in double and round once (§7)
print(line(f(x.astype(float).sum()), f(x.astype(float).mean()), len(x), 1, f64=False))
sq = (x * x).astype(float)
l2000 = linspace(0, 1, 2000, f).astype(float)
print(line(f(sq.sum()), f(l2000.sum()), f(l2000.mean()), f64=False))
print(line(f(np.float32(3)), f(np.float32(3) * np.float32(1)), 1, f64=False))
