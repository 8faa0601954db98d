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
    const __m256i av = _mm256_xor_si256(_mm256_set1_epi32(word), fx); \
    x0 = _mm256_dpbusd_avx_epi32(x0, av, b0);                         \
    x1 = _mm256_dpbusd_avx_epi32(x1, av, b1);                         \
  } while (0)

/* Named accumulators, not arrays, so that they stay in registers. */
static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc, uint8_t flip) {
  const __m256i fx = _mm256_set1_epi8((char)flip);
  const int8_t *w = (const int8_t *)b;
  const uint8_t *a0 = a, *a1 = row(a, lda, 1, mr), *a2 = row(a, lda, 2, mr),
                *a3 = row(a, lda, 3, mr), *a4 = row(a, lda, 4, mr),
                *a5 = row(a, lda, 5, mr);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00,
          c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
          c50 = c00, c51 = c00;
  for (int32_t k = 0; k < kp; k += KR, w += NR * KR) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)w);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + 32));
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

void pyrt_qgemm_init_avxvnni(pyrt_kernel_table *t) {
  pyrt_qgemm_config c = t->qgemm; /* keeps the AVX2 epilogue */
  c.mr = MR, c.nr = NR, c.kr = KR;
  c.a_width = c.b_width = 1;
  c.ukernel = ukernel;
  c.widen_a = NULL;
  t->qgemm = c;
}
