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
 * one table of row pointers and the channel loop has no branches; PX
 * pixels of a row go together and share each weight load. s8 activations
 * are sign-extended with their own zero point (no flip).
 *
 * Block: int32 wsum[CP] (sum_t w'_t) | int32 w'[CP / 16][taps][16], CP = C
 * rounded up to 16, zero-padded. Scratch: the tap pointers, base[CP] (bias
 * minus the zero-point term) and the row of x_zero bytes.
 */
#include <string.h>

#include "requant/requant_avx512.h"

enum { VL = 16, PX = 4 };

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
  return PYRT_ALIGN_UP(PX * taps * sizeof(void *)) +
         (size_t)padded(s->in_c) * 4 + (size_t)padded(s->in_c);
}

/* x widened to int32 lanes (16 channels; m valid unless m is all ones). */
static inline __attribute__((always_inline)) __m512i load_x(const uint8_t *src,
                                                            __mmask16 m,
                                                            int is_s8) {
  const __m128i b = m == 0xFFFF ? _mm_loadu_si128((const __m128i *)src)
                                : _mm_maskz_loadu_epi8(m, src);
  return is_s8 ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

/* acc[p] = base + sum over taps for P output pixels, 16 channels at c0.
   Pixel p's tap t is at ptr[p * taps + t], or with step > 0 (an interior
   group: no tap in the padding) at ptr[t] + p * step. Two chains per pixel and
   several pixels sharing each weight load keep enough independent work in
   flight to hide vpdpwssd latency. */
static inline __attribute__((always_inline)) void pixels(
    const int P, const uint8_t *const *ptr, size_t step, int32_t taps,
    const int32_t *w, const int32_t *base, int32_t c0, __mmask16 m, int is_s8,
    __m512i *acc) {
  __m512i acc0[PX], acc1[PX];
  for (int p = 0; p < P; p++) {
    acc0[p] = _mm512_loadu_si512(base + c0);
    acc1[p] = _mm512_setzero_si512();
  }
  int32_t t = 0;
  for (; t + 2 <= taps; t += 2, w += 2 * VL) {
    const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + VL);
    for (int p = 0; p < P; p++) {
      const uint8_t *const *pt = step ? ptr : ptr + p * taps;
      const size_t at = (step ? p * step : 0) + (size_t)c0;
      acc0[p] = _mm512_dpwssd_epi32(acc0[p], load_x(pt[t] + at, m, is_s8), w0);
      acc1[p] =
          _mm512_dpwssd_epi32(acc1[p], load_x(pt[t + 1] + at, m, is_s8), w1);
    }
  }
  if (t < taps) {
    const __m512i w0 = _mm512_loadu_si512(w);
    for (int p = 0; p < P; p++)
      acc0[p] = _mm512_dpwssd_epi32(
          acc0[p],
          load_x(step ? ptr[t] + p * step + c0 : ptr[p * taps + t] + c0, m,
                 is_s8),
          w0);
  }
  for (int p = 0; p < P; p++) acc[p] = _mm512_add_epi32(acc0[p], acc1[p]);
}

/* P output pixels from (r, ox): tap tables (one, shifted per pixel, when
   no tap of the group is in the padding), then every channel block. */
static inline __attribute__((always_inline)) void row_pixels(
    const int P, const pyrt_conv2d_shape *s, const uint8_t *image,
    const int32_t *w, const int32_t *base, const uint8_t *zrow,
    const uint8_t **ptr, int32_t r, int32_t ox, int rows_inside, int is_s8,
    const pyrt_output_stage *out, const pyrt_avx512_stage *k, void *y) {
  const int32_t C = s->in_c, taps = s->kernel_h * s->kernel_w;
  const int32_t iy0 = r % s->out_h * s->stride_h - s->pad_top;
  const int32_t ix0 = ox * s->stride_w - s->pad_left;
  const size_t row_bytes = (size_t)s->in_w * C;
  const int inside =
      rows_inside && ix0 >= 0 &&
      ix0 + (P - 1) * s->stride_w + (s->kernel_w - 1) * s->dilation_w < s->in_w;
  for (int p = 0; p < (inside ? 1 : P); p++)
    for (int32_t ky = 0, t = 0; ky < s->kernel_h; ky++) {
      const int32_t iy = iy0 + ky * s->dilation_h;
      for (int32_t kx = 0; kx < s->kernel_w; kx++, t++) {
        const int32_t ix = ix0 + p * s->stride_w + kx * s->dilation_w;
        ptr[p * taps + t] =
            iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w
                ? image + (size_t)iy * row_bytes + (size_t)ix * C
                : zrow;
      }
    }
  const size_t step = inside ? (size_t)s->stride_w * C : 0;
  const size_t at = ((size_t)r * s->out_w + (size_t)ox) * C;
  __m512i acc[PX];
  for (int32_t c0 = 0; c0 < C; c0 += VL) {
    const __mmask16 m = pyrt_avx512_mask(C - c0);
    if (m == 0xFFFF)
      pixels(P, ptr, step, taps, w + (size_t)c0 * taps, base, c0, 0xFFFF, is_s8,
             acc);
    else
      pixels(P, ptr, step, taps, w + (size_t)c0 * taps, base, c0, m, is_s8,
             acc);
    const __m512 sc = pyrt_avx512_scale(
        out->per_channel ? out->scale + c0 : out->scale, out->per_channel, m);
    for (int p = 0; p < P; p++)
      pyrt_avx512_output(acc[p], m, sc, k, y, at + (size_t)p * C + c0);
  }
}

static inline __attribute__((always_inline)) void rows(
    const int is_s8, const pyrt_conv2d_shape *s, const int32_t *w,
    const int32_t *base, const uint8_t *zrow, const uint8_t **ptr,
    const uint8_t *x, const pyrt_output_stage *out, void *y, int32_t r0,
    int32_t r1) {
  const pyrt_avx512_stage k = pyrt_avx512_stage_init(out);
  for (int32_t r = r0; r < r1; r++) {
    const uint8_t *image =
        x + (size_t)(r / s->out_h) * s->in_h * s->in_w * s->in_c;
    const int32_t iy0 = r % s->out_h * s->stride_h - s->pad_top;
    const int inside =
        iy0 >= 0 && iy0 + (s->kernel_h - 1) * s->dilation_h < s->in_h;
    int32_t ox = 0;
    for (; ox + PX <= s->out_w; ox += PX)
      row_pixels(PX, s, image, w, base, zrow, ptr, r, ox, inside, is_s8, out,
                 &k, y);
    for (; ox < s->out_w; ox++)
      row_pixels(1, s, image, w, base, zrow, ptr, r, ox, inside, is_s8, out, &k,
                 y);
  }
}

static void run(const pyrt_conv2d_shape *s, const void *packed,
                const uint8_t *x, int32_t x_flip, int32_t x_zero,
                const int32_t *bias, const pyrt_output_stage *out, void *y,
                int32_t r0, int32_t r1, void *scratch) {
  const int32_t C = s->in_c, cp = padded(C), taps = s->kernel_h * s->kernel_w;
  const int32_t *wsum = (const int32_t *)pyrt_pack_weights(packed);
  const int32_t *w = wsum + cp;
  const int32_t zero = x_flip ? x_zero - 128 : x_zero; /* x's own domain */
  const uint8_t **ptr = (const uint8_t **)scratch;
  int32_t *base =
      (int32_t *)((char *)scratch + PYRT_ALIGN_UP(PX * taps * sizeof(void *)));
  uint8_t *zrow = (uint8_t *)(base + cp);
  memset(zrow, (uint8_t)zero, (size_t)cp);
  for (int32_t c = 0; c < cp; c++)
    base[c] = (int32_t)((c < C && bias ? (uint32_t)bias[c] : 0u) -
                        (uint32_t)zero * (uint32_t)wsum[c]);
  if (x_flip)
    rows(1, s, w, base, zrow, ptr, x, out, y, r0, r1);
  else
    rows(0, s, w, base, zrow, ptr, x, out, y, r0, r1);
}

void pyrt_qdwconv_init_avx512vnni(pyrt_kernel_table *t) {
  t->qdwconv = (pyrt_qdwconv_config){weights_size, pack, scratch_size, run};
}
