/* Public fp32 GEMM entry points: y[M][N] = clamp(W[M][K] x X[K][N] + b).
   y must not overlap x (kernels may park partial sums in y). */
#include <math.h>

#include "internal.h"

#define PYRT_MAX_PACK_ELEMS ((int64_t)1 << 34)

size_t pyrt_sgemm_packed_size(const pyrt_context *ctx, int32_t M, int32_t K) {
  if (ctx == NULL || M <= 0 || K <= 0 || (int64_t)M * K > PYRT_MAX_PACK_ELEMS)
    return 0;
  return PYRT_ALIGN_UP(sizeof(pyrt_pack_header)) +
         ctx->t->sgemm_weights_size(M, K);
}

static void *weights_of(const void *packed) {
  return (char *)packed + PYRT_ALIGN_UP(sizeof(pyrt_pack_header));
}

int pyrt_sgemm_pack(const pyrt_context *ctx, int32_t M, int32_t K,
                    const float *w, void *packed) {
  if (ctx == NULL || w == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "sgemm_pack: NULL argument");
  if (M <= 0 || K <= 0 || (int64_t)M * K > PYRT_MAX_PACK_ELEMS)
    return pyrt_fail(PYRT_ERR_ARG, "sgemm_pack: bad shape %d x %d", M, K);
  *(pyrt_pack_header *)packed = (pyrt_pack_header){
      PYRT_PACK_MAGIC, ctx->t->id, PYRT_PACK_SGEMM, M, K, 0, 0, 0};
  ctx->t->sgemm_pack_weights(M, K, w, weights_of(packed));
  return PYRT_OK;
}

int pyrt_sgemm(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
               const void *packed, const float *x, int32_t ldx,
               const float *bias, float lo, float hi, float *y, int32_t ldy) {
  if (ctx == NULL || packed == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "sgemm: NULL argument");
  if (M <= 0 || N <= 0 || K <= 0 || ldx < N || ldy < N)
    return pyrt_fail(PYRT_ERR_ARG,
                     "sgemm: bad shape M %d N %d K %d ldx %d ldy %d", M, N, K,
                     ldx, ldy);
  if (isnan(lo) || isnan(hi) || lo > hi)
    return pyrt_fail(PYRT_ERR_ARG, "sgemm: clamp [%g, %g] is not a range",
                     (double)lo, (double)hi);
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  if (h->magic != PYRT_PACK_MAGIC || h->kind != PYRT_PACK_SGEMM ||
      h->isa != ctx->t->id || h->N != M || h->K != K)
    return pyrt_fail(PYRT_ERR_PACK,
                     "sgemm: weights packed for another shape or ISA");
  ctx->t->sgemm(M, N, K, weights_of(packed), x, ldx, bias, lo, hi, y, ldy);
  return PYRT_OK;
}
