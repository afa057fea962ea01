/* gpumath.c — the GPU's own libm, for kernels built where there is no
 * CUDA libdevice (gpu.c): a body in LLVM IR for each libm function that
 * codegen.c's rules call (exp, log, sin, cos, tan, tanh, atan, log1p,
 * expm1 and pow, in double and in float), given as the step declares it,
 * so that `--target gpu` never needs libdevice. There is no libm on
 * NVPTX to fall back on: the bodies are arithmetic, integer work on the
 * bits, and intrinsics NVPTX makes instructions of (fabs, fma, floor,
 * trunc, rint, sqrt, copysign, minnum, maxnum, ctlz, fshl; i128 products
 * become mul.hi.u64).
 *
 * The double functions are FreeBSD's msun (Sun's fdlibm), within 1 ulp
 * of the exact result by their error analyses: exp, log1p (log is its
 * kernel without the correction term), expm1, atan and pow as there,
 * with selects where fdlibm branches, both ways being cheap. tanh is
 * fdlibm's 1 - 2 / (e^2|x| + 1) from 0.625 on and Cephes' rational
 * below, where fdlibm's -t / (t + 2) loses 3 ulps. sin, cos and tan
 * are fdlibm's kernels on the argument reduced by pi/2 to a
 * double-double: below 2^30 by Cody and Waite's method with pi/2 in
 * three parts (an fma makes n times the first exact); above, and only
 * there (a branch), by Payne and Hanek's, the argument's 53 bits times a
 * window of 192 bits of 2/pi from a table, so that sin(1e300) is as
 * exact as sin(1).
 *
 * Float log is Cephes', in float; every other float function is its
 * double one, rounded (as FreeBSD's float kernels compute in double):
 * within 1 ulp, at double's speed. (Cephes' float sin and cos lost 33
 * ulps near multiples of pi.)
 *
 * tests/unit/check_gpu.c measures each, run by the emulated kernel,
 * against glibc over its whole range, huge and subnormal arguments,
 * infinities and NaN included: within 1 ulp of glibc's, tanh within 2
 * (glibc's own error, the -t / (t + 2) above).
 */
#include "dlc.h"

#include <llvm-c/Core.h>
#include <math.h>
#include <string.h>

typedef struct Math {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, f64, i1, i32, i64, i128;
  LLVMValueRef fn;                               /* the function being given a body */
  unsigned table_space;                          /* the address space of the table of 2/pi */
} Math;

/* ---- building blocks */

static LLVMValueRef dc(Math *m, double v) { return LLVMConstReal(m->f64, v); }
static LLVMValueRef ic(Math *m, int64_t v) { return LLVMConstInt(m->i64, (unsigned long long)v, 1); }

/* A constant of x's type (float or double). */
static LLVMValueRef like(LLVMValueRef x, double v) { return LLVMConstReal(LLVMTypeOf(x), v); }

static LLVMValueRef add(Math *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(m->b, a, b, ""); }
static LLVMValueRef sub(Math *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(m->b, a, b, ""); }
static LLVMValueRef mul(Math *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(m->b, a, b, ""); }
static LLVMValueRef dvd(Math *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(m->b, a, b, ""); }
static LLVMValueRef neg(Math *m, LLVMValueRef a) { return LLVMBuildFNeg(m->b, a, ""); }

static LLVMValueRef sel(Math *m, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(m->b, c, a, b, "");
}

static LLVMValueRef fcmp(Math *m, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(m->b, p, a, b, "");
}

static LLVMValueRef lt(Math *m, LLVMValueRef a, double b) { return fcmp(m, LLVMRealOLT, a, like(a, b)); }
static LLVMValueRef gt(Math *m, LLVMValueRef a, double b) { return fcmp(m, LLVMRealOGT, a, like(a, b)); }
static LLVMValueRef ge(Math *m, LLVMValueRef a, double b) { return fcmp(m, LLVMRealOGE, a, like(a, b)); }
static LLVMValueRef eq(Math *m, LLVMValueRef a, double b) { return fcmp(m, LLVMRealOEQ, a, like(a, b)); }
static LLVMValueRef is_nan(Math *m, LLVMValueRef a) { return fcmp(m, LLVMRealUNO, a, a); }

static LLVMValueRef icmp(Math *m, LLVMIntPredicate p, LLVMValueRef a, int64_t b) {
  return LLVMBuildICmp(m->b, p, a, LLVMConstInt(LLVMTypeOf(a), (unsigned long long)b, 1), "");
}

static LLVMValueRef iadd(Math *m, LLVMValueRef a, int64_t b) {
  return LLVMBuildAdd(m->b, a, LLVMConstInt(LLVMTypeOf(a), (unsigned long long)b, 1), "");
}

static LLVMValueRef iand(Math *m, LLVMValueRef a, int64_t b) {
  return LLVMBuildAnd(m->b, a, LLVMConstInt(LLVMTypeOf(a), (unsigned long long)b, 1), "");
}

static LLVMValueRef shl(Math *m, LLVMValueRef a, int b) {
  return LLVMBuildShl(m->b, a, LLVMConstInt(LLVMTypeOf(a), (unsigned long long)b, 0), "");
}

static LLVMValueRef lshr(Math *m, LLVMValueRef a, int b) {
  return LLVMBuildLShr(m->b, a, LLVMConstInt(LLVMTypeOf(a), (unsigned long long)b, 0), "");
}

/* A call of an intrinsic overloaded on its first argument's type. */
static LLVMValueRef intrinsic(Math *m, const char *name, LLVMValueRef *args, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef t = LLVMTypeOf(args[0]);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(m->mod, id, &t, 1);
  return LLVMBuildCall2(m->b, LLVMIntrinsicGetType(m->ctx, id, &t, 1), f, args, (unsigned)n, "");
}

static LLVMValueRef call1(Math *m, const char *name, LLVMValueRef x) { return intrinsic(m, name, &x, 1); }
static LLVMValueRef fabs_(Math *m, LLVMValueRef x) { return call1(m, "llvm.fabs", x); }

static LLVMValueRef call2(Math *m, const char *name, LLVMValueRef a, LLVMValueRef b) {
  return intrinsic(m, name, (LLVMValueRef[]){a, b}, 2);
}

/* a b + c, rounded once. */
static LLVMValueRef fma_(Math *m, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  return intrinsic(m, "llvm.fma", (LLVMValueRef[]){a, b, c}, 3);
}

/* v with the sign of s. */
static LLVMValueRef with_sign(Math *m, LLVMValueRef v, LLVMValueRef s) {
  return call2(m, "llvm.copysign", v, s);
}

/* c[0] x^(n-1) + ... + c[n-1], by Horner's rule, in x's type. */
static LLVMValueRef poly(Math *m, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef r = like(x, c[0]);
  for (int k = 1; k < n; k++)
    r = add(m, mul(m, r, x), like(x, c[k]));
  return r;
}

static LLVMValueRef bits(Math *m, LLVMValueRef x) { return LLVMBuildBitCast(m->b, x, m->i64, ""); }
static LLVMValueRef from_bits(Math *m, LLVMValueRef i) { return LLVMBuildBitCast(m->b, i, m->f64, ""); }

/* x with the low 32 bits of its significand cleared (fdlibm's
 * SET_LOW_WORD(x, 0)): a head whose products with short numbers are
 * exact. */
static LLVMValueRef head(Math *m, LLVMValueRef x) {
  return from_bits(m, iand(m, bits(m, x), (int64_t)0xffffffff00000000ull));
}

/* 2^k for an i64 k in [-1022, 1023]. */
static LLVMValueRef pow2(Math *m, LLVMValueRef k) { return from_bits(m, shl(m, iadd(m, k, 1023), 52)); }

/* y 2^k for k in [-2044, 2046], y near 1: by 2^(k/2) exactly, then by the
 * rest, so that a subnormal or infinite result is rounded once. */
static LLVMValueRef scale(Math *m, LLVMValueRef y, LLVMValueRef k) {
  LLVMValueRef half = LLVMBuildAShr(m->b, k, ic(m, 1), "");
  return mul(m, mul(m, y, pow2(m, half)), pow2(m, LLVMBuildSub(m->b, k, half, "")));
}

/* v in [lo, hi], a NaN made lo. */
static LLVMValueRef clamp(Math *m, LLVMValueRef v, double lo, double hi) {
  return call2(m, "llvm.minnum", call2(m, "llvm.maxnum", v, dc(m, lo)), dc(m, hi));
}

/* A whole double as an i64, clamped to [-limit, limit] first: fptosi of
 * what is beyond, or NaN, would be poison. */
static LLVMValueRef to_int(Math *m, LLVMValueRef v, double limit) {
  return LLVMBuildFPToSI(m->b, clamp(m, v, -limit, limit), m->i64, "");
}

static LLVMBasicBlockRef block(Math *m, const char *name) {
  return LLVMAppendBasicBlockInContext(m->ctx, m->fn, name);
}

static LLVMValueRef phi2(Math *m, LLVMValueRef a, LLVMBasicBlockRef from_a, LLVMValueRef b,
                         LLVMBasicBlockRef from_b) {
  LLVMValueRef p = LLVMBuildPhi(m->b, LLVMTypeOf(a), "");
  LLVMAddIncoming(p, (LLVMValueRef[]){a, b}, (LLVMBasicBlockRef[]){from_a, from_b}, 2);
  return p;
}

/* ---- exp and log: fdlibm's e_exp.c, s_log1p.c */

static const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10,
                    inv_ln2 = 1.44269504088896338700e+00;

/* e^(hi - lo) for |hi - lo| <= ln2 / 2, lo the tail: 1 + r + r^2 / (2 - c)
 * arranged as fdlibm does, c from a minimax polynomial (pow uses it too). */
static LLVMValueRef exp_kernel(Math *m, LLVMValueRef hi, LLVMValueRef lo) {
  static const double p[] = {4.13813679705723846039e-08, -1.65339022054652515390e-06,
                             6.61375632143793436117e-05, -2.77777777770155933842e-03,
                             1.66666666666666019037e-01};
  LLVMValueRef r = sub(m, hi, lo), t = mul(m, r, r);
  LLVMValueRef c = sub(m, r, mul(m, t, poly(m, t, p, 5)));
  LLVMValueRef q = dvd(m, mul(m, r, c), sub(m, dc(m, 2), c));
  return sub(m, dc(m, 1), sub(m, sub(m, lo, q), hi));
}

/* e^x = 2^k e^r, x = k ln2 + r, ln2 in two parts (k ln2_hi exact). x is
 * clamped first to where e^x is 0 or inf in double. */
static LLVMValueRef own_exp(Math *m, LLVMValueRef x) {
  LLVMValueRef xc = clamp(m, x, -746, 710);
  LLVMValueRef k = call1(m, "llvm.rint", mul(m, xc, dc(m, inv_ln2)));
  LLVMValueRef hi = sub(m, xc, mul(m, k, dc(m, ln2_hi))), lo = mul(m, k, dc(m, ln2_lo));
  LLVMValueRef y = scale(m, exp_kernel(m, hi, lo), to_int(m, k, 1100));
  return sel(m, is_nan(m, x), x, y);
}

/* log(2^k (1 + f)) + c/u, with sqrt(1/2) <= 1 + f < sqrt(2): 2s + s R(s^2)
 * for s = f / (2 + f), arranged as fdlibm's log1p does (c its correction
 * term, 0 for log). */
static LLVMValueRef log_kernel(Math *m, LLVMValueRef k, LLVMValueRef f, LLVMValueRef c) {
  static const double lp[] = {1.479819860511658591e-01, 1.531383769920937332e-01,
                              1.818357216161805012e-01, 2.222219843214978396e-01,
                              2.857142874366239149e-01, 3.999999999940941908e-01,
                              6.666666666666735130e-01};
  LLVMValueRef dk = LLVMBuildSIToFP(m->b, k, m->f64, "");
  LLVMValueRef hfsq = mul(m, mul(m, dc(m, 0.5), f), f);
  LLVMValueRef s = dvd(m, f, add(m, dc(m, 2), f)), z = mul(m, s, s);
  LLVMValueRef r = mul(m, z, poly(m, z, lp, 7));
  LLVMValueRef lo = add(m, mul(m, s, add(m, hfsq, r)), add(m, mul(m, dk, dc(m, ln2_lo)), c));
  return sub(m, mul(m, dk, dc(m, ln2_hi)), sub(m, sub(m, hfsq, lo), f));
}

/* u = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), for a normal u:
 * *k and *f (exact). */
static void split_log(Math *m, LLVMValueRef u, LLVMValueRef *k, LLVMValueRef *f) {
  LLVMValueRef b = bits(m, u);
  LLVMValueRef frac = iand(m, b, 0xfffffffffffffll);
  LLVMValueRef over = icmp(m, LLVMIntUGE, frac, 0x6a09e00000000ll);   /* 1 + f would pass sqrt(2) */
  *k = iadd(m, LLVMBuildAdd(m->b, lshr(m, b, 52), LLVMBuildZExt(m->b, over, m->i64, ""), ""), -1023);
  LLVMValueRef one = LLVMBuildOr(m->b, frac, sel(m, over, ic(m, 0x3fe0000000000000ll),
                                                  ic(m, 0x3ff0000000000000ll)), "");
  *f = sub(m, from_bits(m, one), dc(m, 1));
}

static LLVMValueRef own_log(Math *m, LLVMValueRef x) {
  LLVMValueRef sub_normal = lt(m, x, 0x1p-1022);
  LLVMValueRef k, f;
  split_log(m, sel(m, sub_normal, mul(m, x, dc(m, 0x1p54)), x), &k, &f);
  k = LLVMBuildSub(m->b, k, sel(m, sub_normal, ic(m, 54), ic(m, 0)), "");
  LLVMValueRef r = log_kernel(m, k, f, dc(m, 0));
  /* log 0 = -inf, log inf = inf, log of a negative or NaN = NaN. */
  r = sel(m, eq(m, x, 0), dc(m, -INFINITY), r);
  r = sel(m, eq(m, x, INFINITY), x, r);
  return sel(m, fcmp(m, LLVMRealULT, x, dc(m, 0)), dc(m, NAN), r);
}

/* log(1 + x): where 1 + x is in [sqrt(1/2), sqrt(2)), f = x exactly; else
 * u = 1 + x rounded, and c = (1 + x - u) / u corrects for the rounding. */
static LLVMValueRef own_log1p(Math *m, LLVMValueRef x) {
  LLVMValueRef near = LLVMBuildAnd(m->b, gt(m, x, -0.2928932188134524), lt(m, x, 0.41421356237309503), "");
  LLVMValueRef huge = ge(m, x, 0x1p53);
  LLVMValueRef u = sel(m, huge, x, add(m, dc(m, 1), x));
  LLVMValueRef k, f;
  split_log(m, u, &k, &f);
  LLVMValueRef above = icmp(m, LLVMIntSGT, iadd(m, lshr(m, bits(m, u), 52), -1023), 0);
  LLVMValueRef c = sel(m, above, sub(m, dc(m, 1), sub(m, u, x)), sub(m, x, sub(m, u, dc(m, 1))));
  c = sel(m, huge, dc(m, 0), dvd(m, c, u));
  LLVMValueRef r = log_kernel(m, sel(m, near, ic(m, 0), k), sel(m, near, x, f), sel(m, near, dc(m, 0), c));
  /* log1p(-1) = -inf, inf stays, below -1 or NaN: NaN. */
  r = sel(m, eq(m, x, -1), dc(m, -INFINITY), r);
  r = sel(m, eq(m, x, INFINITY), x, r);
  return sel(m, fcmp(m, LLVMRealULT, x, dc(m, -1)), dc(m, NAN), r);
}

/* ---- expm1 and tanh: fdlibm's s_expm1.c, s_tanh.c */

/* 2^k (1 + r - e) - 1 for k != 0, r - e = e^r - 1, arranged per k as
 * fdlibm does so that nothing cancels. */
static LLVMValueRef expm1_scaled(Math *m, LLVMValueRef k, LLVMValueRef r, LLVMValueRef e) {
  LLVMValueRef one = dc(m, 1), e_r = sub(m, e, r);
  LLVMValueRef km1 = sub(m, mul(m, dc(m, 0.5), sub(m, r, e)), dc(m, 0.5));
  LLVMValueRef k1 = sel(m, lt(m, r, -0.25), mul(m, dc(m, -2), sub(m, e, add(m, r, dc(m, 0.5)))),
                        add(m, one, mul(m, dc(m, 2), sub(m, r, e))));
  LLVMValueRef two_mk = pow2(m, LLVMBuildNeg(m->b, k, ""));   /* used for k in [2, 56] */
  LLVMValueRef far = sub(m, scale(m, sub(m, one, e_r), k), one);
  LLVMValueRef mid = scale(m, sub(m, sub(m, one, two_mk), e_r), k);
  LLVMValueRef high = scale(m, add(m, sub(m, r, add(m, e, two_mk)), one), k);
  LLVMValueRef y = sel(m, icmp(m, LLVMIntSLT, k, 20), mid, high);
  y = sel(m, LLVMBuildOr(m->b, icmp(m, LLVMIntSLE, k, -2), icmp(m, LLVMIntSGT, k, 56), ""), far, y);
  y = sel(m, icmp(m, LLVMIntEQ, k, 1), k1, y);
  return sel(m, icmp(m, LLVMIntEQ, k, -1), km1, y);
}

/* e^x - 1 = 2^k (e^r - 1 + 1) - 1 with x = k ln2 + r + c (c the
 * reduction's rounding), e^r - 1 = r - E by a rational form that keeps
 * the small r exact. */
static LLVMValueRef own_expm1(Math *m, LLVMValueRef x) {
  static const double q[] = {-2.01099218183624371326e-07, 4.00821782732936239552e-06,
                             -7.93650757867487942473e-05, 1.58730158725481460165e-03,
                             -3.33333333333331316428e-02, 1};
  LLVMValueRef xc = clamp(m, x, -45, 710);                    /* e^x - 1 is -1 or inf beyond */
  LLVMValueRef reduce = gt(m, fabs_(m, xc), 0.5 * M_LN2);
  LLVMValueRef t = call1(m, "llvm.trunc", add(m, mul(m, xc, dc(m, inv_ln2)), with_sign(m, dc(m, 0.5), xc)));
  t = sel(m, reduce, t, dc(m, 0));
  LLVMValueRef hi = sub(m, xc, mul(m, t, dc(m, ln2_hi))), lo = mul(m, t, dc(m, ln2_lo));
  LLVMValueRef r = sub(m, hi, lo), c = sub(m, sub(m, hi, r), lo);
  LLVMValueRef k = to_int(m, t, 1100);
  LLVMValueRef hfx = mul(m, dc(m, 0.5), r), hxs = mul(m, r, hfx);
  LLVMValueRef r1 = poly(m, hxs, q, 6);
  LLVMValueRef tt = sub(m, dc(m, 3), mul(m, r1, hfx));
  LLVMValueRef e = mul(m, hxs, dvd(m, sub(m, r1, tt), sub(m, dc(m, 6), mul(m, r, tt))));
  LLVMValueRef unscaled = sub(m, r, sub(m, mul(m, r, e), hxs));
  e = sub(m, sub(m, mul(m, r, sub(m, e, c)), c), hxs);      /* c folded in */
  LLVMValueRef y = sel(m, icmp(m, LLVMIntEQ, k, 0), unscaled, expm1_scaled(m, k, r, e));
  y = sel(m, gt(m, x, 7.09782712893383973096e+02), dc(m, INFINITY), y);
  return sel(m, is_nan(m, x), x, y);
}

/* tanh x below 0.625: x + x^3 P(x^2) / Q(x^2), Cephes' rational (fdlibm's
 * -t / (t + 2) there, t = e^-2|x| - 1, loses 3 ulps); above, fdlibm's
 * 1 - 2 / (e^2|x| + 1), the sign of x; 1 from 22 on. */
static LLVMValueRef own_tanh(Math *m, LLVMValueRef x) {
  static const double p[] = {-9.64399179425052238628e-1, -9.92877231001918586564e1,
                             -1.61468768441708447952e3};
  static const double q[] = {1, 1.12811678491632931402e2, 2.23548839060100448583e3,
                             4.84406305325125486048e3};
  LLVMValueRef ax = fabs_(m, x), s = mul(m, x, x);
  LLVMValueRef small = add(m, x, mul(m, mul(m, x, s), dvd(m, poly(m, s, p, 3), poly(m, s, q, 4))));
  LLVMValueRef t = own_expm1(m, mul(m, dc(m, 2), ax));
  LLVMValueRef big = sub(m, dc(m, 1), dvd(m, dc(m, 2), add(m, t, dc(m, 2))));
  big = sel(m, ge(m, ax, 22), dc(m, 1), big);
  return with_sign(m, sel(m, lt(m, ax, 0.625), small, big), x);
}

/* ---- atan: fdlibm's s_atan.c */

/* atan |x| = atan(c) + atan(t), c one of 0, 1/2, 1, 3/2, inf by where |x|
 * is, t = (|x| - c) / (1 + c |x|) small; an odd polynomial in t. */
static LLVMValueRef own_atan(Math *m, LLVMValueRef x) {
  static const double even[] = {1.62858201153657823623e-02, 4.97687799461593236017e-02,
                                6.66107313738753120669e-02, 9.09088713343650656196e-02,
                                1.42857142725034663711e-01, 3.33333333333329318027e-01};
  static const double odd[] = {-3.65315727442169155270e-02, -5.83357013379057348645e-02,
                               -7.69187620504482999495e-02, -1.11111104054623557880e-01,
                               -1.99999999998764832476e-01};
  static const struct {
    double below, hi, lo;                        /* |x| below this: atan(c) = hi + lo */
  } part[] = {{0.4375, 0, 0},
              {0.6875, 4.63647609000806093515e-01, 2.26987774529616870924e-17},
              {1.1875, 7.85398163397448278999e-01, 3.06161699786838301793e-17},
              {2.4375, 9.82793723247329054082e-01, 1.39033110312309984516e-17},
              {INFINITY, 1.57079632679489655800e+00, 6.12323399573676603587e-17}};
  LLVMValueRef a = fabs_(m, x);
  LLVMValueRef nums[] = {a, sub(m, mul(m, dc(m, 2), a), dc(m, 1)), sub(m, a, dc(m, 1)),
                         sub(m, a, dc(m, 1.5)), dc(m, -1)};
  LLVMValueRef dens[] = {dc(m, 1), add(m, dc(m, 2), a), add(m, a, dc(m, 1)),
                         add(m, dc(m, 1), mul(m, dc(m, 1.5), a)), a};
  LLVMValueRef num = nums[4], den = dens[4], hi = dc(m, part[4].hi), lo = dc(m, part[4].lo);
  for (int i = 3; i >= 0; i--) {
    LLVMValueRef in = lt(m, a, part[i].below);
    num = sel(m, in, nums[i], num);
    den = sel(m, in, dens[i], den);
    hi = sel(m, in, dc(m, part[i].hi), hi);
    lo = sel(m, in, dc(m, part[i].lo), lo);
  }
  LLVMValueRef t = dvd(m, num, den), z = mul(m, t, t), w = mul(m, z, z);
  LLVMValueRef s = add(m, mul(m, z, poly(m, w, even, 6)), mul(m, w, poly(m, w, odd, 5)));
  LLVMValueRef r = sub(m, hi, sub(m, sub(m, mul(m, t, s), lo), t));
  return sel(m, is_nan(m, x), x, with_sign(m, r, x));
}

/* ---- sin, cos, tan: reduction by pi/2, then fdlibm's kernels */

static const double pio2_1 = 0x1.921fb54442d18p+0, pio2_2 = 0x1.1a62633145c07p-54,
                    pio2_3 = -0x1.f1976b7ed8fbcp-110;   /* pi/2 = pio2_1 + pio2_2 + pio2_3 */

/* The bits of 2/pi, 64 a word, after a word of zeros for the integer
 * part (where the window of an argument below 2^54 starts). */
static const uint64_t two_over_pi_bits[] = {
    0, 0xa2f9836e4e441529ull, 0xfc2757d1f534ddc0ull, 0xdb6295993c439041ull,
    0xfe5163abdebbc561ull, 0xb7246e3a424dd2e0ull, 0x06492eea09d1921cull, 0xfe1deb1cb129a73eull,
    0xe88235f52ebb4484ull, 0xe99c7026b45f7e41ull, 0x3991d639835339f4ull, 0x9c845f8bbdf9283bull,
    0x1ff897ffde05980full, 0xef2f118b5a0a6d1full, 0x6d367ecf27cb09b7ull, 0x4f463f669e5fea2dull,
    0x7527bac7ebe5f17bull, 0x3d0739f78a5292eaull, 0x6bfb5fb11f8d5d08ull, 0x56033046fc7b6babull};
enum { TWO_OVER_PI_WORDS = sizeof two_over_pi_bits / sizeof *two_over_pi_bits };

static LLVMValueRef two_over_pi_table(Math *m) {
  LLVMValueRef t = LLVMGetNamedGlobal(m->mod, "dl_two_over_pi");
  if (t)
    return t;
  LLVMValueRef words[TWO_OVER_PI_WORDS];
  for (int k = 0; k < TWO_OVER_PI_WORDS; k++)
    words[k] = LLVMConstInt(m->i64, two_over_pi_bits[k], 0);
  t = LLVMAddGlobalInAddressSpace(m->mod, LLVMArrayType(m->i64, TWO_OVER_PI_WORDS), "dl_two_over_pi",
                                  m->table_space);
  LLVMSetInitializer(t, LLVMConstArray(m->i64, words, TWO_OVER_PI_WORDS));
  LLVMSetGlobalConstant(t, 1);
  LLVMSetLinkage(t, LLVMInternalLinkage);
  return t;
}

/* The reduced argument: x = q pi/2 + y[0] + y[1], |y| <= pi/4 or so. */
typedef struct Reduced {
  LLVMValueRef q;                                /* i64; only q mod 4 matters */
  LLVMValueRef y[2];                             /* head and tail */
} Reduced;

/* For |x| < 2^30: n = rint(x 2/pi), and x - n pi/2 with pi/2 in three
 * parts: fma(-n, pio2_1, x) is exact, n pio2_2 is made exact by an fma,
 * and the difference a double-double by Knuth's two-sum. */
static Reduced reduce_medium(Math *m, LLVMValueRef x) {
  LLVMValueRef n = call1(m, "llvm.rint", mul(m, x, dc(m, M_2_PI)));
  LLVMValueRef t1 = fma_(m, neg(m, n), dc(m, pio2_1), x);
  LLVMValueRef p2 = mul(m, n, dc(m, pio2_2)), p2_lo = fma_(m, n, dc(m, pio2_2), neg(m, p2));
  LLVMValueRef rh = sub(m, t1, p2), bb = sub(m, rh, t1);
  LLVMValueRef err = add(m, sub(m, t1, sub(m, rh, bb)), sub(m, neg(m, p2), bb));
  LLVMValueRef lo = sub(m, sub(m, err, p2_lo), mul(m, n, dc(m, pio2_3)));
  LLVMValueRef y0 = add(m, rh, lo);
  return (Reduced){to_int(m, n, 0x1p31), {y0, add(m, sub(m, rh, y0), lo)}};
}

/* |x| 2/pi mod 4 for any finite |x| (Payne and Hanek): |x| = M 2^(e-1075)
 * with M an integer of 53 bits, and only the bits of 2/pi from 2^(1075-e)
 * on matter mod 4 (earlier ones make multiples of 4). M times the window
 * of 192 bits that starts there, taken mod 2^192, is that product in
 * units of 2^-190: *quadrant its top 2 bits, and the fraction after them,
 * its first 128 bits, the result. */
static LLVMValueRef times_two_over_pi(Math *m, LLVMValueRef ax, LLVMValueRef *quadrant) {
  LLVMValueRef b = bits(m, ax);
  LLVMValueRef big_m = LLVMBuildOr(m->b, iand(m, b, 0xfffffffffffffll), ic(m, 1ll << 52), "");
  LLVMValueRef start = iadd(m, lshr(m, b, 52), -1013);    /* bit 2^(1075-e) in the table */
  LLVMValueRef word = lshr(m, start, 6), shift = iand(m, start, 63);
  LLVMValueRef table = two_over_pi_table(m), w[4];
  LLVMTypeRef at = LLVMArrayType(m->i64, TWO_OVER_PI_WORDS);
  for (int k = 0; k < 4; k++) {
    LLVMValueRef idx[2] = {ic(m, 0), iadd(m, word, k)};
    w[k] = LLVMBuildLoad2(m->b, m->i64, LLVMBuildInBoundsGEP2(m->b, at, table, idx, 2, ""), "");
  }
  LLVMValueRef win[3];                          /* the window, most significant first */
  for (int k = 0; k < 3; k++)
    win[k] = intrinsic(m, "llvm.fshl", (LLVMValueRef[]){w[k], w[k + 1], shift}, 3);
  LLVMValueRef wide_m = LLVMBuildZExt(m->b, big_m, m->i128, "");
  LLVMValueRef p_lo = LLVMBuildMul(m->b, wide_m, LLVMBuildZExt(m->b, win[2], m->i128, ""), "");
  LLVMValueRef p_mid = LLVMBuildMul(m->b, wide_m, LLVMBuildZExt(m->b, win[1], m->i128, ""), "");
  LLVMValueRef p_hi = LLVMBuildMul(m->b, big_m, win[0], "");             /* mod 2^64 */
  LLVMValueRef upper = LLVMBuildAdd(m->b, lshr(m, p_lo, 64), p_mid, "");  /* bits 64 to 191 */
  upper = LLVMBuildAdd(m->b, upper, shl(m, LLVMBuildZExt(m->b, p_hi, m->i128, ""), 64), "");
  *quadrant = LLVMBuildTrunc(m->b, lshr(m, upper, 126), m->i64, "");
  LLVMValueRef low = lshr(m, LLVMBuildAnd(m->b, p_lo, LLVMConstInt(m->i128, ~0ull, 0), ""), 62);
  return LLVMBuildOr(m->b, shl(m, upper, 2), low, "");
}

/* Payne and Hanek's reduction of |x|: the fraction of |x| 2/pi rounded
 * to the nearest quadrant (a negative one from 1/2 on), normalized, and
 * times pi/2 as a double-double. The fraction is never below 2^-62 for
 * a double (its closest approach to a multiple of pi/2), so 128 bits
 * leave it 66 exact. */
static Reduced reduce_huge(Math *m, LLVMValueRef ax) {
  LLVMValueRef quadrant, frac = times_two_over_pi(m, ax, &quadrant);
  LLVMValueRef past_half = LLVMBuildTrunc(m->b, lshr(m, frac, 127), m->i1, "");
  frac = sel(m, past_half, LLVMBuildNeg(m->b, frac, ""), frac);
  quadrant = LLVMBuildAdd(m->b, quadrant, LLVMBuildZExt(m->b, past_half, m->i64, ""), "");
  LLVMValueRef lz = iand(m, intrinsic(m, "llvm.ctlz", (LLVMValueRef[]){frac, LLVMConstInt(m->i1, 0, 0)}, 2),
                         127);
  LLVMValueRef norm = LLVMBuildShl(m->b, frac, lz, "");
  LLVMValueRef lz64 = LLVMBuildTrunc(m->b, lz, m->i64, "");
  /* frac 2^-128 = (its top 53 bits) 2^(-53-lz) + (the next 64) 2^(-117-lz) */
  LLVMValueRef h = LLVMBuildUIToFP(m->b, LLVMBuildTrunc(m->b, lshr(m, norm, 75), m->i64, ""), m->f64, "");
  LLVMValueRef l = LLVMBuildUIToFP(m->b, LLVMBuildTrunc(m->b, lshr(m, norm, 11), m->i64, ""), m->f64, "");
  h = mul(m, h, pow2(m, LLVMBuildSub(m->b, ic(m, -53), lz64, "")));
  l = mul(m, l, pow2(m, LLVMBuildSub(m->b, ic(m, -117), lz64, "")));
  LLVMValueRef rh = mul(m, h, dc(m, pio2_1));
  LLVMValueRef rl = add(m, fma_(m, h, dc(m, pio2_1), neg(m, rh)),
                        add(m, mul(m, h, dc(m, pio2_2)), mul(m, l, dc(m, pio2_1))));
  LLVMValueRef y0 = add(m, rh, rl), y1 = sub(m, rl, sub(m, y0, rh));
  return (Reduced){quadrant, {sel(m, past_half, neg(m, y0), y0), sel(m, past_half, neg(m, y1), y1)}};
}

/* x reduced: the medium way below 2^30, else (a branch, rarely taken)
 * Payne and Hanek's on |x|, the sign put back. Leaves the builder in the
 * block where both ways meet. */
static Reduced reduce(Math *m, LLVMValueRef x) {
  LLVMBasicBlockRef medium = block(m, "medium"), huge = block(m, "huge"), done = block(m, "reduced");
  LLVMBuildCondBr(m->b, lt(m, fabs_(m, x), 0x1p30), medium, huge);
  LLVMPositionBuilderAtEnd(m->b, medium);
  Reduced a = reduce_medium(m, x);
  LLVMBasicBlockRef from_medium = LLVMGetInsertBlock(m->b);
  LLVMBuildBr(m->b, done);
  LLVMPositionBuilderAtEnd(m->b, huge);
  Reduced b = reduce_huge(m, fabs_(m, x));
  LLVMValueRef negative = lt(m, x, 0);
  b.q = sel(m, negative, LLVMBuildNeg(m->b, b.q, ""), b.q);
  for (int k = 0; k < 2; k++)
    b.y[k] = sel(m, negative, neg(m, b.y[k]), b.y[k]);
  LLVMBasicBlockRef from_huge = LLVMGetInsertBlock(m->b);
  LLVMBuildBr(m->b, done);
  LLVMPositionBuilderAtEnd(m->b, done);
  Reduced r = {phi2(m, a.q, from_medium, b.q, from_huge), {NULL, NULL}};
  for (int k = 0; k < 2; k++)
    r.y[k] = phi2(m, a.y[k], from_medium, b.y[k], from_huge);
  return r;
}

/* sin(x + y) for |x + y| <= pi/4, y the tail (fdlibm's __kernel_sin). */
static LLVMValueRef kernel_sin(Math *m, LLVMValueRef x, LLVMValueRef y) {
  static const double s[] = {-1.66666666666666324348e-01, 8.33333333332248946124e-03,
                             -1.98412698298579493134e-04, 2.75573137070700676789e-06,
                             -2.50507602534068634195e-08, 1.58969099521155010221e-10};   /* S1..S6 */
  LLVMValueRef z = mul(m, x, x), w = mul(m, z, z), v = mul(m, z, x);
  /* r = S2 + z (S3 + z S4) + z w (S5 + z S6) */
  LLVMValueRef r = add(m, add(m, dc(m, s[1]), mul(m, z, add(m, dc(m, s[2]), mul(m, z, dc(m, s[3]))))),
                       mul(m, mul(m, z, w), add(m, dc(m, s[4]), mul(m, z, dc(m, s[5])))));
  LLVMValueRef inner = sub(m, mul(m, z, sub(m, mul(m, dc(m, 0.5), y), mul(m, v, r))), y);
  return sub(m, x, sub(m, inner, mul(m, v, dc(m, s[0]))));
}

/* cos(x + y) for |x + y| <= pi/4 (fdlibm's __kernel_cos). */
static LLVMValueRef kernel_cos(Math *m, LLVMValueRef x, LLVMValueRef y) {
  static const double c13[] = {2.48015872894767294178e-05, -1.38888888888741095749e-03,
                               4.16666666666666019037e-02};
  static const double c46[] = {-1.13596475577881948265e-11, 2.08757232129817482790e-09,
                               -2.75573143513906633035e-07};
  LLVMValueRef z = mul(m, x, x), w = mul(m, z, z);
  LLVMValueRef r = add(m, mul(m, z, poly(m, z, c13, 3)), mul(m, mul(m, w, w), poly(m, z, c46, 3)));
  LLVMValueRef hz = mul(m, dc(m, 0.5), z), one_hz = sub(m, dc(m, 1), hz);
  return add(m, one_hz, add(m, sub(m, sub(m, dc(m, 1), one_hz), hz), sub(m, mul(m, z, r), mul(m, x, y))));
}

/* tan(x + y), or -1/tan(x + y) when odd, for |x + y| <= pi/4 (fdlibm's
 * __kernel_tan): an odd polynomial up to 0.6744, past it tan(pi/4 - x')
 * arranged to cancel nothing; -1/tan as a head and a correction. */
static LLVMValueRef kernel_tan(Math *m, LLVMValueRef x, LLVMValueRef y, LLVMValueRef odd) {
  static const double t_odd[] = {-1.85586374855275456654e-05, 7.81794442939557092300e-05,
                                 5.88041240820264096874e-04, 3.59207910759131235356e-03,
                                 2.18694882948595424599e-02, 1.33333333333201242699e-01};
  static const double t_even[] = {2.59073051863633712884e-05, 7.14072491382608190305e-05,
                                  2.46463134818469906812e-04, 1.45620945432529025516e-03,
                                  8.86323982359930005737e-03, 5.39682539762260521377e-02};
  const double t0 = 3.33333333333334091986e-01, pio4 = 7.85398163397448278999e-01,
               pio4lo = 3.06161699786838301793e-17;
  LLVMValueRef negative = lt(m, x, 0), big = ge(m, fabs_(m, x), 0x1.59428p-1);
  LLVMValueRef ax = sel(m, negative, neg(m, x), x), ay = sel(m, negative, neg(m, y), y);
  x = sel(m, big, add(m, sub(m, dc(m, pio4), ax), sub(m, dc(m, pio4lo), ay)), x);
  y = sel(m, big, dc(m, 0), y);
  LLVMValueRef z = mul(m, x, x), w = mul(m, z, z);
  LLVMValueRef r = poly(m, w, t_odd, 6), v = mul(m, z, poly(m, w, t_even, 6));
  LLVMValueRef s = mul(m, z, x);
  r = add(m, y, mul(m, z, add(m, mul(m, s, add(m, r, v)), y)));
  r = add(m, r, mul(m, dc(m, t0), s));
  w = add(m, x, r);
  LLVMValueRef iy = sel(m, odd, dc(m, -1), dc(m, 1));
  LLVMValueRef far = sub(m, iy, mul(m, dc(m, 2), sub(m, x, sub(m, dvd(m, mul(m, w, w), add(m, w, iy)), r))));
  far = sel(m, negative, neg(m, far), far);
  LLVMValueRef wh = head(m, w), v2 = sub(m, r, sub(m, wh, x));
  LLVMValueRef a = dvd(m, dc(m, -1), w), th = head(m, a);
  LLVMValueRef s2 = add(m, dc(m, 1), mul(m, th, wh));
  LLVMValueRef inv = add(m, th, mul(m, a, add(m, s2, mul(m, th, v2))));
  return sel(m, big, far, sel(m, odd, inv, w));
}

/* NaN for an infinite or NaN x, else v. */
static LLVMValueRef nan_unless_finite(Math *m, LLVMValueRef x, LLVMValueRef v) {
  LLVMValueRef d = sub(m, x, x);
  return sel(m, is_nan(m, d), d, v);
}

/* sin x (shift 0) or cos x (shift 1) = sin(x + shift pi/2): quadrant q
 * picks sin or cos of the reduced argument and the sign. */
static LLVMValueRef own_sincos(Math *m, LLVMValueRef x, int shift) {
  Reduced r = reduce(m, x);
  LLVMValueRef q = iadd(m, r.q, shift);
  LLVMValueRef s = kernel_sin(m, r.y[0], r.y[1]), c = kernel_cos(m, r.y[0], r.y[1]);
  LLVMValueRef v = sel(m, icmp(m, LLVMIntNE, iand(m, q, 1), 0), c, s);
  v = sel(m, icmp(m, LLVMIntNE, iand(m, q, 2), 0), neg(m, v), v);
  return nan_unless_finite(m, x, v);
}

static LLVMValueRef own_sin(Math *m, LLVMValueRef x) { return own_sincos(m, x, 0); }
static LLVMValueRef own_cos(Math *m, LLVMValueRef x) { return own_sincos(m, x, 1); }

static LLVMValueRef own_tan(Math *m, LLVMValueRef x) {
  Reduced r = reduce(m, x);
  LLVMValueRef odd = icmp(m, LLVMIntNE, iand(m, r.q, 1), 0);
  return nan_unless_finite(m, x, kernel_tan(m, r.y[0], r.y[1], odd));
}

/* ---- pow: fdlibm's e_pow.c */

/* log2 |x| as t[0] + t[1], t[0] with a short significand, for finite
 * nonzero ax: ax = 2^n v with v near 1 or 1.5 (bp), s = (v - bp) /
 * (v + bp) in two parts, and log(v / bp) = 2s + s^3 R(s^2) carried in
 * extra precision, times 2 / (3 ln2) in two parts. */
static void pow_log2(Math *m, LLVMValueRef ax, LLVMValueRef t[2]) {
  static const double l[] = {2.06975017800338417784e-01, 2.30660745775561754067e-01,
                             2.72728123808534006489e-01, 3.33333329818377432918e-01,
                             4.28571428578550184252e-01, 5.99999999999994648725e-01};
  const double cp = 9.61796693925975554329e-01, cp_h = 9.61796700954437255859e-01,
               cp_l = -7.02846165095275826516e-09;
  LLVMValueRef sub_normal = lt(m, ax, 0x1p-1022);
  ax = sel(m, sub_normal, mul(m, ax, dc(m, 0x1p53)), ax);
  LLVMValueRef b = bits(m, ax), ix = lshr(m, b, 32);
  LLVMValueRef n = iadd(m, lshr(m, ix, 20), -0x3ff);
  n = LLVMBuildSub(m->b, n, sel(m, sub_normal, ic(m, 53), ic(m, 0)), "");
  LLVMValueRef j = iand(m, ix, 0xfffff);
  LLVMValueRef k = LLVMBuildAnd(m->b, icmp(m, LLVMIntSGT, j, 0x3988E), icmp(m, LLVMIntSLT, j, 0xBB67A), "");
  LLVMValueRef wrap = icmp(m, LLVMIntSGE, j, 0xBB67A);       /* past sqrt(3): v / 2 */
  LLVMValueRef wrap64 = LLVMBuildZExt(m->b, wrap, m->i64, ""), k64 = LLVMBuildZExt(m->b, k, m->i64, "");
  n = LLVMBuildAdd(m->b, n, wrap64, "");
  ix = LLVMBuildSub(m->b, LLVMBuildOr(m->b, j, ic(m, 0x3ff00000), ""), shl(m, wrap64, 20), "");
  ax = from_bits(m, LLVMBuildOr(m->b, shl(m, ix, 32), iand(m, b, 0xffffffffll), ""));
  LLVMValueRef bp = sel(m, k, dc(m, 1.5), dc(m, 1));
  LLVMValueRef dp_h = sel(m, k, dc(m, 5.84962487220764160156e-01), dc(m, 0));
  LLVMValueRef dp_l = sel(m, k, dc(m, 1.35003920212974897128e-08), dc(m, 0));
  LLVMValueRef u = sub(m, ax, bp), v = dvd(m, dc(m, 1), add(m, ax, bp));
  LLVMValueRef ss = mul(m, u, v), s_h = head(m, ss);
  /* t_h = ax + bp, its head built from the bits */
  LLVMValueRef th_bits = LLVMBuildAdd(m->b, LLVMBuildOr(m->b, lshr(m, ix, 1), ic(m, 0x20000000), ""),
                                      LLVMBuildAdd(m->b, ic(m, 0x00080000), shl(m, k64, 18), ""), "");
  LLVMValueRef t_h = from_bits(m, shl(m, th_bits, 32));
  LLVMValueRef t_l = sub(m, ax, sub(m, t_h, bp));
  LLVMValueRef s_l = mul(m, v, sub(m, sub(m, u, mul(m, s_h, t_h)), mul(m, s_h, t_l)));
  LLVMValueRef s2 = mul(m, ss, ss);
  LLVMValueRef r = mul(m, mul(m, s2, s2), poly(m, s2, l, 6));
  r = add(m, r, mul(m, s_l, add(m, s_h, ss)));
  s2 = mul(m, s_h, s_h);
  t_h = head(m, add(m, add(m, dc(m, 3), s2), r));
  t_l = sub(m, r, sub(m, sub(m, t_h, dc(m, 3)), s2));
  u = mul(m, s_h, t_h);
  v = add(m, mul(m, s_l, t_h), mul(m, t_l, ss));
  LLVMValueRef p_h = head(m, add(m, u, v)), p_l = sub(m, v, sub(m, p_h, u));
  LLVMValueRef z_h = mul(m, dc(m, cp_h), p_h);
  LLVMValueRef z_l = add(m, add(m, mul(m, dc(m, cp_l), p_h), mul(m, p_l, dc(m, cp))), dp_l);
  LLVMValueRef dn = LLVMBuildSIToFP(m->b, n, m->f64, "");
  t[0] = head(m, add(m, add(m, add(m, z_h, z_l), dp_h), dn));
  t[1] = sub(m, z_l, sub(m, sub(m, sub(m, t[0], dn), dp_h), z_h));
}

/* log2 ax for |ax - 1| <= 2^-20 (pow with |y| past 2^31): log's series
 * in ax - 1 to the 4th power, times 1/ln2 in two parts. */
static void pow_log2_near_1(Math *m, LLVMValueRef ax, LLVMValueRef t[2]) {
  const double ivln2 = 1.44269504088896338700e+00, ivln2_h = 1.44269502162933349609e+00,
               ivln2_l = 1.92596299112661746887e-08;
  LLVMValueRef d = sub(m, ax, dc(m, 1));
  LLVMValueRef w = mul(m, mul(m, d, d), sub(m, dc(m, 0.5), mul(m, d, sub(m, dc(m, 0.3333333333333333333333),
                                                                    mul(m, d, dc(m, 0.25))))));
  LLVMValueRef u = mul(m, dc(m, ivln2_h), d);
  LLVMValueRef v = sub(m, mul(m, d, dc(m, ivln2_l)), mul(m, w, dc(m, ivln2)));
  t[0] = head(m, add(m, u, v));
  t[1] = sub(m, v, sub(m, t[0], u));
}

/* 2^(p_h + p_l) = 2^n e^((p_h - n + p_l) ln2), with the product in extra
 * precision (lg2 in two parts) and exp's kernel. */
static LLVMValueRef pow_exp2(Math *m, LLVMValueRef p_h, LLVMValueRef p_l) {
  const double lg2 = 6.93147180559945286227e-01, lg2_h = 6.93147182464599609375e-01,
               lg2_l = -1.90465429995776804525e-09;
  LLVMValueRef z = add(m, p_l, p_h), az = fabs_(m, z);
  LLVMValueRef nd = sel(m, gt(m, az, 0.5),
                        with_sign(m, call1(m, "llvm.floor", add(m, az, dc(m, 0.5))), z), dc(m, 0));
  p_h = sub(m, p_h, nd);
  LLVMValueRef t = head(m, add(m, p_l, p_h));
  LLVMValueRef u = mul(m, t, dc(m, lg2_h));
  LLVMValueRef v = add(m, mul(m, sub(m, p_l, sub(m, t, p_h)), dc(m, lg2)), mul(m, t, dc(m, lg2_l)));
  LLVMValueRef hi = add(m, u, v), lo = sub(m, v, sub(m, hi, u));
  /* e^(hi + lo) by the kernel, whose second argument is subtracted */
  return scale(m, exp_kernel(m, hi, neg(m, lo)), to_int(m, nd, 1100));
}

/* Whether |x|^y is large: |x| and y on the same side of 1 and 0. */
static LLVMValueRef pow_grows(Math *m, LLVMValueRef ax, LLVMValueRef y) {
  return LLVMBuildICmp(m->b, LLVMIntEQ, lt(m, ax, 1), lt(m, y, 0), "");
}

/* |x|^y for finite nonzero x and y: 2^(y log2 |x|), y split in two so
 * that the product is exact enough, over- and underflow decided on it
 * (fdlibm's). Past |y| = 2^31 it is 0 or inf but for |x| within 2^-20
 * of 1 (and |y| below 2^64), where log2 |x| is a short series. */
static LLVMValueRef pow_abs(Math *m, LLVMValueRef ax, LLVMValueRef y) {
  const double ovt = 8.0085662595372944372e-17;  /* -(1024 - log2(DBL_MAX + ulp / 2)) */
  LLVMValueRef ay = fabs_(m, y), huge_y = gt(m, ay, 0x1p31);
  LLVMValueRef t[2], near[2];
  pow_log2(m, ax, t);
  pow_log2_near_1(m, ax, near);
  for (int k = 0; k < 2; k++)
    t[k] = sel(m, huge_y, near[k], t[k]);
  LLVMValueRef y1 = head(m, y);
  LLVMValueRef p_l = add(m, mul(m, sub(m, y, y1), t[0]), mul(m, y, t[1]));
  LLVMValueRef p_h = mul(m, y1, t[0]);
  LLVMValueRef z = add(m, p_l, p_h), zh = sub(m, z, p_h);
  LLVMValueRef over = LLVMBuildOr(m->b, gt(m, z, 1024), LLVMBuildAnd(m->b, eq(m, z, 1024),
                                  fcmp(m, LLVMRealOGT, add(m, p_l, dc(m, ovt)), zh), ""), "");
  LLVMValueRef under = LLVMBuildOr(m->b, lt(m, z, -1075), LLVMBuildAnd(m->b, eq(m, z, -1075),
                                   fcmp(m, LLVMRealOLE, p_l, zh), ""), "");
  LLVMValueRef inf = dc(m, INFINITY), zero = dc(m, 0);
  LLVMValueRef r = sel(m, over, inf, sel(m, under, zero, pow_exp2(m, p_h, p_l)));
  LLVMValueRef near_1 = LLVMBuildAnd(m->b, ge(m, ax, 0x1.fffffp-1), lt(m, ax, 0x1.00001p+0), "");
  LLVMValueRef gone = LLVMBuildAnd(m->b, huge_y, LLVMBuildOr(m->b, LLVMBuildNot(m->b, near_1, ""),
                                                            gt(m, ay, 0x1p64), ""), "");
  return sel(m, gone, sel(m, pow_grows(m, ax, y), inf, zero), r);
}

/* x^y: |x|^y, negative for a negative x and an odd whole y, NaN for a
 * negative x and a y not whole; then C99's special cases (Annex F: x or
 * y zero, infinite, ±1, NaN), in the order fdlibm takes them, as
 * selects. */
static LLVMValueRef own_pow(Math *m, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef ax = fabs_(m, x), ay = fabs_(m, y);
  LLVMValueRef whole = fcmp(m, LLVMRealOEQ, call1(m, "llvm.trunc", y), y);
  LLVMValueRef half_y = mul(m, y, dc(m, 0.5));
  LLVMValueRef odd = LLVMBuildAnd(m->b, whole,
                                  fcmp(m, LLVMRealUNE, call1(m, "llvm.trunc", half_y), half_y), "");
  LLVMValueRef x_neg = icmp(m, LLVMIntSLT, bits(m, x), 0);  /* -0 too */
  LLVMValueRef minus = LLVMBuildAnd(m->b, x_neg, odd, "");  /* the result's sign */
  LLVMValueRef not_whole = LLVMBuildNot(m->b, whole, "");
  LLVMValueRef r = pow_abs(m, ax, y);
  r = sel(m, minus, neg(m, r), r);
  r = sel(m, LLVMBuildAnd(m->b, lt(m, x, 0), not_whole, ""), dc(m, NAN), r);
  /* x = ±0, ±inf, ±1: |x| or 1/|x|, -1 to a y not whole NaN, odd y the sign */
  LLVMValueRef special_x = LLVMBuildOr(m->b, LLVMBuildOr(m->b, eq(m, ax, 0), eq(m, ax, INFINITY), ""),
                                       eq(m, ax, 1), "");
  LLVMValueRef zx = sel(m, lt(m, y, 0), dvd(m, dc(m, 1), ax), ax);
  zx = sel(m, minus, neg(m, zx), zx);
  zx = sel(m, LLVMBuildAnd(m->b, LLVMBuildAnd(m->b, x_neg, eq(m, ax, 1), ""), not_whole, ""), dc(m, NAN), zx);
  r = sel(m, special_x, zx, r);
  /* y = 1/2 (x >= +0), 2, ±1 */
  LLVMValueRef root = LLVMBuildAnd(m->b, eq(m, y, 0.5), LLVMBuildNot(m->b, x_neg, ""), "");
  r = sel(m, root, call1(m, "llvm.sqrt", x), r);
  r = sel(m, eq(m, y, 2), mul(m, x, x), r);
  r = sel(m, eq(m, y, 1), x, r);
  r = sel(m, eq(m, y, -1), dvd(m, dc(m, 1), x), r);
  /* y = ±inf: 1 for |x| = 1, else 0 or inf */
  LLVMValueRef by_inf = sel(m, pow_grows(m, ax, y), dc(m, INFINITY), dc(m, 0));
  by_inf = sel(m, eq(m, ax, 1), dc(m, 1), by_inf);
  r = sel(m, eq(m, ay, INFINITY), by_inf, r);
  r = sel(m, LLVMBuildOr(m->b, is_nan(m, x), is_nan(m, y), ""), add(m, x, y), r);
  return sel(m, LLVMBuildOr(m->b, eq(m, x, 1), eq(m, y, 0), ""), dc(m, 1), r);
}

/* ---- float log: Cephes', in float */

/* log x = log v + e log 2, x = v 2^e with v in [sqrt(1/2), sqrt(2)). */
static LLVMValueRef own_logf(Math *m, LLVMValueRef x) {
  static const double c[] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                             -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                             2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
  /* Subnormals scaled into the normal range first. */
  LLVMValueRef tiny = lt(m, x, 0x1p-126);
  LLVMValueRef xs = sel(m, tiny, mul(m, x, like(x, 0x1p25)), x);
  LLVMValueRef b = LLVMBuildBitCast(m->b, xs, m->i32, "");
  LLVMValueRef e = iadd(m, iand(m, lshr(m, b, 23), 0xff), -126);
  e = LLVMBuildSub(m->b, e, sel(m, tiny, LLVMConstInt(m->i32, 25, 0), LLVMConstInt(m->i32, 0, 0)), "");
  LLVMValueRef vb = LLVMBuildOr(m->b, iand(m, b, 0x007fffff), LLVMConstInt(m->i32, 0x3f000000, 0), "");
  LLVMValueRef v = LLVMBuildBitCast(m->b, vb, m->f32, "");           /* in [0.5, 1) */
  LLVMValueRef low = lt(m, v, 0.707106781186547524);
  e = LLVMBuildSub(m->b, e, LLVMBuildZExt(m->b, low, m->i32, ""), "");
  v = sub(m, sel(m, low, add(m, v, v), v), like(x, 1));
  LLVMValueRef z = mul(m, v, v), fe = LLVMBuildSIToFP(m->b, e, m->f32, "");
  LLVMValueRef y = mul(m, mul(m, poly(m, v, c, 9), v), z);
  y = add(m, y, mul(m, fe, like(x, -2.12194440e-4)));
  y = add(m, y, mul(m, z, like(x, -0.5)));
  LLVMValueRef r = add(m, add(m, v, y), mul(m, fe, like(x, 0.693359375)));
  /* log 0 = -inf, log inf = inf, log of a negative or NaN = NaN. */
  r = sel(m, eq(m, x, 0), like(x, -INFINITY), r);
  r = sel(m, eq(m, x, INFINITY), x, r);
  return sel(m, fcmp(m, LLVMRealULT, x, like(x, 0)), like(x, NAN), r);
}

/* ---- the table, and the bodies */

typedef LLVMValueRef (*Own1)(Math *m, LLVMValueRef x);
typedef LLVMValueRef (*Own2)(Math *m, LLVMValueRef x, LLVMValueRef y);

typedef struct Own {
  const char *name;                              /* libm's */
  Own1 one;                                      /* of one argument, */
  Own2 two;                                      /* or of two */
} Own;

/* A float function missing here (tanf) is its double one, rounded. */
static const Own own[] = {
    {"exp", own_exp, NULL},     {"log", own_log, NULL},   {"log1p", own_log1p, NULL},
    {"expm1", own_expm1, NULL}, {"tanh", own_tanh, NULL}, {"atan", own_atan, NULL},
    {"sin", own_sin, NULL},     {"cos", own_cos, NULL},   {"tan", own_tan, NULL},
    {"pow", NULL, own_pow},     {"logf", own_logf, NULL},
};

static const Own *own_of(const char *name) {
  for (size_t k = 0; k < sizeof own / sizeof *own; k++)
    if (strcmp(name, own[k].name) == 0)
      return &own[k];
  return NULL;
}

/* The body of libm function f, as codegen declared it; false when we
 * have none of our own. */
static bool define(Math *m, LLVMValueRef f, const char *name) {
  const Own *o = own_of(name);
  size_t n = strlen(name);
  bool rounded = false;
  if (!o && n > 1 && n < 32 && name[n - 1] == 'f') {
    char stem[32];
    memcpy(stem, name, n - 1);
    stem[n - 1] = '\0';
    o = own_of(stem);
    rounded = o != NULL;
  }
  if (!o)
    return false;
  m->fn = f;
  LLVMSetLinkage(f, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(m->b, block(m, "entry"));
  LLVMValueRef a[2];
  for (int k = 0; k < (o->two ? 2 : 1); k++) {
    a[k] = LLVMGetParam(f, (unsigned)k);
    a[k] = rounded ? LLVMBuildFPExt(m->b, a[k], m->f64, "") : a[k];
  }
  LLVMValueRef v = o->two ? o->two(m, a[0], a[1]) : o->one(m, a[0]);
  LLVMBuildRet(m->b, rounded ? LLVMBuildFPTrunc(m->b, v, m->f32, "") : v);
  return true;
}

bool gpumath_define(LLVMValueRefDl fn, unsigned table_space) {
  LLVMModuleRef mod = LLVMGetGlobalParent(fn);
  LLVMContextRef ctx = LLVMGetModuleContext(mod);
  Math m = {.ctx = ctx, .mod = mod, .b = LLVMCreateBuilderInContext(ctx), .table_space = table_space,
            .f32 = LLVMFloatTypeInContext(ctx), .f64 = LLVMDoubleTypeInContext(ctx),
            .i1 = LLVMInt1TypeInContext(ctx), .i32 = LLVMInt32TypeInContext(ctx),
            .i64 = LLVMInt64TypeInContext(ctx), .i128 = LLVMInt128TypeInContext(ctx)};
  size_t len;
  bool ok = define(&m, fn, LLVMGetValueName2(fn, &len));
  LLVMDisposeBuilder(m.b);
  return ok;
}
