/* AVX512-VNNI int8 GEMM tile: 8 rows x 32 columns over K groups of 4.
 *
 * Per K group, two zmm of packed weights (32 columns x 4 s8) are loaded
 * once and each row's 4 activation bytes are broadcast into a zmm; one
 * vpdpbusd (u8 x s8, four products summed into each int32 lane, wrapping,
 * no saturation) per row and column vector. 16 accumulators, 2 weight
 * vectors and a broadcast fit the 32 registers. The epilogue requantizes 16
 * channels at a time with the scalar definition's float steps
 * (requant_avx512.h).
 */
#include <immintrin.h>
#include <string.h>

#include "requant/requant_avx512.h"

enum { MR = 8, NR = 32, KR = 4 };

static inline __attribute__((always_inline)) void tile(const int mr, int32_t kp,
                                                       const uint8_t *a,
                                                       size_t lda,
                                                       const int8_t *b,
                                                       int32_t *acc) {
  __m512i c0[MR], c1[MR];
  for (int r = 0; r < mr; r++) c0[r] = c1[r] = _mm512_setzero_si512();
  for (int32_t k = 0; k < kp; k += KR, b += NR * KR) {
    const __m512i b0 = _mm512_loadu_si512((const void *)b);
    const __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
    for (int r = 0; r < mr; r++) {
      int32_t word;
      memcpy(&word, a + (size_t)r * lda + (size_t)k, 4);
      const __m512i av = _mm512_set1_epi32(word);
      c0[r] = _mm512_dpbusd_epi32(c0[r], av, b0);
      c1[r] = _mm512_dpbusd_epi32(c1[r], av, b1);
    }
  }
  for (int r = 0; r < mr; r++) {
    _mm512_storeu_si512((void *)(acc + r * NR), c0[r]);
    _mm512_storeu_si512((void *)(acc + r * NR + 16), c1[r]);
  }
}

static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc) {
  const int8_t *w = (const int8_t *)b;
  switch (mr) {
    case 8:
      tile(8, kp, a, lda, w, acc);
      break;
    case 7:
      tile(7, kp, a, lda, w, acc);
      break;
    case 6:
      tile(6, kp, a, lda, w, acc);
      break;
    case 5:
      tile(5, kp, a, lda, w, acc);
      break;
    case 4:
      tile(4, kp, a, lda, w, acc);
      break;
    case 3:
      tile(3, kp, a, lda, w, acc);
      break;
    case 2:
      tile(2, kp, a, lda, w, acc);
      break;
    default:
      tile(1, kp, a, lda, w, acc);
      break;
  }
}

static void epilogue(int32_t mr, int32_t nr, const int32_t *acc, int32_t ld_acc,
                     const int32_t *fixed, const int32_t *w_zero,
                     const int32_t *row_sum, const float *scale,
                     const pyrt_output_stage *out, void *y, size_t ldy) {
  const pyrt_avx512_stage k = pyrt_avx512_stage_init(out);
  for (int32_t j = 0; j < nr; j += 16) {
    const __mmask16 m = pyrt_avx512_mask(nr - j);
    const __m512i f = _mm512_maskz_loadu_epi32(m, fixed + j);
    const __m512i zw = w_zero ? _mm512_maskz_loadu_epi32(m, w_zero + j)
                              : _mm512_setzero_si512();
    const __m512 s = pyrt_avx512_scale(scale + (out->per_channel ? j : 0),
                                       out->per_channel, m);
    for (int32_t r = 0; r < mr; r++) {
      __m512i v =
          _mm512_add_epi32(_mm512_loadu_si512(acc + (size_t)r * ld_acc + j), f);
      if (w_zero)
        v = _mm512_sub_epi32(
            v, _mm512_mullo_epi32(zw, _mm512_set1_epi32(row_sum[r])));
      pyrt_avx512_output(v, m, s, &k, y, (size_t)r * ldy + (size_t)j);
    }
  }
}

void pyrt_qgemm_init_avx512vnni(pyrt_kernel_table *t) {
  t->qgemm =
      (pyrt_qgemm_config){MR, NR, KR, 1, 1, ukernel, NULL, epilogue, NULL};
}
