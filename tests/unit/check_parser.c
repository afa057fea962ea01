/* check_parser.c — the front end: lexer.l, parser.y and ast.c.
 *
 * Each test parses a small text with parse_source and looks at the tree it
 * gets back, mostly through show(), which writes an expression as a compact
 * s-expression without locations: `-x^2` shows as "(- (^ x 2))". Errors are
 * checked by count, position (line:col) and wording.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dlc.h"

static Arena *A;
static Diags D;
static const Source *S;

static void setup(void) {
  A = arena_new();
  D = (Diags){0};
}

static void teardown(void) {
  diag_free(&D);
  arena_free(A);
}

static Stmt *parse(const char *text) {
  S = source_new(A, "t.dl", text, strlen(text));
  return parse_source(S, A, &D);
}

static int count(const Stmt *s) {
  int n = 0;
  for (; s; s = s->next)
    n++;
  return n;
}

static void show_to(Buf *b, const Expr *e) {
  switch (e->kind) {
  case EX_SLICE:
    buf_puts(b, "(: ");
    if (e->lhs) show_to(b, e->lhs); else buf_puts(b, "_");
    buf_puts(b, " ");
    if (e->rhs) show_to(b, e->rhs); else buf_puts(b, "_");
    buf_puts(b, ")");
    break;
  case EX_INDEX:
  case EX_LIST:
    buf_puts(b, e->kind == EX_INDEX ? "(index " : "(list");
    if (e->kind == EX_INDEX)
      show_to(b, e->lhs);
    for (const Arg *a = e->args; a; a = a->next) {
      buf_puts(b, " ");
      show_to(b, a->value);
    }
    buf_puts(b, ")");
    break;
  case EX_NUM: buf_printf(b, "%g", e->num); break;
  case EX_NAME: buf_puts(b, e->name); break;
  case EX_STR:
    buf_puts(b, "(str");
    for (const StrPart *p = e->parts; p; p = p->next) {
      buf_puts(b, " ");
      if (p->text)
        buf_printf(b, "\"%s\"", p->text);
      else
        show_to(b, p->expr);
    }
    buf_puts(b, ")");
    break;
  case EX_UNARY:
    buf_printf(b, "(%s ", op_info[e->op].spelling);
    show_to(b, e->lhs);
    buf_puts(b, ")");
    break;
  case EX_BINARY:
    buf_printf(b, "(%s ", op_info[e->op].spelling);
    show_to(b, e->lhs);
    buf_puts(b, " ");
    show_to(b, e->rhs);
    buf_puts(b, ")");
    break;
  case EX_CALL:
    buf_printf(b, "(call %s", e->name);
    for (const Arg *a = e->args; a; a = a->next) {
      buf_puts(b, " ");
      if (a->name)
        buf_printf(b, "(arg %s ", a->name);
      show_to(b, a->value);
      if (a->name)
        buf_puts(b, ")");
    }
    buf_puts(b, ")");
    break;
  }
}

static const char *show(const Expr *e) {
  Buf b = {0};
  show_to(&b, e);
  char *s = arena_strdup(A, b.data);
  buf_free(&b);
  return s;
}

/* The expression of a one-statement program `x = TEXT`, shown. */
static const char *show_def(const char *text) {
  Stmt *s = parse(arena_printf(A, "x = %s", text));
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 1);
  ck_assert_int_eq(s->kind, ST_DEF);
  return show(s->value);
}

static const char *at(Span s) {
  int line, col;
  source_line_col(s.src, s.begin, &line, &col);
  return arena_printf(A, "%d:%d", line, col);
}

static const char *text(Span s) { return arena_strndup(A, s.src->text + s.begin, (size_t)(s.end - s.begin)); }

/* Diagnostic i is an error at line:col whose message contains `part`. */
static void check_diag(int i, const char *pos, const char *part) {
  ck_assert_int_lt(i, D.n);
  ck_assert_int_eq(D.items[i].level, DIAG_ERROR);
  ck_assert_str_eq(at(D.items[i].span), pos);
  ck_assert_msg(strstr(D.items[i].msg, part), "message '%s' lacks '%s'", D.items[i].msg, part);
}

static char *capture_tokens(const char *src_text) {
  S = source_new(A, "t.dl", src_text, strlen(src_text));
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  lex_dump(S, A, &D, f);
  fclose(f);
  char *s = arena_strdup(A, out);
  free(out);
  return s;
}

static const char *seed =
    "# Fit y = sin(x) on [-pi, pi] with y = a + b * P3(c + d * x),\n"
    "# P3 being the Legendre polynomial of degree three.\n"
    "\n"
    "fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
    "  deriv x = 1.5 * (5 * x^2 - 1)      # hand-written derivative, used by backward\n"
    "\n"
    "x = linspace(-pi, pi, 2000)\n"
    "y = sin(x)\n"
    "\n"
    "param a = 0.0\n"
    "param b = -1.0\n"
    "param c = 0.0\n"
    "param d = 0.3\n"
    "\n"
    "y_pred = a + b * P3(c + d * x)\n"
    "loss = sum((y_pred - y)^2)\n"
    "\n"
    "train(steps = 2000, optimizer = sgd(lr = 5e-6), log_every = 100)\n"
    "\n"
    "print(\"Result: y = {a} + {b} * P3({c} + {d} x)\")\n";

/* ---- numbers */

START_TEST(test_numbers) {
  Stmt *s = parse("a = 2\nb = 2.5\nc = .5\nd = 5e-6\ne = 1.5E+3\nf = 2.\ng = 007\n");
  ck_assert_int_eq(D.n, 0);
  double want[] = {2, 2.5, 0.5, 5e-6, 1.5e3, 2, 7};
  int i = 0;
  for (; s; s = s->next, i++) {
    ck_assert_int_eq(s->value->kind, EX_NUM);
    ck_assert_double_eq(s->value->num, want[i]);
  }
  ck_assert_int_eq(i, 7);
}
END_TEST

START_TEST(test_bad_numbers) {
  Stmt *s = parse("a = 1e\nb = 1.2.3\nc = 3\nd = 2x + 1\ne = 1e999\n");
  ck_assert_int_eq(D.n, 4);
  check_diag(0, "1:5", "malformed number '1e'");
  check_diag(1, "2:5", "malformed number '1.2.3'");
  check_diag(2, "4:5", "malformed number '2x'");
  check_diag(3, "5:5", "too large");
  ck_assert_int_eq(D.items[1].span.end - D.items[1].span.begin, 5);
  ck_assert_int_eq(count(s), 1);
  ck_assert_str_eq(s->name, "c");
}
END_TEST

/* ---- operators and precedence */

START_TEST(test_precedence) {
  ck_assert_str_eq(show_def("-x^2"), "(- (^ x 2))");
  ck_assert_str_eq(show_def("2^3^2"), "(^ 2 (^ 3 2))");
  ck_assert_str_eq(show_def("2^-1"), "(^ 2 (- 1))");
  ck_assert_str_eq(show_def("-2^-x^2"), "(- (^ 2 (- (^ x 2))))");
  ck_assert_str_eq(show_def("a + b * c"), "(+ a (* b c))");
  ck_assert_str_eq(show_def("a - b - c"), "(- (- a b) c)");
  ck_assert_str_eq(show_def("a / b * c"), "(* (/ a b) c)");
  ck_assert_str_eq(show_def("-a * b"), "(* (- a) b)");
  ck_assert_str_eq(show_def("a * -b"), "(* a (- b))");
  ck_assert_str_eq(show_def("a - -b"), "(- a (- b))");
  ck_assert_str_eq(show_def("(a + b) * c"), "(* (+ a b) c)");
  ck_assert_str_eq(show_def("a < b + 1"), "(< a (+ b 1))");
  ck_assert_str_eq(show_def("a <= b"), "(<= a b)");
  ck_assert_str_eq(show_def("a > b"), "(> a b)");
  ck_assert_str_eq(show_def("a >= b"), "(>= a b)");
  ck_assert_str_eq(show_def("a == b * 2"), "(== a (* b 2))");
  ck_assert_str_eq(show_def("a != b"), "(!= a b)");
  ck_assert_str_eq(show_def("(a < b) < c"), "(< (< a b) c)");
}
END_TEST

START_TEST(test_calls) {
  ck_assert_str_eq(show_def("f()"), "(call f)");
  ck_assert_str_eq(show_def("f(x, y = 2,)"), "(call f x (arg y 2))");
  ck_assert_str_eq(show_def("sgd(lr = 5e-6)"), "(call sgd (arg lr 5e-06))");
  ck_assert_str_eq(show_def("-f(g(x))^2"), "(- (^ (call f (call g x)) 2))");
  ck_assert_str_eq(show_def("where(a < b, a, b)"), "(call where (< a b) a b)");
  ck_assert_str_eq(show_def("f(x == 1)"), "(call f (== x 1))");
  /* `loss` is a keyword, and also the name of the loss's value */
  ck_assert_str_eq(show_def("2 * loss"), "(* 2 loss)");
  Stmt *s = parse("print(loss)");
  ck_assert_int_eq(s->kind, ST_EXPR);
  ck_assert_str_eq(show(s->value), "(call print loss)");
  ck_assert_int_eq(s->value->args->value->kind, EX_NAME);
}
END_TEST

START_TEST(test_chained_comparison) {
  Stmt *s = parse("a = b < c < d\n");
  ck_assert_int_eq(D.n, 1);
  check_diag(0, "1:11", "comparisons cannot be chained");
  ck_assert_ptr_null(s);
}
END_TEST

/* ---- statements and newlines */

START_TEST(test_statement_kinds) {
  Stmt *s = parse("param a = 1\nb = 2\nloss = a\nfn f(x) = x\nprint(b)\nb\n");
  ck_assert_int_eq(D.n, 0);
  StmtKind want[] = {ST_PARAM, ST_DEF, ST_LOSS, ST_FN, ST_EXPR, ST_EXPR};
  int i = 0;
  for (; s; s = s->next, i++)
    ck_assert_int_eq(s->kind, want[i]);
  ck_assert_int_eq(i, 6);
}
END_TEST

START_TEST(test_continuation) {
  Stmt *s = parse("x = a +\n  b\ny = f(1,\n  2)\nz = (a\n  + b)\nw =\n  3 *\n\n  # c\n  4\n");
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 4);
  ck_assert_str_eq(show(s->value), "(+ a b)");
  ck_assert_str_eq(show(s->next->value), "(call f 1 2)");
  ck_assert_str_eq(show(s->next->next->value), "(+ a b)");
  ck_assert_str_eq(show(s->next->next->next->value), "(* 3 4)");
}
END_TEST

START_TEST(test_newline_ends_statement) {
  /* An operator at the start of the next line does not continue. */
  Stmt *s = parse("x = a\n- b\n");
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 2);
  ck_assert_int_eq(s->next->kind, ST_EXPR);
  ck_assert_str_eq(show(s->next->value), "(- b)");
}
END_TEST

START_TEST(test_separators) {
  Stmt *s = parse("\n\n# only a comment\n   \na = 1; b = 2;;c = 3\n\n\n# end\n\nd = 4");
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 4);
  ck_assert_str_eq(s->next->next->next->name, "d");
  /* Blank and comment lines give no NEWLINE of their own, nor does the
   * start of the file. */
  char *toks = capture_tokens("\n# c\nx = 1\n\n  # c\n\ny = 2\n");
  ck_assert_str_eq(toks, "3:1 NAME x\n3:3 '='\n3:5 NUMBER 1\n3:6 NEWLINE\n"
                         "7:1 NAME y\n7:3 '='\n7:5 NUMBER 2\n7:6 NEWLINE\n7:6 EOF\n");
}
END_TEST

START_TEST(test_crlf) {
  Stmt *s = parse("a = 1 +\r\n  2\r\nb = f(\r\n  3)\r\n");
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 2);
  ck_assert_str_eq(at(s->next->span), "3:1");
  ck_assert_str_eq(show(s->value), "(+ 1 2)");
}
END_TEST

/* A carriage return that ends no CRLF: one error, where it is, whether
 * the whole file has CR-only line ends (classic Mac) or one line has a
 * stray one; a CR in a comment too, since it could end the comment. */
START_TEST(test_bare_cr) {
  parse("x = 1\rprint(x)\ry = 2 +\r");
  ck_assert_int_eq(D.nerrors, 1);
  check_diag(0, "1:6", "a carriage return without a line feed (classic Mac line ends?)");
  teardown();
  setup();
  parse("# model\rx = 1\r");
  ck_assert_int_eq(D.nerrors, 1);
  check_diag(0, "1:8", "save the file with LF or CRLF line ends");
  teardown();
  setup();
  Stmt *s = parse("a = 1\nb = 2 \r+ 3\nc = 4\n");
  ck_assert_int_eq(D.nerrors, 1);
  check_diag(0, "2:7", "a carriage return without a line feed");
  ck_assert_int_eq(count(s), 2);
}
END_TEST

/* ---- fn and deriv */

START_TEST(test_fn_deriv) {
  Stmt *s = parse("fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
                  "  deriv x = 1.5 * (5 * x^2 - 1)      # by hand\n"
                  "y = P3(2)\n");
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 2);
  ck_assert_int_eq(s->kind, ST_FN);
  ck_assert_str_eq(s->name, "P3");
  ck_assert_str_eq(s->formals->name, "x");
  ck_assert_ptr_null(s->formals->next);
  ck_assert_str_eq(show(s->value), "(* 0.5 (- (* 5 (^ x 3)) (* 3 x)))");
  ck_assert_ptr_nonnull(s->derivs);
  ck_assert_str_eq(s->derivs->arg, "x");
  ck_assert_str_eq(show(s->derivs->value), "(* 1.5 (- (* 5 (^ x 2)) 1))");
  ck_assert_ptr_null(s->derivs->next);
  ck_assert_str_eq(text(s->derivs->span), "deriv x = 1.5 * (5 * x^2 - 1)");
  ck_assert_str_eq(at(s->derivs->arg_span), "2:9");
  ck_assert_str_eq(text(s->span), "fn P3(x) = 0.5 * (5 * x^3 - 3 * x)\n"
                                  "  deriv x = 1.5 * (5 * x^2 - 1)");
  ck_assert_str_eq(s->next->name, "y");
}
END_TEST

START_TEST(test_fn_several_derivs) {
  Stmt *s = parse("fn f(x, y,) = x * y\n\n  # the partials\n  deriv x = y\n\n  deriv y = x\n"
                  "fn g() = 3\nfn h(t) = t\nz = 1\n");
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 4);
  ck_assert_str_eq(s->formals->next->name, "y");
  ck_assert_str_eq(s->derivs->arg, "x");
  ck_assert_str_eq(show(s->derivs->value), "y");
  ck_assert_str_eq(s->derivs->next->arg, "y");
  ck_assert_ptr_null(s->derivs->next->next);
  ck_assert_ptr_null(s->next->formals);
  ck_assert_ptr_null(s->next->next->derivs);
  ck_assert_int_eq(s->next->next->next->kind, ST_DEF);
}
END_TEST

START_TEST(test_deriv_without_fn) {
  Stmt *s = parse("x = 1\nderiv x = 2\ny = 3\n");
  ck_assert_int_eq(D.n, 1);
  check_diag(0, "2:1", "a deriv clause must follow its fn");
  ck_assert_int_eq(count(s), 1);
  ck_assert_str_eq(s->name, "y");
}
END_TEST

/* ---- strings */

START_TEST(test_interpolation) {
  Stmt *s = parse("print(\"a {b} {{c}}\")");
  ck_assert_int_eq(D.n, 0);
  const Expr *str = s->value->args->value;
  ck_assert_int_eq(str->kind, EX_STR);
  const StrPart *p = str->parts;
  ck_assert_str_eq(p->text, "a ");
  ck_assert_ptr_null(p->expr);
  p = p->next;
  ck_assert_ptr_null(p->text);
  ck_assert_int_eq(p->expr->kind, EX_NAME);
  ck_assert_str_eq(p->expr->name, "b");
  p = p->next;
  ck_assert_str_eq(p->text, " {c}");
  ck_assert_ptr_null(p->next);
  ck_assert_str_eq(text(str->span), "\"a {b} {{c}}\"");
}
END_TEST

START_TEST(test_string_forms) {
  ck_assert_str_eq(show_def("\"\""), "(str)");
  ck_assert_str_eq(show_def("\"q\\\"\\\\\\n\\t\""), "(str \"q\"\\\n\t\")");
  ck_assert_str_eq(show_def("\"v={f(x, \"s{y}\") + 1}!\""),
                   "(str \"v=\" (+ (call f x (str \"s\" y)) 1) \"!\")");
  ck_assert_str_eq(show_def("\"{{{a}}}\""), "(str \"{\" a \"}\")");
  ck_assert_str_eq(show_def("\"π = {pi}\""), "(str \"π = \" pi)");
  /* A newline inside the braces does not end the statement. */
  Stmt *s = parse("print(\"{a +\n  b}\")\n");
  ck_assert_int_eq(D.n, 0);
  ck_assert_int_eq(count(s), 1);
}
END_TEST

START_TEST(test_string_errors) {
  Stmt *s = parse("a = \"x \\q y\"\nb = \"abc\nc = \"a } b\"\nd = \"{1 2}\"\ne = 1\n");
  ck_assert_int_eq(D.n, 4);
  check_diag(0, "1:8", "unknown escape sequence '\\q'");
  ck_assert_int_eq(D.items[0].span.end - D.items[0].span.begin, 2);
  check_diag(1, "2:5", "unterminated string");
  check_diag(2, "3:8", "unmatched '}'");
  check_diag(3, "4:9", "expected '}' to close '{' at 4:6, found number '2'");
  /* a and c keep their (reported) strings; b and d are dropped */
  ck_assert_int_eq(count(s), 3);
  ck_assert_str_eq(s->name, "a");
  ck_assert_str_eq(s->next->name, "c");
  ck_assert_str_eq(s->next->next->name, "e");
}
END_TEST

START_TEST(test_unterminated_at_eof) {
  Stmt *s = parse("x = 1\nprint(\"a {b");
  ck_assert_int_eq(D.n, 1);
  check_diag(0, "2:7", "unterminated string");
  ck_assert_int_eq(count(s), 1);
}
END_TEST

/* ---- error recovery */

START_TEST(test_several_errors) {
  Stmt *s = parse("a = 0\n"
                  "x = 1 2\n"
                  "y = (3\n"
                  "z = 4\n"
                  "w = $ $ $\n"
                  "param 5 = 1\n"
                  "f(x) = x\n"
                  "ok = 5\n"
                  "v = (1 +");
  ck_assert_int_eq(D.n, 6);
  check_diag(0, "2:7", "expected an operator or the end of the statement, found number '2'");
  check_diag(1, "3:7", "expected ')' to close '(' at 3:5");
  check_diag(2, "5:5", "unexpected character '$'");
  check_diag(3, "6:7", "expected a name, found number '5'");
  check_diag(4, "7:6", "write 'fn NAME(ARGS) = ...'");
  check_diag(5, "9:9", "unexpected end of file; '(' at 9:5 is not closed");
  ck_assert_int_eq(count(s), 2);
  ck_assert_str_eq(s->name, "a");
  ck_assert_str_eq(s->next->name, "ok");
}
END_TEST

START_TEST(test_no_cascade) {
  /* One report per bad statement, whatever else is wrong in it. */
  parse("print(\"a {f(x\")\nx = 1 2 3 $ 4\ntrain(steps = 1,\n  optimizer = sgd(lr = 1 $),\n"
        "  log_every = 2)\n");
  ck_assert_int_eq(D.n, 3);
  check_diag(0, "1:14", "expected ')' to close '(' at 1:12, found string");
  check_diag(1, "2:7", "found number '2'");
  check_diag(2, "4:26", "unexpected character '$'");
  /* ...but the next statement's own errors are its own. */
  diag_free(&D);
  parse("x = 1 2\n$ = 3\ny = 4 5\n\n\n`\n");
  ck_assert_int_eq(D.n, 4);
  check_diag(0, "1:7", "found number '2'");
  check_diag(1, "2:1", "unexpected character '$'");
  check_diag(2, "3:7", "found number '5'");
  check_diag(3, "6:1", "unexpected character '`'");
}
END_TEST

START_TEST(test_error_messages) {
  /* A newline after '=' continues the statement: the error is at 'fn',
   * and the rest of that line goes with it. */
  parse("x =\nfn f x = 1\n");
  ck_assert_int_eq(D.n, 1);
  check_diag(0, "2:1", "expected an expression, found 'fn'");
  diag_free(&D);

  parse("x = ;\nfn f x = 1\nfn g(1) = 2\ny = [1 2]\nz = 2**3\nparam a\nq = f(1 (2))\n");
  ck_assert_int_eq(D.n, 7);
  check_diag(0, "1:5", "expected an expression, found ';'");
  check_diag(1, "2:6", "expected '(', found name 'x'");
  check_diag(2, "3:6", "expected a name or ')', found number '1'");
  check_diag(3, "4:8", "found number '2'");
  check_diag(4, "5:6", "'**' is not an operator; write '^'");
  check_diag(5, "6:8", "expected '=', found newline");
  check_diag(6, "7:9", "expected ')' to close '(' at 7:6, found '('");
}
END_TEST

/* ---- locations */

START_TEST(test_spans) {
  Stmt *s = parse("# c\ny_pred = a + b * P3(c + d * x, k = 2)\nloss = sum((y_pred - y)^2)\n");
  ck_assert_int_eq(D.n, 0);
  ck_assert_str_eq(at(s->span), "2:1");
  ck_assert_str_eq(text(s->span), "y_pred = a + b * P3(c + d * x, k = 2)");
  ck_assert_str_eq(text(s->name_span), "y_pred");
  const Expr *e = s->value;
  ck_assert_str_eq(text(e->span), "a + b * P3(c + d * x, k = 2)");
  ck_assert_str_eq(text(e->rhs->span), "b * P3(c + d * x, k = 2)");
  const Expr *call = e->rhs->rhs;
  ck_assert_int_eq(call->kind, EX_CALL);
  ck_assert_str_eq(text(call->name_span), "P3");
  ck_assert_str_eq(at(call->name_span), "2:18");
  ck_assert_str_eq(text(call->args->value->span), "c + d * x");
  ck_assert_str_eq(text(call->args->next->name_span), "k");
  ck_assert_str_eq(at(call->args->next->value->span), "2:36");
  const Stmt *l = s->next;
  ck_assert_int_eq(l->kind, ST_LOSS);
  ck_assert_str_eq(text(l->span), "loss = sum((y_pred - y)^2)");
  ck_assert_str_eq(text(l->value->args->value->span), "(y_pred - y)^2");
  ck_assert_str_eq(text(l->value->args->value->lhs->span), "y_pred - y");
  s = parse("param b = -1.0\n");
  ck_assert_str_eq(text(s->value->span), "-1.0");
  ck_assert_str_eq(text(s->name_span), "b");
}
END_TEST

/* ---- the seed program and the dumps */

START_TEST(test_seed) {
  Stmt *s = parse(seed);
  ck_assert_int_eq(D.n, 0);
  StmtKind kinds[] = {ST_FN,    ST_DEF,   ST_DEF, ST_PARAM, ST_PARAM, ST_PARAM,
                      ST_PARAM, ST_DEF,   ST_LOSS, ST_EXPR, ST_EXPR};
  const char *names[] = {"P3", "x", "y", "a", "b", "c", "d", "y_pred", NULL, NULL, NULL};
  int i = 0;
  for (const Stmt *t = s; t; t = t->next, i++) {
    ck_assert_int_lt(i, 11);
    ck_assert_int_eq(t->kind, kinds[i]);
    if (names[i])
      ck_assert_str_eq(t->name, names[i]);
  }
  ck_assert_int_eq(i, 11);
  ck_assert_ptr_nonnull(s->derivs);
  const Stmt *train = s->next->next->next->next->next->next->next->next->next;
  ck_assert_str_eq(show(train->value),
                   "(call train (arg steps 2000) (arg optimizer (call sgd (arg lr 5e-06))) "
                   "(arg log_every 100))");
  ck_assert_str_eq(show(train->next->value),
                   "(call print (str \"Result: y = \" a \" + \" b \" * P3(\" c \" + \" d \" x)\"))");
}
END_TEST

START_TEST(test_lex_dump) {
  char *toks = capture_tokens("x = 2.5 # c\nfn f(t) = -t\n  deriv t = 1\nprint(\"a{x}\\n\", k <= 2)");
  ck_assert_int_eq(D.n, 0);
  ck_assert_str_eq(toks, "1:1 NAME x\n1:3 '='\n1:5 NUMBER 2.5\n1:12 NEWLINE\n"
                         "2:1 'fn'\n2:4 NAME f\n2:5 '('\n2:6 NAME t\n2:7 ')'\n2:9 '='\n"
                         "2:11 '-'\n2:12 NAME t\n"
                         "3:3 'deriv'\n3:9 NAME t\n3:11 '='\n3:13 NUMBER 1\n3:14 NEWLINE\n"
                         "4:1 NAME print\n4:6 '('\n4:7 STR_BEGIN\n4:8 STR_TEXT \"a\"\n"
                         "4:9 INTERP_BEGIN\n4:10 NAME x\n4:11 INTERP_END\n4:12 STR_TEXT \"\\n\"\n"
                         "4:14 STR_END\n4:15 ','\n4:17 NAME k\n4:19 '<='\n4:22 NUMBER 2\n"
                         "4:23 ')'\n4:24 EOF\n");
}
END_TEST

START_TEST(test_ast_dump) {
  Stmt *s = parse("param a = 0.25\nfn f(x) = x^2\n  deriv x = 2 * x\nprint(\"v {a}\", n = -1)\n");
  ck_assert_int_eq(D.n, 0);
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  ast_dump(s, f);
  fclose(f);
  ck_assert_str_eq(out, "(param a @1:1\n"
                        "  (num 0.25 @1:11))\n"
                        "(fn f (x) @2:1\n"
                        "  (^ @2:11\n"
                        "    (name x @2:11)\n"
                        "    (num 2 @2:13))\n"
                        "  (deriv x @3:3\n"
                        "    (* @3:13\n"
                        "      (num 2 @3:13)\n"
                        "      (name x @3:17))))\n"
                        "(expr @4:1\n"
                        "  (call print @4:1\n"
                        "    (str @4:7\n"
                        "      \"v \"\n"
                        "      (name a @4:11))\n"
                        "    (arg n @4:16\n"
                        "      (- @4:20\n"
                        "        (num 1 @4:21)))))\n");
  free(out);
}
END_TEST

/* Matrix syntax: @ binds as * does, ' and [...] bind tightest, slices
 * may leave out either end, lists hold expressions. */
START_TEST(test_matrix_syntax) {
  static const struct { const char *src, *shown; } cases[] = {
      {"a + b @ c * d", "(+ a (* (@ b c) d))"},
      {"-A'^2", "(- (^ (transpose A) 2))"},
      {"A[1, :]", "(index A 1 (: _ _))"},
      {"A[:2, 1:][0]", "(index (index A (: _ 2) (: 1 _)) 0)"},
      {"f(x)[i - 1]'", "(transpose (index (call f x) (- i 1)))"},
      {"[1, -2, [3]]", "(list 1 (- 2) (list 3))"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char src[64];
    snprintf(src, sizeof src, "%s\n", cases[i].src);
    Stmt *st = parse(src);
    ck_assert_msg(D.n == 0, "%s: %d errors", cases[i].src, D.n);
    const char *shown = show(st->value);
    ck_assert_msg(strcmp(shown, cases[i].shown) == 0, "%s parsed as %s, not %s", cases[i].src, shown,
                  cases[i].shown);
  }
}
END_TEST

START_TEST(test_two_sources) {
  /* No state survives a parse: a second source parses as if alone. */
  Stmt *a = parse("x = (1 +\n");
  int errors = D.n;
  Stmt *b = parse("y = 2\n");
  ck_assert_ptr_null(a);
  ck_assert_int_eq(errors, 1);
  ck_assert_int_eq(D.n, 1);
  ck_assert_int_eq(count(b), 1);
  ck_assert_str_eq(at(b->span), "1:1");
}
END_TEST

static Suite *parser_suite(void) {
  Suite *s = suite_create("parser");
  struct {
    const char *name;
    const TTest *tests[8];
  } cases[] = {
      {"numbers", {test_numbers, test_bad_numbers}},
      {"operators", {test_precedence, test_calls, test_chained_comparison}},
      {"newlines", {test_statement_kinds, test_continuation, test_newline_ends_statement,
                    test_separators, test_crlf, test_bare_cr}},
      {"fn", {test_fn_deriv, test_fn_several_derivs, test_deriv_without_fn}},
      {"strings", {test_interpolation, test_string_forms, test_string_errors,
                   test_unterminated_at_eof}},
      {"errors", {test_several_errors, test_no_cascade, test_error_messages}},
      {"locations", {test_spans}},
      {"programs", {test_seed, test_lex_dump, test_ast_dump, test_matrix_syntax, test_two_sources}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, setup, teardown);
    for (int j = 0; cases[i].tests[j]; j++)
      tcase_add_test(tc, cases[i].tests[j]);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(parser_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
