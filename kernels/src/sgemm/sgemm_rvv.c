/* RVV fp32 GEMM tile: 3 rows x VLEN/4 columns (e32 LMUL 8) under the fp32
 * driver, and the depthwise kernel vectorized over channels.
 *
 * Per k the tile loads one row of the packed panel (VLEN/4 floats) and, per
 * tile row, multiplies it by a[r][k] with one vfmacc.vf: the exactly rounded
 * fused multiply-add of the scalar reference (internal.h), so results are
 * bit-exact with sgemm_scalar.c. Three m8 accumulators and the m8 panel row
 * fill the 32 registers. The clamp compares and merges (`lo > v ? lo : v`),
 * so NaN passes through and -0.0 stays, as in the reference. Columns past
 * nr are neither read from nor written to y.
 */
#include <riscv_vector.h>

#include "internal.h"

enum { MR = 3, KC = 256 };

static inline vfloat32m8_t clamp_to(vfloat32m8_t v, const float *clamp,
                                    size_t vl) {
  v = __riscv_vfmerge_vfm_f32m8(v, clamp[0],
                                __riscv_vmflt_vf_f32m8_b4(v, clamp[0], vl), vl);
  return __riscv_vfmerge_vfm_f32m8(
      v, clamp[1], __riscv_vmfgt_vf_f32m8_b4(v, clamp[1], vl), vl);
}

static inline __attribute__((always_inline)) void tile(
    const int mr, int32_t nr, int32_t kc, const float *a, size_t lda,
    const float *b, const float *init, const float *clamp, float *y,
    size_t ldy) {
  const size_t vl = __riscv_vsetvlmax_e32m8(), out = (size_t)nr;
  vfloat32m8_t c0, c1, c2;
  if (init) {
    c0 = c1 = c2 = __riscv_vle32_v_f32m8(init, vl);
  } else {
    c0 = __riscv_vle32_v_f32m8(y, out);
    c1 = mr > 1 ? __riscv_vle32_v_f32m8(y + ldy, out) : c0;
    c2 = mr > 2 ? __riscv_vle32_v_f32m8(y + 2 * ldy, out) : c0;
  }
  const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda;
  for (int32_t k = 0; k < kc; k++, b += vl) {
    const vfloat32m8_t w = __riscv_vle32_v_f32m8(b, vl);
    c0 = __riscv_vfmacc_vf_f32m8(c0, a0[k], w, vl);
    if (mr > 1) c1 = __riscv_vfmacc_vf_f32m8(c1, a1[k], w, vl);
    if (mr > 2) c2 = __riscv_vfmacc_vf_f32m8(c2, a2[k], w, vl);
  }
  if (clamp) {
    c0 = clamp_to(c0, clamp, out);
    if (mr > 1) c1 = clamp_to(c1, clamp, out);
    if (mr > 2) c2 = clamp_to(c2, clamp, out);
  }
  __riscv_vse32_v_f32m8(y, c0, out);
  if (mr > 1) __riscv_vse32_v_f32m8(y + ldy, c1, out);
  if (mr > 2) __riscv_vse32_v_f32m8(y + 2 * ldy, c2, out);
}

static void ukernel(int32_t mr, int32_t nr, int32_t kc, const float *a,
                    size_t lda, const float *b, const float *init,
                    const float *clamp, float *y, size_t ldy) {
  if (mr >= 3)
    tile(3, nr, kc, a, lda, b, init, clamp, y, ldy);
  else if (mr == 2)
    tile(2, nr, kc, a, lda, b, init, clamp, y, ldy);
  else
    tile(1, nr, kc, a, lda, b, init, clamp, y, ldy);
}

static void dwconv(int32_t channels, int32_t taps, const float *const *x,
                   const float *const *w, int32_t pixels, size_t x_step,
                   const float *bias, const float *clamp, float *y) {
  for (int32_t p = 0; p < pixels; p++, y += channels) {
    const size_t at = (size_t)p * x_step;
    for (int32_t c = 0; c < channels;) {
      const size_t vl = __riscv_vsetvl_e32m8((size_t)(channels - c));
      vfloat32m8_t acc = __riscv_vle32_v_f32m8(bias + c, vl);
      for (int32_t i = 0; i < taps; i++)
        acc = __riscv_vfmacc_vv_f32m8(acc, __riscv_vle32_v_f32m8(w[i] + c, vl),
                                      __riscv_vle32_v_f32m8(x[i] + at + c, vl),
                                      vl);
      __riscv_vse32_v_f32m8(y + c, clamp_to(acc, clamp, vl), vl);
      c += (int32_t)vl;
    }
  }
}

void pyrt_sgemm_init_rvv(pyrt_kernel_table *t) {
  const int32_t nr = (int32_t)__riscv_vsetvlmax_e32m8();
  t->sgemm = (pyrt_sgemm_config){MR, nr, KC, ukernel};
  t->sdwconv = (pyrt_sdwconv_config){dwconv};
}
