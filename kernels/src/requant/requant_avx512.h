/* AVX-512 output stage of 16 int32 lanes, for the *_avx512vnni.c files. The
 * same float steps as pyrt_requant_value in requant.h, lane by lane, so
 * results are bit-exact (see requant_avx2.h).
 */
#ifndef PYRT_REQUANT_AVX512_H
#define PYRT_REQUANT_AVX512_H

#include <immintrin.h>

#include "requant/requant.h"

typedef struct {
  int32_t dtype;
  __m512 zero, qmin, qmax;
} pyrt_avx512_stage;

static inline pyrt_avx512_stage pyrt_avx512_stage_init(
    const pyrt_output_stage *out) {
  return (pyrt_avx512_stage){
      out->out_dtype, _mm512_set1_ps((float)out->zero_point),
      _mm512_set1_ps((float)out->qmin), _mm512_set1_ps((float)out->qmax)};
}

/* Lanes < n (n in [0, 16]). */
static inline __mmask16 pyrt_avx512_mask(int32_t n) {
  return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}

static inline __m512 pyrt_avx512_scale(const float *scale, int32_t per_channel,
                                       __mmask16 m) {
  return per_channel ? _mm512_maskz_loadu_ps(m, scale)
                     : _mm512_set1_ps(scale[0]);
}

/* Requantized lanes as int32, each inside [qmin, qmax]. */
static inline __m512i pyrt_avx512_requant(__m512i acc, __m512 scale,
                                          const pyrt_avx512_stage *k) {
  __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
  x = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(x, k->zero), k->qmin), k->qmax);
  return _mm512_cvtps_epi32(x);
}

/* Byte outputs, 64 at a time (pyrt_avx512_rows): the zero point and the
   clamp of pyrt_requant_value on saturating packs instead of float lanes. */
typedef struct {
  int32_t is_s8;
  __m512i zero16, qmin8, qmax8, order;
} pyrt_avx512_bytes;

static inline pyrt_avx512_bytes pyrt_avx512_bytes_init(
    const pyrt_output_stage *out) {
  return (pyrt_avx512_bytes){
      out->out_dtype == PYRT_S8, _mm512_set1_epi16((short)out->zero_point),
      _mm512_set1_epi8((char)out->qmin), _mm512_set1_epi8((char)out->qmax),
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)};
}

/* rint(acc * scale) as int32, as pyrt_requant_value rounds (half to even).
   A product past int32 (at most +inf) is held at 2^31 - 128, which keeps its
   sign through the conversion; negatives past it convert to INT32_MIN. Both
   then saturate as the float clamp would. */
static inline __m512i pyrt_avx512_round(__m512i acc, __m512 scale) {
  const __m512 x = _mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale),
                                 _mm512_set1_ps(2147483520.0f));
  return _mm512_cvt_roundps_epi32(
      x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* Four vectors of rounded lanes (pyrt_avx512_round) as bytes: + zero
   point and clamped exactly as pyrt_requant_value (int16 and int8
   saturation keep every out-of-range value on its side of [qmin, qmax]),
   in the order of the packs: byte 16 L + 4 j + i is lane 4 L + i of the
   j-th vector (a0, a1, b0, b1). */
static inline __m512i pyrt_avx512_pack_bytes(__m512i a0, __m512i a1, __m512i b0,
                                             __m512i b1,
                                             const pyrt_avx512_bytes *k) {
  const __m512i a = _mm512_adds_epi16(_mm512_packs_epi32(a0, a1), k->zero16);
  const __m512i b = _mm512_adds_epi16(_mm512_packs_epi32(b0, b1), k->zero16);
  if (k->is_s8)
    return _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(a, b), k->qmin8),
                           k->qmax8);
  return _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(a, b), k->qmin8),
                         k->qmax8);
}

/* Two rows of 32 rounded lanes (a0 | a1 and b0 | b1) as bytes, row a in the
   low 32 and row b in the high 32: the packs interleave 128-bit lanes;
   `order` puts the dwords back. */
static inline __m512i pyrt_avx512_rows(__m512i a0, __m512i a1, __m512i b0,
                                       __m512i b1, const pyrt_avx512_bytes *k) {
  return _mm512_permutexvar_epi32(k->order,
                                  pyrt_avx512_pack_bytes(a0, a1, b0, b1, k));
}

/* The output stage on the lanes in m (consecutive channels), written at
   element `at` of y. */
static inline void pyrt_avx512_output(__m512i acc, __mmask16 m, __m512 scale,
                                      const pyrt_avx512_stage *k, void *y,
                                      size_t at) {
  switch (k->dtype) {
    case PYRT_U8:
    case PYRT_S8: /* in range: the low byte is the value */
      _mm_mask_storeu_epi8(
          (char *)y + at, m,
          _mm512_cvtepi32_epi8(pyrt_avx512_requant(acc, scale, k)));
      break;
    case PYRT_S32:
      _mm512_mask_storeu_epi32((int32_t *)y + at, m, acc);
      break;
    default:
      _mm512_mask_storeu_ps((float *)y + at, m,
                            _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale));
      break;
  }
}

#endif
