/* AVX2 fp32 elementwise kernels: felem_scalar.c's formulas 8 lanes at a
 * time, the same IEEE operations in the same order (exp, tanh, the logistic
 * function and erf from fmath/fmath_avx2.h), so
 * every result equals the scalar one bit for bit. The clamps are vmaxps(lo, v)
 * / vminps(hi, v), the scalar selects; the tail of a run goes through masked
 * loads and stores.
 */
#include "fmath/fmath_avx2.h"

/* All-ones in the lanes below `left` (all of them from 8 on). */
static inline __m256i tail(int64_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left < 8 ? (int32_t)left : 8),
                            idx);
}

static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

static inline __m256 expm1_8(__m256 x) {
  __m256 q = _mm256_add_ps(_mm256_set1_ps(1.0f / 120.0f),
                           _mm256_mul_ps(x, _mm256_set1_ps(1.0f / 720.0f)));
  q = _mm256_add_ps(_mm256_set1_ps(1.0f / 24.0f), _mm256_mul_ps(x, q));
  q = _mm256_add_ps(_mm256_set1_ps(1.0f / 6.0f), _mm256_mul_ps(x, q));
  q = _mm256_add_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(x, q));
  const __m256 p = _mm256_add_ps(x, _mm256_mul_ps(_mm256_mul_ps(x, x), q));
  const __m256 e = _mm256_sub_ps(pyrt_exp8(x), _mm256_set1_ps(1.0f));
  const __m256 small =
      _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-0.0625f), _CMP_GT_OQ),
                    _mm256_cmp_ps(x, _mm256_set1_ps(0.0625f), _CMP_LT_OQ));
  return _mm256_blendv_ps(e, p, small);
}

static inline __m256 log1p_unit8(__m256 u) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_add_ps(one, u);
  const __m256 big =
      _mm256_cmp_ps(t, _mm256_set1_ps(1.41421356237309505f), _CMP_GT_OQ);
  const __m256 m =
      _mm256_blendv_ps(t, _mm256_mul_ps(t, _mm256_set1_ps(0.5f)), big);
  const __m256 e = _mm256_and_ps(big, one);
  const __m256 f = _mm256_sub_ps(m, one), z = _mm256_mul_ps(f, f);
  __m256 p = _mm256_set1_ps(7.0376836292e-2f);
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(-1.1514610310e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(1.1676998740e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(-1.2420140846e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(1.4249322787e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(-1.6668057665e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(2.0000714765e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(-2.4999993993e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(3.3333331174e-1f));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
  y = _mm256_add_ps(y, _mm256_mul_ps(e, _mm256_set1_ps(-2.12194440e-4f)));
  y = _mm256_add_ps(y, _mm256_mul_ps(_mm256_set1_ps(-0.5f), z));
  __m256 r = _mm256_add_ps(f, y);
  r = _mm256_add_ps(r, _mm256_mul_ps(e, _mm256_set1_ps(0.693359375f)));
  const __m256 l = _mm256_mul_ps(r, _mm256_div_ps(u, _mm256_sub_ps(t, one)));
  return _mm256_blendv_ps(l, u, _mm256_cmp_ps(t, one, _CMP_EQ_OQ));
}

/* Elements i .. i + 7 of p (zero past n), and their store. */
static inline __m256 load8(const float *p, int64_t i, int64_t n) {
  if (n - i >= 8) return _mm256_loadu_ps(p + i);
  return _mm256_maskload_ps(p + i, tail(n - i));
}

static inline void store8(float *p, int64_t i, int64_t n, __m256 v) {
  if (n - i >= 8)
    _mm256_storeu_ps(p + i, v);
  else
    _mm256_maskstore_ps(p + i, tail(n - i), v);
}

/* y[i] = EXPR of x = src[i .. i + 7]. */
#define UNARY_LOOP(EXPR)               \
  for (int64_t i = 0; i < n; i += 8) { \
    const __m256 x = load8(src, i, n); \
    store8(y, i, n, (EXPR));           \
  }                                    \
  break

static void funary(int32_t op, int64_t n, const float *src, float alpha_,
                   float beta_, float *y) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  const __m256 alpha = _mm256_set1_ps(alpha_), beta = _mm256_set1_ps(beta_);
  switch (op) {
    case PYRT_RELU:
      UNARY_LOOP(_mm256_max_ps(zero, x));
    case PYRT_LEAKY_RELU:
      UNARY_LOOP(_mm256_blendv_ps(_mm256_mul_ps(alpha, x), x,
                                  _mm256_cmp_ps(x, zero, _CMP_GE_OQ)));
    case PYRT_CLIP:
      UNARY_LOOP(clamp8(x, alpha, beta));
    case PYRT_SIGMOID:
      UNARY_LOOP(pyrt_logistic8(x));
    case PYRT_HARD_SIGMOID:
      UNARY_LOOP(
          clamp8(_mm256_add_ps(_mm256_mul_ps(alpha, x), beta), zero, one));
    case PYRT_HARD_SWISH:
      UNARY_LOOP(_mm256_mul_ps(
          x, clamp8(_mm256_add_ps(_mm256_mul_ps(alpha, x), beta), zero, one)));
    case PYRT_TANH:
      UNARY_LOOP(pyrt_tanh8(x));
    case PYRT_ELU:
      UNARY_LOOP(_mm256_blendv_ps(_mm256_mul_ps(alpha, expm1_8(x)), x,
                                  _mm256_cmp_ps(x, zero, _CMP_GE_OQ)));
    case PYRT_SOFTPLUS:
      UNARY_LOOP(_mm256_add_ps(
          _mm256_and_ps(_mm256_cmp_ps(x, zero, _CMP_GT_OQ), x),
          log1p_unit8(pyrt_exp8(_mm256_or_ps(x, _mm256_set1_ps(-0.0f))))));
    case PYRT_ERF:
      UNARY_LOOP(pyrt_erf8(x));
    default: /* PYRT_SWISH */
      UNARY_LOOP(_mm256_mul_ps(x, pyrt_logistic8(x)));
  }
}

/* y = p op q over the rows, p / q being a / b or b / a (b_first). */
#define BINARY_LOOP(FN)                                       \
  for (int64_t r = 0; r < rows; r++) {                        \
    const float *ar = a + r * cols;                           \
    float *yr = y + r * cols;                                 \
    for (int64_t c = 0; c < cols; c += 8) {                   \
      const __m256 va = load8(ar, c, cols);                   \
      const __m256 vb = b_step ? load8(b, c, cols) : b_one;   \
      store8(yr, c, cols, b_first ? FN(vb, va) : FN(va, vb)); \
    }                                                         \
  }                                                           \
  break

static void fbinary(int32_t op, int64_t rows, int64_t cols, const float *a,
                    const float *b, int32_t b_step, int32_t b_first, float *y) {
  const __m256 b_one = _mm256_set1_ps(b[0]);
  switch (op) {
    case PYRT_ADD:
      BINARY_LOOP(_mm256_add_ps);
    case PYRT_SUB:
      BINARY_LOOP(_mm256_sub_ps);
    case PYRT_MUL:
      BINARY_LOOP(_mm256_mul_ps);
    default:
      BINARY_LOOP(_mm256_div_ps);
  }
}

void pyrt_felem_init_avx2(pyrt_kernel_table *t) {
  t->funary = funary;
  t->fbinary = fbinary;
}
