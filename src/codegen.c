/* codegen.c — training steps as LLVM IR: the node rules, the one step
 * skeleton every target shares, and the CPU target.
 *
 * The node rules give a node of the schedule its value from its
 * arguments' values (emit_node; a kernel's element, kernel_element), and a
 * param its optimizer's update (update_value). The skeleton,
 * codegen_steps, runs steps [first, last) of a train with them: per step,
 * by stage, the prelude's scalars, the fused loops and the kernels; the
 * report of the loss; the finite checks; the update of every param; and
 * the interrupts and checkpoints of a target that has them. Its result is
 * `last`; or t, the step whose loss or gradient was NaN or infinite; or
 * -1 - t, when step t's update would have made a param NaN or infinite
 * (either way step t's update is not applied: the params keep their last
 * finite values); or last + 1 + k when dlrt_interrupt stopped it after k
 * steps (dlrt.h's encoding; train.c's train_result decodes it).
 *
 * Many threads run it together. Each computes every scalar of the step
 * itself and takes a share of every vector: the same elements of a vector
 * param, of its gradient and of its optimizer state in every loop and
 * every step, so only sums cross threads. The target totals them so that
 * every thread holds the same bits, and every thread takes the same
 * branch at the finite checks. How a thread loops over its share, how the
 * sums are totalled, how the threads meet, where the loss goes, which
 * functions libm calls go to, and its own kernels, minibatches, interrupts
 * and checkpoints are the target's: the hooks of a StepTarget (dlc.h), as
 * QBE's targets are. gpu.c is one target, the CPU below the other.
 *
 * The CPU's train function, codegen_train,
 *
 *   int64_t dl_train(void **bufs, int64_t steps, DlrtLog *log, int64_t thread,
 *                    int64_t nthreads, double *scratch, DlrtTeam *team,
 *                    int64_t first_step, TrainSaver *saver)
 *
 * is run by a team of nthreads, each with its own `thread` number and its
 * own copy of the scalar params and their state (in bufs). Its share of a
 * loop is blocks of elements (see Blocks); it publishes the sums of its
 * blocks in `scratch`, meets the others at a barrier, and adds all blocks'
 * sums in block order: they are the scalars one thread computes alone, bit
 * for bit. Thread 0 logs (dlrt_step), gathers minibatches, saves
 * checkpoints and reads dlrt_interrupt. Its kernels are loops over its
 * share of a result's rows (or columns), large products OpenBLAS's.
 *
 * Loops are counted loops over blocks of elements whose reductions are
 * phis; the reduction's fadd carries reassoc so that LLVM's vectorizer may
 * split it into vector lanes (see shared/notes/llvm19.md). exp in float32
 * is inline arithmetic; other elementary functions are libm calls that
 * name their libmvec vector variants, so that vectorized loops call those.
 * Every node is emitted from values already emitted: preludes and loop
 * bodies are in topological order, so there is no recursion over the
 * expression.
 */
#include "dlc.h"

#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A libm function the step calls, by its libm name (sinf). */
typedef struct MathFn {
  char name[32];
  LLVMValueRef fn;                               /* as the target named it (StepTarget.math) */
} MathFn;

typedef struct Cg {
  const Program *p;
  const Schedule *s;
  const Optimizer *opt;
  StepTarget *t;                                 /* what the target does its own way */
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef ft, dt, i64, ptr;
  LLVMValueRef fn;
  LLVMValueRef *bufs;                            /* base pointer of each buffer (t->bufs) */
  NodeMap scalar;                                /* scalar node -> value, per step */
  NodeMap elem;                                  /* vector node -> element value, per loop */
  LLVMValueRef idx;                              /* current loop index */
  Shape loop_shape;                              /* ... over a tensor of this shape */
  LLVMValueRef *loop_bad;                        /* per loop: NaN when a stored vector is not finite */
  LLVMValueRef scratch;                          /* this step's half of the scratch array */
  int64_t *loop_region, *update_region;          /* where in it each loop and param update publishes */
  int64_t scratch_size;                          /* doubles in one half */
  int64_t stop_slot;                             /* where the leader publishes dlrt_interrupt */
  MathFn *math;                                  /* libm functions declared */
  int nmath;
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
    if (widths[w].bits > c->t->vector_bits)
      continue;
    int lanes = widths[w].bits / lane_bits;
    char vname[64];
    snprintf(vname, sizeof vname, "_ZGV%cN%d%s_%s", widths[w].isa, lanes, params, scalar);
    LLVMTypeRef vt = LLVMVectorType(c->ft, (unsigned)lanes);
    LLVMTypeRef vargs[2] = {vt, vt};
    LLVMValueRef vf = LLVMGetNamedFunction(c->mod, vname);
    if (!vf) {
      vf = LLVMAddFunction(c->mod, vname, LLVMFunctionType(vt, vargs, (unsigned)nargs, 0));
      c->vector_fns = xrealloc(c->vector_fns, sizeof(LLVMValueRef) * (size_t)(c->nvector_fns + 1));
      c->vector_fns[c->nvector_fns++] = vf;
    }
    buf_printf(attr, "%s_ZGV_LLVM_N%d%s_%s(%s)", attr->len ? "," : "", lanes, params, scalar, vname);
  }
}

/* The libm function `name` (expf, pow), declared on first use as touching
 * no memory, so that LLVM may hoist its calls. The target may rename it or
 * give it a body (StepTarget.math); it is found again here by libm's
 * name. */
static LLVMValueRef libm_fn(Cg *c, const char *name, LLVMTypeRef fty) {
  for (int k = 0; k < c->nmath; k++)
    if (strcmp(c->math[k].name, name) == 0)
      return c->math[k].fn;
  LLVMValueRef f = LLVMAddFunction(c->mod, name, fty);
  const char *attrs[] = {"nounwind", "willreturn", "nosync", "memory"};  /* memory(none) */
  for (int i = 0; i < 4; i++)
    add_fn_attr(c, f, attrs[i]);
  c->math = xrealloc(c->math, sizeof(MathFn) * (size_t)(c->nmath + 1));
  MathFn *m = &c->math[c->nmath++];
  snprintf(m->name, sizeof m->name, "%s", name);
  m->fn = f;
  if (c->t->math)
    c->t->math(c->t, f);
  return f;
}

/* A call of a libm function of one or two arguments of one type: `name`
 * (exp) in double, its float variant (expf) in float. A node's call (lanes)
 * names the libmvec variants the target has, for the loop vectorizer to
 * replace it by. Adam's bias corrections (pow) name none: they are
 * computed once a step, and stay libm's to the bit. */
static LLVMValueRef libm(Cg *c, const char *name, LLVMValueRef *args, int nargs, bool lanes) {
  LLVMTypeRef type = LLVMTypeOf(args[0]);
  char scalar[32];
  snprintf(scalar, sizeof scalar, "%s%s", name, type == c->dt ? "" : "f");
  LLVMTypeRef params[2] = {type, type};
  LLVMTypeRef fty = LLVMFunctionType(type, params, (unsigned)nargs, 0);
  LLVMValueRef call = LLVMBuildCall2(c->b, fty, libm_fn(c, scalar, fty), args, (unsigned)nargs, "");
  Buf attr = {0};
  if (lanes)
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

static LLVMValueRef libm1(Cg *c, const char *name, LLVMValueRef x) { return libm(c, name, &x, 1, true); }

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
  return libm(c, "pow", args, 2, true);
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

static void add_incoming(LLVMValueRef phi, LLVMValueRef a, LLVMBasicBlockRef from_a,
                         LLVMValueRef b, LLVMBasicBlockRef from_b) {
  LLVMAddIncoming(phi, (LLVMValueRef[]){a, b}, (LLVMBasicBlockRef[]){from_a, from_b}, 2);
}

static LLVMBasicBlockRef block(Cg *c, const char *name) {
  return LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
}

/* Branches to a new block that runs only when cond holds; returns the
 * block where both ways meet, for end_if. */
static LLVMBasicBlockRef begin_if(Cg *c, LLVMValueRef cond, const char *name) {
  char done[64];
  snprintf(done, sizeof done, "%s.done", name);
  LLVMBasicBlockRef then = block(c, name), join = block(c, done);
  LLVMBuildCondBr(c->b, cond, then, join);
  LLVMPositionBuilderAtEnd(c->b, then);
  return join;
}

static void end_if(Cg *c, LLVMBasicBlockRef join) {
  LLVMBuildBr(c->b, join);
  LLVMPositionBuilderAtEnd(c->b, join);
}

/* A hint for the loop vectorizer, on the branch that closes a loop. */
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

/* ---- kernels' elements: the whole-tensor operations of the schedule
 * (products, transposes, axis reductions, slices, pads), an element
 * computed alone from its arguments' buffers, each sum in order, so that
 * its value does not depend on how the elements are shared out. */

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

static LLVMValueRef at2(Cg *c, LLVMValueRef i, int64_t cols, LLVMValueRef j) {
  return LLVMBuildAdd(c->b, LLVMBuildMul(c->b, i, iconst(c, cols), ""), j, "");
}

static LLVMValueRef load_at(Cg *c, int slot, LLVMValueRef idx) {
  return LLVMBuildLoad2(c->b, c->ft, buf_elem_ptr(c, slot, idx), "");
}

static void store_at(Cg *c, int slot, LLVMValueRef idx, LLVMValueRef v) {
  LLVMBuildStore(c->b, v, buf_elem_ptr(c, slot, idx));
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
  LLVMValueRef bc1 = LLVMBuildFSub(c->b, one, libm(c, "pow", pw1, 2, false), "");
  LLVMValueRef bc2 = LLVMBuildFSub(c->b, one, libm(c, "pow", pw2, 2, false), "");
  LLVMValueRef step_size = LLVMBuildFDiv(c->b, LLVMConstReal(c->dt, c->opt->lr), bc1, "");
  LLVMValueRef bc2_sqrt = intrinsic1(c, "llvm.sqrt", bc2);
  st->step_size = c->ft == c->dt ? step_size : LLVMBuildFPTrunc(c->b, step_size, c->ft, "");
  st->bc2_sqrt = c->ft == c->dt ? bc2_sqrt : LLVMBuildFPTrunc(c->b, bc2_sqrt, c->ft, "");
}

/* ---- the step skeleton, every target's (codegen_steps) */

/* A place in this step's half of the scratch array. */
static LLVMValueRef scratch_at(Cg *c, int64_t offset) {
  LLVMValueRef at = iconst(c, offset);
  return LLVMBuildGEP2(c->b, c->dt, c->scratch, &at, 1, "");
}

/* A reduction's running sum after v. Where the target's vectorizer splits
 * sums into lanes they are reassociated (and may contract, as arithmetic
 * does); the GPU adds in element order: it has no vectorizer to gain from
 * it. */
static LLVMValueRef sum_add(Cg *c, LLVMValueRef acc, LLVMValueRef v) {
  LLVMValueRef sum = LLVMBuildFAdd(c->b, acc, v, "");
  return c->t->reassociate ? with_flags(sum, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract) : sum;
}

/* Element c->idx of m, in a loop over c->loop_shape: loaded when the
 * loop loads it, else computed from its arguments' elements. */
static LLVMValueRef loop_value(Cg *c, const Loop *l, const Node *m) {
  return loop_loads(c->s, l, m) ? load_held(c, m, slot_of(c, m)) : emit_node(c, m);
}

/* One fused loop over this thread's share of the elements: every vector
 * node its reductions and stores need, per element. Its sums, the
 * reductions and the finite check of the stored gradients
 * (add_nonfinite), are totalled over all threads by the target. */
static void emit_loop(Cg *c, int loop_index) {
  const Loop *l = &c->s->loops[loop_index];
  int nred = l->reductions.n, nst = l->stores.n, nsums = loop_sums(l);
  int64_t n = shape_numel(l->shape);
  LLVMValueRef at = scratch_at(c, c->loop_region[loop_index]);
  Elements *k = c->t->elements_begin(c->t, n, nsums);
  c->idx = k->i;

  Node *roots[nred + nst + 1];
  int nroots;
  NodeList order = loop_order(c->s, l, roots, &nroots);
  nodemap_free(&c->elem);
  c->loop_shape = l->shape;
  for (int i = 0; i < order.n; i++)
    nodemap_put(&c->elem, order.items[i], loop_value(c, l, order.items[i]));
  nodelist_free(&order);

  LLVMValueRef next[nsums + 1], total[nsums + 1];
  for (int r = 0; r < nred; r++)
    next[r] = sum_add(c, k->sums[r], value_of(c, roots[r]));
  if (nst)
    next[nred] = k->sums[nred];
  for (int s = 0; s < nst; s++) {
    LLVMValueRef v = value_of(c, l->stores.items[s]);
    LLVMBuildStore(c->b, v, buf_elem_ptr(c, l->store_slots[s], c->idx));
    if (c->s->bufs[l->store_slots[s]].kind == BUF_GRAD)   /* (a kernel's input shows in the loss) */
      next[nred] = add_nonfinite(c, next[nred], v);
  }
  c->t->elements_end(c->t, k, next, at, total);
  for (int r = 0; r < nred; r++) {
    const Node *red = l->reductions.items[r];
    LLVMValueRef v = total[r];
    if (red->op == OP_MEAN)
      v = LLVMBuildFDiv(c->b, v, LLVMConstReal(c->dt, (double)n), "");
    nodemap_put(&c->scalar, red, c->ft == c->dt ? v : LLVMBuildFPTrunc(c->b, v, c->ft, ""));
  }
  c->loop_bad[loop_index] = nst ? total[nred] : NULL;
}

/* A kernel for a target without code of its own for it: an element loop
 * over its result. */
static void kernel_by_element(Cg *c, const Node *n) {
  LLVMValueRef cols = iconst(c, shape_cols(n->shape));
  Elements *k = c->t->elements_begin(c->t, shape_numel(n->shape), 0);
  LLVMValueRef i = k->i;
  LLVMValueRef v = kernel_element(c, n, LLVMBuildUDiv(c->b, i, cols, ""), LLVMBuildURem(c->b, i, cols, ""));
  store_at(c, slot_of(c, n), i, v);
  c->t->elements_end(c->t, k, NULL, NULL, NULL);
}

/* The kernels of stage st, then a barrier: the stages after read their
 * results. (The loops' stores they read are visible to them after the
 * totals that end each loop.) */
static void emit_kernels(Cg *c, int st) {
  bool any = false;
  for (int k = 0; k < c->s->nkernels; k++)
    if (c->s->kernels[k].stage == st) {
      if (c->t->kernel)
        c->t->kernel(c->t, c->s->kernels[k].node);
      else
        kernel_by_element(c, c->s->kernels[k].node);
      any = true;
    }
  if (any)
    c->t->barrier(c->t);
}

/* The step's values: its scalar params (each thread's own), then by stage
 * the prelude's scalars, the loops and the kernels. */
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
    emit_kernels(c, st);
  }
}

/* Every param's update. It runs twice: first without commit, computing the
 * new values only and returning whether all are finite (the same answer in
 * every thread); then, if they are, with commit, storing them and the
 * optimizer state. So an update that would overflow a param leaves every
 * param as it was. A thread updates its share of a vector param. */
static LLVMValueRef emit_update(Cg *c, const Step *st, bool commit) {
  const Program *p = c->p;
  const Schedule *s = c->s;
  LLVMValueRef ok = LLVMConstInt(LLVMInt1TypeInContext(c->ctx), 1, 0);
  for (int i = 0; i < p->nparams; i++) {
    LLVMValueRef state[2];
    if (p->params[i].node->shape.rank == 0) {
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
    /* A vector param: its elements, its stored gradient's and its state's;
     * the check totals a finite flag. */
    LLVMValueRef at = commit ? NULL : scratch_at(c, c->update_region[i]);
    Elements *k = c->t->elements_begin(c->t, shape_numel(p->params[i].node->shape), commit ? 0 : 1);
    LLVMValueRef j = k->i;
    LLVMValueRef pp = buf_elem_ptr(c, s->param_buf[i], j);
    LLVMValueRef gv = LLVMBuildLoad2(c->b, c->ft, buf_elem_ptr(c, s->grad_buf[i], j), "");
    for (int m = 0; m < 2; m++)
      state[m] = s->state_buf[2 * i + m] >= 0 ? buf_elem_ptr(c, s->state_buf[2 * i + m], j) : NULL;
    LLVMValueRef nv = update_value(c, st, LLVMBuildLoad2(c->b, c->ft, pp, ""), gv, state, commit);
    LLVMValueRef bad = NULL, total;
    if (commit)
      LLVMBuildStore(c->b, nv, pp);
    else
      bad = add_nonfinite(c, k->sums[0], nv);
    c->t->elements_end(c->t, k, &bad, at, &total);
    if (!commit)
      ok = LLVMBuildAnd(c->b, ok, fcmp(c, LLVMRealOEQ, total, LLVMConstReal(c->dt, 0)), "");
  }
  return ok;
}

/* With --save-every K, every K steps but the last, a checkpoint, where the
 * target saves: the threads finish the step's updates, then the leader
 * saves. The others go on to the next step, whose first barrier waits for
 * it. (Without it, no code at all.) */
static void emit_save(Cg *c, LLVMValueRef done) {
  int64_t every = c->p->opts.save_path ? c->p->opts.save_every : 0;
  if (every <= 0 || !c->t->save)
    return;
  LLVMValueRef due = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildSRem(c->b, done, iconst(c, every), ""),
                                   iconst(c, 0), "");
  LLVMValueRef not_last = LLVMBuildICmp(c->b, LLVMIntSLT, done, c->t->last, "");
  LLVMBasicBlockRef join = begin_if(c, LLVMBuildAnd(c->b, due, not_last, ""), "save");
  c->t->barrier(c->t);
  LLVMBasicBlockRef saved = begin_if(c, c->t->leader, "save.call");
  c->t->save(c->t, done);
  end_if(c, saved);
  end_if(c, join);
}

/* Where each loop's and each vector param's update check's partial sums
 * go in a half of the scratch array: a row of t->partials(n) doubles per
 * sum; and the leader's interrupt request, where the target has one. */
static void scratch_layout(Cg *c) {
  const Schedule *s = c->s;
  StepTarget *t = c->t;
  c->stop_slot = t->interrupt ? c->scratch_size++ : -1;
  c->loop_region = xcalloc((size_t)s->nloops + 1, sizeof(int64_t));
  c->update_region = xcalloc((size_t)c->p->nparams + 1, sizeof(int64_t));
  for (int l = 0; l < s->nloops; l++) {
    c->loop_region[l] = c->scratch_size;
    c->scratch_size += loop_sums(&s->loops[l]) * t->partials(t, shape_numel(s->loops[l].shape));
  }
  for (int i = 0; i < c->p->nparams; i++) {
    c->update_region[i] = c->scratch_size;
    if (c->p->params[i].node->shape.rank > 0)
      c->scratch_size += t->partials(t, shape_numel(c->p->params[i].node->shape));
  }
}

/* The skeleton's state, for the function t's builder is in. */
static void cg_open(Cg *c, const Program *p, const Schedule *s, const Optimizer *opt, StepTarget *t) {
  *c = (Cg){.p = p, .s = s, .opt = opt, .t = t, .b = t->b, .bufs = t->bufs};
  c->fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(t->b));
  c->mod = LLVMGetGlobalParent(c->fn);
  c->ctx = LLVMGetModuleContext(c->mod);
  c->dt = LLVMDoubleTypeInContext(c->ctx);
  c->ft = p->opts.f64 ? c->dt : LLVMFloatTypeInContext(c->ctx);
  c->i64 = LLVMInt64TypeInContext(c->ctx);
  c->ptr = LLVMPointerTypeInContext(c->ctx, 0);
  c->loop_bad = xcalloc((size_t)s->nloops + 1, sizeof(LLVMValueRef));
  scratch_layout(c);
}

/* The libmvec variants named are kept until the vectorizer has run; and
 * c's memory freed. */
static void cg_close(Cg *c) {
  if (c->nvector_fns) {
    LLVMTypeRef list = LLVMArrayType(c->ptr, (unsigned)c->nvector_fns);
    LLVMValueRef used = LLVMAddGlobal(c->mod, list, "llvm.compiler.used");
    LLVMSetInitializer(used, LLVMConstArray(c->ptr, c->vector_fns, (unsigned)c->nvector_fns));
    LLVMSetLinkage(used, LLVMAppendingLinkage);
    LLVMSetSection(used, "llvm.metadata");
  }
  free(c->vector_fns);
  free(c->math);
  free(c->loop_bad);
  free(c->loop_region);
  free(c->update_region);
  nodemap_free(&c->scalar);
  nodemap_free(&c->elem);
}

/* The step loop: steps [first, last), each ending in the finite checks
 * and the update; the result, as codegen_steps says, in the block `out`
 * where the builder is left. */
static LLVMValueRef emit_steps(Cg *c) {
  const Schedule *s = c->s;
  StepTarget *t = c->t;
  LLVMBasicBlockRef entry = LLVMGetInsertBlock(c->b);
  LLVMBasicBlockRef head = block(c, "step"), body = block(c, "step.body"), finished = block(c, "finished"),
                    failed = block(c, "nonfinite"), overflow = block(c, "update.overflow"),
                    out = block(c, "out");
  LLVMBuildBr(c->b, head);

  LLVMPositionBuilderAtEnd(c->b, head);
  Step st = {.t = LLVMBuildPhi(c->b, c->i64, "t")};
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, st.t, t->last, ""), body, finished);

  LLVMPositionBuilderAtEnd(c->b, body);
  /* Steps alternate between the two halves of the scratch array: a thread
   * may publish step t + 1's sums while another still reads step t's, but
   * cannot reach step t + 2 before every thread has passed a barrier of
   * step t + 1, after its reads. */
  LLVMValueRef half = LLVMBuildMul(c->b, LLVMBuildAnd(c->b, st.t, iconst(c, 1), ""),
                                   iconst(c, c->scratch_size), "");
  c->scratch = LLVMBuildGEP2(c->b, c->dt, t->scratch, &half, 1, "scratch");
  /* The leader reads the interrupt request once per step and publishes
   * it; every thread looks at it at the end of the step, after the step's
   * barriers, so all stop after the same step. */
  LLVMValueRef stop_at = NULL;
  if (t->interrupt) {
    stop_at = scratch_at(c, c->stop_slot);
    LLVMBasicBlockRef join = begin_if(c, t->leader, "interrupt.read");
    LLVMBuildStore(c->b, t->interrupt(t), stop_at);
    end_if(c, join);
  }
  if (s->batched && t->gather) {                 /* the leader gathers the step's minibatch */
    LLVMBasicBlockRef join = begin_if(c, t->leader, "batch");
    t->gather(t, st.t);
    end_if(c, join);
    t->barrier(t);
  }
  emit_step(c);
  LLVMValueRef loss = value_of(c, s->loss);
  LLVMBasicBlockRef join = begin_if(c, t->leader, "report");
  t->report(t, st.t, c->ft == c->dt ? loss : LLVMBuildFPExt(c->b, loss, c->dt, ""));
  end_if(c, join);

  /* The loss and every gradient must be finite before the update. */
  LLVMValueRef ok = is_finite(c, loss);
  for (int i = 0; i < c->p->nparams; i++)
    if (c->p->params[i].node->shape.rank == 0)
      ok = LLVMBuildAnd(c->b, ok, is_finite(c, value_of(c, s->grads[i])), "");
  for (int l = 0; l < s->nloops; l++)
    if (c->loop_bad[l])
      ok = LLVMBuildAnd(c->b, ok, fcmp(c, LLVMRealOEQ, c->loop_bad[l], LLVMConstReal(c->dt, 0)), "");
  LLVMBasicBlockRef update = block(c, "update.params"), commit = block(c, "update.commit");
  LLVMBuildCondBr(c->b, ok, update, failed);

  LLVMPositionBuilderAtEnd(c->b, update);
  if (c->opt->kind == OPT_ADAM)
    adam_step_terms(c, &st);
  LLVMBuildCondBr(c->b, emit_update(c, &st, false), commit, overflow);
  LLVMPositionBuilderAtEnd(c->b, commit);
  emit_update(c, &st, true);
  /* A thread updates only its share of a vector param: where the next
   * step reads other elements of one, the threads meet first. */
  if (s->params_shared)
    t->barrier(t);
  LLVMValueRef t1 = LLVMBuildAdd(c->b, st.t, iconst(c, 1), "");
  emit_save(c, t1);
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b), interrupted = NULL;
  if (stop_at) {                                 /* interrupted: stop, t + 1 steps done */
    interrupted = block(c, "interrupted");
    LLVMValueRef stop = LLVMBuildLoad2(c->b, c->dt, stop_at, "");
    LLVMBuildCondBr(c->b, fcmp(c, LLVMRealONE, stop, LLVMConstReal(c->dt, 0)), interrupted, head);
  } else {
    LLVMBuildBr(c->b, head);
  }
  add_incoming(st.t, t->first, entry, t1, latch);

  LLVMPositionBuilderAtEnd(c->b, overflow);
  LLVMValueRef overflowed = LLVMBuildSub(c->b, iconst(c, -1), st.t, "");
  LLVMBuildBr(c->b, out);
  LLVMValueRef stopped = NULL;
  if (interrupted) {
    LLVMPositionBuilderAtEnd(c->b, interrupted);
    stopped = LLVMBuildAdd(c->b, LLVMBuildAdd(c->b, t->last, iconst(c, 1), ""), t1, "");
    LLVMBuildBr(c->b, out);
  }
  LLVMPositionBuilderAtEnd(c->b, finished);
  LLVMBuildBr(c->b, out);
  LLVMPositionBuilderAtEnd(c->b, failed);
  LLVMBuildBr(c->b, out);
  LLVMPositionBuilderAtEnd(c->b, out);
  LLVMValueRef result = LLVMBuildPhi(c->b, c->i64, "result");
  LLVMAddIncoming(result, (LLVMValueRef[]){t->last, st.t, overflowed, stopped},
                  (LLVMBasicBlockRef[]){finished, failed, overflow, interrupted}, interrupted ? 4 : 3);
  return result;
}

LLVMValueRefDl codegen_steps(const Program *p, const Schedule *s, const Optimizer *opt,
                             StepTarget *t, int64_t *half_doubles) {
  Cg c;
  cg_open(&c, p, s, opt, t);
  LLVMValueRef result = emit_steps(&c);
  *half_doubles = c.scratch_size;
  cg_close(&c);
  return result;
}

/* ---- the CPU: a team of threads (codegen_train) */

typedef struct Cpu {
  StepTarget t;                                  /* first: the hooks get it back */
  Cg *c;                                         /* the skeleton emitting the step */
  LLVMValueRef thread, nthreads, team;           /* who runs this copy (see the header) */
  LLVMValueRef log, saver;                       /* where the loss goes; TrainSaver */
} Cpu;

/* Reductions sum a block of this many elements at a time in the working
 * type (in vector lanes); the blocks' sums are then added in double, in
 * block order: the rounding error of a sum over a million floats stays
 * that of a few thousand, as with PyTorch's cascaded sums, and the result
 * does not depend on how many threads computed the blocks. */
enum { SUM_BLOCK = 4096 };

static int64_t block_count(int64_t n) { return (n + SUM_BLOCK - 1) / SUM_BLOCK; }

/* A block's sum is published for the team: a row of scratch per sum. */
static int64_t cpu_partials(StepTarget *t, int64_t n) {
  (void)t;
  return block_count(n);
}

/* A loop over this thread's share of a vector's elements, as a loop over
 * blocks around a loop over a block's elements. The share is blocks
 * [nblocks * k / T, nblocks * (k + 1) / T) for thread k of T: it depends
 * on the length only, so a thread touches the same elements of every
 * vector of one length, in every loop and every step, and only reductions
 * cross threads. */
typedef struct Blocks {
  Elements e;                                    /* first: the skeleton's view */
  int64_t nblocks;
  int nsums;
  LLVMBasicBlockRef outer, inner, block_done, done;
  LLVMValueRef blk, first;                       /* the block, and its first element */
  LLVMValueRef stop;                             /* one past its last element */
  LLVMValueRef sums[];                           /* e.sums: phis of the element loop */
} Blocks;

/* Leaves the builder in the element loop, after the phis of the element
 * and of the sums. */
static Elements *blocks_begin(StepTarget *t, int64_t n, int nsums) {
  Cpu *u = (Cpu *)t;
  Cg *c = u->c;
  Blocks *k = xcalloc(1, sizeof *k + sizeof(LLVMValueRef) * (size_t)nsums);
  k->nblocks = block_count(n);
  k->nsums = nsums;
  k->outer = block(c, "block");
  k->inner = block(c, "loop");
  k->block_done = block(c, "block.done");
  k->done = block(c, "loop.done");
  if (k->nblocks == 1) {
    /* One block is thread 0's, and a loop of constant trip count that
     * LLVM vectorizes without remainder loops. */
    LLVMBuildCondBr(c->b, t->leader, k->outer, k->done);
    LLVMPositionBuilderAtEnd(c->b, k->outer);
    k->blk = k->first = iconst(c, 0);
    k->stop = iconst(c, n);
    LLVMBuildBr(c->b, k->inner);
    LLVMPositionBuilderAtEnd(c->b, k->block_done);
    LLVMBuildBr(c->b, k->done);
  } else {
    LLVMValueRef nb = iconst(c, k->nblocks);
    LLVMValueRef lo = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nb, u->thread, ""), u->nthreads, "");
    LLVMValueRef next_thread = LLVMBuildAdd(c->b, u->thread, iconst(c, 1), "");
    LLVMValueRef hi = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nb, next_thread, ""), u->nthreads, "");
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
  k->e.i = LLVMBuildPhi(c->b, c->i64, "i");
  k->e.sums = k->sums;
  for (int r = 0; r < nsums; r++)
    k->sums[r] = LLVMBuildPhi(c->b, c->ft, "sum");
  return &k->e;
}

/* Asks the vectorizer for masked vector iterations instead of a scalar
 * remainder loop: for a vector of one block, a loop of constant trip
 * count, that is less machine code to compile (about 1.5 ms of the seed's
 * 20) and as fast. Over many blocks the masks would cost every iteration. */
static void fold_tail(Cg *c, LLVMValueRef latch) { loop_hint(c, latch, "llvm.loop.vectorize.predicate.enable", true); }

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
static void team_barrier(StepTarget *t) {
  Cpu *u = (Cpu *)t;
  Cg *c = u->c;
  LLVMBasicBlockRef join = begin_if(c, LLVMBuildICmp(c->b, LLVMIntSGT, u->nthreads, iconst(c, 1), ""), "barrier");
  call_runtime(c, "dlrt_team_barrier", &c->ptr, &u->team, 1);
  end_if(c, join);
}

/* A block's result (a sum, or a finite flag), published for the team:
 * row `row` of the rows at `at` in the scratch array, one double per
 * block. */
static void publish(Cg *c, Blocks *k, LLVMValueRef at, int row, LLVMValueRef v) {
  LLVMValueRef wide = LLVMTypeOf(v) == c->dt ? v : LLVMBuildFPExt(c->b, v, c->dt, "");
  LLVMValueRef idx = LLVMBuildAdd(c->b, iconst(c, row * k->nblocks), k->blk, "");
  LLVMBuildStore(c->b, wide, LLVMBuildGEP2(c->b, c->dt, at, &idx, 1, ""));
}

/* After the barrier: each row at `at` summed over all blocks, in block
 * order, in double. Every thread computes the same totals from the same
 * numbers. */
static void combine(Cpu *u, Blocks *k, LLVMValueRef at, LLVMValueRef *total) {
  Cg *c = u->c;
  int nrows = k->nsums;
  team_barrier(&u->t);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b), body = block(c, "combine"), done = block(c, "combine.done");
  LLVMBuildBr(c->b, body);
  LLVMPositionBuilderAtEnd(c->b, body);
  LLVMValueRef j = LLVMBuildPhi(c->b, c->i64, "j");
  LLVMValueRef acc[nrows + 1];
  for (int r = 0; r < nrows; r++)
    acc[r] = LLVMBuildPhi(c->b, c->dt, "total");
  for (int r = 0; r < nrows; r++) {
    LLVMValueRef idx = LLVMBuildAdd(c->b, iconst(c, r * k->nblocks), j, "");
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->dt, LLVMBuildGEP2(c->b, c->dt, at, &idx, 1, ""), "");
    total[r] = LLVMBuildFAdd(c->b, acc[r], v, "");
  }
  LLVMValueRef jn = LLVMBuildAdd(c->b, j, iconst(c, 1), "");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, jn, iconst(c, k->nblocks), ""), body, done);
  add_incoming(j, iconst(c, 0), pre, jn, body);
  for (int r = 0; r < nrows; r++)
    add_incoming(acc[r], LLVMConstReal(c->dt, 0), pre, total[r], body);
  LLVMPositionBuilderAtEnd(c->b, done);
}

/* Closes the element loop. With `at`, each block's sums are published
 * there when the block is done, and totalled once the team has them
 * all. */
static void blocks_end(StepTarget *t, Elements *e, LLVMValueRef *next, LLVMValueRef at, LLVMValueRef *total) {
  Cpu *u = (Cpu *)t;
  Cg *c = u->c;
  Blocks *k = (Blocks *)e;
  LLVMValueRef idx_next = LLVMBuildAdd(c->b, e->i, iconst(c, 1), "");
  LLVMBasicBlockRef end = LLVMGetInsertBlock(c->b);
  LLVMValueRef br = LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, idx_next, k->stop, ""),
                                    k->inner, k->block_done);
  if (k->nblocks == 1)
    fold_tail(c, br);
  add_incoming(e->i, k->first, k->outer, idx_next, end);
  for (int r = 0; r < k->nsums; r++)
    add_incoming(k->sums[r], fconst(c, 0), k->outer, next[r], end);
  if (at) {
    LLVMPositionBuilderBefore(c->b, LLVMGetFirstInstruction(k->block_done));
    for (int r = 0; r < k->nsums; r++)
      publish(c, k, at, r, next[r]);
  }
  LLVMPositionBuilderAtEnd(c->b, k->done);
  if (at)
    combine(u, k, at, total);
  free(k);
}

/* ---- the CPU's kernels. Each thread computes its share of the result's
 * rows (or columns), in an order that does not depend on the share, then
 * the team meets. */

/* This thread's share [lo, hi) of n rows: n * k / T to n * (k + 1) / T. */
static void share(Cpu *u, int64_t n, LLVMValueRef *lo, LLVMValueRef *hi) {
  Cg *c = u->c;
  LLVMValueRef nn = iconst(c, n);
  *lo = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nn, u->thread, ""), u->nthreads, "");
  *hi = LLVMBuildSDiv(c->b, LLVMBuildMul(c->b, nn, LLVMBuildAdd(c->b, u->thread, iconst(c, 1), ""), ""),
                      u->nthreads, "");
}

bool codegen_uses_blas(const Node *n) {
  int64_t rows = shape_rows(n->shape), cols = shape_cols(n->shape), inner = shape_cols(n->args[0]->shape);
  return n->op == OP_MATMUL && cols > 1 && rows * cols * inner >= DLRT_BLAS_MIN_MACS && dlrt_blas();
}

/* C = A @ B: by OpenBLAS; else row by row: C[i, :] = sum over k of
 * A[i, k] B[k, :], each sum in order of k, the inner loop over a row of B
 * (vectorized); for a column B, a dot product per row. */
static void emit_matmul(Cpu *u, const Node *n, int out) {
  Cg *c = u->c;
  const Node *a = n->args[0], *b = n->args[1];
  int sa = slot_of(c, a), sb = slot_of(c, b);
  int64_t rows = shape_rows(n->shape), cols = shape_cols(n->shape), inner = shape_cols(a->shape);
  if (codegen_uses_blas(n)) {
    /* OpenBLAS, on thread 0 for the whole product: its sums are then in
     * one order whatever the number of threads. */
    LLVMBasicBlockRef join = begin_if(c, u->t.leader, "gemm");
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
    end_if(c, join);
    return;
  }
  LLVMValueRef lo, hi, zero = iconst(c, 0);
  share(u, rows, &lo, &hi);
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

/* A reduction of one axis of a matrix. Down the columns (axis 0, but for
 * argmax), the output row accumulates in memory, for this thread's share
 * of the columns, the inner loop along the rows of the matrix
 * (vectorized); else a register per result element. */
static void emit_axis(Cpu *u, const Node *n, int out) {
  Cg *c = u->c;
  const Node *a = n->args[0];
  int sa = slot_of(c, a);
  int64_t rows = shape_rows(a->shape), cols = shape_cols(a->shape);
  Op op = n->op;
  LLVMValueRef lo, hi;
  bool along_rows = n->slot == 1;
  share(u, along_rows ? rows : cols, &lo, &hi);
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

/* A kernel whose elements are computed alone (TRANSPOSE, SLICE, PAD), by
 * rows of its result. */
static void emit_by_rows(Cpu *u, const Node *n, int out) {
  Cg *c = u->c;
  int64_t rows = shape_rows(n->shape), cols = shape_cols(n->shape);
  LLVMValueRef lo, hi;
  share(u, rows, &lo, &hi);
  For fi, fj;
  LLVMValueRef i = for_begin(c, &fi, lo, hi);
  LLVMValueRef j = for_begin(c, &fj, iconst(c, 0), iconst(c, cols));
  store_at(c, out, at2(c, i, cols, j), kernel_element(c, n, i, j));
  for_end(c, &fj, iconst(c, cols));
  for_end(c, &fi, hi);
}

static void cpu_kernel(StepTarget *t, const Node *n) {
  Cpu *u = (Cpu *)t;
  int out = slot_of(u->c, n);
  switch (n->op) {
  case OP_MATMUL: emit_matmul(u, n, out); break;
  case OP_TRANSPOSE: case OP_SLICE: case OP_PAD: emit_by_rows(u, n, out); break;
  default: emit_axis(u, n, out); break;
  }
}

/* ---- what thread 0 does for the team */

/* The step's loss, to the log line when due and to the watch for a
 * diverging loss (dlrt_step). */
static void cpu_report(StepTarget *t, LLVMValueRef step, LLVMValueRef loss) {
  Cpu *u = (Cpu *)t;
  Cg *c = u->c;
  call_runtime(c, "dlrt_step", (LLVMTypeRef[]){c->ptr, c->i64, c->dt}, (LLVMValueRef[]){u->log, step, loss}, 3);
}

static void cpu_gather(StepTarget *t, LLVMValueRef step) {
  Cpu *u = (Cpu *)t;
  Cg *c = u->c;
  call_runtime(c, "dlrt_batch", (LLVMTypeRef[]){c->ptr, c->i64}, (LLVMValueRef[]){u->log, step}, 2);
}

/* dlrt_interrupt, which the runtime's signal handler sets. */
static LLVMValueRef cpu_interrupt(StepTarget *t) {
  Cg *c = ((Cpu *)t)->c;
  LLVMTypeRef i32 = LLVMInt32TypeInContext(c->ctx);
  LLVMValueRef flag = LLVMGetNamedGlobal(c->mod, "dlrt_interrupt");
  if (!flag)
    flag = LLVMAddGlobal(c->mod, i32, "dlrt_interrupt");
  LLVMValueRef v = LLVMBuildLoad2(c->b, i32, flag, "");
  LLVMSetVolatile(v, 1);
  return LLVMBuildUIToFP(c->b, v, c->dt, "");
}

/* saver->save(saver, done): the code for it is there only with
 * --save-every (the skeleton's emit_save). */
static void cpu_save(StepTarget *t, LLVMValueRef done) {
  Cpu *u = (Cpu *)t;
  Cg *c = u->c;
  LLVMTypeRef args[2] = {c->ptr, c->i64};
  LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(c->ctx), args, 2, 0);
  LLVMValueRef fn = LLVMBuildLoad2(c->b, c->ptr, u->saver, "");   /* TrainSaver.save */
  LLVMBuildCall2(c->b, fty, fn, (LLVMValueRef[]){u->saver, done}, 2, "");
}

static const StepTarget cpu_target = {
    .reassociate = true,
    .partials = cpu_partials,
    .elements_begin = blocks_begin,
    .elements_end = blocks_end,
    .barrier = team_barrier,
    .report = cpu_report,
    .kernel = cpu_kernel,
    .gather = cpu_gather,
    .interrupt = cpu_interrupt,
    .save = cpu_save,
};

LLVMModuleRefDl codegen_train(const Program *p, const Schedule *s, const Optimizer *opt,
                              LLVMContextRefDl ctx, const char *fn_name, int vector_bits,
                              int64_t *scratch_doubles) {
  /* Named as its function: in one JIT, names of modules must differ too
   * (ThreadSanitizer's pass adds an initializer named after the module). */
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(fn_name, ctx);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx), ptr = LLVMPointerTypeInContext(ctx, 0);
  LLVMTypeRef params[9] = {ptr, i64, ptr, i64, i64, ptr, ptr, i64, ptr};
  LLVMValueRef fn = LLVMAddFunction(mod, fn_name, LLVMFunctionType(i64, params, 9, 0));
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMValueRef *bufs = xcalloc((size_t)s->nbufs + 1, sizeof(LLVMValueRef));
  for (int k = 0; k < s->nbufs; k++) {
    LLVMValueRef at = LLVMConstInt(i64, (unsigned long long)k, 1);
    bufs[k] = LLVMBuildLoad2(b, ptr, LLVMBuildGEP2(b, ptr, LLVMGetParam(fn, 0), &at, 1, ""), "buf");
  }
  Cg c;
  Cpu u = {.t = cpu_target, .c = &c, .thread = LLVMGetParam(fn, 3), .nthreads = LLVMGetParam(fn, 4),
           .team = LLVMGetParam(fn, 6), .log = LLVMGetParam(fn, 2), .saver = LLVMGetParam(fn, 8)};
  u.t.b = b;
  u.t.bufs = bufs;
  u.t.scratch = LLVMGetParam(fn, 5);
  u.t.first = LLVMGetParam(fn, 7);
  u.t.last = LLVMGetParam(fn, 1);
  u.t.leader = LLVMBuildICmp(b, LLVMIntEQ, u.thread, LLVMConstInt(i64, 0, 1), "thread0");
  u.t.vector_bits = vector_bits;
  cg_open(&c, p, s, opt, &u.t);
  LLVMBuildRet(b, emit_steps(&c));
  *scratch_doubles = 2 * c.scratch_size;
  cg_close(&c);
  free(bufs);
  LLVMDisposeBuilder(b);
  return mod;
}
