/* Scalar int8 GEMM: y[M][N] = W[M][K] x X[K][N], the reference kernel.
 *
 * Weights stay [M][K] s8. Four weight rows share each pass over a block of
 * NB columns of X, so X is read once per 4 output channels; the inner loops
 * over columns auto-vectorize. Accumulation is in uint32 so that overflow
 * wraps (ONNX accumulates in int32) instead of being undefined.
 */
#include <string.h>

#include "requant/requant.h"

enum { MR = 4, NB = 128 };

size_t pyrt_qgemm_weights_size_scalar(int32_t M, int32_t K) {
  return (size_t)M * (size_t)K;
}

void pyrt_qgemm_pack_weights_scalar(int32_t M, int32_t K, const int8_t *w_s8,
                                    void *dst) {
  memcpy(dst, w_s8, (size_t)M * (size_t)K);
}

/* acc[r][j] += sum_k w[r][k] * x[k][j] for rows r < mr, columns j < nb. */
#define PYRT_QGEMM_BLOCK(XT)                                                 \
  static void block_##XT(int32_t mr, int32_t nb, int32_t K, const int8_t *w, \
                         const XT *x, int32_t ldx, uint32_t acc[MR][NB]) {   \
    for (int32_t k = 0; k < K; k++) {                                        \
      const XT *row = x + (size_t)k * (size_t)ldx;                           \
      for (int32_t r = 0; r < mr; r++) {                                     \
        const int32_t wv = w[(size_t)r * (size_t)K + (size_t)k];             \
        uint32_t *a = acc[r];                                                \
        for (int32_t j = 0; j < nb; j++) a[j] += (uint32_t)(wv * row[j]);    \
      }                                                                      \
    }                                                                        \
  }
PYRT_QGEMM_BLOCK(uint8_t)
PYRT_QGEMM_BLOCK(int8_t)

int pyrt_qgemm_scalar(int32_t M, int32_t N, int32_t K, const void *packed,
                      const void *x, int32_t x_dtype, int32_t x_zero,
                      int32_t ldx, const int32_t *bias,
                      const pyrt_output_stage *out, void *y, int32_t ldy) {
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  const int8_t *w = (const int8_t *)pyrt_pack_weights(packed);
  const int32_t *row_sum = pyrt_pack_row_sum(packed);
  const int32_t *w_zero = pyrt_pack_w_zero(packed);
  uint32_t acc[MR][NB];
  uint32_t col_sum[NB];
  int32_t result[NB];
  for (int32_t n0 = 0; n0 < N; n0 += NB) {
    const int32_t nb = N - n0 < NB ? N - n0 : NB;
    if (h->has_w_zero) { /* sum_k x[k][j], for the weight zero point term */
      memset(col_sum, 0, sizeof col_sum);
      for (int32_t k = 0; k < K; k++) {
        const size_t at = (size_t)k * (size_t)ldx + (size_t)n0;
        for (int32_t j = 0; j < nb; j++)
          col_sum[j] +=
              x_dtype == PYRT_U8
                  ? (uint32_t)((const uint8_t *)x)[at + (size_t)j]
                  : (uint32_t)(int32_t)((const int8_t *)x)[at + (size_t)j];
      }
    }
    for (int32_t m0 = 0; m0 < M; m0 += MR) {
      const int32_t mr = M - m0 < MR ? M - m0 : MR;
      memset(acc, 0, sizeof acc);
      const int8_t *wm = w + (size_t)m0 * (size_t)K;
      if (x_dtype == PYRT_U8)
        block_uint8_t(mr, nb, K, wm, (const uint8_t *)x + n0, ldx, acc);
      else
        block_int8_t(mr, nb, K, wm, (const int8_t *)x + n0, ldx, acc);
      for (int32_t r = 0; r < mr; r++) {
        const int32_t m = m0 + r;
        /* sum (w - zw)(x - zx) = sum wx - zx sum w - zw sum x + K zx zw */
        const uint32_t zw = (uint32_t)w_zero[m], zx = (uint32_t)x_zero;
        const uint32_t fixed = (bias ? (uint32_t)bias[m] : 0u) -
                               zx * (uint32_t)row_sum[m] +
                               (uint32_t)K * zx * zw;
        for (int32_t j = 0; j < nb; j++) {
          uint32_t v = acc[r][j] + fixed;
          if (h->has_w_zero) v -= zw * col_sum[j];
          result[j] = (int32_t)v;
        }
        pyrt_output_row(result, nb, pyrt_stage_scale(out, m), out, y,
                        (int64_t)m * ldy + n0);
      }
    }
  }
  return PYRT_OK;
}
