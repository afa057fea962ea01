/* check_util.c — unit tests for src/util.c.
 *
 * The arena is what every phase allocates from, so its promises are checked
 * directly: memory comes back zeroed (even when the arena reuses a chunk
 * after many allocations), 16-aligned, never overlapping, and blocks larger
 * than a chunk work. Then the text helpers (arena_printf, arena_strndup, the
 * growable Buf) and the edit distance behind "did you mean" suggestions,
 * against values worked out by hand.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dlc.h"

static Arena *A;

static void setup(void) { A = arena_new(); }
static void teardown(void) {
  arena_free(A);
  A = NULL;
}

/* The index of the first byte of p[0..n) that is not `byte`, or n. (One
 * assertion per block, not per byte: check's assertions are not free.) */
static size_t first_not(const unsigned char *p, size_t n, unsigned char byte) {
  size_t i = 0;
  while (i < n && p[i] == byte)
    i++;
  return i;
}

/* ---- arena */

START_TEST(arena_zeroed_and_aligned) {
  /* Sizes that are not multiples of 16, so that a missing round-up would
   * misalign the next block. */
  static const size_t sizes[] = {1, 3, 7, 15, 16, 17, 31, 33, 100, 1000, 4095};
  for (int round = 0; round < 50; round++)
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      unsigned char *p = arena_alloc(A, sizes[k]);
      ck_assert_ptr_nonnull(p);
      ck_assert_msg((uintptr_t)p % 16 == 0, "block of %zu bytes at %p is not 16-aligned",
                    sizes[k], (void *)p);
      size_t i = first_not(p, sizes[k], 0);
      ck_assert_msg(i == sizes[k], "byte %zu of a %zu-byte block is %d, not 0", i, sizes[k], p[i]);
      memset(p, 0xAB, sizes[k]);                 /* dirty it: the next block must still be zero */
    }
}
END_TEST

/* Memory the heap hands back dirty (from a freed arena) still comes out
 * of the next arena zeroed. */
START_TEST(arena_zeroed_after_reuse) {
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 200; i++) {
      size_t n = 100 + (size_t)i * 13;
      unsigned char *p = arena_alloc(A, n);
      size_t k = first_not(p, n, 0);
      ck_assert_msg(k == n, "round %d, block %d: byte %zu is %d, not 0", round, i, k, p[k]);
      memset(p, 0xEE, n);
    }
    arena_free(A);
    A = arena_new();
  }
}
END_TEST

/* Blocks never overlap: each one keeps the pattern written into it. */
START_TEST(arena_blocks_disjoint) {
  enum { N = 3000 };
  unsigned char *blocks[N];
  size_t sizes[N];
  for (int i = 0; i < N; i++) {
    sizes[i] = 1 + (size_t)(i * 37 % 200);
    blocks[i] = arena_alloc(A, sizes[i]);
    memset(blocks[i], i & 0xFF, sizes[i]);
  }
  for (int i = 0; i < N; i++) {
    size_t k = first_not(blocks[i], sizes[i], (unsigned char)(i & 0xFF));
    ck_assert_msg(k == sizes[i], "block %d byte %zu was overwritten", i, k);
  }
}
END_TEST

/* A block larger than a chunk (64 KiB) gets its own chunk; small blocks
 * after it still work and are zeroed. */
START_TEST(arena_large_blocks) {
  size_t big = 1u << 20;
  unsigned char *small = arena_alloc(A, 24);
  memset(small, 1, 24);
  unsigned char *p = arena_alloc(A, big);
  ck_assert((uintptr_t)p % 16 == 0);
  size_t at = first_not(p, big, 0);
  ck_assert_msg(at == big, "byte %zu of a 1 MiB block is not 0", at);
  memset(p, 0xCD, big);
  unsigned char *q = arena_alloc(A, 64 * 1024 + 1);
  at = first_not(q, 64 * 1024 + 1, 0);
  ck_assert_msg(at == 64 * 1024 + 1, "byte %zu of a chunk-and-a-byte block is not 0", at);
  unsigned char *after = arena_alloc(A, 40);
  ck_assert_uint_eq(first_not(after, 40, 0), 40);
  /* The earlier blocks are intact. */
  ck_assert_uint_eq(first_not(small, 24, 1), 24);
  ck_assert(p[0] == 0xCD && p[big - 1] == 0xCD);
}
END_TEST

/* arena_alloc(0) is a valid (possibly empty) block that does not break
 * the blocks around it. */
START_TEST(arena_zero_size) {
  char *a = arena_alloc(A, 8);
  strcpy(a, "abcdefg");
  void *z = arena_alloc(A, 0);
  char *b = arena_alloc(A, 8);
  ck_assert_ptr_nonnull(z);
  ck_assert_str_eq(a, "abcdefg");
  ck_assert(b[0] == 0);
}
END_TEST

START_TEST(arena_strings) {
  char *s = arena_strndup(A, "hello, world", 5);
  ck_assert_str_eq(s, "hello");
  char *t = arena_strdup(A, "dl");
  ck_assert_str_eq(t, "dl");
  ck_assert_ptr_ne(t, (void *)"dl");
  char *e = arena_strndup(A, "xyz", 0);
  ck_assert_str_eq(e, "");
}
END_TEST

START_TEST(arena_printf_formats) {
  ck_assert_str_eq(arena_printf(A, "grad %s", "a"), "grad a");
  ck_assert_str_eq(arena_printf(A, "%d:%d: %s", 3, 17, "error"), "3:17: error");
  ck_assert_str_eq(arena_printf(A, "%.3f|%5s|%-3d|", 1.0 / 3, "ab", 7), "0.333|   ab|7  |");
  ck_assert_str_eq(arena_printf(A, "%s", ""), "");
  /* Longer than any small internal buffer. */
  char want[5001];
  memset(want, 'q', 5000);
  want[5000] = '\0';
  char *got = arena_printf(A, "%s", want);
  ck_assert_uint_eq(strlen(got), 5000);
  ck_assert_str_eq(got, want);
}
END_TEST

/* ---- Buf */

START_TEST(buf_grows) {
  Buf b = {0};
  buf_puts(&b, "");
  ck_assert_ptr_nonnull(b.data);
  ck_assert_str_eq(b.data, "");
  ck_assert_uint_eq(b.len, 0);
  char want[20000] = "";
  size_t n = 0;
  for (int i = 0; i < 2000; i++) {
    if (i % 2) {
      buf_printf(&b, "%d,", i);
      n += (size_t)sprintf(want + n, "%d,", i);
    } else {
      buf_puts(&b, "x");
      want[n++] = 'x';
      want[n] = '\0';
    }
    ck_assert_uint_eq(b.len, n);
    ck_assert_uint_eq(strlen(b.data), b.len);
    ck_assert(b.cap > b.len);                  /* room for the NUL */
  }
  ck_assert_str_eq(b.data, want);
  buf_free(&b);
  ck_assert_ptr_null(b.data);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_uint_eq(b.cap, 0);
  /* A freed Buf can be used again. */
  buf_printf(&b, "%s=%d", "n", 3);
  ck_assert_str_eq(b.data, "n=3");
  buf_free(&b);
}
END_TEST

/* One append much larger than the current capacity. */
START_TEST(buf_big_append) {
  Buf b = {0};
  buf_puts(&b, "ab");
  char big[3000];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  buf_puts(&b, big);
  ck_assert_uint_eq(b.len, 2 + sizeof big - 1);
  ck_assert(b.data[0] == 'a' && b.data[1] == 'b' && b.data[2] == 'z');
  ck_assert(b.data[b.len] == '\0' && b.data[b.len - 1] == 'z');
  buf_printf(&b, "%s", big);
  ck_assert_uint_eq(b.len, 2 + 2 * (sizeof big - 1));
  ck_assert_uint_eq(strlen(b.data), b.len);
  buf_free(&b);
}
END_TEST

/* ---- edit distance */

START_TEST(edit_distance_values) {
  static const struct {
    const char *a, *b;
    int d;
  } cases[] = {
      {"", "", 0},          {"", "abc", 3},         {"abc", "", 3},
      {"size", "size", 0},  {"siz", "size", 1},     {"size", "sise", 1},
      {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"sgd", "adam", 4},
      {"lienspace", "linspace", 1}, {"intention", "execution", 5},
      {"log_every", "logevery", 1}, {"Sin", "sin", 1},
      /* A swap of two neighbours is one edit (optimal string alignment:
       * a swapped pair is not edited again, so "ca" -> "abc" is 3). */
      {"ab", "ba", 1}, {"mena", "mean", 1}, {"lsos", "loss", 1}, {"lsso", "loss", 2}, {"ca", "abc", 3},
      {"abcd", "badc", 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ck_assert_msg(edit_distance(cases[i].a, cases[i].b) == cases[i].d,
                  "edit_distance(\"%s\", \"%s\") = %d, expected %d", cases[i].a, cases[i].b,
                  edit_distance(cases[i].a, cases[i].b), cases[i].d);
    ck_assert_int_eq(edit_distance(cases[i].b, cases[i].a), cases[i].d);
  }
}
END_TEST

/* Names longer than 64 characters are never "close" to anything. */
START_TEST(edit_distance_long_names) {
  char a[80], b[80];
  memset(a, 'a', 70);
  a[70] = '\0';
  memcpy(b, a, sizeof a);
  ck_assert_int_ge(edit_distance(a, b), 1000);
  ck_assert_int_ge(edit_distance(a, "a"), 1000);
  a[64] = '\0';
  b[64] = '\0';
  b[63] = 'b';
  ck_assert_int_eq(edit_distance(a, b), 1);      /* 64 is still measured */
}
END_TEST

static Suite *util_suite(void) {
  Suite *s = suite_create("util");

  TCase *tc = tcase_create("arena");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, arena_zeroed_and_aligned);
  tcase_add_test(tc, arena_zeroed_after_reuse);
  tcase_add_test(tc, arena_blocks_disjoint);
  tcase_add_test(tc, arena_large_blocks);
  tcase_add_test(tc, arena_zero_size);
  tcase_add_test(tc, arena_strings);
  tcase_add_test(tc, arena_printf_formats);
  suite_add_tcase(s, tc);

  tc = tcase_create("buf");
  tcase_add_test(tc, buf_grows);
  tcase_add_test(tc, buf_big_append);
  suite_add_tcase(s, tc);

  tc = tcase_create("edit_distance");
  tcase_add_test(tc, edit_distance_values);
  tcase_add_test(tc, edit_distance_long_names);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(util_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
