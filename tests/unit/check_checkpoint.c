/* check_checkpoint.c — unit tests for src/checkpoint.c: params written and
 * read back exactly (f32 and f64), what a resume remembers, every kind of
 * file that must be refused with a clear message, and the atomic write (no
 * temporary file left, an unwritable place reported). The full stop and
 * resume, with the same trajectory as an unstopped run, is
 * tests/run_signals.c.
 */
#include "unit.h"

#include <dirent.h>
#include <stdio.h>
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

START_TEST(params_round_trip) {
  compile_text(model);
  fx.prog->params[0].value.v[0] = (float)1 / 3;
  fx.prog->params[1].value.v[2] = (float)-2.7182817;
  Checkpoint c = {1, the_train(), the_train()->steps, 7, NULL, NULL, 0};
  ck_assert(checkpoint_save(fx.prog, path_of("c.json"), &c));
  reopen(false);
  ck_assert(checkpoint_load(fx.prog, path_of("c.json")));
  ck_assert_double_eq(fx.prog->params[0].value.v[0], (float)1 / 3);
  ck_assert_double_eq(fx.prog->params[1].value.v[1], 0.5);
  ck_assert_double_eq(fx.prog->params[1].value.v[2], (float)-2.7182817);
  int64_t step = -1;
  ck_assert_int_eq(checkpoint_resume_train(fx.prog, &step), 1);
  ck_assert_int_eq(step, 7);
  /* Nothing but the checkpoint is left in the directory. */
  DIR *d = opendir(dir);
  int files = 0;
  for (struct dirent *e; (e = readdir(d));)
    files += e->d_name[0] != '.';
  closedir(d);
  ck_assert_int_eq(files, 1);
}
END_TEST

START_TEST(f64_round_trip) {
  fx_teardown();
  fixture_open(true);
  compile_text(model);
  fx.prog->params[0].value.v[0] = 0.1 + 0.2;
  Checkpoint c = {1, the_train(), the_train()->steps, 10, NULL, NULL, 0};
  ck_assert(checkpoint_save(fx.prog, path_of("c.json"), &c));
  reopen(true);
  ck_assert(checkpoint_load(fx.prog, path_of("c.json")));
  ck_assert_double_eq(fx.prog->params[0].value.v[0], 0.1 + 0.2);
}
END_TEST

/* Files that must be refused, each with the reason. */
static const struct {
  const char *text;
  const char *says;
} refused[] = {
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\"", "not JSON"},
    {"[1, 2, 3]", "not a dlc checkpoint"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 9}", "another version"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float64\"}",
     "another precision; this run is float32"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float32\"}",
     "missing or malformed"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float32\", \"train\": 1,"
     " \"step\": 3, \"params\": {\"a\": 1}}",
     "no value for param 'w'"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float32\", \"train\": 1,"
     " \"step\": 3, \"params\": {\"a\": 1, \"w\": [1, 2]}}",
     "param 'w' has another shape"},
    {"{\"format\": \"dlc-checkpoint\", \"version\": 1, \"precision\": \"float32\", \"train\": 1,"
     " \"step\": 3, \"params\": {\"a\": 1, \"w\": [1, 2, 3], \"b\": 2}}",
     "a param 'b' this program does not"},
    {"", "not JSON"},
};

START_TEST(bad_files_refused) {
  compile_text(model);
  FILE *f = fopen(path_of("bad.json"), "w");
  fputs(refused[_i].text, f);
  fclose(f);
  ck_assert(!checkpoint_load(fx.prog, path_of("bad.json")));
  ck_assert_int_eq(fx.diags.nerrors, 1);
  ck_assert_msg(strstr(fx.diags.items[0].msg, refused[_i].says), "'%s' lacks '%s'",
                fx.diags.items[0].msg, refused[_i].says);
  ck_assert(strstr(fx.diags.items[0].msg, "cannot resume from"));
  int64_t step;
  ck_assert_int_eq(checkpoint_resume_train(fx.prog, &step), 0);
}
END_TEST

START_TEST(missing_file_and_unwritable_place) {
  compile_text(model);
  ck_assert(!checkpoint_load(fx.prog, path_of("none.json")));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[0].msg, "No such file"));
  Checkpoint c = {1, the_train(), the_train()->steps, 0, NULL, NULL, 0};
  ck_assert(!checkpoint_save(fx.prog, path_of("no/such/dir/c.json"), &c));
  ck_assert_ptr_nonnull(strstr(fx.diags.items[1].msg, "cannot save the checkpoint"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("checkpoint");
  TCase *tc = tcase_create("checkpoint");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, params_round_trip);
  tcase_add_test(tc, f64_round_trip);
  tcase_add_loop_test(tc, bad_files_refused, 0, (int)(sizeof refused / sizeof *refused));
  tcase_add_test(tc, missing_file_and_unwritable_place);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
