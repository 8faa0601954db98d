/* Data movement on the int8 path: the NCHW <-> NHWC transposes at the
   borders of NHWC regions (threaded over matrices or pieces of columns),
   and 256-entry lookup tables (elementwise ops between DQ and Q), strided
   row copies (Concat, Split). Public entry points; the loops are in
   layout_scalar.c and the ISA files. */
#include <string.h>

#include "internal.h"

/* y[b][c][r] = x[b][r][c] as tasks of one matrix of the batch each (in
   order), or of one piece of its columns (rows of y). */
typedef struct {
  const pyrt_kernel_table *t;
  int32_t elem_size;
  int64_t rows, cols;
  int64_t pieces, piece; /* per matrix; piece: columns */
  const char *x;
  char *y;
} transpose_job;

static void transpose_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const transpose_job *j = (const transpose_job *)arg;
  const int64_t b = task / j->pieces, size = j->rows * j->cols * j->elem_size;
  const int64_t c0 = task % j->pieces * j->piece;
  const int64_t c1 = c0 + j->piece < j->cols ? c0 + j->piece : j->cols;
  j->t->transpose(j->elem_size, j->rows, c1 - c0,
                  j->x + b * size + c0 * j->elem_size, j->cols,
                  j->y + b * size + c0 * j->rows * j->elem_size);
}

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
  const int64_t n = rows * cols;
  if (rows == 1 || cols == 1) {
    memcpy(y, x, (size_t)(batch * n * elem_size));
    return PYRT_OK;
  }
  const int64_t tasks = PYRT_TASKS_PER_THREAD * (int64_t)ctx->threads;
  if (ctx->threads == 1 || batch * n < 2 * PYRT_GRAIN ||
      batch > INT32_MAX / tasks) {
    for (int64_t b = 0; b < batch; b++)
      ctx->t->transpose(elem_size, rows, cols,
                        (const char *)x + b * n * elem_size, cols,
                        (char *)y + b * n * elem_size);
    return PYRT_OK;
  }
  transpose_job j = {ctx->t, elem_size,       rows,     cols, 1,
                     cols,   (const char *)x, (char *)y};
  if (batch < tasks) { /* pieces of columns, whole cache lines of x */
    j.pieces = (tasks + batch - 1) / batch;
    j.piece = ((cols + j.pieces - 1) / j.pieces + 63) / 64 * 64;
    j.pieces = (cols + j.piece - 1) / j.piece;
  }
  pyrt_context_enter(ctx);
  pyrt_parallel(ctx, (int32_t)(batch * j.pieces), transpose_task, &j);
  pyrt_context_leave(ctx);
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

/* A pyrt_grid over rows x bytes: each task copies its rows' byte range. */
typedef struct {
  pyrt_grid grid;
  const char *x;
  char *y;
  int64_t x_stride, y_stride;
} copy_job;

static void copy_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const copy_job *j = (const copy_job *)arg;
  int64_t r0, r1, c0, c1;
  pyrt_grid_task(&j->grid, task, &r0, &r1, &c0, &c1);
  for (int64_t r = r0; r < r1; r++)
    memcpy(j->y + r * j->y_stride + c0, j->x + r * j->x_stride + c0,
           (size_t)(c1 - c0));
}

int pyrt_copy_rows(pyrt_context *ctx, int64_t rows, int64_t bytes,
                   const void *x, int64_t x_stride, void *y, int64_t y_stride) {
  if (ctx == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "copy_rows: NULL argument");
  if (rows <= 0 || bytes <= 0 || x_stride < bytes || y_stride < bytes)
    return pyrt_fail(PYRT_ERR_ARG,
                     "copy_rows: rows %lld and bytes %lld must be > 0, strides "
                     "%lld, %lld >= bytes",
                     (long long)rows, (long long)bytes, (long long)x_stride,
                     (long long)y_stride);
  if (rows - 1 > (INT64_MAX - bytes) / x_stride ||
      rows - 1 > (INT64_MAX - bytes) / y_stride)
    return pyrt_fail(PYRT_ERR_SHAPE, "copy_rows: size overflows");
  copy_job j = {pyrt_grid_make(ctx, rows, bytes), (const char *)x, (char *)y,
                x_stride, y_stride};
  if (j.grid.tasks == 1) {
    copy_task(&j, 0, 0);
    return PYRT_OK;
  }
  pyrt_context_enter(ctx);
  pyrt_parallel(ctx, j.grid.tasks, copy_task, &j);
  pyrt_context_leave(ctx);
  return PYRT_OK;
}
