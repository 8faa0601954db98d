/* Public int8 pooling entry points (NCHW). */
#include <math.h>

#include "internal.h"

static int check_q(const char *op, const char *what, const pyrt_qparams *q) {
  if (q == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: %s is NULL", op, what);
  if (q->dtype != PYRT_U8 && q->dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s dtype must be U8 or S8", op, what);
  if (!isfinite(q->scale) || q->scale <= 0.0f)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s scale must be finite and > 0", op,
                     what);
  const int32_t lo = q->dtype == PYRT_U8 ? 0 : -128;
  if (q->zero_point < lo || q->zero_point > lo + 255)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s zero point %d out of range", op,
                     what, q->zero_point);
  return PYRT_OK;
}

/* Every window must start inside the padded input (ceil_mode may add a last
   window that overhangs the end; one starting beyond it has no input). */
static int check_shape(const char *op, const pyrt_pool2d_shape *s) {
  if (s == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: shape is NULL", op);
  if (s->batch <= 0 || s->channels <= 0 || s->in_h <= 0 || s->in_w <= 0 ||
      s->kernel_h <= 0 || s->kernel_w <= 0 || s->stride_h <= 0 ||
      s->stride_w <= 0 || s->dilation_h <= 0 || s->dilation_w <= 0 ||
      s->out_h <= 0 || s->out_w <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: sizes, kernel, strides, dilations and output must "
                     "be > 0",
                     op);
  if (s->pad_top < 0 || s->pad_left < 0 || s->pad_bottom < 0 ||
      s->pad_right < 0)
    return pyrt_fail(PYRT_ERR_ARG, "%s: pads must be >= 0", op);
  if ((int64_t)(s->out_h - 1) * s->stride_h - s->pad_top >=
          (int64_t)s->in_h + s->pad_bottom ||
      (int64_t)(s->out_w - 1) * s->stride_w - s->pad_left >=
          (int64_t)s->in_w + s->pad_right)
    return pyrt_fail(PYRT_ERR_SHAPE,
                     "%s: output %dx%d has windows past the padded %dx%d input",
                     op, s->out_h, s->out_w, s->in_h, s->in_w);
  return PYRT_OK;
}

int pyrt_qmaxpool2d(const pyrt_pool2d_shape *s, const void *x, int32_t dtype,
                    void *y) {
  int rc = check_shape("qmaxpool2d", s);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qmaxpool2d: NULL buffer");
  if (dtype != PYRT_U8 && dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qmaxpool2d: dtype must be U8 or S8");
  pyrt_kernels()->qmaxpool2d(s, x, dtype, y);
  return PYRT_OK;
}

int pyrt_qavgpool2d(const pyrt_pool2d_shape *s, const void *x,
                    const pyrt_qparams *qx, void *y, const pyrt_qparams *qy) {
  int rc = check_shape("qavgpool2d", s);
  if (!rc) rc = check_q("qavgpool2d", "qx", qx);
  if (!rc) rc = check_q("qavgpool2d", "qy", qy);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qavgpool2d: NULL buffer");
  pyrt_kernels()->qavgpool2d(s, x, qx, y, qy);
  return PYRT_OK;
}

int pyrt_qglobalavgpool(int64_t rows, int64_t hw, const void *x,
                        const pyrt_qparams *qx, void *y,
                        const pyrt_qparams *qy) {
  if (rows <= 0 || hw <= 0 || hw > ((int64_t)1 << 40))
    return pyrt_fail(PYRT_ERR_ARG, "qglobalavgpool: rows and hw must be > 0");
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qglobalavgpool: NULL buffer");
  int rc = check_q("qglobalavgpool", "qx", qx);
  if (!rc) rc = check_q("qglobalavgpool", "qy", qy);
  if (rc) return rc;
  pyrt_kernels()->qglobalavgpool(rows, hw, x, qx, y, qy);
  return PYRT_OK;
}
