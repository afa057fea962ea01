/* peak_rss.c — the peak memory of a command, for tests/hostile_test.sh.
 *
 *   peak_rss OUT CMD [ARGS...]
 *
 * Runs CMD, writes its peak resident set size in kilobytes (the kernel's
 * ru_maxrss, from wait4) to the file OUT, and exits with CMD's status (128
 * plus the signal when one killed it). A shell cannot read a child's
 * rusage, and /usr/bin/time is not everywhere.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: peak_rss OUT CMD [ARGS...]\n");
    return 2;
  }
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) {
    perror("peak_rss");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    perror(argv[1]);
    return 2;
  }
  fprintf(out, "%ld\n", ru.ru_maxrss);
  fclose(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
