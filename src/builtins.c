/* builtins.c — the table of built-in names.
 *
 * Every function a program calls without defining it, and what checking a
 * call to it needs before anything is elaborated: its kind (which says who
 * elaborates it), its Op where it is one, and the names of its parameters
 * in order, the first nrequired of them required. Named arguments, the
 * "did you mean" of a misspelt call or optimizer, the refusal to redefine a
 * built-in name and the REPL's completion all read these names; sema.c,
 * data.c and matrix.c read the entries. Being data that all of them
 * consult, the table is a file of its own rather than any one's. An
 * elementwise built-in is one line here once its Op is in ops.def.
 */
#include "dlc.h"

#include <string.h>

const Builtin builtins[] = {
  {"sin", B_ELEM, OP_SIN, 1, {"x"}},
  {"cos", B_ELEM, OP_COS, 1, {"x"}},
  {"tan", B_ELEM, OP_TAN, 1, {"x"}},
  {"exp", B_ELEM, OP_EXP, 1, {"x"}},
  {"log", B_ELEM, OP_LOG, 1, {"x"}},
  {"sqrt", B_ELEM, OP_SQRT, 1, {"x"}},
  {"tanh", B_ELEM, OP_TANH, 1, {"x"}},
  {"sigmoid", B_ELEM, OP_SIGMOID, 1, {"x"}},
  {"abs", B_ELEM, OP_ABS, 1, {"x"}},
  {"sign", B_ELEM, OP_SIGN, 1, {"x"}},
  {"log1p", B_ELEM, OP_LOG1P, 1, {"x"}},
  {"expm1", B_ELEM, OP_EXPM1, 1, {"x"}},
  {"atan", B_ELEM, OP_ATAN, 1, {"x"}},
  {"relu", B_ELEM, OP_RELU, 1, {"x"}},
  {"softplus", B_ELEM, OP_SOFTPLUS, 1, {"x"}},
  {"min", B_MAXMIN, OP_MIN, 1, {"a", "b", "axis"}},
  {"max", B_MAXMIN, OP_MAX, 1, {"a", "b", "axis"}},
  {"pow", B_ELEM, OP_POW, 2, {"a", "b"}},
  {"where", B_ELEM, OP_WHERE, 3, {"cond", "a", "b"}},
  {"sum", B_REDUCE, OP_SUM, 1, {"v", "axis"}},
  {"mean", B_REDUCE, OP_MEAN, 1, {"v", "axis"}},
  {"logsumexp", B_LOGSUMEXP, 0, 1, {"x", "axis"}},
  {"softmax", B_SOFTMAX, 0, 1, {"x", "axis"}},
  {"log_softmax", B_LOG_SOFTMAX, 0, 1, {"x", "axis"}},
  {"argmax", B_ARGMAX, 0, 1, {"x", "axis"}},
  {"onehot", B_ONEHOT, 0, 2, {"labels", "k"}},
  {"transpose", B_TRANSPOSE, 0, 1, {"a"}},
  {"stack", B_STACK, 0, 1, {0}},
  {"concat", B_CONCAT, 0, 1, {0}},
  {"len", B_LEN, 0, 1, {"v"}},
  {"linspace", B_LINSPACE, 0, 3, {"start", "stop", "n"}},
  {"zeros", B_ZEROS, 0, 1, {"n", "cols"}},
  {"ones", B_ONES, 0, 1, {"n", "cols"}},
  {"fill", B_FILL, 0, 2, {"n", "value", "cols"}},
  {"rand", B_RAND, 0, 1, {"n", "cols", "seed"}},
  {"randn", B_RANDN, 0, 1, {"n", "cols", "seed"}},
  {"eye", B_EYE, 0, 1, {"n"}},
  {"load_csv", B_LOAD_CSV, 0, 1, {"path", "column", "columns"}},
  {"diff", B_DIFF, 0, 2, {"expr", "wrt"}},
  {"train", B_TRAIN, 0, 0, {"steps", "optimizer", "log_every", "epochs", "batch", "shuffle"}},
  {"print", B_PRINT, 0, 0, {0}},
  {"plot", B_PLOT, 0, 0, {0}},
  {"sgd", B_OPTIMIZER, OPT_SGD, 1, {"lr", "momentum"}},
  {"adam", B_OPTIMIZER, OPT_ADAM, 0, {"lr", "beta1", "beta2", "eps"}},
  {"rmsprop", B_OPTIMIZER, OPT_RMSPROP, 0, {"lr", "alpha", "eps"}},
};
const int nbuiltins = sizeof builtins / sizeof builtins[0];

const char *sema_builtin_name(int i) {
  static const char *const constants[] = {"pi", "inf"};
  if (i < nbuiltins)
    return builtins[i].name;
  return i - nbuiltins < 2 ? constants[i - nbuiltins] : NULL;
}

const Builtin *find_builtin(const char *name) {
  for (int i = 0; i < nbuiltins; i++)
    if (strcmp(builtins[i].name, name) == 0)
      return &builtins[i];
  return NULL;
}

int nparams_of(const Builtin *b) {
  int n = 0;
  while (n < MAX_PARAMS && b->params[n])
    n++;
  return n;
}

bool is_constant_name(const char *name) {
  return strcmp(name, "pi") == 0 || strcmp(name, "inf") == 0;
}
