/* RVV requantize (int32 rows to u8/s8, one scale per row), with
 * requant_rvv.h's float steps; S32 and F32 outputs take the scalar kernel.
 */
#include "requant/requant_rvv.h"

static void requantize(int64_t rows, int64_t cols, int32_t channels,
                       const int32_t *acc, const pyrt_output_stage *out,
                       void *y) {
  if (out->out_dtype != PYRT_U8 && out->out_dtype != PYRT_S8) {
    pyrt_requantize_scalar(rows, cols, channels, acc, out, y);
    return;
  }
  int8_t *dst = y;
  for (int64_t r = 0; r < rows; r++) {
    const float scale = pyrt_stage_scale(out, r % channels);
    for (int64_t n = cols; n > 0;) {
      const size_t vl = __riscv_vsetvl_e32m8((size_t)n);
      const vint8m2_t q = pyrt_rvv_requant(
          __riscv_vle32_v_i32m8(acc, vl), __riscv_vfmv_v_f_f32m8(scale, vl),
          out->zero_point, out->qmin, out->qmax, vl);
      __riscv_vse8_v_i8m2(dst, q, vl);
      n -= (int64_t)vl, acc += vl, dst += vl;
    }
  }
}

void pyrt_requant_init_rvv(pyrt_kernel_table *t) {
  t->requantize = requantize;
}
