/* AVX-512 depthwise Conv2D, NHWC, 16 channels per zmm (XNNPACK's unipass
 * dwconv with an indirection table).
 *
 * Exact int32 arithmetic: with w' = w - w_zero (in [-255, 255]) packed as
 * a u16 in the low half of each int32 lane (high half 0) and x widened to
 * int32 lanes, vpdpwssd adds x * w' + x_hi * 0 to the accumulator, wrapping
 * like the reference. The activation zero point is folded out:
 *   sum_t (x_t - x_zero) w'_t = sum_t x_t w'_t - x_zero * sum_t w'_t
 * and a tap in the padding reads a row of x_zero bytes (adding exactly the
 * x_zero w'_t the correction removes), so per output pixel the taps are
 * one table of row pointers and the channel loop has no branches. s8
 * activations are sign-extended with their own zero point (no flip).
 *
 * Block: int32 wsum[CP] (sum_t w'_t) | int32 w'[CP / 16][taps][16], CP = C
 * rounded up to 16, zero-padded. Scratch: the tap pointers, base[CP] (bias
 * minus the zero-point term) and the row of x_zero bytes.
 */
#include <string.h>

#include "requant/requant_avx512.h"

enum { VL = 16 };

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
      w[((size_t)(c / VL) * taps + t) * VL + c % VL] = (uint16_t)v;
      wsum[c] += (uint32_t)v;
    }
}

static size_t scratch_size(const pyrt_conv2d_shape *s) {
  const size_t taps = (size_t)s->kernel_h * (size_t)s->kernel_w;
  return PYRT_ALIGN_UP(taps * sizeof(void *)) + (size_t)padded(s->in_c) * 4 +
         (size_t)padded(s->in_c);
}

/* x widened to int32 lanes (16 channels; m valid unless m is all ones). */
static inline __attribute__((always_inline)) __m512i load_x(const uint8_t *src,
                                                            __mmask16 m,
                                                            int is_s8) {
  const __m128i b = m == 0xFFFF ? _mm_loadu_si128((const __m128i *)src)
                                : _mm_maskz_loadu_epi8(m, src);
  return is_s8 ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

/* One output pixel's 16 channels at c0: base + sum over taps. */
static inline __attribute__((always_inline)) __m512i
pixel(const uint8_t *const *ptr, int32_t taps, const int32_t *w,
      const int32_t *base, int32_t c0, __mmask16 m, int is_s8) {
  __m512i acc0 = _mm512_loadu_si512(base + c0), acc1 = _mm512_setzero_si512();
  int32_t t = 0;
  for (; t + 2 <= taps; t += 2, w += 2 * VL) { /* two chains: half latency */
    acc0 = _mm512_dpwssd_epi32(acc0, load_x(ptr[t] + c0, m, is_s8),
                               _mm512_loadu_si512(w));
    acc1 = _mm512_dpwssd_epi32(acc1, load_x(ptr[t + 1] + c0, m, is_s8),
                               _mm512_loadu_si512(w + VL));
  }
  if (t < taps)
    acc0 = _mm512_dpwssd_epi32(acc0, load_x(ptr[t] + c0, m, is_s8),
                               _mm512_loadu_si512(w));
  return _mm512_add_epi32(acc0, acc1);
}

static void run(const pyrt_conv2d_shape *s, const void *packed,
                const uint8_t *x, int32_t x_flip, int32_t x_zero,
                const int32_t *bias, const pyrt_output_stage *out, void *y,
                int32_t r0, int32_t r1, void *scratch) {
  const int32_t C = s->in_c, cp = padded(C), taps = s->kernel_h * s->kernel_w;
  const int32_t *wsum = (const int32_t *)pyrt_pack_weights(packed);
  const int32_t *w = wsum + cp;
  const int is_s8 = x_flip != 0;
  const int32_t zero = is_s8 ? x_zero - 128 : x_zero; /* x's own domain */
  const uint8_t **ptr = (const uint8_t **)scratch;
  int32_t *base =
      (int32_t *)((char *)scratch + PYRT_ALIGN_UP(taps * sizeof(void *)));
  uint8_t *zrow = (uint8_t *)(base + cp);
  memset(zrow, (uint8_t)zero, (size_t)cp);
  for (int32_t c = 0; c < cp; c++)
    base[c] = (int32_t)((c < C && bias ? (uint32_t)bias[c] : 0u) -
                        (uint32_t)zero * (uint32_t)wsum[c]);
  const pyrt_avx512_stage k = pyrt_avx512_stage_init(out);
  const size_t row_bytes = (size_t)s->in_w * C;
  for (int32_t r = r0; r < r1; r++) {
    const int32_t b = r / s->out_h, oy = r % s->out_h;
    const uint8_t *image = x + (size_t)b * s->in_h * row_bytes;
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      for (int32_t ky = 0, t = 0; ky < s->kernel_h; ky++) {
        const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
        for (int32_t kx = 0; kx < s->kernel_w; kx++, t++) {
          const int32_t ix =
              ox * s->stride_w - s->pad_left + kx * s->dilation_w;
          ptr[t] = iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w
                       ? image + (size_t)iy * row_bytes + (size_t)ix * C
                       : zrow;
        }
      }
      const size_t at = ((size_t)r * s->out_w + (size_t)ox) * C;
      int32_t c0 = 0;
      for (; c0 + VL <= C; c0 += VL) {
        const __m512i acc =
            pixel(ptr, taps, w + (size_t)c0 * taps, base, c0, 0xFFFF, is_s8);
        const __m512 sc =
            pyrt_avx512_scale(out->per_channel ? out->scale + c0 : out->scale,
                              out->per_channel, 0xFFFF);
        pyrt_avx512_output(acc, 0xFFFF, sc, &k, y, at + (size_t)c0);
      }
      if (c0 < C) {
        const __mmask16 m = pyrt_avx512_mask(C - c0);
        const __m512i acc =
            pixel(ptr, taps, w + (size_t)c0 * taps, base, c0, m, is_s8);
        const __m512 sc =
            pyrt_avx512_scale(out->per_channel ? out->scale + c0 : out->scale,
                              out->per_channel, m);
        pyrt_avx512_output(acc, m, sc, &k, y, at + (size_t)c0);
      }
    }
  }
}

void pyrt_qdwconv_init_avx512vnni(pyrt_kernel_table *t) {
  t->qdwconv = (pyrt_qdwconv_config){weights_size, pack, scratch_size, run};
}
