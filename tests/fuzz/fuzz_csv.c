/* fuzz_csv.c — libFuzzer over load_csv: each input is a CSV file, read
 * as the runtime reads it (its shape, then the numbers of its numeric
 * columns: all of them in one pass, and each alone), and then through
 * load_csv in a program (every numeric column, and column 0), as `dlc
 * run` reads it. Besides not crashing, the two passes over the file must
 * agree: a file whose shape was read gives its numeric columns without an
 * error, and the same numbers read together or alone.
 *
 * A crash, a sanitizer report, a hang, a blown memory limit or a broken
 * property (an abort with a message) is a finding.
 *
 * Build and run: tests/fuzz/README.md.
 */
#include "dlc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_CELLS = 1 << 20 };                    /* more is read for its shape only */

static char dir[] = "/tmp/fuzz_csv_XXXXXX", path[64];

static void fail(const char *what, const char *err) {
  fprintf(stderr, "fuzz_csv: %s: %s\n", what, err);
  abort();
}

static bool same(double a, double b) {
  return a == b || (isnan(a) && isnan(b));
}

/* The runtime's two passes agree. */
static void read_columns(DlrtCsv *csv) {
  char err[512];
  int cols[csv->ncols + 1], n = 0;
  for (int c = 0; c < csv->ncols; c++)
    if (dlrt_csv_numeric(csv, c, err, sizeof err) == 0)
      cols[n++] = c;
    else if (!strstr(err, "is not a number"))
      fail("a column's message", err);
  if (n == 0 || csv->nrows * n > MAX_CELLS)
    return;
  double *all = malloc(sizeof(double) * (size_t)(csv->nrows * n));
  double *one = malloc(sizeof(double) * (size_t)csv->nrows);
  if (dlrt_csv_columns(csv, cols, n, all, 0, err, sizeof err) != 0)
    fail("the numeric columns do not read", err);
  for (int k = 0; k < n; k++) {
    if (dlrt_csv_columns(csv, &cols[k], 1, one, 0, err, sizeof err) != 0)
      fail("a numeric column does not read alone", err);
    for (int64_t i = 0; i < csv->nrows; i++)
      if (!same(one[i], all[i * n + k]))
        fail("a column alone differs from the same in all", "");
  }
  free(all);
  free(one);
  for (int c = 0; csv->header && c < csv->ncols; c++)
    if (dlrt_csv_find(csv, csv->header[c]) > c)
      fail("a header name found after its column", csv->header[c]);
}

/* load_csv in a program, through the checker. */
static void load_in_program(void) {
  char text[256];
  snprintf(text, sizeof text, "m = load_csv(\"%s\")\nv = load_csv(\"%s\", column = 0)\n", path, path);
  Arena *a = arena_new();
  Diags d = {0};
  Source *src = source_new(a, "csv.dl", text, strlen(text));
  Stmt *stmts = parse_source(src, a, &d);
  Program *p = program_new(a, &d, (Options){.opt_level = 2});
  sema_program(p, stmts);
  FILE *sink = fopen("/dev/null", "w");
  diag_print(&d, sink);
  fclose(sink);
  program_free(p);
  diag_free(&d);
  arena_free(a);
}

static void remove_files(void) {
  unlink(path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  if (!mkdtemp(dir))
    abort();
  snprintf(path, sizeof path, "%s/in.csv", dir);
  atexit(remove_files);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    abort();
  DlrtCsv csv;
  char err[512];
  if (dlrt_csv_read(path, &csv, err, sizeof err) == 0) {
    if (csv.nrows < 1 || csv.ncols < 1)
      fail("an empty shape read", "");
    read_columns(&csv);
    dlrt_csv_free(&csv);
  } else if (csv.file || csv.header) {
    fail("a failed read left something behind", err);
  }
  load_in_program();
  return 0;
}
