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

static inline __attribute__((always_inline)) void tile(const int mr, int32_t kp,
                                                       const uint8_t *a,
                                                       size_t lda,
                                                       const int16_t *b,
                                                       int32_t *acc) {
  __m256i c0[MR], c1[MR];
  for (int r = 0; r < mr; r++) c0[r] = c1[r] = _mm256_setzero_si256();
  for (int32_t k = 0; k < kp; k += KR, b += NR * KR) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
    for (int r = 0; r < mr; r++) {
      int32_t pair;
      memcpy(&pair, a + (size_t)r * lda + (size_t)k * 2, 4);
      const __m256i av = _mm256_set1_epi32(pair);
      c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(av, b0));
      c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(av, b1));
    }
  }
  for (int r = 0; r < mr; r++) {
    _mm256_storeu_si256((__m256i *)(acc + r * NR), c0[r]);
    _mm256_storeu_si256((__m256i *)(acc + r * NR + 8), c1[r]);
  }
}

static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc) {
  const int16_t *w = (const int16_t *)b;
  switch (mr) {
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
  t->qgemm =
      (pyrt_qgemm_config){MR, NR, KR, 2, 2, ukernel, widen_a, epilogue, NULL};
}
