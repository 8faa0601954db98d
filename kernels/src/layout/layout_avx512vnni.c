/* AVX-512 256-entry lookup table where the CPU has VBMI (Ice Lake, Zen 4 and
 * later): 64 codes per step, two vpermi2b lookups of 128 entries each and
 * the sign bit picking between them. Without VBMI the AVX2 table stays.
 * Exact by construction. */
#include <immintrin.h>

#include "internal.h"

__attribute__((target("avx512vbmi"))) static void lut8(int64_t n,
                                                       const uint8_t *table,
                                                       const uint8_t *x,
                                                       uint8_t *y) {
  const __m512i t0 = _mm512_loadu_si512(table),
                t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128);
  const __m512i t3 = _mm512_loadu_si512(table + 192);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v = _mm512_loadu_si512(x + i);
    const __m512i low = _mm512_permutex2var_epi8(t0, v, t1); /* 7 index bits */
    const __m512i high = _mm512_permutex2var_epi8(t2, v, t3);
    _mm512_storeu_si512(
        y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), low, high));
  }
  pyrt_lut8_scalar(n - i, table, x + i, y + i);
}

void pyrt_layout_init_avx512vnni(pyrt_kernel_table *t) {
  if (__builtin_cpu_supports("avx512vbmi")) t->lut8 = lut8;
}
