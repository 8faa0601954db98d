/*
 * Scalar int8 pooling (NCHW).
 *
 * Max works on the codes (quantization is monotonic), over the window taps
 * that fall inside the input: padding never wins. Averages sum (x - zx)
 * exactly in int64 over those taps, then requantize once per window:
 *   v = (float)sum * (sx / (sy * (float)count)); y = clamp(rintf(v) + zy)
 * with count = taps inside the input, or with count_include_pad the taps
 * inside the padded input (a ceil_mode window may overhang even that).
 * pyrt_qavgpool2d / pyrt_qmaxpool2d guarantee every window has a tap inside
 * the input and that v is never NaN.
 */
#include <math.h>

#include "internal.h"

/* Taps j in [0, k) with lo <= start + j * dilation < hi: [*first, *end). */
static void taps_inside(int64_t start, int32_t k, int32_t dilation, int64_t lo,
                        int64_t hi, int32_t *first, int32_t *end) {
  int64_t f = start >= lo ? 0 : (lo - start + dilation - 1) / dilation;
  int64_t e = hi <= start ? 0 : (hi - start + dilation - 1) / dilation;
  f = f > k ? k : f;
  e = e > k ? k : e;
  *first = (int32_t)f;
  *end = (int32_t)(e < f ? f : e);
}

static void store(void *p, int32_t dtype, int64_t i, float v) {
  const float lo = dtype == PYRT_U8 ? 0.0f : -128.0f;
  const float hi = dtype == PYRT_U8 ? 255.0f : 127.0f;
  v = v < lo ? lo : v > hi ? hi : v;
  if (dtype == PYRT_U8)
    ((uint8_t *)p)[i] = (uint8_t)v;
  else
    ((int8_t *)p)[i] = (int8_t)v;
}

/* One window of one plane: taps [ky0, ky1) x [kx0, kx1) from (y0, x0). */
typedef struct {
  int64_t y0, x0;
  int32_t ky0, ky1, kx0, kx1;
} window;

static window window_at(const pyrt_pool2d_shape *s, int32_t oy, int32_t ox) {
  window w;
  w.y0 = (int64_t)oy * s->stride_h - s->pad_top;
  w.x0 = (int64_t)ox * s->stride_w - s->pad_left;
  taps_inside(w.y0, s->kernel_h, s->dilation_h, 0, s->in_h, &w.ky0, &w.ky1);
  taps_inside(w.x0, s->kernel_w, s->dilation_w, 0, s->in_w, &w.kx0, &w.kx1);
  return w;
}

/* Max and sum over a window, one function per element type. */
#define DEFINE_REDUCERS(T, name)                                           \
  static int32_t max_##name(const T *plane, const pyrt_pool2d_shape *s,    \
                            const window *w) {                             \
    int32_t best = INT32_MIN;                                              \
    for (int32_t ky = w->ky0; ky < w->ky1; ky++) {                         \
      const T *row =                                                       \
          plane + (w->y0 + (int64_t)ky * s->dilation_h) * s->in_w + w->x0; \
      for (int32_t kx = w->kx0; kx < w->kx1; kx++) {                       \
        const int32_t v = row[(int64_t)kx * s->dilation_w];                \
        best = v > best ? v : best;                                        \
      }                                                                    \
    }                                                                      \
    return best;                                                           \
  }                                                                        \
  static int64_t sum_##name(const T *plane, const pyrt_pool2d_shape *s,    \
                            const window *w, int32_t zero) {               \
    int64_t sum = 0;                                                       \
    for (int32_t ky = w->ky0; ky < w->ky1; ky++) {                         \
      const T *row =                                                       \
          plane + (w->y0 + (int64_t)ky * s->dilation_h) * s->in_w + w->x0; \
      for (int32_t kx = w->kx0; kx < w->kx1; kx++)                         \
        sum += (int32_t)row[(int64_t)kx * s->dilation_w] - zero;           \
    }                                                                      \
    return sum;                                                            \
  }

DEFINE_REDUCERS(uint8_t, u8)
DEFINE_REDUCERS(int8_t, s8)

void pyrt_qmaxpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            int32_t dtype, void *y) {
  const int64_t planes = (int64_t)s->batch * s->channels;
  const int64_t in_plane = (int64_t)s->in_h * s->in_w;
  for (int64_t p = 0; p < planes; p++)
    for (int32_t oy = 0; oy < s->out_h; oy++)
      for (int32_t ox = 0; ox < s->out_w; ox++) {
        const window w = window_at(s, oy, ox);
        const int64_t at = (p * s->out_h + oy) * s->out_w + ox;
        const int32_t best =
            dtype == PYRT_U8 ? max_u8((const uint8_t *)x + p * in_plane, s, &w)
                             : max_s8((const int8_t *)x + p * in_plane, s, &w);
        store(y, dtype, at, (float)best);
      }
}

void pyrt_qavgpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            const pyrt_qparams *qx, void *y,
                            const pyrt_qparams *qy) {
  const int64_t planes = (int64_t)s->batch * s->channels;
  const int64_t in_plane = (int64_t)s->in_h * s->in_w;
  const float zy = (float)qy->zero_point;
  for (int64_t p = 0; p < planes; p++)
    for (int32_t oy = 0; oy < s->out_h; oy++)
      for (int32_t ox = 0; ox < s->out_w; ox++) {
        const window w = window_at(s, oy, ox);
        const int64_t at = (p * s->out_h + oy) * s->out_w + ox;
        const int64_t sum = qx->dtype == PYRT_U8
                                ? sum_u8((const uint8_t *)x + p * in_plane, s,
                                         &w, qx->zero_point)
                                : sum_s8((const int8_t *)x + p * in_plane, s,
                                         &w, qx->zero_point);
        int64_t count = (int64_t)(w.ky1 - w.ky0) * (w.kx1 - w.kx0);
        if (s->count_include_pad) {
          int32_t py0, py1, px0, px1;
          taps_inside(w.y0, s->kernel_h, s->dilation_h, -(int64_t)s->pad_top,
                      (int64_t)s->in_h + s->pad_bottom, &py0, &py1);
          taps_inside(w.x0, s->kernel_w, s->dilation_w, -(int64_t)s->pad_left,
                      (int64_t)s->in_w + s->pad_right, &px0, &px1);
          count = (int64_t)(py1 - py0) * (px1 - px0);
        }
        const float m = qx->scale / (qy->scale * (float)count);
        store(y, qy->dtype, at, rintf((float)sum * m) + zy);
      }
}

void pyrt_qglobalavgpool_scalar(int64_t rows, int64_t hw, const void *x,
                                const pyrt_qparams *qx, void *y,
                                const pyrt_qparams *qy) {
  const float m = qx->scale / (qy->scale * (float)hw);
  const float zy = (float)qy->zero_point;
  const int32_t zx = qx->zero_point;
  for (int64_t r = 0; r < rows; r++) {
    int64_t sum = 0;
    if (qx->dtype == PYRT_U8) {
      const uint8_t *q = (const uint8_t *)x + r * hw;
      for (int64_t i = 0; i < hw; i++) sum += (int32_t)q[i] - zx;
    } else {
      const int8_t *q = (const int8_t *)x + r * hw;
      for (int64_t i = 0; i < hw; i++) sum += (int32_t)q[i] - zx;
    }
    store(y, qy->dtype, r, rintf((float)sum * m) + zy);
  }
}
