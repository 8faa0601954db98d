/* AVX2 versions of fmath.h's functions, for the *_avx2.c kernels: the same
 * IEEE operations in the same order, 8 lanes at a time, bit-exact with the
 * scalar reference. PYRT_LANES (16) partial sums live in two vectors (lanes
 * 0-7 and 8-15 of each group of 16 elements). Row tails go through a
 * zero-padded buffer of 8 elements. Fused multiply-adds only where the
 * scalar code has fmaf (erf).
 */
#ifndef PYRT_FMATH_AVX2_H
#define PYRT_FMATH_AVX2_H

#include <immintrin.h>

#include "fmath/fmath.h"

/* lanes 0-7 and 8-15 of pyrt_fold_lanes */
static inline float pyrt_fold8x2(__m256 lo, __m256 hi) {
  const __m256 h8 = _mm256_add_ps(lo, hi);
  const __m256 h =
      _mm256_hadd_ps(_mm256_hadd_ps(h8, h8), _mm256_hadd_ps(h8, h8));
  return _mm_cvtss_f32(
      _mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
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

/* p * 2^e as (p * 2^e1) * 2^e2, e1 = e / 2 truncated (as the scalar code):
   both factors normal for e in [-252, 254], the result rounded once. */
static inline __m256 pyrt_times_pow2_8(__m256 p, __m256i e) {
  const __m256i e1 =
      _mm256_srai_epi32(_mm256_sub_epi32(e, _mm256_srai_epi32(e, 31)), 1);
  const __m256i e2 = _mm256_sub_epi32(e, e1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 f1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e1, bias), 23));
  const __m256 f2 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
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
  __m256 y = _mm256_and_ps(pyrt_times_pow2_8(p, e), in);
  const __m256 above =
      _mm256_cmp_ps(x, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ);
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), above);
  return _mm256_blendv_ps(y, x, nan);
}

/* fmath.h's pyrt_ln_stats with onnxruntime's own vectors (four doubles for
   the mean, eight floats for the variance), for PYRT_LN_ROWS rows at once:
   each row keeps its own sequential order, the rows only interleave (their
   dependency chains overlap). */
#define PYRT_LN_ROWS 4

static inline void pyrt_ln_stats8(int32_t n, const float *const *v,
                                  float epsilon, float *mean, float *inv) {
  enum { R = PYRT_LN_ROWS };
  const int32_t n4 = n - n % 4, n8 = n - n % 8;
  __m256d d[R];
  for (int r = 0; r < R; r++) d[r] = _mm256_setzero_pd();
  for (int32_t i = 0; i < n4; i += 4)
    for (int r = 0; r < R; r++)
      d[r] = _mm256_add_pd(d[r], _mm256_cvtps_pd(_mm_loadu_ps(v[r] + i)));
  float m[R];
  __m256 q[R];
  for (int r = 0; r < R; r++) {
    const __m128d d2 = _mm_add_pd(_mm256_castpd256_pd128(d[r]),
                                  _mm256_extractf128_pd(d[r], 1));
    double s = _mm_cvtsd_f64(_mm_add_sd(d2, _mm_unpackhi_pd(d2, d2)));
    for (int32_t i = n4; i < n; i++) s = s + (double)v[r][i];
    m[r] = (float)(s / (double)n);
    q[r] = _mm256_setzero_ps();
  }
  for (int32_t i = 0; i < n8; i += 8)
    for (int r = 0; r < R; r++) {
      const __m256 t =
          _mm256_sub_ps(_mm256_loadu_ps(v[r] + i), _mm256_set1_ps(m[r]));
      q[r] = _mm256_fmadd_ps(t, t, q[r]);
    }
  for (int r = 0; r < R; r++) {
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(q[r]),
                                _mm256_extractf128_ps(q[r], 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    float acc = _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
    int32_t i = n8;
    if (n - n8 >= 4)
      for (const int32_t end = i + 4; i < end; i++) {
        const float t = v[r][i] - m[r];
        acc = acc + t * t;
      }
    for (; i < n; i++) {
      const float t = v[r][i] - m[r];
      acc = fmaf(t, t, acc);
    }
    mean[r] = m[r];
    inv[r] = 1.0f / sqrtf(acc / (float)n + epsilon);
  }
}

/* fmath.h's pyrt_horner, 8 lanes. */
static inline __m256 pyrt_horner8(__m256 x, const float *c, int n) {
  __m256 p = _mm256_set1_ps(c[0]);
  for (int i = 1; i < n; i++) p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(c[i]));
  return p;
}

/* fmath.h's pyrt_softmax_expf on 8 lanes. */
static inline __m256 pyrt_softmax_exp8(__m256 v) {
  static const float c[] = PYRT_SMAX_EXP_POLY;
  /* max returns its second operand when one is NaN: NaN passes */
  const __m256 t = _mm256_max_ps(_mm256_set1_ps(PYRT_SMAX_EXP_MIN), v);
  const __m256 shift = _mm256_set1_ps(PYRT_ERF_SHIFT);
  const __m256 m = _mm256_sub_ps(
      _mm256_fmadd_ps(t, _mm256_set1_ps(PYRT_ERF_LOG2E), shift), shift);
  const __m256 r =
      _mm256_fmadd_ps(m, _mm256_set1_ps(PYRT_ERF_LN2_LO),
                      _mm256_fmadd_ps(m, _mm256_set1_ps(PYRT_ERF_LN2_HI), t));
  const __m256 p = pyrt_horner8(r, c, 7);
  const __m256 y = pyrt_times_pow2_8(p, _mm256_cvttps_epi32(m));
  return _mm256_blendv_ps(y, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

static inline __m256 pyrt_erf8(__m256 x) {
  /* fmath.h's pyrt_erff on 8 lanes: both branches, the small one's lanes
     picked by mask */
  static const float sc[] = PYRT_ERF_SMALL, bc[] = PYRT_ERF_BIG,
                     ec[] = PYRT_ERF_EXP;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a =
      _mm256_min_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(PYRT_ERF_MAX));
  const __m256 s = _mm256_mul_ps(a, a);
  __m256 r = pyrt_horner8(s, sc, 6);
  r = _mm256_fmadd_ps(r, a, a);
  __m256 t = pyrt_horner8(a, bc, 7);
  t = _mm256_xor_ps(_mm256_fmadd_ps(t, a, a), sign);
  t = _mm256_max_ps(t, _mm256_set1_ps(PYRT_ERF_EXP_MIN));
  const __m256 shift = _mm256_set1_ps(PYRT_ERF_SHIFT);
  const __m256 n = _mm256_sub_ps(
      _mm256_fmadd_ps(_mm256_set1_ps(PYRT_ERF_LOG2E), t, shift), shift);
  const __m256 f =
      _mm256_fmadd_ps(n, _mm256_set1_ps(PYRT_ERF_LN2_LO),
                      _mm256_fmadd_ps(_mm256_set1_ps(PYRT_ERF_LN2_HI), n, t));
  const __m256 y = pyrt_horner8(f, ec, 7);
  const __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23));
  const __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(y, p2));
  const __m256 small =
      _mm256_cmp_ps(a, _mm256_set1_ps(PYRT_ERF_SPLIT), _CMP_LT_OQ);
  const __m256 e =
      _mm256_or_ps(_mm256_blendv_ps(big, r, small), _mm256_and_ps(x, sign));
  return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* fmath.h's pyrt_tanhf / pyrt_logisticf, 8 lanes. */
static inline __m256 pyrt_tanh8(__m256 x) {
  static const float p_[] = PYRT_TANH_P, q_[] = PYRT_TANH_Q;
  /* max / min return their second operand when one is NaN: NaN passes */
  const __m256 v = _mm256_min_ps(_mm256_set1_ps(9.0f),
                                 _mm256_max_ps(_mm256_set1_ps(-9.0f), x));
  const __m256 s = _mm256_mul_ps(v, v);
  const __m256 p = pyrt_horner8(s, p_, 7);
  const __m256 q = pyrt_horner8(s, q_, 4);
  return _mm256_div_ps(_mm256_mul_ps(v, p), q);
}

static inline __m256 pyrt_logistic8(__m256 x) {
  static const float p_[] = PYRT_LOGISTIC_P, q_[] = PYRT_LOGISTIC_Q;
  const __m256 v = _mm256_min_ps(_mm256_set1_ps(18.0f),
                                 _mm256_max_ps(_mm256_set1_ps(-18.0f), x));
  const __m256 s = _mm256_mul_ps(v, v);
  const __m256 p = pyrt_horner8(s, p_, 5);
  const __m256 q = pyrt_horner8(s, q_, 6);
  const __m256 y = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(v, p), q),
                                 _mm256_set1_ps(0.5f));
  return _mm256_max_ps(_mm256_setzero_ps(), y);
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
