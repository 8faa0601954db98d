/* Fused attention: softmax(Q K^T * x_mul / x_div + mask) V per (batch, head),
 * tiled over blocks of query rows.
 *
 * It is made of the kernel table's own pieces, so it means exactly what the
 * unfused steps mean and every ISA gives the scalar table's bits:
 *   1. per (batch, head), K and V are packed once as the GEMM's weights
 *      (int8: pyrt_qmatmul_pack on the table's qgemm tile, as pyrt_qmatmul
 *      packs its B; fp32: the sgemm tile's NR-column panels);
 *   2. per (batch, head, block of query rows): the scores block through the
 *      GEMM (int8: the one driver, pyrt_qgemm_drive_serial, with the
 *      scores' output stage; fp32: the sgemm tile, fma with k ascending from
 *      0 as pyrt_sgemm), the table's softmax rows on that block (with x_mul,
 * x_div, the mask rows and the quantization of P), then P V through the GEMM
 *      again, written straight into y at its strides.
 * Only a [rows][kv_len] block of scores and probabilities is ever held (per
 * worker scratch), never [heads][q_len][kv_len]. Every task writes its own
 * rows of y, so results do not depend on the thread count; rows do not
 * depend on each other, so the block size changes no bit either.
 */
#include <string.h>

#include "fmath/fmath.h"
#include "qmatmul/qmatmul.h"
#include "requant/requant.h"
#include "sgemm/sgemm.h"

/* Scores held per block: about this many elements (64 KiB of floats). */
enum { BLOCK_SCORES = 16384 };

typedef struct {
  pyrt_context *ctx;
  const pyrt_attention_args *a;
  int fp32;
  int32_t rows, blocks; /* query rows per block, blocks per (batch, head) */
  char *packs;          /* per (batch, head): packed K then packed V */
  size_t k_bytes, v_bytes;
  size_t scores_bytes, probs_bytes, gemm_bytes; /* per-worker scratch parts */
  int status;
} attention_job;

static int is_int8(int32_t dtype) {
  return dtype == PYRT_U8 || dtype == PYRT_S8;
}

static size_t elem_size(int32_t dtype) {
  return is_int8(dtype) ? 1 : 4;
}

/* Row `row` of (b, h); columns follow at stride[3]. */
static const char *at(const pyrt_attention_operand *o, int32_t b, int32_t h,
                      int64_t row) {
  const int64_t e = b * o->stride[0] + h * o->stride[1] + row * o->stride[2];
  return (const char *)o->data + (size_t)e * elem_size(o->dtype);
}

/* ---- phase 1: K and V packed once per (batch, head) -----------------------
 */

static void pack_task(void *arg, int32_t task, int32_t worker) {
  (void)worker;
  const attention_job *j = (const attention_job *)arg;
  const pyrt_attention_args *a = j->a;
  const int32_t b = task / a->heads, h = task % a->heads;
  char *k_pack = j->packs + (size_t)task * (j->k_bytes + j->v_bytes);
  char *v_pack = k_pack + j->k_bytes;
  const int64_t *ks = a->k.stride, *vs = a->v.stride;
  if (j->fp32) { /* K: N = keys, K = head_dim; V: N = v_dim, K = keys */
    const pyrt_sgemm_config *c = &j->ctx->t->sgemm;
    pyrt_smatmul_pack(c, a->kv_len, a->head_dim,
                      (const float *)at(&a->k, b, h, 0), ks[2], ks[3],
                      (float *)k_pack);
    pyrt_smatmul_pack(c, a->v_dim, a->kv_len, (const float *)at(&a->v, b, h, 0),
                      vs[3], vs[2], (float *)v_pack);
    return;
  }
  /* as pyrt_qmatmul: packs hold s8, u8 operands flipped with their zero */
  const pyrt_qgemm_config *c = &j->ctx->t->qgemm;
  const uint8_t k_flip = a->k.dtype == PYRT_U8 ? 0x80 : 0;
  const uint8_t v_flip = a->v.dtype == PYRT_U8 ? 0x80 : 0;
  pyrt_qmatmul_pack(c, a->kv_len, a->head_dim,
                    (const uint8_t *)at(&a->k, b, h, 0), ks[2], ks[3], k_flip,
                    a->k.zero_point - (k_flip ? 128 : 0), k_pack);
  pyrt_qmatmul_pack(c, a->v_dim, a->kv_len, (const uint8_t *)at(&a->v, b, h, 0),
                    vs[3], vs[2], v_flip, a->v.zero_point - (v_flip ? 128 : 0),
                    v_pack);
}

/* ---- phase 2: one block of query rows of one (batch, head) --------------- */

/* The softmax rows of the block [q0, q0 + rows) of (b, h): x -> p. */
static void softmax_block(const attention_job *j, int32_t b, int32_t h,
                          int32_t q0, int32_t rows, const void *x, void *p,
                          float *buf) {
  const pyrt_attention_args *a = j->a;
  const pyrt_qparams f32 = {PYRT_F32, 1.0f, 0};
  const int32_t n = a->kv_len;
  pyrt_softmax_job s = {
      rows, n, x, j->fp32 ? f32 : a->scores_q, a->x_mul, a->x_div,
      NULL, 1, p, j->fp32 ? f32 : a->probs};
  if (a->mask == NULL) {
    j->ctx->t->softmax(&s, 0, rows, buf);
    return;
  }
  const float *m = a->mask + b * a->mask_stride[0] + h * a->mask_stride[1] +
                   q0 * a->mask_stride[2];
  if (a->mask_stride[2] == 0 || a->mask_stride[2] == n) {
    s.mask = m; /* one row for the block, or one per row */
    s.rows_per_mask = a->mask_stride[2] == 0 ? rows : 1;
    j->ctx->t->softmax(&s, 0, rows, buf);
    return;
  }
  const size_t xs = j->fp32 ? 4 : elem_size(a->scores.out_dtype);
  const size_t ps = j->fp32 ? 4 : 1;
  s.rows = 1;
  for (int32_t r = 0; r < rows; r++) { /* mask rows at another stride */
    s.x = (const char *)x + (size_t)r * (size_t)n * xs;
    s.y = (char *)p + (size_t)r * (size_t)n * ps;
    s.mask = m + r * a->mask_stride[2];
    j->ctx->t->softmax(&s, 0, 1, buf);
  }
}

static void block_task(void *arg, int32_t task, int32_t worker) {
  attention_job *j = (attention_job *)arg;
  const pyrt_attention_args *a = j->a;
  const int32_t bh = task / j->blocks, b = bh / a->heads, h = bh % a->heads;
  const int32_t q0 = task % j->blocks * j->rows;
  const int32_t rows = a->q_len - q0 < j->rows ? a->q_len - q0 : j->rows;
  char *s = pyrt_scratch(j->ctx, worker,
                         j->scores_bytes + j->probs_bytes + j->gemm_bytes +
                             PYRT_ALIGN_UP((size_t)a->kv_len * 8));
  if (s == NULL) {
    j->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
    return;
  }
  char *scores = s, *probs = s + j->scores_bytes;
  char *gemm = probs + j->probs_bytes;
  float *buf = (float *)(gemm + j->gemm_bytes); /* softmax: 2 * kv_len */
  const char *k_pack = j->packs + (size_t)bh * (j->k_bytes + j->v_bytes);
  const char *v_pack = k_pack + j->k_bytes;
  const int32_t n = a->kv_len;
  char *y = (char *)a->y + (size_t)(b * a->y_stride[0] + h * a->y_stride[1] +
                                    q0 * a->y_stride[2]) *
                               elem_size(j->fp32 ? PYRT_F32 : a->out.out_dtype);
  if (j->fp32) {
    const pyrt_sgemm_config *c = &j->ctx->t->sgemm;
    float *zeros = (float *)gemm; /* the tile's start for the first K block */
    memset(zeros, 0, (size_t)c->nr * 4);
    pyrt_sgemm_serial(c, rows, n, a->head_dim,
                      (const float *)at(&a->q, b, h, q0),
                      (size_t)a->q.stride[2], (const float *)k_pack, zeros,
                      (float *)scores, (size_t)n);
    softmax_block(j, b, h, q0, rows, scores, probs, buf);
    pyrt_sgemm_serial(c, rows, a->v_dim, n, (const float *)probs, (size_t)n,
                      (const float *)v_pack, zeros, (float *)y,
                      (size_t)a->y_stride[2]);
    return;
  }
  const pyrt_qgemm_config *c = &j->ctx->t->qgemm;
  const uint8_t q_flip = a->q.dtype == PYRT_S8 ? 0x80 : 0;
  const pyrt_qgemm_a qa = {(const uint8_t *)at(&a->q, b, h, q0),
                           (size_t)a->q.stride[2],
                           NULL,
                           0,
                           q_flip,
                           a->q.zero_point + (q_flip ? 128 : 0)};
  pyrt_qgemm_drive_serial(c, rows, n, a->head_dim, &qa, k_pack, NULL,
                          &a->scores, scores, (size_t)n, gemm);
  softmax_block(j, b, h, q0, rows, scores, probs, buf);
  const uint8_t p_flip = a->probs.dtype == PYRT_S8 ? 0x80 : 0;
  const pyrt_qgemm_a pa = {(const uint8_t *)probs,
                           (size_t)n,
                           NULL,
                           0,
                           p_flip,
                           a->probs.zero_point + (p_flip ? 128 : 0)};
  pyrt_qgemm_drive_serial(c, rows, a->v_dim, n, &pa, v_pack, NULL, &a->out, y,
                          (size_t)a->y_stride[2], gemm);
}

/* ---- the public entry point ------------------------------------------------
 */

/* rows_apart: the operand is read in place as GEMM rows (Q): contiguous
   columns, rows at least cols apart. */
static int check_operand(const char *name, const pyrt_attention_operand *o,
                         int fp32, int32_t cols, int rows_apart) {
  if (o->data == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "attention: %s is NULL", name);
  if (fp32 ? o->dtype != PYRT_F32 : !is_int8(o->dtype))
    return pyrt_fail(PYRT_ERR_ARG,
                     "attention: %s must be %s like q, got dtype %d", name,
                     fp32 ? "F32" : "U8 or S8", o->dtype);
  if (!fp32) {
    const int32_t lo = o->dtype == PYRT_U8 ? 0 : -128;
    if (o->zero_point < lo || o->zero_point > lo + 255)
      return pyrt_fail(PYRT_ERR_ARG,
                       "attention: %s zero point %d outside [%d, %d]", name,
                       o->zero_point, lo, lo + 255);
  }
  const int64_t *s = o->stride;
  if (s[0] < 0 || s[1] < 0 || s[2] < 0 || s[3] < 0 ||
      (rows_apart && (s[3] != 1 || s[2] < cols)))
    return pyrt_fail(
        PYRT_ERR_ARG,
        "attention: %s strides %lld, %lld, %lld, %lld must be >= "
        "0%s",
        name, (long long)s[0], (long long)s[1], (long long)s[2],
        (long long)s[3],
        rows_apart ? ", with contiguous columns and rows apart" : "");
  return PYRT_OK;
}

static int check_stage(const char *name, const pyrt_output_stage *s,
                       int allow_f32) {
  if (s->scale == NULL || s->per_channel)
    return pyrt_fail(PYRT_ERR_ARG,
                     "attention: the %s stage needs one per-tensor scale",
                     name);
  if (!is_int8(s->out_dtype) && !(allow_f32 && s->out_dtype == PYRT_F32))
    return pyrt_fail(PYRT_ERR_ARG,
                     "attention: the %s stage must write U8, S8%s, got %d",
                     name, allow_f32 ? " or F32" : "", s->out_dtype);
  return pyrt_check_output_stage("attention", s, 1);
}

static int check_args(const pyrt_attention_args *a) {
  if (a->batch <= 0 || a->heads <= 0 || a->q_len <= 0 || a->kv_len <= 0 ||
      a->head_dim <= 0 || a->v_dim <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "attention: batch, heads, q_len, kv_len, head_dim, v_dim "
                     "must be > 0, got %d, %d, %d, %d, %d, %d",
                     a->batch, a->heads, a->q_len, a->kv_len, a->head_dim,
                     a->v_dim);
  if ((int64_t)a->batch * a->heads * a->q_len > INT32_MAX ||
      (int64_t)a->kv_len * (a->head_dim > a->v_dim ? a->head_dim : a->v_dim) >
          ((int64_t)1 << 30))
    return pyrt_fail(PYRT_ERR_SHAPE,
                     "attention: %d x %d x %d queries over %d keys are too "
                     "large",
                     a->batch, a->heads, a->q_len, a->kv_len);
  const int fp32 = a->q.dtype == PYRT_F32;
  int rc = check_operand("q", &a->q, fp32, a->head_dim, 1);
  if (!rc) rc = check_operand("k", &a->k, fp32, a->head_dim, 0);
  if (!rc) rc = check_operand("v", &a->v, fp32, a->v_dim, 0);
  if (rc) return rc;
  if (a->y == NULL) return pyrt_fail(PYRT_ERR_ARG, "attention: y is NULL");
  if (a->y_stride[0] < 0 || a->y_stride[1] < 0 || a->y_stride[2] < a->v_dim)
    return pyrt_fail(PYRT_ERR_ARG,
                     "attention: y strides must be >= 0 and the row stride "
                     ">= v_dim %d",
                     a->v_dim);
  if (a->mask != NULL &&
      (a->mask_stride[0] < 0 || a->mask_stride[1] < 0 || a->mask_stride[2] < 0))
    return pyrt_fail(PYRT_ERR_ARG, "attention: mask strides must be >= 0");
  if (!isfinite(a->x_div) || a->x_div == 0.0f || !isfinite(a->x_mul) ||
      a->x_mul == 0.0f)
    return pyrt_fail(PYRT_ERR_ARG,
                     "attention: x_mul and x_div must be finite and nonzero, "
                     "got %g, %g",
                     (double)a->x_mul, (double)a->x_div);
  if (fp32) {
    if (a->out.out_dtype != PYRT_F32)
      return pyrt_fail(PYRT_ERR_ARG,
                       "attention: fp32 attention writes F32, got dtype %d",
                       a->out.out_dtype);
    return PYRT_OK;
  }
  rc = check_stage("scores", &a->scores, 1);
  if (!rc) rc = check_stage("output", &a->out, 1);
  if (!rc) rc = pyrt_check_io("attention", "scores", &a->scores_q);
  if (!rc &&
      (a->scores_q.dtype == PYRT_F32) != (a->scores.out_dtype == PYRT_F32))
    rc = pyrt_fail(PYRT_ERR_ARG,
                   "attention: scores_q must be F32 exactly when the scores "
                   "stage writes F32");
  if (!rc && a->scores_q.dtype != PYRT_F32 &&
      a->scores_q.dtype != a->scores.out_dtype)
    rc = pyrt_fail(PYRT_ERR_ARG,
                   "attention: scores_q dtype %d differs from the scores "
                   "stage's %d",
                   a->scores_q.dtype, a->scores.out_dtype);
  if (!rc && !is_int8(a->probs.dtype))
    rc = pyrt_fail(PYRT_ERR_ARG,
                   "attention: int8 attention quantizes P: probs must be U8 "
                   "or S8, got %d",
                   a->probs.dtype);
  if (!rc) rc = pyrt_check_io("attention", "probs", &a->probs);
  return rc;
}

int pyrt_attention(pyrt_context *ctx, const pyrt_attention_args *a) {
  if (ctx == NULL || a == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "attention: ctx or args is NULL");
  int rc = check_args(a);
  if (rc) return rc;
  attention_job j = {0};
  j.ctx = ctx;
  j.a = a;
  j.fp32 = a->q.dtype == PYRT_F32;
  const int32_t mr = j.fp32 ? ctx->t->sgemm.mr : ctx->t->qgemm.mr;
  int32_t rows = BLOCK_SCORES / a->kv_len / mr * mr;
  rows = rows < mr ? mr : rows;
  j.rows = rows < a->q_len ? rows : a->q_len;
  j.blocks = (a->q_len + j.rows - 1) / j.rows;
  const int32_t n = a->kv_len, bh = a->batch * a->heads;
  if (j.fp32) {
    const pyrt_sgemm_config *c = &ctx->t->sgemm;
    j.k_bytes = pyrt_smatmul_pack_bytes(c, n, a->head_dim);
    j.v_bytes = pyrt_smatmul_pack_bytes(c, a->v_dim, n);
    j.scores_bytes = PYRT_ALIGN_UP((size_t)j.rows * (size_t)n * 4);
    j.probs_bytes = j.scores_bytes;
    j.gemm_bytes = PYRT_ALIGN_UP((size_t)c->nr * 4); /* the tile's zeros */
  } else {
    const pyrt_qgemm_config *c = &ctx->t->qgemm;
    j.k_bytes = pyrt_qmatmul_pack_bytes(c, n, a->head_dim);
    j.v_bytes = pyrt_qmatmul_pack_bytes(c, a->v_dim, n);
    j.scores_bytes = PYRT_ALIGN_UP((size_t)j.rows * (size_t)n *
                                   elem_size(a->scores.out_dtype));
    j.probs_bytes = PYRT_ALIGN_UP((size_t)j.rows * (size_t)n);
    const size_t qk = pyrt_qgemm_serial_scratch(c, j.rows, n, a->head_dim);
    const size_t pv = pyrt_qgemm_serial_scratch(c, j.rows, a->v_dim, n);
    j.gemm_bytes = PYRT_ALIGN_UP(qk > pv ? qk : pv);
  }
  pyrt_context_enter(ctx);
  j.packs =
      pyrt_scratch(ctx, PYRT_SHARED, (size_t)bh * (j.k_bytes + j.v_bytes));
  if (j.packs == NULL) {
    pyrt_context_leave(ctx);
    return pyrt_fail(PYRT_ERR_NOMEM, "attention: out of memory");
  }
  j.status = PYRT_OK;
  pyrt_parallel(ctx, bh, pack_task, &j);
  if (j.status == PYRT_OK) pyrt_parallel(ctx, bh * j.blocks, block_task, &j);
  pyrt_context_leave(ctx);
  return j.status == PYRT_OK
             ? PYRT_OK
             : pyrt_fail(j.status, "attention: out of memory for scratch");
}
