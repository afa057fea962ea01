/* diff.c — reverse-mode symbolic differentiation over the DAG.
 *
 * The adjoint of the output is 1; nodes are visited in reverse topological
 * order, and each node hands every argument that leads to a target the
 * contribution its rule gives (one rule per op, named in ops.def). Adjoints
 * are accumulated, never assigned: a node used twice gets the sum.
 *
 * Shapes: an adjoint always has its node's shape. A contribution to an
 * argument that was broadcast (a scalar param against a vector) is summed
 * back to the argument's shape ("un-broadcast").
 *
 * where(c, a, b): a's adjoint is where(c, adj, 0). Multiplying that by a's
 * local derivative would be 0 * NaN = NaN wherever a's branch is not taken
 * and its derivative is not finite (sqrt or log of a negative). So chain()
 * keeps masks outermost: where(c, g, 0) * L becomes where(c, g * L, 0), and
 * sums of masked terms are distributed. The NaN of the untaken branch is
 * then computed but never selected: JAX users' "double where", done for
 * them.
 *
 * Each node's rules run once, and what chain() asks of an adjoint is
 * answered once per node: the work is linear in the DAG (a tree walk of
 * an adjoint, a sum of sums, is exponential). A graph at MAX_NODES stops
 * the walk; the caller reports it.
 *
 * The result is raw (full of `* 1` and `+ 0`): simplify.c cleans it.
 */
#include "dlc.h"

#include <stdlib.h>

/* One differentiation: the graph, and which adjoints hold a mask. An
 * adjoint is a DAG of sums (a node used twice gets adj + adj, and that
 * node's arguments twice that): walked as a tree it doubles with every
 * level, so each question about a node is answered once. */
typedef struct Diff {
  Graph *g;
  NodeMap masked;                                /* node -> 1 + has_mask(node) */
} Diff;

typedef Node *Rule(Diff *d, Node *n, int i, Node *adj);

static Node *konst(Diff *d, double v) { return ir_const(d->g, v); }

static bool is_mask(const Node *n) {
  return n->op == OP_WHERE && (ir_is_const(n->args[1], 0) || ir_is_const(n->args[2], 0));
}

/* A mask may sit under sums of adjoints, and under the broadcast and sum
 * that carry adjoints across reductions and broadcast arguments. */
static bool has_mask(Diff *d, const Node *n) {
  void *known = nodemap_get(&d->masked, n);
  if (known)
    return (intptr_t)known - 1;
  bool r = is_mask(n) ||
           (n->op == OP_ADD && (has_mask(d, n->args[0]) || has_mask(d, n->args[1]))) ||
           ((n->op == OP_BROADCAST || n->op == OP_SUM) && has_mask(d, n->args[0]));
  nodemap_put(&d->masked, n, (void *)(intptr_t)(r + 1));
  return r;
}

/* op(adj, local) with the masks of adj kept outermost; `done` holds the
 * parts of adj already done for this op and local (a sum of adjoints
 * shares its terms). */
static Node *chain_masked(Diff *d, Op op, Node *adj, Node *local, NodeMap *done) {
  if (!has_mask(d, adj))
    return ir_binary(d->g, op, adj, local);
  Node *r = nodemap_get(done, adj);
  if (r)
    return r;
  Node *c = adj->args[0];
  Shape shape;
  shape_broadcast(adj->shape, local->shape, &shape);
  if (adj->op == OP_WHERE && ir_is_const(adj->args[2], 0))
    r = ir_where(d->g, c, chain_masked(d, op, adj->args[1], local, done), adj->args[2]);
  else if (adj->op == OP_WHERE)
    r = ir_where(d->g, c, adj->args[1], chain_masked(d, op, adj->args[2], local, done));
  else if (adj->op == OP_ADD)
    r = ir_binary(d->g, OP_ADD, chain_masked(d, op, c, local, done),
                  chain_masked(d, op, adj->args[1], local, done));
  else if (adj->op == OP_BROADCAST)              /* broadcast(m) * L = m * L, re-broadcast */
    r = ir_broadcast(d->g, chain_masked(d, op, c, local, done), shape);
  else if (adj->op == OP_SUM && local->shape.rank == 0)   /* sum(m) * L = sum(m * L), L scalar */
    r = ir_unary(d->g, OP_SUM, chain_masked(d, op, c, local, done));
  else
    r = ir_binary(d->g, op, adj, local);
  nodemap_put(done, adj, r);
  return r;
}

/* op(adj, local) with where-masks of adj kept outermost (see the top). */
static Node *chain_op(Diff *d, Op op, Node *adj, Node *local) {
  if (!has_mask(d, adj))
    return ir_binary(d->g, op, adj, local);
  NodeMap done = {0};
  Node *r = chain_masked(d, op, adj, local, &done);
  nodemap_free(&done);
  return r;
}

static Node *chain(Diff *d, Node *adj, Node *local) { return chain_op(d, OP_MUL, adj, local); }

/* ---- the rules: contribution of node n's adjoint to argument i */

#define A(k) (n->args[k])
#define B2(op, x, y) ir_binary(d->g, OP_##op, (x), (y))
#define U1(op, x) ir_unary(d->g, OP_##op, (x))

static Node *d_zero(Diff *d, Node *n, int i, Node *adj) { return NULL; }
static Node *d_add(Diff *d, Node *n, int i, Node *adj) { return adj; }
static Node *d_sub(Diff *d, Node *n, int i, Node *adj) {
  return i == 0 ? adj : chain(d, adj, konst(d, -1));
}
static Node *d_mul(Diff *d, Node *n, int i, Node *adj) { return chain(d, adj, A(1 - i)); }
static Node *d_div(Diff *d, Node *n, int i, Node *adj) {
  if (i == 0)
    return chain_op(d, OP_DIV, adj, A(1));
  return chain(d, adj, U1(NEG, B2(DIV, n, A(1))));            /* -(a/b)/b */
}
static Node *d_neg(Diff *d, Node *n, int i, Node *adj) { return chain(d, adj, konst(d, -1)); }
static Node *d_pow(Diff *d, Node *n, int i, Node *adj) {
  if (i == 0) {
    /* b * a^(b-1), and 0 where b == 0 (at a == 0 too, where that is
     * 0 * inf), as torch.pow does; a constant b != 0 needs no mask */
    Node *local = B2(MUL, A(1), B2(POW, A(0), B2(SUB, A(1), konst(d, 1))));
    if (A(1)->op != OP_CONST || A(1)->num == 0)
      local = ir_where(d->g, B2(EQ, A(1), konst(d, 0)), konst(d, 0), local);
    return chain(d, adj, local);
  }
  /* a^b * log(a), and 0 where a == 0 and b >= 0, as torch.pow does */
  Node *zero_base = B2(MUL, B2(EQ, A(0), konst(d, 0)), B2(GE, A(1), konst(d, 0)));
  return chain(d, adj, ir_where(d->g, zero_base, konst(d, 0), B2(MUL, n, U1(LOG, A(0)))));
}
static Node *d_where(Diff *d, Node *n, int i, Node *adj) {
  if (i == 0)
    return NULL;
  return i == 1 ? ir_where(d->g, A(0), adj, konst(d, 0)) : ir_where(d->g, A(0), konst(d, 0), adj);
}
static Node *d_sin(Diff *d, Node *n, int i, Node *adj) { return chain(d, adj, U1(COS, A(0))); }
static Node *d_cos(Diff *d, Node *n, int i, Node *adj) {
  return chain(d, adj, U1(NEG, U1(SIN, A(0))));
}
static Node *d_tan(Diff *d, Node *n, int i, Node *adj) {
  return chain(d, adj, B2(ADD, konst(d, 1), B2(POW, n, konst(d, 2))));
}
static Node *d_exp(Diff *d, Node *n, int i, Node *adj) { return chain(d, adj, n); }
static Node *d_log(Diff *d, Node *n, int i, Node *adj) { return chain_op(d, OP_DIV, adj, A(0)); }
static Node *d_sqrt(Diff *d, Node *n, int i, Node *adj) {
  return chain_op(d, OP_DIV, adj, B2(MUL, konst(d, 2), n));
}
static Node *d_tanh(Diff *d, Node *n, int i, Node *adj) {
  return chain(d, adj, B2(SUB, konst(d, 1), B2(POW, n, konst(d, 2))));
}
static Node *d_sigmoid(Diff *d, Node *n, int i, Node *adj) {
  return chain(d, adj, B2(MUL, n, B2(SUB, konst(d, 1), n)));
}
static Node *d_abs(Diff *d, Node *n, int i, Node *adj) { return chain(d, adj, U1(SIGN, A(0))); }
static Node *d_log1p(Diff *d, Node *n, int i, Node *adj) {
  return chain_op(d, OP_DIV, adj, B2(ADD, konst(d, 1), A(0)));
}
static Node *d_expm1(Diff *d, Node *n, int i, Node *adj) {
  return chain(d, adj, B2(ADD, n, konst(d, 1)));
}
static Node *d_atan(Diff *d, Node *n, int i, Node *adj) {
  return chain_op(d, OP_DIV, adj, B2(ADD, konst(d, 1), B2(POW, A(0), konst(d, 2))));
}
static Node *d_relu(Diff *d, Node *n, int i, Node *adj) {
  return chain(d, adj, B2(GT, A(0), konst(d, 0)));
}
static Node *d_softplus(Diff *d, Node *n, int i, Node *adj) {
  return chain(d, adj, U1(SIGMOID, A(0)));
}
/* torch.minimum/maximum: the gradient goes to the smaller (larger)
 * argument, split in half on a tie. */
static Node *d_minmax(Diff *d, Node *n, int i, Node *adj, Op wins) {
  Node *mine = A(i), *other = A(1 - i);
  Node *local = B2(ADD, ir_binary(d->g, wins, mine, other),
                   B2(MUL, konst(d, 0.5), B2(EQ, mine, other)));
  return chain(d, adj, local);
}
static Node *d_min(Diff *d, Node *n, int i, Node *adj) { return d_minmax(d, n, i, adj, OP_LT); }
static Node *d_max(Diff *d, Node *n, int i, Node *adj) { return d_minmax(d, n, i, adj, OP_GT); }
static Node *d_sum(Diff *d, Node *n, int i, Node *adj) { return ir_broadcast(d->g, adj, A(0)->shape); }
static Node *d_mean(Diff *d, Node *n, int i, Node *adj) {
  Node *each = chain_op(d, OP_DIV, adj, konst(d, (double)shape_numel(A(0)->shape)));
  return ir_broadcast(d->g, each, A(0)->shape);
}
static Node *d_broadcast(Diff *d, Node *n, int i, Node *adj) { return adj; }
/* C = A @ B: dA = dC @ B', dB = A' @ dC. */
static Node *d_matmul(Diff *d, Node *n, int i, Node *adj) {
  return i == 0 ? B2(MATMUL, adj, U1(TRANSPOSE, A(1))) : B2(MATMUL, U1(TRANSPOSE, A(0)), adj);
}
static Node *d_transpose(Diff *d, Node *n, int i, Node *adj) { return U1(TRANSPOSE, adj); }
static Node *d_rsum(Diff *d, Node *n, int i, Node *adj) { return ir_broadcast(d->g, adj, A(0)->shape); }
/* The largest (smallest) of a row or column takes the gradient; tied
 * elements share it evenly, as with torch.amax. */
static Node *d_rmax(Diff *d, Node *n, int i, Node *adj) {
  Node *wins = B2(EQ, A(0), n);
  Node *share = B2(DIV, adj, ir_axis(d->g, OP_RSUM, wins, n->slot));
  return ir_where(d->g, wins, ir_broadcast(d->g, share, A(0)->shape), konst(d, 0));
}
static Node *d_reshape(Diff *d, Node *n, int i, Node *adj) { return ir_reshape(d->g, adj, A(0)->shape); }
static Node *d_slice(Diff *d, Node *n, int i, Node *adj) {
  return ir_pad(d->g, adj, n->pos[0], n->pos[1], A(0)->shape);
}
static Node *d_pad(Diff *d, Node *n, int i, Node *adj) {
  return ir_slice(d->g, adj, n->pos[0], n->pos[1], A(0)->shape);
}
/* A fn call: the partial derivatives were built with the call (fn.c), from
 * the hand-written deriv or from the body; only the arguments get a
 * contribution (the actual ones, and the params the body uses, which sema
 * adds as arguments), never the inlined body or the partials themselves. */
static Node *d_fncall(Diff *d, Node *n, int i, Node *adj) {
  int arity = ir_fncall_arity(n);
  return i < arity ? chain(d, adj, A(arity + 1 + i)) : NULL;
}

#undef A
#undef B2
#undef U1

static Rule *const rules[OP_COUNT] = {
#define X(name, spelling, arity, kind, prec, rule) [OP_##name] = rule,
#include "ops.def"
#undef X
};

/* Sums a contribution back to the shape of the argument it belongs to:
 * over the rows of a matrix for a row or vector argument, over its
 * columns for a column. */
static Node *unbroadcast(Graph *g, Node *c, Shape to) {
  if (shape_eq(c->shape, to))
    return c;
  if (shape_numel(to) == 1 || c->shape.rank < 2)
    return c->shape.rank < to.rank ? ir_broadcast(g, c, to) : ir_broadcast(g, ir_unary(g, OP_SUM, c), to);
  if (shape_rows(to) == 1 && shape_rows(c->shape) > 1)
    c = ir_axis(g, OP_RSUM, c, 0);
  if (shape_cols(to) == 1 && shape_cols(c->shape) > 1)
    c = ir_axis(g, OP_RSUM, c, 1);
  return ir_reshape(g, c, to);
}

static bool differentiable_arg(const Node *n, int i) {
  return n->op != OP_FNCALL || i < ir_fncall_arity(n);
}

/* Forward: which nodes lead to a target (only those get adjoints). */
static void mark_reaching(const NodeList *order, const NodeMap *target, NodeMap *reaches) {
  for (int k = 0; k < order->n; k++) {
    Node *n = order->items[k];
    bool r = nodemap_get(target, n) != NULL;
    for (int i = 0; i < n->nargs && !r; i++)
      r = differentiable_arg(n, i) && nodemap_get(reaches, n->args[i]);
    if (r)
      nodemap_put(reaches, n, n);
  }
}

/* Backward: accumulate adjoints in reverse topological order; a target
 * stops the walk (its own arguments are not differentiated through).
 * Each node's rules run once, so the work is linear in the DAG; a graph
 * grown to its limit stops it (the caller says so). */
static void accumulate(Diff *d, const NodeList *order, const NodeMap *target,
                       const NodeMap *reaches, NodeMap *adj) {
  for (int k = order->n - 1; k >= 0 && !graph_full(d->g); k--) {
    Node *n = order->items[k];
    Node *a = nodemap_get(adj, n);
    if (!a || nodemap_get(target, n))
      continue;
    for (int i = 0; i < n->nargs; i++) {
      Node *arg = n->args[i];
      if (!differentiable_arg(n, i) || !nodemap_get(reaches, arg))
        continue;
      Node *c = rules[n->op](d, n, i, a);
      if (!c)
        continue;
      c = unbroadcast(d->g, c, arg->shape);
      Node *prev = nodemap_get(adj, arg);
      nodemap_put(adj, arg, prev ? ir_binary(d->g, OP_ADD, prev, c) : c);
    }
  }
}

void diff_grads(Graph *g, Node *out, Node *const *wrt, int nwrt, Node **grads) {
  Diff d = {.g = g};
  NodeList order = ir_topo(&out, 1);
  NodeMap target = {0}, reaches = {0}, adj = {0};
  for (int j = 0; j < nwrt; j++)
    nodemap_put(&target, wrt[j], wrt[j]);
  mark_reaching(&order, &target, &reaches);
  if (nodemap_get(&reaches, out))
    nodemap_put(&adj, out, ir_broadcast(g, konst(&d, 1), out->shape));
  accumulate(&d, &order, &target, &reaches, &adj);
  for (int j = 0; j < nwrt; j++) {
    Node *a = nodemap_get(&adj, wrt[j]);
    grads[j] = a ? a : ir_broadcast(g, konst(&d, 0), wrt[j]->shape);
  }
  nodelist_free(&order);
  nodemap_free(&target);
  nodemap_free(&reaches);
  nodemap_free(&adj);
  nodemap_free(&d.masked);
}

Node *diff_node(Graph *g, Node *out, Node *wrt) {
  Node *grad;
  diff_grads(g, out, &wrt, 1, &grad);
  return grad;
}
