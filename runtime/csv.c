/* csv.c — reading CSV files (RFC 4180) into cells of text.
 *
 * The whole file is read into memory and split in one pass: a field is
 * either quoted, holding anything including commas, line ends and "" for a
 * quote, or plain, running to the next comma or line end with the spaces
 * around it trimmed. Cells stay text until a column is asked for, so a bad
 * cell is reported only if its column is used, and then with its line.
 * Each record remembers the line it starts on, which quoted line ends make
 * different from its row number.
 */
#include "dlrt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) {
    /* Out of memory is the one failure no caller can report usefully. */
    fputs("dlrt: out of memory\n", stderr);
    abort();
  }
  return p;
}

/* Grows *cap (counted in elements) so that one more fits after len. */
static void *reserve(void *p, size_t len, size_t *cap, size_t elem) {
  if (len < *cap)
    return p;
  *cap = *cap ? 2 * *cap : 64;
  return xrealloc(p, *cap * elem);
}

typedef struct {
  const char *p, *end;
  int64_t line;         /* line of p, 1-based */
  char *field;          /* text of the field being read */
  size_t flen, fcap;
  DlrtCsv *csv;         /* cells and lines are appended here */
  size_t ncells, cellcap, linecap;
  char *err;
  size_t errsize;
} Reader;

static int is_number(const char *s, double *v) {
  char *end;
  *v = strtod(s, &end);
  return end != s && *end == '\0';
}

static int is_space(char c) {
  return c == ' ' || c == '\t';
}

/* The length of the line end at p: 1 for LF, 2 for CRLF, 0 for none. */
static int line_end(const Reader *r) {
  if (r->p < r->end && *r->p == '\n')
    return 1;
  if (r->end - r->p >= 2 && r->p[0] == '\r' && r->p[1] == '\n')
    return 2;
  return 0;
}

static int at_field_end(const Reader *r) {
  return r->p == r->end || *r->p == ',' || line_end(r);
}

static void push_char(Reader *r, char c) {
  r->field = reserve(r->field, r->flen, &r->fcap, 1);
  r->field[r->flen++] = c;
}

static void read_plain(Reader *r) {
  while (!at_field_end(r))
    push_char(r, *r->p++);
  while (r->flen > 0 && is_space(r->field[r->flen - 1]))
    r->flen--;
}

/* Reads from the opening quote to past the closing one and the spaces after
 * it. An unterminated field is reported at the line of its opening quote,
 * since that is where the mistake is. */
static int read_quoted(Reader *r) {
  int64_t open_line = r->line;
  r->p++;
  for (;;) {
    if (r->p == r->end) {
      snprintf(r->err, r->errsize, "line %lld: unterminated quoted field",
               (long long)open_line);
      return -1;
    }
    char c = *r->p++;
    if (c == '"') {
      if (r->p == r->end || *r->p != '"')
        break;
      r->p++;
    } else if (c == '\n') {
      r->line++;
    }
    push_char(r, c);
  }
  while (r->p < r->end && is_space(*r->p))
    r->p++;
  if (!at_field_end(r)) {
    snprintf(r->err, r->errsize, "line %lld: text after a closing quote",
             (long long)r->line);
    return -1;
  }
  return 0;
}

/* The field read so far as a new string; the terminator also makes sure
 * the buffer exists when the field is empty. */
static char *field_copy(Reader *r) {
  push_char(r, '\0');
  r->flen--;
  return strcpy(xrealloc(NULL, r->flen + 1), r->field);
}

/* Appends one field to the cells; returns whether it was quoted, or -1. */
static int read_field(Reader *r) {
  r->flen = 0;
  while (r->p < r->end && is_space(*r->p))
    r->p++;
  int quoted = r->p < r->end && *r->p == '"';
  if (quoted) {
    if (read_quoted(r) < 0)
      return -1;
  } else {
    read_plain(r);
  }
  DlrtCsv *csv = r->csv;
  csv->cells = reserve(csv->cells, r->ncells, &r->cellcap, sizeof(char *));
  csv->cells[r->ncells++] = field_copy(r);
  return quoted;
}

/* Reads one record and its line end; returns its field count, or -1. A
 * blank line reads as one empty plain field: it is dropped and counts 0. */
static int read_record(Reader *r) {
  int n = 0, quoted;
  for (;;) {
    if ((quoted = read_field(r)) < 0)
      return -1;
    n++;
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end) {
      r->p += line_end(r);
      r->line++;
    }
    break;
  }
  if (n == 1 && !quoted && r->flen == 0) {
    free(r->csv->cells[--r->ncells]);
    return 0;
  }
  return n;
}

static int read_records(Reader *r) {
  DlrtCsv *csv = r->csv;
  while (r->p < r->end) {
    int64_t line = r->line;
    int n = read_record(r);
    if (n < 0)
      return -1;
    if (n == 0)
      continue;
    if (csv->nrows == 0) {
      csv->ncols = n;
    } else if (n != csv->ncols) {
      snprintf(r->err, r->errsize, "line %lld has %d fields, expected %d",
               (long long)line, n, csv->ncols);
      return -1;
    }
    csv->line = reserve(csv->line, (size_t)csv->nrows, &r->linecap, sizeof(int64_t));
    csv->line[csv->nrows++] = line;
  }
  return 0;
}

/* The first row is a header when any of its fields is not a number; its
 * cells move to csv->header. */
static void split_header(DlrtCsv *csv) {
  int header = 0;
  double v;
  for (int i = 0; i < csv->ncols; i++)
    header |= !is_number(csv->cells[i], &v);
  if (!header)
    return;
  size_t ncols = (size_t)csv->ncols;
  size_t nrest = (size_t)(csv->nrows - 1) * ncols;
  csv->header = xrealloc(NULL, ncols * sizeof(char *));
  memcpy(csv->header, csv->cells, ncols * sizeof(char *));
  memmove(csv->cells, csv->cells + ncols, nrest * sizeof(char *));
  memmove(csv->line, csv->line + 1, (size_t)(csv->nrows - 1) * sizeof(int64_t));
  csv->nrows--;
}

/* Returns the file's bytes (the caller frees them), or NULL with err set. */
static char *read_file(const char *path, size_t *len, char *err, size_t errsize) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errsize, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t cap = 0;
  *len = 0;
  for (;;) {
    buf = reserve(buf, *len, &cap, 1);
    size_t got = fread(buf + *len, 1, cap - *len, f);
    *len += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    snprintf(err, errsize, "cannot read '%s': %s", path, strerror(errno));
    free(buf);
    buf = NULL;
  }
  fclose(f);
  return buf;
}

int dlrt_csv_read(const char *path, DlrtCsv *csv, char *err, size_t errsize) {
  memset(csv, 0, sizeof *csv);
  size_t len;
  char *text = read_file(path, &len, err, errsize);
  if (!text)
    return -1;
  Reader r = {.p = text, .end = text + len, .line = 1, .csv = csv,
              .err = err, .errsize = errsize};
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
    r.p += 3;
  int rc = read_records(&r);
  free(text);
  free(r.field);
  if (rc < 0) {
    /* A failed record may have left cells past nrows * ncols. */
    csv->nrows = 0;
    for (size_t i = 0; i < r.ncells; i++)
      free(csv->cells[i]);
    dlrt_csv_free(csv);
    return -1;
  }
  if (csv->nrows > 0)
    split_header(csv);
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

int dlrt_csv_column(const DlrtCsv *csv, int col, double *out, int f64, char *err,
                    size_t errsize) {
  for (int64_t i = 0; i < csv->nrows; i++) {
    const char *cell = csv->cells[i * csv->ncols + col];
    double v;
    if (is_number(cell, &v)) {
      out[i] = dlrt_round(v, f64);
      continue;
    }
    long long line = (long long)csv->line[i];
    if (csv->header)
      snprintf(err, errsize, "line %lld, column '%s': '%s' is not a number", line,
               csv->header[col], cell);
    else
      snprintf(err, errsize, "line %lld, column %d: '%s' is not a number", line, col,
               cell);
    return -1;
  }
  return 0;
}

void dlrt_csv_free(DlrtCsv *csv) {
  if (csv->header)
    for (int i = 0; i < csv->ncols; i++)
      free(csv->header[i]);
  for (int64_t i = 0; i < csv->nrows * csv->ncols; i++)
    free(csv->cells[i]);
  free(csv->header);
  free(csv->cells);
  free(csv->line);
  memset(csv, 0, sizeof *csv);
}
