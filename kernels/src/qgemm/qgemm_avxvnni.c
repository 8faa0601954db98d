/* AVX-VNNI int8 GEMM tile: 6 rows x 16 columns over K groups of 4, the
 * 256-bit twin of the AVX512-VNNI tile.
 *
 * Per K group, two ymm of packed weights (16 columns x 4 s8) are loaded
 * once and each row's 4 activation bytes are broadcast into a ymm; one VEX
 * vpdpbusd (u8 x s8, four products summed into each int32 lane, wrapping,
 * no saturation) per row and column vector. 12 accumulators, 2 weight
 * vectors and a broadcast fit the 16 registers. The epilogue is the AVX2
 * table's, inherited.
 */
#include <immintrin.h>
#include <string.h>

#include "internal.h"

enum { MR = 6, NR = 16, KR = 4 };

static inline __attribute__((always_inline)) void tile(const int mr, int32_t kp,
                                                       const uint8_t *a,
                                                       size_t lda,
                                                       const int8_t *b,
                                                       int32_t *acc) {
  __m256i c0[MR], c1[MR];
  for (int r = 0; r < mr; r++) c0[r] = c1[r] = _mm256_setzero_si256();
  for (int32_t k = 0; k < kp; k += KR, b += NR * KR) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
    for (int r = 0; r < mr; r++) {
      int32_t word;
      memcpy(&word, a + (size_t)r * lda + (size_t)k, 4);
      const __m256i av = _mm256_set1_epi32(word);
      c0[r] = _mm256_dpbusd_avx_epi32(c0[r], av, b0);
      c1[r] = _mm256_dpbusd_avx_epi32(c1[r], av, b1);
    }
  }
  for (int r = 0; r < mr; r++) {
    _mm256_storeu_si256((__m256i *)(acc + r * NR), c0[r]);
    _mm256_storeu_si256((__m256i *)(acc + r * NR + 8), c1[r]);
  }
}

static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc) {
  const int8_t *w = (const int8_t *)b;
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

void pyrt_qgemm_init_avxvnni(pyrt_kernel_table *t) {
  pyrt_qgemm_config c = t->qgemm; /* keeps the AVX2 epilogue */
  c.mr = MR, c.nr = NR, c.kr = KR;
  c.a_width = c.b_width = 1;
  c.ukernel = ukernel;
  c.widen_a = NULL;
  t->qgemm = c;
}
