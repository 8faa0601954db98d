/* AVX2 int8 GEMM tile: 6 rows x 16 columns over K groups of 2, exact.
 *
 * vpmaddubsw (u8 x s8 pairs into s16) saturates, so this tile widens
 * instead: packed A holds u16 (widen_a zero-extends the u8 rows once per
 * band), packed B holds s16, and vpmaddwd sums each pair of s16 products
 * into an int32 lane, which cannot overflow (2 * 255 * 128 < 2^31); vpaddd
 * accumulates with int32 wrap-around. Per K pair: two ymm of weights (16
 * columns x 2), a broadcast of each row's two u16, 12 accumulators: 15 of
 * the 16 registers. The epilogue requantizes 8 channels at a time with the
 * scalar definition's float steps (requant_avx2.h).
 */
#include <immintrin.h>
#include <string.h>

#include "requant/requant_avx2.h"

enum { MR = 6, NR = 16, KR = 2 };

/* Row r of the tile; rows past mr repeat the last one (computed, never
   stored), so one straight-line kernel serves every mr. */
static inline const uint8_t *row(const uint8_t *a, size_t lda, int32_t r,
                                 int32_t mr) {
  return a + (size_t)(r < mr ? r : mr - 1) * lda;
}

/* One row's two accumulators += its two u16 x the K group. */
#define STEP(ar, x0, x1)                                  \
  do {                                                    \
    int32_t word;                                         \
    memcpy(&word, (ar) + (size_t)k * 2, 4);               \
    const __m256i av = _mm256_set1_epi32(word);           \
    x0 = _mm256_add_epi32(x0, _mm256_madd_epi16(av, b0)); \
    x1 = _mm256_add_epi32(x1, _mm256_madd_epi16(av, b1)); \
  } while (0)

/* Named accumulators, not arrays, so that they stay in registers. */
static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc, uint8_t flip) {
  (void)flip; /* 0: the driver flips while widening */
  const int16_t *w = (const int16_t *)b;
  const uint8_t *a0 = a, *a1 = row(a, lda, 1, mr), *a2 = row(a, lda, 2, mr),
                *a3 = row(a, lda, 3, mr), *a4 = row(a, lda, 4, mr),
                *a5 = row(a, lda, 5, mr);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00,
          c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
          c50 = c00, c51 = c00;
  for (int32_t k = 0; k < kp; k += KR, w += NR * KR) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)w);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + 16));
    STEP(a0, c00, c01);
    STEP(a1, c10, c11);
    STEP(a2, c20, c21);
    STEP(a3, c30, c31);
    STEP(a4, c40, c41);
    STEP(a5, c50, c51);
  }
  const __m256i out[2 * MR] = {c00, c01, c10, c11, c20, c21,
                               c30, c31, c40, c41, c50, c51};
  for (int i = 0; i < 2 * MR; i++)
    _mm256_storeu_si256((__m256i *)(acc + 8 * i), out[i]);
}

static void widen_a(int32_t m, int32_t kp, const uint8_t *src, size_t ld_src,
                    void *dst, size_t ld_dst) {
  for (int32_t r = 0; r < m; r++) {
    const uint8_t *s = src + (size_t)r * ld_src;
    uint16_t *d = (uint16_t *)((char *)dst + (size_t)r * ld_dst);
    int32_t k = 0;
    for (; k + 16 <= kp; k += 16)
      _mm256_storeu_si256(
          (__m256i *)(d + k),
          _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(s + k))));
    for (; k < kp; k++) d[k] = s[k];
  }
}

/* Shared with the AVX-VNNI table, whose tile leaves the epilogue as is. */
static void epilogue(int32_t mr, int32_t nr, const int32_t *acc, int32_t ld_acc,
                     const int32_t *fixed, const int32_t *w_zero,
                     const int32_t *row_sum, const float *scale,
                     const pyrt_output_stage *out, void *y, size_t ldy) {
  const pyrt_avx2_stage k = pyrt_avx2_stage_init(out);
  for (int32_t j = 0; j < nr; j += 8) {
    const int32_t n = nr - j < 8 ? nr - j : 8;
    const __m256i f = pyrt_avx2_load_epi32(fixed + j, n);
    const __m256i zw =
        w_zero ? pyrt_avx2_load_epi32(w_zero + j, n) : _mm256_setzero_si256();
    const __m256 s = pyrt_avx2_scale(scale + (out->per_channel ? j : 0),
                                     out->per_channel, n);
    for (int32_t r = 0; r < mr; r++) {
      /* acc rows are whole tiles: all 8 lanes are readable */
      __m256i v = _mm256_add_epi32(
          _mm256_loadu_si256((const __m256i *)(acc + (size_t)r * ld_acc + j)),
          f);
      if (w_zero)
        v = _mm256_sub_epi32(
            v, _mm256_mullo_epi32(zw, _mm256_set1_epi32(row_sum[r])));
      pyrt_avx2_output(v, n, s, &k, y, (size_t)r * ldy + (size_t)j);
    }
  }
}

void pyrt_qgemm_init_avx2(pyrt_kernel_table *t) {
  t->qgemm = (pyrt_qgemm_config){MR,      NR,      KR,       2,    2,
                                 ukernel, widen_a, epilogue, NULL, NULL};
}
