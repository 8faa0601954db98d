/* RVV fp32 GEMM: y = clamp(W x X + bias, lo, hi), the scalar's arithmetic
 * (sgemm_scalar.c) vectorized over the columns of X: per output element the
 * sum still runs over k in ascending order, each product and sum rounded
 * separately (vfmul + vfadd, never vfmacc, whose fused rounding differs).
 * Tiles: 2 rows x VLEN/4 columns (e32 LMUL 8: two accumulators, the X row
 * and a product fill the 32 registers; per k one vector load and two
 * scalar weight loads serve 2 x VLEN/4 MACs), or, when X has fewer columns
 * than a vector and than W has rows (the late, small layers of a CNN),
 * VLEN/4 rows x 2 columns the other way round. Weights are packed as W^T
 * ([K][M]) for both. The clamp compares and merges, so NaN passes through
 * and -0.0 stays, as in the scalar's `v < lo ? lo : v`.
 */
#include <riscv_vector.h>

#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Weights as W^T, [K][M]: row pairs read two scalars per k, channel vectors
   one contiguous vector. */
static size_t weights_size(int32_t M, int32_t K) {
  return (size_t)M * (size_t)K * sizeof(float);
}

static void pack_weights(int32_t M, int32_t K, const float *w, void *dst) {
  float *p = (float *)dst;
  for (int32_t k = 0; k < K; k++)
    for (int32_t m = 0; m < M; m++) *p++ = w[(size_t)m * (size_t)K + (size_t)k];
}

/* y = clamp(acc + bias, lo, hi) (bias: the vector b when has_bias, else
   + 0.0f), elements ld apart. */
static inline void finish(vfloat32m8_t acc, vfloat32m8_t b, int has_bias,
                          float lo, float hi, float *y, int32_t ld, size_t vl) {
  vfloat32m8_t v = has_bias ? __riscv_vfadd_vv_f32m8(acc, b, vl)
                            : __riscv_vfadd_vf_f32m8(acc, 0.0f, vl);
  v = __riscv_vfmerge_vfm_f32m8(v, lo, __riscv_vmflt_vf_f32m8_b4(v, lo, vl),
                                vl);
  v = __riscv_vfmerge_vfm_f32m8(v, hi, __riscv_vmfgt_vf_f32m8_b4(v, hi, vl),
                                vl);
  if (ld == 1)
    __riscv_vse32_v_f32m8(y, v, vl);
  else
    __riscv_vsse32_v_f32m8(y, (ptrdiff_t)ld * (ptrdiff_t)sizeof(float), v, vl);
}

/* Vectors over N (columns of X): tiles of 2 rows x VLEN/4 columns. */
static __attribute__((noinline)) void sgemm_rows(
    int32_t M, int32_t N, int32_t K, const float *wt, const float *x,
    int32_t ldx, const float *bias, float lo, float hi, float *y, int32_t ldy) {
  for (int32_t m0 = 0; m0 < M; m0 += 2) {
    const int two = m0 + 1 < M;
    for (int32_t n0 = 0; n0 < N;) {
      const size_t vl = __riscv_vsetvl_e32m8((size_t)(N - n0));
      vfloat32m8_t c0 = __riscv_vfmv_v_f_f32m8(0.0f, vl), c1 = c0;
      const float *xk = x + n0, *wk = wt + m0;
      for (int32_t k = 0; k < K; k++, xk += ldx, wk += M) {
        const vfloat32m8_t xv = __riscv_vle32_v_f32m8(xk, vl);
        c0 = __riscv_vfadd_vv_f32m8(c0, __riscv_vfmul_vf_f32m8(xv, wk[0], vl),
                                    vl);
        if (two)
          c1 = __riscv_vfadd_vv_f32m8(c1, __riscv_vfmul_vf_f32m8(xv, wk[1], vl),
                                      vl);
      }
      finish(c0, bias ? __riscv_vfmv_v_f_f32m8(bias[m0], vl) : c0, bias != NULL,
             lo, hi, y + (size_t)m0 * (size_t)ldy + n0, 1, vl);
      if (two)
        finish(c1, bias ? __riscv_vfmv_v_f_f32m8(bias[m0 + 1], vl) : c1,
               bias != NULL, lo, hi, y + (size_t)(m0 + 1) * (size_t)ldy + n0, 1,
               vl);
      n0 += (int32_t)vl;
    }
  }
}

/* Vectors over M (rows of W, the output channels), for few columns: tiles of
   VLEN/4 rows x 2 columns, stored with a stride. */
static __attribute__((noinline)) void sgemm_channels(
    int32_t M, int32_t N, int32_t K, const float *wt, const float *x,
    int32_t ldx, const float *bias, float lo, float hi, float *y, int32_t ldy) {
  for (int32_t m0 = 0; m0 < M;) {
    const size_t vl = __riscv_vsetvl_e32m8((size_t)(M - m0));
    const vfloat32m8_t b = bias ? __riscv_vle32_v_f32m8(bias + m0, vl)
                                : __riscv_vfmv_v_f_f32m8(0.0f, vl);
    for (int32_t n0 = 0; n0 < N; n0 += 2) {
      const int two = n0 + 1 < N;
      vfloat32m8_t c0 = __riscv_vfmv_v_f_f32m8(0.0f, vl), c1 = c0;
      const float *xk = x + n0, *wk = wt + m0;
      for (int32_t k = 0; k < K; k++, xk += ldx, wk += M) {
        const vfloat32m8_t wv = __riscv_vle32_v_f32m8(wk, vl);
        c0 = __riscv_vfadd_vv_f32m8(c0, __riscv_vfmul_vf_f32m8(wv, xk[0], vl),
                                    vl);
        if (two)
          c1 = __riscv_vfadd_vv_f32m8(c1, __riscv_vfmul_vf_f32m8(wv, xk[1], vl),
                                      vl);
      }
      float *dst = y + (size_t)m0 * (size_t)ldy + n0;
      finish(c0, b, 1, lo, hi, dst, ldy, vl);
      if (two) finish(c1, b, 1, lo, hi, dst + 1, ldy, vl);
    }
    m0 += (int32_t)vl;
  }
}

static void sgemm(int32_t M, int32_t N, int32_t K, const void *weights,
                  const float *x, int32_t ldx, const float *bias, float lo,
                  float hi, float *y, int32_t ldy) {
  const float *wt = (const float *)weights;
  if (N < M && (size_t)N < __riscv_vsetvlmax_e32m8())
    sgemm_channels(M, N, K, wt, x, ldx, bias, lo, hi, y, ldy);
  else
    sgemm_rows(M, N, K, wt, x, ldx, bias, lo, hi, y, ldy);
}

void pyrt_sgemm_init_rvv(pyrt_kernel_table *t) {
  t->sgemm_weights_size = weights_size;
  t->sgemm_pack_weights = pack_weights;
  t->sgemm = sgemm;
}
