/* check_checkpoint.c — unit tests for src/checkpoint.c: params and
 * optimizer state written and read back exactly (f32 and f64, NaN and
 * infinities included), what a resume remembers, every kind of file that
 * must be refused with a clear message (and leaves the program as it
 * was), files that are no files (a directory, a device, a FIFO), and the
 * atomic write (no temporary file left, even when the write fails; an
 * unwritable place found before training). The full stop and resume, with
 * the same trajectory as an unstopped run, is tests/run_signals.c; the
 * command-line scenarios (a refused resume, saves that fail) are
 * tests/hostile_test.sh.
 */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char model[] =
    "param a = 0.1\n"
    "param w = linspace(0, 1, 3)\n"
    "loss = (a - 1)^2 + sum(w^2)\n"
    "train(steps = 10, optimizer = adam(lr = 0.1))\n";

static char dir[64];

static void setup(void) {
  fx_setup_f32();
  snprintf(dir, sizeof dir, "/tmp/dlc_ckpt_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  fx_teardown();
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (e->d_name[0] != '.')
      unlink(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

static const Action *the_train(void) {
  for (const Action *a = fx.prog->actions; a; a = a->next)
    if (a->kind == ACT_TRAIN)
      return a;
  return NULL;
}

static char *path_of(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

/* A fresh program of the same model, to load into. */
static void reopen(bool f64) {
  fx_teardown();
  fixture_open(f64);
  compile_text(model);
}

static void set(void *buf, int64_t e, double v, bool f64) {
  if (f64)
    ((double *)buf)[e] = v;
  else
    ((float *)buf)[e] = (float)v;
}

static double get(void *buf, int64_t e, bool f64) {
  return f64 ? ((double *)buf)[e] : ((float *)buf)[e];
}

/* The state value k (0, 1) of element e of param i that the tests save. */
static double state_value(int i, int k, int64_t e) {
  static const double special[] = {INFINITY, -INFINITY, NAN};
  return i == 1 && k == 1 ? special[e % 3] : 0.25 * (double)(i + 1) + (double)k + (double)e / 8;
}

/* Saves the train's buffers after `done` steps: the params' values, and
 * the state values above. */
static bool save_train(const char *name, int64_t done) {
  const Action *a = the_train();
  bool f64 = fx.prog->opts.f64;
  Schedule *s = train_schedule(fx.runner, fx.prog, a->loss, &a->opt);
  void **bufs = exec_make_buffers(fx.prog, s);
  for (int i = 0; i < fx.prog->nparams; i++)
    for (int k = 0; k < 2; k++)
      for (int64_t e = 0; s->state_buf[2 * i + k] >= 0 && e < shape_numel(fx.prog->params[i].value.shape); e++)
        set(bufs[s->state_buf[2 * i + k]], e, state_value(i, k, e), f64);
  bool ok = checkpoint_save(fx.prog, path_of(name), &(Checkpoint){1, a, a->steps, done, s, bufs, 0});
  for (int k = 0; k < s->nbufs; k++)
    free(bufs[k]);
  free(bufs);
  schedule_free(s);
  return ok;
}

/* The state a resume restores equals what save_train saved. */
static void check_restored_state(void) {
  const Action *a = the_train();
  bool f64 = fx.prog->opts.f64;
  Schedule *s = train_schedule(fx.runner, fx.prog, a->loss, &a->opt);
  void **bufs = exec_make_buffers(fx.prog, s);
  checkpoint_resume_state(fx.runner, fx.prog, s, bufs, NULL);
  for (int i = 0; i < fx.prog->nparams; i++)
    for (int k = 0; k < 2; k++)
      for (int64_t e = 0; e < shape_numel(fx.prog->params[i].value.shape); e++) {
        double want = f64 ? state_value(i, k, e) : (float)state_value(i, k, e);
        double got = get(bufs[s->state_buf[2 * i + k]], e, f64);
        ck_assert_msg(got == want || (isnan(got) && isnan(want)), "state %d.%d[%lld]: %g, saved %g", i, k,
                      (long long)e, got, want);
      }
  for (int k = 0; k < s->nbufs; k++)
    free(bufs[k]);
  free(bufs);
  schedule_free(s);
}

static int files_in_dir(void) {
  DIR *d = opendir(dir);
  int files = 0;
  for (struct dirent *e; (e = readdir(d));)
    files += e->d_name[0] != '.';
  closedir(d);
  return files;
}

START_TEST(params_round_trip) {
  compile_text(model);
  fx.prog->params[0].value.v[0] = (float)1 / 3;
  fx.prog->params[1].value.v[2] = (float)-2.7182817;
  ck_assert(save_train("c.json", 7));
  reopen(false);
  ck_assert(checkpoint_load(fx.runner, fx.prog, path_of("c.json")));
  ck_assert_double_eq(fx.prog->params[0].value.v[0], (float)1 / 3);
  ck_assert_double_eq(fx.prog->params[1].value.v[1], 0.5);
  ck_assert_double_eq(fx.prog->params[1].value.v[2], (float)-2.7182817);
  int64_t step = -1;
  ck_assert_int_eq(checkpoint_resume_train(fx.runner, &step), 1);
  ck_assert_int_eq(step, 7);
  /* Adam's second moment overflowed to inf (the state of w holds inf,
   * -inf and NaN): what was saved resumes. */
  check_restored_state();
  /* Nothing but the checkpoint is left in the directory. */
  ck_assert_int_eq(files_in_dir(), 1);
}
END_TEST

START_TEST(f64_round_trip) {
  fx_teardown();
  fixture_open(true);
  compile_text(model);
  fx.prog->params[0].value.v[0] = 0.1 + 0.2;
  ck_assert(save_train("c.json", 10));
  reopen(true);
  ck_assert(checkpoint_load(fx.runner, fx.prog, path_of("c.json")));
  ck_assert_double_eq(fx.prog->params[0].value.v[0], 0.1 + 0.2);
  check_restored_state();
}
END_TEST

/* The start of a checkpoint of the model that fits it, and its rest. */
#define HEAD                                                                                      \
  "{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float32\", \"train\": 1, " \
  "\"steps\": 10, \"step\": 3, \"optimizer\": \"adam\", "
#define PARAMS "\"params\": {\"a\": 1, \"w\": [1, 2, 3]}, "
#define STATE "\"state\": {\"a\": [[0], [0]], \"w\": [[0, 0, 0], [0, \"inf\", 0]]}}"
#define HEAD_WITH(fields)                                                                          \
  "{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float32\", " fields           \
  ", \"optimizer\": \"adam\", " PARAMS STATE

/* Files that must be refused, each with the reason. */
static const struct {
  const char *text;
  const char *says;
} refused[] = {
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\"", "not JSON"},
    {"", "not JSON"},
    {HEAD PARAMS STATE " x", "not JSON"},               /* text after it */
    {HEAD PARAMS STATE "{}", "not JSON"},
    {"[1, 2, 3]", "not a dlc checkpoint"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 9}", "another version"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1.5}", "another version"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float64\"}",
     "another precision; this run is float32"},
    {HEAD_WITH("\"steps\": 10, \"step\": 3"), "its \"train\" is missing, not a whole number from 1"},
    {HEAD_WITH("\"train\": 1, \"steps\": 10, \"step\": 1.5"),
     "its \"step\" is 1.5, not a whole number from 0 to its steps (10)"},
    {HEAD_WITH("\"train\": 1, \"steps\": 10, \"step\": 1e300"), "its \"step\" is 1.0000000000000001e+300"},
    {HEAD_WITH("\"train\": 1, \"steps\": 10, \"step\": 11"), "its \"step\" is 11, not a whole number"},
    {HEAD_WITH("\"train\": 1, \"steps\": 1e300, \"step\": 1"), "its \"steps\" is 1.0000000000000001e+300"},
    {HEAD_WITH("\"train\": \"1\", \"steps\": 10, \"step\": 1"), "its \"train\" is a string"},
    {HEAD_WITH("\"train\": 2, \"steps\": 10, \"step\": 1"), "it is of train 2, and this program has 1"},
    {HEAD_WITH("\"train\": 1, \"steps\": 20, \"step\": 1"),
     "it was saved by another train: 20 steps of adam, and this one is 10 steps of adam"},
    {HEAD "\"epoch_loss\": 2, " PARAMS STATE, "saved by a train of minibatches, and this one has none"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float32\", \"train\": 1, "
     "\"steps\": 10, \"step\": 3, \"optimizer\": \"rmsprop\", " PARAMS STATE,
     "another train: 10 steps of rmsprop, and this one is 10 steps of adam"},
    {HEAD STATE, "its \"params\" or \"state\" is missing"},
    {HEAD "\"params\": {\"a\": 1}, " STATE, "it has no value for param 'w'"},
    {HEAD "\"params\": {\"a\": 1, \"w\": [1, 2]}, " STATE, "param 'w' has 2 numbers there, and 3 here"},
    {HEAD "\"params\": {\"a\": [0.5], \"w\": [1, 2, 3]}, " STATE, "param 'a' is a list there, not a number"},
    {HEAD "\"params\": {\"a\": null, \"w\": [1, 2, 3]}, " STATE, "param 'a' is null there, not a number"},
    {HEAD "\"params\": {\"a\": \"one\", \"w\": [1, 2, 3]}, " STATE, "param 'a' is a string there"},
    {HEAD "\"params\": {\"a\": \"NaN\", \"w\": [1, 2, 3]}, " STATE, "param 'a' is a string there"},
    {HEAD "\"params\": {\"a\": true, \"w\": [1, 2, 3]}, " STATE, "param 'a' is a boolean there"},
    {HEAD "\"params\": {\"a\": 1e400, \"w\": [1, 2, 3]}, " STATE, "param 'a' is a number out of range"},
    {HEAD "\"params\": {\"a\": 1e39, \"w\": [1, 2, 3]}, " STATE, "param 'a' is a number out of range"},
    {HEAD "\"params\": {\"a\": 1, \"w\": [1, {}, 3]}, " STATE, "param 'w' has an object at index 1"},
    {HEAD "\"params\": {\"a\": 1, \"w\": [1, 2, 3], \"b\": 2}, " STATE, "a param 'b' this program does not"},
    {HEAD PARAMS "\"state\": {\"w\": [[0, 0, 0], [0, 0, 0]]}}",
     "the optimizer state of param 'a' is missing there, not a list"},
    {HEAD PARAMS "\"state\": {\"a\": [[0], [0], [0]], \"w\": [[0, 0, 0], [0, 0, 0]]}}",
     "the optimizer state of param 'a' has 3 lists there, and this train's adam keeps 2"},
    {HEAD PARAMS "\"state\": {\"a\": [[0], [0]], \"w\": [[0, 0, 0], [0, null, 0]]}}",
     "the optimizer state of param 'w' has null at index 1, not a number"},
    {HEAD PARAMS "\"state\": {\"a\": [[0], [0]], \"w\": [[0, 0, 0], [0, 0]]}}",
     "the optimizer state of param 'w' has 2 numbers there, and 3 here"},
    {HEAD PARAMS "\"state\": {\"a\": [[0], [0]], \"w\": [[0, 0, 0], [0, 0, 0]], \"b\": []}}",
     "optimizer state for a param 'b' this program does not"},
};

START_TEST(bad_files_refused) {
  compile_text(model);
  FILE *f = fopen(path_of("bad.json"), "w");
  fputs(refused[_i].text, f);
  fclose(f);
  ck_assert(!checkpoint_load(fx.runner, fx.prog, path_of("bad.json")));
  ck_assert_int_eq(fx.diags.nerrors, 1);
  ck_assert_msg(strstr(fx.diags.items[0].msg, refused[_i].says), "'%s' lacks '%s'",
                fx.diags.items[0].msg, refused[_i].says);
  ck_assert(strstr(fx.diags.items[0].msg, "cannot resume from"));
  int64_t step;
  ck_assert_int_eq(checkpoint_resume_train(fx.runner, &step), 0);
  /* A refused file changes nothing. */
  ck_assert_double_eq(fx.prog->params[0].value.v[0], (float)0.1);
  ck_assert_double_eq(fx.prog->params[1].value.v[2], 1);
}
END_TEST

/* The file the table's files are variations of is right. */
START_TEST(good_file_read) {
  compile_text(model);
  FILE *f = fopen(path_of("good.json"), "w");
  fputs(HEAD "\"params\": {\"a\": \"nan\", \"w\": [1, \"-inf\", 3]}, " STATE "\n\n", f);
  fclose(f);
  ck_assert(checkpoint_load(fx.runner, fx.prog, path_of("good.json")));
  ck_assert(isnan(fx.prog->params[0].value.v[0]));
  ck_assert(isinf(fx.prog->params[1].value.v[1]) && fx.prog->params[1].value.v[1] < 0);
}
END_TEST

static const char *load_error(const char *path) {
  ck_assert(!checkpoint_load(fx.runner, fx.prog, path));
  return fx.diags.items[fx.diags.n - 1].msg;
}

/* What is no checkpoint file is refused without reading it: a FIFO would
 * block, /dev/zero never end, a sparse file of a gigabyte be read whole. */
START_TEST(special_files_refused) {
  compile_text(model);
  ck_assert_ptr_nonnull(strstr(load_error(path_of("none.json")), "No such file"));
  ck_assert_ptr_nonnull(strstr(load_error(dir), ": it is a directory"));
  ck_assert_ptr_nonnull(strstr(load_error("/dev/zero"), "it is a device, not a regular file"));
  ck_assert_int_eq(mkfifo(path_of("fifo.json"), 0600), 0);
  ck_assert_ptr_nonnull(strstr(load_error(path_of("fifo.json")), "it is a FIFO, not a regular file"));
  FILE *f = fopen(path_of("nul.json"), "w");
  fputs(HEAD PARAMS, f);
  fputc('\0', f);
  fputs(STATE, f);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(load_error(path_of("nul.json")), "it holds a NUL byte"));
  int fd = open(path_of("big.json"), O_WRONLY | O_CREAT, 0600);
  ck_assert_int_eq(ftruncate(fd, (off_t)1 << 30), 0);
  close(fd);
  ck_assert_ptr_nonnull(strstr(load_error(path_of("big.json")),
                               "it is 1073741824 bytes, more than a checkpoint of this program can be"));
}
END_TEST

/* Where a checkpoint cannot go is found before training. */
START_TEST(unwritable_place) {
  compile_text(model);
  ck_assert(checkpoint_check_target(fx.prog, path_of("c.json")));
  ck_assert(!checkpoint_check_target(fx.prog, path_of("no/such/dir/c.json")));
  ck_assert(!checkpoint_check_target(fx.prog, dir));
  ck_assert(!checkpoint_check_target(fx.prog, "/dev/null"));
  ck_assert_int_eq(fx.diags.nerrors, 3);
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "cannot save the checkpoint"));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "No such file or directory"));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[1].msg, "it is a directory"));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[2].msg, "it is not a regular file"));
  ck_assert(!save_train("no/such/dir/c.json", 0));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[3].msg, "cannot save the checkpoint"));
  ck_assert_int_eq(files_in_dir(), 0);
}
END_TEST

/* A write that fails midway (here the file size limit; a full disk alike)
 * is reported and leaves no temporary file, and the old checkpoint. */
START_TEST(failed_write_cleaned) {
  compile_text(model);
  ck_assert(save_train("c.json", 1));
  struct rlimit old, small = {64, 64};
  getrlimit(RLIMIT_FSIZE, &old);
  small.rlim_max = old.rlim_max;
  signal(SIGXFSZ, SIG_IGN);
  setrlimit(RLIMIT_FSIZE, &small);
  bool saved = save_train("c.json", 2);
  setrlimit(RLIMIT_FSIZE, &old);
  ck_assert(!saved);
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "File too large"));
  ck_assert_int_eq(files_in_dir(), 1);
  reopen(false);
  ck_assert(checkpoint_load(fx.runner, fx.prog, path_of("c.json")));
  int64_t step;
  checkpoint_resume_train(fx.runner, &step);
  ck_assert_int_eq(step, 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("checkpoint");
  TCase *tc = tcase_create("checkpoint");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, params_round_trip);
  tcase_add_test(tc, f64_round_trip);
  tcase_add_loop_test(tc, bad_files_refused, 0, (int)(sizeof refused / sizeof *refused));
  tcase_add_test(tc, good_file_read);
  tcase_add_test(tc, special_files_refused);
  tcase_add_test(tc, unwritable_place);
  tcase_add_test(tc, failed_write_cleaned);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
