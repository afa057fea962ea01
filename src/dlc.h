/* dlc.h — the compiler's one internal header.
 *
 * Read top to bottom it is the pipeline: each banner names the file that
 * implements that part, in the order they run. The driver (main.c, or
 * repl.c) calls the front half; exec.c runs the statements, and compiles
 * each train through train.c, which calls the back half's passes in order:
 *
 *   source text -> lexer.l/parser.y (AST) -> sema.c (checked IR program)
 *   (program.c the Program it fills; builtins.c its table of built-in
 *   names; data.c, matrix.c, fn.c the calls it elaborates by kind)
 *   -> exec.c, for each train -> train.c:
 *        diff.c (gradients) -> simplify.c -> schedule.c (lowered; fused loops)
 *        -> codegen.c (LLVM IR) -> jit.c (ORC; cache.c keeps its objects)
 *        or, with --target gpu, -> gpu.c (PTX; gpumath.c its own libm)
 *        -> runtime/cuda.c (the device)
 *      and for each plot (and --plot-loss) -> plot.c (cairo)
 *
 * Conventions: every phase reports problems by appending to a Diags and
 * returning; nothing but main.c decides the exit status. AST, IR and
 * strings live in arenas owned by the caller. A Program is what sema made;
 * what running it takes (the JIT, threads, a resume, timings) is a
 * Runner's, made by main.c or the REPL.
 */
#ifndef DLC_H
#define DLC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../runtime/dlrt.h"

#define DLC_VERSION "0.1.0"

typedef struct Arena Arena;
typedef struct Source Source;
typedef struct Diags Diags;
typedef struct Expr Expr;
typedef struct Stmt Stmt;
typedef struct Node Node;
typedef struct Graph Graph;
typedef struct Program Program;
typedef struct Fn Fn;

/* ------------------------------------------------------------------ util.c */

/* malloc, calloc, realloc and strdup that never return NULL: out of memory
 * ends the process with a message. Every allocation goes through them but
 * those whose size a user's data decides (a train's buffers, a value),
 * which fail into an error at the statement instead. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size);        /* zeroed, 16-aligned */
/* A growable array in an arena: a new block of new_size bytes (zeroed
 * past old_size) holding old's old_size bytes; old stays until the arena
 * is freed. */
void *arena_grow(Arena *a, const void *old, size_t old_size, size_t new_size);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A growable byte buffer for building text (printers, messages). */
typedef struct Buf {
  char *data;                                    /* NUL-terminated, malloc'd */
  size_t len, cap;
} Buf;
void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_puts(Buf *b, const char *s);
void buf_free(Buf *b);

/* Edit distance, for "did you mean" suggestions. */
int edit_distance(const char *a, const char *b);

/* Milliseconds on a monotonic clock, for `--time`. */
double now_ms(void);

/* Files written whole or not at all (checkpoints, plots) are written to a
 * temporary file in the same directory, then renamed over the target. */
/* That file, made (mode 0600) and open: its descriptor, and its malloc'd
 * name in *tmp; -1 with errno when it cannot be made. */
int temp_beside(const char *path, char **tmp);
/* NULL when a file can be written at path that way, else why not. */
const char *writable_target(const char *path);

/* -------------------------------------------------------------- diag.c */

struct Source {
  const char *name;                              /* file name as given, or "<stdin>" */
  const char *text;                              /* whole text, NUL-terminated */
  size_t len;
  int *line_start;                               /* byte offset of each line */
  int nlines;
};

/* A byte range [begin, end) in one source. src == NULL: no location. */
typedef struct Span {
  const Source *src;
  int begin, end;
} Span;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
  DiagLevel level;
  Span span;
  char *msg;                                     /* malloc'd */
} Diag;

/* Errors past this many are counted, not kept: a run shows the first ones
 * and says how many more there were. */
enum { MAX_ERRORS = 20 };

struct Diags {
  Diag *items;
  int n, cap;
  int nerrors;                                   /* kept or not */
  int printed;                                   /* items already printed */
  int dropped, dropped_said;                     /* errors past MAX_ERRORS; of them reported */
  bool dropping;                                 /* the last error was dropped: so are its notes */
};

Source *source_new(Arena *a, const char *name, const char *text, size_t len);
Source *source_read_file(Arena *a, const char *path, Diags *d); /* "-" = stdin */
void source_line_col(const Source *s, int offset, int *line, int *col);
Span span_join(Span a, Span b);

void diag_add(Diags *d, DiagLevel level, Span span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define diag_error(d, span, ...) diag_add((d), DIAG_ERROR, (span), __VA_ARGS__)
/* Prints the diagnostics not printed yet, clang style (in colour on a
 * terminal, unless NO_COLOR is set), then marks them. */
void diag_print(Diags *d, FILE *out);
/* out is a terminal that takes escape codes (not TERM=dumb): colours go
 * there unless NO_COLOR is set, and the progress line. */
bool diag_is_terminal(FILE *out);
void diag_free(Diags *d);

/* ----------------------------------------------------------------- ops.def */

typedef enum {
#define X(name, spelling, arity, kind, prec, rule) OP_##name,
#include "ops.def"
#undef X
  OP_COUNT
} Op;

typedef enum { K_LEAF, K_INFIX, K_PREFIX, K_CALL, K_REDUCE, K_AXIS } OpKind;

typedef struct OpInfo {
  const char *name;                              /* "ADD" */
  const char *spelling;                          /* "+" */
  int arity;
  OpKind kind;
  int prec;
} OpInfo;
extern const OpInfo op_info[OP_COUNT];
/* Computed element by element, with broadcasting (ops.def's order). */
static inline bool op_elementwise(Op op) { return op >= OP_ADD && op <= OP_MAX; }

/* ------------------------------------------------- ast.c (lexer.l, parser.y) */

typedef enum {
  EX_NUM,                                        /* num */
  EX_NAME,                                       /* name (also pi, inf, loss, value) */
  EX_STR,                                        /* parts */
  EX_UNARY,                                      /* op (OP_NEG), lhs */
  EX_BINARY,                                     /* op, lhs, rhs */
  EX_CALL,                                       /* name, name_span, args */
  EX_INDEX,                                      /* lhs[args]: each an index or an EX_SLICE */
  EX_SLICE,                                      /* lhs:rhs, either NULL when left out */
  EX_LIST,                                       /* [args] */
} ExprKind;

/* A call argument, positional (name == NULL) or named (`name = value`). */
typedef struct Arg {
  const char *name;
  Span name_span;
  Expr *value;
  struct Arg *next;
} Arg;

/* A piece of a string literal: text, or an interpolated `{expr}`. */
typedef struct StrPart {
  const char *text;                              /* NULL for an interpolation */
  Expr *expr;                                    /* NULL for text */
  struct StrPart *next;
} StrPart;

/* Deeper expressions are refused by the parser: every pass that walks an
 * expression recursively stays within the compiler's stack (main.c). */
#define MAX_EXPR_DEPTH 10000

struct Expr {
  ExprKind kind;
  Span span;                                     /* the whole expression */
  int depth;                                     /* nesting: 1 for a leaf */
  double num;                                    /* EX_NUM */
  const char *name;                              /* EX_NAME; EX_CALL: the callee */
  Span name_span;                                /* EX_CALL: the callee's name */
  Op op;                                         /* EX_UNARY, EX_BINARY */
  Expr *lhs, *rhs;                               /* EX_UNARY (lhs), EX_BINARY, EX_INDEX, EX_SLICE */
  Arg *args;                                     /* EX_CALL, EX_INDEX, EX_LIST */
  StrPart *parts;                                /* EX_STR */
};

/* A formal argument of a fn. */
typedef struct Formal {
  const char *name;
  Span span;
  struct Formal *next;
} Formal;

/* `deriv ARG = EXPR` under a fn. */
typedef struct Deriv {
  const char *arg;
  Span arg_span;
  Expr *value;
  Span span;                                     /* the whole clause */
  struct Deriv *next;
} Deriv;

typedef enum {
  ST_PARAM,                                      /* param name = value */
  ST_DEF,                                        /* name = value */
  ST_FN,                                         /* fn name(formals) = value; derivs */
  ST_LOSS,                                       /* loss = value */
  ST_EXPR,                                       /* value (train(...) and print(...) too) */
} StmtKind;

struct Stmt {
  StmtKind kind;
  Span span;
  const char *name;                              /* ST_PARAM, ST_DEF, ST_FN */
  Span name_span;
  Expr *value;                                   /* ST_FN: the body */
  Formal *formals;                               /* ST_FN */
  Deriv *derivs;                                 /* ST_FN */
  Stmt *next;
};

Expr *ast_num(Arena *a, Span s, double v);
Expr *ast_name(Arena *a, Span s, const char *name);
Expr *ast_str(Arena *a, Span s, StrPart *parts);
Expr *ast_unary(Arena *a, Span s, Op op, Expr *x);
Expr *ast_binary(Arena *a, Span s, Op op, Expr *l, Expr *r);
Expr *ast_call(Arena *a, Span s, const char *name, Span name_span, Arg *args);
Expr *ast_index(Arena *a, Span s, Expr *base, Arg *indices);
Expr *ast_slice(Arena *a, Span s, Expr *lo, Expr *hi);
Expr *ast_list(Arena *a, Span s, Arg *items);
Stmt *ast_stmt(Arena *a, StmtKind kind, Span s);
void ast_dump(const Stmt *prog, FILE *out);      /* `dlc emit ast` */

/* ------------------------------------------------------ lexer.l, parser.y */

/* Parses a whole source into a statement list. Syntax errors go to d; the
 * parser recovers at the next statement, so several are reported. */
Stmt *parse_source(const Source *src, Arena *a, Diags *d);
/* `dlc emit tokens`: one token a line, `LINE:COL KIND TEXT`. */
void lex_dump(const Source *src, Arena *a, Diags *d, FILE *out);

/* -------------------------------------------------------------------- ir.c */

/* Shapes are general from the start: rank 0 (scalar), 1 (vector), 2 (matrix,
 * dim[0] rows by dim[1] columns). v0 of the language makes ranks 0 and 1. */
typedef struct Shape {
  int rank;
  int64_t dim[2];
} Shape;

static inline Shape shape_scalar(void) { return (Shape){0, {1, 1}}; }
static inline Shape shape_vector(int64_t n) { return (Shape){1, {n, 1}}; }
static inline Shape shape_matrix(int64_t r, int64_t c) { return (Shape){2, {r, c}}; }
/* A vector is a row: [n] has 1 row of n columns (NumPy's broadcasting). */
static inline int64_t shape_rows(Shape s) { return s.rank == 2 ? s.dim[0] : 1; }
static inline int64_t shape_cols(Shape s) { return s.rank == 2 ? s.dim[1] : s.rank == 1 ? s.dim[0] : 1; }
int64_t shape_numel(Shape s);
bool shape_eq(Shape a, Shape b);
/* NumPy broadcasting of two shapes; false when they do not broadcast. */
bool shape_broadcast(Shape a, Shape b, Shape *out);
const char *shape_str(Shape s, char buf[64]);    /* "scalar", "vector[2000]" */

enum {
  NODE_HAS_PARAM = 1 << 0,                       /* depends on a param */
  NODE_HAS_VAR = 1 << 1,                         /* depends on a free symbol */
  NODE_HAS_BATCH = 1 << 2,                       /* depends on a minibatch (changes every step) */
};

/* A node of the expression DAG. Nodes are immutable and hash-consed: two
 * nodes with the same op, payload and args are one node, so common
 * subexpressions are shared by construction. `id` grows with creation, and
 * args are always created first: sorting by id is a topological order. */
struct Node {
  Op op;
  Shape shape;
  int nargs;
  Node **args;
  double num;                                    /* CONST: the value */
  int slot;                                      /* PARAM, DATA: index in the Program; K_AXIS: the axis */
  int64_t pos[2];                                /* SLICE, PAD: row and column of the block */
  const char *name;                              /* VAR: the symbol; PARAM/DATA: for printing */
  const Fn *fn;                                  /* FNCALL: the function */
  unsigned id;
  unsigned flags;                                /* NODE_* */
  unsigned hash;
  Span span;                                     /* where it was first written */
  Node *bucket_next;
};

struct Graph {
  Arena *arena;
  Node **buckets;
  unsigned nbuckets, nnodes;
  unsigned max_nodes;                            /* MAX_NODES (less in tests) */
};

/* The most nodes a graph holds (about 200 bytes each: 800 MB). A pass
 * that would make more stops early (its result is then not the one asked
 * for) and its caller reports an error where the growth came from: each
 * diff of a diff can be several times the size of the last. */
#define MAX_NODES 4000000
static inline bool graph_full(const Graph *g) { return g->nnodes >= g->max_nodes; }

Graph *graph_new(Arena *a);
void graph_free(Graph *g);                       /* the hash table; nodes die with the arena */
/* The constructors. Shapes must already be checked (sema does): they
 * compute the result shape and never fail. */
Node *ir_const(Graph *g, double v);
Node *ir_leaf(Graph *g, Op op, Shape shape, int slot, const char *name);
/* The data leaf of a minibatch: rows of data slot `slot` chosen each step. */
Node *ir_batch_leaf(Graph *g, Shape shape, int slot);
Node *ir_var(Graph *g, const char *name, Shape shape, const void *owner, int index);
Node *ir_op(Graph *g, Op op, Node *const *args, int nargs);
Node *ir_unary(Graph *g, Op op, Node *x);
Node *ir_binary(Graph *g, Op op, Node *a, Node *b);
Node *ir_where(Graph *g, Node *c, Node *a, Node *b);
Node *ir_broadcast(Graph *g, Node *x, Shape to);
/* x as another shape of as many elements (x itself when it has it). */
Node *ir_reshape(Graph *g, Node *x, Shape to);
/* A reduction of one axis (RSUM, RMAX, RMIN, ARGMAX) of a matrix: axis 0
 * gives a row [1, c], axis 1 a column [r, 1]. */
Node *ir_axis(Graph *g, Op op, Node *x, int axis);
/* The block of x of shape `shape` at (row, col); and PAD, its adjoint. */
Node *ir_slice(Graph *g, Node *x, int64_t row, int64_t col, Shape shape);
Node *ir_pad(Graph *g, Node *x, int64_t row, int64_t col, Shape shape);
Node *ir_fncall(Graph *g, const Fn *fn, Node *const *actuals, Node *body,
                Node *const *partials, int n);
bool ir_is_const(const Node *n, double v);
/* FNCALL accessors */
static inline int ir_fncall_arity(const Node *n) { return (n->nargs - 1) / 2; }
static inline Node *ir_fncall_body(const Node *n) { return n->args[ir_fncall_arity(n)]; }

/* A hash map keyed by node, for passes that map nodes to values. */
typedef struct NodeMap {
  const Node **keys;
  void **vals;
  unsigned cap, n;
  Arena *arena;                                  /* NULL: malloc'd; else grown in it, freed with it */
} NodeMap;
void *nodemap_get(const NodeMap *m, const Node *key);
void nodemap_put(NodeMap *m, const Node *key, void *val);
void nodemap_free(NodeMap *m);

/* Sets n's source location if it has none yet (hash-consing keeps the first
 * place that wrote an expression). Returns n. */
Node *ir_at(Node *n, Span span);

/* The node like n but with these arguments (shape recomputed). */
Node *ir_with_args(Graph *g, const Node *n, Node *const *args);
/* The first node below root whose arguments' shapes do not go together
 * (after an ir_subst that changed shapes); NULL when all do. */
const Node *ir_shape_mismatch(Node *root);
/* Rebuilds `n` with the nodes in `from` replaced by those in `to`. */
Node *ir_subst(Graph *g, Node *n, Node *const *from, Node *const *to, int count);
/* How many nodes root reaches. */
int ir_count(Node *root);
/* The data minibatches split: the loss's data leaves with the most rows
 * (into full[], ir_count(loss) at most). Returns those rows. */
int64_t ir_batched_data(Node *loss, Node **full, int *nfull);
/* The loss over a minibatch: each full[i] replaced by leaves[i], of
 * `rows` rows, and every broadcast to the data's rows made one to `rows`.
 * ir_shape_mismatch then says whether it can be split. */
Node *ir_rebatch(Graph *g, Node *loss, Node *const *full, Node *const *leaves, int nfull, int64_t rows);

/* All nodes reachable from roots, in topological order (by id). */
typedef struct NodeList {
  Node **items;
  int n, cap;
  Arena *arena;                                  /* as NodeMap's */
} NodeList;
void nodelist_push(NodeList *l, Node *n);
void nodelist_free(NodeList *l);
NodeList ir_topo(Node *const *roots, int nroots);
/* The same, where leaf(n, ctx) > 0 makes n a leaf (its arguments are not
 * visited unless something else needs them) and < 0 leaves n out. */
NodeList ir_topo_until(Node *const *roots, int nroots, int (*leaf)(const Node *n, void *ctx), void *ctx);

/* `dlc emit ir`: one node a line, `%id = op args : shape`. */
void ir_dump(Node *const *roots, const char *const *root_names, int nroots,
             const Program *p, FILE *out);
/* A formula a human reads: `1.5 * (5 * t^2 - 1)`. */
void ir_format(Buf *b, const Node *n, const Program *p);
/* How many terms ir_format writes for root: its DAG written out as a tree
 * (a double: it can be exponential in the DAG's size). A formula that
 * print shows has at most MAX_FORMULA_TERMS. */
double ir_tree_size(Node *root);
#define MAX_FORMULA_TERMS 1000000

/* --------------------------------------------------------------- program.c */

/* A user function. Its body and derivs stay AST: a call inlines them. */
struct Fn {
  const char *name;
  Span span;
  const Stmt *stmt;                              /* formals, body, derivs */
  int arity;
  const char **formals;
  const Deriv **derivs;                          /* [arity]; NULL: from the body */
  bool elementwise;                              /* no sum/mean over its arguments */
};

/* A tensor value: row-major doubles (f32 programs keep f32-rounded doubles). */
typedef struct Tensor {
  Shape shape;
  double *v;
} Tensor;

typedef struct ParamInfo {
  const char *name;
  Span span;
  Node *node;                                    /* the OP_PARAM leaf */
  Tensor value;                                  /* current value */
  bool warned_constant;                          /* "the loss does not depend on it" said */
} ParamInfo;

typedef struct DataInfo {
  const char *name;                              /* the definition's name, or its text */
  Tensor value;
  Node *defn;                                    /* a hoisted definition: what computed it */
} DataInfo;

typedef enum { OPT_SGD, OPT_ADAM, OPT_RMSPROP } OptimKind;

typedef struct Optimizer {
  OptimKind kind;
  double lr, momentum;                           /* sgd */
  double beta1, beta2, eps;                      /* adam (eps: rmsprop too) */
  double alpha;                                  /* rmsprop */
} Optimizer;

typedef enum {
  ACT_PRINT,                                     /* print(...) */
  ACT_SHOW,                                      /* an expression statement */
  ACT_TRAIN,                                     /* train(...) */
  ACT_PLOT,                                      /* plot(...) */
} ActionKind;

/* One piece of a print: text, or a value or formula to format. */
typedef struct PrintItem {
  const char *text;
  Node *node;
  struct PrintItem *next;
} PrintItem;

/* A plot statement: x, then the y series, drawn into path (plot.c). */
typedef struct PlotStmt {
  const char *path;                              /* as written: relative to the current directory */
  Span path_span;
  Node **values;                                 /* [nvalues]: x, then each y, vectors of one length */
  int nvalues;
  const char **labels;                           /* [nvalues - 1], or NULL: no legend */
  const char *title, *xlabel, *ylabel;           /* NULL: none */
} PlotStmt;

/* What running the program does, in order. */
typedef struct Action {
  ActionKind kind;
  Span span;
  PrintItem *items;                              /* PRINT, SHOW */
  bool newline_items;                            /* PRINT of several args: space-separated */
  Node *loss;                                    /* TRAIN */
  int64_t steps, log_every;                      /* TRAIN; with batch: log_every in epochs */
  int64_t batch;                                 /* TRAIN: rows per minibatch; 0: all the data */
  int64_t epochs;                                /* TRAIN with batch: passes over the data */
  int64_t shuffle;                               /* TRAIN with batch: seed of the order; -1: none */
  Optimizer opt;                                 /* TRAIN */
  const PlotStmt *plot;                          /* PLOT */
  struct Action *next;
} Action;

typedef struct Options {
  bool f64;                                      /* --f64 */
  int opt_level;                                 /* -O0..-O3 (default 2) */
  bool time;                                     /* --time: phase timings to stderr */
  int threads;                                   /* --threads; 0: chosen by data size */
  const char *save_path;                         /* --save: checkpoint file */
  int64_t save_every;                            /* --save-every K steps; 0: at the end only */
  bool nan_check;                                /* --nan-check: say where a NaN came from */
  const char *resume_path;                       /* --resume */
  const char *gpu_arch;                          /* --target gpu: sm_80, sm_90...; NULL: the CPU */
  bool no_cache;                                 /* --no-cache: compile every train afresh */
  bool no_progress;                              /* --no-progress: no progress line on a terminal */
  const char *log_path;                          /* --log: each log line to a CSV or JSONL file */
  const char *plot_loss_path;                    /* --plot-loss: the training curve's file */
} Options;

enum { MAX_THREADS = 256 };

/* The phases `--time` reports, in order. */
#define PHASES(X)                                                                          \
  X(PARSE, "parse") X(CHECK, "check") X(DIFF, "differentiate") X(IR, "build IR")         \
  X(OPTIMIZE, "optimize") X(JIT, "JIT") X(DATA, "data") X(TRAIN, "train")
typedef enum {
#define X(name, text) PHASE_##name,
  PHASES(X)
#undef X
  PHASE_COUNT
} Phase;

struct Program {
  Arena *arena;
  Graph *graph;
  Diags *diags;
  Options opts;
  const Source *src;
  ParamInfo *params;
  int nparams, cap_params;
  DataInfo *data;
  int ndata, cap_data;
  int64_t data_elements;                         /* numbers in data made so far: at most */
#define MAX_DATA_ELEMENTS 4e8                    /* this many (3.2 GB of doubles) */
/* The most numbers one value holds: every node's shape, data or not. */
#define MAX_ELEMENTS 100000000
  Node *loss;
  Fn **fns;
  int nfns, cap_fns;
  struct FnMemo *fn_memo;                        /* sema's calls made so far, by fn and arguments */
  Action *actions, **actions_tail;
  struct Sym *syms;                              /* sema's name table, newest first */
  struct Sym **sym_buckets;                      /* ... and its index by name */
  int nsym_buckets, nsyms;
};

Program *program_new(Arena *a, Diags *d, Options opts);
void program_free(Program *p);                   /* what the arena does not own */
/* A new data slot holding t (the program owns t's memory from here). */
int program_add_data(Program *p, const char *name, Tensor t);
/* Round a value to the program's precision (f32 unless --f64). */
double program_round(const Program *p, double v);

/* ------------------------------------------------------------------ sema.c */

/* Checks the statements and builds the program: params get their initial
 * values, param-free definitions are evaluated (hoisted), everything else
 * becomes IR. Returns false when errors were reported. */
bool sema_program(Program *p, const Stmt *stmts);

/* From here to the end of fn.c's banner, sema's own: the state of a run
 * and what its files call in one another. Nothing after sema uses them. */

/* Names bound inside a fn body or deriv: the formals and `value`. */
typedef struct Local {
  const char *name;
  Node *node;
  struct Local *next;
} Local;

/* One sema_program run (or sema_fn_partials' elaboration). */
typedef struct Sema {
  Program *p;
  Graph *g;
  Diags *d;
  struct Sym *syms;                              /* the names defined, newest first */
  const Fn *defining;                            /* fn whose body is being checked */
  bool in_diff;                                  /* undefined names are free symbols */
  bool loss_failed;                              /* `loss = ...` had errors: stay quiet about it */
  bool said_full;                                /* the graph's limit was reported */
  struct CsvFile *csvs;                          /* the files load_csv read (data.c) */
} Sema;

/* Checks e and builds its node; NULL after an error (reported). locals:
 * the names bound in the fn body or deriv it is part of. */
Node *elab(Sema *s, const Expr *e, Local *locals);
int count_args(const Arg *a);
/* Binds a call's arguments, positional or named, to the parameter slots
 * names[0..nnames) in out[] (NULL: not given); the first nrequired must
 * be given. `what` names the callee in messages. */
bool bind_args(Sema *s, const Expr *call, const char *const *names, int nnames,
               int nrequired, const char *what, Expr **out);
/* The text of e, a string literal without interpolations; NULL, with an
 * error naming it `what`, when it is not one (data.c). */
const char *string_literal(Sema *s, const Expr *e, const char *what);
/* a and b broadcast together (NumPy's rules) to a value that fits; else
 * an error at span, `what` naming the operation. */
bool check_broadcast(Sema *s, Span span, Node *a, Node *b, const char *what);
/* The graph is full (MAX_NODES): an error at span, once a run. */
bool graph_too_big(Sema *s, Span span, const char *what);
/* The value of e, which must be a constant scalar (`what` names it in
 * messages): a number in the working precision, or a whole number in
 * [min, max] exactly. */
bool constant_scalar(Sema *s, const Expr *e, Local *locals, const char *what, double *out);
bool constant_int(Sema *s, const Expr *e, const char *what, double min, double max,
                  int64_t *out);

/* -------------------------------------------------------------- builtins.c */

typedef enum {
  B_ELEM,                                        /* elementwise op */
  B_REDUCE,                                      /* sum, mean */
  B_LEN,
  B_LINSPACE, B_ZEROS, B_ONES, B_FILL, B_RAND, B_RANDN, B_EYE, B_LOAD_CSV,
  B_MAXMIN,                                      /* max, min: of two, or a reduction */
  B_LOGSUMEXP, B_SOFTMAX, B_LOG_SOFTMAX, B_ARGMAX, B_ONEHOT, B_TRANSPOSE,
  B_STACK, B_CONCAT,                             /* any number of arguments */
  B_DIFF,
  B_TRAIN, B_PRINT, B_PLOT,                      /* statements */
  B_OPTIMIZER,                                   /* sgd, adam, rmsprop */
} BuiltinKind;

enum { MAX_PARAMS = 6 };                        /* the most arguments a built-in names */

typedef struct Builtin {
  const char *name;
  BuiltinKind kind;
  int op;                                        /* B_ELEM, B_REDUCE, B_MAXMIN: the Op;
                                                    B_OPTIMIZER: OptimKind */
  int nrequired;                                 /* params[0..nrequired) must be given */
  const char *params[MAX_PARAMS];                /* their names, in order */
} Builtin;
extern const Builtin builtins[];
extern const int nbuiltins;
/* The i-th built-in name (functions, then constants); NULL past the last
 * (the REPL completes them). */
const char *sema_builtin_name(int i);
const Builtin *find_builtin(const char *name);   /* NULL: not a built-in */
int nparams_of(const Builtin *b);                /* the names in b->params */
bool is_constant_name(const char *name);         /* pi, inf */

/* ------------------------------------------------------------------ data.c */

/* Counts n more numbers of data; false, with an error at span, past
 * MAX_DATA_ELEMENTS. */
bool budget(Sema *s, Span span, int64_t n);
/* A new data leaf holding t (the program owns t's memory from here). */
Node *data_leaf(Sema *s, Tensor t, const char *name);
Tensor tensor_alloc(Shape shape);                /* uninitialised, malloc'd */
/* The calls that make data now: load_csv and linspace, zeros, ones, fill,
 * rand, randn, eye (args bound to b's params by bind_args), and a list
 * literal, [1, 2] or [[1, 2], [3, 4]]. NULL after an error. */
Node *elab_load_csv(Sema *s, const Expr *call, Expr **args);
Node *elab_constructor(Sema *s, const Expr *call, const Builtin *b, Expr **args);
Node *elab_list(Sema *s, const Expr *e);
/* Frees the CSV files a run read (once each, however often named). */
void csv_files_free(Sema *s);

/* ---------------------------------------------------------------- matrix.c */

/* a @ b, elaborated already. */
Node *elab_matmul(Sema *s, const Expr *e, Node *a, Node *b);
/* A[i, j], each index an integer or a slice lo:hi. */
Node *elab_index(Sema *s, const Expr *e, Local *locals);
/* stack(v, ...) (stack) or concat(A, ..., axis = a). */
Node *elab_join(Sema *s, const Expr *e, bool stack, Local *locals);
/* The built-ins of matrices and reductions (sum, mean, max, min, argmax,
 * logsumexp, softmax, log_softmax, onehot, transpose). */
Node *elab_tensor_call(Sema *s, const Expr *e, const Builtin *b, Expr **args, Local *locals);

/* -------------------------------------------------------------------- fn.c */

/* The fn calls inlined so far (Program.fn_memo), by fn and arguments. */
typedef struct FnMemo {
  struct FnCall **buckets;                       /* malloc'd */
  unsigned nbuckets, n;
  unsigned run;                                  /* sema_program runs so far */
} FnMemo;

/* Inlines fn at actuals: *body, and each argument's hand-written partial
 * hand[i] (NULL without a deriv) and symbolic one sym[i] (only where there
 * is no deriv, unless all_sym); *body_vars is the body over var_nodes, the
 * formals as symbols. False after an error. */
bool expand_fn(Sema *s, const Fn *fn, Node *const *actuals, Node **body, Node **hand,
               Node **sym, bool all_sym, Node **body_vars, Node **var_nodes);
/* A call of fn, inlined once for each distinct list of argument nodes. */
Node *elab_fn_call(Sema *s, const Expr *call, const Fn *fn, Local *locals);
/* diff(e, x): d e / d x, element by element. */
Node *elab_diff(Sema *s, const Expr *call, Expr **args, Local *locals);
/* For `dlc check`: fn's body with its formals bound to args, each argument's
 * hand-written partial (NULL where there is no deriv) and symbolic one. */
bool sema_fn_partials(Program *p, const Fn *fn, Node *const *args, Node **body, Node **hand,
                      Node **sym);

/* ------------------------------------------------------------------ eval.c */

/* Evaluates a node with the params' current values (an interpreter, used
 * once per value: hoisting, printing, `dlc check`; never per training step).
 * vars/values bind VAR leaves. Returns false with *err set (malloc'd) when
 * the node has a free symbol. */
bool eval_node(const Program *p, Node *n, Node *const *vars, const double *values,
               int nvars, Tensor *out, char **err);
double eval_scalar_op(Op op, double a, double b, bool f64);
/* `--nan-check`: evaluates the roots with the params' current values and
 * returns the first node whose value is not finite while its arguments
 * are: where a NaN or an infinity first appears. NULL when all are finite. */
const Node *eval_first_nonfinite(const Program *p, Node *const *roots, int nroots);
/* Data computed once (t, the value of n) that holds NaN or an infinity
 * from finite inputs — a log of a value <= 0, a sqrt of a negative — is
 * almost surely a mistake: a warning at the operation that made it. */
void eval_warn_nonfinite(Program *p, Node *n, const Tensor *t);

/* ------------------------------------------------------------------ diff.c */

/* Reverse mode: d out / d wrt[i] for each i, where wrt[i] are nodes of the
 * DAG (params, data, free symbols, or inner nodes). Adjoints are
 * accumulated in reverse topological order, only along paths that reach a
 * target. The result is raw: run simplify on it. A zero gradient is the
 * constant 0 broadcast to the target's shape. */
void diff_grads(Graph *g, Node *out, Node *const *wrt, int nwrt, Node **grads);
Node *diff_node(Graph *g, Node *out, Node *wrt);

/* -------------------------------------------------------------- simplify.c */

/* Constant folding, neutral elements, powers; shapes are preserved. */
void simplify(Graph *g, Node **roots, int nroots);
Node *simplify_node(Graph *g, Node *n);

/* -------------------------------------------------------------- schedule.c */

/* A fused loop: one pass over vectors of one length, computing reductions
 * and storing vector outputs. */
typedef struct Loop {
  int stage;
  Shape shape;
  NodeList reductions;                           /* SUM/MEAN nodes finished here */
  NodeList stores;                               /* vector outputs written here */
  int *store_slots;                              /* buffer slot of each store */
} Loop;

typedef enum { BUF_PARAM, BUF_DATA, BUF_GRAD, BUF_STATE, BUF_TEMP } BufKind;

/* A node computed over whole tensors (MATMUL, TRANSPOSE, K_AXIS, SLICE,
 * PAD) into its buffer, after the loops of its stage. */
typedef struct Kernel {
  int stage;
  Node *node;
} Kernel;

typedef struct BufInfo {
  BufKind kind;
  int index;                                     /* param or data index */
  int64_t numel;
} BufInfo;

/* One training step, planned: stage s computes its scalars (prelude[s]),
 * then its loops, then its kernels; stage s + 1 may use their results.
 * Nodes held in a buffer (leaves, kernels' results, and what loops store
 * for kernels) are read from it from stage `ready` on: a loop loads them
 * rather than computing them. */
typedef struct Schedule {
  Arena *arena;                                  /* holds all of it: schedule_free frees it */
  Node *loss;
  Node **grads;                                  /* [nparams], lowered (no FNCALL) */
  int nstages;
  NodeList *prelude;                             /* [nstages + 1] scalar nodes */
  Loop *loops;
  int nloops;
  Kernel *kernels;                               /* by stage */
  int nkernels;
  NodeMap buffer;                                /* node -> its buffer slot + 1 */
  NodeMap ready;                                 /* node -> first stage its buffer holds it + 1 */
  BufInfo *bufs;
  int nbufs;
  int *param_buf, *data_buf, *grad_buf;          /* slot per param/data; -1 none */
  int *state_buf;                                /* [nparams * 2] optimizer state */
  bool batched;                                  /* the loss reads a minibatch: each step first gathers it */
  bool params_shared;                            /* a step reads vector params' elements across
                                                    threads' shares (see params_shared) */
} Schedule;

/* Inlines fn calls and hoists param-free vector work into data (as long
 * as the program's data stays within MAX_DATA_ELEMENTS); roots are
 * rewritten. */
void schedule_lower(Program *p, Node **roots, int nroots);
/* The step of roots (the loss, then each param's gradient, lowered). NULL,
 * with an error at `at`, when its buffers besides params and data would
 * hold more than MAX_DATA_ELEMENTS numbers. */
Schedule *schedule_train(Program *p, Node *const *roots, const Optimizer *opt, Span at);
void schedule_free(Schedule *s);
/* The optimizer state an optimizer keeps per param: 0, 1 or 2 buffers
 * (momentum; Adam's two moments; RMSprop's average of squares). */
int schedule_state_count(const Optimizer *opt);
/* The buffer slot holding n, and the stage from which it does; -1 for a
 * node that is computed where it is used. */
int schedule_buffer(const Schedule *s, const Node *n, int *ready);
/* Computed as a kernel over whole tensors, not element by element. */
bool schedule_is_kernel(const Node *n);
/* What loop l computes per element: its reductions' arguments, then its
 * stores, into roots (room for both); returns how many. */
int loop_roots(const Loop *l, Node **roots);
/* The vector nodes loop l computes per element, in topological order, for
 * its roots (loop_roots, *nroots of them): held nodes ready by its stage
 * are leaves, which it loads (loop_loads) rather than computes. */
NodeList loop_order(const Schedule *s, const Loop *l, Node **roots, int *nroots);
bool loop_loads(const Schedule *s, const Loop *l, const Node *n);
/* The sums a step finishes over loop l's elements: one per reduction,
 * and where it stores, one for the finite check of what it stores. */
int loop_sums(const Loop *l);
/* Whether each thread (of a CPU team, of a GPU grid) holds buffer k of
 * its own: a scalar param and its optimizer state, which every thread
 * updates alike. Vectors are shared: each thread updates its share. */
bool schedule_buffer_private(const Program *p, const Schedule *s, int k);

/* ------------------------------------------------------------- codegen.c */

/* LLVM's own handle types, named without including LLVM's headers here:
 * the files that build or run LLVM IR (codegen.c, gpu.c, gpumath.c,
 * jit.c) include them; the rest of the compiler sees only these names. */
typedef struct LLVMOpaqueContext *LLVMContextRefDl;
typedef struct LLVMOpaqueModule *LLVMModuleRefDl;
typedef struct LLVMOpaqueBuilder *LLVMBuilderRefDl;
typedef struct LLVMOpaqueValue *LLVMValueRefDl;

/* What a train saves its checkpoints through: compiled code calls
 * save(self, steps_done) every --save-every steps (thread 0, the team
 * having finished the step); the code for it is there only with
 * --save-every. */
typedef struct TrainSaver {
  void (*save)(struct TrainSaver *self, int64_t steps_done);
} TrainSaver;

/* Emits the train function (TrainFn) into a new module: steps
 * [first_step, steps) of forward, backward, the finite check and the
 * optimizer update, for one thread of a team. It returns what dlrt.h says
 * compiled training code returns (train_result decodes it).
 * *scratch_doubles: the size of the scratch array it needs. */
typedef int64_t (*TrainFn)(void **bufs, int64_t steps, DlrtLog *log, int64_t thread,
                           int64_t nthreads, double *scratch, DlrtTeam *team, int64_t first_step,
                           TrainSaver *saver);
/* Whether a MATMUL kernel is a call to OpenBLAS (else loops). */
bool codegen_uses_blas(const Node *n);
LLVMModuleRefDl codegen_train(const Program *p, const Schedule *s, const Optimizer *opt,
                              LLVMContextRefDl ctx, const char *fn_name, int vector_bits,
                              int64_t *scratch_doubles);

/* The one step skeleton (codegen_steps) and a target's hooks, as QBE's
 * generic pipeline and its Target: the skeleton emits the steps of a
 * train, and asks the target only what it does its own way. A target (the
 * CPU's team in codegen.c, the GPU's grid in gpu.c) embeds a StepTarget
 * first in its own state; each hook gets it back as t. */
typedef struct StepTarget StepTarget;

/* A loop over this thread's share of a vector's elements, as its target
 * runs it (which embeds this first in its own loop state). */
typedef struct Elements {
  LLVMValueRefDl i;                              /* the element (i64) */
  LLVMValueRefDl *sums;                          /* running sums (working type) before element i */
} Elements;

struct StepTarget {
  /* The function the target built, the builder at the end of its entry: */
  LLVMBuilderRefDl b;
  LLVMValueRefDl *bufs;                          /* [nbufs] where each buffer is; a private copy
                                                    where schedule_buffer_private says so */
  LLVMValueRefDl scratch;                        /* two halves of partial sums (codegen_steps) */
  LLVMValueRefDl first, last;                    /* i64: the steps to run, [first, last) */
  LLVMValueRefDl leader;                         /* i1: the thread that reports and saves */
  bool reassociate;                              /* a thread's sums may be split into vector lanes */
  int vector_bits;                               /* widest libmvec variants libm calls name; 0: none */

  /* How many partial sums over n elements it publishes: a row of scratch. */
  int64_t (*partials)(StepTarget *t, int64_t n);
  /* The element loop: begin leaves the builder in its body, with nsums
   * sums from 0; end closes it, given their values after element i
   * (next). With sums_at (a place in scratch: a row of partials(n)
   * doubles per sum), total[r] is then sum r over every thread's
   * elements, in double, the same bits in every thread. */
  Elements *(*elements_begin)(StepTarget *t, int64_t n, int nsums);
  void (*elements_end)(StepTarget *t, Elements *k, LLVMValueRefDl *next, LLVMValueRefDl sums_at,
                       LLVMValueRefDl *total);
  /* Every thread waits for all others; what they wrote before is visible after. */
  void (*barrier)(StepTarget *t);
  /* The leader's report of the loss (a double) of step (an i64). */
  void (*report)(StepTarget *t, LLVMValueRefDl step, LLVMValueRefDl loss);
  /* A libm function (sinf, log1p, pow: touching no memory) just declared
   * for the step's calls: the target may rename it or give it a body of its
   * own. NULL: libm's. */
  void (*math)(StepTarget *t, LLVMValueRefDl fn);

  /* What only some targets do; NULL where this one does not. */
  void (*kernel)(StepTarget *t, const Node *n);  /* its own code for a kernel (NULL: an element
                                                    loop over the result, each element alone) */
  void (*gather)(StepTarget *t, LLVMValueRefDl step);   /* the leader gathers step's minibatch */
  LLVMValueRefDl (*interrupt)(StepTarget *t);    /* the leader reads the interrupt request at the
                                                    start of a step: a double, nonzero to stop */
  void (*save)(StepTarget *t, LLVMValueRefDl done);     /* the leader saves a checkpoint */
};

/* Emits steps [t->first, t->last) at t->b: for each, by stage, the
 * prelude scalars, the fused loops and the kernels; the loss report; the
 * finite checks; the optimizer update; the interrupts and checkpoints the
 * target has. Returns the result, an i64 encoded as TrainFn's, with the
 * builder in the block after the steps. *half_doubles: the doubles in
 * each half of t->scratch. */
LLVMValueRefDl codegen_steps(const Program *p, const Schedule *s, const Optimizer *opt,
                             StepTarget *t, int64_t *half_doubles);

/* ----------------------------------------------------------------- jit.c */

typedef struct Jit Jit;
/* cache: keep and reuse machine code through cache.c. */
Jit *jit_new(int opt_level, bool cache, Diags *d);
void jit_free(Jit *j);
/* The widest vector (bits) for which glibc's libmvec has variants this CPU
 * runs, libmvec being loaded; 0 without it. codegen names those variants. */
int jit_vector_bits(const Jit *j);
LLVMContextRefDl jit_context(Jit *j);
/* Takes the module: its machine code from the cache, or optimized and
 * compiled (and then cached), added to the JIT; returns the address of
 * fn_name, or NULL with an error in d. Adds the time spent to
 * ms[PHASE_OPTIMIZE] and ms[PHASE_JIT]. *code: its handle, for
 * jit_remove. */
typedef struct JitCode JitCode;
void *jit_add(Jit *j, LLVMModuleRefDl m, const char *fn_name, Diags *d, double *ms, JitCode **code);
/* Modules jit_add took so far, and how many of them came from the cache
 * (0 and 0 with the cache off). */
void jit_cache_counts(const Jit *j, int *trains, int *cached);
/* Frees the machine code of a module added by jit_add. */
void jit_remove(Jit *j, JitCode *code);
/* `dlc emit llvm|asm`: text of the optimized module (caller frees). Takes
 * m and disposes of it. */
char *jit_module_text(Jit *j, LLVMModuleRefDl m, bool asm_text, Diags *d);

/* ----------------------------------------------------------------- cache.c */

/* A key (32 hex digits) hashing the parts, in order. */
void cache_key(const char *const *parts, int nparts, char key[33]);
/* The cache's directory; NULL when it is off (DLC_CACHE=0, or no home). */
const char *cache_dir(void);
/* The object stored under key (malloc'd, its size in *size); NULL when
 * there is none, or a damaged one (then removed). */
void *cache_load(const char *key, size_t *size);
/* Stores obj under key, atomically, then evicts the least recently used
 * entries past the size bound. Failing to is no error: the cache is only
 * a shortcut. */
void cache_store(const char *key, const void *obj, size_t size);
/* `dlc cache info|clear`, to out. */
bool cache_command(const char *what, FILE *out);

/* ------------------------------------------------------------------- gpu.c */

#define GPU_TRIPLE "nvptx64-nvidia-cuda"
#define GPU_KERNEL "dl_steps"                    /* the kernel's name in the PTX */
#define GPU_DEFAULT_ARCH "sm_90"
/* The architectures --gpu-arch takes: those LLVM 19 builds for that have
 * every instruction the kernel uses (min.NaN, from sm_80 on). */
#define GPU_ARCHS "sm_80, sm_86, sm_87, sm_89, sm_90, sm_90a"

/* A train compiled for the GPU: PTX with one kernel, GPU_KERNEL, that runs
 * steps [first, last) of it in one launch (see gpu.c for its parameters
 * and result), and what launching it takes. */
typedef struct GpuKernel {
  char *ptx;                                     /* NUL-terminated, malloc'd */
  int block;                                     /* threads per block */
  int max_grid;                                  /* most blocks it has scratch for */
  int64_t elements;                              /* the longest vector: no use for more threads */
  int64_t scratch_doubles;
  int shared_doubles;                            /* shared memory per block */
} GpuKernel;

/* Compiles the schedule of train a (NULL: none) for arch. Errors go to
 * p->diags: an op the GPU generator does not know. Math functions are
 * libdevice's, or without it our own (gpumath.c). */
bool gpu_compile(const Program *p, const Schedule *s, const Action *a, const Optimizer *opt,
                 const char *arch, GpuKernel *out);
void gpu_kernel_free(GpuKernel *k);

/* Emulation, for the tests of a machine without a GPU: the same kernel
 * built for the host CPU (module m, in ctx, for the JIT), with an eighth
 * parameter, the calling thread's GpuEmuThread, through whose functions it
 * does what the GPU would (ids, bar.sync, shuffles, fences). */
typedef struct GpuEmuThread {
  int32_t (*sreg)(struct GpuEmuThread *self, int32_t which);   /* 0 tid.x, 1 ctaid.x, 2 nctaid.x */
  void (*bar_sync)(struct GpuEmuThread *self);
  int32_t (*shfl_bfly)(struct GpuEmuThread *self, int32_t value, int32_t lane_mask);
  void (*fence)(struct GpuEmuThread *self);
  double *shared;                                /* this block's shared memory */
} GpuEmuThread;
typedef void (*GpuEmuKernel)(void **bufs, int64_t first, int64_t last, double *losses,
                             double *scratch, int64_t *barrier, int64_t *result,
                             GpuEmuThread *self);
LLVMModuleRefDl gpu_emulated(const Program *p, const Schedule *s, const Action *a,
                             const Optimizer *opt, LLVMContextRefDl ctx, GpuKernel *out);

/* gpumath.c, the GPU's own libm where there is no libdevice: a body for
 * fn, a libm function as codegen declares them (sin, log1p, powf...),
 * reading its table of 2/pi from address space table_space. False, and
 * fn left a declaration, when it has none. */
bool gpumath_define(LLVMValueRefDl fn, unsigned table_space);

/* ----------------------------------------------------------------- train.c */

/* Whose loss curves a runner keeps (every step's loss, for a plot). */
typedef enum {
  CURVES_NONE,
  CURVES_LAST,                                   /* the last train's (the REPL's :loss) */
  CURVES_ALL,                                    /* every train's (--plot-loss) */
} CurvesKept;

/* What runs programs, besides the program (main.c makes one per run, the
 * REPL one per session, for every program it builds): the JIT, which holds
 * every compiled train's machine code; the thread team; a --resume's saved
 * state, until its train takes it; and the time each phase took. */
typedef struct Runner {
  Jit *jit;                                      /* made on the first train for the CPU */
  DlrtTeam *team;                                /* made on the first train on threads */
  struct Resume *resume;                         /* checkpoint.c's: --resume, until used */
  double ms[PHASE_COUNT];
  int ntrains;                                   /* trains compiled: each a new name in the JIT */
  DlrtLogFile log_file;                          /* --log: each log line to a file (f NULL: none) */
  CurvesKept curves_kept;
  DlrtCurve *curves;                             /* [ncurves]: the trains' losses, step by step */
  int ncurves;
} Runner;

/* What train_compile makes of a loss. */
typedef enum {
  TRAIN_FOR_CPU,                                 /* a TrainFn in the runner's JIT */
  TRAIN_FOR_GPU,                                 /* a GpuKernel for opts.gpu_arch */
  TRAIN_AS_LLVM,                                 /* `dlc emit llvm`: the optimized module's text */
  TRAIN_AS_ASM,                                  /* `dlc emit asm` */
  TRAIN_AS_PTX,                                  /* `dlc emit ptx` (GPU_DEFAULT_ARCH without --gpu-arch) */
} TrainOutput;

/* A compiled train: what its passes made, freed by train_free. */
typedef struct Train {
  Schedule *s;
  TrainFn fn;                                    /* TRAIN_FOR_CPU */
  JitCode *code;                                 /* ... its machine code in the runner's JIT */
  int64_t scratch_doubles;                       /* ... the scratch it needs */
  GpuKernel kernel;                              /* TRAIN_FOR_GPU, TRAIN_AS_PTX */
  char *text;                                    /* TRAIN_AS_*: malloc'd */
} Train;

/* roots[0] = loss, roots[1 + i] = d loss / d param i, simplified. False,
 * with an error, when that took the graph to MAX_NODES (the gradients
 * are then incomplete). */
bool loss_and_grads(Program *p, Node *loss, Node **roots);
/* The step of loss planned: differentiated, simplified, lowered and
 * scheduled. NULL with an error in p->diags. */
Schedule *train_schedule(Runner *r, Program *p, Node *loss, const Optimizer *opt);
/* The train of loss with opt (a: the train statement, NULL for `emit`
 * without one), compiled to `out`. False with an error in p->diags (then
 * train_free still frees what was made). */
bool train_compile(Runner *r, Program *p, const Action *a, Node *loss, const Optimizer *opt,
                   TrainOutput out, Train *t);
void train_free(Runner *r, Train *t);

/* Why a train stopped, and how many steps it had done (the step that
 * failed, for the NONFINITE ones). */
typedef enum {
  TRAIN_DONE,                                    /* every step ran */
  TRAIN_NONFINITE,                               /* the loss or a gradient was NaN or infinite */
  TRAIN_UPDATE_NONFINITE,                        /* the update would have made a param so */
  TRAIN_INTERRUPTED,                             /* dlrt_interrupt (SIGINT, SIGTERM) */
} TrainStop;
typedef struct TrainResult {
  TrainStop stop;
  int64_t done;
} TrainResult;
/* The one decoder of what compiled steps [first, end) return (dlrt.h). */
TrainResult train_result(int64_t code, int64_t end);

/* ------------------------------------------------------------------ exec.c */

Runner *runner_new(void);
void runner_free(Runner *r);                     /* the JIT, and every train's code with it */
/* Runs the program's actions in order (prints to out, progress to stderr). */
bool exec_program(Runner *r, Program *p, FILE *out);
/* The same, from action `from` on (the REPL runs each statement's own). */
bool exec_actions(Runner *r, Program *p, const Action *from, FILE *out);
/* The buffers of a schedule, in the working precision, filled from the
 * program's params and data (the rest zero); the caller frees each and
 * the array. */
void **exec_make_buffers(const Program *p, const Schedule *s);
/* Runs one train action: compile, run, copy params back. With
 * minibatches, a compiled train per batch size. */
bool exec_train(Runner *r, Program *p, const Action *a, FILE *out);
/* A train's steps: with minibatches, a step per batch. */
int64_t exec_train_steps(const Action *a);
/* `dlc emit ir|grad|llvm|asm|ptx` for the program's loss and its first
 * train (or sgd when there is none). */
bool exec_emit(Runner *r, Program *p, const char *what, FILE *out);
/* A value as print shows it: a number, or [a, b, c, ..., z] for a vector. */
void exec_format_value(Buf *b, const Tensor *t, bool f64);
/* `--log FILE`: opens the file each train's log lines go to (CSV or JSON
 * Lines, by its extension), before anything runs; false with the error
 * reported when it cannot be written. */
bool exec_open_log(Runner *r, Program *p, const char *path);
/* `--time`: the time of each phase, and the total, on one line. */
void exec_print_times(const Runner *r, double total, FILE *f);

/* ------------------------------------------------------------------ plot.c */

/* Series of points, each drawn as dots or as a line through them. */
typedef struct PlotSeries {
  const char *label;                             /* NULL: none */
  const double *x, *y;                           /* [n]; a non-finite point is left out */
  int64_t n;
  bool points;                                   /* dots; else a line */
} PlotSeries;

typedef struct Plot {
  const char *title, *xlabel, *ylabel;           /* NULL: none */
  bool log_y;                                    /* y on a log scale (only y > 0 drawn) */
  const PlotSeries *series;
  int nseries;
} Plot;

typedef enum { PLOT_NONE = -1, PLOT_PNG, PLOT_SVG, PLOT_PDF } PlotFormat;

/* The format a path's extension names (.png, .svg, .pdf; any case). */
PlotFormat plot_format(const char *path);
/* Draws the plot into path, in the format of its extension. False with
 * a one-line reason in err when it cannot. */
bool plot_write(const char *path, const Plot *pl, char *err, size_t errsize);
/* The plot in braille for a terminal of cols x rows: the axes, labelled
 * with the extreme values, and a last line left for the prompt. */
void plot_text(Buf *b, const Plot *pl, int cols, int rows);
/* The loss curves c[0..n) as plot_write draws them: one series per train,
 * the steps numbered on from one train to the next; a log scale when the
 * losses span two decades or more. */
bool plot_loss_write(const char *path, const DlrtCurve *c, int n, char *err, size_t errsize);
/* One loss curve, as plot_text draws it. */
void plot_loss_text(Buf *b, const DlrtCurve *c, int cols, int rows);

/* ------------------------------------------------------------------ repl.c */

/* `dlc repl`: reads statements from stdin (with line editing and prompts
 * on a terminal) until the end or :quit. Returns the exit status: 1 when
 * something failed in a script (not on a terminal), else 0. */
int repl_main(Options opts);

/* ------------------------------------------------------------ checkpoint.c */

/* A train's progress, to save: its number among the program's trains (from
 * 1), the steps done, and its buffers: the params and their optimizer
 * state, as the schedule lays them out. */
typedef struct Checkpoint {
  int train;
  const Action *action;
  int64_t steps;                                 /* the train's steps (batches with minibatches) */
  int64_t done;
  const Schedule *schedule;
  void *const *bufs;
  double epoch_loss;                             /* minibatches: the losses of the epoch so far, summed */
} Checkpoint;

/* Writes the checkpoint to path, atomically; an error in p->diags when it
 * cannot. */
bool checkpoint_save(const Program *p, const char *path, const Checkpoint *c);
/* Whether a checkpoint can be saved to path (before training: a missing
 * directory, a read-only place, a directory as the path); an error in
 * p->diags when not. */
bool checkpoint_check_target(const Program *p, const char *path);
/* Reads path whole and checks it against the program and the train it
 * names, then sets the params and keeps, in the runner, where training was
 * and its optimizer state. False with an error, and nothing changed, when
 * it cannot. */
bool checkpoint_load(Runner *r, Program *p, const char *path);
/* The train to resume (from 1) and its steps done; 0 without --resume. */
int checkpoint_resume_train(const Runner *r, int64_t *step);
/* Fills the optimizer state buffers of the train being resumed, and
 * *epoch_loss (NULL: not wanted). */
void checkpoint_resume_state(const Runner *r, const Program *p, const Schedule *s, void **bufs,
                             double *epoch_loss);
/* The resumed train has taken what it needed: later trains start afresh. */
void checkpoint_forget(Runner *r);

/* ----------------------------------------------------------------- check.c */

/* `dlc check`: tests every hand-written deriv against the symbolic
 * derivative of its fn's body at sample points. Reports disagreements as
 * errors; prints one line per deriv to out. */
bool check_derivs(Program *p, FILE *out);

#endif
