/* Scalar int8 pooling. Max works on the codes directly (quantization is
   monotonic); averages sum (x - zx) exactly in int64, then requantize once. */
#include <math.h>

#include "internal.h"

static int32_t load(const void *p, int32_t dtype, int64_t i) {
  return dtype == PYRT_U8 ? (int32_t)((const uint8_t *)p)[i]
                          : (int32_t)((const int8_t *)p)[i];
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

/* The part of a window [start, start + span) inside [lo, hi). */
static void clip(int32_t start, int32_t k, int32_t dilation, int32_t lo,
                 int32_t hi, int32_t *first, int32_t *last) {
  int32_t f = 0, l = k;
  while (f < k && start + f * dilation < lo) f++;
  while (l > f && start + (l - 1) * dilation >= hi) l--;
  *first = f;
  *last = l;
}

#define FOR_EACH_WINDOW(s, ...)                                             \
  for (int64_t plane = 0; plane < (int64_t)s->batch * s->channels; plane++) \
    for (int32_t oy = 0; oy < s->out_h; oy++)                               \
      for (int32_t ox = 0; ox < s->out_w; ox++) {                           \
        const int32_t y0 = oy * s->stride_h - s->pad_top;                   \
        const int32_t x0 = ox * s->stride_w - s->pad_left;                  \
        int32_t ky0, ky1, kx0, kx1;                                         \
        clip(y0, s->kernel_h, s->dilation_h, 0, s->in_h, &ky0, &ky1);       \
        clip(x0, s->kernel_w, s->dilation_w, 0, s->in_w, &kx0, &kx1);       \
        const int64_t in_at = plane * s->in_h * s->in_w;                    \
        const int64_t out_at = (plane * s->out_h + oy) * s->out_w + ox;     \
        __VA_ARGS__                                                         \
      }

void pyrt_qmaxpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            int32_t dtype, void *y) {
  FOR_EACH_WINDOW(s, {
    int32_t best = dtype == PYRT_U8 ? 0 : -128; /* all padding: lowest */
    for (int32_t ky = ky0; ky < ky1; ky++)
      for (int32_t kx = kx0; kx < kx1; kx++) {
        const int32_t v =
            load(x, dtype,
                 in_at + (int64_t)(y0 + ky * s->dilation_h) * s->in_w + x0 +
                     kx * s->dilation_w);
        best = v > best ? v : best;
      }
    store(y, dtype, out_at, (float)best);
  })
}

void pyrt_qavgpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            const pyrt_qparams *qx, void *y,
                            const pyrt_qparams *qy) {
  const float ratio = qx->scale / qy->scale, zy = (float)qy->zero_point;
  FOR_EACH_WINDOW(s, {
    int64_t sum = 0;
    for (int32_t ky = ky0; ky < ky1; ky++)
      for (int32_t kx = kx0; kx < kx1; kx++)
        sum += load(x, qx->dtype,
                    in_at + (int64_t)(y0 + ky * s->dilation_h) * s->in_w + x0 +
                        kx * s->dilation_w) -
               qx->zero_point;
    int64_t count = (int64_t)(ky1 - ky0) * (kx1 - kx0);
    if (s->count_include_pad) { /* the window clipped to the padded input */
      int32_t py0, py1, px0, px1;
      clip(y0, s->kernel_h, s->dilation_h, -s->pad_top, s->in_h + s->pad_bottom,
           &py0, &py1);
      clip(x0, s->kernel_w, s->dilation_w, -s->pad_left, s->in_w + s->pad_right,
           &px0, &px1);
      count = (int64_t)(py1 - py0) * (px1 - px0);
    }
    const float v = count ? rintf((float)sum * (ratio / (float)count)) : 0.0f;
    store(y, qy->dtype, out_at, v + zy);
  })
}

void pyrt_qglobalavgpool_scalar(int64_t rows, int64_t hw, const void *x,
                                const pyrt_qparams *qx, void *y,
                                const pyrt_qparams *qy) {
  const float m = qx->scale / (qy->scale * (float)hw);
  for (int64_t r = 0; r < rows; r++) {
    int64_t sum = 0;
    for (int64_t i = 0; i < hw; i++)
      sum += load(x, qx->dtype, r * hw + i) - qx->zero_point;
    store(y, qy->dtype, r, rintf((float)sum * m) + (float)qy->zero_point);
  }
}
