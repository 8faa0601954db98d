/* The fp32 GEMM driver and weight packing, shared with the fp32
   convolutions (kernels/src/sgemm/sgemm.c). */
#ifndef PYRT_SGEMM_H
#define PYRT_SGEMM_H

#include "internal.h"

/* Bytes of an fp32 pack of w[N][K] under table t (0 if the shape is bad). */
size_t pyrt_sgemm_pack_size(const pyrt_kernel_table *t, int32_t N, int32_t K);
/* Header and NR-column panels of w[N][K]; arguments are valid. */
void pyrt_sgemm_pack_into(const pyrt_kernel_table *t, int32_t N, int32_t K,
                          const float *w, void *packed);
/* 0 if `packed` is an fp32 GEMM pack of N x K for table t. */
int pyrt_sgemm_check_pack(const pyrt_kernel_table *t, const char *op,
                          const void *packed, int32_t N, int32_t K);

/* 0 if [lo, hi] is a clamp range (no NaN, lo <= hi). */
int pyrt_check_clamp(const char *op, float lo, float hi);

/* Where the driver reads A from: a matrix (rows at a + m * lda), or the
   im2col rows of an NHWC convolution (pixel m of group `group`). */
typedef struct {
  const float *a;
  size_t lda;
  const pyrt_conv2d_shape *conv; /* non-NULL: im2col from a (NHWC x) */
  int32_t group;
} pyrt_sgemm_a;

/* y[M][N] (row stride ldy) = clamp(A x packed + bias, lo, hi); bias NULL
   or N values. Arguments are valid; y does not overlap A. */
int pyrt_sgemm_drive(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
                     const pyrt_sgemm_a *a, const void *packed,
                     const float *bias, float lo, float hi, float *y,
                     size_t ldy);

#endif
