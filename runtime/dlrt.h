/* dlrt.h — the dl runtime: what the compiler and the code it JIT-compiles
 * call. Plain C, no dependency on the compiler: data constructors, CSV
 * loading, the seeded random generator, shortest round-trip number
 * formatting, the training loop's log callback, and the team of threads
 * that runs it.
 *
 * Values cross this boundary as doubles; `f64 == 0` means the program
 * computes in float32, and results are rounded to float32 (and then kept as
 * doubles, which hold every float exactly).
 */
#ifndef DLRT_H
#define DLRT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

/* ---- numbers */

/* Writes the shortest decimal text that reads back (strtof for f32, strtod
 * for f64) to exactly v. Integers below 1e16 print without a fraction
 * ("2000", "-1", "0"); other values use plain notation when the decimal
 * exponent is in [-4, 16), else scientific with a two-digit exponent
 * ("1e-05", "-6.2158363e-09"); "nan", "inf", "-inf". Returns the length. */
int dlrt_format(char *buf, size_t size, double v, int f64);

/* Rounds to the program's precision: (double)(float)v unless f64. */
double dlrt_round(double v, int f64);

/* ---- constructors (out has n elements) */

/* PyTorch's torch.linspace: step = (stop - start) / (n - 1) computed in the
 * precision; the first half is start + i * step, the second half
 * stop - (n - 1 - i) * step, so both ends are exact. n == 1 gives start. */
void dlrt_linspace(double *out, double start, double stop, int64_t n, int f64);

/* The seeded generator: xoshiro256** whose state is filled by splitmix64
 * from the seed. rand: uniform in [0, 1) from the top 53 bits (24 in f32, so
 * that no value rounds up to 1). randn: standard
 * normal by the Box–Muller transform (two uniforms give two normals). */
typedef struct DlrtRng {
  uint64_t s[4];
} DlrtRng;
void dlrt_rng_seed(DlrtRng *r, uint64_t seed);
uint64_t dlrt_rng_next(DlrtRng *r);
double dlrt_rng_uniform(DlrtRng *r);
void dlrt_rand(double *out, int64_t n, uint64_t seed, int f64);
void dlrt_randn(double *out, int64_t n, uint64_t seed, int f64);

/* ---- files */

/* Opens path to read if it is a regular file, and fills *st; else -1
 * with *why saying what it is ("it is a directory", "it is a FIFO, not a
 * regular file") or why it did not open. A FIFO is refused without
 * waiting for a writer, and a device before it is read endlessly. */
int dlrt_open_regular(const char *path, struct stat *st, const char **why);

/* ---- CSV */

/* A CSV file's shape, read (RFC 4180: comma-separated, fields may be
 * quoted with "" for a quote inside; CRLF or LF line ends; blank lines
 * skipped). The first row is a header when any of its fields is not a
 * number. The numbers themselves are read by dlrt_csv_columns, from the
 * file kept open, only for the columns wanted. */
typedef struct DlrtCsv {
  int ncols;
  int64_t nrows;                      /* data rows, header excluded */
  char **header;                      /* [ncols], NULL when there is none */
  int64_t *bad_line;                  /* [ncols]: the line of the column's first cell that is
                                         not a number; 0: none */
  char **bad_cell;                    /* [ncols]: that cell's text, for the message */
  FILE *file;
  int64_t size, mtime;                /* the file's, when read: a change is noticed */
} DlrtCsv;

/* Reads path's shape. On failure returns -1 with a message in err
 * ("cannot open 'f.csv': No such file or directory", "line 7 has 3
 * fields, expected 2"). Only regular files are read; at most 10^8 data
 * rows and 100000 columns. */
int dlrt_csv_read(const char *path, DlrtCsv *csv, char *err, size_t errsize);
/* Finds a column by header name; -1 when absent. */
int dlrt_csv_find(const DlrtCsv *csv, const char *name);
/* 0 when every cell of column col is a number; else -1 with the first
 * that is not in err: "line 12, column 'x': 'abc' is not a number". */
int dlrt_csv_numeric(const DlrtCsv *csv, int col, char *err, size_t errsize);
/* Reads the columns cols[0..n) into out, an nrows x n matrix row by row,
 * rounded to the precision; -1 with a message when a column is not
 * numeric or the file changed since dlrt_csv_read. */
int dlrt_csv_columns(DlrtCsv *csv, const int *cols, int n, double *out, int f64, char *err,
                     size_t errsize);
void dlrt_csv_free(DlrtCsv *csv);

/* ---- OpenBLAS, loaded at run time (dlopen) where the machine has it, so
 * that dlc runs without it (slower matrix products). Row-major gemm:
 * C = alpha A B + beta C, the CBLAS arguments as ints. */

typedef void (*DlrtSgemm)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*DlrtDgemm)(int order, int trans_a, int trans_b, int m, int n, int k, double alpha,
                          const double *a, int lda, const double *b, int ldb, double beta, double *c,
                          int ldc);
typedef struct DlrtBlas {
  DlrtSgemm sgemm;
  DlrtDgemm dgemm;
} DlrtBlas;
enum { DLRT_CBLAS_ROW_MAJOR = 101, DLRT_CBLAS_NO_TRANS = 111 };
/* Products of at least this many multiply-adds go to OpenBLAS when it is
 * there (compiled code and the interpreter): measured, it wins from
 * 16 x 16 x 16 on (bench/README.md). */
enum { DLRT_BLAS_MIN_MACS = 4096 };

/* The library, loaded on first call and set to one thread (dlc's team
 * does the threading); NULL where there is none, or with DLC_NO_BLAS set. */
const DlrtBlas *dlrt_blas(void);

/* ---- training callbacks (called from JIT-compiled code) */

/* Every step's loss, in order, for a plot of the training curve (`dlc run
 * --plot-loss`, the REPL's :loss): an array that grows. Out of memory, it
 * stops growing and says so in `lost` rather than stopping the train. */
typedef struct DlrtCurve {
  double *loss;                                  /* [n], malloc'd */
  int64_t n, cap;
  int64_t first_step;                            /* the step of loss[0] (a resumed train's later) */
  int64_t lost;                                  /* steps not kept */
} DlrtCurve;

typedef struct DlrtLog {
  FILE *out;
  int f64;
  int64_t every;                                 /* log a line every this many steps; 0: never */
  int64_t first_step;                            /* where the train starts (a resumed one later) */
  /* Divergence: over the first DLRT_DIVERGENCE_STEPS steps, the step at
   * which the loss first grew past DLRT_DIVERGENCE_FACTOR times the first
   * step's while staying finite (-1 while it has not), and the two losses. */
  int64_t diverged_step;
  double first_loss, diverged_loss;
  struct DlrtBatches *batches;                   /* minibatch training; NULL: none */
  double epoch_sum;                              /* ... the epoch's losses so far */
  struct DlrtProgress *progress;                 /* the progress line; NULL: none */
  struct DlrtLogFile *file;                      /* --log's file; NULL: none */
  DlrtCurve *curve;                              /* every step's loss goes here too; NULL: nowhere */
} DlrtLog;

/* Minibatches: each epoch visits the n rows of the data in an order (the
 * identity, or shuffled by Fisher-Yates with one generator for the whole
 * train), batch rows at a time; the last batch of an epoch may be smaller.
 * Step t is batch t % nbatches of epoch t / nbatches. */
typedef struct DlrtBatches {
  int64_t n, batch, nbatches;
  int shuffle;
  DlrtRng rng;
  int64_t *order;                                /* [n]: the rows of epoch `epoch` */
  int64_t epoch;                                 /* -1 before the first */
  int ntensors;
  const char **src;                              /* [ntensors]: the whole data */
  void **dst;                                    /* [ntensors]: the batch's buffer (NULL: unused) */
  int64_t *row_bytes;                            /* [ntensors] */
} DlrtBatches;

/* Called by compiled code (thread 0) before step t: copies the rows of
 * step t's batch into the batch buffers (ordering the rows of its epoch
 * first when needed: the orders of the epochs before too, on a resumed
 * train, so that the generator is where it was). */
void dlrt_batch(void *log, int64_t step);

enum { DLRT_DIVERGENCE_STEPS = 10, DLRT_DIVERGENCE_FACTOR = 1000 };

/* Prints the log line "STEP LOSS" for one training step (with
 * minibatches, STEP is the epoch); clears the progress line around it and
 * writes the log file's line. */
void dlrt_log(void *log, int64_t step, double loss);
/* Called by compiled code (thread 0) after each step's loss: the log line
 * when it is due (with minibatches, `EPOCH MEAN` after an epoch's last
 * batch: the mean of its batches' losses), and the watch for a diverging
 * loss. */
void dlrt_step(void *log, int64_t step, double loss);

/* Set (by a SIGINT handler, say) to ask a running train to stop after the
 * step it is computing; compiled code reads it once per step. */
extern volatile int32_t dlrt_interrupt;

/* What compiled training code returns for steps [first, end), on the CPU
 * and the GPU alike (the compiler's train_result is its one decoder):
 * end when every step ran; t when step t's loss or a gradient was NaN or
 * infinite; -1 - t when step t's update would have made a param so (the
 * params stay as they were before it); and this when dlrt_interrupt
 * stopped it after k steps: */
static inline int64_t dlrt_train_interrupted(int64_t end, int64_t k) { return end + 1 + k; }

/* ---- what a train shows as it runs (progress.c)
 *
 * Both are thread 0's, called from dlrt_step and dlrt_log, so neither
 * locks. */

/* Seconds on the monotonic clock (a vDSO read, not a system call). */
double dlrt_seconds(void);

/* The progress line on a terminal: steps done of the total (epochs and
 * batches with minibatches), percent, steps per second, time left and the
 * last logged loss, redrawn in place. dlrt_step reads the clock only every
 * `stride` steps, a stride that keeps the reads about DLRT_PROGRESS_READ
 * seconds apart; the line is drawn once the train has run
 * DLRT_PROGRESS_AFTER seconds, at most every DLRT_PROGRESS_REDRAW. */
#define DLRT_PROGRESS_AFTER 0.5
#define DLRT_PROGRESS_REDRAW 0.1
#define DLRT_PROGRESS_READ 0.02
typedef struct DlrtProgress {
  int fd;                                        /* the terminal */
  int width;                                     /* its columns */
  int64_t first, total;                          /* the train's steps [first, total) */
  int64_t nbatches;                              /* per epoch with minibatches; 0: none */
  int64_t countdown;                             /* steps before the clock is read again */
  double start, drawn_at;                        /* dlrt_seconds of the first step; of the last draw */
  double loss;                                   /* the last logged loss ... */
  int has_loss;                                  /* ... once there is one */
  int shown;                                     /* the line is on the terminal */
} DlrtProgress;

void dlrt_progress_begin(DlrtProgress *p, int fd, int64_t first, int64_t total, int64_t nbatches);
/* dlrt_step's, when the countdown runs out after step `step`. */
void dlrt_progress_tick(DlrtProgress *p, int64_t step);
/* Takes the line off the terminal (a log line is coming, or the train
 * ended). */
void dlrt_progress_clear(DlrtProgress *p);

/* --log FILE: a line per log line, CSV or JSON Lines, flushed as written.
 * The params are written when they have at most DLRT_LOG_MAX_PARAM_VALUES
 * numbers in all, read from their buffers by thread 0 before the step's
 * update: the values the logged loss was computed with. */
enum { DLRT_LOG_MAX_PARAM_VALUES = 16 };
typedef enum { DLRT_LOG_CSV, DLRT_LOG_JSONL } DlrtLogFormat;
typedef struct DlrtLogParam {
  const char *name;
  int rank;
  int64_t dim[2];
  const void *data;                              /* its buffer, in the precision; set per train */
} DlrtLogParam;
typedef struct DlrtLogFile {
  FILE *f;
  DlrtLogFormat format;
  int f64;
  int train;                                     /* the train running, from 1 */
  double start;                                  /* dlrt_seconds when its steps began */
  int nparams;                                   /* written; 0: none */
  DlrtLogParam *params;
  int error;                                     /* errno of the first write that failed; 0: none */
} DlrtLogFile;

/* The format a file name asks for by its extension (.csv, .jsonl); -1:
 * neither. */
int dlrt_log_format(const char *path);
/* Opens path for writing (a FIFO without a reader: ENXIO), emptied or,
 * with append (a resumed run), at its end, and writes the CSV header
 * into an empty file; the params are those (at most
 * DLRT_LOG_MAX_PARAM_VALUES numbers, else none are written), their names
 * kept as given. 0, or -1 with errno set. */
int dlrt_log_open(DlrtLogFile *lf, const char *path, int append, int f64, const DlrtLogParam *params,
                  int nparams);
/* One line: step, and epoch (-1: not a minibatch epoch's line). A write
 * that fails sets lf->error, and the lines after it are not written. */
void dlrt_log_write(DlrtLogFile *lf, int64_t step, int64_t epoch, double loss);
void dlrt_log_close(DlrtLogFile *lf);

/* ---- the team: threads that run one train function together
 *
 * Every thread runs the same compiled function on its own share of each
 * vector, with its own copy of the scalars; threads meet at a barrier
 * wherever partial results must be combined. The threads persist from one
 * run to the next (a train action, or a REPL statement later) and sleep
 * in between. */
typedef struct DlrtTeam DlrtTeam;

/* A team of nthreads (the caller counts as thread 0), or NULL when a
 * thread cannot be created. */
DlrtTeam *dlrt_team_new(int nthreads);
void dlrt_team_free(DlrtTeam *team);
int dlrt_team_size(const DlrtTeam *team);
/* Runs job(arg, k) on thread k for every k, thread 0 being the caller;
 * returns when all have returned. */
void dlrt_team_run(DlrtTeam *team, void (*job)(void *arg, int thread), void *arg);
/* Waits until every thread of the team has called it; what each wrote
 * before is visible to all after. Called from JIT-compiled code. */
void dlrt_team_barrier(DlrtTeam *team);
/* The number of processors this process may run on. */
int dlrt_cpu_count(void);

/* ---- the GPU (cuda.c): CUDA's driver API, loaded at run time
 *
 * Nothing is linked against CUDA: the driver is dlopen'ed (DLC_LIBCUDA when
 * set, else libcuda.so.1) on first use. */

/* Loads the driver and makes device 0's primary context current, once per
 * process. 0; or -1 with a one-line reason in err (no driver, CUDA's stub
 * library, no GPU), the same reason on every later call. */
int dlrt_cuda_init(char *err, size_t errsize);

/* One train on the GPU: a kernel compiled for it (the compiler's gpu.c)
 *
 *   kernel(void **bufs, int64_t first, int64_t last, double *losses,
 *          double *scratch, int64_t *barrier, int64_t *result)
 *
 * runs steps [first, last) and writes each step's loss to losses[t - first]
 * and to *result what compiled training code returns (above) for them. */
typedef struct DlrtGpuTrain {
  const char *ptx, *kernel;                      /* the module (NUL-terminated) and the kernel's name */
  int block;                                     /* threads per block */
  int max_grid;                                  /* most blocks the kernel can take */
  int64_t elements;                              /* the longest vector: no more threads than it needs */
  int nbufs;
  void **bufs;                                   /* host copies, in the program's precision */
  const size_t *bytes;                           /* of each */
  const char *copy_back;                         /* per buffer: copied back after (params, state) */
  int64_t scratch_doubles;
  int64_t first_step, steps;
  DlrtLog *log;                                  /* dlrt_step is called for every step's loss */
} DlrtGpuTrain;

/* Steps per launch, at most: between launches the losses come back and
 * dlrt_interrupt is looked at. */
enum { DLRT_GPU_CHUNK = 1024 };

/* Copies the buffers to the device once, launches the kernel for chunks
 * of steps until all are done or one stops, and copies the losses and the
 * buffers marked copy_back to the host. *result: what compiled training
 * code returns for steps [first_step, steps). 0, or -1 with a one-line
 * reason in err. */
int dlrt_gpu_train(const DlrtGpuTrain *t, int64_t *result, char *err, size_t errsize);

#endif
