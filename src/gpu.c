/* gpu.c — the schedule as PTX for NVIDIA GPUs, through LLVM's NVPTX target.
 *
 * One kernel runs many training steps per launch:
 *
 *   void dl_steps(void **bufs, int64_t first, int64_t last, double *losses,
 *                 double *scratch, int64_t *barrier, int64_t *result)
 *
 * It is the CPU's train function (codegen.c) with the team of threads
 * replaced by the grid: every GPU thread keeps its own copy of the scalar
 * params and their optimizer state (registers, after SROA), computes every
 * scalar of the step itself, and takes the elements i = g, g + G, g + 2G...
 * of every vector, g being its index in the grid of G threads. A thread
 * thus touches the same elements of a vector param, of its stored gradient
 * and of its optimizer state in every loop and every step: only reductions
 * cross threads.
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
 * reductions, slices and pads) runs after the loops of its stage, a
 * thread per element of its result (grid-stride as the loops), each sum
 * in order by codegen's element rules, so its values do not depend on the
 * grid; a grid barrier follows, and the loops of later stages load its
 * buffer with codegen's broadcasting. The loops' stores that kernels read
 * are visible to them after the grid sum that ends each loop. One more
 * barrier ends each step where the next reads elements of a vector param
 * that other threads update (a kernel's argument, a broadcast row: see
 * schedule.c's params_shared).
 *
 * Thread 0 writes each step's loss to losses[t - first] (the runtime
 * prints the log lines from them) and, at the end, the scalar params and
 * their state back to their buffers and the result to *result, with the
 * CPU function's meaning: `last`, or t when step t's loss or a gradient
 * was NaN or infinite, or -1 - t when step t's update would make a param
 * NaN or infinite.
 *
 * Node values and update rules are codegen.c's (the NodeEmitter seam);
 * their libm calls (`sinf`, `log1p`..., and `pow` for Adam's powers of
 * beta) become libdevice's `__nv_sinf`..., and libdevice is linked in and
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
  const Program *p;
  const Schedule *s;
  const Action *action;                          /* the train, where errors without a place go */
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef ft, dt, i32, i64, ptr, gptr;
  LLVMValueRef fn;
  NodeEmitter *e;
  LLVMValueRef *bufs;                            /* global memory, or a private copy */
  LLVMValueRef tid, block, nblocks, gtid, gsize; /* i64 */
  LLVMValueRef scratch;                          /* this step's half */
  LLVMValueRef barrier, arrivals;                /* grid barrier counter; this block's count */
  LLVMValueRef shared;                           /* [GPU_WARPS * max_rows] doubles */
  int max_rows;
  int64_t *loop_region, *update_region;          /* in units of GPU_MAX_GRID doubles */
  int64_t scratch_rows;
  LLVMValueRef *loop_bad;
  bool libdevice;                                /* found: libm calls are its */
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
 * thread: block sums published in rows [region, region + n) of this
 * step's scratch, the grid barrier, then every block sums the partials
 * (each thread a strided share, in order; then the block). Partials are
 * read volatile: another block wrote them, and L1 is not coherent. A grid
 * of one block (a small problem) has its totals after the block sum. */
static void grid_sum(Gpu *g, int64_t region, LLVMValueRef *v, int n, LLVMValueRef *total) {
  LLVMValueRef part[n + 1], across[n + 1];
  block_sum(g, v, n, part);
  LLVMBasicBlockRef one = LLVMGetInsertBlock(g->b), many = block_named(g, "grid.sum"),
                    summed = block_named(g, "grid.summed");
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntUGT, g->nblocks, iconst(g, 1)), many, summed);
  LLVMPositionBuilderAtEnd(g->b, many);
  LLVMBasicBlockRef join = begin_if(g, is_thread0(g, g->tid), "publish");
  for (int r = 0; r < n; r++) {
    LLVMValueRef at = LLVMBuildAdd(g->b, iconst(g, (region + r) * GPU_MAX_GRID), g->block, "");
    LLVMBuildStore(g->b, part[r], gep(g, g->dt, g->scratch, at));
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
    LLVMValueRef at = LLVMBuildAdd(g->b, iconst(g, (region + r) * GPU_MAX_GRID), j, "");
    LLVMValueRef x = LLVMBuildLoad2(g->b, g->dt, gep(g, g->dt, g->scratch, at), "");
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

/* ---- loops over a vector's elements: i = gtid, gtid + gsize, ... */

typedef struct Elements {
  LLVMBasicBlockRef pre, head, body, done;
  LLVMValueRef i;
  int n;                                         /* carried values */
  LLVMValueRef *carried;                         /* their phis in head */
} Elements;

/* Leaves the builder in the body, with k->i the element. Each of the
 * values init[0..n) is carried around the loop (k->carried[r]). */
static void elements_begin(Gpu *g, Elements *k, int64_t numel, LLVMValueRef *init, int n) {
  k->pre = LLVMGetInsertBlock(g->b);
  k->head = block_named(g, "elements");
  k->body = block_named(g, "elements.body");
  k->done = block_named(g, "elements.done");
  k->n = n;
  k->carried = calloc((size_t)n + 1, sizeof(LLVMValueRef));
  LLVMBuildBr(g->b, k->head);
  LLVMPositionBuilderAtEnd(g->b, k->head);
  k->i = LLVMBuildPhi(g->b, g->i64, "i");
  for (int r = 0; r < n; r++) {
    k->carried[r] = LLVMBuildPhi(g->b, LLVMTypeOf(init[r]), "carried");
    LLVMAddIncoming(k->carried[r], &init[r], &k->pre, 1);
  }
  LLVMAddIncoming(k->i, &g->gtid, &k->pre, 1);
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntSLT, k->i, iconst(g, numel)), k->body, k->done);
  LLVMPositionBuilderAtEnd(g->b, k->body);
}

/* Closes the loop with the carried values' next values; leaves the
 * builder after it, where final[r] are their values at the end. */
static void elements_end(Gpu *g, Elements *k, LLVMValueRef *next, LLVMValueRef *final) {
  LLVMValueRef in = LLVMBuildAdd(g->b, k->i, g->gsize, "");
  LLVMBasicBlockRef end = LLVMGetInsertBlock(g->b);
  LLVMBuildBr(g->b, k->head);
  LLVMAddIncoming(k->i, &in, &end, 1);
  for (int r = 0; r < k->n; r++)
    LLVMAddIncoming(k->carried[r], &next[r], &end, 1);
  for (int r = 0; r < k->n; r++)
    final[r] = k->carried[r];
  free(k->carried);
  LLVMPositionBuilderAtEnd(g->b, k->done);
}

/* bad + (v - v): stays 0 while every v is finite (as codegen.c does). */
static LLVMValueRef add_nonfinite(Gpu *g, LLVMValueRef bad, LLVMValueRef v) {
  return LLVMBuildFAdd(g->b, bad, to_double(g, LLVMBuildFSub(g->b, v, v, "")), "");
}

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

/* One fused loop of the schedule: its reductions summed over the grid,
 * its vector outputs stored, and a finite flag for the gradients among
 * them. The grid sum's barrier makes the stores visible to the kernels
 * after the loop. */
static void gpu_loop(Gpu *g, int index) {
  const Loop *l = &g->s->loops[index];
  int nred = l->reductions.n, nst = l->stores.n, rows = nred + (nst > 0);
  int64_t numel = shape_numel(l->shape);
  LLVMValueRef init[rows + 1], next[rows + 1];
  for (int r = 0; r < nred; r++)
    init[r] = LLVMConstReal(g->ft, 0);
  if (nst)
    init[nred] = dconst(g, 0);
  Elements k;
  elements_begin(g, &k, numel, init, rows);

  Node *roots[nred + nst + 1];
  int nroots;
  NodeList order = loop_order(g->s, l, roots, &nroots);
  emitter_begin_loop(g->e, l);
  for (int i = 0; i < order.n; i++)
    emitter_node(g->e, order.items[i], k.i);
  nodelist_free(&order);
  for (int r = 0; r < nred; r++)
    next[r] = LLVMBuildFAdd(g->b, k.carried[r], emitter_value(g->e, roots[r]), "");
  if (nst)
    next[nred] = k.carried[nred];
  for (int s = 0; s < nst; s++) {
    LLVMValueRef v = emitter_value(g->e, l->stores.items[s]);
    LLVMBuildStore(g->b, v, gep(g, g->ft, g->bufs[l->store_slots[s]], k.i));
    if (g->s->bufs[l->store_slots[s]].kind == BUF_GRAD)   /* (a kernel's input shows in the loss) */
      next[nred] = add_nonfinite(g, next[nred], v);
  }
  LLVMValueRef final[rows + 1], wide[rows + 1], total[rows + 1];
  elements_end(g, &k, next, final);
  for (int r = 0; r < rows; r++)
    wide[r] = to_double(g, final[r]);
  grid_sum(g, g->loop_region[index], wide, rows, total);
  for (int r = 0; r < nred; r++) {
    const Node *red = l->reductions.items[r];
    LLVMValueRef v = total[r];
    if (red->op == OP_MEAN)
      v = LLVMBuildFDiv(g->b, v, dconst(g, (double)numel), "");
    emitter_define(g->e, red, g->ft == g->dt ? v : LLVMBuildFPTrunc(g->b, v, g->ft, ""));
  }
  g->loop_bad[index] = nst ? total[nred] : NULL;
}

/* Every thread of the grid waits for the others here. */
static void grid_barrier(Gpu *g) {
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

/* A kernel of the schedule (a product, a transpose...): a thread per
 * element of its result, whose sums are in order (codegen's rules), so
 * the result does not depend on the grid. */
static void gpu_kernel(Gpu *g, const Node *n) {
  int ready, out = schedule_buffer(g->s, n, &ready);
  LLVMValueRef cols = iconst(g, shape_cols(n->shape));
  Elements k;
  elements_begin(g, &k, shape_numel(n->shape), NULL, 0);
  LLVMValueRef v = emitter_kernel_element(g->e, n, LLVMBuildUDiv(g->b, k.i, cols, ""),
                                          LLVMBuildURem(g->b, k.i, cols, ""));
  LLVMBuildStore(g->b, v, gep(g, g->ft, g->bufs[out], k.i));
  elements_end(g, &k, NULL, NULL);
}

/* The kernels of stage st, then a barrier: the stages after read their
 * results. */
static void gpu_kernels(Gpu *g, int st) {
  bool any = false;
  for (int k = 0; k < g->s->nkernels; k++)
    if (g->s->kernels[k].stage == st) {
      gpu_kernel(g, g->s->kernels[k].node);
      any = true;
    }
  if (any)
    grid_barrier(g);
}

/* ---- the update */

static void state_of(Gpu *g, int param, LLVMValueRef idx, LLVMValueRef *state) {
  for (int k = 0; k < 2; k++) {
    int buf = g->s->state_buf[2 * param + k];
    state[k] = buf < 0 ? NULL : idx ? gep(g, g->ft, g->bufs[buf], idx) : g->bufs[buf];
  }
}

/* Every param's update, as codegen's emit_update: without commit it only
 * says whether every new value is finite (the same answer in every
 * thread); with commit it stores them and the optimizer state. */
static LLVMValueRef gpu_update(Gpu *g, bool commit) {
  const Program *p = g->p;
  const Schedule *s = g->s;
  LLVMValueRef ok = LLVMConstInt(LLVMInt1TypeInContext(g->ctx), 1, 0);
  for (int i = 0; i < p->nparams; i++) {
    LLVMValueRef state[2];
    if (p->params[i].node->shape.rank == 0) {
      state_of(g, i, NULL, state);
      LLVMValueRef nv = emitter_update(g->e, emitter_value(g->e, p->params[i].node),
                                       emitter_value(g->e, s->grads[i]), state, commit);
      if (commit)
        LLVMBuildStore(g->b, nv, g->bufs[s->param_buf[i]]);
      else
        ok = LLVMBuildAnd(g->b, ok, emitter_is_finite(g->e, nv), "");
      continue;
    }
    LLVMValueRef zero = dconst(g, 0);
    Elements k;
    elements_begin(g, &k, shape_numel(p->params[i].node->shape), &zero, commit ? 0 : 1);
    LLVMValueRef pp = gep(g, g->ft, g->bufs[s->param_buf[i]], k.i);
    LLVMValueRef gv = LLVMBuildLoad2(g->b, g->ft, gep(g, g->ft, g->bufs[s->grad_buf[i]], k.i), "");
    state_of(g, i, k.i, state);
    LLVMValueRef nv = emitter_update(g->e, LLVMBuildLoad2(g->b, g->ft, pp, ""), gv, state, commit);
    LLVMValueRef bad = NULL;
    if (commit)
      LLVMBuildStore(g->b, nv, pp);
    else
      bad = add_nonfinite(g, k.carried[0], nv);
    LLVMValueRef wide, total;
    elements_end(g, &k, &bad, &wide);
    if (!commit) {
      grid_sum(g, g->update_region[i], &wide, 1, &total);
      ok = LLVMBuildAnd(g->b, ok, LLVMBuildFCmp(g->b, LLVMRealOEQ, total, zero, ""), "");
    }
  }
  return ok;
}

/* ---- the kernel */

/* Rows of GPU_MAX_GRID doubles in each half of scratch: one per
 * reduction (and finite flag) of each loop, one per vector param. */
static void scratch_layout(Gpu *g) {
  const Schedule *s = g->s;
  g->loop_region = calloc((size_t)s->nloops + 1, sizeof(int64_t));
  g->update_region = calloc((size_t)g->p->nparams + 1, sizeof(int64_t));
  g->max_rows = 1;
  for (int l = 0; l < s->nloops; l++) {
    int rows = s->loops[l].reductions.n + (s->loops[l].stores.n > 0);
    g->loop_region[l] = g->scratch_rows;
    g->scratch_rows += rows;
    g->max_rows = rows > g->max_rows ? rows : g->max_rows;
  }
  for (int i = 0; i < g->p->nparams; i++) {
    g->update_region[i] = g->scratch_rows;
    g->scratch_rows += g->p->params[i].node->shape.rank > 0;
  }
}

/* Where the kernel's pointers are: buffers in global memory, except that
 * scalar params and their state get private copies (allocas) for the
 * steps of a launch. */
static void load_buffers(Gpu *g, LLVMValueRef bufs_arg, LLVMValueRef *globals) {
  const Schedule *s = g->s;
  for (int k = 0; k < s->nbufs; k++) {
    LLVMValueRef slot = gep(g, g->ptr, bufs_arg, iconst(g, k));
    globals[k] = LLVMBuildPointerCast(g->b, LLVMBuildLoad2(g->b, g->ptr, slot, ""), g->gptr, "buf");
    const BufInfo *bi = &s->bufs[k];
    bool scalar = (bi->kind == BUF_PARAM || bi->kind == BUF_STATE) &&
                  g->p->params[bi->index].node->shape.rank == 0;
    g->bufs[k] = globals[k];
    if (scalar) {
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

static void build_kernel(Gpu *g) {
  const Program *p = g->p;
  const Schedule *s = g->s;
  bool emulated = g->emulated;
  LLVMTypeRef params[8] = {g->ptr, g->i64, g->i64, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr};
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(g->ctx), params, emulated ? 8 : 7, 0);
  g->fn = LLVMAddFunction(g->mod, GPU_KERNEL, fty);
  LLVMValueRef first = LLVMGetParam(g->fn, 1), last = LLVMGetParam(g->fn, 2);
  LLVMValueRef losses = LLVMGetParam(g->fn, 3), result = LLVMGetParam(g->fn, 6);
  LLVMTypeRef shared_type = LLVMArrayType(LLVMArrayType(g->dt, GPU_WARPS), (unsigned)g->max_rows);
  if (!emulated) {
    LLVMSetFunctionCallConv(g->fn, LLVMPTXKernelCallConv);
    g->shared = LLVMAddGlobalInAddressSpace(g->mod, shared_type, "warp_sums", AS_SHARED);
    LLVMSetInitializer(g->shared, LLVMGetUndef(shared_type));
    LLVMSetLinkage(g->shared, LLVMInternalLinkage);
  }

  LLVMBasicBlockRef entry = block_named(g, "entry"), head = block_named(g, "step"),
                    body = block_named(g, "step.body"), finished = block_named(g, "finished"),
                    failed = block_named(g, "nonfinite"), overflow = block_named(g, "update.overflow"),
                    out = block_named(g, "out");
  LLVMPositionBuilderAtEnd(g->b, entry);
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
  LLVMValueRef scratch = LLVMBuildPointerCast(g->b, LLVMGetParam(g->fn, 4), g->gptr, "");
  LLVMValueRef globals[s->nbufs + 1];
  load_buffers(g, LLVMGetParam(g->fn, 0), globals);
  LLVMBuildBr(g->b, head);

  LLVMPositionBuilderAtEnd(g->b, head);
  LLVMValueRef t = LLVMBuildPhi(g->b, g->i64, "t");
  LLVMBuildCondBr(g->b, icmp(g, LLVMIntSLT, t, last), body, finished);

  LLVMPositionBuilderAtEnd(g->b, body);
  LLVMValueRef half = LLVMBuildMul(g->b, LLVMBuildAnd(g->b, t, iconst(g, 1), ""),
                                   iconst(g, g->scratch_rows * GPU_MAX_GRID), "");
  g->scratch = gep(g, g->dt, scratch, half);
  emitter_begin_step(g->e, t);
  for (int i = 0; i < p->nparams; i++)
    if (p->params[i].node->shape.rank == 0)
      emitter_node(g->e, p->params[i].node, NULL);
  for (int st = 0; st <= s->nstages; st++) {
    for (int k = 0; k < s->prelude[st].n; k++)
      emitter_node(g->e, s->prelude[st].items[k], NULL);
    for (int l = 0; l < s->nloops; l++)
      if (s->loops[l].stage == st)
        gpu_loop(g, l);
    gpu_kernels(g, st);
  }
  LLVMValueRef loss = emitter_value(g->e, s->loss);
  LLVMBasicBlockRef join = begin_if(g, is_thread0(g, g->gtid), "report");
  LLVMBuildStore(g->b, to_double(g, loss), gep(g, g->dt, losses, LLVMBuildSub(g->b, t, first, "")));
  end_if(g, join);

  LLVMValueRef ok = emitter_is_finite(g->e, loss);
  for (int i = 0; i < p->nparams; i++)
    if (p->params[i].node->shape.rank == 0)
      ok = LLVMBuildAnd(g->b, ok, emitter_is_finite(g->e, emitter_value(g->e, s->grads[i])), "");
  for (int l = 0; l < s->nloops; l++)
    if (g->loop_bad[l])
      ok = LLVMBuildAnd(g->b, ok, LLVMBuildFCmp(g->b, LLVMRealOEQ, g->loop_bad[l], dconst(g, 0), ""), "");
  LLVMBasicBlockRef update = block_named(g, "update.params"), commit = block_named(g, "update.commit");
  LLVMBuildCondBr(g->b, ok, update, failed);
  LLVMPositionBuilderAtEnd(g->b, update);
  emitter_begin_update(g->e);
  LLVMBuildCondBr(g->b, gpu_update(g, false), commit, overflow);
  LLVMPositionBuilderAtEnd(g->b, commit);
  gpu_update(g, true);
  if (s->params_shared)                          /* the next step reads other threads' params */
    grid_barrier(g);
  LLVMValueRef t1 = LLVMBuildAdd(g->b, t, iconst(g, 1), "");
  LLVMAddIncoming(t, (LLVMValueRef[]){first, t1}, (LLVMBasicBlockRef[]){entry, LLVMGetInsertBlock(g->b)}, 2);
  LLVMBuildBr(g->b, head);

  /* The way out: the result, and the private copies back, by thread 0. */
  LLVMPositionBuilderAtEnd(g->b, finished);
  LLVMBuildBr(g->b, out);
  LLVMPositionBuilderAtEnd(g->b, failed);
  LLVMBuildBr(g->b, out);
  LLVMPositionBuilderAtEnd(g->b, overflow);
  LLVMValueRef overflowed = LLVMBuildSub(g->b, iconst(g, -1), t, "");
  LLVMBuildBr(g->b, out);
  LLVMPositionBuilderAtEnd(g->b, out);
  LLVMValueRef r = LLVMBuildPhi(g->b, g->i64, "result");
  LLVMAddIncoming(r, (LLVMValueRef[]){last, t, overflowed},
                  (LLVMBasicBlockRef[]){finished, failed, overflow}, 3);
  join = begin_if(g, is_thread0(g, g->gtid), "write.back");
  LLVMBuildStore(g->b, r, result);
  store_private(g, globals);
  end_if(g, join);
  LLVMBuildRetVoid(g->b);
}

/* ---- libm calls, to libdevice or our own */

/* llvm.pow.f64 (Adam's bias corrections) is no instruction on NVPTX:
 * each call becomes one of libm's pow, which is then libdevice's or our
 * own like codegen's calls. */
static void replace_pow(Gpu *g) {
  LLVMValueRef pow = LLVMGetNamedFunction(g->mod, "llvm.pow.f64");
  if (!pow)
    return;
  LLVMTypeRef args[2] = {g->dt, g->dt};
  LLVMTypeRef fty = LLVMFunctionType(g->dt, args, 2, 0);
  LLVMValueRef repl = LLVMGetNamedFunction(g->mod, "pow");
  if (!repl)
    repl = LLVMAddFunction(g->mod, "pow", fty);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(g->ctx);
  LLVMUseRef u;
  while ((u = LLVMGetFirstUse(pow))) {
    LLVMValueRef call = LLVMGetUser(u);
    LLVMPositionBuilderBefore(b, call);
    LLVMValueRef a[2] = {LLVMGetOperand(call, 0), LLVMGetOperand(call, 1)};
    LLVMReplaceAllUsesWith(call, LLVMBuildCall2(b, fty, repl, a, 2, ""));
    LLVMInstructionEraseFromParent(call);
  }
  LLVMDisposeBuilder(b);
  LLVMDeleteFunction(pow);
}

/* Without libdevice: a body of our own (gpumath.c) for each libm function
 * declared, inlined by the optimizer. One we have none of is a bug of
 * ours: codegen calls no other. */
static void define_own_math(Gpu *g) {
  const char *missing = gpumath_define(g->mod, g->emulated ? 0 : AS_GLOBAL);
  if (missing) {
    diag_error(g->p->diags, g->action ? g->action->span : (Span){0},
               "internal error: no GPU code of dlc's own for libm's '%s' (and no libdevice at %s)",
               missing, g->libdevice_path);
    g->failed = true;
  }
}

/* libm's names (sinf, log1p) are libdevice's with __nv_ before them. */
static bool link_libdevice(Gpu *g, LLVMTargetMachineRef tm, const char *triple) {
  bool needed = false;
  for (LLVMValueRef f = LLVMGetFirstFunction(g->mod); f; f = LLVMGetNextFunction(f)) {
    size_t len;
    const char *name = LLVMGetValueName2(f, &len);
    if (LLVMCountBasicBlocks(f) || strncmp(name, "llvm.", 5) == 0)
      continue;
    needed = true;
    if (strncmp(name, "__nv_", 5) != 0) {
      char nv[64];
      snprintf(nv, sizeof nv, "__nv_%s", name);
      LLVMSetValueName2(f, nv, strlen(nv));
    }
  }
  if (!needed)
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
  char *ptx = malloc(n + 1);
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
  scratch_layout(g);
  g->b = LLVMCreateBuilderInContext(g->ctx);
  g->dt = LLVMDoubleTypeInContext(g->ctx);
  g->ft = g->p->opts.f64 ? g->dt : LLVMFloatTypeInContext(g->ctx);
  g->i32 = LLVMInt32TypeInContext(g->ctx);
  g->i64 = LLVMInt64TypeInContext(g->ctx);
  g->ptr = LLVMPointerTypeInContext(g->ctx, 0);
  g->gptr = LLVMPointerTypeInContext(g->ctx, emulated ? 0 : AS_GLOBAL);
  g->bufs = calloc((size_t)g->s->nbufs + 1, sizeof(LLVMValueRef));
  g->loop_bad = calloc((size_t)g->s->nloops + 1, sizeof(LLVMValueRef));
  g->e = emitter_new(g->p, g->s, opt, g->mod, g->b, g->bufs);
  build_kernel(g);
  replace_pow(g);
  if (!g->libdevice)
    define_own_math(g);
  emitter_free(g->e);
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
  out->scratch_doubles = 2 * g->scratch_rows * GPU_MAX_GRID + 1;
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
  free(g->loop_bad);
  free(g->loop_region);
  free(g->update_region);
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
