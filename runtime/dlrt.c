/* dlrt.c — numbers, constructors, the seeded generator and the log line.
 *
 * Everything here must agree bit for bit with the reference the programs
 * are checked against (Python's repr, PyTorch's CPU kernels), so each
 * function follows its reference's arithmetic step by step, in the
 * program's precision, rather than computing the ideal value. Printing is
 * shortest round-trip: try more and more significant digits until the text
 * reads back to the same value, then lay the digits out like repr does.
 */
#include "dlrt.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers */

double dlrt_round(double v, int f64) {
  return f64 ? v : (double)(float)v;
}

/* The fewest significant digits that read back to v: digits go to dig
 * (no point, no sign), the decimal exponent of the first one to *exp10.
 * 9 digits always suffice for a float and 17 for a double. */
static int shortest_digits(double v, int f64, char *dig, int *exp10) {
  char text[40];
  int most = f64 ? 17 : 9;
  for (int sig = 1; sig <= most; sig++) {
    snprintf(text, sizeof text, "%.*e", sig - 1, v);
    if (f64 ? strtod(text, NULL) == v : strtof(text, NULL) == (float)v)
      break;
  }
  int n = 0;
  char *p = text + (*text == '-');
  for (; *p != 'e'; p++)
    if (*p != '.')
      dig[n++] = *p;
  *exp10 = atoi(p + 1);
  /* Zero comes back as "0e+00"; keep one digit of it. */
  while (n > 1 && dig[n - 1] == '0')
    n--;
  dig[n] = '\0';
  return n;
}

/* Lays out n digits whose first has decimal exponent e, the way Python's
 * repr does, except that integers get no ".0". */
static void layout(char *out, int neg, const char *dig, int n, int e) {
  char *p = out;
  if (neg)
    *p++ = '-';
  if (e < -4 || e >= 16) {
    *p++ = dig[0];
    if (n > 1)
      p += sprintf(p, ".%s", dig + 1);
    sprintf(p, "e%c%02d", e < 0 ? '-' : '+', abs(e));
    return;
  }
  if (e < 0) {
    p += sprintf(p, "0.");
    for (int i = -1; i > e; i--)
      *p++ = '0';
    strcpy(p, dig);
    return;
  }
  for (int i = 0; i <= e; i++)
    *p++ = i < n ? dig[i] : '0';
  if (n > e + 1)
    p += sprintf(p, ".%s", dig + e + 1);
  *p = '\0';
}

int dlrt_format(char *buf, size_t size, double v, int f64) {
  char text[48];
  v = dlrt_round(v, f64);
  if (isnan(v)) {
    strcpy(text, "nan");
  } else if (isinf(v)) {
    strcpy(text, v < 0 ? "-inf" : "inf");
  } else {
    char dig[20];
    int e;
    int n = shortest_digits(v, f64, dig, &e);
    layout(text, signbit(v) != 0, dig, n, e);
  }
  return snprintf(buf, size, "%s", text);
}

/* ---- constructors */

/* Both halves are computed from their own end, in the precision, exactly
 * as ATen's CPU linspace kernel does, so the ends are exact and the result
 * is symmetric when start == -stop. The products are volatile because a
 * compiler allowed to fuse them into the add (gnu11 with FMA hardware)
 * would round once where the formula rounds twice. */
void dlrt_linspace(double *out, double start, double stop, int64_t n, int f64) {
  if (n == 1) {
    out[0] = dlrt_round(start, f64);
    return;
  }
  int64_t halfway = n / 2;
  if (f64) {
    double step = (stop - start) / (double)(n - 1);
    for (int64_t i = 0; i < n; i++) {
      volatile double t = step * (double)(i < halfway ? i : n - 1 - i);
      out[i] = i < halfway ? start + t : stop - t;
    }
    return;
  }
  float a = (float)start, b = (float)stop;
  float step = (b - a) / (float)(n - 1);
  for (int64_t i = 0; i < n; i++) {
    volatile float t = step * (float)(i < halfway ? i : n - 1 - i);
    out[i] = i < halfway ? a + t : b - t;
  }
}

/* ---- the seeded generator */

/* splitmix64 spreads any seed, even 0, over the 256 bits of state, which
 * xoshiro256** needs to be not all zero. */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void dlrt_rng_seed(DlrtRng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t dlrt_rng_next(DlrtRng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double dlrt_rng_uniform(DlrtRng *r) {
  return (double)(dlrt_rng_next(r) >> 11) * 0x1.0p-53;
}

void dlrt_rand(double *out, int64_t n, uint64_t seed, int f64) {
  DlrtRng r;
  dlrt_rng_seed(&r, seed);
  /* In f32 the top 24 bits: every value is a float and below 1, where
   * rounding a 53-bit uniform could give exactly 1. */
  for (int64_t i = 0; i < n; i++)
    out[i] = f64 ? dlrt_rng_uniform(&r) : (double)(dlrt_rng_next(&r) >> 40) * 0x1.0p-24;
}

/* Each pair of uniforms gives a pair of normals; u1 is taken as 1 - u so
 * that it lies in (0, 1] and its log is finite. An odd n drops the last
 * pair's second normal. */
void dlrt_randn(double *out, int64_t n, uint64_t seed, int f64) {
  DlrtRng r;
  dlrt_rng_seed(&r, seed);
  const double two_pi = 6.283185307179586;
  for (int64_t i = 0; i < n; i += 2) {
    double u1 = 1.0 - dlrt_rng_uniform(&r);
    double u2 = dlrt_rng_uniform(&r);
    double radius = sqrt(-2.0 * log(u1));
    out[i] = dlrt_round(radius * cos(two_pi * u2), f64);
    if (i + 1 < n)
      out[i + 1] = dlrt_round(radius * sin(two_pi * u2), f64);
  }
}

/* ---- training callbacks */

volatile int32_t dlrt_interrupt;

static void curve_add(DlrtCurve *c, double loss) {
  if (c->n == c->cap && !c->lost) {
    int64_t cap = c->cap ? 2 * c->cap : 1024;
    double *v = realloc(c->loss, (size_t)cap * sizeof *v);
    if (v) {
      c->loss = v;
      c->cap = cap;
    }
  }
  if (c->n < c->cap && !c->lost)
    c->loss[c->n++] = loss;
  else
    c->lost++;
}

void dlrt_step(void *log, int64_t step, double loss) {
  DlrtLog *l = log;
  if (l->curve)
    curve_add(l->curve, loss);
  int64_t since = step - l->first_step;
  if (since == 0)
    l->first_loss = loss;
  else if (since <= DLRT_DIVERGENCE_STEPS && l->diverged_step < 0 && isfinite(loss) &&
           fabs(loss) > DLRT_DIVERGENCE_FACTOR * fabs(l->first_loss)) {
    l->diverged_step = step;
    l->diverged_loss = loss;
  }
  DlrtProgress *pr = l->progress;
  if (pr && --pr->countdown <= 0)
    dlrt_progress_tick(pr, step);
  DlrtBatches *b = l->batches;
  if (!b) {
    if (l->every > 0 && (step + 1) % l->every == 0)
      dlrt_log(log, step, loss);
    return;
  }
  l->epoch_sum += loss;
  if ((step + 1) % b->nbatches != 0)
    return;
  int64_t epoch = step / b->nbatches;
  double mean = dlrt_round(l->epoch_sum / (double)b->nbatches, l->f64);
  l->epoch_sum = 0;
  if (l->every > 0 && (epoch + 1) % l->every == 0)
    dlrt_log(log, epoch, mean);
}

void dlrt_batch(void *log, int64_t step) {
  DlrtBatches *b = ((DlrtLog *)log)->batches;
  int64_t k = step % b->nbatches;
  while (b->epoch < step / b->nbatches) {
    b->epoch++;
    for (int64_t i = 0; i < b->n; i++)
      b->order[i] = i;
    for (int64_t i = b->n - 1; b->shuffle && i > 0; i--) {
      int64_t j = (int64_t)(dlrt_rng_uniform(&b->rng) * (double)(i + 1));
      int64_t t = b->order[i];
      b->order[i] = b->order[j];
      b->order[j] = t;
    }
  }
  int64_t first = k * b->batch, rows = b->n - first < b->batch ? b->n - first : b->batch;
  for (int m = 0; m < b->ntensors; m++) {
    if (!b->dst[m])
      continue;
    for (int64_t r = 0; r < rows; r++)
      memcpy((char *)b->dst[m] + r * b->row_bytes[m], b->src[m] + b->order[first + r] * b->row_bytes[m],
             (size_t)b->row_bytes[m]);
  }
}

void dlrt_log(void *log, int64_t step, double loss) {
  DlrtLog *l = log;
  char text[48];
  dlrt_format(text, sizeof text, loss, l->f64);
  DlrtProgress *pr = l->progress;
  int redraw = pr && pr->shown;
  if (redraw)
    dlrt_progress_clear(pr);
  fprintf(l->out, "%lld %s\n", (long long)step, text);
  if (pr) {
    pr->loss = loss;
    pr->has_loss = 1;
  }
  if (redraw) {                                  /* the line back under the log line, on the next step
                                                    that may redraw */
    fflush(l->out);
    pr->countdown = 1;
  }
  if (l->file) {
    int64_t nb = l->batches ? l->batches->nbatches : 0;
    dlrt_log_write(l->file, nb ? (step + 1) * nb - 1 : step, nb ? step : -1, loss);
  }
}

/* ---- OpenBLAS */

static DlrtBlas blas;
static const DlrtBlas *blas_found;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_load(void) {
  const char *off = getenv("DLC_NO_BLAS");
  if (off && *off)
    return;
  /* One thread, from the start: OpenBLAS would otherwise start a pool of
   * workers that spin (sched_yield) and take the cores from the compiler
   * and from dlc's own team. */
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return;
  void (*set_threads)(int) = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
  blas.sgemm = (DlrtSgemm)dlsym(lib, "cblas_sgemm");
  blas.dgemm = (DlrtDgemm)dlsym(lib, "cblas_dgemm");
  if (!set_threads || !blas.sgemm || !blas.dgemm)
    return;
  set_threads(1);
  blas_found = &blas;
}

const DlrtBlas *dlrt_blas(void) {
  pthread_once(&blas_once, blas_load);
  return blas_found;
}
