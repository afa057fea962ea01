# PyTorch reference for examples/centered.dl (shape fit with a
# param-dependent mean in the loss, SGD with momentum 0.9).
#   /usr/bin/python3 examples/ref/centered.py [--f64] > examples/ref/centered[.f64].out
import sys, torch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float


def param(v):
    return torch.tensor(v, dtype=dtype, requires_grad=True)


x = torch.linspace(-2, 3, 400, dtype=dtype)
y = 0.7 + 2 * torch.tanh(0.8 * x) + 0.03 * torch.sin(9 * x)
y_centered = y - y.mean()

a = param(1.0)
k = param(0.3)


def y_pred():
    return a * torch.tanh(k * x)


opt = torch.optim.SGD([a, k], lr=1e-5, momentum=0.9)
for step in range(1500):
    opt.zero_grad()
    yp = y_pred()
    loss = ((yp - yp.mean() - y_centered) ** 2).sum()
    if step % 150 == 149:
        print(step, loss.item())
    loss.backward()
    opt.step()

with torch.no_grad():
    print(f"a = {a.item()}  k = {k.item()}")
    print(f"offset = {(y - y_pred()).mean().item()}")
