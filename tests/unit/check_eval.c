/* check_eval.c — unit tests for src/eval.c.
 *
 * The interpreter is the reference the rest of the compiler is compared
 * with (hoisted values, prints, `dlc check`), so its values are checked
 * against libm directly: in f64 to the last bit or two; in f32, every
 * result must be a float, and for + - * / sqrt exactly what float
 * arithmetic gives, for the other functions within one float ulp of the
 * double result. Then broadcasting, reductions, and the edge cases users
 * meet: where's untaken NaN, softplus's threshold, sigmoid far out, NaN
 * through relu, min and max, and the error for a free symbol.
 */
#include "unit.h"

#include <float.h>

static Node *c(double v) { return ir_const(fx.g, v); }

/* op(x) (or op(x, y)) evaluated at the given values. */
static double ev1(Op op, double x) {
  Node *a = scalar_var("x", 0);
  return eval_scalar(ir_unary(fx.g, op, a), &a, &x, 1);
}

static double ev2(Op op, double x, double y) {
  Node *v[2] = {scalar_var("x", 0), scalar_var("y", 1)};
  double at[2] = {x, y};
  return eval_scalar(ir_binary(fx.g, op, v[0], v[1]), v, at, 2);
}

/* The reference for each elementwise op, in double. */
static double reference(Op op, double x, double y) {
  switch (op) {
  case OP_ADD: return x + y;
  case OP_SUB: return x - y;
  case OP_MUL: return x * y;
  case OP_DIV: return x / y;
  case OP_POW: return pow(x, y);
  case OP_NEG: return -x;
  case OP_LT: return x < y;
  case OP_LE: return x <= y;
  case OP_GT: return x > y;
  case OP_GE: return x >= y;
  case OP_EQ: return x == y;
  case OP_NE: return x != y;
  case OP_SIN: return sin(x);
  case OP_COS: return cos(x);
  case OP_TAN: return tan(x);
  case OP_EXP: return exp(x);
  case OP_LOG: return log(x);
  case OP_SQRT: return sqrt(x);
  case OP_TANH: return tanh(x);
  case OP_SIGMOID: return 1 / (1 + exp(-x));
  case OP_ABS: return fabs(x);
  case OP_SIGN: return (x > 0) - (x < 0);
  case OP_LOG1P: return log1p(x);
  case OP_EXPM1: return expm1(x);
  case OP_ATAN: return atan(x);
  case OP_RELU: return x > 0 ? x : 0;
  case OP_SOFTPLUS: return x > 20 ? x : log1p(exp(x));
  case OP_MIN: return fmin(x, y);
  case OP_MAX: return fmax(x, y);
  default: ck_abort_msg("no reference for %s", op_info[op].name); return 0;
  }
}

typedef struct ElemCase {
  Op op;
  double lo, hi;                                 /* both arguments */
} ElemCase;

static const ElemCase elem_cases[] = {
    {OP_ADD, -10, 10}, {OP_SUB, -10, 10}, {OP_MUL, -10, 10}, {OP_DIV, 0.1, 10},
    {OP_POW, 0.1, 4},  {OP_NEG, -10, 10}, {OP_LT, -2, 2},    {OP_LE, -2, 2},
    {OP_GT, -2, 2},    {OP_GE, -2, 2},    {OP_EQ, -2, 2},    {OP_NE, -2, 2},
    {OP_SIN, -10, 10}, {OP_COS, -10, 10}, {OP_TAN, -1.5, 1.5}, {OP_EXP, -20, 20},
    {OP_LOG, 1e-3, 1e3}, {OP_SQRT, 0, 100}, {OP_TANH, -5, 5}, {OP_SIGMOID, -20, 20},
    {OP_ABS, -10, 10}, {OP_SIGN, -10, 10}, {OP_LOG1P, -0.99, 10}, {OP_EXPM1, -5, 5},
    {OP_ATAN, -10, 10}, {OP_RELU, -10, 10}, {OP_SOFTPLUS, -30, 30}, {OP_MIN, -10, 10},
    {OP_MAX, -10, 10},
};
enum { NELEM = sizeof elem_cases / sizeof elem_cases[0] };

static double ulp_f32(double v) {
  float f = (float)fabs(v);
  return (double)nextafterf(f, INFINITY) - (double)f;
}

static bool is_float(double v) { return isnan(v) || (double)(float)v == v; }

START_TEST(elementwise_f64) {
  const ElemCase *ec = &elem_cases[_i];
  DlrtRng rng;
  dlrt_rng_seed(&rng, 100 + (uint64_t)_i);
  for (int k = 0; k < 50; k++) {
    double x = rng_in(&rng, ec->lo, ec->hi), y = rng_in(&rng, ec->lo, ec->hi);
    if (k == 0)
      y = x;                                     /* a tie, for comparisons and min/max */
    double want = reference(ec->op, x, y);
    double got = op_info[ec->op].arity == 1 ? ev1(ec->op, x) : ev2(ec->op, x, y);
    ck_assert_msg(close_to(got, want, 4 * DBL_EPSILON), "%s(%.17g, %.17g) = %.17g, libm %.17g",
                  op_info[ec->op].name, x, y, got, want);
    ck_assert_msg(got == eval_scalar_op(ec->op, x, y, true), "eval_node and eval_scalar_op differ");
  }
}
END_TEST

START_TEST(elementwise_f32) {
  const ElemCase *ec = &elem_cases[_i];
  DlrtRng rng;
  dlrt_rng_seed(&rng, 200 + (uint64_t)_i);
  for (int k = 0; k < 50; k++) {
    /* the inputs as an f32 program holds them */
    float xf = (float)rng_in(&rng, ec->lo, ec->hi), yf = (float)rng_in(&rng, ec->lo, ec->hi);
    double got = op_info[ec->op].arity == 1 ? ev1(ec->op, xf) : ev2(ec->op, xf, yf);
    ck_assert_msg(is_float(got), "%s(%.9g, %.9g) = %.17g is not a float", op_info[ec->op].name,
                  xf, yf, got);
    volatile float x = xf, y = yf, exact;         /* float arithmetic where it is exact */
    switch (ec->op) {
    case OP_ADD: exact = x + y; break;
    case OP_SUB: exact = x - y; break;
    case OP_MUL: exact = x * y; break;
    case OP_DIV: exact = x / y; break;
    case OP_SQRT: exact = sqrtf(x); break;
    default: exact = NAN;
    }
    if (!isnan(exact)) {
      ck_assert_msg(got == (double)exact, "%s(%.9g, %.9g) = %.9g in f32, float arithmetic %.9g",
                    op_info[ec->op].name, xf, yf, got, (double)exact);
      continue;
    }
    double want = reference(ec->op, xf, yf);
    ck_assert_msg(fabs(got - want) <= ulp_f32(want), "%s(%.9g, %.9g) = %.9g in f32, libm %.17g",
                  op_info[ec->op].name, xf, yf, got, want);
  }
}
END_TEST

/* Constants and symbol values are rounded to f32 when they are used. */
START_TEST(f32_rounds_inputs) {
  ck_assert_double_eq(eval_scalar(c(0.1), NULL, NULL, 0), (double)0.1f);
  ck_assert_double_eq(eval_scalar(c(16777217), NULL, NULL, 0), 16777216);
  ck_assert_double_eq(eval_scalar(c(M_PI), NULL, NULL, 0), (double)(float)M_PI);
  Node *x = scalar_var("x", 0);
  double v = 0.1;
  ck_assert_double_eq(eval_scalar(x, &x, &v, 1), (double)0.1f);
  /* 0.1 + 0.2 in float is 0.3f, not the double 0.30000000000000004 */
  Node *s = ir_binary(fx.g, OP_ADD, c(0.1), c(0.2));
  ck_assert_double_eq(eval_scalar(s, NULL, NULL, 0), (double)(0.1f + 0.2f));
  /* past float's range: inf */
  ck_assert(isinf(eval_scalar(ir_unary(fx.g, OP_EXP, c(89)), NULL, NULL, 0)));
  ck_assert(isfinite(eval_scalar(ir_unary(fx.g, OP_EXP, c(88)), NULL, NULL, 0)));
  /* every element of a vector result is a float too */
  double vals[3] = {0.1, 0.2, 1.0 / 3};
  Node *d = vec_data(vals, 3, "d");
  Tensor t = eval_tensor(ir_binary(fx.g, OP_MUL, d, c(3)), NULL, NULL, 0);
  for (int k = 0; k < 3; k++)
    ck_assert(is_float(t.v[k]));
  free(t.v);
  ck_assert(is_float(eval_scalar(ir_unary(fx.g, OP_MEAN, d), NULL, NULL, 0)));
}
END_TEST

START_TEST(f64_keeps_doubles) {
  ck_assert_double_eq(eval_scalar(c(0.1), NULL, NULL, 0), 0.1);
  Node *s = ir_binary(fx.g, OP_ADD, c(0.1), c(0.2));
  ck_assert_double_eq(eval_scalar(s, NULL, NULL, 0), 0.1 + 0.2);
  ck_assert_double_eq(eval_scalar(c(16777217), NULL, NULL, 0), 16777217);
}
END_TEST

/* ---- shapes */

START_TEST(broadcasting) {
  double a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40};
  Node *va = vec_data(a, 4, "a"), *vb = vec_data(b, 4, "b"), *x = scalar_var("x", 0);
  double xv = 0.5;
  Tensor t = eval_tensor(ir_binary(fx.g, OP_ADD, x, va), &x, &xv, 1);
  for (int k = 0; k < 4; k++)
    ck_assert_double_eq(t.v[k], a[k] + 0.5);
  free(t.v);
  t = eval_tensor(ir_binary(fx.g, OP_SUB, va, x), &x, &xv, 1);
  for (int k = 0; k < 4; k++)
    ck_assert_double_eq(t.v[k], a[k] - 0.5);
  free(t.v);
  t = eval_tensor(ir_binary(fx.g, OP_MUL, va, vb), NULL, NULL, 0);
  for (int k = 0; k < 4; k++)
    ck_assert_double_eq(t.v[k], a[k] * b[k]);
  free(t.v);
  t = eval_tensor(ir_broadcast(fx.g, x, shape_vector(4)), &x, &xv, 1);
  for (int k = 0; k < 4; k++)
    ck_assert_double_eq(t.v[k], 0.5);
  free(t.v);
  /* a vector-shaped free symbol: the value is broadcast */
  Node *xs = ir_var(fx.g, "xs", shape_vector(4), NULL, 0);
  t = eval_tensor(ir_binary(fx.g, OP_MUL, xs, va), &xs, &xv, 1);
  for (int k = 0; k < 4; k++)
    ck_assert_double_eq(t.v[k], 0.5 * a[k]);
  free(t.v);
  /* where: a vector condition, a scalar branch */
  Node *w = ir_where(fx.g, ir_binary(fx.g, OP_GT, va, c(2.5)), x, vb);
  t = eval_tensor(w, &x, &xv, 1);
  ck_assert_double_eq(t.v[0], 10);
  ck_assert_double_eq(t.v[1], 20);
  ck_assert_double_eq(t.v[2], 0.5);
  ck_assert_double_eq(t.v[3], 0.5);
  free(t.v);
}
END_TEST

/* Rank 2 follows NumPy too: rows against a vector, a column against a row. */
START_TEST(broadcasting_matrix) {
  double m[6] = {1, 2, 3, 4, 5, 6}, col[2] = {100, 200}, row[3] = {10, 20, 30};
  Tensor tm = {(Shape){2, {2, 3}}, malloc(sizeof m)};
  memcpy(tm.v, m, sizeof m);
  Node *mat = ir_leaf(fx.g, OP_DATA, tm.shape, program_add_data(fx.prog, "m", tm), NULL);
  Tensor tc = {(Shape){2, {2, 1}}, malloc(sizeof col)};
  memcpy(tc.v, col, sizeof col);
  Node *column = ir_leaf(fx.g, OP_DATA, tc.shape, program_add_data(fx.prog, "col", tc), NULL);
  Node *r = vec_data(row, 3, "row");
  Tensor t = eval_tensor(ir_binary(fx.g, OP_ADD, mat, r), NULL, NULL, 0);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      ck_assert_double_eq(t.v[i * 3 + j], m[i * 3 + j] + row[j]);
  free(t.v);
  t = eval_tensor(ir_binary(fx.g, OP_ADD, column, r), NULL, NULL, 0);
  ck_assert_int_eq(shape_numel(t.shape), 6);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      ck_assert_double_eq(t.v[i * 3 + j], col[i] + row[j]);
  free(t.v);
  ck_assert_double_eq(eval_scalar(ir_unary(fx.g, OP_SUM, mat), NULL, NULL, 0), 21);
}
END_TEST

START_TEST(reductions) {
  double a[5] = {1, -2, 3.5, 4, 0.25};
  Node *v = vec_data(a, 5, "v");
  ck_assert_double_eq(eval_scalar(ir_unary(fx.g, OP_SUM, v), NULL, NULL, 0), 6.75);
  ck_assert_double_eq(eval_scalar(ir_unary(fx.g, OP_MEAN, v), NULL, NULL, 0), 1.35);
  /* of a broadcast scalar: n times it, and it */
  Node *x = scalar_var("x", 0);
  double xv = 1.5;
  Node *bx = ir_broadcast(fx.g, x, shape_vector(7));
  ck_assert_double_eq(eval_scalar(ir_unary(fx.g, OP_SUM, bx), &x, &xv, 1), 10.5);
  ck_assert_double_eq(eval_scalar(ir_unary(fx.g, OP_MEAN, bx), &x, &xv, 1), 1.5);
  /* of a scalar: itself */
  ck_assert_double_eq(eval_scalar(ir_unary(fx.g, OP_SUM, x), &x, &xv, 1), 1.5);
  /* a longer one, against a Kahan-free double sum */
  enum { N = 1000 };
  double big[N], total = 0;
  for (int k = 0; k < N; k++)
    total += big[k] = sin(k);
  ck_assert(close_to(eval_scalar(ir_unary(fx.g, OP_SUM, vec_data(big, N, "big")), NULL, NULL, 0),
                     total, 1e-12));
  /* NaN in, NaN out */
  double withnan[3] = {1, NAN, 2};
  ck_assert(isnan(eval_scalar(ir_unary(fx.g, OP_SUM, vec_data(withnan, 3, "n")), NULL, NULL, 0)));
}
END_TEST

/* ---- edge cases */

START_TEST(where_untaken_nan) {
  Node *x = scalar_var("x", 0);
  double neg = -1, pos = 4;
  Node *cond = ir_binary(fx.g, OP_GT, x, c(0));
  Node *w = ir_where(fx.g, cond, ir_unary(fx.g, OP_SQRT, x), c(7));
  ck_assert_double_eq(eval_scalar(w, &x, &neg, 1), 7);
  ck_assert_double_eq(eval_scalar(w, &x, &pos, 1), 2);
  Node *wl = ir_where(fx.g, cond, ir_unary(fx.g, OP_LOG, x), c(-1));
  ck_assert_double_eq(eval_scalar(wl, &x, &neg, 1), -1);
  double a[4] = {-1, 4, -9, 0};
  Node *v = vec_data(a, 4, "v");
  Tensor t = eval_tensor(ir_where(fx.g, ir_binary(fx.g, OP_GT, v, c(0)), ir_unary(fx.g, OP_SQRT, v),
                                  ir_binary(fx.g, OP_MUL, c(0), v)),
                         NULL, NULL, 0);
  ck_assert_double_eq(t.v[0], 0);
  ck_assert_double_eq(t.v[1], 2);
  ck_assert_double_eq(t.v[2], 0);
  ck_assert_double_eq(t.v[3], 0);
  free(t.v);
  /* the sum of it is finite too */
  ck_assert_double_eq(
      eval_scalar(ir_unary(fx.g, OP_SUM, ir_where(fx.g, ir_binary(fx.g, OP_GT, v, c(0)),
                                                  ir_unary(fx.g, OP_SQRT, v), c(0))),
                  NULL, NULL, 0),
      2);
}
END_TEST

START_TEST(softplus_threshold) {
  ck_assert_double_eq(ev1(OP_SOFTPLUS, 30), 30);
  ck_assert_double_eq(ev1(OP_SOFTPLUS, 20.5), 20.5);
  ck_assert_double_eq(ev1(OP_SOFTPLUS, 20), log1p(exp(20)));
  ck_assert_double_eq(ev1(OP_SOFTPLUS, 0), log(2));
  double tiny = ev1(OP_SOFTPLUS, -30);
  ck_assert(tiny > 0 && close_to(tiny, exp(-30), 1e-12));
  ck_assert_double_eq(ev1(OP_SOFTPLUS, 1000), 1000);          /* no overflow */
  ck_assert_double_eq(ev1(OP_SOFTPLUS, -1000), 0);
}
END_TEST

START_TEST(sigmoid_far_out) {
  ck_assert_double_eq(ev1(OP_SIGMOID, 0), 0.5);
  ck_assert_double_eq(ev1(OP_SIGMOID, 1000), 1);
  double lo = ev1(OP_SIGMOID, -1000);
  ck_assert(!isnan(lo));
  ck_assert_double_eq(lo, 0);
  ck_assert_double_eq(ev1(OP_SIGMOID, INFINITY), 1);
  ck_assert_double_eq(ev1(OP_SIGMOID, -INFINITY), 0);
  ck_assert(close_to(ev1(OP_SIGMOID, -30), exp(-30), 1e-12));
}
END_TEST

START_TEST(sigmoid_far_out_f32) {
  ck_assert_double_eq(ev1(OP_SIGMOID, 100), 1);
  double lo = ev1(OP_SIGMOID, -100);
  ck_assert(!isnan(lo) && lo >= 0 && lo < 1e-40);
  ck_assert(is_float(lo));
  ck_assert_double_eq(ev1(OP_SIGMOID, -1000), 0);
  ck_assert_double_eq(ev1(OP_SOFTPLUS, 25), 25);
}
END_TEST

START_TEST(nan_propagation) {
  ck_assert(isnan(ev1(OP_RELU, NAN)));
  ck_assert_double_eq(ev1(OP_RELU, -INFINITY), 0);
  ck_assert_double_eq(ev1(OP_RELU, INFINITY), INFINITY);
  ck_assert_double_eq(ev1(OP_RELU, -0.0), 0);
  ck_assert(isnan(ev2(OP_MIN, NAN, 1)));
  ck_assert(isnan(ev2(OP_MIN, 1, NAN)));
  ck_assert(isnan(ev2(OP_MAX, NAN, 1)));
  ck_assert(isnan(ev2(OP_MAX, 1, NAN)));
  ck_assert_double_eq(ev2(OP_MIN, -INFINITY, 1), -INFINITY);
  ck_assert_double_eq(ev2(OP_MAX, -INFINITY, 1), 1);
  ck_assert(isnan(ev1(OP_SIGN, NAN)));
  ck_assert_double_eq(ev1(OP_SIGN, 0), 0);
  ck_assert_double_eq(ev1(OP_SIGN, -3), -1);
  ck_assert(isnan(ev1(OP_ABS, NAN)));
  /* comparisons with NaN are false, != true */
  ck_assert_double_eq(ev2(OP_LT, NAN, 1), 0);
  ck_assert_double_eq(ev2(OP_GE, NAN, 1), 0);
  ck_assert_double_eq(ev2(OP_EQ, NAN, NAN), 0);
  ck_assert_double_eq(ev2(OP_NE, NAN, NAN), 1);
  /* arithmetic at its edges */
  ck_assert_double_eq(ev2(OP_DIV, 1, 0), INFINITY);
  ck_assert(isnan(ev2(OP_DIV, 0, 0)));
  ck_assert_double_eq(ev2(OP_POW, 0, 0), 1);
  ck_assert_double_eq(ev2(OP_POW, -2, 3), -8);
  ck_assert(isnan(ev2(OP_POW, -8, 1.0 / 3)));
  ck_assert(isnan(ev1(OP_SQRT, -1)));
  ck_assert(isnan(ev1(OP_LOG, -1)));
  ck_assert_double_eq(ev1(OP_LOG, 0), -INFINITY);
}
END_TEST

/* ---- leaves, calls and errors */

START_TEST(params_current_value) {
  compile_text("param a = 1.5\nparam v = linspace(0, 1, 3)\n");
  Node *a = fx.prog->params[param_index("a")].node, *v = fx.prog->params[param_index("v")].node;
  Node *e = ir_unary(fx.g, OP_SUM, ir_binary(fx.g, OP_MUL, a, v));
  ck_assert_double_eq(eval_scalar(e, NULL, NULL, 0), 1.5 * 1.5);
  fx.prog->params[param_index("a")].value.v[0] = -2;
  fx.prog->params[param_index("v")].value.v[2] = 3;
  ck_assert_double_eq(eval_scalar(e, NULL, NULL, 0), -2 * (0.5 + 3));
}
END_TEST

/* A call's value is its inlined body; its partials are not evaluated (here
 * one has a free symbol, which would be an error). */
START_TEST(fncall_is_its_body) {
  Fn f = {.name = "f", .arity = 1};
  Node *x = scalar_var("x", 0), *free_sym = scalar_var("nobody", 5);
  Node *body = ir_unary(fx.g, OP_EXP, x);
  Node *call = ir_fncall(fx.g, &f, &x, body, &free_sym, 1);
  double xv = 0.5;
  ck_assert_double_eq(eval_scalar(call, &x, &xv, 1), exp(0.5));
  ck_assert_double_eq(eval_scalar(ir_binary(fx.g, OP_MUL, call, c(2)), &x, &xv, 1), 2 * exp(0.5));
}
END_TEST

START_TEST(free_symbol_is_an_error) {
  Node *q = scalar_var("q", 0), *y = scalar_var("y", 1);
  Node *e = ir_binary(fx.g, OP_ADD, ir_unary(fx.g, OP_SIN, q), c(1));
  Tensor t = {0};
  char *err = NULL;
  ck_assert(!eval_node(fx.prog, e, NULL, NULL, 0, &t, &err));
  ck_assert_ptr_nonnull(err);
  ck_assert_msg(strstr(err, "'q'") != NULL, "message: %s", err);
  free(err);
  /* a binding for another symbol does not help */
  err = NULL;
  double yv = 1;
  ck_assert(!eval_node(fx.prog, e, &y, &yv, 1, &t, &err));
  ck_assert_ptr_nonnull(err);
  free(err);
  /* one symbol bound, one not, deep in a shared DAG */
  Node *sh = ir_binary(fx.g, OP_MUL, ir_binary(fx.g, OP_ADD, y, q), ir_binary(fx.g, OP_ADD, y, q));
  err = NULL;
  ck_assert(!eval_node(fx.prog, sh, &y, &yv, 1, &t, &err));
  ck_assert_msg(err && strstr(err, "'q'"), "message: %s", err ? err : "(none)");
  free(err);
  /* and bound, it evaluates */
  Node *both[2] = {q, y};
  double vals[2] = {2, 1};
  ck_assert_double_eq(eval_scalar(sh, both, vals, 2), 9);
}
END_TEST

/* The interpreter iterates: a very deep expression does not overflow the
 * C stack. */
START_TEST(deep_expression) {
  enum { DEPTH = 200000 };
  Node *x = scalar_var("x", 0), *e = x;
  for (int i = 0; i < DEPTH; i++)
    e = ir_binary(fx.g, OP_ADD, e, c(1));
  double xv = 0.5;
  ck_assert_double_eq(eval_scalar(e, &x, &xv, 1), DEPTH + 0.5);
}
END_TEST

/* A value that cannot be allocated is an error naming its shape, not a
 * crash: here one past MAX_ELEMENTS (sema never makes one; the guard is
 * the path a failed malloc takes), under a sum, so that the tensors
 * already computed are freed on the way out. */
START_TEST(no_memory_is_an_error) {
  Node *big = ir_broadcast(fx.g, ir_binary(fx.g, OP_ADD, scalar_var("x", 0), c(1)),
                           shape_matrix(100000, 100000));
  Node *x = scalar_var("x", 0);
  double xv = 1;
  Tensor t;
  char *err = NULL;
  ck_assert(!eval_node(fx.prog, ir_unary(fx.g, OP_SUM, big), &x, &xv, 1, &t, &err));
  ck_assert_msg(err && strstr(err, "out of memory") && strstr(err, "matrix[100000, 100000]"),
                "message: %s", err ? err : "(none)");
  free(err);
}
END_TEST

static Suite *eval_suite(void) {
  Suite *s = suite_create("eval");

  TCase *tc = tcase_create("elementwise");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_loop_test(tc, elementwise_f64, 0, NELEM);
  tcase_add_test(tc, f64_keeps_doubles);
  suite_add_tcase(s, tc);

  tc = tcase_create("f32");
  tcase_add_checked_fixture(tc, fx_setup_f32, fx_teardown);
  tcase_add_loop_test(tc, elementwise_f32, 0, NELEM);
  tcase_add_test(tc, f32_rounds_inputs);
  tcase_add_test(tc, sigmoid_far_out_f32);
  suite_add_tcase(s, tc);

  tc = tcase_create("shapes");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, broadcasting);
  tcase_add_test(tc, broadcasting_matrix);
  tcase_add_test(tc, reductions);
  suite_add_tcase(s, tc);

  tc = tcase_create("edge_cases");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, where_untaken_nan);
  tcase_add_test(tc, softplus_threshold);
  tcase_add_test(tc, sigmoid_far_out);
  tcase_add_test(tc, nan_propagation);
  suite_add_tcase(s, tc);

  tc = tcase_create("leaves_and_errors");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, params_current_value);
  tcase_add_test(tc, fncall_is_its_body);
  tcase_add_test(tc, free_symbol_is_an_error);
  tcase_add_test(tc, deep_expression);
  tcase_add_test(tc, no_memory_is_an_error);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(eval_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
