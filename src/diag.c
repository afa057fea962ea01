/* diag.c — sources and diagnostics.
 *
 * Phases never print or exit: they append a Diag (level, span, message)
 * and return. The driver prints them clang style,
 *
 *   model.dl:3:7: error: undefined name 'siz'; did you mean 'size'?
 *       y = siz(x)
 *           ^~~
 *
 * Spans are byte ranges; a line map turns them into line:column when
 * something is printed.
 */
#include "dlc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The line map is built here, once: diagnostics need it, and the arena owns
 * it with the text. */
Source *source_new(Arena *a, const char *name, const char *text, size_t len) {
  Source *s = arena_alloc(a, sizeof *s);
  s->name = arena_strdup(a, name);
  s->text = arena_strndup(a, text, len);
  s->len = len;
  int n = 1;
  for (size_t i = 0; i < len; i++)
    n += text[i] == '\n';
  s->line_start = arena_alloc(a, sizeof(int) * (size_t)n);
  s->line_start[s->nlines++] = 0;
  for (size_t i = 0; i < len; i++)
    if (text[i] == '\n')
      s->line_start[s->nlines++] = (int)i + 1;
  return s;
}

Source *source_read_file(Arena *a, const char *path, Diags *d) {
  bool is_stdin = strcmp(path, "-") == 0;
  FILE *f = is_stdin ? stdin : fopen(path, "rb");
  if (!f) {
    diag_error(d, (Span){0}, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  /* Read up to the first NUL or past the size limit, not further: a
   * program named /dev/zero or /dev/urandom is refused, not read forever. */
  size_t len = 0, cap = 1 << 16;
  char *text = malloc(cap);
  size_t n;
  while (text && len <= INT32_MAX / 2 && (n = fread(text + len, 1, cap - len, f)) > 0) {
    bool nul = memchr(text + len, '\0', n) != NULL;
    len += n;
    if (nul)
      break;
    if (len == cap) {
      char *grown = realloc(text, cap *= 2);     /* (a file's size: failing is an error, below) */
      if (!grown)
        free(text);
      text = grown;
    }
  }
  bool failed = !text || ferror(f);
  if (!is_stdin)
    fclose(f);
  Source *s = NULL;
  if (failed)
    diag_error(d, (Span){0}, "cannot read '%s'", path);
  else if (len > INT32_MAX / 2)
    diag_error(d, (Span){0}, "'%s' is too large (%zu bytes)", path, len);
  else if (memchr(text, '\0', len))
    diag_error(d, (Span){0}, "'%s' is not a text file (it contains a NUL byte)", path);
  else if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)   /* a UTF-8 BOM, which editors hide */
    s = source_new(a, is_stdin ? "<stdin>" : path, text + 3, len - 3);
  else
    s = source_new(a, is_stdin ? "<stdin>" : path, text, len);
  free(text);
  return s;
}

void source_line_col(const Source *s, int offset, int *line, int *col) {
  int lo = 0, hi = s->nlines - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (s->line_start[mid] <= offset)
      lo = mid;
    else
      hi = mid - 1;
  }
  *line = lo + 1;
  *col = offset - s->line_start[lo] + 1;
}

Span span_join(Span a, Span b) {
  if (!a.src)
    return b;
  if (!b.src)
    return a;
  return (Span){a.src, a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end};
}

void diag_add(Diags *d, DiagLevel level, Span span, const char *fmt, ...) {
  /* Past MAX_ERRORS errors, the rest (and their notes) are only counted. */
  if (level == DIAG_ERROR && d->nerrors >= MAX_ERRORS) {
    d->nerrors++;
    d->dropped++;
    d->dropping = true;
    return;
  }
  if (level == DIAG_NOTE && d->dropping)
    return;
  d->dropping = false;
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 16;
    d->items = xrealloc(d->items, sizeof(Diag) * (size_t)d->cap);
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *msg = xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  d->items[d->n++] = (Diag){level, span, msg};
  if (level == DIAG_ERROR)
    d->nerrors++;
}

static const char *level_name(DiagLevel l) {
  switch (l) {
  case DIAG_ERROR: return "error";
  case DIAG_WARNING: return "warning";
  case DIAG_NOTE: return "note";
  }
  return "?";
}

/* A UTF-8 continuation byte takes no column of its own on screen. */
static bool continuation(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/* Lines longer than this show only a window around the caret. */
enum { SNIPPET_WIDTH = 100 };

/* The source line with a caret under the span's start and '~' under the
 * rest of it (clipped to that line). Tabs are kept so the caret lines up;
 * columns count characters, not bytes. A long line is cut to a window
 * around the caret, with "..." where it was cut. */
static void print_snippet(FILE *out, const Source *s, int begin, int end, bool color) {
  int line, col;
  source_line_col(s, begin, &line, &col);
  int start = s->line_start[line - 1];
  int stop = start;
  while ((size_t)stop < s->len && s->text[stop] != '\n' && s->text[stop] != '\r')
    stop++;
  int from = start, to = stop;
  if (stop - start > SNIPPET_WIDTH) {
    from = begin - SNIPPET_WIDTH / 2 > start ? begin - SNIPPET_WIDTH / 2 : start;
    to = from + SNIPPET_WIDTH < stop ? from + SNIPPET_WIDTH : stop;
    while (from > start && continuation(s->text[from]))
      from--;
    while (to < stop && continuation(s->text[to]))
      to++;
  }
  const char *lead = from > start ? "..." : "", *tail = to < stop ? "..." : "";
  fprintf(out, "%5d | %s%.*s%s\n      | %*s", line, lead, to - from, s->text + from, tail,
          (int)strlen(lead), "");
  for (int i = from; i < begin; i++)
    if (!continuation(s->text[i]))
      fputc(s->text[i] == '\t' ? '\t' : ' ', out);
  fputs(color ? "\033[1;32m^" : "^", out);
  for (int i = begin + 1; i < end && i < to; i++)
    if (!continuation(s->text[i]))
      fputc('~', out);
  fputs(color ? "\033[0m\n" : "\n", out);
}

/* A dumb terminal (TERM=dumb: Emacs's shell, say) gets no escape codes. */
bool diag_is_terminal(FILE *out) {
  const char *term = getenv("TERM");
  return isatty(fileno(out)) && !(term && strcmp(term, "dumb") == 0);
}

/* Colours, as clang's: on a terminal, unless NO_COLOR is set (no-color.org). */
static bool use_color(FILE *out) { return diag_is_terminal(out) && !getenv("NO_COLOR"); }

static const char *level_color(DiagLevel l) {
  switch (l) {
  case DIAG_ERROR: return "\033[1;31m";
  case DIAG_WARNING: return "\033[1;35m";
  case DIAG_NOTE: return "\033[1;36m";
  }
  return "";
}

void diag_print(Diags *d, FILE *out) {
  bool color = use_color(out);
  const char *bold = color ? "\033[1m" : "", *reset = color ? "\033[0m" : "";
  for (; d->printed < d->n; d->printed++) {
    Diag *g = &d->items[d->printed];
    const char *lc = color ? level_color(g->level) : "";
    if (!g->span.src) {
      fprintf(out, "%sdlc: %s%s:%s %s%s%s\n", bold, lc, level_name(g->level), reset, bold, g->msg, reset);
      continue;
    }
    int line, col;
    source_line_col(g->span.src, g->span.begin, &line, &col);
    fprintf(out, "%s%s:%d:%d: %s%s:%s %s%s%s\n", bold, g->span.src->name, line, col, lc,
            level_name(g->level), reset, bold, g->msg, reset);
    print_snippet(out, g->span.src, g->span.begin, g->span.end, color);
  }
  if (d->dropped > d->dropped_said) {
    fprintf(out, "%sdlc: %stoo many errors:%s %d more not shown (the first %d are above)\n", bold,
            color ? level_color(DIAG_ERROR) : "", reset, d->dropped - d->dropped_said, MAX_ERRORS);
    d->dropped_said = d->dropped;
  }
}

void diag_free(Diags *d) {
  for (int i = 0; i < d->n; i++)
    free(d->items[i].msg);
  free(d->items);
  *d = (Diags){0};
}
