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
#include <math.h>

#include "qpool/pool_f32.h"
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
 * output row share their input rows, and all windows of one output column
 * their input columns, so the work is separable: per chunk of output
 * columns, the column windows are found once; per row, its input rows are
 * reduced column by column into `col` (max, or sum of codes), then every
 * output reduces its columns of `col`. Integer max and sums are exact, so
 * this equals reducing each window directly, which is what happens when a
 * window's span exceeds COLS. Chunks hold at most COLS outputs whose input
 * columns fit COLS.
 */
enum { COLS = 2048 };

/* Each output of one row reduced window by window (spans past COLS). */
static void nchw_row_direct(const pyrt_pool2d_shape *s, const char *plane,
                            int32_t dtype, const pyrt_qparams *qx,
                            const pyrt_qparams *qy, void *y, int64_t r) {
  const int32_t oy = (int32_t)(r % s->out_h);
  for (int32_t ox = 0; ox < s->out_w; ox++) {
    const pyrt_pool_window w = pyrt_pool_window_at(s, oy, ox);
    int64_t v = qx == NULL ? INT32_MIN : 0;
    for (int32_t ky = w.ky0; ky < w.ky1; ky++)
      for (int32_t kx = w.kx0; kx < w.kx1; kx++) {
        const int64_t t = code(plane, dtype,
                               (w.y0 + (int64_t)ky * s->dilation_h) * s->in_w +
                                   w.x0 + (int64_t)kx * s->dilation_w);
        v = qx == NULL ? (t > v ? t : v) : v + t;
      }
    const int64_t at = r * s->out_w + ox;
    if (qx == NULL) {
      store(y, dtype, at, (int32_t)v);
    } else {
      const int64_t taps = (int64_t)(w.ky1 - w.ky0) * (w.kx1 - w.kx0);
      store(y, qy->dtype, at,
            pyrt_pool_value(v - taps * qx->zero_point,
                            pyrt_pool_multiplier(qx, qy, w.count), qy->dtype,
                            (float)qy->zero_point));
    }
  }
}

static void nchw_rows(const pyrt_pool2d_shape *s, const void *x, int32_t dtype,
                      const pyrt_qparams *qx, const pyrt_qparams *qy, void *y,
                      int64_t r0, int64_t r1) {
  const int is_max = qx == NULL;
  const int64_t in_plane = (int64_t)s->in_h * s->in_w;
  const int64_t span = (int64_t)(s->kernel_w - 1) * s->dilation_w + 1;
  if (span > COLS) {
    for (int64_t r = r0; r < r1; r++)
      nchw_row_direct(s, (const char *)x + r / s->out_h * in_plane, dtype, qx,
                      qy, y, r);
    return;
  }
  int64_t chunk = (COLS - span) / s->stride_w + 1;
  chunk = chunk < COLS ? chunk : COLS;
  const float zy = is_max ? 0.0f : (float)qy->zero_point;
  int64_t col[COLS];
  int32_t kx0[COLS], kx1[COLS], count_w[COLS]; /* per output column */
  for (int32_t ox0 = 0; ox0 < s->out_w;) {
    const int32_t ox1 =
        s->out_w - ox0 > chunk ? ox0 + (int32_t)chunk : s->out_w;
    const int64_t x_first = (int64_t)ox0 * s->stride_w - s->pad_left;
    /* input columns [c0, c1) of this chunk's windows */
    const int64_t c0 = x_first < 0 ? 0 : x_first;
    int64_t c1 = (int64_t)(ox1 - 1) * s->stride_w - s->pad_left + span;
    c1 = c1 > s->in_w ? s->in_w : c1;
    for (int32_t ox = ox0; ox < ox1; ox++) {
      const int64_t x0 = (int64_t)ox * s->stride_w - s->pad_left;
      const int32_t i = ox - ox0;
      pyrt_taps_inside(x0, s->kernel_w, s->dilation_w, 0, s->in_w, &kx0[i],
                       &kx1[i]);
      int32_t p0 = kx0[i], p1 = kx1[i];
      if (s->count_include_pad)
        pyrt_taps_inside(x0, s->kernel_w, s->dilation_w, -(int64_t)s->pad_left,
                         (int64_t)s->in_w + s->pad_right, &p0, &p1);
      count_w[i] = p1 - p0;
    }
    for (int64_t r = r0; r < r1; r++) {
      const char *plane = (const char *)x + r / s->out_h * in_plane;
      const int64_t y0 = r % s->out_h * s->stride_h - s->pad_top;
      int32_t ky0, ky1, py0, py1;
      pyrt_taps_inside(y0, s->kernel_h, s->dilation_h, 0, s->in_h, &ky0, &ky1);
      py0 = ky0, py1 = ky1;
      if (s->count_include_pad)
        pyrt_taps_inside(y0, s->kernel_h, s->dilation_h, -(int64_t)s->pad_top,
                         (int64_t)s->in_h + s->pad_bottom, &py0, &py1);
      for (int64_t c = c0; c < c1; c++) col[c - c0] = is_max ? INT32_MIN : 0;
      for (int32_t ky = ky0; ky < ky1; ky++) {
        const int64_t row = (y0 + (int64_t)ky * s->dilation_h) * s->in_w;
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
      int64_t last_count = -1;
      float m = 0.0f;
      for (int32_t ox = ox0; ox < ox1; ox++) {
        const int32_t i = ox - ox0;
        const int64_t base =
            (int64_t)ox * s->stride_w - s->pad_left - c0; /* col index */
        int64_t v = is_max ? INT32_MIN : 0;
        for (int32_t kx = kx0[i]; kx < kx1[i]; kx++) {
          const int64_t t = col[base + (int64_t)kx * s->dilation_w];
          v = is_max ? (t > v ? t : v) : v + t;
        }
        const int64_t at = r * s->out_w + ox;
        if (is_max) {
          store(y, dtype, at, (int32_t)v);
          continue;
        }
        const int64_t count = (int64_t)(py1 - py0) * count_w[i];
        if (count != last_count) { /* borders only: one division per run */
          m = pyrt_pool_multiplier(qx, qy, count);
          last_count = count;
        }
        const int64_t taps = (int64_t)(ky1 - ky0) * (kx1[i] - kx0[i]);
        store(y, qy->dtype, at,
              pyrt_pool_value(v - taps * qx->zero_point, m, qy->dtype, zy));
      }
    }
    ox0 = ox1;
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

void pyrt_maxpool2d_f32_scalar(const pyrt_pool2d_shape *s, const float *x,
                               float *y, int64_t r0, int64_t r1) {
  pyrt_maxpool2d_f32_rows(s, x, y, r0, r1);
}

void pyrt_avgpool2d_f32_scalar(const pyrt_pool2d_shape *s, const float *x,
                               float *y, int64_t r0, int64_t r1) {
  pyrt_avgpool2d_f32_rows(s, x, y, r0, r1);
}

/* fp32 global average pool, NHWC: sums over pixels in order, then / hw. */
void pyrt_globalavgpool_f32_nhwc_scalar(int64_t hw, int64_t channels,
                                        const float *x, float *y) {
  float sum[CHANNELS];
  for (int64_t c0 = 0; c0 < channels; c0 += CHANNELS) {
    const int64_t n = channels - c0 < CHANNELS ? channels - c0 : CHANNELS;
    for (int64_t c = 0; c < n; c++) sum[c] = 0.0f;
    for (int64_t p = 0; p < hw; p++) {
      const float *src = x + p * channels + c0;
      for (int64_t c = 0; c < n; c++) sum[c] += src[c];
    }
    for (int64_t c = 0; c < n; c++) y[c0 + c] = sum[c] / (float)hw;
  }
}
