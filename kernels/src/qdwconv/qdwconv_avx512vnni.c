/* AVX-512 depthwise Conv2D, NHWC: 16 channels per zmm, PX output pixels of
 * a row at a time so each weight vector is loaded once for all of them.
 *
 * Exact int32 arithmetic: with w' = w - w_zero (in [-255, 255]) packed as
 * a u16 in the low half of each int32 lane (high half 0) and x widened to
 * int32 lanes, vpdpwssd adds x * w' + x_hi * 0 to the accumulator, wrapping
 * like the reference. Subtracting the activation zero point is folded out:
 *   sum_t (x_t - x_zero) w'_t = sum_t x_t w'_t - x_zero * sum_t w'_t
 * where a tap in the padding reads x_zero itself (it then adds exactly the
 * x_zero w'_t the correction removes), so interior and border pixels run
 * the same loop. s8 activations are sign-extended with their own zero
 * point; no flip is needed.
 *
 * Block: int32 wsum[CP] (sum_t w'_t) | int32 w'[taps][CP], CP = C rounded
 * up to 16, zero-padded.
 */
#include <string.h>

#include "requant/requant_avx512.h"

enum { VL = 16, PX = 8 };

static int32_t padded(int32_t channels) {
  return (channels + VL - 1) / VL * VL;
}

static size_t weights_size(int32_t channels, int32_t taps) {
  return (size_t)padded(channels) * ((size_t)taps + 1) * 4;
}

static void pack(int32_t channels, int32_t taps, const int8_t *w_s8,
                 const int32_t *w_zero, void *dst) {
  const int32_t cp = padded(channels);
  uint32_t *wsum = (uint32_t *)dst, *w = wsum + cp;
  memset(dst, 0, weights_size(channels, taps));
  for (int32_t c = 0; c < channels; c++)
    for (int32_t t = 0; t < taps; t++) {
      const int32_t v = w_s8[(size_t)c * taps + t] - w_zero[c];
      w[(size_t)t * cp + c] = (uint16_t)v;
      wsum[c] += (uint32_t)v;
    }
}

/* x widened to int32 lanes (16 channels, m valid). */
static inline __m512i load_x(const uint8_t *src, __mmask16 m, int is_s8) {
  const __m128i b = _mm_maskz_loadu_epi8(m, src);
  return is_s8 ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

static void run(const pyrt_conv2d_shape *s, const void *packed,
                const uint8_t *x, int32_t x_flip, int32_t x_zero,
                const int32_t *bias, const pyrt_output_stage *out, void *y,
                int32_t r0, int32_t r1) {
  const int32_t C = s->in_c, cp = padded(C), ow = s->out_w;
  const int32_t *wsum = (const int32_t *)pyrt_pack_weights(packed);
  const int32_t *w = wsum + cp;
  const int is_s8 = x_flip != 0;
  const __m512i xz = _mm512_set1_epi32(is_s8 ? x_zero - 128 : x_zero);
  const pyrt_avx512_stage k = pyrt_avx512_stage_init(out);
  for (int32_t r = r0; r < r1; r++) {
    const int32_t b = r / s->out_h, oy = r % s->out_h;
    const uint8_t *image = x + (size_t)b * s->in_h * s->in_w * C;
    for (int32_t ox = 0; ox < ow; ox += PX) {
      const int32_t px = ow - ox < PX ? ow - ox : PX;
      for (int32_t c0 = 0; c0 < C; c0 += VL) {
        const __mmask16 m = pyrt_avx512_mask(C - c0);
        const __m512i ws = _mm512_loadu_si512(wsum + c0);
        __m512i base = bias ? _mm512_maskz_loadu_epi32(m, bias + c0)
                            : _mm512_setzero_si512();
        base = _mm512_sub_epi32(base, _mm512_mullo_epi32(xz, ws));
        __m512i acc[PX];
        for (int p = 0; p < PX; p++) acc[p] = base;
        for (int32_t ky = 0; ky < s->kernel_h; ky++) {
          const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
          const int row_ok = iy >= 0 && iy < s->in_h;
          const uint8_t *line = image + (size_t)(row_ok ? iy : 0) * s->in_w * C;
          for (int32_t kx = 0; kx < s->kernel_w; kx++) {
            const __m512i wv = _mm512_loadu_si512(
                w + (size_t)(ky * s->kernel_w + kx) * cp + c0);
            for (int p = 0; p < PX; p++) {
              const int32_t ix =
                  (ox + p) * s->stride_w - s->pad_left + kx * s->dilation_w;
              const __m512i xv =
                  row_ok && p < px && ix >= 0 && ix < s->in_w
                      ? load_x(line + (size_t)ix * C + c0, m, is_s8)
                      : xz;
              acc[p] = _mm512_dpwssd_epi32(acc[p], xv, wv);
            }
          }
        }
        const __m512 sc =
            pyrt_avx512_scale(out->per_channel ? out->scale + c0 : out->scale,
                              out->per_channel, m);
        const size_t at = ((size_t)r * ow + (size_t)ox) * C + (size_t)c0;
        for (int p = 0; p < px; p++)
          pyrt_avx512_output(acc[p], m, sc, &k, y, at + (size_t)p * C);
      }
    }
  }
}

void pyrt_qdwconv_init_avx512vnni(pyrt_kernel_table *t) {
  t->qdwconv = (pyrt_qdwconv_config){weights_size, pack, run};
}
