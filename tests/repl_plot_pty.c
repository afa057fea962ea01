/* repl_plot_pty.c — the REPL's terminal plots on a pseudo-terminal of a
 * fixed size, against the screen stored in tests/repl/plot_screen.txt.
 *
 *   repl_plot_pty DLC EXPECTED [--update]
 *
 * The terminal is 64 columns by 18 rows: :plot and :loss size their plots
 * to it (TIOCGWINSZ). What the two commands show, between the echo of the
 * command line and the next prompt, is compared line by line with the
 * stored text (carriage returns dropped); --update writes it there instead.
 */
#include <poll.h>
#include <pty.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int master;
static char screen[1 << 16];
static size_t shown;

/* Reads until the screen, from `from` on, shows want; false after 10 s. */
static bool wait_for(size_t from, const char *want) {
  time_t end = time(NULL) + 10;
  while (!strstr(screen + from, want)) {
    struct pollfd p = {master, POLLIN, 0};
    if (time(NULL) > end || poll(&p, 1, 1000) < 0)
      return false;
    if (!p.revents)
      continue;
    ssize_t n = read(master, screen + shown, sizeof screen - 1 - shown);
    if (n <= 0)
      return false;
    shown += (size_t)n;
    screen[shown] = '\0';
  }
  return true;
}

/* Types line and returns what it showed up to the next prompt, without
 * carriage returns or its echo (the terminal's, libedit's, or both: that
 * depends on when the line editor took the keys), malloc'd; NULL when the
 * prompt never came. */
static char *run(const char *line) {
  size_t from = shown;
  if (write(master, line, strlen(line)) < 0 || write(master, "\r", 1) < 0 ||
      !wait_for(from, "\n") || !wait_for(from, "dl> "))
    return NULL;
  const char *start = screen + from, *end = strstr(start, "dl> ");
  char *out = malloc((size_t)(end - start) + 1), *o = out;
  for (const char *c = start; c < end; c++)
    if (*c != '\r')
      *o++ = *c;
  *o = '\0';
  size_t n = strlen(line);
  for (char *nl; (nl = strchr(out, '\n')) && nl - out >= (ptrdiff_t)n && strncmp(nl - n, line, n) == 0;)
    memmove(out, nl + 1, strlen(nl + 1) + 1);
  return out;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: repl_plot_pty DLC EXPECTED [--update]\n");
    return 2;
  }
  struct winsize ws = {.ws_row = 18, .ws_col = 64};
  char home[] = "/tmp/dlc_plot_pty_XXXXXX";
  if (!mkdtemp(home)) {
    perror("mkdtemp");
    return 2;
  }
  pid_t pid = forkpty(&master, NULL, NULL, &ws);
  if (pid < 0) {
    perror("forkpty");
    return 2;
  }
  if (pid == 0) {
    setenv("HOME", home, 1);
    setenv("TERM", "xterm", 1);
    setenv("NO_COLOR", "1", 1);
    execl(argv[1], argv[1], "repl", (char *)NULL);
    _exit(127);
  }
  const char *setup[] = {"x = linspace(0, 6.25, 200)", "param w = 0.5",
                         "loss = sum((w * x - sin(x))^2)",
                         "train(steps = 50, optimizer = sgd(lr = 1e-4))"};
  char *got = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&got, &len);
  bool ok = wait_for(0, "dl> ");
  for (size_t i = 0; ok && i < sizeof setup / sizeof *setup; i++) {
    char *out = run(setup[i]);
    ok = out != NULL;
    free(out);
  }
  const char *shown_cmds[] = {":plot x, sin(x), w * x", ":loss"};
  for (size_t i = 0; ok && i < 2; i++) {
    char *out = run(shown_cmds[i]);
    ok = out != NULL;
    if (out)
      fprintf(mem, "dl> %s\n%s", shown_cmds[i], out);
    free(out);
  }
  fclose(mem);
  if (write(master, ":quit\r", 6) < 0)
    perror("write");
  waitpid(pid, NULL, 0);
  char rm[64];
  snprintf(rm, sizeof rm, "rm -rf %s", home);
  if (system(rm) != 0)
    fprintf(stderr, "cannot remove %s\n", home);
  if (!ok) {
    fprintf(stderr, "the REPL did not answer; the screen:\n%s\n", screen);
    return 1;
  }
  if (argc > 3 && strcmp(argv[3], "--update") == 0) {
    FILE *f = fopen(argv[2], "w");
    if (!f || fputs(got, f) < 0 || fclose(f) != 0) {
      perror(argv[2]);
      return 2;
    }
    return 0;
  }
  FILE *f = fopen(argv[2], "r");
  static char want[1 << 16];
  size_t n = f ? fread(want, 1, sizeof want - 1, f) : 0;
  if (f)
    fclose(f);
  want[n] = '\0';
  if (strcmp(want, got) != 0) {
    fprintf(stderr, "the screen differs from %s; it showed:\n%s", argv[2], got);
    return 1;
  }
  free(got);
  return 0;
}
