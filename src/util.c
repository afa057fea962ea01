/* util.c — arenas, text buffers and edit distance.
 *
 * An arena hands out zeroed memory from large chunks and frees it all at
 * once: the AST, the IR and their strings live exactly as long as one
 * compile (or one REPL session), so nothing is freed piecemeal.
 */
#include "dlc.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct Chunk {
  struct Chunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
  Chunk *head;
};

enum { CHUNK_SIZE = 64 * 1024 };

/* Out of memory is the one failure no caller can report usefully. */
static void *or_die(void *p) {
  if (!p) {
    fputs("dlc: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *xmalloc(size_t n) { return or_die(malloc(n ? n : 1)); }
void *xcalloc(size_t n, size_t size) { return or_die(calloc(n ? n : 1, size ? size : 1)); }
void *xrealloc(void *p, size_t n) { return or_die(realloc(p, n ? n : 1)); }
char *xstrdup(const char *s) { return or_die(strdup(s)); }

Arena *arena_new(void) {
  Arena *a = xmalloc(sizeof *a);
  a->head = NULL;
  return a;
}

void arena_free(Arena *a) {
  if (!a)
    return;
  for (Chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *arena_alloc(Arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  Chunk *c = a->head;
  if (!c || c->size - c->used < size) {
    size_t cap = size > CHUNK_SIZE ? size : CHUNK_SIZE;
    c = xmalloc(sizeof(Chunk) + cap);
    c->size = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

void *arena_grow(Arena *a, const void *old, size_t old_size, size_t new_size) {
  void *p = arena_alloc(a, new_size);
  if (old_size)
    memcpy(p, old, old_size);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

static void buf_reserve(Buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1)
    cap *= 2;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
}

void buf_printf(Buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  buf_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void buf_puts(Buf *b, const char *s) {
  size_t n = strlen(s);
  buf_reserve(b, n);
  memcpy(b->data + b->len, s, n + 1);
  b->len += n;
}

void buf_free(Buf *b) {
  free(b->data);
  *b = (Buf){0};
}

/* Edit distance counting a swap of two neighbours as one edit (the
 * "optimal string alignment" variant of Damerau-Levenshtein): `mena` is one
 * edit from `mean`. Names are short; longer strings are simply far. */
int edit_distance(const char *a, const char *b) {
  enum { MAX = 64 };
  size_t la = strlen(a), lb = strlen(b);
  if (la > MAX || lb > MAX)
    return 1 << 20;
  static_assert(MAX < 100, "rows on the stack");
  int d[MAX + 1][MAX + 1];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best)
        best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

int temp_beside(const char *path, char **tmp) {
  size_t n = strlen(path) + 16;
  *tmp = xmalloc(n);
  snprintf(*tmp, n, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(*tmp);
  if (fd < 0) {
    int saved = errno;
    free(*tmp);
    errno = saved;
  }
  return fd;
}

const char *writable_target(const char *path) {
  struct stat st;
  char *tmp;
  int fd;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
    return S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file";
  if ((fd = temp_beside(path, &tmp)) < 0)
    return strerror(errno);
  close(fd);
  unlink(tmp);
  free(tmp);
  return NULL;
}
