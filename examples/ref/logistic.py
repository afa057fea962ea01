# PyTorch reference for examples/logistic.dl (logistic regression, binary
# cross-entropy written out, Adam).
#   /usr/bin/python3 examples/ref/logistic.py [--f64] > examples/ref/logistic[.f64].out
# dl comparisons give 1.0 / 0.0 in the working precision: here .to(dtype).
import sys, torch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float


def param(v):
    return torch.tensor(v, dtype=dtype, requires_grad=True)


x1 = torch.linspace(-3, 3, 500, dtype=dtype)
x2 = 2 * torch.sin(2.3 * x1)
t = ((0.8 * x1 - x2 + 2 * torch.sin(7 * x1)) > 0.3).to(dtype)

w1 = param(0.0)
w2 = param(0.0)
b = param(0.0)


def prob():
    return torch.sigmoid(w1 * x1 + w2 * x2 + b)


opt = torch.optim.Adam([w1, w2, b], lr=0.02, betas=(0.9, 0.999), eps=1e-8)
for step in range(1000):
    opt.zero_grad()
    p = prob()
    loss = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    if step % 100 == 99:
        print(step, loss.item())
    loss.backward()
    opt.step()

with torch.no_grad():
    p = prob()
    print(f"w1 = {w1.item()}  w2 = {w2.item()}  b = {b.item()}")
    print(f"accuracy {((p > 0.5).to(dtype) == t).to(dtype).mean().item()}")
