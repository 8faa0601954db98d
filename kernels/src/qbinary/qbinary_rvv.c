/* RVV int8 Add / Mul: the scalar's float arithmetic (qbinary_scalar.c) on
 * VLEN/4 elements at a time (e8 LMUL 2 widened to f32 LMUL 8): the same
 * conversions, products and sums, each rounded to nearest even, no fused
 * multiply-add, then requant_rvv.h's rounding and clamp.
 */
#include "requant/requant_rvv.h"

/* (float)p[i] - zero for vl codes (exact). */
static inline vfloat32m8_t widen(const void *p, int32_t dtype, float zero,
                                 size_t vl) {
  vint32m8_t v;
  if (dtype == PYRT_U8)
    v = __riscv_vreinterpret_v_u32m8_i32m8(
        __riscv_vzext_vf4_u32m8(__riscv_vle8_v_u8m2(p, vl), vl));
  else
    v = __riscv_vsext_vf4_i32m8(__riscv_vle8_v_i8m2(p, vl), vl);
  return __riscv_vfsub_vf_f32m8(__riscv_vfcvt_f_x_v_f32m8(v, vl), zero, vl);
}

/* a: [rows][cols]; b: one row of cols (b_step 1) or one value (b_step 0). */
static void qbinary(int32_t op, int64_t rows, int64_t cols, const void *a,
                    const pyrt_qparams *qa, const void *b, int32_t b_step,
                    const pyrt_qparams *qb, void *y, const pyrt_qparams *qy,
                    int32_t qmin, int32_t qmax) {
  const float ma = qa->scale / qy->scale, mb = qb->scale / qy->scale;
  const float mab = qa->scale * qb->scale / qy->scale;
  const float za = (float)qa->zero_point, zb = (float)qb->zero_point;
  const float b0 = (qb->dtype == PYRT_U8 ? (float)*(const uint8_t *)b
                                         : (float)*(const int8_t *)b) -
                   zb;
  const char *pa = a;
  int8_t *py = y;
  for (int64_t r = 0; r < rows; r++) {
    const char *pb = b;
    for (int64_t n = cols; n > 0;) {
      const size_t vl = __riscv_vsetvl_e32m8((size_t)n);
      const vfloat32m8_t va = widen(pa, qa->dtype, za, vl);
      const vfloat32m8_t vb = b_step ? widen(pb, qb->dtype, zb, vl)
                                     : __riscv_vfmv_v_f_f32m8(b0, vl);
      vfloat32m8_t v;
      if (op == PYRT_ADD)
        v = __riscv_vfadd_vv_f32m8(__riscv_vfmul_vf_f32m8(va, ma, vl),
                                   __riscv_vfmul_vf_f32m8(vb, mb, vl), vl);
      else
        v = __riscv_vfmul_vf_f32m8(__riscv_vfmul_vv_f32m8(va, vb, vl), mab, vl);
      __riscv_vse8_v_i8m2(
          py, pyrt_rvv_round_codes(v, qy->zero_point, qmin, qmax, vl), vl);
      n -= (int64_t)vl, pa += vl, py += vl;
      if (b_step) pb += vl;
    }
  }
}

void pyrt_qbinary_init_rvv(pyrt_kernel_table *t) {
  t->qbinary = qbinary;
}
