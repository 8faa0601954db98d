/* The int8 GEMM driver and the weight packing it shares with the
   convolutions (kernels/src/qgemm/qgemm.c). */
#ifndef PYRT_QGEMM_H
#define PYRT_QGEMM_H

#include "internal.h"

/* Bytes a pack of `kind` (PYRT_PACK_GEMM or PYRT_PACK_DWCONV) takes. */
size_t pyrt_pack_int8_size(const pyrt_kernel_table *t, int32_t kind, int32_t N,
                           int32_t K);
/* Validates w / w_zero and writes header, column sums, zero points and the
   ISA weight block. w: [N][K]. `op` names the caller in error messages. */
int pyrt_pack_int8(const pyrt_kernel_table *t, const char *op, int32_t kind,
                   int32_t N, int32_t K, const void *w, int32_t w_dtype,
                   const int32_t *w_zero, int32_t w_zero_per_channel,
                   void *packed);
/* 0 if `packed` is a pack of `kind` for N x K under table t. */
int pyrt_check_pack(const pyrt_kernel_table *t, const char *op,
                    const void *packed, int32_t kind, int32_t N, int32_t K);

/* Where the driver reads A from: a matrix (rows at a + m * lda), or the
   im2col rows of an NHWC convolution (pixel m of group `group`). */
typedef struct {
  const uint8_t *a;
  size_t lda;
  const pyrt_conv2d_shape *conv; /* non-NULL: im2col from a (NHWC x) */
  int32_t group;
  uint8_t flip; /* 0x80 for s8 activations, else 0 */
  int32_t zero; /* the activation zero point, after the flip */
} pyrt_qgemm_a;

/* y[M][N] (row stride ldy elements) = A x packed; out->scale already points
   at the first of these N channels. Arguments are valid. */
int pyrt_qgemm_drive(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
                     const pyrt_qgemm_a *a, const void *packed,
                     const int32_t *bias, const pyrt_output_stage *out, void *y,
                     size_t ldy);

/* The GEMM tile's weight block for N x K weights (bytes), and the block
   itself from int8 w: element (n, k) at w[n * stride_n + k * stride_k],
   XORed with flip (0x80 turns u8 into s8 shifted by -128). col_sum, unless
   NULL, receives the N column sums of the packed (s8) values. */
size_t pyrt_qgemm_block_size(const pyrt_qgemm_config *c, int32_t N, int32_t K);
void pyrt_qgemm_pack_block(const pyrt_qgemm_config *c, int32_t N, int32_t K,
                           const uint8_t *w, ptrdiff_t stride_n,
                           ptrdiff_t stride_k, uint8_t flip, void *dst,
                           int32_t *col_sum);

/* pyrt_qgemm_drive on the calling thread only, with caller-given scratch of
   pyrt_qgemm_serial_scratch() bytes (64-byte aligned): for kernels that run
   many small GEMMs as the tasks of one pyrt_parallel. */
size_t pyrt_qgemm_serial_scratch(const pyrt_qgemm_config *c, int32_t M,
                                 int32_t N, int32_t K);
void pyrt_qgemm_drive_serial(const pyrt_qgemm_config *c, int32_t M, int32_t N,
                             int32_t K, const pyrt_qgemm_a *a,
                             const void *packed, const int32_t *bias,
                             const pyrt_output_stage *out, void *y, size_t ldy,
                             void *scratch);

#endif
