/* RVV depthwise Conv2D, NHWC: the scalar's weights layout ([taps][C] s8) and
 * arithmetic, vectorized over channels, VLEN/4 at a time. Per tap,
 * (x - x_zero) and (w - w_zero) are widened to s16 (both within
 * [-255, 255]) and one vwmacc.vv adds their products to e32 accumulators
 * (wrapping like the scalar's uint32 sums); then bias and requant_rvv.h's
 * output step. S32 / F32 outputs take the scalar kernel.
 */
#include "requant/requant_rvv.h"

static void (*scalar_run)(const pyrt_conv2d_shape *s, const void *packed,
                          const uint8_t *x, int32_t x_flip, int32_t x_zero,
                          const int32_t *bias, const pyrt_output_stage *out,
                          void *y, int32_t r0, int32_t r1, void *scratch);

static void run(const pyrt_conv2d_shape *s, const void *packed,
                const uint8_t *x, int32_t x_flip, int32_t x_zero,
                const int32_t *bias, const pyrt_output_stage *out, void *y,
                int32_t r0, int32_t r1, void *scratch) {
  if (out->out_dtype != PYRT_U8 && out->out_dtype != PYRT_S8) {
    scalar_run(s, packed, x, x_flip, x_zero, bias, out, y, r0, r1, scratch);
    return;
  }
  const int8_t *w = (const int8_t *)pyrt_pack_weights(packed);
  const int32_t *w_zero = pyrt_pack_w_zero(packed);
  const int32_t C = s->in_c, ow = s->out_w;
  const uint8_t flip = (uint8_t)x_flip;
  for (int32_t r = r0; r < r1; r++) {
    const int32_t b = r / s->out_h, oy = r % s->out_h;
    for (int32_t ox = 0; ox < ow; ox++) {
      for (int32_t c0 = 0; c0 < C;) {
        const size_t vl = __riscv_vsetvl_e32m8((size_t)(C - c0));
        const vint16m4_t wz = __riscv_vncvt_x_x_w_i16m4(
            __riscv_vle32_v_i32m8(w_zero + c0, vl), vl);
        vint32m8_t acc = bias ? __riscv_vle32_v_i32m8(bias + c0, vl)
                              : __riscv_vmv_v_x_i32m8(0, vl);
        for (int32_t ky = 0; ky < s->kernel_h; ky++) {
          const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
          if (iy < 0 || iy >= s->in_h) continue;
          for (int32_t kx = 0; kx < s->kernel_w; kx++) {
            const int32_t ix =
                ox * s->stride_w - s->pad_left + kx * s->dilation_w;
            if (ix < 0 || ix >= s->in_w) continue;
            const uint8_t *src =
                x +
                (((size_t)b * s->in_h + (size_t)iy) * s->in_w + (size_t)ix) *
                    C +
                c0;
            const int8_t *wt =
                w + (size_t)(ky * s->kernel_w + kx) * (size_t)C + c0;
            const vuint8m2_t xb =
                __riscv_vxor_vx_u8m2(__riscv_vle8_v_u8m2(src, vl), flip, vl);
            const vint16m4_t xv =
                __riscv_vsub_vx_i16m4(__riscv_vreinterpret_v_u16m4_i16m4(
                                          __riscv_vzext_vf2_u16m4(xb, vl)),
                                      (int16_t)x_zero, vl);
            const vint16m4_t wv = __riscv_vsub_vv_i16m4(
                __riscv_vsext_vf2_i16m4(__riscv_vle8_v_i8m2(wt, vl), vl), wz,
                vl);
            acc = __riscv_vwmacc_vv_i32m8(acc, xv, wv, vl);
          }
        }
        const vfloat32m8_t scale =
            out->per_channel ? __riscv_vle32_v_f32m8(out->scale + c0, vl)
                             : __riscv_vfmv_v_f_f32m8(out->scale[0], vl);
        const int64_t at = (((int64_t)b * s->out_h + oy) * ow + ox) * C + c0;
        __riscv_vse8_v_i8m2((int8_t *)y + at,
                            pyrt_rvv_requant(acc, scale, out->zero_point,
                                             out->qmin, out->qmax, vl),
                            vl);
        c0 += (int32_t)vl;
      }
    }
  }
}

void pyrt_qdwconv_init_rvv(pyrt_kernel_table *t) {
  scalar_run = t->qdwconv.run; /* the level below's */
  t->qdwconv.run = run;
}
