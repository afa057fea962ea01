/* repl.c — `dlc repl`: an interactive session.
 *
 * The session is its definitions (params, definitions, fns, the loss), each
 * kept as the text that was typed, and the params' current values. A
 * definition — new, or replacing one of the same name — rebuilds the
 * program from all definitions in dependency order, so whatever uses a
 * redefined name sees the new one; params keep their trained values unless
 * they are redefined. A build that fails leaves the session as it was. An
 * action (an expression, print, train) is checked against the built
 * program and run; a train's params become the session's. Every train
 * is compiled into the one JIT of the session and removed from it once it
 * has run, so a long session's memory stays flat.
 *
 * Input is read a line at a time (libedit on a terminal, plain reads
 * otherwise) and collected until it parses: an open parenthesis or a
 * trailing operator continues the statement, a fn stays open for `deriv`
 * lines until an empty line or another statement. Lines are numbered for
 * the whole session, so a diagnostic names the line as it was typed.
 */
#include "dlc.h"

#include <ctype.h>
#include <errno.h>
#include <histedit.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A definition in force: its name ("loss" for the loss) and its text,
 * padded with newlines and spaces so that it sits at the line and column
 * where it was typed. */
typedef struct Def {
  char *name;
  char *source;                                  /* "<stdin>" or the :load file */
  char *text;
  StmtKind kind;
} Def;

/* A param's current value, by name. */
typedef struct Value {
  char *name;
  Tensor t;
  bool trained;                                  /* changed by a train since defined */
} Value;

/* A file being read by :load, to refuse a :load of it inside itself. */
typedef struct Loading {
  dev_t dev;
  ino_t ino;
  struct Loading *outer;
} Loading;

typedef struct Session {
  Options opts;
  bool terminal;                                 /* prompts, line editing, history */
  bool time;                                     /* :time */
  Def *defs;
  int ndefs;
  Value *values;
  int nvalues;
  /* The definitions, built. */
  Arena *arena;
  Diags diags;
  Program *prog;
  /* Kept from one build to the next. */
  Runner *runner;                                /* the JIT, the team, --time's figures */
  int line;                                      /* lines read so far */
  bool failed;                                   /* an error was reported */
  const char *cmd_source;                        /* the command being run: where it was typed */
  const char *cmd_line;
  int cmd_at;
  EditLine *el;
  History *hist;
  char history_path[4096];
  Loading *loading;                              /* the :load files open, innermost first */
} Session;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
  dlrt_interrupt = 1;
}

/* ---- definitions and builds */

static Value *find_value(Session *s, const char *name) {
  for (int i = 0; i < s->nvalues; i++)
    if (strcmp(s->values[i].name, name) == 0)
      return &s->values[i];
  return NULL;
}

static void forget_value(Session *s, const char *name) {
  Value *v = find_value(s, name);
  if (!v)
    return;
  free(v->name);
  free(v->t.v);
  *v = s->values[--s->nvalues];
}

/* The session's values from a program's params. */
static void keep_values(Session *s, const Program *p, bool trained) {
  for (int i = 0; i < p->nparams; i++) {
    const ParamInfo *pi = &p->params[i];
    Value *v = find_value(s, pi->name);
    if (!v) {
      s->values = xrealloc(s->values, sizeof(Value) * (size_t)(s->nvalues + 1));
      v = &s->values[s->nvalues++];
      *v = (Value){xstrdup(pi->name), {pi->value.shape, NULL}, false};
    }
    size_t n = (size_t)shape_numel(pi->value.shape);
    free(v->t.v);
    v->t = (Tensor){pi->value.shape, xmalloc(sizeof(double) * (n ? n : 1))};
    memcpy(v->t.v, pi->value.v, sizeof(double) * n);
    v->trained |= trained;
  }
}

/* Does text mention name as a whole word? (Dependencies between
 * definitions; a mention in a comment or string only orders more.) */
static bool mentions(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    bool before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
    bool after = isalnum((unsigned char)p[n]) || p[n] == '_';
    if (!before && !after)
      return true;
  }
  return false;
}

/* The definitions in an order where each comes after what it mentions,
 * else in the order they were first made (a mention cycle is an error sema
 * reports). */
static int *build_order(const Session *s) {
  int n = s->ndefs, *order = xmalloc(sizeof(int) * (size_t)(n + 1));
  bool *placed = xcalloc((size_t)n + 1, 1);
  for (int k = 0; k < n; k++) {
    int pick = -1;
    for (int i = 0; i < n && pick < 0; i++) {
      if (placed[i])
        continue;
      bool ready = true;
      for (int j = 0; j < n && ready; j++)
        ready = placed[j] || j == i || !mentions(s->defs[i].text, s->defs[j].name);
      if (ready)
        pick = i;
    }
    for (int i = 0; i < n && pick < 0; i++)
      if (!placed[i])
        pick = i;
    placed[pick] = true;
    order[k] = pick;
  }
  free(placed);
  return order;
}

static void drop_program(Session *s) {
  if (!s->prog)
    return;
  program_free(s->prog);
  arena_free(s->arena);
  diag_free(&s->diags);
  s->prog = NULL;
  s->arena = NULL;
}

/* Builds the program of the definitions; on failure prints why and keeps
 * the program that was. `fresh` names a param whose value is not carried
 * over (it was just redefined). */
static bool build(Session *s, const char *fresh) {
  Arena *a = arena_new();
  Diags d = {0};
  Program *p = program_new(a, &d, s->opts);
  int *order = build_order(s);
  for (int k = 0; k < s->ndefs; k++) {
    const Def *def = &s->defs[order[k]];
    Source *src = source_new(a, def->source, def->text, strlen(def->text));
    sema_program(p, parse_source(src, a, &d));
  }
  free(order);
  if (d.nerrors) {
    fflush(stdout);
    diag_print(&d, stderr);
    program_free(p);
    arena_free(a);
    diag_free(&d);
    s->failed = true;
    return false;
  }
  for (int i = 0; i < p->nparams; i++) {
    Value *v = find_value(s, p->params[i].name);
    if (v && !(fresh && strcmp(fresh, v->name) == 0) && shape_eq(v->t.shape, p->params[i].value.shape))
      memcpy(p->params[i].value.v, v->t.v, sizeof(double) * (size_t)shape_numel(v->t.shape));
  }
  drop_program(s);
  s->arena = a;
  s->diags = d;
  s->prog = p;
  p->diags = &s->diags;
  keep_values(s, p, false);
  return true;
}

/* Adds or replaces the definition `name`; keeps the session as it was when
 * the build fails. */
static void define(Session *s, const char *name, StmtKind kind, const char *source, const char *text) {
  int at = -1;
  for (int i = 0; i < s->ndefs; i++)
    if (strcmp(s->defs[i].name, name) == 0)
      at = i;
  Def old = {0};
  if (at >= 0) {
    old = s->defs[at];
  } else {
    s->defs = xrealloc(s->defs, sizeof(Def) * (size_t)(s->ndefs + 1));
    at = s->ndefs++;
  }
  s->defs[at] = (Def){xstrdup(name), xstrdup(source), xstrdup(text), kind};
  if (build(s, kind == ST_PARAM ? name : NULL)) {
    if (old.name && old.kind == ST_PARAM && kind != ST_PARAM)
      forget_value(s, name);
    if (kind == ST_PARAM) {
      Value *v = find_value(s, name);
      if (v)
        v->trained = false;
    }
    free(old.name);
    free(old.source);
    free(old.text);
    return;
  }
  free(s->defs[at].name);
  free(s->defs[at].source);
  free(s->defs[at].text);
  if (old.name)
    s->defs[at] = old;
  else
    s->ndefs--;
}

/* Runs action statements against the built program. */
static void run_actions(Session *s, const Stmt *st) {
  if (!s->prog && !build(s, NULL))
    return;
  Program *p = s->prog;
  Action **tail = p->actions_tail, *first;
  Stmt one = *st;
  one.next = NULL;
  if (!sema_program(p, &one)) {
    fflush(stdout);
    diag_print(p->diags, stderr);
    s->failed = true;
    p->actions_tail = tail;                      /* nothing of it stays */
    *tail = NULL;
    return;
  }
  first = *tail;
  dlrt_interrupt = 0;
  interrupted = 0;
  bool ok = exec_actions(s->runner, p, first, stdout);
  diag_print(p->diags, stderr);
  s->failed |= !ok;
  bool trained = false;
  for (const Action *a = first; a; a = a->next)
    trained |= a->kind == ACT_TRAIN;
  if (trained)
    keep_values(s, p, true);
}

/* Newlines and spaces that put what follows at line:col, so that a piece
 * of text parsed alone is located where it was typed. */
static void pad_to(Buf *b, int line, int col) {
  for (int i = 1; i < line; i++)
    buf_puts(b, "\n");
  for (int i = 1; i < col; i++)
    buf_puts(b, " ");
}

/* The text of st, padded to its line and column in src. */
static char *stmt_text(const Source *src, const Stmt *st) {
  int end = st->span.end;
  for (const Deriv *dv = st->derivs; dv; dv = dv->next)
    end = dv->span.end > end ? dv->span.end : end;
  int line, col;
  source_line_col(src, st->span.begin, &line, &col);
  Buf b = {0};
  pad_to(&b, line, col);
  buf_printf(&b, "%.*s\n", end - st->span.begin, src->text + st->span.begin);
  return b.data;
}

/* One complete piece of input, which began at line `first_line` of
 * `source`. */
static void process(Session *s, const char *source, const char *text, int first_line) {
  Buf padded = {0};
  pad_to(&padded, first_line, 1);
  buf_puts(&padded, text);
  Arena *a = arena_new();
  Diags d = {0};
  Source *src = source_new(a, source, padded.data, padded.len);
  Stmt *stmts = parse_source(src, a, &d);
  double t0 = now_ms();
  if (d.nerrors) {
    fflush(stdout);
    diag_print(&d, stderr);
    s->failed = true;
  } else {
    for (const Stmt *st = stmts; st; st = st->next) {
      if (st->kind == ST_EXPR) {
        run_actions(s, st);
        continue;
      }
      char *t = stmt_text(src, st);
      define(s, st->kind == ST_LOSS ? "loss" : st->name, st->kind, source, t);
      free(t);
    }
  }
  if (s->time && s->prog)
    exec_print_times(s->runner, now_ms() - t0, stderr);
  memset(s->runner->ms, 0, sizeof s->runner->ms);
  fflush(stdout);
  diag_free(&d);
  arena_free(a);
  buf_free(&padded);
}

/* ---- reading statements */

typedef enum { COMPLETE, INCOMPLETE, FN_OPEN } InputState;

/* Whether text is a whole statement: it is not when the parser ran out of
 * input (an open parenthesis, a trailing operator), and a fn stays open
 * for its deriv lines. */
static InputState classify(const char *text) {
  Arena *a = arena_new();
  Diags d = {0};
  size_t len = strlen(text);
  while (len && isspace((unsigned char)text[len - 1]))
    len--;
  Source *src = source_new(a, "<stdin>", text, strlen(text));
  Stmt *stmts = parse_source(src, a, &d);
  InputState r = COMPLETE;
  for (int i = 0; i < d.n; i++)
    if (d.items[i].level == DIAG_ERROR && d.items[i].span.begin >= (int)len &&
        !strstr(d.items[i].msg, "unterminated string"))
      r = INCOMPLETE;
  const Stmt *last = stmts;
  while (last && last->next)
    last = last->next;
  if (r == COMPLETE && !d.nerrors && last && last->kind == ST_FN)
    r = FN_OPEN;
  d.printed = d.n;
  diag_free(&d);
  arena_free(a);
  return r;
}

static bool blank(const char *line) {
  while (*line && isspace((unsigned char)*line))
    line++;
  return !*line || *line == '#';
}

static bool starts_with(const char *line, const char *word) {
  while (*line == ' ' || *line == '\t')
    line++;
  size_t n = strlen(word);
  return strncmp(line, word, n) == 0 && !isalnum((unsigned char)line[n]) && line[n] != '_';
}

/* ---- commands */

static const char *const commands[] = {":help", ":diff", ":type", ":grad", ":ir", ":llvm",
                                       ":params", ":plot", ":loss", ":load", ":save", ":reset",
                                       ":time", ":quit"};

static const char help_text[] =
    "Statements are as in a .dl file; an expression alone shows its value.\n"
    "A name defined again replaces the old definition; params keep their\n"
    "trained values unless redefined. Ctrl-C stops a train after its step.\n"
    "  :diff EXPR wrt NAME   the simplified derivative, as a formula\n"
    "  :type EXPR            its shape\n"
    "  :grad                 each param's gradient formula for the loss\n"
    "  :ir [NAME]            the IR of a definition (default: the training step)\n"
    "  :llvm [NAME]          the optimized LLVM IR of the training loop of NAME\n"
    "                        (default: the loss)\n"
    "  :params               the params' current values\n"
    "  :plot X, Y, ...       the Ys against X, drawn here in braille (with\n"
    "                        several Ys the first as dots, the rest as lines)\n"
    "  :loss                 the last train's loss, step by step, drawn so\n"
    "  :load FILE.dl         run a file's statements here\n"
    "  :save FILE.dl         write the definitions as a script that rebuilds\n"
    "                        this session (trained vectors go to CSV files)\n"
    "  :reset                forget everything\n"
    "  :time                 toggle phase timings\n"
    "  :quit                 leave (also Ctrl-D)\n";

/* The command line as a source of its own, padded to the line it was
 * typed on, so that a diagnostic shows it with a caret. */
static Source *command_source(Session *s, Arena *a) {
  Buf b = {0};
  pad_to(&b, s->cmd_at, 1);
  buf_puts(&b, s->cmd_line);
  Source *src = source_new(a, s->cmd_source, b.data, b.len);
  buf_free(&b);
  return src;
}

/* An error about the command, located at its text [from, to). */
static void command_error(Session *s, const char *from, const char *to, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void command_error(Session *s, const char *from, const char *to, const char *fmt, ...) {
  Arena *a = arena_new();
  Diags d = {0};
  Source *src = command_source(s, a);
  int base = src->line_start[src->nlines - 1];
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  Span span = {src, base + (int)(from - s->cmd_line), base + (int)(to - s->cmd_line)};
  diag_error(&d, span, "%s", msg);
  fflush(stdout);
  diag_print(&d, stderr);
  diag_free(&d);
  arena_free(a);
  s->failed = true;
}

/* Elaborates the command's text [from, to) as an expression of the
 * session — with `diff(..., wrt)` around it when wrt is given: the node,
 * or NULL with the diagnostics printed. */
static Node *expression(Session *s, const char *from, const char *to, const char *wrt) {
  if (!s->prog && !build(s, NULL))
    return NULL;
  Program *p = s->prog;
  Buf b = {0};
  pad_to(&b, s->cmd_at, (int)(from - s->cmd_line) + 1);
  buf_printf(&b, "%.*s", (int)(to - from), from);
  Source *src = source_new(p->arena, s->cmd_source, b.data, b.len);
  buf_free(&b);
  Stmt *st = parse_source(src, p->arena, p->diags);
  src->text = command_source(s, p->arena)->text;  /* diagnostics show the line as typed */
  if (p->diags->nerrors || !st || st->next || st->kind != ST_EXPR) {
    p->diags->nerrors = 0;
    diag_print(p->diags, stderr);
    if (st && (st->next || st->kind != ST_EXPR))
      command_error(s, from, to, "expected one expression");
    s->failed = true;
    return NULL;
  }
  if (wrt) {
    Span at = st->value->span;
    Arg *of = arena_alloc(p->arena, sizeof *of), *by = arena_alloc(p->arena, sizeof *by);
    of->value = st->value;
    of->next = by;
    by->value = ast_name(p->arena, at, wrt);
    st->value = ast_call(p->arena, at, "diff", at, of);
  }
  Action **tail = p->actions_tail;
  bool ok = sema_program(p, st);
  diag_print(p->diags, stderr);
  p->diags->nerrors = 0;
  Node *n = ok && *tail ? (*tail)->items->node : NULL;
  p->actions_tail = tail;
  *tail = NULL;
  s->failed |= !n;
  return n;
}

static void show_formula(Session *s, Node *n) {
  Buf b = {0};
  ir_format(&b, simplify_node(s->prog->graph, n), s->prog);
  printf("%s\n", b.data ? b.data : "");
  buf_free(&b);
}

static void cmd_diff(Session *s, const char *arg) {
  const char *wrt = NULL, *end = arg + strlen(arg);
  for (const char *p = strstr(arg, "wrt"); p; p = strstr(p + 1, "wrt"))
    if (p > arg && isspace((unsigned char)p[-1]) && isspace((unsigned char)p[3]))
      wrt = p;
  const char *name = wrt ? wrt + 3 : NULL;
  while (name && isspace((unsigned char)*name))
    name++;
  bool is_name = name && (isalpha((unsigned char)*name) || *name == '_');
  for (const char *c = name; is_name && *c; c++)
    is_name = isalnum((unsigned char)*c) || *c == '_';
  if (!wrt || !is_name) {
    command_error(s, arg, end, "expected :diff EXPR wrt NAME");
    return;
  }
  if (!s->prog && !build(s, NULL))
    return;
  Node *n = expression(s, arg, wrt, arena_strdup(s->prog->arena, name));
  if (n)
    show_formula(s, n);
}

static void cmd_type(Session *s, const char *arg) {
  if (!*arg) {
    command_error(s, s->cmd_line, arg, "expected :type EXPR");
    return;
  }
  Node *n = expression(s, arg, arg + strlen(arg), NULL);
  char sh[64];
  if (n)
    printf("%s\n", shape_str(n->shape, sh));
}

static void cmd_grad(Session *s) {
  if (!s->prog && !build(s, NULL))
    return;
  if (!s->prog->loss) {
    command_error(s, s->cmd_line, s->cmd_line + strlen(s->cmd_line), "no loss yet: define one (loss = ...)");
    return;
  }
  if (!exec_emit(s->runner, s->prog, "grad", stdout)) {
    diag_print(s->prog->diags, stderr);
    s->prog->diags->nerrors = 0;
    s->failed = true;
  }
}

static void cmd_params(Session *s) {
  if (!s->prog)
    return;
  for (int i = 0; i < s->prog->nparams; i++) {
    Buf b = {0};
    exec_format_value(&b, &s->prog->params[i].value, s->opts.f64);
    printf("%s = %s\n", s->prog->params[i].name, b.data);
    buf_free(&b);
  }
}

/* The terminal's size in characters; 80 x 24 when it is no terminal. */
static void terminal_size(int *cols, int *rows) {
  struct winsize ws;
  bool known = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row;
  *cols = known ? ws.ws_col : 80;
  *rows = known ? ws.ws_row : 24;
}

/* The end of the expression that starts at `from`: the next comma outside
 * brackets and strings, or the end of the text. */
static const char *expression_end(const char *from) {
  int depth = 0;
  bool quoted = false;
  for (const char *c = from; *c; c++) {
    if (*c == '"')
      quoted = !quoted;
    else if (!quoted && (*c == '(' || *c == '['))
      depth++;
    else if (!quoted && (*c == ')' || *c == ']'))
      depth--;
    else if (!quoted && depth == 0 && *c == ',')
      return c;
  }
  return from + strlen(from);
}

enum { MAX_PLOTTED = 16 };

/* :plot X, Y, ...: each a vector of X's length, valued with the params'
 * current values; drawn as the plot statement draws them. */
static void cmd_plot(Session *s, const char *arg) {
  const char *end = arg + strlen(arg), *from[MAX_PLOTTED], *to[MAX_PLOTTED];
  int n = 0;
  for (const char *c = arg; n < MAX_PLOTTED; c = to[n - 1] + 1) {
    from[n] = c;
    to[n] = expression_end(c);
    if (!*to[n++])
      break;
  }
  bool empty = false;
  for (int i = 0; i < n; i++) {                  /* each piece without its spaces */
    while (from[i] < to[i] && isspace((unsigned char)*from[i]))
      from[i]++;
    while (to[i] > from[i] && isspace((unsigned char)to[i][-1]))
      to[i]--;
    empty |= from[i] == to[i];
  }
  if (n < 2 || empty || *expression_end(from[n - 1])) {
    command_error(s, s->cmd_line, end, "expected :plot X, Y, ... (at most %d Ys)", MAX_PLOTTED - 1);
    return;
  }
  Tensor t[MAX_PLOTTED];
  int made = 0;
  for (; made < n; made++) {
    Node *node = expression(s, from[made], to[made], NULL);
    char *err = NULL, sh[64];
    if (!node)
      break;
    if ((node->flags & NODE_HAS_VAR) || node->shape.rank != 1 ||
        (made && node->shape.dim[0] != t[0].shape.dim[0])) {
      char want[64] = "a vector";
      if (made)
        snprintf(want, sizeof want, "a vector of the first's length (%lld)", (long long)t[0].shape.dim[0]);
      command_error(s, from[made], to[made], ":plot draws %s, not %s", want,
                    node->flags & NODE_HAS_VAR ? "a formula with a free symbol" : shape_str(node->shape, sh));
      break;
    }
    if (!eval_node(s->prog, node, NULL, NULL, 0, &t[made], &err)) {
      command_error(s, from[made], to[made], "%s", err);
      free(err);
      break;
    }
  }
  if (made == n) {
    PlotSeries series[MAX_PLOTTED];
    for (int i = 1; i < n; i++)
      series[i - 1] = (PlotSeries){NULL, t[0].v, t[i].v, t[0].shape.dim[0], i == 1 && n > 2};
    Buf title = {0}, b = {0};
    buf_printf(&title, "%.*s against %.*s", (int)(to[n - 1] - from[1]), from[1], (int)(to[0] - from[0]),
               from[0]);
    Plot pl = {.title = title.data, .series = series, .nseries = n - 1};
    int cols, rows;
    terminal_size(&cols, &rows);
    plot_text(&b, &pl, cols, rows);
    fputs(b.data, stdout);
    buf_free(&b);
    buf_free(&title);
  }
  for (int i = 0; i < made; i++)
    free(t[i].v);
}

static void cmd_loss(Session *s) {
  Runner *r = s->runner;
  if (!r->ncurves || !r->curves[0].n) {
    command_error(s, s->cmd_line, s->cmd_line + strlen(s->cmd_line), "no train has run yet");
    return;
  }
  Buf b = {0};
  int cols, rows;
  terminal_size(&cols, &rows);
  plot_loss_text(&b, &r->curves[r->ncurves - 1], cols, rows);
  fputs(b.data, stdout);
  buf_free(&b);
}

/* :ir and :llvm on the loss, or on the definition NAME used as one. */
static void cmd_emit(Session *s, const char *what, const char *name) {
  if (!s->prog && !build(s, NULL))
    return;
  Program *p = s->prog;
  Node *loss = p->loss;
  if (*name) {
    Node *n = expression(s, name, name + strlen(name), NULL);
    if (!n)
      return;
    if (strcmp(what, "ir") == 0 && n->shape.rank > 0) {
      const char *names[1] = {name};
      ir_dump(&n, names, 1, p, stdout);
      return;
    }
    p->loss = n;
  }
  if (!p->loss) {
    command_error(s, s->cmd_line, s->cmd_line + strlen(s->cmd_line),
                  "no loss yet: define one, or name a scalar");
  } else if (p->loss->shape.rank != 0) {
    command_error(s, name, name + strlen(name), "'%s' is not a scalar", name);
  } else if (!exec_emit(s->runner, p, what, stdout)) {
    diag_print(p->diags, stderr);
    p->diags->nerrors = 0;
    s->failed = true;
  }
  p->loss = loss;
}

/* :save — the definitions in build order; params at their current values
 * (a trained vector or matrix through a CSV file beside the script). */
static void cmd_save(Session *s, const char *path) {
  FILE *f = *path ? fopen(path, "w") : NULL;
  if (!f) {
    command_error(s, path, path + strlen(path), "cannot write '%s': %s", path,
                  *path ? strerror(errno) : "no file named");
    return;
  }
  fprintf(f, "# saved by dlc repl\n");
  int *order = build_order(s);
  for (int k = 0; k < s->ndefs; k++) {
    const Def *def = &s->defs[order[k]];
    Value *v = def->kind == ST_PARAM ? find_value(s, def->name) : NULL;
    if (v && v->trained && v->t.shape.rank == 0) {
      char num[48];
      dlrt_format(num, sizeof num, v->t.v[0], s->opts.f64);
      fprintf(f, "param %s = %s\n", def->name, num);
      continue;
    }
    if (v && v->trained) {
      Buf csv = {0};
      buf_printf(&csv, "%.*s.%s.csv", (int)(strrchr(path, '.') ? strrchr(path, '.') - path : (long)strlen(path)),
                 path, def->name);
      /* A vector as one column named after it; a matrix as its rows,
       * every column read back by load_csv(file). */
      bool matrix = v->t.shape.rank == 2;
      int64_t cols = matrix ? v->t.shape.dim[1] : 1;
      FILE *c = fopen(csv.data, "w");
      if (c) {
        for (int64_t j = 0; j < cols; j++)
          matrix ? fprintf(c, "%s%s_%lld", j ? "," : "", def->name, (long long)j) : fprintf(c, "%s", def->name);
        fputc('\n', c);
        for (int64_t i = 0; i < shape_numel(v->t.shape); i++) {
          char num[48];
          dlrt_format(num, sizeof num, v->t.v[i], s->opts.f64);
          fprintf(c, "%s%c", num, (i + 1) % cols ? ',' : '\n');
        }
        fclose(c);
      }
      const char *base = strrchr(csv.data, '/');
      if (matrix)
        fprintf(f, "param %s = load_csv(\"%s\")\n", def->name, base ? base + 1 : csv.data);
      else
        fprintf(f, "param %s = load_csv(\"%s\", column = \"%s\")\n", def->name, base ? base + 1 : csv.data,
                def->name);
      buf_free(&csv);
      continue;
    }
    const char *t = def->text;
    while (*t == '\n' || *t == ' ')
      t++;
    fputs(t, f);
  }
  free(order);
  fclose(f);
}

static void reset(Session *s) {
  drop_program(s);
  for (int i = 0; i < s->ndefs; i++) {
    free(s->defs[i].name);
    free(s->defs[i].source);
    free(s->defs[i].text);
  }
  free(s->defs);
  s->defs = NULL;
  s->ndefs = 0;
  while (s->nvalues)
    forget_value(s, s->values[0].name);
}

static void load_file(Session *s, const char *path);

/* `line` (line `at` of `source`) is a command. Returns false for :quit. */
static bool command(Session *s, const char *source, char *line, int at) {
  for (size_t n = strlen(line); n && isspace((unsigned char)line[n - 1]);)
    line[--n] = '\0';
  s->cmd_source = source;
  s->cmd_line = line;
  s->cmd_at = at;
  while (isspace((unsigned char)*line))
    line++;
  char *a = line;
  while (*a && !isspace((unsigned char)*a))
    a++;
  int len = (int)(a - line);
  while (isspace((unsigned char)*a))
    a++;
#define IS(cmd) (len == (int)strlen(cmd) && strncmp(line, cmd, (size_t)len) == 0)
  bool go_on = true;
  if (IS(":help"))
    fputs(help_text, stdout);
  else if (IS(":diff"))
    cmd_diff(s, a);
  else if (IS(":type"))
    cmd_type(s, a);
  else if (IS(":grad"))
    cmd_grad(s);
  else if (IS(":ir"))
    cmd_emit(s, "ir", a);
  else if (IS(":llvm"))
    cmd_emit(s, "llvm", a);
  else if (IS(":params"))
    cmd_params(s);
  else if (IS(":plot"))
    cmd_plot(s, a);
  else if (IS(":loss"))
    cmd_loss(s);
  else if (IS(":load"))
    load_file(s, a);
  else if (IS(":save"))
    cmd_save(s, a);
  else if (IS(":reset"))
    reset(s);
  else if (IS(":time"))
    printf("timings %s\n", (s->time = !s->time) ? "on" : "off");
  else if (IS(":quit") || IS(":q"))
    go_on = false;
  else
    command_error(s, line, line + len, "unknown command '%.*s' (:help lists them)", len, line);
#undef IS
  fflush(stdout);
  return go_on;
}

/* ---- the input loop */

/* Feeds lines to `process`, a statement at a time. */
typedef struct Reader {
  Buf pending;
  int first_line;
  bool fn_open;
} Reader;

static void flush_pending(Session *s, Reader *r, const char *source) {
  if (r->pending.len)
    process(s, source, r->pending.data, r->first_line);
  buf_free(&r->pending);
  r->pending = (Buf){0};
  r->fn_open = false;
}

/* One line (without its newline) at line number `at`. Returns false for
 * :quit. */
static bool feed(Session *s, Reader *r, const char *source, char *line, int at) {
  if (r->fn_open) {
    if (blank(line)) {
      flush_pending(s, r, source);
      return true;
    }
    if (!starts_with(line, "deriv"))
      flush_pending(s, r, source);
  }
  if (!r->pending.len) {
    if (blank(line))
      return true;
    const char *c = line;
    while (isspace((unsigned char)*c))
      c++;
    if (*c == ':')
      return command(s, source, line, at);
    r->first_line = at;
  }
  buf_printf(&r->pending, "%s\n", line);
  InputState shape = classify(r->pending.data);
  if (shape == INCOMPLETE)
    return true;
  if (shape == FN_OPEN) {
    r->fn_open = true;
    return true;
  }
  flush_pending(s, r, source);
  return true;
}

/* The line of f's first NUL byte, 0 when there is none; f is read
 * through and rewound. */
static int nul_line(FILE *f) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int at = 0, found = 0;
  while (!found && (n = getline(&line, &cap, f)) >= 0) {
    at++;
    if (memchr(line, '\0', (size_t)n))
      found = at;
  }
  free(line);
  rewind(f);
  return found;
}

/* Opens a file to :load: a regular text file (not a directory, a device
 * that never ends, a FIFO that blocks) that is not being loaded already. */
static FILE *open_to_load(Session *s, const char *path, struct stat *st) {
  const char *why = "no file named";
  int fd = *path ? dlrt_open_regular(path, st, &why) : -1;
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  if (!f) {
    command_error(s, path, path + strlen(path), "cannot open '%s': %s", path, fd >= 0 ? strerror(errno) : why);
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  for (const Loading *l = s->loading; l; l = l->outer)
    if (l->dev == st->st_dev && l->ino == st->st_ino) {
      command_error(s, path, path + strlen(path), "'%s' is being loaded already: a :load inside it loads it again",
                    path);
      fclose(f);
      return NULL;
    }
  int nul = nul_line(f);
  if (nul) {
    command_error(s, path, path + strlen(path), "'%s' is not a text file (its line %d holds a NUL byte)", path,
                  nul);
    fclose(f);
    return NULL;
  }
  return f;
}

static void load_file(Session *s, const char *path) {
  struct stat st;
  FILE *f = open_to_load(s, path, &st);
  if (!f)
    return;
  path = xstrdup(path);                           /* the command line is reused below */
  Loading here = {st.st_dev, st.st_ino, s->loading};
  s->loading = &here;
  Reader r = {0};
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int at = 0;
  while ((n = getline(&line, &cap, f)) >= 0) {
    if (n && line[n - 1] == '\n')
      line[--n] = '\0';
    char *text = at == 0 && strncmp(line, "\xEF\xBB\xBF", 3) == 0 ? line + 3 : line;   /* a UTF-8 BOM */
    if (!feed(s, &r, path, text, ++at))
      break;
  }
  flush_pending(s, &r, path);
  s->loading = here.outer;
  free(line);
  fclose(f);
  free((char *)path);
}

static const char *prompt_main(EditLine *el) {
  (void)el;
  return "dl> ";
}

static const char *prompt_more(EditLine *el) {
  (void)el;
  return "... ";
}

/* Tab: completes the name or command before the cursor. */
static unsigned char complete(EditLine *el, int ch) {
  (void)ch;
  Session *s;
  el_get(el, EL_CLIENTDATA, &s);
  const LineInfo *li = el_line(el);
  const char *start = li->cursor;
  while (start > li->buffer && (isalnum((unsigned char)start[-1]) || start[-1] == '_' || start[-1] == ':'))
    start--;
  size_t n = (size_t)(li->cursor - start);
  const char *cands[512];
  int nc = 0;
  for (size_t i = 0; i < sizeof commands / sizeof *commands && nc < 512; i++)
    cands[nc++] = commands[i];
  for (int i = 0; sema_builtin_name(i) && nc < 512; i++)
    cands[nc++] = sema_builtin_name(i);
  for (int i = 0; i < s->ndefs && nc < 512; i++)
    cands[nc++] = s->defs[i].name;
  const char *match[512];
  int nm = 0;
  for (int i = 0; i < nc; i++)
    if (strncmp(cands[i], start, n) == 0)
      match[nm++] = cands[i];
  if (!nm)
    return CC_ERROR;
  size_t common = strlen(match[0]);
  for (int i = 1; i < nm; i++)
    for (size_t k = 0; k < common; k++)
      if (match[i][k] != match[0][k]) {
        common = k;
        break;
      }
  if (common > n) {
    char add[256];
    snprintf(add, sizeof add, "%.*s%s", (int)(common - n), match[0] + n, nm == 1 ? " " : "");
    el_insertstr(el, add);
    return CC_REFRESH;
  }
  fputc('\n', stdout);
  for (int i = 0; i < nm; i++)
    printf("%s%s", match[i], i + 1 < nm ? "  " : "\n");
  return CC_REDISPLAY;
}

/* Waits until stdin has input; false on Ctrl-C. SIGINT is blocked except
 * inside ppoll, so one that comes between the check and the wait still
 * ends the wait. */
static bool wait_input(void) {
  sigset_t sigint, old;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, &old);
  sigset_t waiting = old;
  sigdelset(&waiting, SIGINT);
  struct pollfd in = {STDIN_FILENO, POLLIN, 0};
  int r = 0;
  while (!interrupted && (r = ppoll(&in, 1, NULL, &waiting)) < 0 && errno == EINTR)
    ;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return !interrupted && r > 0;
}

/* libedit's own read retries after a signal; this one gives up on Ctrl-C,
 * so that el_gets returns and the line is dropped. UTF-8 in, wide out. */
static int read_char(EditLine *el, wchar_t *wc) {
  (void)el;
  unsigned char b;
  ssize_t n;
  if (!wait_input())
    return -1;
  while ((n = read(STDIN_FILENO, &b, 1)) < 0)
    if (errno != EINTR)
      return -1;
  if (n == 0)
    return 0;
  int more = b < 0x80 ? 0 : b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : 0;
  wchar_t v = more ? b & (0x3F >> more) : b;
  for (int i = 0; i < more; i++) {
    if (read(STDIN_FILENO, &b, 1) != 1)
      return -1;
    v = (v << 6) | (b & 0x3F);
  }
  *wc = v;
  return 1;
}

static void editor_open(Session *s) {
  s->el = el_init("dlc", stdin, stdout, stderr);
  el_set(s->el, EL_EDITOR, "emacs");
  el_set(s->el, EL_GETCFN, read_char);
  el_set(s->el, EL_CLIENTDATA, s);
  el_set(s->el, EL_ADDFN, "dlc-complete", "complete a name", complete);
  el_set(s->el, EL_BIND, "^I", "dlc-complete", NULL);
  s->hist = history_init();
  HistEvent ev;
  history(s->hist, &ev, H_SETSIZE, 1000);
  history(s->hist, &ev, H_SETUNIQUE, 1);
  const char *home = getenv("HOME");
  if (home) {
    snprintf(s->history_path, sizeof s->history_path, "%s/.dlc_history", home);
    history(s->hist, &ev, H_LOAD, s->history_path);
  }
  el_set(s->el, EL_HIST, history, s->hist);
}

static void editor_close(Session *s) {
  HistEvent ev;
  if (s->history_path[0])
    history(s->hist, &ev, H_SAVE, s->history_path);
  history_end(s->hist);
  el_end(s->el);
}

/* A line from the terminal, without its newline; NULL at the end (Ctrl-D).
 * Ctrl-C gives an empty line back and drops what was pending. */
static char *read_terminal(Session *s, bool more, bool *cancelled) {
  el_set(s->el, EL_PROMPT, more ? prompt_more : prompt_main);
  int n;
  interrupted = 0;
  const char *line = el_gets(s->el, &n);
  *cancelled = false;
  if (!line) {
    if (interrupted) {
      fputs("^C\n", stdout);
      *cancelled = true;
      return xstrdup("");
    }
    return NULL;
  }
  char *copy = xstrdup(line);
  size_t len = strlen(copy);
  if (len && copy[len - 1] == '\n')
    copy[--len] = '\0';
  if (!blank(copy)) {
    HistEvent ev;
    history(s->hist, &ev, H_ENTER, copy);
  }
  return copy;
}

int repl_main(Options opts) {
  Session s = {.opts = opts, .terminal = isatty(0) && isatty(1), .runner = runner_new()};
  s.runner->curves_kept = CURVES_LAST;           /* for :loss */
  struct sigaction sa = {0};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);                 /* no SA_RESTART: Ctrl-C ends a read */
  if (s.terminal) {
    editor_open(&s);
    printf("dlc %s: a dl session; :help for commands, Ctrl-D to leave\n", DLC_VERSION);
  }
  Reader r = {0};
  for (;;) {
    char *line = NULL;
    if (s.terminal) {
      bool cancelled;
      line = read_terminal(&s, r.pending.len > 0, &cancelled);
      if (cancelled) {
        buf_free(&r.pending);
        r = (Reader){0};
        free(line);
        continue;
      }
    } else {
      size_t cap = 0;
      ssize_t n = getline(&line, &cap, stdin);
      if (n < 0) {
        free(line);
        line = NULL;
      } else if (n && line[n - 1] == '\n') {
        line[n - 1] = '\0';
      }
    }
    if (!line)
      break;
    bool go_on = feed(&s, &r, "<stdin>", line, ++s.line);
    free(line);
    if (!go_on)
      break;
  }
  flush_pending(&s, &r, "<stdin>");
  if (s.terminal) {
    editor_close(&s);
    fputc('\n', stdout);
  }
  reset(&s);
  free(s.values);
  runner_free(s.runner);
  return s.failed && !s.terminal ? 1 : 0;         /* a script's errors fail it; a person saw them */
}
