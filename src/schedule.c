/* schedule.c — one training step planned as fused loops.
 *
 * The step's outputs are the loss and every param's gradient (diff.c, then
 * simplify.c; train.c runs these passes in order). Lowering first inlines
 * fn calls (a call becomes its body)
 * and precomputes param-free vector subexpressions that cost more than a
 * load (a `sin(x)` inside the loss is computed once, not every step), as
 * long as the program's data stays within MAX_DATA_ELEMENTS.
 *
 * Then every node gets a stage: the number of reductions between it and the
 * data. Vector nodes of stage s are computed elementwise inside loop s, and
 * never stored: each loop recomputes what it needs from the data and the
 * scalars, so no intermediate vector is allocated. A sum over a stage-s
 * vector is finished by loop s and is a scalar of stage s + 1. The seed has
 * one stage (one loop computes the loss and all four gradient sums); a loss
 * with a param-dependent mean inside needs two.
 *
 * Buffers are numbered here (params, data, vector gradients, optimizer
 * state) so that codegen and the runtime agree on one array of pointers,
 * and on which of them each thread holds a copy of its own
 * (schedule_buffer_private); what they hold besides params and data is
 * checked against MAX_DATA_ELEMENTS before anything is allocated.
 */
#include "dlc.h"

#include <stdlib.h>
#include <string.h>

typedef struct Sched {
  Program *p;
  Schedule *s;
  NodeMap stage;                                 /* node -> stage + 1 (as a pointer-sized int) */
} Sched;

static int stage_of(Sched *c, const Node *n) {
  return (int)(intptr_t)nodemap_get(&c->stage, n) - 1;
}

static bool is_reduction(const Node *n) { return op_info[n->op].kind == K_REDUCE; }

/* A hoisted value is named by its formula (`emit ir` shows it) when that
 * is at most this long written out. */
enum { HOIST_NAME_TERMS = 10000 };

bool schedule_is_kernel(const Node *n) {
  return n->op == OP_MATMUL || n->op == OP_TRANSPOSE || n->op == OP_SLICE || n->op == OP_PAD ||
         op_info[n->op].kind == K_AXIS;
}

/* Worth precomputing: something costlier than arithmetic. */
static bool costly(const Node *n) {
  return n->op == OP_DIV || n->op == OP_POW || schedule_is_kernel(n) ||
         (op_info[n->op].kind == K_CALL && n->op != OP_BROADCAST);
}

int schedule_buffer(const Schedule *s, const Node *n, int *ready) {
  int slot = (int)(intptr_t)nodemap_get(&s->buffer, n) - 1;
  *ready = (int)(intptr_t)nodemap_get(&s->ready, n) - 1;
  return slot;
}

/* n, param-free, computed now: a data leaf holding its value. NULL where
 * it cannot be (no memory for it, or the program's data would pass
 * MAX_DATA_ELEMENTS): then each step computes it, as any other node. */
static Node *hoist(Sched *c, Node *n) {
  Program *p = c->p;
  int64_t numel = shape_numel(n->shape);
  if ((double)p->data_elements + (double)numel > MAX_DATA_ELEMENTS)
    return NULL;
  Tensor t;
  char *err = NULL;
  if (!eval_node(p, n, NULL, NULL, 0, &t, &err)) {
    free(err);
    return NULL;
  }
  p->data_elements += numel;
  eval_warn_nonfinite(p, n, &t);
  const char *name = NULL;                       /* its formula, for `emit ir`, if short */
  if (ir_tree_size(n) <= HOIST_NAME_TERMS) {
    Buf text = {0};
    ir_format(&text, n, p);
    name = arena_strdup(p->arena, text.data);
    buf_free(&text);
  }
  return ir_leaf(p->graph, OP_DATA, t.shape, program_add_data(p, name, t), NULL);
}

void schedule_lower(Program *p, Node **roots, int nroots) {
  Sched sched = {.p = p}, *c = &sched;
  Graph *g = p->graph;
  NodeList order = ir_topo(roots, nroots);
  NodeMap map = {0};
  NodeMap expensive = {0};                       /* param-free subtrees with costly work */
  for (int k = 0; k < order.n; k++) {
    Node *n = order.items[k];
    bool e = costly(n);
    for (int i = 0; i < n->nargs && !e; i++)
      e = nodemap_get(&expensive, n->args[i]) != NULL;
    if (e && !(n->flags & (NODE_HAS_PARAM | NODE_HAS_BATCH)))
      nodemap_put(&expensive, n, n);
  }
  for (int k = 0; k < order.n; k++) {
    Node *n = order.items[k];
    Node *r = NULL;
    bool param_free = !(n->flags & (NODE_HAS_PARAM | NODE_HAS_VAR | NODE_HAS_BATCH));
    if (n->op == OP_FNCALL)
      r = nodemap_get(&map, ir_fncall_body(n));
    else if (param_free && ((n->shape.rank > 0 && nodemap_get(&expensive, n)) || is_reduction(n)))
      r = hoist(c, n);
    if (!r && n->nargs) {
      Node *args[n->nargs];
      for (int i = 0; i < n->nargs; i++)
        args[i] = nodemap_get(&map, n->args[i]);
      r = ir_with_args(g, n, args);
    }
    nodemap_put(&map, n, r ? r : n);
  }
  for (int i = 0; i < nroots; i++)
    roots[i] = nodemap_get(&map, roots[i]);
  nodelist_free(&order);
  nodemap_free(&map);
  nodemap_free(&expensive);
}

/* items, an array of n elements of `size` bytes in the schedule's arena,
 * with room for one more: its capacity doubles at each power of two. */
static void *room(Schedule *s, void *items, int n, size_t size) {
  if (n > 0 && (n < 4 || (n & (n - 1))))
    return items;
  return arena_grow(s->arena, items, size * (size_t)n, size * (size_t)(n ? 2 * n : 4));
}

static Loop *loop_for(Schedule *s, int stage, Shape shape) {
  for (int i = 0; i < s->nloops; i++)
    if (s->loops[i].stage == stage && shape_eq(s->loops[i].shape, shape))
      return &s->loops[i];
  s->loops = room(s, s->loops, s->nloops, sizeof(Loop));
  Loop *l = &s->loops[s->nloops++];
  *l = (Loop){.stage = stage, .shape = shape, .reductions.arena = s->arena, .stores.arena = s->arena};
  return l;
}

static int by_stage(const void *a, const void *b) {
  return ((const Loop *)a)->stage - ((const Loop *)b)->stage;
}

/* Kernels by stage, then in creation order (arguments first). */
static int kernel_order(const void *a, const void *b) {
  const Kernel *x = a, *y = b;
  return x->stage != y->stage ? x->stage - y->stage : (x->node->id > y->node->id) - (x->node->id < y->node->id);
}

static int add_buf(Schedule *s, BufKind kind, int index, int64_t numel) {
  s->bufs = room(s, s->bufs, s->nbufs, sizeof(BufInfo));
  s->bufs[s->nbufs] = (BufInfo){kind, index, numel};
  return s->nbufs++;
}

/* n is in buffer `slot` from stage `ready` on. */
static void hold(Schedule *s, const Node *n, int slot, int ready) {
  nodemap_put(&s->buffer, n, (void *)(intptr_t)(slot + 1));
  nodemap_put(&s->ready, n, (void *)(intptr_t)(ready + 1));
}

static bool held(const Schedule *s, const Node *n) { return nodemap_get(&s->buffer, n) != NULL; }

static void add_store(Schedule *s, int stage, Node *n, int slot) {
  Loop *l = loop_for(s, stage, n->shape);
  l->store_slots = room(s, l->store_slots, l->stores.n, sizeof(int));
  l->store_slots[l->stores.n] = slot;
  nodelist_push(&l->stores, n);
}

/* The loop of n's stage stores it, for the kernels after it (stage
 * numbers: see schedule_train). */
static void store(Sched *c, Node *n) {
  int st = stage_of(c, n);
  int slot = add_buf(c->s, BUF_TEMP, -1, shape_numel(n->shape));
  add_store(c->s, st, n, slot);
  hold(c->s, n, slot, st + 1);
}

int schedule_state_count(const Optimizer *opt) {
  switch (opt->kind) {
  case OPT_SGD: return opt->momentum != 0;
  case OPT_ADAM: return 2;
  case OPT_RMSPROP: return 1;
  }
  return 0;
}

static bool in_param_buffer(const Schedule *s, const Node *n) {
  int ready, slot = schedule_buffer(s, n, &ready);
  return slot >= 0 && s->bufs[slot].kind == BUF_PARAM;
}

/* Whether a step reads an element of a vector param that another thread
 * updates. The update gives each thread the elements of its share of the
 * param's length (codegen's blocks, the GPU's grid stride), and a loop
 * over as many elements loads the same ones in the same thread; a kernel
 * (a product, a slice), a loop that broadcasts the param over more
 * elements, and a scalar view of it read the others. Where it does, the
 * team meets after the update, before the next step reads. */
static bool params_shared(const Schedule *s) {
  for (int k = 0; k < s->nkernels; k++)
    for (int i = 0; i < s->kernels[k].node->nargs; i++)
      if (in_param_buffer(s, s->kernels[k].node->args[i]))
        return true;
  for (int st = 0; st <= s->nstages; st++)
    for (int k = 0; k < s->prelude[st].n; k++)
      if (in_param_buffer(s, s->prelude[st].items[k]))
        return true;
  bool shared = false;
  for (int l = 0; l < s->nloops && !shared; l++) {
    const Loop *loop = &s->loops[l];
    Node *roots[loop->reductions.n + loop->stores.n + 1];
    int nroots;
    NodeList order = loop_order(s, loop, roots, &nroots);
    for (int k = 0; k < order.n && !shared; k++) {
      const Node *n = order.items[k];
      shared = loop_loads(s, loop, n) && in_param_buffer(s, n) &&
               shape_numel(n->shape) != shape_numel(loop->shape);
    }
    nodelist_free(&order);
  }
  return shared;
}

/* The numbers a step needs besides its params and data: gradients,
 * optimizer state and intermediate results. */
static double working_numbers(const Schedule *s) {
  double n = 0;
  for (int k = 0; k < s->nbufs; k++)
    if (s->bufs[k].kind != BUF_PARAM && s->bufs[k].kind != BUF_DATA)
      n += (double)s->bufs[k].numel;
  return n;
}

/* The buffers exec_make_buffers will allocate fit the limits: an error at
 * the loss instead of an allocation the machine cannot satisfy. */
static bool buffers_fit(Program *p, const Schedule *s, Span at) {
  double n = working_numbers(s);
  if (n <= MAX_DATA_ELEMENTS)
    return true;
  diag_error(p->diags, at,
             "training this loss needs %.0f numbers of gradients, optimizer state and intermediate "
             "results; a train holds at most %.0f",
             n, MAX_DATA_ELEMENTS);
  return false;
}

Schedule *schedule_train(Program *p, Node *const *roots, const Optimizer *opt, Span at) {
  int np = p->nparams, nroots = np + 1;
  Arena *a = arena_new();                        /* everything the schedule holds: one free */
  Schedule *s = arena_alloc(a, sizeof *s);
  *s = (Schedule){.arena = a, .buffer.arena = a, .ready.arena = a};
  Sched c = {.p = p, .s = s};
  s->loss = roots[0];
  s->grads = arena_alloc(a, sizeof(Node *) * (size_t)(np + 1));
  memcpy(s->grads, roots + 1, sizeof(Node *) * (size_t)np);
  s->batched = (s->loss->flags & NODE_HAS_BATCH) != 0;

  /* Buffers: params, then the data the step reads. */
  NodeList order = ir_topo(roots, nroots);
  s->param_buf = arena_alloc(a, sizeof(int) * (size_t)(np + 1));
  s->grad_buf = arena_alloc(a, sizeof(int) * (size_t)(np + 1));
  s->state_buf = arena_alloc(a, sizeof(int) * (size_t)(2 * np + 1));
  s->data_buf = arena_alloc(a, sizeof(int) * (size_t)(p->ndata + 1));
  for (int i = 0; i < np; i++) {
    s->param_buf[i] = add_buf(s, BUF_PARAM, i, shape_numel(p->params[i].node->shape));
    if (p->params[i].node->shape.rank > 0)
      hold(s, p->params[i].node, s->param_buf[i], 0);
  }
  for (int i = 0; i < p->ndata; i++)
    s->data_buf[i] = -1;
  for (int k = 0; k < order.n; k++)
    if (order.items[k]->op == OP_DATA && order.items[k]->shape.rank > 0) {   /* scalars are constants */
      int slot = order.items[k]->slot;
      s->data_buf[slot] = add_buf(s, BUF_DATA, slot, shape_numel(p->data[slot].value.shape));
      hold(s, order.items[k], s->data_buf[slot], 0);
    }

  /* Stages, in topological order. A node's stage is where it is
   * computed; an argument held in a buffer counts from when it is ready.
   * A reduction of a vector is finished by the loop of its argument's
   * stage, a scalar of the next; a kernel runs after the loops of the
   * stage where its arguments are ready, and its result is ready in the
   * next. An argument of a kernel that is computed elementwise is stored
   * by its loop. */
  int max_stage = 0;
  for (int k = 0; k < order.n; k++) {
    Node *n = order.items[k];
    int st = 0;
    if (n->op == OP_RESHAPE && n->args[0]->shape.rank > 0) {
      /* A view of its argument's buffer. */
      Node *a = n->args[0];
      if (!held(s, a))
        store(&c, a);
      int ready, slot = schedule_buffer(s, a, &ready);
      hold(s, n, slot, ready);
      st = ready;
    } else {
      for (int i = 0; i < n->nargs; i++) {
        Node *a = n->args[i];
        if (schedule_is_kernel(n) && !held(s, a))
          store(&c, a);
        int ready, at = schedule_buffer(s, a, &ready) >= 0 ? ready : stage_of(&c, a);
        st = at > st ? at : st;
      }
      if (is_reduction(n) && n->args[0]->shape.rank > 0)
        st++;
    }
    nodemap_put(&c.stage, n, (void *)(intptr_t)(st + 1));
    if (schedule_is_kernel(n)) {
      s->kernels = room(s, s->kernels, s->nkernels, sizeof(Kernel));
      s->kernels[s->nkernels++] = (Kernel){st, n};
      hold(s, n, add_buf(s, BUF_TEMP, -1, shape_numel(n->shape)), st + 1);
    }
    max_stage = st + schedule_is_kernel(n) > max_stage ? st + schedule_is_kernel(n) : max_stage;
  }
  s->nstages = max_stage;
  s->prelude = arena_alloc(a, sizeof(NodeList) * (size_t)(max_stage + 1));
  for (int st = 0; st <= max_stage; st++)
    s->prelude[st].arena = a;

  /* Loops: each reduction of a vector joins the loop of its argument's
   * stage and length; scalars go to the prelude of their stage. */
  for (int k = 0; k < order.n; k++) {
    Node *n = order.items[k];
    int ready;
    if (is_reduction(n) && n->args[0]->shape.rank > 0) {
      Node *v = n->args[0];
      int at = schedule_buffer(s, v, &ready) >= 0 ? ready : stage_of(&c, v);
      nodelist_push(&loop_for(s, at, v->shape)->reductions, n);
    } else if (n->shape.rank == 0 && op_info[n->op].kind != K_LEAF) {
      nodelist_push(&s->prelude[stage_of(&c, n)], n);
    }
  }

  /* Gradients of vector params: a buffer a kernel or the loss already
   * fills, or a store of a loop; then optimizer state. */
  for (int i = 0; i < np; i++) {
    Node *gr = s->grads[i];
    s->grad_buf[i] = -1;
    if (p->params[i].node->shape.rank > 0) {
      int ready;
      s->grad_buf[i] = schedule_buffer(s, gr, &ready);
      /* (Not another param's buffer: the update changes it.) */
      if (s->grad_buf[i] < 0 || s->bufs[s->grad_buf[i]].kind == BUF_PARAM) {
        s->grad_buf[i] = add_buf(s, BUF_GRAD, i, shape_numel(p->params[i].node->shape));
        add_store(s, stage_of(&c, gr), gr, s->grad_buf[i]);
      }
    }
    for (int k = 0; k < 2; k++)
      s->state_buf[2 * i + k] =
          k < schedule_state_count(opt) ? add_buf(s, BUF_STATE, i, shape_numel(p->params[i].node->shape)) : -1;
  }
  if (s->nloops > 1)
    qsort(s->loops, (size_t)s->nloops, sizeof(Loop), by_stage);
  if (s->nkernels > 1)
    qsort(s->kernels, (size_t)s->nkernels, sizeof(Kernel), kernel_order);
  s->params_shared = params_shared(s);
  nodelist_free(&order);
  nodemap_free(&c.stage);
  if (!buffers_fit(p, s, at)) {
    schedule_free(s);
    return NULL;
  }
  return s;
}

void schedule_free(Schedule *s) {
  if (s)
    arena_free(s->arena);
}

int loop_roots(const Loop *l, Node **roots) {
  int nred = l->reductions.n;
  for (int r = 0; r < nred; r++)
    roots[r] = l->reductions.items[r]->args[0];
  for (int k = 0; k < l->stores.n; k++)
    roots[nred + k] = l->stores.items[k];
  return nred + l->stores.n;
}

bool loop_loads(const Schedule *s, const Loop *l, const Node *n) {
  int ready;
  return schedule_buffer(s, n, &ready) >= 0 && ready <= l->stage;
}

int loop_sums(const Loop *l) { return l->reductions.n + (l->stores.n > 0); }

bool schedule_buffer_private(const Program *p, const Schedule *s, int k) {
  const BufInfo *bi = &s->bufs[k];
  return (bi->kind == BUF_PARAM || bi->kind == BUF_STATE) && p->params[bi->index].node->shape.rank == 0;
}

/* What a loop computes for its roots: not scalars (they come from the
 * preludes), nor the arguments of what it loads. */
typedef struct LoopAt {
  const Schedule *s;
  const Loop *l;
} LoopAt;

static int loop_leaf(const Node *n, void *ctx) {
  const LoopAt *at = ctx;
  return n->shape.rank == 0 ? -1 : loop_loads(at->s, at->l, n);
}

NodeList loop_order(const Schedule *s, const Loop *l, Node **roots, int *nroots) {
  *nroots = loop_roots(l, roots);
  LoopAt at = {s, l};
  return ir_topo_until(roots, *nroots, loop_leaf, &at);
}
