/* fp32 matrix product of two activations (an FP32 encoder's Q x K^T and
 * P x V outside the fused attention), the float twin of qmatmul.c: each
 * batch matrix B[i] is packed per call into the sgemm tile's panels and
 * multiplied on one thread with pyrt_sgemm's arithmetic (fma, k ascending
 * from 0), so the result is the fp32 GEMM's bit for bit. Tasks are
 * (batch matrix, band of rows) pairs; each packs its B, so bands are cut
 * only when there are fewer matrices than threads.
 */
#include <string.h>

#include "qmatmul/qmatmul.h"

size_t pyrt_smatmul_pack_bytes(const pyrt_sgemm_config *c, int32_t N,
                               int32_t K) {
  return PYRT_ALIGN_UP((size_t)(N + c->nr - 1) / (size_t)c->nr * (size_t)c->nr *
                       (size_t)K * 4);
}

void pyrt_smatmul_pack(const pyrt_sgemm_config *c, int32_t N, int32_t K,
                       const float *w, int64_t stride_n, int64_t stride_k,
                       float *packed) {
  float *d = packed;
  for (int32_t n0 = 0; n0 < N; n0 += c->nr)
    for (int32_t k = 0; k < K; k++)
      for (int32_t j = 0; j < c->nr; j++)
        *d++ = n0 + j < N ? w[(n0 + j) * stride_n + k * stride_k] : 0.0f;
}

void pyrt_sgemm_serial(const pyrt_sgemm_config *c, int32_t M, int32_t N,
                       int32_t K, const float *a, size_t lda,
                       const float *packed, const float *zeros, float *y,
                       size_t ldy) {
  const size_t panel = (size_t)K * (size_t)c->nr;
  for (int32_t k0 = 0; k0 < K; k0 += c->kc) {
    const int32_t kc = K - k0 < c->kc ? K - k0 : c->kc;
    for (int32_t n0 = 0, p = 0; n0 < N; n0 += c->nr, p++) {
      const int32_t nr = N - n0 < c->nr ? N - n0 : c->nr;
      const float *b = packed + (size_t)p * panel + (size_t)k0 * (size_t)c->nr;
      for (int32_t r0 = 0; r0 < M; r0 += c->mr) {
        const int32_t mr = M - r0 < c->mr ? M - r0 : c->mr;
        c->ukernel(mr, nr, kc, a + (size_t)r0 * lda + (size_t)k0, lda, b,
                   k0 == 0 ? zeros : NULL, NULL,
                   y + (size_t)r0 * ldy + (size_t)n0, ldy);
      }
    }
  }
}

typedef struct {
  pyrt_context *ctx;
  int32_t M, N, K, band, bands;
  const float *a, *b;
  int64_t stride_a, stride_b, stride_y;
  int32_t lda, ldb_k, ldb_n, ldy;
  float *y;
  size_t pack_bytes;
  int status;
} smatmul_job;

static void smatmul_task(void *arg, int32_t task, int32_t worker) {
  smatmul_job *j = (smatmul_job *)arg;
  const pyrt_sgemm_config *c = &j->ctx->t->sgemm;
  const int64_t i = task / j->bands;
  const int32_t m0 = task % j->bands * j->band;
  const int32_t rows = j->M - m0 < j->band ? j->M - m0 : j->band;
  char *s = pyrt_scratch(j->ctx, worker,
                         j->pack_bytes + PYRT_ALIGN_UP((size_t)c->nr * 4));
  if (s == NULL) {
    j->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
    return;
  }
  float *packed = (float *)s, *zeros = (float *)(s + j->pack_bytes);
  memset(zeros, 0, (size_t)c->nr * 4);
  pyrt_smatmul_pack(c, j->N, j->K, j->b + i * j->stride_b, j->ldb_n, j->ldb_k,
                    packed);
  pyrt_sgemm_serial(
      c, rows, j->N, j->K, j->a + i * j->stride_a + (int64_t)m0 * j->lda,
      (size_t)j->lda, packed, zeros,
      j->y + i * j->stride_y + (int64_t)m0 * j->ldy, (size_t)j->ldy);
}

int pyrt_smatmul(pyrt_context *ctx, int32_t batch, int32_t M, int32_t N,
                 int32_t K, const float *a, int64_t stride_a, int32_t lda,
                 const float *b, int64_t stride_b, int32_t ldb_k, int32_t ldb_n,
                 float *y, int64_t stride_y, int32_t ldy) {
  if (ctx == NULL || a == NULL || b == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "smatmul: ctx, a, b or y is NULL");
  const int rc =
      pyrt_matmul_check_shape("smatmul", batch, M, N, K, lda, ldb_k, ldb_n, ldy,
                              stride_a, stride_b, stride_y);
  if (rc) return rc;
  const pyrt_sgemm_config *c = &ctx->t->sgemm;
  /* fewer matrices than threads: cut rows into about 2 bands per thread */
  int32_t band = M;
  if (batch < ctx->threads) {
    const int32_t per = (2 * ctx->threads + batch - 1) / batch;
    band = (M + per - 1) / per;
    band = (band + c->mr - 1) / c->mr * c->mr;
    band = band < M ? band : M;
  }
  const int32_t bands = (M + band - 1) / band;
  if ((int64_t)batch * bands > INT32_MAX)
    return pyrt_fail(PYRT_ERR_SHAPE, "smatmul: batch %d is too large", batch);
  smatmul_job j = {ctx,
                   M,
                   N,
                   K,
                   band,
                   bands,
                   a,
                   b,
                   stride_a,
                   stride_b,
                   stride_y,
                   lda,
                   ldb_k,
                   ldb_n,
                   ldy,
                   y,
                   pyrt_smatmul_pack_bytes(c, N, K),
                   PYRT_OK};
  pyrt_context_enter(ctx);
  pyrt_parallel(ctx, batch * bands, smatmul_task, &j);
  pyrt_context_leave(ctx);
  return j.status == PYRT_OK
             ? PYRT_OK
             : pyrt_fail(j.status, "smatmul: out of memory for scratch");
}
