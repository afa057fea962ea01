/* gpu.c — the GPU target of the step skeleton (codegen.c): PTX for NVIDIA
 * GPUs, through LLVM's NVPTX target.
 *
 * One kernel runs many training steps per launch:
 *
 *   void dl_steps(void **bufs, int64_t first, int64_t last, double *losses,
 *                 double *scratch, int64_t *barrier, int64_t *result)
 *
 * Its steps are codegen_steps's, the CPU team's threads replaced by the
 * grid's: every GPU thread keeps its own copy of the scalar params and
 * their optimizer state (registers, after SROA), computes every scalar of
 * the step itself, and takes the elements i = g, g + G, g + 2G... of every
 * vector, g being its index in the grid of G threads. What is the GPU's
 * own is here: the kernel's entry and parameters, the thread's ids, and
 * the hooks (StepTarget) of the grid-stride element loop, of the sums over
 * the grid, of the grid barrier, of the losses array and of the math
 * functions, libdevice's or our own.
 *
 * A reduction is summed per thread in the working type, then per block in
 * double (warp shuffles, then the warps' sums in shared memory, in warp
 * order), published per block in `scratch`, and, after a grid-wide
 * barrier, every block sums the published partials the same way: every
 * thread of the grid ends up with the same total, bit for bit, and the
 * same total on every run with the same grid. So every thread takes the
 * same branch at the finite checks, as the CPU team's threads do.
 * Consecutive steps publish in the two halves of `scratch` alternately (a
 * block may publish step t + 1's sums while another still reads step t's).
 *
 * The grid-wide barrier is a counter in global memory that the first
 * thread of each block increments and then waits on; the runtime launches
 * the kernel cooperatively (all blocks resident) and zeroes the counter
 * before each launch. A grid of one block (the small problems) needs
 * neither: its block sums are the totals.
 *
 * Matrix work (the schedule's kernels: products, transposes, axis
 * reductions, slices and pads) is the skeleton's element loop over each
 * result, a thread per element, each sum in order, so its values do not
 * depend on the grid; a grid barrier follows. The loops' stores that
 * kernels read are visible to them after the grid sum that ends each
 * loop. One more barrier ends each step where the next reads elements of a
 * vector param that other threads update (schedule.c's params_shared).
 *
 * Thread 0 writes each step's loss to losses[t - first] (the runtime
 * prints the log lines from them) and, at the end, the scalar params and
 * their state back to their buffers and the result to *result, with the
 * CPU function's meaning: `last`, or t when step t's loss or a gradient
 * was NaN or infinite, or -1 - t when step t's update would make a param
 * NaN or infinite. (Interrupts and checkpoints are the runtime's, between
 * launches.)
 *
 * The step's libm functions (`sinf`, `log1p`..., and `pow` for Adam's
 * powers of beta) are libdevice's `__nv_sinf`..., linked in and
 * internalized. Where there is no libdevice, gpumath.c gives each a body
 * of dlc's own, within 1 ulp of glibc's (tanh 2): `--target gpu` never
 * needs it.
 *
 * For the tests of machines without a GPU, gpu_emulated builds the same
 * kernel for the host CPU (libm standing for libdevice, or our own math
 * where libdevice is missing): global and shared memory in address space 0,
 * and the few things only a GPU does (its special registers, bar.sync,
 * warp shuffles, fences) calls through a table the caller passes, which
 * runs a thread per GPU thread (tests/unit/check_gpu.c).
 */
#include "dlc.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/Core.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

enum {
  GPU_BLOCK = 256,                               /* threads per block */
  GPU_WARPS = GPU_BLOCK / 32,
  GPU_MAX_GRID = 4096,                           /* blocks scratch has room for */
  AS_GLOBAL = 1,
  AS_SHARED = 3,
};

typedef struct Gpu {
  StepTarget t;                                  /* first: the hooks get it back */
  const Program *p;
  const Schedule *s;
  const Action *action;                          /* the train, where errors without a place go */
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef ft, dt, i32, i64, ptr, gptr;
  LLVMValueRef fn;
  LLVMValueRef *bufs;                            /* global memory, or a private copy */
  LLVMValueRef tid, block, nblocks, gtid, gsize; /* i64 */
  LLVMValueRef barrier, arrivals;                /* grid barrier counter; this block's count */
  LLVMValueRef shared;                           /* [GPU_WARPS * max_rows] doubles */
  int max_rows;
  int64_t scratch_half;                          /* doubles in each half of scratch */
  LLVMValueRef losses;                           /* the kernel's losses array */
  bool libdevice;                                /* found: libm calls are its */
  bool libdevice_used;                           /* ... and some are */
  const char *libdevice_path;
  bool failed;                                   /* an error was reported */
  bool emulated;                                 /* for the host (gpu_emulated) */
  LLVMValueRef emu;                              /* emulated: the kernel's GpuEmuThread */
} Gpu;

static LLVMValueRef iconst(Gpu *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, 1); }
static LLVMValueRef i32const(Gpu *g, int v) { return LLVMConstInt(g->i32, (unsigned long long)v, 1); }
static LLVMValueRef dconst(Gpu *g, double v) { return LLVMConstReal(g->dt, v); }

static LLVMBasicBlockRef block_named(Gpu *g, const char *name) {
  return LLVMAppendBasicBlockInContext(g->ctx, g->fn, name);
}

static LLVMValueRef gep(Gpu *g, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildGEP2(g->b, t, base, &idx, 1, "");
}

/* A call of an NVVM intrinsic that is not overloaded. */
static LLVMValueRef nvvm(Gpu *g, const char *name, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->mod, id, NULL, 0);
  return LLVMBuildCall2(g->b, LLVMIntrinsicGetType(g->ctx, id, NULL, 0), f, args, (unsigned)n, "");
}

/* Emulated, what the GPU does is a call of the function in field k of the
 * GpuEmuThread (self first, then args). */
static LLVMValueRef emu_field(Gpu *g, int k) {
  return LLVMBuildLoad2(g->b, g->ptr, gep(g, g->ptr, g->emu, iconst(g, k)), "");
}

static LLVMValueRef emu_call(Gpu *g, int k, LLVMTypeRef ret, LLVMValueRef *args, int n) {
  LLVMTypeRef params[3] = {g->ptr, g->i32, g->i32};
  LLVMValueRef all[3] = {g->emu, n > 0 ? args[0] : NULL, n > 1 ? args[1] : NULL};
  LLVMTypeRef fty = LLVMFunctionType(ret, params, (unsigned)n + 1, 0);
  return LLVMBuildCall2(g->b, fty, emu_field(g, k), all, (unsigned)n + 1, "");
}

/* A special register: tid.x, ctaid.x or nctaid.x (which: 0, 1, 2). */
static LLVMValueRef sreg(Gpu *g, const char *name, int which) {
  char full[64];
  snprintf(full, sizeof full, "llvm.nvvm.read.ptx.sreg.%s", name);
  LLVMValueRef v = g->emu ? emu_call(g, 0, g->i32, (LLVMValueRef[]){i32const(g, which)}, 1)
                          : nvvm(g, full, NULL, 0);
  return LLVMBuildZExt(g->b, v, g->i64, name);
}

static void bar_sync(Gpu *g) {
  if (g->emu)
    emu_call(g, 1, LLVMVoidTypeInContext(g->ctx), NULL, 0);
  else
    nvvm(g, "llvm.nvvm.barrier0", NULL, 0);
}

/* The value of lane (this lane ^ mask) of the warp. */
static LLVMValueRef shfl_bfly(Gpu *g, LLVMValueRef v, int mask) {
  if (g->emu)
    return emu_call(g, 2, g->i32, (LLVMValueRef[]){v, i32const(g, mask)}, 2);
  LLVMValueRef args[4] = {i32const(g, -1), v, i32const(g, mask), i32const(g, 31)};
  return nvvm(g, "llvm.nvvm.shfl.sync.bfly.i32", args, 4);
}

/* A fence for the whole device (membar.gl). */
static void fence(Gpu *g) {
  if (g->emu)
    emu_call(g, 3, LLVMVoidTypeInContext(g->ctx), NULL, 0);
  else
    nvvm(g, "llvm.nvvm.membar.gl", NULL, 0);
}

static LLVMValueRef icmp(Gpu *g, LLVMIntPredicate pred, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildICmp(g->b, pred, a, b, "");
}

static LLVMValueRef is_thread0(Gpu *g, LLVMValueRef id) { return icmp(g, LLVMIntEQ, id, iconst(g, 0)); }

/* Branches to a new block that runs only when cond holds; returns the
 * block where both ways meet, for the caller to position at after. */
static LLVMBasicBlockRef begin_if(Gpu *g, LLVMValueRef cond, const char *name) {
  LLVMBasicBlockRef then = block_named(g, name), join = block_named(g, "endif");
  LLVMBuildCondBr(g->b, cond, then, join);
  LLVMPositionBuilderAtEnd(g->b, then);
  return join;
}

static void end_if(Gpu *g, LLVMBasicBlockRef join) {
  LLVMBuildBr(g->b, join);
  LLVMPositionBuilderAtEnd(g->b, join);
}

static LLVMValueRef to_double(Gpu *g, LLVMValueRef v) {
  return LLVMTypeOf(v) == g->dt ? v : LLVMBuildFPExt(g->b, v, g->dt, "");
}

/* ---- reductions across the grid */

/* The sum of v over the 32 lanes of a warp, in every lane: a butterfly,
 * whose additions are the same in every lane up to order of operands, so
 * every lane gets the same bits. A double moves as two 32-bit halves. */
static LLVMValueRef warp_sum(Gpu *g, LLVMValueRef v) {
  for (int mask = 16; mask >= 1; mask /= 2) {
    LLVMValueRef bits = LLVMBuildBitCast(g->b, v, g->i64, "");
    LLVMValueRef half[2] = {LLVMBuildTrunc(g->b, bits, g->i32, ""),
                            LLVMBuildTrunc(g->b, LLVMBuildLShr(g->b, bits, iconst(g, 32), ""), g->i32, "")};
    for (int k = 0; k < 2; k++)
      half[k] = LLVMBuildZExt(g->b, shfl_bfly(g, half[k], mask), g->i64, "");
    LLVMValueRef other = LLVMBuildOr(g->b, half[0], LLVMBuildShl(g->b, half[1], iconst(g, 32), ""), "");
    v = LLVMBuildFAdd(g->b, v, LLVMBuildBitCast(g->b, other, g->dt, ""), "");
  }
  return v;
}

/* The sums over the block of n doubles per thread, in every thread: each
 * warp's sum goes to shared memory, then every thread adds the warps' sums
 * in warp order. */
static void block_sum(Gpu *g, LLVMValueRef *v, int n, LLVMValueRef *total) {
  LLVMValueRef warp = LLVMBuildUDiv(g->b, g->tid, iconst(g, 32), "");
  LLVMValueRef lane0 = icmp(g, LLVMIntEQ, LLVMBuildURem(g->b, g->tid, iconst(g, 32), ""), iconst(g, 0));
  LLVMTypeRef row = LLVMArrayType(g->dt, GPU_WARPS);
  LLVMValueRef sums[n + 1];
  for (int r = 0; r < n; r++)
    sums[r] = warp_sum(g, v[r]);
  LLVMBasicBlockRef join = begin_if(g, lane0, "warp.publish");
  for (int r = 0; r < n; r++)
    LLVMBuildStore(g->b, sums[r], gep(g, g->dt, gep(g, row, g->shared, iconst(g, r)), warp));
  end_if(g, join);
  bar_sync(g);
  for (int r = 0; r < n; r++) {
    LLVMValueRef at = gep(g, row, g->shared, iconst(g, r));
    total[r] = LLVMBuildLoad2(g->b, g->dt, gep(g, g->dt, at, iconst(g, 0)), "");
    for (int w = 1; w < GPU_WARPS; w++)
      total[r] = LLVMBuildFAdd(g->b, total[r],
                               LLVMBuildLoad2(g->b, g->dt, gep(g, g->dt, at, iconst(g, w)), ""), "");
  }
  bar_sync(g);                                   /* before the shared array is written again */
}

/* Every thread of the grid waits here for all others; what they wrote
 * before is visible after. Thread 0 of each block arrives for its block:
 * the counter counts arrivals since the launch, so after this block's k-th
 * barrier it waits for k * nblocks of them. */
static void grid_sync(Gpu *g) {
  bar_sync(g);
  LLVMBasicBlockRef join = begin_if(g, is_thread0(g, g->tid), "grid.arrive");
  fence(g);
  LLVMValueRef k = LLVMBuildAdd(g->b, LLVMBuildLoad2(g->b, g->i64, g->arrivals, ""), iconst(g, 1), "");
  LLVMBuildStore(g->b, k, g->arrivals);
  LLVMBuildAtomicRMW(g->b, LLVMAtomicRMWBinOpAdd, g->barrier, iconst(g, 1), LLVMAtomicOrderingMonotonic, 0);
  LLVMValueRef want = LLVMBuildMul(g->b, k, g->nblocks, "");
  LLVMBasicBlockRef wait = block_named(g, "grid.wait"), done = block_named(g, "grid.done");
  LLVMBuildBr(g->b, wait);
  LLVMPositionBuilderAtEnd(g->b, wait);
  LLVMValueRef seen = LLVMBuildLoad2(g->b, g->i64, g->barrier, "");
  LLVMSetVolatile(seen, 1);
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntULT, seen, want), wait, done);
  LLVMPositionBuilderAtEnd(g->b, done);
  fence(g);
  end_if(g, join);
  bar_sync(g);
}

/* n per-thread values (doubles) summed over the grid, the same in every
 * thread: block sums published in the n rows at `at` (in this step's
 * scratch), the grid barrier, then every block sums the partials (each
 * thread a strided share, in order; then the block). Partials are read
 * volatile: another block wrote them, and L1 is not coherent. A grid of
 * one block (a small problem) has its totals after the block sum. */
static void grid_sum(Gpu *g, LLVMValueRef at, LLVMValueRef *v, int n, LLVMValueRef *total) {
  LLVMValueRef part[n + 1], across[n + 1];
  block_sum(g, v, n, part);
  LLVMBasicBlockRef one = LLVMGetInsertBlock(g->b), many = block_named(g, "grid.sum"),
                    summed = block_named(g, "grid.summed");
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntUGT, g->nblocks, iconst(g, 1)), many, summed);
  LLVMPositionBuilderAtEnd(g->b, many);
  LLVMBasicBlockRef join = begin_if(g, is_thread0(g, g->tid), "publish");
  for (int r = 0; r < n; r++) {
    LLVMValueRef idx = LLVMBuildAdd(g->b, iconst(g, r * GPU_MAX_GRID), g->block, "");
    LLVMBuildStore(g->b, part[r], gep(g, g->dt, at, idx));
  }
  end_if(g, join);
  grid_sync(g);

  LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b), head = block_named(g, "partials"),
                    body = block_named(g, "partials.add"), done = block_named(g, "partials.done");
  LLVMBuildBr(g->b, head);
  LLVMPositionBuilderAtEnd(g->b, head);
  LLVMValueRef j = LLVMBuildPhi(g->b, g->i64, "j"), acc[n + 1], next[n + 1];
  for (int r = 0; r < n; r++)
    acc[r] = LLVMBuildPhi(g->b, g->dt, "partial");
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntULT, j, g->nblocks), body, done);
  LLVMPositionBuilderAtEnd(g->b, body);
  for (int r = 0; r < n; r++) {
    LLVMValueRef idx = LLVMBuildAdd(g->b, iconst(g, r * GPU_MAX_GRID), j, "");
    LLVMValueRef x = LLVMBuildLoad2(g->b, g->dt, gep(g, g->dt, at, idx), "");
    LLVMSetVolatile(x, 1);
    next[r] = LLVMBuildFAdd(g->b, acc[r], x, "");
  }
  LLVMValueRef jn = LLVMBuildAdd(g->b, j, iconst(g, GPU_BLOCK), "");
  LLVMBuildBr(g->b, head);
  LLVMAddIncoming(j, (LLVMValueRef[]){g->tid, jn}, (LLVMBasicBlockRef[]){pre, body}, 2);
  for (int r = 0; r < n; r++)
    LLVMAddIncoming(acc[r], (LLVMValueRef[]){dconst(g, 0), next[r]}, (LLVMBasicBlockRef[]){pre, body}, 2);
  LLVMPositionBuilderAtEnd(g->b, done);
  block_sum(g, acc, n, across);
  LLVMBasicBlockRef from_many = LLVMGetInsertBlock(g->b);
  LLVMBuildBr(g->b, summed);
  LLVMPositionBuilderAtEnd(g->b, summed);
  for (int r = 0; r < n; r++) {
    total[r] = LLVMBuildPhi(g->b, g->dt, "total");
    LLVMAddIncoming(total[r], (LLVMValueRef[]){part[r], across[r]}, (LLVMBasicBlockRef[]){one, from_many}, 2);
  }
}

/* Every thread of the grid waits for the others here. */
static void grid_barrier(StepTarget *t) {
  Gpu *g = (Gpu *)t;
  LLVMBasicBlockRef many = block_named(g, "grid.barrier"), one = block_named(g, "block.barrier"),
                    done = block_named(g, "barrier.done");
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntUGT, g->nblocks, iconst(g, 1)), many, one);
  LLVMPositionBuilderAtEnd(g->b, many);
  grid_sync(g);
  LLVMBuildBr(g->b, done);
  LLVMPositionBuilderAtEnd(g->b, one);
  bar_sync(g);
  LLVMBuildBr(g->b, done);
  LLVMPositionBuilderAtEnd(g->b, done);
}

/* ---- the step's hooks */

/* A row of scratch has room for a partial sum per block of the largest
 * grid. */
static int64_t grid_partials(StepTarget *t, int64_t n) {
  (void)t, (void)n;
  return GPU_MAX_GRID;
}

/* The loop over this thread's elements: i = gtid, gtid + gsize, ... */
typedef struct Stride {
  Elements e;                                    /* first: the skeleton's view */
  LLVMBasicBlockRef head, done;
  int nsums;
  LLVMValueRef sums[];                           /* e.sums: phis of head */
} Stride;

/* Leaves the builder in the body, the sums carried around the loop from 0. */
static Elements *stride_begin(StepTarget *t, int64_t numel, int nsums) {
  Gpu *g = (Gpu *)t;
  Stride *k = xcalloc(1, sizeof *k + sizeof(LLVMValueRef) * (size_t)nsums);
  k->nsums = nsums;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
  k->head = block_named(g, "elements");
  LLVMBasicBlockRef body = block_named(g, "elements.body");
  k->done = block_named(g, "elements.done");
  LLVMBuildBr(g->b, k->head);
  LLVMPositionBuilderAtEnd(g->b, k->head);
  k->e.i = LLVMBuildPhi(g->b, g->i64, "i");
  k->e.sums = k->sums;
  LLVMValueRef zero = LLVMConstReal(g->ft, 0);
  for (int r = 0; r < nsums; r++) {
    k->sums[r] = LLVMBuildPhi(g->b, g->ft, "sum");
    LLVMAddIncoming(k->sums[r], &zero, &pre, 1);
  }
  LLVMAddIncoming(k->e.i, &g->gtid, &pre, 1);
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntSLT, k->e.i, iconst(g, numel)), body, k->done);
  LLVMPositionBuilderAtEnd(g->b, body);
  return &k->e;
}

/* Closes the loop, leaving the builder after it; with `at`, the sums'
 * values at the end totalled over the grid, in double. */
static void stride_end(StepTarget *t, Elements *e, LLVMValueRef *next, LLVMValueRef at, LLVMValueRef *total) {
  Gpu *g = (Gpu *)t;
  Stride *k = (Stride *)e;
  LLVMValueRef in = LLVMBuildAdd(g->b, e->i, g->gsize, "");
  LLVMBasicBlockRef end = LLVMGetInsertBlock(g->b);
  LLVMBuildBr(g->b, k->head);
  LLVMAddIncoming(e->i, &in, &end, 1);
  for (int r = 0; r < k->nsums; r++)
    LLVMAddIncoming(k->sums[r], &next[r], &end, 1);
  LLVMPositionBuilderAtEnd(g->b, k->done);
  if (at) {
    LLVMValueRef wide[k->nsums + 1];
    for (int r = 0; r < k->nsums; r++)
      wide[r] = to_double(g, k->sums[r]);
    grid_sum(g, at, wide, k->nsums, total);
  }
  free(k);
}

/* Thread 0 keeps the step's loss for the runtime's log. */
static void report_loss(StepTarget *t, LLVMValueRef step, LLVMValueRef loss) {
  Gpu *g = (Gpu *)t;
  LLVMBuildStore(g->b, loss, gep(g, g->dt, g->losses, LLVMBuildSub(g->b, step, t->first, "")));
}

/* A libm function the step calls: with libdevice, libdevice's, whose
 * names are libm's with __nv_ before them (linked in by link_libdevice);
 * without, a body of our own (gpumath.c), inlined by the optimizer. One we
 * have none of is a bug of ours: codegen calls no other. Emulated, the
 * host's libm stands for libdevice. */
static void gpu_math(StepTarget *t, LLVMValueRef f) {
  Gpu *g = (Gpu *)t;
  size_t len;
  const char *name = LLVMGetValueName2(f, &len);
  if (g->libdevice) {
    if (!g->emulated) {
      char nv[64];
      snprintf(nv, sizeof nv, "__nv_%s", name);
      LLVMSetValueName2(f, nv, strlen(nv));
      g->libdevice_used = true;
    }
    return;
  }
  if (!gpumath_define(f, g->emulated ? 0 : AS_GLOBAL)) {
    diag_error(g->p->diags, g->action ? g->action->span : (Span){0},
               "internal error: no GPU code of dlc's own for libm's '%s' (and no libdevice at %s)",
               name, g->libdevice_path);
    g->failed = true;
  }
}

static const StepTarget gpu_target = {
    .partials = grid_partials,
    .elements_begin = stride_begin,
    .elements_end = stride_end,
    .barrier = grid_barrier,
    .report = report_loss,
    .math = gpu_math,
};

/* ---- nodes */

/* Which ops this generator knows: all that a lowered schedule has. */
static bool op_supported(Op op) { return op != OP_VAR && op != OP_FNCALL; }

/* Where to report a node: where it was written, else at the train. */
static Span where_of(const Gpu *g, const Node *n) {
  return n->span.src ? n->span : g->action ? g->action->span : (Span){0};
}

/* Every node of the step is one this generator can emit. */
static bool check_nodes(Gpu *g) {
  Node *roots[g->p->nparams + 1];
  roots[0] = g->s->loss;
  memcpy(roots + 1, g->s->grads, sizeof(Node *) * (size_t)g->p->nparams);
  NodeList order = ir_topo(roots, g->p->nparams + 1);
  bool ok = true;
  for (int k = 0; k < order.n && ok; k++) {
    const Node *n = order.items[k];
    if (!op_supported(n->op)) {
      diag_error(g->p->diags, where_of(g, n), "'%s' is not supported with --target gpu yet",
                 op_info[n->op].spelling);
      ok = false;
    }
  }
  nodelist_free(&order);
  return ok;
}

/* ---- the kernel */

/* Where the kernel's pointers are: buffers in global memory, except that
 * scalar params and their state get private copies (allocas) for the
 * steps of a launch. */
static void load_buffers(Gpu *g, LLVMValueRef bufs_arg, LLVMValueRef *globals) {
  for (int k = 0; k < g->s->nbufs; k++) {
    LLVMValueRef slot = gep(g, g->ptr, bufs_arg, iconst(g, k));
    globals[k] = LLVMBuildPointerCast(g->b, LLVMBuildLoad2(g->b, g->ptr, slot, ""), g->gptr, "buf");
    g->bufs[k] = globals[k];
    if (schedule_buffer_private(g->p, g->s, k)) {
      g->bufs[k] = LLVMBuildAlloca(g->b, g->ft, "private");
      LLVMBuildStore(g->b, LLVMBuildLoad2(g->b, g->ft, globals[k], ""), g->bufs[k]);
    }
  }
}

static void store_private(Gpu *g, LLVMValueRef *globals) {
  for (int k = 0; k < g->s->nbufs; k++)
    if (g->bufs[k] != globals[k])
      LLVMBuildStore(g->b, LLVMBuildLoad2(g->b, g->ft, g->bufs[k], ""), globals[k]);
}

/* The kernel: its entry (ids, the barrier's counter, the private
 * copies), the skeleton's steps, and the way out: the result, and the
 * private copies back, by thread 0. */
static void build_kernel(Gpu *g, const Optimizer *opt) {
  const Schedule *s = g->s;
  bool emulated = g->emulated;
  LLVMTypeRef params[8] = {g->ptr, g->i64, g->i64, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr};
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(g->ctx), params, emulated ? 8 : 7, 0);
  g->fn = LLVMAddFunction(g->mod, GPU_KERNEL, fty);
  /* Shared memory holds the warps' sums of the most sums one grid sum
   * totals: a loop's (an update check totals one). */
  g->max_rows = 1;
  for (int l = 0; l < s->nloops; l++) {
    int rows = loop_sums(&s->loops[l]);
    g->max_rows = rows > g->max_rows ? rows : g->max_rows;
  }
  LLVMTypeRef shared_type = LLVMArrayType(LLVMArrayType(g->dt, GPU_WARPS), (unsigned)g->max_rows);
  if (!emulated) {
    LLVMSetFunctionCallConv(g->fn, LLVMPTXKernelCallConv);
    g->shared = LLVMAddGlobalInAddressSpace(g->mod, shared_type, "warp_sums", AS_SHARED);
    LLVMSetInitializer(g->shared, LLVMGetUndef(shared_type));
    LLVMSetLinkage(g->shared, LLVMInternalLinkage);
  }

  LLVMPositionBuilderAtEnd(g->b, block_named(g, "entry"));
  if (emulated) {
    g->emu = LLVMGetParam(g->fn, 7);
    g->shared = emu_field(g, 4);
  }
  g->tid = sreg(g, "tid.x", 0);
  g->block = sreg(g, "ctaid.x", 1);
  g->nblocks = sreg(g, "nctaid.x", 2);
  g->gsize = LLVMBuildMul(g->b, g->nblocks, iconst(g, GPU_BLOCK), "");
  g->gtid = LLVMBuildAdd(g->b, LLVMBuildMul(g->b, g->block, iconst(g, GPU_BLOCK), ""), g->tid, "gtid");
  g->barrier = LLVMBuildPointerCast(g->b, LLVMGetParam(g->fn, 5), g->gptr, "");
  g->arrivals = LLVMBuildAlloca(g->b, g->i64, "arrivals");
  LLVMBuildStore(g->b, iconst(g, 0), g->arrivals);
  g->losses = LLVMGetParam(g->fn, 3);
  LLVMValueRef globals[s->nbufs + 1];
  load_buffers(g, LLVMGetParam(g->fn, 0), globals);

  g->t = gpu_target;
  g->t.b = g->b;
  g->t.bufs = g->bufs;
  g->t.scratch = LLVMBuildPointerCast(g->b, LLVMGetParam(g->fn, 4), g->gptr, "");
  g->t.first = LLVMGetParam(g->fn, 1);
  g->t.last = LLVMGetParam(g->fn, 2);
  g->t.leader = is_thread0(g, g->gtid);
  LLVMValueRef r = codegen_steps(g->p, s, opt, &g->t, &g->scratch_half);
  LLVMBasicBlockRef join = begin_if(g, g->t.leader, "write.back");
  LLVMBuildStore(g->b, r, LLVMGetParam(g->fn, 6));
  store_private(g, globals);
  end_if(g, join);
  LLVMBuildRetVoid(g->b);
}

/* ---- libdevice */

/* Links libdevice in for the functions named after it (gpu_math). */
static bool link_libdevice(Gpu *g, LLVMTargetMachineRef tm, const char *triple) {
  if (!g->libdevice_used)
    return true;
  LLVMMemoryBufferRef buf;
  char *msg = NULL;
  LLVMModuleRef lib;
  if (LLVMCreateMemoryBufferWithContentsOfFile(g->libdevice_path, &buf, &msg)) {
    diag_error(g->p->diags, (Span){0}, "cannot read libdevice %s: %s", g->libdevice_path, msg);
    LLVMDisposeMessage(msg);
    return false;
  }
  bool bad = LLVMParseBitcodeInContext2(g->ctx, buf, &lib);   /* does not take buf */
  LLVMDisposeMemoryBuffer(buf);
  if (bad) {
    diag_error(g->p->diags, (Span){0}, "%s is not LLVM bitcode", g->libdevice_path);
    return false;
  }
  LLVMSetTarget(lib, triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(lib, layout);
  LLVMDisposeTargetData(layout);
  if (LLVMLinkModules2(g->mod, lib)) {             /* destroys lib */
    diag_error(g->p->diags, (Span){0}, "cannot link libdevice %s", g->libdevice_path);
    return false;
  }
  /* Only the kernel is visible: the optimizer then deletes whatever of
   * libdevice is not called. Denormals are kept (no flush to zero), as
   * on the CPU. */
  for (LLVMValueRef f = LLVMGetFirstFunction(g->mod); f; f = LLVMGetNextFunction(f))
    if (f != g->fn && LLVMCountBasicBlocks(f))
      LLVMSetLinkage(f, LLVMInternalLinkage);
  for (LLVMValueRef v = LLVMGetFirstGlobal(g->mod); v; v = LLVMGetNextGlobal(v))
    if (!LLVMIsDeclaration(v))
      LLVMSetLinkage(v, LLVMInternalLinkage);
  LLVMAddModuleFlag(g->mod, LLVMModuleFlagBehaviorOverride, "nvvm-reflect-ftz", 16,
                    LLVMValueAsMetadata(i32const(g, 0)));
  return true;
}

/* ---- the whole */

static const char *libdevice_path(void) {
  const char *env = getenv("DLC_LIBDEVICE");
  return env && *env ? env : "/usr/local/cuda/nvvm/libdevice/libdevice.10.bc";
}

static bool readable(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f)
    fclose(f);
  return f != NULL;
}

static LLVMTargetMachineRef nvptx_machine(const char *arch, Diags *d) {
  LLVMInitializeNVPTXTargetInfo();
  LLVMInitializeNVPTXTarget();
  LLVMInitializeNVPTXTargetMC();
  LLVMInitializeNVPTXAsmPrinter();
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(GPU_TRIPLE, &target, &msg)) {
    diag_error(d, (Span){0}, "no NVPTX target in this LLVM: %s", msg);
    LLVMDisposeMessage(msg);
    return NULL;
  }
  /* The lowest PTX version the architecture takes: an older driver
   * rejects newer PTX. */
  const char *ptx = strcmp(arch, "sm_90a") == 0 ? "+ptx80" : "+ptx78";
  return LLVMCreateTargetMachine(target, GPU_TRIPLE, arch, ptx, LLVMCodeGenLevelAggressive,
                                 LLVMRelocDefault, LLVMCodeModelDefault);
}

static char *emit_ptx(Gpu *g, LLVMTargetMachineRef tm) {
  char *msg = NULL;
  if (LLVMVerifyModule(g->mod, LLVMReturnStatusAction, &msg)) {
    diag_error(g->p->diags, (Span){0}, "internal error: invalid LLVM IR for the GPU: %s", msg);
    LLVMDisposeMessage(msg);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMErrorRef err = LLVMRunPasses(g->mod, "default<O3>", tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (err) {
    char *text = LLVMGetErrorMessage(err);       /* consumes err */
    diag_error(g->p->diags, (Span){0}, "optimizing the GPU kernel failed: %s", text);
    LLVMDisposeErrorMessage(text);
    return NULL;
  }
  LLVMMemoryBufferRef buf;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, g->mod, LLVMAssemblyFile, &msg, &buf)) {
    diag_error(g->p->diags, (Span){0}, "cannot emit PTX: %s", msg);
    LLVMDisposeMessage(msg);
    return NULL;
  }
  size_t n = LLVMGetBufferSize(buf);
  char *ptx = xmalloc(n + 1);
  memcpy(ptx, LLVMGetBufferStart(buf), n);
  ptx[n] = '\0';                                 /* cuModuleLoadData wants the NUL */
  LLVMDisposeMemoryBuffer(buf);
  return ptx;
}

/* The kernel into g->mod; false when an error was reported. Global
 * memory is address space AS_GLOBAL, or 0 emulated. */
static bool build_module(Gpu *g, const Optimizer *opt, bool emulated) {
  g->emulated = emulated;
  if (!check_nodes(g))
    return false;
  g->b = LLVMCreateBuilderInContext(g->ctx);
  g->dt = LLVMDoubleTypeInContext(g->ctx);
  g->ft = g->p->opts.f64 ? g->dt : LLVMFloatTypeInContext(g->ctx);
  g->i32 = LLVMInt32TypeInContext(g->ctx);
  g->i64 = LLVMInt64TypeInContext(g->ctx);
  g->ptr = LLVMPointerTypeInContext(g->ctx, 0);
  g->gptr = LLVMPointerTypeInContext(g->ctx, emulated ? 0 : AS_GLOBAL);
  g->bufs = xcalloc((size_t)g->s->nbufs + 1, sizeof(LLVMValueRef));
  build_kernel(g, opt);
  LLVMDisposeBuilder(g->b);
  return !g->failed;
}

/* What launching the kernel takes; and g's memory freed. */
static void finish(Gpu *g, GpuKernel *out) {
  const Program *p = g->p;
  const Schedule *s = g->s;
  out->block = GPU_BLOCK;
  out->max_grid = GPU_MAX_GRID;
  out->shared_doubles = GPU_WARPS * g->max_rows;
  out->scratch_doubles = 2 * g->scratch_half + 1;
  for (int l = 0; l < s->nloops; l++)
    if (shape_numel(s->loops[l].shape) > out->elements)
      out->elements = shape_numel(s->loops[l].shape);
  for (int i = 0; i < p->nparams; i++)
    if (shape_numel(p->params[i].node->shape) > out->elements)
      out->elements = shape_numel(p->params[i].node->shape);
  for (int k = 0; k < s->nkernels; k++)
    if (shape_numel(s->kernels[k].node->shape) > out->elements)
      out->elements = shape_numel(s->kernels[k].node->shape);
  free(g->bufs);
}

bool gpu_compile(const Program *p, const Schedule *s, const Action *a, const Optimizer *opt,
                 const char *arch, GpuKernel *out) {
  *out = (GpuKernel){0};
  Gpu g = {.p = p, .s = s, .action = a, .libdevice_path = libdevice_path()};
  g.libdevice = readable(g.libdevice_path);
  LLVMTargetMachineRef tm = nvptx_machine(arch, p->diags);
  if (!tm)
    return false;
  g.ctx = LLVMContextCreate();
  g.mod = LLVMModuleCreateWithNameInContext("dl_gpu", g.ctx);
  LLVMSetTarget(g.mod, GPU_TRIPLE);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(g.mod, layout);
  LLVMDisposeTargetData(layout);
  bool ok = build_module(&g, opt, false);
  if (ok)
    ok = link_libdevice(&g, tm, GPU_TRIPLE) && (out->ptx = emit_ptx(&g, tm)) != NULL;
  finish(&g, out);
  LLVMDisposeModule(g.mod);
  LLVMContextDispose(g.ctx);
  LLVMDisposeTargetMachine(tm);
  return ok;
}

LLVMModuleRefDl gpu_emulated(const Program *p, const Schedule *s, const Action *a,
                             const Optimizer *opt, LLVMContextRefDl ctx, GpuKernel *out) {
  *out = (GpuKernel){0};
  /* The host's libm stands for libdevice, where that is found. */
  Gpu g = {.p = p, .s = s, .action = a, .libdevice_path = libdevice_path(), .ctx = ctx};
  g.libdevice = readable(g.libdevice_path);
  g.mod = LLVMModuleCreateWithNameInContext("dl_gpu_emulated", ctx);
  bool ok = build_module(&g, opt, true);
  finish(&g, out);
  if (!ok) {
    LLVMDisposeModule(g.mod);
    return NULL;
  }
  return g.mod;
}

void gpu_kernel_free(GpuKernel *k) {
  free(k->ptx);
  k->ptx = NULL;
}
