/* train.c — the train compiler: the back half's passes, in order.
 *
 * Every way dlc turns a loss into code goes through train_compile: a run
 * on the CPU or the GPU, each minibatch size of a train, `dlc emit` and the
 * REPL's :llvm. Its passes are one line each, where a change to the back
 * half starts:
 *
 *   loss_and_grads    diff.c, simplify.c    the loss and every gradient
 *   schedule_lower    schedule.c            fn calls inlined, data work hoisted
 *   schedule_train    schedule.c            stages, fused loops, kernels, buffers
 *   codegen_train     codegen.c             LLVM IR of every step (CPU)
 *   jit_add           jit.c                 optimized, machine code
 *   gpu_compile       gpu.c                 or PTX for the GPU
 *
 * A Train owns what the passes made: its schedule (all of it in one
 * arena), its machine code or PTX, its text; train_free frees all of it.
 * The runner owns the JIT the machine code lives in, and the time each
 * pass took.
 */
#include "dlc.h"

#include <stdlib.h>
#include <string.h>

bool loss_and_grads(Program *p, Node *loss, Node **roots) {
  int np = p->nparams;
  Node *wrt[np + 1];
  for (int i = 0; i < np; i++)
    wrt[i] = p->params[i].node;
  roots[0] = loss;
  diff_grads(p->graph, loss, wrt, np, roots + 1);
  simplify(p->graph, roots, np + 1);
  if (!graph_full(p->graph))
    return true;
  diag_error(p->diags, loss->span,
             "differentiating this loss makes the program's expressions larger than the limit of "
             "%u nodes", p->graph->max_nodes);
  return false;
}

/* A param whose gradient is 0 as a formula is one the user likely meant
 * the loss to use: said once per program. */
static void warn_constant_params(Program *p, Node *const *grads) {
  for (int i = 0; i < p->nparams; i++)
    if (ir_is_const(grads[i], 0) && !p->params[i].warned_constant) {
      p->params[i].warned_constant = true;
      diag_add(p->diags, DIAG_WARNING, p->params[i].span,
               "the loss does not depend on param '%s' (its gradient is 0): training leaves it "
               "unchanged", p->params[i].name);
    }
}

Schedule *train_schedule(Runner *r, Program *p, Node *loss, const Optimizer *opt) {
  Node *roots[p->nparams + 1];
  double t0 = now_ms();
  if (!loss_and_grads(p, loss, roots))
    return NULL;
  warn_constant_params(p, roots + 1);
  double t1 = now_ms();
  schedule_lower(p, roots, p->nparams + 1);
  Schedule *s = schedule_train(p, roots, opt, loss->span);
  r->ms[PHASE_DIFF] += t1 - t0;
  r->ms[PHASE_IR] += now_ms() - t1;
  return s;
}

/* The runner's JIT, made on the first train that needs one. */
static Jit *runner_jit(Runner *r, Program *p) {
  double t0 = now_ms();
  if (!r->jit)
    r->jit = jit_new(p->opts.opt_level, !p->opts.no_cache, p->diags);
  r->ms[PHASE_JIT] += now_ms() - t0;
  return r->jit;
}

bool train_compile(Runner *r, Program *p, const Action *a, Node *loss, const Optimizer *opt,
                   TrainOutput out, Train *t) {
  *t = (Train){0};
  if ((out == TRAIN_FOR_CPU || out == TRAIN_AS_LLVM || out == TRAIN_AS_ASM) && !runner_jit(r, p))
    return false;
  if (!(t->s = train_schedule(r, p, loss, opt)))
    return false;
  double t0 = now_ms();
  switch (out) {
  case TRAIN_FOR_CPU: {
    char name[32];
    snprintf(name, sizeof name, "dl_train_%d", ++r->ntrains);   /* one JIT: unique names */
    LLVMModuleRefDl m = codegen_train(p, t->s, opt, jit_context(r->jit), name, jit_vector_bits(r->jit),
                                      &t->scratch_doubles);
    r->ms[PHASE_IR] += now_ms() - t0;
    t->fn = (TrainFn)jit_add(r->jit, m, name, p->diags, r->ms, &t->code);   /* m is the JIT's now */
    return t->fn != NULL;
  }
  case TRAIN_AS_LLVM:
  case TRAIN_AS_ASM: {
    LLVMModuleRefDl m = codegen_train(p, t->s, opt, jit_context(r->jit), "dl_train",
                                      jit_vector_bits(r->jit), &t->scratch_doubles);
    t->text = jit_module_text(r->jit, m, out == TRAIN_AS_ASM, p->diags);     /* which disposes of m */
    return t->text != NULL;
  }
  case TRAIN_FOR_GPU:
  case TRAIN_AS_PTX: {
    const char *arch = p->opts.gpu_arch ? p->opts.gpu_arch : GPU_DEFAULT_ARCH;
    bool ok = gpu_compile(p, t->s, a, opt, arch, &t->kernel);
    r->ms[PHASE_JIT] += now_ms() - t0;
    if (ok && out == TRAIN_AS_PTX)
      t->text = xstrdup(t->kernel.ptx);
    return ok;
  }
  }
  return false;
}

void train_free(Runner *r, Train *t) {
  if (t->code)
    jit_remove(r->jit, t->code);
  gpu_kernel_free(&t->kernel);
  schedule_free(t->s);
  free(t->text);
  *t = (Train){0};
}

TrainResult train_result(int64_t code, int64_t end) {
  if (code == end)
    return (TrainResult){TRAIN_DONE, end};
  if (code > end)
    return (TrainResult){TRAIN_INTERRUPTED, code - end - 1};
  if (code < 0)
    return (TrainResult){TRAIN_UPDATE_NONFINITE, -1 - code};
  return (TrainResult){TRAIN_NONFINITE, code};
}
