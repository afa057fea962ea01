/* ast.c — the syntax tree: its constructors, the op table, and its printer.
 *
 * Nodes are arena-allocated and never freed on their own; the parser is
 * their only builder. The printer (`dlc emit ast`) writes one node a line
 * as an indented s-expression with each node's line:column, so a dump is
 * easy to read and to diff against a golden file.
 */
#include "dlc.h"

#include <stdlib.h>

const OpInfo op_info[OP_COUNT] = {
#define X(name, spelling, arity, kind, prec, rule) {#name, spelling, arity, kind, prec},
#include "ops.def"
#undef X
};

static Expr *new_expr(Arena *a, ExprKind kind, Span s) {
  Expr *e = arena_alloc(a, sizeof *e);
  e->kind = kind;
  e->span = s;
  e->depth = 1;
  return e;
}

static void below(Expr *e, const Expr *child) {
  if (child && child->depth + 1 > e->depth)
    e->depth = child->depth + 1;
}

Expr *ast_num(Arena *a, Span s, double v) {
  Expr *e = new_expr(a, EX_NUM, s);
  e->num = v;
  return e;
}

Expr *ast_name(Arena *a, Span s, const char *name) {
  Expr *e = new_expr(a, EX_NAME, s);
  e->name = name;
  return e;
}

Expr *ast_str(Arena *a, Span s, StrPart *parts) {
  Expr *e = new_expr(a, EX_STR, s);
  e->parts = parts;
  for (const StrPart *part = parts; part; part = part->next)
    below(e, part->expr);
  return e;
}

Expr *ast_unary(Arena *a, Span s, Op op, Expr *x) {
  Expr *e = new_expr(a, EX_UNARY, s);
  e->op = op;
  e->lhs = x;
  below(e, x);
  return e;
}

Expr *ast_binary(Arena *a, Span s, Op op, Expr *l, Expr *r) {
  Expr *e = new_expr(a, EX_BINARY, s);
  e->op = op;
  e->lhs = l;
  e->rhs = r;
  below(e, l);
  below(e, r);
  return e;
}

static Expr *with_args(Arena *a, ExprKind kind, Span s, Arg *args) {
  Expr *e = new_expr(a, kind, s);
  e->args = args;
  for (const Arg *g = args; g; g = g->next)
    below(e, g->value);
  return e;
}

Expr *ast_call(Arena *a, Span s, const char *name, Span name_span, Arg *args) {
  Expr *e = with_args(a, EX_CALL, s, args);
  e->name = name;
  e->name_span = name_span;
  return e;
}

Expr *ast_index(Arena *a, Span s, Expr *base, Arg *indices) {
  Expr *e = with_args(a, EX_INDEX, s, indices);
  e->lhs = base;
  below(e, base);
  return e;
}

Expr *ast_slice(Arena *a, Span s, Expr *lo, Expr *hi) {
  Expr *e = new_expr(a, EX_SLICE, s);
  e->lhs = lo;
  e->rhs = hi;
  below(e, lo);
  below(e, hi);
  return e;
}

Expr *ast_list(Arena *a, Span s, Arg *items) { return with_args(a, EX_LIST, s, items); }

Stmt *ast_stmt(Arena *a, StmtKind kind, Span s) {
  Stmt *st = arena_alloc(a, sizeof *st);
  st->kind = kind;
  st->span = s;
  return st;
}

/* ---- the printer */

/* Integers as integers ("2000", not "2e+03"); anything else as the
 * shortest %g text that reads back to v. */
static void put_num(FILE *out, double v) {
  char buf[32];
  if (v > -1e16 && v < 1e16 && v == (double)(long long)v) {
    fprintf(out, "%lld", (long long)v);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  fputs(buf, out);
}

static void put_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", out);
    else if (c == '\t')
      fputs("\\t", out);
    else if (c < ' ' || c == 127)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

static void put_loc(FILE *out, Span s) {
  if (!s.src)
    return;
  int line, col;
  source_line_col(s.src, s.begin, &line, &col);
  fprintf(out, " @%d:%d", line, col);
}

static void newline(FILE *out, int depth) { fprintf(out, "\n%*s", 2 * depth, ""); }

static void dump_expr(const Expr *e, int depth, FILE *out) {
  switch (e->kind) {
  case EX_NUM:
    fputs("(num ", out);
    put_num(out, e->num);
    put_loc(out, e->span);
    break;
  case EX_NAME:
    fprintf(out, "(name %s", e->name);
    put_loc(out, e->span);
    break;
  case EX_STR:
    fputs("(str", out);
    put_loc(out, e->span);
    for (const StrPart *s = e->parts; s; s = s->next) {
      newline(out, depth + 1);
      if (s->text)
        put_str(out, s->text);
      else
        dump_expr(s->expr, depth + 1, out);
    }
    break;
  case EX_UNARY:
  case EX_BINARY:
    fprintf(out, "(%s", op_info[e->op].spelling);
    put_loc(out, e->span);
    newline(out, depth + 1);
    dump_expr(e->lhs, depth + 1, out);
    if (e->kind == EX_BINARY) {
      newline(out, depth + 1);
      dump_expr(e->rhs, depth + 1, out);
    }
    break;
  case EX_SLICE:
    fputs("(slice", out);
    put_loc(out, e->span);
    for (int i = 0; i < 2; i++) {
      newline(out, depth + 1);
      const Expr *end = i ? e->rhs : e->lhs;
      if (end)
        dump_expr(end, depth + 1, out);
      else
        fputs("_", out);
    }
    break;
  case EX_INDEX:
  case EX_LIST:
  case EX_CALL:
    if (e->kind == EX_CALL)
      fprintf(out, "(call %s", e->name);
    else
      fputs(e->kind == EX_INDEX ? "(index" : "(list", out);
    put_loc(out, e->span);
    if (e->kind == EX_INDEX) {
      newline(out, depth + 1);
      dump_expr(e->lhs, depth + 1, out);
    }
    for (const Arg *a = e->args; a; a = a->next) {
      newline(out, depth + 1);
      if (!a->name) {
        dump_expr(a->value, depth + 1, out);
        continue;
      }
      fprintf(out, "(arg %s", a->name);
      put_loc(out, a->name_span);
      newline(out, depth + 2);
      dump_expr(a->value, depth + 2, out);
      fputc(')', out);
    }
    break;
  }
  fputc(')', out);
}

static void dump_stmt(const Stmt *s, FILE *out) {
  static const char *const head[] = {
      [ST_PARAM] = "param", [ST_DEF] = "def", [ST_FN] = "fn", [ST_LOSS] = "loss",
      [ST_EXPR] = "expr",
  };
  fprintf(out, "(%s", head[s->kind]);
  if (s->name)
    fprintf(out, " %s", s->name);
  if (s->kind == ST_FN) {
    fputs(" (", out);
    for (const Formal *f = s->formals; f; f = f->next)
      fprintf(out, "%s%s", f == s->formals ? "" : " ", f->name);
    fputc(')', out);
  }
  put_loc(out, s->span);
  newline(out, 1);
  dump_expr(s->value, 1, out);
  for (const Deriv *d = s->derivs; d; d = d->next) {
    fprintf(out, "\n  (deriv %s", d->arg);
    put_loc(out, d->span);
    newline(out, 2);
    dump_expr(d->value, 2, out);
    fputc(')', out);
  }
  fputs(")\n", out);
}

void ast_dump(const Stmt *prog, FILE *out) {
  for (const Stmt *s = prog; s; s = s->next)
    dump_stmt(s, out);
}
