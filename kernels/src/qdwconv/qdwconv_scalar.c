/* Scalar depthwise Conv2D (one filter per channel), NCHW, fused output stage.
 * Taps that fall in the padding read x_zero, i.e. contribute nothing, so
 * each tap only visits the output columns whose input is inside the image.
 */
#include <stdlib.h>
#include <string.h>

#include "requant/requant.h"

size_t pyrt_qdwconv_weights_size_scalar(int32_t channels, int32_t taps) {
  return (size_t)channels * (size_t)taps;
}

void pyrt_qdwconv_pack_weights_scalar(int32_t channels, int32_t taps,
                                      const int8_t *w_s8, void *dst) {
  memcpy(dst, w_s8, (size_t)channels * (size_t)taps);
}

/* First and one-past-last output column whose tap input is inside [0, in). */
static void valid_range(int32_t out, int32_t in, int32_t stride, int32_t off,
                        int32_t *lo, int32_t *hi) {
  int32_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int32_t b = in - off <= 0 ? 0 : (in - off - 1) / stride + 1;
  *lo = a < out ? a : out;
  *hi = b < out ? b : out;
  if (*hi < *lo) *hi = *lo;
}

/* acc[ox] += wv * (src[ox * stride + off] - x_zero) for ox in [lo, hi); the
   stride-1 loop is split out so that it vectorizes (contiguous loads). */
#define PYRT_DW_TAP(NAME, XT)                                                 \
  static void NAME(uint32_t *acc, const XT *src, int32_t lo, int32_t hi,      \
                   int32_t stride, int32_t off, int32_t wv, int32_t x_zero) { \
    if (stride == 1) {                                                        \
      if (hi <= lo) return;                                                   \
      const XT *row = src + (lo + off); /* first input in range */            \
      uint32_t *a = acc + lo;                                                 \
      for (int32_t i = 0; i < hi - lo; i++)                                   \
        a[i] += (uint32_t)(wv * ((int32_t)row[i] - x_zero));                  \
    } else {                                                                  \
      for (int32_t ox = lo; ox < hi; ox++)                                    \
        acc[ox] +=                                                            \
            (uint32_t)(wv * ((int32_t)src[ox * stride + off] - x_zero));      \
    }                                                                         \
  }
PYRT_DW_TAP(tap_u8, uint8_t)
PYRT_DW_TAP(tap_s8, int8_t)

int pyrt_qdwconv_scalar(const pyrt_conv2d_shape *s, const void *packed,
                        const void *x, int32_t x_dtype, int32_t x_zero,
                        const int32_t *bias, const pyrt_output_stage *out,
                        void *y) {
  const int8_t *w = (const int8_t *)pyrt_pack_weights(packed);
  const int32_t *w_zero = pyrt_pack_w_zero(packed);
  const int32_t taps = s->kernel_h * s->kernel_w, ow = s->out_w;
  uint32_t *acc = malloc(sizeof(uint32_t) * (size_t)ow);
  int32_t *row = malloc(sizeof(int32_t) * (size_t)ow);
  if (acc == NULL || row == NULL) {
    free(acc);
    free(row);
    return pyrt_fail(PYRT_ERR_NOMEM, "qdwconv: out of memory");
  }
  const size_t in_plane = (size_t)s->in_h * (size_t)s->in_w;
  for (int32_t b = 0; b < s->batch; b++)
    for (int32_t c = 0; c < s->in_c; c++) {
      const size_t plane = (size_t)b * (size_t)s->in_c + (size_t)c;
      const int8_t *wc = w + (size_t)c * (size_t)taps;
      const int32_t zw = w_zero[c];
      for (int32_t oy = 0; oy < s->out_h; oy++) {
        memset(acc, 0, sizeof(uint32_t) * (size_t)ow);
        for (int32_t ky = 0; ky < s->kernel_h; ky++) {
          const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
          if (iy < 0 || iy >= s->in_h) continue;
          const size_t at = plane * in_plane + (size_t)iy * (size_t)s->in_w;
          for (int32_t kx = 0; kx < s->kernel_w; kx++) {
            const int32_t wv = wc[ky * s->kernel_w + kx] - zw;
            const int32_t off = kx * s->dilation_w - s->pad_left;
            int32_t lo, hi;
            valid_range(ow, s->in_w, s->stride_w, off, &lo, &hi);
            if (x_dtype == PYRT_U8)
              tap_u8(acc, (const uint8_t *)x + at, lo, hi, s->stride_w, off, wv,
                     x_zero);
            else
              tap_s8(acc, (const int8_t *)x + at, lo, hi, s->stride_w, off, wv,
                     x_zero);
          }
        }
        const uint32_t b0 = bias ? (uint32_t)bias[c] : 0u;
        for (int32_t ox = 0; ox < ow; ox++) row[ox] = (int32_t)(acc[ox] + b0);
        pyrt_output_row(row, ow, pyrt_stage_scale(out, c), out, y,
                        ((int64_t)plane * s->out_h + oy) * ow);
      }
    }
  free(acc);
  free(row);
  return PYRT_OK;
}
