/* Scalar depthwise Conv2D (one filter per channel), NHWC, fused output
 * stage, the reference for the SIMD ones. Weights are packed [taps][C] so
 * that each tap is a vector of channels; taps in the padding are skipped
 * (they read x_zero, i.e. contribute nothing). Channels go in blocks of CB
 * whose accumulators stay in registers or L1; the inner loops over channels
 * auto-vectorize.
 */
#include <string.h>

#include "requant/requant.h"

enum { CB = 128 };

static size_t weights_size(int32_t channels, int32_t taps) {
  return (size_t)channels * (size_t)taps;
}

static void pack(int32_t channels, int32_t taps, const int8_t *w_s8,
                 const int32_t *w_zero, void *dst) {
  (void)w_zero; /* run subtracts it */
  int8_t *d = (int8_t *)dst;
  for (int32_t t = 0; t < taps; t++)
    for (int32_t c = 0; c < channels; c++)
      d[(size_t)t * channels + c] = w_s8[(size_t)c * taps + t];
}

static void run(const pyrt_conv2d_shape *s, const void *packed,
                const uint8_t *x, int32_t x_flip, int32_t x_zero,
                const int32_t *bias, const pyrt_output_stage *out, void *y,
                int32_t r0, int32_t r1, void *scratch) {
  (void)scratch;
  const int8_t *w = (const int8_t *)pyrt_pack_weights(packed);
  const int32_t *w_zero = pyrt_pack_w_zero(packed);
  const int32_t C = s->in_c, ow = s->out_w;
  const uint8_t flip = (uint8_t)x_flip;
  uint32_t acc[CB];
  int32_t v[CB];
  for (int32_t r = r0; r < r1; r++) {
    const int32_t b = r / s->out_h, oy = r % s->out_h;
    for (int32_t ox = 0; ox < ow; ox++) {
      for (int32_t c0 = 0; c0 < C; c0 += CB) {
        const int32_t cb = C - c0 < CB ? C - c0 : CB;
        memset(acc, 0, sizeof acc);
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
            for (int32_t c = 0; c < cb; c++)
              acc[c] += (uint32_t)(((int32_t)(src[c] ^ flip) - x_zero) *
                                   ((int32_t)wt[c] - w_zero[c0 + c]));
          }
        }
        for (int32_t c = 0; c < cb; c++)
          v[c] = (int32_t)(acc[c] + (bias ? (uint32_t)bias[c0 + c] : 0u));
        const int64_t at = (((int64_t)b * s->out_h + oy) * ow + ox) * C + c0;
        pyrt_output_channels(v, cb,
                             out->per_channel ? out->scale + c0 : out->scale,
                             out->per_channel, out, y, at);
      }
    }
  }
}

void pyrt_qdwconv_init_scalar(pyrt_kernel_table *t) {
  t->qdwconv = (pyrt_qdwconv_config){weights_size, pack, NULL, run};
}
