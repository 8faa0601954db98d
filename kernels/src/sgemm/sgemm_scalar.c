/* Scalar fp32 GEMM: four weight rows per pass over a block of X columns; the
   column loops auto-vectorize. Summation order: k ascending, then + bias. */
#include <string.h>

#include "internal.h"

enum { MR = 4, NB = 256 };

size_t pyrt_sgemm_weights_size_scalar(int32_t M, int32_t K) {
  return (size_t)M * (size_t)K * sizeof(float);
}

void pyrt_sgemm_pack_weights_scalar(int32_t M, int32_t K, const float *w,
                                    void *dst) {
  memcpy(dst, w, (size_t)M * (size_t)K * sizeof(float));
}

void pyrt_sgemm_scalar(int32_t M, int32_t N, int32_t K, const void *weights,
                       const float *x, int32_t ldx, const float *bias, float lo,
                       float hi, float *y, int32_t ldy) {
  const float *w = (const float *)weights;
  float acc[MR][NB];
  for (int32_t n0 = 0; n0 < N; n0 += NB) {
    const int32_t nb = N - n0 < NB ? N - n0 : NB;
    for (int32_t m0 = 0; m0 < M; m0 += MR) {
      const int32_t mr = M - m0 < MR ? M - m0 : MR;
      memset(acc, 0, sizeof acc);
      for (int32_t k = 0; k < K; k++) {
        const float *row = x + (size_t)k * (size_t)ldx + n0;
        for (int32_t r = 0; r < mr; r++) {
          const float wv = w[(size_t)(m0 + r) * (size_t)K + (size_t)k];
          float *a = acc[r];
          for (int32_t j = 0; j < nb; j++) a[j] += wv * row[j];
        }
      }
      for (int32_t r = 0; r < mr; r++) {
        const float b = bias ? bias[m0 + r] : 0.0f;
        float *dst = y + (size_t)(m0 + r) * (size_t)ldy + n0;
        for (int32_t j = 0; j < nb; j++) {
          float v = acc[r][j] + b;
          v = v < lo ? lo : v;
          dst[j] = v > hi ? hi : v;
        }
      }
    }
  }
}
