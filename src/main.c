/* main.c — the driver: command line, then the pipeline in order.
 *
 *   read -> parse -> check (sema) -> run | check derivs | emit
 *
 * Phases report into one Diags; only this file prints them and decides the
 * exit status: 0 success, 1 an error in the program (or its training),
 * 2 a usage error.
 */
#include "dlc.h"
#include "commit.h" /* DLC_COMMIT, written at build time (cmake/commit.cmake) */

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: dlc run FILE.dl [--f64] [-O0..-O3] [--time] [--target cpu|gpu] [--gpu-arch SM]\n"
    "               [--threads N] [--save FILE.json [--save-every K]] [--resume FILE.json]\n"
    "               [--nan-check] [--log FILE.csv|FILE.jsonl] [--plot-loss FILE.png|.svg|.pdf]\n"
    "               [--no-progress] [--no-cache]\n"
    "       dlc check FILE.dl [--f64]\n"
    "       dlc emit WHAT FILE.dl [--f64] [-O0..-O3] [--gpu-arch SM]\n"
    "       dlc repl [--f64] [-O0..-O3] [--threads N] [--no-progress] [--no-cache]\n"
    "       dlc cache info|clear\n"
    "       dlc --help | --version\n"
    "\n"
    "  run    compile the model, train it, print what it prints\n"
    "  check  parse and check the model, and test every hand-written deriv\n"
    "         against the symbolic derivative of its fn's body\n"
    "  emit   show a stage of the compiler; WHAT is one of\n"
    "         tokens  the token stream\n"
    "         ast     the syntax tree\n"
    "         ir      the lowered DAG of one training step (loss and gradients)\n"
    "         grad    each param's simplified gradient formula\n"
    "         llvm    the optimized LLVM IR of the training loop\n"
    "         asm     its machine code for this CPU\n"
    "         ptx     the training kernel for the GPU (NVIDIA PTX; any machine)\n"
    "  repl   an interactive session (also `dlc` alone on a terminal);\n"
    "         :help there lists its commands\n"
    "  cache  the compiled training code kept between runs (info: where,\n"
    "         how much; clear: remove it all)\n"
    "\n"
    "  FILE may be - for standard input.\n"
    "  --f64      compute in double precision (default: float32)\n"
    "  -O0..-O3   LLVM optimization level (default: -O2)\n"
    "  --time     print the time of each phase to stderr\n"
    "  --target   cpu (the default), or gpu: train on an NVIDIA GPU (CUDA's\n"
    "             driver, loaded at run time)\n"
    "  --gpu-arch the GPU architecture to compile for (default sm_90): one of\n"
    "             " GPU_ARCHS "\n"
    "  --threads  training threads (default: one per core for large data,\n"
    "             one for small; the results are the same for any count)\n"
    "  --save     write the params and the optimizer state to a JSON file when\n"
    "             each train ends or stops (a NaN, Ctrl-C), and with\n"
    "  --save-every  every K steps too (each write atomic)\n"
    "  --resume   go on from a file --save wrote: the same trajectory as a run\n"
    "             that was never stopped\n"
    "  --nan-check  when training stops on a NaN, say which operation made it\n"
    "  --log      write every log line to a file as training goes, CSV (.csv)\n"
    "             or JSON Lines (.jsonl): train, step, epoch, loss, seconds,\n"
    "             and the params' values when they are 16 numbers or fewer\n"
    "  --plot-loss  draw every step's loss into a PNG, SVG or PDF file (by its\n"
    "             extension): one curve per train, a log scale when it spans\n"
    "             decades\n"
    "  --no-progress  no progress line (otherwise shown on stderr, when it is\n"
    "             a terminal, for a train longer than half a second)\n"
    "  --no-cache compile every train afresh, and keep nothing (also DLC_CACHE=0)\n";


typedef enum { CMD_RUN, CMD_CHECK, CMD_EMIT, CMD_REPL } Command;

static const char *const emit_kinds[] = {"tokens", "ast", "ir", "grad", "llvm", "asm", "ptx"};

static int usage_error(const char *fmt, const char *arg) {
  fputs("dlc: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n(run 'dlc --help' for usage)\n", stderr);
  return 2;
}

/* SIGINT or SIGTERM during `dlc run`: the train running stops after its
 * step (dlrt_interrupt), nothing after it runs, and the exit status says
 * which signal it was (130, 143). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
  stop_signal = sig;
  dlrt_interrupt = 1;
}

/* The signals that stop a run. */
static sigset_t stop_signals(void) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  return sigs;
}

static void catch_stop_signals(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  /* Past a file size limit (ulimit -f) a write then fails with EFBIG,
   * which a save reports, removing its temporary file, instead of the
   * signal killing the process. */
  signal(SIGXFSZ, SIG_IGN);
}

static bool known_gpu_arch(const char *arch) {
  static const char *const archs[] = {"sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a"};
  for (size_t k = 0; k < sizeof archs / sizeof *archs; k++)
    if (strcmp(arch, archs[k]) == 0)
      return true;
  return false;
}

/* --plot-loss, when the run has ended (an error or Ctrl-C included: the
 * steps done so far). */
static bool write_loss_plot(const Runner *r, Diags *d, const char *path) {
  char why[512];
  if (!plot_loss_write(path, r->curves, r->ncurves, why, sizeof why)) {
    diag_error(d, (Span){0}, "cannot write the loss plot '%s': %s", path, why);
    return false;
  }
  for (int k = 0; k < r->ncurves; k++)
    if (r->curves[k].lost)
      diag_add(d, DIAG_WARNING, (Span){0},
               "the loss plot lacks the last %lld steps of train %d: no memory to keep them",
               (long long)r->curves[k].lost, k + 1);
  return true;
}

/* Runs the pipeline on one file. */
static int compile_and_run(Command cmd, const char *what, const char *path, Options opts) {
  /* --target gpu without a GPU: one line, before anything else runs. */
  char why[512];
  if (cmd == CMD_RUN && opts.gpu_arch && dlrt_cuda_init(why, sizeof why) != 0) {
    fprintf(stderr, "dlc: error: %s\n", why);
    return 1;
  }
  Arena *arena = arena_new();
  Diags diags = {0};
  Program *prog = NULL;
  Runner *runner = runner_new();
  bool ok = false;
  double t0 = now_ms(), parse_ms = 0;
  const Source *src = source_read_file(arena, path, &diags);
  if (src && cmd == CMD_EMIT && strcmp(what, "tokens") == 0) {
    lex_dump(src, arena, &diags, stdout);
    ok = diags.nerrors == 0;
    goto done;
  }
  Stmt *stmts = src ? parse_source(src, arena, &diags) : NULL;
  parse_ms = now_ms() - t0;
  if (!src || diags.nerrors)
    goto done;
  if (cmd == CMD_EMIT && strcmp(what, "ast") == 0) {
    ast_dump(stmts, stdout);
    ok = true;
    goto done;
  }
  prog = program_new(arena, &diags, opts);
  double t1 = now_ms();
  bool checked = sema_program(prog, stmts);
  runner->ms[PHASE_CHECK] = now_ms() - t1;
  if (!checked)
    goto done;
  diag_print(&diags, stderr);                    /* the checker's warnings, before any output */
  switch (cmd) {
  case CMD_RUN: {
    catch_stop_signals();
    /* Every refusal comes before anything runs: a refused resume runs
     * nothing and overwrites nothing, and a training is not begun that
     * could save nothing. */
    bool resumable = !opts.resume_path || checkpoint_load(runner, prog, opts.resume_path);
    bool savable = !opts.save_path || checkpoint_check_target(prog, opts.save_path);
    const char *unplottable = opts.plot_loss_path ? writable_target(opts.plot_loss_path) : NULL;
    if (unplottable)
      diag_error(&diags, (Span){0}, "cannot write the loss plot '%s': %s", opts.plot_loss_path, unplottable);
    /* The log is opened (emptied) only once nothing else refuses. */
    if (!resumable || !savable || unplottable || (opts.log_path && !exec_open_log(runner, prog, opts.log_path)))
      break;
    runner->curves_kept = opts.plot_loss_path ? CURVES_ALL : CURVES_NONE;
    ok = exec_program(runner, prog, stdout);
    if (opts.plot_loss_path)
      ok &= write_loss_plot(runner, &diags, opts.plot_loss_path);
    break;
  }
  case CMD_CHECK: ok = check_derivs(prog, stdout); break;
  case CMD_EMIT: ok = exec_emit(runner, prog, what, stdout); break;
  case CMD_REPL: break;                          /* repl_main's */
  }
done:
  fflush(stdout);
  diag_print(&diags, stderr);
  runner->ms[PHASE_PARSE] = parse_ms;
  if (opts.time && prog)
    exec_print_times(runner, now_ms() - t0, stderr);
  runner_free(runner);
  if (prog)
    program_free(prog);
  diag_free(&diags);
  arena_free(arena);
  if (stop_signal) {
    fprintf(stderr, "dlc: stopped by %s\n", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
    return 128 + stop_signal;
  }
  return ok ? 0 : 1;
}

/* The compiler's passes recurse over expressions up to MAX_EXPR_DEPTH
 * deep; they run on a thread whose stack has room for that (the memory is
 * only reserved, not used, until needed). */
enum { COMPILER_STACK = 512 << 20 };

typedef struct Job {
  Command cmd;
  const char *what, *path;
  Options opts;
  int status;
} Job;

static void *run_job(void *arg) {
  Job *job = arg;
  /* Signals come to this thread, where they can interrupt a read. */
  sigset_t sigs = stop_signals();
  pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
  job->status = job->cmd == CMD_REPL ? repl_main(job->opts)
                                     : compile_and_run(job->cmd, job->what, job->path, job->opts);
  return NULL;
}

static int run_on_big_stack(Job *job) {
  pthread_attr_t attr;
  pthread_t thread;
  pthread_attr_init(&attr);
  sigset_t sigs = stop_signals();
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);       /* the job's thread unblocks them */
  if (pthread_attr_setstacksize(&attr, COMPILER_STACK) != 0 ||
      pthread_create(&thread, &attr, run_job, job) != 0) {
    run_job(job);                                /* no thread: the main stack will do */
  } else {
    pthread_join(thread, NULL);
  }
  pthread_attr_destroy(&attr);
  return job->status;
}

int main(int argc, char **argv) {
  if (argc < 2 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
    Job job = {CMD_REPL, NULL, NULL, {.opt_level = 2}, 0};
    return run_on_big_stack(&job);
  }
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("dlc %s (commit %s)\n", DLC_VERSION, DLC_COMMIT);
    return 0;
  }
  if (strcmp(argv[1], "cache") == 0) {
    if (argc != 3 || (strcmp(argv[2], "info") != 0 && strcmp(argv[2], "clear") != 0))
      return usage_error("%s", "dlc cache takes info or clear");
    return cache_command(argv[2], stdout) ? 0 : 1;
  }
  Command cmd;
  if (strcmp(argv[1], "run") == 0)
    cmd = CMD_RUN;
  else if (strcmp(argv[1], "check") == 0)
    cmd = CMD_CHECK;
  else if (strcmp(argv[1], "emit") == 0)
    cmd = CMD_EMIT;
  else if (strcmp(argv[1], "repl") == 0)
    cmd = CMD_REPL;
  else
    return usage_error("unknown command '%s'", argv[1]);

  Options opts = {.opt_level = 2};
  const char *what = NULL, *path = NULL;
  bool gpu = false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--f64") == 0)
      opts.f64 = true;
    else if (strcmp(a, "--time") == 0)
      opts.time = true;
    else if (strcmp(a, "--nan-check") == 0)
      opts.nan_check = true;
    else if (strcmp(a, "--no-cache") == 0)
      opts.no_cache = true;
    else if (strcmp(a, "--no-progress") == 0)
      opts.no_progress = true;
    else if (strcmp(a, "--log") == 0) {
      if (++i == argc || !argv[i][0])
        return usage_error("%s", "--log needs a file name: FILE.csv or FILE.jsonl");
      if (dlrt_log_format(argv[i]) < 0)
        return usage_error("--log writes CSV (FILE.csv) or JSON Lines (FILE.jsonl), not '%s'", argv[i]);
      opts.log_path = argv[i];
    }
    else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3])
      opts.opt_level = a[2] - '0';
    else if (strcmp(a, "--target") == 0) {
      if (++i == argc)
        return usage_error("%s", "--target needs a value: cpu or gpu");
      if (strcmp(argv[i], "cpu") != 0 && strcmp(argv[i], "gpu") != 0)
        return usage_error("--target is cpu or gpu, not '%s'", argv[i]);
      gpu = strcmp(argv[i], "gpu") == 0;
    } else if (strcmp(a, "--gpu-arch") == 0) {
      if (++i == argc || !known_gpu_arch(argv[i]))
        return usage_error("--gpu-arch needs one of %s", GPU_ARCHS);
      opts.gpu_arch = argv[i];
    } else if (strcmp(a, "--threads") == 0) {
      char *end;
      long n = ++i == argc ? 0 : strtol(argv[i], &end, 10);
      if (n < 1 || n > MAX_THREADS || *end) {
        char most[16];
        snprintf(most, sizeof most, "%d", MAX_THREADS);
        return usage_error("--threads needs a whole number from 1 to %s", most);
      }
      opts.threads = (int)n;
    } else if (strcmp(a, "--save") == 0 || strcmp(a, "--resume") == 0) {
      if (++i == argc || !argv[i][0])
        return usage_error("%s needs a file name", a);
      *(a[2] == 's' ? &opts.save_path : &opts.resume_path) = argv[i];
    } else if (strcmp(a, "--plot-loss") == 0) {
      if (++i == argc || plot_format(argv[i]) == PLOT_NONE)
        return usage_error("%s", "--plot-loss needs a file name ending in .png, .svg or .pdf");
      opts.plot_loss_path = argv[i];
    } else if (strcmp(a, "--save-every") == 0) {
      char *end;
      long long k = ++i == argc ? 0 : strtoll(argv[i], &end, 10);
      if (k < 1 || *end)
        return usage_error("%s needs a whole number of steps, at least 1", a);
      opts.save_every = k;
    } else if (a[0] == '-' && a[1])
      return usage_error("unknown option '%s'", a);
    else if (cmd == CMD_REPL)
      return usage_error("repl takes no file: %s (use :load FILE there)", a);
    else if (cmd == CMD_EMIT && !what)
      what = a;
    else if (!path)
      path = a;
    else
      return usage_error("unexpected argument '%s'", a);
  }
  if (cmd == CMD_EMIT) {
    bool known = false;
    for (size_t k = 0; what && k < sizeof emit_kinds / sizeof *emit_kinds; k++)
      known |= strcmp(what, emit_kinds[k]) == 0;
    if (!what)
      return usage_error("%s", "emit needs WHAT: tokens, ast, ir, grad, llvm, asm or ptx");
    if (!known)
      return usage_error("emit %s: WHAT is one of tokens, ast, ir, grad, llvm, asm, ptx", what);
  }
  if (gpu && cmd != CMD_RUN)
    return usage_error("%s", "--target gpu goes with dlc run (dlc emit ptx shows the kernel)");
  if (gpu && (opts.save_path || opts.resume_path || opts.threads || opts.nan_check))
    return usage_error("%s", "--save, --resume, --threads and --nan-check are not supported with "
                             "--target gpu yet");
  if (opts.gpu_arch && !gpu && !(cmd == CMD_EMIT && strcmp(what, "ptx") == 0))
    return usage_error("%s", "--gpu-arch goes with --target gpu or emit ptx");
  if (gpu && !opts.gpu_arch)
    opts.gpu_arch = GPU_DEFAULT_ARCH;
  if (opts.save_every && !opts.save_path)
    return usage_error("%s", "--save-every needs --save FILE.json");
  if (opts.plot_loss_path && cmd != CMD_RUN)
    return usage_error("%s", "--plot-loss goes with dlc run");
  if ((opts.save_path || opts.resume_path) && cmd != CMD_RUN)
    return usage_error("%s", "--save and --resume go with dlc run");
  if (opts.log_path && cmd != CMD_RUN)
    return usage_error("%s", "--log goes with dlc run");
  if (opts.no_progress && cmd != CMD_RUN && cmd != CMD_REPL)
    return usage_error("%s", "--no-progress goes with dlc run and dlc repl");
  if (!path && cmd != CMD_REPL)
    return usage_error("%s", "no input file (use - for standard input)");
  Job job = {cmd, what, path, opts, 0};
  return run_on_big_stack(&job);
}
