/* AVX-512 pyrt_requantize: one channel per row, 16 columns at a time. */
#include "requant/requant_avx512.h"

static void requantize(int64_t rows, int64_t cols, int32_t channels,
                       const int32_t *acc, const pyrt_output_stage *out,
                       void *y) {
  const pyrt_avx512_stage k = pyrt_avx512_stage_init(out);
  for (int64_t r = 0; r < rows; r++) {
    const __m512 s = _mm512_set1_ps(pyrt_stage_scale(out, r % channels));
    const int32_t *row = acc + r * cols;
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m =
          pyrt_avx512_mask(cols - c < 16 ? (int32_t)(cols - c) : 16);
      pyrt_avx512_output(_mm512_maskz_loadu_epi32(m, row + c), m, s, &k, y,
                         (size_t)(r * cols + c));
    }
  }
}

void pyrt_requant_init_avx512vnni(pyrt_kernel_table *t) {
  t->requantize = requantize;
}
