/* Public fp32 elementwise entry points: activations (pyrt_funary) and
   broadcasting Add / Sub / Mul / Div (pyrt_fbinary_broadcast). They check
   the arguments and cut the work into pyrt_grid tasks; the arithmetic is
   defined in felem_scalar.c. Tasks write disjoint outputs with the same
   per-element formulas, so results do not depend on the thread count. */
#include <math.h>

#include "internal.h"

typedef struct {
  const pyrt_kernel_table *t;
  pyrt_grid grid;
  int32_t op;
  float alpha, beta;
  const float *x;
  float *y;
} unary_job;

static void unary_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const unary_job *j = (const unary_job *)arg;
  int64_t r0, r1, c0, c1;
  pyrt_grid_task(&j->grid, task, &r0, &r1, &c0, &c1);
  j->t->funary(j->op, c1 - c0, j->x + c0, j->alpha, j->beta, j->y + c0);
}

int pyrt_funary(pyrt_context *ctx, int32_t op, int64_t n, const float *x,
                float alpha, float beta, float *y) {
  if (ctx == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "funary: ctx, x or y is NULL");
  if (op < PYRT_RELU || op > PYRT_ERF)
    return pyrt_fail(PYRT_ERR_ARG, "funary: unknown op %d", op);
  if (n <= 0)
    return pyrt_fail(PYRT_ERR_ARG, "funary: n must be > 0, got %lld",
                     (long long)n);
  if (op == PYRT_CLIP && (isnan(alpha) || isnan(beta)))
    return pyrt_fail(PYRT_ERR_ARG, "funary: clip bounds %g, %g include NaN",
                     (double)alpha, (double)beta);
  unary_job j = {ctx->t, {0}, op, alpha, beta, x, y};
  pyrt_context_enter(ctx);
  j.grid = pyrt_grid_make(ctx, 1, n);
  pyrt_parallel(ctx, j.grid.tasks, unary_task, &j);
  pyrt_context_leave(ctx);
  return PYRT_OK;
}

/* Per outer index o: `per` rows of `cols` elements of a / y against b's row
   (b_step 1) or value (b_step 0) at b + o * b_outer; a pyrt_grid over all
   outer * per rows (qbinary/qbinary.c's view). */
typedef struct {
  const pyrt_kernel_table *t;
  pyrt_grid grid;
  int32_t op, b_step, b_first;
  int64_t per, b_outer;
  const float *a, *b;
  float *y;
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
    const int64_t at = r0 * cols + c0;
    const float *b = j->b + o * j->b_outer + (j->b_step ? c0 : 0);
    if (c1 - c0 == cols) /* whole rows: one call */
      j->t->fbinary(j->op, end - r0, cols, j->a + at, b, j->b_step, j->b_first,
                    j->y + at);
    else
      j->t->fbinary(j->op, 1, c1 - c0, j->a + at, b, j->b_step, j->b_first,
                    j->y + at);
    r0 = end;
  }
}

int pyrt_fbinary_broadcast(pyrt_context *ctx, int32_t op, int64_t outer,
                           int64_t middle, int64_t inner, const float *a,
                           const float *b, int32_t b_first, float *y) {
  if (ctx == NULL || a == NULL || b == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "fbinary: ctx, a, b or y is NULL");
  if (op < PYRT_ADD || op > PYRT_DIV)
    return pyrt_fail(PYRT_ERR_ARG, "fbinary: unknown op %d", op);
  if (b_first != 0 && b_first != 1)
    return pyrt_fail(PYRT_ERR_ARG, "fbinary: b_first must be 0 or 1, got %d",
                     b_first);
  if (outer <= 0 || middle <= 0 || inner <= 0 ||
      outer > INT64_MAX / middle / inner)
    return pyrt_fail(PYRT_ERR_ARG,
                     "fbinary: outer %lld, middle %lld, inner %lld must be > 0 "
                     "and their product fit int64",
                     (long long)outer, (long long)middle, (long long)inner);
  if (middle == 1) { /* same shapes: one flat run */
    inner *= outer;
    outer = 1;
  }
  /* inner 1: each outer index is one row of `middle` against one b value */
  const int32_t b_step = inner > 1;
  const int64_t per = b_step ? middle : 1, cols = b_step ? inner : middle;
  binary_job j = {ctx->t, {0}, op, b_step, b_first, per, b_step ? inner : 1,
                  a,      b,   y};
  pyrt_context_enter(ctx);
  j.grid = pyrt_grid_make(ctx, outer * per, cols);
  pyrt_parallel(ctx, j.grid.tasks, binary_task, &j);
  pyrt_context_leave(ctx);
  return PYRT_OK;
}
