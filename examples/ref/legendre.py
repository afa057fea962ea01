# Reference for examples/legendre.dl: shared/seed/seed_torch.py, copied.
# legendre.out and legendre.f64.out are the seed's own outputs
# (shared/seed/seed_torch.out and seed_torch64.out), copied, not re-run.
# The only change to the seed: a `--f64` argument (the seed used
# seed_torch64.py, which swaps `dtype = torch.float` for torch.double), so
# that this script follows the same convention as the other references:
#   /usr/bin/python3 examples/ref/legendre.py [--f64] [N] [STEPS]
# The timing line goes to stderr; only stdout is the reference.
# The seed program, verbatim in its maths: PyTorch eager, custom autograd Function.
import math, sys, time, torch
F64 = '--f64' in sys.argv
sys.argv = [a for a in sys.argv if a != '--f64']
class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)
    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
dtype = torch.double if F64 else torch.float
x = torch.linspace(-math.pi, math.pi, N, dtype=dtype)
y = torch.sin(x)
a = torch.full((), 0.0, dtype=dtype, requires_grad=True)
b = torch.full((), -1.0, dtype=dtype, requires_grad=True)
c = torch.full((), 0.0, dtype=dtype, requires_grad=True)
d = torch.full((), 0.3, dtype=dtype, requires_grad=True)
learning_rate = 5e-6
t0 = time.perf_counter()
for t in range(STEPS):
    P3 = LegendrePolynomial3.apply
    y_pred = a + b * P3(c + d * x)
    loss = (y_pred - y).pow(2).sum()
    if t % 100 == 99:
        print(t, loss.item())
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
    a.grad = None; b.grad = None; c.grad = None; d.grad = None
t1 = time.perf_counter()
print(f'Result: y = {a.item()} + {b.item()} * P3({c.item()} + {d.item()} x)')
print(f'loop_seconds {t1-t0:.6f} per_step_us {(t1-t0)/STEPS*1e6:.2f}', file=sys.stderr)
