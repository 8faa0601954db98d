/* Public softmax over the last axis, with attention's prologue fused:
   v = DQ(x) * x_mul / x_div + mask, y = Q(exp(v - max v) / sum exp(v - max v)).
   The arithmetic is in softmax_scalar.c. */
#include "fmath/fmath.h"

static void run(const pyrt_kernel_table *t, const void *job, int64_t r0,
                int64_t r1, float *buf) {
  t->softmax((const pyrt_softmax_job *)job, r0, r1, buf);
}

int pyrt_softmax(pyrt_context *ctx, int64_t rows, int32_t cols, const void *x,
                 const pyrt_qparams *qx, float x_mul, float x_div,
                 const float *mask, int64_t rows_per_mask, void *y,
                 const pyrt_qparams *qy) {
  if (ctx == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "softmax: ctx, x or y is NULL");
  if (rows <= 0 || cols <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "softmax: rows and cols must be > 0, got %lld, %d",
                     (long long)rows, cols);
  if (!isfinite(x_div) || x_div == 0.0f || !isfinite(x_mul) || x_mul == 0.0f)
    return pyrt_fail(PYRT_ERR_ARG,
                     "softmax: x_mul and x_div must be finite and nonzero, got "
                     "%g, %g",
                     (double)x_mul, (double)x_div);
  if (mask != NULL && (rows_per_mask <= 0 || rows % rows_per_mask != 0))
    return pyrt_fail(
        PYRT_ERR_ARG,
        "softmax: rows_per_mask %lld must be > 0 and divide rows %lld",
        (long long)rows_per_mask, (long long)rows);
  int rc = pyrt_check_io("softmax", "x", qx);
  if (!rc) rc = pyrt_check_io("softmax", "y", qy);
  if (rc) return rc;
  const pyrt_softmax_job j = {rows, cols,          x, *qx, x_mul, x_div,
                              mask, rows_per_mask, y, *qy};
  pyrt_context_enter(ctx);
  rc = pyrt_run_rows(ctx, rows, cols, run, &j);
  pyrt_context_leave(ctx);
  return rc ? pyrt_fail(rc, "softmax: out of memory for scratch") : PYRT_OK;
}
