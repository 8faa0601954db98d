/* Public QuantizeLinear / DequantizeLinear entry points: layout, dtype and
   scale validation (arithmetic: quant_scalar.c). Zero points need no check:
   every value of their dtype is valid. */
#include <math.h>

#include "internal.h"

/* *acc += n * stride for non-negative operands; 0 on int64 overflow. */
static int add_product(int64_t *acc, int64_t n, int64_t stride) {
  if (n != 0 && stride > (INT64_MAX - *acc) / n) return 0;
  *acc += n * stride;
  return 1;
}

static int check_layout(const char *op, const pyrt_quant_layout *l) {
  if (l == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: layout is NULL", op);
  if (l->outer <= 0 || l->axis_len <= 0 || l->inner <= 0 || l->block <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: outer %lld, axis_len %lld, inner %lld and block "
                     "%lld must be > 0",
                     op, (long long)l->outer, (long long)l->axis_len,
                     (long long)l->inner, (long long)l->block);
  if (l->stride_outer < 0 || l->stride_axis < 0 || l->stride_inner < 0)
    return pyrt_fail(PYRT_ERR_ARG, "%s: scale strides must be >= 0", op);
  if (l->outer > INT64_MAX / l->axis_len / l->inner)
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: element count overflows", op);
  /* The largest scale index must not overflow either. */
  const int64_t blocks = (l->axis_len + l->block - 1) / l->block;
  int64_t top = 0;
  if (!add_product(&top, l->outer - 1, l->stride_outer) ||
      !add_product(&top, blocks - 1, l->stride_axis) ||
      !add_product(&top, l->inner - 1, l->stride_inner))
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: scale strides overflow", op);
  return PYRT_OK;
}

/* Every scale the layout uses must be finite and > 0 (stride-0 dims are
   visited once). */
static int check_scales(const char *op, const pyrt_quant_layout *l,
                        const float *scale) {
  if (scale == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: scale is NULL", op);
  const int64_t no = l->stride_outer ? l->outer : 1;
  const int64_t na =
      l->stride_axis ? (l->axis_len + l->block - 1) / l->block : 1;
  const int64_t ni = l->stride_inner ? l->inner : 1;
  for (int64_t o = 0; o < no; o++)
    for (int64_t a = 0; a < na; a++)
      for (int64_t i = 0; i < ni; i++) {
        int64_t at =
            o * l->stride_outer + a * l->stride_axis + i * l->stride_inner;
        float s = scale[at];
        if (!isfinite(s) || s <= 0.0f)
          return pyrt_fail(PYRT_ERR_ARG,
                           "%s: scale[%lld] must be finite and > 0, got %g", op,
                           (long long)at, (double)s);
      }
  return PYRT_OK;
}

/* One call: rows (o, a) of the layout, each `inner` elements, cut by a
   pyrt_grid; row r's parameters start at (r / axis_len) * stride_outer +
   (r % axis_len / block) * stride_axis. */
typedef struct {
  const pyrt_kernel_table *t;
  const pyrt_quant_layout *l;
  pyrt_grid grid;
  int dequant;
  const void *x;
  int32_t x_dtype; /* dequantize's input, quantize's output */
  const float *scale;
  const void *zero;
  void *y;
} quant_job;

static void quant_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const quant_job *j = (const quant_job *)arg;
  const pyrt_quant_layout *l = j->l;
  const size_t q_width = j->x_dtype == PYRT_S32 ? 4 : 1;
  int64_t r0, r1, c0, c1;
  pyrt_grid_task(&j->grid, task, &r0, &r1, &c0, &c1);
  for (int64_t r = r0; r < r1; r++) {
    const int64_t base = r / l->axis_len * l->stride_outer +
                         r % l->axis_len / l->block * l->stride_axis +
                         c0 * l->stride_inner;
    const size_t at = (size_t)(r * l->inner + c0);
    const void *zero =
        j->zero ? (const char *)j->zero + (size_t)base * q_width : NULL;
    if (j->dequant)
      j->t->dequantize(c1 - c0, (const char *)j->x + at * q_width, j->x_dtype,
                       j->scale + base, zero, l->stride_inner,
                       (float *)j->y + at);
    else
      j->t->quantize(c1 - c0, (const float *)j->x + at, j->scale + base, zero,
                     l->stride_inner, j->x_dtype, (char *)j->y + at);
  }
}

static void run_quant(pyrt_context *ctx, quant_job *j) {
  j->t = ctx->t;
  pyrt_context_enter(ctx);
  j->grid = pyrt_grid_make(ctx, j->l->outer * j->l->axis_len, j->l->inner);
  pyrt_parallel(ctx, j->grid.tasks, quant_task, j);
  pyrt_context_leave(ctx);
}

int pyrt_quantize(pyrt_context *ctx, const pyrt_quant_layout *l, const float *x,
                  const float *scale, const void *zero, int32_t out_dtype,
                  void *y) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "quantize: ctx is NULL");
  int rc = check_layout("quantize", l);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "quantize: x or y is NULL");
  if (out_dtype != PYRT_U8 && out_dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "quantize: output must be U8 or S8, got %d",
                     out_dtype);
  rc = check_scales("quantize", l, scale);
  if (rc) return rc;
  quant_job j = {NULL, l, {0}, 0, x, out_dtype, scale, zero, y};
  run_quant(ctx, &j);
  return PYRT_OK;
}

int pyrt_dequantize(pyrt_context *ctx, const pyrt_quant_layout *l,
                    const void *x, int32_t x_dtype, const float *scale,
                    const void *zero, float *y) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "dequantize: ctx is NULL");
  int rc = check_layout("dequantize", l);
  if (rc) return rc;
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "dequantize: x or y is NULL");
  if (x_dtype != PYRT_U8 && x_dtype != PYRT_S8 && x_dtype != PYRT_S32)
    return pyrt_fail(PYRT_ERR_ARG,
                     "dequantize: input must be U8, S8 or S32, got %d",
                     x_dtype);
  rc = check_scales("dequantize", l, scale);
  if (rc) return rc;
  quant_job j = {NULL, l, {0}, 1, x, x_dtype, scale, zero, y};
  run_quant(ctx, &j);
  return PYRT_OK;
}

int pyrt_dynamic_quantize(pyrt_context *ctx, int64_t n, const float *x,
                          uint8_t *y, float *scale, uint8_t *zero) {
  if (ctx == NULL || x == NULL || y == NULL || scale == NULL || zero == NULL)
    return pyrt_fail(PYRT_ERR_ARG,
                     "dynamic_quantize: ctx, x, y, scale or zero is NULL");
  if (n <= 0)
    return pyrt_fail(PYRT_ERR_ARG, "dynamic_quantize: n must be > 0, got %lld",
                     (long long)n);
  float lo, hi;
  ctx->t->range_f32(n, x, &lo, &hi);
  const float s = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  if (!isfinite(s))
    return pyrt_fail(PYRT_ERR_ARG,
                     "dynamic_quantize: the input range [%g, %g] overflows "
                     "float",
                     (double)lo, (double)hi);
  float z = 0.0f - lo / s;
  z = z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z;
  *scale = s;
  *zero = (uint8_t)rintf(z);
  const pyrt_quant_layout l = {1, 1, n, 1, 0, 0, 0};
  quant_job j = {NULL, &l, {0}, 0, x, PYRT_U8, scale, zero, y};
  run_quant(ctx, &j);
  return PYRT_OK;
}
