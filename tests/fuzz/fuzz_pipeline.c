/* fuzz_pipeline.c — libFuzzer over the whole pipeline on small programs:
 * parse, check, then every action run as `dlc run` runs it — the schedule,
 * LLVM code generation, the JIT, training — with each train capped at a
 * few steps and the data at a few thousand elements (larger programs are
 * only checked), so that an input takes milliseconds. One JIT serves the
 * whole run, as in the REPL; each train's code is removed after it ran.
 *
 * Build and run: tests/fuzz/README.md.
 */
#include "dlc.h"

#include "big_stack.h"

#include <stdlib.h>

enum { MAX_STEPS = 20, MAX_SMALL_ELEMENTS = 4096 };

static Runner *runner;                           /* one JIT for every input, as the REPL has */

static bool small(const Program *p) {
  for (int i = 0; i < p->ndata; i++)
    if (shape_numel(p->data[i].value.shape) > MAX_SMALL_ELEMENTS)
      return false;
  for (int i = 0; i < p->nparams; i++)
    if (shape_numel(p->params[i].value.shape) > MAX_SMALL_ELEMENTS)
      return false;
  return true;
}

static void *run_input(void *arg) {
  const FuzzInput *in = arg;
  Arena *a = arena_new();
  Diags d = {0};
  Source *src = source_new(a, "fuzz.dl", (const char *)in->data, in->size);
  Stmt *stmts = parse_source(src, a, &d);
  if (d.nerrors == 0) {
    Program *p = program_new(a, &d, (Options){.opt_level = 2, .threads = 1});
    if (sema_program(p, stmts) && small(p)) {
      for (Action *act = p->actions; act; act = act->next)
        if (act->kind == ACT_TRAIN && act->steps > MAX_STEPS)
          act->steps = MAX_STEPS;
      if (!runner)
        runner = runner_new();
      FILE *sink = fopen("/dev/null", "w");
      exec_program(runner, p, sink);
      fclose(sink);
    }
    program_free(p);
  }
  diag_free(&d);
  arena_free(a);
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run_on_big_stack(run_input, data, size);
  return 0;
}
