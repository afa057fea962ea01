/* run_signals.c — `dlc run` stopped by SIGINT or SIGTERM.
 *
 *   run_signals DLC
 *
 * Starts a train of two billion steps, signals it once it is training,
 * and checks that it stopped after a step (the warning says after how many),
 * that nothing after the train ran, and that the exit status is 128 plus
 * the signal.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char model[] =
    "x = linspace(0, 1, 1000)\n"
    "param w = 1.0\n"
    "loss = sum((w * x - 0.5 * x)^2)\n"
    "print(\"training\")\n"
    "train(steps = 2000000000, optimizer = sgd(lr = 1e-9))\n"
    "print(\"not reached\")\n";

static int failures;

static void check(const char *dlc, const char *path, int sig, const char *name) {
  char out_path[] = "/tmp/dlc_sig_out_XXXXXX", err_path[] = "/tmp/dlc_sig_err_XXXXXX";
  int fo = mkstemp(out_path), fe = mkstemp(err_path);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fo, 1);
    dup2(fe, 2);
    execl(dlc, dlc, "run", path, (char *)NULL);
    _exit(127);
  }
  /* Training has begun once "training" is printed. */
  char buf[4096] = "";
  for (int i = 0; i < 1000 && !strstr(buf, "training"); i++) {
    usleep(10000);
    ssize_t n = pread(fo, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
  }
  usleep(200000);
  kill(pid, sig);
  int status;
  waitpid(pid, &status, 0);
  char err[8192] = "", out[4096] = "";
  ssize_t n = pread(fe, err, sizeof err - 1, 0);
  err[n > 0 ? n : 0] = '\0';
  n = pread(fo, out, sizeof out - 1, 0);
  out[n > 0 ? n : 0] = '\0';
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 128 + sig) {
    fprintf(stderr, "FAIL: %s: exit status %d, expected %d\n", name,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, 128 + sig);
    failures++;
  }
  if (!strstr(err, "training interrupted after") || !strstr(err, name)) {
    fprintf(stderr, "FAIL: %s: stderr is\n%s\n", name, err);
    failures++;
  }
  if (strstr(out, "not reached")) {
    fprintf(stderr, "FAIL: %s: what follows the train ran\n", name);
    failures++;
  }
  close(fo);
  close(fe);
  unlink(out_path);
  unlink(err_path);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run_signals DLC\n");
    return 2;
  }
  char path[] = "/tmp/dlc_sig_model_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, model, strlen(model)) != (ssize_t)strlen(model))
    return 2;
  close(fd);
  check(argv[1], path, SIGINT, "SIGINT");
  check(argv[1], path, SIGTERM, "SIGTERM");
  unlink(path);
  printf("run_signals: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
