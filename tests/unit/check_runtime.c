/* check_runtime.c — unit tests for runtime/dlrt.c, runtime/csv.c and
 * runtime/team.c.
 *
 * Number printing is checked two ways: known cases against Python's repr
 * (less the ".0" of integers), and random bit patterns for round-trip and
 * for minimality (one digit fewer must not read back). The generator's
 * expected words come from an independent Python transcription of
 * splitmix64 and xoshiro256**. CSV files are written into a fresh mkdtemp
 * directory per test. The team's barrier is checked by threads that
 * publish and read numbers for thousands of rounds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, open_memstream, M_PI */
#endif
#include "dlrt.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A test-local generator, so the format tests do not lean on dlrt's. */
static uint64_t test_bits(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* ---- format */

static const char *fmt(double v, int f64) {
  static char buf[64];
  int n = dlrt_format(buf, sizeof buf, v, f64);
  ck_assert_int_eq(n, (int)strlen(buf));
  return buf;
}

START_TEST(format_known_f64) {
  static const struct {
    double v;
    const char *text;
  } cases[] = {
      {0.1, "0.1"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.0 / 3, "0.3333333333333333"},
      {2000, "2000"},
      {-1, "-1"},
      {0, "0"},
      {-0.0, "-0"},
      {1e-5, "1e-05"},
      {5e-6, "5e-06"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {1.5e20, "1.5e+20"},
      {1e16, "1e+16"},
      {9007199254740992.0, "9007199254740992"},
      {1e15 + 0.5, "1000000000000000.5"},
      {123.456, "123.456"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {-2.5e-100, "-2.5e-100"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    ck_assert_str_eq(fmt(cases[i].v, 1), cases[i].text);
}
END_TEST

START_TEST(format_known_f32) {
  ck_assert_str_eq(fmt(0.1f, 0), "0.1");
  ck_assert_str_eq(fmt(0.1, 0), "0.1");
  ck_assert_str_eq(fmt(209.95835876464844, 0), "209.95836");
  ck_assert_str_eq(fmt(-6.2158363e-09f, 0), "-6.2158363e-09");
  ck_assert_str_eq(fmt(1e-5f, 0), "1e-05");
  ck_assert_str_eq(fmt(16777216.0f, 0), "16777216");
  ck_assert_str_eq(fmt(3.4028234663852886e38, 0), "3.4028235e+38");
  ck_assert_str_eq(fmt(1.401298464324817e-45, 0), "1e-45");
  ck_assert_str_eq(fmt(1.0f / 3, 0), "0.33333334");
  /* Rounded to float first: 0.1 + 0.2 in double is 0.3 as a float. */
  ck_assert_str_eq(fmt(0.1 + 0.2, 0), "0.3");
}
END_TEST

START_TEST(format_special) {
  for (int f64 = 0; f64 <= 1; f64++) {
    ck_assert_str_eq(fmt(NAN, f64), "nan");
    ck_assert_str_eq(fmt(INFINITY, f64), "inf");
    ck_assert_str_eq(fmt(-INFINITY, f64), "-inf");
  }
}
END_TEST

START_TEST(format_truncates_safely) {
  char buf[4] = "xxx";
  int n = dlrt_format(buf, sizeof buf, 209.95835876464844, 0);
  ck_assert_int_eq(n, 9);
  ck_assert_str_eq(buf, "209");
}
END_TEST

/* The significant digits of a formatted number, leading and trailing zeros
 * dropped: "0.000120" -> 2, "2000" -> 1. */
static int significant_digits(const char *text) {
  char dig[64];
  int n = 0;
  for (const char *p = text; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9' && (n > 0 || *p != '0'))
      dig[n++] = *p;
  while (n > 0 && dig[n - 1] == '0')
    n--;
  return n;
}

/* Text round-trips, and one digit fewer would not. */
static void check_shortest(double v, int f64) {
  const char *text = fmt(v, f64);
  if (f64)
    ck_assert_msg(memcmp(&(double){strtod(text, NULL)}, &v, sizeof v) == 0,
                  "%a printed as %s", v, text);
  else
    ck_assert_msg(strtof(text, NULL) == (float)v, "%a printed as %s", v, text);
  int k = significant_digits(text);
  if (k > 1) {
    char fewer[64];
    snprintf(fewer, sizeof fewer, "%.*e", k - 2, v);
    if (f64)
      ck_assert_msg(strtod(fewer, NULL) != v, "%a: %s is shorter than %s", v, fewer, text);
    else
      ck_assert_msg(strtof(fewer, NULL) != (float)v, "%a: %s is shorter than %s", v, fewer,
                    text);
  }
}

START_TEST(format_random_f64) {
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 50000; i++) {
    uint64_t bits = test_bits(&x);
    double v;
    memcpy(&v, &bits, sizeof v);
    if (isfinite(v))
      check_shortest(v, 1);
  }
}
END_TEST

START_TEST(format_random_f32) {
  uint64_t x = 2463534242ULL;
  for (int i = 0; i < 100000; i++) {
    uint32_t bits = (uint32_t)test_bits(&x);
    float v;
    memcpy(&v, &bits, sizeof v);
    if (isfinite(v))
      check_shortest(v, 0);
  }
}
END_TEST

/* Values of ordinary size, where plain notation and integers are used. */
START_TEST(format_random_moderate) {
  uint64_t x = 123456789ULL;
  for (int i = 0; i < 20000; i++) {
    double scale = pow(10, (double)(test_bits(&x) % 24) - 6);
    double v = (double)(test_bits(&x) >> 11) * 0x1.0p-53 * scale;
    check_shortest(v, 1);
    check_shortest(v, 0);
    check_shortest(-floor(v), 1);
  }
}
END_TEST

/* ---- linspace */

/* PyTorch's formula, one rounding per operation: the volatile product
 * keeps the compiler from fusing the multiply into the add. */
static double torch_f32(float a, float b, int64_t n, int64_t i) {
  float step = (b - a) / (float)(n - 1);
  volatile float t = step * (float)(i < n / 2 ? i : n - 1 - i);
  return i < n / 2 ? a + t : b - t;
}

START_TEST(linspace_f32_symmetric) {
  enum { N = 2000 };
  static double out[N];
  dlrt_linspace(out, -M_PI, M_PI, N, 0);
  ck_assert(out[0] == (double)(float)-M_PI);
  ck_assert(out[N - 1] == (double)(float)M_PI);
  for (int i = 0; i < N; i++) {
    ck_assert(out[i] == -out[N - 1 - i]);
    ck_assert(out[i] == torch_f32((float)-M_PI, (float)M_PI, N, i));
  }
}
END_TEST

START_TEST(linspace_f64) {
  double out[5];
  dlrt_linspace(out, 0, 1, 5, 1);
  for (int i = 0; i < 5; i++)
    ck_assert(out[i] == i * 0.25);
  enum { N = 101 };
  double big[N];
  dlrt_linspace(big, -1.1, 2.3, N, 1);
  ck_assert(big[0] == -1.1);
  ck_assert(big[N - 1] == 2.3);
  double step = (2.3 - -1.1) / (N - 1);
  volatile double t49 = step * 49, t50 = step * 50;
  ck_assert(big[49] == -1.1 + t49);
  ck_assert(big[50] == 2.3 - t50);
}
END_TEST

START_TEST(linspace_one) {
  double out[1];
  dlrt_linspace(out, 0.1, 5, 1, 1);
  ck_assert(out[0] == 0.1);
  dlrt_linspace(out, 0.1, 5, 1, 0);
  ck_assert(out[0] == (double)0.1f);
}
END_TEST

/* ---- rng */

START_TEST(rng_known_words) {
  DlrtRng r;
  dlrt_rng_seed(&r, 0);
  ck_assert_uint_eq(dlrt_rng_next(&r), 0x99ec5f36cb75f2b4ULL);
  ck_assert_uint_eq(dlrt_rng_next(&r), 0xbf6e1f784956452aULL);
  ck_assert_uint_eq(dlrt_rng_next(&r), 0x1a5f849d4933e6e0ULL);
  dlrt_rng_seed(&r, 42);
  ck_assert_uint_eq(dlrt_rng_next(&r), 0x15780b2e0c2ec716ULL);
  ck_assert_uint_eq(dlrt_rng_next(&r), 0x6104d9866d113a7eULL);
  double u[2];
  dlrt_rand(u, 2, 42, 1);
  ck_assert(u[0] == 0.08386297105988216);
  ck_assert(u[1] == 0.3789802506626686);
  double z[2];
  dlrt_randn(z, 2, 7, 1);
  ck_assert_double_eq_tol(z[0], -0.2790239910251981, 1e-15);
  ck_assert_double_eq_tol(z[1], 1.5277231859624536, 1e-15);
}
END_TEST

START_TEST(rng_deterministic) {
  double a[64], b[64], c[64];
  dlrt_randn(a, 64, 1234, 1);
  dlrt_randn(b, 64, 1234, 1);
  dlrt_randn(c, 64, 1235, 1);
  ck_assert(memcmp(a, b, sizeof a) == 0);
  int differ = 0;
  for (int i = 0; i < 64; i++)
    differ += a[i] != c[i];
  ck_assert_int_ge(differ, 60);
  dlrt_rand(a, 64, 5, 0);
  dlrt_rand(b, 64, 5, 0);
  dlrt_rand(c, 64, 6, 0);
  ck_assert(memcmp(a, b, sizeof a) == 0);
  ck_assert(memcmp(a, c, sizeof a) != 0);
}
END_TEST

START_TEST(rng_precision_and_odd_n) {
  double d[9], f[9], odd[7];
  dlrt_randn(d, 9, 99, 1);
  dlrt_randn(f, 9, 99, 0);
  dlrt_randn(odd, 7, 99, 1);
  for (int i = 0; i < 9; i++)
    ck_assert(f[i] == (double)(float)d[i]);
  ck_assert(memcmp(odd, d, sizeof odd) == 0);
}
END_TEST

START_TEST(rng_distributions) {
  enum { N = 100000 };
  static double u[N], z[N];
  dlrt_rand(u, N, 2024, 1);
  dlrt_randn(z, N, 2024, 1);
  double usum = 0, zsum = 0, zsq = 0;
  for (int i = 0; i < N; i++) {
    ck_assert(u[i] >= 0 && u[i] < 1);
    usum += u[i];
    zsum += z[i];
    zsq += z[i] * z[i];
  }
  double mean = zsum / N;
  ck_assert_double_eq_tol(usum / N, 0.5, 0.01);
  /* f32: every value is a float, and none reaches 1 */
  dlrt_rand(u, N, 2024, 0);
  double fsum = 0;
  for (int i = 0; i < N; i++) {
    ck_assert(u[i] >= 0 && u[i] < 1 && u[i] == (double)(float)u[i]);
    fsum += u[i];
  }
  ck_assert_double_eq_tol(fsum / N, 0.5, 0.01);
  ck_assert_double_eq_tol(mean, 0, 0.02);
  ck_assert_double_eq_tol(zsq / N - mean * mean, 1, 0.02);
}
END_TEST

START_TEST(log_line) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  DlrtLog log = {out, 0, .diverged_step = -1};
  dlrt_log(&log, 0, 209.95835876464844);
  log.f64 = 1;
  dlrt_log(&log, 1500, 1e-5);
  fclose(out);
  ck_assert_str_eq(text, "0 209.95836\n1500 1e-05\n");
  free(text);
}
END_TEST

/* ---- csv */

static char tmpdir[64];
static char err[256];

static void csv_setup(void) {
  strcpy(tmpdir, "/tmp/check_runtime_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void csv_teardown(void) {
  DIR *d = opendir(tmpdir);
  for (struct dirent *e; (e = readdir(d));) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
    if (e->d_name[0] != '.')
      unlink(path);
  }
  closedir(d);
  rmdir(tmpdir);
}

/* Writes text to NAME in the test's directory; returns the path. */
static const char *write_csv(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  return path;
}

/* Reads a file that must fail; returns its message. */
static const char *csv_error(const char *text) {
  DlrtCsv csv;
  err[0] = '\0';
  ck_assert_int_eq(dlrt_csv_read(write_csv("bad.csv", text), &csv, err, sizeof err), -1);
  ck_assert_ptr_null(csv.header);
  ck_assert_ptr_null(csv.file);
  return err;
}

/* Column col of csv into out; dlrt_csv_columns's result. */
static int column(DlrtCsv *csv, int col, double *out, int f64) {
  return dlrt_csv_columns(csv, &col, 1, out, f64, err, sizeof err);
}

START_TEST(csv_header_by_name) {
  DlrtCsv csv;
  ck_assert_int_eq(dlrt_csv_read(write_csv("a.csv", "x,y\n1,2.5\n3,-4e2\n"), &csv, err,
                                 sizeof err),
                   0);
  ck_assert_int_eq(csv.ncols, 2);
  ck_assert_int_eq(csv.nrows, 2);
  ck_assert_ptr_nonnull(csv.header);
  ck_assert_str_eq(csv.header[1], "y");
  ck_assert_int_eq(dlrt_csv_find(&csv, "y"), 1);
  ck_assert_int_eq(dlrt_csv_find(&csv, "z"), -1);
  double y[2];
  ck_assert_int_eq(column(&csv, 1, y, 1), 0);
  ck_assert(y[0] == 2.5 && y[1] == -400);
  /* Several columns, one twice, in one pass: a matrix row by row. */
  int cols[] = {1, 0, 1};
  double m[6];
  ck_assert_int_eq(dlrt_csv_columns(&csv, cols, 3, m, 1, err, sizeof err), 0);
  ck_assert(m[0] == 2.5 && m[1] == 1 && m[2] == 2.5 && m[3] == -400 && m[4] == 3 && m[5] == -400);
  dlrt_csv_free(&csv);
}
END_TEST

START_TEST(csv_no_header_by_index) {
  DlrtCsv csv;
  const char *path = write_csv("a.csv", " 1 , 0.1\n3,\t4 \nnan,inf\n");
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), 0);
  ck_assert_ptr_null(csv.header);
  ck_assert_int_eq(csv.nrows, 3);
  ck_assert_int_eq(dlrt_csv_find(&csv, "1"), -1);
  double v[3];
  ck_assert_int_eq(column(&csv, 1, v, 0), 0);
  ck_assert(v[0] == (double)0.1f && v[1] == 4 && isinf(v[2]));
  ck_assert_int_eq(column(&csv, 0, v, 1), 0);
  ck_assert(v[0] == 1 && v[1] == 3 && isnan(v[2]));
  dlrt_csv_free(&csv);
}
END_TEST

START_TEST(csv_quoted) {
  DlrtCsv csv;
  const char *text = "name,value\n"
                     "\"a,b\",1\n"
                     "\"say \"\"hi\"\"\" ,2\n"
                     "\"two\nlines\",\"3\"\n"
                     "\"\",4\n"
                     "x,five\n";
  ck_assert_int_eq(dlrt_csv_read(write_csv("q.csv", text), &csv, err, sizeof err), 0);
  ck_assert_int_eq(csv.nrows, 5);
  ck_assert_int_eq(dlrt_csv_numeric(&csv, 0, err, sizeof err), -1);
  ck_assert_str_eq(err, "line 2, column 'name': 'a,b' is not a number");
  /* The quoted line end moves the lines after it. */
  double v[5];
  ck_assert_int_eq(column(&csv, 1, v, 1), -1);
  ck_assert_str_eq(err, "line 7, column 'value': 'five' is not a number");
  dlrt_csv_free(&csv);
  ck_assert_int_eq(dlrt_csv_read(write_csv("q.csv", "x\n\"say \"\"hi\"\"\"\n1\n"), &csv, err,
                                 sizeof err),
                   0);
  ck_assert_int_eq(dlrt_csv_numeric(&csv, 0, err, sizeof err), -1);
  ck_assert_str_eq(err, "line 2, column 'x': 'say \"hi\"' is not a number");
  dlrt_csv_free(&csv);
}
END_TEST

START_TEST(csv_crlf_and_blank_lines) {
  DlrtCsv csv;
  const char *path = write_csv("c.csv", "a,b\r\n1,2\r\n\r\n  \n3,\"4\r\n5\"\r\n\n6,7");
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), 0);
  ck_assert_int_eq(csv.nrows, 3);
  double v[3];
  ck_assert_int_eq(column(&csv, 0, v, 1), 0);
  ck_assert(v[0] == 1 && v[1] == 3 && v[2] == 6);
  /* A control character is shown escaped. */
  ck_assert_int_eq(column(&csv, 1, v, 1), -1);
  ck_assert_str_eq(err, "line 5, column 'b': '4\\x0D\\x0A5' is not a number");
  dlrt_csv_free(&csv);
  path = write_csv("c.csv", "a\r\n\r\n1\r\n\"\r\n\"\r\n\r\nx");
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), 0);
  ck_assert_int_eq(csv.nrows, 3);
  ck_assert_int_eq(column(&csv, 0, v, 1), -1);
  ck_assert_str_eq(err, "line 4, column 'a': '\\x0D\\x0A' is not a number");
  dlrt_csv_free(&csv);
}
END_TEST

START_TEST(csv_bom) {
  DlrtCsv csv;
  const char *path = write_csv("b.csv", "\xEF\xBB\xBFx,y\n1,2\n");
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), 0);
  ck_assert_str_eq(csv.header[0], "x");
  ck_assert_int_eq(dlrt_csv_find(&csv, "x"), 0);
  dlrt_csv_free(&csv);
  /* Without a header the BOM must not spoil the first number. */
  ck_assert_int_eq(dlrt_csv_read(write_csv("n.csv", "\xEF\xBB\xBF" "1,2\n"), &csv, err,
                                 sizeof err),
                   0);
  ck_assert_ptr_null(csv.header);
  double v[1];
  ck_assert_int_eq(column(&csv, 0, v, 1), 0);
  ck_assert(v[0] == 1);
  dlrt_csv_free(&csv);
}
END_TEST

START_TEST(csv_missing_file) {
  DlrtCsv csv;
  char path[256], want[512];
  snprintf(path, sizeof path, "%s/nope.csv", tmpdir);
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), -1);
  snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path);
  ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(csv_errors) {
  ck_assert_str_eq(csv_error("a,b\n1,2\n3\n"), "line 3 has 1 fields, expected 2");
  ck_assert_str_eq(csv_error("a,b\n\"1\n\",2\n3,4,5\n"), "line 4 has 3 fields, expected 2");
  ck_assert_str_eq(csv_error("a\n1\n\"abc\n2\n"), "line 3: unterminated quoted field");
  ck_assert_str_eq(csv_error("a,b\n\"1\"x,2\n"), "line 2: text after a closing quote");
  char want[512];
  snprintf(want, sizeof want, "'%s/bad.csv' has no data rows", tmpdir);
  ck_assert_str_eq(csv_error(""), want);
  ck_assert_str_eq(csv_error("\n\r\n  \n"), want);
  ck_assert_str_eq(csv_error("x,y\n"), want);
}
END_TEST

/* What is not CSV text says what it looks like. */
START_TEST(csv_not_text) {
  const char *cr = "a carriage return without a line feed";
  ck_assert_ptr_nonnull(strstr(csv_error("x,y\r1,2\r3,4\r"), cr));
  ck_assert_ptr_eq(strstr(csv_error("x,y\n1,2\n3,4\r5,6\n"), cr), err + strlen("line 3: "));
  ck_assert(strncmp(err, "line 3: ", 8) == 0);
  DlrtCsv csv;
  err[0] = '\0';
  const char nul[] = "x\n1\0002\n";
  FILE *f = fopen(write_csv("nul.csv", ""), "wb");
  fwrite(nul, 1, sizeof nul - 1, f);
  fclose(f);
  char path[256];
  snprintf(path, sizeof path, "%s/nul.csv", tmpdir);
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), -1);
  ck_assert_str_eq(err, "line 2: a NUL byte: this is not UTF-8 text (UTF-16? a binary file?)");
  const char utf16le[] = "x\0,\0y\0\n\0001\0,\0002\0\n\0";
  f = fopen(path, "wb");
  fwrite(utf16le, 1, sizeof utf16le - 1, f);
  fclose(f);
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), -1);
  ck_assert_str_eq(err, "line 1: a NUL byte: this is not UTF-8 text (UTF-16? a binary file?)");
  ck_assert_str_eq(csv_error("\xFF\xFEx\0\n\0"),
                   "this is UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8");
}
END_TEST

/* Only regular files: a FIFO would block until a writer came, a device
 * never end. */
START_TEST(csv_not_regular) {
  DlrtCsv csv;
  char want[512];
  ck_assert_int_eq(dlrt_csv_read(tmpdir, &csv, err, sizeof err), -1);
  snprintf(want, sizeof want, "cannot open '%s': it is a directory", tmpdir);
  ck_assert_str_eq(err, want);
  char fifo[256];
  snprintf(fifo, sizeof fifo, "%s/fifo.csv", tmpdir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_int_eq(dlrt_csv_read(fifo, &csv, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "it is a FIFO, not a regular file"));
  ck_assert_int_eq(dlrt_csv_read("/dev/zero", &csv, err, sizeof err), -1);
  ck_assert_str_eq(err, "cannot open '/dev/zero': it is a device, not a regular file");
}
END_TEST

START_TEST(csv_bad_cells) {
  DlrtCsv csv;
  double v[3];
  const char *path = write_csv("h.csv", "x,y\n1,2\n3,abc\n4,\n");
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), 0);
  ck_assert_int_eq(column(&csv, 1, v, 1), -1);
  ck_assert_str_eq(err, "line 3, column 'y': 'abc' is not a number");
  ck_assert_int_eq(column(&csv, 0, v, 1), 0);
  dlrt_csv_free(&csv);

  path = write_csv("e.csv", "1,2,3\n4,5,\n");
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), 0);
  ck_assert_int_eq(column(&csv, 2, v, 1), -1);
  ck_assert_str_eq(err, "line 2, column 2: '' is not a number");
  /* A short buffer gets a truncated message, never an overflow. */
  char small[8];
  ck_assert_int_eq(dlrt_csv_numeric(&csv, 2, small, sizeof small), -1);
  ck_assert_str_eq(small, "line 2,");
  dlrt_csv_free(&csv);
}
END_TEST

/* A field longer than is kept is no number, and its text is cut; a line of
 * more fields than the limit stops the reading. */
START_TEST(csv_long_fields) {
  char *text = malloc(700000);
  strcpy(text, "x\n1\n");
  memset(text + 4, '7', 5000);
  strcpy(text + 5004, "\n");
  DlrtCsv csv;
  ck_assert_int_eq(dlrt_csv_read(write_csv("l.csv", text), &csv, err, sizeof err), 0);
  ck_assert_int_eq(dlrt_csv_numeric(&csv, 0, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "line 3, column 'x': '7777777"));
  ck_assert_ptr_nonnull(strstr(err, "777...' is not a number"));
  dlrt_csv_free(&csv);
  for (int i = 0; i < 100001; i++)
    memcpy(text + 2 * i, "1,", 2);
  strcpy(text + 200001, "\n");
  ck_assert_str_eq(csv_error(text), "line 1 has more than 100000 fields");
  free(text);
}
END_TEST

/* The second pass finds the file as the first left it, or says so. */
START_TEST(csv_changed) {
  DlrtCsv csv;
  const char *path = write_csv("g.csv", "x\n1\n2\n");
  ck_assert_int_eq(dlrt_csv_read(path, &csv, err, sizeof err), 0);
  write_csv("g.csv", "x\n1\n2\n3\n");
  double v[3];
  ck_assert_int_eq(column(&csv, 0, v, 1), -1);
  ck_assert_str_eq(err, "the file changed while it was read");
  dlrt_csv_free(&csv);
}
END_TEST

/* ---- the team */

enum { TEAM_ROUNDS = 2000, TEAM_MAX = 8 };

typedef struct TeamProbe {
  DlrtTeam *team;
  int nthreads;
  int64_t slot[2][TEAM_MAX];                     /* published per round, by round parity */
  int ran[TEAM_MAX];                             /* times each thread number ran */
  int wrong[TEAM_MAX];                           /* values a thread read that were not yet there */
} TeamProbe;

/* Each round every thread publishes a number, meets the others, and reads
 * every thread's number of that round: all must be there. The parity
 * double buffer is the one the compiled code uses. */
static void team_probe(void *arg, int k) {
  TeamProbe *p = arg;
  p->ran[k]++;
  for (int r = 0; r < TEAM_ROUNDS; r++) {
    p->slot[r & 1][k] = (int64_t)r * TEAM_MAX + k;
    dlrt_team_barrier(p->team);
    for (int j = 0; j < p->nthreads; j++)
      p->wrong[k] += p->slot[r & 1][j] != (int64_t)r * TEAM_MAX + j;
  }
}

START_TEST(team_barrier_rounds) {
  int n = _i + 2;                                /* 2, 3, 4 threads */
  TeamProbe p = {.team = dlrt_team_new(n), .nthreads = n};
  ck_assert_ptr_nonnull(p.team);
  ck_assert_int_eq(dlrt_team_size(p.team), n);
  for (int run = 0; run < 3; run++)             /* the same threads, run again */
    dlrt_team_run(p.team, team_probe, &p);
  for (int k = 0; k < n; k++) {
    ck_assert_int_eq(p.ran[k], 3);
    ck_assert_int_eq(p.wrong[k], 0);
  }
  dlrt_team_free(p.team);
}
END_TEST

START_TEST(team_of_one) {
  TeamProbe p = {.team = dlrt_team_new(1), .nthreads = 1};
  dlrt_team_run(p.team, team_probe, &p);
  ck_assert_int_eq(p.ran[0], 1);
  ck_assert_int_eq(p.wrong[0], 0);
  dlrt_team_free(p.team);
  ck_assert_int_ge(dlrt_cpu_count(), 1);
}
END_TEST

static Suite *runtime_suite(void) {
  Suite *s = suite_create("runtime");

  TCase *tc = tcase_create("format");
  tcase_add_test(tc, format_known_f64);
  tcase_add_test(tc, format_known_f32);
  tcase_add_test(tc, format_special);
  tcase_add_test(tc, format_truncates_safely);
  tcase_add_test(tc, format_random_f64);
  tcase_add_test(tc, format_random_f32);
  tcase_add_test(tc, format_random_moderate);
  tcase_add_test(tc, log_line);
  suite_add_tcase(s, tc);

  tc = tcase_create("linspace");
  tcase_add_test(tc, linspace_f32_symmetric);
  tcase_add_test(tc, linspace_f64);
  tcase_add_test(tc, linspace_one);
  suite_add_tcase(s, tc);

  tc = tcase_create("rng");
  tcase_add_test(tc, rng_known_words);
  tcase_add_test(tc, rng_deterministic);
  tcase_add_test(tc, rng_precision_and_odd_n);
  tcase_add_test(tc, rng_distributions);
  suite_add_tcase(s, tc);

  tc = tcase_create("csv");
  tcase_add_checked_fixture(tc, csv_setup, csv_teardown);
  tcase_add_test(tc, csv_header_by_name);
  tcase_add_test(tc, csv_no_header_by_index);
  tcase_add_test(tc, csv_quoted);
  tcase_add_test(tc, csv_crlf_and_blank_lines);
  tcase_add_test(tc, csv_bom);
  tcase_add_test(tc, csv_missing_file);
  tcase_add_test(tc, csv_errors);
  tcase_add_test(tc, csv_bad_cells);
  tcase_add_test(tc, csv_not_text);
  tcase_add_test(tc, csv_not_regular);
  tcase_add_test(tc, csv_long_fields);
  tcase_add_test(tc, csv_changed);
  suite_add_tcase(s, tc);

  tc = tcase_create("team");
  tcase_add_loop_test(tc, team_barrier_rounds, 0, 3);
  tcase_add_test(tc, team_of_one);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(runtime_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failures = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failures != 0;
}
