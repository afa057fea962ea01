/* jit.c — LLVM's ORC LLJIT for the host CPU.
 *
 * One JIT per process: modules are optimized here with the host's target
 * machine (so the vectorizer knows the real vector width), then handed to
 * LLJIT, which owns them from then on. Each module goes in under its own
 * resource tracker, so that its code can be freed once it has run (the
 * REPL compiles a train at a time for as long as a session lasts).
 *
 * JIT code links against an allow-list, not against the whole process.
 * The runtime (dlrt_step, dlrt_batch, dlrt_team_barrier, dlrt_interrupt)
 * and OpenBLAS's cblas_sgemm and cblas_dgemm, where dlrt_blas finds it,
 * are absolute symbols; the rest comes from the process through a search
 * filtered by symbol_allowed: libm's functions, their libmvec variants
 * (glibc's vector sin, log, ..., loaded into the process here when the
 * system has it), the memory functions, and ThreadSanitizer's hooks in
 * that build. LLJIT links every module of its main JITDylib to the whole
 * process after the JITDylib's own generators, and the C API cannot
 * switch that off, so a last generator of ours fails the lookup of
 * whatever the filter did not let through.
 *
 * Every LLVMErrorRef is turned into a diagnostic in one place, jit_error;
 * a failed link is reported to the session's error reporter, which keeps
 * it for jit_add to say why.
 */
#include "dlc.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

struct Jit {
  LLVMOrcLLJITRef lljit;
  LLVMOrcThreadSafeContextRef tsc;               /* owns the context modules are built in */
  LLVMTargetMachineRef tm;                       /* host CPU: optimization and `emit asm` */
  LLVMTargetMachineRef codegen_tm;               /* host CPU at the run's level: machine code */
  char *triple, *cpu, *features;
  int opt_level;
  bool cache;                                    /* cache.c's, unless --no-cache */
  char compiler[160];                            /* with it: name_compiler's part of every key */
  int trains, cached;                            /* modules added; of them, from the cache */
  bool avx512;
  void *libmvec;                                 /* dlopen handle; NULL without it */
  int vector_bits;                               /* see jit_vector_bits */
  bool blas_defined;                             /* cblas_sgemm and cblas_dgemm are symbols */
  char *link_error;                              /* the session's report of the last failed link */
};


/* Consumes err. */
static void jit_error(Diags *d, const char *what, LLVMErrorRef err) {
  char *msg = LLVMGetErrorMessage(err);         /* consumes err */
  diag_error(d, (Span){0}, "%s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
}

/* libm's functions that compiled code calls: codegen's libm() (the float
 * ones end in f), and those LLVM calls in place of its intrinsics or of
 * other calls: exp2 for pow of a power of two (Adam's powers of beta),
 * floor, rint, trunc and fma where the CPU lacks the instruction
 * (codegen's exp, gpumath's bodies in gpu_emulated's kernels). */
static const char *const libm_fns[] = {"exp", "log", "sin", "cos", "tan", "tanh", "atan", "log1p", "expm1", "pow",
                                       "exp2", "floor", "rint", "trunc", "fma"};

/* What LLVM turns copying and filling loops into. */
static const char *const memory_fns[] = {"memset", "memcpy", "memmove"};

static bool is_libm(const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < sizeof libm_fns / sizeof *libm_fns; i++) {
    size_t k = strlen(libm_fns[i]);
    if (strncmp(name, libm_fns[i], k) == 0 && (n == k || (n == k + 1 && name[k] == 'f')))
      return true;
  }
  return false;
}

/* A libmvec variant of a libm function, as codegen's vector_variants
 * names them: _ZGV, the ISA (b SSE4, d AVX2, e AVX-512), N, the lanes,
 * a v per argument, _, the scalar name. */
static bool is_libmvec(const char *name) {
  if (strncmp(name, "_ZGV", 4) != 0 || !name[4] || !strchr("bde", name[4]) || name[5] != 'N')
    return false;
  const char *p = name + 6;
  if (!isdigit((unsigned char)*p))
    return false;
  while (isdigit((unsigned char)*p))
    p++;
  if (*p != 'v')
    return false;
  while (*p == 'v')
    p++;
  return *p == '_' && is_libm(p + 1);
}

static bool symbol_allowed(const char *name) {
  for (size_t i = 0; i < sizeof memory_fns / sizeof *memory_fns; i++)
    if (strcmp(name, memory_fns[i]) == 0)
      return true;
#ifdef DLC_TSAN
  /* tsan_passes' instrumentation: TSan's hooks, and the unwinding through
   * which it ends a function's scope when a call throws. */
  if (strncmp(name, "__tsan_", 7) == 0 || strcmp(name, "_Unwind_Resume") == 0 ||
      strcmp(name, "__gcc_personality_v0") == 0)
    return true;
#endif
  return is_libm(name) || is_libmvec(name);
}

/* The filter of the process search. ELF names have no global prefix to
 * strip. */
static int process_symbol_allowed(void *ctx, LLVMOrcSymbolStringPoolEntryRef sym) {
  (void)ctx;
  return symbol_allowed(LLVMOrcSymbolStringPoolEntryStr(sym));
}

/* The generator after the filtered search: every symbol that reaches it
 * (ORC asks about at least one) is one the search did not give, and fails
 * the lookup before LLJIT's own link to the process could resolve it. */
static LLVMErrorRef refuse_symbols(LLVMOrcDefinitionGeneratorRef gen, void *ctx, LLVMOrcLookupStateRef *state,
                                   LLVMOrcLookupKind kind, LLVMOrcJITDylibRef jd,
                                   LLVMOrcJITDylibLookupFlags flags, LLVMOrcCLookupSet symbols, size_t n) {
  (void)gen, (void)ctx, (void)state, (void)kind, (void)jd, (void)flags, (void)n;
  const char *name = LLVMOrcSymbolStringPoolEntryStr(symbols[0].Name);
  char msg[512];
  if (symbol_allowed(name))
    snprintf(msg, sizeof msg, "compiled code calls '%s', which is not in this process", name);
  else
    snprintf(msg, sizeof msg,
             "compiled code calls '%s', which the JIT does not link: only the runtime, libm, libmvec, "
             "OpenBLAS's gemms and the memory functions", name);
  return LLVMCreateStringError(msg);
}

/* The session's errors are those of materializing a module: a link that
 * failed, the cause of the lookup's failure. The first one is kept. */
static void keep_link_error(void *ctx, LLVMErrorRef err) {
  Jit *j = ctx;
  char *msg = LLVMGetErrorMessage(err);          /* consumes err */
  if (!j->link_error)
    j->link_error = xstrdup(msg);
  LLVMDisposeErrorMessage(msg);
}

/* Main's generators: the filtered search of the process, then the
 * refusal of everything else. The JITDylib takes both. */
static LLVMErrorRef add_generators(Jit *j, LLVMOrcJITDylibRef jd) {
  LLVMOrcDefinitionGeneratorRef search;
  LLVMErrorRef err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
      &search, LLVMOrcLLJITGetGlobalPrefix(j->lljit), process_symbol_allowed, NULL);
  if (err)
    return err;
  LLVMOrcJITDylibAddGenerator(jd, search);
  LLVMOrcJITDylibAddGenerator(jd, LLVMOrcCreateCustomCAPIDefinitionGenerator(refuse_symbols, NULL, NULL));
  return LLVMErrorSuccess;
}

/* LLVM's process-wide settings, once. The loop vectorizer gives up its
 * vectorized remainder loop: a block is a multiple of any vector width
 * times interleave, so the remainder runs on the last block of a vector
 * only, and the remainder loop's code was up to a fifth of the compile. */
static void configure_llvm(void) {
  const char *argv[] = {"dlc", "-enable-epilogue-vectorization=false"};
  LLVMParseCommandLineOptions(2, argv, "");
}

/* All the cache key takes from the compiler itself, the same for every
 * module: dlc's version and its executable (size and time: a rebuilt dlc,
 * whose passes may have changed while the IR it generates did not, starts
 * afresh), LLVM's version, the optimization level and the build. */
static void name_compiler(Jit *j) {
  char exe[64] = "";
  struct stat st;
  if (stat("/proc/self/exe", &st) == 0)
    snprintf(exe, sizeof exe, "%lld %lld.%09ld", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
  unsigned major, minor, patch;
  LLVMGetVersion(&major, &minor, &patch);
#ifdef DLC_TSAN
  const char *build = "tsan";
#else
  const char *build = "";
#endif
  snprintf(j->compiler, sizeof j->compiler, "dlc %s, %s, LLVM %u.%u.%u, O%d, %s", DLC_VERSION, exe, major,
           minor, patch, j->opt_level, build);
}

Jit *jit_new(int opt_level, bool cache, Diags *d) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, configure_llvm);
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  Jit *j = xcalloc(1, sizeof *j);
  j->opt_level = opt_level;
  j->cache = cache && cache_dir();               /* (DLC_CACHE=0 turns it off too) */
  if (j->cache)
    name_compiler(j);
  j->triple = LLVMGetDefaultTargetTriple();
  char *cpu = j->cpu = LLVMGetHostCPUName(), *features = j->features = LLVMGetHostCPUFeatures();
  j->avx512 = strstr(features, "+avx512f") != NULL;
  /* libmvec's variants: b (SSE4), d (AVX2), e (AVX-512F). */
  j->libmvec = dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (j->libmvec)
    j->vector_bits = j->avx512 ? 512 : strstr(features, "+avx2") ? 256
                     : strstr(features, "+sse4.1") ? 128 : 0;
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(j->triple, &target, &msg)) {
    diag_error(d, (Span){0}, "no LLVM target for %s: %s", j->triple, msg);
    LLVMDisposeMessage(msg);
    jit_free(j);
    return NULL;
  }
  j->tm = LLVMCreateTargetMachine(target, j->triple, cpu, features, LLVMCodeGenLevelAggressive,
                                  LLVMRelocPIC, LLVMCodeModelJITDefault);
  /* Machine code is made here, as an object file the cache can keep; the
   * JIT gets its own copy, the builder consuming the machine it is given. */
  LLVMCodeGenOptLevel level = opt_level == 0 ? LLVMCodeGenLevelNone : LLVMCodeGenLevelAggressive;
  j->codegen_tm = LLVMCreateTargetMachine(target, j->triple, cpu, features, level, LLVMRelocPIC,
                                          LLVMCodeModelJITDefault);
  LLVMTargetMachineRef jit_tm = LLVMCreateTargetMachine(target, j->triple, cpu, features, level,
                                                        LLVMRelocPIC, LLVMCodeModelJITDefault);

  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
      builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm)); /* consumes jit_tm */
  LLVMErrorRef err = LLVMOrcCreateLLJIT(&j->lljit, builder);                 /* consumes builder */
  if (err) {
    jit_error(d, "cannot create the JIT", err);
    jit_free(j);
    return NULL;
  }
  j->tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->lljit), keep_link_error, j);

  LLVMOrcJITDylibRef main_jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  err = add_generators(j, main_jd);
  if (err) {
    jit_error(d, "cannot search the process's symbols", err);
    jit_free(j);
    return NULL;
  }
  LLVMJITSymbolFlags callable = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
  LLVMOrcCSymbolMapPair runtime[] = {
      {LLVMOrcLLJITMangleAndIntern(j->lljit, "dlrt_step"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&dlrt_step, callable}},
      {LLVMOrcLLJITMangleAndIntern(j->lljit, "dlrt_batch"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&dlrt_batch, callable}},
      {LLVMOrcLLJITMangleAndIntern(j->lljit, "dlrt_team_barrier"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&dlrt_team_barrier, callable}},
      {LLVMOrcLLJITMangleAndIntern(j->lljit, "dlrt_interrupt"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&dlrt_interrupt, {LLVMJITSymbolGenericFlagsExported, 0}}},
  };
  err = LLVMOrcJITDylibDefine(main_jd, LLVMOrcAbsoluteSymbols(runtime, sizeof runtime / sizeof *runtime));
  if (err) {
    jit_error(d, "cannot define the runtime's symbols", err);
    jit_free(j);
    return NULL;
  }
  return j;
}

void jit_free(Jit *j) {
  if (!j)
    return;
  if (j->lljit)
    LLVMOrcDisposeLLJIT(j->lljit);
  if (j->tsc)
    LLVMOrcDisposeThreadSafeContext(j->tsc);
  if (j->tm)
    LLVMDisposeTargetMachine(j->tm);
  if (j->codegen_tm)
    LLVMDisposeTargetMachine(j->codegen_tm);
  free(j->link_error);                           /* after the JIT, which may still report */
  LLVMDisposeMessage(j->triple);
  LLVMDisposeMessage(j->cpu);
  LLVMDisposeMessage(j->features);
  if (j->libmvec)
    dlclose(j->libmvec);                         /* after the JIT code that called it is gone */
  free(j);
}

int jit_vector_bits(const Jit *j) { return j->vector_bits; }

LLVMContextRefDl jit_context(Jit *j) { return LLVMOrcThreadSafeContextGetContext(j->tsc); }

/* Verifies and optimizes m in place for the host. */
/* In a ThreadSanitizer build (CMake's DLC_TSAN), every load and store of
 * the compiled code is reported to TSan's runtime, which the process has:
 * a race between training threads is then found where it happens, not
 * only inferred from the output. The pass runs first, before the
 * vectorizer widens accesses past what it instruments. Elsewhere, no
 * passes. */
static const char *tsan_passes(LLVMModuleRef m) {
#ifdef DLC_TSAN
  LLVMContextRef ctx = LLVMGetModuleContext(m);
  unsigned kind = LLVMGetEnumAttributeKindForName("sanitize_thread", 15);
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    if (LLVMCountBasicBlocks(f))
      LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, kind, 0));
  return "tsan-module,function(tsan),";
#else
  (void)m;
  return "";
#endif
}

static bool optimize(Jit *j, LLVMModuleRef m, Diags *d) {
  char *msg = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
    diag_error(d, (Span){0}, "internal error: invalid LLVM IR: %s", msg);
    LLVMDisposeMessage(msg);
    return false;
  }
  LLVMDisposeMessage(msg);
  LLVMSetTarget(m, j->triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(j->tm);
  LLVMSetModuleDataLayout(m, layout);
  LLVMDisposeTargetData(layout);
  /* Where the CPU has AVX-512, LLVM's default for some CPUs is 256-bit
   * vectors; ask for the full width. */
  if (j->avx512)
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
      if (LLVMCountBasicBlocks(f))
        LLVMAddTargetDependentFunctionAttr(f, "prefer-vector-width", "512");
  char pipeline[64];
  snprintf(pipeline, sizeof pipeline, "%sdefault<O%d>", tsan_passes(m), j->opt_level);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  /* The vectorizer already interleaves the loops; unrolling them further
   * costs about a tenth of the compile and gained nothing measurable
   * (bench/README.md). */
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
  LLVMErrorRef err = LLVMRunPasses(m, pipeline, j->tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (err) {
    jit_error(d, "optimization failed", err);
    return false;
  }
  return true;
}

/* OpenBLAS's gemms as symbols, once a module calls them (codegen calls
 * them only where dlrt_blas loaded the library): a program without large
 * matrix products never loads it. */
static bool define_blas(Jit *j, LLVMModuleRef m, Diags *d) {
  const DlrtBlas *blas = dlrt_blas();
  if (j->blas_defined || !blas || (!LLVMGetNamedFunction(m, "cblas_sgemm") && !LLVMGetNamedFunction(m, "cblas_dgemm")))
    return true;
  LLVMJITSymbolFlags callable = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
  LLVMOrcCSymbolMapPair gemms[] = {
      {LLVMOrcLLJITMangleAndIntern(j->lljit, "cblas_sgemm"), {(LLVMOrcExecutorAddress)(uintptr_t)blas->sgemm, callable}},
      {LLVMOrcLLJITMangleAndIntern(j->lljit, "cblas_dgemm"), {(LLVMOrcExecutorAddress)(uintptr_t)blas->dgemm, callable}},
  };
  LLVMErrorRef err = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(j->lljit), LLVMOrcAbsoluteSymbols(gemms, 2));
  if (err) {
    jit_error(d, "cannot define OpenBLAS's symbols", err);
    return false;
  }
  j->blas_defined = true;
  return true;
}

/* The cache key of m as codegen made it: its IR, and all else the machine
 * code depends on (cache.c). */
static void module_key(const Jit *j, LLVMModuleRef m, char key[33]) {
  char *ir = LLVMPrintModuleToString(m);
  const char *parts[] = {j->compiler, j->triple, j->cpu, j->features, ir};
  cache_key(parts, sizeof parts / sizeof *parts, key);
  LLVMDisposeMessage(ir);
}

/* m optimized and made into an object file (m is consumed); NULL with an
 * error. */
static LLVMMemoryBufferRef compile(Jit *j, LLVMModuleRef m, Diags *d, double *ms) {
  double t0 = now_ms();
  bool ok = optimize(j, m, d);
  double t1 = now_ms();
  ms[PHASE_OPTIMIZE] += t1 - t0;
  LLVMMemoryBufferRef obj = NULL;
  char *msg = NULL;
  if (ok && LLVMTargetMachineEmitToMemoryBuffer(j->codegen_tm, m, LLVMObjectFile, &msg, &obj)) {
    diag_error(d, (Span){0}, "cannot compile the training loop: %s", msg);
    LLVMDisposeMessage(msg);
    obj = NULL;
  }
  if (obj) {
    /* Named as its module: ORC names an object's initializers after its
     * buffer (ThreadSanitizer's build has some), and two nameless objects
     * in one JIT would clash. */
    LLVMMemoryBufferRef named = LLVMCreateMemoryBufferWithMemoryRangeCopy(
        LLVMGetBufferStart(obj), LLVMGetBufferSize(obj), LLVMGetModuleIdentifier(m, &(size_t){0}));
    LLVMDisposeMemoryBuffer(obj);
    obj = named;
  }
  LLVMDisposeModule(m);
  ms[PHASE_JIT] += now_ms() - t1;
  return obj;
}

void *jit_add(Jit *j, LLVMModuleRefDl m, const char *fn_name, Diags *d, double *ms, JitCode **code) {
  *code = NULL;
  if (!define_blas(j, m, d)) {
    LLVMDisposeModule(m);
    return NULL;
  }
  double t0 = now_ms();
  char key[33];
  size_t size;
  void *hit = NULL;
  if (j->cache) {
    module_key(j, m, key);
    hit = cache_load(key, &size);
  }
  ms[PHASE_JIT] += now_ms() - t0;
  LLVMMemoryBufferRef obj;
  if (hit) {
    obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(hit, size, fn_name);
    free(hit);
    LLVMDisposeModule(m);
    j->cached++;
  } else if (!(obj = compile(j, m, d, ms))) {
    return NULL;
  } else if (j->cache) {
    cache_store(key, LLVMGetBufferStart(obj), LLVMGetBufferSize(obj));
  }
  j->trains++;
  double t1 = now_ms();
  LLVMOrcJITDylibRef main_jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  LLVMOrcResourceTrackerRef rt = LLVMOrcJITDylibCreateResourceTracker(main_jd);
  LLVMErrorRef err = LLVMOrcLLJITAddObjectFileWithRT(j->lljit, rt, obj);   /* takes obj */
  if (err) {
    jit_error(d, "cannot add the training loop to the JIT", err);
    LLVMOrcReleaseResourceTracker(rt);
    return NULL;
  }
  *code = (JitCode *)rt;
  LLVMOrcExecutorAddress addr = 0;
  free(j->link_error);
  j->link_error = NULL;
  err = LLVMOrcLLJITLookup(j->lljit, &addr, fn_name);   /* the object is linked here */
  ms[PHASE_JIT] += now_ms() - t1;
  if (err && j->link_error) {
    /* The lookup's own message only names the symbols not materialized. */
    LLVMConsumeError(err);
    diag_error(d, (Span){0}, "cannot compile the training loop: %s", j->link_error);
    return NULL;
  }
  if (err) {
    jit_error(d, "cannot compile the training loop", err);
    return NULL;
  }
  return (void *)(uintptr_t)addr;
}

void jit_cache_counts(const Jit *j, int *trains, int *cached) {
  *trains = j->cache ? j->trains : 0;
  *cached = j->cached;
}

void jit_remove(Jit *j, JitCode *code) {
  if (!code)
    return;
  LLVMOrcResourceTrackerRef rt = (LLVMOrcResourceTrackerRef)code;
  LLVMErrorRef err = LLVMOrcResourceTrackerRemove(rt);
  if (err)
    LLVMConsumeError(err);                       /* nothing to do but keep the memory */
  LLVMOrcReleaseResourceTracker(rt);
  (void)j;
}

char *jit_module_text(Jit *j, LLVMModuleRefDl m, bool asm_text, Diags *d) {
  char *r = NULL;
  if (!optimize(j, m, d)) {
    LLVMDisposeModule(m);
    return NULL;
  }
  if (!asm_text) {
    char *s = LLVMPrintModuleToString(m);
    r = xstrdup(s);
    LLVMDisposeMessage(s);
    LLVMDisposeModule(m);
    return r;
  }
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(j->tm, m, LLVMAssemblyFile, &msg, &buf)) {
    diag_error(d, (Span){0}, "cannot emit assembly: %s", msg);
    LLVMDisposeMessage(msg);
  } else {
    size_t n = LLVMGetBufferSize(buf);
    r = xmalloc(n + 1);
    memcpy(r, LLVMGetBufferStart(buf), n);
    r[n] = '\0';
    LLVMDisposeMemoryBuffer(buf);
  }
  LLVMDisposeModule(m);
  return r;
}
