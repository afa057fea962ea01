/* cache.c — compiled training code kept on disk between runs.
 *
 * Compiling a train is almost all LLVM's time (optimizing and making
 * machine code), and an edit-run loop or a rerun compiles the same module
 * again. jit.c asks here first: an entry is the object file LLVM made for
 * a module, under a key that hashes everything the machine code depends
 * on — the module's IR as codegen built it, the target triple, the CPU and
 * its features, the optimization level, LLVM's version, and the dlc
 * executable itself (its version, size and time: a rebuilt compiler starts
 * afresh) and its build (ThreadSanitizer's instruments code). A hit is the very object a
 * miss would make, so results are bit-identical either way.
 *
 * The directory is $DLC_CACHE_DIR, else $XDG_CACHE_HOME/dlc, else
 * ~/.cache/dlc; DLC_CACHE=0 (or --no-cache) turns the cache off. Entries
 * are written to a temporary file and renamed, so concurrent runs never
 * see half an entry; each carries its size and a checksum, so a truncated
 * or damaged one is found, removed, and compiled again. The directory is
 * held under DLC_CACHE_SIZE bytes (default 256 MiB; K, M, G suffixes) by
 * removing the least recently used entries (a hit touches its file).
 */
#include "dlc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static const char MAGIC[8] = "DLCOBJ1\n";
enum { HEADER = 8 + 8 + 8 };                     /* magic, object size, checksum */
#define DEFAULT_BOUND (256.0 * 1024 * 1024)

/* FNV-1a, 64 bits, from a given start: two starts make a 128-bit key. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void cache_key(const char *const *parts, int nparts, char key[33]) {
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (int i = 0; i < nparts; i++) {
    size_t n = strlen(parts[i]) + 1;             /* the NUL separates the parts */
    a = fnv1a(a, parts[i], n);
    b = fnv1a(b, parts[i], n);
    b = (b << 29) | (b >> 35);                   /* so that b is not a's function of the same bytes */
  }
  snprintf(key, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

const char *cache_dir(void) {
  static char dir[4096];
  const char *off = getenv("DLC_CACHE");
  if (off && strcmp(off, "0") == 0)
    return NULL;
  const char *set = getenv("DLC_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (set && *set)
    snprintf(dir, sizeof dir, "%s", set);
  else if (xdg && *xdg)
    snprintf(dir, sizeof dir, "%s/dlc", xdg);
  else if (home && *home)
    snprintf(dir, sizeof dir, "%s/.cache/dlc", home);
  else
    return NULL;
  return dir;
}

/* The directory, made (with its parents) if missing; NULL when it cannot
 * be: the run then compiles, as without a cache. */
static const char *made_dir(void) {
  const char *dir = cache_dir();
  if (!dir)
    return NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *s = path + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      mkdir(path, 0755);
      *s = '/';
    }
  return mkdir(path, 0755) == 0 || errno == EEXIST ? dir : NULL;
}

static void entry_path(const char *dir, const char *key, char *path, size_t size) {
  snprintf(path, size, "%s/%s.o", dir, key);
}

static uint64_t read_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void write_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++, v >>= 8)
    p[i] = (unsigned char)v;
}

void *cache_load(const char *key, size_t *size) {
  const char *dir = cache_dir();
  if (!dir)
    return NULL;
  char path[4200];
  entry_path(dir, key, path, sizeof path);
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  struct stat st;
  unsigned char *data = NULL;
  bool good = fstat(fd, &st) == 0 && st.st_size >= HEADER;
  if (good) {
    data = xmalloc((size_t)st.st_size);
    size_t got = 0;
    for (ssize_t n; got < (size_t)st.st_size; got += (size_t)n)
      if ((n = read(fd, data + got, (size_t)st.st_size - got)) <= 0)
        break;
    good = got == (size_t)st.st_size && memcmp(data, MAGIC, 8) == 0 &&
           read_u64(data + 8) == (uint64_t)st.st_size - HEADER &&
           read_u64(data + 16) == fnv1a(0xcbf29ce484222325ull, data + HEADER, (size_t)st.st_size - HEADER);
  }
  close(fd);
  if (!good) {
    unlink(path);                                /* damaged: compiled again, and replaced */
    free(data);
    return NULL;
  }
  utimes(path, NULL);                            /* used now: the last to be evicted */
  *size = (size_t)st.st_size - HEADER;
  memmove(data, data + HEADER, *size);
  return data;
}

static double size_bound(void) {
  const char *s = getenv("DLC_CACHE_SIZE");
  if (!s || !*s)
    return DEFAULT_BOUND;
  char *end;
  double n = strtod(s, &end);
  n *= *end == 'K' || *end == 'k' ? 1024.0 : *end == 'M' || *end == 'm' ? 1024.0 * 1024
       : *end == 'G' || *end == 'g' ? 1024.0 * 1024 * 1024 : 1;
  return n >= 0 ? n : DEFAULT_BOUND;
}

typedef struct Entry {
  char name[256];
  double bytes;
  double used;                                   /* modification time: a hit touches it */
} Entry;

/* The cache's entries and their total size (a store's temporary file is
 * not an entry until it is renamed). */
static Entry *entries(const char *dir, int *n, double *total) {
  Entry *e = NULL;
  int cap = 0;
  *n = 0;
  *total = 0;
  DIR *d = opendir(dir);
  if (!d)
    return NULL;
  for (struct dirent *de; (de = readdir(d));) {
    size_t len = strlen(de->d_name);
    if (len != 34 || strcmp(de->d_name + 32, ".o") != 0)
      continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(path, &st) != 0)
      continue;
    if (*n == cap)
      e = xrealloc(e, sizeof *e * (size_t)(cap = cap ? 2 * cap : 64));
    snprintf(e[*n].name, sizeof e[*n].name, "%s", de->d_name);
    e[*n].bytes = (double)st.st_size;
    e[*n].used = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
    *total += e[(*n)++].bytes;
  }
  closedir(d);
  return e;
}

static int least_recent_first(const void *a, const void *b) {
  double x = ((const Entry *)a)->used, y = ((const Entry *)b)->used;
  return (x > y) - (x < y);
}

/* Removes the least recently used entries until the cache is within its
 * bound. Two runs may trim at once: each removal is of a whole file. */
static void trim(const char *dir) {
  int n;
  double total, bound = size_bound();
  Entry *e = entries(dir, &n, &total);
  if (total > bound) {
    qsort(e, (size_t)n, sizeof *e, least_recent_first);
    for (int i = 0; i < n && total > bound; i++) {
      char path[4400];
      snprintf(path, sizeof path, "%s/%s", dir, e[i].name);
      if (unlink(path) == 0)
        total -= e[i].bytes;
    }
  }
  free(e);
}

void cache_store(const char *key, const void *obj, size_t size) {
  const char *dir = made_dir();
  if (!dir)
    return;
  char tmp[4200], path[4200];
  snprintf(tmp, sizeof tmp, "%s/tmp.XXXXXX", dir);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return;
  unsigned char header[HEADER];
  memcpy(header, MAGIC, 8);
  write_u64(header + 8, size);
  write_u64(header + 16, fnv1a(0xcbf29ce484222325ull, obj, size));
  bool good = write(fd, header, HEADER) == HEADER && write(fd, obj, size) == (ssize_t)size;
  good &= close(fd) == 0;
  entry_path(dir, key, path, sizeof path);
  if (!good || rename(tmp, path) != 0) {         /* a full disk: no entry, no harm */
    unlink(tmp);
    return;
  }
  trim(dir);
}

bool cache_command(const char *what, FILE *out) {
  const char *dir = cache_dir();
  if (!dir) {
    fprintf(out, "the cache is off (DLC_CACHE=0, or no HOME)\n");
    return true;
  }
  int n;
  double total;
  Entry *e = entries(dir, &n, &total);
  if (strcmp(what, "clear") == 0) {
    int removed = 0;
    for (int i = 0; i < n; i++) {
      char path[4400];
      snprintf(path, sizeof path, "%s/%s", dir, e[i].name);
      removed += unlink(path) == 0;
    }
    fprintf(out, "removed %d entr%s from %s\n", removed, removed == 1 ? "y" : "ies", dir);
  } else {
    fprintf(out, "directory: %s\nentries: %d\nsize: %.1f MiB of at most %.1f MiB\n", dir, n,
            total / (1024 * 1024), size_bound() / (1024 * 1024));
  }
  free(e);
  return true;
}
