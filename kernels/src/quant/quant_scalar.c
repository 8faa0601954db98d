/*
 * Scalar QuantizeLinear / DequantizeLinear of n elements whose parameters
 * sit at scale[i * step], zero[i * step] (step 0: one pair for the run; the
 * layout walk is quant.c's).
 *
 * quantize:   v = rintf(x / scale) + (float)zero   (division, not x * 1/s,
 *             as onnxruntime does); NaN -> zero; clamp to the dtype in float
 *             (+-Inf saturate); convert.
 * dequantize: y = (float)((int64_t)x - zero) * scale. The difference is taken
 *             in int64 because an S32 x minus an S32 zero can overflow int32;
 *             it is exact there, so the only roundings are the conversion to
 *             float and the product (identical to int32 math when that does
 *             not overflow).
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

void pyrt_quantize_scalar(int64_t n, const float *x, const float *scale,
                          const void *zero, int64_t step, int32_t out_dtype,
                          void *y) {
  const float lo = out_dtype == PYRT_U8 ? 0.0f : -128.0f;
  const float hi = out_dtype == PYRT_U8 ? 255.0f : 127.0f;
  if (step == 0) { /* hoisted parameters: the loop vectorizes */
    const float s = scale[0];
    const float z = zero ? (float)load(zero, out_dtype, 0) : 0.0f;
    if (out_dtype == PYRT_U8) {
      uint8_t *q = (uint8_t *)y;
      for (int64_t i = 0; i < n; i++)
        q[i] = (uint8_t)quantize_one(x[i], s, z, lo, hi);
    } else {
      int8_t *q = (int8_t *)y;
      for (int64_t i = 0; i < n; i++)
        q[i] = (int8_t)quantize_one(x[i], s, z, lo, hi);
    }
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const float z = zero ? (float)load(zero, out_dtype, i * step) : 0.0f;
    const float v = quantize_one(x[i], scale[i * step], z, lo, hi);
    if (out_dtype == PYRT_U8)
      ((uint8_t *)y)[i] = (uint8_t)v;
    else
      ((int8_t *)y)[i] = (int8_t)v;
  }
}

void pyrt_dequantize_scalar(int64_t n, const void *x, int32_t x_dtype,
                            const float *scale, const void *zero, int64_t step,
                            float *y) {
  if (step != 0) {
    for (int64_t i = 0; i < n; i++) {
      const int64_t z = zero ? load(zero, x_dtype, i * step) : 0;
      y[i] = (float)(load(x, x_dtype, i) - z) * scale[i * step];
    }
    return;
  }
  const float s = scale[0];
  const int64_t zero64 = zero ? load(zero, x_dtype, 0) : 0;
  switch (x_dtype) {
    case PYRT_U8: {
      const uint8_t *q = (const uint8_t *)x;
      const int32_t z = (int32_t)zero64; /* 8-bit: int32 is exact */
      for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)q[i] - z) * s;
      break;
    }
    case PYRT_S8: {
      const int8_t *q = (const int8_t *)x;
      const int32_t z = (int32_t)zero64; /* 8-bit: int32 is exact */
      for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)q[i] - z) * s;
      break;
    }
    default: {
      const int32_t *q = (const int32_t *)x;
      for (int64_t i = 0; i < n; i++)
        y[i] = (float)((int64_t)q[i] - zero64) * s;
      break;
    }
  }
}

void pyrt_range_f32_scalar(int64_t n, const float *x, float *lo, float *hi) {
  float l = 0.0f, h = 0.0f;
  for (int64_t i = 0; i < n; i++) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  *lo = l, *hi = h;
}
