/* Public int8 elementwise Add / Mul (QLinearAdd / QLinearMul semantics);
   the arithmetic is described in qbinary_scalar.c. */
#include <math.h>

#include "internal.h"

static int check_qparams(const char *what, const pyrt_qparams *q) {
  if (q == NULL) return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s is NULL", what);
  if (q->dtype != PYRT_U8 && q->dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s dtype must be U8 or S8", what);
  if (!isfinite(q->scale) || q->scale <= 0.0f)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s scale must be finite and > 0",
                     what);
  const int32_t lo = q->dtype == PYRT_U8 ? 0 : -128;
  if (q->zero_point < lo || q->zero_point > lo + 255)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s zero point %d out of range",
                     what, q->zero_point);
  return PYRT_OK;
}

/* Per outer index o: `per` rows of `cols` elements of a / y against b's row
   (b_step 1) or value (b_step 0) at b + o * b_outer; a pyrt_grid over all
   outer * per rows. */
typedef struct {
  const pyrt_kernel_table *t;
  pyrt_grid grid;
  int32_t op, b_step;
  int64_t per, b_outer;
  const char *a, *b;
  char *y;
  const pyrt_qparams *qa, *qb, *qy;
  int32_t qmin, qmax;
} binary_job;

static void binary_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const binary_job *j = (const binary_job *)arg;
  const int64_t cols = j->grid.cols;
  int64_t r0, r1, c0, c1;
  pyrt_grid_task(&j->grid, task, &r0, &r1, &c0, &c1);
  while (r0 < r1) { /* rows of one outer index at a time */
    const int64_t o = r0 / j->per;
    const int64_t end = (o + 1) * j->per < r1 ? (o + 1) * j->per : r1;
    const size_t at = (size_t)(r0 * cols + c0);
    const char *b = j->b + (size_t)(o * j->b_outer + (j->b_step ? c0 : 0));
    if (c1 - c0 == cols) /* whole rows: one call */
      j->t->qbinary(j->op, end - r0, cols, j->a + at, j->qa, b, j->b_step,
                    j->qb, j->y + at, j->qy, j->qmin, j->qmax);
    else
      j->t->qbinary(j->op, 1, c1 - c0, j->a + at, j->qa, b, j->b_step, j->qb,
                    j->y + at, j->qy, j->qmin, j->qmax);
    r0 = end;
  }
}

int pyrt_qbinary_broadcast(pyrt_context *ctx, int32_t op, int64_t outer,
                           int64_t middle, int64_t inner, const void *a,
                           const pyrt_qparams *qa, const void *b,
                           const pyrt_qparams *qb, void *y,
                           const pyrt_qparams *qy, int32_t qmin, int32_t qmax) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "qbinary: ctx is NULL");
  if (op != PYRT_ADD && op != PYRT_MUL)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: unknown op %d", op);
  if (outer <= 0 || middle <= 0 || inner <= 0 ||
      outer > INT64_MAX / middle / inner)
    return pyrt_fail(PYRT_ERR_ARG,
                     "qbinary: outer %lld, middle %lld, inner %lld must be > 0 "
                     "and their product fit int64",
                     (long long)outer, (long long)middle, (long long)inner);
  if (a == NULL || b == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: NULL buffer");
  int rc = check_qparams("a", qa);
  if (!rc) rc = check_qparams("b", qb);
  if (!rc) rc = check_qparams("y", qy);
  if (rc) return rc;
  const int32_t lo = qy->dtype == PYRT_U8 ? 0 : -128;
  if (qmin < lo || qmax > lo + 255 || qmin > qmax)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: clamp [%d, %d] out of range", qmin,
                     qmax);
  /* The kernel's multipliers (same expressions): finite, and the largest
     |v| (|a - za|, |b - zb| <= 255) finite, so v is never Inf or NaN. */
  const float ma = qa->scale / qy->scale, mb = qb->scale / qy->scale;
  const float mab = qa->scale * qb->scale / qy->scale;
  const float worst =
      op == PYRT_ADD ? 255.0f * ma + 255.0f * mb : 65025.0f * mab;
  if (!isfinite(worst))
    return pyrt_fail(PYRT_ERR_ARG,
                     "qbinary: scales a %g, b %g, y %g give an infinite "
                     "multiplier",
                     (double)qa->scale, (double)qb->scale, (double)qy->scale);
  if (middle == 1) { /* same shapes: one flat run */
    inner *= outer;
    outer = 1;
  }
  /* inner 1: each outer index is one row of `middle` against one b value */
  const int32_t b_step = inner > 1;
  const int64_t per = b_step ? middle : 1, cols = b_step ? inner : middle;
  binary_job j = {ctx->t,
                  {0},
                  op,
                  b_step,
                  per,
                  b_step ? inner : 1,
                  (const char *)a,
                  (const char *)b,
                  (char *)y,
                  qa,
                  qb,
                  qy,
                  qmin,
                  qmax};
  pyrt_context_enter(ctx);
  j.grid = pyrt_grid_make(ctx, outer * per, cols);
  pyrt_parallel(ctx, j.grid.tasks, binary_task, &j);
  pyrt_context_leave(ctx);
  return PYRT_OK;
}

int pyrt_qbinary(pyrt_context *ctx, int32_t op, int64_t n, const void *a,
                 const pyrt_qparams *qa, const void *b, const pyrt_qparams *qb,
                 void *y, const pyrt_qparams *qy, int32_t qmin, int32_t qmax) {
  if (n <= 0) return pyrt_fail(PYRT_ERR_ARG, "qbinary: n must be > 0");
  return pyrt_qbinary_broadcast(ctx, op, 1, 1, n, a, qa, b, qb, y, qy, qmin,
                                qmax);
}
