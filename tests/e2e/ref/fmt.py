"""Formats numbers the way dlc prints them (docs/language.md §7), for the
reference scripts: the shortest text that reads back to the same value
(Python's repr for a double, NumPy's str for a float32 use the same digits
and the same switch to scientific notation below 1e-4 and from 1e16), and
whole numbers without a fraction."""
import numpy as np


def num(v, f64=True):
    s = repr(float(v)) if f64 else str(np.float32(v))
    if s.endswith(".0"):
        s = s[:-2]
    return s


def vec(vs, f64=True):
    vs = [num(v, f64) for v in vs]
    if len(vs) > 7:
        vs = vs[:3] + ["..."] + vs[-3:]
    return "[" + ", ".join(vs) + "]"


def line(*items, f64=True):
    out = []
    for it in items:
        if isinstance(it, str):
            out.append(it)
        elif hasattr(it, "__len__"):
            out.append(vec(it, f64))
        else:
            out.append(num(it, f64))
    return " ".join(out)


def linspace(start, stop, n, dtype=np.float64):
    """linspace as docs/language.md §4.6 specifies (torch.linspace's scalar
    rule): h = (stop - start) / (n - 1) in the working precision, element i
    is start + i h below n // 2 and stop - (n - 1 - i) h from there."""
    start, stop = dtype(start), dtype(stop)
    if n == 1:
        return np.array([start], dtype=dtype)
    h = dtype((stop - start) / dtype(n - 1))
    return np.array([dtype(start + dtype(i) * h) if i < n // 2 else dtype(stop - dtype(n - 1 - i) * h)
                     for i in range(n)], dtype=dtype)
