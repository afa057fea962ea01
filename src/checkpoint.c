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
 * as the shortest text that reads back exactly; NaN and the infinities,
 * which JSON lacks (Adam's second moment can overflow float32 while
 * training stays finite), as the strings "nan", "inf" and "-inf".
 *
 * A file is written whole or not at all: into a temporary file beside it,
 * flushed to disk, then renamed over it, so a crash mid-write leaves the
 * previous checkpoint intact; a write that fails (a full disk, a file size
 * limit) removes the temporary file. Whether the place can be written is
 * checked before anything runs.
 *
 * A file to resume from is checked whole before anything runs — its
 * size (bounded by what the program's params can take), its JSON, and
 * that it fits the program and the train it names — so that a refused
 * resume runs nothing and overwrites nothing.
 */
#include "dlc.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
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

/* v as JSON: the shortest text that reads back to it, or a string for
 * NaN and the infinities. */
static cJSON *number(double v, bool f64) {
  char text[48];
  dlrt_format(text, sizeof text, v, f64);
  return isfinite(v) ? cJSON_CreateRaw(text) : cJSON_CreateString(text);
}

/* n numbers of a buffer in the working precision: an array, or one
 * number for a scalar. */
static cJSON *numbers(const void *buf, int64_t n, bool f64, bool scalar) {
  cJSON *arr = scalar ? NULL : cJSON_CreateArray();
  for (int64_t i = 0; i < n; i++) {
    cJSON *num = number(f64 ? ((const double *)buf)[i] : ((const float *)buf)[i], f64);
    if (scalar)
      return num;
    cJSON_AddItemToArray(arr, num);
  }
  return arr;
}

/* Writes text to path atomically; false with errno set on failure. */
static bool write_atomically(const char *path, const char *text) {
  char *tmp;
  int fd = temp_beside(path, &tmp);
  if (fd < 0)
    return false;
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
    char *copy = xstrdup(path);
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
  if (c->action->batch > 0)
    cJSON_AddItemToObject(root, "epoch_loss", number(c->epoch_loss, true));
  cJSON_AddStringToObject(root, "optimizer", optimizer_name(c->action->opt.kind));
  cJSON *params = cJSON_AddObjectToObject(root, "params");
  cJSON *state = cJSON_AddObjectToObject(root, "state");
  for (int i = 0; i < p->nparams; i++) {
    const ParamInfo *pi = &p->params[i];
    int64_t n = shape_numel(pi->value.shape);
    bool scalar = pi->value.shape.rank == 0;
    cJSON_AddItemToObject(params, pi->name, numbers(c->bufs[c->schedule->param_buf[i]], n, f64, scalar));
    cJSON *parts = cJSON_CreateArray();
    for (int k = 0; k < 2; k++) {
      int slot = c->schedule->state_buf[2 * i + k];
      if (slot >= 0)
        cJSON_AddItemToArray(parts, numbers(c->bufs[slot], n, f64, false));
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

bool checkpoint_check_target(const Program *p, const char *path) {
  const char *why = writable_target(path);
  if (why)
    diag_error(p->diags, (Span){0}, "cannot save the checkpoint '%s': %s", path, why);
  return !why;
}

/* ---- resuming */

/* Where to go on from, read whole from the checkpoint: the train and its
 * steps done, and the optimizer state the params are restored with. */
struct Resume {
  int train;
  int64_t step;
  double epoch_loss;
  double **state;                                /* [nstate = 2 * nparams]: per param, its buffers' values */
  int nstate;
};

static bool bad(Program *p, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool bad(Program *p, const char *path, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(p->diags, (Span){0}, "cannot resume from '%s': %s", path, msg);
  return false;
}

/* The most bytes a checkpoint of p can take, however it is laid out (a
 * number, with the space around it, in at most 64): reading stops there,
 * so that no file can make a resume read without end. */
static size_t max_size(const Program *p) {
  size_t n = 1 << 16;
  for (int i = 0; i < p->nparams; i++)
    n += 2 * strlen(p->params[i].name) + 256 + 3 * 64 * (size_t)shape_numel(p->params[i].value.shape);
  return n;
}

/* The file's text, read by its length, or NULL with the error reported.
 * Only a regular file: a FIFO would block and a device never end. */
static char *read_text(Program *p, const char *path, size_t *len) {
  struct stat st;
  const char *why;
  int fd = dlrt_open_regular(path, &st, &why);
  if (fd < 0) {
    bad(p, path, "%s", why);
    return NULL;
  }
  size_t most = max_size(p);
  if ((uint64_t)st.st_size > most) {
    close(fd);
    bad(p, path, "it is %lld bytes, more than a checkpoint of this program can be (%zu)",
        (long long)st.st_size, most);
    return NULL;
  }
  char *text = xmalloc((size_t)st.st_size + 1);
  *len = 0;
  for (ssize_t got; *len < (size_t)st.st_size; *len += (size_t)got)
    if ((got = read(fd, text + *len, (size_t)st.st_size - *len)) <= 0) {
      if (got == 0)
        break;                                   /* it shrank: what is there will be judged */
      if (errno == EINTR) {
        got = 0;
        continue;
      }
      bad(p, path, "%s", strerror(errno));
      close(fd);
      free(text);
      return NULL;
    }
  close(fd);
  text[*len] = '\0';
  if (memchr(text, '\0', *len)) {
    bad(p, path, "it holds a NUL byte (a damaged file?)");
    free(text);
    return NULL;
  }
  return text;
}

/* What a JSON value is, to say what was found where a number should be. */
static const char *kind(const cJSON *x) {
  return !x                ? "missing"
         : cJSON_IsNull(x)   ? "null"
         : cJSON_IsBool(x)   ? "a boolean"
         : cJSON_IsString(x) ? "a string"
         : cJSON_IsArray(x)  ? "a list"
         : cJSON_IsObject(x) ? "an object"
                             : "a number out of range";
}

/* One value: a number that stays finite in the precision, or "nan",
 * "inf", "-inf" (how the others are written). */
static bool read_value(const cJSON *x, double *v, bool f64) {
  if (cJSON_IsNumber(x)) {
    *v = dlrt_round(x->valuedouble, f64);
    return isfinite(*v);
  }
  const char *s = cJSON_IsString(x) ? x->valuestring : "";
  *v = strcmp(s, "nan") == 0 ? NAN : strcmp(s, "inf") == 0 ? INFINITY : -INFINITY;
  return strcmp(s, "nan") == 0 || strcmp(s, "inf") == 0 || strcmp(s, "-inf") == 0;
}

/* n values of json (a list; one value for a scalar) into out; false with
 * what is wrong in why. */
static bool read_values(const cJSON *json, double *out, int64_t n, bool scalar, bool f64, char *why,
                        size_t size) {
  if (scalar) {
    bool ok = read_value(json, out, f64);
    if (!ok)
      snprintf(why, size, "is %s there, not a number", kind(json));
    return ok;
  }
  if (!cJSON_IsArray(json)) {
    snprintf(why, size, "is %s there, not a list of %lld numbers", kind(json), (long long)n);
    return false;
  }
  if (cJSON_GetArraySize(json) != n) {
    snprintf(why, size, "has %d numbers there, and %lld here", cJSON_GetArraySize(json), (long long)n);
    return false;
  }
  int64_t i = 0;
  for (const cJSON *x = json->child; x; x = x->next, i++)
    if (!read_value(x, &out[i], f64)) {
      snprintf(why, size, "has %s at index %lld, not a number", kind(x), (long long)i);
      return false;
    }
  return true;
}

/* A whole number in [lo, hi] (1.5, or 1e300 for an int64, is not). */
static bool whole(const cJSON *x, double lo, double hi, int64_t *out) {
  if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < lo ||
      x->valuedouble > hi)
    return false;
  *out = (int64_t)x->valuedouble;
  return true;
}

static const cJSON *field(const cJSON *root, const char *name) {
  return cJSON_GetObjectItemCaseSensitive(root, name);
}

/* A header field that is not the whole number wanted, for the message. */
static const char *shown(const cJSON *x, char *buf, size_t size) {
  if (cJSON_IsNumber(x))
    snprintf(buf, size, "%.17g", x->valuedouble);
  return cJSON_IsNumber(x) ? buf : kind(x);
}

/* The header of the file: what it is, which train and how far. */
static bool read_header(Program *p, const char *path, const cJSON *root, struct Resume *r,
                        int64_t *steps) {
  const cJSON *format = field(root, "format"), *precision = field(root, "precision");
  const cJSON *opt = field(root, "optimizer");
  const char *want = p->opts.f64 ? "float64" : "float32";
  int64_t version, train;
  char num[32];
  if (!cJSON_IsString(format) || strcmp(format->valuestring, "dlc-checkpoint") != 0)
    return bad(p, path, "it is not a dlc checkpoint");
  if (!whole(field(root, "version"), FORMAT_VERSION, FORMAT_VERSION, &version))
    return bad(p, path, "it is of another version of dlc");
  if (!cJSON_IsString(precision) || strcmp(precision->valuestring, want) != 0)
    return bad(p, path, "it was saved in another precision; this run is %s", want);
  if (!whole(field(root, "train"), 1, INT32_MAX, &train))
    return bad(p, path, "its \"train\" is %s, not a whole number from 1",
               shown(field(root, "train"), num, sizeof num));
  if (!whole(field(root, "steps"), 0, 9007199254740992.0, steps))
    return bad(p, path, "its \"steps\" is %s, not a whole number from 0",
               shown(field(root, "steps"), num, sizeof num));
  if (!whole(field(root, "step"), 0, (double)*steps, &r->step))
    return bad(p, path, "its \"step\" is %s, not a whole number from 0 to its steps (%lld)",
               shown(field(root, "step"), num, sizeof num), (long long)*steps);
  if (!cJSON_IsString(opt))
    return bad(p, path, "its \"optimizer\" is %s, not a name", kind(opt));
  if (!cJSON_IsObject(field(root, "params")) || !cJSON_IsObject(field(root, "state")))
    return bad(p, path, "its \"params\" or \"state\" is missing or not an object");
  r->train = (int)train;
  return true;
}

/* The program's train number r->train, or NULL with the error reported. */
static const Action *the_train(Program *p, const char *path, const struct Resume *r) {
  int n = 0;
  for (const Action *a = p->actions; a; a = a->next)
    if (a->kind == ACT_TRAIN && ++n == r->train)
      return a;
  bad(p, path, "it is of train %d, and this program has %d", r->train, n);
  return NULL;
}

/* Whether the train it names is this train: its steps, its optimizer,
 * and minibatches or not. */
static bool same_train(Program *p, const char *path, const cJSON *root, const Action *a, int64_t steps,
                       struct Resume *r) {
  const char *opt = field(root, "optimizer")->valuestring, *here = optimizer_name(a->opt.kind);
  int64_t here_steps = exec_train_steps(a);
  const cJSON *loss = field(root, "epoch_loss");
  char why[512] = "";
  if (steps != here_steps || strcmp(opt, here) != 0)
    snprintf(why, sizeof why, "it was saved by another train: %lld steps of %s, and this one is %lld steps of %s",
             (long long)steps, opt, (long long)here_steps, here);
  else if (a->batch > 0 && !read_value(loss, &r->epoch_loss, true))
    snprintf(why, sizeof why, "it was not saved by a train of minibatches (its \"epoch_loss\" is %s)",
             kind(loss));
  else if (a->batch <= 0 && loss)
    snprintf(why, sizeof why, "it was saved by a train of minibatches, and this one has none");
  if (why[0])
    diag_error(p->diags, a->span, "cannot resume from '%s': %s", path, why);
  return !why[0];
}

/* Each param's value, into values[i] (the program's only once all are read). */
static bool read_params(Program *p, const char *path, const cJSON *params, double **values) {
  char why[256];
  for (int i = 0; i < p->nparams; i++) {
    const ParamInfo *pi = &p->params[i];
    const cJSON *v = field(params, pi->name);
    if (!v)
      return bad(p, path, "it has no value for param '%s'", pi->name);
    if (!read_values(v, values[i], shape_numel(pi->value.shape), pi->value.shape.rank == 0, p->opts.f64,
                     why, sizeof why))
      return bad(p, path, "param '%s' %s", pi->name, why);
  }
  return true;
}

/* Each param's optimizer state: as many lists as the train's optimizer
 * keeps, each of the param's size. */
static bool read_state(Program *p, const char *path, const cJSON *state, const Action *a, struct Resume *r) {
  int count = schedule_state_count(&a->opt);
  char why[256];
  for (int i = 0; i < p->nparams; i++) {
    const ParamInfo *pi = &p->params[i];
    const cJSON *parts = field(state, pi->name);
    int64_t n = shape_numel(pi->value.shape);
    if (!cJSON_IsArray(parts))
      return bad(p, path, "the optimizer state of param '%s' is %s there, not a list", pi->name, kind(parts));
    if (cJSON_GetArraySize(parts) != count)
      return bad(p, path, "the optimizer state of param '%s' has %d lists there, and this train's %s keeps %d",
                 pi->name, cJSON_GetArraySize(parts), optimizer_name(a->opt.kind), count);
    const cJSON *part = parts->child;
    for (int k = 0; k < count; k++, part = part->next) {
      r->state[2 * i + k] = xmalloc(sizeof(double) * (size_t)(n + 1));
      if (!read_values(part, r->state[2 * i + k], n, false, p->opts.f64, why, sizeof why))
        return bad(p, path, "the optimizer state of param '%s' %s", pi->name, why);
    }
  }
  return true;
}

/* Names in the file that are no param of the program. */
static bool no_extra(Program *p, const char *path, const cJSON *obj, const char *what) {
  for (const cJSON *v = obj->child; v; v = v->next) {
    bool known = false;
    for (int i = 0; i < p->nparams && !known; i++)
      known = strcmp(p->params[i].name, v->string) == 0;
    if (!known)
      return bad(p, path, "it has %s '%s' this program does not", what, v->string);
  }
  return true;
}

static void free_resume(struct Resume *r) {
  for (int k = 0; r->state && k < r->nstate; k++)
    free(r->state[k]);
  free(r->state);
  free(r);
}

/* Checks the whole file against the program; the params' values are
 * set only when everything is right. */
static bool check_and_apply(Program *p, const char *path, const cJSON *root, struct Resume *r) {
  int64_t steps = 0;
  const Action *a;
  if (!read_header(p, path, root, r, &steps) || !(a = the_train(p, path, r)) ||
      !same_train(p, path, root, a, steps, r))
    return false;
  double *values[p->nparams + 1];
  for (int i = 0; i < p->nparams; i++)
    values[i] = xmalloc(sizeof(double) * (size_t)(shape_numel(p->params[i].value.shape) + 1));
  bool ok = read_params(p, path, field(root, "params"), values) &&
            no_extra(p, path, field(root, "params"), "a param") &&
            read_state(p, path, field(root, "state"), a, r) &&
            no_extra(p, path, field(root, "state"), "optimizer state for a param");
  for (int i = 0; i < p->nparams; i++) {
    if (ok)
      memcpy(p->params[i].value.v, values[i], sizeof(double) * (size_t)shape_numel(p->params[i].value.shape));
    free(values[i]);
  }
  return ok;
}

bool checkpoint_load(Runner *runner, Program *p, const char *path) {
  size_t len;
  char *text = read_text(p, path, &len);
  if (!text)
    return false;
  /* The terminator counts: it makes text after the JSON an error. */
  cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, NULL, true);
  free(text);
  if (!root)
    return bad(p, path, "it is not JSON (a damaged file?)");
  struct Resume *r = xcalloc(1, sizeof *r);
  r->nstate = 2 * p->nparams;
  r->state = xcalloc((size_t)r->nstate + 1, sizeof(double *));
  bool ok = check_and_apply(p, path, root, r);
  cJSON_Delete(root);
  if (ok) {
    checkpoint_forget(runner);
    runner->resume = r;
  } else {
    free_resume(r);
  }
  return ok;
}

int checkpoint_resume_train(const Runner *r, int64_t *step) {
  if (!r->resume)
    return 0;
  *step = r->resume->step;
  return r->resume->train;
}

void checkpoint_resume_state(const Runner *r, const Program *p, const Schedule *s, void **bufs,
                             double *epoch_loss) {
  if (epoch_loss)
    *epoch_loss = r->resume->epoch_loss;
  for (int i = 0; i < p->nparams; i++)
    for (int k = 0; k < 2; k++) {
      int slot = s->state_buf[2 * i + k];
      const double *v = r->resume->state[2 * i + k];
      for (int64_t e = 0; slot >= 0 && e < shape_numel(p->params[i].value.shape); e++)
        if (p->opts.f64)
          ((double *)bufs[slot])[e] = v[e];
        else
          ((float *)bufs[slot])[e] = (float)v[e];
    }
}

void checkpoint_forget(Runner *r) {
  if (!r->resume)
    return;
  free_resume(r->resume);
  r->resume = NULL;
}
