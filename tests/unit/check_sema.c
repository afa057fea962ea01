/* check_sema.c — unit tests for src/sema.c.
 *
 * Every test goes through the real front end (parse_source, then
 * sema_program) on a small program and looks at what sema built: which
 * definitions were hoisted into data leaves or constants (with the right
 * values) and which stay symbolic over the params; params' initial values
 * and shapes; the call nodes of inlined fns, whose partials are checked by
 * evaluating them; gradients through params a fn body uses, against
 * central finite differences; the action list (print, show, train with its
 * optimizer and PyTorch's defaults); load_csv paths; diff(). Then errors:
 * how many diagnostics a program with several independent mistakes gets
 * (one each, no follow-on errors) and where each points.
 */
#include "unit.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers */

static Action *action(int n) {
  Action *a = fx.prog->actions;
  for (int i = 0; i < n && a; i++)
    a = a->next;
  ck_assert_msg(a != NULL, "there is no action %d", n);
  return a;
}

static int count_actions(void) {
  int n = 0;
  for (Action *a = fx.prog->actions; a; a = a->next)
    n++;
  return n;
}

/* The k-th value (not text) item of action n. */
static Node *item(int n, int k) {
  for (PrintItem *it = action(n)->items; it; it = it->next)
    if (it->node && k-- == 0)
      return it->node;
  ck_abort_msg("action %d has no value item %d", n, k);
  return NULL;
}

static int count_op(Node *root, Op op) {
  NodeList all = ir_topo(&root, 1);
  int n = 0;
  for (int k = 0; k < all.n; k++)
    n += all.items[k]->op == op;
  nodelist_free(&all);
  return n;
}

static Node *first_op(Node *root, Op op) {
  NodeList all = ir_topo(&root, 1);
  Node *r = NULL;
  for (int k = 0; k < all.n && !r; k++)
    if (all.items[k]->op == op)
      r = all.items[k];
  nodelist_free(&all);
  ck_assert_msg(r != NULL, "no %s node under %s", op_info[op].name, formula(root));
  return r;
}

static Node *param_node(const char *name) { return fx.prog->params[param_index(name)].node; }

static void expect_vector(Node *n, const double *want, int len, double rtol, const char *what) {
  Tensor t = eval_tensor(n, NULL, NULL, 0);
  ck_assert_msg(t.shape.rank == 1 && t.shape.dim[0] == len, "%s: shape is not vector[%d]", what,
                len);
  for (int i = 0; i < len; i++)
    ck_assert_msg(close_to(t.v[i], want[i], rtol), "%s[%d] = %.17g, expected %.17g", what, i,
                  t.v[i], want[i]);
  free(t.v);
}

/* Central finite difference of scalar f in element k of param i. */
static double fd_grad(Node *f, int i, int k) {
  double *v = &fx.prog->params[i].value.v[k];
  double keep = *v, h = 1e-6 * fmax(1, fabs(keep));
  *v = keep + h;
  double up = eval_scalar(f, NULL, NULL, 0);
  *v = keep - h;
  double down = eval_scalar(f, NULL, NULL, 0);
  *v = keep;
  return (up - down) / (2 * h);
}

/* line:col of diagnostic k. */
static void diag_at(int k, int *line, int *col) {
  ck_assert_msg(k < fx.diags.n, "there is no diagnostic %d", k);
  const Diag *d = &fx.diags.items[k];
  ck_assert_msg(d->span.src != NULL, "diagnostic %d ('%s') has no location", k, d->msg);
  source_line_col(d->span.src, d->span.begin, line, col);
}

static void expect_diag(int k, DiagLevel level, int line, int col, const char *fragment) {
  int l, c;
  diag_at(k, &l, &c);
  const Diag *d = &fx.diags.items[k];
  ck_assert_msg(d->level == level && l == line && c == col && strstr(d->msg, fragment),
                "diagnostic %d is %d:%d level %d '%s'; expected %d:%d level %d containing '%s'", k,
                l, c, d->level, d->msg, line, col, level, fragment);
}

static char *all_messages(void) {
  static char text[4096];
  size_t n = 0;
  text[0] = '\0';
  for (int i = 0; i < fx.diags.n && n < sizeof text - 200; i++) {
    int l = 0, c = 0;
    if (fx.diags.items[i].span.src)
      source_line_col(fx.diags.items[i].span.src, fx.diags.items[i].span.begin, &l, &c);
    n += (size_t)snprintf(text + n, sizeof text - n, "  %d:%d %s\n", l, c, fx.diags.items[i].msg);
  }
  return text;
}

static void expect_errors(const char *text, int nerrors) {
  bool ok = try_compile(text);
  ck_assert_msg(!ok, "the program compiled:\n%s", text);
  ck_assert_msg(fx.diags.nerrors == nerrors, "%d errors, expected %d:\n%s", fx.diags.nerrors,
                nerrors, all_messages());
}

/* A hoisted scalar definition: evaluated now, into a constant or a scalar
 * data leaf, with the value v. */
static void expect_hoisted_scalar(Node *n, double v, const char *what) {
  ck_assert_msg(n->op == OP_CONST || (n->op == OP_DATA && n->shape.rank == 0),
                "%s is a %s node, not a constant or a data leaf", what, op_info[n->op].name);
  double got = n->op == OP_CONST ? n->num : fx.prog->data[n->slot].value.v[0];
  ck_assert_msg(got == v, "%s = %.17g, expected %.17g", what, got, v);
  ck_assert_msg(eval_scalar(n, NULL, NULL, 0) == v, "%s evaluates to %.17g", what,
                eval_scalar(n, NULL, NULL, 0));
}

/* ---- hoisting */

START_TEST(hoist_param_free_definitions) {
  compile_text("x = linspace(0, 1, 5)\n"
               "y = sin(x)\n"
               "s = sum(x)\n"
               "k = 2 * pi\n"
               "n = len(y)\n"
               "print(x, y, s, k, n)\n");
  Node *x = item(0, 0), *y = item(0, 1), *s = item(0, 2), *k = item(0, 3), *n = item(0, 4);
  ck_assert_int_eq(x->op, OP_DATA);
  ck_assert_int_eq(y->op, OP_DATA);              /* computed once, now */
  ck_assert_int_ne(x->slot, y->slot);
  ck_assert_str_eq(fx.prog->data[x->slot].name, "x");
  ck_assert_str_eq(fx.prog->data[y->slot].name, "y");
  double xs[5] = {0, 0.25, 0.5, 0.75, 1}, ys[5];
  for (int i = 0; i < 5; i++)
    ys[i] = sin(xs[i]);
  ck_assert(fx.prog->data[y->slot].value.shape.rank == 1);
  for (int i = 0; i < 5; i++) {
    ck_assert_double_eq(fx.prog->data[x->slot].value.v[i], xs[i]);
    ck_assert_msg(close_to(fx.prog->data[y->slot].value.v[i], ys[i], 1e-15), "y[%d]", i);
  }
  /* A scalar: a constant, or a scalar data leaf of its own. */
  expect_hoisted_scalar(s, 2.5, "s");
  expect_hoisted_scalar(k, 2 * M_PI, "k");
  expect_hoisted_scalar(n, 5, "n");
  for (int i = 0; i < 5; i++)
    ck_assert_msg(!(item(0, i)->flags & (NODE_HAS_PARAM | NODE_HAS_VAR)), "item %d has flags", i);
}
END_TEST

/* A definition over a param is an equation: it stays a formula and uses
 * the param's current value wherever it is evaluated. */
START_TEST(param_dependent_stays_symbolic) {
  compile_text("param a = 2.0\n"
               "x = linspace(0, 1, 5)\n"
               "z = a * x\n"
               "w = sum(z) + a\n"
               "print(z, w)\n");
  Node *z = item(0, 0), *w = item(0, 1);
  ck_assert_int_eq(z->op, OP_MUL);
  ck_assert(z->flags & NODE_HAS_PARAM);
  ck_assert(!(z->flags & NODE_HAS_VAR));
  ck_assert(w->flags & NODE_HAS_PARAM);
  ck_assert_int_eq(w->shape.rank, 0);
  ck_assert_int_eq(count_op(w, OP_PARAM), 1);
  double want[5] = {0, 0.5, 1, 1.5, 2};
  expect_vector(z, want, 5, 0, "z");
  ck_assert_double_eq(eval_scalar(w, NULL, NULL, 0), 7);
  fx.prog->params[0].value.v[0] = -1;
  double want2[5] = {0, -0.25, -0.5, -0.75, -1};
  expect_vector(z, want2, 5, 0, "z after a = -1");
  ck_assert_double_eq(eval_scalar(w, NULL, NULL, 0), -3.5);
}
END_TEST

/* A hoisted definition that renames data: the same values, as data; the
 * first name stays the original's (the alias is the same leaf, or a leaf
 * of its own named after it). */
START_TEST(hoist_alias) {
  compile_text("x = linspace(0, 1, 3)\n"
               "u = x\n"
               "print(x, u)\n");
  Node *x = item(0, 0), *u = item(0, 1);
  ck_assert_int_eq(x->op, OP_DATA);
  ck_assert_int_eq(u->op, OP_DATA);
  ck_assert_str_eq(fx.prog->data[x->slot].name, "x");
  if (u != x)
    ck_assert_str_eq(fx.prog->data[u->slot].name, "u");
  double want[3] = {0, 0.5, 1};
  expect_vector(u, want, 3, 0, "u");
}
END_TEST

/* f32: hoisted values are floats. */
START_TEST(hoist_rounds_in_f32) {
  compile_text("x = linspace(0, 1, 7)\n"
               "y = exp(x) / 3\n"
               "k = 1 / 3\n"
               "print(y, k)\n");
  Node *y = item(0, 0), *k = item(0, 1);
  ck_assert_int_eq(y->op, OP_DATA);
  const Tensor *t = &fx.prog->data[y->slot].value;
  for (int i = 0; i < 7; i++) {
    double v = t->v[i];
    ck_assert_msg(v == (double)(float)v, "y[%d] = %.17g is not a float", i, v);
    ck_assert_msg(fabs(v - exp(i / 6.0) / 3) < 1e-6, "y[%d] = %.9g", i, v);
  }
  expect_hoisted_scalar(k, (double)(1.0f / 3.0f), "k");
}
END_TEST

/* ---- params */

START_TEST(param_values_and_shapes) {
  compile_text("param a = 0.5\n"
               "param w = zeros(3)\n"
               "param r = randn(4, seed = 7)\n"
               "param k = 2 * pi\n"
               "param m = fill(2, 1.5)\n"
               "param b = a * 4\n");
  ck_assert_int_eq(fx.prog->nparams, 6);
  static const char *names[] = {"a", "w", "r", "k", "m", "b"};
  static const int64_t lens[] = {0, 3, 4, 0, 2, 0};
  for (int i = 0; i < 6; i++) {
    ParamInfo *p = &fx.prog->params[i];
    ck_assert_str_eq(p->name, names[i]);
    ck_assert_int_eq(p->node->op, OP_PARAM);
    ck_assert_int_eq(p->node->slot, i);
    ck_assert(p->node->flags & NODE_HAS_PARAM);
    ck_assert_int_eq(p->node->shape.rank, lens[i] ? 1 : 0);
    ck_assert_int_eq(p->value.shape.rank, lens[i] ? 1 : 0);
    if (lens[i])
      ck_assert_int_eq(p->node->shape.dim[0], lens[i]);
  }
  ck_assert_double_eq(fx.prog->params[0].value.v[0], 0.5);
  for (int i = 0; i < 3; i++)
    ck_assert_double_eq(fx.prog->params[1].value.v[i], 0);
  double r[4];
  dlrt_randn(r, 4, 7, 1);
  for (int i = 0; i < 4; i++)
    ck_assert_double_eq(fx.prog->params[2].value.v[i], r[i]);
  ck_assert_double_eq(fx.prog->params[3].value.v[0], 2 * M_PI);
  ck_assert_double_eq(fx.prog->params[4].value.v[0], 1.5);
  ck_assert_double_eq(fx.prog->params[4].value.v[1], 1.5);
  /* An initial value over another param takes its value now; b is a param
   * of its own, not a formula over a. */
  ck_assert_double_eq(fx.prog->params[5].value.v[0], 2);
  ck_assert_int_eq(count_op(fx.prog->params[5].node, OP_PARAM), 1);
  /* The param's span is its name. */
  int line, col;
  source_line_col(fx.prog->params[2].span.src, fx.prog->params[2].span.begin, &line, &col);
  ck_assert_int_eq(line, 3);
  ck_assert_int_eq(col, 7);
}
END_TEST

START_TEST(param_values_f32) {
  compile_text("param a = 0.1\n"
               "param v = linspace(0, 1, 3) / 3\n");
  ck_assert_double_eq(fx.prog->params[0].value.v[0], (double)0.1f);
  for (int i = 0; i < 3; i++) {
    double v = fx.prog->params[1].value.v[i];
    ck_assert_msg(v == (double)(float)v, "v[%d] = %.17g is not a float", i, v);
  }
  ck_assert_double_eq(fx.prog->params[1].value.v[1], (double)(0.5f / 3.0f));
}
END_TEST

/* ---- fn calls */

/* The call node: actuals, the inlined body, then one partial per actual —
 * the hand-written deriv with the actuals (and `value`) substituted, or the
 * body's derivative where there is no deriv. */
START_TEST(fncall_partials) {
  compile_text("fn f(x, y) = x * y^2\n"
               "  deriv x = y^2 + 100\n"      /* deliberately not the body's derivative */
               "fn g(x, y) = x * y^2\n"
               "  deriv y = 10 * value\n"
               "param a = 1.5\n"
               "param b = 2.0\n"
               "print(f(a + 1, 3 * b))\n"
               "print(g(a + 1, 3 * b))\n");
  Node *call = item(0, 0);
  ck_assert_int_eq(call->op, OP_FNCALL);
  ck_assert_str_eq(call->fn->name, "f");
  ck_assert_int_eq(ir_fncall_arity(call), 2);
  ck_assert_int_eq(call->nargs, 5);
  /* x = a + 1 = 2.5, y = 3b = 6 */
  ck_assert_double_eq(eval_scalar(call->args[0], NULL, NULL, 0), 2.5);
  ck_assert_double_eq(eval_scalar(call->args[1], NULL, NULL, 0), 6);
  ck_assert_double_eq(eval_scalar(ir_fncall_body(call), NULL, NULL, 0), 90);
  ck_assert_double_eq(eval_scalar(call, NULL, NULL, 0), 90);
  ck_assert_double_eq(eval_scalar(call->args[3], NULL, NULL, 0), 136);   /* deriv x: y^2 + 100 */
  ck_assert_double_eq(eval_scalar(call->args[4], NULL, NULL, 0), 30);    /* from the body: 2xy */
  ck_assert(call->args[3]->flags & NODE_HAS_PARAM);
  ck_assert(!(call->args[3]->flags & NODE_HAS_VAR));

  Node *g = item(1, 0);
  ck_assert_int_eq(g->op, OP_FNCALL);
  ck_assert_str_eq(g->fn->name, "g");
  ck_assert_double_eq(eval_scalar(g->args[3], NULL, NULL, 0), 36);      /* from the body: y^2 */
  ck_assert_double_eq(eval_scalar(g->args[4], NULL, NULL, 0), 900);     /* 10 * value */
  /* The partials follow the params' current values. */
  fx.prog->params[param_index("b")].value.v[0] = 1;
  ck_assert_double_eq(eval_scalar(call->args[3], NULL, NULL, 0), 109);
  ck_assert_double_eq(eval_scalar(g->args[4], NULL, NULL, 0), 225);
  /* And diff uses them: d f(a + 1, 3b) / da is deriv x = y^2 + 100. */
  ck_assert_double_eq(eval_scalar(diff_node(fx.g, call, param_node("a")), NULL, NULL, 0), 109);
}
END_TEST

/* A vector argument: the partials are elementwise. */
START_TEST(fncall_vector_partials) {
  compile_text("fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
               "  deriv x = 1.5 * (5 * x^2 - 1)\n"
               "fn Q(x) = 0.5 * (5 * x^3 - 3 * x)\n"
               "t = linspace(-1, 1, 5)\n"
               "param d = 0.5\n"
               "print(P3(d * t), Q(d * t))\n");
  Node *p = item(0, 0), *q = item(0, 1);
  ck_assert_int_eq(p->op, OP_FNCALL);
  ck_assert_int_eq(q->op, OP_FNCALL);
  ck_assert_int_eq(p->shape.rank, 1);
  double want[5];
  for (int i = 0; i < 5; i++) {
    double u = 0.5 * (-1 + 0.5 * i);
    want[i] = 1.5 * (5 * u * u - 1);
  }
  expect_vector(p->args[2], want, 5, 1e-15, "P3's deriv x");
  expect_vector(q->args[2], want, 5, 1e-14, "Q's partial from the body");
}
END_TEST

/* A param named in a fn body becomes one more argument of each call, with
 * the body's derivative as its partial; the gradient through it is right. */
START_TEST(fncall_param_in_body) {
  compile_text("param k = 2.0\n"
               "fn f(x) = k * x^2 + sin(k * x)\n"
               "x = linspace(-1, 1, 10)\n"
               "param a = 0.5\n"
               "print(sum(f(a * x)))\n");
  Node *loss = item(0, 0);
  Node *call = first_op(loss, OP_FNCALL);
  ck_assert_int_eq(ir_fncall_arity(call), 2);    /* x, then k */
  ck_assert_ptr_eq(call->args[1], param_node("k"));
  for (int i = 0; i < 2; i++) {
    double g = eval_scalar(diff_node(fx.g, loss, fx.prog->params[i].node), NULL, NULL, 0);
    double fd = fd_grad(loss, i, 0);
    ck_assert_msg(close_to(g, fd, 1e-7), "d/d%s: %.12g, finite differences %.12g",
                  fx.prog->params[i].name, g, fd);
  }
}
END_TEST

/* A vector param inside a fn body, and a scalar param beside it. */
START_TEST(fncall_vector_param_in_body) {
  compile_text("param w = linspace(0.5, 1.5, 4)\n"
               "param c = 0.3\n"
               "fn f(x) = tanh(w * x + c)\n"
               "x = linspace(-1, 2, 4)\n"
               "param a = 1.2\n"
               "print(sum(f(a * x)^2))\n");
  Node *loss = item(0, 0);
  for (int i = 0; i < fx.prog->nparams; i++) {
    Node *g = simplify_node(fx.g, diff_node(fx.g, loss, fx.prog->params[i].node));
    Tensor t = eval_tensor(g, NULL, NULL, 0);
    for (int k = 0; k < shape_numel(t.shape); k++) {
      double fd = fd_grad(loss, i, k);
      ck_assert_msg(close_to(t.v[k], fd, 1e-7), "d/d%s[%d]: %.12g, finite differences %.12g",
                    fx.prog->params[i].name, k, t.v[k], fd);
    }
    free(t.v);
  }
}
END_TEST

/* ---- actions */

START_TEST(action_list) {
  compile_text("param a = 1\n"
               "loss = (a - 2)^2\n"
               "print(\"a = {a}\")\n"
               "a + 1\n"
               "train(steps = 5, optimizer = sgd(lr = 0.1))\n"
               "print(a, loss)\n"
               "x = 3\n");
  ck_assert_int_eq(count_actions(), 4);
  ck_assert_int_eq(action(0)->kind, ACT_PRINT);
  ck_assert_int_eq(action(1)->kind, ACT_SHOW);
  ck_assert_int_eq(action(2)->kind, ACT_TRAIN);
  ck_assert_int_eq(action(3)->kind, ACT_PRINT);
  /* "a = {a}": the text, then the value. */
  PrintItem *it = action(0)->items;
  ck_assert_ptr_nonnull(it);
  ck_assert_str_eq(it->text, "a = ");
  ck_assert_ptr_null(it->node);
  ck_assert_ptr_nonnull(it->next);
  ck_assert_ptr_eq(it->next->node, param_node("a"));
  ck_assert_ptr_null(it->next->next);
  /* A shown expression. */
  ck_assert_double_eq(eval_scalar(item(1, 0), NULL, NULL, 0), 2);
  /* print(a, loss): the values with a space between. */
  it = action(3)->items;
  ck_assert_ptr_eq(it->node, param_node("a"));
  ck_assert_str_eq(it->next->text, " ");
  ck_assert_ptr_null(it->next->node);
  ck_assert_ptr_eq(it->next->next->node, fx.prog->loss);
  /* The train action. */
  Action *t = action(2);
  ck_assert_ptr_eq(t->loss, fx.prog->loss);
  ck_assert_int_eq(t->steps, 5);
  ck_assert_int_eq(t->log_every, 0);
  ck_assert_int_eq(t->opt.kind, OPT_SGD);
  ck_assert_double_eq(t->opt.lr, 0.1);
  ck_assert_double_eq(t->opt.momentum, 0);
  int line, col;
  source_line_col(t->span.src, t->span.begin, &line, &col);
  ck_assert_int_eq(line, 5);
  ck_assert_int_eq(col, 1);
}
END_TEST

/* Hyper-parameters left out take PyTorch's defaults. */
START_TEST(optimizer_defaults) {
  compile_text("param a = 1\n"
               "loss = a^2\n"
               "train(steps = 1, optimizer = adam())\n"
               "train(steps = 2, optimizer = rmsprop())\n"
               "train(steps = 3, optimizer = sgd(lr = 0.5))\n"
               "train(steps = 0, optimizer = adam(lr = 0.01))\n");
  ck_assert_int_eq(count_actions(), 4);
  Optimizer o = action(0)->opt;
  ck_assert_int_eq(o.kind, OPT_ADAM);
  ck_assert_double_eq(o.lr, 1e-3);
  ck_assert_double_eq(o.beta1, 0.9);
  ck_assert_double_eq(o.beta2, 0.999);
  ck_assert_double_eq(o.eps, 1e-8);
  o = action(1)->opt;
  ck_assert_int_eq(o.kind, OPT_RMSPROP);
  ck_assert_double_eq(o.lr, 1e-2);
  ck_assert_double_eq(o.alpha, 0.99);
  ck_assert_double_eq(o.eps, 1e-8);
  o = action(2)->opt;
  ck_assert_int_eq(o.kind, OPT_SGD);
  ck_assert_double_eq(o.lr, 0.5);
  ck_assert_double_eq(o.momentum, 0);
  o = action(3)->opt;
  ck_assert_double_eq(o.lr, 0.01);
  ck_assert_double_eq(o.beta1, 0.9);
  ck_assert_int_eq(action(3)->steps, 0);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(action(i)->steps, i < 3 ? i + 1 : 0);
}
END_TEST

/* Arguments bind by position or by name, in any order. */
START_TEST(argument_binding) {
  compile_text("param a = 1\n"
               "loss = a^2\n"
               "train(7, sgd(0.2, 0.9), 3)\n"
               "train(log_every = 2, optimizer = adam(eps = 1e-6, beta2 = 0.95, lr = 0.01, "
               "beta1 = 0.8), steps = 4)\n"
               "train(9, optimizer = rmsprop(0.05, eps = 0.001, alpha = 0.5))\n"
               "x = linspace(n = 3, stop = 2, start = 0)\n"
               "print(x, fill(value = 4, n = 2), max(b = 1, a = 3) - min(2, b = 5))\n");
  Action *t = action(0);
  ck_assert_int_eq(t->steps, 7);
  ck_assert_int_eq(t->log_every, 3);
  ck_assert_int_eq(t->opt.kind, OPT_SGD);
  ck_assert_double_eq(t->opt.lr, 0.2);
  ck_assert_double_eq(t->opt.momentum, 0.9);
  t = action(1);
  ck_assert_int_eq(t->steps, 4);
  ck_assert_int_eq(t->log_every, 2);
  ck_assert_int_eq(t->opt.kind, OPT_ADAM);
  ck_assert_double_eq(t->opt.lr, 0.01);
  ck_assert_double_eq(t->opt.beta1, 0.8);
  ck_assert_double_eq(t->opt.beta2, 0.95);
  ck_assert_double_eq(t->opt.eps, 1e-6);
  t = action(2);
  ck_assert_int_eq(t->steps, 9);
  ck_assert_int_eq(t->log_every, 0);
  ck_assert_int_eq(t->opt.kind, OPT_RMSPROP);
  ck_assert_double_eq(t->opt.lr, 0.05);
  ck_assert_double_eq(t->opt.alpha, 0.5);
  ck_assert_double_eq(t->opt.eps, 0.001);
  double xs[3] = {0, 1, 2}, fs[2] = {4, 4};
  expect_vector(item(3, 0), xs, 3, 0, "linspace by name");
  expect_vector(item(3, 1), fs, 2, 0, "fill by name");
  ck_assert_double_eq(eval_scalar(item(3, 2), NULL, NULL, 0), 1);
}
END_TEST

/* Named arguments of a user fn. */
START_TEST(fn_named_arguments) {
  compile_text("fn f(x, y) = x - 10 * y\n"
               "print(f(1, 2), f(y = 1, x = 2), f(3, y = 4))\n");
  ck_assert_double_eq(eval_scalar(item(0, 0), NULL, NULL, 0), -19);
  ck_assert_double_eq(eval_scalar(item(0, 1), NULL, NULL, 0), -8);
  ck_assert_double_eq(eval_scalar(item(0, 2), NULL, NULL, 0), -37);
}
END_TEST

/* ---- load_csv */

static char tmpdir[64];

static void write_file(const char *dir, const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void csv_setup(void) {
  fx_setup_f64();
  strcpy(tmpdir, "/tmp/dlc_sema_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  char sub[128];
  snprintf(sub, sizeof sub, "%s/data", tmpdir);
  mkdir(sub, 0700);
  write_file(tmpdir, "pts.csv", "x,y\n1,2\n3,4.5\n-1,0.25\n");
  write_file(sub, "more.csv", "7,8\n9,10\n");
}

static void csv_teardown(void) {
  char path[256];
  snprintf(path, sizeof path, "%s/pts.csv", tmpdir);
  unlink(path);
  snprintf(path, sizeof path, "%s/data/more.csv", tmpdir);
  unlink(path);
  snprintf(path, sizeof path, "%s/data", tmpdir);
  rmdir(path);
  rmdir(tmpdir);
  fx_teardown();
}

/* Paths are relative to the directory of the .dl file, not the working
 * directory. */
START_TEST(load_csv_relative_to_source) {
  char name[128];
  snprintf(name, sizeof name, "%s/model.dl", tmpdir);
  compile_named(name, "x = load_csv(\"pts.csv\", column = \"x\")\n"
                      "y = load_csv(\"pts.csv\", column = 1)\n"
                      "z = load_csv(\"data/more.csv\", column = 1)\n"
                      "print(x, y, z)\n");
  double xs[3] = {1, 3, -1}, ys[3] = {2, 4.5, 0.25}, zs[2] = {8, 10};
  expect_vector(item(0, 0), xs, 3, 0, "x");
  expect_vector(item(0, 1), ys, 3, 0, "y");
  expect_vector(item(0, 2), zs, 2, 0, "z");
  ck_assert_int_eq(item(0, 0)->op, OP_DATA);
  ck_assert_str_eq(fx.prog->data[item(0, 0)->slot].name, "x");
}
END_TEST

/* From a source named without a directory, the path is the working
 * directory's; the file is not there, so it is an error at the path. */
START_TEST(load_csv_missing_file) {
  ck_assert(!try_compile("x = load_csv(\"pts_missing_dlc.csv\", column = 0)\n"));
  ck_assert_int_eq(fx.diags.nerrors, 1);
  expect_diag(0, DIAG_ERROR, 1, 14, "pts_missing_dlc.csv");
}
END_TEST

START_TEST(load_csv_missing_column) {
  char name[128];
  snprintf(name, sizeof name, "%s/model.dl", tmpdir);
  ck_assert(!try_compile_named(name, "x = load_csv(\"pts.csv\", column = \"z\")\n"
                                     "w = load_csv(\"pts.csv\", column = 2)\n"));
  ck_assert_int_eq(fx.diags.nerrors, 2);
  expect_diag(0, DIAG_ERROR, 1, 34, "no column 'z'");
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "'x', 'y'"));
  expect_diag(1, DIAG_ERROR, 2, 34, "out of range");
}
END_TEST

/* ---- diff */

START_TEST(diff_free_symbol) {
  compile_text("fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
               "  deriv x = 1.5 * (5 * x^2 - 1)\n"
               "param a = 2\n"
               "print(diff(P3(t), t))\n"
               "print(diff(a * t^2, t))\n");
  Node *d = item(0, 0), *e = item(1, 0);
  ck_assert(d->flags & NODE_HAS_VAR);
  ck_assert(!(d->flags & NODE_HAS_PARAM));
  ck_assert((e->flags & (NODE_HAS_VAR | NODE_HAS_PARAM)) == (NODE_HAS_VAR | NODE_HAS_PARAM));
  Node *t = scalar_var("t", 0);
  for (double tv = -1.5; tv <= 1.5; tv += 0.25) {
    ck_assert_msg(close_to(eval_scalar(d, &t, &tv, 1), 1.5 * (5 * tv * tv - 1), 1e-14),
                  "diff(P3(t), t) at %g", tv);
    ck_assert_msg(close_to(eval_scalar(e, &t, &tv, 1), 4 * tv, 1e-14), "diff(a t^2, t) at %g", tv);
  }
  /* Without a value for t it is an error, not a number. */
  Tensor out;
  char *err = NULL;
  ck_assert(!eval_node(fx.prog, d, NULL, NULL, 0, &out, &err));
  ck_assert_ptr_nonnull(err);
  free(err);
}
END_TEST

/* With defined names it is a value: through a param, and through a hoisted
 * definition's symbolic form (elementwise). */
START_TEST(diff_defined_names) {
  compile_text("param a = 3\n"
               "x = linspace(0.5, 2, 4)\n"
               "y = x^3 + sin(x)\n"
               "print(diff(a^2, a), diff(y, x), diff(a * x, a))\n");
  Node *da = item(0, 0), *dy = item(0, 1), *dx = item(0, 2);
  ck_assert(!(da->flags & NODE_HAS_VAR));
  ck_assert_double_eq(eval_scalar(da, NULL, NULL, 0), 6);
  ck_assert(!(dy->flags & NODE_HAS_VAR));
  double want[4], xs[4] = {0.5, 1, 1.5, 2};
  for (int i = 0; i < 4; i++)
    want[i] = 3 * xs[i] * xs[i] + cos(xs[i]);
  expect_vector(dy, want, 4, 1e-14, "diff(y, x)");
  expect_vector(dx, xs, 4, 0, "diff(a * x, a)");
}
END_TEST

/* ---- errors */

/* Several independent errors: one message each, where each is, and
 * nothing for the uses of what failed. */
START_TEST(independent_errors) {
  const char *text = "x = linspace(0, 1, 10)\n"                         /* 1 */
                     "y = foo + 1\n"                                     /* 2 */
                     "z = y * 2\n"                                       /* 3: y failed: quiet */
                     "v = x + zeros(3)\n"                                /* 4 */
                     "param a = 1\n"                                     /* 5 */
                     "loss = sum(a * x) + bar\n"                         /* 6 */
                     "train(steps = 3, optimizer = sgd(lr = 0.1))\n"     /* 7: loss failed: quiet */
                     "print(z, v, loss)\n"                               /* 8: quiet */
                     "fn f(u) = u + q\n"                                 /* 9 */
                     "w = f(1) + sin(1, 2)\n"                            /* 10 */
                     "train(steps = 2, optimizer = adamm())\n";          /* 11 */
  expect_errors(text, 6);
  expect_diag(0, DIAG_ERROR, 2, 5, "undefined name 'foo'");
  expect_diag(1, DIAG_ERROR, 4, 5, "lengths differ");
  ck_assert_ptr_nonnull(strstr(fx.diags.items[1].msg, "vector[10]"));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[1].msg, "vector[3]"));
  expect_diag(2, DIAG_ERROR, 6, 21, "undefined name 'bar'");
  expect_diag(3, DIAG_ERROR, 9, 15, "undefined name 'q'");
  expect_diag(4, DIAG_ERROR, 10, 19, "sin takes 1 argument");
  expect_diag(5, DIAG_ERROR, 11, 30, "unknown optimizer 'adamm'; did you mean 'adam'?");
  ck_assert_int_eq(count_actions(), 0);
}
END_TEST

START_TEST(train_before_loss) {
  expect_errors("param a = 1\n"
                "train(steps = 3, optimizer = sgd(lr = 0.1))\n"
                "print(loss)\n"
                "loss = a^2\n",
                2);
  expect_diag(0, DIAG_ERROR, 2, 1, "train before loss");
  expect_diag(1, DIAG_ERROR, 3, 7, "'loss' is used before");
}
END_TEST

/* A loss that failed: no "train before loss", no "'loss' is used before". */
START_TEST(failed_loss_is_quiet) {
  expect_errors("param a = 1\n"
                "x = linspace(0, 1, 4)\n"
                "loss = a * x\n"
                "train(steps = 3, optimizer = sgd(lr = 0.1))\n"
                "print(loss)\n"
                "q = loss + 1\n",
                1);
  expect_diag(0, DIAG_ERROR, 3, 8, "the loss must be a scalar");
}
END_TEST

START_TEST(defined_twice_with_note) {
  expect_errors("param a = 1\n"
                "b = 2\n"
                "param a = 3\n"
                "fn b(x) = x\n"
                "print(a + b)\n",
                2);
  ck_assert_int_eq(fx.diags.n, 4);
  expect_diag(0, DIAG_ERROR, 3, 7, "'a' is already defined");
  expect_diag(1, DIAG_NOTE, 1, 7, "'a' was defined here");
  expect_diag(2, DIAG_ERROR, 4, 4, "'b' is already defined");
  expect_diag(3, DIAG_NOTE, 2, 1, "'b' was defined here");
}
END_TEST

/* A fn whose body failed: its calls give no second error. */
START_TEST(failed_fn_is_quiet) {
  expect_errors("fn f(x) = x + undefined_q\n"
                "fn g(x) = g(x)\n"
                "param a = 1\n"
                "loss = f(a) + g(a)\n"
                "train(steps = 1, optimizer = sgd(lr = 1))\n",
                2);
  expect_diag(0, DIAG_ERROR, 1, 15, "undefined name 'undefined_q'");
  expect_diag(1, DIAG_ERROR, 2, 11, "calls itself");
}
END_TEST

/* Errors in calls, options, constants and derivs, one per statement. */
START_TEST(assorted_errors) {
  expect_errors("param a = 1\n"                                          /* 1 */
                "x = linspace(0, a, 10)\n"                               /* 2 */
                "fn h(u) = u^2\n"                                        /* 3 */
                "  deriv v = 2 * v\n"                                    /* 4 */
                "loss = sum((a * ones(4) - 1)^2)\n"                      /* 5 */
                "train(steps = 2, optimizer = sgd(lr = 0.1), log_evry = 5)\n"   /* 6 */
                "train(steps = 2, optimizer = sgd(lr = -1))\n"          /* 7 */
                "train(steps = 2.5, optimizer = sgd(lr = 1))\n"         /* 8 */
                "print(sinn(a))\n",                                      /* 9 */
                6);
  expect_diag(0, DIAG_ERROR, 2, 17, "must be a constant");
  expect_diag(1, DIAG_ERROR, 4, 9, "deriv v: h has no argument 'v'");
  expect_diag(2, DIAG_ERROR, 6, 45, "train has no argument 'log_evry'; did you mean 'log_every'?");
  expect_diag(3, DIAG_ERROR, 7, 39, "sgd's lr must be positive");
  expect_diag(4, DIAG_ERROR, 8, 15, "steps must be a whole number");
  expect_diag(5, DIAG_ERROR, 9, 7, "undefined function 'sinn'; did you mean 'sin'?");
}
END_TEST

/* A hand-written deriv must have the shape of its call: here the call is a
 * vector[4] (x is) and the deriv a vector[3]. Accepting it lets the
 * compiled loop read the deriv's 3-element buffer at 4 indices. */
START_TEST(deriv_shape_mismatch) {
  expect_errors("fn f(x) = x^2\n"
                "  deriv x = fill(3, 5)\n"
                "x = linspace(0, 1, 4)\n"
                "param a = 1\n"
                "loss = sum(f(a * x))\n",
                1);
}
END_TEST

/* Binding errors, one per statement. */
START_TEST(argument_errors) {
  expect_errors("fn f(x, y) = x * y\n"                                   /* 1 */
                "a = fill(n = 2, 3)\n"                                   /* 2 */
                "b = f(1, 2, 3)\n"                                       /* 3 */
                "c = f(x = 1, x = 2)\n"                                  /* 4 */
                "d = f(1, z = 2)\n"                                      /* 5 */
                "e = f(1)\n"                                             /* 6 */
                "g = linspace(0, 1)\n",                                  /* 7 */
                6);
  expect_diag(0, DIAG_ERROR, 2, 17, "positional argument after a named one");
  expect_diag(1, DIAG_ERROR, 3, 13, "f takes 2 arguments, but 3 were given");
  expect_diag(2, DIAG_ERROR, 4, 14, "argument 'x' of f is given twice");
  expect_diag(3, DIAG_ERROR, 5, 10, "f has no argument 'z'");
  expect_diag(4, DIAG_ERROR, 6, 5, "f needs the argument 'y'");
  expect_diag(5, DIAG_ERROR, 7, 5, "linspace needs the argument 'n'");
}
END_TEST

/* A formal named `value` and the deriv's `value` (the fn's result) are two
 * things under one name. Either the program is an error, or the formal
 * keeps its meaning: d g(a) / da = 3 a^2 = 12 at a = 2, not 3 g(a)^2. */
/* A program's data may hold MAX_DATA_ELEMENTS numbers in all: a
 * constructor, a CSV column or a hoisted definition that would go past is
 * an error, before it allocates. (The count starts near the limit here, so
 * that the test needs no gigabytes.) */
START_TEST(data_budget) {
  fx.prog->data_elements = (int64_t)MAX_DATA_ELEMENTS - 150;
  expect_errors("x = linspace(0, 1, 100)\n"
                "y = 2 * x\n"
                "z = ones(10)\n",
                1);
  expect_diag(0, DIAG_ERROR, 2, 5, "past 400000000 numbers in all");
  ck_assert_int_eq(fx.prog->data_elements, (int64_t)MAX_DATA_ELEMENTS - 40);
}
END_TEST

START_TEST(formal_named_value) {
  bool ok = try_compile("fn g(value) = value^3\n"
                        "  deriv value = 3 * value^2\n"
                        "param a = 2\n"
                        "print(diff(g(a), a))\n");
  if (!ok) {
    ck_assert_int_ge(fx.diags.nerrors, 1);
    return;
  }
  double d = eval_scalar(item(0, 0), NULL, NULL, 0);
  ck_assert_msg(d == 12, "d g(a) / da = %g at a = 2, expected 12 (or a compile error)", d);
}
END_TEST

/* ---- growth: what a program makes stays linear in what it says */

/* A chain of fns, each calling the one before twice: each call is inlined
 * (its partial derivative taken) once per fn and arguments, so the graph
 * grows with the chain, not with 4^n as it did. */
START_TEST(fn_chain_is_linear) {
  Buf b = {0};
  buf_puts(&b, "fn f0(x) = x + x\n");
  for (int i = 1; i <= 40; i++)
    buf_printf(&b, "fn f%d(x) = f%d(x) + f%d(x)\n", i, i - 1, i - 1);
  buf_puts(&b, "param a = 1\nprint(f40(a))\n");
  compile_text(b.data);
  buf_free(&b);
  ck_assert_msg(fx.g->nnodes < 10000, "40 fns make %u nodes", fx.g->nnodes);
  Node *call = item(0, 0), *a = fx.prog->params[0].node;
  ck_assert(eval_scalar(call, NULL, NULL, 0) == ldexp(1, 41));
  Node *d = simplify_node(fx.g, diff_node(fx.g, call, a));
  ck_assert(eval_scalar(d, NULL, NULL, 0) == ldexp(1, 41));
}
END_TEST

/* Hoisted definitions that each read the two before: diff through them
 * (toward a name they do not depend on) and an integer argument computed
 * from them look into each definition once (fib(60) times, before). */
START_TEST(shared_definitions_are_linear) {
  Buf b = {0};
  buf_puts(&b, "x = 0.5\ny = 2\nd0 = x + 1\nd1 = d0 * 2\n");
  for (int i = 2; i <= 60; i++)
    buf_printf(&b, "d%d = d%d * 0.5 + d%d * 0.5\n", i, i - 1, i - 2);
  buf_puts(&b, "print(diff(d60, y))\nprint(diff(d60, x))\nprint(zeros(d60 * 0 + 3))\n");
  compile_text(b.data);
  buf_free(&b);
  ck_assert(eval_scalar(item(0, 0), NULL, NULL, 0) == 0);
  double dx = eval_scalar(item(1, 0), NULL, NULL, 0);
  ck_assert_msg(dx > 1 && dx < 2, "d d60 / dx = %g", dx);          /* between d0's 1 and d1's 2 */
  ck_assert_int_eq(item(2, 0)->shape.dim[0], 3);
}
END_TEST

/* Each diff of sin(t)^t is several times the size of the last: a graph
 * that reaches its limit stops the diff that took it there, with one
 * error at that diff (the second from the outside here), and nothing
 * grows much past the limit. */
START_TEST(nested_diff_stops_at_the_limit) {
  fx.g->max_nodes = 100000;
  expect_errors("print(diff(diff(diff(diff(diff(diff(diff(diff(sin(t)^t, t), t), t), t), t), t), t), t))\n", 1);
  expect_diag(0, DIAG_ERROR, 1, 12, "this diff makes the program's expressions larger than the limit of 100000 nodes");
  ck_assert_msg(fx.g->nnodes < 110000, "the graph grew to %u nodes", fx.g->nnodes);
}
END_TEST

/* The same limit for a statement that grows the graph some other way:
 * said once, at the first statement past it. */
START_TEST(statement_past_the_limit) {
  fx.g->max_nodes = fx.g->nnodes + 8;
  expect_errors("param p = 1\n"
                "b = sin(p) + cos(p) + exp(p) + tanh(p) + sin(p * p) + cos(p * p)\n"
                "c = b + b * b\n",
                1);
  expect_diag(0, DIAG_ERROR, 2, 1, "this statement makes the program's expressions larger than the limit");
}
END_TEST

/* A formula prints as a tree: one whose tree is past MAX_FORMULA_TERMS
 * (2^20 copies of a here, from a DAG of 60 nodes) is an error at check
 * time, not gigabytes of text. */
START_TEST(formula_too_long_to_print) {
  Buf b = {0};
  buf_puts(&b, "a0 = diff(t^2, t)\n");
  for (int i = 1; i <= 20; i++)
    buf_printf(&b, "a%d = a%d + sin(a%d)\n", i, i - 1, i - 1);
  buf_puts(&b, "print(a10)\nprint(a20)\n");
  expect_errors(b.data, 1);
  buf_free(&b);
  expect_diag(0, DIAG_ERROR, 23, 7, "this formula is too long to print");
}
END_TEST

/* Every value holds at most MAX_ELEMENTS numbers, a broadcast's and a
 * product's too: an error with the shapes, before anything is computed. */
START_TEST(value_past_the_limit) {
  expect_errors("x = ones(20000, 1)\n"
                "param w = ones(1, 20000)\n"
                "loss = sum(x * w)\n"
                "m = x @ ones(1, 20000)\n",
                2);
  expect_diag(0, DIAG_ERROR, 3, 12, "'*' would make a matrix[20000, 20000] of 400000000 numbers");
  expect_diag(1, DIAG_ERROR, 4, 5, "would make a matrix[20000, 20000]");
}
END_TEST

/* A param's value counts toward the program's data, as a definition's. */
START_TEST(param_counts_as_data) {
  fx.prog->data_elements = (int64_t)MAX_DATA_ELEMENTS - 150;
  expect_errors("param a = linspace(0, 1, 100)\n", 1);
  expect_diag(0, DIAG_ERROR, 1, 11, "past 400000000 numbers in all");
}
END_TEST

/* sema_program reports failure through its result too, and a program
 * without errors has none. */
START_TEST(result_matches_errors) {
  ck_assert(try_compile("param a = 1\nloss = a^2\n"));
  ck_assert_int_eq(fx.diags.n, 0);
  ck_assert_ptr_nonnull(fx.prog->loss);
}
END_TEST

static Suite *sema_suite(void) {
  Suite *s = suite_create("sema");

  TCase *tc = tcase_create("hoisting");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, hoist_param_free_definitions);
  tcase_add_test(tc, param_dependent_stays_symbolic);
  tcase_add_test(tc, hoist_alias);
  suite_add_tcase(s, tc);

  tc = tcase_create("hoisting_f32");
  tcase_add_checked_fixture(tc, fx_setup_f32, fx_teardown);
  tcase_add_test(tc, hoist_rounds_in_f32);
  tcase_add_test(tc, param_values_f32);
  suite_add_tcase(s, tc);

  tc = tcase_create("params");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, param_values_and_shapes);
  suite_add_tcase(s, tc);

  tc = tcase_create("fn_inlining");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, fncall_partials);
  tcase_add_test(tc, fncall_vector_partials);
  tcase_add_test(tc, fncall_param_in_body);
  tcase_add_test(tc, fncall_vector_param_in_body);
  tcase_add_test(tc, fn_named_arguments);
  suite_add_tcase(s, tc);

  tc = tcase_create("actions");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, action_list);
  tcase_add_test(tc, optimizer_defaults);
  tcase_add_test(tc, argument_binding);
  suite_add_tcase(s, tc);

  tc = tcase_create("load_csv");
  tcase_add_checked_fixture(tc, csv_setup, csv_teardown);
  tcase_add_test(tc, load_csv_relative_to_source);
  tcase_add_test(tc, load_csv_missing_file);
  tcase_add_test(tc, load_csv_missing_column);
  suite_add_tcase(s, tc);

  tc = tcase_create("diff");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, diff_free_symbol);
  tcase_add_test(tc, diff_defined_names);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, independent_errors);
  tcase_add_test(tc, train_before_loss);
  tcase_add_test(tc, failed_loss_is_quiet);
  tcase_add_test(tc, defined_twice_with_note);
  tcase_add_test(tc, failed_fn_is_quiet);
  tcase_add_test(tc, assorted_errors);
  tcase_add_test(tc, argument_errors);
  tcase_add_test(tc, result_matches_errors);
  tcase_add_test(tc, deriv_shape_mismatch);
  tcase_add_test(tc, formal_named_value);
  tcase_add_test(tc, data_budget);
  suite_add_tcase(s, tc);

  tc = tcase_create("limits");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, fn_chain_is_linear);
  tcase_add_test(tc, shared_definitions_are_linear);
  tcase_add_test(tc, nested_diff_stops_at_the_limit);
  tcase_add_test(tc, statement_past_the_limit);
  tcase_add_test(tc, formula_too_long_to_print);
  tcase_add_test(tc, value_past_the_limit);
  tcase_add_test(tc, param_counts_as_data);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(sema_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
