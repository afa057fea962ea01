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
 * This file is the walk: names, arguments, operators, statements. What
 * some calls elaborate into has files of its own: builtins.c (the table of
 * built-in names), data.c (constructors, lists and load_csv: data made
 * now), matrix.c (`@`, indexing, joins, reductions along an axis) and fn.c
 * (fns inlined at their calls with their partials, and diff()). They share
 * the Sema of a run and the helpers under sema.c in dlc.h.
 *
 * The graph may hold MAX_NODES nodes: the statement, call or diff that
 * takes it past them is an error there.
 *
 * Errors never stop the walk: a failed expression elaborates to NULL, and
 * NULL operands are passed over silently, so one mistake gives one message.
 */
#include "dlc.h"

#include <ctype.h>
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
    Sym **b = xcalloc((size_t)n, sizeof(Sym *));
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
    for (int i = 0; i < nbuiltins; i++)
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

int count_args(const Arg *a) {
  int n = 0;
  for (; a; a = a->next)
    n++;
  return n;
}

/* Binds call args to the named parameter slots in out[]. `what` names the
 * callee in messages. */
bool bind_args(Sema *s, const Expr *call, const char *const *names, int nnames,
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
bool graph_too_big(Sema *s, Span span, const char *what) {
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
bool check_broadcast(Sema *s, Span span, Node *a, Node *b, const char *what) {
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

/* Evaluates a constant scalar (a length, a seed, a learning rate). */
bool constant_scalar(Sema *s, const Expr *e, Local *locals, const char *what, double *out) {
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
bool constant_int(Sema *s, const Expr *e, const char *what, double min, double max,
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

static const char *statement_only(BuiltinKind k) {
  return k == B_TRAIN ? "train(...)" : k == B_PRINT ? "print(...)" : k == B_PLOT ? "plot(...)" : NULL;
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

Node *elab(Sema *s, const Expr *e, Local *locals) {
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
    p->params = xrealloc(p->params, sizeof(ParamInfo) * (size_t)p->cap_params);
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
      s->p->fns = xrealloc(s->p->fns, sizeof(Fn *) * (size_t)s->p->cap_fns);
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
      for (int i = 0; i < nbuiltins; i++)
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

/* plot(PATH, X, Y1, Y2, ..., labels = [...], title = "", xlabel = "", ylabel = "").
 * Checked here like any statement: the path's format and that a file can
 * be written there (before anything runs, as --save's target), the
 * series' shapes, the labels' count. */
static void stmt_plot(Sema *s, const Expr *e) {
  static const char *const names[] = {"labels", "title", "xlabel", "ylabel"};
  const Expr *pos[count_args(e->args) + 1];
  int npos = 0;
  Expr named = *e;
  named.args = NULL;
  Arg **tail = &named.args;
  bool ok = true;
  for (const Arg *a = e->args; a; a = a->next)
    if (a->name) {
      Arg *copy = arena_alloc(s->p->arena, sizeof *copy);
      *copy = *a;
      copy->next = NULL;
      tail = &(*tail = copy)->next;
    } else if (named.args != NULL) {
      diag_error(s->d, a->value->span, "positional argument after a named one");
      ok = false;
    } else {
      pos[npos++] = a->value;
    }
  *tail = NULL;
  Expr *opt[4];
  if (!bind_args(s, &named, names, 4, 0, "plot", opt) || !ok)
    return;
  if (npos < 3) {
    diag_error(s->d, e->span, "plot needs a path, x and at least one y: plot(\"fit.png\", x, y)");
    return;
  }
  PlotStmt *ps = arena_alloc(s->p->arena, sizeof *ps);
  ps->path = string_literal(s, pos[0], "the plot's path");
  ps->path_span = pos[0]->span;
  if (ps->path && plot_format(ps->path) == PLOT_NONE) {
    diag_error(s->d, pos[0]->span, "a plot is written as .png, .svg or .pdf, by the path's extension");
    ok = false;
  } else if (ps->path && writable_target(ps->path)) {
    diag_error(s->d, pos[0]->span, "cannot write the plot '%s': %s", ps->path, writable_target(ps->path));
    ok = false;
  }
  ok &= ps->path != NULL;
  ps->nvalues = npos - 1;
  ps->values = arena_alloc(s->p->arena, (size_t)ps->nvalues * sizeof(Node *));
  for (int i = 0; i < ps->nvalues; i++) {
    const Expr *v = pos[i + 1];
    Node *n = ps->values[i] = elab(s, v, NULL);
    char sh[64], xsh[64];
    if (!n) {
      ok = false;
    } else if (n->flags & NODE_HAS_VAR) {
      diag_error(s->d, v->span, "a formula with a free symbol has no values to plot");
      ok = false;
    } else if (n->shape.rank != 1) {
      diag_error(s->d, v->span, "plot's %s must be a vector, not a %s", i ? "y" : "x", shape_str(n->shape, sh));
      ok = false;
    } else if (i > 0 && ps->values[0] && ps->values[0]->shape.rank == 1 &&
               n->shape.dim[0] != ps->values[0]->shape.dim[0]) {
      diag_error(s->d, v->span, "plot's y must have x's length: x is a %s, this is a %s",
                 shape_str(ps->values[0]->shape, xsh), shape_str(n->shape, sh));
      ok = false;
    }
  }
  const char **texts[] = {NULL, &ps->title, &ps->xlabel, &ps->ylabel};
  for (int k = 1; k < 4; k++)
    if (opt[k])
      ok &= (*texts[k] = string_literal(s, opt[k], names[k])) != NULL;
  if (opt[0] && opt[0]->kind != EX_LIST) {
    diag_error(s->d, opt[0]->span, "labels must be a list of strings: [\"data\", \"fit\"]");
    ok = false;
  } else if (opt[0]) {
    int n = count_args(opt[0]->args);
    if (n != ps->nvalues - 1) {
      diag_error(s->d, opt[0]->span, "%d label%s for %d series (one for each y)", n, n == 1 ? "" : "s",
                 ps->nvalues - 1);
      ok = false;
    }
    ps->labels = arena_alloc(s->p->arena, (size_t)(n + 1) * sizeof(char *));
    int i = 0;
    for (const Arg *a = opt[0]->args; a; a = a->next)
      ok &= (ps->labels[i++] = string_literal(s, a->value, "a label")) != NULL;
  }
  if (!ok)
    return;
  Action *a = arena_alloc(s->p->arena, sizeof *a);
  a->kind = ACT_PLOT;
  a->span = e->span;
  a->plot = ps;
  add_action(s->p, a);
}

static void stmt_expr(Sema *s, const Stmt *st) {
  const Expr *e = st->value;
  const Builtin *b = e->kind == EX_CALL && !lookup(s, e->name) ? find_builtin(e->name) : NULL;
  if (b && b->kind == B_TRAIN)
    stmt_train(s, e);
  else if (b && b->kind == B_PRINT)
    stmt_print(s, e, ACT_PRINT);
  else if (b && b->kind == B_PLOT)
    stmt_plot(s, e);
  else
    stmt_print(s, e, ACT_SHOW);
}

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
  csv_files_free(&s);
  return p->diags->nerrors == errors;
}
