/* Validation shared by the float-row kernels (softmax, layernorm,
   activation): see fmath.h. */
#include "fmath/fmath.h"

int pyrt_check_io(const char *op, const char *what, const pyrt_qparams *q) {
  if (q == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s params are NULL", op, what);
  if (q->dtype == PYRT_F32) return PYRT_OK;
  if (q->dtype != PYRT_U8 && q->dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s dtype must be F32, U8 or S8, got %d",
                     op, what, q->dtype);
  if (!isfinite(q->scale) || q->scale <= 0.0f)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: %s scale must be finite and > 0, got %g", op, what,
                     (double)q->scale);
  const int32_t lo = q->dtype == PYRT_U8 ? 0 : -128;
  if (q->zero_point < lo || q->zero_point > lo + 255)
    return pyrt_fail(PYRT_ERR_ARG, "%s: %s zero point %d outside [%d, %d]", op,
                     what, q->zero_point, lo, lo + 255);
  return PYRT_OK;
}

typedef struct {
  pyrt_context *ctx;
  pyrt_rows_fn fn;
  const void *job;
  int64_t rows, chunk;
  int32_t cols;
  int status;
} rows_job;

static void rows_task(void *arg, int32_t task, int32_t worker) {
  rows_job *r = (rows_job *)arg;
  float *buf =
      pyrt_scratch(r->ctx, worker, (size_t)r->cols * 4 * sizeof(float));
  if (buf == NULL) {
    r->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
    return;
  }
  const int64_t r0 = (int64_t)task * r->chunk;
  const int64_t r1 = r0 + r->chunk < r->rows ? r0 + r->chunk : r->rows;
  r->fn(r->ctx->t, r->job, r0, r1, buf);
}

/* Tasks of about this many elements amortize the pool's hand-off. */
enum { ROWS_TASK_ELEMS = 16384 };

int pyrt_run_rows(pyrt_context *ctx, int64_t rows, int32_t cols,
                  pyrt_rows_fn fn, const void *job) {
  int64_t chunk = ROWS_TASK_ELEMS / cols;
  if (chunk < 1) chunk = 1;
  const int64_t per_thread = (rows + 2 * ctx->threads - 1) / (2 * ctx->threads);
  if (ctx->threads > 1 && chunk > per_thread) chunk = per_thread;
  int64_t tasks = (rows + chunk - 1) / chunk;
  if (tasks > INT32_MAX) { /* keep the task count an int32 */
    chunk = (rows + INT32_MAX - 1) / INT32_MAX;
    tasks = (rows + chunk - 1) / chunk;
  }
  rows_job r = {ctx, fn, job, rows, chunk, cols, PYRT_OK};
  pyrt_parallel(ctx, (int32_t)tasks, rows_task, &r);
  return r.status;
}
