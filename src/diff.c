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
 * The result is raw (full of `* 1` and `+ 0`): simplify.c cleans it.
 */
#include "dlc.h"

#include <stdlib.h>

typedef Node *Rule(Graph *g, Node *n, int i, Node *adj);

static Node *konst(Graph *g, double v) { return ir_const(g, v); }

static bool is_mask(const Node *n) {
  return n->op == OP_WHERE && (ir_is_const(n->args[1], 0) || ir_is_const(n->args[2], 0));
}

/* A mask may sit under sums of adjoints, and under the broadcast and sum
 * that carry adjoints across reductions and broadcast arguments. */
static bool has_mask(const Node *n) {
  if (is_mask(n))
    return true;
  if (n->op == OP_ADD)
    return has_mask(n->args[0]) || has_mask(n->args[1]);
  return (n->op == OP_BROADCAST || n->op == OP_SUM) && has_mask(n->args[0]);
}

/* op(adj, local) with where-masks of adj kept outermost (see the top). */
static Node *chain_op(Graph *g, Op op, Node *adj, Node *local) {
  if (!has_mask(adj))
    return ir_binary(g, op, adj, local);
  Shape shape;
  shape_broadcast(adj->shape, local->shape, &shape);
  switch (adj->op) {
  case OP_WHERE: {
    Node *c = adj->args[0], *a = adj->args[1], *b = adj->args[2];
    if (ir_is_const(b, 0))
      return ir_where(g, c, chain_op(g, op, a, local), b);
    return ir_where(g, c, a, chain_op(g, op, b, local));
  }
  case OP_ADD:
    return ir_binary(g, OP_ADD, chain_op(g, op, adj->args[0], local),
                     chain_op(g, op, adj->args[1], local));
  case OP_BROADCAST:                             /* broadcast(m) * L = m * L, re-broadcast */
    return ir_broadcast(g, chain_op(g, op, adj->args[0], local), shape);
  case OP_SUM:                                   /* sum(m) * L = sum(m * L) for a scalar L */
    if (local->shape.rank == 0)
      return ir_unary(g, OP_SUM, chain_op(g, op, adj->args[0], local));
    break;
  default:
    break;
  }
  return ir_binary(g, op, adj, local);
}

static Node *chain(Graph *g, Node *adj, Node *local) { return chain_op(g, OP_MUL, adj, local); }

/* ---- the rules: contribution of node n's adjoint to argument i */

#define A(k) (n->args[k])
#define B2(op, x, y) ir_binary(g, OP_##op, (x), (y))
#define U1(op, x) ir_unary(g, OP_##op, (x))

static Node *d_zero(Graph *g, Node *n, int i, Node *adj) { return NULL; }
static Node *d_add(Graph *g, Node *n, int i, Node *adj) { return adj; }
static Node *d_sub(Graph *g, Node *n, int i, Node *adj) {
  return i == 0 ? adj : chain(g, adj, konst(g, -1));
}
static Node *d_mul(Graph *g, Node *n, int i, Node *adj) { return chain(g, adj, A(1 - i)); }
static Node *d_div(Graph *g, Node *n, int i, Node *adj) {
  if (i == 0)
    return chain_op(g, OP_DIV, adj, A(1));
  return chain(g, adj, U1(NEG, B2(DIV, n, A(1))));            /* -(a/b)/b */
}
static Node *d_neg(Graph *g, Node *n, int i, Node *adj) { return chain(g, adj, konst(g, -1)); }
static Node *d_pow(Graph *g, Node *n, int i, Node *adj) {
  if (i == 0)                                                  /* b * a^(b-1) */
    return chain(g, adj, B2(MUL, A(1), B2(POW, A(0), B2(SUB, A(1), konst(g, 1)))));
  /* a^b * log(a), and 0 where a == 0 and b >= 0, as torch.pow does */
  Node *zero_base = B2(MUL, B2(EQ, A(0), konst(g, 0)), B2(GE, A(1), konst(g, 0)));
  return chain(g, adj, ir_where(g, zero_base, konst(g, 0), B2(MUL, n, U1(LOG, A(0)))));
}
static Node *d_where(Graph *g, Node *n, int i, Node *adj) {
  if (i == 0)
    return NULL;
  return i == 1 ? ir_where(g, A(0), adj, konst(g, 0)) : ir_where(g, A(0), konst(g, 0), adj);
}
static Node *d_sin(Graph *g, Node *n, int i, Node *adj) { return chain(g, adj, U1(COS, A(0))); }
static Node *d_cos(Graph *g, Node *n, int i, Node *adj) {
  return chain(g, adj, U1(NEG, U1(SIN, A(0))));
}
static Node *d_tan(Graph *g, Node *n, int i, Node *adj) {
  return chain(g, adj, B2(ADD, konst(g, 1), B2(POW, n, konst(g, 2))));
}
static Node *d_exp(Graph *g, Node *n, int i, Node *adj) { return chain(g, adj, n); }
static Node *d_log(Graph *g, Node *n, int i, Node *adj) { return chain_op(g, OP_DIV, adj, A(0)); }
static Node *d_sqrt(Graph *g, Node *n, int i, Node *adj) {
  return chain_op(g, OP_DIV, adj, B2(MUL, konst(g, 2), n));
}
static Node *d_tanh(Graph *g, Node *n, int i, Node *adj) {
  return chain(g, adj, B2(SUB, konst(g, 1), B2(POW, n, konst(g, 2))));
}
static Node *d_sigmoid(Graph *g, Node *n, int i, Node *adj) {
  return chain(g, adj, B2(MUL, n, B2(SUB, konst(g, 1), n)));
}
static Node *d_abs(Graph *g, Node *n, int i, Node *adj) { return chain(g, adj, U1(SIGN, A(0))); }
static Node *d_log1p(Graph *g, Node *n, int i, Node *adj) {
  return chain_op(g, OP_DIV, adj, B2(ADD, konst(g, 1), A(0)));
}
static Node *d_expm1(Graph *g, Node *n, int i, Node *adj) {
  return chain(g, adj, B2(ADD, n, konst(g, 1)));
}
static Node *d_atan(Graph *g, Node *n, int i, Node *adj) {
  return chain_op(g, OP_DIV, adj, B2(ADD, konst(g, 1), B2(POW, A(0), konst(g, 2))));
}
static Node *d_relu(Graph *g, Node *n, int i, Node *adj) {
  return chain(g, adj, B2(GT, A(0), konst(g, 0)));
}
static Node *d_softplus(Graph *g, Node *n, int i, Node *adj) {
  return chain(g, adj, U1(SIGMOID, A(0)));
}
/* torch.minimum/maximum: the gradient goes to the smaller (larger)
 * argument, split in half on a tie. */
static Node *d_minmax(Graph *g, Node *n, int i, Node *adj, Op wins) {
  Node *mine = A(i), *other = A(1 - i);
  Node *local = B2(ADD, ir_binary(g, wins, mine, other),
                   B2(MUL, konst(g, 0.5), B2(EQ, mine, other)));
  return chain(g, adj, local);
}
static Node *d_min(Graph *g, Node *n, int i, Node *adj) { return d_minmax(g, n, i, adj, OP_LT); }
static Node *d_max(Graph *g, Node *n, int i, Node *adj) { return d_minmax(g, n, i, adj, OP_GT); }
static Node *d_sum(Graph *g, Node *n, int i, Node *adj) { return ir_broadcast(g, adj, A(0)->shape); }
static Node *d_mean(Graph *g, Node *n, int i, Node *adj) {
  Node *each = chain_op(g, OP_DIV, adj, konst(g, (double)shape_numel(A(0)->shape)));
  return ir_broadcast(g, each, A(0)->shape);
}
static Node *d_broadcast(Graph *g, Node *n, int i, Node *adj) { return adj; }
/* C = A @ B: dA = dC @ B', dB = A' @ dC. */
static Node *d_matmul(Graph *g, Node *n, int i, Node *adj) {
  return i == 0 ? B2(MATMUL, adj, U1(TRANSPOSE, A(1))) : B2(MATMUL, U1(TRANSPOSE, A(0)), adj);
}
static Node *d_transpose(Graph *g, Node *n, int i, Node *adj) { return U1(TRANSPOSE, adj); }
static Node *d_rsum(Graph *g, Node *n, int i, Node *adj) { return ir_broadcast(g, adj, A(0)->shape); }
/* The largest (smallest) of a row or column takes the gradient; tied
 * elements share it evenly, as with torch.amax. */
static Node *d_rmax(Graph *g, Node *n, int i, Node *adj) {
  Node *wins = B2(EQ, A(0), n);
  Node *share = B2(DIV, adj, ir_axis(g, OP_RSUM, wins, n->slot));
  return ir_where(g, wins, ir_broadcast(g, share, A(0)->shape), konst(g, 0));
}
static Node *d_reshape(Graph *g, Node *n, int i, Node *adj) { return ir_reshape(g, adj, A(0)->shape); }
static Node *d_slice(Graph *g, Node *n, int i, Node *adj) {
  return ir_pad(g, adj, n->pos[0], n->pos[1], A(0)->shape);
}
static Node *d_pad(Graph *g, Node *n, int i, Node *adj) {
  return ir_slice(g, adj, n->pos[0], n->pos[1], A(0)->shape);
}
/* A fn call: the partial derivatives were built with the call (sema.c), from
 * the hand-written deriv or from the body; only the arguments get a
 * contribution (the actual ones, and the params the body uses, which sema
 * adds as arguments), never the inlined body or the partials themselves. */
static Node *d_fncall(Graph *g, Node *n, int i, Node *adj) {
  int arity = ir_fncall_arity(n);
  return i < arity ? chain(g, adj, A(arity + 1 + i)) : NULL;
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

void diff_grads(Graph *g, Node *out, Node *const *wrt, int nwrt, Node **grads) {
  NodeList order = ir_topo(&out, 1);
  NodeMap target = {0}, reaches = {0}, adj = {0};
  for (int j = 0; j < nwrt; j++)
    nodemap_put(&target, wrt[j], wrt[j]);

  /* Forward: which nodes lead to a target (only those get adjoints). */
  for (int k = 0; k < order.n; k++) {
    Node *n = order.items[k];
    bool r = nodemap_get(&target, n) != NULL;
    for (int i = 0; i < n->nargs && !r; i++)
      r = differentiable_arg(n, i) && nodemap_get(&reaches, n->args[i]);
    if (r)
      nodemap_put(&reaches, n, n);
  }

  /* Backward: accumulate adjoints in reverse topological order; a target
   * stops the walk (its own arguments are not differentiated through). */
  if (nodemap_get(&reaches, out))
    nodemap_put(&adj, out, ir_broadcast(g, konst(g, 1), out->shape));
  for (int k = order.n - 1; k >= 0; k--) {
    Node *n = order.items[k];
    Node *a = nodemap_get(&adj, n);
    if (!a || nodemap_get(&target, n))
      continue;
    for (int i = 0; i < n->nargs; i++) {
      Node *arg = n->args[i];
      if (!differentiable_arg(n, i) || !nodemap_get(&reaches, arg))
        continue;
      Node *c = rules[n->op](g, n, i, a);
      if (!c)
        continue;
      c = unbroadcast(g, c, arg->shape);
      Node *prev = nodemap_get(&adj, arg);
      nodemap_put(&adj, arg, prev ? ir_binary(g, OP_ADD, prev, c) : c);
    }
  }

  for (int j = 0; j < nwrt; j++) {
    Node *a = nodemap_get(&adj, wrt[j]);
    grads[j] = a ? a : ir_broadcast(g, konst(g, 0), wrt[j]->shape);
  }
  nodelist_free(&order);
  nodemap_free(&target);
  nodemap_free(&reaches);
  nodemap_free(&adj);
}

Node *diff_node(Graph *g, Node *out, Node *wrt) {
  Node *grad;
  diff_grads(g, out, &wrt, 1, &grad);
  return grad;
}
