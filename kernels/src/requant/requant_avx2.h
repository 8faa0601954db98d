/* AVX2 output stage of 8 int32 lanes, for the *_avx2.c / *_avxvnni.c files
 * (their compile flags enable AVX2). The same float steps as
 * pyrt_requant_value in requant.h, lane by lane, so results are bit-exact:
 * (float)acc * scale, round half to even, + zero, clamp in float, convert
 * (exact: the value is an integer inside the dtype's range).
 */
#ifndef PYRT_REQUANT_AVX2_H
#define PYRT_REQUANT_AVX2_H

#include <immintrin.h>
#include <string.h>

#include "requant/requant.h"

typedef struct {
  int32_t dtype;
  __m256 zero, qmin, qmax;
} pyrt_avx2_stage;

static inline pyrt_avx2_stage pyrt_avx2_stage_init(
    const pyrt_output_stage *out) {
  return (pyrt_avx2_stage){
      out->out_dtype, _mm256_set1_ps((float)out->zero_point),
      _mm256_set1_ps((float)out->qmin), _mm256_set1_ps((float)out->qmax)};
}

/* All-ones in lanes < n (n in [0, 8]). */
static inline __m256i pyrt_avx2_mask(int32_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Channel scales of 8 lanes from scale (n valid), or the one scale. */
static inline __m256 pyrt_avx2_scale(const float *scale, int32_t per_channel,
                                     int32_t n) {
  if (!per_channel) return _mm256_set1_ps(scale[0]);
  if (n >= 8) return _mm256_loadu_ps(scale);
  return _mm256_maskload_ps(scale, pyrt_avx2_mask(n));
}

static inline __m256i pyrt_avx2_load_epi32(const int32_t *p, int32_t n) {
  if (n >= 8) return _mm256_loadu_si256((const __m256i *)p);
  return _mm256_maskload_epi32((const int *)p, pyrt_avx2_mask(n));
}

/* Requantized lanes as int32, each inside [qmin, qmax]. */
static inline __m256i pyrt_avx2_requant(__m256i acc, __m256 scale,
                                        const pyrt_avx2_stage *k) {
  __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
  x = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(x, k->zero), k->qmin), k->qmax);
  return _mm256_cvtps_epi32(x);
}

/* The low byte of each lane (the u8 / s8 value of an in-range int32). */
static inline __m128i pyrt_avx2_low_bytes(__m256i q) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1,
                                        -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1,
                                        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(q, pick);
  return _mm_unpacklo_epi32(_mm256_castsi256_si128(b),
                            _mm256_extracti128_si256(b, 1));
}

/* The output stage on n <= 8 lanes of consecutive channels, written at
   element `at` of y. */
static inline void pyrt_avx2_output(__m256i acc, int32_t n, __m256 scale,
                                    const pyrt_avx2_stage *k, void *y,
                                    size_t at) {
  switch (k->dtype) {
    case PYRT_U8:
    case PYRT_S8: {
      const __m128i b = pyrt_avx2_low_bytes(pyrt_avx2_requant(acc, scale, k));
      char *dst = (char *)y + at;
      if (n >= 8) {
        _mm_storel_epi64((__m128i *)dst, b);
      } else {
        char tmp[16];
        _mm_storeu_si128((__m128i *)tmp, b);
        memcpy(dst, tmp, (size_t)n);
      }
      break;
    }
    case PYRT_S32: {
      int32_t *dst = (int32_t *)y + at;
      if (n >= 8)
        _mm256_storeu_si256((__m256i *)dst, acc);
      else
        _mm256_maskstore_epi32((int *)dst, pyrt_avx2_mask(n), acc);
      break;
    }
    default: {
      float *dst = (float *)y + at;
      const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
      if (n >= 8)
        _mm256_storeu_ps(dst, v);
      else
        _mm256_maskstore_ps(dst, pyrt_avx2_mask(n), v);
      break;
    }
  }
}

/* Byte outputs, 16 at a time (pyrt_avx2_pack_bytes): the zero point and
   the clamp of pyrt_requant_value on saturating packs, as
   pyrt_avx512_pack_bytes (requant_avx512.h) does. */
typedef struct {
  int32_t is_s8;
  __m256i zero16;
  __m128i qmin8, qmax8;
} pyrt_avx2_bytes;

static inline pyrt_avx2_bytes pyrt_avx2_bytes_init(
    const pyrt_output_stage *out) {
  return (pyrt_avx2_bytes){
      out->out_dtype == PYRT_S8, _mm256_set1_epi16((short)out->zero_point),
      _mm_set1_epi8((char)out->qmin), _mm_set1_epi8((char)out->qmax)};
}

/* rint(acc * scale) as int32 (pyrt_avx512_round: a product past int32 is
   held at 2^31 - 128, negatives past it convert to INT32_MIN; cvtps2dq
   rounds in the current mode, like rintf). */
static inline __m256i pyrt_avx2_round(__m256i acc, __m256 scale) {
  return _mm256_cvtps_epi32(
      _mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale),
                    _mm256_set1_ps(2147483520.0f)));
}

/* Two vectors of rounded lanes (channels 0-7, 8-15) as 16 bytes in channel
   order. */
static inline __m128i pyrt_avx2_pack_bytes(__m256i a, __m256i b,
                                           const pyrt_avx2_bytes *k) {
  /* words: channels 0-3 8-11 | 4-7 12-15 */
  const __m256i w = _mm256_adds_epi16(_mm256_packs_epi32(a, b), k->zero16);
  const __m256i v =
      k->is_s8 ? _mm256_packs_epi16(w, w) : _mm256_packus_epi16(w, w);
  /* dword 0 of each lane: channels 0-3 | 4-7, dword 1: 8-11 | 12-15 */
  const __m128i c = _mm_unpacklo_epi32(_mm256_castsi256_si128(v),
                                       _mm256_extracti128_si256(v, 1));
  return k->is_s8 ? _mm_min_epi8(_mm_max_epi8(c, k->qmin8), k->qmax8)
                  : _mm_min_epu8(_mm_max_epu8(c, k->qmin8), k->qmax8);
}

#endif
