/* RVV fp32 GEMM: y = clamp(W x X + bias, lo, hi), the scalar's arithmetic
 * (sgemm_scalar.c) vectorized over the columns of X: per output element the
 * sum still runs over k in ascending order, each product and sum rounded
 * separately (vfmul + vfadd, never vfmacc, whose fused rounding differs).
 * Tile: 2 rows x VLEN/4 columns (e32 LMUL 8: two accumulators, the X row
 * and a product fill the 32 registers); per k one vector load and two
 * scalar weight loads serve 2 x VLEN/4 MACs. Weights are packed k-major in
 * panels of 2 rows. The clamp compares and merges, so NaN passes through and
 * -0.0 stays, as in the scalar's `v < lo ? lo : v`.
 */
#include <riscv_vector.h>

#include "internal.h"

enum { MR = 2 };

static size_t weights_size(int32_t M, int32_t K) {
  return ((size_t)M + MR - 1) / MR * MR * (size_t)K * sizeof(float);
}

static void pack_weights(int32_t M, int32_t K, const float *w, void *dst) {
  float *p = (float *)dst;
  for (int32_t m0 = 0; m0 < M; m0 += MR)
    for (int32_t k = 0; k < K; k++)
      for (int32_t r = 0; r < MR; r++)
        *p++ = m0 + r < M ? w[(size_t)(m0 + r) * (size_t)K + (size_t)k] : 0.0f;
}

static inline void finish(vfloat32m8_t acc, const float *bias, int32_t m,
                          float lo, float hi, float *y, size_t vl) {
  vfloat32m8_t v = __riscv_vfadd_vf_f32m8(acc, bias ? bias[m] : 0.0f, vl);
  v = __riscv_vfmerge_vfm_f32m8(v, lo, __riscv_vmflt_vf_f32m8_b4(v, lo, vl),
                                vl);
  v = __riscv_vfmerge_vfm_f32m8(v, hi, __riscv_vmfgt_vf_f32m8_b4(v, hi, vl),
                                vl);
  __riscv_vse32_v_f32m8(y, v, vl);
}

static void sgemm(int32_t M, int32_t N, int32_t K, const void *weights,
                  const float *x, int32_t ldx, const float *bias, float lo,
                  float hi, float *y, int32_t ldy) {
  const float *w = (const float *)weights;
  for (int32_t m0 = 0; m0 < M; m0 += MR) {
    const float *panel = w + (size_t)m0 * (size_t)K;
    const int two = m0 + 1 < M;
    for (int32_t n0 = 0; n0 < N;) {
      const size_t vl = __riscv_vsetvl_e32m8((size_t)(N - n0));
      vfloat32m8_t c0 = __riscv_vfmv_v_f_f32m8(0.0f, vl), c1 = c0;
      const float *xk = x + n0;
      for (int32_t k = 0; k < K; k++, xk += ldx) {
        const vfloat32m8_t xv = __riscv_vle32_v_f32m8(xk, vl);
        c0 = __riscv_vfadd_vv_f32m8(
            c0, __riscv_vfmul_vf_f32m8(xv, panel[2 * k], vl), vl);
        if (two)
          c1 = __riscv_vfadd_vv_f32m8(
              c1, __riscv_vfmul_vf_f32m8(xv, panel[2 * k + 1], vl), vl);
      }
      finish(c0, bias, m0, lo, hi, y + (size_t)m0 * (size_t)ldy + n0, vl);
      if (two)
        finish(c1, bias, m0 + 1, lo, hi,
               y + (size_t)(m0 + 1) * (size_t)ldy + n0, vl);
      n0 += (int32_t)vl;
    }
  }
}

void pyrt_sgemm_init_rvv(pyrt_kernel_table *t) {
  t->sgemm_weights_size = weights_size;
  t->sgemm_pack_weights = pack_weights;
  t->sgemm = sgemm;
}
