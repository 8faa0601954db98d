/* Scalar fp32 GEMM tile (4 x 8) and depthwise kernel: portable C11, the
 * reference every SIMD tile must match bit for bit. The arithmetic is the
 * one definition in internal.h: acc starts at the bias (or the parked
 * partial sum), then acc = fmaf(a, b, acc) for k ascending, then the
 * NaN-passing clamp. fmaf is exactly rounded in C11 (a libm call, or one
 * instruction where the target has it), and -ffp-contract=off keeps the
 * compiler from fusing anything else.
 */
#include <math.h>

#include "internal.h"

enum { MR = 4, NR = 8, KC = 256 };

static float clamp_to(float v, const float *clamp) {
  v = clamp[0] > v ? clamp[0] : v;
  return clamp[1] < v ? clamp[1] : v;
}

static void ukernel(int32_t mr, int32_t nr, int32_t kc, const float *a,
                    size_t lda, const float *b, const float *init,
                    const float *clamp, float *y, size_t ldy) {
  float acc[MR][NR];
  for (int32_t r = 0; r < mr; r++)
    for (int32_t j = 0; j < NR; j++)
      acc[r][j] = init ? init[j] : j < nr ? y[(size_t)r * ldy + j] : 0.0f;
  for (int32_t k = 0; k < kc; k++, b += NR)
    for (int32_t r = 0; r < mr; r++) {
      const float av = a[(size_t)r * lda + (size_t)k];
      for (int32_t j = 0; j < NR; j++) acc[r][j] = fmaf(av, b[j], acc[r][j]);
    }
  for (int32_t r = 0; r < mr; r++)
    for (int32_t j = 0; j < nr; j++)
      y[(size_t)r * ldy + j] = clamp ? clamp_to(acc[r][j], clamp) : acc[r][j];
}

static void dwconv(int32_t channels, int32_t taps, const float *const *x,
                   const float *const *w, int32_t pixels, size_t x_step,
                   const float *bias, const float *clamp, float *y) {
  for (int32_t p = 0; p < pixels; p++, y += channels) {
    const size_t at = (size_t)p * x_step;
    for (int32_t c = 0; c < channels; c++) {
      float acc = bias[c];
      for (int32_t i = 0; i < taps; i++) acc = fmaf(x[i][at + c], w[i][c], acc);
      y[c] = clamp_to(acc, clamp);
    }
  }
}

void pyrt_sgemm_init_scalar(pyrt_kernel_table *t) {
  t->sgemm = (pyrt_sgemm_config){MR, NR, KC, ukernel};
  t->sdwconv = (pyrt_sdwconv_config){dwconv};
}
