/* Packing an activation as the int8 GEMM's weights, per call: shared by
   the batched MatMul of two activations (qmatmul.c) and the fused
   attention (attention/attention.c). */
#ifndef PYRT_QMATMUL_H
#define PYRT_QMATMUL_H

#include "qgemm/qgemm.h"

/* Bytes of one pack of an N x K operand under tile config c. */
size_t pyrt_qmatmul_pack_bytes(const pyrt_qgemm_config *c, int32_t N,
                               int32_t K);
/* Header, zero points, column sums and the tile's weight block of the N x K
   int8 operand whose element (n, k) is w[n * stride_n + k * stride_k],
   XORed with flip (0x80 for u8: packs hold s8) and with zero point `zero`
   (already shifted like the values). */
void pyrt_qmatmul_pack(const pyrt_qgemm_config *c, int32_t N, int32_t K,
                       const uint8_t *w, ptrdiff_t stride_n, ptrdiff_t stride_k,
                       uint8_t flip, int32_t zero, void *packed);

#endif
