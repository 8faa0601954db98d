/* Public per-channel affine map (BatchNormalization in inference form, fp32
   or on int8 codes with DQ and Q fused): validation, and the split of
   [outer][channels][inner] into runs for the table's kernel, threaded. The
   arithmetic is in affine_scalar.c. */
#include <math.h>

#include "internal.h"

/* inner == 1 (NHWC): rows are pixels, a run is a row's channels (step 1);
   inner > 1 (NCHW): rows are (outer, channel) planes, one a / b (step 0). */
typedef struct {
  const pyrt_kernel_table *t;
  pyrt_grid grid;
  int64_t channels;
  int32_t nhwc, x_size, y_size;
  const char *x;
  char *y;
  const float *a, *b;
  pyrt_affine_args args;
} affine_job;

static void affine_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const affine_job *j = (const affine_job *)arg;
  int64_t r0, r1, c0, c1;
  pyrt_grid_task(&j->grid, task, &r0, &r1, &c0, &c1);
  for (int64_t r = r0; r < r1; r++) {
    const int64_t at = r * j->grid.cols + c0;
    const int64_t c = j->nhwc ? c0 : r % j->channels;
    j->t->channel_affine(c1 - c0, j->x + at * j->x_size, j->a + c, j->b + c,
                         j->nhwc, &j->args, j->y + at * j->y_size);
  }
}

static int int8(int32_t dtype) {
  return dtype == PYRT_U8 || dtype == PYRT_S8;
}

static int check_zero(const char *what, int32_t dtype, int32_t zero) {
  const int32_t lo = dtype == PYRT_U8 ? 0 : -128;
  if (int8(dtype) && (zero < lo || zero > lo + 255))
    return pyrt_fail(PYRT_ERR_ARG,
                     "channel_affine: %s zero point %d out of "
                     "range",
                     what, zero);
  return PYRT_OK;
}

int pyrt_channel_affine(pyrt_context *ctx, int64_t outer, int64_t channels,
                        int64_t inner, const void *x, int32_t x_dtype,
                        int32_t x_zero, const float *a, const float *b, void *y,
                        int32_t y_dtype, int32_t y_zero, float lo, float hi) {
  if (ctx == NULL || x == NULL || a == NULL || b == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "channel_affine: NULL argument");
  if (outer <= 0 || channels <= 0 || inner <= 0 ||
      outer > INT64_MAX / 4 / channels / inner)
    return pyrt_fail(PYRT_ERR_ARG,
                     "channel_affine: outer %lld, channels %lld, inner %lld "
                     "must be > 0 and their product fit",
                     (long long)outer, (long long)channels, (long long)inner);
  const int f32 = x_dtype == PYRT_F32 && y_dtype == PYRT_F32;
  if (!f32 && !(int8(x_dtype) && int8(y_dtype)))
    return pyrt_fail(PYRT_ERR_ARG,
                     "channel_affine: dtypes %d -> %d: expected F32 -> F32 or "
                     "U8/S8 -> U8/S8",
                     x_dtype, y_dtype);
  int rc = check_zero("x", x_dtype, x_zero);
  if (!rc) rc = check_zero("y", y_dtype, y_zero);
  if (rc) return rc;
  if (isnan(lo) || isnan(hi) || lo > hi)
    return pyrt_fail(PYRT_ERR_ARG, "channel_affine: clamp [%g, %g] is empty",
                     (double)lo, (double)hi);
  if (!f32) {
    const float qlo = y_dtype == PYRT_U8 ? 0.0f : -128.0f;
    if (lo < qlo || hi > qlo + 255.0f || lo != rintf(lo) || hi != rintf(hi))
      return pyrt_fail(PYRT_ERR_ARG,
                       "channel_affine: clamp [%g, %g] is not a range of "
                       "codes of the output dtype",
                       (double)lo, (double)hi);
  }
  for (int64_t c = 0; c < channels; c++)
    if (!isfinite(a[c]) || !isfinite(b[c]))
      return pyrt_fail(PYRT_ERR_ARG,
                       "channel_affine: channel %lld has a non-finite "
                       "multiplier or offset",
                       (long long)c);
  const int nhwc = inner == 1;
  affine_job j = {ctx->t,
                  {0},
                  channels,
                  nhwc,
                  f32 ? 4 : 1,
                  f32 ? 4 : 1,
                  (const char *)x,
                  (char *)y,
                  a,
                  b,
                  {x_dtype, y_dtype, (float)x_zero, (float)y_zero, lo, hi}};
  pyrt_context_enter(ctx);
  j.grid = nhwc ? pyrt_grid_make(ctx, outer, channels)
                : pyrt_grid_make(ctx, outer * channels, inner);
  pyrt_parallel(ctx, j.grid.tasks, affine_task, &j);
  pyrt_context_leave(ctx);
  return PYRT_OK;
}
