/* exec.c — running a checked program.
 *
 * The actions run in order. A print evaluates its values with the params'
 * current values (eval.c) or shows a formula when the value has a free
 * symbol. A train is compiled: schedule, LLVM IR, the JIT, then one call
 * that runs every step; the buffers it works in are made here from the
 * program's tensors and copied back after, so params carry over to what
 * follows.
 */
#include "dlc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SHOWN_EDGE = 3 };                         /* elements shown at each end of a long vector */

/* The elements [first, first + n) of a vector or a row, elided in the
 * middle when long. */
static void format_row(Buf *b, const double *v, int64_t n, bool f64) {
  char num[64];
  buf_puts(b, "[");
  for (int64_t i = 0; i < n; i++) {
    if (n > 2 * SHOWN_EDGE + 1 && i == SHOWN_EDGE) {
      buf_puts(b, ", ...");
      i = n - SHOWN_EDGE - 1;
      continue;
    }
    dlrt_format(num, sizeof num, v[i], f64);
    buf_printf(b, "%s%s", i ? ", " : "", num);
  }
  buf_puts(b, "]");
}

void exec_format_value(Buf *b, const Tensor *t, bool f64) {
  char num[64];
  if (t->shape.rank == 0) {
    dlrt_format(num, sizeof num, t->v[0], f64);
    buf_puts(b, num);
    return;
  }
  if (t->shape.rank == 1) {
    format_row(b, t->v, t->shape.dim[0], f64);
    return;
  }
  /* A matrix: a list of rows, as NumPy prints it, elided alike. */
  int64_t rows = t->shape.dim[0], cols = t->shape.dim[1];
  buf_puts(b, "[");
  for (int64_t i = 0; i < rows; i++) {
    if (rows > 2 * SHOWN_EDGE + 1 && i == SHOWN_EDGE) {
      buf_puts(b, ", ...");
      i = rows - SHOWN_EDGE - 1;
      continue;
    }
    buf_puts(b, i ? ", " : "");
    format_row(b, t->v + i * cols, cols, f64);
  }
  buf_puts(b, "]");
}

static bool print_action(Program *p, const Action *a, FILE *out) {
  Buf b = {0};
  bool ok = true;
  for (const PrintItem *it = a->items; it; it = it->next) {
    if (it->text)
      buf_puts(&b, it->text);
    if (!it->node)
      continue;
    if (it->node->flags & NODE_HAS_VAR) {
      ir_format(&b, simplify_node(p->graph, it->node), p);
      continue;
    }
    Tensor t;
    char *err = NULL;
    if (!eval_node(p, it->node, NULL, NULL, 0, &t, &err)) {
      diag_error(p->diags, a->span, "%s", err);
      free(err);
      ok = false;
      continue;
    }
    /* An expression alone shows a vector's length before its elements. */
    if (a->kind == ACT_SHOW && t.shape.rank > 0) {
      char sh[64];
      buf_printf(&b, "%s ", shape_str(t.shape, sh));
    }
    exec_format_value(&b, &t, p->opts.f64);
    free(t.v);
  }
  fprintf(out, "%s\n", b.data ? b.data : "");
  buf_free(&b);
  return ok;
}

/* Buffers in the working precision, one per schedule slot. An allocation
 * that fails is an error at the loss, and none is kept. */
void **exec_make_buffers(const Program *p, const Schedule *s) {
  void **bufs = calloc((size_t)s->nbufs + 1, sizeof(void *));
  size_t elem = p->opts.f64 ? sizeof(double) : sizeof(float);
  for (int k = 0; k < s->nbufs; k++) {
    const BufInfo *bi = &s->bufs[k];
    if (!bufs || !(bufs[k] = calloc((size_t)bi->numel, elem))) {
      diag_error(p->diags, s->loss->span, "out of memory: no room for the buffers of this train (%lld numbers)",
                 (long long)bi->numel);
      for (int i = 0; bufs && i < k; i++)
        free(bufs[i]);
      free(bufs);
      return NULL;
    }
    const Tensor *src = bi->kind == BUF_PARAM ? &p->params[bi->index].value
                        : bi->kind == BUF_DATA ? &p->data[bi->index].value
                                               : NULL;
    for (int64_t i = 0; src && i < bi->numel; i++) {
      if (p->opts.f64)
        ((double *)bufs[k])[i] = src->v[i];
      else
        ((float *)bufs[k])[i] = (float)src->v[i];
    }
  }
  return bufs;
}

static void copy_params_back(Program *p, const Schedule *s, void **bufs) {
  for (int i = 0; i < p->nparams; i++) {
    Tensor *t = &p->params[i].value;
    const void *src = bufs[s->param_buf[i]];
    for (int64_t k = 0; k < shape_numel(t->shape); k++)
      t->v[k] = p->opts.f64 ? ((const double *)src)[k] : ((const float *)src)[k];
  }
}

/* Says which value went bad at the step training stopped. */
/* A note with the params' values, after training stopped. */
static void note_params(Program *p, const Action *a) {
  Buf b = {0};
  for (int i = 0; i < p->nparams; i++) {
    buf_printf(&b, "%s%s = ", i ? ", " : "", p->params[i].name);
    exec_format_value(&b, &p->params[i].value, p->opts.f64);
  }
  diag_add(p->diags, DIAG_NOTE, a->span, "the params are %s%s", b.data ? b.data : "(none)",
           p->opts.save_path ? " (saved)" : "");
  buf_free(&b);
}

static bool reaches(Node *root, const Node *n) {
  NodeList order = ir_topo(&root, 1);
  bool found = false;
  for (int i = 0; i < order.n && !found; i++)
    found = order.items[i] == n;
  nodelist_free(&order);
  return found;
}

/* --nan-check: where the first NaN or infinity of the failing step came
 * from, found by evaluating the step again with the params it had. */
static void note_first_nonfinite(Program *p, const Action *a) {
  int np = p->nparams;
  Node *roots[np + 1];
  if (!loss_and_grads(p, a->loss, roots))
    return;
  const Node *n = eval_first_nonfinite(p, roots, np + 1);
  if (!n) {
    diag_add(p->diags, DIAG_NOTE, a->span,
             "--nan-check: evaluated again, the step has no NaN or infinity (the compiled "
             "loop rounds differently)");
    return;
  }
  char where[256] = "in the loss";
  for (int i = 0; !reaches(roots[0], n) && i < np; i++)
    if (reaches(roots[1 + i], n)) {
      snprintf(where, sizeof where, "in the gradient of param '%s'", p->params[i].name);
      break;
    }
  const char *op = op_info[n->op].spelling;
  if (n->span.src)
    diag_add(p->diags, DIAG_NOTE, n->span, "the first NaN or infinity comes from this '%s', %s", op,
             where);
  else
    diag_add(p->diags, DIAG_NOTE, a->span,
             "the first NaN or infinity comes from a '%s' the derivative adds, %s", op, where);
}

static void report_nonfinite(Program *p, const Action *a, int64_t step) {
  if (step < 0) {
    diag_error(p->diags, a->span,
               "training stopped at step %lld: its update would make a param NaN or infinite "
               "(is the learning rate too large?); the params keep their values from before "
               "that step",
               (long long)(-1 - step));
    note_params(p, a);
    return;
  }
  Tensor t;
  char *err = NULL;
  const char *what = "a gradient";
  char num[64] = "";
  if (eval_node(p, a->loss, NULL, NULL, 0, &t, &err)) {
    if (!isfinite(t.v[0])) {
      what = "the loss";
      dlrt_format(num, sizeof num, t.v[0], p->opts.f64);
    }
    free(t.v);
  }
  free(err);
  diag_error(p->diags, a->span,
             "training stopped at step %lld: %s became %s; the params keep their values from "
             "before that step",
             (long long)step, what, num[0] ? num : "NaN or infinite");
  if (p->opts.nan_check)
    note_first_nonfinite(p, a);
  note_params(p, a);
}

/* Each thread should have this many elements of the longest loop: at
 * fewer, a step is over in a microsecond or two and meeting at a barrier
 * (about 0.2 us) eats the gain. Measured on the seed (bench/README.md):
 * two threads take 1.02x one thread's time at 4096 elements, 0.77x at
 * 8192, 0.55x at 16384. */
enum { MIN_ELEMENTS_PER_THREAD = 8192 };

static int thread_count(const Program *p, const Schedule *s) {
  if (s->nloops == 0)
    return 1;                                    /* nothing to share, and no barrier to agree at */
  if (p->opts.threads)
    return p->opts.threads;
  int64_t most = 0;
  for (int l = 0; l < s->nloops; l++) {
    int64_t n = shape_numel(s->loops[l].shape);
    most = n > most ? n : most;
  }
  int64_t n = most / MIN_ELEMENTS_PER_THREAD, cpus = dlrt_cpu_count();
  return (int)(n < 1 ? 1 : n > cpus ? cpus : n);
}

/* Thread k > 0 of a team gets its own copy of the scalar params and their
 * optimizer state; vectors are shared (each thread updates its share). */
static void **private_buffers(const Program *p, const Schedule *s, void **shared) {
  void **bufs = calloc((size_t)s->nbufs + 1, sizeof(void *));
  size_t elem = p->opts.f64 ? sizeof(double) : sizeof(float);
  for (int k = 0; k < s->nbufs; k++) {
    const BufInfo *bi = &s->bufs[k];
    bool scalar = (bi->kind == BUF_PARAM || bi->kind == BUF_STATE) &&
                  p->params[bi->index].node->shape.rank == 0;
    bufs[k] = scalar ? memcpy(malloc(elem), shared[k], elem) : shared[k];
  }
  return bufs;
}

typedef struct TrainRun {
  TrainFn fn;
  const Action *a;
  int64_t first_step, end;                       /* steps [first_step, end) */
  TrainSaver *saver;
  void ***bufs;                                  /* per thread */
  DlrtLog *log;
  int nthreads;
  double *scratch;
  DlrtTeam *team;
  int64_t *done;                                 /* per thread: what fn returned */
} TrainRun;

static void train_thread(void *arg, int k) {
  TrainRun *r = arg;
  r->done[k] = r->fn(r->bufs[k], r->end, r->log, k, r->nthreads, r->scratch, r->team,
                     r->first_step, r->saver);
}

/* Runs the compiled steps on nthreads threads; returns what they return
 * (the same on every thread). */
static int64_t run_team(Program *p, const Schedule *s, TrainRun r, void **bufs, int nthreads,
                        int64_t scratch_doubles) {
  if (nthreads > 1 && (!p->team || dlrt_team_size(p->team) != nthreads)) {
    dlrt_team_free(p->team);
    p->team = dlrt_team_new(nthreads);
  }
  if (!p->team)
    nthreads = 1;                                /* no threads to be had: one is enough */
  r.bufs = calloc((size_t)nthreads, sizeof(void **));
  r.nthreads = nthreads;
  r.scratch = calloc((size_t)scratch_doubles + 1, sizeof(double));
  r.team = nthreads > 1 ? p->team : NULL;
  r.done = calloc((size_t)nthreads, sizeof(int64_t));
  r.bufs[0] = bufs;
  for (int k = 1; k < nthreads; k++)
    r.bufs[k] = private_buffers(p, s, bufs);
  if (nthreads > 1)
    dlrt_team_run(p->team, train_thread, &r);
  else
    train_thread(&r, 0);
  int64_t done = r.done[0];
  for (int k = 1; k < nthreads; k++) {
    for (int b = 0; b < s->nbufs; b++)
      if (r.bufs[k][b] != bufs[b])
        free(r.bufs[k][b]);
    free(r.bufs[k]);
  }
  free(r.bufs);
  free(r.scratch);
  free(r.done);
  return done;
}

/* The number of train a among the program's trains, from 1. */
static int train_number(const Program *p, const Action *a) {
  int n = 0;
  for (const Action *b = p->actions; b; b = b->next) {
    n += b->kind == ACT_TRAIN;
    if (b == a)
      break;
  }
  return n;
}

/* --save-every: the compiled code's checkpoints. */
typedef struct ExecSaver {
  TrainSaver base;
  Program *p;
  const Action *a;
  int64_t steps;
  const Schedule *s;
  void **bufs;
  int train;
  const DlrtLog *log;
  bool failed;                                   /* a save failed (reported): the run's status says so */
} ExecSaver;

static void save_during_train(TrainSaver *self, int64_t done) {
  ExecSaver *e = (ExecSaver *)self;
  e->failed |= !checkpoint_save(e->p, e->p->opts.save_path,
                                &(Checkpoint){e->train, e->a, e->steps, done, e->s, e->bufs, e->log->epoch_sum});
}

/* Steps done, from what the train function returned. */
static int64_t steps_done(const Action *a, int64_t r) {
  return r > a->steps ? r - a->steps - 1 : r < 0 ? -1 - r : r;
}

/* What the end of a train says: a warning for a diverging loss or an
 * interrupt, or the error of a NaN. */
static bool train_outcome(Program *p, const Action *a, const DlrtLog *log, int64_t done, int64_t steps) {
  if (log->diverged_step >= 0) {
    char from[48], to[48];
    dlrt_format(from, sizeof from, log->first_loss, p->opts.f64);
    dlrt_format(to, sizeof to, log->diverged_loss, p->opts.f64);
    long long n = (long long)(log->diverged_step - log->first_step);
    diag_add(p->diags, DIAG_WARNING, a->span,
             "the loss went from %s to %s in %lld step%s: is the learning rate too large?", from, to,
             n, n == 1 ? "" : "s");
  }
  if (done > steps) {
    diag_add(p->diags, DIAG_WARNING, a->span,
             "training interrupted after %lld of %lld steps; the params keep their values",
             (long long)(done - steps - 1), (long long)steps);
    return true;
  }
  if (done != steps) {
    report_nonfinite(p, a, done);
    return false;
  }
  return true;
}

/* ---- minibatches */

/* A train compiled for one batch size: a function for the CPU, or a
 * kernel for the GPU (--target gpu). */
typedef struct BatchTrain {
  Schedule *s;
  TrainFn fn;                                    /* the CPU's */
  JitCode *code;
  int64_t scratch;
  GpuKernel kernel;                              /* the GPU's (ptx NULL on the CPU) */
  void **bufs;
  void **dst;                                    /* [ntensors]: its batch buffers */
} BatchTrain;

/* The schedule's train function for the CPU, through the JIT. */
static bool compile_batch_cpu(Program *p, const Action *a, BatchTrain *bt) {
  char name[32];
  snprintf(name, sizeof name, "dl_train_%d", ++p->ntrains);
  double t0 = now_ms();
  LLVMModuleRefDl m = codegen_train(p, bt->s, &a->opt, jit_context(p->jit), name, jit_vector_bits(p->jit),
                                    &bt->scratch);
  p->ms[PHASE_IR] += now_ms() - t0;
  bt->fn = (TrainFn)jit_add(p->jit, m, name, p->diags, p->ms, &bt->code);
  return bt->fn != NULL;
}

static bool compile_batch_gpu(Program *p, const Action *a, BatchTrain *bt) {
  double t0 = now_ms();
  bool ok = gpu_compile(p, bt->s, a, &a->opt, p->opts.gpu_arch, &bt->kernel);
  p->ms[PHASE_JIT] += now_ms() - t0;
  return ok;
}

/* The loss on batches of `rows` rows: each batched data leaf replaced by a
 * leaf of that many rows, compiled for the target. */
static bool compile_batch(Program *p, const Action *a, Node *const *full, int nfull, int64_t rows,
                          BatchTrain *bt) {
  Node *leaves[nfull + 1];
  for (int m = 0; m < nfull; m++) {
    Shape sh = full[m]->shape;
    sh.dim[0] = rows;
    Tensor t = {sh, calloc((size_t)shape_numel(sh), sizeof(double))};
    const char *name = arena_printf(p->arena, "%s[batch]", p->data[full[m]->slot].name ? p->data[full[m]->slot].name : "data");
    leaves[m] = ir_batch_leaf(p->graph, sh, program_add_data(p, name, t));
  }
  Node *loss = ir_rebatch(p->graph, a->loss, full, leaves, nfull, rows);
  if (!(bt->s = schedule_train(p, loss, &a->opt)))
    return false;
  bt->s->batched = true;
  if (!(p->opts.gpu_arch ? compile_batch_gpu(p, a, bt) : compile_batch_cpu(p, a, bt)))
    return false;
  if (!(bt->bufs = exec_make_buffers(p, bt->s)))
    return false;
  bt->dst = calloc((size_t)nfull + 1, sizeof(void *));
  for (int k = 0; k < nfull; k++) {
    int slot = bt->s->data_buf[leaves[k]->slot];
    bt->dst[k] = slot >= 0 ? bt->bufs[slot] : NULL;
  }
  return true;
}

/* Batches of at most a->batch rows of n, and how many to an epoch. */
static int64_t batches_per_epoch(const Action *a, int64_t n, int64_t *batch) {
  *batch = a->batch < n ? a->batch : n;
  return *batch > 0 ? (n + *batch - 1) / *batch : 1;
}

int64_t exec_train_steps(const Action *a) {
  if (a->batch <= 0 || !a->epochs)
    return a->steps;
  Node *full[ir_count(a->loss) + 1];
  int nfull;
  int64_t batch;
  return a->epochs * batches_per_epoch(a, ir_batched_data(a->loss, full, &nfull), &batch);
}

/* Steps [first, end) of a kernel on the GPU, from the host buffers and
 * back into them: the params, and with `state` their optimizer state too.
 * *done as TrainFn's result; false with the error reported. */
static bool gpu_steps(Program *p, const Schedule *s, const GpuKernel *k, void **bufs, bool state,
                      int64_t first, int64_t end, DlrtLog *log, int64_t *done) {
  size_t bytes[s->nbufs + 1];
  char copy_back[s->nbufs + 1];
  for (int b = 0; b < s->nbufs; b++) {
    bytes[b] = (size_t)s->bufs[b].numel * (p->opts.f64 ? sizeof(double) : sizeof(float));
    copy_back[b] = s->bufs[b].kind == BUF_PARAM || (state && s->bufs[b].kind == BUF_STATE);
  }
  DlrtGpuTrain run = {.ptx = k->ptx, .kernel = GPU_KERNEL, .block = k->block, .max_grid = k->max_grid,
                      .elements = k->elements, .nbufs = s->nbufs, .bufs = bufs, .bytes = bytes,
                      .copy_back = copy_back, .scratch_doubles = k->scratch_doubles,
                      .first_step = first, .steps = end, .log = log};
  char err[512];
  if (dlrt_gpu_train(&run, done, err, sizeof err) == 0)
    return true;
  diag_error(p->diags, (Span){0}, "%s", err);
  return false;
}

/* Steps [t, end) of one batch size, *r as TrainFn's result. On the CPU,
 * one call of its function, which gathers each step's batch itself. On
 * the GPU, a launch per step: the host gathers the batch first (the
 * kernel has no dlrt_batch), and the params and their state come back
 * after, as the next launch, of either batch size, uploads them again.
 * False when the GPU failed (reported). */
static bool run_batch_steps(Program *p, const Action *a, BatchTrain *bt, DlrtLog *log, TrainSaver *saver,
                            int64_t t, int64_t end, int64_t *r) {
  if (!bt->kernel.ptx) {
    TrainRun run = {.fn = bt->fn, .a = a, .first_step = t, .end = end, .saver = saver, .log = log};
    *r = run_team(p, bt->s, run, bt->bufs, thread_count(p, bt->s), bt->scratch);
    return true;
  }
  for (; t < end; t++) {
    dlrt_batch(log, t);
    if (!gpu_steps(p, bt->s, &bt->kernel, bt->bufs, true, t, t + 1, log, r))
      return false;
    if (*r != t + 1)
      return true;
    if (dlrt_interrupt && t + 1 < end) {
      *r = end + 1 + (t + 1);                    /* as the CPU function says it */
      return true;
    }
  }
  *r = end;
  return true;
}

/* train(..., batch = B): epochs of minibatches. Full batches and the
 * smaller last one (when B does not divide the rows) are two compiled
 * trains (functions, or GPU kernels) that share the params and the
 * optimizer state. */
static bool exec_train_batches(Program *p, const Action *a, FILE *out) {
  Node *full[ir_count(a->loss) + 1];
  int nfull;
  int64_t n = ir_batched_data(a->loss, full, &nfull);   /* sema checked that it splits */
  int64_t batch, nb = batches_per_epoch(a, n, &batch), last = n - (nb - 1) * batch;
  int64_t steps = a->epochs ? a->epochs * nb : a->steps;

  BatchTrain bt[2] = {{0}};
  int ntrains = last == batch ? 1 : 2;
  bool ok = true;
  for (int k = 0; k < ntrains && ok; k++)
    ok = compile_batch(p, a, full, nfull, k ? last : batch, &bt[k]);
  double t1 = now_ms();
  DlrtBatches batches = {.n = n, .batch = batch, .nbatches = nb, .shuffle = a->shuffle >= 0, .epoch = -1,
                         .order = malloc(sizeof(int64_t) * (size_t)n), .ntensors = nfull};
  dlrt_rng_seed(&batches.rng, (uint64_t)(a->shuffle >= 0 ? a->shuffle : 0));
  const char *src[nfull + 1];
  int64_t row_bytes[nfull + 1];
  size_t elem = p->opts.f64 ? sizeof(double) : sizeof(float);
  for (int m = 0; m < nfull; m++) {
    const Tensor *t = &p->data[full[m]->slot].value;
    char *copy = malloc(elem * (size_t)shape_numel(t->shape));
    for (int64_t i = 0; i < shape_numel(t->shape); i++)
      if (p->opts.f64)
        ((double *)copy)[i] = t->v[i];
      else
        ((float *)copy)[i] = (float)t->v[i];
    src[m] = copy;
    row_bytes[m] = (int64_t)elem * shape_numel(t->shape) / n;
  }
  batches.src = src;
  batches.row_bytes = row_bytes;
  /* The last batch's train shares the first's params and state. */
  if (ok && ntrains == 2)
    for (int k = 0; k < bt[1].s->nbufs; k++) {
      BufInfo *bi = &bt[1].s->bufs[k];
      int i = bi->index, share = bi->kind == BUF_PARAM ? bt[0].s->param_buf[i] : -1;
      if (bi->kind == BUF_STATE)
        share = bt[1].s->state_buf[2 * i] == k ? bt[0].s->state_buf[2 * i] : bt[0].s->state_buf[2 * i + 1];
      if (share >= 0) {
        free(bt[1].bufs[k]);
        bt[1].bufs[k] = bt[0].bufs[share];
      }
    }
  fflush(out);
  DlrtLog log = {out, p->opts.f64, .every = a->log_every, .diverged_step = -1, .batches = &batches};
  int number = train_number(p, a);
  int64_t t = 0;
  bool resuming = ok && checkpoint_resume_train(p, &t) == number;
  if (!resuming)
    t = 0;
  else
    checkpoint_resume_state(p, bt[0].s, bt[0].bufs, &log.epoch_sum);
  log.first_step = t;
  ExecSaver saver = {{save_during_train}, p, a, steps, bt[0].s, bt[0].bufs, number, &log, false};
  int64_t done = steps, every = p->opts.save_path ? p->opts.save_every : 0;
  double t2 = now_ms();
  while (ok && t < steps) {
    int which = ntrains == 2 && t % nb == nb - 1;
    int64_t end = which ? t + 1 : ntrains == 2 ? t - t % nb + nb - 1 : steps;
    end = end < steps ? end : steps;
    batches.dst = bt[which].dst;
    int64_t r;
    if (!run_batch_steps(p, a, &bt[which], &log, &saver.base, t, end, &r)) {
      ok = false;
      break;
    }
    if (r != end) {
      done = r > end ? steps + 1 + (r - end - 1) : r;   /* as one call of all steps would say */
      break;
    }
    t = end;
    if (every > 0 && t % every == 0 && t < steps)    /* (the compiled code saves within a call) */
      save_during_train(&saver.base, t);
  }
  double t3 = now_ms();
  if (ok) {
    copy_params_back(p, bt[0].s, bt[0].bufs);
    if (p->opts.save_path)
      save_during_train(&saver.base, done > steps ? done - steps - 1 : done < 0 ? -1 - done : done);
  }
  if (resuming)
    checkpoint_free(p);
  for (int k = 0; k < ntrains; k++) {
    if (bt[k].code)
      jit_remove(p->jit, bt[k].code);
    for (int b = 0; bt[k].bufs && b < bt[k].s->nbufs; b++)
      if (k == 0 || bt[k].s->bufs[b].kind == BUF_DATA || bt[k].s->bufs[b].kind == BUF_GRAD ||
          bt[k].s->bufs[b].kind == BUF_TEMP)
        free(bt[k].bufs[b]);
    free(bt[k].bufs);
    free(bt[k].dst);
    gpu_kernel_free(&bt[k].kernel);
    schedule_free(bt[k].s);
  }
  for (int m = 0; m < nfull; m++)
    free((void *)src[m]);
  free(batches.order);
  p->ms[PHASE_TRAIN] += t3 - t2;
  p->ms[PHASE_DATA] += (t2 - t1) + (now_ms() - t3);
  return ok && train_outcome(p, a, &log, done, steps) && !saver.failed;
}


/* --target gpu: the train compiled by gpu.c and run by the runtime's
 * cuda.c; the buffers go to the device once, the params come back. */
static bool exec_train_gpu(Program *p, const Action *a, FILE *out) {
  Schedule *s = schedule_train(p, a->loss, &a->opt);
  if (!s)
    return false;
  GpuKernel kernel;
  double t0 = now_ms();
  bool ok = gpu_compile(p, s, a, &a->opt, p->opts.gpu_arch, &kernel);
  double t1 = now_ms();
  p->ms[PHASE_JIT] += t1 - t0;
  if (!ok) {
    schedule_free(s);
    return false;
  }
  void **bufs = exec_make_buffers(p, s);
  if (!bufs) {
    gpu_kernel_free(&kernel);
    schedule_free(s);
    return false;
  }
  fflush(out);
  DlrtLog log = {out, p->opts.f64, .every = a->log_every, .diverged_step = -1};
  int64_t done;
  double t2 = now_ms();
  ok = gpu_steps(p, s, &kernel, bufs, false, 0, a->steps, &log, &done);
  double t3 = now_ms();
  if (ok)
    copy_params_back(p, s, bufs);
  for (int k = 0; k < s->nbufs; k++)
    free(bufs[k]);
  free(bufs);
  gpu_kernel_free(&kernel);
  schedule_free(s);
  p->ms[PHASE_TRAIN] += t3 - t2;
  p->ms[PHASE_DATA] += t2 - t1;
  return ok && train_outcome(p, a, &log, done, a->steps);
}

bool exec_train(Program *p, const Action *a, FILE *out) {
  if (a->batch > 0) {
    if (!p->opts.gpu_arch && !p->jit && !(p->jit = jit_new(p->opts.opt_level, p->diags)))
      return false;
    return exec_train_batches(p, a, out);
  }
  if (p->opts.gpu_arch)
    return exec_train_gpu(p, a, out);
  double tj = now_ms();
  if (!p->jit && !(p->jit = jit_new(p->opts.opt_level, p->diags)))
    return false;
  p->ms[PHASE_JIT] += now_ms() - tj;
  Schedule *s = schedule_train(p, a->loss, &a->opt);
  if (!s)
    return false;
  char name[32];
  snprintf(name, sizeof name, "dl_train_%d", ++p->ntrains);   /* one JIT: unique names */
  double t0 = now_ms();
  int64_t scratch_doubles;
  LLVMModuleRefDl m = codegen_train(p, s, &a->opt, jit_context(p->jit), name,
                                    jit_vector_bits(p->jit), &scratch_doubles);
  p->ms[PHASE_IR] += now_ms() - t0;
  JitCode *code;
  TrainFn train = (TrainFn)jit_add(p->jit, m, name, p->diags, p->ms, &code);
  if (!train) {
    schedule_free(s);
    return false;
  }
  double t1 = now_ms();
  void **bufs = exec_make_buffers(p, s);
  if (!bufs) {
    jit_remove(p->jit, code);
    schedule_free(s);
    return false;
  }
  int number = train_number(p, a);
  int64_t first_step = 0;
  bool resuming = checkpoint_resume_train(p, &first_step) == number;
  if (resuming)
    checkpoint_resume_state(p, s, bufs, NULL);
  else
    first_step = 0;
  fflush(out);
  DlrtLog log = {out, p->opts.f64, .every = a->log_every, .first_step = first_step,
                 .diverged_step = -1};
  ExecSaver saver = {{save_during_train}, p, a, a->steps, s, bufs, number, &log, false};
  TrainRun run = {.fn = train, .a = a, .first_step = first_step, .end = a->steps, .saver = &saver.base,
                  .log = &log};
  double t2 = now_ms();
  int64_t done = run_team(p, s, run, bufs, thread_count(p, s), scratch_doubles);
  double t3 = now_ms();
  jit_remove(p->jit, code);
  copy_params_back(p, s, bufs);
  if (p->opts.save_path)
    save_during_train(&saver.base, steps_done(a, done));
  if (resuming)
    checkpoint_free(p);                          /* resumed: the next trains start afresh */
  for (int k = 0; k < s->nbufs; k++)
    free(bufs[k]);
  free(bufs);
  p->ms[PHASE_TRAIN] += t3 - t2;
  p->ms[PHASE_DATA] += (t2 - t1) + (now_ms() - t3);
  schedule_free(s);
  return train_outcome(p, a, &log, done, a->steps) && !saver.failed;
}

bool exec_program(Program *p, FILE *out) { return exec_actions(p, p->actions, out); }

bool exec_actions(Program *p, const Action *from, FILE *out) {
  bool ok = true;
  /* An interrupt (dlrt_interrupt) ends the run after the action it came
   * in: a train stops after its step, and nothing after it runs. */
  /* --resume: what came before the train resumed ran in the run that
   * saved it (checkpoint_load found the train). */
  int64_t step;
  int resume = checkpoint_resume_train(p, &step);
  if (resume) {
    int n = 0;
    while (!(from->kind == ACT_TRAIN && ++n == resume))
      from = from->next;
    if (step >= exec_train_steps(from)) {
      from = from->next;                         /* it had finished */
      checkpoint_free(p);
    }
  }
  for (const Action *a = from; a; a = dlrt_interrupt ? NULL : a->next) {
    bool this_ok = a->kind == ACT_TRAIN ? exec_train(p, a, out) : print_action(p, a, out);
    /* Errors and warnings now, in order with the output; after an error
     * the later actions still run, so the params' values are shown. */
    fflush(out);
    diag_print(p->diags, stderr);
    ok &= this_ok;
  }
  fflush(out);
  return ok;
}

/* ---- dlc emit */

static const Action *first_train(const Program *p) {
  for (const Action *a = p->actions; a; a = a->next)
    if (a->kind == ACT_TRAIN)
      return a;
  return NULL;
}

static bool emit_grad(Program *p, FILE *out) {
  int np = p->nparams;
  Node *roots[np + 1];
  if (!loss_and_grads(p, p->loss, roots))
    return false;
  for (int i = 0; i <= np; i++)                  /* written out as trees, as print writes formulas */
    if (ir_tree_size(roots[i]) > MAX_FORMULA_TERMS) {
      diag_error(p->diags, p->loss->span,
                 "%s%s is too long to print: %.3g terms written out; the limit is %d",
                 i ? "the gradient of " : "this loss", i ? p->params[i - 1].name : "",
                 ir_tree_size(roots[i]), MAX_FORMULA_TERMS);
      return false;
    }
  Buf b = {0};
  buf_puts(&b, "loss = ");
  ir_format(&b, roots[0], p);
  for (int i = 0; i < np; i++) {
    buf_printf(&b, "\ngrad %s = ", p->params[i].name);
    ir_format(&b, roots[i + 1], p);
  }
  fprintf(out, "%s\n", b.data);
  buf_free(&b);
  return true;
}

bool exec_emit(Program *p, const char *what, FILE *out) {
  if (!p->loss) {
    diag_error(p->diags, (Span){0}, "emit %s: the program defines no loss", what);
    return false;
  }
  if (strcmp(what, "grad") == 0)
    return emit_grad(p, out);
  const Action *a = first_train(p);
  Optimizer sgd = {.kind = OPT_SGD, .lr = 1e-3};
  const Optimizer *opt = a ? &a->opt : &sgd;
  Schedule *s = schedule_train(p, p->loss, opt);
  if (!s)
    return false;
  bool ok = true;
  if (strcmp(what, "ir") == 0) {
    int np = p->nparams;
    Node *roots[np + 1];
    const char *names[np + 1];
    roots[0] = s->loss;
    names[0] = "loss";
    for (int i = 0; i < np; i++) {
      roots[i + 1] = s->grads[i];
      names[i + 1] = arena_printf(p->arena, "grad %s", p->params[i].name);
    }
    ir_dump(roots, names, np + 1, p, out);
    for (int l = 0; l < s->nloops; l++) {
      const Loop *lp = &s->loops[l];
      fprintf(out, "; loop %d, stage %d, %lld elements:", l, lp->stage,
              (long long)shape_numel(lp->shape));
      for (int r = 0; r < lp->reductions.n; r++)
        fprintf(out, " %s%%%u", r ? "" : "reduces ", lp->reductions.items[r]->id);
      for (int k = 0; k < lp->stores.n; k++)
        fprintf(out, "%s%%%u", k ? " " : lp->reductions.n ? ", stores " : " stores ",
                lp->stores.items[k]->id);
      fputc('\n', out);
    }
    for (int k = 0; k < s->nkernels; k++) {
      const Node *n = s->kernels[k].node;
      char sh[64];
      fprintf(out, "; kernel %d, stage %d: %s %%%u : %s%s\n", k, s->kernels[k].stage, op_info[n->op].name,
              n->id, shape_str(n->shape, sh),
              codegen_uses_blas(n) ? " (OpenBLAS)" : "");
    }
    fprintf(out, "; %d stage%s, %d loop%s, %d kernel%s per step\n", s->nstages, s->nstages == 1 ? "" : "s",
            s->nloops, s->nloops == 1 ? "" : "s", s->nkernels, s->nkernels == 1 ? "" : "s");
  } else if (strcmp(what, "ptx") == 0) {
    GpuKernel kernel;
    ok = gpu_compile(p, s, a, opt, p->opts.gpu_arch ? p->opts.gpu_arch : GPU_DEFAULT_ARCH, &kernel);
    if (ok)
      fputs(kernel.ptx, out);
    gpu_kernel_free(&kernel);
  } else {
    if (!p->jit && !(p->jit = jit_new(p->opts.opt_level, p->diags))) {
      schedule_free(s);
      return false;
    }
    int64_t scratch_doubles;
    LLVMModuleRefDl m = codegen_train(p, s, opt, jit_context(p->jit), "dl_train",
                                      jit_vector_bits(p->jit), &scratch_doubles);
    char *text = jit_module_text(p->jit, m, strcmp(what, "asm") == 0, p->diags);
    ok = text != NULL;
    if (text)
      fputs(text, out);
    free(text);
  }
  schedule_free(s);
  return ok;
}

/* `--time`: each phase, and the whole, on one line. */
void exec_print_times(const Program *p, double total, FILE *f) {
  static const char *const names[] = {
#define X(name, text) text,
      PHASES(X)
#undef X
  };
  fputs("time:", f);
  for (int i = 0; i < PHASE_COUNT; i++)
    fprintf(f, "%s %s %.2f ms", i ? "," : "", names[i], p->ms[i]);
  if (p->team && dlrt_team_size(p->team) > 1)
    fprintf(f, " on %d threads", dlrt_team_size(p->team));
  fprintf(f, "; total %.2f ms\n", total);
}
