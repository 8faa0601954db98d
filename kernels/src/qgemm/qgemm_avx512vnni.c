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

/* Row r of the tile; rows past mr repeat the last one (computed, never
   stored), so one straight-line kernel serves every mr. */
static inline const uint8_t *row(const uint8_t *a, size_t lda, int32_t r,
                                 int32_t mr) {
  return a + (size_t)(r < mr ? r : mr - 1) * lda;
}

/* One row's two accumulators += its 4 activation bytes (flipped) x the K
   group. */
#define STEP(ar, x0, x1)                                              \
  do {                                                                \
    int32_t word;                                                     \
    memcpy(&word, (ar) + k, 4);                                       \
    const __m512i av = _mm512_xor_si512(_mm512_set1_epi32(word), fx); \
    x0 = _mm512_dpbusd_epi32(x0, av, b0);                             \
    x1 = _mm512_dpbusd_epi32(x1, av, b1);                             \
  } while (0)

/* Named accumulators, not arrays: GCC keeps these in registers (arrays of
   16 zmm it spills, which halved the speed of wider tiles). */
static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc, uint8_t flip) {
  const __m512i fx = _mm512_set1_epi8((char)flip);
  const int8_t *w = (const int8_t *)b;
  const uint8_t *a0 = a, *a1 = row(a, lda, 1, mr), *a2 = row(a, lda, 2, mr),
                *a3 = row(a, lda, 3, mr), *a4 = row(a, lda, 4, mr),
                *a5 = row(a, lda, 5, mr), *a6 = row(a, lda, 6, mr),
                *a7 = row(a, lda, 7, mr);
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00,
          c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
          c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  for (int32_t k = 0; k < kp; k += KR, w += NR * KR) {
    const __m512i b0 = _mm512_loadu_si512((const void *)w);
    const __m512i b1 = _mm512_loadu_si512((const void *)(w + 64));
    STEP(a0, c00, c01);
    STEP(a1, c10, c11);
    STEP(a2, c20, c21);
    STEP(a3, c30, c31);
    STEP(a4, c40, c41);
    STEP(a5, c50, c51);
    STEP(a6, c60, c61);
    STEP(a7, c70, c71);
  }
  const __m512i out[2 * MR] = {c00, c01, c10, c11, c20, c21, c30, c31,
                               c40, c41, c50, c51, c60, c61, c70, c71};
  for (int i = 0; i < 2 * MR; i++)
    _mm512_storeu_si512((void *)(acc + 16 * i), out[i]);
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
