/* check_schedule.c — unit tests for src/schedule.c.
 *
 * A schedule is checked by its shape, on programs whose plan is known by
 * hand: the seed fuses into one loop computing five sums (the loss and the
 * four gradients); a param-dependent mean inside the loss needs a second
 * stage; a vector param's gradient is stored by a loop into its BUF_GRAD
 * buffer (in the stage its value needs); data of two lengths gives two
 * loops in one stage; fn calls are inlined and param-free costly work is
 * precomputed into data. Then the buffer table: one per param, the data the
 * step reads, and the optimizer state each optimizer keeps; and which
 * steps read a vector param beyond each thread's share (params_shared).
 */
#include "unit.h"

static Schedule *S;

static void teardown(void) {
  schedule_free(S);
  S = NULL;
  fx_teardown();
}

static Schedule *plan(Optimizer opt) {
  ck_assert_ptr_nonnull(fx.prog->loss);
  S = train_schedule(fx.runner, fx.prog, fx.prog->loss, &opt);
  ck_assert_ptr_nonnull(S);
  return S;
}

static const Optimizer sgd = {.kind = OPT_SGD, .lr = 0.1};

/* Every node the step computes: the loss and the gradients. */
static NodeList step_nodes(const Schedule *s) {
  int np = fx.prog->nparams;
  Node *roots[np + 1];
  roots[0] = s->loss;
  for (int i = 0; i < np; i++)
    roots[i + 1] = s->grads[i];
  return ir_topo(roots, np + 1);
}

static int count_step_op(const Schedule *s, Op op) {
  NodeList all = step_nodes(s);
  int n = 0;
  for (int k = 0; k < all.n; k++)
    n += all.items[k]->op == op;
  nodelist_free(&all);
  return n;
}

static bool in_list(const NodeList *l, const Node *n) {
  for (int k = 0; k < l->n; k++)
    if (l->items[k] == n)
      return true;
  return false;
}

static int count_bufs(const Schedule *s, BufKind kind) {
  int n = 0;
  for (int k = 0; k < s->nbufs; k++)
    n += s->bufs[k].kind == kind;
  return n;
}

/* The planned loss and gradients compute what the program's loss and its
 * raw gradients do, at the params' current values. */
static void expect_same_values(const Schedule *s) {
  int np = fx.prog->nparams;
  Node *wrt[np + 1], *grads[np + 1];
  for (int i = 0; i < np; i++)
    wrt[i] = fx.prog->params[i].node;
  diff_grads(fx.g, fx.prog->loss, wrt, np, grads);
  double want = eval_scalar(fx.prog->loss, NULL, NULL, 0);
  double got = eval_scalar(s->loss, NULL, NULL, 0);
  ck_assert_msg(close_to(got, want, 1e-10), "loss %.17g, expected %.17g", got, want);
  for (int i = 0; i < np; i++) {
    Tensor tw = eval_tensor(grads[i], NULL, NULL, 0), tg = eval_tensor(s->grads[i], NULL, NULL, 0);
    ck_assert(shape_eq(tw.shape, tg.shape));
    for (int64_t k = 0; k < shape_numel(tw.shape); k++)
      ck_assert_msg(close_to(tg.v[k], tw.v[k], 1e-10), "grad %s[%lld] %.17g, expected %.17g",
                    fx.prog->params[i].name, (long long)k, tg.v[k], tw.v[k]);
    free(tw.v);
    free(tg.v);
  }
}

/* ---- stages and loops */

START_TEST(seed_one_loop) {
  compile_text(SEED_TEXT);
  Schedule *s = plan(fx.prog->actions->opt);
  ck_assert_int_eq(s->nstages, 1);
  ck_assert_int_eq(s->nloops, 1);
  const Loop *l = &s->loops[0];
  ck_assert_int_eq(l->stage, 0);
  ck_assert(shape_eq(l->shape, shape_vector(2000)));
  ck_assert_int_eq(l->reductions.n, 5);          /* the loss and four gradient sums */
  ck_assert_int_eq(l->stores.n, 0);
  for (int r = 0; r < 5; r++) {
    Node *red = l->reductions.items[r];
    ck_assert(red->op == OP_SUM || red->op == OP_MEAN);
    ck_assert(shape_eq(red->args[0]->shape, shape_vector(2000)));
  }
  ck_assert_msg(in_list(&l->reductions, s->loss), "the loss %s is not one of the loop's sums",
                formula(s->loss));
  /* The gradients are scalars of stage 1, computed from the loop's sums. */
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(s->grads[i]->shape.rank, 0);
    ck_assert(s->grads[i]->flags & NODE_HAS_PARAM);
  }
  /* Lowered: no call node is left. */
  ck_assert_int_eq(count_step_op(s, OP_FNCALL), 0);
  /* The scalars of stage 0 need no loop result; those of stage 1 are
   * built on the sums. */
  for (int k = 0; k < s->prelude[0].n; k++) {
    Node *n = s->prelude[0].items[k];
    NodeList sub = ir_topo(&n, 1);
    for (int j = 0; j < sub.n; j++)
      ck_assert_msg(!in_list(&l->reductions, sub.items[j]), "stage 0 prelude uses a loop's sum");
    nodelist_free(&sub);
  }
}
END_TEST

/* The lowered loss and gradients compute what the original ones do. */
START_TEST(seed_lowering_keeps_values) {
  compile_text(SEED_TEXT);
  expect_same_values(plan(sgd));
}
END_TEST

/* A mean inside the loss: at most two passes, one to finish the mean and
 * one for the loss and the gradient's sums (the mean's adjoint is a scalar
 * times a vector inside a sum, c * sum(v): it needs no third pass). Here
 * mean(a * x) is a * mean(x), and mean(x) needs no pass at all. */
START_TEST(mean_inside_two_stages) {
  compile_text("x = linspace(0, 1, 50)\n"
               "param a = 1.5\n"
               "loss = sum((a * x - mean(a * x))^2)\n");
  Schedule *s = plan(sgd);
  ck_assert_msg(s->nstages <= 2 && s->nloops <= 2 && s->nloops >= 1,
                "%d stages, %d loops; expected at most 2 and 2", s->nstages, s->nloops);
  expect_same_values(s);
}
END_TEST

/* A mean that is not linear in the params needs its own pass: exactly
 * two, the mean's then the loss's and gradients'. */
START_TEST(mean_inside_nonlinear_two_stages) {
  compile_text("x = linspace(0, 1, 50)\n"
               "param a = 1.5\n"
               "loss = sum((tanh(a * x) - mean(tanh(a * x)))^2)\n");
  Schedule *s = plan(sgd);
  ck_assert_msg(s->nstages == 2 && s->nloops == 2, "%d stages, %d loops; expected 2 and 2",
                s->nstages, s->nloops);
  ck_assert_int_eq(s->loops[0].stage, 0);
  ck_assert_int_eq(s->loops[1].stage, 1);
  ck_assert(shape_eq(s->loops[0].shape, shape_vector(50)));
  ck_assert(shape_eq(s->loops[1].shape, shape_vector(50)));
  /* The mean is finished by the first loop; the loss by the second. */
  bool mean_first = false;
  for (int r = 0; r < s->loops[0].reductions.n; r++)
    mean_first |= s->loops[0].reductions.items[r]->op == OP_MEAN;
  ck_assert(mean_first);
  ck_assert(in_list(&s->loops[1].reductions, s->loss));
  ck_assert(!in_list(&s->loops[0].reductions, s->loss));
  expect_same_values(s);
}
END_TEST

/* No vector at all: no loop. */
START_TEST(scalar_loss_no_loop) {
  compile_text("param a = 1\nparam b = 2\nloss = (a - 3)^2 + a * b\n");
  Schedule *s = plan(sgd);
  ck_assert_int_eq(s->nloops, 0);
  ck_assert_int_eq(s->nstages, 0);
  ck_assert_int_gt(s->prelude[0].n, 0);
  ck_assert(in_list(&s->prelude[0], s->loss));
}
END_TEST

/* A vector param's gradient is a vector stored by a loop into its own
 * BUF_GRAD buffer. */
START_TEST(vector_grad_store) {
  compile_text("param w = zeros(8)\n"
               "param b = 0.5\n"
               "x = linspace(0, 1, 8)\n"
               "y = 2 * x\n"
               "loss = sum((w * x + b - y)^2)\n");
  Schedule *s = plan(sgd);
  int w = param_index("w"), b = param_index("b");
  ck_assert_int_eq(s->grads[w]->shape.rank, 1);
  int slot = s->grad_buf[w];
  ck_assert_int_ge(slot, 0);
  ck_assert_int_lt(slot, s->nbufs);
  ck_assert_int_eq(s->bufs[slot].kind, BUF_GRAD);
  ck_assert_int_eq(s->bufs[slot].index, w);
  ck_assert_int_eq(s->bufs[slot].numel, 8);
  ck_assert_int_eq(s->grad_buf[b], -1);          /* a scalar's gradient lives in a register */
  int found = 0;
  for (int l = 0; l < s->nloops; l++)
    for (int k = 0; k < s->loops[l].stores.n; k++) {
      ck_assert_ptr_eq(s->loops[l].stores.items[k], s->grads[w]);
      ck_assert_int_eq(s->loops[l].store_slots[k], slot);
      ck_assert(shape_eq(s->loops[l].shape, shape_vector(8)));
      found++;
    }
  ck_assert_int_eq(found, 1);
  ck_assert_int_eq(count_bufs(s, BUF_GRAD), 1);
  expect_same_values(s);
  ck_assert_int_eq(s->nloops, 1);                /* stored by the loop that sums */
}
END_TEST

/* A vector gradient that needs a param-dependent mean is stored by a loop
 * of the next stage; the mean's adjoint, -2 sum(w x - mean), splits into
 * sums the first loop already has, so the backward pass needs no loop more
 * than the forward one: two loops. */
START_TEST(vector_grad_store_later_stage) {
  compile_text("param w = linspace(-0.5, 0.5, 6)\n"
               "x = linspace(0, 1, 6)\n"
               "loss = sum((w * x - mean(w * x))^2)\n");
  Schedule *s = plan(sgd);
  int stored_at = -1;
  for (int l = 0; l < s->nloops; l++)
    if (s->loops[l].stores.n) {
      ck_assert_int_eq(stored_at, -1);
      stored_at = s->loops[l].stage;
      ck_assert_ptr_eq(s->loops[l].stores.items[0], s->grads[0]);
    }
  ck_assert_int_eq(stored_at, 1);
  ck_assert_int_eq(s->nloops, 2);
  expect_same_values(s);
}
END_TEST

START_TEST(two_lengths_two_loops) {
  compile_text("x = linspace(0, 1, 10)\n"
               "u = linspace(0, 1, 20)\n"
               "param a = 1\n"
               "loss = sum((a * x - 1)^2) + mean((a * u)^2)\n");
  Schedule *s = plan(sgd);
  ck_assert_int_eq(s->nstages, 1);
  ck_assert_int_eq(s->nloops, 2);
  ck_assert_int_eq(s->loops[0].stage, 0);
  ck_assert_int_eq(s->loops[1].stage, 0);
  int64_t n0 = s->loops[0].shape.dim[0], n1 = s->loops[1].shape.dim[0];
  ck_assert((n0 == 10 && n1 == 20) || (n0 == 20 && n1 == 10));
  for (int l = 0; l < 2; l++)
    for (int r = 0; r < s->loops[l].reductions.n; r++)
      ck_assert(shape_eq(s->loops[l].reductions.items[r]->args[0]->shape, s->loops[l].shape));
}
END_TEST

/* Loops come out sorted by stage. */
START_TEST(loops_sorted_by_stage) {
  compile_text("x = linspace(0, 1, 10)\n"
               "u = linspace(0, 1, 20)\n"
               "param a = 1\n"
               "loss = sum((a * u - mean(tanh(a * x)))^2) + sum(a * x)\n");
  Schedule *s = plan(sgd);
  ck_assert_int_ge(s->nloops, 2);
  for (int l = 1; l < s->nloops; l++)
    ck_assert_int_le(s->loops[l - 1].stage, s->loops[l].stage);
  ck_assert_int_ge(s->loops[s->nloops - 1].stage, 1);
  ck_assert_int_eq(s->loops[0].stage, 0);
  expect_same_values(s);
}
END_TEST

/* ---- lowering */

/* sin(x) and exp(x) / 3 inside the loss depend on no param: computed once
 * into data, not in every step. sin(a * x) stays. */
START_TEST(precompute_param_free) {
  compile_text("x = linspace(0.1, 1, 16)\n"
               "param a = 1\n"
               "loss = sum((a * sin(x) - exp(x) / 3)^2) + sum(cos(a * x))\n");
  int ndata = fx.prog->ndata;
  Schedule *s = plan(sgd);
  ck_assert_int_eq(count_step_op(s, OP_SIN), 1);         /* d cos(a x) / da = -sin(a x) x */
  ck_assert_int_eq(count_step_op(s, OP_EXP), 0);
  ck_assert_int_ge(count_step_op(s, OP_COS), 1);
  NodeList all = step_nodes(s);
  for (int k = 0; k < all.n; k++) {
    Node *n = all.items[k];
    if (n->op == OP_SIN)
      ck_assert_msg(n->flags & NODE_HAS_PARAM, "a param-free sin is left: %s", formula(n));
    if (n->op == OP_DIV)
      ck_assert_msg(n->flags & NODE_HAS_PARAM, "a param-free division is left: %s", formula(n));
  }
  nodelist_free(&all);
  ck_assert_int_gt(fx.prog->ndata, ndata);
  expect_same_values(s);
  /* And against values computed here. */
  double want = 0;
  for (int i = 0; i < 16; i++) {
    double xv = 0.1 + 0.06 * i;
    want += pow(sin(xv) - exp(xv) / 3, 2) + cos(xv);
  }
  ck_assert(close_to(eval_scalar(s->loss, NULL, NULL, 0), want, 1e-12));
}
END_TEST

/* mean(x) of data depends on no param: it is a constant of the step, not
 * a pass over x in every step. One loop is enough. */
START_TEST(precompute_param_free_reduction) {
  compile_text("x = linspace(0, 1, 50)\n"
               "param a = 1.5\n"
               "loss = sum((a * x - mean(x))^2)\n");
  Schedule *s = plan(sgd);
  ck_assert_msg(s->nstages == 1 && s->nloops == 1, "%d stages, %d loops; expected 1 and 1",
                s->nstages, s->nloops);
  ck_assert(close_to(eval_scalar(s->loss, NULL, NULL, 0),
                     eval_scalar(fx.prog->loss, NULL, NULL, 0), 1e-12));
}
END_TEST

/* ---- buffers */

static void check_buffers(const Optimizer *opt, int nstate) {
  compile_text("param a = 0.5\n"
               "param w = linspace(0, 1, 5)\n"
               "x = linspace(-1, 1, 5)\n"
               "unused = linspace(0, 1, 3)\n"
               "loss = sum((w * x + a)^2)\n");
  Schedule *s = plan(*opt);
  int np = fx.prog->nparams;
  ck_assert_int_eq(np, 2);
  /* Params first, in order. */
  for (int i = 0; i < np; i++) {
    ck_assert_int_eq(s->param_buf[i], i);
    ck_assert_int_eq(s->bufs[i].kind, BUF_PARAM);
    ck_assert_int_eq(s->bufs[i].index, i);
    ck_assert_int_eq(s->bufs[i].numel, shape_numel(fx.prog->params[i].node->shape));
  }
  /* Optimizer state: nstate buffers per param, of its size. */
  ck_assert_int_eq(count_bufs(s, BUF_STATE), np * nstate);
  for (int i = 0; i < np; i++)
    for (int k = 0; k < 2; k++) {
      int b = s->state_buf[2 * i + k];
      if (k >= nstate) {
        ck_assert_int_eq(b, -1);
        continue;
      }
      ck_assert_int_ge(b, 0);
      ck_assert_int_lt(b, s->nbufs);
      ck_assert_int_eq(s->bufs[b].kind, BUF_STATE);
      ck_assert_int_eq(s->bufs[b].index, i);
      ck_assert_int_eq(s->bufs[b].numel, shape_numel(fx.prog->params[i].node->shape));
    }
  /* The data the step reads has a buffer; the data it does not, none. */
  for (int d = 0; d < fx.prog->ndata; d++) {
    int b = s->data_buf[d];
    const char *name = fx.prog->data[d].name;
    if (name && strcmp(name, "unused") == 0) {
      ck_assert_int_eq(b, -1);
      continue;
    }
    if (b < 0)
      continue;
    ck_assert_int_eq(s->bufs[b].kind, BUF_DATA);
    ck_assert_int_eq(s->bufs[b].index, d);
    ck_assert_int_eq(s->bufs[b].numel, shape_numel(fx.prog->data[d].value.shape));
  }
  int xslot = -1;
  for (int d = 0; d < fx.prog->ndata; d++)
    if (fx.prog->data[d].name && strcmp(fx.prog->data[d].name, "x") == 0)
      xslot = d;
  ck_assert_int_ge(s->data_buf[xslot], 0);
  /* One gradient buffer (w's), and every slot is used once. */
  ck_assert_int_eq(count_bufs(s, BUF_GRAD), 1);
  ck_assert_int_eq(s->nbufs, np + count_bufs(s, BUF_DATA) + 1 + np * nstate);
  int seen[64] = {0};
  ck_assert_int_lt(s->nbufs, 64);
  for (int i = 0; i < np; i++) {
    seen[s->param_buf[i]]++;
    if (s->grad_buf[i] >= 0)
      seen[s->grad_buf[i]]++;
    for (int k = 0; k < 2; k++)
      if (s->state_buf[2 * i + k] >= 0)
        seen[s->state_buf[2 * i + k]]++;
  }
  for (int d = 0; d < fx.prog->ndata; d++)
    if (s->data_buf[d] >= 0)
      seen[s->data_buf[d]]++;
  for (int k = 0; k < s->nbufs; k++)
    ck_assert_msg(seen[k] == 1, "buffer %d is referenced %d times", k, seen[k]);
}

START_TEST(buffers_sgd) { check_buffers(&(Optimizer){.kind = OPT_SGD, .lr = 0.1}, 0); }
END_TEST

START_TEST(buffers_sgd_momentum) {
  check_buffers(&(Optimizer){.kind = OPT_SGD, .lr = 0.1, .momentum = 0.9}, 1);
}
END_TEST

START_TEST(buffers_adam) {
  check_buffers(&(Optimizer){.kind = OPT_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999,
                             .eps = 1e-8},
                2);
}
END_TEST

START_TEST(buffers_rmsprop) {
  check_buffers(&(Optimizer){.kind = OPT_RMSPROP, .lr = 1e-2, .alpha = 0.99, .eps = 1e-8}, 1);
}
END_TEST

/* The seed's buffers: four params and the two data vectors. */
START_TEST(seed_buffers) {
  compile_text(SEED_TEXT);
  Schedule *s = plan(fx.prog->actions->opt);
  ck_assert_int_eq(s->nbufs, 6);
  ck_assert_int_eq(count_bufs(s, BUF_PARAM), 4);
  ck_assert_int_eq(count_bufs(s, BUF_DATA), 2);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(s->grad_buf[i], -1);
    ck_assert_int_eq(s->state_buf[2 * i], -1);
    ck_assert_int_eq(s->state_buf[2 * i + 1], -1);
  }
}
END_TEST

/* ---- limits */

/* Hoisted values are data: past MAX_DATA_ELEMENTS in all (the count
 * starts near it here), nothing is hoisted and each step computes the
 * param-free work itself, with the same values. */
START_TEST(hoisting_respects_the_data_limit) {
  compile_text("x = linspace(0.1, 1, 16)\n"
               "param a = 1\n"
               "loss = sum((a * sin(x) - exp(x) / 3)^2) + sum(cos(a * x))\n");
  fx.prog->data_elements = (int64_t)MAX_DATA_ELEMENTS - 10;
  int ndata = fx.prog->ndata;
  Schedule *s = plan(sgd);
  ck_assert_int_eq(fx.prog->ndata, ndata);
  ck_assert_int_ge(count_step_op(s, OP_EXP), 1);
  expect_same_values(s);
}
END_TEST

/* Gradients that take the graph to its limit: no schedule, an error at
 * the loss. */
START_TEST(gradients_past_the_node_limit) {
  compile_text("x = linspace(0.1, 1, 16)\n"
               "param a = 1\n"
               "loss = sum(sin(sin(sin(sin(a * x)))) * cos(cos(cos(a * x))))\n");
  fx.g->max_nodes = fx.g->nnodes + 5;
  ck_assert_ptr_null(train_schedule(fx.runner, fx.prog, fx.prog->loss, &sgd));
  ck_assert_int_eq(fx.diags.nerrors, 1);
  ck_assert_msg(strstr(fx.diags.items[0].msg, "differentiating this loss makes the program's "
                                              "expressions larger than the limit of"),
                "%s", fx.diags.items[0].msg);
}
END_TEST

/* What a step holds besides params and data (here the results of five
 * products of 10^8 numbers each) is checked before anything is allocated. */
START_TEST(buffers_past_the_limit) {
  compile_text("param a = ones(10000, 1)\n"
               "param b = ones(1, 10000)\n"
               "loss = sum(a @ b) + sum(a @ (2 * b)) + sum(a @ (3 * b)) + sum(a @ (4 * b)) + "
               "sum(a @ (5 * b))\n");
  ck_assert_ptr_null(train_schedule(fx.runner, fx.prog, fx.prog->loss, &sgd));
  ck_assert_int_eq(fx.diags.nerrors, 1);
  ck_assert_msg(strstr(fx.diags.items[0].msg, "a train holds at most 400000000"), "%s",
                fx.diags.items[0].msg);
}
END_TEST

/* ---- threads: which steps read a vector param across threads' shares */

static bool shared(const char *text) {
  compile_text(text);
  return plan(sgd)->params_shared;
}

/* A loop of the param's own length reads only the elements its thread
 * updates: no meeting after the update. */
START_TEST(params_own_length_not_shared) {
  ck_assert(!shared("x = linspace(0, 1, 9000)\nparam w = zeros(9000)\nloss = sum((w - x)^2)\n"));
}
END_TEST

/* A product reads the param whole. */
START_TEST(params_in_product_shared) {
  ck_assert(shared("X = [[1, 2], [3, -1]]\nparam w = [0.5, -0.5]\nloss = sum(exp(X @ w))\n"));
}
END_TEST

/* Indexing makes slice kernels. */
START_TEST(params_sliced_shared) {
  ck_assert(shared("x = linspace(0, 1, 9000)\nparam w = zeros(2)\nloss = mean((w[0] * x + w[1] - x)^2)\n"));
}
END_TEST

/* A row broadcast down a matrix: a loop of 9000 elements reads a param
 * of 3, which thread 0 alone updates. */
START_TEST(params_broadcast_row_shared) {
  ck_assert(shared("X = ones(3000, 3)\nparam b = zeros(3)\nloss = mean((X * b - 1)^2)\n"));
}
END_TEST

/* Scalar params are each thread's own copy. */
START_TEST(scalar_params_not_shared) {
  ck_assert(!shared("x = linspace(0, 1, 9000)\nparam a = 0.5\nloss = sum((a * x - x)^2)\n"));
}
END_TEST

static Suite *schedule_suite(void) {
  Suite *s = suite_create("schedule");

  TCase *tc = tcase_create("stages");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, seed_one_loop);
  tcase_add_test(tc, seed_lowering_keeps_values);
  tcase_add_test(tc, mean_inside_two_stages);
  tcase_add_test(tc, mean_inside_nonlinear_two_stages);
  tcase_add_test(tc, scalar_loss_no_loop);
  tcase_add_test(tc, two_lengths_two_loops);
  tcase_add_test(tc, loops_sorted_by_stage);
  suite_add_tcase(s, tc);

  tc = tcase_create("stores");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, vector_grad_store);
  tcase_add_test(tc, vector_grad_store_later_stage);
  suite_add_tcase(s, tc);

  tc = tcase_create("lowering");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, precompute_param_free);
  tcase_add_test(tc, precompute_param_free_reduction);
  suite_add_tcase(s, tc);

  tc = tcase_create("buffers");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, buffers_sgd);
  tcase_add_test(tc, buffers_sgd_momentum);
  tcase_add_test(tc, buffers_adam);
  tcase_add_test(tc, buffers_rmsprop);
  tcase_add_test(tc, seed_buffers);
  suite_add_tcase(s, tc);

  tc = tcase_create("threads");
  tcase_add_checked_fixture(tc, fx_setup_f32, teardown);
  tcase_add_test(tc, params_own_length_not_shared);
  tcase_add_test(tc, params_in_product_shared);
  tcase_add_test(tc, params_sliced_shared);
  tcase_add_test(tc, params_broadcast_row_shared);
  tcase_add_test(tc, scalar_params_not_shared);
  suite_add_tcase(s, tc);

  tc = tcase_create("limits");
  tcase_add_checked_fixture(tc, fx_setup_f64, teardown);
  tcase_add_test(tc, hoisting_respects_the_data_limit);
  tcase_add_test(tc, gradients_past_the_node_limit);
  tcase_add_test(tc, buffers_past_the_limit);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(schedule_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
