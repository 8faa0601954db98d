/* AVX2 versions of fmath.h's functions, for the *_avx2.c kernels: the same
 * IEEE operations in the same order, 8 lanes at a time, bit-exact with the
 * scalar reference. PYRT_LANES (16) partial sums live in two vectors (lanes
 * 0-7 and 8-15 of each group of 16 elements). Row tails go through a
 * zero-padded buffer of 8 elements; no fused multiply-add.
 */
#ifndef PYRT_FMATH_AVX2_H
#define PYRT_FMATH_AVX2_H

#include <immintrin.h>

#include "fmath/fmath.h"

/* lanes 0-7 and 8-15 of pyrt_fold_lanes */
static inline float pyrt_fold8x2(__m256 lo, __m256 hi) {
  const __m256 h8 = _mm256_add_ps(lo, hi);
  const __m128 h4 =
      _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
  const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
  const __m128 h1 = _mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1));
  return _mm_cvtss_f32(h1);
}

/* All-ones in the lanes below `left`. */
static inline __m256 pyrt_valid8(int32_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(left), idx));
}

/* Adds v (elements c .. c + 7 of a row, zero past the end) to the partial sum
   its lanes belong to; lanes past the end stay as they are. */
static inline void pyrt_accumulate8(__m256 *lo, __m256 *hi, int32_t c,
                                    int32_t left, __m256 v) {
  __m256 *acc = (c & 8) ? hi : lo;
  if (left >= 8) {
    *acc = _mm256_add_ps(*acc, v);
    return;
  }
  *acc = _mm256_blendv_ps(*acc, _mm256_add_ps(*acc, v), pyrt_valid8(left));
}

static inline __m256 pyrt_rint8(__m256 x) {
  return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline __m256 pyrt_exp8(__m256 x) {
  const __m256 n =
      pyrt_rint8(_mm256_mul_ps(x, _mm256_set1_ps(1.44269502162933349609f)));
  __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
  r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256 in = _mm256_and_ps(
      _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654022216797f), _CMP_GE_OQ),
      _mm256_cmp_ps(x, _mm256_set1_ps(88.72283935546875f), _CMP_LE_OQ));
  /* e in [-126, 128] where `in`; the other lanes are replaced below */
  const __m256i e = _mm256_and_si256(_mm256_cvtps_epi32(_mm256_and_ps(n, in)),
                                     _mm256_castps_si256(in));
  const __m256i e1 =
      _mm256_srai_epi32(_mm256_sub_epi32(e, _mm256_srai_epi32(e, 31)), 1);
  const __m256i e2 = _mm256_sub_epi32(e, e1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 f1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e1, bias), 23));
  const __m256 f2 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e2, bias), 23));
  __m256 y = _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(p, f1), f2), in);
  const __m256 above =
      _mm256_cmp_ps(x, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ);
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), above);
  return _mm256_blendv_ps(y, x, nan);
}

static inline __m256 pyrt_erf8(__m256 x) {
  /* max/min return their second operand when one is NaN: NaN passes */
  x = _mm256_max_ps(_mm256_set1_ps(-4.0f), x);
  x = _mm256_min_ps(_mm256_set1_ps(4.0f), x);
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
  p = _mm256_add_ps(_mm256_mul_ps(p, x2),
                    _mm256_set1_ps(2.77068142495902e-08f));
  p = _mm256_add_ps(_mm256_mul_ps(p, x2),
                    _mm256_set1_ps(-2.10102402082508e-06f));
  p = _mm256_add_ps(_mm256_mul_ps(p, x2),
                    _mm256_set1_ps(-5.69250639462346e-05f));
  p = _mm256_add_ps(_mm256_mul_ps(p, x2),
                    _mm256_set1_ps(-7.34990630326855e-04f));
  p = _mm256_add_ps(_mm256_mul_ps(p, x2),
                    _mm256_set1_ps(-2.95459980854025e-03f));
  p = _mm256_add_ps(_mm256_mul_ps(p, x2),
                    _mm256_set1_ps(-1.60960333262415e-02f));
  p = _mm256_mul_ps(p, x);
  __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
  q = _mm256_add_ps(_mm256_mul_ps(q, x2),
                    _mm256_set1_ps(-2.13374055278905e-04f));
  q = _mm256_add_ps(_mm256_mul_ps(q, x2),
                    _mm256_set1_ps(-1.68282697438203e-03f));
  q = _mm256_add_ps(_mm256_mul_ps(q, x2),
                    _mm256_set1_ps(-7.37332916720468e-03f));
  q = _mm256_add_ps(_mm256_mul_ps(q, x2),
                    _mm256_set1_ps(-1.42647390514189e-02f));
  return _mm256_div_ps(p, q);
}

static inline __m256 pyrt_tanh8(__m256 u) {
  const __m256 u2 = _mm256_mul_ps(u, u);
  const __m256 poly =
      _mm256_add_ps(_mm256_set1_ps(-0.333333343267f),
                    _mm256_mul_ps(u2, _mm256_set1_ps(0.133333340287f)));
  const __m256 small =
      _mm256_add_ps(u, _mm256_mul_ps(_mm256_mul_ps(u, u2), poly));
  const __m256 e = pyrt_exp8(_mm256_mul_ps(_mm256_set1_ps(2.0f), u));
  const __m256 big =
      _mm256_sub_ps(_mm256_set1_ps(1.0f),
                    _mm256_div_ps(_mm256_set1_ps(2.0f),
                                  _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  const __m256 k =
      _mm256_and_ps(_mm256_cmp_ps(u, _mm256_set1_ps(-0.0625f), _CMP_GT_OQ),
                    _mm256_cmp_ps(u, _mm256_set1_ps(0.0625f), _CMP_LT_OQ));
  return _mm256_blendv_ps(big, small, k);
}

/* pyrt_load_row of elements at .. at + min(left, 8) - 1, zeros past them. */
static inline __m256 pyrt_load8(const void *x, int64_t at,
                                const pyrt_qparams *q, int32_t left) {
  const int32_t n = left < 8 ? left : 8;
  if (q->dtype == PYRT_F32) {
    if (n == 8) return _mm256_loadu_ps((const float *)x + at);
    float t[8] = {0};
    memcpy(t, (const float *)x + at, (size_t)n * sizeof(float));
    return _mm256_loadu_ps(t);
  }
  uint8_t t[8] = {0};
  memcpy(t, (const uint8_t *)x + at, (size_t)n);
  const __m128i b = _mm_loadl_epi64((const __m128i *)t);
  __m256i v =
      q->dtype == PYRT_U8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
  v = _mm256_sub_epi32(v, _mm256_set1_epi32(q->zero_point));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(q->scale));
}

static inline void pyrt_store8(__m256 v, void *y, int64_t at,
                               const pyrt_qparams *q, int32_t left) {
  const int32_t n = left < 8 ? left : 8;
  if (q->dtype == PYRT_F32) {
    if (n == 8) {
      _mm256_storeu_ps((float *)y + at, v);
      return;
    }
    float t[8];
    _mm256_storeu_ps(t, v);
    memcpy((float *)y + at, t, (size_t)n * sizeof(float));
    return;
  }
  const __m256 zero = _mm256_set1_ps((float)q->zero_point);
  __m256 r = _mm256_add_ps(
      pyrt_rint8(_mm256_div_ps(v, _mm256_set1_ps(q->scale))), zero);
  r = _mm256_blendv_ps(r, zero, _mm256_cmp_ps(r, r, _CMP_UNORD_Q));
  const int u8 = q->dtype == PYRT_U8;
  r = _mm256_max_ps(r, _mm256_set1_ps(u8 ? 0.0f : -128.0f));
  r = _mm256_min_ps(r, _mm256_set1_ps(u8 ? 255.0f : 127.0f));
  /* the low byte of each int32 lane, gathered into the first 8 bytes */
  const __m256i i = _mm256_cvtps_epi32(r);
  const __m256i bytes = _mm256_shuffle_epi8(
      i, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                          -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1,
                          -1, -1, -1, -1));
  const __m256i packed = _mm256_permutevar8x32_epi32(
      bytes, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
  uint8_t t[8];
  _mm_storel_epi64((__m128i *)t, _mm256_castsi256_si128(packed));
  memcpy((uint8_t *)y + at, t, (size_t)n);
}

#endif
