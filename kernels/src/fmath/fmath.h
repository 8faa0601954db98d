/* Float math shared by the scalar kernels around attention (softmax,
 * layer norm, GELU): exp and erf as fixed sequences of IEEE float adds,
 * multiplies and divides (no libm, no fused multiply-add), and sums in a
 * fixed order of PYRT_LANES partial sums, so that a SIMD kernel of any
 * width that divides PYRT_LANES reproduces every result bit for bit.
 * Also the row I/O of those kernels: dequantize a row into floats, quantize
 * floats into a row, exactly as pyrt_dequantize / pyrt_quantize do.
 */
#ifndef PYRT_FMATH_H
#define PYRT_FMATH_H

#include <math.h>
#include <string.h>

#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Partial sums: element i goes to lane i % PYRT_LANES, lanes fold pairwise
   (lane l += lane l + half, half = 8, 4, 2, 1). */
#define PYRT_LANES 16

static inline float pyrt_fold_lanes(float *lane) {
  for (int half = PYRT_LANES / 2; half >= 1; half /= 2)
    for (int l = 0; l < half; l++) lane[l] = lane[l] + lane[l + half];
  return lane[0];
}

static inline float pyrt_sum(int32_t n, const float *x) {
  float lane[PYRT_LANES] = {0};
  for (int32_t i = 0; i < n; i++) lane[i % PYRT_LANES] += x[i];
  return pyrt_fold_lanes(lane);
}

/* exp(x): x = n ln2 + r (Cody-Waite), a degree-6 polynomial for e^r
   (Cephes expf, within 2 ulp), times 2^n built in the exponent bits.
   NaN stays NaN; x > 88.72 gives +Inf, x < -87.33 gives 0 (no subnormals). */
static inline float pyrt_expf(float x) {
  if (!(x == x)) return x;
  if (x > 88.72283935546875f) return INFINITY;
  if (x < -87.33654022216797f) return 0.0f;
  const float n = rintf(x * 1.44269502162933349609f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r;
  p = p + 1.0f;
  /* n in [-126, 128]: 2^n as two factors so n = 128 does not overflow. */
  const int32_t e = (int32_t)n, e1 = e / 2, e2 = e - e1;
  uint32_t b1 = (uint32_t)(e1 + 127) << 23, b2 = (uint32_t)(e2 + 127) << 23;
  float f1, f2;
  memcpy(&f1, &b1, 4);
  memcpy(&f2, &b2, 4);
  return p * f1 * f2;
}

/* erf(x): x clamped to [-4, 4], then x P(x^2) / Q(x^2) (Eigen's rational
   approximation, within a few ulp). */
static inline float pyrt_erff(float x) {
  x = x < -4.0f ? -4.0f : x > 4.0f ? 4.0f : x; /* NaN passes through */
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * x;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1); keeps its sign for small u via u itself. */
static inline float pyrt_tanhf(float u) {
  if (u > -0.0625f && u < 0.0625f) { /* 1 - 2/(e+1) cancels here */
    const float u2 = u * u;          /* u - u^3/3 + 2u^5/15 */
    return u + u * u2 * (-0.333333343267f + u2 * 0.133333340287f);
  }
  return 1.0f - 2.0f / (pyrt_expf(2.0f * u) + 1.0f);
}

/* ---- row I/O: dtype PYRT_F32 copies, U8 / S8 (de)quantize ------------- */

static inline void pyrt_load_row(int32_t n, const void *x, int64_t at,
                                 const pyrt_qparams *q, float *dst) {
  switch (q->dtype) {
    case PYRT_U8: {
      const uint8_t *s = (const uint8_t *)x + at;
      for (int32_t i = 0; i < n; i++)
        dst[i] = (float)((int32_t)s[i] - q->zero_point) * q->scale;
      break;
    }
    case PYRT_S8: {
      const int8_t *s = (const int8_t *)x + at;
      for (int32_t i = 0; i < n; i++)
        dst[i] = (float)((int32_t)s[i] - q->zero_point) * q->scale;
      break;
    }
    default:
      memcpy(dst, (const float *)x + at, (size_t)n * sizeof(float));
  }
}

/* QuantizeLinear's rounding: rintf(v / scale) + zero, NaN -> zero, clamp. */
static inline float pyrt_quantize_value(float v, const pyrt_qparams *q,
                                        float lo, float hi) {
  const float zero = (float)q->zero_point;
  float r = rintf(v / q->scale) + zero;
  r = r == r ? r : zero;
  return r < lo ? lo : r > hi ? hi : r;
}

static inline void pyrt_store_row(int32_t n, const float *src, void *y,
                                  int64_t at, const pyrt_qparams *q) {
  switch (q->dtype) {
    case PYRT_U8: {
      uint8_t *d = (uint8_t *)y + at;
      for (int32_t i = 0; i < n; i++)
        d[i] = (uint8_t)pyrt_quantize_value(src[i], q, 0.0f, 255.0f);
      break;
    }
    case PYRT_S8: {
      int8_t *d = (int8_t *)y + at;
      for (int32_t i = 0; i < n; i++)
        d[i] = (int8_t)pyrt_quantize_value(src[i], q, -128.0f, 127.0f);
      break;
    }
    default:
      memcpy((float *)y + at, src, (size_t)n * sizeof(float));
  }
}

/* 0, or an error naming op and what: dtype F32 / U8 / S8, and for U8 / S8 a
   finite positive scale and a zero point of the type. */
int pyrt_check_io(const char *op, const char *what, const pyrt_qparams *q);

#endif
