/* csv.c — reading columns of numbers from CSV files (RFC 4180).
 *
 * A file is streamed twice and never held whole. The first pass
 * (dlrt_csv_read) learns its shape: the columns, the data rows, the header,
 * and for each column the first cell that is not a number, with its line;
 * so a bad cell is reported only if its column is used. The second pass
 * (dlrt_csv_columns, on the file kept open) converts the columns asked for
 * straight into the caller's matrix, and checks that the file is still
 * what the first saw. The memory is that of the numbers asked for, whatever
 * the size of the file, and the limits are checked as it is read.
 *
 * A field is either quoted, holding anything including commas, line ends
 * and "" for a quote, or plain, running to the next comma or line end with
 * the spaces around it trimmed. A record's line is the one it starts on,
 * which quoted line ends make different from its row number. What is not
 * CSV text is refused with what it looks like: a NUL byte (UTF-16, or a
 * binary file), a carriage return without a line feed (classic Mac line
 * ends), anything but a regular file (a FIFO would block, a device never
 * end).
 */
#include "dlrt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
  MAX_ROWS = 100000000,               /* a column is a vector: dlc's limit */
  MAX_COLUMNS = 100000,
  FIELD_KEPT = 4096,                  /* a longer field is no number, and its text is cut */
  NAME_KEPT = 256,                    /* a header name's bytes kept */
  CELL_SHOWN = 64,                    /* a bad cell's bytes kept for its message */
};

/* What ends a field. */
enum { END_COMMA, END_LINE, END_FILE, END_ERROR };

typedef struct Reader {
  FILE *f;
  int64_t line;                       /* line of the next byte, 1-based */
  char field[FIELD_KEPT + 1];         /* the field's first FIELD_KEPT bytes */
  size_t flen;                        /* its whole length */
  bool quoted;
  char *err;
  size_t errsize;
} Reader;

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) {
    /* Out of memory is the one failure no caller can report usefully. */
    fputs("dlrt: out of memory\n", stderr);
    abort();
  }
  return p;
}

static int fail(Reader *r, const char *msg) {
  snprintf(r->err, r->errsize, "line %lld: %s", (long long)r->line, msg);
  return END_ERROR;
}

static int not_text(Reader *r) {
  return fail(r, "a NUL byte: this is not UTF-8 text (UTF-16? a binary file?)");
}

static void push(Reader *r, int c) {
  if (r->flen < FIELD_KEPT)
    r->field[r->flen] = (char)c;
  r->flen++;
}

/* The field as a C string: its kept bytes. */
static const char *field_text(Reader *r) {
  r->field[r->flen < FIELD_KEPT ? r->flen : FIELD_KEPT] = '\0';
  return r->field;
}

static bool is_space(int c) {
  return c == ' ' || c == '\t';
}

/* Whether c (just read) ends the field, and how; a CRLF is read whole.
 * -1: it does not. */
static int field_end(Reader *r, int c) {
  if (c == ',')
    return END_COMMA;
  if (c == '\n') {
    r->line++;
    return END_LINE;
  }
  if (c == '\r') {
    if (getc_unlocked(r->f) == '\n') {
      r->line++;
      return END_LINE;
    }
    return fail(r, "a carriage return without a line feed (classic Mac line ends?); save the "
                   "file with LF or CRLF line ends");
  }
  if (c == EOF)
    return ferror(r->f) ? fail(r, strerror(errno)) : END_FILE;
  return -1;
}

static int read_plain(Reader *r, int c) {
  int end;
  while ((end = field_end(r, c)) < 0) {
    if (c == '\0')
      return not_text(r);
    push(r, c);
    c = getc_unlocked(r->f);
  }
  while (r->flen > 0 && r->flen <= FIELD_KEPT && is_space(r->field[r->flen - 1]))
    r->flen--;
  return end;
}

/* Reads from past the opening quote to what ends the field. An
 * unterminated field is reported at the line of its opening quote, since
 * that is where the mistake is. */
static int read_quoted(Reader *r) {
  int64_t open_line = r->line;
  int c;
  for (;;) {
    c = getc_unlocked(r->f);
    if (c == EOF) {
      r->line = open_line;
      return ferror(r->f) ? fail(r, strerror(errno)) : fail(r, "unterminated quoted field");
    }
    if (c == '\0')
      return not_text(r);
    if (c == '"' && (c = getc_unlocked(r->f)) != '"')
      break;
    r->line += c == '\n';
    push(r, c);
  }
  while (is_space(c))
    c = getc_unlocked(r->f);
  int end = field_end(r, c);
  return end >= 0 ? end : fail(r, "text after a closing quote");
}

/* Reads one field into r->field; returns what ended it. */
static int read_field(Reader *r) {
  r->flen = 0;
  int c = getc_unlocked(r->f);
  while (is_space(c))
    c = getc_unlocked(r->f);
  r->quoted = c == '"';
  return r->quoted ? read_quoted(r) : read_plain(r, c);
}

/* A cell is a number when it reads completely as a C double. */
static bool is_number(Reader *r, double *v) {
  if (r->flen > FIELD_KEPT)
    return false;
  const char *s = field_text(r);
  char *end;
  *v = strtod(s, &end);
  return end != s && end == s + r->flen;
}

/* What is done with each field of a record: 0, or -1 with r->err set. */
typedef int (*CellFn)(void *ctx, Reader *r, int64_t col);

/* Reads the next record, handing each field to cell; returns its field
 * count, 0 at the end of the file, -1 on an error. Blank lines (one empty
 * plain field) are skipped. *line: the line it starts on. */
static int64_t read_record(Reader *r, CellFn cell, void *ctx, int64_t *line) {
  int end;
  do {
    *line = r->line;
    end = read_field(r);
    if (end == END_ERROR)
      return -1;
  } while (end == END_LINE && r->flen == 0 && !r->quoted);
  if (end == END_FILE && r->flen == 0 && !r->quoted)
    return 0;
  for (int64_t col = 0;; col++) {
    if (cell(ctx, r, col) < 0)
      return -1;
    if (end != END_COMMA)
      return col + 1;
    if ((end = read_field(r)) == END_ERROR)
      return -1;
  }
}

/* Without O_NONBLOCK, opening a FIFO would wait for a writer. */
int dlrt_open_regular(const char *path, struct stat *st, const char **why) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *why = strerror(errno);
    return -1;
  }
  *why = fstat(fd, st) != 0          ? strerror(errno)
         : S_ISREG(st->st_mode)      ? NULL
         : S_ISDIR(st->st_mode)      ? "it is a directory"
         : S_ISFIFO(st->st_mode)     ? "it is a FIFO, not a regular file"
         : S_ISSOCK(st->st_mode)     ? "it is a socket, not a regular file"
                                     : "it is a device, not a regular file";
  if (*why) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

/* Skips a UTF-8 byte-order mark; refuses UTF-16 text by its mark. */
static int skip_bom(Reader *r) {
  unsigned char b[3];
  size_t n = fread(b, 1, 3, r->f);
  if (n >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF))) {
    snprintf(r->err, r->errsize, "this is UTF-16 text (it starts with a UTF-16 byte-order mark); "
                                 "save it as UTF-8");
    return -1;
  }
  if (!(n == 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0))
    rewind(r->f);
  return 0;
}

/* A copy of the field for a message: at most `max` bytes, control
 * characters escaped, "..." when cut. */
static char *shown(Reader *r, size_t max) {
  const char *s = field_text(r);
  size_t n = r->flen < max ? r->flen : max;
  char *out = xrealloc(NULL, 4 * n + 4);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7F)
      k += (size_t)sprintf(out + k, "\\x%02X", c);
    else
      out[k++] = (char)c;
  }
  strcpy(out + k, r->flen > max ? "..." : "");
  return out;
}

/* ---- the first pass */

typedef struct Scan {
  DlrtCsv *csv;
  int64_t line;                       /* of the record being read */
  bool first;                         /* reading the first record */
  bool all_numbers;                   /* of the first record */
  size_t namecap;
} Scan;

static int scan_cell(void *ctx, Reader *r, int64_t col) {
  Scan *sc = ctx;
  DlrtCsv *csv = sc->csv;
  double v;
  if (sc->first) {
    if (col >= MAX_COLUMNS) {
      snprintf(r->err, r->errsize, "line %lld has more than %d fields", (long long)sc->line,
               MAX_COLUMNS);
      return -1;
    }
    if ((size_t)col >= sc->namecap) {
      sc->namecap = sc->namecap ? 2 * sc->namecap : 16;
      csv->header = xrealloc(csv->header, sc->namecap * sizeof(char *));
    }
    size_t n = r->flen < NAME_KEPT ? r->flen : NAME_KEPT;
    csv->header[col] = memcpy(xrealloc(NULL, n + 1), field_text(r), n);
    csv->header[col][n] = '\0';
    csv->ncols = (int)col + 1;
    sc->all_numbers &= is_number(r, &v);
  } else if (col < csv->ncols && !csv->bad_line[col] && !is_number(r, &v)) {
    csv->bad_line[col] = sc->line;
    csv->bad_cell[col] = shown(r, CELL_SHOWN);
  }
  return 0;
}

/* After the first record: it is a header when any of its fields is not a
 * number, and otherwise the first data row. */
static void first_record_read(Scan *sc) {
  DlrtCsv *csv = sc->csv;
  csv->bad_line = xrealloc(NULL, (size_t)csv->ncols * sizeof(int64_t));
  csv->bad_cell = xrealloc(NULL, (size_t)csv->ncols * sizeof(char *));
  memset(csv->bad_line, 0, (size_t)csv->ncols * sizeof(int64_t));
  memset(csv->bad_cell, 0, (size_t)csv->ncols * sizeof(char *));
  sc->first = false;
  if (!sc->all_numbers)
    return;
  for (int i = 0; i < csv->ncols; i++)
    free(csv->header[i]);
  free(csv->header);
  csv->header = NULL;
  csv->nrows = 1;
}

static int scan(Reader *r, DlrtCsv *csv) {
  Scan sc = {csv, 0, true, true, 0};
  int64_t n;
  while ((n = read_record(r, scan_cell, &sc, &sc.line)) > 0) {
    if (sc.first) {
      first_record_read(&sc);
      continue;
    }
    if (n != csv->ncols) {
      snprintf(r->err, r->errsize, "line %lld has %lld fields, expected %d", (long long)sc.line,
               (long long)n, csv->ncols);
      return -1;
    }
    if (++csv->nrows > MAX_ROWS) {
      snprintf(r->err, r->errsize, "it has more than %d data rows (the limit of a vector)", MAX_ROWS);
      return -1;
    }
  }
  return (int)n;
}

int dlrt_csv_read(const char *path, DlrtCsv *csv, char *err, size_t errsize) {
  memset(csv, 0, sizeof *csv);
  struct stat st;
  const char *why;
  int fd = dlrt_open_regular(path, &st, &why);
  Reader r = {.f = fd < 0 ? NULL : fdopen(fd, "rb"), .line = 1, .err = err, .errsize = errsize};
  if (!r.f) {
    snprintf(err, errsize, "cannot open '%s': %s", path, fd < 0 ? why : strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  csv->file = r.f;
  csv->size = (int64_t)st.st_size;
  csv->mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  if (skip_bom(&r) < 0 || scan(&r, csv) < 0) {
    dlrt_csv_free(csv);
    return -1;
  }
  if (csv->nrows == 0) {
    snprintf(err, errsize, "'%s' has no data rows", path);
    dlrt_csv_free(csv);
    return -1;
  }
  return 0;
}

int dlrt_csv_find(const DlrtCsv *csv, const char *name) {
  if (!csv->header)
    return -1;
  for (int i = 0; i < csv->ncols; i++)
    if (strcmp(csv->header[i], name) == 0)
      return i;
  return -1;
}

int dlrt_csv_numeric(const DlrtCsv *csv, int col, char *err, size_t errsize) {
  if (!csv->bad_line[col])
    return 0;
  long long line = (long long)csv->bad_line[col];
  if (csv->header)
    snprintf(err, errsize, "line %lld, column '%s': '%s' is not a number", line, csv->header[col],
             csv->bad_cell[col]);
  else
    snprintf(err, errsize, "line %lld, column %d: '%s' is not a number", line, col,
             csv->bad_cell[col]);
  return -1;
}

/* ---- the second pass */

typedef struct Fill {
  const DlrtCsv *csv;
  int *first;                         /* [ncols]: the first place of a column in out; -1 */
  int *next;                          /* [n]: the next place of the same column; -1 */
  int n;
  double *row;                        /* out's row being filled */
  int f64;
} Fill;

static int fill_cell(void *ctx, Reader *r, int64_t col) {
  Fill *fl = ctx;
  if (!fl->row || col >= fl->csv->ncols)
    return 0;                         /* the header; or a field too many, which the count finds */
  for (int k = fl->first[col]; k >= 0; k = fl->next[k]) {
    double v;
    if (!is_number(r, &v))
      return -1;
    fl->row[k] = dlrt_round(v, fl->f64);
  }
  return 0;
}

/* Reads the data rows again into fl; false when they are not what the
 * first pass saw. */
static bool fill(Reader *r, Fill *fl, double *out) {
  const DlrtCsv *csv = fl->csv;
  int64_t line, row = csv->header ? -1 : 0, n;
  for (;; row++) {
    if (row > csv->nrows)
      return false;
    fl->row = row >= 0 && row < csv->nrows ? out + row * fl->n : NULL;
    if ((n = read_record(r, fill_cell, fl, &line)) <= 0)
      return n == 0 && row == csv->nrows;
    if (n != csv->ncols)
      return false;
  }
}

int dlrt_csv_columns(DlrtCsv *csv, const int *cols, int n, double *out, int f64, char *err,
                     size_t errsize) {
  for (int k = 0; k < n; k++)
    if (dlrt_csv_numeric(csv, cols[k], err, errsize) != 0)
      return -1;
  struct stat st;
  bool same = fstat(fileno(csv->file), &st) == 0 && (int64_t)st.st_size == csv->size &&
              (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == csv->mtime;
  Fill fl = {csv, xrealloc(NULL, sizeof(int) * (size_t)csv->ncols),
             xrealloc(NULL, sizeof(int) * (size_t)(n + 1)), n, NULL, f64};
  for (int c = 0; c < csv->ncols; c++)
    fl.first[c] = -1;
  for (int k = n - 1; k >= 0; k--) {
    fl.next[k] = fl.first[cols[k]];
    fl.first[cols[k]] = k;
  }
  /* Any error of this pass means the file is no longer what was read. */
  char ignored[256];
  Reader r = {.f = csv->file, .line = 1, .err = ignored, .errsize = sizeof ignored};
  rewind(csv->file);
  same = same && skip_bom(&r) == 0 && fill(&r, &fl, out);
  free(fl.first);
  free(fl.next);
  if (!same)
    snprintf(err, errsize, "the file changed while it was read");
  return same ? 0 : -1;
}

void dlrt_csv_free(DlrtCsv *csv) {
  for (int i = 0; i < csv->ncols; i++) {
    if (csv->header)
      free(csv->header[i]);
    if (csv->bad_cell)
      free(csv->bad_cell[i]);
  }
  free(csv->header);
  free(csv->bad_line);
  free(csv->bad_cell);
  if (csv->file)
    fclose(csv->file);
  memset(csv, 0, sizeof *csv);
}
