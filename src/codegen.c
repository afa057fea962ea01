/* codegen.c — the schedule as LLVM IR: the whole `train` call in one
 * function.
 *
 *   int64_t dl_train(void **bufs, int64_t steps, DlrtLog *log, int64_t thread,
 *                    int64_t nthreads, double *scratch, DlrtTeam *team,
 *                    int64_t first_step, TrainSaver *saver)
 *
 * runs every step: the scalar preludes and fused loops of the schedule, the
 * step callback (log lines, the divergence watch), the finite checks, and
 * the optimizer update — no interpretation between steps.
 *
 * A team of nthreads runs it together, each thread with its own `thread`
 * number and its own copy of the scalar params and their state (in bufs);
 * vectors are shared. Each thread computes its share of every loop (see
 * Blocks), publishes the sums of its blocks in `scratch`, meets the others
 * at a barrier, and adds all blocks' sums in block order: every thread then
 * holds the same scalars, and they are the scalars one thread computes
 * alone, bit for bit. Only thread 0 logs, and saves checkpoints.
 *
 * Steps run from first_step (0, or where a resumed train was). It returns
 * `steps`; or t, the step whose loss or gradient was NaN or infinite; or
 * -1 - t, when step t's update would have made a param NaN or infinite
 * (either way step t's update is not applied: the params keep their last
 * finite values); or steps + 1 + k when dlrt_interrupt stopped it after k
 * steps.
 *
 * Loops are counted loops over blocks of elements whose reductions are
 * phis; the reduction's fadd carries reassoc so that LLVM's vectorizer may
 * split it into vector lanes (see shared/notes/llvm19.md), and each block's
 * sum is published for the team. exp in float32 is inline arithmetic;
 * other elementary functions are libm calls that name their libmvec
 * vector variants, so that vectorized loops call those. Every node is
 * emitted from values already emitted: preludes and loop bodies are in
 * topological order, so there is no recursion over the expression.
 */
#include "dlc.h"

#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Cg {
  const Program *p;
  const Schedule *s;
  const Optimizer *opt;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef ft, dt, i64, ptr;
  LLVMValueRef fn;
  LLVMValueRef *bufs;                            /* base pointer of each buffer */
  NodeMap scalar;                                /* scalar node -> value, per step */
  NodeMap elem;                                  /* vector node -> element value, per loop */
  LLVMValueRef idx;                              /* current loop index */
  Shape loop_shape;                              /* ... over a tensor of this shape */
  LLVMValueRef *loop_bad;                        /* per loop: NaN when a stored vector is not finite */
  LLVMValueRef thread, nthreads, team;           /* who runs this copy (see the header) */
  LLVMValueRef scratch;                          /* this step's half of the scratch array */
  int64_t *loop_region, *update_region;          /* where in it each loop and param update publishes */
  int64_t scratch_size;                          /* doubles in one half */
  int64_t stop_slot;                             /* where thread 0 publishes dlrt_interrupt */
  int vector_bits;                               /* widest libmvec variant to name; 0: none */
  LLVMValueRef *vector_fns;                      /* declared variants, kept by llvm.compiler.used */
  int nvector_fns;
} Cg;

static LLVMValueRef fconst(Cg *c, double v) { return LLVMConstReal(c->ft, v); }
static LLVMValueRef iconst(Cg *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }

/* A scalar data leaf (a hoisted `lr = 5e-6`) is a constant of the code. */
static bool is_constant(const Cg *c, const Node *n, double *v) {
  if (n->op == OP_CONST)
    *v = program_round(c->p, n->num);
  else if (n->op == OP_DATA && n->shape.rank == 0)
    *v = c->p->data[n->slot].value.v[0];
  else
    return false;
  return true;
}

static LLVMValueRef with_flags(LLVMValueRef v, LLVMFastMathFlags f) {
  if (LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, f);
  return v;
}

/* Arithmetic may contract a*b+c into an fma, and a division by a value
 * that does not change in a loop may become a multiplication by its
 * reciprocal, computed once (both within an ulp); only reductions
 * reassociate. */
static LLVMValueRef arith(Cg *c, LLVMOpcode op, LLVMValueRef a, LLVMValueRef b) {
  LLVMFastMathFlags f = LLVMFastMathAllowContract | (op == LLVMFDiv ? LLVMFastMathAllowReciprocal : 0);
  return with_flags(LLVMBuildBinOp(c->b, op, a, b, ""), f);
}

/* bad + (v - v): v - v is 0 for a finite v and NaN otherwise, so the sum
 * stays 0 while every v added is finite. */
static LLVMValueRef add_nonfinite(Cg *c, LLVMValueRef bad, LLVMValueRef v) {
  return with_flags(LLVMBuildFAdd(c->b, bad, LLVMBuildFSub(c->b, v, v, ""), ""),
                    LLVMFastMathAllowReassoc);
}

static LLVMValueRef intrinsic(Cg *c, const char *name, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef types[1] = {LLVMTypeOf(args[0])};
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, types, 1);
  return LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->ctx, id, types, 1), f, args, (unsigned)n, "");
}

static LLVMValueRef intrinsic1(Cg *c, const char *name, LLVMValueRef x) {
  return intrinsic(c, name, &x, 1);
}

static void add_fn_attr(Cg *c, LLVMValueRef f, const char *name) {
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName(name, strlen(name)), 0));
}

/* The libmvec variants of a libm function for the widths the CPU has:
 * glibc's names (_ZGVeN16v_expf: AVX-512, 16 lanes) as the loop vectorizer
 * expects them in a call's "vector-function-abi-variant" attribute. Each is
 * declared here and listed in llvm.compiler.used, else it would be deleted
 * before the vectorizer runs. */
static void vector_variants(Cg *c, const char *scalar, int nargs, Buf *attr) {
  static const struct { int bits; char isa; } widths[] = {{128, 'b'}, {256, 'd'}, {512, 'e'}};
  int lane_bits = c->p->opts.f64 ? 64 : 32;
  const char *params = nargs == 2 ? "vv" : "v";
  for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
    if (widths[w].bits > c->vector_bits)
      continue;
    int lanes = widths[w].bits / lane_bits;
    char vname[64];
    snprintf(vname, sizeof vname, "_ZGV%cN%d%s_%s", widths[w].isa, lanes, params, scalar);
    LLVMTypeRef vt = LLVMVectorType(c->ft, (unsigned)lanes);
    LLVMTypeRef vargs[2] = {vt, vt};
    LLVMValueRef vf = LLVMGetNamedFunction(c->mod, vname);
    if (!vf) {
      vf = LLVMAddFunction(c->mod, vname, LLVMFunctionType(vt, vargs, (unsigned)nargs, 0));
      c->vector_fns = realloc(c->vector_fns, sizeof(LLVMValueRef) * (size_t)(c->nvector_fns + 1));
      c->vector_fns[c->nvector_fns++] = vf;
    }
    buf_printf(attr, "%s_ZGV_LLVM_N%d%s_%s(%s)", attr->len ? "," : "", lanes, params, scalar, vname);
  }
}

/* A call of a libm function (expf, or exp under --f64) of one or two
 * arguments. It touches no memory, so LLVM may hoist it, and where libmvec
 * is loaded the loop vectorizer replaces it by a vector variant. */
static LLVMValueRef libm(Cg *c, const char *name, LLVMValueRef *args, int nargs) {
  char scalar[32];
  snprintf(scalar, sizeof scalar, "%s%s", name, c->p->opts.f64 ? "" : "f");
  LLVMTypeRef params[2] = {c->ft, c->ft};
  LLVMTypeRef fty = LLVMFunctionType(c->ft, params, (unsigned)nargs, 0);
  LLVMValueRef f = LLVMGetNamedFunction(c->mod, scalar);
  if (!f) {
    f = LLVMAddFunction(c->mod, scalar, fty);
    const char *attrs[] = {"nounwind", "willreturn", "nosync", "memory"};  /* memory(none) */
    for (int i = 0; i < 4; i++)
      add_fn_attr(c, f, attrs[i]);
  }
  LLVMValueRef call = LLVMBuildCall2(c->b, fty, f, args, (unsigned)nargs, "");
  Buf attr = {0};
  vector_variants(c, scalar, nargs, &attr);
  if (attr.len) {
    const char *key = "vector-function-abi-variant";
    LLVMAddCallSiteAttribute(call, LLVMAttributeFunctionIndex,
                             LLVMCreateStringAttribute(c->ctx, key, (unsigned)strlen(key), attr.data,
                                                       (unsigned)attr.len));
  }
  buf_free(&attr);
  return call;
}

static LLVMValueRef libm1(Cg *c, const char *name, LLVMValueRef x) { return libm(c, name, &x, 1); }

static LLVMValueRef bool_to_float(Cg *c, LLVMValueRef b) { return LLVMBuildUIToFP(c->b, b, c->ft, ""); }

static LLVMValueRef fcmp(Cg *c, LLVMRealPredicate pred, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(c->b, pred, a, b, "");
}

/* x^k for a whole k: repeated multiplication, as PyTorch does for small
 * exponents (x^3 is (x * x) * x); negative k divides into 1. */
static LLVMValueRef int_pow(Cg *c, LLVMValueRef x, int k) {
  int m = k < 0 ? -k : k;
  LLVMValueRef r = m ? x : fconst(c, 1);
  for (int i = 1; i < m; i++)
    r = arith(c, LLVMFMul, r, x);
  return k < 0 ? arith(c, LLVMFDiv, fconst(c, 1), r) : r;
}

/* exp in float32 as arithmetic, not a call: a call to a vector exp makes
 * the loop spill every accumulator around it (the vector ABI preserves no
 * vector register), which cost the peak fit a third of its time. Cephes'
 * expf: n = round(x log2 e), r = x - n ln 2 in two parts (Cody and Waite),
 * e^r by a degree-7 polynomial, then 2^n built in the exponent bits, in two
 * factors so that results down to the subnormals scale correctly. Within
 * 2 ulp over the whole range (tests/unit/check_jit.c); the same code will
 * serve the GPU. */
static LLVMValueRef emit_exp_f32(Cg *c, LLVMValueRef x) {
  LLVMTypeRef i32 = LLVMInt32TypeInContext(c->ctx);
  LLVMValueRef nan = fcmp(c, LLVMRealUNO, x, x);
  /* Beyond these, e^x is 0 or inf in float; the clamp keeps n in range. */
  LLVMValueRef lo = fconst(c, -104), hi = fconst(c, 89);
  LLVMValueRef xc = LLVMBuildSelect(c->b, fcmp(c, LLVMRealOLT, x, lo), lo, x, "");
  xc = LLVMBuildSelect(c->b, fcmp(c, LLVMRealOGT, xc, hi), hi, xc, "");
  xc = LLVMBuildSelect(c->b, nan, fconst(c, 0), xc, "");
  LLVMValueRef n = intrinsic1(c, "llvm.floor", arith(c, LLVMFAdd, arith(c, LLVMFMul, xc, fconst(c, M_LOG2E)),
                                                     fconst(c, 0.5)));
  LLVMValueRef r = arith(c, LLVMFSub, xc, arith(c, LLVMFMul, n, fconst(c, 0.693359375)));
  r = arith(c, LLVMFSub, r, arith(c, LLVMFMul, n, fconst(c, -2.12194440e-4)));
  static const double coef[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
  LLVMValueRef p = fconst(c, coef[0]);
  for (size_t k = 1; k < sizeof coef / sizeof *coef; k++)
    p = arith(c, LLVMFAdd, arith(c, LLVMFMul, p, r), fconst(c, coef[k]));
  LLVMValueRef y = arith(c, LLVMFAdd, arith(c, LLVMFMul, p, arith(c, LLVMFMul, r, r)), r);
  y = arith(c, LLVMFAdd, y, fconst(c, 1));
  /* 2^n = 2^(n/2) * 2^(n - n/2), each a float built from its exponent. */
  LLVMValueRef ni = LLVMBuildFPToSI(c->b, n, i32, "");
  LLVMValueRef n1 = LLVMBuildAShr(c->b, ni, LLVMConstInt(i32, 1, 0), "");
  LLVMValueRef n2 = LLVMBuildSub(c->b, ni, n1, "");
  LLVMValueRef half[2] = {n1, n2};
  for (int k = 0; k < 2; k++) {
    LLVMValueRef bits = LLVMBuildShl(c->b, LLVMBuildAdd(c->b, half[k], LLVMConstInt(i32, 127, 0), ""),
                                     LLVMConstInt(i32, 23, 0), "");
    y = arith(c, LLVMFMul, y, LLVMBuildBitCast(c->b, bits, c->ft, ""));
  }
  return LLVMBuildSelect(c->b, nan, x, y, "");
}

/* tanh in float32 as arithmetic, for the reason exp is (the hidden layers
 * of a perceptron are tanh of whole matrices): Cephes' tanhf. Past
 * |x| = 0.5625, 1 - 2 / (e^(2|x|) + 1) with the sign of x; below, where
 * that would cancel, x + x^3 P(x^2). Within 2 ulp (tests/unit/check_jit.c). */
static LLVMValueRef emit_tanh_f32(Cg *c, LLVMValueRef x) {
  LLVMValueRef z = intrinsic1(c, "llvm.fabs", x);
  LLVMValueRef e = emit_exp_f32(c, arith(c, LLVMFMul, fconst(c, 2), z));
  LLVMValueRef big = arith(c, LLVMFSub, fconst(c, 1), arith(c, LLVMFDiv, fconst(c, 2), arith(c, LLVMFAdd, e, fconst(c, 1))));
  LLVMValueRef args[2] = {big, x};
  big = intrinsic(c, "llvm.copysign", args, 2);
  static const double coef[] = {-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                                1.33314422036e-1, -3.33332819422e-1};
  LLVMValueRef x2 = arith(c, LLVMFMul, x, x), poly = fconst(c, coef[0]);
  for (size_t k = 1; k < sizeof coef / sizeof *coef; k++)
    poly = arith(c, LLVMFAdd, arith(c, LLVMFMul, poly, x2), fconst(c, coef[k]));
  LLVMValueRef small = arith(c, LLVMFAdd, arith(c, LLVMFMul, arith(c, LLVMFMul, poly, x2), x), x);
  return LLVMBuildSelect(c->b, fcmp(c, LLVMRealOGT, z, fconst(c, 0.5625)), big, small, "");
}

/* e^x: inline in float32, libm (vectorized through libmvec) in double. */
static LLVMValueRef emit_exp(Cg *c, LLVMValueRef x) {
  return c->p->opts.f64 ? libm1(c, "exp", x) : emit_exp_f32(c, x);
}

static LLVMValueRef emit_pow(Cg *c, const Node *n, LLVMValueRef a, LLVMValueRef b) {
  const Node *e = n->args[1];
  while (e->op == OP_BROADCAST)
    e = e->args[0];
  double k;
  if (is_constant(c, e, &k) && k == floor(k) && fabs(k) <= 16)
    return int_pow(c, a, (int)k);
  if (is_constant(c, e, &k) && k == 0.5)
    return intrinsic1(c, "llvm.sqrt", a);
  LLVMValueRef args[2] = {a, b};
  return libm(c, "pow", args, 2);
}

static LLVMValueRef value_of(Cg *c, const Node *n) {
  double k;
  if (is_constant(c, n, &k))
    return fconst(c, k);
  LLVMValueRef v = nodemap_get(n->shape.rank ? &c->elem : &c->scalar, n);
  if (!v) {
    /* A schedule bug, not a user error: stop before emitting bad IR. */
    fprintf(stderr, "dlc: internal error: node %%%u (%s) used before it is computed\n", n->id,
            op_info[n->op].name);
    abort();
  }
  return v;
}

static LLVMValueRef buf_elem_ptr(Cg *c, int buf, LLVMValueRef idx) {
  return LLVMBuildGEP2(c->b, c->ft, c->bufs[buf], &idx, 1, "");
}

static int slot_of(Cg *c, const Node *n) {
  int ready;
  return schedule_buffer(c->s, n, &ready);
}

/* Element c->idx of the current loop, of a node held in buffer `slot`
 * (schedule.c), under broadcasting: a row repeats down a matrix, a
 * column across it. */
static LLVMValueRef load_held(Cg *c, const Node *n, int slot) {
  Shape at = n->shape, loop = c->loop_shape;
  LLVMValueRef idx;
  if (shape_numel(at) == 1 || n->shape.rank == 0)
    idx = iconst(c, 0);
  else if (shape_numel(at) == shape_numel(loop))
    idx = c->idx;
  else if (shape_rows(at) == 1)
    idx = LLVMBuildURem(c->b, c->idx, iconst(c, shape_cols(loop)), "");
  else
    idx = LLVMBuildUDiv(c->b, c->idx, iconst(c, shape_cols(loop)), "");
  return LLVMBuildLoad2(c->b, c->ft, buf_elem_ptr(c, slot, idx), "");
}

/* The value of node n, all of whose arguments are already emitted. */
static LLVMValueRef emit_node(Cg *c, const Node *n) {
  int ready, slot = schedule_buffer(c->s, n, &ready);
  if (slot >= 0 && n->shape.rank == 0)           /* a scalar view of a buffer, in a prelude */
    return load_held(c, n, slot);
  LLVMValueRef a = n->nargs > 0 ? value_of(c, n->args[0]) : NULL;
  LLVMValueRef b = n->nargs > 1 ? value_of(c, n->args[1]) : NULL;
  double v;
  if (is_constant(c, n, &v))
    return fconst(c, v);
  switch (n->op) {
  case OP_CONST: break;
  case OP_PARAM:                                 /* a scalar one, private to the thread */
    return LLVMBuildLoad2(c->b, c->ft, buf_elem_ptr(c, c->s->param_buf[n->slot], iconst(c, 0)), "");
  case OP_DATA:
    break;
  case OP_ADD: return arith(c, LLVMFAdd, a, b);
  case OP_SUB: return arith(c, LLVMFSub, a, b);
  case OP_MUL: return arith(c, LLVMFMul, a, b);
  case OP_DIV: return arith(c, LLVMFDiv, a, b);
  case OP_NEG: return LLVMBuildFNeg(c->b, a, "");
  case OP_POW: return emit_pow(c, n, a, b);
  case OP_LT: return bool_to_float(c, fcmp(c, LLVMRealOLT, a, b));
  case OP_LE: return bool_to_float(c, fcmp(c, LLVMRealOLE, a, b));
  case OP_GT: return bool_to_float(c, fcmp(c, LLVMRealOGT, a, b));
  case OP_GE: return bool_to_float(c, fcmp(c, LLVMRealOGE, a, b));
  case OP_EQ: return bool_to_float(c, fcmp(c, LLVMRealOEQ, a, b));
  case OP_NE: return bool_to_float(c, fcmp(c, LLVMRealUNE, a, b));
  case OP_WHERE:
    return LLVMBuildSelect(c->b, fcmp(c, LLVMRealUNE, a, fconst(c, 0)), b,
                           value_of(c, n->args[2]), "");
  case OP_SIN: return libm1(c, "sin", a);
  case OP_COS: return libm1(c, "cos", a);
  case OP_EXP: return emit_exp(c, a);
  case OP_LOG: return libm1(c, "log", a);
  case OP_SQRT: return intrinsic1(c, "llvm.sqrt", a);
  case OP_ABS: return intrinsic1(c, "llvm.fabs", a);
  case OP_TAN: return libm1(c, "tan", a);
  case OP_TANH: return c->p->opts.f64 ? libm1(c, "tanh", a) : emit_tanh_f32(c, a);
  case OP_ATAN: return libm1(c, "atan", a);
  case OP_LOG1P: return libm1(c, "log1p", a);
  case OP_EXPM1: return libm1(c, "expm1", a);
  case OP_SIGMOID: {
    LLVMValueRef e = emit_exp(c, LLVMBuildFNeg(c->b, a, ""));
    return arith(c, LLVMFDiv, fconst(c, 1), arith(c, LLVMFAdd, fconst(c, 1), e));
  }
  case OP_SIGN: {
    LLVMValueRef neg = LLVMBuildSelect(c->b, fcmp(c, LLVMRealOLT, a, fconst(c, 0)), fconst(c, -1), a, "");
    return LLVMBuildSelect(c->b, fcmp(c, LLVMRealOGT, a, fconst(c, 0)), fconst(c, 1), neg, "");
  }
  case OP_RELU:   /* NaN is not <= 0: it passes through, as in torch.relu */
    return LLVMBuildSelect(c->b, fcmp(c, LLVMRealOLE, a, fconst(c, 0)), fconst(c, 0), a, "");
  case OP_SOFTPLUS: {
    LLVMValueRef soft = libm1(c, "log1p", emit_exp(c, a));
    return LLVMBuildSelect(c->b, fcmp(c, LLVMRealOGT, a, fconst(c, 20)), a, soft, "");
  }
  case OP_MIN: {
    LLVMValueRef args[2] = {a, b};
    return intrinsic(c, "llvm.minimum", args, 2);
  }
  case OP_MAX: {
    LLVMValueRef args[2] = {a, b};
    return intrinsic(c, "llvm.maximum", args, 2);
  }
  case OP_BROADCAST:
  case OP_SUM:    /* of a scalar: the scalar itself */
  case OP_MEAN:
  case OP_NOGRAD:
  case OP_RESHAPE: /* of a scalar (other reshapes are views) */
    return a;
  case OP_MATMUL: case OP_TRANSPOSE: case OP_RSUM: case OP_RMAX: case OP_RMIN:
  case OP_ARGMAX: case OP_SLICE: case OP_PAD:   /* kernels (emit_kernel) */
  case OP_VAR:
  case OP_FNCALL:
  case OP_COUNT:
    break;
  }
  fprintf(stderr, "dlc: internal error: cannot emit %s\n", op_info[n->op].name);
  abort();
}

/* Reductions sum a block of this many elements at a time in the working
 * type (in vector lanes); the blocks' sums are then added in double, in
 * block order: the rounding error of a sum over a million floats stays
 * that of a few thousand, as with PyTorch's cascaded sums, and the result
 * does not depend on how many threads computed the blocks. */
enum { SUM_BLOCK = 4096 };

static int64_t block_count(int64_t n) { return (n + SUM_BLOCK - 1) / SUM_BLOCK; }

static void add_incoming(LLVMValueRef phi, LLVMValueRef a, LLVMBasicBlockRef from_a,
                         LLVMValueRef b, LLVMBasicBlockRef from_b) {
  LLVMAddIncoming(phi, (LLVMValueRef[]){a, b}, (LLVMBasicBlockRef[]){from_a, from_b}, 2);
}

/* A loop over this thread's share of a vector's elements, as a loop over
 * blocks around a loop over a block's elements. The share is blocks
 * [nblocks * k / T, nblocks * (k + 1) / T) for thread k of T: it depends
 * on the length only, so a thread touches the same elements of every
 * vector of one length, in every loop and every step, and only reductions
 * cross threads. */
typedef struct Blocks {
  int64_t n, nblocks;
  LLVMBasicBlockRef outer, inner, block_done, done;
  LLVMValueRef blk, first;                       /* the block, and its first element */
  LLVMValueRef stop;                             /* one past its last element */
} Blocks;

/* Leaves the builder in the element loop, after the index phi (c->idx). */
static void blocks_begin(Cg *c, Blocks *k, int64_t n) {
  k->n = n;
  k->nblocks = block_count(n);
  k->outer = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "block");
  k->inner = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "loop");
  k->block_done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "block.done");
  k->done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "loop.done");
  if (k->nblocks == 1) {
    /* One block is thread 0's, and a loop of constant trip count that
     * LLVM vectorizes without remainder loops. */
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, c->thread, iconst(c, 0), ""), k->outer,
                    k->done);
    LLVMPositionBuilderAtEnd(c->b, k->outer);
    k->blk = k->first = iconst(c, 0);
    k->stop = iconst(c, n);
    LLVMBuildBr(c->b, k->inner);
    LLVMPositionBuilderAtEnd(c->b, k->block_done);
    LLVMBuildBr(c->b, k->done);
  } else {
    LLVMValueRef nb = iconst(c, k->nblocks);
    LLVMValueRef lo = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nb, c->thread, ""), c->nthreads, "");
    LLVMValueRef next_thread = LLVMBuildAdd(c->b, c->thread, iconst(c, 1), "");
    LLVMValueRef hi = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nb, next_thread, ""), c->nthreads, "");
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, lo, hi, ""), k->outer, k->done);
    LLVMPositionBuilderAtEnd(c->b, k->outer);
    k->blk = LLVMBuildPhi(c->b, c->i64, "b");
    k->first = LLVMBuildMul(c->b, k->blk, iconst(c, SUM_BLOCK), "");
    LLVMValueRef past = LLVMBuildAdd(c->b, k->first, iconst(c, SUM_BLOCK), "");
    k->stop = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, past, iconst(c, n), ""), past,
                              iconst(c, n), "");
    LLVMBuildBr(c->b, k->inner);
    LLVMPositionBuilderAtEnd(c->b, k->block_done);
    LLVMValueRef blk_next = LLVMBuildAdd(c->b, k->blk, iconst(c, 1), "");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, blk_next, hi, ""), k->outer, k->done);
    add_incoming(k->blk, lo, pre, blk_next, k->block_done);
  }
  LLVMPositionBuilderAtEnd(c->b, k->inner);
  c->idx = LLVMBuildPhi(c->b, c->i64, "i");
}

/* Asks the vectorizer for masked vector iterations instead of a scalar
 * remainder loop: for a vector of one block, a loop of constant trip
 * count, that is less machine code to compile (about 1.5 ms of the seed's
 * 20) and as fast. Over many blocks the masks would cost every iteration. */
static void loop_hint(Cg *c, LLVMValueRef latch, const char *key, bool value) {
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->ctx, NULL, 0);
  LLVMMetadataRef kv[2] = {LLVMMDStringInContext2(c->ctx, key, strlen(key)),
                           LLVMValueAsMetadata(LLVMConstInt(LLVMInt1TypeInContext(c->ctx), value, 0))};
  LLVMMetadataRef pred = LLVMMDNodeInContext2(c->ctx, kv, 2);
  LLVMMetadataRef ops[2] = {tmp, pred};
  LLVMMetadataRef loop = LLVMMDNodeInContext2(c->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, loop);
  LLVMSetMetadata(latch, LLVMGetMDKindIDInContext(c->ctx, "llvm.loop", 9), LLVMMetadataAsValue(c->ctx, loop));
}

static void fold_tail(Cg *c, LLVMValueRef latch) { loop_hint(c, latch, "llvm.loop.vectorize.predicate.enable", true); }

/* Closes the element loop; leaves the builder in block.done, before its
 * branch, for the block's results. Returns the last block of the element
 * loop, the incoming block of its phis. */
static LLVMBasicBlockRef blocks_end_elements(Cg *c, Blocks *k) {
  LLVMValueRef idx_next = LLVMBuildAdd(c->b, c->idx, iconst(c, 1), "");
  LLVMBasicBlockRef end = LLVMGetInsertBlock(c->b);
  LLVMValueRef br = LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, idx_next, k->stop, ""),
                                    k->inner, k->block_done);
  if (k->nblocks == 1)
    fold_tail(c, br);
  add_incoming(c->idx, k->first, k->outer, idx_next, end);
  LLVMPositionBuilderBefore(c->b, LLVMGetFirstInstruction(k->block_done));
  return end;
}

/* A block's result (a sum, or a finite flag), published for the team:
 * row `row` of the region at `region` in the scratch array, one double
 * per block. */
static void publish(Cg *c, Blocks *k, int64_t region, int row, LLVMValueRef v) {
  LLVMValueRef wide = LLVMTypeOf(v) == c->dt ? v : LLVMBuildFPExt(c->b, v, c->dt, "");
  LLVMValueRef at = LLVMBuildAdd(c->b, iconst(c, region + row * k->nblocks), k->blk, "");
  LLVMBuildStore(c->b, wide, LLVMBuildGEP2(c->b, c->dt, c->scratch, &at, 1, ""));
}

/* A call of a runtime function returning nothing (dlrt_step,
 * dlrt_team_barrier), declared in the module on first use. */
static void call_runtime(Cg *c, const char *name, LLVMTypeRef *params, LLVMValueRef *args, int n) {
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(c->ctx), params, (unsigned)n, 0);
  LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
  if (!f)
    f = LLVMAddFunction(c->mod, name, fty);
  LLVMBuildCall2(c->b, fty, f, args, (unsigned)n, "");
}

/* Waits for the team, when there is one. */
static void team_barrier(Cg *c) {
  LLVMBasicBlockRef wait = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "barrier");
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "barrier.done");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, c->nthreads, iconst(c, 1), ""), wait, go);
  LLVMPositionBuilderAtEnd(c->b, wait);
  call_runtime(c, "dlrt_team_barrier", &c->ptr, &c->team, 1);
  LLVMBuildBr(c->b, go);
  LLVMPositionBuilderAtEnd(c->b, go);
}

/* After the barrier: each of nrows rows of a region summed over all
 * blocks, in block order, in double. Every thread computes the same
 * totals from the same numbers. */
static void combine(Cg *c, Blocks *k, int64_t region, int nrows, LLVMValueRef *total) {
  team_barrier(c);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "combine");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "combine.done");
  LLVMBuildBr(c->b, body);
  LLVMPositionBuilderAtEnd(c->b, body);
  LLVMValueRef j = LLVMBuildPhi(c->b, c->i64, "j");
  LLVMValueRef acc[nrows + 1];
  for (int r = 0; r < nrows; r++)
    acc[r] = LLVMBuildPhi(c->b, c->dt, "total");
  for (int r = 0; r < nrows; r++) {
    LLVMValueRef at = LLVMBuildAdd(c->b, iconst(c, region + r * k->nblocks), j, "");
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->dt, LLVMBuildGEP2(c->b, c->dt, c->scratch, &at, 1, ""), "");
    total[r] = LLVMBuildFAdd(c->b, acc[r], v, "");
  }
  LLVMValueRef jn = LLVMBuildAdd(c->b, j, iconst(c, 1), "");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, jn, iconst(c, k->nblocks), ""), body, done);
  add_incoming(j, iconst(c, 0), pre, jn, body);
  for (int r = 0; r < nrows; r++)
    add_incoming(acc[r], LLVMConstReal(c->dt, 0), pre, total[r], body);
  LLVMPositionBuilderAtEnd(c->b, done);
}

/* Element c->idx of m, in a loop over c->loop_shape: loaded when the
 * loop loads it, else computed from its arguments' elements. */
static LLVMValueRef loop_value(Cg *c, const Loop *l, const Node *m) {
  return loop_loads(c->s, l, m) ? load_held(c, m, slot_of(c, m)) : emit_node(c, m);
}

/* One fused loop: every vector node its reductions and stores need, per
 * element. Reductions accumulate in phis; each block's sums and finite
 * flag are published, and combined once the team has them all. */
static void emit_loop(Cg *c, int loop_index) {
  const Loop *l = &c->s->loops[loop_index];
  int nred = l->reductions.n, nst = l->stores.n;
  LLVMValueRef fzero = fconst(c, 0);
  LLVMFastMathFlags reassoc = LLVMFastMathAllowReassoc | LLVMFastMathAllowContract;
  Blocks k;
  blocks_begin(c, &k, shape_numel(l->shape));
  LLVMValueRef acc[nred + 1], next[nred + 1];
  for (int r = 0; r < nred; r++)
    acc[r] = LLVMBuildPhi(c->b, c->ft, "acc");
  /* The finite check of the stored vectors (add_nonfinite). */
  LLVMValueRef bad = nst ? LLVMBuildPhi(c->b, c->ft, "nonfinite") : NULL;

  Node *roots[nred + nst + 1];
  int nroots;
  NodeList order = loop_order(c->s, l, roots, &nroots);
  nodemap_free(&c->elem);
  c->loop_shape = l->shape;
  for (int i = 0; i < order.n; i++)
    nodemap_put(&c->elem, order.items[i], loop_value(c, l, order.items[i]));
  nodelist_free(&order);

  for (int r = 0; r < nred; r++)
    next[r] = with_flags(LLVMBuildFAdd(c->b, acc[r], value_of(c, roots[r]), ""), reassoc);
  LLVMValueRef bad_next = bad;
  for (int s = 0; s < nst; s++) {
    LLVMValueRef v = value_of(c, l->stores.items[s]);
    LLVMBuildStore(c->b, v, buf_elem_ptr(c, l->store_slots[s], c->idx));
    if (c->s->bufs[l->store_slots[s]].kind == BUF_GRAD)   /* (a kernel's input shows in the loss) */
      bad_next = add_nonfinite(c, bad_next, v);
  }
  LLVMBasicBlockRef end = blocks_end_elements(c, &k);
  for (int r = 0; r < nred; r++)
    add_incoming(acc[r], fzero, k.outer, next[r], end);
  if (bad)
    add_incoming(bad, fzero, k.outer, bad_next, end);
  int64_t region = c->loop_region[loop_index];
  for (int r = 0; r < nred; r++)
    publish(c, &k, region, r, next[r]);
  if (bad)
    publish(c, &k, region, nred, bad_next);

  LLVMPositionBuilderAtEnd(c->b, k.done);
  LLVMValueRef total[nred + 2];
  combine(c, &k, region, nred + (bad != NULL), total);
  for (int r = 0; r < nred; r++) {
    const Node *red = l->reductions.items[r];
    LLVMValueRef v = total[r];
    if (red->op == OP_MEAN)
      v = LLVMBuildFDiv(c->b, v, LLVMConstReal(c->dt, (double)k.n), "");
    nodemap_put(&c->scalar, red, c->ft == c->dt ? v : LLVMBuildFPTrunc(c->b, v, c->ft, ""));
  }
  c->loop_bad[loop_index] = bad ? total[nred] : NULL;
}

/* ---- kernels: whole-tensor operations between the loops (schedule.c).
 * Each thread computes its share of the result's rows (or columns), in
 * an order that does not depend on the share, then the team meets. */

/* A counted loop `for (i = lo; i < hi; i++)`: for_begin leaves the
 * builder in the body, after the phi of i; for_end closes it and leaves
 * the builder after the loop, returning the body's last block (for the
 * caller's phis, whose first incoming block is f->pre). Only the loops
 * that gain from it are vectorized (vectorize set): the vectorizer's code
 * for the others (copies, the short loops of small matrices) cost a third
 * of the compile time of the examples, for no faster step. */
enum { MIN_VECTOR_TRIP = 16 };                  /* shorter loops stay scalar */

typedef struct For {
  LLVMBasicBlockRef pre, body, done;
  LLVMValueRef i;
  bool vectorize;                                /* set before for_end: else a scalar loop */
} For;

static LLVMValueRef for_begin(Cg *c, For *f, LLVMValueRef lo, LLVMValueRef hi) {
  f->pre = LLVMGetInsertBlock(c->b);
  f->vectorize = false;
  f->body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "for");
  f->done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "for.done");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, lo, hi, ""), f->body, f->done);
  LLVMPositionBuilderAtEnd(c->b, f->body);
  f->i = LLVMBuildPhi(c->b, c->i64, "i");
  LLVMAddIncoming(f->i, &lo, &f->pre, 1);
  return f->i;
}

static LLVMBasicBlockRef for_end(Cg *c, For *f, LLVMValueRef hi) {
  LLVMValueRef next = LLVMBuildAdd(c->b, f->i, iconst(c, 1), "");
  LLVMBasicBlockRef last = LLVMGetInsertBlock(c->b);
  LLVMValueRef br = LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, next, hi, ""), f->body, f->done);
  if (!f->vectorize)
    loop_hint(c, br, "llvm.loop.vectorize.enable", false);
  LLVMAddIncoming(f->i, &next, &last, 1);
  LLVMPositionBuilderAtEnd(c->b, f->done);
  return last;
}

/* This thread's share [lo, hi) of n rows: n * k / T to n * (k + 1) / T. */
static void share(Cg *c, int64_t n, LLVMValueRef *lo, LLVMValueRef *hi) {
  LLVMValueRef nn = iconst(c, n);
  *lo = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nn, c->thread, ""), c->nthreads, "");
  *hi = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nn, LLVMBuildAdd(c->b, c->thread, iconst(c, 1), ""), ""),
                      c->nthreads, "");
}

static LLVMValueRef at2(Cg *c, LLVMValueRef i, int64_t cols, LLVMValueRef j) {
  return LLVMBuildAdd(c->b, LLVMBuildMul(c->b, i, iconst(c, cols), ""), j, "");
}

static LLVMValueRef load_at(Cg *c, int slot, LLVMValueRef idx) {
  return LLVMBuildLoad2(c->b, c->ft, buf_elem_ptr(c, slot, idx), "");
}

static void store_at(Cg *c, int slot, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(c->b, v, buf_elem_ptr(c, slot, idx));
}

bool codegen_uses_blas(const Node *n) {
  int64_t rows = shape_rows(n->shape), cols = shape_cols(n->shape), inner = shape_cols(n->args[0]->shape);
  return n->op == OP_MATMUL && cols > 1 && rows * cols * inner >= DLRT_BLAS_MIN_MACS && dlrt_blas();
}

/* Element (i, j) of A @ B: the sum over k of A[i, k] B[k, j], in order
 * of k but split into vector lanes (reassociated, as the loops'
 * reductions). */
static LLVMValueRef dot(Cg *c, const Node *n, LLVMValueRef i, LLVMValueRef j) {
  const Node *a = n->args[0];
  int sa = slot_of(c, a), sb = slot_of(c, n->args[1]);
  int64_t cols = shape_cols(n->shape), inner = shape_cols(a->shape);
  For fk;
  LLVMValueRef k = for_begin(c, &fk, iconst(c, 0), iconst(c, inner));
  LLVMValueRef acc = LLVMBuildPhi(c->b, c->ft, "dot");
  LLVMValueRef prod = arith(c, LLVMFMul, load_at(c, sa, at2(c, i, inner, k)), load_at(c, sb, at2(c, k, cols, j)));
  LLVMValueRef next = with_flags(LLVMBuildFAdd(c->b, acc, prod, ""), LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  fk.vectorize = inner >= MIN_VECTOR_TRIP;
  LLVMBasicBlockRef last = for_end(c, &fk, iconst(c, inner));
  add_incoming(acc, fconst(c, 0), fk.pre, next, last);
  LLVMValueRef sum = LLVMBuildPhi(c->b, c->ft, "");
  add_incoming(sum, fconst(c, 0), fk.pre, next, last);
  return sum;
}

/* C = A @ B: by OpenBLAS; else row by row: C[i, :] = sum over k of
 * A[i, k] B[k, :], each sum in order of k, the inner loop over a row of B
 * (vectorized); for a column B, a dot product per row. */
static void emit_matmul(Cg *c, const Node *n, int out) {
  const Node *a = n->args[0], *b = n->args[1];
  int sa = slot_of(c, a), sb = slot_of(c, b);
  int64_t rows = shape_rows(n->shape), cols = shape_cols(n->shape), inner = shape_cols(a->shape);
  if (codegen_uses_blas(n)) {
    /* OpenBLAS, on thread 0 for the whole product: its sums are then in
     * one order whatever the number of threads. */
    LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "gemm");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "gemm.done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, c->thread, iconst(c, 0), ""), call, go);
    LLVMPositionBuilderAtEnd(c->b, call);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(c->ctx);
    LLVMTypeRef types[14] = {i32, i32, i32, i32, i32, i32, c->ft, c->ptr, i32, c->ptr, i32, c->ft, c->ptr, i32};
    /* order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc */
    int64_t ints[14] = {DLRT_CBLAS_ROW_MAJOR, DLRT_CBLAS_NO_TRANS, DLRT_CBLAS_NO_TRANS, rows, cols, inner,
                        0, 0, inner, 0, cols, 0, 0, cols};
    LLVMValueRef args[14];
    for (int k = 0; k < 14; k++)
      args[k] = LLVMConstInt(i32, (unsigned long long)ints[k], 0);
    args[6] = fconst(c, 1);
    args[7] = c->bufs[sa];
    args[9] = c->bufs[sb];
    args[11] = fconst(c, 0);
    args[12] = c->bufs[out];
    call_runtime(c, c->p->opts.f64 ? "cblas_dgemm" : "cblas_sgemm", types, args, 14);
    LLVMBuildBr(c->b, go);
    LLVMPositionBuilderAtEnd(c->b, go);
    return;
  }
  LLVMValueRef lo, hi, zero = iconst(c, 0);
  share(c, rows, &lo, &hi);
  For fi, fj, fk, fj2;
  LLVMValueRef i = for_begin(c, &fi, lo, hi);
  if (cols == 1) {
    store_at(c, out, i, dot(c, n, i, zero));
    for_end(c, &fi, hi);
    return;
  }
  LLVMValueRef j = for_begin(c, &fj, zero, iconst(c, cols));
  store_at(c, out, at2(c, i, cols, j), fconst(c, 0));
  for_end(c, &fj, iconst(c, cols));
  LLVMValueRef k = for_begin(c, &fk, zero, iconst(c, inner));
  LLVMValueRef aik = load_at(c, sa, at2(c, i, inner, k));
  LLVMValueRef j2 = for_begin(c, &fj2, zero, iconst(c, cols));
  LLVMValueRef at = at2(c, i, cols, j2);
  LLVMValueRef prod = arith(c, LLVMFMul, aik, load_at(c, sb, at2(c, k, cols, j2)));
  store_at(c, out, at, arith(c, LLVMFAdd, load_at(c, out, at), prod));
  fj2.vectorize = cols >= MIN_VECTOR_TRIP;
  for_end(c, &fj2, iconst(c, cols));
  for_end(c, &fk, iconst(c, inner));
  for_end(c, &fi, hi);
}

/* Element (i, j) of SLICE (a's block at pos) or PAD (zeros with a at
 * pos). */
static LLVMValueRef block_element(Cg *c, const Node *n, LLVMValueRef i, LLVMValueRef j) {
  const Node *a = n->args[0];
  int sa = slot_of(c, a);
  int64_t acols = shape_cols(a->shape);
  LLVMValueRef r0 = iconst(c, n->pos[0]), c0 = iconst(c, n->pos[1]);
  if (n->op == OP_SLICE)
    return load_at(c, sa, at2(c, LLVMBuildAdd(c->b, i, r0, ""), acols, LLVMBuildAdd(c->b, j, c0, "")));
  /* Inside the block: 0 <= i - r0 < rows of a, 0 <= j - c0 < its columns
   * (unsigned compares); the load is of a clamped index. */
  LLVMValueRef ai = LLVMBuildSub(c->b, i, r0, ""), aj = LLVMBuildSub(c->b, j, c0, "");
  LLVMValueRef in = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntULT, ai, iconst(c, shape_rows(a->shape)), ""),
                                 LLVMBuildICmp(c->b, LLVMIntULT, aj, iconst(c, acols), ""), "");
  LLVMValueRef idx = LLVMBuildSelect(c->b, in, at2(c, ai, acols, aj), iconst(c, 0), "");
  return LLVMBuildSelect(c->b, in, load_at(c, sa, idx), fconst(c, 0), "");
}

/* The running value of a reduction (sum, max, min, argmax) after x, the
 * element at index k. best: argmax's best value so far. */
static LLVMValueRef reduce_step(Cg *c, Op op, LLVMValueRef acc, LLVMValueRef x, LLVMValueRef k,
                                LLVMValueRef *best) {
  switch (op) {
  case OP_RSUM:
    return with_flags(LLVMBuildFAdd(c->b, acc, x, ""), LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  case OP_RMAX:
  case OP_RMIN: {
    LLVMValueRef args[2] = {acc, x};
    return intrinsic(c, op == OP_RMAX ? "llvm.maximum" : "llvm.minimum", args, 2);
  }
  default: {                                     /* ARGMAX: the first largest; a NaN wins */
    LLVMValueRef better = LLVMBuildOr(c->b, fcmp(c, LLVMRealOGT, x, *best),
                                      LLVMBuildAnd(c->b, fcmp(c, LLVMRealUNO, x, x),
                                                   fcmp(c, LLVMRealORD, *best, *best), ""), "");
    *best = LLVMBuildSelect(c->b, better, x, *best, "");
    return LLVMBuildSelect(c->b, better, LLVMBuildSIToFP(c->b, k, c->ft, ""), acc, "");
  }
  }
}

/* Element o of a reduction of one axis of a matrix: of row o (axis 1) or
 * of column o (axis 0), in order along it. */
static LLVMValueRef axis_element(Cg *c, const Node *n, LLVMValueRef o) {
  const Node *a = n->args[0];
  int sa = slot_of(c, a);
  int64_t rows = shape_rows(a->shape), cols = shape_cols(a->shape);
  bool along_rows = n->slot == 1;
  LLVMValueRef first = load_at(c, sa, along_rows ? at2(c, o, cols, iconst(c, 0)) : o);
  LLVMValueRef init = n->op == OP_RSUM || n->op == OP_ARGMAX ? fconst(c, 0) : first;
  For fk;
  LLVMValueRef k = for_begin(c, &fk, iconst(c, 0), iconst(c, along_rows ? cols : rows));
  LLVMValueRef acc = LLVMBuildPhi(c->b, c->ft, "acc");
  LLVMValueRef best = n->op == OP_ARGMAX ? LLVMBuildPhi(c->b, c->ft, "best") : NULL, best_next = best;
  LLVMValueRef x = load_at(c, sa, along_rows ? at2(c, o, cols, k) : at2(c, k, cols, o));
  LLVMValueRef next = reduce_step(c, n->op, acc, x, k, &best_next);
  fk.vectorize = n->op != OP_ARGMAX && along_rows && cols >= MIN_VECTOR_TRIP;
  LLVMBasicBlockRef last = for_end(c, &fk, iconst(c, along_rows ? cols : rows));
  add_incoming(acc, init, fk.pre, next, last);
  if (best)
    add_incoming(best, first, fk.pre, best_next, last);
  /* The loop ran at least once (a row is never empty): its last value. */
  LLVMValueRef result = LLVMBuildPhi(c->b, c->ft, "");
  add_incoming(result, next, last, init, fk.pre);
  return result;
}

/* A reduction of one axis of a matrix. Down the columns (axis 0, but for
 * argmax), the output row accumulates in memory, for this thread's share
 * of the columns, the inner loop along the rows of the matrix
 * (vectorized); else a register per result element. */
static void emit_axis(Cg *c, const Node *n, int out) {
  const Node *a = n->args[0];
  int sa = slot_of(c, a);
  int64_t rows = shape_rows(a->shape), cols = shape_cols(a->shape);
  Op op = n->op;
  LLVMValueRef lo, hi;
  bool along_rows = n->slot == 1;
  share(c, along_rows ? rows : cols, &lo, &hi);
  For fo;
  if (!along_rows && op != OP_ARGMAX) {
    For fi, fj2;
    LLVMValueRef j = for_begin(c, &fo, lo, hi);
    store_at(c, out, j, op == OP_RSUM ? fconst(c, 0) : load_at(c, sa, j));
    for_end(c, &fo, hi);
    LLVMValueRef i = for_begin(c, &fi, iconst(c, 0), iconst(c, rows));
    LLVMValueRef j2 = for_begin(c, &fj2, lo, hi);
    LLVMValueRef acc = load_at(c, out, j2), unused = NULL;
    store_at(c, out, j2, reduce_step(c, op, acc, load_at(c, sa, at2(c, i, cols, j2)), i, &unused));
    fj2.vectorize = cols >= MIN_VECTOR_TRIP;
    for_end(c, &fj2, hi);
    for_end(c, &fi, iconst(c, rows));
    return;
  }
  LLVMValueRef o = for_begin(c, &fo, lo, hi);
  store_at(c, out, o, axis_element(c, n, o));
  for_end(c, &fo, hi);
}

/* Element (i, j) of kernel n's result, computed alone from its
 * arguments' buffers (each sum in order). */
static LLVMValueRef kernel_element(Cg *c, const Node *n, LLVMValueRef i, LLVMValueRef j) {
  switch (n->op) {
  case OP_MATMUL: return dot(c, n, i, j);
  case OP_TRANSPOSE: return load_at(c, slot_of(c, n->args[0]), at2(c, j, shape_rows(n->shape), i));
  case OP_SLICE: case OP_PAD: return block_element(c, n, i, j);
  default: return axis_element(c, n, n->slot == 1 ? i : j);
  }
}

/* A kernel whose elements are computed alone (TRANSPOSE, SLICE, PAD), by
 * rows of its result. */
static void emit_by_rows(Cg *c, const Node *n, int out) {
  int64_t rows = shape_rows(n->shape), cols = shape_cols(n->shape);
  LLVMValueRef lo, hi;
  share(c, rows, &lo, &hi);
  For fi, fj;
  LLVMValueRef i = for_begin(c, &fi, lo, hi);
  LLVMValueRef j = for_begin(c, &fj, iconst(c, 0), iconst(c, cols));
  store_at(c, out, at2(c, i, cols, j), kernel_element(c, n, i, j));
  for_end(c, &fj, iconst(c, cols));
  for_end(c, &fi, hi);
}

static void emit_kernel(Cg *c, const Node *n) {
  int out = slot_of(c, n);
  switch (n->op) {
  case OP_MATMUL: emit_matmul(c, n, out); break;
  case OP_TRANSPOSE: case OP_SLICE: case OP_PAD: emit_by_rows(c, n, out); break;
  default: emit_axis(c, n, out); break;
  }
}

static LLVMValueRef is_finite(Cg *c, LLVMValueRef v) {
  return fcmp(c, LLVMRealOLT, intrinsic1(c, "llvm.fabs", v), fconst(c, INFINITY));
}

/* ---- optimizers, with torch.optim's update rules. Hyper-parameters are
 * Python floats in PyTorch, computed in double and rounded to the tensor's
 * type when used: the same here. */

typedef struct Step {
  LLVMValueRef t;                                /* 0-based step */
  LLVMValueRef step_size, bc2_sqrt;              /* adam, per step */
} Step;

/* The new value of one param (element); with commit, the optimizer state
 * is stored too. */
static LLVMValueRef update_value(Cg *c, const Step *st, LLVMValueRef p, LLVMValueRef g,
                                 LLVMValueRef *state_ptr, bool commit) {
  const Optimizer *o = c->opt;
  switch (o->kind) {
  case OPT_SGD: {
    LLVMValueRef d = g;
    if (o->momentum != 0) {                     /* buf = momentum * buf + g (buf starts at 0) */
      LLVMValueRef buf = LLVMBuildLoad2(c->b, c->ft, state_ptr[0], "");
      d = arith(c, LLVMFAdd, arith(c, LLVMFMul, buf, fconst(c, o->momentum)), g);
      if (commit)
        LLVMBuildStore(c->b, d, state_ptr[0]);
    }
    return arith(c, LLVMFAdd, p, arith(c, LLVMFMul, fconst(c, -o->lr), d));
  }
  case OPT_ADAM: {
    LLVMValueRef m = LLVMBuildLoad2(c->b, c->ft, state_ptr[0], "");
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->ft, state_ptr[1], "");
    m = arith(c, LLVMFAdd, arith(c, LLVMFMul, m, fconst(c, o->beta1)),
              arith(c, LLVMFMul, fconst(c, 1 - o->beta1), g));
    v = arith(c, LLVMFAdd, arith(c, LLVMFMul, v, fconst(c, o->beta2)),
              arith(c, LLVMFMul, arith(c, LLVMFMul, fconst(c, 1 - o->beta2), g), g));
    if (commit) {
      LLVMBuildStore(c->b, m, state_ptr[0]);
      LLVMBuildStore(c->b, v, state_ptr[1]);
    }
    LLVMValueRef denom = arith(c, LLVMFAdd, arith(c, LLVMFDiv, intrinsic1(c, "llvm.sqrt", v), st->bc2_sqrt),
                               fconst(c, o->eps));
    LLVMValueRef neg_step = LLVMBuildFNeg(c->b, st->step_size, "");
    return arith(c, LLVMFAdd, p, arith(c, LLVMFDiv, arith(c, LLVMFMul, neg_step, m), denom));
  }
  case OPT_RMSPROP: {
    LLVMValueRef sq = LLVMBuildLoad2(c->b, c->ft, state_ptr[0], "");
    sq = arith(c, LLVMFAdd, arith(c, LLVMFMul, sq, fconst(c, o->alpha)),
               arith(c, LLVMFMul, arith(c, LLVMFMul, fconst(c, 1 - o->alpha), g), g));
    if (commit)
      LLVMBuildStore(c->b, sq, state_ptr[0]);
    LLVMValueRef avg = arith(c, LLVMFAdd, intrinsic1(c, "llvm.sqrt", sq), fconst(c, o->eps));
    return arith(c, LLVMFAdd, p, arith(c, LLVMFDiv, arith(c, LLVMFMul, fconst(c, -o->lr), g), avg));
  }
  }
  return p;
}

/* Adam's bias corrections for this step, in double as PyTorch computes
 * them, then rounded to the working type. */
static void adam_step_terms(Cg *c, Step *st) {
  LLVMValueRef k = LLVMBuildSIToFP(c->b, LLVMBuildAdd(c->b, st->t, iconst(c, 1), ""), c->dt, "");
  LLVMValueRef one = LLVMConstReal(c->dt, 1);
  LLVMValueRef pw1[2] = {LLVMConstReal(c->dt, c->opt->beta1), k};
  LLVMValueRef pw2[2] = {LLVMConstReal(c->dt, c->opt->beta2), k};
  LLVMValueRef bc1 = LLVMBuildFSub(c->b, one, intrinsic(c, "llvm.pow", pw1, 2), "");
  LLVMValueRef bc2 = LLVMBuildFSub(c->b, one, intrinsic(c, "llvm.pow", pw2, 2), "");
  LLVMValueRef step_size = LLVMBuildFDiv(c->b, LLVMConstReal(c->dt, c->opt->lr), bc1, "");
  LLVMValueRef bc2_sqrt = intrinsic1(c, "llvm.sqrt", bc2);
  st->step_size = c->ft == c->dt ? step_size : LLVMBuildFPTrunc(c->b, step_size, c->ft, "");
  st->bc2_sqrt = c->ft == c->dt ? bc2_sqrt : LLVMBuildFPTrunc(c->b, bc2_sqrt, c->ft, "");
}

/* Every param's update. It runs twice: first without commit, computing the
 * new values only and returning whether all are finite; then, if they are,
 * with commit, storing them and the optimizer state. So an update that
 * would overflow a param leaves every param as it was. */
static LLVMValueRef emit_update(Cg *c, const Step *st, bool commit) {
  const Program *p = c->p;
  const Schedule *s = c->s;
  LLVMValueRef ok = LLVMConstInt(LLVMInt1TypeInContext(c->ctx), 1, 0);
  for (int i = 0; i < p->nparams; i++) {
    int64_t n = shape_numel(p->params[i].node->shape);
    if (p->params[i].node->shape.rank == 0) {
      LLVMValueRef state[2];
      for (int k = 0; k < 2; k++)
        state[k] = s->state_buf[2 * i + k] >= 0 ? c->bufs[s->state_buf[2 * i + k]] : NULL;
      LLVMValueRef pv = value_of(c, p->params[i].node);
      LLVMValueRef nv = update_value(c, st, pv, value_of(c, s->grads[i]), state, commit);
      if (commit)
        LLVMBuildStore(c->b, nv, c->bufs[s->param_buf[i]]);
      else
        ok = LLVMBuildAnd(c->b, ok, is_finite(c, nv), "");
      continue;
    }
    /* A vector param: a loop over this thread's share of its elements and
     * of its stored gradient; the check publishes a finite flag per block. */
    Blocks k;
    blocks_begin(c, &k, n);
    LLVMValueRef j = c->idx;
    LLVMValueRef bad = commit ? NULL : LLVMBuildPhi(c->b, c->ft, "nonfinite");
    LLVMValueRef pp = buf_elem_ptr(c, s->param_buf[i], j);
    LLVMValueRef gv = LLVMBuildLoad2(c->b, c->ft, buf_elem_ptr(c, s->grad_buf[i], j), "");
    LLVMValueRef state[2];
    for (int m = 0; m < 2; m++)
      state[m] = s->state_buf[2 * i + m] >= 0 ? buf_elem_ptr(c, s->state_buf[2 * i + m], j) : NULL;
    LLVMValueRef nv = update_value(c, st, LLVMBuildLoad2(c->b, c->ft, pp, ""), gv, state, commit);
    LLVMValueRef bad_next = NULL;
    if (commit)
      LLVMBuildStore(c->b, nv, pp);
    else
      bad_next = add_nonfinite(c, bad, nv);
    LLVMBasicBlockRef end_block = blocks_end_elements(c, &k);
    if (bad) {
      add_incoming(bad, fconst(c, 0), k.outer, bad_next, end_block);
      publish(c, &k, c->update_region[i], 0, bad_next);
    }
    LLVMPositionBuilderAtEnd(c->b, k.done);
    if (bad) {
      LLVMValueRef total;
      combine(c, &k, c->update_region[i], 1, &total);
      ok = LLVMBuildAnd(c->b, ok, fcmp(c, LLVMRealOEQ, total, LLVMConstReal(c->dt, 0)), "");
    }
  }
  return ok;
}

/* Thread 0 reads dlrt_interrupt once per step and publishes what it read;
 * every thread looks at the published value at the end of the step, after
 * the step's barriers, so all stop after the same step. */
static void publish_interrupt(Cg *c, LLVMValueRef stop_at) {
  LLVMTypeRef i32 = LLVMInt32TypeInContext(c->ctx);
  LLVMValueRef flag = LLVMGetNamedGlobal(c->mod, "dlrt_interrupt");
  if (!flag)
    flag = LLVMAddGlobal(c->mod, i32, "dlrt_interrupt");
  LLVMBasicBlockRef read = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "interrupt.read");
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "interrupt.done");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, c->thread, iconst(c, 0), ""), read, go);
  LLVMPositionBuilderAtEnd(c->b, read);
  LLVMValueRef v = LLVMBuildLoad2(c->b, i32, flag, "");
  LLVMSetVolatile(v, 1);
  LLVMBuildStore(c->b, LLVMBuildUIToFP(c->b, v, c->dt, ""), stop_at);
  LLVMBuildBr(c->b, go);
  LLVMPositionBuilderAtEnd(c->b, go);
}

/* With --save-every K, every K steps but the last, a checkpoint: the team
 * finishes the step's updates, then thread 0 calls saver->save(saver,
 * done). The other threads go on to the next step, whose first barrier
 * waits for it. (Without it, no code at all.) */
static void emit_save(Cg *c, LLVMValueRef done, LLVMValueRef steps, LLVMValueRef saver) {
  int64_t every = c->p->opts.save_path ? c->p->opts.save_every : 0;
  if (every <= 0)
    return;
  LLVMBasicBlockRef save = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "save");
  LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "save.call");
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "save.done");
  LLVMValueRef due = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildSRem(c->b, done, iconst(c, every), ""),
                                   iconst(c, 0), "");
  LLVMValueRef not_last = LLVMBuildICmp(c->b, LLVMIntSLT, done, steps, "");
  LLVMBuildCondBr(c->b, LLVMBuildAnd(c->b, due, not_last, ""), save, go);
  LLVMPositionBuilderAtEnd(c->b, save);
  team_barrier(c);
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, c->thread, iconst(c, 0), ""), call, go);
  LLVMPositionBuilderAtEnd(c->b, call);
  LLVMTypeRef args[2] = {c->ptr, c->i64};
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(c->ctx), args, 2, 0);
  LLVMValueRef fn = LLVMBuildLoad2(c->b, c->ptr, saver, "");   /* TrainSaver.save */
  LLVMBuildCall2(c->b, fty, fn, (LLVMValueRef[]){saver, done}, 2, "");
  LLVMBuildBr(c->b, go);
  LLVMPositionBuilderAtEnd(c->b, go);
}

/* The step body: preludes and loops by stage, then the loss and gradients. */
static void emit_step(Cg *c) {
  const Schedule *s = c->s;
  nodemap_free(&c->scalar);
  for (int i = 0; i < c->p->nparams; i++)
    if (c->p->params[i].node->shape.rank == 0)
      nodemap_put(&c->scalar, c->p->params[i].node, emit_node(c, c->p->params[i].node));
  for (int st = 0; st <= s->nstages; st++) {
    for (int k = 0; k < s->prelude[st].n; k++)
      nodemap_put(&c->scalar, s->prelude[st].items[k], emit_node(c, s->prelude[st].items[k]));
    for (int l = 0; l < s->nloops; l++)
      if (s->loops[l].stage == st)
        emit_loop(c, l);
    bool kernels = false;
    for (int k = 0; k < s->nkernels; k++)
      if (s->kernels[k].stage == st) {
        emit_kernel(c, s->kernels[k].node);
        kernels = true;
      }
    if (kernels)
      team_barrier(c);
  }
}

/* Where each loop and each vector param's update check publishes its
 * per-block results in the scratch array, and thread 0 the interrupt
 * request. */
static void scratch_layout(Cg *c) {
  const Schedule *s = c->s;
  c->stop_slot = c->scratch_size++;
  c->loop_region = calloc((size_t)s->nloops + 1, sizeof(int64_t));
  c->update_region = calloc((size_t)c->p->nparams + 1, sizeof(int64_t));
  for (int l = 0; l < s->nloops; l++) {
    c->loop_region[l] = c->scratch_size;
    int rows = s->loops[l].reductions.n + (s->loops[l].stores.n > 0);
    c->scratch_size += rows * block_count(shape_numel(s->loops[l].shape));
  }
  for (int i = 0; i < c->p->nparams; i++) {
    c->update_region[i] = c->scratch_size;
    if (c->p->params[i].node->shape.rank > 0)
      c->scratch_size += block_count(shape_numel(c->p->params[i].node->shape));
  }
}

static void set_types(Cg *c) {
  c->dt = LLVMDoubleTypeInContext(c->ctx);
  c->ft = c->p->opts.f64 ? c->dt : LLVMFloatTypeInContext(c->ctx);
  c->i64 = LLVMInt64TypeInContext(c->ctx);
  c->ptr = LLVMPointerTypeInContext(c->ctx, 0);
}

LLVMModuleRefDl codegen_train(const Program *p, const Schedule *s, const Optimizer *opt,
                              LLVMContextRefDl ctx, const char *fn_name, int vector_bits,
                              int64_t *scratch_doubles) {
  Cg c = {.p = p, .s = s, .opt = opt, .ctx = ctx, .vector_bits = vector_bits};
  scratch_layout(&c);
  *scratch_doubles = 2 * c.scratch_size;
  c.mod = LLVMModuleCreateWithNameInContext("dl_train", ctx);
  c.b = LLVMCreateBuilderInContext(ctx);
  set_types(&c);

  LLVMTypeRef params[9] = {c.ptr, c.i64, c.ptr, c.i64, c.i64, c.ptr, c.ptr, c.i64, c.ptr};
  c.fn = LLVMAddFunction(c.mod, fn_name, LLVMFunctionType(c.i64, params, 9, 0));
  LLVMValueRef bufs_arg = LLVMGetParam(c.fn, 0), steps = LLVMGetParam(c.fn, 1);
  LLVMValueRef log_ctx = LLVMGetParam(c.fn, 2);
  c.thread = LLVMGetParam(c.fn, 3);
  c.nthreads = LLVMGetParam(c.fn, 4);
  LLVMValueRef scratch = LLVMGetParam(c.fn, 5);
  c.team = LLVMGetParam(c.fn, 6);
  LLVMValueRef first_step = LLVMGetParam(c.fn, 7), saver = LLVMGetParam(c.fn, 8);

  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, c.fn, "entry");
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(ctx, c.fn, "step");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(ctx, c.fn, "step.body");
  LLVMBasicBlockRef finished = LLVMAppendBasicBlockInContext(ctx, c.fn, "finished");
  LLVMBasicBlockRef failed = LLVMAppendBasicBlockInContext(ctx, c.fn, "nonfinite");

  LLVMPositionBuilderAtEnd(c.b, entry);
  c.bufs = calloc((size_t)s->nbufs + 1, sizeof(LLVMValueRef));
  c.loop_bad = calloc((size_t)s->nloops + 1, sizeof(LLVMValueRef));
  for (int k = 0; k < s->nbufs; k++) {
    LLVMValueRef slot = LLVMBuildGEP2(c.b, c.ptr, bufs_arg, (LLVMValueRef[]){iconst(&c, k)}, 1, "");
    c.bufs[k] = LLVMBuildLoad2(c.b, c.ptr, slot, "buf");
  }
  LLVMBuildBr(c.b, head);

  LLVMPositionBuilderAtEnd(c.b, head);
  Step st = {.t = LLVMBuildPhi(c.b, c.i64, "t")};
  LLVMBuildCondBr(c.b, LLVMBuildICmp(c.b, LLVMIntSLT, st.t, steps, ""), body, finished);

  LLVMPositionBuilderAtEnd(c.b, body);
  /* Steps alternate between the two halves of the scratch array: a thread
   * may publish step t + 1's sums while another still reads step t's, but
   * cannot reach step t + 2 before every thread has passed a barrier of
   * step t + 1, after its reads. */
  LLVMValueRef half = LLVMBuildMul(c.b, LLVMBuildAnd(c.b, st.t, iconst(&c, 1), ""),
                                   iconst(&c, c.scratch_size), "");
  c.scratch = LLVMBuildGEP2(c.b, c.dt, scratch, &half, 1, "scratch");
  LLVMValueRef stop_at = LLVMBuildGEP2(c.b, c.dt, c.scratch, (LLVMValueRef[]){iconst(&c, c.stop_slot)}, 1, "");
  publish_interrupt(&c, stop_at);
  if (s->batched) {                              /* thread 0 gathers the step's minibatch */
    LLVMBasicBlockRef gather = LLVMAppendBasicBlockInContext(ctx, c.fn, "batch");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(ctx, c.fn, "batch.done");
    LLVMBuildCondBr(c.b, LLVMBuildICmp(c.b, LLVMIntEQ, c.thread, iconst(&c, 0), ""), gather, go);
    LLVMPositionBuilderAtEnd(c.b, gather);
    call_runtime(&c, "dlrt_batch", (LLVMTypeRef[]){c.ptr, c.i64}, (LLVMValueRef[]){log_ctx, st.t}, 2);
    LLVMBuildBr(c.b, go);
    LLVMPositionBuilderAtEnd(c.b, go);
    team_barrier(&c);
  }
  emit_step(&c);
  LLVMValueRef loss = value_of(&c, s->loss);

  /* Thread 0 reports the step's loss: the log line when due, and the
   * watch for a diverging loss (dlrt_step). */
  LLVMBasicBlockRef report = LLVMAppendBasicBlockInContext(ctx, c.fn, "report");
  LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(ctx, c.fn, "check");
  LLVMValueRef t1 = LLVMBuildAdd(c.b, st.t, iconst(&c, 1), "");
  LLVMBuildCondBr(c.b, LLVMBuildICmp(c.b, LLVMIntEQ, c.thread, iconst(&c, 0), ""), report, check);
  LLVMPositionBuilderAtEnd(c.b, report);
  LLVMValueRef wide_loss = c.ft == c.dt ? loss : LLVMBuildFPExt(c.b, loss, c.dt, "");
  call_runtime(&c, "dlrt_step", (LLVMTypeRef[]){c.ptr, c.i64, c.dt},
               (LLVMValueRef[]){log_ctx, st.t, wide_loss}, 3);
  LLVMBuildBr(c.b, check);

  /* The loss and every gradient must be finite before the update. */
  LLVMPositionBuilderAtEnd(c.b, check);
  LLVMValueRef ok = is_finite(&c, loss);
  for (int i = 0; i < p->nparams; i++)
    if (p->params[i].node->shape.rank == 0)
      ok = LLVMBuildAnd(c.b, ok, is_finite(&c, value_of(&c, s->grads[i])), "");
  for (int l = 0; l < s->nloops; l++)
    if (c.loop_bad[l])
      ok = LLVMBuildAnd(c.b, ok, fcmp(&c, LLVMRealOEQ, c.loop_bad[l], LLVMConstReal(c.dt, 0)), "");
  LLVMBasicBlockRef update = LLVMAppendBasicBlockInContext(ctx, c.fn, "update.params");
  LLVMBuildCondBr(c.b, ok, update, failed);

  LLVMPositionBuilderAtEnd(c.b, update);
  if (opt->kind == OPT_ADAM)
    adam_step_terms(&c, &st);
  LLVMBasicBlockRef commit = LLVMAppendBasicBlockInContext(ctx, c.fn, "update.commit");
  LLVMBasicBlockRef overflow = LLVMAppendBasicBlockInContext(ctx, c.fn, "update.overflow");
  LLVMBuildCondBr(c.b, emit_update(&c, &st, false), commit, overflow);
  LLVMPositionBuilderAtEnd(c.b, commit);
  emit_update(&c, &st, true);
  /* A thread updates only its share of a vector param: where the next
   * step reads other elements of one, the team meets first. */
  if (s->params_shared)
    team_barrier(&c);
  emit_save(&c, t1, steps, saver);
  /* Interrupted: stop after this step, having done t + 1 of them. */
  LLVMBasicBlockRef interrupted = LLVMAppendBasicBlockInContext(ctx, c.fn, "interrupted");
  LLVMValueRef stop = LLVMBuildLoad2(c.b, c.dt, stop_at, "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c.b);
  LLVMBuildCondBr(c.b, fcmp(&c, LLVMRealONE, stop, LLVMConstReal(c.dt, 0)), interrupted, head);
  LLVMAddIncoming(st.t, (LLVMValueRef[]){first_step, t1}, (LLVMBasicBlockRef[]){entry, latch}, 2);

  LLVMPositionBuilderAtEnd(c.b, finished);
  LLVMBuildRet(c.b, steps);
  LLVMPositionBuilderAtEnd(c.b, failed);
  LLVMBuildRet(c.b, st.t);
  LLVMPositionBuilderAtEnd(c.b, overflow);
  LLVMBuildRet(c.b, LLVMBuildSub(c.b, iconst(&c, -1), st.t, ""));
  LLVMPositionBuilderAtEnd(c.b, interrupted);
  LLVMBuildRet(c.b, LLVMBuildAdd(c.b, LLVMBuildAdd(c.b, steps, iconst(&c, 1), ""), t1, ""));

  if (c.nvector_fns) {
    LLVMTypeRef list = LLVMArrayType(c.ptr, (unsigned)c.nvector_fns);
    LLVMValueRef used = LLVMAddGlobal(c.mod, list, "llvm.compiler.used");
    LLVMSetInitializer(used, LLVMConstArray(c.ptr, c.vector_fns, (unsigned)c.nvector_fns));
    LLVMSetLinkage(used, LLVMAppendingLinkage);
    LLVMSetSection(used, "llvm.metadata");
  }
  free(c.vector_fns);
  free(c.bufs);
  free(c.loop_bad);
  free(c.loop_region);
  free(c.update_region);
  nodemap_free(&c.scalar);
  nodemap_free(&c.elem);
  LLVMDisposeBuilder(c.b);
  return c.mod;
}

/* ---- the seam gpu.c generates through: this file's node values and
 * optimizer rules, emitted into a function another code generator builds,
 * over buffers it chose. No libmvec variants are named (vector_bits 0):
 * libm calls stay plain calls of `sinf`, `exp`..., for that generator to
 * resolve. */

struct NodeEmitter {
  Cg c;
  Step st;
  const Loop *loop;                              /* the loop being emitted */
};

NodeEmitter *emitter_new(const Program *p, const Schedule *s, const Optimizer *opt,
                         LLVMModuleRefDl mod, LLVMBuilderRefDl b, LLVMValueRefDl *bufs) {
  NodeEmitter *e = calloc(1, sizeof *e);
  e->c = (Cg){.p = p, .s = s, .opt = opt, .ctx = LLVMGetModuleContext(mod), .mod = mod, .b = b,
              .bufs = bufs};
  set_types(&e->c);
  return e;
}

void emitter_free(NodeEmitter *e) {
  nodemap_free(&e->c.scalar);
  nodemap_free(&e->c.elem);
  free(e);
}

LLVMValueRefDl emitter_node(NodeEmitter *e, const Node *n, LLVMValueRefDl idx) {
  e->c.idx = idx;
  LLVMValueRef v = n->shape.rank ? loop_value(&e->c, e->loop, n) : emit_node(&e->c, n);
  nodemap_put(n->shape.rank ? &e->c.elem : &e->c.scalar, n, v);
  return v;
}

LLVMValueRefDl emitter_kernel_element(NodeEmitter *e, const Node *n, LLVMValueRefDl row, LLVMValueRefDl col) {
  e->c.fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(e->c.b));   /* where its loops go */
  return kernel_element(&e->c, n, row, col);
}

LLVMValueRefDl emitter_value(NodeEmitter *e, const Node *n) { return value_of(&e->c, n); }

void emitter_define(NodeEmitter *e, const Node *n, LLVMValueRefDl v) { nodemap_put(&e->c.scalar, n, v); }

void emitter_begin_step(NodeEmitter *e, LLVMValueRefDl t) {
  nodemap_free(&e->c.scalar);
  e->st = (Step){.t = t};
}

void emitter_begin_loop(NodeEmitter *e, const Loop *l) {
  nodemap_free(&e->c.elem);
  e->c.loop_shape = l->shape;
  e->loop = l;
}

void emitter_begin_update(NodeEmitter *e) {
  if (e->c.opt->kind == OPT_ADAM)
    adam_step_terms(&e->c, &e->st);
}

LLVMValueRefDl emitter_update(NodeEmitter *e, LLVMValueRefDl param, LLVMValueRefDl grad,
                              LLVMValueRefDl *state, bool commit) {
  return update_value(&e->c, &e->st, param, grad, state, commit);
}

LLVMValueRefDl emitter_is_finite(NodeEmitter *e, LLVMValueRefDl v) { return is_finite(&e->c, v); }

