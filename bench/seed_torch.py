# The seed in PyTorch eager (the tutorial's program), for bench/run.sh:
#   python3 bench/seed_torch.py N STEPS   -> "per_step_us X" on stdout
# One thread, float32, the hand-written backward of the tutorial.
import math, sys, time, torch
torch.set_num_threads(1)

class P3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * 1.5 * (5 * x ** 2 - 1)

n, steps = int(sys.argv[1]), int(sys.argv[2])
x = torch.linspace(-math.pi, math.pi, n)
y = torch.sin(x)
a, b, c, d = (torch.full((), v, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3))
t0 = time.perf_counter()
for t in range(steps):
    loss = (a + b * P3.apply(c + d * x) - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in (a, b, c, d):
            p -= 5e-6 * 2000 / n * p.grad
            p.grad = None
print("per_step_us %.3f" % ((time.perf_counter() - t0) / steps * 1e6))
