/*
 * Internal to the kernel library: the dispatch table, the packed-weight
 * header, and error reporting. Public entry points (kernels/src/<op>/<op>.c)
 * validate their arguments and call through pyrt_kernels(); per-ISA files
 * (<op>_<isa>.c) implement table entries and may assume valid arguments.
 */
#ifndef PYRT_INTERNAL_H
#define PYRT_INTERNAL_H

#include "pyrt/kernels.h"

/* Sets the thread's error message; returns code so callers can
   `return pyrt_fail(PYRT_ERR_ARG, "qgemm: M must be > 0, got %d", M);` */
int pyrt_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Rounds half to even in the default FP environment (never changed here). */
#define PYRT_ALIGN 64
#define PYRT_ALIGN_UP(n) (((n) + (PYRT_ALIGN - 1)) & ~(size_t)(PYRT_ALIGN - 1))

/*
 * Packed int8 weights, W[M][K] with rows = output channels:
 *   pyrt_pack_header | int32 row_sum[M] | int32 w_zero[M] | ISA weight block
 * each part starting on a PYRT_ALIGN boundary. Weights are stored as s8;
 * u8 weights are shifted by -128 together with their zero point, which keeps
 * (w - w_zero) exact. row_sum[m] = sum_k w_s8[m][k].
 */
#define PYRT_PACK_MAGIC 0x51545250u /* "PRTQ" */
typedef struct {
  uint32_t magic;
  int32_t isa;  /* pyrt_isa_id() when packed */
  int32_t kind; /* PYRT_PACK_GEMM or PYRT_PACK_DWCONV */
  int32_t M, K;
  int32_t has_w_zero; /* any w_zero[m] != 0 */
  int32_t reserved[2];
} pyrt_pack_header;

enum { PYRT_PACK_GEMM = 1, PYRT_PACK_DWCONV = 2, PYRT_PACK_SGEMM = 3 };

static inline int32_t *pyrt_pack_row_sum(const void *packed) {
  return (int32_t *)((char *)packed + PYRT_ALIGN_UP(sizeof(pyrt_pack_header)));
}
static inline int32_t *pyrt_pack_w_zero(const void *packed) {
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  return pyrt_pack_row_sum(packed) + PYRT_ALIGN_UP((size_t)h->M * 4) / 4;
}
static inline void *pyrt_pack_weights(const void *packed) {
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  return (char *)pyrt_pack_row_sum(packed) +
         2 * PYRT_ALIGN_UP((size_t)h->M * 4);
}
static inline size_t pyrt_pack_prefix_size(int32_t M) {
  return PYRT_ALIGN_UP(sizeof(pyrt_pack_header)) +
         2 * PYRT_ALIGN_UP((size_t)M * 4);
}

/*
 * One table of kernels per ISA, filled once (pyrt_kernels() picks the best
 * the CPU supports on first use). Callers never branch on ISA.
 */
typedef struct {
  const char *name;

  /* int8 GEMM microkernel: weights block layout + compute with the fused
     zero-point correction, bias and output stage. */
  size_t (*qgemm_weights_size)(int32_t M, int32_t K);
  void (*qgemm_pack_weights)(int32_t M, int32_t K, const int8_t *w_s8,
                             void *dst);
  int (*qgemm)(int32_t M, int32_t N, int32_t K, const void *packed,
               const void *x, int32_t x_dtype, int32_t x_zero, int32_t ldx,
               const int32_t *bias, const pyrt_output_stage *out, void *y,
               int32_t ldy);

  /* Depthwise (groups == in_c == out_c) direct convolution. Packed as
     M = channels, K = kernel_h * kernel_w. */
  size_t (*qdwconv_weights_size)(int32_t channels, int32_t taps);
  void (*qdwconv_pack_weights)(int32_t channels, int32_t taps,
                               const int8_t *w_s8, void *dst);
  int (*qdwconv)(const pyrt_conv2d_shape *s, const void *packed, const void *x,
                 int32_t x_dtype, int32_t x_zero, const int32_t *bias,
                 const pyrt_output_stage *out, void *y);

  void (*requantize)(int64_t rows, int64_t cols, int32_t channels,
                     const int32_t *acc, const pyrt_output_stage *out, void *y);

  size_t (*sgemm_weights_size)(int32_t M, int32_t K);
  void (*sgemm_pack_weights)(int32_t M, int32_t K, const float *w, void *dst);
  void (*sgemm)(int32_t M, int32_t N, int32_t K, const void *weights,
                const float *x, int32_t ldx, const float *bias, float lo,
                float hi, float *y, int32_t ldy);

  void (*quantize)(const pyrt_quant_layout *l, const float *x,
                   const float *scale, const void *zero, int32_t out_dtype,
                   void *y);
  void (*dequantize)(const pyrt_quant_layout *l, const void *x, int32_t x_dtype,
                     const float *scale, const void *zero, float *y);
  void (*qbinary)(int32_t op, int64_t n, const void *a, const pyrt_qparams *qa,
                  const void *b, const pyrt_qparams *qb, void *y,
                  const pyrt_qparams *qy, int32_t qmin, int32_t qmax);
  void (*qmaxpool2d)(const pyrt_pool2d_shape *s, const void *x, int32_t dtype,
                     void *y);
  void (*qavgpool2d)(const pyrt_pool2d_shape *s, const void *x,
                     const pyrt_qparams *qx, void *y, const pyrt_qparams *qy);
  void (*qglobalavgpool)(int64_t rows, int64_t hw, const void *x,
                         const pyrt_qparams *qx, void *y,
                         const pyrt_qparams *qy);
} pyrt_kernel_table;

const pyrt_kernel_table *pyrt_kernels(void);
int pyrt_isa_id(void);

/* The scalar table: portable C11, the reference every SIMD path must match
   bit for bit. One declaration per kernels/src/<op>/<op>_scalar.c entry. */
size_t pyrt_qgemm_weights_size_scalar(int32_t M, int32_t K);
void pyrt_qgemm_pack_weights_scalar(int32_t M, int32_t K, const int8_t *w_s8,
                                    void *dst);
int pyrt_qgemm_scalar(int32_t M, int32_t N, int32_t K, const void *packed,
                      const void *x, int32_t x_dtype, int32_t x_zero,
                      int32_t ldx, const int32_t *bias,
                      const pyrt_output_stage *out, void *y, int32_t ldy);
size_t pyrt_qdwconv_weights_size_scalar(int32_t channels, int32_t taps);
void pyrt_qdwconv_pack_weights_scalar(int32_t channels, int32_t taps,
                                      const int8_t *w_s8, void *dst);
int pyrt_qdwconv_scalar(const pyrt_conv2d_shape *s, const void *packed,
                        const void *x, int32_t x_dtype, int32_t x_zero,
                        const int32_t *bias, const pyrt_output_stage *out,
                        void *y);
void pyrt_requantize_scalar(int64_t rows, int64_t cols, int32_t channels,
                            const int32_t *acc, const pyrt_output_stage *out,
                            void *y);
size_t pyrt_sgemm_weights_size_scalar(int32_t M, int32_t K);
void pyrt_sgemm_pack_weights_scalar(int32_t M, int32_t K, const float *w,
                                    void *dst);
void pyrt_sgemm_scalar(int32_t M, int32_t N, int32_t K, const void *weights,
                       const float *x, int32_t ldx, const float *bias, float lo,
                       float hi, float *y, int32_t ldy);
void pyrt_quantize_scalar(const pyrt_quant_layout *l, const float *x,
                          const float *scale, const void *zero,
                          int32_t out_dtype, void *y);
void pyrt_dequantize_scalar(const pyrt_quant_layout *l, const void *x,
                            int32_t x_dtype, const float *scale,
                            const void *zero, float *y);
void pyrt_qbinary_scalar(int32_t op, int64_t n, const void *a,
                         const pyrt_qparams *qa, const void *b,
                         const pyrt_qparams *qb, void *y,
                         const pyrt_qparams *qy, int32_t qmin, int32_t qmax);
void pyrt_qmaxpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            int32_t dtype, void *y);
void pyrt_qavgpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            const pyrt_qparams *qx, void *y,
                            const pyrt_qparams *qy);
void pyrt_qglobalavgpool_scalar(int64_t rows, int64_t hw, const void *x,
                                const pyrt_qparams *qx, void *y,
                                const pyrt_qparams *qy);

#endif /* PYRT_INTERNAL_H */
