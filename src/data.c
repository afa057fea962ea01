/* data.c — data made while checking: constructors, lists and load_csv.
 *
 * linspace, zeros, ones, fill, rand, randn, eye, load_csv and a list
 * literal depend on no param, and their shape comes from their arguments'
 * values: `linspace(-pi, pi, 2000)` has 2000 elements once 2000 is
 * evaluated. So sema does not build IR for them: it computes them at once,
 * and each becomes a data leaf holding its tensor (the program owns it),
 * named by its text until a definition gives it a name. These are the
 * calls that read files and fill memory, which is why they are a file of
 * their own: the limits on what they make are checked here, before the
 * runtime (dlrt_rand, runtime/csv.c...) fills a tensor. Every number made
 * counts against MAX_DATA_ELEMENTS (budget), as do params and hoisted
 * definitions (sema.c). A CSV file is read once per sema_program run
 * however many load_csv name it, its path taken relative to the file that
 * names it.
 */
#include "dlc.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

typedef struct CsvFile {
  char *path;
  DlrtCsv csv;
  struct CsvFile *next;
} CsvFile;

/* Counts n more numbers of data; false, with an error at span, past
 * MAX_DATA_ELEMENTS. */
bool budget(Sema *s, Span span, int64_t n) {
  if ((double)s->p->data_elements + (double)n > MAX_DATA_ELEMENTS) {
    diag_error(s->d, span,
               "this would take the program's data past %.0f numbers in all (%.1f GB): too much "
               "for memory",
               MAX_DATA_ELEMENTS, MAX_DATA_ELEMENTS * sizeof(double) / 1e9);
    return false;
  }
  s->p->data_elements += n;
  return true;
}

/* A new data leaf holding t (the program owns t's memory from here). */
Node *data_leaf(Sema *s, Tensor t, const char *name) {
  int slot = program_add_data(s->p, name, t);
  return ir_leaf(s->g, OP_DATA, t.shape, slot, NULL);
}

Tensor tensor_alloc(Shape shape) {
  return (Tensor){shape, xmalloc(sizeof(double) * (size_t)shape_numel(shape))};
}

/* The text of an expression as written, to name the data it made. */
static const char *source_text(Sema *s, const Expr *e) {
  const Span *sp = &e->span;
  return sp->src ? arena_strndup(s->p->arena, sp->src->text + sp->begin, (size_t)(sp->end - sp->begin))
                 : NULL;
}

const char *string_literal(Sema *s, const Expr *e, const char *what) {
  if (e->kind != EX_STR || (e->parts && (e->parts->expr || e->parts->next))) {
    diag_error(s->d, e->span, "%s must be a string literal", what);
    return NULL;
  }
  return e->parts ? e->parts->text : "";
}

static DlrtCsv *csv_file(Sema *s, const Expr *path_expr, const char *path) {
  /* Relative to the file the path is written in (the REPL mixes files). */
  const Source *src = path_expr->span.src ? path_expr->span.src : s->p->src;
  const char *name = src ? src->name : "-";
  char *full;
  if (path[0] == '/' || strcmp(name, "<stdin>") == 0 || !strchr(name, '/'))
    full = xstrdup(path);
  else {
    char *copy = xstrdup(name);
    Buf b = {0};
    buf_printf(&b, "%s/%s", dirname(copy), path);
    free(copy);
    full = b.data;
  }
  for (CsvFile *f = s->csvs; f; f = f->next)
    if (strcmp(f->path, full) == 0) {
      free(full);
      return &f->csv;
    }
  CsvFile *f = xcalloc(1, sizeof *f);
  char err[512];
  if (dlrt_csv_read(full, &f->csv, err, sizeof err) != 0) {
    if (strstr(err, full))
      diag_error(s->d, path_expr->span, "%s", err);
    else
      diag_error(s->d, path_expr->span, "%s: %s", full, err);
    free(full);
    free(f);
    return NULL;
  }
  f->path = full;
  f->next = s->csvs;
  s->csvs = f;
  return &f->csv;
}

/* The files a run has read (s->csvs), freed as it ends: by then their
 * numbers are in data leaves. */
void csv_files_free(Sema *s) {
  for (CsvFile *f = s->csvs, *next; f; f = next) {
    next = f->next;
    dlrt_csv_free(&f->csv);
    free(f->path);
    free(f);
  }
}

/* The index of the column named (or numbered) by e, or -1 after an error. */
static int csv_column_index(Sema *s, DlrtCsv *csv, const char *path, const Expr *e) {
  if (e->kind == EX_STR) {
    const char *name = string_literal(s, e, "the column");
    if (!name)
      return -1;
    int col = dlrt_csv_find(csv, name);
    if (col >= 0)
      return col;
    Buf b = {0};
    for (int i = 0; csv->header && i < csv->ncols; i++)
      buf_printf(&b, "%s'%s'", i ? ", " : "", csv->header[i]);
    if (csv->header)
      diag_error(s->d, e->span, "no column '%s' in '%s' (its columns: %s)", name, path, b.data);
    else
      diag_error(s->d, e->span,
                 "no column '%s': '%s' has no header row; give a 0-based column index", name, path);
    buf_free(&b);
    return -1;
  }
  int64_t index;
  if (!constant_int(s, e, "the column index", 0, 1e9, &index))
    return -1;
  if (index >= csv->ncols) {
    diag_error(s->d, e->span, "column %lld is out of range: '%s' has %d column%s (0 to %d)",
               (long long)index, path, csv->ncols, csv->ncols == 1 ? "" : "s", csv->ncols - 1);
    return -1;
  }
  return (int)index;
}

/* load_csv(path, column = C): a vector; columns = [C, ...]: a matrix of
 * those columns; neither: a matrix of every numeric column. */
Node *elab_load_csv(Sema *s, const Expr *call, Expr **args) {
  const char *path = string_literal(s, args[0], "the CSV path");
  if (!path)
    return NULL;
  if (args[1] && args[2]) {
    diag_error(s->d, args[2]->span, "load_csv takes 'column' (a vector) or 'columns' (a matrix), not both");
    return NULL;
  }
  if (args[2] && args[2]->kind != EX_LIST) {
    diag_error(s->d, args[2]->span, "'columns' is a list: columns = [\"a\", \"b\"]");
    return NULL;
  }
  DlrtCsv *csv = csv_file(s, args[0], path);
  if (!csv)
    return NULL;
  int cols[csv->ncols + 1], ncols = 0;
  char err[512];
  if (args[1]) {
    if ((cols[ncols++] = csv_column_index(s, csv, path, args[1])) < 0)
      return NULL;
  } else if (args[2]) {
    for (const Arg *a = args[2]->args; a; a = a->next) {
      if (ncols == csv->ncols) {
        diag_error(s->d, a->value->span, "more columns than '%s' has (%d)", path, csv->ncols);
        return NULL;
      }
      if ((cols[ncols++] = csv_column_index(s, csv, path, a->value)) < 0)
        return NULL;
    }
    if (!ncols) {
      diag_error(s->d, args[2]->span, "no columns: name at least one");
      return NULL;
    }
  } else {
    for (int c = 0; c < csv->ncols; c++)         /* a column of names is not data */
      if (dlrt_csv_numeric(csv, c, err, sizeof err) == 0)
        cols[ncols++] = c;
    if (!ncols) {
      diag_error(s->d, call->span, "'%s' has no numeric column", path);
      return NULL;
    }
  }
  if (!budget(s, call->span, (int64_t)csv->nrows * ncols))
    return NULL;
  /* The numbers go straight from the file into the tensor. */
  Tensor t = tensor_alloc(args[1] ? shape_vector(csv->nrows) : shape_matrix(csv->nrows, ncols));
  if (dlrt_csv_columns(csv, cols, ncols, t.v, s->p->opts.f64, err, sizeof err) != 0) {
    diag_error(s->d, call->span, "%s: %s", path, err);
    free(t.v);
    return NULL;
  }
  return data_leaf(s, t, source_text(s, call));
}

/* linspace, zeros, ones, fill, rand, randn, eye: evaluated now, a data
 * leaf. Given `cols`, zeros, ones, fill, rand and randn make an n x cols
 * matrix (rand and randn fill it row by row). */
Node *elab_constructor(Sema *s, const Expr *call, const Builtin *b, Expr **args) {
  int f64 = s->p->opts.f64;
  Expr *n_expr = b->kind == B_LINSPACE ? args[2] : args[0];
  Expr *cols_expr = b->kind == B_FILL ? args[2] : b->kind == B_LINSPACE || b->kind == B_EYE ? NULL : args[1];
  Expr *value_expr = args[1];
  bool positional = true;
  for (const Arg *a = call->args; a; a = a->next)
    positional &= a->name == NULL;
  if (b->kind == B_FILL && positional && args[2]) {   /* fill(r, c, value), as zeros(r, c) */
    cols_expr = args[1];
    value_expr = args[2];
  }
  Expr *seed_expr = b->kind == B_RAND || b->kind == B_RANDN ? args[2] : NULL;
  int64_t n, cols = 1, seed = 0;
  if (!constant_int(s, n_expr, cols_expr ? "the number of rows" : "the length", 1, MAX_ELEMENTS, &n))
    return NULL;
  if (cols_expr && !constant_int(s, cols_expr, "the number of columns", 1, MAX_ELEMENTS, &cols))
    return NULL;
  if (b->kind == B_EYE)
    cols = n;
  double start = 0, stop = 0, value = 0;
  if (b->kind == B_LINSPACE && (!constant_scalar(s, args[0], NULL, "linspace's start", &start) ||
                                !constant_scalar(s, args[1], NULL, "linspace's stop", &stop)))
    return NULL;
  if (b->kind == B_FILL && !constant_scalar(s, value_expr, NULL, "the fill value", &value))
    return NULL;
  if (seed_expr && !constant_int(s, seed_expr, "the seed", 0, 9007199254740992.0, &seed))
    return NULL;
  if ((double)n * (double)cols > MAX_ELEMENTS) {
    diag_error(s->d, call->span, "%lld x %lld is too many numbers (the limit is %.0f)", (long long)n,
               (long long)cols, (double)MAX_ELEMENTS);
    return NULL;
  }
  int64_t count = n * cols;
  if (!budget(s, call->span, count))
    return NULL;
  Tensor t = tensor_alloc(cols_expr || b->kind == B_EYE ? shape_matrix(n, cols) : shape_vector(n));
  switch (b->kind) {
  case B_LINSPACE: dlrt_linspace(t.v, start, stop, n, f64); break;
  case B_ZEROS: value = 0; /* fall through */
  case B_ONES: if (b->kind == B_ONES) value = 1; /* fall through */
  case B_FILL:
    for (int64_t i = 0; i < count; i++)
      t.v[i] = dlrt_round(value, f64);
    break;
  case B_EYE:
    for (int64_t i = 0; i < count; i++)
      t.v[i] = i / n == i % n;
    break;
  case B_RAND: dlrt_rand(t.v, count, (uint64_t)seed, f64); break;
  case B_RANDN: dlrt_randn(t.v, count, (uint64_t)seed, f64); break;
  default: break;
  }
  return data_leaf(s, t, source_text(s, call));
}

/* [1, 2, 3]: a vector of constants; [[1, 2], [3, 4]]: a matrix, by rows. */
Node *elab_list(Sema *s, const Expr *e) {
  int64_t rows = 0, cols = -1;
  bool nested = e->args && e->args->value->kind == EX_LIST;
  for (const Arg *a = e->args; a; a = a->next, rows++) {
    int64_t n = nested && a->value->kind == EX_LIST ? count_args(a->value->args) : -1;
    if ((a->value->kind == EX_LIST) != nested || (nested && cols >= 0 && n != cols)) {
      if (nested)
        diag_error(s->d, a->value->span, "every row of this matrix needs %lld number%s, as its first",
                   (long long)cols, cols == 1 ? "" : "s");
      else
        diag_error(s->d, a->value->span, "a vector's items are numbers (a matrix is a list of lists)");
      return NULL;
    }
    cols = nested ? n : 1;
  }
  if (!rows || !cols) {
    diag_error(s->d, e->span, "an empty list has no value");
    return NULL;
  }
  if (!budget(s, e->span, rows * cols))
    return NULL;
  Tensor t = tensor_alloc(nested ? shape_matrix(rows, cols) : shape_vector(rows));
  int64_t i = 0;
  for (const Arg *a = e->args; a; a = a->next)
    for (const Arg *b = nested ? a->value->args : a; b; b = nested ? b->next : NULL) {
      if (!constant_scalar(s, b->value, NULL, "a list item", &t.v[i])) {
        free(t.v);
        return NULL;
      }
      t.v[i] = dlrt_round(t.v[i], s->p->opts.f64);
      i++;
    }
  return data_leaf(s, t, source_text(s, e));
}
