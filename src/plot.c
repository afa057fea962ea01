/* plot.c — plots: files drawn by cairo, and text drawn in braille.
 *
 * A Plot is series of (x, y) points, each drawn as dots or as a line, on
 * axes fitted to them. plot_write draws it with cairo into a PNG, SVG or
 * PDF file, chosen by the path's extension: ticks at round numbers, a
 * light grid, labels, a legend when the series are named. cairo rather
 * than PLplot: its errors are values (PLplot's unwritable file retries and
 * then calls exit(), which would end the REPL), it keeps no global state,
 * and it needs no driver plug-ins found at run time; the price is this
 * file's few dozen lines of ticks and legend. The file is written beside
 * its place and renamed there, so that a reader never sees half a plot.
 *
 * plot_text draws the same Plot in a terminal: each character a 2 x 4
 * block of braille dots (U+2800...), the axes labelled with the extreme
 * values. A log scale (the loss curves' when they span decades) plots
 * log10 of y, and labels the axis with y's own values.
 */
#include "dlc.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

PlotFormat plot_format(const char *path) {
  const char *dot = strrchr(path, '.');
  if (!dot || strchr(dot, '/'))
    return PLOT_NONE;
  return strcasecmp(dot, ".png") == 0   ? PLOT_PNG
         : strcasecmp(dot, ".svg") == 0 ? PLOT_SVG
         : strcasecmp(dot, ".pdf") == 0 ? PLOT_PDF
                                        : PLOT_NONE;
}

/* ---- the extent of the data */

typedef struct Range {
  double lo, hi;
} Range;

static double y_of(const Plot *pl, double y) {
  return pl->log_y ? (y > 0 ? log10(y) : NAN) : y;
}

/* Where v is in r, from 0 to 1: in halves, so that a range from -1e308
 * to 1e308 does not overflow. */
static double frac(double v, Range r) { return (v / 2 - r.lo / 2) / (r.hi / 2 - r.lo / 2); }

/* The finite extent of the points, as plotted; [-1, 1] around a single
 * value, [0, 1] when there is none. */
static void extent(const Plot *pl, Range *x, Range *y) {
  *x = *y = (Range){INFINITY, -INFINITY};
  for (int s = 0; s < pl->nseries; s++)
    for (int64_t i = 0; i < pl->series[s].n; i++) {
      double u = pl->series[s].x[i], v = y_of(pl, pl->series[s].y[i]);
      if (!isfinite(u) || !isfinite(v))
        continue;
      x->lo = fmin(x->lo, u), x->hi = fmax(x->hi, u);
      y->lo = fmin(y->lo, v), y->hi = fmax(y->hi, v);
    }
  Range *both[] = {x, y};
  for (int k = 0; k < 2; k++) {
    Range *r = both[k];
    if (r->lo > r->hi)
      *r = (Range){0, 1};
    else if (r->lo == r->hi)
      *r = (Range){r->lo - 1, r->hi + 1};
  }
}

/* ---- files */

enum { WIDTH = 640, HEIGHT = 400, LEFT = 76, RIGHT = 24, BOTTOM = 56, MAX_TICKS = 12 };

/* matplotlib's default colours: the first series blue, the second orange... */
static const double palette[][3] = {
  {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
  {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
};
enum { NCOLORS = sizeof palette / sizeof palette[0] };

/* The area the data is drawn in, and the map to it. */
typedef struct Frame {
  double left, top, right, bottom;
  Range x, y;
} Frame;

static double fx(const Frame *f, double x) {
  return f->left + frac(x, f->x) * (f->right - f->left);
}
static double fy(const Frame *f, double y) {
  return f->bottom - frac(y, f->y) * (f->bottom - f->top);
}

/* A round step for about five ticks over r: 1, 2 or 5 times a power of 10. */
static double tick_step(Range r) {
  double raw = (r.hi / 2 - r.lo / 2) / 2.5, mag = pow(10, floor(log10(raw))), m = raw / mag;
  return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * mag;
}

static void tick_label(char *out, size_t n, double v, double step, bool log) {
  if (log)
    snprintf(out, n, "%g", pow(10, v));
  else
    snprintf(out, n, "%g", fabs(v) < step * 1e-9 ? 0.0 : v);
}

/* Text with its anchor at (x, y): ax, ay the fraction of its width and
 * height left of and above the anchor. */
static void text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  cairo_move_to(cr, x - ax * e.width - e.x_bearing, y - ay * e.height - e.y_bearing);
  cairo_show_text(cr, s);
}

static void axes(cairo_t *cr, const Plot *pl, const Frame *f) {
  cairo_set_font_size(cr, 12);
  cairo_set_line_width(cr, 1);
  for (int axis = 0; axis < 2; axis++) {
    Range r = axis ? f->y : f->x;
    bool log = axis && pl->log_y;
    double step = log ? fmax(1, round(tick_step(r))) : tick_step(r);
    /* By count, not by adding step: past 2^53 steps from 0 an addition
     * would not move, and a hostile range would never end. */
    double first = ceil(r.lo / step - 1e-9), last = floor(r.hi / step + 1e-9);
    for (int k = 0; k <= MAX_TICKS && first + k <= last; k++) {
      double t = (first + k) * step;
      char label[32];
      tick_label(label, sizeof label, t, step, log);
      double at = axis ? round(fy(f, t)) + 0.5 : round(fx(f, t)) + 0.5;
      cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
      if (axis)
        cairo_move_to(cr, f->left, at), cairo_line_to(cr, f->right, at);
      else
        cairo_move_to(cr, at, f->top), cairo_line_to(cr, at, f->bottom);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      if (axis) {
        cairo_move_to(cr, f->left - 5, at), cairo_line_to(cr, f->left, at);
        text_at(cr, label, f->left - 8, at, 1, 0.5);
      } else {
        cairo_move_to(cr, at, f->bottom), cairo_line_to(cr, at, f->bottom + 5);
        text_at(cr, label, at, f->bottom + 9, 0.5, 0);
      }
      cairo_stroke(cr);
    }
  }
  cairo_rectangle(cr, f->left + 0.5, f->top + 0.5, f->right - f->left, f->bottom - f->top);
  cairo_stroke(cr);
  cairo_set_font_size(cr, 13);
  if (pl->xlabel)
    text_at(cr, pl->xlabel, (f->left + f->right) / 2, HEIGHT - 8, 0.5, 1);
  if (pl->ylabel) {
    cairo_save(cr);
    cairo_translate(cr, 16, (f->top + f->bottom) / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, pl->ylabel, 0, 0, 0.5, 0.5);
    cairo_restore(cr);
  }
  if (pl->title) {
    cairo_set_font_size(cr, 15);
    text_at(cr, pl->title, (f->left + f->right) / 2, 12, 0.5, 0);
  }
}

static void mark(cairo_t *cr, const PlotSeries *s, double x, double y) {
  if (s->points) {                               /* dense data: smaller dots, or they merge into a band */
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, s->n > 500 ? 1.2 : 2.5, 0, 2 * M_PI);
    cairo_fill(cr);
  } else {
    cairo_line_to(cr, x, y);
  }
}

static void series(cairo_t *cr, const Plot *pl, const Frame *f) {
  cairo_save(cr);
  cairo_rectangle(cr, f->left, f->top, f->right - f->left, f->bottom - f->top);
  cairo_clip(cr);
  cairo_set_line_width(cr, 2);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (int k = 0; k < pl->nseries; k++) {
    const PlotSeries *s = &pl->series[k];
    const double *c = palette[k % NCOLORS];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    for (int64_t i = 0; i < s->n; i++) {
      double y = y_of(pl, s->y[i]);
      if (isfinite(s->x[i]) && isfinite(y))
        mark(cr, s, fx(f, s->x[i]), fy(f, y));
      else if (!s->points)                       /* a gap in the line */
        cairo_stroke(cr);
    }
    if (!s->points)
      cairo_stroke(cr);
  }
  cairo_restore(cr);
}

static void legend(cairo_t *cr, const Plot *pl, const Frame *f) {
  cairo_set_font_size(cr, 12);
  double width = 0, line = 18;
  for (int k = 0; k < pl->nseries; k++) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, pl->series[k].label ? pl->series[k].label : "", &e);
    width = fmax(width, e.x_advance);
  }
  double w = width + 44, h = line * pl->nseries + 8, x = f->right - w - 8, y = f->top + 8;
  cairo_rectangle(cr, x + 0.5, y + 0.5, w, h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_set_line_width(cr, 2);
  for (int k = 0; k < pl->nseries; k++) {
    const PlotSeries *s = &pl->series[k];
    const double *c = palette[k % NCOLORS];
    double mid = y + 4 + line * (k + 0.5);
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    if (s->points) {
      cairo_arc(cr, x + 18, mid, 2.5, 0, 2 * M_PI);
      cairo_fill(cr);
    } else {
      cairo_move_to(cr, x + 8, mid);
      cairo_line_to(cr, x + 28, mid);
      cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, s->label ? s->label : "", x + 36, mid, 0, 0.5);
  }
}

static cairo_status_t write_to(void *file, const unsigned char *data, unsigned int n) {
  return fwrite(data, 1, n, file) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static void draw(cairo_surface_t *surface, const Plot *pl) {
  cairo_t *cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  Frame f = {.left = LEFT, .top = pl->title ? 40 : 16, .right = WIDTH - RIGHT, .bottom = HEIGHT - BOTTOM};
  extent(pl, &f.x, &f.y);
  if (!pl->log_y) {                              /* room above and below the extremes */
    double pad = (f.y.hi / 2 - f.y.lo / 2) * 0.1;
    f.y = (Range){fmax(f.y.lo - pad, -DBL_MAX), fmin(f.y.hi + pad, DBL_MAX)};
  }
  axes(cr, pl, &f);
  series(cr, pl, &f);
  bool named = false;
  for (int k = 0; k < pl->nseries; k++)
    named |= pl->series[k].label != NULL;
  if (named)
    legend(cr, pl, &f);
  cairo_destroy(cr);
}

bool plot_write(const char *path, const Plot *pl, char *err, size_t errsize) {
  PlotFormat fmt = plot_format(path);
  char *tmp;
  int fd = temp_beside(path, &tmp);
  FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
  if (!f) {
    snprintf(err, errsize, "%s", strerror(errno));
    if (fd >= 0) {
      close(fd);
      unlink(tmp);
      free(tmp);
    }
    return false;
  }
  fchmod(fd, 0644);                              /* mkstemp's 0600 is for secrets */
  cairo_surface_t *surface =
      fmt == PLOT_SVG   ? cairo_svg_surface_create_for_stream(write_to, f, WIDTH, HEIGHT)
      : fmt == PLOT_PDF ? cairo_pdf_surface_create_for_stream(write_to, f, WIDTH, HEIGHT)
                        : cairo_image_surface_create(CAIRO_FORMAT_RGB24, WIDTH, HEIGHT);
  draw(surface, pl);
  if (fmt == PLOT_PNG)
    cairo_surface_write_to_png_stream(surface, write_to, f);
  cairo_surface_finish(surface);                 /* SVG and PDF: the file's end written */
  cairo_status_t status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  int errno_at = ferror(f) ? errno : 0;
  bool ok = fclose(f) == 0 && !errno_at && status == CAIRO_STATUS_SUCCESS;
  if (!ok)
    errno_at = errno_at ? errno_at : errno;
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    errno_at = errno;
  }
  if (!ok) {
    snprintf(err, errsize, "%s",
             status != CAIRO_STATUS_SUCCESS ? cairo_status_to_string(status) : strerror(errno_at));
    unlink(tmp);
  }
  free(tmp);
  return ok;
}

/* ---- text */

/* A grid of braille dots: each cell 2 wide and 4 high. */
typedef struct Dots {
  int w, h;                                      /* in cells */
  unsigned char *cell;                           /* [w * h]: the dots set, as braille bits */
} Dots;

static void dot(Dots *d, int x, int y) {
  static const unsigned char bit[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};
  if (x >= 0 && y >= 0 && x < 2 * d->w && y < 4 * d->h)
    d->cell[(y / 4) * d->w + x / 2] |= bit[x % 2][y % 4];
}

static void dot_line(Dots *d, int x0, int y0, int x1, int y1) {
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  for (int e = dx + dy;;) {                      /* Bresenham's */
    dot(d, x0, y0);
    if (x0 == x1 && y0 == y1)
      return;
    int e2 = 2 * e;
    if (e2 >= dy)
      e += dy, x0 += sx;
    if (e2 <= dx)
      e += dx, y0 += sy;
  }
}

static void dots_series(Dots *d, const Plot *pl, Range x, Range y) {
  int W = 2 * d->w - 1, H = 4 * d->h - 1;
  for (int k = 0; k < pl->nseries; k++) {
    const PlotSeries *s = &pl->series[k];
    bool have = false;
    int px = 0, py = 0;
    for (int64_t i = 0; i < s->n; i++) {
      double v = y_of(pl, s->y[i]);
      if (!isfinite(s->x[i]) || !isfinite(v)) {
        have = false;
        continue;
      }
      int cx = (int)lround(frac(s->x[i], x) * W);
      int cy = (int)lround((1 - frac(v, y)) * H);
      if (have && !s->points)
        dot_line(d, px, py, cx, cy);
      else
        dot(d, cx, cy);
      px = cx, py = cy, have = true;
    }
  }
}

static void value_label(char *out, size_t n, const Plot *pl, double v) {
  snprintf(out, n, "%.4g", pl->log_y ? pow(10, v) : v);
}

void plot_text(Buf *b, const Plot *pl, int cols, int rows) {
  Range x, y;
  extent(pl, &x, &y);
  char top[32], bottom[32], left[32], right[32];
  value_label(top, sizeof top, pl, y.hi);
  value_label(bottom, sizeof bottom, pl, y.lo);
  snprintf(left, sizeof left, "%.4g", x.lo);
  snprintf(right, sizeof right, "%.4g", x.hi);
  int margin = (int)(strlen(top) > strlen(bottom) ? strlen(top) : strlen(bottom));
  /* Below: the x axis, its labels and the next prompt; the last column
   * stays empty, so that no line wraps. */
  Dots d = {.w = cols - margin - 3, .h = rows - 3 - (pl->title != NULL)};
  if (d.w < 8)
    d.w = 8;
  if (d.h < 2)
    d.h = 2;
  d.cell = xcalloc((size_t)d.w * d.h, 1);
  dots_series(&d, pl, x, y);
  if (pl->title)
    buf_printf(b, "%s\n", pl->title);
  for (int r = 0; r < d.h; r++) {
    const char *label = r == 0 ? top : r == d.h - 1 ? bottom : "";
    buf_printf(b, "%*s %s", margin, label, *label ? "┤" : "│");
    for (int c = 0; c < d.w; c++) {
      unsigned bits = d.cell[r * d.w + c];
      if (bits)                                  /* U+2800 + bits, in UTF-8 */
        buf_printf(b, "%c%c%c", 0xE2, 0xA0 + (bits >> 6), 0x80 + (bits & 0x3F));
      else
        buf_puts(b, " ");
    }
    buf_puts(b, "\n");
  }
  buf_printf(b, "%*s └", margin, "");
  for (int c = 0; c < d.w; c++)
    buf_puts(b, "─");
  int gap = d.w - (int)strlen(left) - (int)strlen(right);
  buf_printf(b, "\n%*s  %s%*s%s\n", margin, "", left, gap > 1 ? gap : 1, "", right);
  free(d.cell);
}

/* ---- loss curves */

/* The curves as one plot: the steps of each train numbered after those of
 * the trains before it, from 1 (a resumed train's from the step it resumed
 * at); a log scale when the losses span two
 * decades or more. *xs: the step numbers, for the caller to free. */
static Plot loss_plot(const DlrtCurve *c, int n, PlotSeries *series, double **xs, char (*names)[32]) {
  int64_t total = 0;
  for (int k = 0; k < n; k++)
    total += c[k].n;
  *xs = xmalloc((size_t)(total ? total : 1) * sizeof(double));
  double lo = INFINITY, hi = 0;
  int64_t at = 0, step = 0;
  for (int k = 0; k < n; k++) {
    step += c[k].first_step;
    for (int64_t i = 0; i < c[k].n; i++) {
      (*xs)[at + i] = (double)(step + i + 1);
      if (isfinite(c[k].loss[i]) && c[k].loss[i] > 0)
        lo = fmin(lo, c[k].loss[i]), hi = fmax(hi, c[k].loss[i]);
    }
    snprintf(names[k], 32, "train %d", k + 1);
    series[k] = (PlotSeries){n > 1 ? names[k] : NULL, *xs + at, c[k].loss, c[k].n, false};
    at += c[k].n;
    step += c[k].n;
  }
  bool all_positive = true;
  for (int k = 0; k < n; k++)
    for (int64_t i = 0; i < c[k].n; i++)
      all_positive &= !(c[k].loss[i] <= 0);
  return (Plot){.xlabel = "step", .ylabel = "loss", .series = series, .nseries = n,
                .log_y = all_positive && lo < hi && hi / lo >= 100};
}

bool plot_loss_write(const char *path, const DlrtCurve *c, int n, char *err, size_t errsize) {
  PlotSeries series[n > 0 ? n : 1];
  char names[n > 0 ? n : 1][32];
  double *xs;
  Plot pl = loss_plot(c, n, series, &xs, names);
  bool ok = plot_write(path, &pl, err, errsize);
  free(xs);
  return ok;
}

void plot_loss_text(Buf *b, const DlrtCurve *c, int cols, int rows) {
  PlotSeries series[1];
  char names[1][32];
  double *xs;
  Plot pl = loss_plot(c, 1, series, &xs, names);
  Buf title = {0};
  buf_printf(&title, "loss of the last train: %lld steps%s", (long long)c->n,
             pl.log_y ? ", log scale" : "");
  if (c->lost)
    buf_printf(&title, " (and %lld more: no memory to keep them)", (long long)c->lost);
  pl.title = title.data;
  plot_text(b, &pl, cols, rows);
  buf_free(&title);
  free(xs);
}
