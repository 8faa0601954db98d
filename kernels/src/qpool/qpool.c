/* Public int8 pooling entry points (NCHW): shape and parameter validation;
   the arithmetic is described in qpool_scalar.c. */
#include <math.h>

#include "internal.h"

static int check_q(const char *op, const char *what, const pyrt_qparams *q) {
  if (q == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: %s is NULL", op, what);
  if (q->dtype != PYRT_U8 && q->dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s dtype must be U8 or S8, got %d", op,
                     what, q->dtype);
  if (!isfinite(q->scale) || q->scale <= 0.0f)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: %s scale must be finite and > 0, got %g", op, what,
                     (double)q->scale);
  const int32_t lo = q->dtype == PYRT_U8 ? 0 : -128;
  if (q->zero_point < lo || q->zero_point > lo + 255)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s zero point %d out of range", op,
                     what, q->zero_point);
  return PYRT_OK;
}

/* The requantization multiplier sx / (sy * count) is at most sx / sy; a
   finite one keeps (float)sum * multiplier free of NaN. */
static int check_ratio(const char *op, const pyrt_qparams *qx,
                       const pyrt_qparams *qy) {
  if (!isfinite(qx->scale / qy->scale))
    return pyrt_fail(PYRT_ERR_ARG, "%s: scale ratio %g / %g overflows float",
                     op, (double)qx->scale, (double)qy->scale);
  return PYRT_OK;
}

/* a * b * c * d <= INT64_MAX / 256 for positive factors. */
static int count_fits(int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t limit = INT64_MAX / 256;
  if (a > limit / b) return 0;
  a *= b;
  if (a > limit / c) return 0;
  a *= c;
  return a <= limit / d;
}

/*
 * One spatial dimension: every output window must start inside the padded
 * input (ceil_mode may add a last window that overhangs its end, never one
 * that starts beyond it) and must hold at least one input tap. A window made
 * only of padding has no defined max (and a 0/0 average), so such shapes are
 * refused rather than given an arbitrary value; ONNX keeps pads < kernel,
 * which rules them out anyway.
 */
static int check_dim(const char *op, const char *dim, int32_t in, int32_t k,
                     int32_t stride, int32_t dilation, int32_t pad_begin,
                     int32_t pad_end, int32_t out) {
  if ((int64_t)(out - 1) * stride - pad_begin >= (int64_t)in + pad_end)
    return pyrt_fail(PYRT_ERR_SHAPE,
                     "%s: %d output %ss need windows starting past the padded "
                     "input (%d + pads %d, %d, stride %d)",
                     op, out, dim, in, pad_begin, pad_end, stride);
  for (int32_t o = 0; o < out; o++) {
    const int64_t start = (int64_t)o * stride - pad_begin;
    /* first tap >= 0, then is it < in? */
    const int64_t j = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
    if (j >= k || start + j * dilation >= in)
      return pyrt_fail(PYRT_ERR_SHAPE,
                       "%s: the window of output %s %d lies entirely in the "
                       "padding",
                       op, dim, o);
  }
  return PYRT_OK;
}

static int check_shape(const char *op, const pyrt_pool2d_shape *s) {
  if (s == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: shape is NULL", op);
  if (s->batch <= 0 || s->channels <= 0 || s->in_h <= 0 || s->in_w <= 0 ||
      s->kernel_h <= 0 || s->kernel_w <= 0 || s->stride_h <= 0 ||
      s->stride_w <= 0 || s->dilation_h <= 0 || s->dilation_w <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: sizes, kernel, strides and dilations must be > 0 "
                     "(batch %d channels %d in %dx%d kernel %dx%d strides %d "
                     "%d dilations %d %d)",
                     op, s->batch, s->channels, s->in_h, s->in_w, s->kernel_h,
                     s->kernel_w, s->stride_h, s->stride_w, s->dilation_h,
                     s->dilation_w);
  if (s->out_h <= 0 || s->out_w <= 0)
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: output %dx%d is empty", op, s->out_h,
                     s->out_w);
  if (s->pad_top < 0 || s->pad_left < 0 || s->pad_bottom < 0 ||
      s->pad_right < 0)
    return pyrt_fail(PYRT_ERR_ARG, "%s: pads must be >= 0, got %d %d %d %d", op,
                     s->pad_top, s->pad_left, s->pad_bottom, s->pad_right);
  if (!count_fits(s->batch, s->channels, s->in_h, s->in_w) ||
      !count_fits(s->batch, s->channels, s->out_h, s->out_w))
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: tensor too large", op);
  int rc = check_dim(op, "row", s->in_h, s->kernel_h, s->stride_h,
                     s->dilation_h, s->pad_top, s->pad_bottom, s->out_h);
  if (!rc)
    rc = check_dim(op, "column", s->in_w, s->kernel_w, s->stride_w,
                   s->dilation_w, s->pad_left, s->pad_right, s->out_w);
  return rc;
}

int pyrt_qmaxpool2d(pyrt_context *ctx, const pyrt_pool2d_shape *s,
                    const void *x, int32_t dtype, void *y) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "qmaxpool2d: ctx is NULL");
  int rc = check_shape("qmaxpool2d", s);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qmaxpool2d: NULL buffer");
  if (dtype != PYRT_U8 && dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qmaxpool2d: dtype must be U8 or S8, got %d",
                     dtype);
  ctx->t->qmaxpool2d(s, x, dtype, y);
  return PYRT_OK;
}

int pyrt_qavgpool2d(pyrt_context *ctx, const pyrt_pool2d_shape *s,
                    const void *x, const pyrt_qparams *qx, void *y,
                    const pyrt_qparams *qy) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "qavgpool2d: ctx is NULL");
  int rc = check_shape("qavgpool2d", s);
  if (!rc) rc = check_q("qavgpool2d", "qx", qx);
  if (!rc) rc = check_q("qavgpool2d", "qy", qy);
  if (!rc) rc = check_ratio("qavgpool2d", qx, qy);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qavgpool2d: NULL buffer");
  ctx->t->qavgpool2d(s, x, qx, y, qy);
  return PYRT_OK;
}

int pyrt_qglobalavgpool(pyrt_context *ctx, int64_t rows, int64_t hw,
                        const void *x, const pyrt_qparams *qx, void *y,
                        const pyrt_qparams *qy) {
  if (ctx == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qglobalavgpool: ctx is NULL");
  if (rows <= 0 || hw <= 0 || !count_fits(rows, hw, 1, 1))
    return pyrt_fail(PYRT_ERR_ARG,
                     "qglobalavgpool: rows %lld and hw %lld must be > 0 and "
                     "their product < 2^55",
                     (long long)rows, (long long)hw);
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qglobalavgpool: NULL buffer");
  int rc = check_q("qglobalavgpool", "qx", qx);
  if (!rc) rc = check_q("qglobalavgpool", "qy", qy);
  if (!rc) rc = check_ratio("qglobalavgpool", qx, qy);
  if (rc) return rc;
  ctx->t->qglobalavgpool(rows, hw, x, qx, y, qy);
  return PYRT_OK;
}
