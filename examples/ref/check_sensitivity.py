# How sensitive is a reference run to rounding?  (helper, not a reference)
#
#   /usr/bin/python3 examples/ref/check_sensitivity.py NAME [NAME ...]
#
# dlc will not sum in PyTorch's order (PyTorch uses a vectorised pairwise
# sum; a fused loop may add left to right, or in 8 or 16 lanes).  This
# re-runs examples/ref/NAME.py with every 1-D sum/mean (and the gradient of
# every scalar broadcast against a vector) replaced by a plain sum in the
# working precision: sequential, reversed, or in 8 interleaved lanes; in f32
# and f64; and prints per variant the largest relative difference of the
# numbers it printed against the stored NAME.out / NAME.f64.out (numbers
# smaller than 1e-6 in f32, 1e-12 in f64, are judged by their absolute
# difference instead, as an atol would).  If the f32 variants
# stay well inside rtol 1e-4, the default tolerance is safe for that example.
import math, os, re, runpy, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def patch(mode):
    import torch
    orig_sum, orig_mean = torch.Tensor.sum, torch.Tensor.mean

    import numpy as np

    def ordered(v):  # v: 1-D numpy array; sum in the working precision
        if mode == "rev":
            v = v[::-1]
        if mode == "lanes8":  # 8 interleaved accumulators, as a SIMD loop
            pad = (-len(v)) % 8
            v = np.concatenate([v, np.zeros(pad, v.dtype)]).reshape(-1, 8)
            v = np.cumsum(v, axis=0, dtype=v.dtype)[-1]
        return np.cumsum(v, dtype=v.dtype)[-1]  # numpy accumulates in order, in dtype

    class SeqSum(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.n = x.shape[0]
            return torch.tensor(ordered(x.detach().numpy()), dtype=x.dtype)

        @staticmethod
        def backward(ctx, g):
            return g.expand(ctx.n).clone()

    def seq_sum(self, *a, **k):
        if a or k or self.dim() != 1:
            return orig_sum(self, *a, **k)
        return SeqSum.apply(self)

    def seq_mean(self, *a, **k):
        if a or k or self.dim() != 1:
            return orig_mean(self, *a, **k)
        return seq_sum(self) / self.numel()

    torch.Tensor.sum, torch.Tensor.mean = seq_sum, seq_mean
    torch.sum = lambda t, *a, **k: seq_sum(t, *a, **k)
    torch.mean = lambda t, *a, **k: seq_mean(t, *a, **k)

    # The gradient of a scalar broadcast against a vector (a param times
    # data) is reduced inside autograd, out of reach of the patch above:
    # broadcast such scalars explicitly, with a backward that sums in order.
    class SeqExpand(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, n):
            return x.expand(n).clone()

        @staticmethod
        def backward(ctx, g):
            return seq_sum(g), None

    def lift(a, b):
        if (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dim() == 0
                and a.requires_grad and b.dim() == 1):
            a = SeqExpand.apply(a, b.shape[0])
        return a

    def wrap2(orig):
        def f(a, b, *rest, **k):
            return orig(lift(a, b), lift(b, a), *rest, **k)
        return f

    for op in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "pow", "rpow"):
        name = "__%s__" % op
        setattr(torch.Tensor, name, wrap2(getattr(torch.Tensor, name)))
    orig_where = torch.where

    def where(c, a=None, b=None):
        if a is None:
            return orig_where(c)
        return orig_where(c, lift(a, c), lift(b, c))

    torch.where = where


NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|nan)"


def tokens(text):
    # whitespace-separated words, with numbers split out of the words they
    # touch ("P3(1.5e-09" -> "P", "3", "(", "1.5e-09")
    out = []
    for word in text.split():
        for m in re.finditer(NUM + r"|[^-+0-9.]+|.", word):
            out.append(m.group(0))
    return out


def num(tok):
    try:
        return float(tok)
    except ValueError:
        return None


def compare(a, b, tiny):
    ta, tb = tokens(a), tokens(b)
    if len(ta) != len(tb):
        return "token count differs (%d vs %d)" % (len(ta), len(tb))
    worst_rel, worst_tiny, where = 0.0, 0.0, ""
    for x, y in zip(ta, tb):
        fx, fy = num(x), num(y)
        if fx is None or fy is None:
            if x != y:
                return "text differs: %r vs %r" % (x, y)
            continue
        if not (math.isfinite(fx) and math.isfinite(fy)):
            return "non-finite: %r vs %r" % (x, y)
        d = abs(fx - fy)
        rel = d / max(abs(fx), abs(fy)) if d else 0.0
        if max(abs(fx), abs(fy)) <= tiny:  # judged by an atol, not an rtol
            worst_tiny = max(worst_tiny, d)
            continue
        if rel > worst_rel:
            worst_rel, where = rel, "%s vs %s" % (x, y)
    return "max rel %.2e (worst: %s)  max abs among |v| <= %g: %.2e" % (
        worst_rel, where, tiny, worst_tiny)


def main():
    if sys.argv[1] == "--run":  # child: --run MODE SCRIPT [args]
        mode, script = sys.argv[2], sys.argv[3]
        if mode != "none":
            patch(mode)
        sys.argv = [script] + sys.argv[4:]
        runpy.run_path(script, run_name="__main__")
        return
    for name in sys.argv[1:]:
        script = os.path.join(HERE, name + ".py")
        print(name)
        for f64 in (False, True):
            ref = open(os.path.join(HERE, name + (".f64.out" if f64 else ".out"))).read()
            for mode in ("none", "seq", "rev", "lanes8"):
                args = [sys.executable, __file__, "--run", mode, script] + (["--f64"] if f64 else [])
                out = subprocess.run(args, capture_output=True, text=True).stdout
                print("  %-4s %-4s %s" % ("f64" if f64 else "f32", mode, compare(ref, out, 1e-12 if f64 else 1e-6)))
        # f32 against f64: how far rounding moves the f32 run from the exact one
        a = open(os.path.join(HERE, name + ".out")).read()
        b = open(os.path.join(HERE, name + ".f64.out")).read()
        print("  f32 vs f64  %s" % compare(a, b, 1e-6))


if __name__ == "__main__":
    main()
