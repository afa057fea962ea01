/* fn.c — user functions at their calls, and diff().
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
 * diff(e, x) is here too: the same elementwise derivative, of an
 * expression written in place rather than of a fn's body. These are the
 * places where sema differentiates (diff.c) while it checks.
 */
#include "dlc.h"

#include <stdlib.h>
#include <string.h>

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
bool expand_fn(Sema *s, const Fn *fn, Node *const *actuals, Node **body, Node **hand,
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
  FnCall **buckets = xcalloc(nb, sizeof *buckets);
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

Node *elab_fn_call(Sema *s, const Expr *call, const Fn *fn, Local *locals) {
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

/* ---- diff(e, x) */

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

Node *elab_diff(Sema *s, const Expr *call, Expr **args, Local *locals) {
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

bool sema_fn_partials(Program *p, const Fn *fn, Node *const *args, Node **body, Node **hand,
                      Node **sym) {
  Sema s = {.p = p, .g = p->graph, .d = p->diags, .syms = p->syms};
  Node *body_vars, *var_nodes[fn->arity + 1];
  return expand_fn(&s, fn, args, body, hand, sym, true, &body_vars, var_nodes);
}
