/* Scalar QuantizeLinear / DequantizeLinear over [outer][axis_len][inner]. */
#include <math.h>

#include "internal.h"

static int32_t load(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case PYRT_U8:
      return ((const uint8_t *)p)[i];
    case PYRT_S8:
      return ((const int8_t *)p)[i];
    default:
      return ((const int32_t *)p)[i];
  }
}

void pyrt_quantize_scalar(const pyrt_quant_layout *l, const float *x,
                          const float *scale, const void *zero,
                          int32_t out_dtype, void *y) {
  const float lo = out_dtype == PYRT_U8 ? 0.0f : -128.0f;
  const float hi = out_dtype == PYRT_U8 ? 255.0f : 127.0f;
  int64_t n = 0;
  for (int64_t o = 0; o < l->outer; o++)
    for (int64_t a = 0; a < l->axis_len; a++) {
      const int64_t base =
          o * l->stride_outer + (a / l->block) * l->stride_axis;
      for (int64_t i = 0; i < l->inner; i++, n++) {
        const int64_t at = base + i * l->stride_inner;
        const float z = zero ? (float)load(zero, out_dtype, at) : 0.0f;
        float v = rintf(x[n] / scale[at]) + z;
        v = isnan(v) ? z : v; /* NaN has no integer: it maps to real 0 */
        v = v < lo ? lo : v > hi ? hi : v;
        if (out_dtype == PYRT_U8)
          ((uint8_t *)y)[n] = (uint8_t)v;
        else
          ((int8_t *)y)[n] = (int8_t)v;
      }
    }
}

void pyrt_dequantize_scalar(const pyrt_quant_layout *l, const void *x,
                            int32_t x_dtype, const float *scale,
                            const void *zero, float *y) {
  int64_t n = 0;
  for (int64_t o = 0; o < l->outer; o++)
    for (int64_t a = 0; a < l->axis_len; a++) {
      const int64_t base =
          o * l->stride_outer + (a / l->block) * l->stride_axis;
      for (int64_t i = 0; i < l->inner; i++, n++) {
        const int64_t at = base + i * l->stride_inner;
        const int64_t z = zero ? load(zero, x_dtype, at) : 0;
        y[n] = (float)((int64_t)load(x, x_dtype, n) - z) * scale[at];
      }
    }
}
