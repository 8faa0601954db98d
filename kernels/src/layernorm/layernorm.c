/* Public LayerNormalization over the last axis, with the encoder's prologue
   fused (v = DQ(x) + bias + DQ(residual)) and a float and / or quantized
   output. The arithmetic is in layernorm_scalar.c. */
#include "fmath/fmath.h"

static void run(const pyrt_kernel_table *t, const void *job, int64_t r0,
                int64_t r1, float *buf) {
  t->layernorm((const pyrt_layernorm_job *)job, r0, r1, buf);
}

int pyrt_layernorm(pyrt_context *ctx, int64_t rows, int32_t cols, const void *x,
                   const pyrt_qparams *qx, const float *bias,
                   const void *residual, const pyrt_qparams *qr,
                   const float *gamma, const float *beta, float epsilon,
                   float *y, void *yq, const pyrt_qparams *qy, float *sum) {
  if (ctx == NULL || x == NULL || gamma == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "layernorm: ctx, x or gamma is NULL");
  if (y == NULL && yq == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "layernorm: no output (y and yq are NULL)");
  if (rows <= 0 || cols <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "layernorm: rows and cols must be > 0, got %lld, %d",
                     (long long)rows, cols);
  if (!isfinite(epsilon) || epsilon < 0.0f)
    return pyrt_fail(PYRT_ERR_ARG,
                     "layernorm: epsilon must be finite and >= 0, got %g",
                     (double)epsilon);
  const pyrt_qparams none = {PYRT_F32, 1.0f, 0};
  int rc = pyrt_check_io("layernorm", "x", qx);
  if (!rc && residual != NULL) rc = pyrt_check_io("layernorm", "residual", qr);
  if (!rc && yq != NULL) {
    rc = pyrt_check_io("layernorm", "yq", qy);
    if (!rc && qy->dtype == PYRT_F32)
      rc = pyrt_fail(PYRT_ERR_ARG, "layernorm: yq must be U8 or S8");
  }
  if (rc) return rc;
  const pyrt_layernorm_job j = {
      rows,  cols, x,       *qx, bias, residual,        residual ? *qr : none,
      gamma, beta, epsilon, y,   yq,   yq ? *qy : none, sum};
  pyrt_context_enter(ctx);
  rc = pyrt_run_rows(ctx, rows, cols, run, &j);
  pyrt_context_leave(ctx);
  return rc ? pyrt_fail(rc, "layernorm: out of memory for scratch") : PYRT_OK;
}
