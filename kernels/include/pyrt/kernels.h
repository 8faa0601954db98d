/*
 * pyrt/kernels.h: the whole C ABI of pyrt's kernels.
 *
 * Plain C declarations only: pyrt/_kernels.py feeds this file (minus the
 * preprocessor lines) to cffi.cdef, so keep it free of macros and inline code.
 *
 * Conventions
 * - Every entry point checks its arguments and returns PYRT_OK (0) or a
 *   PYRT_ERR_* code; pyrt_last_error() then describes the problem (per thread).
 * - Tensors are dense, row-major, images NHWC, unless a stride is given or a
 *   layout field says NCHW (pools).
 * - Weights are packed once (pyrt_*_pack) into a caller-owned buffer of
 *   pyrt_*_packed_size() bytes; the packed layout belongs to the ISA that was
 *   active when packing, and the compute entry points refuse a mismatch.
 * - Integer matrix products follow ONNX (QLinearConv, MatMulInteger):
 *   acc = sum_k (w - w_zero) * (x - x_zero) + bias, accumulated in int32.
 */
#ifndef PYRT_KERNELS_H
#define PYRT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum pyrt_status {
  PYRT_OK = 0,
  PYRT_ERR_ARG = 1,   /* null pointer, bad enum, non-positive dimension */
  PYRT_ERR_SHAPE = 2, /* shapes that do not fit together or leave no output */
  PYRT_ERR_NOMEM = 3, /* an internal allocation failed */
  PYRT_ERR_PACK = 4,  /* packed weights of another shape or ISA */
  PYRT_ERR_ISA = 5    /* unknown or unsupported ISA name */
};

enum pyrt_dtype { PYRT_U8 = 0, PYRT_S8 = 1, PYRT_S32 = 2, PYRT_F32 = 3 };

/* ---- runtime: errors, ISAs, execution contexts ------------------------ */

/* Message for the last error returned on this thread ("" if none). */
const char *pyrt_last_error(void);

/* Comma-separated kernel tables this CPU can run, worst first:
   "scalar", then "avx2", "avxvnni", "avx512vnni" on x86, "rvv" on RISC-V. */
const char *pyrt_isa_available(void);
/* The table a context made with isa NULL takes: $PYRT_ISA if set, else the
   best this CPU runs. */
const char *pyrt_isa_default(void);

/*
 * An execution context: one kernel table, a pool of `threads` workers
 * (the caller is one of them) and their scratch memory. Every compute entry
 * point takes one. Contexts are independent: sessions with different ISAs
 * or core counts coexist. Calls on one context from several threads are
 * safe; they take turns.
 */
typedef struct pyrt_context pyrt_context;
/* isa NULL: pyrt_isa_default(). threads >= 1. */
int pyrt_context_create(const char *isa, int32_t threads, pyrt_context **ctx);
void pyrt_context_destroy(pyrt_context *ctx);
const char *pyrt_context_isa(const pyrt_context *ctx);
int32_t pyrt_context_threads(const pyrt_context *ctx);
/* Width in bits of the vector registers the context's kernels use (the
   VLEN on RISC-V), 0 for the scalar table. */
int32_t pyrt_context_vector_bits(const pyrt_context *ctx);

/* ---- output stage: what happens to int32 accumulators ----------------- */

/*
 * out_dtype PYRT_U8 / PYRT_S8: y = clamp(rint(acc * scale[c]) + zero_point,
 *                                         qmin, qmax)   (round half to even)
 * out_dtype PYRT_S32:          y = acc                 (ConvInteger)
 * out_dtype PYRT_F32:          y = acc * scale[c]      (dequantized output)
 * c is the output channel (the row of a GEMM); scale has one entry per
 * channel when per_channel is nonzero, else one. qmin/qmax fold a ReLU,
 * ReLU6 or Clip into the requantization and must lie in the dtype's range.
 */
typedef struct {
  int32_t out_dtype;
  int32_t per_channel;
  const float *scale;
  int32_t zero_point;
  int32_t qmin;
  int32_t qmax;
} pyrt_output_stage;

/* acc viewed as [rows][cols]; the channel of row r is r % channels. */
int pyrt_requantize(pyrt_context *ctx, int64_t rows, int64_t cols,
                    int32_t channels, const int32_t *acc,
                    const pyrt_output_stage *out, void *y);

/* ---- int8 GEMM: y[M][N] = A[M][K] x W[K][N] --------------------------- */

/* Weights are given as w[N][K] (one row per output channel, like Conv's
   [out_c][...] and Gemm with transB). w_dtype is PYRT_U8 or PYRT_S8; w_zero
   holds N values when w_zero_per_channel is nonzero, else one (NULL means
   0). The pack belongs to ctx's kernel table (and tile shape). */
size_t pyrt_qgemm_packed_size(const pyrt_context *ctx, int32_t N, int32_t K);
int pyrt_qgemm_pack(const pyrt_context *ctx, int32_t N, int32_t K,
                    const void *w, int32_t w_dtype, const int32_t *w_zero,
                    int32_t w_zero_per_channel, void *packed);
/* a: [M][K] of a_dtype (U8 or S8), row stride lda >= K; y: [M][N] of
   out->out_dtype, row stride ldy >= N; bias: N int32 values or NULL. The
   output stage's channel is the column n. */
int pyrt_qgemm(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
               const void *a, int32_t a_dtype, int32_t a_zero, int32_t lda,
               const void *packed, const int32_t *bias,
               const pyrt_output_stage *out, void *y, int32_t ldy);

/* int8 product of two activations, batched: y[i] = A[i] x B[i] for i < batch
   (QLinearMatMul, attention's Q x K^T and P x V). A[i]: [M][K] of a_dtype at
   a + i * stride_a (elements), row stride lda >= K. B[i]: K x N of b_dtype at
   b + i * stride_b, element (k, n) at k * ldb_k + n * ldb_n (a transposed B
   is just other strides). Batch strides may be 0 (broadcast). y[i]: [M][N] of
   out->out_dtype at y + i * stride_y, row stride ldy >= N. Per-tensor zero
   points; acc = sum_k (a - a_zero)(b - b_zero) in int32, then `out` with
   channel n. B is packed per call, so nothing needs preparing. */
int pyrt_qmatmul(pyrt_context *ctx, int32_t batch, int32_t M, int32_t N,
                 int32_t K, const void *a, int32_t a_dtype, int32_t a_zero,
                 int64_t stride_a, int32_t lda, const void *b, int32_t b_dtype,
                 int32_t b_zero, int64_t stride_b, int32_t ldb_k, int32_t ldb_n,
                 const pyrt_output_stage *out, void *y, int64_t stride_y,
                 int32_t ldy);

/* fp32 product of two activations, batched, with pyrt_qmatmul's sizes and
   strides (a and y rows contiguous, B any strides): y[i] = A[i] x B[i], each
   output fma(a, b, acc) for k ascending from 0 (pyrt_sgemm's arithmetic). */
int pyrt_smatmul(pyrt_context *ctx, int32_t batch, int32_t M, int32_t N,
                 int32_t K, const float *a, int64_t stride_a, int32_t lda,
                 const float *b, int64_t stride_b, int32_t ldb_k, int32_t ldb_n,
                 float *y, int64_t stride_y, int32_t ldy);

/* ---- 2-D convolution (NHWC; int8 and fp32 share the shape) ------------ */

typedef struct {
  int32_t batch, in_c, in_h, in_w;
  int32_t out_c, groups;
  int32_t kernel_h, kernel_w;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left, pad_bottom, pad_right;
  int32_t out_h, out_w; /* must equal the size the other fields give */
} pyrt_conv2d_shape;

/* Fills out_h / out_w from the other fields; PYRT_ERR_SHAPE if no output. */
int pyrt_conv2d_infer(pyrt_conv2d_shape *s);

/* int8, NHWC: x [batch][in_h][in_w][in_c], y [batch][out_h][out_w][out_c].
   w: [out_c][kernel_h][kernel_w][in_c / groups] (ONNX's weights with the
   channel axis moved last); zero point as for qgemm, per output channel when
   w_zero_per_channel is nonzero. Padding reads as x_zero, i.e. real 0.0.
   Depthwise (groups == in_c == out_c) runs a direct kernel, everything else
   the GEMM driver per group. */
size_t pyrt_qconv2d_packed_size(const pyrt_context *ctx,
                                const pyrt_conv2d_shape *s);
int pyrt_qconv2d_pack(const pyrt_context *ctx, const pyrt_conv2d_shape *s,
                      const void *w, int32_t w_dtype, const int32_t *w_zero,
                      int32_t w_zero_per_channel, void *packed);
int pyrt_qconv2d(pyrt_context *ctx, const pyrt_conv2d_shape *s,
                 const void *packed, const void *x, int32_t x_dtype,
                 int32_t x_zero, const int32_t *bias,
                 const pyrt_output_stage *out, void *y);

/* ---- fp32 GEMM and convolution: the same shape as int8 ---------------- */

/*
 * y[M][N] = clamp(A[M][K] x W[K][N] + bias, lo, hi), rows = pixels / rows
 * of a matrix, N = output channels. Arithmetic, identical on every ISA
 * (SIMD results are bit-exact with the scalar reference): each output is
 *   acc = bias[n] (0.0f without bias); for k = 0 .. K-1 ascending:
 *   acc = fma(a[m][k], w[k][n], acc)  (one rounding per step, like C fmaf);
 *   y = min(max(acc, lo), hi), NaN passing through the clamp.
 * Pass -INFINITY / INFINITY for no clamp, 0 / INFINITY for a fused ReLU.
 * Weights are given as w[N][K] (like qgemm) and packed once per context
 * table. a: row stride lda >= K; y: row stride ldy >= N, must not overlap
 * a (partial sums are parked in y); bias: N values or NULL.
 */
size_t pyrt_sgemm_packed_size(const pyrt_context *ctx, int32_t N, int32_t K);
int pyrt_sgemm_pack(const pyrt_context *ctx, int32_t N, int32_t K,
                    const float *w, void *packed);
int pyrt_sgemm(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
               const float *a, int32_t lda, const void *packed,
               const float *bias, float lo, float hi, float *y, int32_t ldy);

/* fp32, NHWC like qconv2d: x [batch][in_h][in_w][in_c], y [batch][out_h]
   [out_w][out_c], w [out_c][kernel_h][kernel_w][in_c / groups], bias out_c
   values or NULL, y not overlapping x. The sum is the sgemm one over k =
   (ky, kx, channel) ascending, padding reading 0.0f. Depthwise (groups ==
   in_c == out_c > 1) sums over the taps (ky, kx) ascending and skips taps
   in the padding; the result differs from adding fma(0, w, acc) only for
   infinite / NaN weights and the sign of a zero. */
size_t pyrt_conv2d_packed_size(const pyrt_context *ctx,
                               const pyrt_conv2d_shape *s);
int pyrt_conv2d_pack(const pyrt_context *ctx, const pyrt_conv2d_shape *s,
                     const float *w, void *packed);
int pyrt_conv2d(pyrt_context *ctx, const pyrt_conv2d_shape *s,
                const void *packed, const float *x, const float *bias, float lo,
                float hi, float *y);

/* ---- QuantizeLinear / DequantizeLinear -------------------------------- */

/*
 * Data viewed as [outer][axis_len][inner]. The scale (and zero point) of
 * element (o, a, i) sits at o * stride_outer + (a / block) * stride_axis +
 * i * stride_inner: all strides 0 for per-tensor, block 1 and stride_axis 1
 * for per-axis, the full blocked shape for blocked quantization.
 */
typedef struct {
  int64_t outer, axis_len, inner;
  int64_t block;
  int64_t stride_outer, stride_axis, stride_inner;
} pyrt_quant_layout;

/* y = saturate(rint(x / scale) + zero): U8 or S8 out; NaN maps to zero.
   zero has out_dtype elements, or is NULL for 0. */
int pyrt_quantize(pyrt_context *ctx, const pyrt_quant_layout *l, const float *x,
                  const float *scale, const void *zero, int32_t out_dtype,
                  void *y);
/* DynamicQuantizeLinear of n floats: scale = (max(x, 0) - min(x, 0)) / 255
   (1 for an all-zero x), zero = rint(clamp(-min(x, 0) / scale, 0, 255)), in
   float32 as ONNX defines them (NaNs are left out of the range), then y =
   pyrt_quantize(x) to U8. */
int pyrt_dynamic_quantize(pyrt_context *ctx, int64_t n, const float *x,
                          uint8_t *y, float *scale, uint8_t *zero);
/* y = (x - zero) * scale for U8, S8 or S32 x. */
int pyrt_dequantize(pyrt_context *ctx, const pyrt_quant_layout *l,
                    const void *x, int32_t x_dtype, const float *scale,
                    const void *zero, float *y);

/* ---- int8 elementwise ------------------------------------------------- */

typedef struct {
  int32_t dtype; /* PYRT_U8 or PYRT_S8 */
  float scale;
  int32_t zero_point;
} pyrt_qparams;

/* int8 kernels take Add and Mul; the fp32 ones all four. */
enum pyrt_binary_op { PYRT_ADD = 0, PYRT_MUL = 1, PYRT_SUB = 2, PYRT_DIV = 3 };

/* y = Q_y(op(DQ_a(a), DQ_b(b))) clamped to [qmin, qmax]; a, b, y hold n
   elements each. */
int pyrt_qbinary(pyrt_context *ctx, int32_t op, int64_t n, const void *a,
                 const pyrt_qparams *qa, const void *b, const pyrt_qparams *qb,
                 void *y, const pyrt_qparams *qy, int32_t qmin, int32_t qmax);
/* The same with b broadcast: a and y are [outer][middle][inner], b is
   [outer][1][inner]. Covers equal shapes (middle 1), a Squeeze-Excite scale
   y[n,h,w,c] = a[n,h,w,c] op b[n,c] (NHWC: outer N, middle H*W, inner C;
   NCHW: outer N*C, middle H*W, inner 1), a per-channel vector (outer 1) and
   a scalar (outer 1, inner 1). Add and Mul are commutative bit for bit, so a
   broadcast first operand is passed as b. */
int pyrt_qbinary_broadcast(pyrt_context *ctx, int32_t op, int64_t outer,
                           int64_t middle, int64_t inner, const void *a,
                           const pyrt_qparams *qa, const void *b,
                           const pyrt_qparams *qb, void *y,
                           const pyrt_qparams *qy, int32_t qmin, int32_t qmax);

/* ---- int8 pooling, NCHW or NHWC ---------------------------------------- */

enum pyrt_layout { PYRT_NCHW = 0, PYRT_NHWC = 1 };

typedef struct {
  int32_t batch, channels, in_h, in_w;
  int32_t kernel_h, kernel_w;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left, pad_bottom, pad_right;
  int32_t out_h, out_w;      /* from the caller (ceil_mode is its choice) */
  int32_t count_include_pad; /* AveragePool: divide by the padded window */
  int32_t layout;            /* PYRT_NCHW or PYRT_NHWC, for x and y alike */
} pyrt_pool2d_shape;

/* Max over the window (padding ignored); x and y share dtype (U8, S8, or
   F32 for fp32 models) and qparams. */
int pyrt_qmaxpool2d(pyrt_context *ctx, const pyrt_pool2d_shape *s,
                    const void *x, int32_t dtype, void *y);
int pyrt_qavgpool2d(pyrt_context *ctx, const pyrt_pool2d_shape *s,
                    const void *x, const pyrt_qparams *qx, void *y,
                    const pyrt_qparams *qy);
/* NCHW: x [rows][hw] (rows = N * C); y: [rows]. */
int pyrt_qglobalavgpool(pyrt_context *ctx, int64_t rows, int64_t hw,
                        const void *x, const pyrt_qparams *qx, void *y,
                        const pyrt_qparams *qy);
/* NHWC: x [batch][hw][channels]; y [batch][channels]. */
int pyrt_qglobalavgpool_nhwc(pyrt_context *ctx, int64_t batch, int64_t hw,
                             int64_t channels, const void *x,
                             const pyrt_qparams *qx, void *y,
                             const pyrt_qparams *qy);

/* fp32 AveragePool, NCHW or NHWC: the sum of the window's taps inside the
   input (ky, kx ascending) / its count (as pyrt_qavgpool2d's window). */
int pyrt_avgpool2d_f32(pyrt_context *ctx, const pyrt_pool2d_shape *s,
                       const float *x, float *y);

/* fp32, NHWC: y[b][c] = sum over p < hw of x[b][p][c] (in order) / hw. */
int pyrt_globalavgpool_f32_nhwc(pyrt_context *ctx, int64_t batch, int64_t hw,
                                int64_t channels, const float *x, float *y);

/* ---- data movement ---------------------------------------------------- */

/* y[b][c][r] = x[b][r][c] for elements of elem_size 1 or 4 bytes: NCHW ->
   NHWC is rows = C, cols = H * W; NHWC -> NCHW the reverse. */
int pyrt_transpose(pyrt_context *ctx, int32_t elem_size, int64_t batch,
                   int64_t rows, int64_t cols, const void *x, void *y);
/* y[i] = table[x[i]] for n bytes (u8 or s8 codes, read as bytes). */
int pyrt_lut8(pyrt_context *ctx, int64_t n, const uint8_t *table, const void *x,
              void *y);

/* rows rows of `bytes` bytes: y + r * y_stride <- x + r * x_stride (the
   strided copies of Concat and Split; rows must not overlap). */
int pyrt_copy_rows(pyrt_context *ctx, int64_t rows, int64_t bytes,
                   const void *x, int64_t x_stride, void *y, int64_t y_stride);

/* ---- per-channel affine (BatchNormalization) --------------------------- */

/*
 * x and y are [outer][channels][inner] (NHWC: inner 1; NCHW: inner H * W),
 * channel c's multiplier a[c] and offset b[c] (finite):
 *   F32 -> F32:        y = clamp(x * a + b, lo, hi)   (two roundings; NaN
 *                      passes)
 *   U8/S8 -> U8/S8:    v = fmaf((float)x - x_zero, a, b);
 *                      y = clamp(rintf(v) + y_zero, lo, hi)
 * For int8 data a and b carry the input and output scales (a DQ ->
 * BatchNormalization -> Q chain in one pass); lo and hi are then codes of
 * y's dtype. Rounding half to even, as every requantization.
 */
int pyrt_channel_affine(pyrt_context *ctx, int64_t outer, int64_t channels,
                        int64_t inner, const void *x, int32_t x_dtype,
                        int32_t x_zero, const float *a, const float *b, void *y,
                        int32_t y_dtype, int32_t y_zero, float lo, float hi);

/* ---- execution plan -------------------------------------------------- */

/*
 * A list of kernel calls whose tensors live at byte offsets in one arena,
 * resolved once (shapes, strides, packed weights, output stages); a run of
 * consecutive entries executes in one call. Each pyrt_plan_* call appends
 * an entry and returns its index (>= 0) or a negative PYRT_ERR_* code. The
 * plan copies the argument structs; what they point to (packed weights,
 * scales, tables, bias) must outlive the plan. Arguments are checked when
 * the entry runs, by the same public entry points.
 */
typedef struct pyrt_plan pyrt_plan;
int pyrt_plan_create(pyrt_plan **plan);
void pyrt_plan_destroy(pyrt_plan *plan);
int pyrt_plan_qconv2d(pyrt_plan *p, const pyrt_conv2d_shape *s,
                      const void *packed, int32_t x_dtype, int32_t x_zero,
                      const int32_t *bias, const pyrt_output_stage *out,
                      int64_t x, int64_t y);
int pyrt_plan_conv2d(pyrt_plan *p, const pyrt_conv2d_shape *s,
                     const void *packed, const float *bias, float lo, float hi,
                     int64_t x, int64_t y);
int pyrt_plan_sgemm(pyrt_plan *p, int32_t M, int32_t N, int32_t K, int64_t a,
                    int32_t lda, const void *packed, const float *bias,
                    float lo, float hi, int64_t y, int32_t ldy);
int pyrt_plan_qgemm(pyrt_plan *p, int32_t M, int32_t N, int32_t K, int64_t a,
                    int32_t a_dtype, int32_t a_zero, int32_t lda,
                    const void *packed, const int32_t *bias,
                    const pyrt_output_stage *out, int64_t y, int32_t ldy);
/* quantize_dynamic's entries: pyrt_qgemm / pyrt_qconv2d with the input zero
   point read from the arena at a_zero / x_zero (one byte of the input's
   dtype), and for scale >= 0 a float32 stage whose `scales` values (1 or
   the channels) are read at arena offset scale, or, with w_scale, are the one
   float there times w_scale's `scales` values; and DynamicQuantizeLinear
   (pyrt_dynamic_quantize) of n floats, its scale and zero point written at
   arena offsets scale and zero. */
int pyrt_plan_qgemm_dynamic(pyrt_plan *p, int32_t M, int32_t N, int32_t K,
                            int64_t a, int32_t a_dtype, int64_t a_zero,
                            int32_t lda, const void *packed,
                            const int32_t *bias, const pyrt_output_stage *out,
                            int64_t scale, const float *w_scale, int64_t scales,
                            int64_t y, int32_t ldy);
int pyrt_plan_qconv2d_dynamic(pyrt_plan *p, const pyrt_conv2d_shape *s,
                              const void *packed, int32_t x_dtype,
                              int64_t x_zero, const int32_t *bias,
                              const pyrt_output_stage *out, int64_t scale,
                              const float *w_scale, int64_t scales, int64_t x,
                              int64_t y);
int pyrt_plan_dynamic_quantize(pyrt_plan *p, int64_t n, int64_t x, int64_t y,
                               int64_t scale, int64_t zero);
int pyrt_plan_qbinary(pyrt_plan *p, int32_t op, int64_t n, int64_t a,
                      const pyrt_qparams *qa, int64_t b, const pyrt_qparams *qb,
                      int64_t y, const pyrt_qparams *qy, int32_t qmin,
                      int32_t qmax);
/* pyrt_qbinary_broadcast's shapes; pyrt_plan_qbinary is outer 1, middle 1. */
int pyrt_plan_qbinary_broadcast(pyrt_plan *p, int32_t op, int64_t outer,
                                int64_t middle, int64_t inner, int64_t a,
                                const pyrt_qparams *qa, int64_t b,
                                const pyrt_qparams *qb, int64_t y,
                                const pyrt_qparams *qy, int32_t qmin,
                                int32_t qmax);
int pyrt_plan_quantize(pyrt_plan *p, const pyrt_quant_layout *l, int64_t x,
                       const float *scale, const void *zero, int32_t out_dtype,
                       int64_t y);
int pyrt_plan_dequantize(pyrt_plan *p, const pyrt_quant_layout *l, int64_t x,
                         int32_t x_dtype, const float *scale, const void *zero,
                         int64_t y);
int pyrt_plan_qmaxpool2d(pyrt_plan *p, const pyrt_pool2d_shape *s, int64_t x,
                         int32_t dtype, int64_t y);
int pyrt_plan_qavgpool2d(pyrt_plan *p, const pyrt_pool2d_shape *s, int64_t x,
                         const pyrt_qparams *qx, int64_t y,
                         const pyrt_qparams *qy);
int pyrt_plan_qglobalavgpool(pyrt_plan *p, int64_t rows, int64_t hw, int64_t x,
                             const pyrt_qparams *qx, int64_t y,
                             const pyrt_qparams *qy);
int pyrt_plan_qglobalavgpool_nhwc(pyrt_plan *p, int64_t batch, int64_t hw,
                                  int64_t channels, int64_t x,
                                  const pyrt_qparams *qx, int64_t y,
                                  const pyrt_qparams *qy);
int pyrt_plan_globalavgpool_f32_nhwc(pyrt_plan *p, int64_t batch, int64_t hw,
                                     int64_t channels, int64_t x, int64_t y);
int pyrt_plan_transpose(pyrt_plan *p, int32_t elem_size, int64_t batch,
                        int64_t rows, int64_t cols, int64_t x, int64_t y);
int pyrt_plan_lut8(pyrt_plan *p, int64_t n, const uint8_t *table, int64_t x,
                   int64_t y);
int pyrt_plan_copy(pyrt_plan *p, int64_t bytes, int64_t x, int64_t y);
/* CNN data movement and per-channel ops (Concat / Split copies, BN). */
int pyrt_plan_copy_rows(pyrt_plan *p, int64_t rows, int64_t bytes, int64_t x,
                        int64_t x_stride, int64_t y, int64_t y_stride);
int pyrt_plan_channel_affine(pyrt_plan *p, int64_t outer, int64_t channels,
                             int64_t inner, int64_t x, int32_t x_dtype,
                             int32_t x_zero, const float *a, const float *b,
                             int64_t y, int32_t y_dtype, int32_t y_zero,
                             float lo, float hi);
int pyrt_plan_avgpool2d_f32(pyrt_plan *p, const pyrt_pool2d_shape *s, int64_t x,
                            int64_t y);
/* Encoder entries: the arguments of pyrt_qmatmul, pyrt_softmax,
   pyrt_layernorm, pyrt_activation and pyrt_attention with arena offsets for
   the tensors; an optional tensor (mask, residual, an output not wanted) is
   offset -1. pyrt_plan_attention copies *a and ignores its data pointers. */
int pyrt_plan_qmatmul(pyrt_plan *p, int32_t batch, int32_t M, int32_t N,
                      int32_t K, int64_t a, int32_t a_dtype, int32_t a_zero,
                      int64_t stride_a, int32_t lda, int64_t b, int32_t b_dtype,
                      int32_t b_zero, int64_t stride_b, int32_t ldb_k,
                      int32_t ldb_n, const pyrt_output_stage *out, int64_t y,
                      int64_t stride_y, int32_t ldy);
int pyrt_plan_softmax(pyrt_plan *p, int64_t rows, int32_t cols, int64_t x,
                      const pyrt_qparams *qx, float x_mul, float x_div,
                      int64_t mask, int64_t rows_per_mask, int64_t y,
                      const pyrt_qparams *qy);
int pyrt_plan_layernorm(pyrt_plan *p, int64_t rows, int32_t cols, int64_t x,
                        const pyrt_qparams *qx, const float *bias,
                        int64_t residual, const pyrt_qparams *qr,
                        const float *gamma, const float *beta, float epsilon,
                        int64_t y, int64_t yq, const pyrt_qparams *qy,
                        int64_t sum);
int pyrt_plan_activation(pyrt_plan *p, int64_t rows, int32_t cols, int64_t x,
                         const pyrt_qparams *qx, const float *bias, int32_t act,
                         int64_t y, const pyrt_qparams *qy);
int pyrt_plan_smatmul(pyrt_plan *p, int32_t batch, int32_t M, int32_t N,
                      int32_t K, int64_t a, int64_t stride_a, int32_t lda,
                      int64_t b, int64_t stride_b, int32_t ldb_k, int32_t ldb_n,
                      int64_t y, int64_t stride_y, int32_t ldy);
/* Runs entries [first, last) on arena; on failure returns the status and
   stores the failing entry's index in *failed (may be NULL). */
int pyrt_plan_run(pyrt_context *ctx, const pyrt_plan *p, int32_t first,
                  int32_t last, void *arena, int32_t *failed);

/* ---- float rows around attention ------------------------------------ */

/* x and y are [rows][cols] of the dtype in their pyrt_qparams: PYRT_F32
   (plain float; scale and zero point ignored), or U8 / S8, which the kernel
   dequantizes on load / quantizes on store exactly as pyrt_dequantize /
   pyrt_quantize do (a DQ -> op -> Q pattern in one pass). The float math
   (exp, erf, the sums' order: kernels/src/fmath/fmath.h) is that of
   onnxruntime's x86 kernels, and every ISA gives the same bits. */

/* Softmax over each row: v = DQ(x) * x_mul / x_div (+ mask; the graph's Mul
   or Div of the scores: x_mul or x_div, the other 1), y = exp(v - max v) /
   sum. mask NULL, or [rows / rows_per_mask][cols] floats: row r adds mask
   row r / rows_per_mask (an attention mask [batch, 1, 1, seq] on scores
   [batch, heads, seq, seq] has rows_per_mask = heads * seq). */
int pyrt_softmax(pyrt_context *ctx, int64_t rows, int32_t cols, const void *x,
                 const pyrt_qparams *qx, float x_mul, float x_div,
                 const float *mask, int64_t rows_per_mask, void *y,
                 const pyrt_qparams *qy);

/* LayerNormalization over each row: v = DQ(x) (+ bias[cols]) (+ DQ(residual)
   [rows][cols], qr: F32, U8 or S8), y = (v - mean) / sqrt(var + epsilon) *
   gamma (+ beta). Writes the float result to y and / or its quantization (qy:
   U8 / S8) to yq; either may be NULL, not both. sum, if not NULL, receives v
   (the residual stream of pre-LN blocks). */
int pyrt_layernorm(pyrt_context *ctx, int64_t rows, int32_t cols, const void *x,
                   const pyrt_qparams *qx, const float *bias,
                   const void *residual, const pyrt_qparams *qr,
                   const float *gamma, const float *beta, float epsilon,
                   float *y, void *yq, const pyrt_qparams *qy, float *sum);

enum pyrt_activation {
  PYRT_ACT_IDENTITY = 0,
  PYRT_ACT_GELU = 1,     /* 0.5 v (1 + erf(v / sqrt 2)) */
  PYRT_ACT_GELU_TANH = 2 /* 0.5 v (1 + tanh(sqrt(2 / pi) (v + 0.044715 v^3))) */
};

/* y = act(DQ(x) (+ bias[cols])). */
int pyrt_activation(pyrt_context *ctx, int64_t rows, int32_t cols,
                    const void *x, const pyrt_qparams *qx, const float *bias,
                    int32_t act, void *y, const pyrt_qparams *qy);

/* ---- fused attention ---------------------------------------------------- */

/* One operand of pyrt_attention: per (batch, head) a matrix; element
   (b, h, r, c) at data + b * stride[0] + h * stride[1] + r * stride[2] +
   c * stride[3] (elements, >= 0; 0 broadcasts). Q's columns are contiguous
   (stride[3] 1, rows apart); K and V are only read to be packed, so any
   strides do (a transposed K is just other strides). dtype PYRT_U8 / PYRT_S8
   (int8 attention, zero_point used) or PYRT_F32 (fp32 attention). */
typedef struct {
  const void *data;
  int32_t dtype;
  int32_t zero_point;
  int64_t stride[4];
} pyrt_attention_operand;

/*
 * y = softmax(Q K^T * x_mul / x_div + mask) V per (batch, head), tiled over
 * blocks of query rows so that only a [rows][kv_len] block of scores is ever
 * held. int8 (Q, K, V U8 / S8), exactly the unfused QDQ graph's steps: s =
 * scores(sum_d (q - zq)(k - zk))   int32 accumulators through the output stage
 * `scores` (U8 / S8 codes, or F32), as pyrt_qmatmul p = softmax rows of s read
 * as scores_q (F32 when `scores` is F32), quantized with probs (U8 / S8), as
 * pyrt_softmax y = out(sum_j (p - zp)(v - zv))      as pyrt_qmatmul fp32 (Q, K,
 * V F32): s = Q K^T and y = P V as pyrt_sgemm's arithmetic (fma, k ascending,
 * from 0), p as pyrt_softmax (scores_q, probs and the stages are ignored). mask
 * NULL, or float rows of kv_len at mask + b * mask_stride[0] + h *
 * mask_stride[1] + row * mask_stride[2]. y: the dtype of out.out_dtype (int8:
 * U8, S8 or F32; fp32: F32), element (b, h, r, c) at y + b * y_stride[0] + h *
 * y_stride[1] + r * y_stride[2] + c. Threads take (batch, head, row block)
 * tasks: results do not depend on the thread count.
 */
typedef struct {
  int32_t batch, heads, q_len, kv_len, head_dim, v_dim;
  pyrt_attention_operand q; /* [q_len][head_dim] */
  pyrt_attention_operand k; /* [kv_len][head_dim] */
  pyrt_attention_operand v; /* [kv_len][v_dim] */
  const float *mask;
  int64_t mask_stride[3];
  pyrt_output_stage scores;
  pyrt_qparams scores_q;
  float x_mul, x_div;
  pyrt_qparams probs;
  pyrt_output_stage out;
  void *y;
  int64_t y_stride[3];
} pyrt_attention_args;
int pyrt_attention(pyrt_context *ctx, const pyrt_attention_args *a);
/* The plan entry of pyrt_attention (see pyrt_plan_qmatmul and the others). */
int pyrt_plan_attention(pyrt_plan *p, const pyrt_attention_args *a, int64_t q,
                        int64_t k, int64_t v, int64_t mask, int64_t y);

/* ---- fp32 elementwise ------------------------------------------------- */

/* Activations, y = f(x) for n floats; x == y is allowed. alpha and beta are
   the op's attributes (ignored where there are none). The formulas, the
   same bits on every ISA, are in kernels/src/felem/felem_scalar.c. */
enum pyrt_unary_op {
  PYRT_RELU = 0,
  PYRT_LEAKY_RELU = 1,   /* alpha: the negative slope */
  PYRT_CLIP = 2,         /* [alpha, beta] */
  PYRT_SIGMOID = 3,      /* 1 / (1 + exp(-x)) */
  PYRT_HARD_SIGMOID = 4, /* clamp(alpha x + beta, 0, 1) */
  PYRT_HARD_SWISH = 5,   /* x * hard_sigmoid(x); ONNX: alpha 1/6, beta 1/2 */
  PYRT_TANH = 6,
  PYRT_ELU = 7,      /* alpha (exp(x) - 1) below 0 */
  PYRT_SOFTPLUS = 8, /* log(1 + exp(x)) */
  PYRT_SWISH = 9,    /* x * sigmoid(x) (SiLU) */
  PYRT_ERF = 10      /* onnxruntime's (MLAS) erf, bit for bit on x86 */
};
int pyrt_funary(pyrt_context *ctx, int32_t op, int64_t n, const float *x,
                float alpha, float beta, float *y);

/* y = a op b (enum pyrt_binary_op: Add, Sub, Mul, Div) with
   pyrt_qbinary_broadcast's shapes: a and y [outer][middle][inner], b
   [outer][1][inner]. b_first 1 computes y = b op a instead (a broadcast
   first operand of Sub / Div). y may be a. */
int pyrt_fbinary_broadcast(pyrt_context *ctx, int32_t op, int64_t outer,
                           int64_t middle, int64_t inner, const float *a,
                           const float *b, int32_t b_first, float *y);

/* Plan entries of the two (arena offsets x, a, b, y). */
int pyrt_plan_funary(pyrt_plan *p, int32_t op, int64_t n, float alpha,
                     float beta, int64_t x, int64_t y);
int pyrt_plan_fbinary(pyrt_plan *p, int32_t op, int64_t outer, int64_t middle,
                      int64_t inner, int64_t a, int64_t b, int32_t b_first,
                      int64_t y);

#endif /* PYRT_KERNELS_H */
