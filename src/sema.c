/* sema.c — checking, and elaboration of the AST into IR.
 *
 * One walk over the statements, top to bottom, as they will run. Each
 * expression is checked (names, arity, named arguments, shapes, what must be
 * constant) and turned into DAG nodes in the same step, because shapes are
 * properties of the nodes: `linspace(-pi, pi, 2000)` has length 2000 only
 * once its arguments are evaluated.
 *
 * Definitions are equations: `y_pred = a + b * x` stays a node over the
 * params. A definition that depends on no param is evaluated once, here
 * (hoisted), and becomes a data leaf of its own, which remembers the
 * expression that computed it for diff().
 * Param initial values are evaluated here too. What remains to run — prints
 * and training — becomes the program's action list (exec.c runs it).
 *
 * A fn is inlined at each call. The call node carries the inlined body and
 * each argument's partial derivative: the hand-written `deriv` with the
 * actual arguments (and `value`, the body) substituted, or else the body's
 * symbolic derivative. diff.c then only multiplies by the adjoint. That is
 * the chain rule of an elementwise fn; a fn whose body sums or averages its
 * arguments is not one, so it is inlined as a plain expression and takes
 * no deriv. Each distinct call (a fn and its argument nodes) is inlined
 * once and remembered, so the work stays linear in the program however
 * fns call fns.
 *
 * The graph may hold MAX_NODES nodes: the statement, call or diff that
 * takes it past them is an error there.
 *
 * Errors never stop the walk: a failed expression elaborates to NULL, and
 * NULL operands are passed over silently, so one mistake gives one message.
 */
#include "dlc.h"

#include <ctype.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SYM_PARAM, SYM_DEF, SYM_FN } SymKind;

typedef struct Sym {
  const char *name;
  SymKind kind;
  Span span;                                     /* where it was defined */
  Node *node;                                    /* its value: a leaf when hoisted */
  Fn *fn;                                        /* SYM_FN */
  struct Sym *next;
  struct Sym *bucket_next;                       /* in Program.sym_buckets */
} Sym;

/* Names bound inside a fn body or deriv: the formals and `value`. */
typedef struct Local {
  const char *name;
  Node *node;
  struct Local *next;
} Local;

typedef struct CsvFile {
  char *path;
  DlrtCsv csv;
  struct CsvFile *next;
} CsvFile;

typedef struct Sema {
  Program *p;
  Graph *g;
  Diags *d;
  Sym *syms;
  const Fn *defining;                            /* fn whose body is being checked */
  bool in_diff;                                  /* undefined names are free symbols */
  bool loss_failed;                              /* `loss = ...` had errors: stay quiet about it */
  bool said_full;                                /* the graph's limit was reported */
  CsvFile *csvs;
} Sema;

/* ---- the built-ins */

typedef enum {
  B_ELEM,                                        /* elementwise op */
  B_REDUCE,                                      /* sum, mean */
  B_LEN,
  B_LINSPACE, B_ZEROS, B_ONES, B_FILL, B_RAND, B_RANDN, B_EYE, B_LOAD_CSV,
  B_MAXMIN,                                      /* max, min: of two, or a reduction */
  B_LOGSUMEXP, B_SOFTMAX, B_LOG_SOFTMAX, B_ARGMAX, B_ONEHOT, B_TRANSPOSE,
  B_STACK, B_CONCAT,                             /* any number of arguments */
  B_DIFF,
  B_TRAIN, B_PRINT,                              /* statements */
  B_OPTIMIZER,                                   /* sgd, adam, rmsprop */
} BuiltinKind;

enum { MAX_PARAMS = 6 };

typedef struct Builtin {
  const char *name;
  BuiltinKind kind;
  int op;                                        /* B_ELEM, B_REDUCE: the Op; B_OPTIMIZER: OptimKind */
  int nrequired;
  const char *params[MAX_PARAMS];
} Builtin;

static const Builtin builtins[] = {
  {"sin", B_ELEM, OP_SIN, 1, {"x"}},
  {"cos", B_ELEM, OP_COS, 1, {"x"}},
  {"tan", B_ELEM, OP_TAN, 1, {"x"}},
  {"exp", B_ELEM, OP_EXP, 1, {"x"}},
  {"log", B_ELEM, OP_LOG, 1, {"x"}},
  {"sqrt", B_ELEM, OP_SQRT, 1, {"x"}},
  {"tanh", B_ELEM, OP_TANH, 1, {"x"}},
  {"sigmoid", B_ELEM, OP_SIGMOID, 1, {"x"}},
  {"abs", B_ELEM, OP_ABS, 1, {"x"}},
  {"sign", B_ELEM, OP_SIGN, 1, {"x"}},
  {"log1p", B_ELEM, OP_LOG1P, 1, {"x"}},
  {"expm1", B_ELEM, OP_EXPM1, 1, {"x"}},
  {"atan", B_ELEM, OP_ATAN, 1, {"x"}},
  {"relu", B_ELEM, OP_RELU, 1, {"x"}},
  {"softplus", B_ELEM, OP_SOFTPLUS, 1, {"x"}},
  {"min", B_MAXMIN, OP_MIN, 1, {"a", "b", "axis"}},
  {"max", B_MAXMIN, OP_MAX, 1, {"a", "b", "axis"}},
  {"pow", B_ELEM, OP_POW, 2, {"a", "b"}},
  {"where", B_ELEM, OP_WHERE, 3, {"cond", "a", "b"}},
  {"sum", B_REDUCE, OP_SUM, 1, {"v", "axis"}},
  {"mean", B_REDUCE, OP_MEAN, 1, {"v", "axis"}},
  {"logsumexp", B_LOGSUMEXP, 0, 1, {"x", "axis"}},
  {"softmax", B_SOFTMAX, 0, 1, {"x", "axis"}},
  {"log_softmax", B_LOG_SOFTMAX, 0, 1, {"x", "axis"}},
  {"argmax", B_ARGMAX, 0, 1, {"x", "axis"}},
  {"onehot", B_ONEHOT, 0, 2, {"labels", "k"}},
  {"transpose", B_TRANSPOSE, 0, 1, {"a"}},
  {"stack", B_STACK, 0, 1, {0}},
  {"concat", B_CONCAT, 0, 1, {0}},
  {"len", B_LEN, 0, 1, {"v"}},
  {"linspace", B_LINSPACE, 0, 3, {"start", "stop", "n"}},
  {"zeros", B_ZEROS, 0, 1, {"n", "cols"}},
  {"ones", B_ONES, 0, 1, {"n", "cols"}},
  {"fill", B_FILL, 0, 2, {"n", "value", "cols"}},
  {"rand", B_RAND, 0, 1, {"n", "cols", "seed"}},
  {"randn", B_RANDN, 0, 1, {"n", "cols", "seed"}},
  {"eye", B_EYE, 0, 1, {"n"}},
  {"load_csv", B_LOAD_CSV, 0, 1, {"path", "column", "columns"}},
  {"diff", B_DIFF, 0, 2, {"expr", "wrt"}},
  {"train", B_TRAIN, 0, 0, {"steps", "optimizer", "log_every", "epochs", "batch", "shuffle"}},
  {"print", B_PRINT, 0, 0, {0}},
  {"sgd", B_OPTIMIZER, OPT_SGD, 1, {"lr", "momentum"}},
  {"adam", B_OPTIMIZER, OPT_ADAM, 0, {"lr", "beta1", "beta2", "eps"}},
  {"rmsprop", B_OPTIMIZER, OPT_RMSPROP, 0, {"lr", "alpha", "eps"}},
};
enum { NBUILTINS = sizeof builtins / sizeof builtins[0] };

const char *sema_builtin_name(int i) {
  static const char *const constants[] = {"pi", "inf"};
  if (i < NBUILTINS)
    return builtins[i].name;
  return i - NBUILTINS < 2 ? constants[i - NBUILTINS] : NULL;
}

static const Builtin *find_builtin(const char *name) {
  for (int i = 0; i < NBUILTINS; i++)
    if (strcmp(builtins[i].name, name) == 0)
      return &builtins[i];
  return NULL;
}

static int nparams_of(const Builtin *b) {
  int n = 0;
  while (n < MAX_PARAMS && b->params[n])
    n++;
  return n;
}

static bool is_constant_name(const char *name) {
  return strcmp(name, "pi") == 0 || strcmp(name, "inf") == 0;
}

/* ---- names */

static unsigned name_hash(const char *name) {
  unsigned h = 2166136261u;                      /* FNV-1a */
  for (; *name; name++)
    h = (h ^ (unsigned char)*name) * 16777619u;
  return h;
}

/* Names are looked up through a hash index, so a program of many
 * definitions checks in linear time. */
static Sym *lookup(Sema *s, const char *name) {
  Program *p = s->p;
  if (!p->nsym_buckets)
    return NULL;
  for (Sym *y = p->sym_buckets[name_hash(name) & (unsigned)(p->nsym_buckets - 1)]; y; y = y->bucket_next)
    if (strcmp(y->name, name) == 0)
      return y;
  return NULL;
}

static void index_sym(Program *p, Sym *y) {
  if (p->nsyms >= p->nsym_buckets) {
    int n = p->nsym_buckets ? 2 * p->nsym_buckets : 64;
    Sym **b = calloc((size_t)n, sizeof(Sym *));
    for (int i = 0; i < p->nsym_buckets; i++)
      for (Sym *z = p->sym_buckets[i], *next; z; z = next) {
        next = z->bucket_next;
        z->bucket_next = b[name_hash(z->name) & (unsigned)(n - 1)];
        b[name_hash(z->name) & (unsigned)(n - 1)] = z;
      }
    free(p->sym_buckets);
    p->sym_buckets = b;
    p->nsym_buckets = n;
  }
  Sym **head = &p->sym_buckets[name_hash(y->name) & (unsigned)(p->nsym_buckets - 1)];
  y->bucket_next = *head;                        /* the newest first, as in the list */
  *head = y;
  p->nsyms++;
}

static Local *lookup_local(Local *l, const char *name) {
  for (; l; l = l->next)
    if (strcmp(l->name, name) == 0)
      return l;
  return NULL;
}

/* The closest candidate to a misspelt name, if close enough to be a
 * likely typo: at most a third of its letters changed (and at most 3). */
typedef struct Nearest {
  const char *name;
  const char *best;
  int dist;
} Nearest;

static Nearest nearest(const char *name) {
  int d = (int)strlen(name) / 3 + 1;
  return (Nearest){name, NULL, d > 3 ? 3 : d};
}

static void consider(Nearest *n, const char *cand) {
  int d = edit_distance(n->name, cand);
  if (d < n->dist || (d == n->dist && !n->best && d <= 1)) {
    n->best = cand;
    n->dist = d;
  }
}

static const char *suggest(Sema *s, Local *locals, const char *name, bool functions) {
  if (s->d->nerrors >= MAX_ERRORS)
    return NULL;                                 /* not shown: not worth a pass over every name */
  Nearest n = nearest(name);
  for (Local *l = locals; l && !functions; l = l->next)
    consider(&n, l->name);
  for (Sym *y = s->syms; y; y = y->next)
    if ((y->kind == SYM_FN) == functions)
      consider(&n, y->name);
  if (functions)
    for (int i = 0; i < NBUILTINS; i++)
      consider(&n, builtins[i].name);
  else {
    consider(&n, "pi");
    consider(&n, "inf");
    consider(&n, "loss");
  }
  return n.best;
}

static void undefined(Sema *s, Local *locals, Span span, const char *name, bool function) {
  const char *near = suggest(s, locals, name, function);
  if (near)
    diag_error(s->d, span, "undefined %s '%s'; did you mean '%s'?", function ? "function" : "name",
               name, near);
  else
    diag_error(s->d, span, "undefined %s '%s'", function ? "function" : "name", name);
}

/* ---- arguments: positional or `name = value`, bound to parameter slots */

static int count_args(const Arg *a) {
  int n = 0;
  for (; a; a = a->next)
    n++;
  return n;
}

/* Binds call args to the named parameter slots in out[]. `what` names the
 * callee in messages. */
static bool bind_args(Sema *s, const Expr *call, const char *const *names, int nnames,
                      int nrequired, const char *what, Expr **out) {
  bool ok = true, seen_named = false;
  int pos = 0;
  for (int i = 0; i < nnames; i++)
    out[i] = NULL;
  for (const Arg *a = call->args; a; a = a->next) {
    if (!a->name) {
      if (seen_named) {
        diag_error(s->d, a->value->span, "positional argument after a named one");
        ok = false;
      } else if (pos >= nnames) {
        diag_error(s->d, a->value->span, "%s takes %d argument%s, but %d were given", what,
                   nnames, nnames == 1 ? "" : "s", count_args(call->args));
        return false;
      } else {
        out[pos++] = a->value;
      }
      continue;
    }
    seen_named = true;
    int k = -1;
    for (int i = 0; i < nnames; i++)
      if (strcmp(names[i], a->name) == 0)
        k = i;
    if (k < 0) {
      Nearest near = nearest(a->name);
      for (int i = 0; i < nnames; i++)
        consider(&near, names[i]);
      if (near.best)
        diag_error(s->d, a->name_span, "%s has no argument '%s'; did you mean '%s'?", what,
                   a->name, near.best);
      else
        diag_error(s->d, a->name_span, "%s has no argument '%s'", what, a->name);
      ok = false;
    } else if (out[k]) {
      diag_error(s->d, a->name_span, "argument '%s' of %s is given twice", a->name, what);
      ok = false;
    } else {
      out[k] = a->value;
    }
  }
  for (int i = 0; i < nrequired && ok; i++)
    if (!out[i]) {
      diag_error(s->d, call->span, "%s needs the argument '%s'", what, names[i]);
      ok = false;
    }
  return ok;
}

/* ---- expressions */

static Node *elab(Sema *s, const Expr *e, Local *locals);

/* Every value, data or not, holds at most MAX_ELEMENTS numbers: the
 * interpreter, hoisting and the buffers of a training step allocate
 * whole values. */
static bool fits(Sema *s, Span span, Shape shape, const char *what) {
  double numel = (double)shape_numel(shape);
  if (numel <= MAX_ELEMENTS)
    return true;
  char sh[64];
  diag_error(s->d, span, "%s would make a %s of %.0f numbers; a value holds at most %d", what,
             shape_str(shape, sh), numel, MAX_ELEMENTS);
  return false;
}

static Node *at(Sema *s, Node *n, const Expr *e) {
  return n && fits(s, e->span, n->shape, "this") ? ir_at(n, e->span) : NULL;
}

/* The graph has grown to its limit (MAX_NODES): an error at span, where
 * `what` made it grow; said once, as whatever follows fails alike. */
static bool graph_too_big(Sema *s, Span span, const char *what) {
  if (!graph_full(s->g))
    return false;
  if (!s->said_full)
    diag_error(s->d, span, "%s makes the program's expressions larger than the limit of %u nodes",
               what, s->g->max_nodes);
  s->said_full = true;
  return true;
}

/* NumPy's broadcasting: dimensions aligned from the right (a vector is a
 * row), each pair equal or one of them 1. */
static bool check_broadcast(Sema *s, Span span, Node *a, Node *b, const char *what) {
  Shape out;
  if (shape_broadcast(a->shape, b->shape, &out))
    return fits(s, span, out, what);
  char sa[64], sb[64];
  bool vectors = a->shape.rank == 1 && b->shape.rank == 1;
  diag_error(s->d, span, "%s: %s differ: %s and %s%s", what, vectors ? "lengths" : "shapes",
             shape_str(a->shape, sa), shape_str(b->shape, sb),
             a->shape.rank + b->shape.rank == 3 ? " (a vector is a row; stack(v) makes a column)" : "");
  return false;
}

/* Evaluates a constant scalar (a length, a seed, a learning rate). */
/* n, elaborated from e, is a constant scalar; else an error. */
static bool constant_node(Sema *s, const Expr *e, const Node *n, const char *what) {
  if (n->flags & NODE_HAS_PARAM) {
    diag_error(s->d, e->span, "%s must be a constant, but this depends on a param", what);
    return false;
  }
  if (n->shape.rank != 0) {
    char sh[64];
    diag_error(s->d, e->span, "%s must be a scalar, but this is a %s", what, shape_str(n->shape, sh));
    return false;
  }
  return true;
}

static bool constant_scalar(Sema *s, const Expr *e, Local *locals, const char *what, double *out) {
  Node *n = elab(s, e, locals);
  if (!n || !constant_node(s, e, n, what))
    return false;
  Tensor t;
  char *err = NULL;
  if (!eval_node(s->p, n, NULL, NULL, 0, &t, &err)) {
    diag_error(s->d, e->span, "%s: %s", what, err);
    free(err);
    return false;
  }
  *out = t.v[0];
  free(t.v);
  return true;
}

/* n with each scalar definition it reads put back as its formula: the
 * definition's data holds its value in the working precision. `done`
 * keeps the formula of each leaf (definitions share definitions). */
static Node *formulas_of(Sema *s, Node *n, NodeMap *done) {
  NodeList order = ir_topo(&n, 1), from = {0}, to = {0};
  for (int k = 0; k < order.n; k++) {
    Node *d = order.items[k];
    if (d->op == OP_DATA && d->shape.rank == 0 && s->p->data[d->slot].defn) {
      Node *f = nodemap_get(done, d);
      if (!f)
        nodemap_put(done, d, f = formulas_of(s, s->p->data[d->slot].defn, done));
      nodelist_push(&from, d);
      nodelist_push(&to, f);
    }
  }
  Node *r = from.n ? ir_subst(s->g, n, from.items, to.items, from.n) : n;
  nodelist_free(&order);
  nodelist_free(&from);
  nodelist_free(&to);
  return r;
}

static Node *as_formulas(Sema *s, Node *n) {
  NodeMap done = {0};
  Node *r = formulas_of(s, n, &done);
  nodemap_free(&done);
  return r;
}

/* Past 2^53 a double holds only some whole numbers: a literal such as
 * 9007199254740993 reads as its neighbour. True unless e is such a literal. */
static bool literal_is_exact(const Expr *e, double v) {
  if (e->kind != EX_NUM || !e->span.src)
    return true;
  char printed[64];
  snprintf(printed, sizeof printed, "%.0f", v);
  size_t len = (size_t)(e->span.end - e->span.begin);
  const char *text = e->span.src->text + e->span.begin;
  for (size_t i = 0; i < len; i++)
    if (!isdigit((unsigned char)text[i]))
      return true;                               /* 1e16, 2^53: a double's value, as written */
  return len == strlen(printed) && memcmp(text, printed, len) == 0;
}

/* A whole number (a length, an index, a seed, steps...): exact whatever
 * the working precision. In float32, 16777217 would read as 16777216, so
 * the expression is evaluated in double, through the formulas of the
 * definitions it names, never through their float32 values. */
static bool constant_int(Sema *s, const Expr *e, const char *what, double min, double max,
                         int64_t *out) {
  Node *n = elab(s, e, NULL);
  if (!n || !constant_node(s, e, n, what))
    return false;
  bool f64 = s->p->opts.f64;
  s->p->opts.f64 = true;
  Tensor t;
  char *err = NULL;
  bool ok = eval_node(s->p, as_formulas(s, n), NULL, NULL, 0, &t, &err);
  s->p->opts.f64 = f64;
  if (!ok) {
    diag_error(s->d, e->span, "%s: %s", what, err);
    free(err);
    return false;
  }
  double v = t.v[0];
  free(t.v);
  if (fabs(v) >= 0x1p53 && !literal_is_exact(e, v)) {
    diag_error(s->d, e->span, "%s is not a whole number that double precision holds exactly", what);
    return false;
  }
  if (v != floor(v) || v < min) {
    char num[64];
    dlrt_format(num, sizeof num, v, 1);
    diag_error(s->d, e->span, "%s must be a whole number of at least %.0f, not %s", what, min, num);
    return false;
  }
  if (v > max) {
    char num[64];
    dlrt_format(num, sizeof num, v, 1);
    diag_error(s->d, e->span, "%s is too large: %s (the limit is %.0f)", what, num, max);
    return false;
  }
  *out = (int64_t)v;
  return true;
}

/* A new data leaf holding t (the program owns t's memory from here). */
/* Counts n more numbers of data; false, with an error at span, past
 * MAX_DATA_ELEMENTS. */
static bool budget(Sema *s, Span span, int64_t n) {
  if ((double)s->p->data_elements + (double)n > MAX_DATA_ELEMENTS) {
    diag_error(s->d, span,
               "this would take the program's data past %.0f numbers in all (%.1f GB): too much "
               "for memory",
               MAX_DATA_ELEMENTS, MAX_DATA_ELEMENTS * sizeof(double) / 1e9);
    return false;
  }
  s->p->data_elements += n;
  return true;
}

static Node *data_leaf(Sema *s, Tensor t, const char *name) {
  int slot = program_add_data(s->p, name, t);
  return ir_leaf(s->g, OP_DATA, t.shape, slot, NULL);
}

static Tensor tensor_alloc(Shape shape) {
  return (Tensor){shape, malloc(sizeof(double) * (size_t)shape_numel(shape))};
}

/* The text of an expression as written, to name the data it made. */
static const char *source_text(Sema *s, const Expr *e) {
  const Span *sp = &e->span;
  return sp->src ? arena_strndup(s->p->arena, sp->src->text + sp->begin, (size_t)(sp->end - sp->begin))
                 : NULL;
}

static const char *string_literal(Sema *s, const Expr *e, const char *what) {
  if (e->kind != EX_STR || (e->parts && (e->parts->expr || e->parts->next))) {
    diag_error(s->d, e->span, "%s must be a string literal", what);
    return NULL;
  }
  return e->parts ? e->parts->text : "";
}

static DlrtCsv *csv_file(Sema *s, const Expr *path_expr, const char *path) {
  /* Relative to the file the path is written in (the REPL mixes files). */
  const Source *src = path_expr->span.src ? path_expr->span.src : s->p->src;
  const char *name = src ? src->name : "-";
  char *full;
  if (path[0] == '/' || strcmp(name, "<stdin>") == 0 || !strchr(name, '/'))
    full = strdup(path);
  else {
    char *copy = strdup(name);
    Buf b = {0};
    buf_printf(&b, "%s/%s", dirname(copy), path);
    free(copy);
    full = b.data;
  }
  for (CsvFile *f = s->csvs; f; f = f->next)
    if (strcmp(f->path, full) == 0) {
      free(full);
      return &f->csv;
    }
  CsvFile *f = calloc(1, sizeof *f);
  char err[512];
  if (dlrt_csv_read(full, &f->csv, err, sizeof err) != 0) {
    if (strstr(err, full))
      diag_error(s->d, path_expr->span, "%s", err);
    else
      diag_error(s->d, path_expr->span, "%s: %s", full, err);
    free(full);
    free(f);
    return NULL;
  }
  f->path = full;
  f->next = s->csvs;
  s->csvs = f;
  return &f->csv;
}

/* The index of the column named (or numbered) by e, or -1 after an error. */
static int csv_column_index(Sema *s, DlrtCsv *csv, const char *path, const Expr *e) {
  if (e->kind == EX_STR) {
    const char *name = string_literal(s, e, "the column");
    if (!name)
      return -1;
    int col = dlrt_csv_find(csv, name);
    if (col >= 0)
      return col;
    Buf b = {0};
    for (int i = 0; csv->header && i < csv->ncols; i++)
      buf_printf(&b, "%s'%s'", i ? ", " : "", csv->header[i]);
    if (csv->header)
      diag_error(s->d, e->span, "no column '%s' in '%s' (its columns: %s)", name, path, b.data);
    else
      diag_error(s->d, e->span,
                 "no column '%s': '%s' has no header row; give a 0-based column index", name, path);
    buf_free(&b);
    return -1;
  }
  int64_t index;
  if (!constant_int(s, e, "the column index", 0, 1e9, &index))
    return -1;
  if (index >= csv->ncols) {
    diag_error(s->d, e->span, "column %lld is out of range: '%s' has %d column%s (0 to %d)",
               (long long)index, path, csv->ncols, csv->ncols == 1 ? "" : "s", csv->ncols - 1);
    return -1;
  }
  return (int)index;
}

/* load_csv(path, column = C): a vector; columns = [C, ...]: a matrix of
 * those columns; neither: a matrix of every numeric column. */
static Node *elab_load_csv(Sema *s, const Expr *call, Expr **args) {
  const char *path = string_literal(s, args[0], "the CSV path");
  if (!path)
    return NULL;
  if (args[1] && args[2]) {
    diag_error(s->d, args[2]->span, "load_csv takes 'column' (a vector) or 'columns' (a matrix), not both");
    return NULL;
  }
  if (args[2] && args[2]->kind != EX_LIST) {
    diag_error(s->d, args[2]->span, "'columns' is a list: columns = [\"a\", \"b\"]");
    return NULL;
  }
  DlrtCsv *csv = csv_file(s, args[0], path);
  if (!csv)
    return NULL;
  int cols[csv->ncols + 1], ncols = 0;
  char err[512];
  if (args[1]) {
    if ((cols[ncols++] = csv_column_index(s, csv, path, args[1])) < 0)
      return NULL;
  } else if (args[2]) {
    for (const Arg *a = args[2]->args; a; a = a->next) {
      if (ncols == csv->ncols) {
        diag_error(s->d, a->value->span, "more columns than '%s' has (%d)", path, csv->ncols);
        return NULL;
      }
      if ((cols[ncols++] = csv_column_index(s, csv, path, a->value)) < 0)
        return NULL;
    }
    if (!ncols) {
      diag_error(s->d, args[2]->span, "no columns: name at least one");
      return NULL;
    }
  } else {
    for (int c = 0; c < csv->ncols; c++)         /* a column of names is not data */
      if (dlrt_csv_numeric(csv, c, err, sizeof err) == 0)
        cols[ncols++] = c;
    if (!ncols) {
      diag_error(s->d, call->span, "'%s' has no numeric column", path);
      return NULL;
    }
  }
  if (!budget(s, call->span, (int64_t)csv->nrows * ncols))
    return NULL;
  /* The numbers go straight from the file into the tensor. */
  Tensor t = tensor_alloc(args[1] ? shape_vector(csv->nrows) : shape_matrix(csv->nrows, ncols));
  if (dlrt_csv_columns(csv, cols, ncols, t.v, s->p->opts.f64, err, sizeof err) != 0) {
    diag_error(s->d, call->span, "%s: %s", path, err);
    free(t.v);
    return NULL;
  }
  return data_leaf(s, t, source_text(s, call));
}

/* linspace, zeros, ones, fill, rand, randn, eye: evaluated now, a data
 * leaf. Given `cols`, zeros, ones, fill, rand and randn make an n x cols
 * matrix (rand and randn fill it row by row). */
static Node *elab_constructor(Sema *s, const Expr *call, const Builtin *b, Expr **args) {
  int f64 = s->p->opts.f64;
  Expr *n_expr = b->kind == B_LINSPACE ? args[2] : args[0];
  Expr *cols_expr = b->kind == B_FILL ? args[2] : b->kind == B_LINSPACE || b->kind == B_EYE ? NULL : args[1];
  Expr *value_expr = args[1];
  bool positional = true;
  for (const Arg *a = call->args; a; a = a->next)
    positional &= a->name == NULL;
  if (b->kind == B_FILL && positional && args[2]) {   /* fill(r, c, value), as zeros(r, c) */
    cols_expr = args[1];
    value_expr = args[2];
  }
  Expr *seed_expr = b->kind == B_RAND || b->kind == B_RANDN ? args[2] : NULL;
  int64_t n, cols = 1, seed = 0;
  if (!constant_int(s, n_expr, cols_expr ? "the number of rows" : "the length", 1, MAX_ELEMENTS, &n))
    return NULL;
  if (cols_expr && !constant_int(s, cols_expr, "the number of columns", 1, MAX_ELEMENTS, &cols))
    return NULL;
  if (b->kind == B_EYE)
    cols = n;
  double start = 0, stop = 0, value = 0;
  if (b->kind == B_LINSPACE && (!constant_scalar(s, args[0], NULL, "linspace's start", &start) ||
                                !constant_scalar(s, args[1], NULL, "linspace's stop", &stop)))
    return NULL;
  if (b->kind == B_FILL && !constant_scalar(s, value_expr, NULL, "the fill value", &value))
    return NULL;
  if (seed_expr && !constant_int(s, seed_expr, "the seed", 0, 9007199254740992.0, &seed))
    return NULL;
  if ((double)n * (double)cols > MAX_ELEMENTS) {
    diag_error(s->d, call->span, "%lld x %lld is too many numbers (the limit is %.0f)", (long long)n,
               (long long)cols, (double)MAX_ELEMENTS);
    return NULL;
  }
  int64_t count = n * cols;
  if (!budget(s, call->span, count))
    return NULL;
  Tensor t = tensor_alloc(cols_expr || b->kind == B_EYE ? shape_matrix(n, cols) : shape_vector(n));
  switch (b->kind) {
  case B_LINSPACE: dlrt_linspace(t.v, start, stop, n, f64); break;
  case B_ZEROS: value = 0; /* fall through */
  case B_ONES: if (b->kind == B_ONES) value = 1; /* fall through */
  case B_FILL:
    for (int64_t i = 0; i < count; i++)
      t.v[i] = dlrt_round(value, f64);
    break;
  case B_EYE:
    for (int64_t i = 0; i < count; i++)
      t.v[i] = i / n == i % n;
    break;
  case B_RAND: dlrt_rand(t.v, count, (uint64_t)seed, f64); break;
  case B_RANDN: dlrt_randn(t.v, count, (uint64_t)seed, f64); break;
  default: break;
  }
  return data_leaf(s, t, source_text(s, call));
}

/* fn's body with its formals bound to the actual arguments. */
static Node *elab_body(Sema *s, const Fn *fn, Node *const *actuals) {
  int n = fn->arity;
  Local bound[n + 1];
  for (int i = 0; i < n; i++)
    bound[i] = (Local){fn->formals[i], actuals[i], i + 1 < n ? &bound[i + 1] : NULL};
  return elab(s, fn->stmt->value, n ? &bound[0] : NULL);
}

/* Inlines fn at a call: the body with the formals bound to the actual
 * arguments, and each argument's partial derivative (see the top): hand[i]
 * from its deriv (NULL without one), sym[i] from the body (only where there
 * is no deriv, unless all_sym). The body is also built over symbols for the
 * formals, of the call's full shape, so that its derivative is elementwise
 * rather than summed over broadcast arguments: *body_vars, over var_nodes. */
static bool expand_fn(Sema *s, const Fn *fn, Node *const *actuals, Node **body, Node **hand,
                      Node **sym, bool all_sym, Node **body_vars, Node **var_nodes) {
  int n = fn->arity;
  Shape call = shape_scalar();
  for (int i = 0; i < n; i++)
    shape_broadcast(call, actuals[i]->shape, &call);
  Local bound[n + 1], vars[n + 1];
  for (int i = 0; i < n; i++) {
    bound[i] = (Local){fn->formals[i], actuals[i], i + 1 < n ? &bound[i + 1] : NULL};
    var_nodes[i] = ir_var(s->g, fn->formals[i], call, fn, i);
    vars[i] = (Local){fn->formals[i], var_nodes[i], i + 1 < n ? &vars[i + 1] : NULL};
  }
  *body = elab_body(s, fn, actuals);
  if (!*body || !(*body_vars = elab(s, fn->stmt->value, n ? &vars[0] : NULL)))
    return false;
  for (int i = 0; i < n; i++) {
    sym[i] = NULL;
    if (!fn->derivs[i] || all_sym)
      sym[i] = ir_subst(s->g, diff_node(s->g, *body_vars, var_nodes[i]), var_nodes, actuals, n);
    hand[i] = NULL;
    if (fn->derivs[i]) {
      Local value = {"value", *body, n ? &bound[0] : NULL};
      if (!(hand[i] = elab(s, fn->derivs[i]->value, &value)))
        return false;
      if (hand[i]->shape.rank && !shape_eq(hand[i]->shape, call)) {
        char sd[64], sc[64];
        diag_error(s->d, fn->derivs[i]->value->span,
                   "deriv %s of %s is a %s, but the call's value is a %s", fn->formals[i],
                   fn->name, shape_str(hand[i]->shape, sd), shape_str(call, sc));
        return false;
      }
    }
  }
  return true;
}

/* d e / d wrt, elementwise: where wrt is a scalar and e a vector, the
 * derivative is a vector (d(a * x)/da = x), so differentiate with respect to
 * wrt broadcast to e's shape, where nothing gets summed. */
static Node *elementwise_diff(Graph *g, Node *e, Node *wrt) {
  if (wrt->shape.rank > 0 || e->shape.rank == 0)
    return diff_node(g, e, wrt);
  Node *wide = ir_broadcast(g, wrt, e->shape);
  Node *d = diff_node(g, ir_subst(g, e, &wrt, &wide, 1), wide);
  return ir_subst(g, d, &wide, &wrt, 1);
}

/* ---- fn calls, each made once */

/* A call made already: fn with these actual arguments. Equal arguments
 * are one node (hash-consing), so a call is inlined once however often it
 * is written: a chain of fns that each call the one before twice would
 * otherwise take time exponential in its length. A call that failed is
 * remembered only for the rest of the sema_program run that reported why
 * (a REPL line after it gets the errors again). */
typedef struct FnCall {
  const Fn *fn;
  Node **actuals;                                /* [fn->arity], in the program's arena */
  Node *result;                                  /* NULL: it failed */
  unsigned run;                                  /* the sema_program run that made it */
  unsigned hash;
  struct FnCall *next;                           /* in its bucket */
} FnCall;

typedef struct FnMemo {
  FnCall **buckets;                              /* malloc'd */
  unsigned nbuckets, n;
  unsigned run;                                  /* sema_program runs so far */
} FnMemo;

static unsigned call_hash(const Fn *fn, Node *const *actuals) {
  unsigned h = (unsigned)((uintptr_t)fn >> 4) * 0x9e3779b1u;
  for (int i = 0; i < fn->arity; i++)
    h = (h ^ actuals[i]->id) * 0x85ebca6bu;
  return h ^ (h >> 15);
}

static FnCall *memo_find(FnMemo *m, const Fn *fn, Node *const *actuals, unsigned h) {
  for (FnCall *c = m->nbuckets ? m->buckets[h & (m->nbuckets - 1)] : NULL; c; c = c->next)
    if (c->hash == h && c->fn == fn &&
        memcmp(c->actuals, actuals, sizeof(Node *) * (size_t)fn->arity) == 0)
      return c;
  return NULL;
}

static void memo_grow(FnMemo *m) {
  unsigned nb = m->nbuckets ? m->nbuckets * 2 : 256;
  FnCall **buckets = calloc(nb, sizeof *buckets);
  for (unsigned i = 0; i < m->nbuckets; i++)
    for (FnCall *c = m->buckets[i], *next; c; c = next) {
      next = c->next;
      c->next = buckets[c->hash & (nb - 1)];
      buckets[c->hash & (nb - 1)] = c;
    }
  free(m->buckets);
  m->buckets = buckets;
  m->nbuckets = nb;
}

static void memo_put(Sema *s, const Fn *fn, Node *const *actuals, unsigned h, Node *result) {
  FnMemo *m = s->p->fn_memo;
  FnCall *c = memo_find(m, fn, actuals, h);
  if (!c) {
    if (m->n + 1 > m->nbuckets)
      memo_grow(m);
    c = arena_alloc(s->p->arena, sizeof *c);
    c->fn = fn;
    c->hash = h;
    c->actuals = arena_alloc(s->p->arena, sizeof(Node *) * (size_t)(fn->arity + 1));
    memcpy(c->actuals, actuals, sizeof(Node *) * (size_t)fn->arity);
    c->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = c;
    m->n++;
  }
  c->result = result;
  c->run = m->run;
}

/* A call node. A param the body uses directly (not through an argument)
 * becomes one more argument of the call, with the body's derivative as its
 * partial, so that its gradient flows like the written arguments'. */
static Node *inline_call(Sema *s, const Fn *fn, Node *const *actuals) {
  int n = fn->arity;
  if (!fn->elementwise)          /* a plain expression: the gradient flows through the body */
    return elab_body(s, fn, actuals);
  Node *body, *body_vars, *hand[n + 1], *sym[n + 1], *var_nodes[n + 1];
  if (!expand_fn(s, fn, actuals, &body, hand, sym, false, &body_vars, var_nodes))
    return NULL;
  NodeList all = {0}, partials = {0};
  for (int i = 0; i < n; i++) {
    nodelist_push(&all, actuals[i]);
    nodelist_push(&partials, hand[i] ? hand[i] : sym[i]);
  }
  NodeList used = ir_topo(&body_vars, 1);
  for (int k = 0; k < used.n; k++)
    if (used.items[k]->op == OP_PARAM) {
      Node *d = elementwise_diff(s->g, body_vars, used.items[k]);
      nodelist_push(&all, used.items[k]);
      nodelist_push(&partials, ir_subst(s->g, d, var_nodes, actuals, n));
    }
  Node *r = ir_fncall(s->g, fn, all.items, body, partials.items, all.n);
  nodelist_free(&used);
  nodelist_free(&all);
  nodelist_free(&partials);
  return r;
}

static Node *elab_fn_call(Sema *s, const Expr *call, const Fn *fn, Local *locals) {
  int n = fn->arity;
  Expr *args[n + 1];
  if (!bind_args(s, call, fn->formals, n, n, fn->name, args))
    return NULL;
  Node *actuals[n + 1];
  bool ok = true;
  for (int i = 0; i < n; i++)
    ok &= (actuals[i] = elab(s, args[i], locals)) != NULL;
  if (!ok)
    return NULL;
  for (int i = 1; i < n; i++)
    for (int j = 0; j < i; j++)
      if (!check_broadcast(s, call->span, actuals[j], actuals[i], "the arguments of this call"))
        return NULL;
  unsigned h = call_hash(fn, actuals);
  FnCall *made = memo_find(s->p->fn_memo, fn, actuals, h);
  if (made && (made->result || made->run == s->p->fn_memo->run))
    return made->result;
  Node *r = inline_call(s, fn, actuals);
  if (graph_too_big(s, call->span, "this call"))
    r = NULL;
  memo_put(s, fn, actuals, h, r);
  return r;
}

/* Does the hoisted definition behind data leaf d depend on target? The
 * answers go in `seen` (1 + the answer, by leaf): definitions share
 * definitions, and each is looked into once. */
static bool computed_from(Sema *s, Node *d, Node *target, NodeMap *seen) {
  void *known = nodemap_get(seen, d);
  if (known)
    return (intptr_t)known - 1;
  Node *defn = s->p->data[d->slot].defn;
  bool found = false;
  if (defn) {
    NodeList order = ir_topo(&defn, 1);
    for (int k = 0; k < order.n && !found; k++)
      found = order.items[k] == target ||
              (order.items[k]->op == OP_DATA && computed_from(s, order.items[k], target, seen));
    nodelist_free(&order);
  }
  nodemap_put(seen, d, (void *)(intptr_t)(found + 1));
  return found;
}

/* A hoisted definition is a leaf holding its value. Where it was computed
 * from the target, d e / d target goes through it: such leaves are opened
 * up into their expressions, until none is left between e and the target. */
static Node *expand_toward(Sema *s, Node *e, Node *target) {
  NodeMap seen = {0};
  for (;;) {
    NodeList order = ir_topo(&e, 1), from = {0}, to = {0};
    for (int k = 0; k < order.n; k++) {
      Node *d = order.items[k];
      if (d->op == OP_DATA && d != target && computed_from(s, d, target, &seen)) {
        nodelist_push(&from, d);
        nodelist_push(&to, s->p->data[d->slot].defn);
      }
    }
    if (from.n)
      e = ir_subst(s->g, e, from.items, to.items, from.n);
    int opened = from.n;
    nodelist_free(&order);
    nodelist_free(&from);
    nodelist_free(&to);
    if (!opened) {
      nodemap_free(&seen);
      return e;
    }
  }
}

/* The first node of e that depends on wrt and combines several elements
 * of its arguments (a sum, a product, a slice...); NULL when e is
 * elementwise in wrt, as elementwise_diff needs. */
static const Node *mixing_use(Node *e, const Node *wrt) {
  NodeList order = ir_topo(&e, 1);
  NodeMap depends = {0};
  const Node *mixes = NULL;
  for (int k = 0; k < order.n && !mixes; k++) {
    Node *n = order.items[k];
    bool dep = n == wrt;
    for (int i = 0; i < n->nargs && !dep; i++)
      dep = nodemap_get(&depends, n->args[i]) != NULL;
    if (!dep)
      continue;
    nodemap_put(&depends, n, n);
    OpKind kind = op_info[n->op].kind;
    if (kind == K_REDUCE || kind == K_AXIS || n->op == OP_MATMUL || n->op == OP_TRANSPOSE ||
        n->op == OP_SLICE || n->op == OP_PAD)
      mixes = n;
  }
  nodelist_free(&order);
  nodemap_free(&depends);
  return mixes;
}

static Node *elab_diff(Sema *s, const Expr *call, Expr **args, Local *locals) {
  if (args[1]->kind != EX_NAME) {
    diag_error(s->d, args[1]->span, "diff's second argument must be a name");
    return NULL;
  }
  bool was = s->in_diff;
  s->in_diff = true;
  Node *e = elab(s, args[0], locals);
  Node *wrt = elab(s, args[1], locals);
  s->in_diff = was;
  if (!e || !wrt)
    return NULL;
  e = expand_toward(s, e, wrt);
  if (wrt->shape.rank == 0 && e->shape.rank > 0 && mixing_use(e, wrt)) {
    diag_error(s->d, call->span,
               "diff of a vector by a scalar goes element by element, but this vector mixes its "
               "elements (a sum, a product, a softmax...) where it depends on '%s'; differentiate "
               "a scalar of it, such as its sum, or each element", args[1]->name);
    return NULL;
  }
  /* Linear in e's DAG, but a derivative can be several times the size of
   * what it differentiates: nested diffs grow geometrically. */
  Node *d = simplify_node(s->g, elementwise_diff(s->g, e, wrt));
  return graph_too_big(s, call->span, "this diff") ? NULL : d;
}

/* ---- matrices */

static Node *vector_as_row(Graph *g, Node *x) {
  return x->shape.rank == 1 ? ir_reshape(g, x, shape_matrix(1, x->shape.dim[0])) : x;
}

/* The axis argument of a reduction: 0 or 1 (-1 is the last), or -1 for
 * all of x when absent. A vector's only axis is all of it. */
static bool axis_arg(Sema *s, const Expr *e, Node *x, int *axis) {
  *axis = -1;
  if (!e)
    return true;
  int64_t a;
  if (!constant_int(s, e, "the axis", -1e9, 1e9, &a))
    return false;
  if (x->shape.rank == 0 || a < -x->shape.rank || a >= x->shape.rank) {
    char sh[64];
    diag_error(s->d, e->span, "axis %lld is out of range for a %s%s", (long long)a,
               shape_str(x->shape, sh), x->shape.rank == 2 ? " (axes are 0 and 1)" : x->shape.rank ? " (its axis is 0)" : "");
    return false;
  }
  *axis = x->shape.rank == 1 ? -1 : (int)(a < 0 ? a + 2 : a);
  return true;
}

/* op (RSUM, RMAX, RMIN, ARGMAX) over one axis of a matrix, keeping it (a
 * row or a column); over a whole vector or matrix (axis -1), [1, 1]. */
static Node *reduce_keep(Graph *g, Op op, Node *x, int axis) {
  if (axis < 0)
    return ir_axis(g, op, ir_reshape(g, x, shape_matrix(1, shape_numel(x->shape))), 1);
  return ir_axis(g, op, x, axis);
}

/* The same with NumPy's shapes: the reduced axis goes (a vector or a
 * scalar). */
static Node *reduce(Graph *g, Op op, Node *x, int axis) {
  if (axis < 0 && op == OP_RSUM)
    return ir_unary(g, OP_SUM, x);
  Node *r = reduce_keep(g, op, x, axis);
  return ir_reshape(g, r, axis < 0 ? shape_scalar() : shape_vector(shape_numel(r->shape)));
}

/* log(sum(exp(x))) along an axis, kept: shifted by the (constant) maximum
 * so that exp cannot overflow. */
static Node *logsumexp_keep(Graph *g, Node *x, int axis) {
  Node *m = ir_unary(g, OP_NOGRAD, reduce_keep(g, OP_RMAX, x, axis));
  /* Over all of x (axis -1): its elements as one row, as reduce_keep
   * reads them. */
  Node *rows = axis < 0 ? ir_reshape(g, x, shape_matrix(1, shape_numel(x->shape))) : vector_as_row(g, x);
  Node *shifted = ir_binary(g, OP_SUB, rows, m);
  return ir_binary(g, OP_ADD, m, ir_unary(g, OP_LOG, reduce_keep(g, OP_RSUM, ir_unary(g, OP_EXP, shifted), axis < 0 ? 1 : axis)));
}

/* x @ y for matrices and vectors, as NumPy: a vector on the left is a row,
 * on the right a column, and the result loses that dimension. */
static Node *elab_matmul(Sema *s, const Expr *e, Node *a, Node *b) {
  char sa[64], sb[64];
  if (a->shape.rank == 0 || b->shape.rank == 0) {
    diag_error(s->d, e->span, "'@' multiplies matrices and vectors, not a scalar (%s @ %s); use '*'",
               shape_str(a->shape, sa), shape_str(b->shape, sb));
    return NULL;
  }
  int64_t ka = a->shape.rank == 2 ? a->shape.dim[1] : a->shape.dim[0], kb = b->shape.dim[0];
  if (ka != kb) {
    diag_error(s->d, e->span, "'@': the inner dimensions differ: %s @ %s (%lld and %lld)",
               shape_str(a->shape, sa), shape_str(b->shape, sb), (long long)ka, (long long)kb);
    return NULL;
  }
  Graph *g = s->g;
  if (a->shape.rank == 1 && b->shape.rank == 1)
    return ir_unary(g, OP_SUM, ir_binary(g, OP_MUL, a, b));
  Node *right = b->shape.rank == 1 ? ir_reshape(g, b, shape_matrix(kb, 1)) : b;
  Node *m = ir_binary(g, OP_MATMUL, vector_as_row(g, a), right);
  if (a->shape.rank == 1 || b->shape.rank == 1)
    return ir_reshape(g, m, shape_vector(shape_numel(m->shape)));
  return m;
}

/* One index of A[...] along a dimension of size n: an integer, or a slice
 * lo:hi with Python's meaning (negative counts from the end, slices are
 * clipped). */
static bool index_range(Sema *s, const Expr *e, int64_t n, int64_t *start, int64_t *len, bool *single) {
  *single = e->kind != EX_SLICE;
  if (*single) {
    int64_t i;
    if (!constant_int(s, e, "an index", -1e15, 1e15, &i))
      return false;
    if (i < -n || i >= n) {
      diag_error(s->d, e->span, "index %lld is out of range: the size is %lld (0 to %lld, or -%lld to -1)",
                 (long long)i, (long long)n, (long long)(n - 1), (long long)n);
      return false;
    }
    *start = i < 0 ? i + n : i;
    *len = 1;
    return true;
  }
  int64_t lo = 0, hi = n;
  if ((e->lhs && !constant_int(s, e->lhs, "a slice's start", -1e15, 1e15, &lo)) ||
      (e->rhs && !constant_int(s, e->rhs, "a slice's end", -1e15, 1e15, &hi)))
    return false;
  lo = lo < 0 ? lo + n : lo;
  hi = hi < 0 ? hi + n : hi;
  lo = lo < 0 ? 0 : lo > n ? n : lo;
  hi = hi < 0 ? 0 : hi > n ? n : hi;
  if (hi <= lo) {
    diag_error(s->d, e->span, "this slice is empty (the size is %lld)", (long long)n);
    return false;
  }
  *start = lo;
  *len = hi - lo;
  return true;
}

static Node *elab_index(Sema *s, const Expr *e, Local *locals) {
  Node *x = elab(s, e->lhs, locals);
  if (!x)
    return NULL;
  int nidx = count_args(e->args);
  char sh[64];
  if (nidx > x->shape.rank) {
    diag_error(s->d, e->span, "%d indices for a %s", nidx, shape_str(x->shape, sh));
    return NULL;
  }
  int64_t start[2] = {0, 0}, len[2] = {1, 1};
  bool single[2] = {true, false};
  int k = 0;
  for (const Arg *a = e->args; a; a = a->next, k++) {
    int dim = x->shape.rank == 1 ? 1 : k;         /* a vector's index is a column */
    int64_t n = dim ? shape_cols(x->shape) : shape_rows(x->shape);
    if (!index_range(s, a->value, n, &start[dim], &len[dim], &single[dim]))
      return NULL;
  }
  if (x->shape.rank == 2 && nidx == 1)           /* A[i]: a row, as in NumPy */
    start[1] = 0, len[1] = x->shape.dim[1];
  Graph *g = s->g;
  Node *block = ir_slice(g, x, start[0], start[1],
                         x->shape.rank == 1 ? shape_vector(len[1]) : shape_matrix(len[0], len[1]));
  if (x->shape.rank == 1)
    return single[1] ? ir_reshape(g, block, shape_scalar()) : block;
  if (single[0] && single[1])
    return ir_reshape(g, block, shape_scalar());
  if (single[0] || single[1])
    return ir_reshape(g, block, shape_vector(single[0] ? len[1] : len[0]));
  return block;
}

/* [1, 2, 3]: a vector of constants; [[1, 2], [3, 4]]: a matrix, by rows. */
static Node *elab_list(Sema *s, const Expr *e) {
  int64_t rows = 0, cols = -1;
  bool nested = e->args && e->args->value->kind == EX_LIST;
  for (const Arg *a = e->args; a; a = a->next, rows++) {
    int64_t n = nested && a->value->kind == EX_LIST ? count_args(a->value->args) : -1;
    if ((a->value->kind == EX_LIST) != nested || (nested && cols >= 0 && n != cols)) {
      if (nested)
        diag_error(s->d, a->value->span, "every row of this matrix needs %lld number%s, as its first",
                   (long long)cols, cols == 1 ? "" : "s");
      else
        diag_error(s->d, a->value->span, "a vector's items are numbers (a matrix is a list of lists)");
      return NULL;
    }
    cols = nested ? n : 1;
  }
  if (!rows || !cols) {
    diag_error(s->d, e->span, "an empty list has no value");
    return NULL;
  }
  if (!budget(s, e->span, rows * cols))
    return NULL;
  Tensor t = tensor_alloc(nested ? shape_matrix(rows, cols) : shape_vector(rows));
  int64_t i = 0;
  for (const Arg *a = e->args; a; a = a->next)
    for (const Arg *b = nested ? a->value->args : a; b; b = nested ? b->next : NULL) {
      if (!constant_scalar(s, b->value, NULL, "a list item", &t.v[i])) {
        free(t.v);
        return NULL;
      }
      t.v[i] = dlrt_round(t.v[i], s->p->opts.f64);
      i++;
    }
  return data_leaf(s, t, source_text(s, e));
}

/* stack(v, ...): vectors as the columns of a matrix; concat(A, ..., axis =
 * 1): matrices side by side (axis 0: one on another), vectors counting as
 * columns (rows). Each part is padded to the result's shape and added. */
static Node *elab_join(Sema *s, const Expr *e, bool stack, Local *locals) {
  int axis = 1, n = 0;
  const Expr *axis_expr = NULL;
  for (const Arg *a = e->args; a; a = a->next) {
    if (a->name && !stack && strcmp(a->name, "axis") == 0 && !axis_expr) {
      axis_expr = a->value;
      continue;
    }
    if (a->name) {
      diag_error(s->d, a->name_span, "%s has no argument '%s'", stack ? "stack" : "concat", a->name);
      return NULL;
    }
    n++;
  }
  if (!n) {
    diag_error(s->d, e->span, "%s needs at least one argument", stack ? "stack" : "concat");
    return NULL;
  }
  if (axis_expr) {
    int64_t v;
    if (!constant_int(s, axis_expr, "the axis", 0, 1, &v))
      return NULL;
    axis = (int)v;
  }
  Node *parts[n];
  int k = 0;
  char sh[64];
  bool vectors = true;
  for (const Arg *a = e->args; a; a = a->next) {
    if (a->name)
      continue;
    Node *x = elab(s, a->value, locals);
    if (!x)
      return NULL;
    if (x->shape.rank == 0 || (stack && x->shape.rank != 1)) {
      diag_error(s->d, a->value->span, "%s joins %s, not a %s", stack ? "stack" : "concat",
                 stack ? "vectors" : "vectors and matrices", shape_str(x->shape, sh));
      return NULL;
    }
    vectors &= x->shape.rank == 1;
    parts[k++] = x;
  }
  /* concat(v, w, axis = 0) of vectors is a vector, as in NumPy: the rows
   * [1, n] joined side by side. */
  bool flat = !stack && axis == 0 && vectors;
  if (flat)
    axis = 1;
  int64_t along = 0, across = -1;                /* the result's size along and across the axis */
  k = 0;
  for (const Arg *a = e->args; a; a = a->next) {
    if (a->name)
      continue;
    Node *x = parts[k];
    if (x->shape.rank == 1)                      /* a column (axis 1) or a row (axis 0, or flat) */
      x = ir_reshape(s->g, x, axis && !flat ? shape_matrix(x->shape.dim[0], 1) : shape_matrix(1, x->shape.dim[0]));
    int64_t size_across = axis ? x->shape.dim[0] : x->shape.dim[1];
    if (across >= 0 && size_across != across) {
      diag_error(s->d, a->value->span, "%s: this has %lld %s, the first %lld", stack ? "stack" : "concat",
                 (long long)size_across, axis ? "rows" : "columns", (long long)across);
      return NULL;
    }
    across = size_across;
    along += axis ? x->shape.dim[1] : x->shape.dim[0];
    parts[k++] = x;
  }
  Shape out = axis ? shape_matrix(across, along) : shape_matrix(along, across);
  Node *sum = NULL;
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    Node *p = ir_pad(s->g, parts[i], axis ? 0 : at, axis ? at : 0, out);
    at += axis ? parts[i]->shape.dim[1] : parts[i]->shape.dim[0];
    sum = sum ? ir_binary(s->g, OP_ADD, sum, p) : p;
  }
  return flat ? ir_reshape(s->g, sum, shape_vector(along)) : sum;
}

/* onehot(labels, k): an n x k matrix with a 1 in column labels[i] of row
 * i. The labels must be whole numbers in 0..k-1, checked now when they are
 * known. */
static Node *elab_onehot(Sema *s, const Expr *e, Expr **args, Local *locals) {
  Node *labels = elab(s, args[0], locals);
  int64_t k;
  if (!labels || !constant_int(s, args[1], "the number of classes", 1, 1e6, &k))
    return NULL;
  char sh[64];
  if (labels->shape.rank != 1) {
    diag_error(s->d, args[0]->span, "onehot's labels must be a vector, not a %s", shape_str(labels->shape, sh));
    return NULL;
  }
  if (labels->flags & (NODE_HAS_PARAM | NODE_HAS_VAR)) {
    diag_error(s->d, args[0]->span, "onehot's labels must be data, but these depend on a param");
    return NULL;
  }
  Tensor t;
  char *err = NULL;
  if (!eval_node(s->p, labels, NULL, NULL, 0, &t, &err)) {
    diag_error(s->d, args[0]->span, "%s", err);
    free(err);
    return NULL;
  }
  for (int64_t i = 0; i < labels->shape.dim[0]; i++)
    if (t.v[i] != floor(t.v[i]) || t.v[i] < 0 || t.v[i] >= (double)k) {
      char num[64];
      dlrt_format(num, sizeof num, t.v[i], 1);
      diag_error(s->d, args[0]->span, "label %lld is %s: onehot's labels must be whole numbers from 0 to %lld",
                 (long long)i, num, (long long)(k - 1));
      free(t.v);
      return NULL;
    }
  free(t.v);
  if (!budget(s, e->span, k))
    return NULL;
  Tensor classes = tensor_alloc(shape_vector(k));
  for (int64_t c = 0; c < k; c++)
    classes.v[c] = (double)c;
  Node *column = ir_reshape(s->g, labels, shape_matrix(labels->shape.dim[0], 1));
  return ir_binary(s->g, OP_EQ, column, data_leaf(s, classes, arena_printf(s->p->arena, "0..%lld", (long long)(k - 1))));
}

/* The built-ins of matrices and reductions, whose arguments are not all
 * tensors: an axis, a count. */
static Node *elab_tensor_call(Sema *s, const Expr *e, const Builtin *b, Expr **args, Local *locals) {
  Graph *g = s->g;
  if (b->kind == B_ONEHOT)
    return elab_onehot(s, e, args, locals);
  Node *x = elab(s, args[0], locals);
  if (!x)
    return NULL;
  char sh[64];
  if (b->kind == B_TRANSPOSE) {
    if (x->shape.rank != 2) {
      diag_error(s->d, e->span, "transpose needs a matrix, not a %s (a vector is a row; stack(v) makes a column)",
                 shape_str(x->shape, sh));
      return NULL;
    }
    return ir_unary(g, OP_TRANSPOSE, x);
  }
  if (b->kind == B_MAXMIN && args[1]) {           /* max(a, b): elementwise */
    if (args[2]) {
      diag_error(s->d, args[2]->span, "%s(a, b) is elementwise: it has no axis", b->name);
      return NULL;
    }
    Node *y = elab(s, args[1], locals);
    if (!y || !check_broadcast(s, e->span, x, y, b->name))
      return NULL;
    return ir_binary(g, (Op)b->op, x, y);
  }
  int axis;
  Expr *axis_expr = b->kind == B_MAXMIN ? args[2] : args[1];
  if (x->shape.rank == 0 && b->kind != B_REDUCE && b->kind != B_MAXMIN) {
    diag_error(s->d, e->span, "%s needs a vector or a matrix, not a scalar", b->name);
    return NULL;
  }
  if (!axis_arg(s, axis_expr, x, &axis))
    return NULL;
  switch (b->kind) {
  case B_REDUCE:
    if (axis < 0)
      return ir_unary(g, (Op)b->op, x);
    {
      Node *r = reduce(g, OP_RSUM, x, axis);
      int64_t count = axis == 0 ? x->shape.dim[0] : x->shape.dim[1];
      return b->op == OP_MEAN ? ir_binary(g, OP_DIV, r, ir_const(g, (double)count)) : r;
    }
  case B_MAXMIN:
    if (x->shape.rank == 0)
      return x;
    return reduce(g, b->op == OP_MAX ? OP_RMAX : OP_RMIN, x, axis);
  case B_ARGMAX: {
    Node *r = reduce(g, OP_ARGMAX, x, axis);      /* located, for the error of a gradient through it */
    ir_at(r->op == OP_RESHAPE ? r->args[0] : r, e->span);
    return r;
  }
  case B_LOGSUMEXP: {
    Node *r = logsumexp_keep(g, x, axis);
    return ir_reshape(g, r, axis < 0 ? shape_scalar() : shape_vector(shape_numel(r->shape)));
  }
  case B_SOFTMAX:
  case B_LOG_SOFTMAX: {
    /* Over the last axis unless told: each row of a matrix. */
    int along = axis_expr ? axis : x->shape.rank == 2 ? 1 : -1;
    Node *shifted = ir_binary(g, OP_SUB, vector_as_row(g, x), logsumexp_keep(g, x, along));
    Node *r = b->kind == B_SOFTMAX ? ir_unary(g, OP_EXP, shifted) : shifted;
    return ir_reshape(g, r, x->shape);
  }
  default:
    return NULL;
  }
}

static const char *statement_only(BuiltinKind k) {
  return k == B_TRAIN ? "train(...)" : k == B_PRINT ? "print(...)" : NULL;
}

static Node *elab_call(Sema *s, const Expr *e, Local *locals) {
  if (s->defining && strcmp(e->name, s->defining->name) == 0) {
    diag_error(s->d, e->name_span,
               "'%s' calls itself: a fn is inlined at each call, so it cannot be recursive",
               e->name);
    return NULL;
  }
  Sym *y = lookup_local(locals, e->name) ? NULL : lookup(s, e->name);
  if (lookup_local(locals, e->name) || (y && y->kind != SYM_FN && y->node)) {
    diag_error(s->d, e->name_span, "'%s' is not a function", e->name);
    return NULL;
  }
  if (y)
    return y->fn ? elab_fn_call(s, e, y->fn, locals) : NULL;    /* NULL: its definition had errors */
  const Builtin *b = find_builtin(e->name);
  if (!b) {
    undefined(s, locals, e->name_span, e->name, true);
    return NULL;
  }
  if (statement_only(b->kind)) {
    diag_error(s->d, e->span, "%s is a statement; it has no value", statement_only(b->kind));
    return NULL;
  }
  if (b->kind == B_OPTIMIZER) {
    diag_error(s->d, e->span, "an optimizer is only an argument of train(optimizer = ...)");
    return NULL;
  }
  if (b->kind == B_STACK || b->kind == B_CONCAT)
    return elab_join(s, e, b->kind == B_STACK, locals);
  Expr *args[MAX_PARAMS];
  if (!bind_args(s, e, b->params, nparams_of(b), b->nrequired, b->name, args))
    return NULL;
  switch (b->kind) {
  case B_LINSPACE: case B_ZEROS: case B_ONES: case B_FILL: case B_RAND: case B_RANDN: case B_EYE:
    return elab_constructor(s, e, b, args);
  case B_LOAD_CSV:
    return elab_load_csv(s, e, args);
  case B_REDUCE: case B_MAXMIN: case B_LOGSUMEXP: case B_SOFTMAX: case B_LOG_SOFTMAX:
  case B_ARGMAX: case B_ONEHOT: case B_TRANSPOSE:
    return elab_tensor_call(s, e, b, args, locals);
  case B_DIFF:
    return elab_diff(s, e, args, locals);
  default:
    break;
  }
  int n = nparams_of(b);
  Node *vals[MAX_PARAMS];
  bool ok = true;
  for (int i = 0; i < n; i++)
    ok &= (vals[i] = elab(s, args[i], locals)) != NULL;
  if (!ok)
    return NULL;
  switch (b->kind) {
  case B_LEN:
    return ir_const(s->g, (double)shape_numel(vals[0]->shape));
  default:
    for (int i = 1; i < n; i++)
      for (int j = 0; j < i; j++)
        if (!check_broadcast(s, e->span, vals[j], vals[i], b->name))
          return NULL;
    return ir_op(s->g, (Op)b->op, vals, n);
  }
}

static Node *elab_name(Sema *s, const Expr *e, Local *locals) {
  Local *l = lookup_local(locals, e->name);
  if (l)
    return l->node;
  Sym *y = lookup(s, e->name);
  if (y && y->kind == SYM_FN) {
    diag_error(s->d, e->span, "'%s' is a function; call it: %s(...)", e->name, e->name);
    return NULL;
  }
  if (y)                                         /* node NULL: its definition had errors */
    return y->node;
  if (strcmp(e->name, "pi") == 0)
    return ir_const(s->g, M_PI);
  if (strcmp(e->name, "inf") == 0)
    return ir_const(s->g, INFINITY);
  if (strcmp(e->name, "loss") == 0) {
    if (!s->p->loss && !s->loss_failed)
      diag_error(s->d, e->span, "'loss' is used before 'loss = ...' defines it");
    return s->p->loss;
  }
  if (s->in_diff)
    return ir_var(s->g, e->name, shape_scalar(), NULL, 0);
  if (find_builtin(e->name)) {
    diag_error(s->d, e->span, "'%s' is a function; call it: %s(...)", e->name, e->name);
    return NULL;
  }
  undefined(s, locals, e->span, e->name, false);
  return NULL;
}

static Node *elab(Sema *s, const Expr *e, Local *locals) {
  switch (e->kind) {
  case EX_NUM:
    return at(s, ir_const(s->g, e->num), e);
  case EX_NAME:
    return elab_name(s, e, locals);
  case EX_STR:
    diag_error(s->d, e->span, "a string is not a value here (strings go in print and load_csv)");
    return NULL;
  case EX_UNARY: {
    Node *x = elab(s, e->lhs, locals);
    if (x && e->op == OP_TRANSPOSE && x->shape.rank != 2) {
      char sh[64];
      diag_error(s->d, e->span, "' transposes a matrix, not a %s (a vector is a row; stack(v) makes a column)",
                 shape_str(x->shape, sh));
      return NULL;
    }
    return x ? at(s, ir_unary(s->g, e->op, x), e) : NULL;
  }
  case EX_BINARY: {
    Node *a = elab(s, e->lhs, locals), *b = elab(s, e->rhs, locals);
    if (!a || !b)
      return NULL;
    if (e->op == OP_MATMUL)
      return at(s, elab_matmul(s, e, a, b), e);
    char what[32];
    snprintf(what, sizeof what, "'%s'", op_info[e->op].spelling);
    if (!check_broadcast(s, e->span, a, b, what))
      return NULL;
    return at(s, ir_binary(s->g, e->op, a, b), e);
  }
  case EX_CALL:
    return at(s, elab_call(s, e, locals), e);
  case EX_INDEX:
    return at(s, elab_index(s, e, locals), e);
  case EX_LIST:
    return at(s, elab_list(s, e), e);
  case EX_SLICE:                                 /* the parser makes them only in indices */
    return NULL;
  }
  return NULL;
}

/* ---- statements */

static bool check_new_name(Sema *s, const char *name, Span span) {
  Sym *y = lookup(s, name);
  if (y) {
    diag_error(s->d, span, "'%s' is already defined", name);
    diag_add(s->d, DIAG_NOTE, y->span, "'%s' was defined here", name);
    return false;
  }
  if (find_builtin(name) || is_constant_name(name)) {
    diag_error(s->d, span, "'%s' is a built-in name and cannot be redefined", name);
    return false;
  }
  return true;
}

static Sym *define(Sema *s, const char *name, SymKind kind, Span span) {
  Sym *y = arena_alloc(s->p->arena, sizeof *y);
  y->name = name;
  y->kind = kind;
  y->span = span;
  y->next = s->syms;
  s->syms = y;
  index_sym(s->p, y);
  return y;
}

static void stmt_param(Sema *s, const Stmt *st) {
  Node *init = elab(s, st->value, NULL);
  if (!check_new_name(s, st->name, st->name_span))
    return;
  if (init && (init->flags & NODE_HAS_VAR)) {
    diag_error(s->d, st->value->span, "a param's initial value must be a value, not a formula");
    init = NULL;
  }
  if (init && !budget(s, st->value->span, shape_numel(init->shape)))   /* params are data too */
    init = NULL;
  Tensor t;
  char *err = NULL;
  if (init && !eval_node(s->p, init, NULL, NULL, 0, &t, &err)) {
    diag_error(s->d, st->value->span, "%s", err);
    free(err);
    init = NULL;
  }
  if (!init) {
    /* Still defined, with no value: its uses are not reported again. */
    define(s, st->name, SYM_PARAM, st->name_span);
    return;
  }
  Program *p = s->p;
  if (p->nparams == p->cap_params) {
    p->cap_params = p->cap_params ? p->cap_params * 2 : 8;
    p->params = realloc(p->params, sizeof(ParamInfo) * (size_t)p->cap_params);
  }
  ParamInfo *pi = &p->params[p->nparams];
  *pi = (ParamInfo){.name = st->name, .span = st->name_span, .value = t};
  pi->node = ir_at(ir_leaf(s->g, OP_PARAM, t.shape, p->nparams, NULL), st->name_span);
  p->nparams++;
  define(s, st->name, SYM_PARAM, st->name_span)->node = pi->node;
}

static void stmt_def(Sema *s, const Stmt *st) {
  int first_data = s->p->ndata;
  Node *n = elab(s, st->value, NULL);
  if (!check_new_name(s, st->name, st->name_span))
    return;
  Sym *y = define(s, st->name, SYM_DEF, st->name_span);
  if (!n)
    return;
  y->node = n;
  if (n->flags & (NODE_HAS_PARAM | NODE_HAS_VAR))
    return;
  /* Hoisting: a definition that depends on no param is computed once. A
   * constructor's data just takes the name. */
  if (n->op == OP_DATA && n->slot >= first_data) {
    s->p->data[n->slot].name = st->name;
    return;
  }
  if (!budget(s, st->value->span, shape_numel(n->shape))) {
    y->node = NULL;
    return;
  }
  Tensor t;
  char *err = NULL;
  if (!eval_node(s->p, n, NULL, NULL, 0, &t, &err)) {
    diag_error(s->d, st->value->span, "%s", err);
    free(err);
    y->node = NULL;
    return;
  }
  eval_warn_nonfinite(s->p, n, &t);
  /* A leaf of its own, even for a scalar: `x = 0.7` is not every 0.7, so
   * diff(x * 0.7, x) is 0.7; and formulas show the name. */
  y->node = data_leaf(s, t, st->name);
  s->p->data[y->node->slot].defn = n;
}

static Fn *new_fn(Sema *s, const Stmt *st) {
  Arena *a = s->p->arena;
  Fn *fn = arena_alloc(a, sizeof *fn);
  fn->name = st->name;
  fn->span = st->name_span;
  fn->stmt = st;
  for (const Formal *f = st->formals; f; f = f->next)
    fn->arity++;
  fn->formals = arena_alloc(a, sizeof(char *) * (size_t)(fn->arity + 1));
  fn->derivs = arena_alloc(a, sizeof(Deriv *) * (size_t)(fn->arity + 1));
  int i = 0;
  for (const Formal *f = st->formals; f; f = f->next)
    fn->formals[i++] = f->name;
  return fn;
}

static void stmt_fn(Sema *s, const Stmt *st) {
  bool is_new = check_new_name(s, st->name, st->name_span), ok = is_new;
  Fn *fn = new_fn(s, st);
  for (const Formal *f = st->formals; f; f = f->next) {
    for (const Formal *g = st->formals; g != f; g = g->next)
      if (strcmp(f->name, g->name) == 0) {
        diag_error(s->d, f->span, "argument '%s' is listed twice", f->name);
        ok = false;
      }
    if (strcmp(f->name, "value") == 0 && st->derivs) {
      diag_error(s->d, f->span,
                 "an argument cannot be named 'value' in a fn with derivs: there 'value' is "
                 "the fn's result");
      ok = false;
    }
  }
  for (const Deriv *dv = st->derivs; dv; dv = dv->next) {
    int k = -1;
    for (int i = 0; i < fn->arity; i++)
      if (strcmp(fn->formals[i], dv->arg) == 0)
        k = i;
    if (k < 0) {
      diag_error(s->d, dv->arg_span, "deriv %s: %s has no argument '%s'", dv->arg, fn->name,
                 dv->arg);
      ok = false;
    } else if (fn->derivs[k]) {
      diag_error(s->d, dv->arg_span, "a second deriv for argument '%s' of %s", dv->arg, fn->name);
      diag_add(s->d, DIAG_NOTE, fn->derivs[k]->arg_span, "the first is here");
      ok = false;
    } else {
      fn->derivs[k] = dv;
    }
  }
  /* Check the body and derivs once, with the formals as scalar symbols;
   * calls re-elaborate them with the actual arguments. */
  int n = fn->arity;
  Node *vars[n + 1], *body, *hand[n + 1], *sym[n + 1], *body_vars, *var_nodes[n + 1];
  for (int i = 0; i < n; i++)
    vars[i] = ir_var(s->g, fn->formals[i], shape_scalar(), fn, i);
  s->defining = fn;
  int errors = s->d->nerrors;
  ok &= expand_fn(s, fn, vars, &body, hand, sym, false, &body_vars, var_nodes) &&
        s->d->nerrors == errors;
  s->defining = NULL;
  fn->elementwise = true;
  if (ok) {
    NodeList order = ir_topo(&body_vars, 1);
    for (int k = 0; k < order.n; k++)
      if (op_info[order.items[k]->op].kind == K_REDUCE && (order.items[k]->flags & NODE_HAS_VAR))
        fn->elementwise = false;
    nodelist_free(&order);
  }
  if (!fn->elementwise && st->derivs) {
    diag_error(s->d, st->derivs->span,
               "a deriv needs an elementwise fn, but %s's body sums or averages its arguments; "
               "leave the deriv out: the gradient comes from the body",
               fn->name);
    ok = false;
  }
  if (is_new)
    define(s, st->name, SYM_FN, st->name_span)->fn = ok ? fn : NULL;
  if (ok) {
    if (s->p->nfns == s->p->cap_fns) {
      s->p->cap_fns = s->p->cap_fns ? s->p->cap_fns * 2 : 8;
      s->p->fns = realloc(s->p->fns, sizeof(Fn *) * (size_t)s->p->cap_fns);
    }
    s->p->fns[s->p->nfns++] = fn;
  }
}

static void stmt_loss(Sema *s, const Stmt *st) {
  Node *n = elab(s, st->value, NULL);
  if (s->p->loss || s->loss_failed) {
    diag_error(s->d, st->span, "the loss is already defined");
    return;
  }
  if (n && n->shape.rank != 0) {
    char sh[64];
    diag_error(s->d, st->value->span,
               "the loss must be a scalar, but this is a %s; reduce it with sum(...) or mean(...)",
               shape_str(n->shape, sh));
    n = NULL;
  }
  if (!n) {
    s->loss_failed = true;
    return;
  }
  s->p->loss = n;
}

static void add_action(Program *p, Action *a) {
  *p->actions_tail = a;
  p->actions_tail = &a->next;
}

static bool optimizer(Sema *s, const Expr *e, Optimizer *opt) {
  const Builtin *b = e->kind == EX_CALL ? find_builtin(e->name) : NULL;
  if (!b || b->kind != B_OPTIMIZER) {
    if (e->kind == EX_CALL) {
      Nearest near = nearest(e->name);
      for (int i = 0; i < NBUILTINS; i++)
        if (builtins[i].kind == B_OPTIMIZER)
          consider(&near, builtins[i].name);
      diag_error(s->d, e->name_span, "unknown optimizer '%s'%s%s%s (there are sgd, adam, rmsprop)",
                 e->name, near.best ? "; did you mean '" : "", near.best ? near.best : "",
                 near.best ? "'?" : "");
    } else {
      diag_error(s->d, e->span, "the optimizer must be sgd(...), adam(...) or rmsprop(...)");
    }
    return false;
  }
  Expr *args[MAX_PARAMS];
  if (!bind_args(s, e, b->params, nparams_of(b), b->nrequired, b->name, args))
    return false;
  static const double defaults[][MAX_PARAMS] = {
    [OPT_SGD] = {0, 0},
    [OPT_ADAM] = {1e-3, 0.9, 0.999, 1e-8},
    [OPT_RMSPROP] = {1e-2, 0.99, 1e-8},
  };
  double v[MAX_PARAMS];
  bool ok = true;
  for (int i = 0; i < nparams_of(b); i++) {
    v[i] = defaults[b->op][i];
    if (args[i]) {
      char what[64];
      snprintf(what, sizeof what, "%s's %s", b->name, b->params[i]);
      ok &= constant_scalar(s, args[i], NULL, what, &v[i]);
    }
  }
  if (!ok)
    return false;
  *opt = (Optimizer){.kind = (OptimKind)b->op, .lr = v[0]};
  switch (opt->kind) {
  case OPT_SGD: opt->momentum = v[1]; break;
  case OPT_ADAM: opt->beta1 = v[1]; opt->beta2 = v[2]; opt->eps = v[3]; break;
  case OPT_RMSPROP: opt->alpha = v[1]; opt->eps = v[2]; break;
  }
  /* PyTorch's own checks on the hyper-parameters. */
  for (int i = 0; i < nparams_of(b); i++) {
    const char *name = b->params[i];
    bool unit = strncmp(name, "beta", 4) == 0 || strcmp(name, "alpha") == 0;
    bool bad = !isfinite(v[i]) || v[i] < 0 || (unit && v[i] >= 1) ||
               (strcmp(name, "lr") == 0 && v[i] == 0);
    if (bad) {
      char num[64];
      dlrt_format(num, sizeof num, v[i], s->p->opts.f64);
      diag_error(s->d, args[i] ? args[i]->span : e->span, "%s's %s must be %s, not %s", b->name,
                 name,
                 unit ? "in [0, 1)" : strcmp(name, "lr") == 0 ? "positive and finite"
                                                               : "finite and at least 0",
                 num);
      return false;
    }
  }
  return true;
}

/* Minibatches split the rows of the data (exec.c). Whether the loss can
 * be split is a property of the program: checked here, before anything
 * runs, on the loss over stand-ins of the batch's rows. */
static bool batch_splits(Sema *s, const Action *a) {
  Node *full[ir_count(a->loss) + 1], *leaves[ir_count(a->loss) + 1];
  int nfull;
  int64_t n = ir_batched_data(a->loss, full, &nfull);
  if (n < 2) {
    diag_error(s->d, a->span, "batch: the loss reads no data with rows to split into minibatches");
    return false;
  }
  int64_t rows = a->batch < n ? a->batch : n;     /* as exec.c compiles it */
  for (int m = 0; m < nfull; m++) {
    Shape sh = full[m]->shape;
    sh.dim[0] = rows;
    leaves[m] = ir_batch_leaf(s->g, sh, full[m]->slot);
  }
  const Node *bad = ir_shape_mismatch(ir_rebatch(s->g, a->loss, full, leaves, nfull, rows));
  if (!bad)
    return true;
  diag_error(s->d, a->span,
             "minibatches split the %lld rows of the data, but the loss also combines them with "
             "something of as many rows that is not data (a param?): it cannot be split",
             (long long)n);
  if (bad->span.src)
    diag_add(s->d, DIAG_NOTE, bad->span, "here");
  return false;
}

static void stmt_train(Sema *s, const Expr *e) {
  const Builtin *b = find_builtin("train");
  Expr *args[MAX_PARAMS];
  if (!bind_args(s, e, b->params, nparams_of(b), b->nrequired, "train", args))
    return;
  Action *a = arena_alloc(s->p->arena, sizeof *a);
  a->kind = ACT_TRAIN;
  a->span = e->span;
  a->shuffle = -1;
  bool ok = true;
  if (!args[1]) {
    diag_error(s->d, e->span, "train needs the argument 'optimizer'");
    ok = false;
  } else {
    ok &= optimizer(s, args[1], &a->opt);
  }
  if (!args[0] == !args[3]) {
    diag_error(s->d, e->span, args[0] ? "train takes 'steps' or 'epochs', not both"
                                      : "train needs the argument 'steps' (or 'epochs')");
    ok = false;
  }
  if (args[0])
    ok &= constant_int(s, args[0], "steps", 0, 1e12, &a->steps);
  if (args[3])
    ok &= constant_int(s, args[3], "epochs", 0, 1e12, &a->epochs);
  if (args[2])
    ok &= constant_int(s, args[2], "log_every", 1, 1e12, &a->log_every);
  if (args[4])
    ok &= constant_int(s, args[4], "batch", 1, 1e12, &a->batch);
  if (args[5] && !args[4]) {
    diag_error(s->d, args[5]->span, "shuffle orders minibatches: it needs 'batch'");
    ok = false;
  } else if (args[5]) {
    ok &= constant_int(s, args[5], "the shuffle seed", 0, 9007199254740992.0, &a->shuffle);
  }
  if (args[3] && !args[4])                       /* an epoch of the whole data is a step */
    a->steps = a->epochs;
  if (!s->p->loss) {
    if (!s->loss_failed)
      diag_error(s->d, e->span, "train before loss: define 'loss = ...' above this line");
    return;
  }
  if (!(s->p->loss->flags & NODE_HAS_PARAM)) {
    diag_error(s->d, e->span, "nothing to train: the loss depends on no param");
    return;
  }
  if (s->p->loss->flags & NODE_HAS_VAR) {
    diag_error(s->d, e->span, "the loss has a free symbol; it cannot be trained");
    return;
  }
  /* argmax is flat where it is defined: a gradient through it would be 0,
   * which is never what training it meant. */
  NodeList order = ir_topo(&s->p->loss, 1);
  for (int k = 0; k < order.n && ok; k++)
    if (order.items[k]->op == OP_ARGMAX && (order.items[k]->flags & NODE_HAS_PARAM)) {
      diag_error(s->d, order.items[k]->span.src ? order.items[k]->span : e->span,
                 "argmax has no derivative, and the loss's gradient would flow through it here");
      diag_add(s->d, DIAG_NOTE, e->span, "training this loss needs its gradient");
      ok = false;
    }
  nodelist_free(&order);
  a->loss = s->p->loss;
  if (ok && a->batch > 0)
    ok = batch_splits(s, a);
  if (ok)
    add_action(s->p, a);
}

static PrintItem *print_item(Sema *s, const char *text, Node *node) {
  PrintItem *it = arena_alloc(s->p->arena, sizeof *it);
  it->text = text;
  it->node = node;
  return it;
}

/* A formula prints as a tree (a shared subexpression each time it is
 * used), which can be exponentially longer than its DAG: past
 * MAX_FORMULA_TERMS, an error rather than gigabytes of text. */
static Node *printable(Sema *s, const Expr *e, Node *n) {
  if (!n || !(n->flags & NODE_HAS_VAR))
    return n;
  double terms = ir_tree_size(n);
  if (terms <= MAX_FORMULA_TERMS)
    return n;
  diag_error(s->d, e->span,
             "this formula is too long to print: %.3g terms written out (from %d distinct ones); "
             "the limit is %d",
             terms, ir_count(n), MAX_FORMULA_TERMS);
  return NULL;
}

static void stmt_print(Sema *s, const Expr *e, ActionKind kind) {
  Action *a = arena_alloc(s->p->arena, sizeof *a);
  a->kind = kind;
  a->span = e->span;
  PrintItem **tail = &a->items;
  bool ok = true;
  const Arg *args = kind == ACT_PRINT ? e->args : &(Arg){.value = (Expr *)e};
  for (const Arg *arg = args; arg; arg = arg->next) {
    if (arg->name) {
      diag_error(s->d, arg->name_span, "print has no named arguments");
      ok = false;
      continue;
    }
    if (arg != args)
      tail = &(*tail = print_item(s, " ", NULL))->next;
    if (arg->value->kind != EX_STR) {
      Node *n = printable(s, arg->value, elab(s, arg->value, NULL));
      ok &= n != NULL;
      tail = &(*tail = print_item(s, NULL, n))->next;
      continue;
    }
    for (const StrPart *part = arg->value->parts; part; part = part->next) {
      Node *n = part->expr ? printable(s, part->expr, elab(s, part->expr, NULL)) : NULL;
      ok &= !part->expr || n;
      tail = &(*tail = print_item(s, part->text, n))->next;
    }
  }
  if (ok)
    add_action(s->p, a);
}

static void stmt_expr(Sema *s, const Stmt *st) {
  const Expr *e = st->value;
  const Builtin *b = e->kind == EX_CALL && !lookup(s, e->name) ? find_builtin(e->name) : NULL;
  if (b && b->kind == B_TRAIN)
    stmt_train(s, e);
  else if (b && b->kind == B_PRINT)
    stmt_print(s, e, ACT_PRINT);
  else
    stmt_print(s, e, ACT_SHOW);
}

Program *program_new(Arena *a, Diags *d, Options opts) {
  Program *p = arena_alloc(a, sizeof *p);
  p->arena = a;
  p->graph = graph_new(a);
  p->fn_memo = arena_alloc(a, sizeof *p->fn_memo);
  p->diags = d;
  p->opts = opts;
  p->actions_tail = &p->actions;
  return p;
}

int program_add_data(Program *p, const char *name, Tensor t) {
  if (p->ndata == p->cap_data) {
    p->cap_data = p->cap_data ? p->cap_data * 2 : 8;
    p->data = realloc(p->data, sizeof(DataInfo) * (size_t)p->cap_data);
  }
  p->data[p->ndata] = (DataInfo){name, t, NULL};
  return p->ndata++;
}

double program_round(const Program *p, double v) { return dlrt_round(v, p->opts.f64); }

bool sema_program(Program *p, const Stmt *stmts) {
  Sema s = {.p = p, .g = p->graph, .d = p->diags, .syms = p->syms};
  int errors = p->diags->nerrors;
  p->fn_memo->run++;
  for (const Stmt *st = stmts; st; st = st->next) {
    if (!p->src)
      p->src = st->span.src;
    switch (st->kind) {
    case ST_PARAM: stmt_param(&s, st); break;
    case ST_DEF: stmt_def(&s, st); break;
    case ST_FN: stmt_fn(&s, st); break;
    case ST_LOSS: stmt_loss(&s, st); break;
    case ST_EXPR: stmt_expr(&s, st); break;
    }
    graph_too_big(&s, st->span, "this statement");
  }
  p->syms = s.syms;
  for (CsvFile *f = s.csvs, *next; f; f = next) {
    next = f->next;
    dlrt_csv_free(&f->csv);
    free(f->path);
    free(f);
  }
  return p->diags->nerrors == errors;
}

bool sema_fn_partials(Program *p, const Fn *fn, Node *const *args, Node **body, Node **hand,
                      Node **sym) {
  Sema s = {.p = p, .g = p->graph, .d = p->diags, .syms = p->syms};
  Node *body_vars, *var_nodes[fn->arity + 1];
  return expand_fn(&s, fn, args, body, hand, sym, true, &body_vars, var_nodes);
}

void program_free(Program *p) {
  for (int i = 0; i < p->nparams; i++)
    free(p->params[i].value.v);
  for (int i = 0; i < p->ndata; i++)
    free(p->data[i].value.v);
  free(p->params);
  free(p->data);
  free(p->fns);
  free(p->sym_buckets);
  free(p->fn_memo->buckets);
  graph_free(p->graph);
}
