/* RVV 1.0 int8 GEMM tile: 3 rows x VLEN/4 columns over K groups of 1.
 *
 * RVV 1.0 has no int8 dot product, so the tile widens: weights are packed
 * once as s16 (b_width 2), one K step loads a row of VLEN/4 of them into
 * an e16 LMUL 4 group and, per tile row, one vwmacc.vx multiplies it by
 * that row's activation byte (a scalar load, 0..255 as s16) into an e32
 * LMUL 8 accumulator: u8 x s8 products fit, and e32 sums wrap like the
 * reference. Three m8 accumulators and the m4 weights fill the 32
 * registers; per K step 1 vector load, 3 scalar loads and 3 vwmacc serve
 * 3 x VLEN/4 MACs (192 at VLEN 256). K is unrolled by 4 so the loads use
 * immediate offsets.
 *
 * The epilogue requantizes a tile row per vector: acc + fixed (- w_zero x
 * row_sum), then requant_rvv.h's float steps, the scalar's. S32 and F32
 * outputs take the scalar epilogue. A packing and im2col copy with
 * vle8 / vxor / vse8 at LMUL 8.
 *
 * The column count NR depends on VLEN, read once when the table is filled;
 * packs record NR, so a pack made under another VLEN is refused.
 */
#include "requant/requant_rvv.h"

enum { MR = 3 };

static inline __attribute__((always_inline)) void tile(
    const int mr, int32_t kp, const uint8_t *a, size_t lda, const int16_t *b,
    int32_t *acc, const uint8_t flip) {
  const size_t vl = __riscv_vsetvlmax_e16m4();
  vint32m8_t c0 = __riscv_vmv_v_x_i32m8(0, vl), c1 = c0, c2 = c0;
  const uint8_t *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda;
  int32_t k = 0;
  for (; k + 4 <= kp; k += 4, a0 += 4, a1 += 4, a2 += 4) {
    for (int q = 0; q < 4; q++, b += vl) {
      const vint16m4_t w = __riscv_vle16_v_i16m4(b, vl);
      c0 = __riscv_vwmacc_vx_i32m8(c0, (int16_t)(a0[q] ^ flip), w, vl);
      if (mr > 1)
        c1 = __riscv_vwmacc_vx_i32m8(c1, (int16_t)(a1[q] ^ flip), w, vl);
      if (mr > 2)
        c2 = __riscv_vwmacc_vx_i32m8(c2, (int16_t)(a2[q] ^ flip), w, vl);
    }
  }
  for (; k < kp; k++, a0++, a1++, a2++, b += vl) {
    const vint16m4_t w = __riscv_vle16_v_i16m4(b, vl);
    c0 = __riscv_vwmacc_vx_i32m8(c0, (int16_t)(a0[0] ^ flip), w, vl);
    if (mr > 1)
      c1 = __riscv_vwmacc_vx_i32m8(c1, (int16_t)(a1[0] ^ flip), w, vl);
    if (mr > 2)
      c2 = __riscv_vwmacc_vx_i32m8(c2, (int16_t)(a2[0] ^ flip), w, vl);
  }
  __riscv_vse32_v_i32m8(acc, c0, vl);
  if (mr > 1) __riscv_vse32_v_i32m8(acc + vl, c1, vl);
  if (mr > 2) __riscv_vse32_v_i32m8(acc + 2 * vl, c2, vl);
}

static inline __attribute__((always_inline)) void rows(
    int32_t mr, int32_t kp, const uint8_t *a, size_t lda, const int16_t *w,
    int32_t *acc, const uint8_t flip) {
  if (mr >= 3)
    tile(3, kp, a, lda, w, acc, flip);
  else if (mr == 2)
    tile(2, kp, a, lda, w, acc, flip);
  else
    tile(1, kp, a, lda, w, acc, flip);
}

/* flip 0x80: s8 activations read in place (one xor per scalar load) */
static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc, uint8_t flip) {
  if (flip)
    rows(mr, kp, a, lda, (const int16_t *)b, acc, 0x80);
  else
    rows(mr, kp, a, lda, (const int16_t *)b, acc, 0);
}

static void epilogue(int32_t mr, int32_t nr, const int32_t *acc, int32_t ld_acc,
                     const int32_t *fixed, const int32_t *w_zero,
                     const int32_t *row_sum, const float *scale,
                     const pyrt_output_stage *out, void *y, size_t ldy) {
  if (out->out_dtype != PYRT_U8 && out->out_dtype != PYRT_S8) {
    pyrt_qgemm_epilogue_scalar(mr, nr, acc, ld_acc, fixed, w_zero, row_sum,
                               scale, out, y, ldy);
    return;
  }
  for (int32_t j = 0; j < nr;) {
    const size_t vl = __riscv_vsetvl_e32m8((size_t)(nr - j));
    const vfloat32m8_t s = out->per_channel
                               ? __riscv_vle32_v_f32m8(scale + j, vl)
                               : __riscv_vfmv_v_f_f32m8(scale[0], vl);
    for (int32_t r = 0; r < mr; r++) { /* fixed, w_zero reloaded: no spills */
      vint32m8_t v = __riscv_vle32_v_i32m8(acc + (size_t)r * ld_acc + j, vl);
      v = __riscv_vadd_vv_i32m8(v, __riscv_vle32_v_i32m8(fixed + j, vl), vl);
      if (w_zero)
        v = __riscv_vnmsac_vx_i32m8(v, row_sum[r],
                                    __riscv_vle32_v_i32m8(w_zero + j, vl), vl);
      const vint8m2_t o =
          pyrt_rvv_requant(v, s, out->zero_point, out->qmin, out->qmax, vl);
      __riscv_vse8_v_i8m2((int8_t *)y + (size_t)r * ldy + (size_t)j, o, vl);
    }
    j += (int32_t)vl;
  }
}

static void copy_rows(uint8_t *dst, size_t ld_dst, const uint8_t *src,
                      size_t ld_src, int32_t rows, size_t n, uint8_t flip) {
  for (int32_t r = 0; r < rows; r++, dst += ld_dst, src += ld_src) {
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (size_t left = n, vl; left > 0; left -= vl, s += vl, d += vl) {
      vl = __riscv_vsetvl_e8m8(left);
      __riscv_vse8_v_u8m8(
          d, __riscv_vxor_vx_u8m8(__riscv_vle8_v_u8m8(s, vl), flip, vl), vl);
    }
  }
}

void pyrt_qgemm_init_rvv(pyrt_kernel_table *t) {
  t->vector_bits = (int32_t)__riscv_vsetvlmax_e8m1() * 8; /* VLEN */
  const int32_t nr = (int32_t)__riscv_vsetvlmax_e16m4();
  t->qgemm = (pyrt_qgemm_config){MR,      nr,   1,        1,         2,
                                 ukernel, NULL, epilogue, copy_rows, NULL};
}
