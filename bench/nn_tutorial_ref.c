/* nn_tutorial_ref.c — examples/nn_tutorial.dl written by hand in C: the
 * linear layer on [x, x^2, x^3] and RMSprop, fused in one loop per step.
 * The baseline bench/matrix.sh compares dlc's step with.
 *   nn_tutorial_ref STEPS   (prints the final loss, so nothing is elided) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 2000 };

int main(int argc, char **argv) {
  long steps = argc > 1 ? atol(argv[1]) : 2000;
  static float x1[N], x2[N], x3[N], y[N];
  for (int i = 0; i < N; i++) {
    float x = (float)(-M_PI + 2 * M_PI * i / (N - 1));
    x1[i] = x, x2[i] = x * x, x3[i] = x * x * x, y[i] = sinf(x);
  }
  float w[4] = {0.3f, -0.2f, 0.1f, 0.0f}, sq[4] = {0};   /* W[0..2], b */
  float loss = 0;
  for (long t = 0; t < steps; t++) {
    float g[4] = {0};
    loss = 0;
    for (int i = 0; i < N; i++) {
      float r = w[3] + w[0] * x1[i] + w[1] * x2[i] + w[2] * x3[i] - y[i];
      loss += r * r;
      g[0] += 2 * r * x1[i], g[1] += 2 * r * x2[i], g[2] += 2 * r * x3[i], g[3] += 2 * r;
    }
    for (int k = 0; k < 4; k++) {
      sq[k] = 0.99f * sq[k] + 0.01f * g[k] * g[k];
      w[k] -= 1e-3f * g[k] / (sqrtf(sq[k]) + 1e-8f);
    }
  }
  printf("%g\n", loss);
  return 0;
}
