/* matrix.c — the operators and built-ins that change shapes.
 *
 * `@`, indexing and slicing, stack and concat, transpose, onehot, and the
 * reductions along an axis (sum, mean, max, min, argmax, logsumexp,
 * softmax, log_softmax). Each is a NumPy convention written out in a few
 * IR ops — MATMUL, TRANSPOSE, the K_AXIS reductions (which keep the
 * reduced axis), SLICE, PAD, RESHAPE — after checking the shapes it is
 * given: a vector on the left of `@` is a row and on its right a column, a
 * negative index or axis counts from the end, a slice is clipped, and the
 * dimension NumPy drops is dropped by a RESHAPE. Settled here, in one
 * file, these conventions never reach the passes after sema: they see
 * those ops on shapes written out.
 */
#include "dlc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
Node *elab_matmul(Sema *s, const Expr *e, Node *a, Node *b) {
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

Node *elab_index(Sema *s, const Expr *e, Local *locals) {
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

/* stack(v, ...): vectors as the columns of a matrix; concat(A, ..., axis =
 * 1): matrices side by side (axis 0: one on another), vectors counting as
 * columns (rows). Each part is padded to the result's shape and added. */
Node *elab_join(Sema *s, const Expr *e, bool stack, Local *locals) {
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
Node *elab_tensor_call(Sema *s, const Expr *e, const Builtin *b, Expr **args, Local *locals) {
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
