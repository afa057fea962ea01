/* progress.c — what a train shows while it runs: the progress line on a
 * terminal, and --log's file.
 *
 * Both hang off the DlrtLog that compiled code hands to dlrt_step every
 * step, so both run on thread 0 between steps and must cost nothing there.
 * The progress line reads the clock only every `countdown` steps, a count
 * set at each read from the rate so far (tqdm's miniters, made adaptive):
 * a 0.3 us step pays a decrement and a branch, and the clock is read about
 * fifty times a second whatever the step time. The log file is written at
 * the log lines only, a line at a time and flushed, so a run killed midway
 * leaves a file that is whole up to its last line.
 */
#include "dlrt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double dlrt_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- the progress line */

enum { BAR_WIDTH = 20, MIN_BAR = 5, MAX_STRIDE = 1 << 16 };

void dlrt_progress_begin(DlrtProgress *p, int fd, int64_t first, int64_t total, int64_t nbatches) {
  struct winsize ws;
  *p = (DlrtProgress){.fd = fd, .first = first, .total = total, .nbatches = nbatches,
                      .countdown = 1, .start = dlrt_seconds()};
  p->width = ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

/* A rate as few digits: 350, 3.5, 81.2k, 1.25M. */
static void format_rate(char *buf, size_t size, double r) {
  const char *unit = "";
  if (r >= 1e6) {
    r /= 1e6;
    unit = "M";
  } else if (r >= 1e4) {
    r /= 1e3;
    unit = "k";
  }
  snprintf(buf, size, r >= 100 || r == floor(r) ? "%.0f%s" : "%.3g%s", r, unit);
}

/* Seconds as m:ss or h:mm:ss. */
static void format_time(char *buf, size_t size, double s) {
  long long t = s < 0 ? 0 : s > 1e9 ? 999999999 : (long long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, size, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, size, "%lld:%02lld", t / 60, t % 60);
}

/*  41% [########            ] step 41000/100000, 30.2k steps/s, 0:02 left, loss 0.0123
 *
 * The bar takes what the terminal's width leaves, up to BAR_WIDTH, and is
 * left out below MIN_BAR; the line is cut one column short of the width,
 * as a line that wraps could not be erased. */
static void draw(DlrtProgress *p, int64_t step, double rate) {
  int64_t done = step + 1;
  double frac = p->total > 0 ? (double)done / (double)p->total : 1;
  char text[256], rate_text[32], left[32], loss[48] = "", line[512];
  format_rate(rate_text, sizeof rate_text, rate);
  format_time(left, sizeof left, rate > 0 ? (double)(p->total - done) / rate : 0);
  if (p->has_loss)
    snprintf(loss, sizeof loss, ", loss %.6g", p->loss);
  if (p->nbatches > 0)
    snprintf(text, sizeof text, "epoch %lld/%lld, batch %lld/%lld, %s batches/s, %s left%s",
             (long long)(step / p->nbatches + 1), (long long)(p->total / p->nbatches),
             (long long)(step % p->nbatches + 1), (long long)p->nbatches, rate_text, left, loss);
  else
    snprintf(text, sizeof text, "step %lld/%lld, %s steps/s, %s left%s", (long long)done,
             (long long)p->total, rate_text, left, loss);
  int room = p->width - 1 - (int)strlen(text) - 8;   /* "100% [" "] " */
  int bar = room < MIN_BAR ? 0 : room > BAR_WIDTH ? BAR_WIDTH : room;
  /* \r, the line, then erase what a longer line before left on the right. */
  int n = snprintf(line, sizeof line, "\r%3d%% ", (int)(frac * 100));
  if (bar) {
    line[n++] = '[';
    for (int i = 0; i < bar; i++)
      line[n++] = i < (int)(frac * bar) ? '#' : ' ';
    n += snprintf(line + n, sizeof line - (size_t)n, "] ");
  }
  n += snprintf(line + n, sizeof line - (size_t)n, "%s", text);
  if (n > p->width)                              /* (n counts the \r) */
    n = p->width;
  memcpy(line + n, "\033[K", 3);
  if (write(p->fd, line, (size_t)n + 3) > 0)
    p->shown = 1;
}

void dlrt_progress_tick(DlrtProgress *p, int64_t step) {
  double now = dlrt_seconds(), elapsed = now - p->start;
  double rate = elapsed > 0 ? (double)(step + 1 - p->first) / elapsed : 0;
  double stride = rate * DLRT_PROGRESS_READ;
  p->countdown = stride < 1 ? 1 : stride > MAX_STRIDE ? MAX_STRIDE : (int64_t)stride;
  if (elapsed < DLRT_PROGRESS_AFTER || now - p->drawn_at < DLRT_PROGRESS_REDRAW)
    return;
  p->drawn_at = now;
  draw(p, step, rate);
}

void dlrt_progress_clear(DlrtProgress *p) {
  if (p->shown && write(p->fd, "\r\033[K", 4) > 0)
    p->shown = 0;
}

/* ---- --log's file */

int dlrt_log_format(const char *path) {
  const char *dot = strrchr(path, '.');
  if (dot && strchr(dot, '/') == NULL) {
    if (strcmp(dot, ".csv") == 0)
      return DLRT_LOG_CSV;
    if (strcmp(dot, ".jsonl") == 0)
      return DLRT_LOG_JSONL;
  }
  return -1;
}

static int64_t numel(const DlrtLogParam *p) {
  return p->rank == 0 ? 1 : p->rank == 1 ? p->dim[0] : p->dim[0] * p->dim[1];
}

int dlrt_log_open(DlrtLogFile *lf, const char *path, int append, int f64, const DlrtLogParam *params,
                  int nparams) {
  *lf = (DlrtLogFile){.format = (DlrtLogFormat)dlrt_log_format(path), .f64 = f64};
  /* Without a wait: a FIFO that no one reads is refused (ENXIO) rather
   * than hanging the run before it starts. */
  int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_NONBLOCK | O_CLOEXEC, 0666);
  if (fd < 0)
    return -1;
  struct stat st;
  int empty = fstat(fd, &st) != 0 || st.st_size == 0;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  if (!(lf->f = fdopen(fd, "w"))) {
    close(fd);
    return -1;
  }
  int64_t values = 0;
  for (int i = 0; i < nparams; i++)
    values += numel(&params[i]);
  if (nparams > 0 && values <= DLRT_LOG_MAX_PARAM_VALUES) {
    lf->nparams = nparams;
    lf->params = malloc(sizeof *params * (size_t)nparams);
    memcpy(lf->params, params, sizeof *params * (size_t)nparams);
  }
  if (lf->format == DLRT_LOG_JSONL || !empty)
    return 0;
  fputs("train,step,epoch,loss,seconds", lf->f);
  for (int i = 0; i < lf->nparams; i++) {
    const DlrtLogParam *p = &lf->params[i];
    int64_t cols = p->rank == 2 ? p->dim[1] : 1;
    for (int64_t k = 0; k < numel(p); k++) {
      if (p->rank == 0)
        fprintf(lf->f, ",%s", p->name);
      else if (p->rank == 1)
        fprintf(lf->f, ",%s[%lld]", p->name, (long long)k);
      else
        fprintf(lf->f, ",%s[%lld][%lld]", p->name, (long long)(k / cols), (long long)(k % cols));
    }
  }
  fputc('\n', lf->f);
  if (fflush(lf->f) != 0)
    lf->error = errno;
  return 0;
}

/* A number as the log lines print it; JSON has no NaN or infinity, so
 * there they are null. */
static void put_number(DlrtLogFile *lf, double v) {
  char text[48];
  if (lf->format == DLRT_LOG_JSONL && !isfinite(v)) {
    fputs("null", lf->f);
    return;
  }
  dlrt_format(text, sizeof text, v, lf->f64);
  fputs(text, lf->f);
}

static double param_value(const DlrtLogFile *lf, const DlrtLogParam *p, int64_t k) {
  return lf->f64 ? ((const double *)p->data)[k] : ((const float *)p->data)[k];
}

/* A param's value in JSON: a number, a list, or a list of rows. */
static void put_json_param(DlrtLogFile *lf, const DlrtLogParam *p) {
  if (p->rank == 0) {
    put_number(lf, param_value(lf, p, 0));
    return;
  }
  int64_t rows = p->rank == 2 ? p->dim[0] : 1, cols = p->rank == 2 ? p->dim[1] : p->dim[0];
  fputs(p->rank == 2 ? "[" : "", lf->f);
  for (int64_t r = 0; r < rows; r++) {
    fputs(r ? ", [" : "[", lf->f);
    for (int64_t c = 0; c < cols; c++) {
      fputs(c ? ", " : "", lf->f);
      put_number(lf, param_value(lf, p, r * cols + c));
    }
    fputs("]", lf->f);
  }
  fputs(p->rank == 2 ? "]" : "", lf->f);
}

void dlrt_log_write(DlrtLogFile *lf, int64_t step, int64_t epoch, double loss) {
  if (lf->error)
    return;
  double seconds = dlrt_seconds() - lf->start;
  FILE *f = lf->f;
  if (lf->format == DLRT_LOG_CSV) {
    fprintf(f, "%d,%lld,", lf->train, (long long)step);
    if (epoch >= 0)
      fprintf(f, "%lld", (long long)epoch);
    fputc(',', f);
    put_number(lf, loss);
    fprintf(f, ",%.6f", seconds);
    for (int i = 0; i < lf->nparams; i++)
      for (int64_t k = 0; k < numel(&lf->params[i]); k++) {
        fputc(',', f);
        put_number(lf, param_value(lf, &lf->params[i], k));
      }
  } else {
    fprintf(f, "{\"train\": %d, \"step\": %lld", lf->train, (long long)step);
    if (epoch >= 0)
      fprintf(f, ", \"epoch\": %lld", (long long)epoch);
    fputs(", \"loss\": ", f);
    put_number(lf, loss);
    fprintf(f, ", \"seconds\": %.6f", seconds);
    /* The params in an object of their own: a param may be named step. */
    for (int i = 0; i < lf->nparams; i++) {
      fprintf(f, "%s\"%s\": ", i ? ", " : ", \"params\": {", lf->params[i].name);
      put_json_param(lf, &lf->params[i]);
    }
    fputs(lf->nparams ? "}}" : "}", f);
  }
  fputc('\n', f);
  if (fflush(f) != 0)
    lf->error = errno;                           /* (a full disk: said when the train ends) */
}

void dlrt_log_close(DlrtLogFile *lf) {
  if (lf->f)
    fclose(lf->f);
  free(lf->params);
  *lf = (DlrtLogFile){0};
}
