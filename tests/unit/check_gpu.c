/* check_gpu.c — unit tests for src/gpu.c, on any machine (no GPU is
 * needed to compile for one).
 *
 * The PTX of the seed has the kernel, as an entry, with the shuffles,
 * barriers and grid-wide atomic of its reductions, for the architecture
 * asked; a vector param adds the grid reductions of its update. Math that
 * needs libdevice links it in and keeps only the kernel visible; without
 * libdevice, float32 exp and Adam still compile (our own arithmetic) and
 * sin is reported where it was written. An op the GPU generator does not
 * know is a located error, not a crash.
 */
#include "unit.h"

#include <stdio.h>
#include <unistd.h>

static const char *const libdevice = "/usr/local/cuda/nvvm/libdevice/libdevice.10.bc";

static void teardown(void) {
  unsetenv("DLC_LIBDEVICE");
  fx_teardown();
}

/* The PTX for the program's train (caller frees), or NULL when gpu_compile
 * reported errors. */
static char *ptx_for(const char *text, const char *arch) {
  compile_text(text);
  Action *a = train_action();
  Schedule *s = schedule_train(fx.prog, a->loss, &a->opt);
  GpuKernel k;
  bool ok = gpu_compile(fx.prog, s, a, &a->opt, arch, &k);
  schedule_free(s);
  ck_assert_int_eq(ok, k.ptx != NULL);
  ck_assert_int_eq(k.block, 256);
  ck_assert_int_gt(k.scratch_doubles, 0);
  return k.ptx;
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
    n++;
  return n;
}

/* The message of the first error, or "". */
static const char *first_error(void) {
  for (int i = 0; i < fx.diags.n; i++)
    if (fx.diags.items[i].level == DIAG_ERROR)
      return fx.diags.items[i].msg;
  return "";
}

static void error_at(int line, int col) {
  for (int i = 0; i < fx.diags.n; i++)
    if (fx.diags.items[i].level == DIAG_ERROR) {
      int l, c;
      ck_assert_ptr_nonnull(fx.diags.items[i].span.src);
      source_line_col(fx.diags.items[i].span.src, fx.diags.items[i].span.begin, &l, &c);
      ck_assert_int_eq(l, line);
      ck_assert_int_eq(c, col);
      return;
    }
  ck_abort_msg("no error");
}

/* ---- the kernel */

START_TEST(seed_kernel) {
  char *ptx = ptx_for(SEED_TEXT, "sm_90");
  ck_assert_ptr_nonnull(ptx);
  ck_assert_ptr_nonnull(strstr(ptx, ".target sm_90\n"));
  ck_assert_ptr_nonnull(strstr(ptx, ".visible .entry dl_steps("));
  ck_assert_int_eq(count(ptx, ".visible"), 1);   /* nothing else escapes */
  /* Warp sums by butterfly shuffles (two 32-bit halves of a double, five
   * rounds), block sums through shared memory, one grid barrier. */
  ck_assert_int_ge(count(ptx, "shfl.sync.bfly.b32"), 10);
  ck_assert_ptr_nonnull(strstr(ptx, ".shared"));
  ck_assert_int_ge(count(ptx, "bar.sync"), 4);
  ck_assert_int_eq(count(ptx, "atom.global.add.u64"), 1);
  ck_assert_ptr_nonnull(strstr(ptx, "ld.volatile.global.u64"));
  ck_assert_ptr_nonnull(strstr(ptx, "membar.gl"));
  /* The seed is a polynomial: no math library at all. */
  ck_assert_ptr_null(strstr(ptx, "__nv_"));
  free(ptx);
}
END_TEST

START_TEST(arch_asked) {
  char *ptx = ptx_for(SEED_TEXT, "sm_80");
  ck_assert_ptr_nonnull(strstr(ptx, ".target sm_80\n"));
  ck_assert_ptr_null(strstr(ptx, "sm_90"));
  free(ptx);
}
END_TEST

/* A vector param: its gradient is stored, and its update's finite check is
 * a grid reduction of its own (a second barrier). */
START_TEST(vector_param_update) {
  char *ptx = ptx_for("x = linspace(0, 1, 100)\n"
                      "param w = zeros(100)\n"
                      "loss = sum((w - x)^2)\n"
                      "train(steps = 10, optimizer = adam(lr = 0.1))\n",
                      "sm_90");
  ck_assert_ptr_nonnull(ptx);
  ck_assert_int_eq(count(ptx, "atom.global.add.u64"), 2);
  free(ptx);
}
END_TEST

START_TEST(f64_kernel) {
  fx.prog->opts.f64 = true;
  char *ptx = ptx_for(SEED_TEXT, "sm_90");
  ck_assert_ptr_nonnull(ptx);
  ck_assert_ptr_null(strstr(ptx, ".f32"));      /* all in double */
  free(ptx);
}
END_TEST

/* ---- libdevice */

static const char sin_model[] = "x = linspace(0, 3, 200)\n"
                                "param w = 1.0\n"
                                "loss = sum((sin(w * x) - 0.5)^2)\n"
                                "train(steps = 10, optimizer = sgd(lr = 0.01))\n";

START_TEST(libdevice_linked) {
  if (access(libdevice, R_OK) != 0)
    return;                                      /* no CUDA here: libdevice_missing covers it */
  char *ptx = ptx_for(sin_model, "sm_90");
  ck_assert_ptr_nonnull(ptx);
  /* __nv_sinf came in from libdevice and was inlined: no external call
   * and no other visible symbol. */
  ck_assert_ptr_null(strstr(ptx, ".extern"));
  ck_assert_ptr_null(strstr(ptx, "call.uni"));
  ck_assert_int_eq(count(ptx, ".visible"), 1);
  free(ptx);
}
END_TEST

START_TEST(libdevice_missing) {
  setenv("DLC_LIBDEVICE", "/nonexistent/libdevice.10.bc", 1);
  char *ptx = ptx_for(sin_model, "sm_90");
  ck_assert_ptr_null(ptx);
  ck_assert_ptr_nonnull(strstr(first_error(), "'sin' needs CUDA's libdevice"));
  ck_assert_ptr_nonnull(strstr(first_error(), "/nonexistent/libdevice.10.bc"));
  error_at(3, 13);
}
END_TEST

/* Without libdevice: exp in float32 is codegen's own arithmetic, and
 * Adam's powers of beta are squarings. */
START_TEST(own_exp_and_adam) {
  setenv("DLC_LIBDEVICE", "/nonexistent/libdevice.10.bc", 1);
  char *ptx = ptx_for("x = linspace(0, 3, 200)\n"
                      "param k = 1.0\n"
                      "loss = sum((exp(-k * x) - 0.5)^2)\n"
                      "train(steps = 10, optimizer = adam(lr = 0.01))\n",
                      "sm_90");
  ck_assert_msg(ptx != NULL, "%s", first_error());
  ck_assert_ptr_null(strstr(ptx, "__nv_"));
  ck_assert_ptr_null(strstr(ptx, ".extern"));
  free(ptx);
}
END_TEST

/* ---- what the GPU generator does not know */

/* A schedule with an op the generator has no rule for (a free symbol
 * here, standing for what later work adds) is an error at the op. */
START_TEST(unsupported_op_located) {
  compile_text(SEED_TEXT);
  Action *a = train_action();
  Schedule *s = schedule_train(fx.prog, a->loss, &a->opt);
  Node *var = ir_at(scalar_var("t", 0), fx.prog->params[0].span);
  s->loss = ir_binary(fx.g, OP_ADD, s->loss, var);
  GpuKernel k;
  ck_assert(!gpu_compile(fx.prog, s, a, &a->opt, "sm_90", &k));
  ck_assert_ptr_null(k.ptx);
  schedule_free(s);
  ck_assert_str_eq(first_error(), "'var' is not supported with --target gpu yet");
  error_at(5, 7);
}
END_TEST

static Suite *gpu_suite(void) {
  Suite *s = suite_create("gpu");
  TCase *tc = tcase_create("kernel");
  tcase_add_checked_fixture(tc, fx_setup_f32, teardown);
  tcase_add_test(tc, seed_kernel);
  tcase_add_test(tc, arch_asked);
  tcase_add_test(tc, vector_param_update);
  tcase_add_test(tc, f64_kernel);
  suite_add_tcase(s, tc);

  tc = tcase_create("libdevice");
  tcase_add_checked_fixture(tc, fx_setup_f32, teardown);
  tcase_add_test(tc, libdevice_linked);
  tcase_add_test(tc, libdevice_missing);
  tcase_add_test(tc, own_exp_and_adam);
  suite_add_tcase(s, tc);

  tc = tcase_create("unsupported");
  tcase_add_checked_fixture(tc, fx_setup_f32, teardown);
  tcase_add_test(tc, unsupported_op_located);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(gpu_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
