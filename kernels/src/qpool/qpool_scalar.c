/*
 * Scalar int8 pooling, NCHW and NHWC (qpool.h defines windows and the
 * requantization).
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
#include "qpool/qpool.h"

static void store(void *p, int32_t dtype, int64_t i, int32_t v) {
  if (dtype == PYRT_U8)
    ((uint8_t *)p)[i] = (uint8_t)v;
  else
    ((int8_t *)p)[i] = (int8_t)v;
}

/* x[i] of dtype as int32. */
static inline int32_t code(const void *x, int32_t dtype, int64_t i) {
  return dtype == PYRT_U8 ? ((const uint8_t *)x)[i] : ((const int8_t *)x)[i];
}

/* ---- NCHW: one window of one plane at a time ----------------------------- */

static int32_t max_window(const void *plane, int32_t dtype,
                          const pyrt_pool2d_shape *s,
                          const pyrt_pool_window *w) {
  int32_t best = INT32_MIN;
  for (int32_t ky = w->ky0; ky < w->ky1; ky++) {
    const int64_t row = (w->y0 + (int64_t)ky * s->dilation_h) * s->in_w + w->x0;
    for (int32_t kx = w->kx0; kx < w->kx1; kx++) {
      const int32_t v = code(plane, dtype, row + (int64_t)kx * s->dilation_w);
      best = v > best ? v : best;
    }
  }
  return best;
}

static int64_t sum_window(const void *plane, int32_t dtype, int32_t zero,
                          const pyrt_pool2d_shape *s,
                          const pyrt_pool_window *w) {
  int64_t sum = 0;
  for (int32_t ky = w->ky0; ky < w->ky1; ky++) {
    const int64_t row = (w->y0 + (int64_t)ky * s->dilation_h) * s->in_w + w->x0;
    for (int32_t kx = w->kx0; kx < w->kx1; kx++)
      sum += code(plane, dtype, row + (int64_t)kx * s->dilation_w) - zero;
  }
  return sum;
}

/* Rows r of NCHW are (plane r / out_h, oy r % out_h). */
void pyrt_qmaxpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            int32_t dtype, void *y, int64_t r0, int64_t r1) {
  const int64_t in_plane = (int64_t)s->in_h * s->in_w;
  for (int64_t r = r0; r < r1; r++) {
    const char *plane = (const char *)x + r / s->out_h * in_plane;
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      store(y, dtype, r * s->out_w + ox, max_window(plane, dtype, s, &w));
    }
  }
}

void pyrt_qavgpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            const pyrt_qparams *qx, void *y,
                            const pyrt_qparams *qy, int64_t r0, int64_t r1) {
  const int64_t in_plane = (int64_t)s->in_h * s->in_w;
  const float zy = (float)qy->zero_point;
  for (int64_t r = r0; r < r1; r++) {
    const char *plane = (const char *)x + r / s->out_h * in_plane;
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      const int64_t sum = sum_window(plane, qx->dtype, qx->zero_point, s, &w);
      const float m = pyrt_pool_multiplier(qx, qy, w.count);
      store(y, qy->dtype, r * s->out_w + ox,
            pyrt_pool_value(sum, m, qy->dtype, zy));
    }
  }
}

void pyrt_qglobalavgpool_scalar(int64_t rows, int64_t hw, const void *x,
                                const pyrt_qparams *qx, void *y,
                                const pyrt_qparams *qy) {
  const float m = pyrt_pool_multiplier(qx, qy, hw);
  const float zy = (float)qy->zero_point;
  const int32_t zx = qx->zero_point;
  for (int64_t r = 0; r < rows; r++) {
    int64_t sum = 0;
    for (int64_t i = 0; i < hw; i++) sum += code(x, qx->dtype, r * hw + i) - zx;
    store(y, qy->dtype, r, pyrt_pool_value(sum, m, qy->dtype, zy));
  }
}

/* ---- NHWC: every channel of one output pixel at a time ------------------- */

enum { CHANNELS = 256 }; /* channels per pass (accumulators on the stack) */

/* Rows r of NHWC are (image r / out_h, oy r % out_h); pixel (b, iy, ix)
   starts at ((b * in_h + iy) * in_w + ix) * channels. */
static int64_t pixel(const pyrt_pool2d_shape *s, int64_t b,
                     const pyrt_pool_window *w, int32_t ky, int32_t kx) {
  const int64_t iy = w->y0 + (int64_t)ky * s->dilation_h;
  const int64_t ix = w->x0 + (int64_t)kx * s->dilation_w;
  return ((b * s->in_h + iy) * s->in_w + ix) * s->channels;
}

void pyrt_qmaxpool2d_nhwc_scalar(const pyrt_pool2d_shape *s, const void *x,
                                 int32_t dtype, void *y, int64_t r0,
                                 int64_t r1) {
  int32_t best[CHANNELS];
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      const int64_t at = (r * s->out_w + ox) * s->channels;
      for (int32_t c0 = 0; c0 < s->channels; c0 += CHANNELS) {
        const int32_t n =
            s->channels - c0 < CHANNELS ? s->channels - c0 : CHANNELS;
        for (int32_t c = 0; c < n; c++) best[c] = INT32_MIN;
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++) {
            const int64_t p = pixel(s, b, &w, ky, kx) + c0;
            for (int32_t c = 0; c < n; c++) {
              const int32_t v = code(x, dtype, p + c);
              best[c] = v > best[c] ? v : best[c];
            }
          }
        for (int32_t c = 0; c < n; c++) store(y, dtype, at + c0 + c, best[c]);
      }
    }
}

void pyrt_qavgpool2d_nhwc_scalar(const pyrt_pool2d_shape *s, const void *x,
                                 const pyrt_qparams *qx, void *y,
                                 const pyrt_qparams *qy, int64_t r0,
                                 int64_t r1) {
  const float zy = (float)qy->zero_point;
  int64_t sum[CHANNELS];
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      const float m = pyrt_pool_multiplier(qx, qy, w.count);
      const int64_t at = (r * s->out_w + ox) * s->channels;
      for (int32_t c0 = 0; c0 < s->channels; c0 += CHANNELS) {
        const int32_t n =
            s->channels - c0 < CHANNELS ? s->channels - c0 : CHANNELS;
        for (int32_t c = 0; c < n; c++) sum[c] = 0;
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++) {
            const int64_t p = pixel(s, b, &w, ky, kx) + c0;
            for (int32_t c = 0; c < n; c++)
              sum[c] += code(x, qx->dtype, p + c) - qx->zero_point;
          }
        for (int32_t c = 0; c < n; c++)
          store(y, qy->dtype, at + c0 + c,
                pyrt_pool_value(sum[c], m, qy->dtype, zy));
      }
    }
}

void pyrt_qglobalavgpool_nhwc_scalar(int64_t hw, int64_t ld, int64_t cols,
                                     const void *x, const pyrt_qparams *qx,
                                     void *y, const pyrt_qparams *qy) {
  const float m = pyrt_pool_multiplier(qx, qy, hw);
  const float zy = (float)qy->zero_point;
  int64_t sum[CHANNELS];
  for (int64_t c0 = 0; c0 < cols; c0 += CHANNELS) {
    const int32_t n = cols - c0 < CHANNELS ? (int32_t)(cols - c0) : CHANNELS;
    for (int32_t c = 0; c < n; c++) sum[c] = 0;
    for (int64_t i = 0; i < hw; i++)
      for (int32_t c = 0; c < n; c++)
        sum[c] += code(x, qx->dtype, i * ld + c0 + c) - qx->zero_point;
    for (int32_t c = 0; c < n; c++)
      store(y, qy->dtype, c0 + c, pyrt_pool_value(sum[c], m, qy->dtype, zy));
  }
}
