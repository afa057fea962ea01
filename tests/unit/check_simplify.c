/* check_simplify.c — unit tests for src/simplify.c (and ir_format, which
 * prints what simplify produces).
 *
 * Each rule is checked on its smallest example, by pointer where the result
 * is one definite node (hash-consing makes "the same formula" and "the same
 * pointer" one thing) and by value otherwise. Shapes get their own checks:
 * a vector expression that folds to a constant stays a vector, so that
 * `sum` of it still counts every element.
 *
 * The property that matters most is tested on random DAGs: simplification
 * never changes a value (within 1e-9, relative to the size of the numbers
 * involved) nor a shape. Points where the original computes a non-finite
 * or huge intermediate, divides by nearly zero, or sits on the boundary of
 * a comparison are skipped: there a legal rewrite (x - x = 0, a reordered
 * product) may change a value by rounding alone.
 */
#include "unit.h"

/* ---- small helpers */

static Node *c(double v) { return ir_const(fx.g, v); }
static Node *add(Node *a, Node *b) { return ir_binary(fx.g, OP_ADD, a, b); }
static Node *sub(Node *a, Node *b) { return ir_binary(fx.g, OP_SUB, a, b); }
static Node *mul(Node *a, Node *b) { return ir_binary(fx.g, OP_MUL, a, b); }
static Node *dvd(Node *a, Node *b) { return ir_binary(fx.g, OP_DIV, a, b); }
static Node *pw(Node *a, Node *b) { return ir_binary(fx.g, OP_POW, a, b); }
static Node *neg(Node *a) { return ir_unary(fx.g, OP_NEG, a); }
static Node *sum(Node *a) { return ir_unary(fx.g, OP_SUM, a); }
static Node *simp(Node *n) { return simplify_node(fx.g, n); }

static double five[5] = {0.5, -1.25, 2, 3.5, -0.75};

/* `simplify(n)` is `want` (the same node) and has n's shape. */
#define ASSERT_SIMPLIFIES_TO(n, want)                                                        \
  do {                                                                                       \
    Node *n_ = (n), *got_ = simp(n_), *want_ = (want);                                       \
    ck_assert_msg(got_ == want_, "simplify(%s) gave %s, want %s", fmt_a(n_), fmt_b(got_),    \
                  fmt_c(want_));                                                             \
    ck_assert(shape_eq(got_->shape, n_->shape));                                             \
  } while (0)

/* three buffers, so one message can show three formulas */
static const char *fmt_into(char *buf, const Node *n) {
  snprintf(buf, 512, "%s", formula(n));
  return buf;
}
static char fa[512], fb[512], fcb[512];
static const char *fmt_a(const Node *n) { return fmt_into(fa, n); }
static const char *fmt_b(const Node *n) { return fmt_into(fb, n); }
static const char *fmt_c(const Node *n) { return fmt_into(fcb, n); }

/* ---- rules */

START_TEST(constant_folding) {
  ASSERT_SIMPLIFIES_TO(add(c(2), c(3)), c(5));
  ASSERT_SIMPLIFIES_TO(mul(add(c(1), c(2)), ir_unary(fx.g, OP_SIN, c(0))), c(0));
  ASSERT_SIMPLIFIES_TO(pw(c(2), c(10)), c(1024));
  ASSERT_SIMPLIFIES_TO(ir_unary(fx.g, OP_SQRT, c(16)), c(4));
  ASSERT_SIMPLIFIES_TO(ir_binary(fx.g, OP_GT, c(3), c(2)), c(1));
  ASSERT_SIMPLIFIES_TO(ir_binary(fx.g, OP_MAX, c(-3), c(2)), c(2));
  ASSERT_SIMPLIFIES_TO(neg(c(2.5)), c(-2.5));
  ASSERT_SIMPLIFIES_TO(ir_unary(fx.g, OP_EXP, c(1)), c(exp(1)));
  ASSERT_SIMPLIFIES_TO(ir_where(fx.g, c(1), c(7), c(8)), c(7));
  ASSERT_SIMPLIFIES_TO(ir_where(fx.g, c(0), c(7), c(8)), c(8));
  /* a whole formula of constants */
  ASSERT_SIMPLIFIES_TO(dvd(sub(pw(c(3), c(2)), c(1)), mul(c(2), c(4))), c(1));
  /* a broadcast constant folds and stays a vector */
  Shape v5 = shape_vector(5);
  Node *r = simp(add(ir_broadcast(fx.g, c(1), v5), c(2)));
  ck_assert(ir_is_const(r, 3));
  ck_assert(shape_eq(r->shape, v5));
  /* folding is in double: 0.1 + 0.2 is not 0.3 */
  ASSERT_SIMPLIFIES_TO(add(c(0.1), c(0.2)), c(0.1 + 0.2));
}
END_TEST

START_TEST(neutral_elements) {
  Node *x = scalar_var("x", 0), *y = scalar_var("y", 1);
  ASSERT_SIMPLIFIES_TO(add(x, c(0)), x);
  ASSERT_SIMPLIFIES_TO(add(c(0), x), x);
  ASSERT_SIMPLIFIES_TO(sub(x, c(0)), x);
  ASSERT_SIMPLIFIES_TO(sub(c(0), x), neg(x));
  ASSERT_SIMPLIFIES_TO(mul(x, c(1)), x);
  ASSERT_SIMPLIFIES_TO(mul(c(1), x), x);
  ASSERT_SIMPLIFIES_TO(dvd(x, c(1)), x);
  ASSERT_SIMPLIFIES_TO(dvd(c(0), x), c(0));
  ASSERT_SIMPLIFIES_TO(dvd(x, c(-1)), neg(x));
  ASSERT_SIMPLIFIES_TO(mul(x, c(0)), c(0));
  ASSERT_SIMPLIFIES_TO(mul(c(0), x), c(0));
  ASSERT_SIMPLIFIES_TO(sub(x, x), c(0));
  ASSERT_SIMPLIFIES_TO(neg(neg(x)), x);
  ASSERT_SIMPLIFIES_TO(neg(neg(neg(x))), neg(x));
  ASSERT_SIMPLIFIES_TO(add(x, neg(y)), sub(x, y));
  ASSERT_SIMPLIFIES_TO(sub(x, neg(y)), add(x, y));
  ASSERT_SIMPLIFIES_TO(neg(sub(x, y)), sub(y, x));
  /* nested: ((x * 1) + 0) - 0 */
  ASSERT_SIMPLIFIES_TO(sub(add(mul(x, c(1)), c(0)), c(0)), x);
}
END_TEST

START_TEST(powers) {
  Node *x = scalar_var("x", 0);
  ASSERT_SIMPLIFIES_TO(pw(x, c(1)), x);
  ASSERT_SIMPLIFIES_TO(pw(x, c(0)), c(1));
  ASSERT_SIMPLIFIES_TO(mul(x, x), pw(x, c(2)));
  ASSERT_SIMPLIFIES_TO(mul(mul(x, x), x), pw(x, c(3)));
  ASSERT_SIMPLIFIES_TO(mul(x, pw(x, c(2))), pw(x, c(3)));
  ASSERT_SIMPLIFIES_TO(pw(pw(x, c(2)), c(3)), pw(x, c(6)));
  ASSERT_SIMPLIFIES_TO(add(x, x), mul(c(2), x));
  ASSERT_SIMPLIFIES_TO(mul(pw(x, c(2)), pw(x, c(-2))), c(1));
  /* a non-integer exponent is left alone */
  Node *sq = pw(x, c(0.5));
  ASSERT_SIMPLIFIES_TO(sq, sq);
}
END_TEST

/* Rules that fold a vector to a constant keep the vector's shape. */
START_TEST(shapes_kept) {
  Node *v = vec_data(five, 5, "v"), *s = scalar_var("s", 0);
  Shape v5 = shape_vector(5);
  Node *zeros = simp(mul(c(0), v));
  ck_assert(ir_is_const(zeros, 0));
  ck_assert(shape_eq(zeros->shape, v5));
  Node *diff0 = simp(sub(v, v));
  ck_assert(ir_is_const(diff0, 0));
  ck_assert(shape_eq(diff0->shape, v5));
  Node *ones = simp(pw(v, c(0)));
  ck_assert(ir_is_const(ones, 1));
  ck_assert(shape_eq(ones->shape, v5));
  /* sum(0 * v) is 0; the sum of a broadcast constant counts the elements */
  ck_assert_ptr_eq(simp(sum(mul(c(0), v))), c(0));
  Node *count = simp(sum(ir_broadcast(fx.g, c(1), v5)));
  ck_assert_ptr_eq(count, c(5));
  ck_assert_double_eq(eval_scalar(count, NULL, NULL, 0), 5);
  Node *sum_s = simp(sum(ir_broadcast(fx.g, s, v5)));
  double at = 1.75;
  ck_assert_double_eq(eval_scalar(sum_s, &s, &at, 1), 5 * 1.75);
  Node *mean_s = simp(ir_unary(fx.g, OP_MEAN, ir_broadcast(fx.g, s, v5)));
  ck_assert_ptr_eq(mean_s, s);
  /* sum(v - v + 2): the constant 2 counted five times */
  ck_assert_double_eq(eval_scalar(simp(sum(add(sub(v, v), c(2)))), NULL, NULL, 0), 10);
  /* a scalar times a vector that folds away: still a vector of zeros */
  Node *sv = simp(mul(s, mul(v, c(0))));
  ck_assert(shape_eq(sv->shape, v5));
  Tensor t = eval_tensor(sv, &s, &at, 1);
  for (int k = 0; k < 5; k++)
    ck_assert_double_eq(t.v[k], 0);
  free(t.v);
  /* where with equal branches, or a constant condition, keeps the shape */
  Node *w = simp(ir_where(fx.g, c(1), s, v));
  ck_assert(shape_eq(w->shape, v5));
  t = eval_tensor(w, &s, &at, 1);
  for (int k = 0; k < 5; k++)
    ck_assert_double_eq(t.v[k], 1.75);
  free(t.v);
}
END_TEST

/* The factors of a product, left to right. */
static void factors(Node *n, NodeList *out) {
  if (n->op == OP_MUL) {
    factors(n->args[0], out);
    factors(n->args[1], out);
  } else {
    nodelist_push(out, n);
  }
}

static void assert_normal_product(Node *n) {
  NodeList f = {0};
  factors(n, &f);
  for (int i = 0; i < f.n; i++) {
    if (i > 0)
      ck_assert_msg(f.items[i]->op != OP_CONST, "%s: a constant after another factor", formula(n));
    if (i > 0 && f.items[i]->shape.rank == 0)
      ck_assert_msg(f.items[i - 1]->shape.rank == 0, "%s: a scalar factor after a vector one",
                    formula(n));
  }
  nodelist_free(&f);
}

START_TEST(products_normalized) {
  Node *v = vec_data(five, 5, "v"), *w = vec_data(five, 5, "w");
  Node *s = scalar_var("s", 0), *t = scalar_var("t", 1);
  Node *vars[2] = {s, t};
  double at[2] = {1.5, -0.25};
  Node *cases[] = {
      mul(v, mul(s, c(3))),
      mul(mul(v, s), mul(w, mul(c(2), t))),
      mul(c(2), mul(c(3), s)),
      mul(neg(v), s),
      mul(mul(v, c(0.5)), mul(t, c(4))),
      mul(pw(v, c(2)), mul(s, v)),
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Node *r = simp(cases[i]);
    ck_assert(shape_eq(r->shape, cases[i]->shape));
    Node *core = r->op == OP_NEG ? r->args[0] : r;
    assert_normal_product(core);
    Tensor want = eval_tensor(cases[i], vars, at, 2), got = eval_tensor(r, vars, at, 2);
    for (int64_t k = 0; k < shape_numel(want.shape); k++)
      ck_assert_msg(close_to(got.v[k], want.v[k], 1e-15), "%s: element %lld is %g, want %g",
                    formula(r), (long long)k, got.v[k], want.v[k]);
    free(want.v);
    free(got.v);
  }
  /* constants multiply out, and a lone constant factor leads */
  ASSERT_SIMPLIFIES_TO(mul(c(2), mul(c(3), s)), mul(c(6), s));
  ASSERT_SIMPLIFIES_TO(mul(s, c(3)), mul(c(3), s));
  ASSERT_SIMPLIFIES_TO(mul(neg(s), t), neg(mul(s, t)));
  ASSERT_SIMPLIFIES_TO(mul(c(-1), s), neg(s));
}
END_TEST

/* sum(c * s * v) = c * s * sum(v): the scalar part leaves the loop. */
START_TEST(sum_of_product) {
  Node *v = vec_data(five, 5, "v");
  Node *s = scalar_var("s", 0);
  double at = -1.5;
  Node *e = sum(mul(mul(c(2), s), v));
  Node *r = simp(e);
  ck_assert_int_eq(r->shape.rank, 0);
  double total = 0;
  for (int k = 0; k < 5; k++)
    total += five[k];
  ck_assert(close_to(eval_scalar(r, &s, &at, 1), 2 * -1.5 * total, 1e-15));
  ck_assert(close_to(eval_scalar(r, &s, &at, 1), eval_scalar(e, &s, &at, 1), 1e-15));
  /* the sum that remains is over v alone */
  NodeList all = ir_topo(&r, 1);
  int nsums = 0;
  for (int k = 0; k < all.n; k++)
    if (all.items[k]->op == OP_SUM) {
      nsums++;
      ck_assert_msg(all.items[k]->args[0] == v, "%s: sums more than v", formula(r));
    }
  nodelist_free(&all);
  ck_assert_int_eq(nsums, 1);
  /* the same for mean, for a negated vector, and factors in any order */
  Node *m = ir_unary(fx.g, OP_MEAN, mul(v, mul(s, c(3))));
  ck_assert(close_to(eval_scalar(simp(m), &s, &at, 1), eval_scalar(m, &s, &at, 1), 1e-15));
  Node *nv = sum(neg(v));
  ck_assert(close_to(eval_scalar(simp(nv), NULL, NULL, 0), -total, 1e-15));
}
END_TEST

/* ---- printing */

START_TEST(format_precedence) {
  Node *a = scalar_var("a", 0), *b = scalar_var("b", 1), *cc = scalar_var("c", 2);
  Node *x = scalar_var("x", 3);
  ck_assert_str_eq(formula(mul(add(a, b), cc)), "(a + b) * c");
  ck_assert_str_eq(formula(add(a, mul(b, cc))), "a + b * c");
  ck_assert_str_eq(formula(sub(a, sub(b, cc))), "a - (b - c)");
  ck_assert_str_eq(formula(sub(sub(a, b), cc)), "a - b - c");
  ck_assert_str_eq(formula(dvd(a, mul(b, cc))), "a / (b * c)");
  ck_assert_str_eq(formula(dvd(mul(a, b), cc)), "a * b / c");
  ck_assert_str_eq(formula(neg(pw(x, c(2)))), "-x^2");
  ck_assert_str_eq(formula(pw(neg(x), c(2))), "(-x)^2");
  ck_assert_str_eq(formula(pw(c(2), pw(c(3), c(2)))), "2^3^2");
  ck_assert_str_eq(formula(pw(pw(c(2), c(3)), c(2))), "(2^3)^2");
  ck_assert_str_eq(formula(pw(x, c(-2))), "x^(-2)");
  ck_assert_str_eq(formula(pw(c(-2), x)), "(-2)^x");
  ck_assert_str_eq(formula(mul(c(-2), x)), "-2 * x");
  ck_assert_str_eq(formula(neg(neg(x))), "-(-x)");
  ck_assert_str_eq(formula(neg(mul(a, b))), "-(a * b)");
  ck_assert_str_eq(formula(add(ir_binary(fx.g, OP_GT, a, b), cc)), "(a > b) + c");
  ck_assert_str_eq(formula(ir_unary(fx.g, OP_SIN, add(a, b))), "sin(a + b)");
  ck_assert_str_eq(formula(ir_where(fx.g, ir_binary(fx.g, OP_GT, a, c(0)), a, c(0.5))),
                   "where(a > 0, a, 0.5)");
  ck_assert_str_eq(formula(ir_binary(fx.g, OP_MIN, a, b)), "min(a, b)");
  Node *v = vec_data(five, 5, "v");
  ck_assert_str_eq(formula(sum(mul(c(2), v))), "sum(2 * v)");
  ck_assert_str_eq(formula(ir_unary(fx.g, OP_MEAN, ir_broadcast(fx.g, a, shape_vector(5)))),
                   "mean(a)");
}
END_TEST

/* No leftover noise of differentiation in a printed formula. */
static void assert_readable(const char *f) {
  static const char *const noise[] = {"+ 0", "- 0", "* 1 ", "1 * ", "^1 ", "^0", "--",
                                      "+ -", "- -", "* 0", "0 * ", "(1)"};
  size_t len = strlen(f);
  for (size_t i = 0; i < sizeof noise / sizeof noise[0]; i++)
    ck_assert_msg(!strstr(f, noise[i]), "'%s' contains '%s'", f, noise[i]);
  ck_assert_msg(!(len >= 2 && strcmp(f + len - 2, "^1") == 0), "'%s' ends in ^1", f);
  ck_assert_msg(!(len >= 4 && strcmp(f + len - 4, " * 1") == 0), "'%s' ends in * 1", f);
}

/* The node of the n-th print statement's value. */
static Node *printed(int n) {
  for (Action *a = fx.prog->actions; a; a = a->next)
    if (a->kind == ACT_PRINT && n-- == 0)
      return a->items->node;
  ck_abort_msg("no such print statement");
  return NULL;
}

START_TEST(format_seed_derivative) {
  compile_text("fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
               "  deriv x = 1.5 * (5 * x^2 - 1)\n"
               "print(diff(P3(t), t))\n"
               "print(diff(0.5 * (5 * t^3 - 3 * t), t))\n"
               "print(diff(sin(t) * t^2 + exp(2 * t), t))\n");
  Node *t = scalar_var("t", 0);
  Node *hand = printed(0), *body = printed(1), *other = printed(2);
  /* the spec's own example */
  ck_assert_str_eq(formula(hand), "1.5 * (5 * t^2 - 1)");
  assert_readable(formula(body));
  assert_readable(formula(other));
  ck_assert_msg(strlen(formula(body)) <= 24, "'%s' is long for 1.5 * (5 * t^2 - 1)", formula(body));
  DlrtRng rng;
  dlrt_rng_seed(&rng, 7);
  for (int i = 0; i < 20; i++) {
    double v = rng_in(&rng, -3, 3);
    double want = 1.5 * (5 * v * v - 1);
    ck_assert(close_to(eval_scalar(hand, &t, &v, 1), want, 1e-14));
    ck_assert(close_to(eval_scalar(body, &t, &v, 1), want, 1e-14));
    ck_assert(close_to(eval_scalar(other, &t, &v, 1),
                       cos(v) * v * v + 2 * v * sin(v) + 2 * exp(2 * v), 1e-14));
  }
}
END_TEST

/* The seed's gradient prints like a hand derivation. */
START_TEST(format_seed_gradient) {
  compile_text("x = linspace(-pi, pi, 20)\n"
               "y = sin(x)\n"
               "param a = 0.0\n"
               "param b = -1.0\n"
               "loss = sum((a + b * x - y)^2)\n");
  for (int i = 0; i < 2; i++) {
    Node *g = simp(diff_node(fx.g, fx.prog->loss, fx.prog->params[i].node));
    assert_readable(formula(g));
    ck_assert_msg(strlen(formula(g)) < 40, "d loss / d %s: '%s'", fx.prog->params[i].name,
                  formula(g));
  }
}
END_TEST

/* ---- the property: values and shapes never change */

enum { NLEN = 4 };
#ifndef PROP_TRIALS
#define PROP_TRIALS 600
#endif

typedef struct Gen {
  DlrtRng rng;
  Node *vars[3];
  Node *data[2];
  NodeList pool;
} Gen;

static const Op gen_ops[] = {
    OP_ADD, OP_ADD, OP_SUB, OP_SUB, OP_MUL, OP_MUL, OP_MUL, OP_DIV, OP_NEG, OP_POW, OP_POW,
    OP_LT, OP_GT, OP_EQ, OP_WHERE, OP_SIN, OP_COS, OP_EXP, OP_LOG, OP_SQRT, OP_TANH,
    OP_SIGMOID, OP_ABS, OP_SIGN, OP_ATAN, OP_RELU, OP_SOFTPLUS, OP_MIN, OP_MAX, OP_SUM,
    OP_MEAN, OP_BROADCAST,
};
static const double gen_consts[] = {0, 1, -1, 2, 0.5, 3, -2};
static const double gen_exponents[] = {0, 1, 2, 3, -1, -2, 0.5};

static Node *pick(Gen *g) {
  int n = g->pool.n;
  int r = rng_int(&g->rng, 10);
  if (r < 3)
    return g->pool.items[n - 1];                 /* the newest: deep chains */
  if (r < 4)
    return ir_const(fx.g, gen_consts[rng_int(&g->rng, 7)]);
  return g->pool.items[rng_int(&g->rng, n)];
}

/* A random DAG over the vars, the data and small constants. */
static Node *random_expr(Gen *g) {
  g->pool.n = 0;
  for (int i = 0; i < 3; i++)
    nodelist_push(&g->pool, g->vars[i]);
  for (int i = 0; i < 2; i++)
    nodelist_push(&g->pool, g->data[i]);
  int nops = 2 + rng_int(&g->rng, 12);
  for (int k = 0; k < nops; k++) {
    Op op = gen_ops[rng_int(&g->rng, sizeof gen_ops / sizeof gen_ops[0])];
    Node *a = pick(g), *b = rng_int(&g->rng, 5) == 0 ? a : pick(g), *n;
    switch (op) {
    case OP_POW:
      if (rng_int(&g->rng, 3))
        b = ir_const(fx.g, gen_exponents[rng_int(&g->rng, 7)]);
      n = ir_binary(fx.g, op, a, b);
      break;
    case OP_WHERE:
      n = ir_where(fx.g, ir_binary(fx.g, OP_GT, a, pick(g)), b, pick(g));
      break;
    case OP_BROADCAST:
      n = a->shape.rank ? a : ir_broadcast(fx.g, a, shape_vector(NLEN));
      break;
    default:
      n = op_info[op].arity == 1 ? ir_unary(fx.g, op, a) : ir_binary(fx.g, op, a, b);
    }
    nodelist_push(&g->pool, n);
  }
  return g->pool.items[g->pool.n - 1];
}

/* Evaluates every node of root's DAG at the current point; false when the
 * point is one where rounding alone may decide a value (see the top). */
static bool well_conditioned(Node *root, const double *values, Node *const *vars, int nvars,
                             double *scale) {
  NodeList all = ir_topo(&root, 1);
  NodeMap index = {0};
  Tensor *vals = calloc((size_t)all.n, sizeof(Tensor));
  bool good = true;
  *scale = 1;
  for (int k = 0; k < all.n && good; k++) {
    Node *n = all.items[k];
    nodemap_put(&index, n, &vals[k]);
    vals[k] = eval_tensor(n, vars, values, nvars);
    int64_t m = shape_numel(n->shape);
    for (int64_t e = 0; e < m && good; e++) {
      double v = vals[k].v[e];
      good = isfinite(v) && fabs(v) < 1e6;
      *scale = fmax(*scale, fabs(v));
    }
    if (!good || n->nargs == 0 || n->op == OP_FNCALL)
      continue;
    Tensor *a = nodemap_get(&index, n->args[0]);
    Tensor *b = n->nargs > 1 ? nodemap_get(&index, n->args[1]) : NULL;
    int64_t ma = shape_numel(a->shape), mb = b ? shape_numel(b->shape) : 1;
    for (int64_t e = 0; e < m && good; e++) {
      double x = a->v[ma == 1 ? 0 : e], y = b ? b->v[mb == 1 ? 0 : e] : 0;
      switch (n->op) {
      case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
      case OP_MIN: case OP_MAX:
        good = x == y || fabs(x - y) > 1e-7 * fmax(1, fmax(fabs(x), fabs(y)));
        break;
      case OP_SIGN: case OP_ABS: case OP_RELU: good = x == 0 || fabs(x) > 1e-7; break;
      case OP_DIV: good = fabs(y) > 1e-3; break;
      case OP_LOG: case OP_SQRT: good = x == 0 || fabs(x) > 1e-7; break;
      case OP_POW: good = fabs(x) > 1e-3 || x == 0; break;
      case OP_WHERE: good = x == 0 || fabs(x) > 1e-7; break;
      default: break;
      }
    }
  }
  for (int k = 0; k < all.n; k++)
    free(vals[k].v);
  free(vals);
  nodemap_free(&index);
  nodelist_free(&all);
  return good;
}

static void gen_open(Gen *g, uint64_t seed) {
  dlrt_rng_seed(&g->rng, seed);
  g->vars[0] = scalar_var("a", 0);
  g->vars[1] = scalar_var("b", 1);
  g->vars[2] = scalar_var("c", 2);
  g->data[0] = vec_data(NULL, NLEN, "v");
  g->data[1] = vec_data(NULL, NLEN, "w");
  g->pool = (NodeList){0};
}

static void gen_point(Gen *g, double *values) {
  for (int i = 0; i < 3; i++)
    values[i] = rng_in(&g->rng, -2, 2);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < NLEN; k++)
      data_values(g->data[i])[k] = rng_in(&g->rng, -2, 2);
}

/* simplify(e) has e's shape and, at every well-conditioned point, e's
 * value. Returns the number of points compared. */
static int check_same_values(Gen *g, Node *e, int npoints, const char *what) {
  Node *s = simp(e);
  char sh_e[64], sh_s[64];
  ck_assert_msg(shape_eq(s->shape, e->shape), "%s: simplify(%s) = %s changed the shape %s to %s",
                what, fmt_a(e), fmt_b(s), shape_str(e->shape, sh_e), shape_str(s->shape, sh_s));
  int compared = 0;
  for (int p = 0; p < npoints; p++) {
    double values[3], scale;
    gen_point(g, values);
    if (!well_conditioned(e, values, g->vars, 3, &scale))
      continue;
    Tensor te = eval_tensor(e, g->vars, values, 3), ts = eval_tensor(s, g->vars, values, 3);
    for (int64_t k = 0; k < shape_numel(e->shape); k++)
      if (!(fabs(ts.v[k] - te.v[k]) <= 1e-9 * fmax(scale, fabs(te.v[k])))) {
        double got = ts.v[k], want = te.v[k];
        free(te.v);
        free(ts.v);
        ck_abort_msg("%s: simplify changed a value at a = %.17g, b = %.17g, c = %.17g "
                     "(element %lld): %.17g, was %.17g\n  before: %s\n  after:  %s",
                     what, values[0], values[1], values[2], (long long)k, got, want, fmt_a(e),
                     fmt_b(s));
      }
    free(te.v);
    free(ts.v);
    compared++;
  }
  return compared;
}

START_TEST(random_expressions_keep_values) {
  Gen g;
  gen_open(&g, 20240601);
  int compared = 0;
  for (int trial = 0; trial < PROP_TRIALS; trial++) {
    char what[64];
    snprintf(what, sizeof what, "random expression %d", trial);
    compared += check_same_values(&g, random_expr(&g), 4, what);
  }
  nodelist_free(&g.pool);
  /* the skips must leave most points compared, or the test tests nothing */
  ck_assert_msg(compared > 1200, "only %d points compared", compared);
}
END_TEST

/* The same for gradients, which are what simplify is for. */
START_TEST(random_gradients_keep_values) {
  Gen g;
  gen_open(&g, 777);
  int compared = 0;
  for (int trial = 0; trial < PROP_TRIALS / 2; trial++) {
    Node *e = random_expr(&g);
    Node *wrt[2] = {g.vars[0], g.data[0]}, *grads[2];
    diff_grads(fx.g, e, wrt, 2, grads);
    char what[64];
    for (int i = 0; i < 2; i++) {
      snprintf(what, sizeof what, "gradient %d of random expression %d", i, trial);
      compared += check_same_values(&g, grads[i], 3, what);
    }
  }
  nodelist_free(&g.pool);
  ck_assert_msg(compared > 600, "only %d points compared", compared);
}
END_TEST

/* A product of n factors built one at a time (as the gradient of a deep
 * chain is) simplifies in O(n): each product is flattened only so deep,
 * and a leading minus is looked for only so far down. Every product was
 * flattened whole and its factors compared pairwise: O(n^3), minutes here. */
START_TEST(long_product_chain) {
  enum { N = 10000 };
  Node *t = scalar_var("t", 0), *p = c(-2);
  for (int k = 0; k < N; k++)
    p = mul(p, add(c(1), mul(c(0.001), ir_unary(fx.g, OP_SIN, add(t, c(k))))));
  Node *out = add(c(1), p);
  unsigned before = fx.g->nnodes;
  Node *r = simp(out);
  ck_assert_msg(fx.g->nnodes - before < 40 * N, "%u nodes for %d factors", fx.g->nnodes - before, N);
  double at = 0.1;
  double want = eval_scalar(out, &t, &at, 1), got = eval_scalar(r, &t, &at, 1);
  ck_assert_msg(close_to(got, want, 1e-12), "%.17g, simplified %.17g", want, got);
}
END_TEST

static Suite *simplify_suite(void) {
  Suite *s = suite_create("simplify");

  TCase *tc = tcase_create("rules");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, constant_folding);
  tcase_add_test(tc, neutral_elements);
  tcase_add_test(tc, powers);
  tcase_add_test(tc, shapes_kept);
  suite_add_tcase(s, tc);

  tc = tcase_create("products");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, products_normalized);
  tcase_add_test(tc, sum_of_product);
  tcase_add_test(tc, long_product_chain);
  suite_add_tcase(s, tc);

  tc = tcase_create("format");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, format_precedence);
  tcase_add_test(tc, format_seed_derivative);
  tcase_add_test(tc, format_seed_gradient);
  suite_add_tcase(s, tc);

  tc = tcase_create("property");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, random_expressions_keep_values);
  tcase_add_test(tc, random_gradients_keep_values);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(simplify_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
