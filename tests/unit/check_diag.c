/* check_diag.c — unit tests for src/diag.c.
 *
 * Sources: the line map (line:col of byte offsets on LF and CRLF text, a
 * last line without a newline, empty lines) and span_join. Diagnostics:
 * diag_print's exact text, captured with open_memstream — the
 * `FILE:L:C: level: MSG` header, the source line behind a five-wide line
 * number gutter, the caret under the span's first byte and '~' under the
 * rest of it, clipped to that line; notes and warnings; `dlc: error: MSG`
 * for a diagnostic with no location; and that each diagnostic is printed
 * once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlc.h"

static Arena *A;
static Diags D;

static void setup(void) {
  A = arena_new();
  D = (Diags){0};
}

static void teardown(void) {
  diag_free(&D);
  arena_free(A);
}

static const Source *src(const char *name, const char *text) {
  return source_new(A, name, text, strlen(text));
}

static Span span(const Source *s, int begin, int end) { return (Span){s, begin, end}; }

/* The offset of the first occurrence of needle in the source's text. */
static int at(const Source *s, const char *needle) {
  const char *p = strstr(s->text, needle);
  ck_assert_msg(p != NULL, "'%s' is not in the test source", needle);
  return (int)(p - s->text);
}

/* Everything diag_print writes now (the caller frees). */
static char *printed(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ck_assert_ptr_nonnull(f);
  diag_print(&D, f);
  fclose(f);
  return text;
}

static void expect_printed(const char *want) {
  char *got = printed();
  ck_assert_msg(strcmp(got, want) == 0, "diag_print wrote:\n%s\nexpected:\n%s", got, want);
  free(got);
}

static void expect_line_col(const Source *s, int offset, int line, int col) {
  int l = -1, c = -1;
  source_line_col(s, offset, &l, &c);
  ck_assert_msg(l == line && c == col, "offset %d: got %d:%d, expected %d:%d", offset, l, c, line,
                col);
}

/* ---- sources */

START_TEST(line_col_lf) {
  const Source *s = src("m.dl", "ab\n\ncdef\nx");
  ck_assert_int_eq(s->nlines, 4);
  ck_assert_uint_eq(s->len, 10);
  expect_line_col(s, 0, 1, 1);
  expect_line_col(s, 1, 1, 2);
  expect_line_col(s, 2, 1, 3);                   /* the newline belongs to its line */
  expect_line_col(s, 3, 2, 1);                   /* an empty line */
  expect_line_col(s, 4, 3, 1);
  expect_line_col(s, 7, 3, 4);
  expect_line_col(s, 9, 4, 1);                   /* last line, no newline after it */
  expect_line_col(s, 10, 4, 2);                  /* end of input */
}
END_TEST

START_TEST(line_col_crlf) {
  const Source *s = src("w.dl", "a = 1\r\nbb = 2\r\n\r\nc = x\r\nlast");
  ck_assert_int_eq(s->nlines, 5);
  expect_line_col(s, 0, 1, 1);
  expect_line_col(s, 5, 1, 6);                   /* the '\r' */
  expect_line_col(s, 6, 1, 7);                   /* the '\n' */
  expect_line_col(s, 7, 2, 1);
  expect_line_col(s, at(s, "= 2"), 2, 4);
  expect_line_col(s, at(s, "c ="), 4, 1);
  expect_line_col(s, at(s, "x"), 4, 5);
  expect_line_col(s, at(s, "last"), 5, 1);
  expect_line_col(s, at(s, "last") + 3, 5, 4);
}
END_TEST

START_TEST(line_col_many_lines) {
  /* Enough lines that the binary search takes many steps. */
  char text[10000] = "";
  size_t n = 0;
  for (int i = 0; i < 500; i++)
    n += (size_t)sprintf(text + n, "%*s\n", i % 13, "");
  const Source *s = src("big.dl", text);
  ck_assert_int_eq(s->nlines, 501);
  int off = 0;
  for (int i = 0; i < 500; i++) {
    expect_line_col(s, off, i + 1, 1);
    expect_line_col(s, off + i % 13, i + 1, i % 13 + 1);
    off += i % 13 + 1;
  }
}
END_TEST

START_TEST(empty_source) {
  const Source *s = src("e.dl", "");
  ck_assert_int_eq(s->nlines, 1);
  expect_line_col(s, 0, 1, 1);
}
END_TEST

/* The source keeps its own copy of the name and the text. */
START_TEST(source_copies) {
  char name[] = "n.dl", text[] = "x = 1\n";
  const Source *s = source_new(A, name, text, strlen(text));
  name[0] = 'X';
  text[0] = 'Y';
  ck_assert_str_eq(s->name, "n.dl");
  ck_assert_str_eq(s->text, "x = 1\n");
}
END_TEST

START_TEST(join_spans) {
  const Source *s = src("j.dl", "abcdefghij");
  Span a = span(s, 2, 4), b = span(s, 6, 9), none = {0};
  Span j = span_join(a, b);
  ck_assert_ptr_eq(j.src, s);
  ck_assert_int_eq(j.begin, 2);
  ck_assert_int_eq(j.end, 9);
  j = span_join(b, a);
  ck_assert_int_eq(j.begin, 2);
  ck_assert_int_eq(j.end, 9);
  j = span_join(none, b);
  ck_assert_int_eq(j.begin, 6);
  j = span_join(a, none);
  ck_assert_int_eq(j.end, 4);
}
END_TEST

/* ---- printing */

START_TEST(print_error_with_span) {
  const Source *s = src("model.dl", "x = 1\ny = siz(x)\nz = 2\n");
  int b = at(s, "siz");
  diag_error(&D, span(s, b, b + 3), "undefined function '%s'; did you mean '%s'?", "siz", "size");
  ck_assert_int_eq(D.nerrors, 1);
  expect_printed("model.dl:2:5: error: undefined function 'siz'; did you mean 'size'?\n"
                 "    2 | y = siz(x)\n"
                 "      |     ^~~\n");
}
END_TEST

/* A span that runs past its line is clipped at the line end; the line
 * shown stops before the newline. */
START_TEST(print_clips_span_to_line) {
  const Source *s = src("m.dl", "loss = sum(a *\n  x)\n");
  int b = at(s, "sum");
  diag_error(&D, span(s, b, at(s, "x)") + 2), "bad");
  expect_printed("m.dl:1:8: error: bad\n"
                 "    1 | loss = sum(a *\n"
                 "      |        ^~~~~~~\n");
}
END_TEST

START_TEST(print_crlf_line) {
  const Source *s = src("w.dl", "a = 1\r\nb = a +* 2\r\n");
  int b = at(s, "+*");
  diag_error(&D, span(s, b, b + 20), "oops");  /* runs past the '\r' */
  expect_printed("w.dl:2:7: error: oops\n"
                 "    2 | b = a +* 2\n"
                 "      |       ^~~~\n");
}
END_TEST

/* The last line has no newline; an empty span shows a lone caret. */
START_TEST(print_last_line_and_empty_span) {
  const Source *s = src("e.dl", "x = 1\ny = (2");
  diag_error(&D, span(s, (int)s->len, (int)s->len), "')' expected");
  diag_error(&D, span(s, 0, 1), "one byte");
  expect_printed("e.dl:2:7: error: ')' expected\n"
                 "    2 | y = (2\n"
                 "      |       ^\n"
                 "e.dl:1:1: error: one byte\n"
                 "    1 | x = 1\n"
                 "      | ^\n");
}
END_TEST

/* Tabs before the span stay tabs under it, so the caret lines up. */
START_TEST(print_tabs) {
  const Source *s = src("t.dl", "\tx =\t\tfoo\n");
  int b = at(s, "foo");
  diag_error(&D, span(s, b, b + 3), "m");
  expect_printed("t.dl:1:7: error: m\n"
                 "    1 | \tx =\t\tfoo\n"
                 "      | \t   \t\t^~~\n");
}
END_TEST

/* UTF-8: a character of several bytes takes one column under the line,
 * before the caret and under the span. */
START_TEST(print_utf8) {
  const Source *s = src("u.dl", "print(\"\xc3\xa9t\xc3\xa9\", x\xc2\xb2 + foo)\n");
  int b = at(s, "foo");
  diag_error(&D, span(s, b, b + 3), "m");
  int q = at(s, "x\xc2\xb2");
  diag_error(&D, span(s, q, q + 3), "n");
  char *got = printed();
  ck_assert_msg(strstr(got, "    1 | print(\"\xc3\xa9t\xc3\xa9\", x\xc2\xb2 + foo)\n"
                            "      |                   ^~~\n"),
                "diag_print wrote:\n%s", got);
  ck_assert_msg(strstr(got, "      |              ^~\n"), "diag_print wrote:\n%s", got);
  free(got);
}
END_TEST

START_TEST(print_wide_line_numbers) {
  char text[4000] = "";
  size_t n = 0;
  for (int i = 0; i < 1233; i++)
    text[n++] = '\n';
  strcpy(text + n, "q = 1\n");
  const Source *s = src("l.dl", text);
  diag_error(&D, span(s, (int)n + 4, (int)n + 5), "m");
  expect_printed("l.dl:1234:5: error: m\n"
                 " 1234 | q = 1\n"
                 "      |     ^\n");
}
END_TEST

START_TEST(print_notes_and_warnings) {
  const Source *s = src("d.dl", "param a = 1\nparam a = 2\n");
  int second = at(s, "a = 2");
  diag_error(&D, span(s, second, second + 1), "'%s' is already defined", "a");
  diag_add(&D, DIAG_NOTE, span(s, 6, 7), "'%s' was defined here", "a");
  diag_add(&D, DIAG_WARNING, span(s, 0, 5), "unused");
  ck_assert_int_eq(D.n, 3);
  ck_assert_int_eq(D.nerrors, 1);                /* notes and warnings are not errors */
  expect_printed("d.dl:2:7: error: 'a' is already defined\n"
                 "    2 | param a = 2\n"
                 "      |       ^\n"
                 "d.dl:1:7: note: 'a' was defined here\n"
                 "    1 | param a = 1\n"
                 "      |       ^\n"
                 "d.dl:1:1: warning: unused\n"
                 "    1 | param a = 1\n"
                 "      | ^~~~~\n");
}
END_TEST

START_TEST(print_no_location) {
  diag_error(&D, (Span){0}, "cannot open '%s': %s", "x.dl", "No such file or directory");
  diag_add(&D, DIAG_WARNING, (Span){0}, "w %d", 2);
  diag_add(&D, DIAG_NOTE, (Span){0}, "n");
  expect_printed("dlc: error: cannot open 'x.dl': No such file or directory\n"
                 "dlc: warning: w 2\n"
                 "dlc: note: n\n");
}
END_TEST

/* Each diagnostic is printed once: a second diag_print prints only what
 * was added since. */
START_TEST(print_once) {
  const Source *s = src("o.dl", "a\nb\n");
  diag_error(&D, span(s, 0, 1), "first");
  char *one = printed();
  free(one);
  expect_printed("");
  diag_error(&D, span(s, 2, 3), "second");
  expect_printed("o.dl:2:1: error: second\n"
                 "    2 | b\n"
                 "      | ^\n");
  ck_assert_int_eq(D.nerrors, 2);
  ck_assert_int_eq(D.printed, 2);
}
END_TEST

/* Messages are formatted, copied, and may be long. Past MAX_ERRORS
 * errors the rest are counted, not kept, and neither are their notes; a
 * warning after them is kept. */
START_TEST(long_messages) {
  char name[600];
  memset(name, 'n', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  for (int i = 0; i < 40; i++) {
    diag_error(&D, (Span){0}, "%d %s", i, name);
    diag_add(&D, DIAG_NOTE, (Span){0}, "note %d", i);
  }
  diag_add(&D, DIAG_WARNING, (Span){0}, "a warning");
  ck_assert_int_eq(D.n, 2 * MAX_ERRORS + 1);
  ck_assert_int_eq(D.nerrors, 40);
  ck_assert_int_eq(D.dropped, 40 - MAX_ERRORS);
  Diag *last = &D.items[2 * MAX_ERRORS - 2];
  ck_assert_uint_eq(strlen(last->msg), 3 + sizeof name - 1);
  ck_assert(strncmp(last->msg, "19 nnn", 6) == 0);
  ck_assert_str_eq(D.items[D.n - 1].msg, "a warning");
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  diag_print(&D, f);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(text, "dlc: too many errors: 20 more not shown (the first 20 are above)\n"));
  ck_assert_ptr_null(strchr(text, '\033'));      /* not a terminal: no colour */
  free(text);
  diag_free(&D);
  ck_assert_int_eq(D.n, 0);
  ck_assert_ptr_null(D.items);
}
END_TEST

static Suite *diag_suite(void) {
  Suite *s = suite_create("diag");

  TCase *tc = tcase_create("source");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, line_col_lf);
  tcase_add_test(tc, line_col_crlf);
  tcase_add_test(tc, line_col_many_lines);
  tcase_add_test(tc, empty_source);
  tcase_add_test(tc, source_copies);
  tcase_add_test(tc, join_spans);
  suite_add_tcase(s, tc);

  tc = tcase_create("print");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, print_error_with_span);
  tcase_add_test(tc, print_clips_span_to_line);
  tcase_add_test(tc, print_crlf_line);
  tcase_add_test(tc, print_last_line_and_empty_span);
  tcase_add_test(tc, print_tabs);
  tcase_add_test(tc, print_utf8);
  tcase_add_test(tc, print_wide_line_numbers);
  tcase_add_test(tc, print_notes_and_warnings);
  tcase_add_test(tc, print_no_location);
  tcase_add_test(tc, print_once);
  tcase_add_test(tc, long_messages);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(diag_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
