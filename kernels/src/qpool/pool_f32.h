/* The fp32 max and average pools, as loops over the channels of a window's
   taps that the compiler vectorizes: qpool_scalar.c compiles them with no
   ISA flags (the reference), pool_f32_<isa>.c with its ISA's. Per channel
   the operations and their order are the same, so every table gives the
   same bits. */
#ifndef PYRT_POOL_F32_H
#define PYRT_POOL_F32_H

#include <math.h>

#include "qpool/qpool.h"

/* Channels per block: the accumulators of a block stay in registers (the
   loops over a block have a constant trip count), a narrower last block. */
enum { F32_BLOCK = 32 };

/* Pixel (b, tap ky, kx of window w)'s channel c0 (NCHW: C = 1, planes as
 * images). */
static inline const float *pyrt_pool_f32_tap(const pyrt_pool2d_shape *s,
                                             const float *x,
                                             const pyrt_pool_window *w,
                                             int64_t b, int64_t C, int32_t ky,
                                             int32_t kx) {
  const int64_t iy = w->y0 + (int64_t)ky * s->dilation_h;
  const int64_t ix = w->x0 + (int64_t)kx * s->dilation_w;
  return x + ((b * s->in_h + iy) * s->in_w + ix) * C;
}

/* n <= F32_BLOCK channels of one output: the max over the window's taps
   inside the input (padding never wins), or their sum / count. */
static inline __attribute__((always_inline)) void pyrt_pool_f32_block(
    const pyrt_pool2d_shape *s, const float *x, const pyrt_pool_window *w,
    int64_t b, int64_t C, int64_t n, int avg, float *dst) {
  float acc[F32_BLOCK];
  for (int64_t c = 0; c < n; c++) acc[c] = avg ? 0.0f : -INFINITY;
  for (int32_t ky = w->ky0; ky < w->ky1; ky++)
    for (int32_t kx = w->kx0; kx < w->kx1; kx++) {
      const float *src = pyrt_pool_f32_tap(s, x, w, b, C, ky, kx);
      if (avg)
        for (int64_t c = 0; c < n; c++) acc[c] += src[c];
      else
        for (int64_t c = 0; c < n; c++)
          acc[c] = src[c] > acc[c] ? src[c] : acc[c];
    }
  const float count = (float)w->count;
  for (int64_t c = 0; c < n; c++) dst[c] = avg ? acc[c] / count : acc[c];
}

/* Output rows [r0, r1) (NCHW: planes x out_h; NHWC: images x out_h). */
static inline __attribute__((always_inline)) void pyrt_pool_f32_rows(
    const pyrt_pool2d_shape *s, const float *x, float *y, int64_t r0,
    int64_t r1, int avg) {
  const int64_t C = s->layout == PYRT_NHWC ? s->channels : 1;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / s->out_h; /* NHWC: image; NCHW: plane */
    const int32_t oy = (int32_t)(r % s->out_h);
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const pyrt_pool_window w = pyrt_pool_window_at(s, oy, ox);
      float *dst = y + (r * s->out_w + ox) * C;
      int64_t c0 = 0;
      for (; c0 + F32_BLOCK <= C; c0 += F32_BLOCK)
        pyrt_pool_f32_block(s, x + c0, &w, b, C, F32_BLOCK, avg, dst + c0);
      if (c0 < C)
        pyrt_pool_f32_block(s, x + c0, &w, b, C, C - c0, avg, dst + c0);
    }
  }
}

/* fp32 max pool (either layout). */
static inline void pyrt_maxpool2d_f32_rows(const pyrt_pool2d_shape *s,
                                           const float *x, float *y, int64_t r0,
                                           int64_t r1) {
  pyrt_pool_f32_rows(s, x, y, r0, r1, 0);
}

/* fp32 average pool: the window's taps inside the input summed (ky, kx
   ascending) and divided by its count (pyrt_pool_window_at). */
static inline void pyrt_avgpool2d_f32_rows(const pyrt_pool2d_shape *s,
                                           const float *x, float *y, int64_t r0,
                                           int64_t r1) {
  pyrt_pool_f32_rows(s, x, y, r0, r1, 1);
}

#endif
