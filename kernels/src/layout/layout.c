/* Data movement on the int8 path: the NCHW <-> NHWC transposes at the
   borders of NHWC regions, and 256-entry lookup tables (elementwise ops
   between DQ and Q). Public entry points; the loops are in layout_scalar.c. */
#include "internal.h"

int pyrt_transpose(pyrt_context *ctx, int32_t elem_size, int64_t batch,
                   int64_t rows, int64_t cols, const void *x, void *y) {
  if (ctx == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "transpose: NULL argument");
  if (elem_size != 1 && elem_size != 4)
    return pyrt_fail(PYRT_ERR_ARG,
                     "transpose: elem_size must be 1 or 4, got %d", elem_size);
  if (batch <= 0 || rows <= 0 || cols <= 0)
    return pyrt_fail(
        PYRT_ERR_ARG,
        "transpose: batch, rows, cols must be > 0, got %lld, %lld, "
        "%lld",
        (long long)batch, (long long)rows, (long long)cols);
  if (rows > INT64_MAX / cols / batch)
    return pyrt_fail(PYRT_ERR_SHAPE, "transpose: size overflows");
  ctx->t->transpose(elem_size, batch, rows, cols, x, y);
  return PYRT_OK;
}

int pyrt_lut8(pyrt_context *ctx, int64_t n, const uint8_t *table, const void *x,
              void *y) {
  if (ctx == NULL || table == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "lut8: NULL argument");
  if (n <= 0) return pyrt_fail(PYRT_ERR_ARG, "lut8: n must be > 0");
  ctx->t->lut8(n, table, (const uint8_t *)x, (uint8_t *)y);
  return PYRT_OK;
}
