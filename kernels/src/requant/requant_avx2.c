/* AVX2 pyrt_requantize: one channel per row, 8 columns at a time. */
#include "requant/requant_avx2.h"

static void requantize(int64_t rows, int64_t cols, int32_t channels,
                       const int32_t *acc, const pyrt_output_stage *out,
                       void *y) {
  const pyrt_avx2_stage k = pyrt_avx2_stage_init(out);
  for (int64_t r = 0; r < rows; r++) {
    const __m256 s = _mm256_set1_ps(pyrt_stage_scale(out, r % channels));
    const int32_t *row = acc + r * cols;
    for (int64_t c = 0; c < cols; c += 8) {
      const int32_t n = cols - c < 8 ? (int32_t)(cols - c) : 8;
      pyrt_avx2_output(pyrt_avx2_load_epi32(row + c, n), n, s, &k, y,
                       (size_t)(r * cols + c));
    }
  }
}

void pyrt_requant_init_avx2(pyrt_kernel_table *t) {
  t->requantize = requantize;
}
