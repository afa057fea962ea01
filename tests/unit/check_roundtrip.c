/* check_roundtrip.c — printed formulas are dl (ir_format, src/ir.c).
 *
 * What dlc prints for a formula (print of a diff with free symbols,
 * `dlc emit grad`, the REPL's :diff) must read back, in the same program,
 * as the same value with the same shape. A seeded generator writes random
 * expressions over every operator and built-in: scalars, vectors and
 * matrices; data, constructors and hoisted definitions; fns with and
 * without a deriv; the free symbols t and u. Each is differentiated as a
 * user does (print(diff(...)): the formula itself, d/dt, d2/dt2, d2/dtdu,
 * simplified) and as training does (the raw IR of the expression and its
 * gradients before simplification, which hold every shape op diff makes).
 * Each formula is printed, and read back in a program where t and u are
 * params; there it must
 *   - compile,
 *   - print as the same text (printing is a fixed point),
 *   - have the formula's values at random points (rtol 1e-9, NaN as NaN).
 * A read-back computes what the formula computes, op for op, so the points
 * need not avoid kinks; where they matter, the documented conventions are
 * checked on their own (abs, relu, sign at 0; min/max ties split in half;
 * where; pow at 0): the derivative, printed and read back, has the value
 * the reference says. The examples' `emit grad` formulas read back too.
 */
#include "unit.h"

#include <dirent.h>
#include <stdarg.h>

enum {
  NEXPR = 1000,                                  /* random expressions */
  NPOINT = 2,                                    /* points each formula is evaluated at */
  MAX_TERMS = 4000,                              /* longer formulas are left out (for time) */
  MAXF = 8,                                      /* formulas per expression */
};

/* What every generated expression may use. */
static const char ENV[] =
    "x = [0.75, -1.25, 2, 0.5]\n"
    "y = [1.5, 0.25, -0.5, 3]\n"
    "z = [0.5, -2, 1.25]\n"
    "lab = [0, 3, 1]\n"
    "A = [[0.5, -1, 2, 0.25], [1.5, 0.25, -0.75, 1], [-0.5, 2, 1, -1.5]]\n"
    "C = [[1, 0.5, 0, -1], [0, 1, 0.5, 2], [1, -1, 1, 0], [0.25, 0, 0, 1]]\n"
    "k = 2.5\n"
    "fn sq(a) = a^2\n"
    "  deriv a = 2 * a\n"
    "fn bump(a, b) = a * exp(-b * a)\n"
    "fn ctr(a) = a - mean(a)\n";

/* Fails the test. The whole message goes to stderr: check caps what it
 * carries, and a formula can be long. */
static void flunk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void flunk(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  ck_assert_int_ge(vasprintf(&msg, fmt, ap), 0);
  va_end(ap);
  fprintf(stderr, "%s\n", msg);
  ck_abort_msg("%.400s ... (the whole message is on stderr)", msg);
}

/* ---- programs */

/* A compile of its own: each expression and each read-back is one. */
typedef struct Prog {
  Arena *arena;
  Diags diags;
  Program *p;
} Prog;

static bool prog_open(Prog *g, const char *name, const char *text) {
  g->arena = arena_new();
  g->diags = (Diags){0};
  g->p = program_new(g->arena, &g->diags, (Options){.f64 = true, .opt_level = 2});
  Source *src = source_new(g->arena, name, text, strlen(text));
  Stmt *stmts = parse_source(src, g->arena, &g->diags);
  return g->diags.nerrors == 0 && sema_program(g->p, stmts);
}

static void prog_close(Prog *g) {
  program_free(g->p);
  arena_free(g->arena);
  diag_free(&g->diags);
}

/* The diagnostics, for a failure message (malloc'd). */
static char *diag_text(Prog *g) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  diag_print(&g->diags, f);
  fclose(f);
  return text;
}

static void must_open(Prog *g, const char *name, const char *text) {
  if (!prog_open(g, name, text))
    flunk("%s does not compile:\n%s\n%s", name, text, diag_text(g));
}

/* The values of the last n print statements, in order. */
static void last_prints(Program *p, Node **out, int n) {
  int total = 0;
  for (Action *a = p->actions; a; a = a->next)
    total += a->kind == ACT_PRINT;
  int k = 0;
  for (Action *a = p->actions; a; a = a->next)
    if (a->kind == ACT_PRINT && k++ >= total - n)
      *out++ = a->items->node;
}

static Node *param_node(Program *p, const char *name) {
  for (int i = 0; i < p->nparams; i++)
    if (strcmp(p->params[i].name, name) == 0)
      return p->params[i].node;
  return NULL;
}

static void set_param(Program *p, const char *name, double v) {
  for (int i = 0; i < p->nparams; i++)
    if (strcmp(p->params[i].name, name) == 0)
      p->params[i].value.v[0] = v;
}

/* ---- formulas */

/* How a formula's t and u get their values. */
typedef enum {
  FREE,                                          /* free symbols, bound for eval_node */
  PARAMS,                                        /* params of its program, set */
  AS_IS,                                         /* none: the program's params as they are */
} Binding;

/* A formula, where it was made, and what it prints as. */
typedef struct Formula {
  const char *what;                              /* "d/dt", ... */
  Node *node;
  Program *p;
  Binding binding;
  char *text;                                    /* as ir_format prints it */
} Formula;

static char *format(const Node *n, const Program *p) {
  Buf b = {0};
  ir_format(&b, n, p);
  return b.data ? b.data : strdup("");
}

/* n, a node of formula f, at t and u. */
static Tensor eval_in(const Formula *f, Node *n, double t, double u) {
  Graph *g = f->p->graph;
  Node *vars[2] = {ir_var(g, "t", shape_scalar(), NULL, 0), ir_var(g, "u", shape_scalar(), NULL, 0)};
  double values[2] = {t, u};
  if (f->binding == PARAMS) {
    set_param(f->p, "t", t);
    set_param(f->p, "u", u);
  }
  Tensor out = {0};
  char *err = NULL;
  if (!eval_node(f->p, n, vars, values, f->binding == FREE ? 2 : 0, &out, &err))
    flunk("%s: %s does not evaluate: %s", f->what, f->text, err);
  return out;
}

static Tensor eval_formula(const Formula *f, double t, double u) { return eval_in(f, f->node, t, u); }

/* A fn call prints as the call, but simplify has worked on its inlined
 * body: it folds 0 * x to 0 as if x were finite, and t * (t * x) rounds
 * otherwise as t^2 * x. Where an argument or the value is not finite, the
 * call read back can differ (as the expression before simplification
 * does), and where it is huge, the rounding can make any difference
 * downstream (sin of 1e228). Are the calls tame at t, u? */
static bool calls_tame(const Formula *f, double t, double u) {
  NodeList order = ir_topo(&f->node, 1);
  bool tame = true;
  for (int k = 0; k < order.n && tame; k++) {
    Node *call = order.items[k];
    for (int i = 0; call->op == OP_FNCALL && i <= call->fn->arity && tame; i++) {
      Tensor v = eval_in(f, i < call->fn->arity ? call->args[i] : call, t, u);
      for (int64_t j = 0; j < shape_numel(v.shape); j++)
        tame &= fabs(v.v[j]) <= 1e6;             /* NaN is not */
      free(v.v);
    }
  }
  nodelist_free(&order);
  return tame;
}

static int values_left_out;                      /* points where calls_tame said no */

/* The read-back `r` (in `back`, whose t and u are set) against formula f. */
static void check_same(const Formula *f, Program *back, Node *r, double t, double u,
                       const char *source) {
  char *again = format(r, back);
  if (strcmp(again, f->text) != 0)
    flunk("%s of %s: printed\n  %s\nread back and printed\n  %s", f->what, source, f->text, again);
  free(again);
  if (!calls_tame(f, t, u)) {
    values_left_out++;
    return;
  }
  Tensor want = eval_formula(f, t, u), got = {0};
  char *err = NULL, sh1[64], sh2[64];
  if (!eval_node(back, r, NULL, NULL, 0, &got, &err))
    flunk("%s of %s: %s read back does not evaluate: %s", f->what, source, f->text, err);
  if (!shape_eq(got.shape, want.shape))
    flunk("%s of %s: %s is a %s, read back a %s", f->what, source, f->text,
         shape_str(want.shape, sh1), shape_str(got.shape, sh2));
  for (int64_t i = 0; i < shape_numel(want.shape); i++)
    if (!close_to(got.v[i], want.v[i], 1e-9))
      flunk("%s of %s at t = %g, u = %g: %s is %.17g at [%lld], read back %.17g", f->what, source,
           t, u, f->text, want.v[i], (long long)i, got.v[i]);
  free(want.v);
  free(got.v);
}

/* Reads formulas back in one program: `prelude` (the environment, and
 * params t and u where the formulas have them), then a print of each. */
static void read_back(const char *name, const char *prelude, Formula *f, int n, DlrtRng *rng,
                      const char *source) {
  Buf text = {0};
  buf_puts(&text, prelude);
  for (int i = 0; i < n; i++)
    buf_printf(&text, "print(%s)\n", f[i].text);
  Prog back;
  if (!prog_open(&back, name, text.data))
    flunk("the formulas of %s do not read back:\n%s\n%s", source, text.data, diag_text(&back));
  Node *r[MAXF];
  last_prints(back.p, r, n);
  for (int k = 0; k < NPOINT; k++) {
    double t = rng_in(rng, -2, 2), u = rng_in(rng, -2, 2);
    set_param(back.p, "t", t);
    set_param(back.p, "u", u);
    for (int i = 0; i < n; i++)
      check_same(&f[i], back.p, r[i], t, u, source);
  }
  prog_close(&back);
  buf_free(&text);
}

/* ---- the generator */

/* Templates by the shape they make: %S a scalar, %V a vector[4], %Z a
 * vector[3], %M a matrix[3, 4], %c a constant. Leaves first. */
typedef enum { SC, VEC, COL, MAT } Kind;

static const char *const leaves[4][8] = {
    [SC] = {"t", "u", "t", "u", "k", "%c", "(t * u)", "x[2]"},
    [VEC] = {"x", "(t * x)", "(y - u)", "fill(4, 1.5)", "[1, -2, 0.5, 3]", "linspace(-1, 1, 4)",
             "(u * randn(4, seed = 3))", "(x + t)"},
    [COL] = {"z", "(u * z)", "[0.5, 1, -1]", "(t - z)", "argmax(A, axis = 1)", "z", "(z * t)", "ones(3)"},
    [MAT] = {"A", "(t * A)", "(A + u)", "ones(3, 4)", "randn(3, 4, seed = 1)", "onehot(lab, 4)",
             "eye(4)[0:3]", "(A * t)"},
};

static const char *const rules[4][48] = {
    [SC] = {"(%S + %S)", "(%S - %S)", "(%S * %S)", "(%S / %S)", "(%S ^ %S)", "(-%S)", "(%S < %S)",
            "(%S <= %S)", "(%S > %S)", "(%S >= %S)", "(%S == %S)", "(%S != %S)",
            "where(%S > %S, %S, %S)", "sin(%S)", "cos(%S)", "tan(%S)", "exp(%S)", "log(%S)",
            "sqrt(%S)", "tanh(%S)", "sigmoid(%S)", "abs(%S)", "sign(%S)", "log1p(%S)", "expm1(%S)",
            "atan(%S)", "relu(%S)", "softplus(%S)", "min(%S, %S)", "max(%S, %S)", "pow(%S, %S)",
            "sum(%V)", "mean(%M)", "max(%V)", "min(%M)", "logsumexp(%V)", "(%V @ %V)",
            "(%M)[2, 3]", "max(%M)", "(sq(%S) + bump(%S, %S))", "(sum(ctr(%V)) + len(%Z) * (%V)[1])"},
    [VEC] = {"(%V + %S)", "(%S * %V)", "(%V - %V)", "(%V / %S)", "(%V ^ %c)", "(-%V)",
             "(%V > %S)", "where(%V > %S, %V, %S)", "sin(%V)", "exp(%V)", "log(%V)", "sqrt(%V)",
             "tanh(%V)", "sigmoid(%V)", "abs(%V)", "relu(%V)", "softplus(%V)", "min(%V, %S)",
             "max(%V, %V)", "pow(%V, %S)", "sq(%V)", "bump(%V, %S)", "ctr(%V)", "softmax(%V)",
             "log_softmax(%V)", "(%M)[1]", "sum(%M, axis = 0)", "mean(%M, axis = 0)",
             "max(%M, axis = 0)", "(%Z @ %M)", "concat((%V)[0:2], (%V)[2:4], axis = 0)",
             "concat((%Z)[0:1], %Z, axis = 0)", "((%M)')[:, 2]", "(%M)[0, :]", "((%M) @ C)[2]",
             "(%V * %S + %V)", "((%V)[1:3][0] * %V)", "(atan(%V) - expm1(%V))", "log1p(abs(%V))",
             "((%V <= %V) * (%V != %S))", "softmax(%M, axis = 0)[1]", "(%M)'[:, 0]"},
    [COL] = {"(%Z + %S)", "(%Z * %Z)", "sum(%M, axis = 1)", "max(%M, axis = 1)", "(%M @ %V)",
             "(%M)[:, 1]", "exp(%Z)", "(%Z - logsumexp(%Z))", "min(%M, axis = 1)",
             "mean(%M, axis = 1)", "(%M)[0:3, 2]", "concat(%Z[0:2], %Z[2:3], axis = 0)"},
    [MAT] = {"(%M + %S)", "(%M * %V)", "(%M + stack(%Z))", "(%M * %M)", "exp(%M)",
             "softmax(%M, axis = 1)", "log_softmax(%M, axis = 0)", "(stack(%Z) @ stack(%V)')",
             "(%M @ C)", "(stack(%Z) * %V)", "concat((%M)[:, 0:1], (%M)[:, 1:4], axis = 1)",
             "concat((%M)[0:1], (%M)[1:3], axis = 0)", "concat(%V, (%M)[1:3], axis = 0)",
             "transpose((%M)')", "(%M - stack(max(%M, axis = 1)))", "(onehot(lab, 4) * %S)",
             "where(%M > %S, %M, %V)", "(%M)[0:3, 0:4]", "concat(stack(%Z), (%M)[:, 1:4], axis = 1)",
             "(%M / (1 + %M ^ 2))"},
};

static const char *const constants[] = {"0", "1", "2", "0.5", "3", "0.125", "1e-3", "1e20",
                                        "pi", "inf", "(0 / 0)", "1.5"};

static int count(const char *const *list, int max) {
  int n = 0;
  while (n < max && list[n])
    n++;
  return n;
}

static void generate(Buf *b, DlrtRng *rng, Kind kind, int depth) {
  const char *tmpl = depth > 0 && rng_int(rng, 5) ? rules[kind][rng_int(rng, count(rules[kind], 48))]
                                                  : leaves[kind][rng_int(rng, 8)];
  for (const char *c = tmpl; *c; c++) {
    if (*c != '%') {
      buf_printf(b, "%c", *c);
      continue;
    }
    c++;
    if (*c == 'c')
      buf_puts(b, constants[rng_int(rng, sizeof constants / sizeof constants[0])]);
    else
      generate(b, rng, *c == 'S' ? SC : *c == 'V' ? VEC : *c == 'Z' ? COL : MAT, depth - 1);
  }
}

/* ---- the property */

static int checked, left_out;                    /* formulas: read back, and too long to */

static void add(Formula *f, int *n, const char *what, Node *node, Program *p, Binding binding) {
  if (ir_tree_size(node) > MAX_TERMS) {
    left_out++;
    return;
  }
  f[*n] = (Formula){what, node, p, binding, format(node, p)};
  (*n)++;
}

/* What a user sees of e (`scalar` is e, or its sum): print(diff(...))
 * with t and u free symbols, simplified. */
static void user_formulas(Prog *user, const char *e, const char *scalar, Formula *f, int *n) {
  Buf text = {0};
  buf_printf(&text, "%sprint(diff((%s) * s, s))\nprint(diff(%s, t))\n", ENV, e, scalar);
  buf_printf(&text, "print(diff(diff(%s, t), t))\nprint(diff(diff(%s, t), u))\n", scalar, scalar);
  must_open(user, "user.dl", text.data);
  Node *printed[4];
  last_prints(user->p, printed, 4);
  const char *what[4] = {"the formula", "d/dt", "d2/dt2", "d2/dtdu"};
  for (int i = 0; i < 4; i++)
    add(f, n, what[i], printed[i], user->p, FREE);
  buf_free(&text);
}

/* What training works on: e as sema builds it, t and u params, and its
 * gradients before simplification (every shape op diff makes). */
static void raw_formulas(Prog *raw, const char *e, const char *scalar, Formula *f, int *n) {
  Buf text = {0};
  buf_printf(&text, "%sparam t = 0.5\nparam u = 0.5\nprint(%s)\nprint(%s)\n", ENV, e, scalar);
  must_open(raw, "raw.dl", text.data);
  Node *printed[2];
  last_prints(raw->p, printed, 2);
  Graph *g = raw->p->graph;
  Node *dt = diff_node(g, printed[1], param_node(raw->p, "t"));
  Node *dtu = diff_node(g, simplify_node(g, dt), param_node(raw->p, "u"));
  add(f, n, "the raw formula", printed[0], raw->p, PARAMS);
  add(f, n, "the raw d/dt", dt, raw->p, PARAMS);
  add(f, n, "the raw d2/dtdu", dtu, raw->p, PARAMS);
  buf_free(&text);
}

/* The formulas of one expression e (of `kind`), printed and read back. */
static void roundtrip(const char *e, Kind kind, DlrtRng *rng) {
  Buf scalar = {0}, prelude = {0};
  buf_printf(&scalar, kind == SC ? "%s" : "sum(%s)", e);
  Formula f[MAXF];
  int n = 0;
  Prog user, raw;
  user_formulas(&user, e, scalar.data, f, &n);
  raw_formulas(&raw, e, scalar.data, f, &n);
  buf_printf(&prelude, "%sparam t = 0.5\nparam u = 0.5\n", ENV);
  read_back("back.dl", prelude.data, f, n, rng, e);
  checked += n;
  for (int i = 0; i < n; i++)
    free(f[i].text);
  buf_free(&prelude);
  buf_free(&scalar);
  prog_close(&raw);
  prog_close(&user);
}

START_TEST(random_formulas_read_back) {
  DlrtRng rng;
  dlrt_rng_seed(&rng, 24);
  Buf e = {0};
  for (int i = 0; i < NEXPR; i++) {
    Kind kind = (Kind)rng_int(&rng, 4);
    e.len = 0;
    generate(&e, &rng, kind, 1 + rng_int(&rng, 3));
    roundtrip(e.data, kind, &rng);
  }
  buf_free(&e);
  /* What is left out (too long; at wild fn calls) must be little. */
  ck_assert_msg(left_out * 100 < checked, "%d formulas checked, %d left out as too long", checked,
                left_out);
  ck_assert_msg(values_left_out * 20 < checked * NPOINT,
                "%d formulas checked at %d points, %d values left out", checked, NPOINT,
                values_left_out);
}
END_TEST

/* ---- the examples */

/* The repository's root, from this file's path (CMake compiles it by its
 * full path). */
static const char *source_root(char *buf, size_t size) {
  snprintf(buf, size, "%s", __FILE__);
  char *tail = strstr(buf, "tests/unit/check_roundtrip.c");
  ck_assert_msg(tail, "cannot find the sources from %s", __FILE__);
  *tail = '\0';
  return buf;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  char *text = malloc((size_t)len + 1);
  ck_assert_int_eq(fread(text, 1, (size_t)len, f), (size_t)len);
  text[len] = '\0';
  fclose(f);
  return text;
}

/* `dlc emit grad` of one example: the loss and each gradient, read back
 * after the example's own text, at the params' initial values. */
static void example_roundtrip(const char *path) {
  char *source = slurp(path);
  Prog ex;
  if (!prog_open(&ex, path, source))
    flunk("%s does not compile:\n%s", path, diag_text(&ex));
  int np = ex.p->nparams;
  Node *roots[np + 1];
  ck_assert(loss_and_grads(ex.p, ex.p->loss, roots));
  Formula f[np + 1];
  for (int i = 0; i <= np; i++)
    f[i] = (Formula){i ? ex.p->params[i - 1].name : "loss", roots[i], ex.p, AS_IS,
                     format(roots[i], ex.p)};
  Buf text = {0};
  buf_printf(&text, "%s\n", source);
  for (int i = 0; i <= np; i++)
    buf_printf(&text, "print(%s)\n", f[i].text);
  Prog back;
  if (!prog_open(&back, path, text.data))
    flunk("emit grad of %s does not read back:\n%s\n%s", path, text.data, diag_text(&back));
  Node *r[np + 1];
  last_prints(back.p, r, np + 1);
  for (int i = 0; i <= np; i++) {
    check_same(&f[i], back.p, r[i], 0, 0, path);
    free(f[i].text);
  }
  checked += np + 1;
  buf_free(&text);
  prog_close(&back);
  prog_close(&ex);
  free(source);
}

START_TEST(examples_read_back) {
  char root[4096], dir[4200], path[4600];
  snprintf(dir, sizeof dir, "%sexamples", source_root(root, sizeof root));
  DIR *d = opendir(dir);
  ck_assert_msg(d, "cannot open %s", dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 3 || strcmp(e->d_name + len - 3, ".dl") != 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    example_roundtrip(path);
    n++;
  }
  closedir(d);
  ck_assert_int_ge(n, 10);
}
END_TEST

/* ---- the kinks */

/* Derivatives where the documented convention decides (§4.1, §4.3,
 * §4.4, §4.5), printed and read back. */
static const struct {
  const char *expr, *wrt;
  double t, u, want;
} kinks[] = {
    {"abs(t)", "t", 0, 0, 0},                    /* sign(0) */
    {"relu(t)", "t", 0, 0, 0},                   /* t > 0 */
    {"sign(t)", "t", 0, 0, 0},
    {"max(t, u)", "t", 1, 1, 0.5},               /* a tie: half to each */
    {"min(t, u)", "u", 1, 1, 0.5},
    {"max(t * [1, 1, 0.5])", "t", 2, 0, 1},      /* tied elements share evenly */
    {"min(u * [2, -1, -1])", "u", 3, 3, -1},
    {"where(t > 0, t^2, -t)", "t", 0, 0, -1},    /* the branch taken */
    {"where(t > 0, sqrt(t), u * t)", "t", -1, 3, 3},   /* sqrt's NaN is not taken */
    {"t^u", "t", 0, 0, 0},                       /* b a^(b-1) is 0 * inf: 0, as torch */
    {"t^u", "t", 2, 0, 0},
    {"t^u", "t", 0, 2, 0},
    {"t^u", "u", 0, 0, 0},                       /* a^b log a at a = 0, b >= 0: 0 */
    {"t^u", "u", 0, 2, 0},
    {"pow(t, u) * 3", "t", 0, 0, 0},
};

START_TEST(kinks_follow_the_conventions) {
  for (size_t i = 0; i < sizeof kinks / sizeof kinks[0]; i++) {
    char text[256], source[128];
    snprintf(text, sizeof text, "print(diff(%s, %s))\n", kinks[i].expr, kinks[i].wrt);
    snprintf(source, sizeof source, "diff(%s, %s)", kinks[i].expr, kinks[i].wrt);
    Prog user;
    must_open(&user, "kink.dl", text);
    Node *d;
    last_prints(user.p, &d, 1);
    Formula f = {"the derivative", d, user.p, FREE, format(d, user.p)};
    Tensor at = eval_formula(&f, kinks[i].t, kinks[i].u);
    ck_assert_msg(at.v[0] == kinks[i].want, "%s = %s at t = %g, u = %g is %g, not %g", source, f.text,
                  kinks[i].t, kinks[i].u, at.v[0], kinks[i].want);
    free(at.v);
    snprintf(text, sizeof text, "param t = %.17g\nparam u = %.17g\nprint(%s)\n", kinks[i].t,
             kinks[i].u, f.text);
    Prog back;
    must_open(&back, "back.dl", text);
    Node *r;
    last_prints(back.p, &r, 1);
    check_same(&f, back.p, r, kinks[i].t, kinks[i].u, source);
    free(f.text);
    prog_close(&back);
    prog_close(&user);
  }
}
END_TEST

/* ---- exact spellings */

/* What the printer writes where the spelling is a choice: parentheses
 * (associativity, comparisons, minus and ^), numbers dl has no literal
 * for, broadcasts whose length counts, and the shape ops. */
START_TEST(formulas_are_spelled_as_dl) {
  static const struct {
    const char *expr, *printed;
  } cases[] = {
      {"diff(sum((t + x) / t), t)", "sum(fill(4, 1) / t) - sum((t + x) / t / t)"},
      {"diff(where((t > 0) > u, t, 0), t)", "where((t > 0) > u, 1, 0)"},
      {"diff(t * (0 / 0), t)", "0 / 0"},
      {"diff(t * (1 / 0), t)", "inf"},
      {"diff(t * (-1 / 0), t)", "-inf"},
      {"diff(t * (0 / 0) * s, s)", "0 / 0 * t"},
      {"diff(-(t^2) * s, s)", "-t^2"},
      {"diff((-t)^2 * s, s)", "(-t)^2"},
      {"diff(t ^ -u * s, s)", "t^(-u)"},
      {"diff(t^u^k * s, s)", "t^u^k"},
      {"diff((t^u)^k * s, s)", "(t^u)^k"},
      {"diff((t + (u + k)) * s, s)", "t + (u + k)"},
      {"diff((t - (u - k)) * s, s)", "t - (u - k)"},
      {"diff((t / (u / k)) * s, s)", "t / (u / k)"},
      {"diff(((t < u) == (u > k)) * s, s)", "(t < u) == (u > k)"},
      {"diff(t^2 * A[0, 1], t)", "2 * A[0, 1] * t"},
      {"diff(t^2 * A[1], t)", "2 * t * A[1, :]"},
      {"diff(t^2 * sum(A, axis = 1), t)", "2 * t * sum(A, axis = 1)"},
      {"diff(t * max(x), t)", "max(x)"},
      {"diff(t * onehot(lab, 4), t)", "onehot(lab, 4)"},
      {"diff(sum((t * x)[1:3]), t)", "sum(concat(zeros(1), fill(2, 1), zeros(1), axis = 0) * x)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[512];
    snprintf(text, sizeof text, "%sprint(%s)\n", ENV, cases[i].expr);
    Prog user;
    must_open(&user, "case.dl", text);
    Node *d;
    last_prints(user.p, &d, 1);
    char *printed = format(d, user.p);
    ck_assert_msg(strcmp(printed, cases[i].printed) == 0, "%s prints\n  %s\nnot\n  %s", cases[i].expr,
                  printed, cases[i].printed);
    free(printed);
    prog_close(&user);
  }
}
END_TEST

static Suite *roundtrip_suite(void) {
  Suite *s = suite_create("roundtrip");
  TCase *tc = tcase_create("random");
  tcase_add_test(tc, random_formulas_read_back);
  suite_add_tcase(s, tc);
  tc = tcase_create("examples");
  tcase_add_test(tc, examples_read_back);
  suite_add_tcase(s, tc);
  tc = tcase_create("conventions");
  tcase_add_test(tc, kinks_follow_the_conventions);
  tcase_add_test(tc, formulas_are_spelled_as_dl);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(roundtrip_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
