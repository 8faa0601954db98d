/* AVX-512 fp32 elementwise kernels: felem_scalar.c's formulas 16 lanes at a
 * time, the same IEEE operations in the same order (exp, tanh, the logistic
 * function and erf from fmath/fmath_avx512.h), so
 * every result equals the scalar one bit for bit. The clamps are vmaxps(lo, v)
 * / vminps(hi, v), the scalar selects; the tail of a run is masked.
 */
#include "fmath/fmath_avx512.h"

static inline __mmask16 tail(int64_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) {
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

static inline __m512 expm1_16(__m512 x) {
  __m512 q = _mm512_add_ps(_mm512_set1_ps(1.0f / 120.0f),
                           _mm512_mul_ps(x, _mm512_set1_ps(1.0f / 720.0f)));
  q = _mm512_add_ps(_mm512_set1_ps(1.0f / 24.0f), _mm512_mul_ps(x, q));
  q = _mm512_add_ps(_mm512_set1_ps(1.0f / 6.0f), _mm512_mul_ps(x, q));
  q = _mm512_add_ps(_mm512_set1_ps(0.5f), _mm512_mul_ps(x, q));
  const __m512 p = _mm512_add_ps(x, _mm512_mul_ps(_mm512_mul_ps(x, x), q));
  const __m512 e = _mm512_sub_ps(pyrt_exp16(x), _mm512_set1_ps(1.0f));
  const __mmask16 small =
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(-0.0625f), _CMP_GT_OQ) &
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(0.0625f), _CMP_LT_OQ);
  return _mm512_mask_mov_ps(e, small, p);
}

static inline __m512 log1p_unit16(__m512 u) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_add_ps(one, u);
  const __mmask16 big =
      _mm512_cmp_ps_mask(t, _mm512_set1_ps(1.41421356237309505f), _CMP_GT_OQ);
  const __m512 m = _mm512_mask_mul_ps(t, big, t, _mm512_set1_ps(0.5f));
  const __m512 e = _mm512_maskz_mov_ps(big, one);
  const __m512 f = _mm512_sub_ps(m, one), z = _mm512_mul_ps(f, f);
  __m512 p = _mm512_set1_ps(7.0376836292e-2f);
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(-1.1514610310e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(1.1676998740e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(-1.2420140846e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(1.4249322787e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(-1.6668057665e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(2.0000714765e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(-2.4999993993e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(3.3333331174e-1f));
  __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, f), z);
  y = _mm512_add_ps(y, _mm512_mul_ps(e, _mm512_set1_ps(-2.12194440e-4f)));
  y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(-0.5f), z));
  __m512 r = _mm512_add_ps(f, y);
  r = _mm512_add_ps(r, _mm512_mul_ps(e, _mm512_set1_ps(0.693359375f)));
  const __m512 l = _mm512_mul_ps(r, _mm512_div_ps(u, _mm512_sub_ps(t, one)));
  return _mm512_mask_mov_ps(l, _mm512_cmp_ps_mask(t, one, _CMP_EQ_OQ), u);
}

/* y[i] = EXPR of x = src[i .. i + 15]: four independent vectors per pass
   (the exp chains are long; four in flight keep the units busy), then the
   rest one vector at a time, the tail masked. */
#define UNARY_LOOP(EXPR)                                                  \
  {                                                                       \
    int64_t i = 0;                                                        \
    for (; i + 64 <= n; i += 64) {                                        \
      __m512 v[4];                                                        \
      for (int u = 0; u < 4; u++) {                                       \
        const __m512 x = _mm512_loadu_ps(src + i + 16 * u);               \
        v[u] = (EXPR);                                                    \
      }                                                                   \
      for (int u = 0; u < 4; u++) _mm512_storeu_ps(y + i + 16 * u, v[u]); \
    }                                                                     \
    for (; i < n; i += 16) {                                              \
      const __mmask16 k = tail(n - i);                                    \
      const __m512 x = _mm512_maskz_loadu_ps(k, src + i);                 \
      _mm512_mask_storeu_ps(y + i, k, (EXPR));                            \
    }                                                                     \
  }                                                                       \
  break

static void funary(int32_t op, int64_t n, const float *src, float alpha_,
                   float beta_, float *y) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  const __m512 alpha = _mm512_set1_ps(alpha_), beta = _mm512_set1_ps(beta_);
  switch (op) {
    case PYRT_RELU:
      UNARY_LOOP(_mm512_max_ps(zero, x));
    case PYRT_LEAKY_RELU:
      UNARY_LOOP(_mm512_mask_mov_ps(
          _mm512_mul_ps(alpha, x), _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ), x));
    case PYRT_CLIP:
      UNARY_LOOP(clamp16(x, alpha, beta));
    case PYRT_SIGMOID:
      UNARY_LOOP(pyrt_logistic16(x));
    case PYRT_HARD_SIGMOID:
      UNARY_LOOP(
          clamp16(_mm512_add_ps(_mm512_mul_ps(alpha, x), beta), zero, one));
    case PYRT_HARD_SWISH:
      UNARY_LOOP(_mm512_mul_ps(
          x, clamp16(_mm512_add_ps(_mm512_mul_ps(alpha, x), beta), zero, one)));
    case PYRT_TANH:
      UNARY_LOOP(pyrt_tanh16(x));
    case PYRT_ELU:
      UNARY_LOOP(_mm512_mask_mov_ps(_mm512_mul_ps(alpha, expm1_16(x)),
                                    _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ),
                                    x));
    case PYRT_SOFTPLUS:
      UNARY_LOOP(_mm512_add_ps(
          _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ), x),
          log1p_unit16(pyrt_exp16(_mm512_or_ps(x, _mm512_set1_ps(-0.0f))))));
    case PYRT_ERF:
      UNARY_LOOP(pyrt_erf16(x));
    default: /* PYRT_SWISH */
      UNARY_LOOP(_mm512_mul_ps(x, pyrt_logistic16(x)));
  }
}

/* y = p op q over the rows, p / q being a / b or b / a (b_first). */
#define BINARY_LOOP(FN)                                                    \
  for (int64_t r = 0; r < rows; r++) {                                     \
    const float *ar = a + r * cols;                                        \
    float *yr = y + r * cols;                                              \
    for (int64_t c = 0; c < cols; c += 16) {                               \
      const __mmask16 k = tail(cols - c);                                  \
      const __m512 va = _mm512_maskz_loadu_ps(k, ar + c);                  \
      const __m512 vb = b_step ? _mm512_maskz_loadu_ps(k, b + c) : b_one;  \
      _mm512_mask_storeu_ps(yr + c, k, b_first ? FN(vb, va) : FN(va, vb)); \
    }                                                                      \
  }                                                                        \
  break

static void fbinary(int32_t op, int64_t rows, int64_t cols, const float *a,
                    const float *b, int32_t b_step, int32_t b_first, float *y) {
  const __m512 b_one = _mm512_set1_ps(b[0]);
  switch (op) {
    case PYRT_ADD:
      BINARY_LOOP(_mm512_add_ps);
    case PYRT_SUB:
      BINARY_LOOP(_mm512_sub_ps);
    case PYRT_MUL:
      BINARY_LOOP(_mm512_mul_ps);
    default:
      BINARY_LOOP(_mm512_div_ps);
  }
}

void pyrt_felem_init_avx512vnni(pyrt_kernel_table *t) {
  t->funary = funary;
  t->fbinary = fbinary;
}
