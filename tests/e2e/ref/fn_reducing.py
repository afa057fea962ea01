# Reference for tests/e2e/fn_reducing.dl (f64): gradients at the start, then
# 200 Adam steps. Run: /usr/bin/python3 tests/e2e/ref/fn_reducing.py
import torch
x = torch.linspace(0, 1, 5, dtype=torch.double)
y = x - x.mean()
a = torch.tensor(2.0, dtype=torch.double, requires_grad=True)
k = torch.tensor(1.0, dtype=torch.double, requires_grad=True)
def loss():
    u = a * x
    return ((u - u.mean() - y) ** 2).sum() + ((x * x.mean() * k).sum() - 1) ** 2
l = loss(); l.backward()
print(a.grad.item(), k.grad.item())
opt = torch.optim.Adam([a, k], lr=0.05)
for t in range(200):
    opt.zero_grad(); l = loss(); l.backward(); opt.step()
print(f"a = {a.item()}, k = {k.item()}")
