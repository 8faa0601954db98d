/* pyrt_requantize: int32 accumulators to u8/s8/s32/f32 (public entry). */
#include "requant/requant.h"

#include <math.h>

int pyrt_check_output_stage(const char *op, const pyrt_output_stage *out,
                            int64_t channels) {
  if (out == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "%s: output stage is NULL", op);
  int32_t lo = 0, hi = 0;
  switch (out->out_dtype) {
    case PYRT_U8:
      lo = 0, hi = 255;
      break;
    case PYRT_S8:
      lo = -128, hi = 127;
      break;
    case PYRT_S32:
      return PYRT_OK; /* scale unused */
    case PYRT_F32:
      break;
    default:
      return pyrt_fail(PYRT_ERR_ARG, "%s: unknown output dtype %d", op,
                       out->out_dtype);
  }
  if (out->scale == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "%s: output scale is NULL", op);
  int64_t n = out->per_channel ? channels : 1;
  for (int64_t c = 0; c < n; c++) {
    float s = out->scale[c];
    if (!isfinite(s) || s <= 0.0f)
      return pyrt_fail(PYRT_ERR_ARG,
                       "%s: output scale[%lld] must be finite and > 0, got %g",
                       op, (long long)c, (double)s);
  }
  if (out->out_dtype == PYRT_F32) return PYRT_OK;
  if (out->zero_point < lo || out->zero_point > hi)
    return pyrt_fail(PYRT_ERR_ARG, "%s: zero point %d outside [%d, %d]", op,
                     out->zero_point, lo, hi);
  if (out->qmin < lo || out->qmax > hi || out->qmin > out->qmax)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: clamp [%d, %d] must be ordered and inside [%d, %d]",
                     op, out->qmin, out->qmax, lo, hi);
  return PYRT_OK;
}

int pyrt_requantize(pyrt_context *ctx, int64_t rows, int64_t cols,
                    int32_t channels, const int32_t *acc,
                    const pyrt_output_stage *out, void *y) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "requantize: ctx is NULL");
  if (acc == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "requantize: NULL buffer");
  if (rows <= 0 || cols <= 0 || channels <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "requantize: rows, cols, channels must be > 0, got %lld, "
                     "%lld, %d",
                     (long long)rows, (long long)cols, channels);
  int rc = pyrt_check_output_stage("requantize", out, channels);
  if (rc) return rc;
  ctx->t->requantize(rows, cols, channels, acc, out, y);
  return PYRT_OK;
}
