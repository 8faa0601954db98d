/*
 * Scalar fp32 elementwise kernels, the reference every SIMD table matches
 * bit for bit. Per element, in IEEE float with every product rounded (no
 * fused multiply-add but fmath.h's explicit ones; CMake passes
 * -ffp-contract=off); tanh, the logistic function, erf and exp are fmath.h's
 * (the first three onnxruntime's x86 ones). Clamps are the selects `lo > v ? lo
 * : v`, `hi < v ? hi : v`, which pass NaN through (vmaxps(lo, v) / vminps(hi,
 * v) are exactly these).
 *
 *   RELU          0 > x ? 0 : x                    (NaN and -0 stay)
 *   LEAKY_RELU    x >= 0 ? x : alpha * x
 *   CLIP          clamp(x, alpha, beta)
 *   SIGMOID       pyrt_logisticf(x)
 *   HARD_SIGMOID  clamp(alpha * x + beta, 0, 1)
 *   HARD_SWISH    x * HARD_SIGMOID(x)              (ONNX: alpha 1/6, beta 1/2)
 *   TANH          pyrt_tanhf(x)
 *   ELU           x >= 0 ? x : alpha * expm1(x)
 *   SOFTPLUS      (x > 0 ? x : 0) + log1p(exp(-|x|))
 *   SWISH         x * SIGMOID(x)    (bit-identical to Mul(x, Sigmoid(x)))
 *   ERF           pyrt_erff(x)
 *
 * expm1(x): |x| < 1/16: x + x^2 (1/2 + x (1/6 + x (1/24 + x (1/120 +
 *   x / 720)))) (Taylor, error below x^7 / 5040); else exp(x) - 1.
 * log1p(u), u = exp(-|x|) in [0, 1]: t = 1 + u; t == 1 gives u; else
 *   log(t) u / (t - 1) (the quotient undoes the rounding of 1 + u); log(t)
 *   as Cephes logf: t > sqrt 2 halves it (e = 1), f = t' - 1 in
 *   [-0.29, 0.42], log = f + f^3 P(f) - f^2 / 2 + e ln 2 (ln 2 in two
 *   parts).
 *
 * Binary (fbinary): y = a op b, or b op a when b_first; Add, Sub, Mul, Div
 * are single IEEE operations, so they equal onnxruntime's bit for bit.
 */
#include <math.h>
#include <string.h>

#include "fmath/fmath.h"

static inline float clamp(float v, float lo, float hi) {
  v = lo > v ? lo : v;
  return hi < v ? hi : v;
}

static inline float expm1_(float x) {
  float q = 1.0f / 120.0f + x * (1.0f / 720.0f);
  q = 1.0f / 24.0f + x * q;
  q = 1.0f / 6.0f + x * q;
  q = 0.5f + x * q;
  const float p = x + (x * x) * q;
  const float e = pyrt_expf(x) - 1.0f;
  return x > -0.0625f && x < 0.0625f ? p : e;
}

static inline float log1p_unit(float u) {
  const float t = 1.0f + u;
  const int big = t > 1.41421356237309505f;
  const float m = big ? t * 0.5f : t, e = big ? 1.0f : 0.0f;
  const float f = m - 1.0f, z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f + -1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f + -1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f + -1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f + -2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y = y + e * -2.12194440e-4f;
  y = y + -0.5f * z;
  float r = f + y;
  r = r + e * 0.693359375f;
  const float l = r * (u / (t - 1.0f));
  return t == 1.0f ? u : l;
}

static void funary(int32_t op, int64_t n, const float *x, float alpha,
                   float beta, float *y) {
  switch (op) {
    case PYRT_RELU:
      for (int64_t i = 0; i < n; i++) y[i] = 0.0f > x[i] ? 0.0f : x[i];
      break;
    case PYRT_LEAKY_RELU:
      for (int64_t i = 0; i < n; i++) y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
      break;
    case PYRT_CLIP:
      for (int64_t i = 0; i < n; i++) y[i] = clamp(x[i], alpha, beta);
      break;
    case PYRT_SIGMOID:
      for (int64_t i = 0; i < n; i++) y[i] = pyrt_logisticf(x[i]);
      break;
    case PYRT_HARD_SIGMOID:
      for (int64_t i = 0; i < n; i++)
        y[i] = clamp(alpha * x[i] + beta, 0.0f, 1.0f);
      break;
    case PYRT_HARD_SWISH:
      for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * clamp(alpha * x[i] + beta, 0.0f, 1.0f);
      break;
    case PYRT_TANH:
      for (int64_t i = 0; i < n; i++) y[i] = pyrt_tanhf(x[i]);
      break;
    case PYRT_ELU:
      for (int64_t i = 0; i < n; i++)
        y[i] = x[i] >= 0.0f ? x[i] : alpha * expm1_(x[i]);
      break;
    case PYRT_SOFTPLUS:
      for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        y[i] = (v > 0.0f ? v : 0.0f) + log1p_unit(pyrt_expf(-fabsf(v)));
      }
      break;
    case PYRT_ERF:
      for (int64_t i = 0; i < n; i++) y[i] = pyrt_erff(x[i]);
      break;
    default: /* PYRT_SWISH */
      for (int64_t i = 0; i < n; i++) y[i] = x[i] * pyrt_logisticf(x[i]);
  }
}

static inline float binary(int32_t op, float a, float b) {
  switch (op) {
    case PYRT_ADD:
      return a + b;
    case PYRT_SUB:
      return a - b;
    case PYRT_MUL:
      return a * b;
    default:
      return a / b;
  }
}

static void fbinary(int32_t op, int64_t rows, int64_t cols, const float *a,
                    const float *b, int32_t b_step, int32_t b_first, float *y) {
  for (int64_t r = 0; r < rows; r++) {
    const float *ar = a + r * cols;
    float *yr = y + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      const float bv = b[b_step ? c : 0];
      yr[c] = b_first ? binary(op, bv, ar[c]) : binary(op, ar[c], bv);
    }
  }
}

void pyrt_felem_init_scalar(pyrt_kernel_table *t) {
  t->funary = funary;
  t->fbinary = fbinary;
}
