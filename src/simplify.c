/* simplify.c — algebraic clean-up after differentiation.
 *
 * Differentiation produces honest but noisy formulas (`1 * 2 * r^1`). This
 * pass rebuilds the DAG bottom-up, each node from already simplified
 * arguments, applying local rules: constant folding, neutral and absorbing
 * elements, signs, powers, and one normal form for products — a constant,
 * then the scalar factors, then the vector ones — so that
 * `sum(2 * b * r * p)` becomes `2 * b * sum(r * p)`: the scalar part leaves
 * the loop, the vector part is what the loop sums.
 *
 * Every rule preserves the node's shape: a result that came out smaller (a
 * vector expression that folded to the constant 0) is broadcast back, so
 * `sum` of it still counts every element.
 *
 * Constants fold in double precision; an f32 program rounds them when it
 * uses them.
 */
#include "dlc.h"

#include <math.h>
#include <stdlib.h>

/* Products are flattened at most this many multiplications deep; below
 * that a product is one factor. A chain of n products (the gradient of
 * sin(sin(...(a)...))) is then simplified in O(n) rather than O(n^2),
 * and the normal form still sees any product a person writes. */
enum { MAX_FLATTEN = 64 };

typedef struct Simp {
  Graph *g;
  int depth;
  NodeMap waits;                /* node -> 1 + whether it reduces something of a param */
} Simp;

static Node *simp(Simp *s, Node *n);

static Node *mk1(Simp *s, Op op, Node *a) { return simp(s, ir_unary(s->g, op, a)); }
static Node *mk2(Simp *s, Op op, Node *a, Node *b) { return simp(s, ir_binary(s->g, op, a, b)); }
static Node *num(Simp *s, double v) { return ir_const(s->g, v); }

/* A constant, possibly broadcast: its value. */
static bool const_value(const Node *n, double *v) {
  while (n->op == OP_BROADCAST)
    n = n->args[0];
  if (n->op != OP_CONST)
    return false;
  *v = n->num;
  return true;
}

static bool is_int(double v) { return v == floor(v) && fabs(v) < 1e9; }

static Node *unwrap(Node *n) {
  while (n->op == OP_BROADCAST && n->args[0]->shape.rank == 0)
    n = n->args[0];
  return n;
}

/* ---- products: flatten, fold constants, merge powers, order */

typedef struct Factors {
  double coef;
  NodeList base;                /* distinct factors */
  double *expo;                 /* their exponents, parallel to base */
  int cap;
} Factors;

static void add_factor(Factors *f, Node *base, double e) {
  for (int i = 0; i < f->base.n; i++)
    if (f->base.items[i] == base) {
      f->expo[i] += e;
      return;
    }
  nodelist_push(&f->base, base);
  if (f->base.n > f->cap) {
    f->cap = f->base.cap;
    f->expo = xrealloc(f->expo, sizeof(double) * (size_t)f->cap);
  }
  f->expo[f->base.n - 1] = e;
}

/* The factors of n, flattening at most *budget products and negations. */
static void collect_within(Factors *f, Node *n, int *budget) {
  double v;
  n = unwrap(n);
  bool opens = (n->op == OP_MUL || n->op == OP_NEG) && *budget > 0;
  *budget -= opens;
  if (const_value(n, &v))
    f->coef *= v;
  else if (opens && n->op == OP_MUL) {
    collect_within(f, n->args[0], budget);
    collect_within(f, n->args[1], budget);
  } else if (opens) {
    f->coef = -f->coef;
    collect_within(f, n->args[0], budget);
  } else if (n->op == OP_POW && const_value(n->args[1], &v) && is_int(v))
    add_factor(f, n->args[0], v);
  else
    add_factor(f, n, 1);
}

static void collect(Factors *f, Node *n) {
  int budget = MAX_FLATTEN;
  collect_within(f, n, &budget);
}

/* acc * scalars * vectors, left to right (acc may be NULL); NULL for an
 * empty product. */
static Node *build_product(Simp *s, Factors *f, Node *acc, bool scalars, bool vectors) {
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < f->base.n; i++) {
      Node *b = f->base.items[i];
      bool scalar = b->shape.rank == 0;
      if (f->expo[i] == 0 || scalar != (pass == 0) || (scalar ? !scalars : !vectors))
        continue;
      Node *term = f->expo[i] == 1 ? b : ir_binary(s->g, OP_POW, b, num(s, f->expo[i]));
      acc = acc ? ir_binary(s->g, OP_MUL, acc, term) : term;
    }
  return acc;
}

/* coef * rest: the coefficient starts the chain, so (3 * b) * sum(...)
 * is one scalar product outside the loop; -1 becomes a negation. */
static Node *with_coef(Simp *s, Factors *f, bool scalars, bool vectors, Node *tail) {
  Node *acc = f->coef == 1 || f->coef == -1 ? NULL : num(s, f->coef);
  acc = build_product(s, f, acc, scalars, vectors);
  if (tail)
    acc = acc ? ir_binary(s->g, OP_MUL, acc, tail) : tail;
  if (!acc)
    return num(s, f->coef);
  return f->coef == -1 ? ir_unary(s->g, OP_NEG, acc) : acc;
}

static Node *normalize_product(Simp *s, Node *n) {
  Factors f = {.coef = 1};
  collect(&f, n);
  Node *r = f.coef == 0 ? num(s, 0) : with_coef(s, &f, true, true, NULL);
  nodelist_free(&f.base);
  free(f.expo);
  return r;
}

/* sum(scalar part * vector part) = scalar part * sum(vector part). */
static Node *sum_of_product(Simp *s, Node *n) {
  Node *arg = n->args[0];
  if (arg->op != OP_MUL && arg->op != OP_NEG)
    return n;
  Factors f = {.coef = 1};
  collect(&f, arg);
  Node *vec = build_product(s, &f, NULL, false, true);
  bool has_scalar = false;
  for (int i = 0; i < f.base.n; i++)
    has_scalar |= f.base.items[i]->shape.rank == 0 && f.expo[i] != 0;
  Node *r = n;
  if (vec && (has_scalar || f.coef != 1)) {
    Node *inner = ir_unary(s->g, n->op, ir_broadcast(s->g, vec, arg->shape));
    r = with_coef(s, &f, true, false, inner);
  }
  nodelist_free(&f.base);
  free(f.expo);
  return r;
}

/* -n, when n visibly starts with a minus (a negative constant leading a
 * product or quotient, or a negation), looking at most `depth` products
 * down its left side; else NULL. So that `a + -2 * b` reads `a - 2 * b`. */
static Node *negate_lead_within(Simp *s, Node *n, int depth) {
  double v;
  if (n->op == OP_CONST && const_value(n, &v) && v < 0)
    return num(s, -v);
  if (n->op == OP_NEG)
    return n->args[0];
  if ((n->op == OP_MUL || n->op == OP_DIV) && depth > 0) {
    Node *lead = negate_lead_within(s, n->args[0], depth - 1);
    return lead ? ir_binary(s->g, n->op, lead, n->args[1]) : NULL;
  }
  return NULL;
}

/* (Products are at most about 2 * MAX_FLATTEN long once normalized.) */
static Node *negate_lead(Simp *s, Node *n) { return negate_lead_within(s, n, 2 * MAX_FLATTEN); }

static int known(const Node *n, void *waits) { return nodemap_get(waits, n) != NULL; }

/* Does n reduce something that depends on a param? Answered for all of
 * n's DAG at once and remembered: each node is looked at once per pass. */
static bool reduces_param(Simp *s, Node *n) {
  NodeList order = ir_topo_until(&n, 1, known, &s->waits);
  for (int k = 0; k < order.n; k++) {
    Node *m = order.items[k];
    if (known(m, &s->waits))
      continue;
    bool r = op_info[m->op].kind == K_REDUCE && (m->flags & NODE_HAS_PARAM);
    for (int i = 0; i < m->nargs && !r; i++)
      r = (intptr_t)nodemap_get(&s->waits, m->args[i]) - 1;
    nodemap_put(&s->waits, m, (void *)(intptr_t)(r + 1));
  }
  nodelist_free(&order);
  return (intptr_t)nodemap_get(&s->waits, n) - 1;
}

/* Is c a scalar that a training step knows only after a pass over the data
 * (it reduces something that depends on a param)? */
static bool waits_for_loop(Simp *s, Node *c) {
  return c->shape.rank == 0 && (c->flags & NODE_HAS_PARAM) && reduces_param(s, c);
}

/* The operand of a + c, a - c or c - a that waits for a loop, if any. */
static int scalar_side(Simp *s, const Node *n) {
  if (n->op != OP_ADD && n->op != OP_SUB)
    return -1;
  for (int i = 0; i < 2; i++)
    if (n->args[1 - i]->shape.rank > 0 && waits_for_loop(s, unwrap(n->args[i])))
      return i;
  return -1;
}

/* Linearity: sum(p * (a + c)) = sum(p * a) + c * sum(p), where c is a
 * scalar that waits for a loop. It keeps the reduction from waiting for c:
 * in a centered loss the mean's adjoint is such a c, and without this the
 * backward pass would need a loop more than the forward one. Only then:
 * splitting a sum can cancel digits, so it is not done for nothing. */
static Node *distribute_sum(Simp *s, Node *n) {
  Node *arg = n->args[0];
  Factors f = {.coef = 1};
  collect(&f, arg);
  int k = -1, side = -1;
  for (int i = 0; i < f.base.n && k < 0; i++)
    if (f.expo[i] == 1 && (side = scalar_side(s, f.base.items[i])) >= 0)
      k = i;
  Node *r = n;
  if (k >= 0) {
    Node *sum = f.base.items[k], *c = unwrap(sum->args[side]), *a = sum->args[1 - side];
    f.expo[k] = 0;                                 /* p: the other factors */
    Node *p = with_coef(s, &f, true, true, NULL);
    Node *pa = ir_broadcast(s->g, ir_binary(s->g, OP_MUL, p, a), arg->shape);
    Node *left = mk1(s, n->op, pa);
    Node *right = mk2(s, OP_MUL, c, mk1(s, n->op, ir_broadcast(s->g, p, arg->shape)));
    Op op = sum->op == OP_SUB && side == 1 ? OP_SUB : OP_ADD;
    r = sum->op == OP_SUB && side == 0 ? mk2(s, OP_SUB, right, left) : mk2(s, op, left, right);
  }
  nodelist_free(&f.base);
  free(f.expo);
  return r == n ? sum_of_product(s, n) : r;
}

/* ---- the local rules; n's arguments are already simplified */

static Node *rewrite(Simp *s, Node *n) {
  Node *a = n->nargs > 0 ? n->args[0] : NULL, *b = n->nargs > 1 ? n->args[1] : NULL;
  double va = 0, vb = 0;
  bool ca = a && const_value(a, &va), cb = b && const_value(b, &vb);

  /* Constant folding of elementwise ops. */
  if (op_elementwise(n->op) && n->nargs <= 2 && ca && (!b || cb))
    return num(s, eval_scalar_op(n->op, va, b ? vb : 0, true));

  switch (n->op) {
  case OP_ADD:
    if (ca && va == 0) return b;
    if (cb && vb == 0) return a;
    if (a == b) return mk2(s, OP_MUL, num(s, 2), a);
    if (negate_lead(s, unwrap(b))) return mk2(s, OP_SUB, a, negate_lead(s, unwrap(b)));
    if (negate_lead(s, unwrap(a))) return mk2(s, OP_SUB, b, negate_lead(s, unwrap(a)));
    return n;
  case OP_SUB:
    if (cb && vb == 0) return a;
    if (ca && va == 0) return mk1(s, OP_NEG, b);
    if (a == b) return num(s, 0);
    if (negate_lead(s, unwrap(b))) return mk2(s, OP_ADD, a, negate_lead(s, unwrap(b)));
    return n;
  case OP_MUL: {
    if ((ca && va == 0) || (cb && vb == 0))
      return num(s, 0);
    Node *r = normalize_product(s, n);
    return r;
  }
  case OP_DIV:
    if (cb && vb == 1) return a;
    if (ca && va == 0) return num(s, 0);
    if (cb && vb == -1) return mk1(s, OP_NEG, a);
    if (unwrap(a)->op == OP_NEG) return mk1(s, OP_NEG, mk2(s, OP_DIV, unwrap(a)->args[0], b));
    return n;
  case OP_NEG:
    if (unwrap(a)->op == OP_NEG) return unwrap(a)->args[0];
    if (unwrap(a)->op == OP_SUB) return mk2(s, OP_SUB, unwrap(a)->args[1], unwrap(a)->args[0]);
    return n;
  case OP_POW:
    if (cb && vb == 1) return a;
    if (cb && vb == 0) return num(s, 1);
    if (cb && is_int(vb) && unwrap(a)->op == OP_POW && const_value(unwrap(a)->args[1], &va) &&
        is_int(va))
      return mk2(s, OP_POW, unwrap(a)->args[0], num(s, va * vb));
    return n;
  case OP_WHERE: {
    double vc;
    if (n->args[1] == n->args[2]) return n->args[1];
    if (const_value(a, &vc)) return vc != 0 ? n->args[1] : n->args[2];
    return n;
  }
  case OP_SUM:
  case OP_MEAN: {
    Node *x = a;
    if (x->op == OP_BROADCAST && x->args[0]->shape.rank == 0)    /* sum of a constant vector */
      return n->op == OP_MEAN ? x->args[0]
                              : mk2(s, OP_MUL, num(s, (double)shape_numel(x->shape)), x->args[0]);
    return distribute_sum(s, n);
  }
  case OP_BROADCAST:
    if (a->op == OP_BROADCAST) return ir_broadcast(s->g, a->args[0], n->shape);
    return n;
  /* Matrix ops of a constant (a zero gradient, mostly). */
  case OP_MATMUL:
    if ((ca && va == 0) || (cb && vb == 0)) return num(s, 0);
    return n;
  case OP_TRANSPOSE:
    if (a->op == OP_TRANSPOSE) return a->args[0];
    /* fall through */
  case OP_RESHAPE:
  case OP_SLICE:
  case OP_NOGRAD:
  case OP_RMAX:
  case OP_RMIN:
    return ca ? num(s, va) : n;
  case OP_PAD:
    return ca && va == 0 ? num(s, 0) : n;
  case OP_RSUM:
    return ca ? num(s, va * (double)(n->slot == 0 ? shape_rows(a->shape) : shape_cols(a->shape))) : n;
  default:
    return n;
  }
}

/* Applies rules until none fires; keeps the shape. The depth bound only
 * guards against a rule cycle (none is known). */
static Node *simp(Simp *s, Node *n) {
  Shape shape = n->shape;
  if (++s->depth < 64) {
    for (int round = 0; round < 16; round++) {
      Node *r = rewrite(s, n);
      if (r == n)
        break;
      n = r;
    }
  }
  s->depth--;
  if (!shape_eq(n->shape, shape))
    n = ir_broadcast(s->g, n, shape);
  return n;
}

/* Each node is rewritten once, from its rewritten arguments, with local
 * rules of bounded work: linear in the DAG. A graph grown to its limit
 * leaves the rest as it was (the caller reports the limit). */
void simplify(Graph *g, Node **roots, int nroots) {
  Simp s = {.g = g};
  NodeMap done = {0};
  NodeList order = ir_topo(roots, nroots);
  for (int k = 0; k < order.n; k++) {
    Node *n = order.items[k];
    Node *r = n;
    if (n->nargs && !graph_full(g)) {
      Node *args[n->nargs];
      for (int i = 0; i < n->nargs; i++)
        args[i] = nodemap_get(&done, n->args[i]);
      r = ir_at(simp(&s, ir_with_args(g, n, args)), n->span);
    }
    nodemap_put(&done, n, r);
  }
  for (int i = 0; i < nroots; i++)
    if (roots[i])
      roots[i] = nodemap_get(&done, roots[i]);
  nodelist_free(&order);
  nodemap_free(&done);
  nodemap_free(&s.waits);
}

Node *simplify_node(Graph *g, Node *n) {
  simplify(g, &n, 1);
  return n;
}
