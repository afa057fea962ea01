/* e2e_runner.c — runs one .dl file through dlc and checks the result.
 *
 *   e2e_runner DLC FILE.dl
 *
 * What is expected comes from the file itself and the reference outputs
 * beside it:
 *
 *   # expect: TEXT            a line of stdout (all of them, in order)
 *   # expect-error: L:C TEXT  stderr has "FILE:L:C: error: ...TEXT..."; exit 1;
 *                             and stdout is empty unless `# expect:` lines
 *                             say what ran before the error
 *   # expect-stderr: TEXT     stderr contains TEXT
 *   # reject-stderr: TEXT     stderr does not contain TEXT
 *   # error-count: N          stderr has exactly N lines with ": error: "
 *   # exit: N                 the exit status (default 0, or 1 with errors)
 *   # command: WORDS          dlc WORDS FILE instead of dlc run FILE
 *   # args: WORDS             more arguments for dlc
 *   # stdin                   the file goes to dlc's standard input instead
 *                             of its arguments (`dlc repl < FILE`); errors
 *                             are then located in "<stdin>"
 *   # tolerance: rtol=R atol=A         for numbers (default rtol=1e-4 atol=0)
 *   # tolerance: exact                 stdout must match character for character
 *                                      (to test how numbers are printed)
 *   # tolerance-f64: rtol=R atol=A     for the --f64 run (default rtol=1e-9)
 *   DIR/ref/NAME.out          the whole stdout of `dlc run`
 *   DIR/ref/NAME.f64.out      the whole stdout of `dlc run --f64`
 *
 * Numbers are compared within the tolerance wherever both texts have one at
 * the same place; everything else must match exactly. A file with no
 * expectation at all fails: a test that cannot fail is no test.
 */

#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct Tol {
  double rtol, atol;
  bool exact;                                    /* compare as text only */
} Tol;

static int failures;

static void fail(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "FAIL: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  failures++;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = '\0';
  fclose(f);
  return s;
}

/* Runs argv (stdin from in_path, when given) with stdout and stderr into
 * strings; returns the exit status. */
static int run(char **argv, const char *in_path, char **out, char **err) {
  char out_path[] = "/tmp/dlc_e2e_out_XXXXXX", err_path[] = "/tmp/dlc_e2e_err_XXXXXX";
  int fo = mkstemp(out_path), fe = mkstemp(err_path);
  pid_t pid = fork();
  if (pid == 0) {
    if (in_path) {
      int fi = open(in_path, O_RDONLY);
      if (fi < 0) {
        perror(in_path);
        _exit(127);
      }
      dup2(fi, 0);
    }
    dup2(fo, 1);
    dup2(fe, 2);
    execv(argv[0], argv);
    perror("execv");
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(fo);
  close(fe);
  *out = read_file(out_path);
  *err = read_file(err_path);
  unlink(out_path);
  unlink(err_path);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

static bool starts_number(const char *s) {
  if (*s == '-' || *s == '+')
    s++;
  if (*s == '.')
    s++;
  return isdigit((unsigned char)*s);
}

/* Compares one line: numbers within tol, the rest exactly. */
static bool line_matches(const char *got, const char *want, Tol tol) {
  if (tol.exact)
    return strcmp(got, want) == 0;
  while (*got && *want) {
    if (starts_number(got) && starts_number(want)) {
      char *ge, *we;
      double g = strtod(got, &ge), w = strtod(want, &we);
      double diff = fabs(g - w), scale = fmax(fabs(g), fabs(w));
      if (!(diff <= tol.atol + tol.rtol * scale) && !(g == w))
        return false;
      got = ge;
      want = we;
      continue;
    }
    if (*got++ != *want++)
      return false;
  }
  return *got == *want;
}

static char **split_lines(char *text, int *n) {
  int cap = 16;
  char **lines = malloc(sizeof(char *) * (size_t)cap);
  *n = 0;
  for (char *s = text; s && *s;) {
    char *nl = strchr(s, '\n');
    if (nl)
      *nl = '\0';
    if (*n == cap)
      lines = realloc(lines, sizeof(char *) * (size_t)(cap *= 2));
    lines[(*n)++] = s;
    if (!nl)
      break;
    s = nl + 1;
  }
  return lines;
}

/* Compares line by line, reporting the first difference (with a label)
 * or, with label NULL, only saying whether there is one; got and want are
 * left as they were. */
static bool compare_output(const char *label, const char *got_text, const char *want_text,
                           Tol tol) {
  char *got = strdup(got_text), *want = strdup(want_text);
  int ng, nw;
  char **g = split_lines(got, &ng), **w = split_lines(want, &nw);
  bool same = true;
  for (int i = 0; (i < ng || i < nw) && same; i++) {
    const char *gl = i < ng ? g[i] : "<no line>", *wl = i < nw ? w[i] : "<no line>";
    same = i < ng && i < nw && line_matches(gl, wl, tol);
    if (!same && label) {
      char msg[4096];
      snprintf(msg, sizeof msg, "%s line %d:\n   got: %s\n  want: %s", label, i + 1, gl, wl);
      fail("%s%s", msg, "");
    }
  }
  free(g);
  free(w);
  free(got);
  free(want);
  return same;
}

static Tol parse_tol(const char *s, Tol t) {
  const char *r = strstr(s, "rtol="), *a = strstr(s, "atol=");
  if (r)
    t.rtol = strtod(r + 5, NULL);
  if (a)
    t.atol = strtod(a + 5, NULL);
  if (strstr(s, "exact"))
    t.exact = true;
  return t;
}

/* Splits words into argv after the given prefix. */
static int add_words(char **argv, int argc, char *words) {
  for (char *w = strtok(words, " \t"); w; w = strtok(NULL, " \t"))
    argv[argc++] = w;
  return argc;
}

/* ---- documentation (e2e_runner --doc DLC ROOT FILE.md)
 *
 * The doc's fenced blocks, in order, in a fresh directory that has `dlc`
 * on the PATH (and build/dlc, as README.md calls it) and ROOT's examples/:
 *
 *   a block whose first line is `# NAME.EXT`   writes the file NAME.EXT with
 *       the lines after that one (the name is the block's label)
 *   a block with `$ COMMAND` lines              runs each command (sh, its
 *       standard error into its standard output, as a terminal shows them,
 *       and `$?` the previous command's status), and compares what it
 *       prints with the lines up to the next `$ `; `$ cat FILE` followed by
 *       lines writes FILE with them instead, unless a command made it
 *
 * Words after the opening ``` say how: `rtol=R`, `atol=A` (numbers within
 * the tolerance; default: exact, character for character); `excerpt`
 * (a part of a program or of an output: not run). Other blocks (grammar
 * sketches, usage lines) are prose.
 *
 * With DLC_DOC_UPDATE=1 in the environment, a command whose output
 * differs has it replaced in the doc by what it printed, for a change
 * that alters shown output to update the docs (review the diff). */

typedef struct DocEdit {
  int from, count;                               /* doc lines [from, from + count) */
  char *text;                                    /* their new text */
} DocEdit;

static DocEdit doc_edits[512];
static int ndoc_edits;

typedef struct DocBlock {
  const char *info;                              /* the words after ``` */
  char **lines;
  int nlines;
  int at;                                        /* its first line in the doc (1-based) */
} DocBlock;

static void write_text(const char *path, char **lines, int n) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fail("cannot write %s%s", path, "");
    return;
  }
  for (int i = 0; i < n; i++)
    fprintf(f, "%s\n", lines[i]);
  fclose(f);
}

/* `$ COMMAND` at line i of b, its output up to the next command. */
static int count_char(const char *s, char c) {
  int n = 0;
  for (; *s; s++)
    n += *s == c;
  return n;
}

static void doc_command(const DocBlock *b, int i, int *next, const char *doc, int *status) {
  /* A command goes on over the lines of a '...' string it opens. */
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s", b->lines[i] + 2);
  while (count_char(cmd, '\'') % 2 && i + 1 < b->nlines) {
    size_t len = strlen(cmd);
    snprintf(cmd + len, sizeof cmd - len, "\n%s", b->lines[++i]);
  }
  int end = i + 1;
  while (end < b->nlines && strncmp(b->lines[end], "$ ", 2) != 0)
    end++;
  *next = end;
  char path[256];
  if (sscanf(cmd, "cat %255s", path) == 1 && !strchr(cmd, '|') && !strchr(cmd, '>') &&
      access(path, F_OK) != 0) {
    write_text(path, b->lines + i + 1, end - i - 1);
    return;
  }
  Tol tol = parse_tol(b->info, (Tol){0, 0, !strstr(b->info, "tol=")});
  char want[1 << 16] = "";
  for (int k = i + 1; k < end; k++) {
    strncat(want, b->lines[k], sizeof want - strlen(want) - 2);
    strcat(want, "\n");
  }
  char *wrapped = malloc(strlen(cmd) + 32), *out, *err;
  sprintf(wrapped, "(exit %d); { %s\n} 2>&1", *status, cmd);
  char *av[] = {"/bin/sh", "-c", wrapped, NULL};
  *status = run(av, NULL, &out, &err);
  if (err && *err) {                             /* the shell's own: a command it cannot parse */
    char *both = malloc(strlen(out ? out : "") + strlen(err) + 1);
    sprintf(both, "%s%s", out ? out : "", err);
    free(out);
    out = both;
  }
  char label[512];
  snprintf(label, sizeof label, "%s:%d: $ %.400s:", doc, b->at + i + 1, cmd);
  if (getenv("DLC_DOC_UPDATE") && !compare_output(NULL, out ? out : "", want, tol) && ndoc_edits < 512) {
    doc_edits[ndoc_edits++] = (DocEdit){b->at + i + 1, end - i - 1, strdup(out ? out : "")};
    printf("%s updated\n", label);
  } else {
    compare_output(label, out ? out : "", want, tol);
  }
  free(wrapped);
  free(out);
  free(err);
}

static void doc_block(const DocBlock *b, const char *doc) {
  if (b->nlines == 0 || strstr(b->info, "excerpt"))
    return;
  char name[256];
  if (sscanf(b->lines[0], "# %255[^ ]", name) == 1 && strchr(name, '.')) {
    write_text(name, b->lines + 1, b->nlines - 1);
    return;
  }
  int status = 0;
  for (int i = 0, next; i < b->nlines; i = next) {
    next = i + 1;
    if (strncmp(b->lines[i], "$ ", 2) == 0)
      doc_command(b, i, &next, doc, &status);
  }
}

/* The doc with doc_edits applied (lines: its text, split). */
static void rewrite_doc(const char *path, char **lines, int n) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return;
  }
  for (int i = 0, e = 0; i < n; i++) {
    if (e < ndoc_edits && doc_edits[e].from == i) {
      fputs(doc_edits[e].text, f);
      i += doc_edits[e++].count - 1;
      continue;
    }
    fprintf(f, "%s\n", lines[i]);
  }
  fclose(f);
}

static int run_doc(const char *dlc, const char *root, const char *doc) {
  char *text = read_file(doc);
  if (!text) {
    fprintf(stderr, "cannot read %s\n", doc);
    return 2;
  }
  char dir[] = "/tmp/dlc_doc_XXXXXX", link[4352], *abs_dlc = realpath(dlc, NULL),
       *abs_root = realpath(root, NULL), *abs_doc = realpath(doc, NULL);
  if (!mkdtemp(dir) || !abs_dlc || !abs_root || chdir(dir) != 0) {
    perror(dir);
    return 2;
  }
  mkdir("bin", 0755);
  mkdir("build", 0755);
  snprintf(link, sizeof link, "%s/examples", abs_root);
  if (symlink(abs_dlc, "bin/dlc") || symlink(abs_dlc, "build/dlc") || symlink(link, "examples")) {
    perror("symlink");
    return 2;
  }
  char *path = getenv("PATH"), newpath[8192];
  snprintf(newpath, sizeof newpath, "%s/bin:%s", dir, path ? path : "/usr/bin:/bin");
  setenv("PATH", newpath, 1);
  int n;
  char **lines = split_lines(text, &n);
  for (int i = 0; i < n; i++) {
    if (strncmp(lines[i], "```", 3) != 0)
      continue;
    DocBlock b = {.info = lines[i] + 3, .lines = lines + i + 1, .at = i + 1};
    while (i + 1 + b.nlines < n && strncmp(lines[i + 1 + b.nlines], "```", 3) != 0)
      b.nlines++;
    doc_block(&b, doc);
    i += b.nlines + 1;
  }
  printf("%s: %s\n", doc, failures ? "FAILED" : "ok");
  if (ndoc_edits)
    rewrite_doc(abs_doc, lines, n);
  char cleanup[64];
  snprintf(cleanup, sizeof cleanup, "rm -rf %s", dir);
  if (chdir("/") == 0 && system(cleanup) != 0)
    fprintf(stderr, "cannot remove %s\n", dir);
  free(lines);
  free(text);
  free(abs_dlc);
  free(abs_root);
  free(abs_doc);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--doc") == 0)
    return run_doc(argv[2], argv[3], argv[4]);
  if (argc != 3) {
    fprintf(stderr, "usage: e2e_runner DLC FILE.dl | e2e_runner --doc DLC ROOT FILE.md\n");
    return 2;
  }
  const char *dlc = argv[1], *file = argv[2];
  char *text = read_file(file);
  if (!text) {
    fprintf(stderr, "cannot read %s\n", file);
    return 2;
  }
  Tol tol = {1e-4, 0, false}, tol64 = {1e-9, 0, false};
  char expect[1 << 16] = "", command[256] = "run", args[256] = "";
  char *errors[64], *stderr_wants[64], *stderr_rejects[64];
  int nerrors = 0, nstderr = 0, nreject = 0, want_exit = -1, want_count = -1;
  bool has_expect = false, use_stdin = false;
  char *copy = strdup(text);
  for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
    char *c = strstr(line, "# ");
    if (!c)
      continue;
    c += 2;
    if (!strncmp(c, "expect: ", 8) || !strcmp(c, "expect:")) {
      strncat(expect, c[7] ? c + 8 : "", sizeof expect - strlen(expect) - 2);
      strcat(expect, "\n");
      has_expect = true;
    } else if (!strncmp(c, "expect-error: ", 14) && nerrors < 64)
      errors[nerrors++] = c + 14;
    else if (!strncmp(c, "expect-stderr: ", 15) && nstderr < 64)
      stderr_wants[nstderr++] = c + 15;
    else if (!strncmp(c, "reject-stderr: ", 15) && nreject < 64)
      stderr_rejects[nreject++] = c + 15;
    else if (!strncmp(c, "error-count: ", 13))
      want_count = atoi(c + 13);
    else if (!strncmp(c, "exit: ", 6))
      want_exit = atoi(c + 6);
    else if (!strncmp(c, "command: ", 9))
      snprintf(command, sizeof command, "%s", c + 9);
    else if (!strcmp(c, "stdin"))
      use_stdin = true;
    else if (!strncmp(c, "args: ", 6))
      snprintf(args, sizeof args, "%s", c + 6);
    else if (!strncmp(c, "tolerance: ", 11))
      tol = parse_tol(c, tol);
    else if (!strncmp(c, "tolerance-f64: ", 15))
      tol64 = parse_tol(c, tol64);
  }

  /* DIR/ref/NAME.out and NAME.f64.out */
  char dir[4096], ref[4096], ref64[4096];
  snprintf(dir, sizeof dir, "%s", file);
  char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : file;
  if (slash)
    *slash = '\0';
  else
    strcpy(dir, ".");
  char name[1024];
  snprintf(name, sizeof name, "%s", base);
  char *dot = strrchr(name, '.');
  if (dot)
    *dot = '\0';
  snprintf(ref, sizeof ref, "%s/ref/%s.out", dir, name);
  snprintf(ref64, sizeof ref64, "%s/ref/%s.f64.out", dir, name);
  char *want = read_file(ref), *want64 = read_file(ref64);
  if (!has_expect && !nerrors && !nstderr && want_count < 0 && !want && !want64) {
    fprintf(stderr, "FAIL: %s has no expectation (# expect:, # expect-error:, or ref/%s.out)\n",
            file, name);
    return 1;
  }
  if (want_exit < 0)
    want_exit = nerrors ? 1 : 0;

  /* The main run: dlc COMMAND [ARGS] FILE */
  char *av[64];
  int ac = 0;
  av[ac++] = (char *)dlc;
  ac = add_words(av, ac, command);
  ac = add_words(av, ac, args);
  if (!use_stdin)
    av[ac++] = (char *)file;
  av[ac] = NULL;
  char *out, *err;
  int status = run(av, use_stdin ? file : NULL, &out, &err);
  char st[32], wst[32];
  snprintf(st, sizeof st, "%d", status);
  snprintf(wst, sizeof wst, "%d", want_exit);
  if (status != want_exit)
    fail("exit status %s, expected %s", st, wst);
  if (has_expect)
    compare_output("stdout", out ? out : "", expect, tol);
  else if (nerrors && out && *out)              /* errors found by checking: nothing ran */
    fail("stdout is not empty: %s%s", out, "");
  if (want)
    compare_output("stdout vs ref", out ? out : "", want, tol);
  for (int i = 0; i < nerrors; i++) {
    /* "L:C TEXT" -> look for "FILE:L:C: error: " then TEXT on that line */
    char loc[64] = "";
    const char *msg = errors[i];
    sscanf(msg, "%63s", loc);
    msg += strlen(loc);
    while (*msg == ' ')
      msg++;
    char head[4200];
    snprintf(head, sizeof head, "%s:%s: error: ", use_stdin ? "<stdin>" : file, loc);
    const char *at = err ? strstr(err, head) : NULL;
    bool found = false;
    while (at && !found) {
      const char *eol = strchr(at, '\n');
      size_t len = eol ? (size_t)(eol - at) : strlen(at);
      char *l = strndup(at, len);
      found = strstr(l, msg) != NULL;
      free(l);
      at = strstr(at + 1, head);
    }
    if (!found)
      fail("stderr lacks '%s...%s'", head, msg);
  }
  for (int i = 0; i < nstderr; i++)
    if (!err || !strstr(err, stderr_wants[i]))
      fail("stderr lacks '%s'%s", stderr_wants[i], "");
  for (int i = 0; i < nreject; i++)
    if (err && strstr(err, stderr_rejects[i]))
      fail("stderr has '%s'%s", stderr_rejects[i], ", which it should not");
  if (want_count >= 0) {
    int count = 0;
    for (const char *at = err; at && (at = strstr(at, ": error: ")); at++)
      count++;
    char got_n[32], want_n[32];
    snprintf(got_n, sizeof got_n, "%d", count);
    snprintf(want_n, sizeof want_n, "%d", want_count);
    if (count != want_count)
      fail("stderr has %s errors, expected %s", got_n, want_n);
  }
  if (failures)
    fprintf(stderr, "--- stdout:\n%s--- stderr:\n%s", out ? out : "", err ? err : "");

  if (want64) {
    av[ac - 1] = "--f64";
    av[ac++] = (char *)file;
    av[ac] = NULL;
    free(out);
    free(err);
    status = run(av, NULL, &out, &err);
    if (status != 0) {
      snprintf(st, sizeof st, "%d", status);
      fail("--f64 run exit status %s%s", st, "");
      fprintf(stderr, "%s", err ? err : "");
    }
    compare_output("--f64 stdout vs ref", out ? out : "", want64, tol64);
  }
  printf("%s: %s\n", file, failures ? "FAILED" : "ok");
  free(out);
  free(err);
  free(want);
  free(want64);
  free(copy);
  free(text);
  return failures ? 1 : 0;
}
