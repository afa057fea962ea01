/* ir.c — the expression DAG.
 *
 * Every value a program computes is a Node: an op from ops.def, a shape and
 * its arguments. Nodes are hash-consed: constructing a node equal to an
 * existing one returns the existing one, so common subexpressions are one
 * node and equality is pointer equality. This is what lets differentiation
 * work on a DAG rather than a tree, and what makes the gradient of the seed
 * share `c + d * x` with the forward pass without any CSE pass.
 *
 * Constructors trust their caller (sema) to have checked shapes; they
 * compute the result shape and never fail. Node ids grow with creation and
 * arguments always exist before their users, so sorting by id is a
 * topological order — passes iterate rather than recurse, which keeps deep
 * expressions off the C stack.
 */
#include "dlc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shapes */

int64_t shape_numel(Shape s) {
  int64_t n = 1;
  for (int i = 0; i < s.rank; i++)
    n *= s.dim[i];
  return n;
}

bool shape_eq(Shape a, Shape b) {
  if (a.rank != b.rank)
    return false;
  for (int i = 0; i < a.rank; i++)
    if (a.dim[i] != b.dim[i])
      return false;
  return true;
}

/* NumPy's rule: align the dimensions from the right; each pair must be
 * equal or one of them 1. */
bool shape_broadcast(Shape a, Shape b, Shape *out) {
  Shape r = a.rank >= b.rank ? a : b;
  for (int i = 1; i <= r.rank; i++) {
    int64_t da = i <= a.rank ? a.dim[a.rank - i] : 1;
    int64_t db = i <= b.rank ? b.dim[b.rank - i] : 1;
    if (da != db && da != 1 && db != 1)
      return false;
    r.dim[r.rank - i] = da == 1 ? db : da;
  }
  *out = r;
  return true;
}

const char *shape_str(Shape s, char buf[64]) {
  switch (s.rank) {
  case 0: snprintf(buf, 64, "scalar"); break;
  case 1: snprintf(buf, 64, "vector[%lld]", (long long)s.dim[0]); break;
  default: snprintf(buf, 64, "matrix[%lld, %lld]", (long long)s.dim[0], (long long)s.dim[1]);
  }
  return buf;
}

/* ---- node maps: open addressing on the node's address */

static unsigned ptr_hash(const Node *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (unsigned)x;
}

void *nodemap_get(const NodeMap *m, const Node *key) {
  if (!m->cap)
    return NULL;
  for (unsigned i = ptr_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == key)
      return m->vals[i];
    if (!m->keys[i])
      return NULL;
  }
}

void nodemap_put(NodeMap *m, const Node *key, void *val) {
  if ((m->n + 1) * 2 > m->cap) {
    unsigned cap = m->cap ? m->cap * 2 : 64;
    NodeMap bigger = {m->arena ? arena_alloc(m->arena, cap * sizeof(Node *)) : xcalloc(cap, sizeof(Node *)),
                      m->arena ? arena_alloc(m->arena, cap * sizeof(void *)) : xcalloc(cap, sizeof(void *)),
                      cap, 0, m->arena};
    for (unsigned i = 0; i < m->cap; i++)
      if (m->keys[i])
        nodemap_put(&bigger, m->keys[i], m->vals[i]);
    nodemap_free(m);
    *m = bigger;
  }
  unsigned i = ptr_hash(key) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != key)
    i = (i + 1) & (m->cap - 1);
  if (!m->keys[i])
    m->n++;
  m->keys[i] = key;
  m->vals[i] = val;
}

void nodemap_free(NodeMap *m) {
  if (!m->arena) {
    free(m->keys);
    free(m->vals);
  }
  *m = (NodeMap){0};
}

/* ---- hash-consing */

Graph *graph_new(Arena *a) {
  Graph *g = arena_alloc(a, sizeof *g);
  g->arena = a;
  g->nbuckets = 1024;
  g->buckets = xcalloc(g->nbuckets, sizeof(Node *));
  g->max_nodes = MAX_NODES;
  return g;
}

void graph_free(Graph *g) {
  if (g)
    free(g->buckets);
}

static unsigned mix(unsigned h, uint64_t v) {
  h ^= (unsigned)(v ^ (v >> 32));
  return h * 0x9e3779b1u;
}

static unsigned name_hash(const char *s) {
  unsigned h = 2166136261u;
  for (; s && *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static unsigned node_hash(const Node *n) {
  uint64_t bits;
  memcpy(&bits, &n->num, sizeof bits);
  unsigned h = mix(mix(mix((unsigned)n->op, bits), (uint64_t)n->slot), (uint64_t)(uintptr_t)n->fn);
  h = mix(h, name_hash(n->name));
  h = mix(mix(mix(h, (uint64_t)n->shape.rank), (uint64_t)n->shape.dim[0]), (uint64_t)n->shape.dim[1]);
  h = mix(mix(h, (uint64_t)n->pos[0]), (uint64_t)n->pos[1]);
  for (int i = 0; i < n->nargs; i++)
    h = mix(h, n->args[i]->id);
  return h;
}

static bool node_equal(const Node *a, const Node *b) {
  if (a->op != b->op || a->nargs != b->nargs || a->slot != b->slot || a->fn != b->fn ||
      !shape_eq(a->shape, b->shape) || memcmp(&a->num, &b->num, sizeof a->num) != 0 ||
      a->pos[0] != b->pos[0] || a->pos[1] != b->pos[1])
    return false;
  if ((a->name == NULL) != (b->name == NULL) || (a->name && strcmp(a->name, b->name) != 0))
    return false;
  for (int i = 0; i < a->nargs; i++)
    if (a->args[i] != b->args[i])
      return false;
  return true;
}

static void graph_grow(Graph *g) {
  unsigned nb = g->nbuckets * 2;
  Node **buckets = xcalloc(nb, sizeof(Node *));
  for (unsigned i = 0; i < g->nbuckets; i++)
    for (Node *n = g->buckets[i], *next; n; n = next) {
      next = n->bucket_next;
      n->bucket_next = buckets[n->hash & (nb - 1)];
      buckets[n->hash & (nb - 1)] = n;
    }
  free(g->buckets);
  g->buckets = buckets;
  g->nbuckets = nb;
}

/* Returns the node equal to the template `t`, creating it if needed. */
static Node *intern(Graph *g, const Node *t) {
  unsigned h = node_hash(t);
  for (Node *n = g->buckets[h & (g->nbuckets - 1)]; n; n = n->bucket_next)
    if (n->hash == h && node_equal(n, t))
      return n;
  if (g->nnodes + 1 > g->nbuckets)
    graph_grow(g);
  Node *n = arena_alloc(g->arena, sizeof *n);
  *n = *t;
  if (t->nargs) {
    n->args = arena_alloc(g->arena, sizeof(Node *) * (size_t)t->nargs);
    memcpy(n->args, t->args, sizeof(Node *) * (size_t)t->nargs);
  }
  n->hash = h;
  n->id = ++g->nnodes;
  for (int i = 0; i < n->nargs; i++)
    n->flags |= n->args[i]->flags;
  if (n->op == OP_PARAM)
    n->flags |= NODE_HAS_PARAM;
  if (n->op == OP_VAR)
    n->flags |= NODE_HAS_VAR;
  unsigned b = h & (g->nbuckets - 1);
  n->bucket_next = g->buckets[b];
  g->buckets[b] = n;
  return n;
}

Node *ir_at(Node *n, Span span) {
  if (!n->span.src)
    n->span = span;
  return n;
}

/* ---- constructors */

Node *ir_const(Graph *g, double v) {
  return intern(g, &(Node){.op = OP_CONST, .shape = shape_scalar(), .num = v});
}

Node *ir_leaf(Graph *g, Op op, Shape shape, int slot, const char *name) {
  return intern(g, &(Node){.op = op, .shape = shape, .slot = slot, .name = name});
}

Node *ir_batch_leaf(Graph *g, Shape shape, int slot) {
  return intern(g, &(Node){.op = OP_DATA, .shape = shape, .slot = slot, .flags = NODE_HAS_BATCH});
}

/* A free symbol. `owner` and `index` tell apart symbols of the same name:
 * a fn's formal x (owner = the fn) is not the user's free symbol x. */
Node *ir_var(Graph *g, const char *name, Shape shape, const void *owner, int index) {
  return intern(g, &(Node){.op = OP_VAR, .shape = shape, .slot = index, .name = name,
                           .fn = (const Fn *)owner});
}

/* The shape of op's result; RESHAPE, SLICE, PAD and BROADCAST carry theirs. */
static Shape result_shape(Op op, Node *const *args, int nargs, int axis) {
  Shape a = args[0]->shape;
  switch (op_info[op].kind) {
  case K_REDUCE: return shape_scalar();
  case K_AXIS: return axis == 0 ? shape_matrix(1, shape_cols(a)) : shape_matrix(shape_rows(a), 1);
  default: break;
  }
  if (op == OP_MATMUL)
    return shape_matrix(shape_rows(a), shape_cols(args[1]->shape));
  if (op == OP_TRANSPOSE)
    return shape_matrix(shape_cols(a), shape_rows(a));
  Shape s = a;
  for (int i = 1; i < nargs; i++)
    shape_broadcast(s, args[i]->shape, &s);
  return s;
}

Node *ir_op(Graph *g, Op op, Node *const *args, int nargs) {
  return intern(g, &(Node){.op = op, .shape = result_shape(op, args, nargs, 0),
                           .nargs = nargs, .args = (Node **)args});
}

Node *ir_unary(Graph *g, Op op, Node *x) { return ir_op(g, op, &x, 1); }

Node *ir_binary(Graph *g, Op op, Node *a, Node *b) {
  Node *args[2] = {a, b};
  return ir_op(g, op, args, 2);
}

Node *ir_where(Graph *g, Node *c, Node *a, Node *b) {
  Node *args[3] = {c, a, b};
  return ir_op(g, OP_WHERE, args, 3);
}

Node *ir_broadcast(Graph *g, Node *x, Shape to) {
  if (shape_eq(x->shape, to))
    return x;
  return intern(g, &(Node){.op = OP_BROADCAST, .shape = to, .nargs = 1, .args = &x});
}

Node *ir_reshape(Graph *g, Node *x, Shape to) {
  while (x->op == OP_RESHAPE)
    x = x->args[0];
  if (shape_eq(x->shape, to))
    return x;
  return intern(g, &(Node){.op = OP_RESHAPE, .shape = to, .nargs = 1, .args = &x});
}

Node *ir_axis(Graph *g, Op op, Node *x, int axis) {
  return intern(g, &(Node){.op = op, .shape = result_shape(op, &x, 1, axis), .nargs = 1,
                           .args = &x, .slot = axis});
}

Node *ir_slice(Graph *g, Node *x, int64_t row, int64_t col, Shape shape) {
  if (shape_eq(x->shape, shape))
    return x;
  return intern(g, &(Node){.op = OP_SLICE, .shape = shape, .nargs = 1, .args = &x,
                           .pos = {row, col}});
}

Node *ir_pad(Graph *g, Node *x, int64_t row, int64_t col, Shape shape) {
  if (shape_eq(x->shape, shape))
    return x;
  return intern(g, &(Node){.op = OP_PAD, .shape = shape, .nargs = 1, .args = &x,
                           .pos = {row, col}});
}

Node *ir_fncall(Graph *g, const Fn *fn, Node *const *actuals, Node *body,
                Node *const *partials, int n) {
  Node *args[2 * n + 1];
  for (int i = 0; i < n; i++) {
    args[i] = actuals[i];
    args[n + 1 + i] = partials[i];
  }
  args[n] = body;
  return intern(g, &(Node){.op = OP_FNCALL, .shape = body->shape, .nargs = 2 * n + 1,
                           .args = args, .fn = fn});
}

bool ir_is_const(const Node *n, double v) {
  while (n->op == OP_BROADCAST)
    n = n->args[0];
  return n->op == OP_CONST && n->num == v;
}

Node *ir_with_args(Graph *g, const Node *n, Node *const *args) {
  Node t = *n;
  t.args = (Node **)args;
  t.flags = 0;
  t.bucket_next = NULL;
  if (n->op == OP_RESHAPE && shape_numel(args[0]->shape) != shape_numel(n->shape)) {
    /* A minibatch's rows (exec.c): the reshape's long dimension follows. */
    int64_t numel = shape_numel(args[0]->shape);
    t.shape = n->shape.rank == 1 ? shape_vector(numel)
              : n->shape.dim[0] == 1 ? shape_matrix(1, numel) : shape_matrix(numel, 1);
  } else if (n->op != OP_BROADCAST && n->op != OP_FNCALL && n->op != OP_RESHAPE &&
             n->op != OP_SLICE && n->op != OP_PAD && op_info[n->op].kind != K_LEAF) {
    t.shape = result_shape(n->op, args, n->nargs, n->slot);
  }
  if (n->op == OP_FNCALL)
    t.shape = args[ir_fncall_arity(n)]->shape;
  return ir_at(intern(g, &t), n->span);
}

/* ---- traversal */

void nodelist_push(NodeList *l, Node *n) {
  if (l->n == l->cap) {
    size_t old = sizeof(Node *) * (size_t)l->cap;
    l->cap = l->cap ? l->cap * 2 : 16;
    l->items = l->arena ? arena_grow(l->arena, l->items, old, sizeof(Node *) * (size_t)l->cap)
                        : xrealloc(l->items, sizeof(Node *) * (size_t)l->cap);
  }
  l->items[l->n++] = n;
}

void nodelist_free(NodeList *l) {
  if (!l->arena)
    free(l->items);
  *l = (NodeList){0};
}

static int by_id(const void *a, const void *b) {
  unsigned x = (*(Node *const *)a)->id, y = (*(Node *const *)b)->id;
  return (x > y) - (x < y);
}

NodeList ir_topo(Node *const *roots, int nroots) { return ir_topo_until(roots, nroots, NULL, NULL); }

NodeList ir_topo_until(Node *const *roots, int nroots, int (*leaf)(const Node *n, void *ctx), void *ctx) {
  NodeList out = {0}, stack = {0};
  NodeMap seen = {0};
  for (int i = 0; i < nroots; i++)
    if (roots[i])
      nodelist_push(&stack, roots[i]);
  while (stack.n) {
    Node *n = stack.items[--stack.n];
    int as_leaf = leaf ? leaf(n, ctx) : 0;
    if (as_leaf < 0 || nodemap_get(&seen, n))
      continue;
    nodemap_put(&seen, n, n);
    nodelist_push(&out, n);
    if (as_leaf)
      continue;
    for (int i = 0; i < n->nargs; i++)
      nodelist_push(&stack, n->args[i]);
  }
  nodemap_free(&seen);
  nodelist_free(&stack);
  if (out.n)
    qsort(out.items, (size_t)out.n, sizeof(Node *), by_id);
  return out;
}

const Node *ir_shape_mismatch(Node *root) {
  NodeList order = ir_topo(&root, 1);
  const Node *bad = NULL;
  for (int k = 0; k < order.n && !bad; k++) {
    Node *n = order.items[k];
    Shape s = n->nargs ? n->args[0]->shape : shape_scalar();
    if (n->op == OP_BROADCAST && !(shape_broadcast(s, n->shape, &s) && shape_eq(s, n->shape)))
      bad = n;
    if (op_elementwise(n->op) || n->op == OP_WHERE)
      for (int i = 1; i < n->nargs && !bad; i++)
        if (!shape_broadcast(s, n->args[i]->shape, &s))
          bad = n;
    if (n->op == OP_MATMUL && shape_cols(n->args[0]->shape) != shape_rows(n->args[1]->shape))
      bad = n;
  }
  nodelist_free(&order);
  return bad;
}

/* root rebuilt over map's replacements (node -> node), which it fills in
 * for every node above them. A broadcast to `rows` rows (rows >= 0)
 * becomes one to `new_rows` whatever its argument: see ir_rebatch. */
static Node *rebuild(Graph *g, Node *root, NodeMap *map, int64_t rows, int64_t new_rows) {
  NodeList order = ir_topo(&root, 1);
  for (int k = 0; k < order.n; k++) {
    Node *m = order.items[k];
    if (nodemap_get(map, m) || !m->nargs)
      continue;
    Node *args[m->nargs];
    bool changed = false;
    for (int i = 0; i < m->nargs; i++) {
      Node *a = nodemap_get(map, m->args[i]);
      args[i] = a ? a : m->args[i];
      changed |= args[i] != m->args[i];
    }
    if (m->op == OP_BROADCAST && rows >= 0 && m->shape.dim[0] == rows) {
      Shape to = m->shape;
      to.dim[0] = new_rows;
      nodemap_put(map, m, ir_at(ir_broadcast(g, args[0], to), m->span));
    } else if (changed) {
      nodemap_put(map, m, ir_with_args(g, m, args));
    }
  }
  Node *r = nodemap_get(map, root);
  nodelist_free(&order);
  nodemap_free(map);
  return r ? r : root;
}

Node *ir_subst(Graph *g, Node *n, Node *const *from, Node *const *to, int count) {
  NodeMap map = {0};
  for (int i = 0; i < count; i++)
    nodemap_put(&map, from[i], to[i]);
  return rebuild(g, n, &map, -1, -1);
}

/* ---- minibatches (exec.c) */

int ir_count(Node *root) {
  NodeList order = ir_topo(&root, 1);
  int n = order.n;
  nodelist_free(&order);
  return n;
}

int64_t ir_batched_data(Node *loss, Node **full, int *nfull) {
  NodeList order = ir_topo(&loss, 1);
  int64_t n = 0;
  for (int k = 0; k < order.n; k++)
    if (order.items[k]->op == OP_DATA && order.items[k]->shape.rank > 0 && order.items[k]->shape.dim[0] > n)
      n = order.items[k]->shape.dim[0];
  *nfull = 0;
  for (int k = 0; k < order.n; k++)
    if (order.items[k]->op == OP_DATA && order.items[k]->shape.rank > 0 && order.items[k]->shape.dim[0] == n)
      full[(*nfull)++] = order.items[k];
  nodelist_free(&order);
  return n;
}

/* As ir_subst, but a broadcast to the data's rows becomes one to the
 * batch's: a broadcast only repeats its argument, so its rows are those
 * of what it is combined with. (The partials sema builds for a fn call
 * broadcast constants to the call's rows, and so does the derivative of
 * a param used inside a fn's body.) A broadcast of something that has the
 * data's rows itself, such as a column param, then no longer fits, which
 * ir_shape_mismatch finds. */
Node *ir_rebatch(Graph *g, Node *loss, Node *const *full, Node *const *leaves, int nfull, int64_t rows) {
  NodeMap map = {0};
  for (int i = 0; i < nfull; i++)
    nodemap_put(&map, full[i], leaves[i]);
  return rebuild(g, loss, &map, full[0]->shape.dim[0], rows);
}

/* ---- printing
 *
 * ir_format writes dl that reads back, in the same program, to the same
 * value with the same shape (tests/unit/check_roundtrip.c holds it to
 * that).
 *
 * Broadcasts are implicit in dl, so the printer leaves a broadcast out
 * where the shape comes back from what the node is combined with: `q + x`
 * for a scalar q against a vector x. The text of a node therefore has a
 * shape of its own (text_shape), which may be smaller than the node's but
 * always broadcasts to it, to the node's value. Where the shape itself
 * counts (what `sum` adds up, the argument of a matrix op or of a fn, the
 * formula as a whole) put_exact writes it out: `sum(fill(4, 1) / q)`.
 *
 * The shape operations that sema and diff build have no spelling of their
 * own; each prints as the dl that makes it: a vector as a column is
 * `stack(v)`, a reduction that keeps its axis as a column
 * `stack(sum(A, axis = 1))`, a block of one element `A[i, j]`, a sum of
 * pads (concat; the gradient of a slice) `concat(...)` with zeros in the
 * gaps, a flattened matrix (a whole max(A), its gradient) the matrix.
 *
 * Operators keep the tree's parentheses: a + (b + c) rounds differently
 * from a + b + c, and comparisons do not chain in dl.
 */

enum { PREC_ATOM = 9 };                          /* names, numbers, calls, (...) */

typedef struct Printer {
  Buf *b;
  const Program *p;
  NodeMap known;                                 /* node -> 1 + its index in shapes */
  Shape *shapes;                                 /* text_shape's answers */
  int nshapes, cap;
  bool unflat;                                   /* in a flat region: a flattened matrix is itself */
} Printer;

static const char *leaf_name(const Node *n, const Program *p) {
  if (n->name)
    return n->name;
  if (n->op == OP_PARAM && p)
    return p->params[n->slot].name;
  if (n->op == OP_DATA && p && p->data[n->slot].name)
    return p->data[n->slot].name;
  return NULL;
}

static void put_node(Printer *pr, const Node *n, unsigned exact);
static void put_exact(Printer *pr, const Node *n, int min_prec);
static Shape text_shape(Printer *pr, const Node *n);
static int text_prec(Printer *pr, const Node *n);

static bool broadcasts_to(Shape s, Shape to) {
  Shape r;
  return shape_broadcast(s, to, &r) && shape_eq(r, to);
}

static void put_dims(Buf *b, Shape s) {
  if (s.rank == 2)
    buf_printf(b, "%lld, %lld", (long long)s.dim[0], (long long)s.dim[1]);
  else
    buf_printf(b, "%lld", (long long)shape_numel(s));
}

static void put_arg(Printer *pr, const Node *n, int min_prec) {
  bool parens = text_prec(pr, n) < min_prec;
  buf_puts(pr->b, parens ? "(" : "");
  put_node(pr, n, 0);
  buf_puts(pr->b, parens ? ")" : "");
}

/* ---- numbers and leaves */

/* dl has no nan (0 / 0 is one) and no negative literals (-2 negates 2). */
static void put_number(Buf *b, double v) {
  char num[64];
  if (isnan(v)) {
    buf_puts(b, "0 / 0");
    return;
  }
  dlrt_format(num, sizeof num, v, 1);
  buf_puts(b, num);
}

static int number_prec(double v) {
  return isnan(v) ? op_info[OP_DIV].prec : signbit(v) ? op_info[OP_NEG].prec : PREC_ATOM;
}

/* Data that has no name (made outside sema): its values, as a list. */
static const Tensor *unnamed_data(const Node *n, const Program *p) {
  return n->op == OP_DATA && p && !leaf_name(n, p) ? &p->data[n->slot].value : NULL;
}

static void put_values(Buf *b, const Tensor *t) {
  if (t->shape.rank == 0) {
    put_number(b, t->v[0]);
    return;
  }
  int64_t rows = shape_rows(t->shape), cols = shape_cols(t->shape);
  buf_puts(b, t->shape.rank == 2 ? "[" : "");
  for (int64_t i = 0; i < rows; i++) {
    buf_puts(b, i ? ", [" : "[");
    for (int64_t j = 0; j < cols; j++) {
      buf_puts(b, j ? ", " : "");
      put_number(b, t->v[i * cols + j]);
    }
    buf_puts(b, "]");
  }
  buf_puts(b, t->shape.rank == 2 ? "]" : "");
}

static void put_leaf(Printer *pr, const Node *n) {
  const char *name = leaf_name(n, pr->p);
  const Tensor *values = unnamed_data(n, pr->p);
  if (name)
    buf_puts(pr->b, name);
  else if (values)
    put_values(pr->b, values);
  else
    buf_printf(pr->b, "%%%u", n->id);
}

/* What a reshape reshapes: a reshape of a reshape is one (as ir_reshape
 * makes them; simplify can leave two). */
static const Node *reshaped(const Node *n) {
  const Node *x = n->args[0];
  while (x->op == OP_RESHAPE)
    x = x->args[0];
  return x;
}

static const Node *unreshaped(const Node *x) { return x->op == OP_RESHAPE ? reshaped(x) : x; }

/* sema's onehot(labels, k): the labels as a column == the row 0 .. k-1, a
 * data leaf that sema names "0..k-1", which is not dl. */
static bool is_onehot(const Printer *pr, const Node *n) {
  if (n->op != OP_EQ || n->args[0]->op != OP_RESHAPE || reshaped(n->args[0])->shape.rank != 1 ||
      n->args[1]->op != OP_DATA || n->args[1]->shape.rank != 1)
    return false;
  const char *name = leaf_name(n->args[1], pr->p);
  char want[64];
  snprintf(want, sizeof want, "0..%lld", (long long)(n->args[1]->shape.dim[0] - 1));
  return name && strcmp(name, want) == 0;
}

/* ---- vectors, and the pieces of matrices */

static void put_index(Printer *pr, const Node *slice, Shape to);
static void put_reduction(Printer *pr, const Node *n);
static void put_product(Printer *pr, const Node *n, bool column);
static Shape product_shape(Printer *pr, const Node *n, bool column);

/* x's elements, row by row, as a vector. */
static void put_vector(Printer *pr, const Node *x, int min_prec) {
  Shape s = x->shape;
  bool line = s.rank == 2 && (s.dim[0] == 1 || s.dim[1] == 1);
  Shape text = text_shape(pr, x);
  if (shape_eq(text, shape_vector(shape_numel(s)))) {
    put_arg(pr, x, min_prec);
  } else if (op_info[x->op].kind == K_AXIS && shape_numel(s) > 1) {
    put_reduction(pr, x);
  } else if (x->op == OP_MATMUL && shape_eq(product_shape(pr, x, true), shape_vector(shape_numel(s)))) {
    bool parens = op_info[OP_MATMUL].prec < min_prec;
    buf_puts(pr->b, parens ? "(" : "");
    put_product(pr, x, true);
    buf_puts(pr->b, parens ? ")" : "");
  } else if (s.rank == 2 && text.rank < 2 && shape_numel(text) == 1) {   /* a broadcast number */
    bool parens = op_info[OP_MUL].prec < min_prec;
    buf_printf(pr->b, "%sfill(%lld, 1) * ", parens ? "(" : "", (long long)shape_numel(s));
    put_arg(pr, x, op_info[OP_MUL].prec + 1);
    buf_puts(pr->b, parens ? ")" : "");
  } else if (line && x->op == OP_SLICE && x->args[0]->shape.rank == 2) {
    put_index(pr, x, shape_vector(shape_numel(s)));
  } else if (s.rank < 2) {
    put_exact(pr, x, min_prec);
  } else if (line) {
    put_exact(pr, x, PREC_ATOM);
    buf_puts(pr->b, s.dim[0] == 1 ? "[0]" : "[:, 0]");
  } else {                                       /* its rows, end to end */
    buf_puts(pr->b, "concat(");
    for (int64_t i = 0; i < s.dim[0]; i++) {
      buf_puts(pr->b, i ? ", " : "");
      put_exact(pr, x, PREC_ATOM);
      buf_printf(pr->b, "[%lld, :]", (long long)i);
    }
    buf_puts(pr->b, ", axis = 0)");
  }
}

/* One dimension of an index: a position, or a range (`:` for all). */
static void put_range(Buf *b, int64_t start, int64_t len, int64_t size, bool single) {
  if (single)
    buf_printf(b, "%lld", (long long)start);
  else if (start == 0 && len == size)
    buf_puts(b, ":");
  else
    buf_printf(b, "%lld:%lld", (long long)start, (long long)(start + len));
}

/* A slice that a reshape makes a vector or a scalar, as an index:
 * A[i, a:b], A[a:b, j], A[i, j], v[i]. */
static void put_index(Printer *pr, const Node *slice, Shape to) {
  const Node *x = slice->args[0];
  Shape s = slice->shape;
  put_exact(pr, x, PREC_ATOM);
  if (x->shape.rank < 2) {
    buf_printf(pr->b, "[%lld]", (long long)slice->pos[1]);
    return;
  }
  bool row = s.dim[0] == 1;                      /* one row: its columns are the vector */
  buf_puts(pr->b, "[");
  put_range(pr->b, slice->pos[0], s.dim[0], x->shape.dim[0], row);
  buf_puts(pr->b, ", ");
  put_range(pr->b, slice->pos[1], s.dim[1], x->shape.dim[1], !row || to.rank == 0);
  buf_puts(pr->b, "]");
}

static void put_slice(Printer *pr, const Node *n) {
  const Node *x = n->args[0];
  put_exact(pr, x, PREC_ATOM);
  buf_puts(pr->b, "[");
  if (x->shape.rank == 2) {
    put_range(pr->b, n->pos[0], shape_rows(n->shape), x->shape.dim[0], false);
    buf_puts(pr->b, ", ");
  }
  put_range(pr->b, n->pos[1], shape_cols(n->shape), shape_cols(x->shape), false);
  buf_puts(pr->b, "]");
}

/* ---- flattened matrices
 *
 * A whole max(A) of a matrix reduces A flattened to a row, and its
 * gradient is shaped back. In between are elementwise ops on flattened
 * r x c matrices and single numbers: such a flat region is written with
 * the matrices themselves, `where(t * A == max(t * A), ...)`, which reads
 * back as r x c where the region is shaped back or reduced whole. */

static bool plain_elementwise(Printer *pr, const Node *n);

static bool is_flatten(const Node *n) {
  const Node *m = n->op == OP_RESHAPE ? reshaped(n) : NULL;
  return m && n->shape.rank == 2 && n->shape.dim[0] == 1 && m->shape.rank == 2 &&
         m->shape.dim[0] > 1 && m->shape.dim[1] > 1;
}

/* Is n a flat region? Its flattened matrices must all be `*rc` (the first
 * one found sets it); `*text` grows to the shape of its text. */
static bool flat_region(Printer *pr, const Node *n, Shape *rc, Shape *text) {
  if (shape_numel(n->shape) == 1)
    return shape_broadcast(*text, text_shape(pr, n), text);
  if (is_flatten(n)) {
    if (rc->rank && !shape_eq(*rc, reshaped(n)->shape))
      return false;
    *rc = reshaped(n)->shape;
    return shape_broadcast(*text, text_shape(pr, reshaped(n)), text);
  }
  if (n->op == OP_BROADCAST || n->op == OP_NOGRAD)
    return flat_region(pr, n->args[0], rc, text);
  if (!plain_elementwise(pr, n))
    return false;
  for (int i = 0; i < n->nargs; i++)
    if (!flat_region(pr, n->args[i], rc, text))
      return false;
  return true;
}

/* Is n a flat region of r x c matrices `rc` (any, if rc is NULL) whose
 * text has all their elements? */
static bool whole_region(Printer *pr, const Node *n, const Shape *rc) {
  Shape found = shape_scalar(), text = shape_scalar();
  return flat_region(pr, n, &found, &text) && found.rank == 2 && (!rc || shape_eq(found, *rc)) &&
         shape_eq(text, found);
}

static void put_region(Printer *pr, const Node *n, int min_prec) {
  pr->unflat = true;
  put_arg(pr, n, min_prec);
  pr->unflat = false;
}

/* ---- reductions and products */

/* sema's logsumexp(x): max(x) + log(sum(exp(x - max(x)))), with the
 * maxima out of the gradient, over an axis kept or over everything: what
 * the maxima are of (x, or x as a row), or NULL when n is not one. */
static const Node *logsumexp_of(const Node *n) {
  if (n->op != OP_ADD || n->args[0]->op != OP_NOGRAD || n->args[1]->op != OP_LOG)
    return NULL;
  const Node *shift = n->args[0], *max = shift->args[0], *sum = n->args[1]->args[0];
  if (max->op != OP_RMAX || sum->op != OP_RSUM || sum->slot != max->slot ||
      sum->args[0]->op != OP_EXP)
    return NULL;
  const Node *shifted = sum->args[0]->args[0];
  bool ok = shifted->op == OP_SUB && shifted->args[0] == max->args[0] && shifted->args[1] == shift;
  return ok ? max->args[0] : NULL;
}

static void put_logsumexp(Printer *pr, const Node *n) {
  const Node *x = logsumexp_of(n);
  bool column = shape_numel(n->shape) > 1 && n->args[0]->args[0]->slot == 1;
  buf_puts(pr->b, column ? "stack(logsumexp(" : "logsumexp(");
  if (shape_numel(n->shape) > 1) {
    put_exact(pr, x, 0);
    buf_printf(pr->b, ", axis = %d", n->args[0]->args[0]->slot);
  } else {
    put_vector(pr, unreshaped(x), 0);
  }
  buf_puts(pr->b, column ? "))" : ")");
}

static Shape logsumexp_shape(const Node *n) {
  int64_t len = shape_numel(n->shape);
  bool column = len > 1 && n->args[0]->args[0]->slot == 1;
  return len == 1 ? shape_scalar() : column ? n->shape : shape_vector(len);
}

/* A reduction as dl writes it: over one axis (a vector), or where that
 * leaves one element, over everything (a scalar). */
static void put_reduction(Printer *pr, const Node *n) {
  const Node *x = n->args[0];
  buf_printf(pr->b, "%s(", op_info[n->op].spelling);
  if (shape_numel(n->shape) > 1) {
    put_exact(pr, x, 0);
    buf_printf(pr->b, ", axis = %d)", n->slot);
    return;
  }
  if (x->op == OP_RESHAPE)                       /* flattened for it */
    x = reshaped(x);
  if (whole_region(pr, x, NULL))
    put_region(pr, x, 0);
  else if (shape_numel(text_shape(pr, x)) == shape_numel(x->shape))
    put_arg(pr, x, 0);
  else
    put_exact(pr, x, 0);
  buf_puts(pr->b, ")");
}

static Shape reduction_shape(const Node *n) {
  return shape_numel(n->shape) == 1 ? shape_scalar() : shape_vector(shape_numel(n->shape));
}

/* The operands of a @ b that dl takes as vectors: a row on the left, a
 * column on the right (where the product is made a vector: as NumPy, a
 * vector on the right takes the column out of the result). */
static bool vector_operand(Printer *pr, const Node *mm, int i, bool column) {
  const Node *x = unreshaped(mm->args[i]);
  if ((i == 1 && !column) || mm->args[i]->shape.dim[i == 0 ? 0 : 1] != 1)
    return false;
  Shape text = text_shape(pr, x);
  return x->shape.rank == 1 || (text.rank == 1 && text.dim[0] == shape_numel(x->shape));
}

static void put_product(Printer *pr, const Node *n, bool column) {
  for (int i = 0; i < 2; i++) {
    buf_puts(pr->b, i ? " @ " : "");
    if (vector_operand(pr, n, i, column))
      put_vector(pr, unreshaped(n->args[i]), op_info[OP_MATMUL].prec + i);
    else
      put_exact(pr, n->args[i], op_info[OP_MATMUL].prec + i);
  }
}

static Shape product_shape(Printer *pr, const Node *n, bool column) {
  bool row = vector_operand(pr, n, 0, column), col = vector_operand(pr, n, 1, column);
  int64_t r = shape_rows(n->shape), c = shape_cols(n->shape);
  return row && col ? shape_scalar() : row ? shape_vector(c) : col ? shape_vector(r) : n->shape;
}

/* ---- reshapes */

/* How a reshape is written. */
typedef enum {
  RS_SAME,                                       /* as its argument: a vector as a row, a row as a vector */
  RS_COLUMN,                                     /* a vector (or its text) as a column: stack(v) */
  RS_REDUCTION,                                  /* a kept axis let go: sum(A, axis = 1) */
  RS_PRODUCT,                                    /* a product with a vector: A @ v */
  RS_INDEX,                                      /* a block of one row or column: A[i, a:b] */
  RS_DROP,                                       /* one row or column of anything: (x)[0], (x)[:, 0] */
  RS_TRANSPOSE,                                  /* a row as a column, or back: x' */
  RS_ELEMENTS,                                   /* the rest (flat matrices): from the vector of its elements */
} ReshapeForm;

static ReshapeForm reshape_form(Printer *pr, const Node *n) {
  const Node *x = reshaped(n);
  Shape from = x->shape, to = n->shape;
  bool line = from.rank < 2 || from.dim[0] == 1 || from.dim[1] == 1;
  if (to.rank <= 1 && op_info[x->op].kind == K_AXIS)
    return RS_REDUCTION;
  if (to.rank <= 1 && x->op == OP_SLICE)
    return RS_INDEX;
  if (to.rank <= 1 && x->op == OP_MATMUL && broadcasts_to(product_shape(pr, x, true), to))
    return RS_PRODUCT;
  if (broadcasts_to(text_shape(pr, x), to))
    return RS_SAME;
  if (to.rank <= 1)
    return line ? RS_DROP : RS_ELEMENTS;
  if (to.dim[1] == 1 && text_shape(pr, x).rank == 1)
    return RS_COLUMN;
  if (from.rank == 2 && line && (to.dim[0] == 1 || to.dim[1] == 1))
    return RS_TRANSPOSE;
  return RS_ELEMENTS;
}

/* x's elements, row by row, in the shape `to`. */
static void put_elements(Printer *pr, const Node *x, Shape to) {
  if (whole_region(pr, x, &to)) {
    put_region(pr, x, PREC_ATOM);
  } else if (to.rank < 2 || to.dim[0] == 1) {
    put_vector(pr, x, PREC_ATOM);
  } else if (to.dim[1] == 1) {
    buf_puts(pr->b, "stack(");
    put_vector(pr, x, 0);
    buf_puts(pr->b, ")");
  } else {                                       /* each row a column, transposed */
    buf_puts(pr->b, "concat(");
    for (int64_t i = 0, c = to.dim[1]; i < to.dim[0]; i++) {
      buf_puts(pr->b, i ? ", " : "");
      put_vector(pr, x, PREC_ATOM);
      buf_printf(pr->b, "[%lld:%lld]", (long long)(i * c), (long long)((i + 1) * c));
    }
    buf_puts(pr->b, ", axis = 1)'");
  }
}

static void put_reshape(Printer *pr, const Node *n) {
  const Node *x = reshaped(n);
  switch (reshape_form(pr, n)) {
  case RS_SAME:
    put_node(pr, x, 0);
    return;
  case RS_COLUMN:
    buf_puts(pr->b, "stack(");
    put_vector(pr, x, 0);
    buf_puts(pr->b, ")");
    return;
  case RS_REDUCTION:
    put_reduction(pr, x);
    return;
  case RS_PRODUCT:
    put_product(pr, x, true);
    return;
  case RS_INDEX:
    put_index(pr, x, n->shape);
    return;
  case RS_DROP:
    put_exact(pr, x, PREC_ATOM);
    buf_puts(pr->b, x->shape.rank < 2 || (n->shape.rank == 1 && x->shape.dim[0] == 1) ? "[0]"
                    : n->shape.rank == 0 ? "[0, 0]" : "[:, 0]");
    return;
  case RS_TRANSPOSE:
    put_exact(pr, x, PREC_ATOM);
    buf_puts(pr->b, "'");
    return;
  case RS_ELEMENTS:
    put_elements(pr, x, n->shape);
    return;
  }
}

static Shape reshape_shape(Printer *pr, const Node *n) {
  switch (reshape_form(pr, n)) {
  case RS_SAME:
    return text_shape(pr, reshaped(n));
  case RS_REDUCTION:
    return reduction_shape(reshaped(n));
  case RS_PRODUCT:
    return product_shape(pr, reshaped(n), true);
  case RS_ELEMENTS:                              /* a region's text is whole, to the shape */
    return n->shape.rank == 2 && n->shape.dim[0] > 1 ? n->shape : shape_vector(shape_numel(n->shape));
  default:
    return n->shape;
  }
}

/* ---- concat: sums of pads */

/* The pads of a concat (sema's: a sum of pads; diff's gradient of a slice:
 * one pad), in order along its axis, in `parts`: bands that do not
 * overlap, each as wide as the result across the axis. Returns the axis
 * (1: side by side, a vector's; 0: one above another), or -1 when n is not
 * one. */
static int concat_parts(const Node *n, NodeList *parts) {
  const Node *m = n;
  for (; m->op == OP_ADD && m->args[1]->op == OP_PAD && shape_eq(m->args[1]->shape, n->shape);
       m = m->args[0])
    nodelist_push(parts, m->args[1]);
  if (m->op != OP_PAD || !shape_eq(m->shape, n->shape))
    return -1;
  nodelist_push(parts, (Node *)m);
  bool tall = true, wide = true;
  for (int i = 0; i < parts->n; i++) {
    tall &= shape_rows(parts->items[i]->args[0]->shape) == shape_rows(n->shape);
    wide &= shape_cols(parts->items[i]->args[0]->shape) == shape_cols(n->shape);
  }
  int axis = tall ? 1 : wide ? 0 : -1;
  for (int i = 1; i < parts->n; i++)             /* by position; few, and mostly reversed */
    for (int j = i; j > 0 && parts->items[j]->pos[axis] < parts->items[j - 1]->pos[axis]; j--) {
      Node *t = parts->items[j];
      parts->items[j] = parts->items[j - 1];
      parts->items[j - 1] = t;
    }
  for (int i = 1; i < parts->n && axis >= 0; i++) {
    const Node *prev = parts->items[i - 1];
    int64_t len = axis ? shape_cols(prev->args[0]->shape) : shape_rows(prev->args[0]->shape);
    if (prev->pos[axis] + len > parts->items[i]->pos[axis])
      axis = -1;
  }
  return axis;
}

/* Does put_vector write x as it is (not a broadcast, a row of a matrix)? */
static bool reads_as_vector(Printer *pr, const Node *x) {
  return text_shape(pr, x).rank < 2 ||
         (x->op == OP_SLICE && x->args[0]->shape.rank == 2 && x->shape.dim[0] == 1);
}

/* How a concat is written: CONCAT_FLAT, vectors end to end (a vector's, or
 * a row's whose parts read as vectors: sema's concat of vectors), or
 * along axis 0 or 1; -1 when n is not one. */
enum { CONCAT_FLAT = 2 };

static int concat_form(Printer *pr, const Node *n) {
  if (n->op != OP_ADD && n->op != OP_PAD)
    return -1;
  NodeList parts = {0};
  int axis = concat_parts(n, &parts);
  bool row = n->shape.rank == 2 && n->shape.dim[0] == 1;
  bool flat = axis == 1 && (n->shape.rank < 2 || row);
  for (int i = 0; i < parts.n && row; i++)
    flat &= reads_as_vector(pr, parts.items[i]->args[0]);
  nodelist_free(&parts);
  return flat ? CONCAT_FLAT : axis;
}

static void put_zeros(Buf *b, Shape s, int form, int64_t len) {
  if (form == CONCAT_FLAT)
    buf_printf(b, "zeros(%lld)", (long long)len);
  else if (form == 1)
    buf_printf(b, "zeros(%lld, %lld)", (long long)s.dim[0], (long long)len);
  else
    buf_printf(b, "zeros(%lld, %lld)", (long long)len, (long long)s.dim[1]);
}

static void put_concat_part(Printer *pr, const Node *x, int form) {
  if (form == CONCAT_FLAT)
    put_vector(pr, x, 0);
  else if (form == 1 && x->op == OP_RESHAPE && reshape_form(pr, x) == RS_COLUMN)   /* a vector is a column */
    put_vector(pr, reshaped(x), 0);
  else
    put_exact(pr, x, 0);
}

static void put_concat(Printer *pr, const Node *n, int form) {
  NodeList parts = {0};
  int axis = concat_parts(n, &parts);
  int64_t size = axis ? shape_cols(n->shape) : shape_rows(n->shape), at = 0;
  buf_puts(pr->b, "concat(");
  for (int i = 0; i <= parts.n; i++) {
    const Node *pad = i < parts.n ? parts.items[i] : NULL;
    int64_t from = pad ? pad->pos[axis] : size;
    if (from > at) {
      buf_puts(pr->b, at ? ", " : "");
      put_zeros(pr->b, n->shape, form, from - at);
    }
    if (!pad)
      break;
    buf_puts(pr->b, from ? ", " : "");
    put_concat_part(pr, pad->args[0], form);
    at = from + (axis ? shape_cols(pad->args[0]->shape) : shape_rows(pad->args[0]->shape));
  }
  buf_printf(pr->b, ", axis = %d)", form == 1 ? 1 : 0);
  nodelist_free(&parts);
}

/* A pad that no band holds (a block of a matrix): the concat of its rows
 * above, the band of its own rows, and its rows below. */
static void put_block_pad(Printer *pr, const Node *n) {
  const Node *x = n->args[0];
  int64_t rows = n->shape.dim[0], cols = n->shape.dim[1], r = x->shape.dim[0], c = x->shape.dim[1];
  int64_t above = n->pos[0], below = rows - above - r, left = n->pos[1], right = cols - left - c;
  buf_puts(pr->b, "concat(");
  if (above)
    buf_printf(pr->b, "zeros(%lld, %lld), ", (long long)above, (long long)cols);
  buf_puts(pr->b, "concat(");
  if (left)
    buf_printf(pr->b, "zeros(%lld, %lld), ", (long long)r, (long long)left);
  put_exact(pr, x, 0);
  if (right)
    buf_printf(pr->b, ", zeros(%lld, %lld)", (long long)r, (long long)right);
  buf_puts(pr->b, ", axis = 1)");
  if (below)
    buf_printf(pr->b, ", zeros(%lld, %lld)", (long long)below, (long long)cols);
  buf_puts(pr->b, ", axis = 0)");
}

/* ---- what a node's text is */

static Shape text_shape_of(Printer *pr, const Node *n) {
  switch (n->op) {
  case OP_CONST:
    return shape_scalar();
  case OP_BROADCAST:
  case OP_NOGRAD:
    return text_shape(pr, n->args[0]);
  case OP_RESHAPE:
    return reshape_shape(pr, n);
  case OP_MATMUL:
    return product_shape(pr, n, false);
  case OP_ADD:
  case OP_PAD:
    if (logsumexp_of(n))
      return logsumexp_shape(n);
    if (concat_form(pr, n) >= 0)
      return concat_form(pr, n) == CONCAT_FLAT ? shape_vector(shape_numel(n->shape)) : n->shape;
    break;
  default:
    break;
  }
  if (op_info[n->op].kind == K_REDUCE)
    return shape_scalar();
  if (op_info[n->op].kind == K_AXIS)                /* kept: a column is stacked */
    return n->slot == 1 && shape_numel(n->shape) > 1 ? n->shape : reduction_shape(n);
  if (!op_elementwise(n->op) || is_onehot(pr, n))
    return n->shape;
  Shape s = shape_scalar();
  for (int i = 0; i < n->nargs; i++)
    shape_broadcast(s, text_shape(pr, n->args[i]), &s);
  return s;
}

/* The shape that n's text has, remembered: the printer asks it of every
 * node it writes, and a formula's tree repeats its DAG's nodes. */
static Shape text_shape(Printer *pr, const Node *n) {
  intptr_t k = (intptr_t)nodemap_get(&pr->known, n);
  if (k)
    return pr->shapes[k - 1];
  Shape s = text_shape_of(pr, n);
  if (pr->nshapes == pr->cap) {
    pr->cap = pr->cap ? 2 * pr->cap : 64;
    pr->shapes = xrealloc(pr->shapes, sizeof(Shape) * (size_t)pr->cap);
  }
  pr->shapes[pr->nshapes++] = s;
  nodemap_put(&pr->known, n, (void *)(intptr_t)pr->nshapes);
  return s;
}

/* How tightly n's text holds together, as operators bind (op_info's prec). */
static int text_prec(Printer *pr, const Node *n) {
  const Tensor *values = unnamed_data(n, pr->p);
  switch (n->op) {
  case OP_CONST:
    return number_prec(n->num);
  case OP_DATA:
    return values && values->shape.rank == 0 ? number_prec(values->v[0]) : PREC_ATOM;
  case OP_BROADCAST:
  case OP_NOGRAD:
    return text_prec(pr, n->args[0]);
  case OP_RESHAPE:
    if (pr->unflat && is_flatten(n))
      return text_prec(pr, reshaped(n));
    return reshape_form(pr, n) == RS_SAME      ? text_prec(pr, reshaped(n))
           : reshape_form(pr, n) == RS_PRODUCT ? op_info[OP_MATMUL].prec
                                               : PREC_ATOM;
  case OP_ADD:
  case OP_EQ:
    if (logsumexp_of(n) || concat_form(pr, n) >= 0 || is_onehot(pr, n))
      return PREC_ATOM;
    break;
  default:
    break;
  }
  OpKind kind = op_info[n->op].kind;
  return kind == K_INFIX || kind == K_PREFIX ? op_info[n->op].prec : PREC_ATOM;
}

/* ---- writing a node to its shape */

static bool plain_elementwise(Printer *pr, const Node *n) {
  return op_elementwise(n->op) && !logsumexp_of(n) && concat_form(pr, n) < 0 && !is_onehot(pr, n);
}

/* A vector as a row: stack(v)' (as a 1 x 1 matrix, stack(v)). */
static bool vector_row(const Node *n) {
  return n->op == OP_RESHAPE && reshaped(n)->shape.rank == 1 && n->shape.dim[0] == 1;
}

/* Which arguments of elementwise n to write to their shapes so that n's
 * text has n's: one as large as n where there is one, else every one that
 * falls short. */
static unsigned exact_args(Printer *pr, const Node *n) {
  unsigned all = 0;
  for (int i = 0; i < n->nargs; i++) {
    const Node *a = n->args[i];
    if (shape_eq(text_shape(pr, a), a->shape))
      continue;
    if (shape_eq(a->shape, n->shape))
      return 1u << i;
    all |= 1u << i;
  }
  return all;
}

/* The precedence of put_shaped's text. */
static int shaped_prec(Printer *pr, const Node *n) {
  if (n->op == OP_NOGRAD)
    return shaped_prec(pr, n->args[0]);
  if ((n->op == OP_BROADCAST && n->args[0]->op == OP_CONST) || vector_row(n))
    return PREC_ATOM;
  return plain_elementwise(pr, n) ? text_prec(pr, n) : op_info[OP_MUL].prec;
}

/* n, whose text falls short of its shape, written out to it: a constant
 * as fill(...), an elementwise op through the argument that falls short,
 * the rest times a fill of ones. */
static void put_shaped(Printer *pr, const Node *n) {
  if (n->op == OP_NOGRAD) {
    put_shaped(pr, n->args[0]);
  } else if (n->op == OP_BROADCAST && n->args[0]->op == OP_CONST) {
    buf_puts(pr->b, "fill(");
    put_dims(pr->b, n->shape);
    buf_puts(pr->b, ", ");
    put_number(pr->b, n->args[0]->num);
    buf_puts(pr->b, ")");
  } else if (vector_row(n)) {
    buf_puts(pr->b, "stack(");
    put_exact(pr, reshaped(n), 0);
    buf_puts(pr->b, n->shape.dim[1] > 1 ? ")'" : ")");
  } else if (plain_elementwise(pr, n)) {
    put_node(pr, n, exact_args(pr, n));
  } else {
    buf_puts(pr->b, "fill(");
    put_dims(pr->b, n->shape);
    buf_puts(pr->b, ", 1) * ");
    put_arg(pr, n, op_info[OP_MUL].prec + 1);
  }
}

static void put_exact(Printer *pr, const Node *n, int min_prec) {
  if (shape_eq(text_shape(pr, n), n->shape)) {
    put_arg(pr, n, min_prec);
    return;
  }
  bool parens = shaped_prec(pr, n) < min_prec;
  buf_puts(pr->b, parens ? "(" : "");
  put_shaped(pr, n);
  buf_puts(pr->b, parens ? ")" : "");
}

/* ---- operators and calls */

static void put_operand(Printer *pr, const Node *n, int i, int min_prec, unsigned exact) {
  if (exact & (1u << i))
    put_exact(pr, n->args[i], min_prec);
  else
    put_arg(pr, n->args[i], min_prec);
}

/* Left-associative operators keep a right operand of their own power in
 * parentheses (a - (b - c), a + (b + c)); `^` is right-associative, the
 * mirror; comparisons do not chain, so either operand is kept. */
static void put_infix(Printer *pr, const Node *n, unsigned exact) {
  const OpInfo *info = &op_info[n->op];
  bool right_assoc = n->op == OP_POW, chains = info->prec > op_info[OP_LT].prec;
  put_operand(pr, n, 0, info->prec + (right_assoc || !chains), exact);
  buf_printf(pr->b, n->op == OP_POW ? "%s" : " %s ", info->spelling);
  put_operand(pr, n, 1, info->prec + !right_assoc, exact);
}

static void put_call(Printer *pr, const char *name, const Node *n, int nargs, unsigned exact) {
  buf_printf(pr->b, "%s(", name);
  for (int i = 0; i < nargs; i++) {
    buf_puts(pr->b, i ? ", " : "");
    put_operand(pr, n, i, 0, exact);
  }
  buf_puts(pr->b, ")");
}

static void put_transpose(Printer *pr, const Node *x) {
  if (vector_row(x) && x->shape.dim[1] > 1) {    /* a row's transpose: a column */
    buf_puts(pr->b, "stack(");
    put_exact(pr, reshaped(x), 0);
    buf_puts(pr->b, ")");
  } else {
    put_exact(pr, x, PREC_ATOM);
    buf_puts(pr->b, "'");
  }
}

/* sum(x) adds every element of x: its text must have them all. */
static void put_sum(Printer *pr, const Node *x) {
  buf_puts(pr->b, "sum(");
  if (shape_numel(text_shape(pr, x)) == shape_numel(x->shape))
    put_arg(pr, x, 0);
  else
    put_exact(pr, x, 0);
  buf_puts(pr->b, ")");
}

/* What sema builds of logsumexp, concat and onehot, written as the call;
 * false for anything else. */
static bool put_builtin(Printer *pr, const Node *n) {
  if (logsumexp_of(n)) {
    put_logsumexp(pr, n);
  } else if (concat_form(pr, n) >= 0) {
    put_concat(pr, n, concat_form(pr, n));
  } else if (is_onehot(pr, n)) {
    buf_puts(pr->b, "onehot(");
    put_exact(pr, reshaped(n->args[0]), 0);
    buf_printf(pr->b, ", %lld)", (long long)n->args[1]->shape.dim[0]);
  } else {
    return false;
  }
  return true;
}

/* A flattened matrix in a flat region is the matrix; outside the region
 * (which is elementwise), nodes are written as anywhere. */
static bool leaves_region(Printer *pr, const Node *n) {
  return pr->unflat && (is_flatten(n) || !(plain_elementwise(pr, n) || n->op == OP_BROADCAST ||
                                           n->op == OP_NOGRAD));
}

static void put_node(Printer *pr, const Node *n, unsigned exact) {
  const Node *x = n->nargs ? n->args[0] : NULL;
  if (leaves_region(pr, n)) {
    pr->unflat = false;
    put_node(pr, is_flatten(n) ? reshaped(n) : n, exact);
    pr->unflat = true;
    return;
  }
  if (put_builtin(pr, n))
    return;
  switch (n->op) {
  case OP_CONST:
    put_number(pr->b, n->num);
    return;
  case OP_PARAM:
  case OP_DATA:
  case OP_VAR:
    put_leaf(pr, n);
    return;
  case OP_BROADCAST:
  case OP_NOGRAD:
    put_node(pr, x, 0);
    return;
  case OP_RESHAPE:
    put_reshape(pr, n);
    return;
  case OP_MATMUL:
    put_product(pr, n, false);
    return;
  case OP_TRANSPOSE:
    put_transpose(pr, x);
    return;
  case OP_SLICE:
    put_slice(pr, n);
    return;
  case OP_PAD:
    put_block_pad(pr, n);
    return;
  case OP_SUM:
    put_sum(pr, x);
    return;
  case OP_FNCALL:                                /* the written arguments, not implicit params */
    put_call(pr, n->fn->name, n, n->fn->arity, ~0u);
    return;
  default:
    break;
  }
  switch (op_info[n->op].kind) {
  case K_INFIX:
    put_infix(pr, n, exact);
    return;
  case K_PREFIX:
    buf_puts(pr->b, "-");
    put_operand(pr, n, 0, op_info[OP_NEG].prec + 1, exact);
    return;
  case K_AXIS:                                   /* kept: a column is stacked */
    buf_puts(pr->b, n->slot == 1 && shape_numel(n->shape) > 1 ? "stack(" : "");
    put_reduction(pr, n);
    buf_puts(pr->b, n->slot == 1 && shape_numel(n->shape) > 1 ? ")" : "");
    return;
  default:
    put_call(pr, op_info[n->op].spelling, n, n->nargs, exact);
  }
}

void ir_format(Buf *b, const Node *n, const Program *p) {
  Printer pr = {.b = b, .p = p};
  put_exact(&pr, n, 0);
  nodemap_free(&pr.known);
  free(pr.shapes);
}

/* Bottom-up over the DAG: a node writes itself and what its arguments
 * write (a call only its written arguments). */
double ir_tree_size(Node *root) {
  NodeList order = ir_topo(&root, 1);
  NodeMap index = {0};
  double *size = xmalloc(sizeof(double) * (size_t)(order.n + 1));
  for (int k = 0; k < order.n; k++) {
    Node *n = order.items[k];
    int shown = n->op == OP_FNCALL ? n->fn->arity : n->nargs;
    size[k] = 1;
    for (int i = 0; i < shown; i++)
      size[k] += size[(intptr_t)nodemap_get(&index, n->args[i]) - 1];
    nodemap_put(&index, n, (void *)(intptr_t)(k + 1));
  }
  double r = order.n ? size[order.n - 1] : 0;
  free(size);
  nodemap_free(&index);
  nodelist_free(&order);
  return r;
}

void ir_dump(Node *const *roots, const char *const *root_names, int nroots,
             const Program *p, FILE *out) {
  NodeList order = ir_topo(roots, nroots);
  char sh[64], num[64];
  for (int k = 0; k < order.n; k++) {
    const Node *n = order.items[k];
    fprintf(out, "%%%-4u = %-9s", n->id, op_info[n->op].name);
    if (n->op == OP_CONST) {
      dlrt_format(num, sizeof num, n->num, 1);
      fprintf(out, " %s", num);
    } else if (op_info[n->op].kind == K_LEAF) {
      const char *name = leaf_name(n, p);
      fprintf(out, " %s", name ? name : "?");
    } else if (n->op == OP_FNCALL) {
      fprintf(out, " %s", n->fn->name);
    } else if (op_info[n->op].kind == K_AXIS) {
      fprintf(out, " axis=%d", n->slot);
    } else if (n->op == OP_SLICE || n->op == OP_PAD) {
      fprintf(out, " at=%lld,%lld", (long long)n->pos[0], (long long)n->pos[1]);
    }
    for (int i = 0; i < n->nargs; i++)
      fprintf(out, " %%%u", n->args[i]->id);
    fprintf(out, " : %s\n", shape_str(n->shape, sh));
  }
  for (int i = 0; i < nroots; i++)
    if (roots[i])
      fprintf(out, "%s = %%%u\n", root_names[i], roots[i]->id);
  nodelist_free(&order);
}
