/* Public int8 GEMM entry points and the int8 weight packing they share with
   the convolutions. */
#include "qgemm/qgemm.h"

#include <stdlib.h>

#include "requant/requant.h"

/* Packs stay far below this; it keeps every size computation in range. */
#define PYRT_MAX_PACK_ELEMS ((int64_t)1 << 34)

size_t pyrt_pack_int8_size(int32_t kind, int32_t M, int32_t K) {
  if (M <= 0 || K <= 0 || (int64_t)M * K > PYRT_MAX_PACK_ELEMS) return 0;
  const pyrt_kernel_table *t = pyrt_kernels();
  size_t block = kind == PYRT_PACK_DWCONV ? t->qdwconv_weights_size(M, K)
                                          : t->qgemm_weights_size(M, K);
  return pyrt_pack_prefix_size(M) + block;
}

int pyrt_pack_int8(const char *op, int32_t kind, int32_t M, int32_t K,
                   const void *w, int32_t w_dtype, const int32_t *w_zero,
                   int32_t w_zero_per_row, void *packed) {
  if (w == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "%s: weights or packed buffer is NULL", op);
  if (M <= 0 || K <= 0)
    return pyrt_fail(PYRT_ERR_ARG, "%s: M and K must be > 0, got %d, %d", op, M,
                     K);
  if ((int64_t)M * K > PYRT_MAX_PACK_ELEMS)
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: %d x %d weights are too large", op, M,
                     K);
  if (w_dtype != PYRT_U8 && w_dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "%s: weights must be U8 or S8, got %d", op,
                     w_dtype);
  const int32_t lo = w_dtype == PYRT_U8 ? 0 : -128;
  const int32_t shift = w_dtype == PYRT_U8 ? 128 : 0; /* u8 -> s8 */
  /* Validate everything before writing: a failed pack leaves the buffer as
     it was, and the magic goes in last. */
  for (int32_t m = 0; m < M; m++) {
    const int32_t z = w_zero == NULL ? 0 : w_zero[w_zero_per_row ? m : 0];
    if (z < lo || z > lo + 255)
      return pyrt_fail(PYRT_ERR_ARG,
                       "%s: weight zero point %d (row %d) outside [%d, %d]", op,
                       z, m, lo, lo + 255);
  }
  int8_t *w_s8 = malloc((size_t)M * (size_t)K);
  if (w_s8 == NULL) return pyrt_fail(PYRT_ERR_NOMEM, "%s: out of memory", op);
  pyrt_pack_header *h = (pyrt_pack_header *)packed;
  *h = (pyrt_pack_header){0, pyrt_isa_id(), kind, M, K, 0, {0}};
  int32_t *row_sum = pyrt_pack_row_sum(packed);
  int32_t *zero = pyrt_pack_w_zero(packed);
  int32_t has_w_zero = 0;
  for (int32_t m = 0; m < M; m++) {
    zero[m] = (w_zero == NULL ? 0 : w_zero[w_zero_per_row ? m : 0]) - shift;
    has_w_zero |= zero[m] != 0;
    uint32_t sum = 0; /* wraps like the int32 accumulators it corrects */
    for (int32_t k = 0; k < K; k++) {
      const size_t i = (size_t)m * (size_t)K + (size_t)k;
      const int32_t v = w_dtype == PYRT_U8
                            ? (int32_t)((const uint8_t *)w)[i] - shift
                            : (int32_t)((const int8_t *)w)[i];
      w_s8[i] = (int8_t)v;
      sum += (uint32_t)v;
    }
    row_sum[m] = (int32_t)sum;
  }
  h->has_w_zero = has_w_zero;
  const pyrt_kernel_table *t = pyrt_kernels();
  if (kind == PYRT_PACK_DWCONV)
    t->qdwconv_pack_weights(M, K, w_s8, pyrt_pack_weights(packed));
  else
    t->qgemm_pack_weights(M, K, w_s8, pyrt_pack_weights(packed));
  free(w_s8);
  h->magic = PYRT_PACK_MAGIC; /* last: the pack is complete */
  return PYRT_OK;
}

int pyrt_check_pack(const char *op, const void *packed, int32_t kind, int32_t M,
                    int32_t K) {
  if (packed == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: packed is NULL", op);
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  if (h->magic != PYRT_PACK_MAGIC || h->kind != kind)
    return pyrt_fail(PYRT_ERR_PACK, "%s: buffer is not packed weights", op);
  if (h->isa != pyrt_isa_id())
    return pyrt_fail(PYRT_ERR_PACK,
                     "%s: weights were packed for another ISA; pack again", op);
  if (h->M != M || h->K != K)
    return pyrt_fail(PYRT_ERR_PACK,
                     "%s: weights packed as %d x %d, call needs %d x %d", op,
                     h->M, h->K, M, K);
  return PYRT_OK;
}

size_t pyrt_qgemm_packed_size(int32_t M, int32_t K) {
  return pyrt_pack_int8_size(PYRT_PACK_GEMM, M, K);
}

int pyrt_qgemm_pack(int32_t M, int32_t K, const void *w, int32_t w_dtype,
                    const int32_t *w_zero, int32_t w_zero_per_row,
                    void *packed) {
  return pyrt_pack_int8("qgemm_pack", PYRT_PACK_GEMM, M, K, w, w_dtype, w_zero,
                        w_zero_per_row, packed);
}

int pyrt_qgemm(int32_t M, int32_t N, int32_t K, const void *packed,
               const void *x, int32_t x_dtype, int32_t x_zero, int32_t ldx,
               const int32_t *bias, const pyrt_output_stage *out, void *y,
               int32_t ldy) {
  if (x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: x or y is NULL");
  if (M <= 0 || N <= 0 || K <= 0)
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: M, N, K must be > 0, got %d, %d, %d",
                     M, N, K);
  if (ldx < N || ldy < N)
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: ldx %d and ldy %d must be >= N %d",
                     ldx, ldy, N);
  if (x_dtype != PYRT_U8 && x_dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: x must be U8 or S8, got %d",
                     x_dtype);
  if (x_zero < (x_dtype == PYRT_U8 ? 0 : -128) ||
      x_zero > (x_dtype == PYRT_U8 ? 255 : 127))
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: x zero point %d out of range",
                     x_zero);
  int rc = pyrt_check_pack("qgemm", packed, PYRT_PACK_GEMM, M, K);
  if (rc == PYRT_OK) rc = pyrt_check_output_stage("qgemm", out, M);
  if (rc) return rc;
  return pyrt_kernels()->qgemm(M, N, K, packed, x, x_dtype, x_zero, ldx, bias,
                               out, y, ldy);
}
