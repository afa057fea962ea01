/* plot_files.c — checks files that plots wrote, by their extension.
 *
 *   plot_files FILE...
 *
 * PNG: the signature, then an IHDR chunk of 640 x 400 pixels, and at least
 * 2 KB (a plot, not an empty image). SVG: well-formed XML (every tag
 * closed, in order; comments, declarations and quoted attributes skipped)
 * whose root element is <svg>. PDF: the %PDF- header and the %%EOF
 * trailer. Prints one line per bad file and exits 1 if there was one.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *data = NULL;
  size_t cap = 0;
  *n = 0;
  for (size_t got; (data = realloc(data, cap += 1 << 16)) &&
                   (got = fread(data + *n, 1, cap - *n - 1, f)) > 0;)
    *n += got;
  fclose(f);
  if (data)
    data[*n] = '\0';
  return data;
}

static const char *check_png(const unsigned char *d, size_t n) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 33 || memcmp(d, sig, 8) != 0 || memcmp(d + 12, "IHDR", 4) != 0)
    return "no PNG signature and IHDR";
  unsigned w = (unsigned)d[16] << 24 | d[17] << 16 | d[18] << 8 | d[19];
  unsigned h = (unsigned)d[20] << 24 | d[21] << 16 | d[22] << 8 | d[23];
  if (w != 640 || h != 400)
    return "not 640 x 400 pixels";
  return n < 2048 ? "smaller than 2 KB" : NULL;
}

/* Well-formed enough: tags nest, the first element is svg. */
static const char *check_svg(const char *d) {
  enum { DEPTH = 256 };
  char stack[DEPTH][64];
  int depth = 0;
  bool root = false;
  for (const char *c = d; (c = strchr(c, '<'));) {
    if (strncmp(c, "<!--", 4) == 0) {
      if (!(c = strstr(c, "-->")))
        return "an unclosed comment";
      continue;
    }
    if (c[1] == '?' || c[1] == '!') {
      if (!(c = strchr(c, '>')))
        return "an unclosed declaration";
      continue;
    }
    bool closing = c[1] == '/';
    const char *name = c + 1 + closing;
    size_t len = strcspn(name, " \t\r\n/>");
    if (len == 0 || len >= 64)
      return "a bad tag name";
    const char *e = name + len;
    for (char q = 0; *e && (q || *e != '>'); e++)
      if (!q && (*e == '"' || *e == '\''))
        q = *e;
      else if (q && *e == q)
        q = 0;
    if (!*e)
      return "an unclosed tag";
    if (closing) {
      if (depth == 0 || strlen(stack[depth - 1]) != len || strncmp(stack[depth - 1], name, len) != 0)
        return "a closing tag that closes nothing open";
      depth--;
    } else if (e[-1] != '/') {
      if (depth == DEPTH)
        return "too deep";
      if (!root && strncmp(name, "svg", len) != 0)
        return "a root element that is not svg";
      memcpy(stack[depth], name, len);
      stack[depth++][len] = '\0';
    }
    root = true;
    c = e;
  }
  return !root ? "no element" : depth ? "an element left open" : NULL;
}

static const char *check_pdf(const char *d, size_t n) {
  if (n < 8 || memcmp(d, "%PDF-", 5) != 0)
    return "no %PDF- header";
  for (size_t i = n; i-- > (n > 32 ? n - 32 : 0);)
    if (strncmp(d + i, "%%EOF", 5) == 0)
      return NULL;
  return "no %%EOF trailer";
}

int main(int argc, char **argv) {
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    size_t n;
    char *d = slurp(argv[i], &n);
    const char *ext = strrchr(argv[i], '.'), *why;
    if (!d)
      why = "cannot be read";
    else if (ext && strcmp(ext, ".png") == 0)
      why = check_png((const unsigned char *)d, n);
    else if (ext && strcmp(ext, ".svg") == 0)
      why = check_svg(d);
    else if (ext && strcmp(ext, ".pdf") == 0)
      why = check_pdf(d, n);
    else
      why = "not .png, .svg or .pdf";
    if (why) {
      printf("%s: %s\n", argv[i], why);
      bad = 1;
    }
    free(d);
  }
  return bad;
}
