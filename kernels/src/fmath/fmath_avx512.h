/* AVX-512 versions of fmath.h's functions, for the *_avx512vnni.c kernels:
 * the same IEEE operations in the same order, 16 lanes at a time, so every
 * result equals the scalar reference's bit for bit. Fused multiply-adds only
 * where the scalar code has fmaf (erf). Rows are processed in
 * vectors of 16 with a masked tail.
 */
#ifndef PYRT_FMATH_AVX512_H
#define PYRT_FMATH_AVX512_H

#include <immintrin.h>

#include "fmath/fmath.h"

static inline __mmask16 pyrt_tail16(int32_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* pyrt_fold_lanes of 16 partial sums in a vector. */
static inline float pyrt_fold16(__m512 acc) {
  const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(acc),
                                  _mm512_extractf32x8_ps(acc, 1));
  const __m256 h =
      _mm256_hadd_ps(_mm256_hadd_ps(h8, h8), _mm256_hadd_ps(h8, h8));
  return _mm_cvtss_f32(
      _mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

static inline float pyrt_sum16(int32_t n, const float *x) {
  __m512 acc = _mm512_setzero_ps();
  for (int32_t i = 0; i < n; i += 16) {
    const __mmask16 k = pyrt_tail16(n - i);
    acc = _mm512_mask_add_ps(acc, k, acc, _mm512_maskz_loadu_ps(k, x + i));
  }
  return pyrt_fold16(acc);
}

static inline __m512 pyrt_rint16(__m512 x) {
  return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline __m512 pyrt_exp16(__m512 x) {
  const __m512 n =
      pyrt_rint16(_mm512_mul_ps(x, _mm512_set1_ps(1.44269502162933349609f)));
  __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
  r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  const __mmask16 in =
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654022216797f), _CMP_GE_OQ) &
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.72283935546875f), _CMP_LE_OQ);
  /* e in [-126, 128] where `in`; elsewhere the lanes are replaced below */
  const __m512i e = _mm512_maskz_cvtps_epi32(in, n);
  const __m512i e1 =
      _mm512_srai_epi32(_mm512_sub_epi32(e, _mm512_srai_epi32(e, 31)), 1);
  const __m512i e2 = _mm512_sub_epi32(e, e1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 f1 =
      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(e1, bias), 23));
  const __m512 f2 =
      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(e2, bias), 23));
  __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, f1), f2);
  /* out of range: +Inf above, 0 below, NaN stays x */
  const __mmask16 above =
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.72283935546875f), _CMP_GT_OQ);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  y = _mm512_maskz_mov_ps(in | above | nan, y);
  y = _mm512_mask_mov_ps(y, above, _mm512_set1_ps(INFINITY));
  return _mm512_mask_mov_ps(y, nan, x);
}

/* fmath.h's pyrt_horner, 16 lanes. */
static inline __m512 pyrt_horner16(__m512 x, const float *c, int n) {
  __m512 p = _mm512_set1_ps(c[0]);
  for (int i = 1; i < n; i++) p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(c[i]));
  return p;
}

/* fmath.h's pyrt_softmax_expf on 16 lanes (2^m by scalef: one rounding). */
static inline __m512 pyrt_softmax_exp16(__m512 v) {
  static const float c[] = PYRT_SMAX_EXP_POLY;
  /* max returns its second operand when one is NaN: NaN passes */
  const __m512 t = _mm512_max_ps(_mm512_set1_ps(PYRT_SMAX_EXP_MIN), v);
  const __m512 shift = _mm512_set1_ps(PYRT_ERF_SHIFT);
  const __m512 m = _mm512_sub_ps(
      _mm512_fmadd_ps(t, _mm512_set1_ps(PYRT_ERF_LOG2E), shift), shift);
  const __m512 r =
      _mm512_fmadd_ps(m, _mm512_set1_ps(PYRT_ERF_LN2_LO),
                      _mm512_fmadd_ps(m, _mm512_set1_ps(PYRT_ERF_LN2_HI), t));
  const __m512 p = pyrt_horner16(r, c, 7);
  return _mm512_scalef_ps(p, m);
}

static inline __m512 pyrt_erf16(__m512 x) {
  /* fmath.h's pyrt_erff on 16 lanes: both branches, the small one's lanes
     picked by mask */
  static const float sc[] = PYRT_ERF_SMALL, bc[] = PYRT_ERF_BIG,
                     ec[] = PYRT_ERF_EXP;
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512 a =
      _mm512_min_ps(_mm512_andnot_ps(sign, x), _mm512_set1_ps(PYRT_ERF_MAX));
  const __m512 s = _mm512_mul_ps(a, a);
  __m512 r = pyrt_horner16(s, sc, 6);
  r = _mm512_fmadd_ps(r, a, a);
  __m512 t = pyrt_horner16(a, bc, 7);
  t = _mm512_xor_ps(_mm512_fmadd_ps(t, a, a), sign);
  t = _mm512_max_ps(t, _mm512_set1_ps(PYRT_ERF_EXP_MIN));
  const __m512 shift = _mm512_set1_ps(PYRT_ERF_SHIFT);
  const __m512 n = _mm512_sub_ps(
      _mm512_fmadd_ps(_mm512_set1_ps(PYRT_ERF_LOG2E), t, shift), shift);
  const __m512 f =
      _mm512_fmadd_ps(n, _mm512_set1_ps(PYRT_ERF_LN2_LO),
                      _mm512_fmadd_ps(_mm512_set1_ps(PYRT_ERF_LN2_HI), n, t));
  const __m512 y = pyrt_horner16(f, ec, 7);
  const __m512 p2 = _mm512_castsi512_ps(_mm512_slli_epi32(
      _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23));
  const __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_mul_ps(y, p2));
  const __mmask16 small =
      _mm512_cmp_ps_mask(a, _mm512_set1_ps(PYRT_ERF_SPLIT), _CMP_LT_OQ);
  const __m512 e =
      _mm512_or_ps(_mm512_mask_mov_ps(big, small, r), _mm512_and_ps(x, sign));
  return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/* fmath.h's pyrt_tanhf / pyrt_logisticf, 16 lanes. */
static inline __m512 pyrt_tanh16(__m512 x) {
  static const float p_[] = PYRT_TANH_P, q_[] = PYRT_TANH_Q;
  /* max / min return their second operand when one is NaN: NaN passes */
  const __m512 v = _mm512_min_ps(_mm512_set1_ps(9.0f),
                                 _mm512_max_ps(_mm512_set1_ps(-9.0f), x));
  const __m512 s = _mm512_mul_ps(v, v);
  const __m512 p = pyrt_horner16(s, p_, 7);
  const __m512 q = pyrt_horner16(s, q_, 4);
  return _mm512_div_ps(_mm512_mul_ps(v, p), q);
}

static inline __m512 pyrt_logistic16(__m512 x) {
  static const float p_[] = PYRT_LOGISTIC_P, q_[] = PYRT_LOGISTIC_Q;
  const __m512 v = _mm512_min_ps(_mm512_set1_ps(18.0f),
                                 _mm512_max_ps(_mm512_set1_ps(-18.0f), x));
  const __m512 s = _mm512_mul_ps(v, v);
  const __m512 p = pyrt_horner16(s, p_, 5);
  const __m512 q = pyrt_horner16(s, q_, 6);
  const __m512 y = _mm512_add_ps(_mm512_div_ps(_mm512_mul_ps(v, p), q),
                                 _mm512_set1_ps(0.5f));
  return _mm512_max_ps(_mm512_setzero_ps(), y);
}

/* pyrt_load_row, 16 lanes (masked). */
static inline __m512 pyrt_load16(const void *x, int64_t at,
                                 const pyrt_qparams *q, __mmask16 k) {
  __m512i v;
  switch (q->dtype) {
    case PYRT_U8:
      v = _mm512_cvtepu8_epi32(
          _mm_maskz_loadu_epi8(k, (const uint8_t *)x + at));
      break;
    case PYRT_S8:
      v = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, (const int8_t *)x + at));
      break;
    default:
      return _mm512_maskz_loadu_ps(k, (const float *)x + at);
  }
  v = _mm512_sub_epi32(v, _mm512_set1_epi32(q->zero_point));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(q->scale));
}

/* pyrt_store_row, 16 lanes (masked). */
static inline void pyrt_store16(__m512 v, void *y, int64_t at,
                                const pyrt_qparams *q, __mmask16 k) {
  if (q->dtype == PYRT_F32) {
    _mm512_mask_storeu_ps((float *)y + at, k, v);
    return;
  }
  const __m512 zero = _mm512_set1_ps((float)q->zero_point);
  __m512 r = _mm512_add_ps(
      pyrt_rint16(_mm512_div_ps(v, _mm512_set1_ps(q->scale))), zero);
  r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, r, _CMP_UNORD_Q), zero);
  const int u8 = q->dtype == PYRT_U8;
  r = _mm512_max_ps(r, _mm512_set1_ps(u8 ? 0.0f : -128.0f));
  r = _mm512_min_ps(r, _mm512_set1_ps(u8 ? 255.0f : 127.0f));
  const __m512i i = _mm512_cvtps_epi32(r);
  if (u8)
    _mm_mask_storeu_epi8((uint8_t *)y + at, k, _mm512_cvtusepi32_epi8(i));
  else
    _mm_mask_storeu_epi8((int8_t *)y + at, k, _mm512_cvtsepi32_epi8(i));
}

#endif
