/* checkpoint.c — training saved to a JSON file, and resumed from one.
 *
 *   {"format": "dlc-checkpoint", "version": 1, "precision": "float32",
 *    "train": 1, "steps": 2000, "step": 1500, "optimizer": "adam",
 *    "epoch_loss": 1.25,              (minibatches only)
 *    "params": {"a": 0.25, "w": [0.5, 1.5]},
 *    "state": {"a": [[m], [v]], "w": [[m...], [v...]]}}
 *
 * "train" numbers the program's train statements from 1, "steps" is that
 * statement's count and "step" how many of them are done; the params are
 * their values after those steps, "epoch_loss" the sum of the losses of
 * the epoch's batches done so far (its log line's mean needs them), and
 * "state" the optimizer's (momentum
 * buffers, Adam's moments, RMSprop's averages of squares), so that a
 * resumed run continues the very same trajectory. Numbers are written
 * as the shortest text that reads back exactly.
 *
 * A file is written whole or not at all: into a temporary file beside it,
 * flushed to disk, then renamed over it, so a crash mid-write leaves the
 * previous checkpoint intact.
 */
#include "dlc.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { FORMAT_VERSION = 1 };

static const char *optimizer_name(OptimKind k) {
  switch (k) {
  case OPT_SGD: return "sgd";
  case OPT_ADAM: return "adam";
  case OPT_RMSPROP: return "rmsprop";
  }
  return "?";
}

/* n numbers from a buffer in the working precision, or from doubles, each
 * as the shortest text that reads back to it (cJSON's own printing may
 * drop the last bit of a double). */
static cJSON *numbers(const void *buf, const double *values, int64_t n, bool f64, bool scalar) {
  cJSON *arr = scalar ? NULL : cJSON_CreateArray();
  for (int64_t i = 0; i < n; i++) {
    double v = values ? values[i] : f64 ? ((const double *)buf)[i] : ((const float *)buf)[i];
    char text[48];
    dlrt_format(text, sizeof text, v, f64);
    cJSON *num = isfinite(v) ? cJSON_CreateRaw(text) : cJSON_CreateNull();
    if (scalar)
      return num;
    cJSON_AddItemToArray(arr, num);
  }
  return arr;
}

/* Writes text to path atomically; false with errno set on failure. */
static bool write_atomically(const char *path, const char *text) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 16);
  snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    free(tmp);
    return false;
  }
  fchmod(fd, 0644);                              /* mkstemp's 0600 is for secrets */
  size_t len = strlen(text), done = 0;
  bool ok = true;
  while (ok && done < len) {
    ssize_t w = write(fd, text + done, len - done);
    ok = w > 0 || (w < 0 && errno == EINTR);
    done += w > 0 ? (size_t)w : 0;
  }
  ok = ok && fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (ok && rename(tmp, path) == 0) {
    /* The rename itself reaches the disk with the directory. */
    char *copy = strdup(path);
    int dir = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
      fsync(dir);
      close(dir);
    }
    free(copy);
    free(tmp);
    return true;
  }
  saved = ok ? errno : saved;
  unlink(tmp);
  free(tmp);
  errno = saved;
  return false;
}

bool checkpoint_save(const Program *p, const char *path, const Checkpoint *c) {
  bool f64 = p->opts.f64;
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", "dlc-checkpoint");
  cJSON_AddNumberToObject(root, "version", FORMAT_VERSION);
  cJSON_AddStringToObject(root, "precision", f64 ? "float64" : "float32");
  cJSON_AddNumberToObject(root, "train", c->train);
  cJSON_AddNumberToObject(root, "steps", (double)c->steps);
  cJSON_AddNumberToObject(root, "step", (double)c->done);
  if (c->action->batch > 0) {
    char text[48];
    dlrt_format(text, sizeof text, c->epoch_loss, true);
    cJSON_AddItemToObject(root, "epoch_loss", isfinite(c->epoch_loss) ? cJSON_CreateRaw(text) : cJSON_CreateNull());
  }
  cJSON_AddStringToObject(root, "optimizer", optimizer_name(c->action->opt.kind));
  cJSON *params = cJSON_AddObjectToObject(root, "params");
  cJSON *state = cJSON_AddObjectToObject(root, "state");
  for (int i = 0; i < p->nparams; i++) {
    const ParamInfo *pi = &p->params[i];
    int64_t n = shape_numel(pi->value.shape);
    bool scalar = pi->value.shape.rank == 0;
    const void *buf = c->bufs ? c->bufs[c->schedule->param_buf[i]] : NULL;
    cJSON_AddItemToObject(params, pi->name, numbers(buf, buf ? NULL : pi->value.v, n, f64, scalar));
    if (!c->bufs)
      continue;
    cJSON *parts = cJSON_CreateArray();
    for (int k = 0; k < 2; k++) {
      int slot = c->schedule->state_buf[2 * i + k];
      if (slot >= 0)
        cJSON_AddItemToArray(parts, numbers(c->bufs[slot], NULL, n, f64, false));
    }
    cJSON_AddItemToObject(state, pi->name, parts);
  }
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  bool ok = text && write_atomically(path, text);
  if (!ok)
    diag_error(p->diags, (Span){0}, "cannot save the checkpoint '%s': %s", path, strerror(errno));
  free(text);
  return ok;
}

/* ---- resuming */

struct Resume {
  cJSON *root;
  int train;
  int64_t step;
};

static bool bad(Program *p, const char *path, const char *fmt, const char *arg) {
  char msg[512];
  snprintf(msg, sizeof msg, fmt, arg);
  diag_error(p->diags, (Span){0}, "cannot resume from '%s': %s", path, msg);
  return false;
}

/* n numbers of json (an array, or one number for a scalar) into out. */
static bool read_numbers(const cJSON *json, double *out, int64_t n, bool scalar) {
  if (scalar && cJSON_IsNumber(json)) {
    out[0] = json->valuedouble;
    return true;
  }
  if (!cJSON_IsArray(json) || cJSON_GetArraySize(json) != n)
    return false;
  int64_t i = 0;
  for (const cJSON *x = json->child; x; x = x->next, i++) {
    if (!cJSON_IsNumber(x))
      return false;
    out[i] = x->valuedouble;
  }
  return true;
}

bool checkpoint_load(Program *p, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return bad(p, path, "%s", strerror(errno));
  Buf text = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    buf_printf(&text, "%.*s", (int)n, chunk);
  fclose(f);
  cJSON *root = cJSON_Parse(text.data ? text.data : "");
  buf_free(&text);
  if (!root)
    return bad(p, path, "%s", "it is not JSON (a damaged file?)");
  const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
  const cJSON *precision = cJSON_GetObjectItemCaseSensitive(root, "precision");
  const cJSON *train = cJSON_GetObjectItemCaseSensitive(root, "train");
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(root, "step");
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
  const char *want = p->opts.f64 ? "float64" : "float32";
  bool ok = true;
  if (!cJSON_IsString(format) || strcmp(format->valuestring, "dlc-checkpoint") != 0)
    ok = bad(p, path, "%s", "it is not a dlc checkpoint");
  else if (!cJSON_IsNumber(version) || version->valueint != FORMAT_VERSION)
    ok = bad(p, path, "%s", "it is of another version of dlc");
  else if (!cJSON_IsString(precision) || strcmp(precision->valuestring, want) != 0)
    ok = bad(p, path, "it was saved in another precision; this run is %s", want);
  else if (!cJSON_IsNumber(train) || !cJSON_IsNumber(step) || !cJSON_IsObject(params) ||
           train->valuedouble < 1 || step->valuedouble < 0)
    ok = bad(p, path, "%s", "its train, step or params are missing or malformed");
  for (int i = 0; ok && i < p->nparams; i++) {
    ParamInfo *pi = &p->params[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, pi->name);
    if (!v)
      ok = bad(p, path, "it has no value for param '%s'", pi->name);
    else if (!read_numbers(v, pi->value.v, shape_numel(pi->value.shape), pi->value.shape.rank == 0))
      ok = bad(p, path, "param '%s' has another shape there", pi->name);
    for (int64_t k = 0; ok && k < shape_numel(pi->value.shape); k++)
      pi->value.v[k] = program_round(p, pi->value.v[k]);
  }
  for (const cJSON *v = ok ? params->child : NULL; v; v = v->next) {
    bool known = false;
    for (int i = 0; i < p->nparams; i++)
      known |= strcmp(p->params[i].name, v->string) == 0;
    if (!known) {
      ok = bad(p, path, "it has a param '%s' this program does not", v->string);
      break;
    }
  }
  if (!ok) {
    cJSON_Delete(root);
    return false;
  }
  p->resume = calloc(1, sizeof *p->resume);
  *p->resume = (struct Resume){root, train->valueint, (int64_t)step->valuedouble};
  return true;
}

int checkpoint_resume_train(const Program *p, int64_t *step) {
  if (!p->resume)
    return 0;
  *step = p->resume->step;
  return p->resume->train;
}

bool checkpoint_resume_state(Program *p, const Action *a, int64_t nsteps, const Schedule *s, void **bufs,
                             double *epoch_loss) {
  const cJSON *root = p->resume->root;
  const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
  const cJSON *opt = cJSON_GetObjectItemCaseSensitive(root, "optimizer");
  const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "state");
  const cJSON *loss = cJSON_GetObjectItemCaseSensitive(root, "epoch_loss");
  if (epoch_loss && !cJSON_IsNumber(loss)) {
    diag_error(p->diags, a->span, "the checkpoint was not saved by a train of minibatches");
    return false;
  }
  if (epoch_loss)
    *epoch_loss = loss->valuedouble;
  if (!cJSON_IsNumber(steps) || (int64_t)steps->valuedouble != nsteps || !cJSON_IsString(opt) ||
      strcmp(opt->valuestring, optimizer_name(a->opt.kind)) != 0) {
    diag_error(p->diags, a->span,
               "the checkpoint was saved by another train (its steps or optimizer differ)");
    return false;
  }
  for (int i = 0; i < p->nparams; i++) {
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(state, p->params[i].name);
    const cJSON *part = parts ? parts->child : NULL;
    int64_t n = shape_numel(p->params[i].value.shape);
    for (int k = 0; k < 2; k++) {
      int slot = s->state_buf[2 * i + k];
      if (slot < 0)
        continue;
      double *v = malloc(sizeof(double) * (size_t)n);
      bool ok = part && read_numbers(part, v, n, false);
      for (int64_t e = 0; ok && e < n; e++) {
        if (p->opts.f64)
          ((double *)bufs[slot])[e] = v[e];
        else
          ((float *)bufs[slot])[e] = (float)v[e];
      }
      free(v);
      if (!ok) {
        diag_error(p->diags, a->span, "the checkpoint lacks the optimizer state of param '%s'",
                   p->params[i].name);
        return false;
      }
      part = part->next;
    }
  }
  return true;
}

void checkpoint_free(Program *p) {
  if (!p->resume)
    return;
  cJSON_Delete(p->resume->root);
  free(p->resume);
  p->resume = NULL;
}
