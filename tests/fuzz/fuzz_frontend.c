/* fuzz_frontend.c — libFuzzer over the front end, the checker and the
 * differentiator: every input is parsed, checked (which evaluates data and
 * param initial values) and, when it has a loss, differentiated and
 * simplified, as `dlc emit grad` does. No JIT. A crash, a sanitizer report,
 * a hang or a blown memory limit is a finding.
 *
 * The compiler's passes recurse up to MAX_EXPR_DEPTH deep, and dlc runs
 * them on a thread with a large stack; so does this harness.
 *
 * Build and run: tests/fuzz/README.md.
 */
#include "dlc.h"

#include "big_stack.h"

#include <stdlib.h>

static void *run_input(void *arg) {
  const FuzzInput *in = arg;
  Arena *a = arena_new();
  Diags d = {0};
  Source *src = source_new(a, "fuzz.dl", (const char *)in->data, in->size);
  Stmt *stmts = parse_source(src, a, &d);
  if (d.nerrors == 0) {
    Program *p = program_new(a, &d, (Options){.opt_level = 2});
    if (sema_program(p, stmts) && p->loss) {
      Node *roots[p->nparams + 1];
      loss_and_grads(p, p->loss, roots);
    }
    program_free(p);
  }
  /* Printing the diagnostics exercises the caret code on any input. */
  FILE *sink = fopen("/dev/null", "w");
  diag_print(&d, sink);
  fclose(sink);
  diag_free(&d);
  arena_free(a);
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run_on_big_stack(run_input, data, size);
  return 0;
}
