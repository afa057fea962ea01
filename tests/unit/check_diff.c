/* check_diff.c — unit tests for src/diff.c.
 *
 * micrograd's way: every derivative rule of ops.def is checked against
 * central finite differences, in f64, at random points of the op's domain
 * (seeded, so a failure reproduces). Each op is differentiated three ways:
 * all arguments scalar free symbols, all arguments vector data leaves, and
 * every mix of the two (a scalar broadcast against vectors must get the sum
 * of its contributions). The output is weighted by a random scalar or
 * vector, so the incoming adjoint is never just 1. Both the raw gradient
 * and its simplified form are compared, since training uses the latter.
 *
 * Then the properties a reverse-mode pass must have: adjoints accumulate
 * when a node is used twice, the chain rule composes, a zero gradient is a
 * constant of the target's shape, where's gradient never picks up the NaN
 * of the branch not taken ("double where"), and a fn's hand-written deriv
 * is what backward uses (driven through the real front end).
 *
 * A test walks ops.def and fails for any op that has no row in the table
 * below (or no dedicated test), so a new op cannot go in untested.
 */
#include "unit.h"

enum { NPOINTS = 24, NVEC = 20, MAXIN = 8 };

/* ---- finite differences */

/* The values eval_node binds to free symbols; Input.v points into it. */
typedef struct Env {
  Node *vars[MAXIN];
  double values[MAXIN];
  int nvars;
} Env;

/* An input of the function under test: a scalar VAR (its value in
 * Env.values) or a DATA/PARAM leaf (its elements in the program's tensor).
 * Either way `v` is the storage the finite differences perturb in place. */
typedef struct Input {
  Node *node;
  double *v;
  int n;
} Input;

static Input env_var(Env *env, const char *name, int index) {
  ck_assert_int_lt(env->nvars, MAXIN);
  Node *x = scalar_var(name, index);
  env->vars[env->nvars] = x;
  return (Input){x, &env->values[env->nvars++], 1};
}

static Input data_input(int n, const char *name) {
  Node *d = vec_data(NULL, n, name);
  return (Input){d, data_values(d), n};
}

static Input param_input(const char *name) {
  ParamInfo *pi = &fx.prog->params[param_index(name)];
  return (Input){pi->node, pi->value.v, (int)shape_numel(pi->value.shape)};
}

static double eval_env(Node *n, const Env *env) {
  return eval_scalar(n, env->vars, env->values, env->nvars);
}

/* d out / d *x by central differences, h = 1e-6 * max(1, |x|). */
static double central_diff(Node *out, double *x, const Env *env) {
  double x0 = *x, h = 1e-6 * fmax(1.0, fabs(x0));
  *x = x0 + h;
  double up = eval_env(out, env);
  *x = x0 - h;
  double down = eval_env(out, env);
  *x = x0;
  volatile double span = (x0 + h) - (x0 - h);   /* the step actually taken */
  return (up - down) / span;
}

/* Compares d out / d in[i] (raw, and simplified) with finite differences,
 * element by element. `what` names the case in failure messages. */
static void gradcheck(Node *out, const Input *in, int nin, const Env *env, double rtol,
                      const char *what) {
  Node *wrt[MAXIN] = {0}, *grads[MAXIN] = {0};
  for (int i = 0; i < nin; i++)
    wrt[i] = in[i].node;
  diff_grads(fx.g, out, wrt, nin, grads);
  for (int i = 0; i < nin; i++) {
    char want_sh[64], got_sh[64];
    ck_assert_msg(shape_eq(grads[i]->shape, wrt[i]->shape),
                  "%s: gradient %d has shape %s, its target %s", what, i,
                  shape_str(grads[i]->shape, got_sh), shape_str(wrt[i]->shape, want_sh));
    Node *simple = simplify_node(fx.g, grads[i]);
    ck_assert_msg(shape_eq(simple->shape, wrt[i]->shape),
                  "%s: simplified gradient %d has shape %s, its target %s", what, i,
                  shape_str(simple->shape, got_sh), shape_str(wrt[i]->shape, want_sh));
    Tensor raw = eval_tensor(grads[i], env->vars, env->values, env->nvars);
    Tensor simp = eval_tensor(simple, env->vars, env->values, env->nvars);
    for (int k = 0; k < in[i].n; k++) {
      double fd = central_diff(out, &in[i].v[k], env);
      double r = raw.v[k], s = simp.v[k];
      if (!close_to(r, fd, rtol) || !close_to(s, fd, rtol)) {
        free(raw.v);
        free(simp.v);
        ck_abort_msg("%s: d/d(input %d)[%d] at %.17g: raw %.17g, simplified %.17g, "
                     "finite differences %.17g (rtol %g)\n  gradient: %s",
                     what, i, k, in[i].v[k], r, s, fd, rtol, formula(simple));
      }
    }
    free(raw.v);
    free(simp.v);
  }
}

/* ---- the table: every op with a derivative rule, and its domain */

typedef enum { UNIFORM, SIGNED, BOOLEAN } DomKind;

typedef struct Dom {
  double lo, hi;
  DomKind kind;                                  /* SIGNED: |x| in [lo, hi]; BOOLEAN: 0 or 1 */
} Dom;

typedef struct OpCase {
  Op op;
  Dom dom[3];                                    /* one per argument */
  double rtol;
} OpCase;

#define ANY {-3, 3, UNIFORM}
#define R 1e-6

static const OpCase op_cases[] = {
    {OP_ADD, {ANY, ANY}, R},
    {OP_SUB, {ANY, ANY}, R},
    {OP_MUL, {ANY, ANY}, R},
    {OP_DIV, {ANY, {0.5, 3, SIGNED}}, R},
    {OP_NEG, {ANY}, R},
    {OP_POW, {{0.2, 3, UNIFORM}, {-2.5, 2.5, UNIFORM}}, R},
    {OP_LT, {ANY, ANY}, R},
    {OP_LE, {ANY, ANY}, R},
    {OP_GT, {ANY, ANY}, R},
    {OP_GE, {ANY, ANY}, R},
    {OP_EQ, {ANY, ANY}, R},
    {OP_NE, {ANY, ANY}, R},
    {OP_WHERE, {{0, 1, BOOLEAN}, ANY, ANY}, R},
    {OP_SIN, {{-5, 5, UNIFORM}}, R},
    {OP_COS, {{-5, 5, UNIFORM}}, R},
    {OP_TAN, {{-1.3, 1.3, UNIFORM}}, R},
    {OP_EXP, {ANY}, R},
    {OP_LOG, {{0.05, 10, UNIFORM}}, R},
    {OP_SQRT, {{0.05, 10, UNIFORM}}, R},
    {OP_TANH, {ANY}, R},
    {OP_SIGMOID, {{-8, 8, UNIFORM}}, R},
    {OP_ABS, {ANY}, R},
    {OP_SIGN, {ANY}, R},
    {OP_LOG1P, {{-0.9, 5, UNIFORM}}, R},
    {OP_EXPM1, {ANY}, R},
    {OP_ATAN, {{-5, 5, UNIFORM}}, R},
    {OP_RELU, {ANY}, R},
    {OP_SOFTPLUS, {{-30, 30, UNIFORM}}, R},    /* both sides of the threshold 20 */
    {OP_MIN, {ANY, ANY}, R},
    {OP_MAX, {ANY, ANY}, R},
};
enum { NCASES = sizeof op_cases / sizeof op_cases[0] };

#undef ANY
#undef R

/* Ops whose rule is tested by a dedicated test rather than the table. */
static const struct {
  Op op;
  const char *test;
} dedicated[] = {
    {OP_SUM, "reduce_sum"},
    {OP_MEAN, "reduce_mean"},
    {OP_BROADCAST, "broadcast_op"},
    {OP_FNCALL, "fncall_*"},
    {OP_MATMUL, "matrix_rules"},
    {OP_TRANSPOSE, "matrix_rules"},
    {OP_RSUM, "matrix_rules"},
    {OP_RMAX, "matrix_rules"},
    {OP_RMIN, "matrix_rules"},
    {OP_ARGMAX, "matrix_rules (no gradient)"},
    {OP_RESHAPE, "matrix_rules"},
    {OP_SLICE, "matrix_rules"},
    {OP_PAD, "matrix_rules"},
    {OP_NOGRAD, "matrix_rules"},
};

static double sample(DlrtRng *r, Dom d) {
  switch (d.kind) {
  case BOOLEAN: return (double)rng_int(r, 2);
  case SIGNED: return rng_in(r, d.lo, d.hi) * (rng_int(r, 2) ? 1 : -1);
  default: return rng_in(r, d.lo, d.hi);
  }
}

/* Whether finite differences are meaningful at x: away from kinks and
 * jumps, by a margin much wider than the step. */
static bool smooth_at(Op op, const double *x) {
  switch (op) {
  case OP_ABS: case OP_RELU: case OP_SIGN: return fabs(x[0]) > 1e-3;
  case OP_SOFTPLUS: return fabs(x[0] - 20) > 1e-3;   /* the threshold's tiny jump */
  case OP_MIN: case OP_MAX:
  case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
    return fabs(x[0] - x[1]) > 1e-3;
  default: return true;
  }
}

static const char *const arg_names[3] = {"a", "b", "c"};

/* Differentiates op(args) * weight and compares with finite differences.
 * Argument i is a scalar free symbol when bit i of scalar_args is set, else
 * a vector data leaf; the weight is a vector when `vector_weight`. */
static void check_rule(const OpCase *c, unsigned scalar_args, bool vector_weight, int npoints,
                       uint64_t seed) {
  int arity = op_info[c->op].arity;
  Env env = {0};
  Input in[3];
  Node *args[3];
  bool any_vector = vector_weight;
  for (int i = 0; i < arity; i++) {
    in[i] = scalar_args >> i & 1 ? env_var(&env, arg_names[i], i) : data_input(NVEC, arg_names[i]);
    args[i] = in[i].node;
    any_vector |= in[i].n > 1;
  }
  ck_assert_msg(!any_vector || vector_weight, "a vector argument needs a vector weight");
  Input w = vector_weight ? data_input(NVEC, "w") : env_var(&env, "w", 9);
  Node *f = ir_op(fx.g, c->op, args, arity);
  Node *out = ir_binary(fx.g, OP_MUL, f, w.node);
  if (vector_weight)
    out = ir_unary(fx.g, OP_SUM, out);

  DlrtRng rng;
  dlrt_rng_seed(&rng, seed);
  int nelem = any_vector ? NVEC : 1;
  for (int point = 0; point < npoints; point++) {
    bool smooth = false;
    for (int tries = 0; tries < 1000 && !smooth; tries++) {
      for (int i = 0; i < arity; i++)
        if (in[i].n == 1)
          in[i].v[0] = sample(&rng, c->dom[i]);
      smooth = true;
      for (int k = 0; k < nelem && smooth; k++) {
        double x[3];
        bool ok = false;
        for (int t = 0; t < 100 && !ok; t++) {
          for (int i = 0; i < arity; i++) {
            if (in[i].n > 1)
              in[i].v[k] = sample(&rng, c->dom[i]);
            x[i] = in[i].v[in[i].n > 1 ? k : 0];
          }
          ok = smooth_at(c->op, x);
        }
        smooth = ok;
      }
    }
    ck_assert(smooth);
    for (int k = 0; k < w.n; k++)
      w.v[k] = sample(&rng, (Dom){0.5, 2, SIGNED});
    char what[128];
    snprintf(what, sizeof what, "%s (scalar args mask %u, %s weight, point %d)",
             op_info[c->op].name, scalar_args, vector_weight ? "vector" : "scalar", point);
    gradcheck(out, in, arity, &env, c->rtol, what);
  }
}

START_TEST(rule_scalar) {
  const OpCase *c = &op_cases[_i];
  check_rule(c, 7, false, NPOINTS, 1000 + (uint64_t)_i);
}
END_TEST

START_TEST(rule_vector) {
  const OpCase *c = &op_cases[_i];
  check_rule(c, 0, true, 2, 2000 + (uint64_t)_i);
}
END_TEST

/* Every mix of scalar and vector arguments: a scalar's gradient is the sum
 * of its contributions over the vector. */
START_TEST(rule_broadcast) {
  const OpCase *c = &op_cases[_i];
  int arity = op_info[c->op].arity;
  for (unsigned mask = 1; mask < 1u << arity; mask++)
    check_rule(c, mask, true, 3, 3000 + 16 * (uint64_t)_i + mask);
}
END_TEST

START_TEST(table_covers_every_op) {
  bool in_table[OP_COUNT] = {0};
  for (int i = 0; i < NCASES; i++) {
    ck_assert_msg(!in_table[op_cases[i].op], "op %s is twice in the table",
                  op_info[op_cases[i].op].name);
    in_table[op_cases[i].op] = true;
    ck_assert_int_ge(op_info[op_cases[i].op].arity, 1);
    ck_assert_int_le(op_info[op_cases[i].op].arity, 3);
  }
  for (size_t i = 0; i < sizeof dedicated / sizeof dedicated[0]; i++)
    in_table[dedicated[i].op] = true;
  for (int op = 0; op < OP_COUNT; op++) {
    if (op_info[op].kind == K_LEAF)
      continue;
    ck_assert_msg(in_table[op], "op %s has no derivative test: add it to op_cases in %s",
                  op_info[op].name, __FILE__);
  }
}
END_TEST

/* ---- rules at their special points (torch's conventions) */

START_TEST(pow_special_points) {
  Node *a = scalar_var("a", 0), *b = scalar_var("b", 1);
  Node *vars[2] = {a, b};
  Node *p = ir_binary(fx.g, OP_POW, a, b);
  Node *da = diff_node(fx.g, p, a), *db = diff_node(fx.g, p, b);
  /* Base 0, exponent >= 0: d/db is 0, not 0 * log(0) = NaN. */
  double at[2] = {0, 2};
  ck_assert_double_eq(eval_scalar(db, vars, at, 2), 0);
  ck_assert_double_eq(eval_scalar(da, vars, at, 2), 0);
  at[1] = 1;
  ck_assert_double_eq(eval_scalar(da, vars, at, 2), 1);
  ck_assert_double_eq(eval_scalar(db, vars, at, 2), 0);
  at[1] = 0;
  ck_assert_double_eq(eval_scalar(db, vars, at, 2), 0);
  /* A negative base with an integer exponent: d/da is b * a^(b-1). */
  for (int k = 1; k <= 4; k++) {
    double v[2] = {-1.7, k};
    ck_assert(close_to(eval_scalar(da, vars, v, 2), k * pow(-1.7, k - 1), 1e-14));
    Env env = {{a, b}, {-1.7, k}, 2};
    ck_assert(close_to(eval_scalar(da, vars, v, 2), central_diff(p, &env.values[0], &env), 1e-6));
  }
}
END_TEST

START_TEST(kinks_and_ties) {
  Node *a = scalar_var("a", 0), *b = scalar_var("b", 1);
  Node *vars[2] = {a, b};
  double zero[2] = {0, 0}, tie[2] = {1.25, 1.25};
  /* relu'(0) = 0, abs'(0) = 0, sign' = 0, as torch */
  ck_assert_double_eq(eval_scalar(diff_node(fx.g, ir_unary(fx.g, OP_RELU, a), a), vars, zero, 2), 0);
  ck_assert_double_eq(eval_scalar(diff_node(fx.g, ir_unary(fx.g, OP_ABS, a), a), vars, zero, 2), 0);
  ck_assert_double_eq(eval_scalar(diff_node(fx.g, ir_unary(fx.g, OP_SIGN, a), a), vars, zero, 2), 0);
  /* min/max on a tie: half the gradient to each side */
  for (Op op = OP_MIN; op <= OP_MAX; op++) {
    Node *m = ir_binary(fx.g, op, a, b);
    ck_assert_double_eq(eval_scalar(diff_node(fx.g, m, a), vars, tie, 2), 0.5);
    ck_assert_double_eq(eval_scalar(diff_node(fx.g, m, b), vars, tie, 2), 0.5);
  }
  /* min(a, a) is a: the two halves add up */
  Node *mm = ir_binary(fx.g, OP_MIN, a, a);
  ck_assert_double_eq(eval_scalar(diff_node(fx.g, mm, a), vars, tie, 2), 1);
}
END_TEST

/* ---- reductions and broadcast */

START_TEST(reduce_sum) {
  Env env = {0};
  Input v = data_input(NVEC, "v");
  DlrtRng rng;
  dlrt_rng_seed(&rng, 41);
  for (int k = 0; k < NVEC; k++)
    v.v[k] = rng_in(&rng, -1, 1);
  /* sin(sum(v)): each element gets cos(sum(v)) */
  Node *s = ir_unary(fx.g, OP_SUM, v.node);
  Node *out = ir_unary(fx.g, OP_SIN, s);
  gradcheck(out, &v, 1, &env, 1e-6, "sin(sum(v))");
  Tensor g = eval_tensor(diff_node(fx.g, out, v.node), NULL, NULL, 0);
  double total = 0;
  for (int k = 0; k < NVEC; k++)
    total += v.v[k];
  for (int k = 0; k < NVEC; k++)
    ck_assert(close_to(g.v[k], cos(total), 1e-14));
  free(g.v);
  /* sum of a scalar is the scalar */
  Input x = env_var(&env, "x", 0);
  env.values[0] = 0.3;
  gradcheck(ir_unary(fx.g, OP_EXP, ir_unary(fx.g, OP_SUM, x.node)), &x, 1, &env, 1e-6, "exp(sum(x))");
  /* sum(v * v * w) */
  Input w = data_input(NVEC, "w");
  for (int k = 0; k < NVEC; k++)
    w.v[k] = rng_in(&rng, -2, 2);
  Node *vv = ir_binary(fx.g, OP_MUL, v.node, v.node);
  Input both[2] = {v, w};
  gradcheck(ir_unary(fx.g, OP_SUM, ir_binary(fx.g, OP_MUL, vv, w.node)), both, 2, &env, 1e-6,
            "sum(v * v * w)");
}
END_TEST

START_TEST(reduce_mean) {
  Env env = {0};
  Input v = data_input(NVEC, "v");
  DlrtRng rng;
  dlrt_rng_seed(&rng, 42);
  for (int k = 0; k < NVEC; k++)
    v.v[k] = rng_in(&rng, -1, 1);
  Node *m = ir_unary(fx.g, OP_MEAN, v.node);
  Node *out = ir_unary(fx.g, OP_SIN, m);
  gradcheck(out, &v, 1, &env, 1e-6, "sin(mean(v))");
  Tensor g = eval_tensor(diff_node(fx.g, out, v.node), NULL, NULL, 0);
  double mean = 0;
  for (int k = 0; k < NVEC; k++)
    mean += v.v[k] / NVEC;
  for (int k = 0; k < NVEC; k++)
    ck_assert(close_to(g.v[k], cos(mean) / NVEC, 1e-14));
  free(g.v);
  /* mean((v - mean(v))^2): v reaches the output along two paths */
  Node *dev = ir_binary(fx.g, OP_SUB, v.node, m);
  Node *var = ir_unary(fx.g, OP_MEAN, ir_binary(fx.g, OP_POW, dev, ir_const(fx.g, 2)));
  gradcheck(var, &v, 1, &env, 1e-6, "mean((v - mean(v))^2)");
}
END_TEST

START_TEST(broadcast_op) {
  Env env = {0};
  Input x = env_var(&env, "x", 0);
  Input w = data_input(NVEC, "w");
  DlrtRng rng;
  dlrt_rng_seed(&rng, 43);
  for (int k = 0; k < NVEC; k++)
    w.v[k] = rng_in(&rng, -2, 2);
  Node *bx = ir_broadcast(fx.g, x.node, shape_vector(NVEC));
  ck_assert_int_eq(bx->op, OP_BROADCAST);
  for (int point = 0; point < NPOINTS; point++) {
    env.values[0] = rng_in(&rng, -3, 3);
    /* sum(broadcast(x) * w): the scalar gets sum(w) */
    Node *out = ir_unary(fx.g, OP_SUM, ir_binary(fx.g, OP_MUL, bx, w.node));
    gradcheck(out, &x, 1, &env, 1e-6, "sum(broadcast(x) * w)");
    double sw = 0;
    for (int k = 0; k < NVEC; k++)
      sw += w.v[k];
    ck_assert(close_to(eval_env(diff_node(fx.g, out, x.node), &env), sw, 1e-13));
    /* sum(sin(broadcast(x)) * w) = sin(x) * sum(w) */
    Node *out2 = ir_unary(fx.g, OP_SUM, ir_binary(fx.g, OP_MUL, ir_unary(fx.g, OP_SIN, bx), w.node));
    gradcheck(out2, &x, 1, &env, 1e-6, "sum(sin(broadcast(x)) * w)");
    ck_assert(close_to(eval_env(diff_node(fx.g, out2, x.node), &env), cos(env.values[0]) * sw, 1e-13));
  }
}
END_TEST

/* A scalar param broadcast against a vector, through the front end: its
 * gradient is the sum of the contributions of every element. */
START_TEST(scalar_param_gets_the_sum) {
  compile_text("x = linspace(-1, 2, 30)\n"
               "param b = 0.7\n"
               "param c = -0.3\n"
               "loss = sum((b * x + c - sin(x))^2)\n");
  Node *loss = fx.prog->loss;
  Input in[2] = {param_input("b"), param_input("c")};
  Env env = {0};
  gradcheck(loss, in, 2, &env, 1e-6, "sum((b * x + c - sin(x))^2)");
  Node *grads[2], *wrt[2] = {in[0].node, in[1].node};
  diff_grads(fx.g, loss, wrt, 2, grads);
  double gb = 0, gc = 0, b = in[0].v[0], c = in[1].v[0];
  double xs[30];
  dlrt_linspace(xs, -1, 2, 30, 1);
  for (int k = 0; k < 30; k++) {
    double r = b * xs[k] + c - sin(xs[k]);
    gb += 2 * r * xs[k];
    gc += 2 * r;
  }
  ck_assert(close_to(eval_env(grads[0], &env), gb, 1e-12));
  ck_assert(close_to(eval_env(grads[1], &env), gc, 1e-12));
  ck_assert_int_eq(grads[0]->shape.rank, 0);
}
END_TEST

/* NumPy broadcasting lets a vector of length 1 stand against a longer one;
 * its gradient must keep its own shape (vector[1]), like any adjoint. */
START_TEST(length_one_vector_target) {
  double one[1] = {0.5}, five[5] = {1, 2, 3, 4, 5};
  Node *d1 = vec_data(one, 1, "d1"), *d5 = vec_data(five, 5, "d5");
  Node *out = ir_unary(fx.g, OP_SUM, ir_binary(fx.g, OP_MUL, d1, d5));
  ck_assert_int_eq(shape_numel(ir_binary(fx.g, OP_MUL, d1, d5)->shape), 5);
  Node *g = diff_node(fx.g, out, d1);
  char sh[64];
  ck_assert_msg(shape_eq(g->shape, d1->shape),
                "d sum(d1 * d5) / d d1 has shape %s, want vector[1]", shape_str(g->shape, sh));
  Tensor t = eval_tensor(g, NULL, NULL, 0);
  ck_assert_double_eq(t.v[0], 15);
  free(t.v);
}
END_TEST

/* ---- adjoints accumulate; the chain rule composes */

START_TEST(used_twice) {
  Env env = {0};
  Input x = env_var(&env, "x", 0);
  Node *xx = ir_binary(fx.g, OP_MUL, x.node, x.node);
  Node *sx = ir_unary(fx.g, OP_SIN, x.node);
  Node *xsx = ir_binary(fx.g, OP_MUL, x.node, sx);
  Node *u = sx;                                  /* u * u + u, u = sin(x) */
  Node *uuu = ir_binary(fx.g, OP_ADD, ir_binary(fx.g, OP_MUL, u, u), u);
  Node *d_xx = diff_node(fx.g, xx, x.node), *d_xsx = diff_node(fx.g, xsx, x.node),
       *d_uuu = diff_node(fx.g, uuu, x.node);
  DlrtRng rng;
  dlrt_rng_seed(&rng, 51);
  for (int point = 0; point < NPOINTS; point++) {
    double v = env.values[0] = rng_in(&rng, -4, 4);
    ck_assert(close_to(eval_env(d_xx, &env), 2 * v, 1e-15));
    ck_assert(close_to(eval_env(d_xsx, &env), sin(v) + v * cos(v), 1e-14));
    ck_assert(close_to(eval_env(d_uuu, &env), (2 * sin(v) + 1) * cos(v), 1e-14));
    gradcheck(xx, &x, 1, &env, 1e-6, "x * x");
    gradcheck(xsx, &x, 1, &env, 1e-6, "x * sin(x)");
    gradcheck(uuu, &x, 1, &env, 1e-6, "sin(x) * sin(x) + sin(x)");
  }
  /* assigning instead of adding would give x, not 2x */
  env.values[0] = 3;
  ck_assert_double_eq(eval_env(d_xx, &env), 6);
}
END_TEST

START_TEST(chain_three_deep) {
  Env env = {0};
  Input x = env_var(&env, "x", 0);
  Node *x2 = ir_binary(fx.g, OP_POW, x.node, ir_const(fx.g, 2));
  Node *f = ir_unary(fx.g, OP_EXP, ir_unary(fx.g, OP_SIN, x2));        /* exp(sin(x^2)) */
  Node *one = ir_const(fx.g, 1);
  Node *h = ir_unary(fx.g, OP_LOG,                                      /* log(1 + tanh(sqrt(x))) */
                     ir_binary(fx.g, OP_ADD, one, ir_unary(fx.g, OP_TANH, ir_unary(fx.g, OP_SQRT, x.node))));
  Node *df = diff_node(fx.g, f, x.node), *dh = diff_node(fx.g, h, x.node);
  DlrtRng rng;
  dlrt_rng_seed(&rng, 52);
  for (int point = 0; point < NPOINTS; point++) {
    double v = env.values[0] = rng_in(&rng, 0.1, 2.5);
    ck_assert(close_to(eval_env(df, &env), exp(sin(v * v)) * cos(v * v) * 2 * v, 1e-13));
    double t = tanh(sqrt(v));
    ck_assert(close_to(eval_env(dh, &env), (1 - t * t) / (2 * sqrt(v)) / (1 + t), 1e-13));
    gradcheck(f, &x, 1, &env, 1e-6, "exp(sin(x^2))");
    gradcheck(h, &x, 1, &env, 1e-6, "log(1 + tanh(sqrt(x)))");
  }
}
END_TEST

/* A target stops the walk: with respect to {u, x}, u = sin(x), the
 * gradient of u * x is x for u and u (the direct path only) for x. */
START_TEST(targets_stop_the_walk) {
  Env env = {0};
  Input x = env_var(&env, "x", 0);
  Node *u = ir_unary(fx.g, OP_SIN, x.node);
  Node *out = ir_binary(fx.g, OP_MUL, u, x.node);
  Node *wrt[2] = {u, x.node}, *grads[2];
  diff_grads(fx.g, out, wrt, 2, grads);
  env.values[0] = 0.8;
  ck_assert(close_to(eval_env(grads[0], &env), 0.8, 1e-15));
  ck_assert(close_to(eval_env(grads[1], &env), sin(0.8), 1e-15));
  /* and alone, x gets the total derivative */
  ck_assert(close_to(eval_env(diff_node(fx.g, out, x.node), &env), sin(0.8) + 0.8 * cos(0.8), 1e-15));
}
END_TEST

/* ---- zero gradients */

START_TEST(zero_gradient_has_target_shape) {
  Node *x = scalar_var("x", 0), *y = scalar_var("y", 1);
  double five[5] = {1, -2, 3, -4, 5};
  Node *v = vec_data(five, 5, "v"), *w = vec_data(five, 5, "w");
  /* scalar target: the constant 0 itself */
  ck_assert_ptr_eq(diff_node(fx.g, ir_unary(fx.g, OP_SIN, x), y), ir_const(fx.g, 0));
  /* vector target: 0 broadcast to vector[5] */
  Node *g = diff_node(fx.g, ir_unary(fx.g, OP_SUM, ir_binary(fx.g, OP_MUL, v, v)), w);
  ck_assert(ir_is_const(g, 0));
  ck_assert(shape_eq(g->shape, shape_vector(5)));
  /* dependence only through comparisons, sign or where's condition */
  Node *zero = ir_const(fx.g, 0);
  Node *gt = ir_binary(fx.g, OP_MUL, ir_binary(fx.g, OP_GT, x, zero), ir_const(fx.g, 3));
  ck_assert_ptr_eq(diff_node(fx.g, gt, x), zero);
  ck_assert_ptr_eq(diff_node(fx.g, ir_unary(fx.g, OP_SIGN, x), x), zero);
  Node *wh = ir_where(fx.g, ir_binary(fx.g, OP_GT, x, zero), ir_const(fx.g, 1), ir_const(fx.g, 2));
  ck_assert_ptr_eq(diff_node(fx.g, wh, x), zero);
  Node *vw = ir_unary(fx.g, OP_SUM, ir_where(fx.g, ir_binary(fx.g, OP_GT, v, zero), y, x));
  Node *gv = diff_node(fx.g, vw, v);
  ck_assert(ir_is_const(gv, 0));
  ck_assert(shape_eq(gv->shape, shape_vector(5)));
  /* the output itself as a target: 1 */
  ck_assert(ir_is_const(diff_node(fx.g, x, x), 1));
}
END_TEST

/* ---- where: the gradient never takes the NaN of the branch not taken */

static void assert_all_finite(const Tensor *t, const char *what) {
  for (int64_t k = 0; k < shape_numel(t->shape); k++)
    ck_assert_msg(isfinite(t->v[k]), "%s: element %lld is %g", what, (long long)k, t->v[k]);
}

START_TEST(double_where) {
  enum { N = 41 };
  double xs[N];
  for (int k = 0; k < N; k++)
    xs[k] = -2.05 + 0.1 * k;                      /* negatives and positives, no zero */
  Node *x = vec_data(xs, N, "x");
  Node *zero = ir_const(fx.g, 0);
  Node *cond = ir_binary(fx.g, OP_GT, x, zero);
  Node *w = ir_where(fx.g, cond, ir_unary(fx.g, OP_SQRT, x), ir_binary(fx.g, OP_MUL, zero, x));
  Node *out = ir_unary(fx.g, OP_SUM, w);
  Node *raw = diff_node(fx.g, out, x);
  Node *simple = simplify_node(fx.g, raw);
  Tensor tr = eval_tensor(raw, NULL, NULL, 0), ts = eval_tensor(simple, NULL, NULL, 0);
  assert_all_finite(&tr, "raw d sum(where(x > 0, sqrt(x), 0 * x)) / dx");
  assert_all_finite(&ts, "simplified d sum(where(x > 0, sqrt(x), 0 * x)) / dx");
  Env env = {0};
  double *v = data_values(x);
  for (int k = 0; k < N; k++) {
    double want = xs[k] > 0 ? 0.5 / sqrt(xs[k]) : 0;
    ck_assert(close_to(tr.v[k], want, 1e-14));
    ck_assert(close_to(ts.v[k], want, 1e-14));
    if (xs[k] > 0)
      ck_assert(close_to(tr.v[k], central_diff(out, &v[k], &env), 1e-6));
  }
  free(tr.v);
  free(ts.v);
}
END_TEST

/* Both branches NaN somewhere: sqrt(x) for x > 0, sqrt(-x) otherwise. The
 * adjoint of x is a sum of two masked terms; both stay finite. */
START_TEST(double_where_two_branches) {
  enum { N = 40 };
  Input x = data_input(N, "x");
  for (int k = 0; k < N; k++)
    x.v[k] = -1.95 + 0.1 * k;
  Node *zero = ir_const(fx.g, 0);
  Node *w = ir_where(fx.g, ir_binary(fx.g, OP_GT, x.node, zero), ir_unary(fx.g, OP_SQRT, x.node),
                     ir_unary(fx.g, OP_SQRT, ir_unary(fx.g, OP_NEG, x.node)));
  Node *out = ir_unary(fx.g, OP_SUM, ir_binary(fx.g, OP_MUL, w, w));
  Node *out2 = ir_unary(fx.g, OP_SUM, w);
  Env env = {0};
  gradcheck(out, &x, 1, &env, 1e-6, "sum(where(x > 0, sqrt(x), sqrt(-x))^2)");
  gradcheck(out2, &x, 1, &env, 1e-6, "sum(where(x > 0, sqrt(x), sqrt(-x)))");
}
END_TEST

/* The seed-like model of examples/where_nan.dl through the front end. */
START_TEST(double_where_front_end) {
  compile_text("x = linspace(-2, 4, 60)\n"
               "y = 0.2 + where(x > 0, 1.3 * sqrt(x), 0.4 * x)\n"
               "param b = 0.1\n"
               "param p = 1.0\n"
               "param q = 0.7\n"
               "loss = sum((b + where(x > 0, p * sqrt(x), q * log(-x + 0.5) * x) - y)^2)\n");
  Input in[3] = {param_input("b"), param_input("p"), param_input("q")};
  Env env = {0};
  gradcheck(fx.prog->loss, in, 3, &env, 1e-6, "where_nan model");
}
END_TEST

/* The branch not taken is a scalar that the where broadcasts: its masked
 * adjoint is summed back to a scalar before its rule multiplies it. With
 * t = -1, where(t > 0, sqrt(t), x * t) is x * t everywhere, so d/dt of its
 * sum is sum(x), and sqrt(-1) must not leak in. */
START_TEST(double_where_scalar_branch) {
  compile_text("x = linspace(-1, 2, 30)\n"
               "param t = -1.0\n"
               "loss = sum(where(t > 0, sqrt(t), x * t))\n");
  Node *t = fx.prog->params[param_index("t")].node;
  Node *g = diff_node(fx.g, fx.prog->loss, t);
  double want = 0, xs[30];
  dlrt_linspace(xs, -1, 2, 30, 1);
  for (int k = 0; k < 30; k++)
    want += xs[k];
  double raw = eval_scalar(g, NULL, NULL, 0);
  double simple = eval_scalar(simplify_node(fx.g, g), NULL, NULL, 0);
  ck_assert_msg(close_to(raw, want, 1e-12) && close_to(simple, want, 1e-12),
                "d/dt sum(where(t > 0, sqrt(t), x * t)) at t = -1: raw %g, simplified %g, want %g"
                "\n  gradient: %s",
                raw, simple, want, formula(simplify_node(fx.g, g)));
}
END_TEST

/* The untaken branch holds a reduction: the mask reaches sqrt through
 * sum's broadcast. With t = -1 the loss is t^2, so d/dt is -2. */
START_TEST(double_where_through_sum) {
  compile_text("x = linspace(0.5, 2, 30)\n"
               "param t = -1.0\n"
               "loss = where(t > 0, sum(sqrt(x * t)), t^2)\n");
  Node *t = fx.prog->params[param_index("t")].node;
  Node *g = diff_node(fx.g, fx.prog->loss, t);
  double raw = eval_scalar(g, NULL, NULL, 0);
  double simple = eval_scalar(simplify_node(fx.g, g), NULL, NULL, 0);
  ck_assert_msg(raw == -2 && simple == -2,
                "d/dt where(t > 0, sum(sqrt(x * t)), t^2) at t = -1: raw %g, simplified %g, "
                "want -2\n  gradient: %s",
                raw, simple, formula(simplify_node(fx.g, g)));
}
END_TEST

/* ---- fn calls: hand-written derivs, through the real front end */

/* The node of the n-th print statement's (first) value. */
static Node *printed(int n) {
  for (Action *a = fx.prog->actions; a; a = a->next)
    if (a->kind == ACT_PRINT && n-- == 0) {
      for (PrintItem *it = a->items; it; it = it->next)
        if (it->node)
          return it->node;
    }
  ck_abort_msg("no print statement with a value");
  return NULL;
}

static Node *grad_of(Node *out, const char *param) {
  return diff_node(fx.g, out, fx.prog->params[param_index(param)].node);
}

/* The matrix ops and the built-ins made of them, on params of random
 * shapes (the shapes come from the seed), each printed expression's
 * gradient with respect to every param against finite differences. */
START_TEST(matrix_rules) {
  static const char *const exprs[] = {
      "sum(sin(A @ B))",                          /* MATMUL, both gradients */
      "sum(A @ v * w)",                           /* matrix @ vector */
      "sum(cos(v @ B))",                          /* vector @ matrix */
      "sum(A' * A' * 0.5)",                       /* TRANSPOSE */
      "sum(exp(sum(A, axis = 0))) + sum(sin(mean(A, axis = 1)))",    /* RSUM */
      "sum(max(A * A, axis = 1)) + sum(min(A, axis = 0))",           /* RMAX, RMIN */
      "max(A) + min(v)",
      "sum(A[1, 2] * A[:, 1]) + sum(A[0] * A[0]) + sum(A[0:2, 1:3]^2)",   /* SLICE, PAD */
      "sum(stack(v, v * v) @ concat(B[:, 0:1], B[:, 1:2])')",
      "sum(concat(v, v * v, axis = 0) * concat(v * v, [1, 2], v, axis = 0)[0:2 * len(v)])",
      "sum(softmax(A, axis = 1) * C)",            /* NOGRAD inside logsumexp */
      "sum(log_softmax(A, axis = 0) * C) + logsumexp(v)",
      "-mean(sum(onehot(labels, 4) * log_softmax(A @ B, axis = 1), axis = 1))",
      "sum((A - mean(A, axis = 0))^2) + sum(A * w2)", /* row broadcast against a matrix */
      "sum(tanh(A @ B + w4) * stack(argmax(C, axis = 1)) @ B')",
  };
  for (int seed = 1; seed <= 3; seed++) {
    DlrtRng rng;
    dlrt_rng_seed(&rng, (uint64_t)seed);
    int r = 3 + rng_int(&rng, 3), k = 3 + rng_int(&rng, 3);
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "param A = randn(%d, %d, seed = %d)\n"
                     "param B = randn(%d, 4, seed = %d)\n"
                     "param v = randn(%d, seed = %d)\n"
                     "w = randn(%d, seed = %d)\n"
                     "w4 = randn(4, seed = 7)\n"
                     "w2 = randn(%d, 1, seed = %d)\n"
                     "C = randn(%d, %d, seed = %d)\n"
                     "labels = linspace(0, 3, %d) * 0 + 2\n",
                     r, k, seed, k, seed + 10, k, seed + 20, r, seed + 30, r, seed + 40, r, k,
                     seed + 50, r);
    for (size_t e = 0; e < sizeof exprs / sizeof *exprs; e++)
      n += snprintf(text + n, sizeof text - (size_t)n, "print(%s)\n", exprs[e]);
    compile_text(text);
    Input in[3] = {param_input("A"), param_input("B"), param_input("v")};
    Env env = {0};
    for (size_t e = 0; e < sizeof exprs / sizeof *exprs; e++) {
      char what[160];
      snprintf(what, sizeof what, "%s (A: %d x %d)", exprs[e], r, k);
      gradcheck(printed((int)e), in, 3, &env, 1e-6, what);
    }
    fx_teardown();
    fixture_open(true);
  }
}
END_TEST

START_TEST(fncall_deriv_and_body) {
  compile_text("fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
               "  deriv x = 1.5 * (5 * x^2 - 1)\n"
               "fn Q3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
               "x = linspace(-pi, pi, 50)\n"
               "y = sin(x)\n"
               "param a = 0.1\n"
               "param b = -0.9\n"
               "param c = 0.05\n"
               "param d = 0.3\n"
               "print(sum((a + b * P3(c + d * x) - y)^2))\n"
               "print(sum((a + b * Q3(c + d * x) - y)^2))\n");
  Node *with_deriv = printed(0), *from_body = printed(1);
  Input in[4] = {param_input("a"), param_input("b"), param_input("c"), param_input("d")};
  Env env = {0};
  gradcheck(with_deriv, in, 4, &env, 1e-6, "P3 (deriv x)");
  gradcheck(from_body, in, 4, &env, 1e-6, "Q3 (no deriv)");
  bool has_call = false;
  NodeList all = ir_topo(&with_deriv, 1);
  for (int k = 0; k < all.n; k++)
    has_call |= all.items[k]->op == OP_FNCALL;
  nodelist_free(&all);
  ck_assert_msg(has_call, "the P3 loss has no FNCALL node");
  for (int i = 0; i < 4; i++) {
    const char *name = fx.prog->params[i].name;
    double gp = eval_scalar(grad_of(with_deriv, name), NULL, NULL, 0);
    double gq = eval_scalar(grad_of(from_body, name), NULL, NULL, 0);
    ck_assert_msg(close_to(gp, gq, 1e-12), "d/d%s: with deriv %g, from the body %g", name, gp, gq);
  }
}
END_TEST

/* Backward uses the hand-written deriv, not the body: a deliberately wrong
 * deriv shows through. */
START_TEST(fncall_uses_the_deriv) {
  compile_text("fn cube(x) = x^3\n"
               "  deriv x = 7\n"
               "param a = 0.5\n"
               "print(cube(a))\n"
               "print(cube(2 * a))\n");
  ck_assert_double_eq(eval_scalar(grad_of(printed(0), "a"), NULL, NULL, 0), 7);
  ck_assert_double_eq(eval_scalar(grad_of(printed(1), "a"), NULL, NULL, 0), 14);
  ck_assert_double_eq(eval_scalar(printed(0), NULL, NULL, 0), 0.125);
}
END_TEST

/* Several arguments, a deriv that uses `value`, one argument left to the
 * compiler, scalar params broadcast against vector arguments. */
START_TEST(fncall_multiarg_value) {
  compile_text("fn wave(t, w, k) = exp(-k * t) * sin(w * t)\n"
               "  deriv w = t * exp(-k * t) * cos(w * t)\n"
               "  deriv k = -t * value\n"
               "t = linspace(0, 3, 40)\n"
               "param A = 1.2\n"
               "param w = 1.7\n"
               "param k = 0.2\n"
               "param t0 = 0.1\n"
               "print(sum((A * wave(t - t0, w, k) - sin(t))^2))\n");
  Input in[4] = {param_input("A"), param_input("w"), param_input("k"), param_input("t0")};
  Env env = {0};
  gradcheck(printed(0), in, 4, &env, 1e-6, "wave(t - t0, w, k)");
}
END_TEST

/* A fn body may name a param defined above it (it is inlined where it is
 * called): the gradient must flow to that param too, not only to the
 * arguments. */
START_TEST(fncall_body_uses_param) {
  compile_text("param k = 2.0\n"
               "fn f(x) = k * x^2\n"
               "x = linspace(-1, 1, 10)\n"
               "param a = 0.5\n"
               "print(sum(f(a * x)))\n");
  Input in[2] = {param_input("k"), param_input("a")};
  Env env = {0};
  gradcheck(printed(0), in, 2, &env, 1e-6, "sum(f(a * x)), f(x) = k * x^2");
}
END_TEST

/* A call whose argument is a call, at the top level. */
START_TEST(fncall_composed) {
  compile_text("fn sq(x) = x^2\n"
               "  deriv x = 2 * x\n"
               "fn lin(x, y) = x * y + sin(x)\n"
               "t = linspace(-1, 1, 25)\n"
               "param a = 0.8\n"
               "param b = -1.3\n"
               "print(sum(sq(lin(a * t, b))) + sq(b))\n");
  Input in[2] = {param_input("a"), param_input("b")};
  Env env = {0};
  gradcheck(printed(0), in, 2, &env, 1e-6, "sum(sq(lin(a * t, b))) + sq(b)");
}
END_TEST

/* A fn whose body calls another fn on its own arguments. */
START_TEST(fncall_nested) {
  compile_text("fn sq(x) = x^2\n"
               "  deriv x = 2 * x\n"
               "fn h(x, y) = sq(sin(x)) * y + x\n"
               "fn unused(x, y) = 3 * x\n"
               "t = linspace(-1, 1, 25)\n"
               "param a = 0.8\n"
               "param b = -1.3\n"
               "print(sum(h(a * t, b)) + unused(a, b))\n");
  Input in[2] = {param_input("a"), param_input("b")};
  Env env = {0};
  gradcheck(printed(0), in, 2, &env, 1e-6, "sum(h(a * t, b)) + unused(a, b)");
}
END_TEST

/* ---- size: linear in the DAG */

/* f_k = sin(f_{k-1}) + sin(f_{k-1}) under a where: each adjoint is a sum
 * of a masked sum with itself, a DAG of k nodes that is 2^k as a tree.
 * Keeping the masks outermost looks at each part once (it walked the
 * tree: 40 levels never finished), and the derivative is right. */
START_TEST(masked_shared_sums) {
  enum { LEVELS = 40 };
  Node *t = scalar_var("t", 0), *f = t;
  for (int k = 0; k < LEVELS; k++) {
    Node *s = ir_unary(fx.g, OP_SIN, f);
    f = ir_binary(fx.g, OP_ADD, s, s);
  }
  Node *out = ir_where(fx.g, ir_binary(fx.g, OP_GT, t, ir_const(fx.g, 0)), f, ir_const(fx.g, 0));
  unsigned before = fx.g->nnodes;
  Node *g = diff_node(fx.g, out, t);
  ck_assert_msg(fx.g->nnodes - before < 30 * LEVELS, "%u nodes for %d levels",
                fx.g->nnodes - before, LEVELS);
  double at = 0.3, v = at, dv = 1;                /* forward mode, by hand */
  for (int k = 0; k < LEVELS; k++) {
    dv *= 2 * cos(v);
    v = 2 * sin(v);
  }
  double got = eval_scalar(g, &t, &at, 1), simple = eval_scalar(simplify_node(fx.g, g), &t, &at, 1);
  ck_assert_msg(close_to(got, dv, 1e-9) && close_to(simple, dv, 1e-9),
                "d/dt at 0.3: raw %.17g, simplified %.17g, want %.17g", got, simple, dv);
}
END_TEST

/* A graph at its limit stops a differentiation early (the caller reports
 * it) instead of growing on. */
START_TEST(stops_at_the_graph_limit) {
  Node *t = scalar_var("t", 0), *f = t;
  for (int k = 0; k < 200; k++)
    f = ir_unary(fx.g, OP_SIN, ir_binary(fx.g, OP_MUL, f, f));
  fx.g->max_nodes = fx.g->nnodes + 50;
  Node *g = diff_node(fx.g, f, t);
  ck_assert_ptr_nonnull(g);
  ck_assert(graph_full(fx.g));
  ck_assert_msg(fx.g->nnodes < fx.g->max_nodes + 20, "%u nodes past a limit of %u",
                fx.g->nnodes, fx.g->max_nodes);
}
END_TEST

static Suite *diff_suite(void) {
  Suite *s = suite_create("diff");

  TCase *tc = tcase_create("rules");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_loop_test(tc, rule_scalar, 0, NCASES);
  tcase_add_loop_test(tc, rule_vector, 0, NCASES);
  tcase_add_loop_test(tc, rule_broadcast, 0, NCASES);
  tcase_add_test(tc, table_covers_every_op);
  tcase_add_test(tc, pow_special_points);
  tcase_add_test(tc, kinks_and_ties);
  suite_add_tcase(s, tc);

  tc = tcase_create("reduce_broadcast");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, reduce_sum);
  tcase_add_test(tc, reduce_mean);
  tcase_add_test(tc, broadcast_op);
  tcase_add_test(tc, scalar_param_gets_the_sum);
  tcase_add_test(tc, length_one_vector_target);
  suite_add_tcase(s, tc);

  tc = tcase_create("accumulate");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, used_twice);
  tcase_add_test(tc, chain_three_deep);
  tcase_add_test(tc, targets_stop_the_walk);
  suite_add_tcase(s, tc);

  tc = tcase_create("zero");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, zero_gradient_has_target_shape);
  suite_add_tcase(s, tc);

  tc = tcase_create("where");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, double_where);
  tcase_add_test(tc, double_where_two_branches);
  tcase_add_test(tc, double_where_front_end);
  tcase_add_test(tc, double_where_scalar_branch);
  tcase_add_test(tc, double_where_through_sum);
  suite_add_tcase(s, tc);

  tc = tcase_create("fncall");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, fncall_deriv_and_body);
  tcase_add_test(tc, matrix_rules);
  tcase_add_test(tc, fncall_uses_the_deriv);
  tcase_add_test(tc, fncall_multiarg_value);
  tcase_add_test(tc, fncall_body_uses_param);
  tcase_add_test(tc, fncall_composed);
  tcase_add_test(tc, fncall_nested);
  suite_add_tcase(s, tc);

  tc = tcase_create("size");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, masked_shared_sums);
  tcase_add_test(tc, stops_at_the_graph_limit);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(diff_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
