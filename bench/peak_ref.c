/* peak_ref.c — the peak fit (a Gaussian with exp) hand-written in C: one
 * fused loop per step for the loss and the gradients of A, m, s, c,
 * float32, with glibc's vector expf (-fveclib=libmvec under clang).
 *
 *   peak_ref N STEPS
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000000, steps = argc > 2 ? atoi(argv[2]) : 100;
  float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) {
    x[i] = 10.0f * (float)i / (float)(n - 1);
    float u = x[i] - 4.2f;
    y[i] = 2.5f * expf(-u * u / (2 * 0.8f * 0.8f)) + 0.3f;
  }
  float A = 1, m = 5, s = 1, c = 0, lr = 1e-7f, loss = 0;
  for (int st = 0; st < steps; st++) {
    float gA = 0, gm = 0, gs = 0, gc = 0, k = 1 / (2 * s * s);
    loss = 0;
    for (int i = 0; i < n; i++) {
      float u = x[i] - m, e = expf(-u * u * k), r = A * e + c - y[i];
      loss += r * r;
      gA += r * e;
      gc += r;
      gm += r * e * u;
      gs += r * e * u * u;
    }
    A -= lr * 2 * gA;
    c -= lr * 2 * gc;
    m -= lr * 4 * A * k * gm;
    s -= lr * 2 * A * gs / (s * s * s);
  }
  printf("%g\n", loss);
  free(x);
  free(y);
  return 0;
}
