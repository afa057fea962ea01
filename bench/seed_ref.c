/* seed_ref.c — the seed model hand-written in C, as an expert would: one
 * fused loop per step computes the loss and the four gradients, float32.
 * Built -O3 -march=native -ffast-math; the yardstick for dlc's code.
 *
 *   seed_ref N STEPS     prints the final loss (so the work is not elided)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000, steps = argc > 2 ? atoi(argv[2]) : 2000;
  float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) {
    x[i] = (float)(-M_PI + 2 * M_PI * i / (n - 1));
    y[i] = sinf(x[i]);
  }
  /* the seed's rate at its 2000 points, scaled: the loss grows with n */
  float a = 0, b = -1, c = 0, d = 0.3f, lr = 5e-6f * 2000 / (float)n, loss = 0;
  for (int s = 0; s < steps; s++) {
    float ga = 0, gb = 0, gc = 0, gd = 0;
    loss = 0;
    for (int i = 0; i < n; i++) {
      float t = c + d * x[i];
      float p3 = 0.5f * (5 * t * t * t - 3 * t);
      float r = a + b * p3 - y[i];
      float dp3 = 1.5f * (5 * t * t - 1);
      loss += r * r;
      ga += r;
      gb += r * p3;
      gc += r * dp3;
      gd += r * dp3 * x[i];
    }
    a -= lr * 2 * ga;
    b -= lr * 2 * gb;
    c -= lr * 2 * b * gc;
    d -= lr * 2 * b * gd;
  }
  printf("%g\n", loss);
  free(x);
  free(y);
  return 0;
}
