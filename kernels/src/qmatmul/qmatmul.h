/* Packing an activation as the GEMM's weights, per call, and running the
   GEMM on the calling thread: shared by the batched MatMul of two
   activations (qmatmul.c, smatmul.c) and the fused attention
   (attention/attention.c). */
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

/* fp32: bytes of the sgemm tile's panels [N/NR][K][NR] of an N x K operand,
   and the panels (zero-padded in N) of the one whose element (n, k) is
   w[n * stride_n + k * stride_k]. */
size_t pyrt_smatmul_pack_bytes(const pyrt_sgemm_config *c, int32_t N,
                               int32_t K);
void pyrt_smatmul_pack(const pyrt_sgemm_config *c, int32_t N, int32_t K,
                       const float *w, int64_t stride_n, int64_t stride_k,
                       float *packed);
/* y[M][N] (row stride ldy) = A[M][K] (rows lda apart) x packed on the
   calling thread, each output fma(a, w, acc) for k ascending from 0:
   pyrt_sgemm's arithmetic (K blocks park partial sums in y). zeros: the
   tile's nr zero floats. */
void pyrt_sgemm_serial(const pyrt_sgemm_config *c, int32_t M, int32_t N,
                       int32_t K, const float *a, size_t lda,
                       const float *packed, const float *zeros, float *y,
                       size_t ldy);

/* Shape checks of a batched MatMul of activations (pyrt_qmatmul,
   pyrt_smatmul): a PyrtError status naming `op`, or PYRT_OK. */
int pyrt_matmul_check_shape(const char *op, int32_t batch, int32_t M, int32_t N,
                            int32_t K, int32_t lda, int32_t ldb_k,
                            int32_t ldb_n, int32_t ldy, int64_t stride_a,
                            int64_t stride_b, int64_t stride_y);

#endif
