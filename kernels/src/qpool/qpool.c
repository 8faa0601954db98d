/* Public int8 pooling entry points (NCHW and NHWC): shape and parameter
   validation, and the split of the output rows over the context's threads;
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
  if (s->layout != PYRT_NCHW && s->layout != PYRT_NHWC)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: layout must be NCHW (0) or NHWC (1), got %d", op,
                     s->layout);
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

/* A pool call: output rows (NCHW: planes x out_h, NHWC: images x out_h)
   in tasks of rows_per_task. */
typedef struct {
  const pyrt_kernel_table *t;
  const pyrt_pool2d_shape *s;
  const void *x;
  int32_t dtype;               /* max pool */
  const pyrt_qparams *qx, *qy; /* average pool (NULL for max) */
  void *y;
  int64_t rows, rows_per_task;
  int32_t f32_avg; /* F32: average, else max */
} pool_job;

static void pool_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const pool_job *j = (const pool_job *)arg;
  const int64_t r0 = task * j->rows_per_task;
  const int64_t r1 =
      r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
  const int nhwc = j->s->layout == PYRT_NHWC;
  if (j->dtype == PYRT_F32)
    (j->f32_avg ? j->t->avgpool2d_f32 : j->t->maxpool2d_f32)(
        j->s, (const float *)j->x, (float *)j->y, r0, r1);
  else if (j->qx == NULL)
    (nhwc ? j->t->qmaxpool2d_nhwc : j->t->qmaxpool2d)(j->s, j->x, j->dtype,
                                                      j->y, r0, r1);
  else
    (nhwc ? j->t->qavgpool2d_nhwc : j->t->qavgpool2d)(j->s, j->x, j->qx, j->y,
                                                      j->qy, r0, r1);
}

/* Tasks of whole rows: one when single-threaded or small, else about
   PYRT_TASKS_PER_THREAD per thread. */
static int32_t row_tasks(const pyrt_context *ctx, int64_t rows, int64_t work) {
  if (ctx->threads == 1 || work < 2 * PYRT_GRAIN) return 1;
  const int64_t tasks = PYRT_TASKS_PER_THREAD * (int64_t)ctx->threads;
  return (int32_t)(rows < tasks ? rows : tasks);
}

static void run_pool(pyrt_context *ctx, pool_job *j) {
  const pyrt_pool2d_shape *s = j->s;
  j->t = ctx->t;
  j->rows =
      (int64_t)s->batch * s->out_h * (s->layout == PYRT_NHWC ? 1 : s->channels);
  /* outputs (< 2^55, check_shape) times taps, capped to stay in range */
  const int64_t taps = (int64_t)s->kernel_h * s->kernel_w;
  const int64_t work = (int64_t)s->batch * s->channels * s->out_h * s->out_w *
                       (taps < 256 ? taps : 256);
  const int32_t tasks = row_tasks(ctx, j->rows, work);
  j->rows_per_task = (j->rows + tasks - 1) / tasks;
  pyrt_context_enter(ctx);
  pyrt_parallel(ctx,
                (int32_t)((j->rows + j->rows_per_task - 1) / j->rows_per_task),
                pool_task, j);
  pyrt_context_leave(ctx);
}

int pyrt_qmaxpool2d(pyrt_context *ctx, const pyrt_pool2d_shape *s,
                    const void *x, int32_t dtype, void *y) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "qmaxpool2d: ctx is NULL");
  int rc = check_shape("qmaxpool2d", s);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qmaxpool2d: NULL buffer");
  if (dtype != PYRT_U8 && dtype != PYRT_S8 && dtype != PYRT_F32)
    return pyrt_fail(PYRT_ERR_ARG,
                     "qmaxpool2d: dtype must be U8, S8 or F32, got %d", dtype);
  pool_job j = {NULL, s, x, dtype, NULL, NULL, y, 0, 0, 0};
  run_pool(ctx, &j);
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
  pool_job j = {NULL, s, x, 0, qx, qy, y, 0, 0, 0};
  run_pool(ctx, &j);
  return PYRT_OK;
}

int pyrt_avgpool2d_f32(pyrt_context *ctx, const pyrt_pool2d_shape *s,
                       const float *x, float *y) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "avgpool2d_f32: ctx is NULL");
  const int rc = check_shape("avgpool2d_f32", s);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "avgpool2d_f32: NULL buffer");
  pool_job j = {NULL, s, x, PYRT_F32, NULL, NULL, y, 0, 0, 1};
  run_pool(ctx, &j);
  return PYRT_OK;
}

/* Global average pools: NCHW in tasks of `per_task` rows; NHWC in tasks
   of (`rows` images, or one image and `per_task` channels). */
typedef struct {
  const pyrt_kernel_table *t;
  int64_t rows, hw, channels, per_task, chunks;
  int split; /* NHWC: a task per (image, chunk), else one for all */
  const char *x;
  const pyrt_qparams *qx, *qy;
  char *y;
} global_job;

static void global_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const global_job *j = (const global_job *)arg;
  if (j->channels == 0) { /* NCHW */
    const int64_t r0 = task * j->per_task;
    const int64_t n = r0 + j->per_task < j->rows ? j->per_task : j->rows - r0;
    j->t->qglobalavgpool(n, j->hw, j->x + r0 * j->hw, j->qx, j->y + r0, j->qy);
    return;
  }
  const int64_t c0 = task % j->chunks * j->per_task;
  const int64_t n =
      c0 + j->per_task < j->channels ? j->per_task : j->channels - c0;
  const int64_t b0 = j->split ? task / j->chunks : 0;
  const int64_t b1 = j->split ? b0 + 1 : j->rows;
  for (int64_t b = b0; b < b1; b++)
    j->t->qglobalavgpool_nhwc(j->hw, j->channels, n,
                              j->x + (b * j->hw * j->channels + c0), j->qx,
                              j->y + b * j->channels + c0, j->qy);
}

static int check_global(const char *op, const pyrt_context *ctx, int64_t rows,
                        int64_t hw, const void *x, const pyrt_qparams *qx,
                        const void *y, const pyrt_qparams *qy) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: ctx is NULL", op);
  if (rows <= 0 || hw <= 0 || !count_fits(rows, hw, 1, 1))
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: rows %lld and hw %lld must be > 0 and their product "
                     "< 2^55",
                     op, (long long)rows, (long long)hw);
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "%s: NULL buffer", op);
  int rc = check_q(op, "qx", qx);
  if (!rc) rc = check_q(op, "qy", qy);
  if (!rc) rc = check_ratio(op, qx, qy);
  return rc;
}

int pyrt_qglobalavgpool(pyrt_context *ctx, int64_t rows, int64_t hw,
                        const void *x, const pyrt_qparams *qx, void *y,
                        const pyrt_qparams *qy) {
  int rc = check_global("qglobalavgpool", ctx, rows, hw, x, qx, y, qy);
  if (rc) return rc;
  global_job j = {ctx->t, rows, hw, 0, rows, 1, 0, x, qx, qy, y};
  const int32_t tasks = row_tasks(ctx, rows, rows * hw);
  j.per_task = (rows + tasks - 1) / tasks;
  pyrt_context_enter(ctx);
  pyrt_parallel(ctx, (int32_t)((rows + j.per_task - 1) / j.per_task),
                global_task, &j);
  pyrt_context_leave(ctx);
  return PYRT_OK;
}

int pyrt_qglobalavgpool_nhwc(pyrt_context *ctx, int64_t batch, int64_t hw,
                             int64_t channels, const void *x,
                             const pyrt_qparams *qx, void *y,
                             const pyrt_qparams *qy) {
  const char *op = "qglobalavgpool_nhwc";
  if (batch <= 0 || channels <= 0 || channels > INT64_MAX / 256 / batch)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: batch %lld and channels %lld must be > 0", op,
                     (long long)batch, (long long)channels);
  int rc = check_global(op, ctx, batch * channels, hw, x, qx, y, qy);
  if (rc) return rc;
  global_job j = {ctx->t, batch, hw, channels, channels, 1, 0, x, qx, qy, y};
  int32_t tasks = 1;
  if (ctx->threads > 1 && batch * channels * hw >= 2 * PYRT_GRAIN &&
      batch <= PYRT_TASKS_PER_THREAD * ctx->threads) {
    /* per image, channel chunks of whole vectors */
    const int64_t want =
        (PYRT_TASKS_PER_THREAD * (int64_t)ctx->threads + batch - 1) / batch;
    int64_t per = (channels + want - 1) / want;
    per = (per + 63) / 64 * 64;
    j.per_task = per < channels ? per : channels;
    j.chunks = (channels + j.per_task - 1) / j.per_task;
    j.split = 1;
    tasks = (int32_t)(batch * j.chunks);
  }
  pyrt_context_enter(ctx);
  pyrt_parallel(ctx, tasks, global_task, &j);
  pyrt_context_leave(ctx);
  return PYRT_OK;
}

int pyrt_globalavgpool_f32_nhwc(pyrt_context *ctx, int64_t batch, int64_t hw,
                                int64_t channels, const float *x, float *y) {
  if (ctx == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "globalavgpool_f32_nhwc: NULL argument");
  if (batch <= 0 || hw <= 0 || channels <= 0 ||
      channels > INT64_MAX / hw / batch)
    return pyrt_fail(PYRT_ERR_ARG,
                     "globalavgpool_f32_nhwc: batch %lld, hw %lld, channels "
                     "%lld must be > 0 and fit",
                     (long long)batch, (long long)hw, (long long)channels);
  for (int64_t b = 0; b < batch; b++)
    pyrt_globalavgpool_f32_nhwc_scalar(hw, channels, x + b * hw * channels,
                                       y + b * channels);
  return PYRT_OK;
}
