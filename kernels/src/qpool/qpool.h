/* The definition of an int8 pooling window and of its requantization,
   shared by every ISA's pools so that they agree bit for bit. */
#ifndef PYRT_QPOOL_H
#define PYRT_QPOOL_H

#include <math.h>

#include "internal.h"

/* Taps j in [0, k) with lo <= start + j * dilation < hi: [*first, *end). */
static inline void pyrt_taps_inside(int64_t start, int32_t k, int32_t dilation,
                                    int64_t lo, int64_t hi, int32_t *first,
                                    int32_t *end) {
  int64_t f = start >= lo ? 0 : lo - start, e = hi <= start ? 0 : hi - start;
  if (dilation > 1) { /* (dilation 1, the common case, needs no division) */
    f = (f + dilation - 1) / dilation;
    e = (e + dilation - 1) / dilation;
  }
  f = f > k ? k : f;
  e = e > k ? k : e;
  *first = (int32_t)f;
  *end = (int32_t)(e < f ? f : e);
}

/* One output's window: taps [ky0, ky1) x [kx0, kx1) inside the input, from
   input position (y0, x0); `count` is the averaging divisor (taps inside
   the input, or inside the padded input with count_include_pad). */
typedef struct {
  int64_t y0, x0;
  int32_t ky0, ky1, kx0, kx1;
  int64_t count;
} pyrt_pool_window;

static inline pyrt_pool_window pyrt_pool_window_at(const pyrt_pool2d_shape *s,
                                                   int32_t oy, int32_t ox) {
  pyrt_pool_window w;
  w.y0 = (int64_t)oy * s->stride_h - s->pad_top;
  w.x0 = (int64_t)ox * s->stride_w - s->pad_left;
  pyrt_taps_inside(w.y0, s->kernel_h, s->dilation_h, 0, s->in_h, &w.ky0,
                   &w.ky1);
  pyrt_taps_inside(w.x0, s->kernel_w, s->dilation_w, 0, s->in_w, &w.kx0,
                   &w.kx1);
  w.count = (int64_t)(w.ky1 - w.ky0) * (w.kx1 - w.kx0);
  if (s->count_include_pad) {
    int32_t py0, py1, px0, px1;
    pyrt_taps_inside(w.y0, s->kernel_h, s->dilation_h, -(int64_t)s->pad_top,
                     (int64_t)s->in_h + s->pad_bottom, &py0, &py1);
    pyrt_taps_inside(w.x0, s->kernel_w, s->dilation_w, -(int64_t)s->pad_left,
                     (int64_t)s->in_w + s->pad_right, &px0, &px1);
    w.count = (int64_t)(py1 - py0) * (px1 - px0);
  }
  return w;
}

/* The multiplier of a sum over `count` taps: sx / (sy * count). */
static inline float pyrt_pool_multiplier(const pyrt_qparams *qx,
                                         const pyrt_qparams *qy,
                                         int64_t count) {
  return qx->scale / (qy->scale * (float)count);
}

/* An average's code: clamp(rintf((float)sum * m) + zy) to the dtype, where
   sum = sum of (x - zx) over the window. */
static inline int32_t pyrt_pool_value(int64_t sum, float m, int32_t dtype,
                                      float zy) {
  const float lo = dtype == PYRT_U8 ? 0.0f : -128.0f;
  const float hi = dtype == PYRT_U8 ? 255.0f : 127.0f;
  float v = rintf((float)sum * m) + zy;
  v = v < lo ? lo : v > hi ? hi : v;
  return (int32_t)v;
}

#endif
