/* check_ir.c — unit tests for src/ir.c.
 *
 * The DAG's contract: equal nodes are one node (hash-consing, down to the
 * bits of a constant), shapes follow NumPy's broadcasting, flags say what a
 * node depends on, ids give a topological order, ir_subst rebuilds only
 * what changes, and the node map behaves like a map however large it
 * grows. Printing with ir_format is tested with simplify (check_simplify.c),
 * whose output it exists for; `emit ir`'s dump format is checked here.
 */
#include "unit.h"

static Node *c(double v) { return ir_const(fx.g, v); }
static Node *add(Node *a, Node *b) { return ir_binary(fx.g, OP_ADD, a, b); }
static Node *mul(Node *a, Node *b) { return ir_binary(fx.g, OP_MUL, a, b); }
static Node *data(int64_t n, int slot) { return ir_leaf(fx.g, OP_DATA, shape_vector(n), slot, NULL); }

static Shape matrix(int64_t rows, int64_t cols) { return (Shape){2, {rows, cols}}; }

/* ---- hash-consing */

START_TEST(equal_nodes_are_one) {
  ck_assert_ptr_eq(c(1.5), c(1.5));
  ck_assert_ptr_eq(c(NAN), c(NAN));              /* the same bits */
  char name1[] = "x", name2[] = "x";             /* names compare by text */
  Node *x = ir_var(fx.g, name1, shape_scalar(), NULL, 0);
  ck_assert_ptr_eq(x, ir_var(fx.g, name2, shape_scalar(), NULL, 0));
  Node *y = scalar_var("y", 1);
  ck_assert_ptr_eq(add(x, y), add(x, y));
  ck_assert_ptr_eq(ir_unary(fx.g, OP_SIN, add(x, y)), ir_unary(fx.g, OP_SIN, add(x, y)));
  ck_assert_ptr_eq(ir_where(fx.g, x, y, c(0)), ir_where(fx.g, x, y, c(0)));
  ck_assert_ptr_eq(ir_broadcast(fx.g, x, shape_vector(5)), ir_broadcast(fx.g, x, shape_vector(5)));
  ck_assert_ptr_eq(data(5, 0), data(5, 0));
  ck_assert_ptr_eq(ir_leaf(fx.g, OP_PARAM, shape_scalar(), 2, NULL),
                   ir_leaf(fx.g, OP_PARAM, shape_scalar(), 2, NULL));
  /* a common subexpression written twice is shared */
  Node *e1 = mul(add(x, y), add(x, y));
  ck_assert_ptr_eq(e1->args[0], e1->args[1]);
  /* constructing an existing node adds nothing to the graph */
  unsigned before = fx.g->nnodes;
  (void)mul(add(x, y), add(x, y));
  ck_assert_uint_eq(fx.g->nnodes, before);
}
END_TEST

START_TEST(different_nodes_differ) {
  Node *x = scalar_var("x", 0), *y = scalar_var("y", 1);
  ck_assert_ptr_ne(c(1), c(2));
  ck_assert_ptr_ne(c(0.0), c(-0.0));
  ck_assert(signbit(c(-0.0)->num));
  ck_assert_ptr_ne(c(1), c(nextafter(1, 2)));
  ck_assert_ptr_ne(add(x, y), ir_binary(fx.g, OP_SUB, x, y));
  ck_assert_ptr_ne(add(x, y), mul(x, y));
  ck_assert_ptr_ne(ir_unary(fx.g, OP_SIN, x), ir_unary(fx.g, OP_COS, x));
  ck_assert_ptr_ne(ir_unary(fx.g, OP_SIN, x), ir_unary(fx.g, OP_SIN, y));
  /* leaves: shape, slot, op and name all matter */
  ck_assert_ptr_ne(data(3, 0), data(4, 0));
  ck_assert_ptr_ne(data(3, 0), data(3, 1));
  ck_assert_ptr_ne(ir_leaf(fx.g, OP_DATA, shape_scalar(), 0, NULL),
                   ir_leaf(fx.g, OP_PARAM, shape_scalar(), 0, NULL));
  ck_assert_ptr_ne(x, y);
  ck_assert_ptr_ne(x, scalar_var("x", 1));
  ck_assert_ptr_ne(x, ir_var(fx.g, "x", shape_vector(3), NULL, 0));
  static const int owner;                        /* a fn's formal x is not the user's x */
  ck_assert_ptr_ne(x, ir_var(fx.g, "x", shape_scalar(), &owner, 0));
  ck_assert_ptr_ne(ir_broadcast(fx.g, x, shape_vector(3)), ir_broadcast(fx.g, x, shape_vector(4)));
  ck_assert_ptr_ne(ir_broadcast(fx.g, x, shape_vector(3)), ir_broadcast(fx.g, x, matrix(3, 1)));
}
END_TEST

/* ids grow with creation; arguments are older than their users. */
START_TEST(ids_are_topological) {
  Node *x = scalar_var("x", 0), *y = scalar_var("y", 1);
  Node *e = ir_unary(fx.g, OP_EXP, mul(add(x, c(1)), ir_unary(fx.g, OP_SIN, y)));
  NodeList all = ir_topo(&e, 1);
  for (int k = 0; k < all.n; k++)
    for (int i = 0; i < all.items[k]->nargs; i++)
      ck_assert_uint_lt(all.items[k]->args[i]->id, all.items[k]->id);
  nodelist_free(&all);
  unsigned before = fx.g->nnodes;
  Node *fresh = c(12345.678);
  ck_assert_uint_eq(fresh->id, before + 1);
  ck_assert_uint_eq(fx.g->nnodes, before + 1);
}
END_TEST

/* Past the first table size, nodes stay unique and findable. */
START_TEST(graph_grows) {
  enum { N = 5000 };
  Node **made = malloc(sizeof(Node *) * N);
  unsigned before = fx.g->nnodes;
  for (int i = 0; i < N; i++)
    made[i] = c(i + 0.25);
  ck_assert_uint_eq(fx.g->nnodes, before + N);
  ck_assert_uint_ge(fx.g->nbuckets, N);
  for (int i = 0; i < N; i++) {
    ck_assert_ptr_eq(c(i + 0.25), made[i]);
    ck_assert_double_eq(made[i]->num, i + 0.25);
  }
  ck_assert_uint_eq(fx.g->nnodes, before + N);
  /* and nodes built on them too */
  Node *x = scalar_var("x", 0);
  for (int i = 0; i < N; i += 7)
    ck_assert_ptr_eq(add(x, made[i]), add(x, c(i + 0.25)));
  free(made);
}
END_TEST

START_TEST(ir_at_keeps_first_span) {
  Source *src = source_new(fx.arena, "t.dl", "x + y\n", 6);
  Node *x = scalar_var("x", 0);
  ck_assert_ptr_null(x->span.src);
  ir_at(x, (Span){src, 0, 1});
  ir_at(x, (Span){src, 4, 5});
  ck_assert_ptr_eq(x->span.src, src);
  ck_assert_int_eq(x->span.begin, 0);
  ck_assert_int_eq(x->span.end, 1);
}
END_TEST

/* ---- shapes */

START_TEST(shape_basics) {
  char buf[64];
  ck_assert_int_eq(shape_numel(shape_scalar()), 1);
  ck_assert_int_eq(shape_numel(shape_vector(2000)), 2000);
  ck_assert_int_eq(shape_numel(matrix(3, 4)), 12);
  ck_assert(shape_eq(shape_vector(5), shape_vector(5)));
  ck_assert(!shape_eq(shape_vector(5), shape_vector(6)));
  ck_assert(!shape_eq(shape_vector(1), shape_scalar()));
  ck_assert(!shape_eq(matrix(5, 1), shape_vector(5)));
  ck_assert(!shape_eq(matrix(2, 3), matrix(3, 2)));
  ck_assert_str_eq(shape_str(shape_scalar(), buf), "scalar");
  ck_assert_str_eq(shape_str(shape_vector(2000), buf), "vector[2000]");
  ck_assert_str_eq(shape_str(matrix(2, 3), buf), "matrix[2, 3]");
}
END_TEST

static void assert_broadcast(Shape a, Shape b, Shape want) {
  char sa[64], sb[64], sw[64], sg[64];
  Shape got = {-1, {-1, -1}};
  ck_assert_msg(shape_broadcast(a, b, &got), "%s with %s does not broadcast", shape_str(a, sa),
                shape_str(b, sb));
  ck_assert_msg(shape_eq(got, want), "%s with %s gave %s, want %s", shape_str(a, sa),
                shape_str(b, sb), shape_str(got, sg), shape_str(want, sw));
  /* symmetric */
  ck_assert(shape_broadcast(b, a, &got));
  ck_assert(shape_eq(got, want));
}

static void assert_no_broadcast(Shape a, Shape b) {
  Shape out;
  char sa[64], sb[64];
  ck_assert_msg(!shape_broadcast(a, b, &out), "%s with %s broadcasts", shape_str(a, sa),
                shape_str(b, sb));
  ck_assert(!shape_broadcast(b, a, &out));
}

START_TEST(numpy_broadcasting) {
  Shape s = shape_scalar(), v5 = shape_vector(5), v4 = shape_vector(4), v1 = shape_vector(1);
  assert_broadcast(s, s, s);
  assert_broadcast(s, v5, v5);
  assert_broadcast(v5, v5, v5);
  assert_broadcast(v1, v5, v5);
  assert_broadcast(v1, s, v1);
  assert_broadcast(s, matrix(3, 4), matrix(3, 4));
  assert_broadcast(matrix(3, 4), v4, matrix(3, 4));
  assert_broadcast(matrix(3, 1), v4, matrix(3, 4));
  assert_broadcast(matrix(1, 4), matrix(3, 1), matrix(3, 4));
  assert_broadcast(matrix(3, 4), matrix(1, 4), matrix(3, 4));
  assert_broadcast(matrix(3, 4), v1, matrix(3, 4));
  assert_no_broadcast(v5, v4);
  assert_no_broadcast(matrix(3, 4), shape_vector(3));
  assert_no_broadcast(matrix(3, 4), matrix(4, 3));
  assert_no_broadcast(matrix(2, 4), matrix(3, 1));
}
END_TEST

/* Constructors compute result shapes. */
START_TEST(result_shapes) {
  Node *x = scalar_var("x", 0), *v = data(5, 0), *w = data(5, 1);
  ck_assert(shape_eq(add(x, v)->shape, shape_vector(5)));
  ck_assert(shape_eq(add(v, x)->shape, shape_vector(5)));
  ck_assert(shape_eq(mul(v, w)->shape, shape_vector(5)));
  ck_assert(shape_eq(ir_unary(fx.g, OP_SIN, v)->shape, shape_vector(5)));
  ck_assert(shape_eq(ir_unary(fx.g, OP_SUM, v)->shape, shape_scalar()));
  ck_assert(shape_eq(ir_unary(fx.g, OP_MEAN, v)->shape, shape_scalar()));
  ck_assert(shape_eq(ir_where(fx.g, x, v, c(0))->shape, shape_vector(5)));
  ck_assert(shape_eq(ir_where(fx.g, ir_binary(fx.g, OP_GT, v, c(0)), x, c(1))->shape,
                     shape_vector(5)));
  ck_assert(shape_eq(ir_where(fx.g, x, c(1), c(2))->shape, shape_scalar()));
  ck_assert(shape_eq(ir_binary(fx.g, OP_LT, v, x)->shape, shape_vector(5)));
  Node *m = ir_leaf(fx.g, OP_DATA, matrix(2, 5), 2, NULL);
  ck_assert(shape_eq(add(m, v)->shape, matrix(2, 5)));
  ck_assert(shape_eq(ir_unary(fx.g, OP_SUM, m)->shape, shape_scalar()));
  /* broadcast to the same shape is the node itself */
  ck_assert_ptr_eq(ir_broadcast(fx.g, v, shape_vector(5)), v);
  Node *b = ir_broadcast(fx.g, x, shape_vector(5));
  ck_assert_int_eq(b->op, OP_BROADCAST);
  ck_assert(shape_eq(b->shape, shape_vector(5)));
  /* ir_with_args recomputes the shape from the new arguments */
  Node *xy = add(x, scalar_var("y", 1));
  Node *args[2] = {v, xy->args[1]};
  Node *vy = ir_with_args(fx.g, xy, args);
  ck_assert(shape_eq(vy->shape, shape_vector(5)));
  ck_assert_ptr_eq(vy, add(v, xy->args[1]));
}
END_TEST

START_TEST(is_const) {
  ck_assert(ir_is_const(c(2), 2));
  ck_assert(!ir_is_const(c(2), 3));
  ck_assert(ir_is_const(ir_broadcast(fx.g, c(0), shape_vector(4)), 0));
  ck_assert(ir_is_const(c(-0.0), 0));            /* by value */
  ck_assert(!ir_is_const(scalar_var("x", 0), 0));
  ck_assert(!ir_is_const(c(NAN), NAN));
}
END_TEST

/* ---- flags */

START_TEST(flags_propagate) {
  Node *p = ir_leaf(fx.g, OP_PARAM, shape_scalar(), 0, NULL);
  Node *v = data(5, 0), *x = scalar_var("x", 0);
  ck_assert_uint_eq(p->flags, NODE_HAS_PARAM);
  ck_assert_uint_eq(v->flags, 0);
  ck_assert_uint_eq(c(1)->flags, 0);
  ck_assert_uint_eq(x->flags, NODE_HAS_VAR);
  Node *pv = ir_unary(fx.g, OP_SUM, mul(p, v));
  ck_assert_uint_eq(pv->flags, NODE_HAS_PARAM);
  ck_assert_uint_eq(ir_unary(fx.g, OP_SIN, add(v, c(1)))->flags, 0);
  ck_assert_uint_eq(add(pv, x)->flags, NODE_HAS_PARAM | NODE_HAS_VAR);
  Node *deep = x;
  for (int i = 0; i < 50; i++)
    deep = ir_unary(fx.g, i % 2 ? OP_SIN : OP_EXP, deep);
  ck_assert_uint_eq(add(deep, p)->flags, NODE_HAS_PARAM | NODE_HAS_VAR);
  ck_assert_uint_eq(ir_where(fx.g, ir_binary(fx.g, OP_GT, p, c(0)), c(1), c(2))->flags,
                    NODE_HAS_PARAM);
  /* rebuilt by ir_subst without the param, the flag goes */
  Node *from = p, *to = c(3);
  ck_assert_uint_eq(ir_subst(fx.g, pv, &from, &to, 1)->flags, 0);
}
END_TEST

/* ---- traversal */

START_TEST(topo_order) {
  Node *x = scalar_var("x", 0), *y = scalar_var("y", 1);
  Node *s = add(x, y);                            /* a diamond: s used twice */
  Node *l = ir_unary(fx.g, OP_SIN, s), *r = ir_unary(fx.g, OP_COS, s);
  Node *top = mul(l, r);
  Node *unreachable = ir_unary(fx.g, OP_EXP, x);
  NodeList t = ir_topo(&top, 1);
  ck_assert_int_eq(t.n, 6);                      /* x y s l r top */
  NodeMap pos = {0};
  for (int k = 0; k < t.n; k++) {
    ck_assert_ptr_null(nodemap_get(&pos, t.items[k]));   /* once each */
    nodemap_put(&pos, t.items[k], (void *)(intptr_t)(k + 1));
  }
  for (int k = 0; k < t.n; k++)
    for (int i = 0; i < t.items[k]->nargs; i++) {
      intptr_t at = (intptr_t)nodemap_get(&pos, t.items[k]->args[i]);
      ck_assert_msg(at > 0 && at - 1 < k, "an argument after its user");
    }
  ck_assert_ptr_null(nodemap_get(&pos, unreachable));
  ck_assert_ptr_eq(t.items[t.n - 1], top);
  nodemap_free(&pos);
  nodelist_free(&t);
  /* several roots (NULL ones skipped): the union, still each once */
  Node *roots[3] = {top, NULL, unreachable};
  t = ir_topo(roots, 3);
  ck_assert_int_eq(t.n, 7);
  nodelist_free(&t);
  /* a leaf alone */
  t = ir_topo(&x, 1);
  ck_assert_int_eq(t.n, 1);
  ck_assert_ptr_eq(t.items[0], x);
  nodelist_free(&t);
}
END_TEST

/* Deep expressions are walked without recursion. */
START_TEST(topo_deep) {
  enum { DEPTH = 200000 };
  Node *x = scalar_var("x", 0), *e = x;
  for (int i = 0; i < DEPTH; i++)
    e = add(e, c(i % 3));
  NodeList t = ir_topo(&e, 1);
  ck_assert_int_eq(t.n, DEPTH + 1 + 3);
  nodelist_free(&t);
}
END_TEST

START_TEST(subst) {
  Node *x = scalar_var("x", 0), *y = scalar_var("y", 1);
  Node *cy = ir_unary(fx.g, OP_COS, y);           /* no x in it: stays shared */
  Node *e = mul(add(x, cy), ir_unary(fx.g, OP_SIN, x));
  Node *from = x, *to = c(2);
  Node *r = ir_subst(fx.g, e, &from, &to, 1);
  ck_assert_ptr_eq(r, mul(add(c(2), cy), ir_unary(fx.g, OP_SIN, c(2))));
  ck_assert_ptr_eq(r->args[0]->args[1], cy);
  /* nothing to replace: the node itself */
  Node *z = scalar_var("z", 2);
  ck_assert_ptr_eq(ir_subst(fx.g, e, &z, &to, 1), e);
  /* an inner node as `from` */
  Node *inner = add(x, cy), *w = scalar_var("w", 3);
  ck_assert_ptr_eq(ir_subst(fx.g, e, &inner, &w, 1), mul(w, ir_unary(fx.g, OP_SIN, x)));
  /* several at once, swapped: x <-> y */
  Node *fs[2] = {x, y}, *ts[2] = {y, x};
  Node *xy = ir_binary(fx.g, OP_SUB, x, y);
  ck_assert_ptr_eq(ir_subst(fx.g, xy, fs, ts, 2), ir_binary(fx.g, OP_SUB, y, x));
  /* a scalar replaced by a vector: shapes are recomputed */
  Node *v = data(5, 0);
  Node *rv = ir_subst(fx.g, e, &from, &v, 1);
  ck_assert(shape_eq(rv->shape, shape_vector(5)));
  ck_assert(shape_eq(rv->args[1]->shape, shape_vector(5)));
  /* the root itself */
  ck_assert_ptr_eq(ir_subst(fx.g, x, &from, &to, 1), to);
}
END_TEST

/* ---- the node map */

START_TEST(nodemap_basics) {
  NodeMap m = {0};
  Node *a = c(1), *b = c(2);
  ck_assert_ptr_null(nodemap_get(&m, a));        /* empty, never allocated */
  int va = 1, vb = 2, vc = 3;
  nodemap_put(&m, a, &va);
  nodemap_put(&m, b, &vb);
  ck_assert_ptr_eq(nodemap_get(&m, a), &va);
  ck_assert_ptr_eq(nodemap_get(&m, b), &vb);
  ck_assert_ptr_null(nodemap_get(&m, c(3)));
  ck_assert_uint_eq(m.n, 2);
  nodemap_put(&m, a, &vc);                       /* overwrite */
  ck_assert_ptr_eq(nodemap_get(&m, a), &vc);
  ck_assert_uint_eq(m.n, 2);
  nodemap_free(&m);
  ck_assert_ptr_null(m.keys);
  ck_assert_uint_eq(m.n, 0);
  ck_assert_ptr_null(nodemap_get(&m, a));
}
END_TEST

START_TEST(nodemap_grows) {
  enum { N = 3000 };
  NodeMap m = {0};
  Node **keys = malloc(sizeof(Node *) * N);
  for (int i = 0; i < N; i++) {
    keys[i] = c(-1 - i);
    nodemap_put(&m, keys[i], (void *)(intptr_t)(i + 1));
  }
  ck_assert_uint_eq(m.n, N);
  ck_assert_uint_gt(m.cap, 2 * N - 1);           /* at most half full */
  for (int i = 0; i < N; i++)
    ck_assert_int_eq((intptr_t)nodemap_get(&m, keys[i]), i + 1);
  for (int i = 0; i < N; i += 2)
    nodemap_put(&m, keys[i], (void *)(intptr_t)(-i));
  for (int i = 0; i < N; i++)
    ck_assert_int_eq((intptr_t)nodemap_get(&m, keys[i]), i % 2 ? i + 1 : -i);
  ck_assert_uint_eq(m.n, N);
  ck_assert_ptr_null(nodemap_get(&m, c(0.5)));
  nodemap_free(&m);
  free(keys);
}
END_TEST

/* ---- fn calls and the dump */

START_TEST(fncall_node) {
  Fn f = {.name = "f", .arity = 2}, other = {.name = "g", .arity = 2};
  Node *x = scalar_var("x", 0), *v = vec_data(NULL, 5, NULL);
  Node *actuals[2] = {x, v};
  Node *body = mul(x, v);
  Node *partials[2] = {v, ir_broadcast(fx.g, x, shape_vector(5))};
  Node *call = ir_fncall(fx.g, &f, actuals, body, partials, 2);
  ck_assert_int_eq(call->op, OP_FNCALL);
  ck_assert_int_eq(call->nargs, 5);
  ck_assert_int_eq(ir_fncall_arity(call), 2);
  ck_assert_ptr_eq(ir_fncall_body(call), body);
  ck_assert_ptr_eq(call->args[0], x);
  ck_assert_ptr_eq(call->args[1], v);
  ck_assert_ptr_eq(call->args[3], partials[0]);
  ck_assert_ptr_eq(call->args[4], partials[1]);
  ck_assert(shape_eq(call->shape, shape_vector(5)));
  ck_assert_ptr_eq(call, ir_fncall(fx.g, &f, actuals, body, partials, 2));
  ck_assert_ptr_ne(call, ir_fncall(fx.g, &other, actuals, body, partials, 2));
  ck_assert_str_eq(formula(call), "f(x, [0, 0, 0, 0, 0])");   /* v has no name: its values */
}
END_TEST

START_TEST(dump_format) {
  Node *x = scalar_var("x", 0), *v = vec_data(NULL, 3, "v");
  Node *e = ir_unary(fx.g, OP_SUM, mul(x, v));
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  const char *names[1] = {"loss"};
  ir_dump(&e, names, 1, fx.prog, out);
  fclose(out);
  char want[64];
  snprintf(want, sizeof want, "loss = %%%u\n", e->id);
  ck_assert_msg(strstr(text, want) != NULL, "no '%s' in:\n%s", want, text);
  ck_assert_msg(strstr(text, "VAR") && strstr(text, " x : scalar\n"), "%s", text);
  ck_assert_msg(strstr(text, "MUL") && strstr(text, " : vector[3]\n"), "%s", text);
  int lines = 0;
  for (char *p = text; *p; p++)
    lines += *p == '\n';
  ck_assert_int_eq(lines, 5);                     /* x, v, mul, sum, loss = */
  free(text);
}
END_TEST

static Suite *ir_suite(void) {
  Suite *s = suite_create("ir");

  TCase *tc = tcase_create("hash_consing");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, equal_nodes_are_one);
  tcase_add_test(tc, different_nodes_differ);
  tcase_add_test(tc, ids_are_topological);
  tcase_add_test(tc, graph_grows);
  tcase_add_test(tc, ir_at_keeps_first_span);
  suite_add_tcase(s, tc);

  tc = tcase_create("shapes");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, shape_basics);
  tcase_add_test(tc, numpy_broadcasting);
  tcase_add_test(tc, result_shapes);
  tcase_add_test(tc, is_const);
  suite_add_tcase(s, tc);

  tc = tcase_create("flags");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, flags_propagate);
  suite_add_tcase(s, tc);

  tc = tcase_create("traversal");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, topo_order);
  tcase_add_test(tc, topo_deep);
  tcase_add_test(tc, subst);
  suite_add_tcase(s, tc);

  tc = tcase_create("nodemap");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, nodemap_basics);
  tcase_add_test(tc, nodemap_grows);
  suite_add_tcase(s, tc);

  tc = tcase_create("fncall_dump");
  tcase_add_checked_fixture(tc, fx_setup_f64, fx_teardown);
  tcase_add_test(tc, fncall_node);
  tcase_add_test(tc, dump_format);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(ir_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
