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

/* ---- NCHW -----------------------------------------------------------------
 */

/*
 * Rows r of NCHW are (plane r / out_h, oy r % out_h). All windows of one
 * output row share their input rows, so a row is reduced separably: those
 * rows column by column into `col` (max, or sum of codes), then every
 * output over its columns of `col`. Integer max and sums are exact, so this
 * equals reducing each window directly, which is what happens when a
 * window's span exceeds COLS. Output columns go in chunks whose input
 * columns fit COLS.
 */
enum { COLS = 2048 };

static void nchw_rows(const pyrt_pool2d_shape *s, const void *x, int32_t dtype,
                      const pyrt_qparams *qx, const pyrt_qparams *qy, void *y,
                      int64_t r0, int64_t r1) {
  const int is_max = qx == NULL;
  const int64_t in_plane = (int64_t)s->in_h * s->in_w;
  const int64_t span = (int64_t)(s->kernel_w - 1) * s->dilation_w + 1;
  const int64_t chunk = span > COLS ? 0 : (COLS - span) / s->stride_w + 1;
  const int32_t out_dtype = is_max ? dtype : qy->dtype;
  const float zy = is_max ? 0.0f : (float)qy->zero_point;
  int64_t col[COLS];
  for (int64_t r = r0; r < r1; r++) {
    const char *plane = (const char *)x + r / s->out_h * in_plane;
    const int32_t oy = (int32_t)(r % s->out_h);
    for (int32_t ox0 = 0; ox0 < s->out_w;) {
      const int32_t ox1 =
          chunk && s->out_w - ox0 > chunk ? ox0 + (int32_t)chunk : s->out_w;
      const pyrt_pool_window first = pyrt_pool_window_at(s, oy, ox0);
      /* input columns [c0, c1) of this chunk's windows */
      const int64_t c0 = first.x0 < 0 ? 0 : first.x0;
      int64_t c1 = (int64_t)(ox1 - 1) * s->stride_w - s->pad_left + span;
      c1 = c1 > s->in_w ? s->in_w : c1;
      if (chunk) {
        for (int64_t c = c0; c < c1; c++) col[c - c0] = is_max ? INT32_MIN : 0;
        for (int32_t ky = first.ky0; ky < first.ky1; ky++) {
          const int64_t row =
              (first.y0 + (int64_t)ky * s->dilation_h) * s->in_w;
          if (dtype == PYRT_U8) {
            const uint8_t *q = (const uint8_t *)plane + row;
            for (int64_t c = c0; c < c1; c++)
              col[c - c0] = is_max ? (q[c] > col[c - c0] ? q[c] : col[c - c0])
                                   : col[c - c0] + q[c];
          } else {
            const int8_t *q = (const int8_t *)plane + row;
            for (int64_t c = c0; c < c1; c++)
              col[c - c0] = is_max ? (q[c] > col[c - c0] ? q[c] : col[c - c0])
                                   : col[c - c0] + q[c];
          }
        }
      }
      for (int32_t ox = ox0; ox < ox1; ox++) {
        const pyrt_pool_window w = pyrt_pool_window_at(s, oy, ox);
        int64_t v = is_max ? INT32_MIN : 0;
        for (int32_t ky = chunk ? 0 : w.ky0; ky < (chunk ? 1 : w.ky1); ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++) {
            const int64_t ix = w.x0 + (int64_t)kx * s->dilation_w;
            const int64_t t =
                chunk
                    ? col[ix - c0]
                    : code(plane, dtype,
                           (w.y0 + (int64_t)ky * s->dilation_h) * s->in_w + ix);
            v = is_max ? (t > v ? t : v) : v + t;
          }
        const int64_t at = r * s->out_w + ox;
        if (is_max) {
          store(y, out_dtype, at, (int32_t)v);
        } else {
          const int64_t taps = (int64_t)(w.ky1 - w.ky0) * (w.kx1 - w.kx0);
          const float m = pyrt_pool_multiplier(qx, qy, w.count);
          store(y, out_dtype, at,
                pyrt_pool_value(v - taps * qx->zero_point, m, out_dtype, zy));
        }
      }
      ox0 = ox1;
    }
  }
}

void pyrt_qmaxpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            int32_t dtype, void *y, int64_t r0, int64_t r1) {
  nchw_rows(s, x, dtype, NULL, NULL, y, r0, r1);
}

void pyrt_qavgpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            const pyrt_qparams *qx, void *y,
                            const pyrt_qparams *qy, int64_t r0, int64_t r1) {
  nchw_rows(s, x, qx->dtype, qx, qy, y, r0, r1);
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
