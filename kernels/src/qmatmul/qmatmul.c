/* int8 matrix product of two activations (ONNX QLinearMatMul / DQ -> MatMul
 * -> Q with no constant operand: attention's Q x K^T and P x V).
 *
 * Each batch matrix B[b] is packed per call into the GEMM tile's weight
 * layout (with its column sums and zero point, as pyrt_qgemm_pack does for
 * constant weights) and run through the one int8 GEMM driver, so the
 * arithmetic is exactly qgemm's: int32 accumulation of (a - za)(b - zb),
 * then the output stage. Threads take whole batch matrices (one pack and one
 * serial drive each); with fewer matrices than threads every matrix runs the
 * threaded driver instead.
 */
#include "qmatmul/qmatmul.h"

#include <stdlib.h>

#include "requant/requant.h"

typedef struct {
  const pyrt_qgemm_config *c;
  int32_t M, N, K;
  const uint8_t *a;
  int64_t stride_a;
  int32_t lda;
  uint8_t a_flip;
  int32_t a_zero; /* after the flip */
  const uint8_t *b;
  int64_t stride_b;
  int32_t ldb_k, ldb_n;
  uint8_t b_flip;
  int32_t b_zero; /* after the flip, i.e. on the s8 values */
  const pyrt_output_stage *out;
  char *y;
  int64_t stride_y;
  int32_t ldy;
  size_t out_size, pack_bytes;
  pyrt_context *ctx;
  int status;
} qmatmul_job;

size_t pyrt_qmatmul_pack_bytes(const pyrt_qgemm_config *c, int32_t N,
                               int32_t K) {
  return PYRT_ALIGN_UP(pyrt_pack_prefix_size(N) +
                       pyrt_qgemm_block_size(c, N, K));
}

void pyrt_qmatmul_pack(const pyrt_qgemm_config *c, int32_t N, int32_t K,
                       const uint8_t *w, ptrdiff_t stride_n, ptrdiff_t stride_k,
                       uint8_t flip, int32_t zero, void *packed) {
  pyrt_pack_header *h = (pyrt_pack_header *)packed;
  *h = (pyrt_pack_header){PYRT_PACK_MAGIC, 0,     PYRT_PACK_GEMM, N, K,
                          zero != 0,       c->nr, c->kr};
  int32_t *zeros = pyrt_pack_w_zero(packed);
  for (int32_t n = 0; n < N; n++) zeros[n] = zero;
  pyrt_qgemm_pack_block(c, N, K, w, stride_n, stride_k, flip,
                        pyrt_pack_weights(packed), pyrt_pack_col_sum(packed));
}

/* Packs B[index] (K x N, strided) as N x K weights into `packed`. */
static void pack_b(const qmatmul_job *j, int32_t index, void *packed) {
  pyrt_qmatmul_pack(j->c, j->N, j->K,
                    j->b + (size_t)((int64_t)index * j->stride_b), j->ldb_n,
                    j->ldb_k, j->b_flip, j->b_zero, packed);
}

static pyrt_qgemm_a a_of(const qmatmul_job *j, int32_t index) {
  const pyrt_qgemm_a a = {j->a + (size_t)((int64_t)index * j->stride_a),
                          (size_t)j->lda,
                          NULL,
                          0,
                          j->a_flip,
                          j->a_zero};
  return a;
}

static void *y_of(const qmatmul_job *j, int32_t index) {
  return j->y + (size_t)((int64_t)index * j->stride_y) * j->out_size;
}

static void batch_task(void *arg, int32_t index, int32_t worker) {
  qmatmul_job *j = (qmatmul_job *)arg;
  const size_t drive = pyrt_qgemm_serial_scratch(j->c, j->M, j->N, j->K);
  char *s = pyrt_scratch(j->ctx, worker, j->pack_bytes + drive);
  if (s == NULL) {
    j->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
    return;
  }
  pack_b(j, index, s);
  const pyrt_qgemm_a a = a_of(j, index);
  pyrt_qgemm_drive_serial(j->c, j->M, j->N, j->K, &a, s, NULL, j->out,
                          y_of(j, index), (size_t)j->ldy, s + j->pack_bytes);
}

static int check_operand(const char *name, int32_t dtype, int32_t zero) {
  if (dtype != PYRT_U8 && dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qmatmul: %s must be U8 or S8, got %d", name,
                     dtype);
  const int32_t lo = dtype == PYRT_U8 ? 0 : -128;
  if (zero < lo || zero > lo + 255)
    return pyrt_fail(PYRT_ERR_ARG, "qmatmul: %s zero point %d outside [%d, %d]",
                     name, zero, lo, lo + 255);
  return PYRT_OK;
}

/* The shape checks pyrt_qmatmul and pyrt_smatmul share (op names the
   caller in the message). */
int pyrt_matmul_check_shape(const char *op, int32_t batch, int32_t M, int32_t N,
                            int32_t K, int32_t lda, int32_t ldb_k,
                            int32_t ldb_n, int32_t ldy, int64_t stride_a,
                            int64_t stride_b, int64_t stride_y) {
  if (batch <= 0 || M <= 0 || N <= 0 || K <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: batch, M, N, K must be > 0, got %d, %d, %d, %d", op,
                     batch, M, N, K);
  if (lda < K || ldy < N || ldb_k < 0 || ldb_n < 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: lda %d must be >= K %d, ldy %d >= N %d, B "
                     "strides %d, %d >= 0",
                     op, lda, K, ldy, N, ldb_k, ldb_n);
  if (stride_a < 0 || stride_b < 0 || stride_y < (int64_t)M * ldy)
    return pyrt_fail(PYRT_ERR_ARG,
                     "%s: batch strides must be >= 0 (y's >= M * ldy), "
                     "got %lld, %lld, %lld",
                     op, (long long)stride_a, (long long)stride_b,
                     (long long)stride_y);
  if ((int64_t)N * K > ((int64_t)1 << 30))
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: %d x %d B matrices are too large", op,
                     K, N);
  return PYRT_OK;
}

int pyrt_qmatmul(pyrt_context *ctx, int32_t batch, int32_t M, int32_t N,
                 int32_t K, const void *a, int32_t a_dtype, int32_t a_zero,
                 int64_t stride_a, int32_t lda, const void *b, int32_t b_dtype,
                 int32_t b_zero, int64_t stride_b, int32_t ldb_k, int32_t ldb_n,
                 const pyrt_output_stage *out, void *y, int64_t stride_y,
                 int32_t ldy) {
  if (ctx == NULL || a == NULL || b == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qmatmul: ctx, a, b or y is NULL");
  int rc = pyrt_matmul_check_shape("qmatmul", batch, M, N, K, lda, ldb_k, ldb_n,
                                   ldy, stride_a, stride_b, stride_y);
  if (!rc) rc = check_operand("a", a_dtype, a_zero);
  if (!rc) rc = check_operand("b", b_dtype, b_zero);
  if (!rc) rc = pyrt_check_output_stage("qmatmul", out, N);
  if (rc) return rc;
  const pyrt_qgemm_config *c = &ctx->t->qgemm;
  const uint8_t a_flip = a_dtype == PYRT_S8 ? 0x80 : 0;
  const uint8_t b_flip = b_dtype == PYRT_U8 ? 0x80 : 0; /* packs hold s8 */
  qmatmul_job j = {
      c,
      M,
      N,
      K,
      (const uint8_t *)a,
      stride_a,
      lda,
      a_flip,
      a_zero + (a_flip ? 128 : 0),
      (const uint8_t *)b,
      stride_b,
      ldb_k,
      ldb_n,
      b_flip,
      b_zero - (b_flip ? 128 : 0),
      out,
      (char *)y,
      stride_y,
      ldy,
      out->out_dtype == PYRT_U8 || out->out_dtype == PYRT_S8 ? 1 : 4,
      pyrt_qmatmul_pack_bytes(c, N, K),
      ctx,
      PYRT_OK};
  pyrt_context_enter(ctx);
  if (batch >= ctx->threads) {
    pyrt_parallel(ctx, batch, batch_task, &j);
    rc = j.status == PYRT_OK
             ? PYRT_OK
             : pyrt_fail(j.status, "qmatmul: out of memory for scratch");
  } else {
    void *packed = aligned_alloc(PYRT_ALIGN, j.pack_bytes);
    rc = packed ? PYRT_OK : pyrt_fail(PYRT_ERR_NOMEM, "qmatmul: out of memory");
    for (int32_t i = 0; i < batch && rc == PYRT_OK; i++) {
      pack_b(&j, i, packed);
      const pyrt_qgemm_a ai = a_of(&j, i);
      rc = pyrt_qgemm_drive(ctx, M, N, K, &ai, packed, NULL, out, y_of(&j, i),
                            (size_t)ldy);
    }
    free(packed);
  }
  pyrt_context_leave(ctx);
  return rc;
}
