/* repl_memory.c — a long REPL session keeps its memory flat.
 *
 *   repl_memory DLC
 *
 * Scripts `dlc repl` with N redefinitions of a fn and of the loss, a
 * training run after every tenth (each compiled into the JIT and removed
 * after), for N = 200 and N = 1000, and compares the peak resident memory
 * of the two sessions: 800 more redefinitions may cost at most 4 MB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { ALLOWED_GROWTH_KB = 4096 };

/* Runs the session of n redefinitions; returns its peak RSS in KB, or -1. */
static long session(const char *dlc, int n) {
  int in[2];
  if (pipe(in) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    close(in[1]);
    freopen("/dev/null", "w", stdout);
    execl(dlc, dlc, "repl", (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  FILE *f = fdopen(in[1], "w");
  fprintf(f, "x = linspace(0, 1, 1000)\nparam w = 0.5\n");
  for (int i = 0; i < n; i++) {
    fprintf(f, "fn f(u) = u * %d\n\n", i % 7 + 1);
    fprintf(f, "loss = mean((f(w) * x - x)^2) + %d\n", i);
    if (i % 10 == 9)
      fprintf(f, "train(steps = 5, optimizer = sgd(lr = 0.001))\n");
  }
  fprintf(f, "w\n");
  fclose(f);
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "FAIL: the session of %d redefinitions did not succeed\n", n);
    return -1;
  }
  return ru.ru_maxrss;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: repl_memory DLC\n");
    return 2;
  }
  long small = session(argv[1], 200), large = session(argv[1], 1000);
  if (small < 0 || large < 0)
    return 1;
  printf("repl_memory: peak RSS %ld KB after 200 redefinitions, %ld KB after 1000\n", small, large);
  if (large - small > ALLOWED_GROWTH_KB) {
    fprintf(stderr, "FAIL: memory grew by %ld KB\n", large - small);
    return 1;
  }
  return 0;
}
