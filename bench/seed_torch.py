# The seed in PyTorch (the tutorial's program), for bench/run.sh and
# bench/gpu.sh:
#   python3 bench/seed_torch.py N STEPS [cpu|cuda|cuda-compile]
#     -> "per_step_us X" on stdout
# float32, the hand-written backward of the tutorial. cpu (the default):
# eager on one thread. cuda: eager on the GPU; cuda-compile: the step
# (loss, backward, SGD update) through torch.compile on the GPU. On the
# GPU, warm-up steps first (compilation, caches), and a synchronize before
# each clock reading.
import math, sys, time, torch

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
mode = sys.argv[3] if len(sys.argv) > 3 else "cpu"
dev = torch.device("cpu" if mode == "cpu" else "cuda")
if mode == "cpu":
    torch.set_num_threads(1)
x = torch.linspace(-math.pi, math.pi, n, device=dev)
y = torch.sin(x)
params = [torch.full((), v, device=dev, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3)]

def step():
    a, b, c, d = params
    loss = (a + b * P3.apply(c + d * x) - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= 5e-6 * 2000 / n * p.grad
            p.grad = None

def sync():
    if mode != "cpu":
        torch.cuda.synchronize()

if mode == "cuda-compile":
    step = torch.compile(step)
for _ in range(0 if mode == "cpu" else 20):
    step()
sync()
t0 = time.perf_counter()
for t in range(steps):
    step()
sync()
print("per_step_us %.3f" % ((time.perf_counter() - t0) / steps * 1e6))
