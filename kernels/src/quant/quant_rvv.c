/* RVV QuantizeLinear / DequantizeLinear of runs that share one scale and
 * zero point (step 0: per tensor, per axis), VLEN/4 elements at a time, with
 * the scalar's arithmetic (quant_scalar.c): quantize divides (no reciprocal),
 * rounds to nearest even, maps NaN to the zero point and saturates; dequantize
 * converts (q - zero) exactly and multiplies. Runs with per-element parameters
 * and S32 dequantization take the scalar ones.
 */
#include "requant/requant_rvv.h"

static int32_t load_zero(const void *zero, int32_t dtype, int64_t at) {
  if (zero == NULL) return 0;
  return dtype == PYRT_U8 ? ((const uint8_t *)zero)[at]
                          : ((const int8_t *)zero)[at];
}

static void quantize_row(int64_t n, const float *x, float scale, int32_t zero,
                         int32_t lo, int32_t hi, int8_t *y) {
  for (size_t vl; n > 0; n -= (int64_t)vl, x += vl, y += vl) {
    vl = __riscv_vsetvl_e32m8((size_t)n);
    const vfloat32m8_t v = __riscv_vle32_v_f32m8(x, vl);
    const vbool4_t nan = __riscv_vmfne_vv_f32m8_b4(v, v, vl);
    vint8m2_t q = pyrt_rvv_round_codes(__riscv_vfdiv_vf_f32m8(v, scale, vl),
                                       zero, lo, hi, vl);
    q = __riscv_vmerge_vxm_i8m2(q, (int8_t)zero, nan, vl);
    __riscv_vse8_v_i8m2(y, q, vl);
  }
}

static void quantize(int64_t n, const float *x, const float *scale,
                     const void *zero, int64_t step, int32_t out_dtype,
                     void *y) {
  if (step != 0) {
    pyrt_quantize_scalar(n, x, scale, zero, step, out_dtype, y);
    return;
  }
  const int32_t lo = out_dtype == PYRT_U8 ? 0 : -128;
  quantize_row(n, x, scale[0], load_zero(zero, out_dtype, 0), lo, lo + 255,
               (int8_t *)y);
}

static void dequantize_row(int64_t n, const void *x, int32_t dtype, float scale,
                           int32_t zero, float *y) {
  const char *p = x;
  for (size_t vl; n > 0; n -= (int64_t)vl, p += vl, y += vl) {
    vl = __riscv_vsetvl_e32m8((size_t)n);
    vint32m8_t v;
    if (dtype == PYRT_U8)
      v = __riscv_vreinterpret_v_u32m8_i32m8(__riscv_vzext_vf4_u32m8(
          __riscv_vle8_v_u8m2((const uint8_t *)p, vl), vl));
    else
      v = __riscv_vsext_vf4_i32m8(__riscv_vle8_v_i8m2((const int8_t *)p, vl),
                                  vl);
    v = __riscv_vsub_vx_i32m8(v, zero, vl);
    __riscv_vse32_v_f32m8(
        y, __riscv_vfmul_vf_f32m8(__riscv_vfcvt_f_x_v_f32m8(v, vl), scale, vl),
        vl);
  }
}

static void dequantize(int64_t n, const void *x, int32_t x_dtype,
                       const float *scale, const void *zero, int64_t step,
                       float *y) {
  if (step != 0 || x_dtype == PYRT_S32) {
    pyrt_dequantize_scalar(n, x, x_dtype, scale, zero, step, y);
    return;
  }
  dequantize_row(n, x, x_dtype, scale[0], load_zero(zero, x_dtype, 0), y);
}

void pyrt_quant_init_rvv(pyrt_kernel_table *t) {
  t->quantize = quantize;
  t->dequantize = dequantize;
}
