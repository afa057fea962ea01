/* exec.c — running a checked program.
 *
 * The actions run in order. A print evaluates its values with the params'
 * current values (eval.c) or shows a formula when the value has a free
 * symbol. A train is compiled by train.c (with minibatches, once per batch
 * size), then run: one call of its function on the runner's thread team,
 * or launches on the GPU; the buffers it works in are made here from the
 * program's tensors and copied back after, so params carry over to what
 * follows. What stopped it (train_result) decides what the run says.
 */
#include "dlc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Evaluates x and the ys with the params' current values, as print does,
 * and draws them: with several ys the first is the data, drawn as dots,
 * and the others lines through it; a lone y is a line. */
static bool plot_action(Program *p, const Action *a) {
  const PlotStmt *ps = a->plot;
  Tensor t[ps->nvalues];
  PlotSeries series[ps->nvalues];
  int made = 0;
  bool ok = true;
  for (; made < ps->nvalues; made++) {
    char *err = NULL;
    if (!eval_node(p, ps->values[made], NULL, NULL, 0, &t[made], &err)) {
      diag_error(p->diags, a->span, "%s", err);
      free(err);
      ok = false;
      break;
    }
  }
  for (int i = 1; i < made && ok; i++)
    series[i - 1] = (PlotSeries){ps->labels ? ps->labels[i - 1] : NULL, t[0].v, t[i].v,
                                 t[0].shape.dim[0], i == 1 && ps->nvalues > 2};
  Plot pl = {ps->title, ps->xlabel, ps->ylabel, false, series, ps->nvalues - 1};
  char err[256];
  if (ok && !plot_write(ps->path, &pl, err, sizeof err)) {
    diag_error(p->diags, ps->path_span, "cannot write the plot '%s': %s", ps->path, err);
    ok = false;
  }
  for (int i = 0; i < made; i++)
    free(t[i].v);
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

static void report_nonfinite(Program *p, const Action *a, TrainResult res) {
  if (res.stop == TRAIN_UPDATE_NONFINITE) {
    diag_error(p->diags, a->span,
               "training stopped at step %lld: its update would make a param NaN or infinite "
               "(is the learning rate too large?); the params keep their values from before "
               "that step",
               (long long)res.done);
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
             (long long)res.done, what, num[0] ? num : "NaN or infinite");
  if (p->opts.nan_check)
    note_first_nonfinite(p, a);
  note_params(p, a);
}

/* What the end of a train says: a warning for a diverging loss or an
 * interrupt, or the error of a NaN. */
static bool train_outcome(Program *p, const Action *a, const DlrtLog *log, TrainResult res, int64_t steps) {
  if (log->diverged_step >= 0) {
    char from[48], to[48];
    dlrt_format(from, sizeof from, log->first_loss, p->opts.f64);
    dlrt_format(to, sizeof to, log->diverged_loss, p->opts.f64);
    long long n = (long long)(log->diverged_step - log->first_step);
    diag_add(p->diags, DIAG_WARNING, a->span,
             "the loss went from %s to %s in %lld step%s: is the learning rate too large?", from, to,
             n, n == 1 ? "" : "s");
  }
  switch (res.stop) {
  case TRAIN_DONE: return true;
  case TRAIN_INTERRUPTED:
    diag_add(p->diags, DIAG_WARNING, a->span,
             "training interrupted after %lld of %lld steps; the params keep their values",
             (long long)res.done, (long long)steps);
    return true;
  case TRAIN_NONFINITE:
  case TRAIN_UPDATE_NONFINITE: report_nonfinite(p, a, res); return false;
  }
  return false;
}

/* ---- running compiled steps */

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

/* Thread k > 0 of a team: its own copy of the buffers each thread holds
 * (schedule_buffer_private), the others shared. */
static void **private_buffers(const Program *p, const Schedule *s, void **shared) {
  void **bufs = xcalloc((size_t)s->nbufs + 1, sizeof(void *));
  size_t elem = p->opts.f64 ? sizeof(double) : sizeof(float);
  for (int k = 0; k < s->nbufs; k++)
    bufs[k] = schedule_buffer_private(p, s, k) ? memcpy(xmalloc(elem), shared[k], elem) : shared[k];
  return bufs;
}

typedef struct TrainRun {
  TrainFn fn;
  int64_t first_step, end;                       /* steps [first_step, end) */
  TrainSaver *saver;
  void ***bufs;                                  /* per thread */
  DlrtLog *log;
  int nthreads;
  double *scratch;
  DlrtTeam *team;
  int64_t *code;                                 /* per thread: what fn returned */
} TrainRun;

static void train_thread(void *arg, int k) {
  TrainRun *r = arg;
  r->code[k] = r->fn(r->bufs[k], r->end, r->log, k, r->nthreads, r->scratch, r->team,
                     r->first_step, r->saver);
}

/* Steps [first, end) of a CPU train on the runner's team (made or remade
 * for the thread count this train wants). Every thread returns the same. */
static TrainResult run_team(Runner *rn, const Program *p, const Train *tr, void **bufs, DlrtLog *log,
                            TrainSaver *saver, int64_t first, int64_t end) {
  int nthreads = thread_count(p, tr->s);
  if (nthreads > 1 && (!rn->team || dlrt_team_size(rn->team) != nthreads)) {
    dlrt_team_free(rn->team);
    rn->team = dlrt_team_new(nthreads);
  }
  if (!rn->team)
    nthreads = 1;                                /* no threads to be had: one is enough */
  TrainRun r = {.fn = tr->fn, .first_step = first, .end = end, .saver = saver, .log = log,
                .bufs = xcalloc((size_t)nthreads, sizeof(void **)), .nthreads = nthreads,
                .scratch = xcalloc((size_t)tr->scratch_doubles + 1, sizeof(double)),
                .team = nthreads > 1 ? rn->team : NULL, .code = xcalloc((size_t)nthreads, sizeof(int64_t))};
  r.bufs[0] = bufs;
  for (int k = 1; k < nthreads; k++)
    r.bufs[k] = private_buffers(p, tr->s, bufs);
  if (nthreads > 1)
    dlrt_team_run(rn->team, train_thread, &r);
  else
    train_thread(&r, 0);
  TrainResult res = train_result(r.code[0], end);
  for (int k = 1; k < nthreads; k++) {
    for (int b = 0; b < tr->s->nbufs; b++)
      if (r.bufs[k][b] != bufs[b])
        free(r.bufs[k][b]);
    free(r.bufs[k]);
  }
  free(r.bufs);
  free(r.scratch);
  free(r.code);
  return res;
}

/* Steps [first, end) of a GPU train, from the host buffers and back into
 * them: the params, and with `state` their optimizer state too. False with
 * the error reported. */
static bool gpu_steps(Program *p, const Train *tr, void **bufs, bool state, int64_t first, int64_t end,
                      DlrtLog *log, TrainResult *res) {
  const Schedule *s = tr->s;
  const GpuKernel *k = &tr->kernel;
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
  int64_t code;
  if (dlrt_gpu_train(&run, &code, err, sizeof err) == 0) {
    *res = train_result(code, end);
    return true;
  }
  diag_error(p->diags, (Span){0}, "%s", err);
  return false;
}

/* Steps [t, end) of one compiled train. On the CPU, one call of its
 * function (which, with minibatches, gathers each step's batch itself). On
 * the GPU, one launch; with minibatches a launch per step: the host
 * gathers the batch first (the kernel has no dlrt_batch), and the params
 * and their state come back after, as the next launch, of either batch
 * size, uploads them again. False when the GPU failed (reported). */
static bool run_steps(Runner *r, Program *p, const Train *tr, void **bufs, bool batched, DlrtLog *log,
                      TrainSaver *saver, int64_t t, int64_t end, TrainResult *res) {
  if (!tr->kernel.ptx) {
    *res = run_team(r, p, tr, bufs, log, saver, t, end);
    return true;
  }
  if (!batched)
    return gpu_steps(p, tr, bufs, false, t, end, log, res);
  for (; t < end; t++) {
    dlrt_batch(log, t);
    if (!gpu_steps(p, tr, bufs, true, t, t + 1, log, res))
      return false;
    if (res->stop != TRAIN_DONE)
      return true;
    if (dlrt_interrupt && t + 1 < end) {
      *res = (TrainResult){TRAIN_INTERRUPTED, t + 1};
      return true;
    }
  }
  *res = (TrainResult){TRAIN_DONE, end};
  return true;
}

/* ---- one train statement */

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

/* A train statement compiled: one train, or with minibatches one per
 * batch size (full batches, and the smaller last one when the batch does
 * not divide the rows), sharing the params and the optimizer state. */
typedef struct Trains {
  Train t[2];
  int n;
  void **bufs[2];
  void **dst[2];                                 /* minibatches: each train's batch buffers */
  Node **full;                                   /* minibatches: the data leaves they split */
  int nfull;
  int64_t rows, batch, per_epoch;                /* minibatches: the data's rows; per batch; batches per epoch */
} Trains;

/* The loss on batches of `rows` rows: each batched data leaf replaced by a
 * leaf of that many rows (the batch's buffer). */
static Node *batch_loss(Program *p, const Action *a, Trains *ts, int64_t rows, Node **leaves) {
  for (int m = 0; m < ts->nfull; m++) {
    Shape sh = ts->full[m]->shape;
    sh.dim[0] = rows;
    Tensor t = {sh, xcalloc((size_t)shape_numel(sh), sizeof(double))};
    const char *name = p->data[ts->full[m]->slot].name;
    name = arena_printf(p->arena, "%s[batch]", name ? name : "data");
    leaves[m] = ir_batch_leaf(p->graph, sh, program_add_data(p, name, t));
  }
  return ir_rebatch(p->graph, a->loss, ts->full, leaves, ts->nfull, rows);
}

/* Compiles train a for the target, and makes its buffers. */
static bool compile_trains(Runner *r, Program *p, const Action *a, Trains *ts) {
  TrainOutput out = p->opts.gpu_arch ? TRAIN_FOR_GPU : TRAIN_FOR_CPU;
  if (a->batch <= 0) {
    ts->n = 1;
    return train_compile(r, p, a, a->loss, &a->opt, out, &ts->t[0]) &&
           (ts->bufs[0] = exec_make_buffers(p, ts->t[0].s));
  }
  ts->full = xcalloc((size_t)ir_count(a->loss) + 1, sizeof(Node *));
  ts->rows = ir_batched_data(a->loss, ts->full, &ts->nfull);   /* sema checked that it splits */
  ts->per_epoch = batches_per_epoch(a, ts->rows, &ts->batch);
  int64_t last = ts->rows - (ts->per_epoch - 1) * ts->batch;
  ts->n = last == ts->batch ? 1 : 2;
  for (int k = 0; k < ts->n; k++) {
    Node *leaves[ts->nfull + 1];
    Node *loss = batch_loss(p, a, ts, k ? last : ts->batch, leaves);
    if (!train_compile(r, p, a, loss, &a->opt, out, &ts->t[k]))
      return false;
    if (!(ts->bufs[k] = exec_make_buffers(p, ts->t[k].s)))
      return false;
    ts->dst[k] = xcalloc((size_t)ts->nfull + 1, sizeof(void *));
    for (int m = 0; m < ts->nfull; m++) {
      int slot = ts->t[k].s->data_buf[leaves[m]->slot];
      ts->dst[k][m] = slot >= 0 ? ts->bufs[k][slot] : NULL;
    }
  }
  /* The last batch's train shares the first's params and state. */
  const Schedule *s0 = ts->t[0].s;
  for (int k = 0; ts->n == 2 && k < ts->t[1].s->nbufs; k++) {
    const Schedule *s1 = ts->t[1].s;
    const BufInfo *bi = &s1->bufs[k];
    int i = bi->index, share = bi->kind == BUF_PARAM ? s0->param_buf[i] : -1;
    if (bi->kind == BUF_STATE)
      share = s1->state_buf[2 * i] == k ? s0->state_buf[2 * i] : s0->state_buf[2 * i + 1];
    if (share >= 0) {
      free(ts->bufs[1][k]);
      ts->bufs[1][k] = ts->bufs[0][share];
    }
  }
  return true;
}

static void free_trains(Runner *r, Trains *ts) {
  for (int k = 0; k < 2; k++) {
    const Schedule *s = ts->t[k].s;
    for (int b = 0; ts->bufs[k] && b < s->nbufs; b++)
      if (k == 0 || (s->bufs[b].kind != BUF_PARAM && s->bufs[b].kind != BUF_STATE))
        free(ts->bufs[k][b]);                    /* (the second's params and state are the first's) */
    free(ts->bufs[k]);
    free(ts->dst[k]);
    train_free(r, &ts->t[k]);
  }
  free(ts->full);
}

/* The minibatches' order and sources: each batched data leaf's rows in the
 * working precision, gathered into a train's batch buffers every step. */
static void batches_begin(const Program *p, const Action *a, const Trains *ts, DlrtBatches *b) {
  size_t elem = p->opts.f64 ? sizeof(double) : sizeof(float);
  const char **src = xcalloc((size_t)ts->nfull + 1, sizeof(char *));
  int64_t *row_bytes = xcalloc((size_t)ts->nfull + 1, sizeof(int64_t));
  for (int m = 0; m < ts->nfull; m++) {
    const Tensor *t = &p->data[ts->full[m]->slot].value;
    char *copy = xmalloc(elem * (size_t)shape_numel(t->shape));
    for (int64_t i = 0; i < shape_numel(t->shape); i++)
      if (p->opts.f64)
        ((double *)copy)[i] = t->v[i];
      else
        ((float *)copy)[i] = (float)t->v[i];
    src[m] = copy;
    row_bytes[m] = (int64_t)elem * shape_numel(t->shape) / ts->rows;
  }
  *b = (DlrtBatches){.n = ts->rows, .batch = ts->batch, .nbatches = ts->per_epoch, .shuffle = a->shuffle >= 0,
                     .epoch = -1, .order = xmalloc(sizeof(int64_t) * (size_t)ts->rows), .ntensors = ts->nfull,
                     .src = src, .row_bytes = row_bytes};
  dlrt_rng_seed(&b->rng, (uint64_t)(a->shuffle >= 0 ? a->shuffle : 0));
}

static void batches_end(DlrtBatches *b) {
  for (int m = 0; m < b->ntensors; m++)
    free((void *)b->src[m]);
  free((void *)b->src);
  free((void *)b->row_bytes);
  free(b->order);
}

/* The end of the steps the next call runs, from step t: all of them, or
 * with two batch sizes, up to the next change of size. Which of the trains
 * runs them in *which. */
static int64_t segment_end(const Trains *ts, int64_t t, int64_t steps, int *which) {
  int64_t nb = ts->per_epoch, end = steps;
  *which = 0;
  if (ts->n == 2) {
    *which = t % nb == nb - 1;
    end = *which ? t + 1 : t - t % nb + nb - 1;
  }
  return end < steps ? end : steps;
}

/* The log file for a train: its number, its clock, and its params'
 * buffers (thread 0's, the ones read before each step's update; the
 * train's second batch size shares them). */
static DlrtLogFile *log_file_begin(DlrtLogFile *lf, const Schedule *s, void **bufs, int number) {
  for (int i = 0; i < lf->nparams; i++)
    lf->params[i].data = bufs[s->param_buf[i]];
  lf->train = number;
  lf->start = dlrt_seconds();
  return lf;
}

bool exec_open_log(Runner *r, Program *p, const char *path) {
  DlrtLogParam params[p->nparams + 1];
  for (int i = 0; i < p->nparams; i++) {
    Shape sh = p->params[i].value.shape;
    params[i] = (DlrtLogParam){p->params[i].name, sh.rank, {sh.dim[0], sh.dim[1]}, NULL};
  }
  /* On the GPU the params stay in its memory for a chunk of steps: the
   * host has no values to write at a log line. */
  int n = p->opts.gpu_arch ? 0 : p->nparams;
  /* A resumed run goes on with the log of the run it resumes. */
  if (dlrt_log_open(&r->log_file, path, r->resume != NULL, p->opts.f64, params, n) == 0)
    return true;
  const char *why = errno == ENXIO ? "it is a FIFO with no reader" : strerror(errno);
  diag_error(p->diags, (Span){0}, "cannot write the log '%s': %s", path, why);
  return false;
}

/* Where this train's every step's loss goes, if the runner keeps it. */
static DlrtCurve *new_curve(Runner *r, int64_t first_step) {
  if (r->curves_kept == CURVES_NONE)
    return NULL;
  if (r->curves_kept == CURVES_LAST && r->ncurves) {
    free(r->curves[0].loss);
    r->ncurves = 0;
  }
  r->curves = xrealloc(r->curves, (size_t)(r->ncurves + 1) * sizeof *r->curves);
  r->curves[r->ncurves] = (DlrtCurve){.first_step = first_step};
  return &r->curves[r->ncurves++];
}

bool exec_train(Runner *r, Program *p, const Action *a, FILE *out) {
  Trains ts = {0};
  bool batched = a->batch > 0;
  bool ok = compile_trains(r, p, a, &ts);
  int64_t steps = exec_train_steps(a);
  double t1 = now_ms();
  DlrtBatches batches = {0};
  if (ok && batched)
    batches_begin(p, a, &ts, &batches);
  fflush(out);
  DlrtLog log = {out, p->opts.f64, .every = a->log_every, .diverged_step = -1,
                 .batches = batched ? &batches : NULL};
  int number = train_number(p, a);
  int64_t t = 0;
  bool resuming = ok && checkpoint_resume_train(r, &t) == number;
  if (resuming)
    checkpoint_resume_state(r, p, ts.t[0].s, ts.bufs[0], batched ? &log.epoch_sum : NULL);
  else
    t = 0;
  log.first_step = t;
  log.curve = ok ? new_curve(r, t) : NULL;
  ExecSaver saver = {{save_during_train}, p, a, steps, ts.t[0].s, ts.bufs[0], number, &log, false};
  int64_t every = p->opts.save_path ? p->opts.save_every : 0;
  TrainResult res = {TRAIN_DONE, steps};
  DlrtProgress progress;
  if (ok && !p->opts.no_progress && diag_is_terminal(stderr)) {
    dlrt_progress_begin(&progress, STDERR_FILENO, t, steps, batched ? ts.per_epoch : 0);
    log.progress = &progress;
  }
  if (ok && r->log_file.f)
    log.file = log_file_begin(&r->log_file, ts.t[0].s, ts.bufs[0], number);
  double t2 = now_ms();
  while (ok && t < steps) {
    int which;
    int64_t end = segment_end(&ts, t, steps, &which);
    batches.dst = ts.dst[which];
    ok = run_steps(r, p, &ts.t[which], ts.bufs[which], batched, &log, &saver.base, t, end, &res);
    if (!ok || res.stop != TRAIN_DONE)
      break;
    t = end;
    if (every > 0 && t % every == 0 && t < steps)    /* (the compiled code saves within a call) */
      save_during_train(&saver.base, t);
  }
  double t3 = now_ms();
  if (log.progress)
    dlrt_progress_clear(&progress);
  bool log_failed = log.file && r->log_file.error;
  if (log_failed) {                              /* (the params are kept, as after any error) */
    diag_error(p->diags, a->span, "cannot write the log '%s': %s; training went on without it",
               p->opts.log_path, strerror(r->log_file.error));
    dlrt_log_close(&r->log_file);                /* said once: later trains write none */
  }
  if (ok) {
    copy_params_back(p, ts.t[0].s, ts.bufs[0]);
    if (p->opts.save_path)
      save_during_train(&saver.base, res.done);
  }
  if (resuming)
    checkpoint_forget(r);                        /* resumed: the next trains start afresh */
  if (batched && batches.order)
    batches_end(&batches);
  free_trains(r, &ts);
  r->ms[PHASE_TRAIN] += t3 - t2;
  r->ms[PHASE_DATA] += (t2 - t1) + (now_ms() - t3);
  return ok && train_outcome(p, a, &log, res, steps) && !saver.failed && !log_failed;
}

/* ---- running a program */

Runner *runner_new(void) { return xcalloc(1, sizeof(Runner)); }

void runner_free(Runner *r) {
  if (!r)
    return;
  checkpoint_forget(r);
  dlrt_log_close(&r->log_file);
  for (int i = 0; i < r->ncurves; i++)
    free(r->curves[i].loss);
  free(r->curves);
  dlrt_team_free(r->team);
  jit_free(r->jit);                              /* the trains' machine code with it */
  free(r);
}

bool exec_program(Runner *r, Program *p, FILE *out) { return exec_actions(r, p, p->actions, out); }

bool exec_actions(Runner *r, Program *p, const Action *from, FILE *out) {
  bool ok = true;
  /* An interrupt (dlrt_interrupt) ends the run after the action it came
   * in: a train stops after its step, and nothing after it runs. */
  /* --resume: what came before the train resumed ran in the run that
   * saved it (checkpoint_load found the train). */
  int64_t step;
  int resume = checkpoint_resume_train(r, &step);
  if (resume) {
    int n = 0;
    while (!(from->kind == ACT_TRAIN && ++n == resume))
      from = from->next;
    if (step >= exec_train_steps(from)) {
      from = from->next;                         /* it had finished */
      checkpoint_forget(r);
    }
  }
  for (const Action *a = from; a; a = dlrt_interrupt ? NULL : a->next) {
    bool this_ok = a->kind == ACT_TRAIN  ? exec_train(r, p, a, out)
                   : a->kind == ACT_PLOT ? plot_action(p, a)
                                         : print_action(p, a, out);
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

/* `emit ir`: the step's nodes, then its loops and kernels. */
static void emit_schedule(Program *p, const Schedule *s, FILE *out) {
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
    fprintf(out, "; loop %d, stage %d, %lld elements:", l, lp->stage, (long long)shape_numel(lp->shape));
    for (int r = 0; r < lp->reductions.n; r++)
      fprintf(out, " %s%%%u", r ? "" : "reduces ", lp->reductions.items[r]->id);
    for (int k = 0; k < lp->stores.n; k++)
      fprintf(out, "%s%%%u", k ? " " : lp->reductions.n ? ", stores " : " stores ", lp->stores.items[k]->id);
    fputc('\n', out);
  }
  for (int k = 0; k < s->nkernels; k++) {
    const Node *n = s->kernels[k].node;
    char sh[64];
    fprintf(out, "; kernel %d, stage %d: %s %%%u : %s%s\n", k, s->kernels[k].stage, op_info[n->op].name, n->id,
            shape_str(n->shape, sh), codegen_uses_blas(n) ? " (OpenBLAS)" : "");
  }
  fprintf(out, "; %d stage%s, %d loop%s, %d kernel%s per step\n", s->nstages, s->nstages == 1 ? "" : "s",
          s->nloops, s->nloops == 1 ? "" : "s", s->nkernels, s->nkernels == 1 ? "" : "s");
}

bool exec_emit(Runner *r, Program *p, const char *what, FILE *out) {
  if (!p->loss) {
    diag_error(p->diags, (Span){0}, "emit %s: the program defines no loss", what);
    return false;
  }
  if (strcmp(what, "grad") == 0)
    return emit_grad(p, out);
  const Action *a = first_train(p);
  Optimizer sgd = {.kind = OPT_SGD, .lr = 1e-3};
  const Optimizer *opt = a ? &a->opt : &sgd;
  if (strcmp(what, "ir") == 0) {
    Schedule *s = train_schedule(r, p, p->loss, opt);
    if (s)
      emit_schedule(p, s, out);
    schedule_free(s);
    return s != NULL;
  }
  TrainOutput to = strcmp(what, "ptx") == 0 ? TRAIN_AS_PTX : strcmp(what, "asm") == 0 ? TRAIN_AS_ASM : TRAIN_AS_LLVM;
  Train t;
  bool ok = train_compile(r, p, a, p->loss, opt, to, &t);
  if (ok)
    fputs(t.text, out);
  train_free(r, &t);
  return ok;
}

/* `--time`: each phase, and the whole, on one line. */
void exec_print_times(const Runner *r, double total, FILE *f) {
  static const char *const names[] = {
#define X(name, text) text,
      PHASES(X)
#undef X
  };
  fputs("time:", f);
  for (int i = 0; i < PHASE_COUNT; i++)
    fprintf(f, "%s %s %.2f ms", i ? "," : "", names[i], r->ms[i]);
  if (r->team && dlrt_team_size(r->team) > 1)
    fprintf(f, " on %d threads", dlrt_team_size(r->team));
  fprintf(f, "; total %.2f ms", total);
  int trains = 0, cached = 0;
  if (r->jit)
    jit_cache_counts(r->jit, &trains, &cached);
  if (trains)
    fprintf(f, "; %d of %d train%s from the cache", cached, trains, trains == 1 ? "" : "s");
  fputc('\n', f);
}
