/* check_codegen.c — unit tests for src/codegen.c (through jit.c and
 * exec.c, which run what it emits).
 *
 * The compiled training loop is compared with an independent computation
 * written out here: each step's loss and gradients from the interpreter
 * (eval_node on diff_grads' results), and the optimizers' update rules as
 * torch.optim writes them (SGD with and without momentum, Adam, RMSprop).
 * In f64 the params after a few steps, and every logged loss, agree to
 * 1e-9. Then every op of ops.def goes through the JIT once, in a loss whose
 * logged value and first update are compared with the interpreter's; the
 * NaN stop (the step it returns, the params from before it); log_every;
 * f32 results that are floats; -O0 against -O2; any thread count against
 * one thread, bit for bit; and the text of
 * `dlc emit llvm` for the seed (a dl_train function, vectorized).
 */
#include "unit.h"

#include <stdio.h>

static void teardown(void) {
  /* The JIT is the program's, created by the first train. */
  fx_teardown();
}

static void setup_f64_O0(void) {
  fixture_open(true);
  fx.prog->opts.opt_level = 0;
}

/* ---- running */

/* Runs the program's actions; *out gets what they printed (caller frees). */
static bool run(char **out) {
  size_t len = 0;
  FILE *f = open_memstream(out, &len);
  ck_assert_ptr_nonnull(f);
  bool ok = exec_program(fx.runner, fx.prog, f);
  fclose(f);
  return ok;
}

/* Runs one train action directly (no diagnostics printed). */
static bool run_train(const Action *a, char **out) {
  size_t len = 0;
  FILE *f = open_memstream(out, &len);
  ck_assert_ptr_nonnull(f);
  bool ok = exec_train(fx.runner, fx.prog, a, f);
  fclose(f);
  return ok;
}

/* Parses the log lines "STEP LOSS"; returns how many there are. */
static int parse_log(const char *text, int64_t *steps, double *losses, int max) {
  int n = 0;
  const char *p = text;
  while (*p) {
    char *end;
    long long t = strtoll(p, &end, 10);
    ck_assert_msg(end != p && *end == ' ', "not a log line: '%.40s'", p);
    double v = strtod(end + 1, &end);
    ck_assert_msg(*end == '\n', "not a log line: '%.40s'", p);
    ck_assert_int_lt(n, max);
    steps[n] = t;
    losses[n] = v;
    n++;
    p = end + 1;
  }
  return n;
}

/* ---- the reference: interpreter gradients and torch.optim's rules */

enum { MAXP = 8, MAXSTEPS = 64 };

typedef struct Ref {
  int np;
  double *value[MAXP];                           /* params after the steps */
  double loss[MAXSTEPS];                         /* the loss of each step, before its update */
  int64_t done;                                  /* steps done (< steps: stopped at a non-finite one) */
} Ref;

static void ref_free(Ref *r) {
  for (int i = 0; i < r->np; i++)
    free(r->value[i]);
}

static bool all_finite(const Tensor *t) {
  for (int64_t k = 0; k < shape_numel(t->shape); k++)
    if (!isfinite(t->v[k]))
      return false;
  return true;
}

/* Runs `steps` steps of a's optimizer on the program's params in the
 * interpreter, and puts the params back as they were. Stops, like the
 * compiled loop, at a step whose loss or gradient is not finite. */
static Ref reference(const Action *a, int64_t steps) {
  Program *p = fx.prog;
  int np = p->nparams;
  ck_assert_int_le(np, MAXP);
  ck_assert_int_le(steps, MAXSTEPS);
  Ref r = {.np = np};
  Node *wrt[MAXP], *grads[MAXP];
  double *keep[MAXP], *s1[MAXP], *s2[MAXP];
  for (int i = 0; i < np; i++) {
    wrt[i] = p->params[i].node;
    size_t n = (size_t)shape_numel(p->params[i].value.shape);
    keep[i] = malloc(n * sizeof(double));
    memcpy(keep[i], p->params[i].value.v, n * sizeof(double));
    s1[i] = calloc(n, sizeof(double));
    s2[i] = calloc(n, sizeof(double));
  }
  diff_grads(fx.g, a->loss, wrt, np, grads);
  const Optimizer *o = &a->opt;
  r.done = steps;
  for (int64_t t = 0; t < steps; t++) {
    Tensor loss = eval_tensor(a->loss, NULL, NULL, 0);
    r.loss[t] = loss.v[0];
    bool finite = isfinite(loss.v[0]);
    free(loss.v);
    Tensor g[MAXP];
    for (int i = 0; i < np; i++) {
      g[i] = eval_tensor(grads[i], NULL, NULL, 0);
      finite &= all_finite(&g[i]);
    }
    if (!finite) {
      for (int i = 0; i < np; i++)
        free(g[i].v);
      r.done = t;
      break;
    }
    /* All gradients first, then the updates. */
    for (int i = 0; i < np; i++) {
      double *pv = p->params[i].value.v;
      for (int64_t k = 0; k < shape_numel(g[i].shape); k++) {
        double gk = g[i].v[k];
        switch (o->kind) {
        case OPT_SGD:
          if (o->momentum != 0) {
            /* torch: buf = grad on the first step, then buf = momentum * buf + grad */
            s1[i][k] = t == 0 ? gk : o->momentum * s1[i][k] + gk;
            gk = s1[i][k];
          }
          pv[k] -= o->lr * gk;
          break;
        case OPT_ADAM: {
          s1[i][k] = o->beta1 * s1[i][k] + (1 - o->beta1) * gk;
          s2[i][k] = o->beta2 * s2[i][k] + (1 - o->beta2) * gk * gk;
          double bc1 = 1 - pow(o->beta1, (double)(t + 1));
          double bc2 = 1 - pow(o->beta2, (double)(t + 1));
          double step_size = o->lr / bc1;
          double denom = sqrt(s2[i][k]) / sqrt(bc2) + o->eps;
          pv[k] -= step_size * s1[i][k] / denom;
          break;
        }
        case OPT_RMSPROP: {
          s1[i][k] = o->alpha * s1[i][k] + (1 - o->alpha) * gk * gk;
          double avg = sqrt(s1[i][k]) + o->eps;
          pv[k] -= o->lr * gk / avg;
          break;
        }
        }
      }
      free(g[i].v);
    }
  }
  for (int i = 0; i < np; i++) {
    size_t n = (size_t)shape_numel(p->params[i].value.shape);
    r.value[i] = malloc(n * sizeof(double));
    memcpy(r.value[i], p->params[i].value.v, n * sizeof(double));
    memcpy(p->params[i].value.v, keep[i], n * sizeof(double));
    free(keep[i]);
    free(s1[i]);
    free(s2[i]);
  }
  return r;
}

static void expect_params(const Ref *r, double rtol, const char *what) {
  for (int i = 0; i < r->np; i++) {
    const ParamInfo *pi = &fx.prog->params[i];
    for (int64_t k = 0; k < shape_numel(pi->value.shape); k++)
      ck_assert_msg(close_to(pi->value.v[k], r->value[i][k], rtol),
                    "%s: %s[%lld] = %.17g, the reference gives %.17g", what, pi->name,
                    (long long)k, pi->value.v[k], r->value[i][k]);
  }
}

/* ---- training against the reference */

typedef struct Model {
  const char *name;
  const char *text;                              /* ends with a train(...) with log_every = 1 */
} Model;

static const Model models[] = {
    {"seed, sgd",
     "fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
     "  deriv x = 1.5 * (5 * x^2 - 1)\n"
     "x = linspace(-pi, pi, 200)\n"
     "y = sin(x)\n"
     "param a = 0.0\n"
     "param b = -1.0\n"
     "param c = 0.0\n"
     "param d = 0.3\n"
     "y_pred = a + b * P3(c + d * x)\n"
     "loss = sum((y_pred - y)^2)\n"
     "train(steps = 3, optimizer = sgd(lr = 1e-4), log_every = 1)\n"},
    {"vector param, adam",
     "x = linspace(-1, 1, 37)\n"
     "y = 2 * x^2 - 1\n"
     "param w = linspace(0.1, 0.4, 37)\n"
     "param b = 0.2\n"
     "loss = mean((w * x + b - y)^2) + 0.01 * sum(w^2)\n"
     "train(steps = 3, optimizer = adam(lr = 0.05), log_every = 1)\n"},
    {"param-dependent mean, rmsprop",
     "x = linspace(0, 2, 30)\n"
     "param a = 1.5\n"
     "param c = -0.3\n"
     "loss = sum((a * x + c - mean(tanh(a * x + c)))^2 * exp(c * x)) + (a - 1)^2\n"
     "train(steps = 3, optimizer = rmsprop(lr = 0.01), log_every = 1)\n"},
    {"fn with deriv and a param in its body, sgd momentum",
     "param k = 0.7\n"
     "fn f(u) = k * tanh(u)\n"
     "  deriv u = k * (1 - (value / k)^2)\n"
     "x = linspace(-2, 2, 40)\n"
     "y = sin(x)\n"
     "param a = 0.9\n"
     "loss = sum((f(a * x) - y)^2)\n"
     "train(steps = 3, optimizer = sgd(lr = 0.01, momentum = 0.9), log_every = 1)\n"},
    {"vector gradient after a mean, sgd momentum",
     "param w = linspace(-0.5, 0.5, 12)\n"
     "x = linspace(0, 1, 12)\n"
     "loss = sum((w * x - mean(w * x))^2) + sum((w - 1)^2)\n"
     "train(steps = 3, optimizer = sgd(lr = 0.1, momentum = 0.5), log_every = 1)\n"},
    {"two lengths, where, adam with its options",
     "x = linspace(-1, 1, 9)\n"
     "u = linspace(0, 3, 21)\n"
     "param a = 0.4\n"
     "param v = fill(9, 0.3)\n"
     "loss = sum(where(a * x > 0, (a * x - 0.2)^2, v * x^2)) + mean(softplus(a * u - 1))\n"
     "train(steps = 3, optimizer = adam(lr = 0.02, beta1 = 0.8, beta2 = 0.99, eps = 1e-6), "
     "log_every = 1)\n"},
    {"vector params, rmsprop; an unused param",
     "x = linspace(-1, 1, 10)\n"
     "param w = linspace(1, 2, 10)\n"
     "param unused = ones(3)\n"
     "param v = fill(10, 2)\n"
     "loss = sum((w * x - sin(x))^2) + sum(v) + mean(v^2)\n"
     "train(steps = 3, optimizer = rmsprop(lr = 0.05), log_every = 1)\n"},
    {"scalars only, rmsprop with its options",
     "param a = 2\n"
     "param b = -1\n"
     "loss = (a * b - 3)^2 + exp(0.1 * a) + b^4\n"
     "train(steps = 3, optimizer = rmsprop(lr = 0.05, alpha = 0.9, eps = 1e-4), log_every = 1)\n"},
};
enum { NMODELS = sizeof models / sizeof models[0] };

START_TEST(train_matches_reference) {
  const Model *m = &models[_i];
  compile_text(m->text);
  Action *a = train_action();
  Ref ref = reference(a, a->steps);
  ck_assert_int_eq(ref.done, a->steps);
  char *out = NULL;
  bool ok = run(&out);
  ck_assert_msg(ok, "%s: training failed", m->name);
  int64_t steps[MAXSTEPS];
  double losses[MAXSTEPS];
  int n = parse_log(out, steps, losses, MAXSTEPS);
  ck_assert_int_eq(n, a->steps);
  for (int t = 0; t < n; t++) {
    ck_assert_int_eq(steps[t], t);
    ck_assert_msg(close_to(losses[t], ref.loss[t], 1e-9),
                  "%s: the loss logged at step %d is %.17g, the reference's %.17g", m->name, t,
                  losses[t], ref.loss[t]);
  }
  expect_params(&ref, 1e-9, m->name);
  free(out);
  ref_free(&ref);
}
END_TEST

/* Params carry over from one train to the next: two trains of 2 and 1
 * steps of plain sgd are three steps. */
START_TEST(trains_continue) {
  compile_text("x = linspace(-1, 1, 20)\n"
               "param a = 0.5\n"
               "param w = fill(20, 0.1)\n"
               "loss = sum((a * x + w - x^2)^2)\n"
               "train(steps = 2, optimizer = sgd(lr = 0.01))\n"
               "train(steps = 1, optimizer = sgd(lr = 0.01))\n");
  Action three = *train_action();
  three.steps = 3;
  Ref ref = reference(&three, 3);
  char *out = NULL;
  ck_assert(run(&out));
  ck_assert_str_eq(out, "");                     /* no log_every: no log lines */
  expect_params(&ref, 1e-9, "2 + 1 steps");
  free(out);
  ref_free(&ref);
}
END_TEST

/* ---- every op through the JIT */

/* The loss for op: sum((E - y)^2) where E applies op to a * x. NULL for
 * the ops a program cannot write. */
static const char *op_expr(Op op, char *buf, size_t size) {
  const OpInfo *o = &op_info[op];
  switch (o->kind) {
  case K_LEAF:
    return NULL;
  case K_INFIX:
    snprintf(buf, size, "((a * x) %s x2)", o->spelling);
    return buf;
  case K_PREFIX:
    snprintf(buf, size, "%s(a * x)", o->spelling);
    return buf;
  case K_REDUCE:
    snprintf(buf, size, "%s(a * x)", o->spelling);
    return buf;
  case K_AXIS:
  case K_CALL:
    break;
  }
  /* The matrix ops, on the 37 x 2 matrix M of columns a * x and x2. */
  switch (op) {
  case OP_MATMUL: snprintf(buf, size, "(M @ linspace(0.5, 1.5, 2))"); return buf;
  case OP_TRANSPOSE: snprintf(buf, size, "sum(M' * 0.5, axis = 0)"); return buf;
  case OP_RSUM: snprintf(buf, size, "sum(M, axis = 1)"); return buf;
  case OP_RMAX: snprintf(buf, size, "max(M, axis = 1) + max(M, axis = 0)[1]"); return buf;
  case OP_RMIN: snprintf(buf, size, "min(M, axis = 1) + min(M, axis = 0)[0]"); return buf;
  case OP_RESHAPE: case OP_SLICE: case OP_PAD:
    snprintf(buf, size, "(M[:, 0] + M[3, 1] + concat(M[0:20, 1], M[20:37, 0], axis = 0)[0])"); return buf;
  case OP_NOGRAD: snprintf(buf, size, "logsumexp(M, axis = 1) - log_softmax(M, axis = 1)[:, 1]"); return buf;
  case OP_ARGMAX: return NULL;                   /* no loss may train through it (sema) */
  default: break;
  }
  if (op == OP_BROADCAST)
    return NULL;                                 /* implicit: scalar and vector */
  if (op == OP_FNCALL)
    snprintf(buf, size, "f(a * x)");
  else if (op == OP_WHERE)
    snprintf(buf, size, "where(a * x > 0.8, a * x, x2 * a)");
  else if (o->arity == 1)
    snprintf(buf, size, "%s(a * x)", o->spelling);
  else
    snprintf(buf, size, "%s(a * x, x2)", o->spelling);
  return buf;
}

START_TEST(every_op) {
  Op op = (Op)_i;
  char e[128], text[1024];
  if (!op_expr(op, e, sizeof e)) {
    ck_assert(op_info[op].kind == K_LEAF || op == OP_BROADCAST || op == OP_ARGMAX);
    return;
  }
  /* a * x in (0.07, 1.33): inside every op's domain (log, sqrt, tan). x2
   * equals a * x exactly where x > 1, so comparisons meet ties. */
  snprintf(text, sizeof text,
           "fn f(u) = u^3 - sin(u)\n"
           "x = linspace(0.1, 1.9, 37)\n"
           "x2 = where(x > 1, 0.7 * x, linspace(1.5, 0.2, 37))\n"
           "y = cos(x)\n"
           "param a = 0.7\n"
           "M = stack(a * x, x2)\n"
           "loss = sum((%s - y)^2)\n"
           "train(steps = 1, optimizer = sgd(lr = 1e-3), log_every = 1)\n",
           e);
  compile_text(text);
  Action *a = train_action();
  Ref ref = reference(a, 1);
  char *out = NULL;
  ck_assert_msg(run(&out), "%s: training failed", op_info[op].name);
  int64_t steps[2];
  double losses[2];
  ck_assert_int_eq(parse_log(out, steps, losses, 2), 1);
  ck_assert_msg(close_to(losses[0], ref.loss[0], 1e-12),
                "%s: compiled loss %.17g, interpreter %.17g (loss = sum((%s - y)^2))",
                op_info[op].name, losses[0], ref.loss[0], e);
  ck_assert_msg(close_to(fx.prog->params[0].value.v[0], ref.value[0][0], 1e-12),
                "%s: a after one step %.17g, the reference gives %.17g (loss = sum((%s - y)^2))",
                op_info[op].name, fx.prog->params[0].value.v[0], ref.value[0][0], e);
  free(out);
  ref_free(&ref);
}
END_TEST

/* Constant exponents are compiled specially (repeated multiplication for
 * whole ones up to 16, division for negative ones, sqrt for 0.5): each
 * against the interpreter's pow, with its gradient. */
START_TEST(constant_powers) {
  static const char *const exps[] = {"0", "1", "2", "3", "-1", "-2", "-3", "16", "-16",
                                     "17", "0.5", "-0.5", "2.5", "1 / 3"};
  for (size_t k = 0; k < sizeof exps / sizeof exps[0]; k++) {
    char text[512];
    snprintf(text, sizeof text,
             "x = linspace(0.2, 1.3, 21)\n"
             "param a = 0.9\n"
             "loss = sum(((a * x)^(%s) - x)^2)\n"
             "train(steps = 1, optimizer = sgd(lr = 1e-4), log_every = 1)\n",
             exps[k]);
    compile_text(text);
    Action *a = train_action();
    Ref ref = reference(a, 1);
    char *out = NULL;
    ck_assert(run(&out));
    int64_t steps[2];
    double losses[2];
    ck_assert_int_eq(parse_log(out, steps, losses, 2), 1);
    ck_assert_msg(close_to(losses[0], ref.loss[0], 1e-12), "x^(%s): compiled %.17g, interpreter %.17g",
                  exps[k], losses[0], ref.loss[0]);
    ck_assert_msg(close_to(fx.prog->params[0].value.v[0], ref.value[0][0], 1e-12),
                  "x^(%s): a after one step %.17g, the reference gives %.17g", exps[k],
                  fx.prog->params[0].value.v[0], ref.value[0][0]);
    free(out);
    ref_free(&ref);
    teardown();
    fixture_open(true);
  }
}
END_TEST

/* ---- the NaN stop */

/* sqrt(a) with a going negative: a = 1 -> 0.5 -> 0.5 - 0.25 * 2 / sqrt(0.5)
 * < 0, so step 2's loss is NaN. The call returns 2 and a keeps the value
 * from after step 1. */
static void check_nan_stop(const char *text, const char *what) {
  compile_text(text);
  Action *a = train_action();
  Ref ref = reference(a, a->steps);
  ck_assert_int_eq(ref.done, 2);
  char *out = NULL;
  bool ok = run_train(a, &out);
  ck_assert_msg(!ok, "%s: training did not stop", what);
  ck_assert_int_eq(fx.diags.nerrors, 1);
  ck_assert_msg(strstr(fx.diags.items[0].msg, "training stopped at step 2"), "%s: '%s'", what,
                fx.diags.items[0].msg);
  expect_params(&ref, 1e-12, what);
  double want = 1 - 0.5 - 0.25 * 2 / sqrt(0.5);
  ck_assert_msg(close_to(fx.prog->params[0].value.v[0], want, 1e-12), "%s: %.17g", what,
                fx.prog->params[0].value.v[0]);
  /* Logged: steps 0, 1 and the failing step 2 (its loss is computed before
   * the check), then nothing. */
  int64_t steps[MAXSTEPS];
  double losses[MAXSTEPS];
  int n = parse_log(out, steps, losses, MAXSTEPS);
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(steps[2], 2);
  ck_assert(isnan(losses[2]));
  free(out);
  ref_free(&ref);
}

START_TEST(nan_stop_scalar) {
  check_nan_stop("x = ones(4)\n"
                 "param a = 1.0\n"
                 "loss = sum(sqrt(a) * x)\n"
                 "train(steps = 10, optimizer = sgd(lr = 0.25), log_every = 1)\n",
                 "scalar param");
}
END_TEST

/* A vector param: its gradient is stored by a loop, and the check is on
 * the stored values. The other param is not touched on the failing step
 * either. */
START_TEST(nan_stop_vector) {
  compile_text("x = ones(4)\n"
               "param w = ones(3)\n"
               "param c = 2.0\n"
               "loss = sum(sqrt(w)) + (c - 1)^2\n"
               "train(steps = 10, optimizer = sgd(lr = 0.5), log_every = 1)\n");
  /* w: 1 -> 1 - 0.5 * 0.5 = 0.75 -> 0.75 - 0.5 * 0.5 / sqrt(0.75) = 0.4613
   * -> ... goes negative at some step; the reference finds which. */
  Action *a = train_action();
  Ref ref = reference(a, a->steps);
  ck_assert_int_lt(ref.done, a->steps);
  ck_assert_int_gt(ref.done, 0);
  char *out = NULL;
  ck_assert(!run_train(a, &out));
  char want[64];
  snprintf(want, sizeof want, "training stopped at step %lld", (long long)ref.done);
  ck_assert_msg(strstr(fx.diags.items[0].msg, want), "'%s', expected '%s'", fx.diags.items[0].msg,
                want);
  expect_params(&ref, 1e-12, "vector param");
  for (int k = 0; k < 3; k++)
    ck_assert(isfinite(fx.prog->params[0].value.v[k]));
  free(out);
  ref_free(&ref);
}
END_TEST

/* A non-finite gradient with a finite loss stops training too: at a = 0
 * the loss sqrt(a) + 1 is 1, its derivative 0.5 / sqrt(a) is inf. */
START_TEST(nan_stop_gradient_only) {
  compile_text("param a = 0.0\n"
               "loss = sqrt(a) + 1\n"
               "train(steps = 5, optimizer = sgd(lr = 0.1), log_every = 1)\n");
  Action *a = train_action();
  char *out = NULL;
  ck_assert(!run_train(a, &out));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "training stopped at step 0"));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "a gradient"));
  ck_assert_double_eq(fx.prog->params[0].value.v[0], 0);
  ck_assert_str_eq(out, "0 1\n");
  free(out);
}
END_TEST

/* A stored vector gradient that is not finite while the loss is: at
 * w[0] = 0, sqrt's derivative is inf. Stopped at step 0, nothing updated. */
START_TEST(nan_stop_vector_gradient_only) {
  compile_text("param w = linspace(0, 1, 5)\n"
               "param c = 2.0\n"
               "loss = sum(sqrt(w)) + (c - 1)^2\n"
               "train(steps = 5, optimizer = adam(lr = 0.1), log_every = 1)\n");
  Action *a = train_action();
  char *out = NULL;
  ck_assert(!run_train(a, &out));
  ck_assert_msg(strstr(fx.diags.items[0].msg, "training stopped at step 0"), "'%s'",
                fx.diags.items[0].msg);
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "a gradient"));
  for (int k = 0; k < 5; k++)
    ck_assert_double_eq(fx.prog->params[0].value.v[k], k * 0.25);
  ck_assert_double_eq(fx.prog->params[1].value.v[0], 2);
  free(out);
}
END_TEST

/* exec_program keeps going after a failed train: later prints still run
 * and show the params kept. */
START_TEST(nan_stop_then_print) {
  compile_text("x = ones(4)\n"
               "param a = 1.0\n"
               "loss = sum(sqrt(a) * x)\n"
               "train(steps = 10, optimizer = sgd(lr = 0.25))\n"
               "print(\"a = {a}\")\n");
  char *out = NULL;
  FILE *saved = stderr;
  char *err = NULL;
  size_t errlen = 0;
  stderr = open_memstream(&err, &errlen);        /* exec_program prints its diagnostics */
  bool ok = run(&out);
  fclose(stderr);
  stderr = saved;
  ck_assert(!ok);
  char want[64];
  char num[40];
  dlrt_format(num, sizeof num, 1 - 0.5 - 0.25 * 2 / sqrt(0.5), 1);
  snprintf(want, sizeof want, "a = %s\n", num);
  ck_assert_str_eq(out, want);
  ck_assert_ptr_nonnull(strstr(err, "training stopped at step 2"));
  free(out);
  free(err);
}
END_TEST

/* ---- log_every */

START_TEST(log_every_k) {
  compile_text("x = linspace(-1, 1, 16)\n"
               "param a = 2.0\n"
               "loss = sum((a * x - x^3)^2)\n"
               "train(steps = 10, optimizer = sgd(lr = 0.01), log_every = 3)\n");
  Action *a = train_action();
  Ref ref = reference(a, 10);
  char *out = NULL;
  ck_assert(run(&out));
  int64_t steps[MAXSTEPS];
  double losses[MAXSTEPS];
  int n = parse_log(out, steps, losses, MAXSTEPS);
  ck_assert_int_eq(n, 3);                        /* t % 3 == 2: 2, 5, 8 */
  for (int k = 0; k < n; k++) {
    ck_assert_int_eq(steps[k], 3 * k + 2);
    ck_assert_msg(close_to(losses[k], ref.loss[steps[k]], 1e-9), "step %lld: %.17g vs %.17g",
                  (long long)steps[k], losses[k], ref.loss[steps[k]]);
  }
  expect_params(&ref, 1e-9, "log_every = 3");
  free(out);
  ref_free(&ref);
}
END_TEST

/* log_every larger than steps: no line; steps = 0: nothing changes. */
START_TEST(log_every_edges) {
  compile_text("param a = 2.0\n"
               "loss = (a - 1)^2\n"
               "train(steps = 4, optimizer = sgd(lr = 0.25), log_every = 5)\n"
               "train(steps = 0, optimizer = sgd(lr = 0.25), log_every = 1)\n"
               "train(steps = 1, optimizer = sgd(lr = 0.25), log_every = 1)\n");
  char *out = NULL;
  ck_assert(run(&out));
  /* a: 2 -> 1.5 -> 1.25 -> 1.125 -> 1.0625, then (1.0625 - 1)^2 logged at
   * step 0 of the third train, then 1.03125. */
  ck_assert_str_eq(out, "0 0.00390625\n");
  ck_assert_double_eq(fx.prog->params[0].value.v[0], 1.03125);
  free(out);
}
END_TEST

/* ---- precision */

START_TEST(f32_results_are_floats) {
  compile_text(models[0].text);
  Action *a = train_action();
  Ref ref = reference(a, a->steps);              /* the interpreter rounds to f32 too */
  char *out = NULL;
  ck_assert(run(&out));
  for (int i = 0; i < fx.prog->nparams; i++) {
    double v = fx.prog->params[i].value.v[0];
    ck_assert_msg(v == (double)(float)v, "%s = %.17g is not a float", fx.prog->params[i].name, v);
  }
  expect_params(&ref, 1e-5, "f32");
  int64_t steps[MAXSTEPS];
  double losses[MAXSTEPS];
  int n = parse_log(out, steps, losses, MAXSTEPS);
  ck_assert_int_eq(n, 3);
  /* Logged as the shortest text that reads back as the float. */
  for (int t = 0; t < n; t++)
    ck_assert_msg(close_to(losses[t], ref.loss[t], 1e-5), "step %d: %.9g vs %.9g", t, losses[t],
                  ref.loss[t]);
  free(out);
  ref_free(&ref);
}
END_TEST

/* A vector param and adam in f32. */
START_TEST(f32_vector_adam_floats) {
  compile_text(models[1].text);
  char *out = NULL;
  ck_assert(run(&out));
  for (int i = 0; i < fx.prog->nparams; i++)
    for (int64_t k = 0; k < shape_numel(fx.prog->params[i].value.shape); k++) {
      double v = fx.prog->params[i].value.v[k];
      ck_assert_msg(v == (double)(float)v, "%s[%lld] = %.17g is not a float",
                    fx.prog->params[i].name, (long long)k, v);
    }
  free(out);
}
END_TEST

/* -O0 and -O2 compute the same thing. On a model whose every intermediate
 * is exact (small dyadic numbers), bit for bit; on the seed, to rounding. */
static const char *const dyadic_text =
    "x = linspace(-2, 2, 33)\n"                  /* multiples of 1/8 */
    "param a = 0.5\n"
    "param w = fill(33, 0.25)\n"
    "loss = sum((a * x + w - x^2)^2)\n"
    "train(steps = 2, optimizer = sgd(lr = 0.0078125), log_every = 1)\n";

typedef struct Result {
  char *log;
  double values[64];
  int n;
} Result;

static Result run_for_result(const char *text) {
  compile_text(text);
  Result r = {0};
  ck_assert(run(&r.log));
  for (int i = 0; i < fx.prog->nparams; i++)
    for (int64_t k = 0; k < shape_numel(fx.prog->params[i].value.shape); k++) {
      ck_assert_int_lt(r.n, 64);
      r.values[r.n++] = fx.prog->params[i].value.v[k];
    }
  return r;
}

static void compare_levels(const char *text, double rtol) {
  /* The fixture is -O0; then the same at -O2. */
  ck_assert_int_eq(fx.prog->opts.opt_level, 0);
  Result r0 = run_for_result(text);
  teardown();
  fixture_open(true);
  ck_assert_int_eq(fx.prog->opts.opt_level, 2);
  Result r2 = run_for_result(text);
  ck_assert_int_eq(r0.n, r2.n);
  for (int k = 0; k < r0.n; k++)
    ck_assert_msg(rtol == 0 ? r0.values[k] == r2.values[k] : close_to(r0.values[k], r2.values[k], rtol),
                  "value %d: -O0 %.17g, -O2 %.17g", k, r0.values[k], r2.values[k]);
  if (rtol == 0)
    ck_assert_str_eq(r0.log, r2.log);
  free(r0.log);
  free(r2.log);
}

START_TEST(opt_levels_exact) { compare_levels(dyadic_text, 0); }
END_TEST

START_TEST(opt_levels_seed) { compare_levels(models[0].text, 1e-12); }
END_TEST

/* ---- threads: every thread count gives the results of one thread, bit
 * for bit (the blocks' sums are added in block order whoever computed
 * them), including where training stops on a NaN. */

static const char *const thread_models[] = {
    /* One loop of 25 blocks and a bit, scalar params. */
    "x = linspace(-3, 3, 100003)\n"
    "y = sin(x)\n"
    "param a = 0.1\n"
    "param b = 0.9\n"
    "loss = sum((a + b * x - y)^2)\n"
    "train(steps = 20, optimizer = sgd(lr = 1e-6, momentum = 0.9), log_every = 5)\n",
    /* Two stages (a mean inside the loss), a vector param and adam. */
    "x = linspace(0, 1, 40000)\n"
    "param w = fill(40000, 0.5)\n"
    "param s = 1.0\n"
    "loss = mean((w * x - mean(w * x) + s - x)^2) + 0.001 * sum(w^2)\n"
    "train(steps = 10, optimizer = adam(lr = 0.01), log_every = 1)\n",
    /* The last elements go negative first: the last thread's share stops
     * every thread, at the step one thread stops. */
    "param w = linspace(1, 0.25, 30000)\n"
    "param c = 2.0\n"
    "loss = sum(sqrt(w)) + (c - 1)^2\n"
    "train(steps = 50, optimizer = sgd(lr = 0.05), log_every = 1)\n"
    "print(c)\n",
    /* One block: thread 0 computes it, the others wait. */
    "x = linspace(-1, 1, 2000)\n"
    "param a = 0.5\n"
    "loss = sum((exp(a * x) - 1 - x)^2)\n"
    "train(steps = 30, optimizer = rmsprop(lr = 0.01), log_every = 10)\n",
    /* Matrices: kernels share their rows (products, transposes, row sums)
     * or columns (column sums), broadcast rows and columns in the loops,
     * minibatches of a shuffled order with a smaller last one. */
    "X = randn(3001, 7, seed = 1)\n"
    "labels = argmax(X[:, 0:3] + randn(3001, 3, seed = 2), axis = 1)\n"
    "param W1 = randn(7, 40, seed = 3) * 0.3\n"
    "param b1 = zeros(40)\n"
    "param W2 = randn(40, 3, seed = 4) * 0.3\n"
    "param c = zeros(7, 1)\n"
    "H = tanh(X @ (W1 + c) + b1)\n"
    "Z = H @ W2 + mean(H, axis = 0)[0:3]\n"
    "loss = -mean(sum(onehot(labels, 3) * log_softmax(Z, axis = 1), axis = 1)) + mean(max(X @ W1, axis = 0))\n"
    "train(steps = 6, optimizer = adam(lr = 0.01), log_every = 1)\n"
    "train(epochs = 2, batch = 700, shuffle = 5, optimizer = sgd(lr = 0.1), log_every = 1)\n",
};

typedef struct ThreadRun {
  char *out;
  bool ok;
  double *values;
  int n;
} ThreadRun;

static ThreadRun run_threads(const char *text, int threads) {
  fixture_open(false);
  fx.prog->opts.threads = threads;
  compile_text(text);
  ThreadRun r = {0};
  r.ok = run(&r.out);
  for (int i = 0; i < fx.prog->nparams; i++) {
    int64_t n = shape_numel(fx.prog->params[i].value.shape);
    r.values = realloc(r.values, sizeof(double) * (size_t)(r.n + n));
    memcpy(r.values + r.n, fx.prog->params[i].value.v, sizeof(double) * (size_t)n);
    r.n += (int)n;
  }
  teardown();
  return r;
}

START_TEST(threads_same_results) {
  const char *text = thread_models[_i];
  ThreadRun one = run_threads(text, 1);
  ck_assert_msg(strlen(one.out) > 0, "model %d logs nothing", _i);
  static const int counts[] = {2, 3, 4, 7};
  for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
    ThreadRun more = run_threads(text, counts[c]);
    ck_assert_int_eq(more.ok, one.ok);
    ck_assert_msg(strcmp(more.out, one.out) == 0, "model %d, %d threads logged\n%s\nnot\n%s", _i,
                  counts[c], more.out, one.out);
    ck_assert_int_eq(more.n, one.n);
    for (int k = 0; k < one.n; k++)
      ck_assert_msg(memcmp(&more.values[k], &one.values[k], sizeof(double)) == 0,
                    "model %d, %d threads: value %d is %.9g, not %.9g", _i, counts[c], k,
                    more.values[k], one.values[k]);
    free(more.out);
    free(more.values);
  }
  free(one.out);
  free(one.values);
}
END_TEST

/* dlrt_interrupt (a SIGINT handler's flag) stops training after the step
 * it is noticed in, on every thread at once: set before a 1000-step train,
 * one step is done, as a 1-step train does it. */
START_TEST(interrupt_stops_after_a_step) {
  const char *text = thread_models[1];
  char one_step[1024];
  snprintf(one_step, sizeof one_step, "%s", text);
  char *steps = strstr(one_step, "steps = 10");
  ck_assert_ptr_nonnull(steps);
  memmove(steps + 9, steps + 10, strlen(steps + 10) + 1);   /* steps = 1 */
  ThreadRun want = run_threads(one_step, 1);
  for (int threads = 1; threads <= 3; threads += 2) {
    fixture_open(false);
    fx.prog->opts.threads = threads;
    compile_text(text);
    dlrt_interrupt = 1;
    char *out = NULL;
    ck_assert(run(&out));
    dlrt_interrupt = 0;
    ck_assert_int_eq(fx.diags.n, 1);
    ck_assert_msg(strstr(fx.diags.items[0].msg, "interrupted after 1 of 10 steps"), "%s",
                  fx.diags.items[0].msg);
    ck_assert_str_eq(out, want.out);
    for (int i = 0, k = 0; i < fx.prog->nparams; i++)
      for (int64_t e = 0; e < shape_numel(fx.prog->params[i].value.shape); e++, k++)
        ck_assert_double_eq(fx.prog->params[i].value.v[e], want.values[k]);
    free(out);
    teardown();
  }
  free(want.out);
  free(want.values);
}
END_TEST

/* The NaN model does stop (else it tests nothing), and keeps finite
 * params. */
START_TEST(threads_nan_model_stops) {
  ThreadRun r = run_threads(thread_models[2], 3);
  ck_assert(!r.ok);
  for (int k = 0; k < r.n; k++)
    ck_assert(isfinite(r.values[k]));
  free(r.out);
  free(r.values);
}
END_TEST

/* ---- emitted text */

START_TEST(emit_llvm_vectorized) {
  compile_text(SEED_TEXT);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  bool ok = exec_emit(fx.runner, fx.prog, "llvm", f);
  fclose(f);
  ck_assert(ok);
  ck_assert_msg(strstr(text, "define i64 @dl_train(ptr"), "no dl_train function in:\n%.2000s",
                text);
  ck_assert_msg(strstr(text, "<16 x float>") || strstr(text, "<8 x float>") ||
                    strstr(text, "<4 x float>"),
                "no vector instruction in:\n%.4000s", text);
  ck_assert_ptr_nonnull(strstr(text, "dlrt_step"));
  /* f32 arithmetic stays f32: doubles only add the blocks' sums. */
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    ck_assert_msg(!strstr(line, "double>") || !strstr(line, "fmul"), "double multiply: %s", line);
  free(text);
  /* Emitting trains nothing. */
  ck_assert_double_eq(fx.prog->params[1].value.v[0], -1);
}
END_TEST

START_TEST(emit_asm) {
  compile_text("x = linspace(0, 1, 64)\nparam a = 1\nloss = sum((a * x - 1)^2)\n");
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ck_assert(exec_emit(fx.runner, fx.prog, "asm", f));
  fclose(f);
  ck_assert_msg(strstr(text, "dl_train:"), "no dl_train label in:\n%.2000s", text);
  free(text);
}
END_TEST

static Suite *codegen_suite(void) {
  Suite *s = suite_create("codegen");

  TCase *tc = tcase_create("reference");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_loop_test(tc, train_matches_reference, 0, NMODELS);
  tcase_add_test(tc, trains_continue);
  suite_add_tcase(s, tc);

  tc = tcase_create("ops");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_loop_test(tc, every_op, 0, OP_COUNT);
  tcase_add_test(tc, constant_powers);
  suite_add_tcase(s, tc);

  tc = tcase_create("nan_stop");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, nan_stop_scalar);
  tcase_add_test(tc, nan_stop_vector);
  tcase_add_test(tc, nan_stop_gradient_only);
  tcase_add_test(tc, nan_stop_vector_gradient_only);
  tcase_add_test(tc, nan_stop_then_print);
  suite_add_tcase(s, tc);

  tc = tcase_create("log_every");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, log_every_k);
  tcase_add_test(tc, log_every_edges);
  suite_add_tcase(s, tc);

  tc = tcase_create("f32");
  tcase_add_checked_fixture(tc, fx_setup_f32, teardown);
  tcase_add_test(tc, f32_results_are_floats);
  tcase_add_test(tc, f32_vector_adam_floats);
  suite_add_tcase(s, tc);

  tc = tcase_create("opt_levels");
  tcase_add_checked_fixture(tc, setup_f64_O0, teardown);
  tcase_add_test(tc, opt_levels_exact);
  tcase_add_test(tc, opt_levels_seed);
  suite_add_tcase(s, tc);

  tc = tcase_create("threads");
  /* The matrix model compiles two trains for each of five thread counts:
   * seconds on a loaded machine, past check's default of 4. */
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, threads_same_results, 0,
                      (int)(sizeof thread_models / sizeof *thread_models));
  tcase_add_test(tc, threads_nan_model_stops);
  tcase_add_test(tc, interrupt_stops_after_a_step);
  suite_add_tcase(s, tc);

  tc = tcase_create("emit");
  tcase_add_checked_fixture(tc, fx_setup_f32, teardown);
  tcase_add_test(tc, emit_llvm_vectorized);
  tcase_add_test(tc, emit_asm);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(codegen_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
