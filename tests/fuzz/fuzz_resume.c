/* fuzz_resume.c — libFuzzer over `dlc run --resume FILE`: each input is a
 * checkpoint file for one fixed program (a scalar, a matrix and a vector
 * param; trains of adam, of sgd with and without momentum, and of rmsprop
 * on minibatches), read as --resume reads it, in float64 when the input
 * mentions "float64" and in float32 otherwise. Two properties hold besides
 * not crashing:
 *
 *   - a file that is refused leaves the params as they were;
 *   - a file that is accepted restores its optimizer state, and what a
 *     save writes from there loads again, to the same params (dlc reads
 *     back whatever it writes: NaN and infinities included).
 *
 * A crash, a sanitizer report, a hang, a blown memory limit or a broken
 * property (an abort with a message) is a finding.
 *
 * With DLC_FUZZ_WRITE_SEEDS=DIR set, it writes instead a checkpoint of
 * each train, in each precision, to DIR (the seed corpus) and exits.
 *
 * Build and run: tests/fuzz/README.md.
 */
#include "dlc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char model[] =
    "x = linspace(-1, 1, 8)\n"
    "X = stack(x, cos(3 * x))\n"
    "y = sin(3 * x)\n"
    "param a = 0.5\n"
    "param W = [[0.5, -0.5, 0.25], [0.1, 0.2, 0.3]]\n"
    "param v = [0.3, 0.2, 0.1]\n"
    "loss = mean((a * tanh(X @ W) @ v - y)^2)\n"
    "train(steps = 100, optimizer = adam(lr = 0.01))\n"
    "train(steps = 50, optimizer = sgd(lr = 0.01, momentum = 0.9))\n"
    "train(epochs = 3, batch = 3, shuffle = 1, optimizer = rmsprop(lr = 0.01))\n"
    "train(steps = 10, optimizer = sgd(lr = 0.01))\n";

static char dir[] = "/tmp/fuzz_resume_XXXXXX", in_path[64], out_path[64];

typedef struct Compiled {
  Arena *arena;
  Diags diags;
  Program *p;
  Runner *runner;                                /* holds what checkpoint_load read */
} Compiled;

static Compiled compile(bool f64) {
  Compiled c = {arena_new(), {0}, NULL, runner_new()};
  Source *src = source_new(c.arena, "resume.dl", model, strlen(model));
  Stmt *stmts = parse_source(src, c.arena, &c.diags);
  c.p = program_new(c.arena, &c.diags, (Options){.f64 = f64, .opt_level = 2});
  if (c.diags.nerrors || !sema_program(c.p, stmts)) {
    diag_print(&c.diags, stderr);
    abort();                                     /* the harness's own program must compile */
  }
  return c;
}

static void release(Compiled *c) {
  FILE *sink = fopen("/dev/null", "w");
  diag_print(&c->diags, sink);                   /* the messages' own code, on any input */
  fclose(sink);
  runner_free(c->runner);
  program_free(c->p);
  diag_free(&c->diags);
  arena_free(c->arena);
}

static const Action *train_number(const Program *p, int n) {
  for (const Action *a = p->actions; a; a = a->next)
    if (a->kind == ACT_TRAIN && --n == 0)
      return a;
  return NULL;
}

/* Bitwise, NaN for NaN. */
static bool same_params(const Program *p, const Program *q) {
  for (int i = 0; i < p->nparams; i++)
    for (int64_t k = 0; k < shape_numel(p->params[i].value.shape); k++) {
      double a = p->params[i].value.v[k], b = q->params[i].value.v[k];
      if (!(a == b || (isnan(a) && isnan(b))))
        return false;
    }
  return true;
}

static void fail(const char *what, Compiled *c) {
  fprintf(stderr, "fuzz_resume: %s\n", what);
  diag_print(&c->diags, stderr);
  abort();
}

/* Saves train n of c's program after `done` steps, from its buffers (the
 * state as checkpoint_resume_state left it when `resumed`, else a mix of
 * numbers and infinities). */
static bool save(Compiled *c, int n, int64_t done, bool resumed, const char *path) {
  const Action *a = train_number(c->p, n);
  Schedule *s = train_schedule(c->runner, c->p, a->loss, &a->opt);
  void **bufs = exec_make_buffers(c->p, s);
  double epoch_loss = 1.5;
  if (resumed)
    checkpoint_resume_state(c->runner, c->p, s, bufs, &epoch_loss);
  for (int k = 0; !resumed && k < s->nbufs; k++)
    if (s->bufs[k].kind == BUF_STATE && c->p->opts.f64)
      ((double *)bufs[k])[0] = k % 2 ? INFINITY : 0.125;
    else if (s->bufs[k].kind == BUF_STATE)
      ((float *)bufs[k])[0] = k % 2 ? INFINITY : 0.125f;
  bool ok = checkpoint_save(c->p, path, &(Checkpoint){n, a, exec_train_steps(a), done, s, bufs, epoch_loss});
  for (int k = 0; k < s->nbufs; k++)
    free(bufs[k]);
  free(bufs);
  schedule_free(s);
  return ok;
}

/* DLC_FUZZ_WRITE_SEEDS: a checkpoint of each train, halfway, in each
 * precision. */
static void write_seeds(const char *to) {
  for (int f64 = 0; f64 < 2; f64++) {
    Compiled c = compile(f64);
    for (int n = 1; train_number(c.p, n); n++) {
      char path[4200];
      snprintf(path, sizeof path, "%s/train%d%s.json", to, n, f64 ? "_f64" : "");
      if (!save(&c, n, exec_train_steps(train_number(c.p, n)) / 2, false, path))
        fail("cannot write a seed", &c);
    }
    release(&c);
  }
}

static void remove_files(void) {
  unlink(in_path);
  unlink(out_path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *seeds = getenv("DLC_FUZZ_WRITE_SEEDS");
  if (seeds) {
    write_seeds(seeds);
    exit(0);
  }
  if (!mkdtemp(dir))
    abort();
  snprintf(in_path, sizeof in_path, "%s/in.json", dir);
  snprintf(out_path, sizeof out_path, "%s/out.json", dir);
  atexit(remove_files);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(in_path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    abort();
  bool f64 = memmem(data, size, "float64", 7) != NULL;
  Compiled c = compile(f64), before = compile(f64);
  if (!checkpoint_load(c.runner, c.p, in_path)) {
    if (c.diags.nerrors == 0)
      fail("a refused file without an error", &c);
    if (!same_params(c.p, before.p))
      fail("a refused file changed the params", &c);
  } else {
    /* What was read, saved again, reads back the same. */
    int64_t step;
    int n = checkpoint_resume_train(c.runner, &step);
    if (!save(&c, n, step, true, out_path))
      fail("a resumed checkpoint cannot be saved", &c);
    Compiled again = compile(f64);
    if (!checkpoint_load(again.runner, again.p, out_path))
      fail("a checkpoint dlc wrote does not load", &again);
    if (!same_params(c.p, again.p))
      fail("a checkpoint saved again loads other params", &again);
    release(&again);
  }
  release(&before);
  release(&c);
  return 0;
}
