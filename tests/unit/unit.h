/* unit.h — what the compiler's unit tests share.
 *
 * A fixture holding one compile's worth of state (arena, diagnostics, a
 * Program and its graph), set up fresh for every test by a checked fixture,
 * and the few helpers every test file needs: building data leaves,
 * evaluating a node to a number, compiling a small program through the real
 * front end, and comparing numbers within a tolerance with a message that
 * says what was compared. Everything is `static inline`, so a test file
 * that does not use a helper gets no warning for it.
 */
#ifndef DLC_UNIT_H
#define DLC_UNIT_H

#include "dlc.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One compile's state; tests reach it through `fx`. */
typedef struct Fixture {
  Arena *arena;
  Diags diags;
  Program *prog;
  Graph *g;
  Runner *runner;                                /* what runs it: the JIT, made by the first train */
} Fixture;

static Fixture fx;

static inline void fixture_open(bool f64) {
  fx.arena = arena_new();
  fx.diags = (Diags){0};
  fx.prog = program_new(fx.arena, &fx.diags, (Options){.f64 = f64, .opt_level = 2});
  fx.g = fx.prog->graph;
  fx.runner = runner_new();
}

static inline void fx_setup_f64(void) { fixture_open(true); }
static inline void fx_setup_f32(void) { fixture_open(false); }

static inline void fx_teardown(void) {
  runner_free(fx.runner);
  program_free(fx.prog);
  arena_free(fx.arena);
  diag_free(&fx.diags);
  fx = (Fixture){0};
}

/* ---- random numbers: dlrt's generator, seeded per test */

static inline double rng_in(DlrtRng *r, double lo, double hi) {
  return lo + (hi - lo) * dlrt_rng_uniform(r);
}

static inline int rng_int(DlrtRng *r, int n) { return (int)(dlrt_rng_next(r) % (uint64_t)n); }

/* ---- leaves */

static inline Node *scalar_var(const char *name, int index) {
  return ir_var(fx.g, name, shape_scalar(), NULL, index);
}

/* A vector data leaf holding a copy of v[0..n) (NULL: zeros); the program
 * owns the copy. Its elements can be changed in place afterwards through
 * data_values(). */
static inline Node *vec_data(const double *v, int n, const char *name) {
  Tensor t = {shape_vector(n), calloc((size_t)n, sizeof(double))};
  if (v)
    memcpy(t.v, v, sizeof(double) * (size_t)n);
  int slot = program_add_data(fx.prog, name, t);
  return ir_leaf(fx.g, OP_DATA, t.shape, slot, NULL);
}

static inline double *data_values(const Node *leaf) {
  ck_assert_int_eq(leaf->op, OP_DATA);
  return fx.prog->data[leaf->slot].value.v;
}

/* ---- evaluation */

/* Evaluates n; the test fails when eval_node reports an error. The caller
 * frees t.v. */
static inline Tensor eval_tensor(Node *n, Node *const *vars, const double *values, int nvars) {
  Tensor t = {0};
  char *err = NULL;
  bool ok = eval_node(fx.prog, n, vars, values, nvars, &t, &err);
  if (!ok) {
    char msg[256];
    snprintf(msg, sizeof msg, "eval_node failed: %s", err ? err : "(no message)");
    free(err);
    ck_abort_msg("%s", msg);
  }
  ck_assert(shape_eq(t.shape, n->shape));
  return t;
}

static inline double eval_scalar(Node *n, Node *const *vars, const double *values, int nvars) {
  ck_assert_msg(shape_numel(n->shape) == 1, "eval_scalar of a node with %lld elements",
                (long long)shape_numel(n->shape));
  Tensor t = eval_tensor(n, vars, values, nvars);
  double v = t.v[0];
  free(t.v);
  return v;
}

/* ---- the front end */

/* Parses and checks a program; the test fails (printing the diagnostics)
 * when it has errors. */
static inline void compile_text(const char *text) {
  Source *src = source_new(fx.arena, "t.dl", text, strlen(text));
  Stmt *stmts = parse_source(src, fx.arena, &fx.diags);
  bool ok = fx.diags.nerrors == 0 && sema_program(fx.prog, stmts);
  if (!ok)
    diag_print(&fx.diags, stderr);
  ck_assert_msg(ok, "the test program does not compile:\n%s", text);
}

/* Parses and checks a program whose source is named `name` (load_csv
 * paths are relative to its directory); returns whether it compiled, with
 * the diagnostics left in fx.diags for the test to look at. */
static inline bool try_compile_named(const char *name, const char *text) {
  Source *src = source_new(fx.arena, name, text, strlen(text));
  Stmt *stmts = parse_source(src, fx.arena, &fx.diags);
  /* As the driver does: no sema after a syntax error. */
  return fx.diags.nerrors == 0 && sema_program(fx.prog, stmts);
}

static inline bool try_compile(const char *text) { return try_compile_named("t.dl", text); }

/* Like compile_text, for a source with the given name. */
static inline void compile_named(const char *name, const char *text) {
  bool ok = try_compile_named(name, text);
  if (!ok)
    diag_print(&fx.diags, stderr);
  ck_assert_msg(ok, "the test program does not compile:\n%s", text);
}

/* The program's first train. */
static inline Action *train_action(void) {
  for (Action *a = fx.prog->actions; a; a = a->next)
    if (a->kind == ACT_TRAIN)
      return a;
  ck_abort_msg("the program has no train");
  return NULL;
}

static inline int param_index(const char *name) {
  for (int i = 0; i < fx.prog->nparams; i++)
    if (strcmp(fx.prog->params[i].name, name) == 0)
      return i;
  ck_abort_msg("no param '%s'", name);
  return -1;
}

/* ---- comparisons */

/* |got - want| <= rtol * max(1, |want|): relative for large values,
 * absolute near zero. */
static inline bool close_to(double got, double want, double rtol) {
  if (isnan(got) || isnan(want))
    return isnan(got) && isnan(want);
  if (isinf(want))
    return got == want;
  return fabs(got - want) <= rtol * fmax(1.0, fabs(want));
}

/* A formula as ir_format prints it (static buffer: one at a time). */
static inline const char *formula(const Node *n) {
  static char text[512];
  Buf b = {0};
  ir_format(&b, n, fx.prog);
  snprintf(text, sizeof text, "%s", b.data ? b.data : "");
  buf_free(&b);
  return text;
}

/* The seed program, exactly as examples/legendre.dl has it. */
#define SEED_TEXT                                                          \
  "fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"                                    \
  "  deriv x = 1.5 * (5 * x^2 - 1)\n"                                       \
  "x = linspace(-pi, pi, 2000)\n"                                           \
  "y = sin(x)\n"                                                            \
  "param a = 0.0\n"                                                         \
  "param b = -1.0\n"                                                        \
  "param c = 0.0\n"                                                         \
  "param d = 0.3\n"                                                         \
  "y_pred = a + b * P3(c + d * x)\n"                                        \
  "loss = sum((y_pred - y)^2)\n"                                            \
  "train(steps = 2000, optimizer = sgd(lr = 5e-6), log_every = 100)\n"

#endif
