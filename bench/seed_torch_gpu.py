# The seed on the GPU in PyTorch, eager and torch.compile, for bench/gpu.sh:
#   python3 bench/seed_torch_gpu.py eager|compile N STEPS  -> "per_step_us X"
# float32 on cuda:0; the tutorial's program (its hand-written backward), the
# step as one function (loss, backward, SGD update); torch.compile compiles
# that function. Warm-up steps first (compilation, cuBLAS/cache set-up),
# then STEPS timed steps, synchronized at the end.
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

mode, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dev = torch.device("cuda")
x = torch.linspace(-math.pi, math.pi, n, device=dev)
y = torch.sin(x)
params = [torch.full((), v, device=dev, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3)]
lr = 5e-6 * 2000 / n

def step():
    a, b, c, d = params
    loss = (a + b * P3.apply(c + d * x) - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None
    return loss

if mode == "compile":
    step = torch.compile(step)
for _ in range(20):
    step()
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(steps):
    step()
torch.cuda.synchronize()
print("per_step_us %.3f" % ((time.perf_counter() - t0) / steps * 1e6))
