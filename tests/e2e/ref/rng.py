# dl's random numbers, from their description in docs/language.md §4.6:
# xoshiro256** with its state filled by splitmix64 from the seed; rand takes
# the top 53 bits (f64) or 24 bits (f32) of each draw; randn is Box-Muller on
# pairs of 53-bit uniforms, r = sqrt(-2 ln(1 - u1)), r cos(2 pi u2) and
# r sin(2 pi u2), in double, the last sine dropped for odd n.
#   /usr/bin/python3 tests/e2e/ref/rng.py
import math, os, sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from fmt import line

M = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro:
    def __init__(self, seed):
        x = seed & M
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        r = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r


def rand(n, seed=0, f64=False):
    g = Xoshiro(seed)
    return [(g.next() >> 11) * 2.0**-53 if f64 else (g.next() >> 40) * 2.0**-24 for _ in range(n)]


def randn(n, seed=0):
    g = Xoshiro(seed)
    out = []
    while len(out) < n:
        u1 = (g.next() >> 11) * 2.0**-53
        u2 = (g.next() >> 11) * 2.0**-53
        r = math.sqrt(-2 * math.log(1 - u1))
        out += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
    return out[:n]


if __name__ == "__main__":
    f32 = lambda v: [np.float32(x) for x in v]
    print(line(f32(rand(5, 1)), f64=False))
    print(line(f32(randn(5, 1)), f64=False))
    print(line(f32(rand(3)), f32(randn(3, 7)), f64=False))
    print(line(rand(3, 42, f64=True), randn(3, 42)))
