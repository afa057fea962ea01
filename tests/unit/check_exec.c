/* check_exec.c — unit tests for src/exec.c and src/train.c, the parts
 * that need no long training run (check_codegen.c runs those): how values
 * print (a scalar, a short vector, a long one elided to its three first and
 * three last elements), print and show actions, formulas for values with a
 * free symbol, `dlc emit grad|ir` text, the train compiler's outputs, the
 * decoding of how a train ended, and a runner shared by programs.
 */
#include "unit.h"

#include <stdio.h>

static void teardown(void) {
  fx_teardown();
}

static void expect_format(const double *v, int n, bool vector, bool f64, const char *want) {
  Tensor t = {vector ? shape_vector(n) : shape_scalar(), (double *)v};
  Buf b = {0};
  exec_format_value(&b, &t, f64);
  ck_assert_msg(b.data && strcmp(b.data, want) == 0, "formatted '%s', expected '%s'",
                b.data ? b.data : "(nothing)", want);
  buf_free(&b);
}

/* ---- exec_format_value */

START_TEST(format_scalar) {
  expect_format((double[]){0.1}, 1, false, true, "0.1");
  expect_format((double[]){2000}, 1, false, true, "2000");
  expect_format((double[]){-1}, 1, false, true, "-1");
  expect_format((double[]){1e-5}, 1, false, true, "1e-05");
  expect_format((double[]){NAN}, 1, false, true, "nan");
  expect_format((double[]){-INFINITY}, 1, false, true, "-inf");
  /* f32: the shortest text that reads back as the float. */
  expect_format((double[]){(double)0.1f}, 1, false, false, "0.1");
  expect_format((double[]){(double)0.1f}, 1, false, true, "0.10000000149011612");
  expect_format((double[]){1.0 / 3}, 1, false, false, "0.33333334");
}
END_TEST

START_TEST(format_short_vector) {
  expect_format((double[]){1, 2.5, -3}, 3, true, true, "[1, 2.5, -3]");
  expect_format((double[]){7}, 1, true, true, "[7]");
  /* Seven elements still print whole. */
  expect_format((double[]){0, 1, 2, 3, 4, 5, 6}, 7, true, true, "[0, 1, 2, 3, 4, 5, 6]");
}
END_TEST

START_TEST(format_long_vector) {
  expect_format((double[]){0, 1, 2, 3, 4, 5, 6, 7}, 8, true, true, "[0, 1, 2, ..., 5, 6, 7]");
  enum { N = 2000 };
  double *v = malloc(sizeof(double) * N);
  for (int i = 0; i < N; i++)
    v[i] = i * 0.5;
  expect_format(v, N, true, true, "[0, 0.5, 1, ..., 998.5, 999, 999.5]");
  free(v);
}
END_TEST

/* ---- print and show */

static char *run_program(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ck_assert(exec_program(fx.runner, fx.prog, f));
  fclose(f);
  return text;
}

START_TEST(print_and_show) {
  compile_text("param a = 1.5\n"
               "x = linspace(0, 1, 20)\n"
               "print(\"a = {a}\", 2, x)\n"
               "a * 2\n"
               "print(\"{{literal}} {a + 1}!\")\n"
               "print()\n"
               "print(diff(t^2 * a, t), diff(t^2, t))\n");
  char *out = run_program();
  ck_assert_str_eq(out, "a = 1.5 2 [0, 0.05263157894736842, 0.10526315789473684, ..., "
                        "0.8947368421052632, 0.9473684210526316, 1]\n"
                        "3\n"
                        "{literal} 2.5!\n"
                        "\n"
                        "2 * a * t 2 * t\n");
  free(out);
}
END_TEST

/* A print uses the params' current values, not their initial ones. */
START_TEST(print_current_values) {
  compile_text("param a = 1\n"
               "y = 3 * a\n"
               "print(y)\n");
  fx.prog->params[0].value.v[0] = 2;
  char *out = run_program();
  ck_assert_str_eq(out, "6\n");
  free(out);
}
END_TEST

/* ---- emit */

static char *emit(const char *what, bool *ok) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  *ok = exec_emit(fx.runner, fx.prog, what, f);
  fclose(f);
  return text;
}

START_TEST(emit_grad_and_ir) {
  compile_text("param a = 1.5\n"
               "x = linspace(0, 1, 20)\n"
               "loss = sum((a * x - 1)^2)\n");
  bool ok;
  char *g = emit("grad", &ok);
  ck_assert(ok);
  ck_assert_str_eq(g, "loss = sum((a * x - 1)^2)\n"
                      "grad a = 2 * sum((a * x - 1) * x)\n");
  free(g);
  char *ir = emit("ir", &ok);
  ck_assert(ok);
  ck_assert_msg(strstr(ir, "loss = %"), "no loss root in:\n%s", ir);
  ck_assert_msg(strstr(ir, "grad a = %"), "no gradient root in:\n%s", ir);
  size_t n = strlen(ir);
  const char *tail = "; 1 stage, 1 loop, 0 kernels per step\n";
  ck_assert_msg(n > strlen(tail) && strcmp(ir + n - strlen(tail), tail) == 0, "ir ends:\n%s", ir);
  free(ir);
}
END_TEST

START_TEST(emit_without_loss) {
  compile_text("param a = 1\n");
  bool ok;
  char *text = emit("ir", &ok);
  ck_assert(!ok);
  ck_assert_str_eq(text, "");
  ck_assert_int_eq(fx.diags.nerrors, 1);
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "defines no loss"));
  free(text);
}
END_TEST

/* ---- the train compiler and what a train says */

/* Every way compiled steps end, as the CPU's function and the GPU's
 * kernel return it, decodes to why and after how many steps. */
START_TEST(train_result_decodes) {
  TrainResult r = train_result(100, 100);
  ck_assert(r.stop == TRAIN_DONE && r.done == 100);
  r = train_result(37, 100);
  ck_assert(r.stop == TRAIN_NONFINITE && r.done == 37);
  r = train_result(0, 100);                      /* the very first step */
  ck_assert(r.stop == TRAIN_NONFINITE && r.done == 0);
  r = train_result(-1 - 37, 100);
  ck_assert(r.stop == TRAIN_UPDATE_NONFINITE && r.done == 37);
  r = train_result(-1, 100);
  ck_assert(r.stop == TRAIN_UPDATE_NONFINITE && r.done == 0);
  r = train_result(dlrt_train_interrupted(100, 37), 100);
  ck_assert(r.stop == TRAIN_INTERRUPTED && r.done == 37);
  r = train_result(dlrt_train_interrupted(100, 0), 100);
  ck_assert(r.stop == TRAIN_INTERRUPTED && r.done == 0);
}
END_TEST

/* One train compiler for every output: a function in the runner's JIT,
 * LLVM text, assembly, PTX; each freed by train_free. */
START_TEST(train_compile_outputs) {
  compile_text("x = linspace(-1, 1, 64)\n"
               "param a = 0.5\n"
               "loss = sum((a * x - sin(x))^2)\n"
               "train(steps = 3, optimizer = sgd(lr = 0.01))\n");
  Action *a = train_action();
  Train t;
  ck_assert(train_compile(fx.runner, fx.prog, a, a->loss, &a->opt, TRAIN_FOR_CPU, &t));
  ck_assert_ptr_nonnull(t.fn);
  ck_assert_ptr_nonnull(t.s);
  ck_assert_ptr_nonnull(fx.runner->jit);
  ck_assert_int_eq(fx.runner->ntrains, 1);
  train_free(fx.runner, &t);
  ck_assert_ptr_null(t.s);
  ck_assert(train_compile(fx.runner, fx.prog, a, a->loss, &a->opt, TRAIN_AS_LLVM, &t));
  ck_assert_ptr_nonnull(strstr(t.text, "define"));
  ck_assert_ptr_nonnull(strstr(t.text, "@dl_train("));
  train_free(fx.runner, &t);
  ck_assert(train_compile(fx.runner, fx.prog, a, a->loss, &a->opt, TRAIN_AS_PTX, &t));
  ck_assert_ptr_nonnull(strstr(t.text, ".entry " GPU_KERNEL));
  train_free(fx.runner, &t);
  ck_assert_int_eq(fx.runner->ntrains, 1);      /* only machine code takes a name in the JIT */
  ck_assert_int_eq(fx.diags.nerrors, 0);
}
END_TEST

/* The runner outlives programs: the REPL builds one per definition and
 * keeps one JIT for all; each train takes a new name in it. */
START_TEST(runner_outlives_programs) {
  const char *text = "x = linspace(-1, 1, 64)\n"
                     "param a = 0.5\n"
                     "loss = sum((a * x - sin(x))^2)\n"
                     "train(steps = 3, optimizer = sgd(lr = 0.01))\n"
                     "print(a)\n";
  compile_text(text);
  char *first = run_program();
  Jit *jit = fx.runner->jit;
  ck_assert_ptr_nonnull(jit);
  Arena *arena = arena_new();
  Diags d = {0};
  Program *p = program_new(arena, &d, fx.prog->opts);
  ck_assert(sema_program(p, parse_source(source_new(arena, "t.dl", text, strlen(text)), arena, &d)));
  char *second = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&second, &len);
  ck_assert(exec_program(fx.runner, p, f));
  fclose(f);
  ck_assert_ptr_eq(fx.runner->jit, jit);
  ck_assert_int_eq(fx.runner->ntrains, 2);
  ck_assert_str_eq(first, second);
  program_free(p);
  diag_free(&d);
  arena_free(arena);
  free(first);
  free(second);
}
END_TEST

static Suite *exec_suite(void) {
  Suite *s = suite_create("exec");

  TCase *tc = tcase_create("format_value");
  tcase_add_test(tc, format_scalar);
  tcase_add_test(tc, format_short_vector);
  tcase_add_test(tc, format_long_vector);
  suite_add_tcase(s, tc);

  tc = tcase_create("print");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, print_and_show);
  tcase_add_test(tc, print_current_values);
  suite_add_tcase(s, tc);

  tc = tcase_create("emit");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, emit_grad_and_ir);
  tcase_add_test(tc, emit_without_loss);
  suite_add_tcase(s, tc);

  tc = tcase_create("train");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, train_result_decodes);
  tcase_add_test(tc, train_compile_outputs);
  tcase_add_test(tc, runner_outlives_programs);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(exec_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
