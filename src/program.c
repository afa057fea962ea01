/* program.c — a Program's life: made empty, filled, freed.
 *
 * The Program is what sema builds and every later phase reads: params,
 * data, fns, the loss and the actions. It outlives a sema_program run (the
 * REPL adds each line to the same one) and others add to it (exec.c and
 * schedule.c add data), so making and freeing it is not sema's. It lives
 * in its caller's arena; what grows (params, data, fns, sema's name index
 * and fn-call memo) is malloc'd and freed here. What running it takes (the
 * JIT, the training team, a resumed checkpoint's state) is not the
 * program's but a Runner's (exec.c): the REPL keeps one runner for all
 * the programs it builds.
 */
#include "dlc.h"

#include <stdlib.h>

Program *program_new(Arena *a, Diags *d, Options opts) {
  Program *p = arena_alloc(a, sizeof *p);
  p->arena = a;
  p->graph = graph_new(a);
  p->fn_memo = arena_alloc(a, sizeof *p->fn_memo);
  p->diags = d;
  p->opts = opts;
  p->actions_tail = &p->actions;
  return p;
}

int program_add_data(Program *p, const char *name, Tensor t) {
  if (p->ndata == p->cap_data) {
    p->cap_data = p->cap_data ? p->cap_data * 2 : 8;
    p->data = xrealloc(p->data, sizeof(DataInfo) * (size_t)p->cap_data);
  }
  p->data[p->ndata] = (DataInfo){name, t, NULL};
  return p->ndata++;
}

double program_round(const Program *p, double v) { return dlrt_round(v, p->opts.f64); }

void program_free(Program *p) {
  for (int i = 0; i < p->nparams; i++)
    free(p->params[i].value.v);
  for (int i = 0; i < p->ndata; i++)
    free(p->data[i].value.v);
  free(p->params);
  free(p->data);
  free(p->fns);
  free(p->sym_buckets);
  free(p->fn_memo->buckets);
  graph_free(p->graph);
}
