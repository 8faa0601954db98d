/* AVX2 256-entry lookup table: 32 codes per step, the table as 16 rows of
 * 16 bytes; vpshufb looks up the low nibble in every row and the row of the
 * high nibble is kept (vpcmpeqb + vpblendvb). Exact by construction. */
#include <immintrin.h>

#include "internal.h"

static void lut8(int64_t n, const uint8_t *table, const uint8_t *x,
                 uint8_t *y) {
  __m256i rows[16];
  for (int h = 0; h < 16; h++)
    rows[h] = _mm256_broadcastsi128_si256(
        _mm_loadu_si128((const __m128i *)(table + 16 * h)));
  const __m256i low = _mm256_set1_epi8(0x0f);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
    const __m256i lo = _mm256_and_si256(v, low);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    __m256i out = _mm256_shuffle_epi8(rows[0], lo);
    for (int h = 1; h < 16; h++)
      out =
          _mm256_blendv_epi8(out, _mm256_shuffle_epi8(rows[h], lo),
                             _mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)h)));
    _mm256_storeu_si256((__m256i *)(y + i), out);
  }
  pyrt_lut8_scalar(n - i, table, x + i, y + i);
}

void pyrt_layout_init_avx2(pyrt_kernel_table *t) {
  t->lut8 = lut8;
}
