# PyTorch reference for examples/multiarg.dl (damped oscillation, Adam).
#   /usr/bin/python3 examples/ref/multiarg.py [--f64] > examples/ref/multiarg[.f64].out
# `wave` is a torch.autograd.Function, as a user of PyTorch would write a
# fn with hand-written derivatives: the backward for w and k is the
# hand-written `deriv w` / `deriv k` of the .dl; the one for t is the
# derivative of the body, exp(-k t) (w cos(w t) - k sin(w t)), which dlc
# derives itself.
import math, sys, torch

torch.set_num_threads(1)
dtype = torch.double if "--f64" in sys.argv else torch.float


class Wave(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, w, k):
        value = torch.exp(-k * t) * torch.sin(w * t)
        ctx.save_for_backward(t, w, k, value)
        return value

    @staticmethod
    def backward(ctx, g):
        t, w, k, value = ctx.saved_tensors
        d_t = torch.exp(-k * t) * (w * torch.cos(w * t) - k * torch.sin(w * t))  # from the body
        d_w = t * torch.exp(-k * t) * torch.cos(w * t)                            # deriv w
        d_k = -t * value                                                          # deriv k
        return g * d_t, (g * d_w).sum(), (g * d_k).sum()


wave = Wave.apply


def param(v):
    return torch.tensor(v, dtype=dtype, requires_grad=True)


t = torch.linspace(0, 10, 500, dtype=dtype)
y = 1.5 * torch.exp(-0.3 * (t + 0.2)) * torch.sin(2 * (t + 0.2)) + 0.02 * torch.cos(7.3 * t)

A = param(1.0)
w = param(1.7)
k = param(0.1)
t0 = param(0.0)

opt = torch.optim.Adam([A, w, k, t0], lr=0.005, betas=(0.9, 0.999), eps=1e-8)
for step in range(1500):
    opt.zero_grad()
    loss = ((A * wave(t - t0, w, k) - y) ** 2).sum()
    if step % 150 == 149:
        print(step, loss.item())
    loss.backward()
    opt.step()

print(f"A = {A.item()}  w = {w.item()}  k = {k.item()}  t0 = {t0.item()}")
print(f"period = {(2 * math.pi / w).item()}")
