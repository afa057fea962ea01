/* check.c — `dlc check`: every hand-written deriv against the body.
 *
 * A wrong hand-written derivative is the commonest bug of people who write
 * torch.autograd.Function: training still runs, just towards the wrong
 * place. For each `deriv ARG = E` of a fn, the symbolic derivative of the
 * body with respect to ARG is computed (diff.c) and both are evaluated, in
 * double precision, at sample points drawn from a fixed seed. Points where
 * either is not finite (outside a log's domain, say) are skipped; a point
 * where they differ by more than a relative 1e-6 is reported.
 */
#include "dlc.h"

#include <math.h>
#include <stdlib.h>

enum { SAMPLES = 12 };

/* Evaluates hand and sym at the point; false when either is not finite.
 * *worst gets the element that differs most. */
static bool compare_at(Program *p, Node *const *vars, const double *point, int n, Node *hand,
                       Node *sym, double *h_out, double *s_out, bool *agree) {
  Tensor th, ts;
  char *err = NULL;
  bool ok = eval_node(p, hand, vars, point, n, &th, &err);
  free(err);
  if (!ok)
    return false;
  err = NULL;
  ok = eval_node(p, sym, vars, point, n, &ts, &err);
  free(err);
  if (!ok) {
    free(th.v);
    return false;
  }
  int64_t nh = shape_numel(th.shape), ns = shape_numel(ts.shape);
  int64_t count = nh > ns ? nh : ns;
  bool finite = true;
  *agree = true;
  for (int64_t k = 0; k < count && finite; k++) {
    double h = th.v[nh == 1 ? 0 : k], s = ts.v[ns == 1 ? 0 : k];
    finite = isfinite(h) && isfinite(s);
    double scale = fmax(1, fmax(fabs(h), fabs(s)));
    if (finite && fabs(h - s) > 1e-6 * scale && *agree) {
      *agree = false;
      *h_out = h;
      *s_out = s;
    }
  }
  free(th.v);
  free(ts.v);
  return finite;
}

/* Six digits are enough to find the spot again; the full width is noise. */
static void format_point(Buf *b, const Fn *fn, const double *point) {
  for (int i = 0; i < fn->arity; i++)
    buf_printf(b, "%s%s = %.6g", i ? ", " : "", fn->formals[i], point[i]);
}

/* One deriv: true when it agrees at every usable sample point. */
static bool check_one(Program *p, const Fn *fn, int arg, Node *const *vars, Node *hand, Node *sym,
                      FILE *out) {
  DlrtRng rng;
  dlrt_rng_seed(&rng, 0x5eed);
  int n = fn->arity, used = 0;
  double point[n + 1];
  for (int k = 0; k < 4 * SAMPLES && used < SAMPLES; k++) {
    /* Half the points in [-2, 2], half in (0, 4]: the second half keeps
     * fns defined only for positive arguments (log, sqrt) testable. */
    for (int i = 0; i < n; i++)
      point[i] = k % 2 ? 4 * (1 - dlrt_rng_uniform(&rng)) : 4 * dlrt_rng_uniform(&rng) - 2;
    double h = 0, s = 0;
    bool agree;
    if (!compare_at(p, vars, point, n, hand, sym, &h, &s, &agree))
      continue;
    used++;
    if (!agree) {
      Buf at = {0};
      format_point(&at, fn, point);
      diag_error(p->diags, fn->derivs[arg]->value->span,
                 "deriv %s of %s disagrees with the derivative of its body: at %s it gives %.6g, "
                 "but the body's derivative is %.6g",
                 fn->formals[arg], fn->name, at.data, h, s);
      buf_free(&at);
      return false;
    }
  }
  if (used == 0) {
    diag_add(p->diags, DIAG_WARNING, fn->derivs[arg]->value->span,
             "deriv %s of %s could not be checked: no sample point gave finite values",
             fn->formals[arg], fn->name);
    return true;
  }
  fprintf(out, "%s: deriv %s agrees with the derivative of its body at %d points\n", fn->name,
          fn->formals[arg], used);
  return true;
}

bool check_derivs(Program *p, FILE *out) {
  bool ok = true, any = false;
  bool was_f64 = p->opts.f64;
  p->opts.f64 = true;                            /* compare in double, whatever the program runs in */
  for (int f = 0; f < p->nfns; f++) {
    const Fn *fn = p->fns[f];
    int n = fn->arity;
    Node *vars[n + 1], *body, *hand[n + 1], *sym[n + 1];
    for (int i = 0; i < n; i++)
      vars[i] = ir_var(p->graph, fn->formals[i], shape_scalar(), fn, i);
    if (!sema_fn_partials(p, fn, vars, &body, hand, sym)) {
      ok = false;
      continue;
    }
    for (int i = 0; i < n; i++)
      if (hand[i]) {
        any = true;
        ok &= check_one(p, fn, i, vars, hand[i], simplify_node(p->graph, sym[i]), out);
      }
  }
  p->opts.f64 = was_f64;
  if (!any)
    fprintf(out, "no hand-written deriv to check\n");
  return ok;
}
