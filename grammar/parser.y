/* parser.y — the grammar of dl, and the token filter between it and flex.
 *
 * A pure (reentrant) LALR parser: all state lives in a Parser that
 * parse_source owns, so two sources can be parsed at once. Actions only
 * build the AST through ast.c's constructors and link lists in source
 * order; every check of meaning is sema's.
 *
 * Line structure is decided by yylex below, not by the grammar: flex returns
 * every newline, and the filter drops those that do not end a statement
 * (inside brackets, after an operator, '=' or ',', repeated, or before a
 * `deriv` clause, which continues its fn). The grammar then only sees
 * NEWLINE where a statement really ends.
 *
 * Syntax errors go to the Diags through yyreport_syntax_error, worded from
 * the expected-token set (exact, thanks to LAC) and the brackets still open;
 * one `error` rule per statement resynchronizes at the next NEWLINE or ';',
 * so every bad statement is reported once and the good ones are kept.
 */

%code requires {
#include "dlc.h"

typedef struct Parser Parser;
}

%define api.pure full
%define api.location.type {Span}
%define parse.error custom
%define parse.lac full
%locations
%param {Parser *p}
%expect 0

%initial-action { @$ = (Span){p->src, 0, 0}; }

%union {
  double num;
  const char *str;
  int op;
  Expr *expr;
  Stmt *stmt;
  Arg *arg;
  StrPart *part;
  Formal *formal;
  Deriv *deriv;
}

%code provides {
/* A string or interpolation the scanner is inside: where it opened, and the
 * start condition to go back to when it closes. */
typedef struct LexNest {
  int open;                                      /* '"' or '{' */
  int begin;                                     /* offset of that character */
  int mode;                                      /* start condition to return to */
  struct LexNest *up;
} LexNest;

/* flex's extra: the scanner's own state. */
typedef struct LexState {
  const Source *src;
  Arena *arena;                                  /* names and string texts */
  Diags *diags;
  int offset;                                    /* bytes scanned so far */
  LexNest *nest;                                 /* innermost first; NULL in code */
  bool quiet;                                    /* the parser is skipping a bad statement */
} LexState;

/* A bracket the parser has not seen closed yet. */
typedef struct Open {
  int tok;                                       /* '(', '[' or INTERP_BEGIN */
  Span span;
} Open;

struct Parser {
  Arena *arena;
  const Source *src;
  Diags *diags;
  void *scanner;                                 /* flex's yyscan_t */
  LexState lex;
  Stmt *stmts, **tail;                           /* the result, in order */

  /* The token filter (yylex). */
  int last;                                      /* last token delivered */
  Span last_span, prev_span;                     /* it, and the one before */
  int pending;                                   /* last's bracket effect, applied on the next call */
  int code_end;                                  /* end of the last token that is not NEWLINE */
  bool peeked;                                   /* a token read ahead past NEWLINEs */
  int peek_tok;
  YYSTYPE peek_val;
  Span peek_span;
  Open *open;                                    /* brackets open, innermost last */
  int nopen, capopen;
  int stmt_tok[2];                               /* first two tokens of this statement */
  int stmt_ntok;
};
}

%code {
/* Room for the parser's own stack beyond MAX_EXPR_DEPTH (a nesting level
 * takes a few entries), so that deep programs reach the clearer check of
 * parse_source rather than bison's "memory exhausted". */
#define YYMAXDEPTH (8 * MAX_EXPR_DEPTH)
#include <string.h>

#include "lexer.h"
/* lexer.h renames yylex to flex's scanner (dlyylex); here yylex is the
 * token filter the parser calls, which calls dlyylex. */
#undef yylex

static int yylex(YYSTYPE *lval, Span *lloc, Parser *p);
static void yyerror(const Span *loc, Parser *p, const char *msg);

/* A rule's span runs from its first symbol to its last; an empty rule sits,
 * zero-width, right after what precedes it. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                          \
  do {                                                                       \
    if (N)                                                                   \
      (Cur) = span_join(YYRHSLOC(Rhs, 1), YYRHSLOC(Rhs, N));                 \
    else                                                                     \
      (Cur) = (Span){YYRHSLOC(Rhs, 0).src, YYRHSLOC(Rhs, 0).end,             \
                     YYRHSLOC(Rhs, 0).end};                                  \
  } while (0)

/* The small list nodes; ast.c has the constructors of Expr and Stmt. */
static Arg *new_arg(Parser *p, const char *name, Span name_span, Expr *value) {
  Arg *a = arena_alloc(p->arena, sizeof *a);
  a->name = name;
  a->name_span = name_span;
  a->value = value;
  return a;
}

static StrPart *new_part(Parser *p, const char *text, Expr *expr) {
  StrPart *s = arena_alloc(p->arena, sizeof *s);
  s->text = text;
  s->expr = expr;
  return s;
}

static Formal *new_formal(Parser *p, const char *name, Span span) {
  Formal *f = arena_alloc(p->arena, sizeof *f);
  f->name = name;
  f->span = span;
  return f;
}

static Deriv *new_deriv(Parser *p, const char *arg, Span arg_span, Expr *value, Span span) {
  Deriv *d = arena_alloc(p->arena, sizeof *d);
  d->arg = arg;
  d->arg_span = arg_span;
  d->value = value;
  d->span = span;
  return d;
}

static Stmt *new_stmt(Parser *p, StmtKind kind, Span span, const char *name, Span name_span,
                      Expr *value) {
  Stmt *s = ast_stmt(p->arena, kind, span);
  s->name = name;
  s->name_span = name_span;
  s->value = value;
  return s;
}
}

%token <num> NUMBER "number"
%token <str> NAME "name"
%token <str> STR_TEXT "string text"
%token FN "'fn'" DERIV "'deriv'" PARAM "'param'" LOSS "'loss'"
%token LE "'<='" GE "'>='" EQ "'=='" NE "'!='"
%token NEWLINE "newline"
%token STR_BEGIN "string" STR_END "end of string"
%token INTERP_BEGIN "'{'" INTERP_END "'}'"
%token '[' ']' '@' '\'' ':'

%type <stmt> stmt
%type <expr> expr sum term unary power postfix primary string
%type <op> cmp_op add_op mul_op
%type <arg> args arg_list arg indices index
%type <part> parts part
%type <formal> formals formal_list
%type <deriv> derivs deriv

%%

program:
    line
  | program sep line
  ;

/* A bad statement is skipped up to its separator. Recovery ends there:
 * from the next statement on, errors are reported again (bison would stay
 * silent for three more tokens). */
sep:
    NEWLINE                       { yyerrok; }
  | ';'                           { yyerrok; }
  ;

line:
    %empty
  | stmt                          { *p->tail = $1; p->tail = &$1->next; }
  | error
  ;

stmt:
    PARAM NAME '=' expr           { $$ = new_stmt(p, ST_PARAM, @$, $2, @2, $4); }
  | NAME '=' expr                 { $$ = new_stmt(p, ST_DEF, @$, $1, @1, $3); }
  | LOSS '=' expr                 { $$ = new_stmt(p, ST_LOSS, @$, NULL, (Span){0}, $3); }
  | FN NAME '(' formals ')' '=' expr derivs
                                  { $$ = new_stmt(p, ST_FN, @$, $2, @2, $7);
                                    $$->formals = $4;
                                    $$->derivs = $8; }
  | expr                          { $$ = new_stmt(p, ST_EXPR, @$, NULL, (Span){0}, $1); }
  ;

/* Lists are right-recursive: they are short, and come out in order. */
formals:
    %empty                        { $$ = NULL; }
  | formal_list
  ;

formal_list:
    NAME                          { $$ = new_formal(p, $1, @1); }
  | NAME ','                      { $$ = new_formal(p, $1, @1); }
  | NAME ',' formal_list          { $$ = new_formal(p, $1, @1); $$->next = $3; }
  ;

derivs:
    %empty                        { $$ = NULL; }
  | deriv derivs                  { $$ = $1; $$->next = $2; }
  ;

deriv:
    DERIV NAME '=' expr           { $$ = new_deriv(p, $2, @2, $4, @$); }
  ;

/* Precedence, loosest first: comparisons (not chained), + -, * /, unary
 * minus, ^ (right-associative; its exponent may itself be negated, so
 * -x^2 is -(x^2) and 2^-1 is 2^(-1)), calls. */
expr:
    sum
  | sum cmp_op sum                { $$ = ast_binary(p->arena, @$, $2, $1, $3); }
  ;

cmp_op:
    '<'                           { $$ = OP_LT; }
  | LE                            { $$ = OP_LE; }
  | '>'                           { $$ = OP_GT; }
  | GE                            { $$ = OP_GE; }
  | EQ                            { $$ = OP_EQ; }
  | NE                            { $$ = OP_NE; }
  ;

sum:
    term
  | sum add_op term               { $$ = ast_binary(p->arena, @$, $2, $1, $3); }
  ;

add_op: '+' { $$ = OP_ADD; } | '-' { $$ = OP_SUB; } ;

term:
    unary
  | term mul_op unary             { $$ = ast_binary(p->arena, @$, $2, $1, $3); }
  ;

mul_op: '*' { $$ = OP_MUL; } | '/' { $$ = OP_DIV; } | '@' { $$ = OP_MATMUL; } ;

unary:
    power
  | '-' unary                     { $$ = ast_unary(p->arena, @$, OP_NEG, $2); }
  ;

power:
    postfix
  | postfix '^' unary             { $$ = ast_binary(p->arena, @$, OP_POW, $1, $3); }
  ;

postfix:
    primary
  | NAME '(' args ')'             { $$ = ast_call(p->arena, @$, $1, @1, $3); }
  | postfix '\''                  { $$ = ast_unary(p->arena, @$, OP_TRANSPOSE, $1); }
  | postfix '[' indices ']'       { $$ = ast_index(p->arena, @$, $1, $3); }
  ;

/* A[i], A[i, j], with slices lo:hi where either end may be left out. */
indices:
    index
  | index ',' index               { $$ = $1; $$->next = $3; }
  ;

index:
    expr                          { $$ = new_arg(p, NULL, (Span){0}, $1); }
  | ':'                           { $$ = new_arg(p, NULL, (Span){0}, ast_slice(p->arena, @$, NULL, NULL)); }
  | expr ':'                      { $$ = new_arg(p, NULL, (Span){0}, ast_slice(p->arena, @$, $1, NULL)); }
  | ':' expr                      { $$ = new_arg(p, NULL, (Span){0}, ast_slice(p->arena, @$, NULL, $2)); }
  | expr ':' expr                 { $$ = new_arg(p, NULL, (Span){0}, ast_slice(p->arena, @$, $1, $3)); }
  ;

primary:
    NUMBER                        { $$ = ast_num(p->arena, @$, $1); }
  | NAME                          { $$ = ast_name(p->arena, @$, $1); }
  | LOSS                          { $$ = ast_name(p->arena, @$, "loss"); }
  | string
  | '(' expr ')'                  { $$ = $2; }
  | '[' args ']'                  { $$ = ast_list(p->arena, @$, $2); }
  ;

args:
    %empty                        { $$ = NULL; }
  | arg_list
  ;

arg_list:
    arg
  | arg ','
  | arg ',' arg_list              { $$ = $1; $$->next = $3; }
  ;

arg:
    expr                          { $$ = new_arg(p, NULL, (Span){0}, $1); }
  | NAME '=' expr                 { $$ = new_arg(p, $1, @1, $3); }
  ;

string:
    STR_BEGIN parts STR_END       { $$ = ast_str(p->arena, @$, $2); }
  ;

parts:
    %empty                        { $$ = NULL; }
  | part parts                    { $$ = $1; $$->next = $2; }
  ;

part:
    STR_TEXT                      { $$ = new_part(p, $1, NULL); }
  | INTERP_BEGIN expr INTERP_END  { $$ = new_part(p, NULL, $2); }
  ;

%%

/* ---- the token filter */

/* Tokens after which a newline continues the statement. */
static bool continues_line(int tok) {
  switch (tok) {
  case '+': case '-': case '*': case '/': case '^': case '@':
  case '<': case LE: case '>': case GE: case EQ: case NE:
  case '=': case ',':
    return true;
  default:
    return false;
  }
}

static void push_open(Parser *p, int tok, Span span) {
  if (p->nopen == p->capopen) {
    int cap = p->capopen ? 2 * p->capopen : 16;
    Open *o = arena_alloc(p->arena, sizeof(Open) * (size_t)cap);
    if (p->nopen)
      memcpy(o, p->open, sizeof(Open) * (size_t)p->nopen);
    p->open = o;
    p->capopen = cap;
  }
  p->open[p->nopen++] = (Open){tok, span};
}

/* Brackets are counted by token kind only: a mismatch like `(]` is the
 * parser's to report. */
static void track_bracket(Parser *p, int tok, Span span) {
  switch (tok) {
  case '(': case '[': case INTERP_BEGIN:
    push_open(p, tok, span);
    break;
  case ')': case ']': case INTERP_END:
    if (p->nopen > 0)
      p->nopen--;
    break;
  }
}

/* The next token from flex, or the one read ahead. */
static int scan(Parser *p, YYSTYPE *lval, Span *lloc) {
  if (p->peeked) {
    p->peeked = false;
    *lval = p->peek_val;
    *lloc = p->peek_span;
    return p->peek_tok;
  }
  int tok = dlyylex(lval, lloc, p->scanner);
  if (tok == YYEOF)
    *lloc = (Span){p->src, p->code_end, p->code_end};  /* right after the last token */
  return tok;
}

/* What the parser calls: flex's tokens, minus the newlines that do not end
 * a statement. A bracket's effect on the nesting is applied only when the
 * next token is asked for, so that an error message about the current
 * lookahead still sees the brackets as they were before it. */
static int yylex(YYSTYPE *lval, Span *lloc, Parser *p) {
  track_bracket(p, p->pending, p->last_span);
  p->pending = 0;
  for (;;) {
    int tok = scan(p, lval, lloc);
    if (tok == NEWLINE) {
      if (p->nopen > 0 || continues_line(p->last) || p->last == NEWLINE || p->last == ';')
        continue;
      /* Blank lines collapse into this one; a `deriv` after them continues
       * the fn above, so the newline goes too. What is read ahead belongs
       * to the next statement unless it is that `deriv`: the lexer speaks
       * again for it. */
      bool quiet = p->lex.quiet;
      p->lex.quiet = false;
      YYSTYPE v;
      Span s;
      int next;
      do
        next = scan(p, &v, &s);
      while (next == NEWLINE);
      p->peeked = true;
      p->peek_tok = next;
      p->peek_val = v;
      p->peek_span = s;
      if (next == DERIV) {
        p->lex.quiet = quiet;
        continue;
      }
    }
    if (tok == YYerror) {
      /* The lexer reported it; the parser skips the statement, and what
       * else the lexer finds in it would only be an echo. */
      p->nopen = 0;
      p->lex.quiet = true;
    }
    if (tok == NEWLINE || tok == ';') {
      p->stmt_ntok = 0;
      p->lex.quiet = false;
    } else if (p->stmt_ntok < 2)
      p->stmt_tok[p->stmt_ntok++] = tok;
    if (tok != NEWLINE)
      p->code_end = lloc->end;
    p->pending = tok;
    p->prev_span = p->last_span;
    p->last_span = *lloc;
    p->last = tok;
    return tok;
  }
}

/* ---- syntax errors */

static char *line_col(Parser *p, Span s) {
  int line, col;
  source_line_col(p->src, s.begin, &line, &col);
  return arena_printf(p->arena, "%d:%d", line, col);
}

static const char *bracket_text(int tok) {
  switch (tok) {
  case '(': return "'('";
  case '[': return "'['";
  default: return "'{'";
  }
}

static int closer_of(int tok) {
  switch (tok) {
  case '(': return ')';
  case '[': return ']';
  default: return INTERP_END;
  }
}

/* The found token in words: `name 'x'`, `number '2.5'`, `newline`, `'('`. */
static const char *found_text(Parser *p, yysymbol_kind_t sym, Span at) {
  int n = at.end - at.begin;
  const char *text = p->src->text + at.begin;
  switch (sym) {
  case YYSYMBOL_NAME:
    if (n > 40)
      return arena_printf(p->arena, "name '%.40s...'", text);
    return arena_printf(p->arena, "name '%.*s'", n, text);
  case YYSYMBOL_NUMBER:
    return arena_printf(p->arena, "number '%.*s'", n, text);
  case YYSYMBOL_YYEOF:
    return "end of file";
  default:
    return yysymbol_name(sym);
  }
}

/* An expected token in words. */
static const char *expected_text(yysymbol_kind_t sym) {
  switch (sym) {
  case YYSYMBOL_NAME: return "a name";
  case YYSYMBOL_NUMBER: return "a number";
  case YYSYMBOL_YYEOF: return "end of file";
  default: return yysymbol_name(sym);
  }
}

static bool is_comparison(yysymbol_kind_t sym) {
  switch (sym) {
  case YYSYMBOL_LE: case YYSYMBOL_GE: case YYSYMBOL_EQ: case YYSYMBOL_NE:
    return true;
  default:
    return sym == YYTRANSLATE('<') || sym == YYTRANSLATE('>');
  }
}

static bool is_on_later_line(Parser *p, Span later, Span earlier) {
  int l1, l2, c;
  source_line_col(p->src, later.begin, &l1, &c);
  source_line_col(p->src, earlier.end, &l2, &c);
  return l1 > l2;
}

/* The message names what was found and what could have come instead, most
 * specific first: an unclosed bracket at the end of the file, a
 * misplaced deriv, a chained comparison (inside brackets too), a missing
 * expression, a missing closing bracket (named with where it opened), a
 * statement that goes on after its end; else the expected tokens. */
static bool span_is(const Parser *p, Span sp, const char *word) {
  size_t n = strlen(word);
  return sp.src && (size_t)(sp.end - sp.begin) == n && strncmp(p->src->text + sp.begin, word, n) == 0;
}

/* Most syntax errors of people who come from Python are Python: say what dl
 * writes instead. */
static const char *python_hint(const Parser *p, yysymbol_kind_t sym) {
  if (sym == YYSYMBOL_STR_BEGIN && span_is(p, p->prev_span, "f"))
    return "; dl strings need no f prefix: \"a = {a}\" interpolates";
  if (sym == YYTRANSLATE('\''))
    return "; dl strings are in double quotes";
  if (span_is(p, p->prev_span, "def") || span_is(p, p->prev_span, "return"))
    return "; to define a function, write 'fn NAME(ARGS) = EXPR'";
  if (span_is(p, p->prev_span, "import") || span_is(p, p->prev_span, "from"))
    return "; dl needs no imports";
  if (span_is(p, p->prev_span, "if") || span_is(p, p->prev_span, "for") ||
      span_is(p, p->prev_span, "while"))
    return "; dl has no control flow: choose values with where(cond, a, b)";
  return NULL;
}

/* Appends a hint to the message just reported. */
static void add_hint(Diags *d, const char *hint) {
  Diag *g = &d->items[d->n - 1];
  size_t n = strlen(g->msg), h = strlen(hint);
  g->msg = realloc(g->msg, n + h + 1);
  memcpy(g->msg + n, hint, h + 1);
}

static int yyreport_syntax_error(const yypcontext_t *ctx, Parser *p) {
  yysymbol_kind_t expected[YYNTOKENS];
  int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
  bool want[YYNTOKENS] = {0};
  for (int i = 0; i < n; i++)
    want[expected[i]] = true;

  yysymbol_kind_t sym = yypcontext_token(ctx);
  Span at = *yypcontext_location(ctx);
  const char *found = found_text(p, sym, at);
  const Open *open = p->nopen ? &p->open[p->nopen - 1] : NULL;

  if (sym == YYSYMBOL_YYEOF && open)
    diag_error(p->diags, at, "unexpected end of file; %s at %s is not closed",
               bracket_text(open->tok), line_col(p, open->span));
  else if (sym == YYSYMBOL_DERIV)
    diag_error(p->diags, at, "unexpected 'deriv': a deriv clause must follow its fn "
               "definition, on the lines right after it");
  else if (is_comparison(sym) && !want[sym])
    diag_error(p->diags, at, "unexpected %s: comparisons cannot be chained; add "
               "parentheses", found);
  else if (want[YYSYMBOL_NUMBER] && want[YYSYMBOL_FN])
    diag_error(p->diags, at, "expected a statement, found %s", found);
  else if (want[YYSYMBOL_NUMBER])
    diag_error(p->diags, at, "expected an expression, found %s", found);
  else if (open && want[YYTRANSLATE(closer_of(open->tok))] && !want[YYSYMBOL_NAME]) {
    const char *closer = expected_text(YYTRANSLATE(closer_of(open->tok)));
    if (is_on_later_line(p, at, p->prev_span)) {
      /* The bracket was most likely left open at the end of that line. */
      Span eol = {p->src, p->prev_span.end, p->prev_span.end};
      diag_error(p->diags, eol, "expected %s to close %s at %s", closer,
                 bracket_text(open->tok), line_col(p, open->span));
    } else
      diag_error(p->diags, at, "expected %s to close %s at %s, found %s", closer,
                 bracket_text(open->tok), line_col(p, open->span), found);
  } else if (want[YYSYMBOL_NEWLINE]) {
    bool call_then_eq = sym == YYTRANSLATE('=') && p->stmt_ntok == 2 &&
                        p->stmt_tok[0] == NAME && p->stmt_tok[1] == '(';
    diag_error(p->diags, at, "expected an operator or the end of the statement, found %s%s",
               found, call_then_eq ? "; to define a function, write 'fn NAME(ARGS) = ...'" : "");
  } else {
    Buf b = {0};
    int shown = n < 4 ? n : 4;
    for (int i = 0; i < shown; i++)
      buf_printf(&b, "%s%s", i == 0 ? "" : i == shown - 1 ? " or " : ", ",
                 expected_text(expected[i]));
    if (n > 0 && n <= 4)
      diag_error(p->diags, at, "expected %s, found %s", b.data, found);
    else
      diag_error(p->diags, at, "unexpected %s", found);
    buf_free(&b);
  }

  const char *hint = python_hint(p, sym);
  if (hint)
    add_hint(p->diags, hint);

  /* Whatever was open is abandoned with the statement: the next newline
   * ends it, so the following lines are parsed (and checked) afresh. Until
   * then the lexer keeps quiet, unless this token already ended it. */
  p->nopen = 0;
  p->pending = 0;
  p->lex.quiet = sym != YYSYMBOL_NEWLINE && sym != YYTRANSLATE(';');
  return 0;
}

/* With a custom error reporter, bison calls yyerror only when its stack is
 * exhausted. */
static void yyerror(const Span *loc, Parser *p, const char *msg) {
  diag_error(p->diags, *loc, "program nested too deeply (%s)", msg);
}

/* ---- entry points */

static bool parser_init(Parser *p, const Source *src, Arena *a, Diags *d) {
  *p = (Parser){.arena = a, .src = src, .diags = d, .last = NEWLINE};
  p->tail = &p->stmts;
  p->lex = (LexState){.src = src, .arena = a, .diags = d};
  if (dlyylex_init_extra(&p->lex, &p->scanner) != 0) {
    diag_error(d, (Span){0}, "cannot start the scanner: out of memory");
    return false;
  }
  dlyy_scan_bytes(src->text, (int)src->len, p->scanner);
  return true;
}

static void parser_fini(Parser *p) { dlyylex_destroy(p->scanner); }

/* Reading ahead for `deriv` may report a lexical error of the next line
 * before the syntax error of this one: put this source's diagnostics back
 * in source order (stably: one place's messages keep their order). */
static void sort_diags(Diags *d, int first) {
  for (int i = first + 1; i < d->n; i++) {
    Diag g = d->items[i];
    int j = i;
    for (; j > first && d->items[j - 1].span.begin > g.span.begin; j--)
      d->items[j] = d->items[j - 1];
    d->items[j] = g;
  }
}

static int stmt_depth(const Stmt *st) {
  int depth = st->value ? st->value->depth : 0;
  for (const Deriv *dv = st->derivs; dv; dv = dv->next)
    if (dv->value->depth > depth)
      depth = dv->value->depth;
  return depth;
}

/* Statements nested deeper than MAX_EXPR_DEPTH are reported and dropped,
 * so that no later pass recurses without bound. */
static Stmt *drop_too_deep(Stmt *stmts, Diags *d) {
  Stmt **link = &stmts;
  while (*link) {
    int depth = stmt_depth(*link);
    if (depth > MAX_EXPR_DEPTH) {
      diag_error(d, (*link)->span, "this statement is nested %d levels deep; the limit is %d",
                 depth, MAX_EXPR_DEPTH);
      *link = (*link)->next;
    } else {
      link = &(*link)->next;
    }
  }
  return stmts;
}

Stmt *parse_source(const Source *src, Arena *a, Diags *d) {
  Parser p;
  int first = d->n;
  if (!parser_init(&p, src, a, d))
    return NULL;
  yyparse(&p);
  parser_fini(&p);
  Stmt *stmts = drop_too_deep(p.stmts, d);
  sort_diags(d, first);
  return stmts;
}

/* Writes s as a dl string literal would spell it. */
static void put_quoted(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    switch (*s) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '{': fputs("{{", out); break;
    case '}': fputs("}}", out); break;
    default: fputc(*s, out); break;
    }
  }
  fputc('"', out);
}

void lex_dump(const Source *src, Arena *a, Diags *d, FILE *out) {
  Parser p;
  int first = d->n;
  if (!parser_init(&p, src, a, d))
    return;
  int tok;
  do {
    YYSTYPE v;
    Span s;
    tok = yylex(&v, &s, &p);
    int line, col;
    source_line_col(src, s.begin, &line, &col);
    fprintf(out, "%d:%d ", line, col);
    switch (tok) {
    case NAME: fprintf(out, "NAME %s\n", v.str); break;
    case NUMBER: fprintf(out, "NUMBER %.*s\n", s.end - s.begin, src->text + s.begin); break;
    case STR_TEXT:
      fputs("STR_TEXT ", out);
      put_quoted(out, v.str);
      fputc('\n', out);
      break;
    case NEWLINE: fputs("NEWLINE\n", out); break;
    case STR_BEGIN: fputs("STR_BEGIN\n", out); break;
    case STR_END: fputs("STR_END\n", out); break;
    case INTERP_BEGIN: fputs("INTERP_BEGIN\n", out); break;
    case INTERP_END: fputs("INTERP_END\n", out); break;
    case YYerror: fputs("ERROR\n", out); break;
    case YYEOF: fputs("EOF\n", out); break;
    default: fprintf(out, "%s\n", yysymbol_name(YYTRANSLATE(tok))); break;
    }
  } while (tok != YYEOF);
  parser_fini(&p);
  sort_diags(d, first);
}
