/* Scalar int8 GEMM tile, the reference every SIMD tile must match: a 4 x 16
 * tile over K groups of 1, accumulated in uint32 so that overflow wraps
 * (ONNX accumulates in int32) instead of being undefined. The loops over the
 * tile's columns auto-vectorize. Also the scalar epilogue, the one
 * definition SIMD epilogues reproduce.
 */
#include "requant/requant.h"

enum { MR = 4, NR = 16 };

static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc, uint8_t flip) {
  uint32_t sum[MR][NR] = {{0}};
  const int8_t *w = (const int8_t *)b;
  for (int32_t k = 0; k < kp; k++, w += NR)
    for (int32_t r = 0; r < mr; r++) {
      const uint32_t av = a[(size_t)r * lda + (size_t)k] ^ flip;
      for (int32_t j = 0; j < NR; j++) sum[r][j] += av * (uint32_t)w[j];
    }
  for (int32_t r = 0; r < mr; r++)
    for (int32_t j = 0; j < NR; j++) acc[r * NR + j] = (int32_t)sum[r][j];
}

void pyrt_qgemm_epilogue_scalar(int32_t mr, int32_t nr, const int32_t *acc,
                                int32_t ld_acc, const int32_t *fixed,
                                const int32_t *w_zero, const int32_t *row_sum,
                                const float *scale,
                                const pyrt_output_stage *out, void *y,
                                size_t ldy) {
  int32_t v[256];
  for (int32_t r = 0; r < mr; r++) {
    for (int32_t j0 = 0; j0 < nr; j0 += 256) {
      const int32_t n = nr - j0 < 256 ? nr - j0 : 256;
      for (int32_t j = 0; j < n; j++) {
        uint32_t t =
            (uint32_t)acc[r * ld_acc + j0 + j] + (uint32_t)fixed[j0 + j];
        if (w_zero) t -= (uint32_t)w_zero[j0 + j] * (uint32_t)row_sum[r];
        v[j] = (int32_t)t;
      }
      pyrt_output_channels(v, n, out->per_channel ? scale + j0 : scale,
                           out->per_channel, out, y,
                           (int64_t)((size_t)r * ldy) + j0);
    }
  }
}

void pyrt_init_scalar(pyrt_kernel_table *t) {
  t->qgemm = (pyrt_qgemm_config){
      MR, NR, 1, 1, 1, ukernel, NULL, pyrt_qgemm_epilogue_scalar, NULL, NULL};
}
