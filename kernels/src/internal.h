/*
 * Internal to the kernel library: the kernel table, the execution context,
 * the packed-weight header, and error reporting. Public entry points
 * (kernels/src/<op>/<op>.c) validate their arguments and call through
 * ctx->t; per-ISA files (<op>_<isa>.c) implement table entries and may
 * assume valid arguments.
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

#define PYRT_ALIGN 64
#define PYRT_ALIGN_UP(n) (((n) + (PYRT_ALIGN - 1)) & ~(size_t)(PYRT_ALIGN - 1))

/*
 * Packed int8 weights of one GEMM, W[N][K] with N = output channels:
 *   pyrt_pack_header | int32 col_sum[N] | int32 w_zero[N] | ISA weight block
 * each part starting on a PYRT_ALIGN boundary. Weights are stored as s8;
 * u8 weights are shifted by -128 together with their zero point, which keeps
 * (w - w_zero) exact. col_sum[n] = sum_k w_s8[n][k]. The header records the
 * table (ISA) and the tile shape the block was laid out for.
 */
#define PYRT_PACK_MAGIC 0x51545250u /* "PRTQ" */
typedef struct {
  uint32_t magic;
  int32_t isa;  /* table id when packed */
  int32_t kind; /* PYRT_PACK_GEMM or PYRT_PACK_DWCONV */
  int32_t N, K;
  int32_t has_w_zero; /* any w_zero[n] != 0 */
  int32_t nr, kr;     /* tile shape of the weight block */
} pyrt_pack_header;

enum { PYRT_PACK_GEMM = 1, PYRT_PACK_DWCONV = 2, PYRT_PACK_SGEMM = 3 };

static inline int32_t *pyrt_pack_col_sum(const void *packed) {
  return (int32_t *)((char *)packed + PYRT_ALIGN_UP(sizeof(pyrt_pack_header)));
}
static inline int32_t *pyrt_pack_w_zero(const void *packed) {
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  return pyrt_pack_col_sum(packed) + PYRT_ALIGN_UP((size_t)h->N * 4) / 4;
}
static inline void *pyrt_pack_weights(const void *packed) {
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  return (char *)pyrt_pack_col_sum(packed) +
         2 * PYRT_ALIGN_UP((size_t)h->N * 4);
}
static inline size_t pyrt_pack_prefix_size(int32_t N) {
  return PYRT_ALIGN_UP(sizeof(pyrt_pack_header)) +
         2 * PYRT_ALIGN_UP((size_t)N * 4);
}

/*
 * The int8 GEMM tile: y[M][N] = A[M][K] x B[K][N] is cut into MR x NR tiles
 * over the whole (padded) K. One driver (qgemm/qgemm.c) owns blocking,
 * threads, A packing, zero-point correction, bias and the requantizing
 * epilogue; an ISA supplies only the pieces below, chosen together
 * (XNNPACK's gemm-config).
 *
 * Packed B (weights, once): panels of NR columns, [N/NR][KP/KR][NR][KR]
 * elements of b_width bytes (s8, or s16 when b_width is 2), zero-padded in
 * N and K; KP = K rounded up to KR.
 * Packed A (activations, per call): rows of KP elements of a_width bytes
 * (u8, or u16 when a_width is 2). s8 activations arrive flipped to u8
 * (x ^ 0x80 = x + 128), their zero point shifted alike, so one u8 x s8
 * kernel serves both.
 */
typedef struct {
  int32_t mr, nr, kr;       /* tile rows, panel columns, K group */
  int32_t a_width, b_width; /* bytes per packed A / B element (1 or 2) */
  /* acc[r * nr + j] = sum_{k < kp} (a[r][k] ^ flip) * b[k][j] for r < mr
     (rows of a at a + r * lda bytes), j < nr; wraps like int32. Reads rows
     < mr only. flip (0 or 0x80) lets a tile read s8 activations in place;
     it is always 0 when a_width is 2 (the widened copy is flipped). */
  void (*ukernel)(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                  const void *b, int32_t *acc, uint8_t flip);
  /* m rows of kp u8 (already flipped) at src / ld_src -> the packed A rows
     at dst / ld_dst (bytes). Only called when a_width is 2. */
  void (*widen_a)(int32_t m, int32_t kp, const uint8_t *src, size_t ld_src,
                  void *dst, size_t ld_dst);
  /* y[r][j] = stage(acc[r * ld_acc + j] + fixed[j] - w_zero[j] * row_sum[r])
     for r < mr, j < nr; w_zero NULL means all zero. scale points at the
     tile's first channel (or the one per-tensor scale). y: ldy elements. */
  void (*epilogue)(int32_t mr, int32_t nr, const int32_t *acc, int32_t ld_acc,
                   const int32_t *fixed, const int32_t *w_zero,
                   const int32_t *row_sum, const float *scale,
                   const pyrt_output_stage *out, void *y, size_t ldy);
  /* dst[r * ld_dst + i] = src[r * ld_src + i] ^ flip for r < rows, i < n:
     the A packing's (and im2col's) copy. NULL: the driver's portable loop. */
  void (*copy_rows)(uint8_t *dst, size_t ld_dst, const uint8_t *src,
                    size_t ld_src, int32_t rows, size_t n, uint8_t flip);
  /* The ukernel for panels of at most nr / 2 columns (N = 16 over NR = 32,
     a tail panel): the same acc for j < nr / 2 only. NULL: the ukernel. */
  void (*ukernel_half)(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                       const void *b, int32_t *acc, uint8_t flip);
} pyrt_qgemm_config;

/* Depthwise NHWC: an ISA's weight block for w_s8 [C][taps] (w_zero: the C
   zero points as stored in the pack, already shifted like w_s8); `run`
   writes output rows [r0, r1) of the batch * out_h rows, with `scratch` of
   scratch_size(s) bytes (64-byte aligned) to itself; scratch_size NULL: no
   scratch. */
typedef struct {
  size_t (*weights_size)(int32_t channels, int32_t taps);
  void (*pack)(int32_t channels, int32_t taps, const int8_t *w_s8,
               const int32_t *w_zero, void *dst);
  size_t (*scratch_size)(const pyrt_conv2d_shape *s);
  void (*run)(const pyrt_conv2d_shape *s, const void *packed, const uint8_t *x,
              int32_t x_flip, int32_t x_zero, const int32_t *bias,
              const pyrt_output_stage *out, void *y, int32_t r0, int32_t r1,
              void *scratch);
} pyrt_qdwconv_config;

/* The float-row kernels around attention. Each runs rows [r0, r1) of its
   job with `buf`, scratch of 2 * cols floats; x / y are F32 or U8 / S8
   (dequantized on load, quantized on store, see fmath/fmath.h). */
typedef struct {
  int64_t rows;
  int32_t cols;
  const void *x;
  pyrt_qparams qx;
  float x_mul, x_div; /* v = DQ(x) * x_mul / x_div (+ mask); 1 skips either */
  const float *mask;  /* NULL, or [rows / rows_per_mask][cols] */
  int64_t rows_per_mask;
  void *y;
  pyrt_qparams qy;
} pyrt_softmax_job;

typedef struct {
  int64_t rows;
  int32_t cols;
  const void *x;
  pyrt_qparams qx;
  const float *bias;    /* NULL or [cols]: v = DQ(x) + bias */
  const void *residual; /* NULL or [rows][cols]: v = v + DQ(residual) */
  pyrt_qparams qr;
  const float *gamma, *beta; /* [cols]; beta may be NULL */
  float epsilon;
  float *y; /* NULL, or the float output */
  void *yq; /* NULL, or the quantized output (qy) */
  pyrt_qparams qy;
  float *sum; /* NULL, or v itself (pre-LN blocks keep the residual sum) */
} pyrt_layernorm_job;

typedef struct {
  int64_t rows;
  int32_t cols;
  const void *x;
  pyrt_qparams qx;
  const float *bias; /* NULL or [cols]: v = DQ(x) + bias */
  int32_t act;       /* enum pyrt_activation */
  void *y;
  pyrt_qparams qy;
} pyrt_activation_job;

/*
 * The fp32 GEMM tile, under the fp32 driver (sgemm/sgemm.c), which owns
 * blocking, threads, im2col and the bias; the ISA supplies the tile only.
 *
 * Arithmetic, one definition for every ISA (so every SIMD tile is bit-exact
 * with the scalar one): output (m, n) is
 *   acc = bias[n] (0.0f without bias);
 *   for k = 0, 1, ..., K-1:  acc = fma(a[m][k], w[k][n], acc);
 *   y = min(max(acc, lo), hi)  as  v = lo > acc ? lo : acc; hi < v ? hi : v
 * with fma the exactly rounded fused multiply-add (C fmaf, x86 vfmadd,
 * RISC-V fmadd). The clamp passes NaN through (vmaxps(lo, x) / vminps(hi, v)
 * are exactly these selects). Everything else is compiled with
 * -ffp-contract=off, so no compiler fuses anything behind our back.
 *
 * Packed B (weights, once): panels of NR columns, [N/NR][K][NR] floats,
 * zero-padded in N. The driver runs K in blocks of kc, parking the unrounded
 * fp32 partial sums in y between blocks: the order above is kept exactly.
 */
typedef struct {
  int32_t mr, nr, kc; /* tile rows, panel columns, K block */
  /* For r < mr, j < nr (nr <= the config's; only those are read or written
     in y): acc = init ? init[j] : y[r][j]; for k < kc: acc = fma(a[r][k],
     b[k][j], acc); y[r][j] = clamp ? min(max(acc, clamp[0]), clamp[1]) :
     acc. a: rows at a + r * lda; b: kc rows of the config's nr floats;
     init: the config's nr floats; y: rows of ldy floats. */
  void (*ukernel)(int32_t mr, int32_t nr, int32_t kc, const float *a,
                  size_t lda, const float *b, const float *init,
                  const float *clamp, float *y, size_t ldy);
} pyrt_sgemm_config;

/* fp32 depthwise NHWC, vectorised over channels; the driver (conv/conv.c)
   resolves strides, dilations and padding into tap pointers. For pixel
   p < pixels and channel c < channels:
     acc = bias[c]; for i < taps: acc = fma(x[i][p * x_step + c], w[i][c], acc)
     y[p * channels + c] = min(max(acc, clamp[0]), clamp[1])
   (taps in the padding are not in the list: they contribute nothing). */
typedef struct {
  void (*run)(int32_t channels, int32_t taps, const float *const *x,
              const float *const *w, int32_t pixels, size_t x_step,
              const float *bias, const float *clamp, float *y);
} pyrt_sdwconv_config;

/* pyrt_channel_affine's constants (the dtypes, zero points and clamp). */
typedef struct {
  int32_t x_dtype, y_dtype;
  float x_zero, y_zero, lo, hi;
} pyrt_affine_args;

/*
 * One table of kernels per ISA. dispatch.c fills each once: a level starts
 * as a copy of the level below and overrides what it does better (MLAS's
 * platform.cpp). Callers never branch on ISA.
 */
typedef struct pyrt_kernel_table {
  const char *name;
  int32_t id;
  int32_t vector_bits; /* pyrt_context_vector_bits; 0: scalar */
  pyrt_qgemm_config qgemm;
  pyrt_qdwconv_config qdwconv;

  void (*requantize)(int64_t rows, int64_t cols, int32_t channels,
                     const int32_t *acc, const pyrt_output_stage *out, void *y);

  pyrt_sgemm_config sgemm;
  pyrt_sdwconv_config sdwconv;

  /* Quantize / dequantize n elements; element i's scale is scale[i * step]
     and its zero point zero[i * step] (zero NULL: 0), step >= 0 (SIMD
     tables vectorize step 0, the per-tensor and per-axis case). */
  void (*quantize)(int64_t n, const float *x, const float *scale,
                   const void *zero, int64_t step, int32_t out_dtype, void *y);
  void (*dequantize)(int64_t n, const void *x, int32_t x_dtype,
                     const float *scale, const void *zero, int64_t step,
                     float *y);
  /* *lo = min(0, x...), *hi = max(0, x...) of n floats, NaNs left out (min
     and max are exact in any order, so every ISA agrees). */
  void (*range_f32)(int64_t n, const float *x, float *lo, float *hi);
  /* Add / Mul of a and y [rows][cols] (dense) with b broadcast over rows:
     b holds cols values when b_step is 1, one value when it is 0. */
  void (*qbinary)(int32_t op, int64_t rows, int64_t cols, const void *a,
                  const pyrt_qparams *qa, const void *b, int32_t b_step,
                  const pyrt_qparams *qb, void *y, const pyrt_qparams *qy,
                  int32_t qmin, int32_t qmax);
  /* Pools over output rows [r0, r1): NCHW rows are (plane, oy) pairs,
     batch * channels * out_h of them; NHWC rows are (image, oy) pairs,
     batch * out_h of them, each out_w pixels of all channels. */
  void (*qmaxpool2d)(const pyrt_pool2d_shape *s, const void *x, int32_t dtype,
                     void *y, int64_t r0, int64_t r1);
  void (*qmaxpool2d_nhwc)(const pyrt_pool2d_shape *s, const void *x,
                          int32_t dtype, void *y, int64_t r0, int64_t r1);
  void (*qavgpool2d)(const pyrt_pool2d_shape *s, const void *x,
                     const pyrt_qparams *qx, void *y, const pyrt_qparams *qy,
                     int64_t r0, int64_t r1);
  void (*qavgpool2d_nhwc)(const pyrt_pool2d_shape *s, const void *x,
                          const pyrt_qparams *qx, void *y,
                          const pyrt_qparams *qy, int64_t r0, int64_t r1);
  /* NCHW: y[r] = mean of row r of x [rows][hw]. */
  void (*qglobalavgpool)(int64_t rows, int64_t hw, const void *x,
                         const pyrt_qparams *qx, void *y,
                         const pyrt_qparams *qy);

  void (*softmax)(const pyrt_softmax_job *j, int64_t r0, int64_t r1,
                  float *buf);
  void (*layernorm)(const pyrt_layernorm_job *j, int64_t r0, int64_t r1,
                    float *buf);
  void (*activation)(const pyrt_activation_job *j, int64_t r0, int64_t r1,
                     float *buf);
  /* y[c][r] = x[r * ldx + c] for r < rows, c < cols (elements of 1 or 4
     bytes; y's rows are `rows` elements long) */
  void (*transpose)(int32_t elem_size, int64_t rows, int64_t cols,
                    const void *x, int64_t ldx, void *y);
  void (*lut8)(int64_t n, const uint8_t *table, const uint8_t *x, uint8_t *y);
  /* NHWC: y[c] = mean over r < hw of x[r * ld + c], c < cols. */
  void (*qglobalavgpool_nhwc)(int64_t hw, int64_t ld, int64_t cols,
                              const void *x, const pyrt_qparams *qx, void *y,
                              const pyrt_qparams *qy);
  /* fp32 pools over output rows [r0, r1), either layout (pool_f32.h). */
  void (*maxpool2d_f32)(const pyrt_pool2d_shape *s, const float *x, float *y,
                        int64_t r0, int64_t r1);
  void (*avgpool2d_f32)(const pyrt_pool2d_shape *s, const float *x, float *y,
                        int64_t r0, int64_t r1);
  /* n elements of pyrt_channel_affine; element i's a[i * step], b[i * step]
     (step 0 or 1). */
  void (*channel_affine)(int64_t n, const void *x, const float *a,
                         const float *b, int32_t step,
                         const pyrt_affine_args *p, void *y);
  /* fp32 elementwise (felem/): y = f(x) for n floats (enum pyrt_unary_op);
     y = a op b over [rows][cols] with b broadcast over rows (b_step 1: cols
     values, 0: one value), b_first 1: y = b op a. */
  void (*funary)(int32_t op, int64_t n, const float *x, float alpha, float beta,
                 float *y);
  void (*fbinary)(int32_t op, int64_t rows, int64_t cols, const float *a,
                  const float *b, int32_t b_step, int32_t b_first, float *y);
} pyrt_kernel_table;

/* The table named `name` if this CPU runs it (NULL: the best one). */
const pyrt_kernel_table *pyrt_find_table(const char *name);

/* ---- execution context: table, thread pool, per-worker scratch ------- */

typedef struct pyrt_pool pyrt_pool;
struct pyrt_context {
  const pyrt_kernel_table *t;
  int32_t threads;
  pyrt_pool *pool; /* NULL when threads == 1 */
  void *lock;      /* one kernel call at a time: scratch is per worker */
  struct {
    void *data;
    size_t size;
  } *scratch; /* [threads + 1]: one per worker, then PYRT_SHARED's */
};

/* Worker `worker`'s scratch of at least `bytes` (64-byte aligned), or with
   worker PYRT_SHARED the call's shared scratch (take it before
   pyrt_parallel); NULL if out of memory. Valid until the next request for
   the same slot. */
#define PYRT_SHARED (-1)
void *pyrt_scratch(pyrt_context *ctx, int32_t worker, size_t bytes);

/* Runs fn(arg, task, worker) for task in [0, tasks) on the context's
   workers; returns when all are done. Tasks must write disjoint outputs, so
   results do not depend on the thread count. */
typedef void (*pyrt_task_fn)(void *arg, int32_t task, int32_t worker);
void pyrt_parallel(pyrt_context *ctx, int32_t tasks, pyrt_task_fn fn,
                   void *arg);

/* Elementwise work, rows x cols elements, cut into tasks for
   pyrt_parallel: one task when single-threaded or small, else about
   PYRT_TASKS_PER_THREAD per thread of at least PYRT_GRAIN elements each,
   made of whole rows or, when one row is longer than that, of pieces of one
   row (multiples of 64 columns). The work is uniform, so few large tasks
   beat fine balancing (each task costs a hand-off in the pool). */
#define PYRT_GRAIN 32768
#define PYRT_TASKS_PER_THREAD 2
typedef struct {
  int64_t rows, cols;
  int64_t rows_per_task; /* when whole rows */
  int64_t piece, pieces; /* columns per piece, pieces per row (else 0) */
  int32_t tasks;
} pyrt_grid;
pyrt_grid pyrt_grid_make(const pyrt_context *ctx, int64_t rows, int64_t cols);
/* Task `task`'s rows [*r0, *r1) and columns [*c0, *c1). */
void pyrt_grid_task(const pyrt_grid *g, int32_t task, int64_t *r0, int64_t *r1,
                    int64_t *c0, int64_t *c1);

/* Held by every compute entry point around its table calls. */
void pyrt_context_enter(pyrt_context *ctx);
void pyrt_context_leave(pyrt_context *ctx);

/* ---- the scalar table: portable C11, the reference every SIMD path must
   match bit for bit. One declaration per <op>_scalar.c entry. ---------- */
void pyrt_init_scalar(pyrt_kernel_table *t); /* qgemm/qgemm_scalar.c */
void pyrt_qgemm_epilogue_scalar(int32_t mr, int32_t nr, const int32_t *acc,
                                int32_t ld_acc, const int32_t *fixed,
                                const int32_t *w_zero, const int32_t *row_sum,
                                const float *scale,
                                const pyrt_output_stage *out, void *y,
                                size_t ldy);
void pyrt_qdwconv_init_scalar(pyrt_kernel_table *t);
void pyrt_requantize_scalar(int64_t rows, int64_t cols, int32_t channels,
                            const int32_t *acc, const pyrt_output_stage *out,
                            void *y);
void pyrt_sgemm_init_scalar(pyrt_kernel_table *t); /* + sdwconv */
void pyrt_range_f32_scalar(int64_t n, const float *x, float *lo, float *hi);
void pyrt_quantize_scalar(int64_t n, const float *x, const float *scale,
                          const void *zero, int64_t step, int32_t out_dtype,
                          void *y);
void pyrt_dequantize_scalar(int64_t n, const void *x, int32_t x_dtype,
                            const float *scale, const void *zero, int64_t step,
                            float *y);
void pyrt_qbinary_scalar(int32_t op, int64_t rows, int64_t cols, const void *a,
                         const pyrt_qparams *qa, const void *b, int32_t b_step,
                         const pyrt_qparams *qb, void *y,
                         const pyrt_qparams *qy, int32_t qmin, int32_t qmax);
void pyrt_qmaxpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            int32_t dtype, void *y, int64_t r0, int64_t r1);
void pyrt_qmaxpool2d_nhwc_scalar(const pyrt_pool2d_shape *s, const void *x,
                                 int32_t dtype, void *y, int64_t r0,
                                 int64_t r1);
void pyrt_qavgpool2d_scalar(const pyrt_pool2d_shape *s, const void *x,
                            const pyrt_qparams *qx, void *y,
                            const pyrt_qparams *qy, int64_t r0, int64_t r1);
void pyrt_qavgpool2d_nhwc_scalar(const pyrt_pool2d_shape *s, const void *x,
                                 const pyrt_qparams *qx, void *y,
                                 const pyrt_qparams *qy, int64_t r0,
                                 int64_t r1);
void pyrt_qglobalavgpool_scalar(int64_t rows, int64_t hw, const void *x,
                                const pyrt_qparams *qx, void *y,
                                const pyrt_qparams *qy);
void pyrt_qglobalavgpool_nhwc_scalar(int64_t hw, int64_t ld, int64_t cols,
                                     const void *x, const pyrt_qparams *qx,
                                     void *y, const pyrt_qparams *qy);

void pyrt_maxpool2d_f32_scalar(const pyrt_pool2d_shape *s, const float *x,
                               float *y, int64_t r0, int64_t r1);
void pyrt_avgpool2d_f32_scalar(const pyrt_pool2d_shape *s, const float *x,
                               float *y, int64_t r0, int64_t r1);
void pyrt_channel_affine_scalar(int64_t n, const void *x, const float *a,
                                const float *b, int32_t step,
                                const pyrt_affine_args *p, void *y);
void pyrt_globalavgpool_f32_nhwc_scalar(int64_t hw, int64_t channels,
                                        const float *x, float *y);
void pyrt_transpose_scalar(int32_t elem_size, int64_t rows, int64_t cols,
                           const void *x, int64_t ldx, void *y);
void pyrt_lut8_scalar(int64_t n, const uint8_t *table, const uint8_t *x,
                      uint8_t *y);

void pyrt_softmax_scalar(const pyrt_softmax_job *j, int64_t r0, int64_t r1,
                         float *buf);
void pyrt_layernorm_scalar(const pyrt_layernorm_job *j, int64_t r0, int64_t r1,
                           float *buf);
void pyrt_activation_scalar(const pyrt_activation_job *j, int64_t r0,
                            int64_t r1, float *buf);
void pyrt_felem_init_scalar(pyrt_kernel_table *t); /* funary, fbinary */

/* Runs rows [0, rows) of a float-row kernel as pyrt_parallel tasks of about
   a few thousand elements each, with per-worker buffers of 4 * cols
   floats (PYRT_LN_ROWS rows of a layernorm): fn(ctx->t, job, r0, r1, buf).
   PYRT_OK or PYRT_ERR_NOMEM. */
typedef void (*pyrt_rows_fn)(const pyrt_kernel_table *t, const void *job,
                             int64_t r0, int64_t r1, float *buf);
int pyrt_run_rows(pyrt_context *ctx, int64_t rows, int32_t cols,
                  pyrt_rows_fn fn, const void *job);

/* Per-ISA overrides (each file <op>_<isa>.c has one init for its ISA). */
#if defined(PYRT_HAVE_X86)
void pyrt_qgemm_init_avx2(pyrt_kernel_table *t);
void pyrt_qdwconv_init_avx2(pyrt_kernel_table *t);
void pyrt_requant_init_avx2(pyrt_kernel_table *t);
void pyrt_qgemm_init_avxvnni(pyrt_kernel_table *t);
void pyrt_qgemm_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_softmax_init_avx2(pyrt_kernel_table *t);
void pyrt_layernorm_init_avx2(pyrt_kernel_table *t);
void pyrt_activation_init_avx2(pyrt_kernel_table *t);
void pyrt_softmax_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_layernorm_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_activation_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_qdwconv_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_requant_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_qpool_init_avx2(pyrt_kernel_table *t);
void pyrt_qpool_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_qbinary_init_avx2(pyrt_kernel_table *t);
void pyrt_qbinary_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_quant_init_avx2(pyrt_kernel_table *t);
void pyrt_quant_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_sgemm_init_avx2(pyrt_kernel_table *t);       /* + sdwconv */
void pyrt_sgemm_init_avx512vnni(pyrt_kernel_table *t); /* + sdwconv */
void pyrt_affine_init_avx2(pyrt_kernel_table *t);
void pyrt_affine_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_layout_init_avx2(pyrt_kernel_table *t);
void pyrt_layout_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_pool_f32_init_avx2(pyrt_kernel_table *t);
void pyrt_pool_f32_init_avx512vnni(pyrt_kernel_table *t);
void pyrt_felem_init_avx2(pyrt_kernel_table *t);
void pyrt_felem_init_avx512vnni(pyrt_kernel_table *t);
#endif
#if defined(PYRT_HAVE_RISCV)
void pyrt_qgemm_init_rvv(pyrt_kernel_table *t);
void pyrt_qbinary_init_rvv(pyrt_kernel_table *t);
void pyrt_quant_init_rvv(pyrt_kernel_table *t);
void pyrt_requant_init_rvv(pyrt_kernel_table *t);
void pyrt_qdwconv_init_rvv(pyrt_kernel_table *t);
void pyrt_sgemm_init_rvv(pyrt_kernel_table *t);
void pyrt_qpool_init_rvv(pyrt_kernel_table *t);
void pyrt_layout_init_rvv(pyrt_kernel_table *t);
#endif

#endif /* PYRT_INTERNAL_H */
