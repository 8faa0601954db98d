/* Public bias + activation rows (GELU in its Erf and tanh forms, or none),
   float or quantized in and out. The arithmetic is in activation_scalar.c. */
#include "fmath/fmath.h"

static void run(const pyrt_kernel_table *t, const void *job, int64_t r0,
                int64_t r1, float *buf) {
  t->activation((const pyrt_activation_job *)job, r0, r1, buf);
}

int pyrt_activation(pyrt_context *ctx, int64_t rows, int32_t cols,
                    const void *x, const pyrt_qparams *qx, const float *bias,
                    int32_t act, void *y, const pyrt_qparams *qy) {
  if (ctx == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "activation: ctx, x or y is NULL");
  if (rows <= 0 || cols <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "activation: rows and cols must be > 0, got %lld, %d",
                     (long long)rows, cols);
  if (act != PYRT_ACT_IDENTITY && act != PYRT_ACT_GELU &&
      act != PYRT_ACT_GELU_TANH)
    return pyrt_fail(PYRT_ERR_ARG, "activation: unknown activation %d", act);
  int rc = pyrt_check_io("activation", "x", qx);
  if (!rc) rc = pyrt_check_io("activation", "y", qy);
  if (rc) return rc;
  const pyrt_activation_job j = {rows, cols, x, *qx, bias, act, y, *qy};
  pyrt_context_enter(ctx);
  rc = pyrt_run_rows(ctx, rows, cols, run, &j);
  pyrt_context_leave(ctx);
  return rc ? pyrt_fail(rc, "activation: out of memory for scratch") : PYRT_OK;
}
