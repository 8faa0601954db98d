/* The reference per-channel affine map (kernels.h: pyrt_channel_affine):
   fp32 y = clamp(x * a + b, lo, hi) (two roundings, as onnxruntime's
   BatchNormalization); int8 codes
   v = fmaf((float)x - x_zero, a, b), y = clamp(rintf(v) + y_zero, lo, hi),
   rounding half to even like every requantization. SIMD tables repeat
   these float steps lane by lane. */
#include <math.h>

#include "internal.h"

static inline float clampf(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

static inline float code(const void *x, int32_t dtype, int64_t i) {
  return dtype == PYRT_U8 ? (float)((const uint8_t *)x)[i]
                          : (float)((const int8_t *)x)[i];
}

void pyrt_channel_affine_scalar(int64_t n, const void *x, const float *a,
                                const float *b, int32_t step,
                                const pyrt_affine_args *p, void *y) {
  if (p->x_dtype == PYRT_F32) {
    const float *src = (const float *)x;
    float *dst = (float *)y;
    for (int64_t i = 0; i < n; i++)
      dst[i] = clampf(src[i] * a[i * step] + b[i * step], p->lo, p->hi);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const float v =
        fmaf(code(x, p->x_dtype, i) - p->x_zero, a[i * step], b[i * step]);
    const int32_t q = (int32_t)clampf(rintf(v) + p->y_zero, p->lo, p->hi);
    if (p->y_dtype == PYRT_U8)
      ((uint8_t *)y)[i] = (uint8_t)q;
    else
      ((int8_t *)y)[i] = (int8_t)q;
  }
}
