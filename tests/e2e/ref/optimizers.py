# PyTorch references for the training tests of tests/e2e (float64 unless
# noted). Prints, for each test, its name and then the lines it expects.
#   /usr/bin/python3 tests/e2e/ref/optimizers.py [NAME]
# Each train(...) of a .dl file is a fresh torch optimizer over all params
# (dl's optimizer state lives for one train call); the loss logged for step
# t is computed before step t's update.
import os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fmt import line, linspace

torch.set_num_threads(1)


class Model:
    def __init__(self, dtype=torch.double):
        self.dtype = dtype
        self.f64 = dtype == torch.double
        self.out = []

    def data(self, v):
        return torch.tensor(np.asarray(v, dtype=np.float64), dtype=self.dtype)

    def linspace(self, a, b, n):
        return self.data(linspace(a, b, n, np.float64 if self.f64 else np.float32))

    def param(self, v):
        return torch.tensor(v, dtype=self.dtype, requires_grad=True)

    def train(self, params, loss_fn, steps, make_opt, log_every=None):
        opt = make_opt(params)
        for t in range(steps):
            opt.zero_grad()
            loss = loss_fn()
            if log_every and (t + 1) % log_every == 0:
                self.print(t, loss.item())
            loss.backward()
            opt.step()

    def print(self, *items):
        items = [it.detach().tolist() if torch.is_tensor(it) else it for it in items]
        self.out.append(line(*items, f64=self.f64))


def fit_problem(m):
    """x = linspace(-1, 1, 5), y = sin(2x), loss = mean((a tanh(b x) - y)^2)."""
    x = m.linspace(-1, 1, 5)
    y = torch.sin(2 * x)
    a, b = m.param(0.5), m.param(0.5)
    return (a, b), lambda: torch.mean((a * torch.tanh(b * x) - y) ** 2)


def single(make_opt, steps=40, log_every=10, dtype=torch.double):
    def run():
        m = Model(dtype)
        (a, b), loss = fit_problem(m)
        m.train([a, b], loss, steps, make_opt, log_every)
        m.print(a, b, loss())
        return m.out
    return run


tests = {
    "optim_sgd": single(lambda p: torch.optim.SGD(p, lr=0.5)),
    "optim_sgd_f32": single(lambda p: torch.optim.SGD(p, lr=0.5), dtype=torch.float),
    "optim_momentum": single(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "optim_adam": single(lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6)),
    "optim_adam_default": single(lambda p: torch.optim.Adam(p), steps=20, log_every=5),
    "optim_adam_f32": single(lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6),
                             dtype=torch.float),
    "optim_rmsprop_f32": single(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9), dtype=torch.float),
    "optim_rmsprop": single(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9)),
    "optim_rmsprop_default": single(lambda p: torch.optim.RMSprop(p), steps=20, log_every=5),
}
# -O0 and -O3 must give the default's results
tests["opt_level_O0"] = tests["opt_level_O3"] = tests["optim_momentum"]


def vector_param():
    m = Model()
    x = m.linspace(-1, 1, 5)
    y = torch.sin(2 * x) + 0.5
    w = m.param([0.0] * 5)
    m.train([w], lambda: torch.mean((w * x - y) ** 2) + 0.1 * torch.sum(w) ** 2, 30,
            lambda p: torch.optim.Adam(p, lr=0.1), 10)
    m.print(w)
    m.print(torch.sum(w))
    return m.out


def two_trains():
    m = Model()
    (a, b), loss = fit_problem(m)
    adam = lambda p: torch.optim.Adam(p, lr=0.1)
    momentum = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)
    m.train([a, b], loss, 6, adam, 3)
    m.print("a =", a, "b =", b)
    m.train([a, b], loss, 6, adam, 3)
    m.print("a =", a, "b =", b)
    m.train([a, b], loss, 4, momentum, 2)
    m.print("a =", a, "b =", b)
    m.train([a, b], loss, 4, momentum, 2)
    m.print("a =", a, "b =", b)
    return m.out


def equations():
    """Definitions are equations: recomputed with the current params;
    hoisted ones (no param) are computed once; `loss` is a name."""
    m = Model()
    x = m.linspace(0, 2, 5)
    y = 3 * x + 1
    level = torch.mean(y) - 0.5
    a, c = m.param(1.0), m.param(0.0)
    pred = lambda: a * (x - torch.mean(x)) + c + level
    loss = lambda: torch.mean((pred() - y) ** 2)
    m.print("before:", loss(), pred(), 2 * a)
    m.train([a, c], loss, 25, lambda p: torch.optim.SGD(p, lr=0.2), 5)
    m.print("after:", loss(), pred(), 2 * a)
    m.print("a =", a, "c =", c, "loss + 1 =", loss() + 1)
    return m.out


def builtins_train():
    """Every differentiable built-in inside a trained loss."""
    m = Model()
    x = m.linspace(0.1, 0.9, 5)
    p, q = m.param(0.7), m.param(1.3)
    T = torch

    def loss():
        u = p * x
        terms = (T.sin(u) + T.cos(u) + T.tan(0.5 * u) + T.exp(0.3 * u) + T.log(u + 2)
                 + T.sqrt(u + 2) + T.tanh(u) + T.sigmoid(u) + T.abs(u - 0.35) + T.log1p(u)
                 + T.expm1(0.2 * u) + T.atan(u) + T.relu(u - 0.3)
                 + T.nn.functional.softplus(u) + T.minimum(u, 0.4 * q) + T.maximum(u, 0.3 * q)
                 + T.pow(u + 2, q) + (u + 1) ** 1.5 + T.where(u > 0.3, u * u, 3 * u)
                 + T.sign(u - 0.3) * u + (u > 0.4) * u + u / (q + x))
        return T.mean(terms * x) + T.sum(terms) / 7
    m.train([p, q], loss, 6, lambda ps: T.optim.SGD(ps, lr=0.01), 2)
    m.print(p, q)
    return m.out


def fn_derivs():
    """fns inlined into the loss: a hand-written deriv (using `value`) is what
    backward uses, even a wrong one; an argument without deriv is
    differentiated from the body; a fn calling another fn; a param used
    inside a fn body. Torch: autograd.Functions with the same backward."""
    T = torch

    class Softclip(T.autograd.Function):
        @staticmethod
        def forward(ctx, x, c):
            value = c * T.tanh(x / c)
            ctx.save_for_backward(x, c, value)
            return value

        @staticmethod
        def backward(ctx, g):
            x, c, value = ctx.saved_tensors
            dx = 1 - (value / c) ** 2                              # deriv x
            dc = T.tanh(x / c) - x / c * (1 - T.tanh(x / c) ** 2)  # from the body
            return g * dx, (g * dc).sum()

    class Sq(T.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return u * u

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g * 4 * u                                       # deliberately 2x

    m = Model()
    x = m.linspace(-2, 2, 7)
    y = 1.5 * T.tanh(0.8 * x / 1.5)
    w, c, k = m.param(1.0), m.param(1.0), m.param(0.1)
    twice = lambda u: 2 * (k * u)                    # fn scaled(u) = k * u; twice = 2 * scaled
    loss = lambda: T.mean(Sq.apply(Softclip.apply(w * x, c) - y)) + twice(k) ** 2
    m.train([w, c, k], loss, 20, lambda p: T.optim.SGD(p, lr=0.2), 5)
    m.print(w, c, k)
    return m.out


tests.update(fn_derivs=fn_derivs, vector_param=vector_param, two_trains=two_trains, equations=equations,
             builtins_train=builtins_train)

if __name__ == "__main__":
    for name, run in tests.items():
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        print("##", name)
        for l in run():
            print(l)
