# The peak fit of bench/peak.dl.in in PyTorch eager, for bench/run.sh:
#   python3 bench/peak_torch.py N STEPS   -> "per_step_us X" on stdout
# One thread, float32, autograd.
import sys, time, torch
torch.set_num_threads(1)

n, steps = int(sys.argv[1]), int(sys.argv[2])
x = torch.linspace(0, 10, n)
y = 2.5 * torch.exp(-(x - 4.2) ** 2 / (2 * 0.8 ** 2)) + 0.3
A, m, s, c = (torch.full((), v, requires_grad=True) for v in (1.0, 5.0, 1.0, 0.0))
t0 = time.perf_counter()
for t in range(steps):
    loss = (A * torch.exp(-(x - m) ** 2 / (2 * s ** 2)) + c - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in (A, m, s, c):
            p -= 1e-7 * p.grad
            p.grad = None
print("per_step_us %.3f" % ((time.perf_counter() - t0) / steps * 1e6))
