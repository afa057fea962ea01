/* eval.c — the interpreter for values computed once.
 *
 * Hoisted definitions, param initial values, `print` and `dlc check` each
 * evaluate an expression once; compiling those through LLVM would cost more
 * than it saves, so they are interpreted here, a whole tensor per node. The
 * training loop never comes here: it is compiled (codegen.c).
 *
 * Arithmetic is done in double and, for f32 programs, rounded to float after
 * every operation. For + - * / and sqrt that is exactly float arithmetic
 * (double has more than twice float's precision), and for the elementary
 * functions it is float's correctly rounded result, so printed values agree
 * with the compiled code to the last bit or nearly.
 */
#include "dlc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* PyTorch's softplus with beta 1 and threshold 20. */
static double softplus(double x) { return x > 20 ? x : log1p(exp(x)); }

/* min and max propagate NaN, like torch.minimum/maximum. */
static double nan_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : a < b ? a : b; }
static double nan_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : a > b ? a : b; }

double eval_scalar_op(Op op, double a, double b, bool f64) {
  double r;
  switch (op) {
  case OP_ADD: r = a + b; break;
  case OP_SUB: r = a - b; break;
  case OP_MUL: r = a * b; break;
  case OP_DIV: r = a / b; break;
  case OP_NEG: r = -a; break;
  case OP_POW: r = pow(a, b); break;
  case OP_LT: r = a < b; break;
  case OP_LE: r = a <= b; break;
  case OP_GT: r = a > b; break;
  case OP_GE: r = a >= b; break;
  case OP_EQ: r = a == b; break;
  case OP_NE: r = a != b; break;
  case OP_SIN: r = sin(a); break;
  case OP_COS: r = cos(a); break;
  case OP_TAN: r = tan(a); break;
  case OP_EXP: r = exp(a); break;
  case OP_LOG: r = log(a); break;
  case OP_SQRT: r = sqrt(a); break;
  case OP_TANH: r = tanh(a); break;
  case OP_SIGMOID: r = sigmoid(a); break;
  case OP_ABS: r = fabs(a); break;
  case OP_SIGN: r = a > 0 ? 1 : a < 0 ? -1 : a; break;
  case OP_LOG1P: r = log1p(a); break;
  case OP_EXPM1: r = expm1(a); break;
  case OP_ATAN: r = atan(a); break;
  case OP_RELU: r = a <= 0 ? 0 : a; break;   /* NaN stays NaN */
  case OP_SOFTPLUS: r = softplus(a); break;
  case OP_MIN: r = nan_min(a, b); break;
  case OP_MAX: r = nan_max(a, b); break;
  default: r = NAN;
  }
  return dlrt_round(r, f64);
}

/* The element of `arg` that lines up with element k of a tensor of shape
 * `out` under broadcasting (dimensions aligned from the right). */
static int64_t bcast_index(Shape arg, Shape out, int64_t k) {
  if (arg.rank == 0)
    return 0;
  int64_t col = out.rank == 2 ? k % out.dim[1] : k;
  int64_t row = out.rank == 2 ? k / out.dim[1] : 0;
  if (arg.rank == 1)
    return arg.dim[0] == 1 ? 0 : col;
  return (arg.dim[0] == 1 ? 0 : row) * arg.dim[1] + (arg.dim[1] == 1 ? 0 : col);
}

typedef struct Eval {
  const Program *p;
  NodeMap vals;                 /* node -> Tensor* */
  Node *const *vars;
  const double *values;
  int nvars;
  char *err;
} Eval;

/* A tensor of shape s; NULL when the memory for it cannot be had (or,
 * as a guard, when it is past MAX_ELEMENTS, which sema enforces). */
static Tensor *tensor_new(Shape s) {
  int64_t numel = shape_numel(s);
  if (numel > MAX_ELEMENTS)
    return NULL;
  Tensor *t = malloc(sizeof *t);
  double *v = malloc(sizeof(double) * (size_t)numel);
  if (!t || !v) {
    free(t);
    free(v);
    return NULL;
  }
  *t = (Tensor){s, v};
  return t;
}

static bool no_memory(Eval *e, const Node *n) {
  char sh[64];
  Buf b = {0};
  buf_printf(&b, "out of memory: no room for a %s (%lld numbers) to compute this",
             shape_str(n->shape, sh), (long long)shape_numel(n->shape));
  free(e->err);
  e->err = b.data;
  return false;
}

/* The arguments an evaluation needs: a call needs only its inlined body,
 * never its partial derivatives. */
static int needed_args(const Node *n, int *first) {
  if (n->op == OP_FNCALL) {
    *first = ir_fncall_arity(n);
    return 1;
  }
  *first = 0;
  return n->nargs;
}

static Tensor *arg_value(Eval *e, const Node *n, int i) { return nodemap_get(&e->vals, n->args[i]); }

static bool eval_one(Eval *e, Node *n) {
  bool f64 = e->p->opts.f64;
  Tensor *t = tensor_new(n->shape);
  if (!t)
    return no_memory(e, n);
  int64_t count = shape_numel(n->shape);
  nodemap_put(&e->vals, n, t);
  switch (n->op) {
  case OP_CONST:
    t->v[0] = dlrt_round(n->num, f64);
    return true;
  case OP_PARAM:
  case OP_DATA: {
    const Tensor *src = n->op == OP_PARAM ? &e->p->params[n->slot].value : &e->p->data[n->slot].value;
    memcpy(t->v, src->v, sizeof(double) * (size_t)count);
    return true;
  }
  case OP_VAR:
    for (int i = 0; i < e->nvars; i++)
      if (e->vars[i] == n) {
        for (int64_t k = 0; k < count; k++)
          t->v[k] = dlrt_round(e->values[i], f64);
        return true;
      }
    if (!e->err) {
      Buf b = {0};
      buf_printf(&b, "'%s' is a free symbol: it has no value", n->name);
      e->err = b.data;
    }
    return false;
  case OP_FNCALL:
    memcpy(t->v, arg_value(e, n, ir_fncall_arity(n))->v, sizeof(double) * (size_t)count);
    return true;
  case OP_SUM:
  case OP_MEAN: {
    const Tensor *a = arg_value(e, n, 0);
    int64_t m = shape_numel(a->shape);
    double s = 0;
    for (int64_t k = 0; k < m; k++)
      s += a->v[k];
    t->v[0] = dlrt_round(n->op == OP_MEAN ? s / (double)m : s, f64);
    return true;
  }
  case OP_RESHAPE:
  case OP_NOGRAD:
    memcpy(t->v, arg_value(e, n, 0)->v, sizeof(double) * (size_t)count);
    return true;
  case OP_MATMUL: {
    /* In double (OpenBLAS's dgemm where it is loaded: a product of the
     * 256-unit layers is too slow as a plain loop), then rounded. */
    const Tensor *a = arg_value(e, n, 0), *b = arg_value(e, n, 1);
    int64_t rows = shape_rows(n->shape), cols = shape_cols(n->shape), inner = shape_cols(a->shape);
    const DlrtBlas *blas = dlrt_blas();
    if (blas && rows * cols * inner >= DLRT_BLAS_MIN_MACS && rows < INT32_MAX && cols < INT32_MAX && inner < INT32_MAX) {
      blas->dgemm(DLRT_CBLAS_ROW_MAJOR, DLRT_CBLAS_NO_TRANS, DLRT_CBLAS_NO_TRANS, (int)rows, (int)cols,
                  (int)inner, 1, a->v, (int)inner, b->v, (int)cols, 0, t->v, (int)cols);
    } else {
      memset(t->v, 0, sizeof(double) * (size_t)count);
      for (int64_t i = 0; i < rows; i++)                  /* row by row: b's rows in order */
        for (int64_t k = 0; k < inner; k++)
          for (int64_t j = 0; j < cols; j++)
            t->v[i * cols + j] += a->v[i * inner + k] * b->v[k * cols + j];
    }
    for (int64_t k = 0; k < count; k++)
      t->v[k] = dlrt_round(t->v[k], f64);
    return true;
  }
  case OP_TRANSPOSE: {
    const Tensor *a = arg_value(e, n, 0);
    int64_t rows = shape_rows(a->shape), cols = shape_cols(a->shape);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++)
        t->v[j * rows + i] = a->v[i * cols + j];
    return true;
  }
  case OP_RSUM:
  case OP_RMAX:
  case OP_RMIN:
  case OP_ARGMAX: {
    const Tensor *a = arg_value(e, n, 0);
    int64_t rows = shape_rows(a->shape), cols = shape_cols(a->shape);
    int64_t outer = n->slot == 0 ? cols : rows, len = n->slot == 0 ? rows : cols;
    for (int64_t o = 0; o < outer; o++) {
      double acc = n->op == OP_RSUM ? 0 : a->v[n->slot == 0 ? o : o * cols];
      int64_t best = 0;
      for (int64_t k = 0; k < len; k++) {
        double x = a->v[n->slot == 0 ? k * cols + o : o * cols + k];
        if (n->op == OP_RSUM)
          acc += x;
        else if (isnan(x) || (!isnan(acc) && (n->op == OP_RMIN ? x < acc : x > acc))) {
          if (!isnan(acc))                      /* the first NaN wins, as in torch.max */
            acc = x, best = k;
        }
      }
      t->v[o] = n->op == OP_ARGMAX ? (double)best : dlrt_round(acc, f64);
    }
    return true;
  }
  case OP_SLICE:
  case OP_PAD: {
    const Tensor *a = arg_value(e, n, 0);
    bool pad = n->op == OP_PAD;
    Shape big = pad ? n->shape : a->shape, small = pad ? a->shape : n->shape;
    int64_t bc = shape_cols(big), sc = shape_cols(small);
    if (pad)
      memset(t->v, 0, sizeof(double) * (size_t)count);
    for (int64_t i = 0; i < shape_rows(small); i++)
      for (int64_t j = 0; j < sc; j++) {
        int64_t at = (i + n->pos[0]) * bc + j + n->pos[1];
        if (pad)
          t->v[at] = a->v[i * sc + j];
        else
          t->v[i * sc + j] = a->v[at];
      }
    return true;
  }
  case OP_BROADCAST: {
    const Tensor *a = arg_value(e, n, 0);
    for (int64_t k = 0; k < count; k++)
      t->v[k] = a->v[bcast_index(a->shape, n->shape, k)];
    return true;
  }
  case OP_WHERE: {
    const Tensor *c = arg_value(e, n, 0), *a = arg_value(e, n, 1), *b = arg_value(e, n, 2);
    for (int64_t k = 0; k < count; k++)
      t->v[k] = c->v[bcast_index(c->shape, n->shape, k)] != 0 ? a->v[bcast_index(a->shape, n->shape, k)]
                                                              : b->v[bcast_index(b->shape, n->shape, k)];
    return true;
  }
  default: {
    const Tensor *a = arg_value(e, n, 0), *b = n->nargs > 1 ? arg_value(e, n, 1) : NULL;
    for (int64_t k = 0; k < count; k++)
      t->v[k] = eval_scalar_op(n->op, a->v[bcast_index(a->shape, n->shape, k)],
                               b ? b->v[bcast_index(b->shape, n->shape, k)] : 0, f64);
    return true;
  }
  }
}

/* Evaluates root and whatever it needs that is not evaluated yet, in
 * post-order without recursion (a node once all the arguments it needs
 * are); appends them to *done in that order. */
static bool eval_walk(Eval *e, Node *root, NodeList *done) {
  NodeList stack = {0};
  nodelist_push(&stack, root);
  bool ok = true;
  while (stack.n && ok) {
    Node *n = stack.items[stack.n - 1];
    if (nodemap_get(&e->vals, n)) {
      stack.n--;
      continue;
    }
    int first, count = needed_args(n, &first);
    bool ready = true;
    for (int i = first; i < first + count; i++)
      if (!nodemap_get(&e->vals, n->args[i])) {
        nodelist_push(&stack, n->args[i]);
        ready = false;
      }
    if (!ready)
      continue;
    stack.n--;
    ok = eval_one(e, n);
    if (nodemap_get(&e->vals, n))              /* (not when it had no memory) */
      nodelist_push(done, n);
  }
  nodelist_free(&stack);
  return ok;
}

static void eval_free(Eval *e, NodeList *done) {
  for (int i = 0; i < done->n; i++) {
    Tensor *t = nodemap_get(&e->vals, done->items[i]);
    free(t->v);
    free(t);
  }
  nodelist_free(done);
  nodemap_free(&e->vals);
}

bool eval_node(const Program *p, Node *root, Node *const *vars, const double *values, int nvars,
               Tensor *out, char **err) {
  Eval e = {.p = p, .vars = vars, .values = values, .nvars = nvars};
  NodeList done = {0};
  bool ok = eval_walk(&e, root, &done);
  if (ok) {
    Tensor *r = nodemap_get(&e.vals, root);
    *out = *r;
    r->v = NULL;              /* the result moves to the caller */
  } else {
    *err = e.err;
  }
  eval_free(&e, &done);
  return ok;
}

static bool all_finite(const Tensor *t) {
  for (int64_t k = 0; k < shape_numel(t->shape); k++)
    if (!isfinite(t->v[k]))
      return false;
  return true;
}

const Node *eval_first_nonfinite(const Program *p, Node *const *roots, int nroots) {
  Eval e = {.p = p};
  NodeList done = {0};
  bool ok = true;
  for (int r = 0; r < nroots && ok; r++)
    ok = eval_walk(&e, roots[r], &done);
  const Node *culprit = NULL;
  for (int i = 0; ok && i < done.n && !culprit; i++) {
    Node *n = done.items[i];
    if (all_finite(nodemap_get(&e.vals, n)))
      continue;
    int first, count = needed_args(n, &first);
    bool inputs_finite = true;
    for (int k = first; k < first + count; k++)
      inputs_finite &= all_finite(nodemap_get(&e.vals, n->args[k]));
    if (inputs_finite)
      culprit = n;
  }
  free(e.err);
  eval_free(&e, &done);
  return culprit;
}

/* `0 / 0` or `log(0)` written out: NaN or an infinity on purpose (§2 says
 * to write `0 / 0` for NaN), nothing to warn about. */
static bool of_literals(const Node *n) {
  for (int i = 0; i < n->nargs; i++)
    if (n->args[i]->op != OP_CONST)
      return false;
  return n->nargs > 0;
}

void eval_warn_nonfinite(Program *p, Node *n, const Tensor *t) {
  int64_t count = shape_numel(t->shape), bad = 0, first = -1;
  for (int64_t k = 0; k < count; k++)
    if (!isfinite(t->v[k])) {
      bad++;
      first = first < 0 ? k : first;
    }
  const Node *at = bad ? eval_first_nonfinite(p, &n, 1) : NULL;
  if (!at || !at->span.src || of_literals(at))
    return;
  for (int i = 0; i < p->diags->n; i++)         /* said already (a sum of it, another train) */
    if (p->diags->items[i].level == DIAG_WARNING && p->diags->items[i].span.src == at->span.src &&
        p->diags->items[i].span.begin == at->span.begin)
      return;
  const char *op = op_info[at->op].spelling;
  if (t->shape.rank == 0)
    diag_add(p->diags, DIAG_WARNING, at->span, "this '%s' gives %s", op,
             isnan(t->v[0]) ? "NaN" : "an infinity");
  else
    diag_add(p->diags, DIAG_WARNING, at->span,
             "this '%s' gives NaN or an infinity for %lld of the %lld values (the first at index %lld)",
             op, (long long)bad, (long long)count, (long long)first);
}
