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
    NodeMap bigger = {calloc(m->cap ? m->cap * 2 : 64, sizeof(Node *)),
                      calloc(m->cap ? m->cap * 2 : 64, sizeof(void *)),
                      m->cap ? m->cap * 2 : 64, 0};
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
  free(m->keys);
  free(m->vals);
  *m = (NodeMap){0};
}

/* ---- hash-consing */

Graph *graph_new(Arena *a) {
  Graph *g = arena_alloc(a, sizeof *g);
  g->arena = a;
  g->nbuckets = 1024;
  g->buckets = calloc(g->nbuckets, sizeof(Node *));
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
  Node **buckets = calloc(nb, sizeof(Node *));
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
    l->cap = l->cap ? l->cap * 2 : 16;
    l->items = realloc(l->items, sizeof(Node *) * (size_t)l->cap);
  }
  l->items[l->n++] = n;
}

void nodelist_free(NodeList *l) {
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

Node *ir_subst(Graph *g, Node *n, Node *const *from, Node *const *to, int count) {
  NodeMap map = {0};
  for (int i = 0; i < count; i++)
    nodemap_put(&map, from[i], to[i]);
  NodeList order = ir_topo(&n, 1);
  for (int k = 0; k < order.n; k++) {
    Node *m = order.items[k];
    if (nodemap_get(&map, m) || !m->nargs)
      continue;
    Node *args[m->nargs];
    bool changed = false;
    for (int i = 0; i < m->nargs; i++) {
      Node *a = nodemap_get(&map, m->args[i]);
      args[i] = a ? a : m->args[i];
      changed |= args[i] != m->args[i];
    }
    if (changed)
      nodemap_put(&map, m, ir_with_args(g, m, args));
  }
  Node *r = nodemap_get(&map, n);
  nodelist_free(&order);
  nodemap_free(&map);
  return r ? r : n;
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
  int64_t n = full[0]->shape.dim[0];
  NodeMap map = {0};
  for (int i = 0; i < nfull; i++)
    nodemap_put(&map, full[i], leaves[i]);
  NodeList order = ir_topo(&loss, 1);
  for (int k = 0; k < order.n; k++) {
    Node *m = order.items[k];
    if (nodemap_get(&map, m) || !m->nargs)
      continue;
    Node *args[m->nargs];
    bool changed = false;
    for (int i = 0; i < m->nargs; i++) {
      Node *a = nodemap_get(&map, m->args[i]);
      args[i] = a ? a : m->args[i];
      changed |= args[i] != m->args[i];
    }
    if (m->op == OP_BROADCAST && m->shape.dim[0] == n) {
      Shape to = m->shape;
      to.dim[0] = rows;
      nodemap_put(&map, m, ir_at(ir_broadcast(g, args[0], to), m->span));
    } else if (changed) {
      nodemap_put(&map, m, ir_with_args(g, m, args));
    }
  }
  Node *r = nodemap_get(&map, loss);
  nodelist_free(&order);
  nodemap_free(&map);
  return r ? r : loss;
}

/* ---- printing */

static const char *leaf_name(const Node *n, const Program *p) {
  if (n->name)
    return n->name;
  if (n->op == OP_PARAM && p)
    return p->params[n->slot].name;
  if (n->op == OP_DATA && p && p->data[n->slot].name)
    return p->data[n->slot].name;
  return NULL;
}

/* The binding power a node prints with: how tightly it holds together. */
static int print_prec(const Node *n) {
  /* What prints in place of a node: its argument, for these (but a
   * constant matrix prints as fill(...)). */
  while (n->op == OP_RESHAPE || n->op == OP_NOGRAD ||
         (n->op == OP_BROADCAST && !(n->shape.rank == 2 && n->args[0]->op == OP_CONST)))
    n = n->args[0];
  if (n->op == OP_CONST)
    return n->num < 0 || signbit(n->num) ? op_info[OP_NEG].prec : 9;
  if (op_info[n->op].kind == K_INFIX || op_info[n->op].kind == K_PREFIX)
    return op_info[n->op].prec;
  return 9;
}

static void format_arg(Buf *b, const Node *child, const Program *p, int min_prec);

/* The argument of a matrix op, whose shape the reader must see: a
 * broadcast to a matrix (elsewhere implicit) reads `fill(r, c, 1) * x`, a
 * vector made a column `stack(v)`. */
static void format_matrix_arg(Buf *b, const Node *n, const Program *p, int min_prec) {
  if (n->op == OP_RESHAPE && n->args[0]->shape.rank == 1 && n->shape.rank == 2 && n->shape.dim[1] == 1) {
    buf_puts(b, "stack(");                       /* a vector as a column */
    ir_format(b, n->args[0], p);
    buf_puts(b, ")");
    return;
  }
  if (n->op != OP_BROADCAST || n->shape.rank != 2 || n->args[0]->op == OP_CONST) {
    format_arg(b, n, p, min_prec);
    return;
  }
  bool parens = op_info[OP_MUL].prec < min_prec;
  buf_printf(b, "%sfill(%lld, %lld, 1) * ", parens ? "(" : "", (long long)n->shape.dim[0],
             (long long)n->shape.dim[1]);
  format_arg(b, n->args[0], p, op_info[OP_MUL].prec + 1);
  buf_puts(b, parens ? ")" : "");
}

static void format_arg(Buf *b, const Node *child, const Program *p, int min_prec) {
  bool parens = print_prec(child) < min_prec;
  if (parens)
    buf_puts(b, "(");
  ir_format(b, child, p);
  if (parens)
    buf_puts(b, ")");
}

void ir_format(Buf *b, const Node *n, const Program *p) {
  char num[64];
  const OpInfo *info = &op_info[n->op];
  switch (n->op) {
  case OP_CONST:
    dlrt_format(num, sizeof num, n->num, 1);
    buf_puts(b, num);
    return;
  case OP_PARAM:
  case OP_DATA:
  case OP_VAR: {
    const char *name = leaf_name(n, p);
    if (name)
      buf_puts(b, name);
    else
      buf_printf(b, "%%%u", n->id);
    return;
  }
  case OP_BROADCAST:
    /* A constant matrix (a gradient's seed, in a product) shows its shape. */
    if (n->shape.rank == 2 && n->args[0]->op == OP_CONST) {
      dlrt_format(num, sizeof num, n->args[0]->num, 1);
      buf_printf(b, "fill(%lld, %lld, %s)", (long long)n->shape.dim[0], (long long)n->shape.dim[1], num);
      return;
    }
    ir_format(b, n->args[0], p);
    return;
  case OP_RESHAPE:
    /* matrix @ vector, vector @ matrix: the product of NumPy's shapes. */
    if (n->shape.rank == 1 && n->args[0]->op == OP_MATMUL) {
      const Node *mm = n->args[0];
      for (int i = 0; i < 2; i++) {
        const Node *x = mm->args[i];
        bool vector = x->op == OP_RESHAPE && x->args[0]->shape.rank == 1;
        if (i)
          buf_puts(b, " @ ");
        if (vector)
          format_arg(b, x->args[0], p, op_info[OP_MATMUL].prec + i);
        else
          format_matrix_arg(b, x, p, op_info[OP_MATMUL].prec + i);
      }
      return;
    }
    ir_format(b, n->args[0], p);
    return;
  case OP_NOGRAD:
    ir_format(b, n->args[0], p);
    return;
  case OP_TRANSPOSE:
    format_matrix_arg(b, n->args[0], p, 9);
    buf_puts(b, "'");
    return;
  case OP_SLICE:
    format_arg(b, n->args[0], p, 9);
    if (n->args[0]->shape.rank == 1)
      buf_printf(b, "[%lld:%lld]", (long long)n->pos[1], (long long)(n->pos[1] + shape_cols(n->shape)));
    else
      buf_printf(b, "[%lld:%lld, %lld:%lld]", (long long)n->pos[0],
                 (long long)(n->pos[0] + shape_rows(n->shape)), (long long)n->pos[1],
                 (long long)(n->pos[1] + shape_cols(n->shape)));
    return;
  case OP_FNCALL: {
    buf_printf(b, "%s(", n->fn->name);
    for (int i = 0; i < n->fn->arity; i++) {      /* the written arguments, not implicit params */
      if (i)
        buf_puts(b, ", ");
      ir_format(b, n->args[i], p);
    }
    buf_puts(b, ")");
    return;
  }
  default:
    break;
  }
  switch (info->kind) {
  case K_INFIX: {
    /* Left-associative ops keep a right operand of equal power in
     * parentheses (a - (b - c)); `^` is right-associative, the mirror. */
    bool right_assoc = n->op == OP_POW;
    /* a + (b + c) and a * (b * c) read the same without parentheses */
    const Node *rhs = n->args[1];
    while (rhs->op == OP_BROADCAST)
      rhs = rhs->args[0];
    bool associative = (n->op == OP_ADD || n->op == OP_MUL) && rhs->op == n->op;
    void (*arg)(Buf *, const Node *, const Program *, int) = n->op == OP_MATMUL ? format_matrix_arg : format_arg;
    arg(b, n->args[0], p, info->prec + right_assoc);
    buf_printf(b, n->op == OP_POW ? "%s" : " %s ", info->spelling);
    arg(b, n->args[1], p, info->prec + !right_assoc - associative);
    return;
  }
  case K_PREFIX:
    buf_puts(b, "-");
    format_arg(b, n->args[0], p, info->prec + 1);
    return;
  default:
    buf_printf(b, "%s(", info->spelling);
    for (int i = 0; i < n->nargs; i++) {
      if (i)
        buf_puts(b, ", ");
      ir_format(b, n->args[i], p);
    }
    if (info->kind == K_AXIS)
      buf_printf(b, ", axis = %d", n->slot);
    buf_puts(b, ")");
  }
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
