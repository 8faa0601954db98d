/* Float math shared by the scalar kernels around attention (softmax,
 * layer norm, GELU): exp and erf as fixed sequences of IEEE float adds,
 * multiplies and divides (no libm; fused multiply-adds only in erf, where
 * each is an explicit fmaf), and sums in a
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

/* Partial sums: element i goes to lane i % PYRT_LANES; the lanes fold as
   onnxruntime's AVX-512 softmax sum does: lane l += lane l + 8, then
   ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)). */
#define PYRT_LANES 16

static inline float pyrt_fold_lanes(float *lane) {
  for (int l = 0; l < 8; l++) lane[l] = lane[l] + lane[l + 8];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
         ((lane[4] + lane[5]) + (lane[6] + lane[7]));
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

/* Horner's rule, one fused multiply-add per step: c[0] x^(n-1) + ... + c[n-1]
   (the polynomials of erf, exp, tanh and the logistic function). */
static inline float pyrt_horner(float x, const float *c, int n) {
  float p = c[0];
  for (int i = 1; i < n; i++) p = fmaf(p, x, c[i]);
  return p;
}

/* erf(x), the algorithm onnxruntime's MLAS runs on x86 with FMA (constants of
   njuffa's faithfully rounded erff), so a QDQ model's GELU quantizes exactly as
   onnxruntime's reference does. The only fused multiply-adds of fmath: every
   step below is one fmaf, and the SIMD versions use the FMA instruction.
   a = min(|x|, 3.925);
   a < 0.921875:  a + a * P(a^2)
   otherwise:     1 - e^-(a + a Q(a)), e^t as 2^n e^f: n = round(t log2 e)
                  (by the 1.5 * 2^23 shift), f = t - n ln 2 (ln 2 in two parts),
                  e^f a degree-6 polynomial, 2^n from the exponent bits;
   then the sign of x. NaN stays NaN. */
#define PYRT_ERF_SPLIT 0.921875f
#define PYRT_ERF_MAX 3.925f
#define PYRT_ERF_SMALL                                \
  {-5.99104969e-4f, 4.99339588e-3f,  -2.67667342e-2f, \
   1.12818025e-1f,  -3.76124859e-1f, 1.28379151e-1f}
#define PYRT_ERF_BIG                                                 \
  {1.72948930e-5f, -3.83208680e-4f, 3.88393435e-3f, -2.42545605e-2f, \
   1.06777847e-1f, 6.34846687e-1f,  1.28717512e-1f}
#define PYRT_ERF_EXP \
  {1.38319808e-3f,   \
   8.37550033e-3f,   \
   4.16689515e-2f,   \
   1.66664466e-1f,   \
   4.99999851e-1f,   \
   1.0f,             \
   1.0f}
#define PYRT_ERF_LOG2E 1.44269504088896341f
#define PYRT_ERF_LN2_HI -6.93145752e-1f
#define PYRT_ERF_LN2_LO -1.42860677e-6f
/* 1.5 * 2^23: adding it rounds to an integer */
#define PYRT_ERF_SHIFT 12582912.0f
#define PYRT_ERF_EXP_MIN -88.3762626647949f

static inline float pyrt_erff(float x) {
  if (!(x == x)) return x;
  const float a = fabsf(x) < PYRT_ERF_MAX ? fabsf(x) : PYRT_ERF_MAX;
  float r;
  if (a < PYRT_ERF_SPLIT) {
    static const float c[] = PYRT_ERF_SMALL;
    const float s = a * a;
    r = pyrt_horner(s, c, 6);
    r = fmaf(r, a, a);
  } else {
    static const float c[] = PYRT_ERF_BIG, e[] = PYRT_ERF_EXP;
    float t = pyrt_horner(a, c, 7);
    t = -fmaf(t, a, a);
    t = t > PYRT_ERF_EXP_MIN ? t : PYRT_ERF_EXP_MIN;
    const float n = fmaf(PYRT_ERF_LOG2E, t, PYRT_ERF_SHIFT) - PYRT_ERF_SHIFT;
    const float f = fmaf(n, PYRT_ERF_LN2_LO, fmaf(PYRT_ERF_LN2_HI, n, t));
    const float y = pyrt_horner(f, e, 7);
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float p2;
    memcpy(&p2, &bits, 4);
    r = 1.0f - y * p2;
  }
  return copysignf(r, x);
}

/* exp(v) for softmax, v = x - max <= 0 (or NaN): onnxruntime's MLAS sum-exp
   (x86 FMA / AVX-512), so softmax rows agree with onnxruntime's bit for bit:
   t = max(v, -103.97); m = round(t log2 e) (by the 1.5 * 2^23 shift);
   r = t - m ln 2 (ln 2 in two parts, fused); a degree-6 polynomial in r
   (fused steps); times 2^m, rounded once (2^m as two normal factors). */
#define PYRT_SMAX_EXP_MIN -103.9720840454f
#define PYRT_SMAX_EXP_POLY \
  {0x1.694000p-10f,        \
   0x1.125edcp-7f,         \
   0x1.555b5ap-5f,         \
   0x1.555450p-3f,         \
   0x1.fffff6p-2f,         \
   1.0f,                   \
   1.0f}

static inline float pyrt_softmax_expf(float v) {
  if (!(v == v)) return v;
  static const float c[] = PYRT_SMAX_EXP_POLY;
  const float t = v > PYRT_SMAX_EXP_MIN ? v : PYRT_SMAX_EXP_MIN;
  const float m = fmaf(t, PYRT_ERF_LOG2E, PYRT_ERF_SHIFT) - PYRT_ERF_SHIFT;
  const float r = fmaf(m, PYRT_ERF_LN2_LO, fmaf(m, PYRT_ERF_LN2_HI, t));
  const float p = pyrt_horner(r, c, 7);
  const int32_t e = (int32_t)m, e1 = e / 2, e2 = e - e1; /* each >= -75 */
  const uint32_t b1 = (uint32_t)(e1 + 127) << 23, b2 = (uint32_t)(e2 + 127)
                                                       << 23;
  float f1, f2;
  memcpy(&f1, &b1, 4);
  memcpy(&f2, &b2, 4);
  return p * f1 * f2;
}

/* LayerNorm's row statistics as onnxruntime's x86 CPU kernel computes them
   (AVX2 / FMA; rows of 8 or more values: shorter ones it takes elsewhere),
   so a QDQ encoder's LayerNorm quantizes as its reference:
   the mean in double, four lanes over the first n - n % 4 values (value i
   to lane i % 4), folded (0 + 2) + (1 + 3), the rest added in order, then
   rounded to float; the variance in float, (v - mean)^2 fused into eight
   lanes over the first n - n % 8 values, folded lane l + l + 4 then
   (0 + 2) + (1 + 3), a remaining group of four squared and added in order,
   the rest fused in order; var = q / n + epsilon, inv = 1 / sqrtf(var). */
static inline void pyrt_ln_stats(int32_t n, const float *v, float epsilon,
                                 float *mean, float *inv) {
  double d[4] = {0.0, 0.0, 0.0, 0.0};
  const int32_t n4 = n - n % 4, n8 = n - n % 8;
  for (int32_t i = 0; i < n4; i++) d[i % 4] = d[i % 4] + (double)v[i];
  double s = (d[0] + d[2]) + (d[1] + d[3]);
  for (int32_t i = n4; i < n; i++) s = s + (double)v[i];
  const float m = (float)(s / (double)n);
  float q[8] = {0};
  for (int32_t i = 0; i < n8; i++) {
    const float t = v[i] - m;
    q[i % 8] = fmaf(t, t, q[i % 8]);
  }
  for (int l = 0; l < 4; l++) q[l] = q[l] + q[l + 4];
  float acc = (q[0] + q[2]) + (q[1] + q[3]);
  int32_t i = n8;
  if (n - n8 >= 4)
    for (const int32_t end = i + 4; i < end; i++) {
      const float t = v[i] - m;
      acc = acc + t * t;
    }
  for (; i < n; i++) {
    const float t = v[i] - m;
    acc = fmaf(t, t, acc);
  }
  *mean = m;
  *inv = 1.0f / sqrtf(acc / (float)n + epsilon);
}

/* tanh and the logistic function as onnxruntime's MLAS computes them on x86
   (FMA), Eigen's rational approximations: x clamped, x P(x^2) / Q(x^2) with
   every polynomial step one fmaf. tanh: x in [-9, 9]; logistic: x in
   [-18, 18], then + 0.5 and floored at 0. NaN stays NaN. */
#define PYRT_TANH_P                                                       \
  {-2.76076847742355e-16f, 2.00018790482477e-13f, -8.60467152213735e-11f, \
   5.12229709037114e-08f,  1.48572235717979e-05f, 6.37261928875436e-04f,  \
   4.89352455891786e-03f}
#define PYRT_TANH_Q                                                     \
  {1.19825839466702e-06f, 1.18534705686654e-04f, 2.26843463243900e-03f, \
   4.89352518554385e-03f}
#define PYRT_LOGISTIC_P                                                 \
  {4.37031012579801e-11f, 1.15627324459942e-07f, 6.08574864600143e-05f, \
   8.51377133304701e-03f, 2.48287947061529e-01f}
#define PYRT_LOGISTIC_Q                                                 \
  {6.10247389755681e-13f, 5.76102136993427e-09f, 6.29106785017040e-06f, \
   1.70198817374094e-03f, 1.16817656904453e-01f, 9.93151921023180e-01f}

static inline float pyrt_tanhf(float x) {
  static const float p_[] = PYRT_TANH_P, q_[] = PYRT_TANH_Q;
  const float v = -9.0f > x ? -9.0f : 9.0f < x ? 9.0f : x; /* NaN passes */
  const float s = v * v;
  const float p = pyrt_horner(s, p_, 7);
  const float q = pyrt_horner(s, q_, 4);
  return v * p / q;
}

static inline float pyrt_logisticf(float x) {
  static const float p_[] = PYRT_LOGISTIC_P, q_[] = PYRT_LOGISTIC_Q;
  const float v = -18.0f > x ? -18.0f : 18.0f < x ? 18.0f : x; /* NaN passes */
  const float s = v * v;
  const float p = pyrt_horner(s, p_, 5);
  const float q = pyrt_horner(s, q_, 6);
  const float y = v * p / q + 0.5f;
  return 0.0f > y ? 0.0f : y;
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
