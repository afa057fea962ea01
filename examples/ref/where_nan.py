# PyTorch reference for examples/where_nan.dl (piecewise sqrt/linear model
# through `where`, Adam).
#   /usr/bin/python3 examples/ref/where_nan.py [--f64] > examples/ref/where_nan[.f64].out
#
# dl's `where` sends the gradient only into the branch taken and never
# produces NaN from the other one. torch.where does not: the gradient of the
# untaken branch is 0, and 0 * d sqrt(x)/d p = 0 * sqrt(x) is NaN for x < 0,
# so a naive
#     torch.where(x > 0, p * torch.sqrt(x), q * x)
# gives p.grad = nan from the first backward on, and after one Adam step p is
# NaN and the loss is NaN. Checked: `where_nan.py --naive` prints the loss of
# step 0 as a number, then p.grad = nan, and the logged losses are all nan.
# So this reference uses the "double where" trick: the sqrt only ever sees
# positive arguments (1 where the branch is not taken), which gives the same
# forward values and the gradient that dl defines.
import math, sys, torch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float
NAIVE = "--naive" in sys.argv


def param(v):
    return torch.tensor(v, dtype=dtype, requires_grad=True)


x = torch.linspace(-2, 4, 300, dtype=dtype)
pos = x > 0
# data: no param inside, a plain torch.where is fine (no gradient needed)
y = 0.2 + torch.where(pos, 1.3 * torch.sqrt(x), 0.4 * x) + 0.05 * torch.sin(5 * x)

b = param(0.0)
p = param(1.0)
q = param(1.0)


def model():
    if NAIVE:
        return b + torch.where(pos, p * torch.sqrt(x), q * x)
    safe_x = torch.where(pos, x, torch.ones_like(x))
    return b + torch.where(pos, p * torch.sqrt(safe_x), q * x)


opt = torch.optim.Adam([b, p, q], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
for step in range(1000):
    opt.zero_grad()
    loss = ((model() - y) ** 2).sum()
    if NAIVE and step == 0:
        print("naive step 0: loss", loss.item())
    if step % 100 == 99:
        print(step, loss.item())
    loss.backward()
    if NAIVE and step == 0:
        print("naive step 0: b.grad", b.grad.item(), "p.grad", p.grad.item(), "q.grad", q.grad.item())
    opt.step()

print(f"b = {b.item()}  p = {p.item()}  q = {q.item()}")
