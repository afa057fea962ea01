/* check_jit.c — what jit.c gives compiled code: the symbols it links
 * (libm's, and no other process symbol), the width of the libmvec
 * variants codegen may name, their accuracy, and the accuracy of the
 * float32 exp codegen computes inline.
 *
 * Inside loops, sin, log, ... run as glibc's libmvec vector functions
 * (_ZGVeN16v_sinf: AVX-512, 16 lanes). Each one this CPU runs is measured
 * here in ulps against the double-precision function rounded to the working
 * type, over the function's whole useful range: at most 4 ulp. exp in
 * float32 is arithmetic in the loop itself, measured the same way through a
 * training step: at most 2 ulp.
 */
#include "unit.h"

#include <dlfcn.h>
#include <float.h>
#include <limits.h>
#include <llvm-c/Core.h>
#include <string.h>

typedef float v4sf __attribute__((vector_size(16)));
typedef float v8sf __attribute__((vector_size(32)));
typedef float v16sf __attribute__((vector_size(64)));
typedef double v2df __attribute__((vector_size(16)));
typedef double v4df __attribute__((vector_size(32)));
typedef double v8df __attribute__((vector_size(64)));

enum { SAMPLES = 20000, MAX_ULP = 4 };

/* A module in j's context defining `double name(double x)` as
 * callee(x), callee declared only: the JIT links it or not. */
static LLVMModuleRef calling(Jit *j, const char *name, const char *callee) {
  LLVMContextRef ctx = jit_context(j);
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext(name, ctx);
  LLVMTypeRef dt = LLVMDoubleTypeInContext(ctx);
  LLVMTypeRef fty = LLVMFunctionType(dt, &dt, 1, 0);
  LLVMValueRef f = LLVMAddFunction(m, name, fty), g = LLVMAddFunction(m, callee, fty);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, f, "entry"));
  LLVMValueRef x = LLVMGetParam(f, 0);
  LLVMBuildRet(b, LLVMBuildCall2(b, fty, g, &x, 1, ""));
  LLVMDisposeBuilder(b);
  return m;
}

/* libm's sin is on the allow-list: the module links, and runs. */
START_TEST(links_allowed_libm) {
  Diags d = {0};
  Jit *j = jit_new(0, false, &d);
  ck_assert_ptr_nonnull(j);
  double ms[PHASE_COUNT] = {0};
  JitCode *code;
  double (*f)(double) = (double (*)(double))jit_add(j, calling(j, "f", "sin"), "f", &d, ms, &code);
  ck_assert_msg(f != NULL, "%s", d.n ? d.items[0].msg : "no diagnostic");
  ck_assert_double_eq(f(0.5), sin(0.5));
  jit_remove(j, code);
  jit_free(j);
  diag_free(&d);
}
END_TEST

/* getenv is in the process (libc's), but compiled code has no business
 * calling it: the link fails with a diagnostic that names it, and the JIT
 * still compiles what it allows afterwards. */
START_TEST(refuses_other_process_symbols) {
  ck_assert_ptr_nonnull(dlsym(RTLD_DEFAULT, "getenv"));
  Diags d = {0};
  Jit *j = jit_new(0, false, &d);
  ck_assert_ptr_nonnull(j);
  double ms[PHASE_COUNT] = {0};
  JitCode *code;
  ck_assert_ptr_null(jit_add(j, calling(j, "g", "getenv"), "g", &d, ms, &code));
  ck_assert_int_eq(d.n, 1);
  ck_assert_msg(strstr(d.items[0].msg, "'getenv'") && strstr(d.items[0].msg, "does not link"), "%s",
                d.items[0].msg);
  jit_remove(j, code);
  JitCode *code2;
  double (*f)(double) = (double (*)(double))jit_add(j, calling(j, "f", "cos"), "f", &d, ms, &code2);
  ck_assert_ptr_nonnull(f);
  ck_assert_double_eq(f(0.5), cos(0.5));
  jit_remove(j, code2);
  jit_free(j);
  diag_free(&d);
}
END_TEST

/* Vector calls, one per width; each compiled for the ISA it needs and only
 * called where the CPU has it. x and y hold `lanes` inputs, r the results. */
__attribute__((target("sse4.1"))) static void call_b(void *f, int f64, int nargs, double *x, double *y,
                                                     double *r) {
  if (f64) {
    v2df a = {x[0], x[1]}, b = {y[0], y[1]};
    v2df o = nargs == 2 ? ((v2df(*)(v2df, v2df))f)(a, b) : ((v2df(*)(v2df))f)(a);
    for (int i = 0; i < 2; i++) r[i] = o[i];
  } else {
    v4sf a, b;
    for (int i = 0; i < 4; i++) a[i] = (float)x[i], b[i] = (float)y[i];
    v4sf o = nargs == 2 ? ((v4sf(*)(v4sf, v4sf))f)(a, b) : ((v4sf(*)(v4sf))f)(a);
    for (int i = 0; i < 4; i++) r[i] = o[i];
  }
}

__attribute__((target("avx2"))) static void call_d(void *f, int f64, int nargs, double *x, double *y,
                                                   double *r) {
  if (f64) {
    v4df a, b;
    for (int i = 0; i < 4; i++) a[i] = x[i], b[i] = y[i];
    v4df o = nargs == 2 ? ((v4df(*)(v4df, v4df))f)(a, b) : ((v4df(*)(v4df))f)(a);
    for (int i = 0; i < 4; i++) r[i] = o[i];
  } else {
    v8sf a, b;
    for (int i = 0; i < 8; i++) a[i] = (float)x[i], b[i] = (float)y[i];
    v8sf o = nargs == 2 ? ((v8sf(*)(v8sf, v8sf))f)(a, b) : ((v8sf(*)(v8sf))f)(a);
    for (int i = 0; i < 8; i++) r[i] = o[i];
  }
}

__attribute__((target("avx512f"))) static void call_e(void *f, int f64, int nargs, double *x,
                                                      double *y, double *r) {
  if (f64) {
    v8df a, b;
    for (int i = 0; i < 8; i++) a[i] = x[i], b[i] = y[i];
    v8df o = nargs == 2 ? ((v8df(*)(v8df, v8df))f)(a, b) : ((v8df(*)(v8df))f)(a);
    for (int i = 0; i < 8; i++) r[i] = o[i];
  } else {
    v16sf a, b;
    for (int i = 0; i < 16; i++) a[i] = (float)x[i], b[i] = (float)y[i];
    v16sf o = nargs == 2 ? ((v16sf(*)(v16sf, v16sf))f)(a, b) : ((v16sf(*)(v16sf))f)(a);
    for (int i = 0; i < 16; i++) r[i] = o[i];
  }
}

/* Distance in representable values: both mapped onto one ordered integer
 * line, so that -0 and +0 are neighbours. */
static int64_t ulps(double got, double want, int f64) {
  if (f64) {
    int64_t a, b;
    memcpy(&a, &got, 8);
    memcpy(&b, &want, 8);
    a = a < 0 ? INT64_MIN - a : a;
    b = b < 0 ? INT64_MIN - b : b;
    return a > b ? a - b : b - a;
  }
  float fg = (float)got, fw = (float)want;
  int32_t a, b;
  memcpy(&a, &fg, 4);
  memcpy(&b, &fw, 4);
  int64_t oa = a < 0 ? (int64_t)INT32_MIN - a : a, ob = b < 0 ? (int64_t)INT32_MIN - b : b;
  return oa > ob ? oa - ob : ob - oa;
}

typedef enum { UNIFORM, LOG_UNIFORM } Spread;

typedef struct MathFn {
  const char *name;                              /* libm's double name */
  int nargs;
  double (*ref)(double);
  double (*ref2)(double, double);
  Spread spread;
  double lo, hi;                                 /* range of x (of log x for LOG_UNIFORM) */
  double lo2, hi2;                               /* range of the second argument */
} MathFn;

/* The functions codegen.c calls through libm(), over their useful range. */
static const MathFn fns[] = {
    {"exp", 1, exp, NULL, UNIFORM, -87, 88, 0, 0},
    {"log", 1, log, NULL, LOG_UNIFORM, -87, 88, 0, 0},
    {"sin", 1, sin, NULL, UNIFORM, -1e4, 1e4, 0, 0},
    {"cos", 1, cos, NULL, UNIFORM, -1e4, 1e4, 0, 0},
    {"tan", 1, tan, NULL, UNIFORM, -1e4, 1e4, 0, 0},
    {"tanh", 1, tanh, NULL, UNIFORM, -12, 12, 0, 0},
    {"atan", 1, atan, NULL, UNIFORM, -1e4, 1e4, 0, 0},
    {"log1p", 1, log1p, NULL, UNIFORM, -0.999, 1e4, 0, 0},
    {"expm1", 1, expm1, NULL, UNIFORM, -87, 88, 0, 0},
    {"pow", 2, NULL, pow, LOG_UNIFORM, -7, 7, -10, 10},
};

static double draw(DlrtRng *r, Spread spread, double lo, double hi) {
  double u = lo + (hi - lo) * dlrt_rng_uniform(r);
  return spread == LOG_UNIFORM ? exp(u) : u;
}

/* The worst error of one variant over SAMPLES points; *checked counts the
 * points with a finite, normal result. */
static int64_t worst_ulps(const MathFn *fn, void *f, char isa, int lanes, int f64, int *checked) {
  DlrtRng r;
  dlrt_rng_seed(&r, 1234);
  double x[16], y[16], got[16];
  int64_t worst = 0;
  *checked = 0;
  for (int k = 0; k < SAMPLES; k += lanes) {
    for (int i = 0; i < lanes; i++) {
      x[i] = draw(&r, fn->spread, fn->lo, fn->hi);
      y[i] = fn->nargs == 2 ? draw(&r, UNIFORM, fn->lo2, fn->hi2) : 0;
      if (!f64)
        x[i] = (float)x[i], y[i] = (float)y[i];
    }
    if (isa == 'b')
      call_b(f, f64, fn->nargs, x, y, got);
    else if (isa == 'd')
      call_d(f, f64, fn->nargs, x, y, got);
    else
      call_e(f, f64, fn->nargs, x, y, got);
    for (int i = 0; i < lanes; i++) {
      double want = fn->nargs == 2 ? fn->ref2(x[i], y[i]) : fn->ref(x[i]);
      double tiny = f64 ? DBL_MIN : FLT_MIN, huge = f64 ? DBL_MAX : FLT_MAX;
      if (!(fabs(want) >= tiny && fabs(want) <= huge) && want != 0)
        continue;                                /* overflow or subnormal: not this test's */
      int64_t e = ulps(got[i], want, f64);
      worst = e > worst ? e : worst;
      ++*checked;
    }
  }
  return worst;
}

START_TEST(libmvec_accuracy) {
  void *lib = dlopen("libmvec.so.1", RTLD_NOW);
  if (!lib)
    return;                                      /* no libmvec: codegen names no variant */
  static const struct { char isa; int bits; const char *cpu; } isas[] = {
      {'b', 128, "sse4.1"}, {'d', 256, "avx2"}, {'e', 512, "avx512f"}};
  int variants = 0;
  for (size_t w = 0; w < sizeof isas / sizeof *isas; w++) {
    bool have = w == 0 ? __builtin_cpu_supports("sse4.1")
                : w == 1 ? __builtin_cpu_supports("avx2") : __builtin_cpu_supports("avx512f");
    if (!have)
      continue;
    for (int f64 = 0; f64 < 2; f64++)
      for (size_t k = 0; k < sizeof fns / sizeof *fns; k++) {
        int lanes = isas[w].bits / (f64 ? 64 : 32);
        char vname[64];
        snprintf(vname, sizeof vname, "_ZGV%cN%d%s_%s%s", isas[w].isa, lanes,
                 fns[k].nargs == 2 ? "vv" : "v", fns[k].name, f64 ? "" : "f");
        void *f = dlsym(lib, vname);
        ck_assert_msg(f != NULL, "libmvec lacks %s", vname);
        int checked;
        int64_t worst = worst_ulps(&fns[k], f, isas[w].isa, lanes, f64, &checked);
        ck_assert_msg(checked > SAMPLES / 2, "%s: only %d points checked", vname, checked);
        ck_assert_msg(worst <= MAX_ULP, "%s: %lld ulp", vname, (long long)worst);
        variants++;
      }
  }
  ck_assert_int_gt(variants, 0);
  dlclose(lib);
}
END_TEST

/* The width jit.c reports is one the CPU runs and libmvec has. */
START_TEST(vector_bits_match_cpu) {
  Diags d = {0};
  Jit *j = jit_new(2, false, &d);
  ck_assert_ptr_nonnull(j);
  int bits = jit_vector_bits(j);
  void *lib = dlopen("libmvec.so.1", RTLD_NOW);
  if (!lib)
    ck_assert_int_eq(bits, 0);
  else if (__builtin_cpu_supports("avx512f"))
    ck_assert_int_eq(bits, 512);
  else if (__builtin_cpu_supports("avx2"))
    ck_assert_int_eq(bits, 256);
  else
    ck_assert_int_le(bits, 128);
  if (lib)
    dlclose(lib);
  jit_free(j);
  diag_free(&d);
}
END_TEST

/* Compiles text (float32) with the program's own arena and diagnostics. */
static Program *compile_f32(Arena *a, Diags *d, const char *text) {
  Source *src = source_new(a, "t.dl", text, strlen(text));
  Program *p = program_new(a, d, (Options){.opt_level = 2});
  ck_assert(sema_program(p, parse_source(src, a, d)));
  return p;
}

/* Runs p's actions; returns whether they succeeded, *out what they printed. */
static bool run_program(Program *p, char **out) {
  size_t len = 0;
  FILE *f = open_memstream(out, &len);
  Runner *r = runner_new();
  bool ok = exec_program(r, p, f);
  runner_free(r);
  fclose(f);
  return ok;
}

static void free_program(Program *p, Diags *d, Arena *a) {
  program_free(p);
  diag_free(d);
  arena_free(a);
}

static char *emit_asm_of(Program *p) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  Runner *r = runner_new();
  ck_assert(exec_emit(r, p, "asm", out));
  runner_free(r);
  fclose(out);
  return buf;
}

/* A transcendental function inside a loop is vectorized through libmvec
 * where there is one; exp in float32 is arithmetic, no call at all. */
START_TEST(loop_calls_libmvec_but_not_for_exp) {
  Arena *a = arena_new();
  Diags d = {0};
  Jit *j = jit_new(2, false, &d);
  int bits = jit_vector_bits(j);
  jit_free(j);
  Program *p = compile_f32(a, &d, "x = linspace(0, 10, 4000)\n"
                                  "param m = 5.0\n"
                                  "loss = sum(exp(-(x - m)^2) + sin(x * m))\n"
                                  "train(steps = 1, optimizer = sgd(lr = 0.001))\n");
  char *text = emit_asm_of(p);
  if (bits) {
    char want[32];
    snprintf(want, sizeof want, "_ZGV%cN%d", bits == 512 ? 'e' : bits == 256 ? 'd' : 'b', bits / 32);
    ck_assert_msg(strstr(text, want) != NULL, "no call of a %s variant in the loop", want);
  }
  ck_assert_msg(strstr(text, "expf") == NULL, "exp is called:\n%.3000s", text);
  free(text);
  free_program(p, &d, a);
}
END_TEST

/* An inline float32 function f, as the training loop computes it: one
 * step of sgd(lr = 1) on `sum(w * f(x + a))` from w = 0 stores w = -f(x)
 * for every x of 2^20 from lo to hi, the first of them replaced by
 * `edges`. Returns the stored values (the caller frees them) after
 * checking each within 2 ulp of the double function rounded to float. */
static double *inline_values(const char *name, double (*want)(double), double lo, double hi,
                             const double *edges, int nedges) {
  enum { N = 1 << 20 };
  Arena *a = arena_new();
  Diags d = {0};
  char text[256];
  snprintf(text, sizeof text,
           "x = linspace(%.17g, %.17g, %d)\n"
           "param w = zeros(%d)\n"
           "param a = 0.0\n"
           "loss = sum(w * %s(x + a))\n"
           "train(steps = 1, optimizer = sgd(lr = 1))\n", lo, hi, N, N, name);
  Program *p = compile_f32(a, &d, text);
  double *x = NULL;
  for (int i = 0; i < p->ndata; i++)
    if (strcmp(p->data[i].name, "x") == 0)
      x = p->data[i].value.v;
  ck_assert_ptr_nonnull(x);
  for (int k = 0; k < nedges; k++)
    x[k] = (float)edges[k];
  char *out = NULL;
  ck_assert(run_program(p, &out));
  double *got = malloc(sizeof(double) * N);
  int64_t worst = 0;
  int worst_at = 0;
  for (int i = 0; i < N; i++) {
    got[i] = -p->params[0].value.v[i];
    int64_t e = ulps(got[i], (float)want(x[i]), 0);
    if (e > worst)
      worst = e, worst_at = i;
  }
  ck_assert_msg(worst <= 2, "%s(%.9g) = %.9g, libm %.9g: %lld ulp", name, x[worst_at], got[worst_at],
                (float)want(x[worst_at]), (long long)worst);
  free(out);
  free_program(p, &d, a);
  return got;
}

/* exp: from the smallest subnormal result to the largest finite one,
 * exact at 0, and 0 far below. */
START_TEST(inline_exp_accuracy) {
  static const double edges[] = {0.0, -0.0, 1e-30, -1e-30, -200, -1e30, 88.72, -87.3, -87.34, -103.97,
                                 1.0, -1.0, 0.5, 0.34657359, -0.34657359, 10.5, -10.5};
  double *y = inline_values("exp", exp, -103.9, 88.7, edges, sizeof edges / sizeof *edges);
  ck_assert_double_eq(y[0], 1);
  ck_assert_double_eq(y[1], 1);
  ck_assert_double_eq(y[4], 0);
  ck_assert_double_eq(y[5], 0);
  free(y);
}
END_TEST

/* tanh: both branches (the switch at 0.5625), the subnormals, saturation
 * at +-1. */
START_TEST(inline_tanh_accuracy) {
  static const double edges[] = {0.0, -0.0, 1e-30, -1e-40, 0.5625, -0.5625, 0.56250006, 100, -100, 9.01};
  double *y = inline_values("tanh", tanh, -12, 12, edges, sizeof edges / sizeof *edges);
  ck_assert_double_eq(y[7], 1);
  ck_assert_double_eq(y[8], -1);
  free(y);
}
END_TEST

/* Past the largest float, exp overflows to inf (not to a wrapped-around
 * exponent), and training stops on it. */
START_TEST(inline_exp_overflows_to_inf) {
  Arena *a = arena_new();
  Diags d = {0};
  Program *p = compile_f32(a, &d, "x = linspace(88, 90, 64)\n"
                                  "param a = 0.0\n"
                                  "loss = sum(exp(x + a))\n"
                                  "train(steps = 3, optimizer = sgd(lr = 1), log_every = 1)\n");
  char *out = NULL;
  ck_assert(!run_program(p, &out));
  ck_assert_str_eq(out, "0 inf\n");
  ck_assert_ptr_nonnull(strstr(d.items[0].msg, "training stopped at step 0"));
  free(out);
  free_program(p, &d, a);
}
END_TEST

int main(void) {
  Suite *s = suite_create("jit");
  TCase *syms = tcase_create("symbols");
  tcase_add_test(syms, links_allowed_libm);
  tcase_add_test(syms, refuses_other_process_symbols);
  suite_add_tcase(s, syms);
  TCase *tc = tcase_create("libmvec");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, libmvec_accuracy);
  tcase_add_test(tc, vector_bits_match_cpu);
  tcase_add_test(tc, loop_calls_libmvec_but_not_for_exp);
  tcase_add_test(tc, inline_exp_accuracy);
  tcase_add_test(tc, inline_tanh_accuracy);
  tcase_add_test(tc, inline_exp_overflows_to_inf);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
