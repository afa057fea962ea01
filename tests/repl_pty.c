/* repl_pty.c — drives `dlc repl` on a pseudo-terminal, as a person would.
 *
 *   repl_pty DLC
 *
 * Types a multi-line fn with a deriv, a :diff, an error, a redefinition, a
 * long train stopped with Ctrl-C (the terminal's SIGINT), a tab completion,
 * Ctrl-C at the prompt, and Ctrl-D; after each, waits for what the screen
 * must show and for the prompt, as a person would before typing on. HOME
 * is a fresh directory, where the history must be saved. Diagnostics are
 * in colour there; a second session with NO_COLOR set has them plain.
 *
 * Then `dlc run` on the terminal: the progress line drawn, taken off for
 * each log line and at the end; and not drawn with --no-progress, with
 * TERM=dumb, or when stderr is not the terminal.
 */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int master, failures;
static char screen[1 << 20];                      /* everything shown since the last step */
static size_t shown;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Reads the screen until it shows `want` from byte `from` on, or gives up
 * after `seconds`. */
static bool wait_from(size_t from, const char *want, double seconds) {
  double end = now() + seconds;
  while (!strstr(screen + from, want)) {
    double left = end - now();
    if (left <= 0)
      return false;
    struct pollfd p = {master, POLLIN, 0};
    if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
      continue;
    ssize_t n = read(master, screen + shown, sizeof screen - shown - 1);
    if (n <= 0)
      return strstr(screen + from, want) != NULL;
    shown += (size_t)n;
    screen[shown] = '\0';
  }
  return true;
}

/* Reads the screen until it shows `want` (after what was seen before), or
 * gives up after `seconds`. */
static bool wait_for(const char *want, double seconds) { return wait_from(0, want, seconds); }

static void type_now(const char *text);

static void expect(const char *what, const char *want, double seconds) {
  if (!wait_for(want, seconds)) {
    fprintf(stderr, "FAIL: %s: the screen does not show '%s'; it shows:\n%s\n---\n", what, want,
            screen);
    failures++;
  }
}

/* Waits until libedit is editing a line (the terminal out of canonical
 * mode): it prints the prompt a moment before, and a key typed in between
 * is read by the terminal's line discipline instead (a person is never
 * that quick). */
static void wait_editing(void) {
  double end = now() + 5;
  struct termios t;
  while (tcgetattr(master, &t) == 0 && (t.c_lflag & ICANON) && now() < end)
    usleep(1000);
}

/* Types text at the prompt, and forgets the screen so far. */
static void type(const char *text) {
  wait_editing();
  type_now(text);
}

/* Types text whatever dlc is doing (a Ctrl-C during training). */
static void type_now(const char *text) {
  shown = 0;
  screen[0] = '\0';
  if (write(master, text, strlen(text)) < 0)
    perror("write");
}

/* argv on a new pseudo-terminal, with HOME at home and TERM as given;
 * stderr to the file err_path instead, when there is one. */
static pid_t start_argv(char *const *argv, const char *home, const char *term, const char *err_path) {
  pid_t pid = forkpty(&master, NULL, NULL, NULL);
  if (pid < 0) {
    perror("forkpty");
    exit(2);
  }
  if (pid == 0) {
    setenv("HOME", home, 1);
    setenv("TERM", term, 1);
    if (err_path)
      dup2(open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
    execv(argv[0], argv);
    perror("execv");
    _exit(127);
  }
  shown = 0;
  screen[0] = '\0';
  return pid;
}

/* `dlc repl` on a new pseudo-terminal, with HOME at home. */
static pid_t start(const char *dlc, const char *home) {
  return start_argv((char *const[]){(char *)dlc, "repl", NULL}, home, "xterm", NULL);
}

/* Ctrl-C, keeping the screen: expect_cleared looks at what came before. */
static void interrupt(void) {
  if (write(master, "\x03", 1) < 0)
    perror("write");
}

/* The train that showed its progress has ended: the last progress line
 * before `then` was erased (\r, erase to the end of the line) before it. */
static void expect_cleared(const char *what, const char *then) {
  const char *end = strstr(screen, then), *last = NULL;
  for (const char *p = screen; end && (p = strstr(p, "steps/s")) && p < end; p++)
    last = p;
  if (!last || !memmem(last, (size_t)(end - last), "\r\033[K", 4)) {
    fprintf(stderr, "FAIL: %s: the progress line is not erased before '%s'; the screen shows:\n%s\n---\n",
            what, then, screen);
    failures++;
  }
}

static const char long_train[] =
    "x = linspace(0, 1, 1000)\n"
    "param w = 1.0\n"
    "loss = sum((w * x - 0.5 * x)^2)\n"
    "train(steps = 2000000000, optimizer = sgd(lr = 1e-9), log_every = 100000)\n"
    "print(\"not reached\")\n";

/* `dlc run` of long_train on a terminal, stopped by Ctrl-C once a log line
 * has come; with progress, after a log line came under the progress line
 * (which must have been erased first). */
static void run_on_terminal(const char *dlc, const char *home, const char *model, const char *option,
                            const char *term, bool progress) {
  char what[128];
  snprintf(what, sizeof what, "dlc run %s (TERM=%s)", option ? option : "", term);
  char *argv[] = {(char *)dlc, "run", (char *)model, (char *)option, NULL};
  pid_t pid = start_argv(argv, home, term, NULL);
  if (progress) {
    expect(what, "steps/s", 20);
    /* The next log line: the line erased, the log line, and it drawn again. */
    type_now("");
    expect(what, "\033[K\r\033[K", 10);
    size_t at = (size_t)(strstr(screen, "\033[K\r\033[K") + 7 - screen);
    wait_from(at, "\n", 5);
    if (!isdigit((unsigned char)screen[at])) {
      fprintf(stderr, "FAIL: %s: no log line after the erased progress line:\n%s\n---\n", what, screen);
      failures++;
    }
    expect(what, "steps/s", 5);
  } else {
    expect(what, "99999 ", 20);
    expect(what, "199999 ", 10);
  }
  wait_for("(nothing)", 0.7);
  bool drawn = strstr(screen, "steps/s") != NULL;
  interrupt();
  expect(what, "training interrupted after", 10);
  if (progress)
    expect_cleared(what, "training interrupted after");
  else if (drawn || strstr(screen, "steps/s")) {
    fprintf(stderr, "FAIL: %s: a progress line is drawn:\n%s\n---\n", what, screen);
    failures++;
  }
  int status;
  waitpid(pid, &status, 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: repl_pty DLC\n");
    return 2;
  }
  char home[] = "/tmp/dlc_pty_XXXXXX";
  if (!mkdtemp(home)) {
    perror("mkdtemp");
    return 2;
  }
  pid_t pid = start(argv[1], home);
  expect("start", "dl> ", 10);

  type("fn sq(x) = x^2\r");
  expect("a fn waits for its derivs", "... ", 5);
  type("  deriv x = 2 * x\r");
  expect("a deriv line", "... ", 5);
  type("\r");
  expect("an empty line ends the fn", "dl> ", 5);

  type(":diff sq(t) wrt t\r");
  expect(":diff", "2 * t\r\ndl> ", 5);

  type("bogus + 1\r");
  expect("an error, in colour on a terminal", "<stdin>:5:1: \033[1;31merror:", 5);
  expect("its message", "undefined name 'bogus'", 5);
  expect("its caret", "^~~~~", 5);
  expect("the prompt after it", "dl> ", 5);

  type("x = linspace(0, 1, 100000)\r");
  expect("data", "dl> ", 10);
  type("param w = 1.0\r");
  expect("a param", "dl> ", 5);
  type("loss = sum((sq(w) * x - 0.25 * x)^2)\r");
  expect("the loss", "dl> ", 5);
  type("fn sq(x) = x^2 + 1\r\r");
  expect("a redefinition", "dl> ", 5);
  type("sq(2)\r");
  expect("the new definition is used", "5\r\ndl> ", 5);

  type("train(steps = 2000000000, optimizer = sgd(lr = 1e-9))\r");
  expect("a long train shows its progress", "steps/s", 10);
  interrupt();
  expect("Ctrl-C stops training", "training interrupted after", 10);
  expect_cleared("Ctrl-C stops training", "training interrupted after");
  expect("and the session goes on", "dl> ", 5);
  type("w < 1\r");
  expect("the params keep what training did", "\r\n1\r\ndl> ", 5);

  type(":ir loss\r");
  expect(":ir", "= SUM", 10);
  expect(":ir ends", "dl> ", 5);
  type(":llvm loss\r");
  expect(":llvm", "define i64 @dl_train", 10);
  expect(":llvm ends", "dl> ", 5);
  type(":help\r");
  expect(":help", ":diff EXPR wrt NAME", 5);
  expect(":help ends", "dl> ", 5);

  type("lins\t(0, 1, 3)\r");
  expect("tab completes a built-in", "vector[3] [0, 0.5, 1]\r\ndl> ", 5);
  type("2 * (3 +");
  expect("a partial line", "(3 +", 5);
  type("\x03");
  expect("Ctrl-C drops the line", "dl> ", 5);
  type("1 + 1\r");
  expect("the next line is fresh", "\r\n2\r\ndl> ", 5);

  type("\x04");
  int status = 0;
  double end = now() + 10;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && now() < end) {
    struct pollfd p = {master, POLLIN, 0};
    char sink[4096];
    if (poll(&p, 1, 100) > 0 && read(master, sink, sizeof sink) <= 0)
      usleep(10000);
  }
  if (done == 0) {
    wait_for("(nothing)", 0.5);
    fprintf(stderr, "FAIL: Ctrl-D: dlc is still running; the screen shows:\n%s\n---\n", screen);
    failures++;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  } else
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "FAIL: Ctrl-D: dlc did not exit with status 0\n");
    failures++;
  }

  char path[4096], line[256];
  snprintf(path, sizeof path, "%s/.dlc_history", home);
  FILE *f = fopen(path, "r");
  bool found = false;
  while (f && fgets(line, sizeof line, f))
    found |= strstr(line, ":diff") && strstr(line, "sq(t)");   /* libedit writes spaces as \040 */
  if (f)
    fclose(f);
  if (!found) {
    fprintf(stderr, "FAIL: the history in %s lacks the :diff line\n", path);
    failures++;
  }
  unlink(path);

  /* NO_COLOR: the same error, plain. */
  setenv("NO_COLOR", "1", 1);
  pid = start(argv[1], home);
  expect("start without colour", "dl> ", 10);
  type("bogus\r");
  expect("a plain error", "<stdin>:1:1: error: undefined name 'bogus'", 5);
  expect("the prompt after it", "dl> ", 5);
  type(":quit\r");
  waitpid(pid, &status, 0);
  unlink(path);

  char model[4096], err_path[4096];
  snprintf(model, sizeof model, "%s/long.dl", home);
  snprintf(err_path, sizeof err_path, "%s/stderr", home);
  f = fopen(model, "w");
  fputs(long_train, f);
  fclose(f);
  run_on_terminal(argv[1], home, model, NULL, "xterm", true);
  run_on_terminal(argv[1], home, model, "--no-progress", "xterm", false);
  run_on_terminal(argv[1], home, model, NULL, "dumb", false);
  /* stderr to a file, stdout on the terminal: no progress line in it. */
  pid = start_argv((char *const[]){argv[1], "run", model, NULL}, home, "xterm", err_path);
  expect("stderr not a terminal", "199999 ", 20);
  wait_for("(nothing)", 0.7);
  type_now("\x03");
  waitpid(pid, &status, 0);
  char err[4096] = "";
  f = fopen(err_path, "r");
  size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
  err[n] = '\0';
  if (f)
    fclose(f);
  if (!strstr(err, "training interrupted after") || strstr(err, "steps/s") || strchr(err, '\r')) {
    fprintf(stderr, "FAIL: stderr not a terminal: it has a progress line, or not the warning:\n%s\n---\n", err);
    failures++;
  }
  unlink(model);
  unlink(err_path);
  rmdir(home);
  printf("repl_pty: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
