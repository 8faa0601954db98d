/*
 * Scalar QuantizeLinear / DequantizeLinear over [outer][axis_len][inner].
 *
 * quantize:   v = rintf(x / scale) + (float)zero   (division, not x * 1/s,
 *             as onnxruntime does); NaN -> zero; clamp to the dtype in float
 *             (+-Inf saturate); convert.
 * dequantize: y = (float)((int64_t)x - zero) * scale. The difference is taken
 *             in int64 because an S32 x minus an S32 zero can overflow int32;
 *             it is exact there, so the only roundings are the conversion to
 *             float and the product (identical to int32 math when that does
 *             not overflow).
 * A run of `inner` elements shares one scale when stride_inner is 0 (per
 * tensor, per axis): those rows get a loop with the parameters hoisted.
 */
#include <math.h>

#include "internal.h"

static int64_t load(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case PYRT_U8:
      return ((const uint8_t *)p)[i];
    case PYRT_S8:
      return ((const int8_t *)p)[i];
    default:
      return ((const int32_t *)p)[i];
  }
}

static float quantize_one(float x, float scale, float zero, float lo,
                          float hi) {
  float v = rintf(x / scale) + zero;
  v = isnan(v) ? zero : v; /* NaN has no integer: it maps to real 0 */
  return v < lo ? lo : v > hi ? hi : v;
}

/* n values with one scale and zero point. */
static void quantize_row(int64_t n, const float *x, float scale, float zero,
                         int32_t out_dtype, void *y) {
  if (out_dtype == PYRT_U8) {
    uint8_t *q = (uint8_t *)y;
    for (int64_t i = 0; i < n; i++)
      q[i] = (uint8_t)quantize_one(x[i], scale, zero, 0.0f, 255.0f);
  } else {
    int8_t *q = (int8_t *)y;
    for (int64_t i = 0; i < n; i++)
      q[i] = (int8_t)quantize_one(x[i], scale, zero, -128.0f, 127.0f);
  }
}

void pyrt_quantize_scalar(const pyrt_quant_layout *l, const float *x,
                          const float *scale, const void *zero,
                          int32_t out_dtype, void *y) {
  const float lo = out_dtype == PYRT_U8 ? 0.0f : -128.0f;
  const float hi = out_dtype == PYRT_U8 ? 255.0f : 127.0f;
  const size_t width = out_dtype == PYRT_U8 ? sizeof(uint8_t) : sizeof(int8_t);
  int64_t n = 0;
  for (int64_t o = 0; o < l->outer; o++)
    for (int64_t a = 0; a < l->axis_len; a++, n += l->inner) {
      const int64_t base =
          o * l->stride_outer + (a / l->block) * l->stride_axis;
      if (l->stride_inner == 0) {
        const float z = zero ? (float)load(zero, out_dtype, base) : 0.0f;
        quantize_row(l->inner, x + n, scale[base], z, out_dtype,
                     (char *)y + (size_t)n * width);
        continue;
      }
      for (int64_t i = 0; i < l->inner; i++) {
        const int64_t at = base + i * l->stride_inner;
        const float z = zero ? (float)load(zero, out_dtype, at) : 0.0f;
        const float v = quantize_one(x[n + i], scale[at], z, lo, hi);
        if (out_dtype == PYRT_U8)
          ((uint8_t *)y)[n + i] = (uint8_t)v;
        else
          ((int8_t *)y)[n + i] = (int8_t)v;
      }
    }
}

/* n values with one scale and zero point. */
static void dequantize_row(int64_t n, const void *x, int32_t x_dtype,
                           float scale, int64_t zero, float *y) {
  switch (x_dtype) {
    case PYRT_U8: {
      const uint8_t *q = (const uint8_t *)x;
      const int32_t z = (int32_t)zero; /* 8-bit: int32 is exact */
      for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)q[i] - z) * scale;
      break;
    }
    case PYRT_S8: {
      const int8_t *q = (const int8_t *)x;
      const int32_t z = (int32_t)zero; /* 8-bit: int32 is exact */
      for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)q[i] - z) * scale;
      break;
    }
    default: {
      const int32_t *q = (const int32_t *)x;
      for (int64_t i = 0; i < n; i++)
        y[i] = (float)((int64_t)q[i] - zero) * scale;
      break;
    }
  }
}

void pyrt_dequantize_scalar(const pyrt_quant_layout *l, const void *x,
                            int32_t x_dtype, const float *scale,
                            const void *zero, float *y) {
  const size_t width = x_dtype == PYRT_S32 ? sizeof(int32_t) : sizeof(int8_t);
  int64_t n = 0;
  for (int64_t o = 0; o < l->outer; o++)
    for (int64_t a = 0; a < l->axis_len; a++, n += l->inner) {
      const int64_t base =
          o * l->stride_outer + (a / l->block) * l->stride_axis;
      if (l->stride_inner == 0) {
        const int64_t z = zero ? load(zero, x_dtype, base) : 0;
        dequantize_row(l->inner, (const char *)x + (size_t)n * width, x_dtype,
                       scale[base], z, y + n);
        continue;
      }
      for (int64_t i = 0; i < l->inner; i++) {
        const int64_t at = base + i * l->stride_inner;
        const int64_t z = zero ? load(zero, x_dtype, at) : 0;
        y[n + i] = (float)(load(x, x_dtype, n + i) - z) * scale[at];
      }
    }
}
