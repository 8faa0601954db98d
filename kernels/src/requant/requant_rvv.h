/* The RVV form of requant.h's output step, shared by the *_rvv.c kernels.
   Included only by files compiled with RVV flags. */
#ifndef PYRT_REQUANT_RVV_H
#define PYRT_REQUANT_RVV_H

#include <riscv_vector.h>

#include "requant/requant.h"

/* Codes of rintf(x) + zero clamped to [qmin, qmax], as the bytes of a u8 or
   s8 output. vfcvt rounds to nearest even (the dynamic rounding mode, as
   rintf) and saturates; clamping to [qmin - zero, qmax - zero] before adding
   the zero point gives the scalar's float clamp for every non-NaN x. */
static inline vint8m2_t pyrt_rvv_round_codes(vfloat32m8_t x, int32_t zero,
                                             int32_t qmin, int32_t qmax,
                                             size_t vl) {
  vint32m8_t q = __riscv_vfcvt_x_f_v_i32m8(x, vl);
  q = __riscv_vmax_vx_i32m8(q, qmin - zero, vl);
  q = __riscv_vmin_vx_i32m8(q, qmax - zero, vl);
  q = __riscv_vadd_vx_i32m8(q, zero, vl);
  return __riscv_vncvt_x_x_w_i8m2(__riscv_vncvt_x_x_w_i16m4(q, vl), vl);
}

/* pyrt_requant_value on vl accumulators: (float)acc * scale (both round to
   nearest even, no fused multiply-add), then pyrt_rvv_round_codes. */
static inline vint8m2_t pyrt_rvv_requant(vint32m8_t acc, vfloat32m8_t scale,
                                         int32_t zero, int32_t qmin,
                                         int32_t qmax, size_t vl) {
  const vfloat32m8_t x =
      __riscv_vfmul_vv_f32m8(__riscv_vfcvt_f_x_v_f32m8(acc, vl), scale, vl);
  return pyrt_rvv_round_codes(x, zero, qmin, qmax, vl);
}

#endif
