/* run_signals.c — `dlc run` stopped by SIGINT or SIGTERM, and resumed.
 *
 *   run_signals DLC
 *
 * Starts a train of two billion steps, signals it once it is training,
 * and checks that it stopped after a step (the warning says after how many),
 * that nothing after the train ran, and that the exit status is 128 plus
 * the signal. Then stops an Adam training saved with --save, resumes it
 * with --resume, and compares with the same training never stopped.
 * Last, a train written to --log files (CSV, JSON Lines) stopped by
 * SIGINT: each file is read back, and must be whole up to its last line,
 * a line for each log line the run printed.
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
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

/* Runs `dlc run ARGS...`; returns its exit status, stdout in out. */
static int run_dlc(char *const *argv, char *out, size_t size, int stop_after_ms) {
  char out_path[] = "/tmp/dlc_sig_out_XXXXXX";
  int fo = mkstemp(out_path);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fo, 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  if (stop_after_ms) {
    usleep((useconds_t)stop_after_ms * 1000);
    kill(pid, SIGINT);
  }
  int status;
  waitpid(pid, &status, 0);
  ssize_t n = pread(fo, out, size - 1, 0);
  out[n > 0 ? n : 0] = '\0';
  close(fo);
  unlink(out_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *last_line(const char *text) {
  size_t n = strlen(text);
  while (n && text[n - 1] == '\n')
    n--;
  while (n && text[n - 1] != '\n')
    n--;
  return text + n;
}

/* Stopped with --save, then --resume: the resumed run ends exactly where
 * one that was never stopped ends, and its log lines are that run's. An
 * Adam training of a vector param; and minibatches (shuffled, the last of
 * each epoch smaller), stopped inside an epoch: the resumed run orders
 * the rows as the whole one did, and its epoch's mean loss counts the
 * batches done before the stop. */
static const char adam_model[] =
    "x = linspace(-1, 1, 1000)\n"
    "param a = 0.5\n"
    "param w = fill(1000, 0.1)\n"
    "loss = mean((a * tanh(w * x) - sin(2 * x))^2)\n"
    "train(steps = 600000, optimizer = adam(lr = 0.0001), log_every = 100000)\n"
    "print(\"a = {a}, loss = {loss}, w = {w}\")\n";
static const char batch_model[] =
    "X = stack(linspace(-1, 1, 1000), cos(linspace(0, 9, 1000)))\n"
    "y = sin(3 * X[:, 0]) + 0.1 * X[:, 1]\n"
    "param W = [[0.5, -0.5, 0.25], [0.1, 0.2, 0.3]]\n"
    "param v = [0.3, 0.2, 0.1]\n"
    "loss = mean((tanh(X @ W) @ v - y)^2)\n"
    "train(epochs = 40000, batch = 64, shuffle = 3, optimizer = adam(lr = 0.0001), log_every = 4000)\n"
    "print(\"W = {W}, v = {v}, loss = {loss}\")\n";

static void check_resume(const char *dlc, const char *text) {
  char path[] = "/tmp/dlc_resume_model_XXXXXX", ckpt[] = "/tmp/dlc_resume_ckpt_XXXXXX";
  int fd = mkstemp(path);
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    return;
  close(fd);
  close(mkstemp(ckpt));
  static char whole[1 << 16], stopped[1 << 16], resumed[1 << 16];
  char *plain[] = {(char *)dlc, "run", path, NULL};
  char *save[] = {(char *)dlc, "run", path, "--save", ckpt, NULL};
  char *resume[] = {(char *)dlc, "run", path, "--resume", ckpt, NULL};
  int s1 = run_dlc(plain, whole, sizeof whole, 0);
  int s2 = run_dlc(save, stopped, sizeof stopped, 300);
  int s3 = run_dlc(resume, resumed, sizeof resumed, 0);
  if (s1 != 0 || s2 != 130 || s3 != 0) {
    fprintf(stderr, "FAIL: resume: exit statuses %d, %d, %d (expected 0, 130, 0)\n", s1, s2, s3);
    failures++;
  }
  if (strcmp(last_line(whole), last_line(resumed)) != 0 || !strstr(whole, " = ")) {
    fprintf(stderr, "FAIL: resume: the resumed run ends with\n%s\nthe whole one with\n%s\n",
            last_line(resumed), last_line(whole));
    failures++;
  }
  for (char *line = strtok(resumed, "\n"); line; line = strtok(NULL, "\n"))
    if (!strstr(whole, line)) {
      fprintf(stderr, "FAIL: resume: '%s' is not a line of the whole run\n", line);
      failures++;
    }
  unlink(path);
  unlink(ckpt);
}

static const char log_model[] =
    "x = linspace(0, 1, 1000)\n"
    "param w = 1.0\n"
    "param b = [0.5, 0.25]\n"
    "loss = sum((w * x - 0.5 * x + b[0])^2)\n"
    "train(steps = 2000000000, optimizer = sgd(lr = 1e-7), log_every = 10000)\n";

static void log_fail(const char *log, const char *why, const char *line) {
  fprintf(stderr, "FAIL: --log %s: %s: '%s'\n", log, why, line);
  failures++;
}

/* One line of the log file, its steps counted in *n: train 1, the step
 * of the nth log line, a loss, and w and b. */
static void check_log_line(const char *log, char *line, int *n, bool csv) {
  long long want_step = (*n + 1) * 10000LL - 1;
  ++*n;
  if (csv) {
    char *f[16];
    int k = 0;
    for (char *s = strtok(line, ","); s && k < 16; s = strtok(NULL, ","))
      f[k++] = s;
    /* train,step,epoch,loss,seconds,w,b[0],b[1]: the epoch empty, so
     * strtok sees 7 fields */
    if (k != 7 || strcmp(f[0], "1") || atoll(f[1]) != want_step || strtod(f[2], NULL) <= 0)
      log_fail(log, "not a line of the train's", line);
    return;
  }
  cJSON *j = cJSON_Parse(line);
  cJSON *params = cJSON_GetObjectItem(j, "params");
  cJSON *b = cJSON_GetObjectItem(params, "b");
  if (!j || cJSON_GetObjectItem(j, "train")->valueint != 1 ||
      cJSON_GetObjectItem(j, "step")->valuedouble != (double)want_step ||
      !cJSON_IsNumber(cJSON_GetObjectItem(j, "loss")) || !cJSON_IsNumber(cJSON_GetObjectItem(j, "seconds")) ||
      !cJSON_IsNumber(cJSON_GetObjectItem(params, "w")) || cJSON_GetArraySize(b) != 2 ||
      cJSON_GetObjectItem(j, "epoch"))
    log_fail(log, "not a line of the train's", line);
  cJSON_Delete(j);
}

static void check_log(const char *dlc, const char *model, const char *ext) {
  char log[64];
  snprintf(log, sizeof log, "/tmp/dlc_sig_log_%d%s", (int)getpid(), ext);
  static char out[1 << 20], text[1 << 20];
  char *argv[] = {(char *)dlc, "run", (char *)model, "--log", log, NULL};
  int status = run_dlc(argv, out, sizeof out, 300);
  FILE *f = fopen(log, "r");
  size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
  text[len] = '\0';
  if (f)
    fclose(f);
  bool csv = strcmp(ext, ".csv") == 0;
  if (status != 130 || !len || text[len - 1] != '\n') {
    fprintf(stderr, "FAIL: --log %s: exit status %d, the file does not end a line:\n%s\n", log, status, text);
    failures++;
  }
  int lines = 0, logged = 0;
  char *save;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (csv && line == text) {
      if (strcmp(line, "train,step,epoch,loss,seconds,w,b[0],b[1]") != 0)
        log_fail(log, "the header is", line);
      continue;
    }
    check_log_line(log, line, &lines, csv);
  }
  for (const char *p = out; (p = strchr(p, '\n')); p++)
    logged++;
  if (lines < 2 || lines != logged) {
    fprintf(stderr, "FAIL: --log %s: %d lines, and the run printed %d log lines\n", log, lines, logged);
    failures++;
  }
  unlink(log);
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
  check_resume(argv[1], adam_model);
  check_resume(argv[1], batch_model);
  unlink(path);
  char log_path[] = "/tmp/dlc_sig_log_model_XXXXXX";
  fd = mkstemp(log_path);
  if (fd < 0 || write(fd, log_model, strlen(log_model)) != (ssize_t)strlen(log_model))
    return 2;
  close(fd);
  check_log(argv[1], log_path, ".csv");
  check_log(argv[1], log_path, ".jsonl");
  unlink(log_path);
  printf("run_signals: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
