/* Every kernel of every ISA the CPU runs, against the scalar table, bit for
   bit.

   Built natively and for riscv64 (tests/test_riscv.py runs it under QEMU at
   VLEN 128, 256 and 512; no Python involved). Each case packs its weights and
   runs once per ISA in pyrt_isa_available(), scalar first; any other ISA's
   output must equal the scalar one byte for byte. Shapes sit on and around
   tile edges (1, tile - 1, tile, tile + 1 for tiles of 4 to 64 lanes) with
   row strides wider than the rows. One line per case:

     ok <case> <fnv1a-64 of the scalar output> <isas>
     FAIL <case> <isa>: <what>

   and a last line "N passed, N failed". Output buffers start filled with one
   pattern for every ISA, so row padding a kernel must not touch compares too.
   The hashes of the scalar outputs must also agree between architectures (the
   test compares riscv64's with x86's): the scalar C is the same everywhere.

   A new ISA table needs nothing here; a new kernel gets a case function and
   a shape list in main(). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyrt/kernels.h"

/* ---- deterministic data ------------------------------------------------ */

typedef struct {
  uint64_t s;
} rng;

static uint32_t next(rng *r) {
  r->s ^= r->s << 13, r->s ^= r->s >> 7, r->s ^= r->s << 17;
  return (uint32_t)(r->s >> 16);
}
static int32_t uniform(rng *r, int32_t lo, int32_t hi) { /* [lo, hi] */
  return lo + (int32_t)(next(r) % (uint32_t)(hi - lo + 1));
}
static float uniform_f(rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)(next(r) & 0xffffff) / (float)0xffffff;
}
static void fill_codes(rng *r, void *p, size_t n, int32_t dtype) {
  for (size_t i = 0; i < n; i++) {
    if (dtype == PYRT_U8)
      ((uint8_t *)p)[i] = (uint8_t)uniform(r, 0, 255);
    else
      ((int8_t *)p)[i] = (int8_t)uniform(r, -128, 127);
  }
}
static void fill_f(rng *r, float *p, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) p[i] = uniform_f(r, lo, hi);
}
static int32_t code_lo(int32_t dtype) {
  return dtype == PYRT_U8 ? 0 : -128;
}

static uint64_t fnv1a(const void *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
  return h;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

/* ---- the harness --------------------------------------------------------- */

typedef int (*case_fn)(pyrt_context *ctx, const void *params, uint64_t seed,
                       void *out);

static int passed, failed;

/* One context per ISA the CPU runs (scalar first, single-threaded), then the
   best ISA on 3 threads: every output must equal the scalar one. */
enum { MAX_CONTEXTS = 8 };
static pyrt_context *contexts[MAX_CONTEXTS];
static int n_contexts;

static void make_contexts(void) {
  char isas[256];
  snprintf(isas, sizeof isas, "%s", pyrt_isa_available());
  const char *best = "scalar";
  for (char *isa = strtok(isas, ","); isa != NULL; isa = strtok(NULL, ",")) {
    if (n_contexts == MAX_CONTEXTS - 1) break;
    best = isa;
    if (pyrt_context_create(isa, 1, &contexts[n_contexts++]) != PYRT_OK) {
      printf("FAIL context %s: %s\n", isa, pyrt_last_error());
      exit(1);
    }
  }
  if (pyrt_context_create(best, 3, &contexts[n_contexts++]) != PYRT_OK) {
    printf("FAIL context %s x3: %s\n", best, pyrt_last_error());
    exit(1);
  }
}

static void run_case(const char *name, case_fn fn, const void *params,
                     size_t out_bytes) {
  uint8_t *ref = xmalloc(out_bytes), *got = xmalloc(out_bytes);
  const uint64_t seed = fnv1a(name, strlen(name));
  int ok = 1;
  for (int i = 0; ok && i < n_contexts; i++) {
    pyrt_context *ctx = contexts[i];
    const char *isa = pyrt_context_isa(ctx);
    const int threads = pyrt_context_threads(ctx);
    uint8_t *out = memset(i == 0 ? ref : got, 0xa5, out_bytes);
    if (fn(ctx, params, seed, out) != PYRT_OK) {
      printf("FAIL %s %s x%d: %s\n", name, isa, threads, pyrt_last_error());
      ok = 0;
    } else if (i > 0 && memcmp(ref, got, out_bytes) != 0) {
      size_t at = 0;
      while (ref[at] == got[at]) at++;
      printf("FAIL %s %s x%d: output byte %zu of %zu is %02x, scalar %02x\n",
             name, isa, threads, at, out_bytes, got[at], ref[at]);
      ok = 0;
    }
  }
  if (ok)
    printf("ok %s %016llx %s\n", name,
           (unsigned long long)fnv1a(ref, out_bytes), pyrt_isa_available());
  ok ? passed++ : failed++;
  free(ref);
  free(got);
}

static pyrt_output_stage output_stage(rng *r, int32_t dtype, int32_t channels,
                                      float *scales, float scale_lo,
                                      float scale_hi) {
  for (int32_t c = 0; c < channels; c++)
    scales[c] = uniform_f(r, scale_lo, scale_hi);
  int32_t lo = dtype == PYRT_S8 ? -128 : 0, hi = lo + 255;
  pyrt_output_stage out = {dtype, channels > 1, scales, 0, lo, hi};
  if (dtype == PYRT_U8 || dtype == PYRT_S8) {
    out.zero_point = uniform(r, lo, hi);
    out.qmin = uniform(r, lo, lo + 20); /* a fused clamp, sometimes */
    out.qmax = uniform(r, hi - 20, hi);
  }
  return out;
}

static size_t dtype_size(int32_t dtype) {
  return dtype == PYRT_S32 || dtype == PYRT_F32 ? 4 : 1;
}

/* ---- int8 GEMM ------------------------------------------------------------
 */

typedef struct {
  int32_t M, N, K, x_dtype, w_dtype, out_dtype, per_channel;
} qgemm_case;

static int qgemm_run(pyrt_context *ctx, const void *params, uint64_t seed,
                     void *y) {
  const qgemm_case *c = params;
  rng r = {seed};
  const int32_t lda = c->K + 3, ldy = c->N + 5;
  int8_t *w = xmalloc((size_t)c->N * c->K), *a = xmalloc((size_t)c->M * lda);
  int32_t *w_zero = xmalloc(sizeof(int32_t) * c->N);
  int32_t *bias = xmalloc(sizeof(int32_t) * c->N);
  float *scales = xmalloc(sizeof(float) * c->N);
  fill_codes(&r, w, (size_t)c->N * c->K, c->w_dtype);
  fill_codes(&r, a, (size_t)c->M * lda, c->x_dtype);
  for (int32_t n = 0; n < c->N; n++) {
    w_zero[n] = c->per_channel ? uniform(&r, code_lo(c->w_dtype),
                                         code_lo(c->w_dtype) + 255)
                               : 0;
    bias[n] = uniform(&r, -5000, 5000);
  }
  const int32_t a_zero =
      uniform(&r, code_lo(c->x_dtype), code_lo(c->x_dtype) + 255);
  pyrt_output_stage out =
      output_stage(&r, c->out_dtype, c->per_channel ? c->N : 1, scales,
                   0.5f / (float)(c->K * 64), 4.0f / (float)(c->K * 64));
  void *packed = xmalloc(pyrt_qgemm_packed_size(ctx, c->N, c->K));
  int rc = pyrt_qgemm_pack(ctx, c->N, c->K, w, c->w_dtype, w_zero,
                           c->per_channel, packed);
  if (!rc)
    rc = pyrt_qgemm(ctx, c->M, c->N, c->K, a, c->x_dtype, a_zero, lda, packed,
                    bias, &out, y, ldy);
  free(packed), free(w), free(a), free(w_zero), free(bias), free(scales);
  return rc;
}

/* ---- convolutions (int8 and fp32) -----------------------------------------
 */

typedef struct {
  int32_t in_c, hw, out_c, groups, k, stride, dilation, pad;
} conv_case;

static pyrt_conv2d_shape conv_shape(const conv_case *c) {
  pyrt_conv2d_shape s = {1,           c->in_c,     c->hw,  c->hw + 1, c->out_c,
                         c->groups,   c->k,        c->k,   c->stride, c->stride,
                         c->dilation, c->dilation, c->pad, c->pad,    c->pad,
                         c->pad,      0,           0};
  pyrt_conv2d_infer(&s);
  return s;
}

/* int8 convolutions: one shape, u8 or s8 activations and output. */
typedef struct {
  const conv_case *shape;
  int32_t dtype;
} qconv_case;

static int qconv_run(pyrt_context *ctx, const void *params, uint64_t seed,
                     void *y) {
  const qconv_case *q = params;
  const conv_case *c = q->shape;
  rng r = {seed};
  pyrt_conv2d_shape s = conv_shape(c);
  const size_t nw =
      (size_t)s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w;
  const size_t nx = (size_t)s.in_c * s.in_h * s.in_w;
  uint8_t *x = xmalloc(nx);
  int8_t *w = xmalloc(nw);
  int32_t *w_zero = xmalloc(sizeof(int32_t) * s.out_c),
          *bias = xmalloc(sizeof(int32_t) * s.out_c);
  float *scales = xmalloc(sizeof(float) * s.out_c);
  fill_codes(&r, x, nx, q->dtype);
  fill_codes(&r, w, nw, PYRT_S8);
  for (int32_t m = 0; m < s.out_c; m++) {
    w_zero[m] = uniform(&r, -3, 3);
    bias[m] = uniform(&r, -3000, 3000);
  }
  const float fan = (float)(nw / (size_t)s.out_c) * 64;
  pyrt_output_stage out =
      output_stage(&r, q->dtype, s.out_c, scales, 0.5f / fan, 4.0f / fan);
  void *packed = xmalloc(pyrt_qconv2d_packed_size(ctx, &s));
  int rc = pyrt_qconv2d_pack(ctx, &s, w, PYRT_S8, w_zero, 1, packed);
  if (!rc)
    rc = pyrt_qconv2d(ctx, &s, packed, x, q->dtype,
                      uniform(&r, code_lo(q->dtype), code_lo(q->dtype) + 255),
                      bias, &out, y);
  free(packed), free(x), free(w), free(w_zero), free(bias), free(scales);
  return rc;
}

static int conv_run(pyrt_context *ctx, const void *params, uint64_t seed,
                    void *y) {
  const conv_case *c = params;
  rng r = {seed};
  pyrt_conv2d_shape s = conv_shape(c);
  const size_t nw =
      (size_t)s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w;
  const size_t nx = (size_t)s.in_c * s.in_h * s.in_w;
  float *x = xmalloc(sizeof(float) * nx), *w = xmalloc(sizeof(float) * nw);
  float *bias = xmalloc(sizeof(float) * s.out_c);
  fill_f(&r, x, nx, -2, 2);
  fill_f(&r, w, nw, -1, 1);
  fill_f(&r, bias, (size_t)s.out_c, -1, 1);
  void *packed = xmalloc(pyrt_conv2d_packed_size(ctx, &s));
  int rc = pyrt_conv2d_pack(ctx, &s, w, packed);
  if (!rc) rc = pyrt_conv2d(ctx, &s, packed, x, bias, 0.0f, 6.0f, y);
  free(packed), free(x), free(w), free(bias);
  return rc;
}

static size_t conv_out_elems(const conv_case *c) {
  pyrt_conv2d_shape s = conv_shape(c);
  return (size_t)s.out_c * s.out_h * s.out_w;
}

/* ---- fp32 GEMM --------------------------------------------------------------
 */

typedef struct {
  int32_t M, N, K;
} sgemm_case;

static int sgemm_run(pyrt_context *ctx, const void *params, uint64_t seed,
                     void *y) {
  const sgemm_case *c = params;
  rng r = {seed};
  const int32_t lda = c->K + 1, ldy = c->N + 2;
  float *w = xmalloc(sizeof(float) * c->N * c->K),
        *a = xmalloc(sizeof(float) * c->M * lda);
  float *bias = xmalloc(sizeof(float) * c->N);
  fill_f(&r, w, (size_t)c->N * c->K, -1, 1);
  fill_f(&r, a, (size_t)c->M * lda, -1, 1);
  fill_f(&r, bias, (size_t)c->N, -1, 1);
  a[0] = NAN;                                   /* passes through the clamp */
  const float lo = c->M % 2 ? 0.0f : -INFINITY; /* a fused ReLU, sometimes */
  void *packed = xmalloc(pyrt_sgemm_packed_size(ctx, c->N, c->K));
  int rc = pyrt_sgemm_pack(ctx, c->N, c->K, w, packed);
  if (!rc)
    rc = pyrt_sgemm(ctx, c->M, c->N, c->K, a, lda, packed,
                    c->K % 2 ? bias : NULL, lo, INFINITY, y, ldy);
  free(packed), free(w), free(a), free(bias);
  return rc;
}

/* ---- requantize, Q / DQ, Add / Mul, pools
 * --------------------------------------- */

typedef struct {
  int32_t rows, cols, channels, out_dtype;
} requant_case;

static int requant_run(pyrt_context *ctx, const void *params, uint64_t seed,
                       void *y) {
  const requant_case *c = params;
  rng r = {seed};
  const size_t n = (size_t)c->rows * c->cols;
  int32_t *acc = xmalloc(sizeof(int32_t) * n);
  float *scales = xmalloc(sizeof(float) * c->channels);
  for (size_t i = 0; i < n; i++) acc[i] = uniform(&r, -40000, 40000);
  acc[0] = INT32_MAX, acc[n - 1] = INT32_MIN; /* saturation */
  pyrt_output_stage out =
      output_stage(&r, c->out_dtype, c->channels, scales, 1e-4f, 1e-2f);
  int rc = pyrt_requantize(ctx, c->rows, c->cols, c->channels, acc, &out, y);
  free(acc), free(scales);
  return rc;
}

typedef struct {
  int32_t outer, axis_len, inner, dtype, dequantize;
} quant_case;

static int quant_run(pyrt_context *ctx, const void *params, uint64_t seed,
                     void *y) {
  const quant_case *c = params;
  rng r = {seed};
  const size_t n = (size_t)c->outer * c->axis_len * c->inner;
  pyrt_quant_layout l = {c->outer, c->axis_len, c->inner, 1, 0, 1, 0};
  float *scale = xmalloc(sizeof(float) * c->axis_len),
        *x = xmalloc(sizeof(float) * n);
  int8_t *zero = xmalloc((size_t)c->axis_len), *q = xmalloc(n);
  fill_f(&r, scale, (size_t)c->axis_len, 0.01f, 0.1f);
  fill_codes(&r, zero, (size_t)c->axis_len, c->dtype);
  int rc;
  if (c->dequantize) {
    fill_codes(&r, q, n, c->dtype);
    rc = pyrt_dequantize(ctx, &l, q, c->dtype, scale, zero, y);
  } else {
    fill_f(&r, x, n, -20, 20);
    x[0] = NAN, x[n - 1] = INFINITY;
    rc = pyrt_quantize(ctx, &l, x, scale, zero, c->dtype, y);
  }
  free(scale), free(x), free(zero), free(q);
  return rc;
}

/* y [outer][middle][inner] = a (same shape) op b [outer][1][inner]. */
typedef struct {
  int32_t op, outer, middle, inner, dtype;
} binary_case;

static pyrt_qparams qparams(rng *r, int32_t dtype) {
  return (pyrt_qparams){dtype, uniform_f(r, 0.01f, 0.2f),
                        uniform(r, code_lo(dtype), code_lo(dtype) + 255)};
}

static int binary_run(pyrt_context *ctx, const void *params, uint64_t seed,
                      void *y) {
  const binary_case *c = params;
  rng r = {seed};
  const size_t n = (size_t)c->outer * c->middle * c->inner;
  const size_t nb = (size_t)c->outer * c->inner;
  uint8_t *a = xmalloc(n), *b = xmalloc(nb);
  fill_codes(&r, a, n, c->dtype);
  fill_codes(&r, b, nb, c->dtype);
  pyrt_qparams qa = qparams(&r, c->dtype), qb = qparams(&r, c->dtype),
               qy = qparams(&r, c->dtype);
  const int32_t lo = code_lo(c->dtype);
  const int32_t qmin = uniform(&r, lo, lo + 30),
                qmax = uniform(&r, lo + 200, lo + 255);
  int rc = c->middle == 1 ? pyrt_qbinary(ctx, c->op, (int64_t)n, a, &qa, b, &qb,
                                         y, &qy, qmin, qmax)
                          : pyrt_qbinary_broadcast(ctx, c->op, c->outer,
                                                   c->middle, c->inner, a, &qa,
                                                   b, &qb, y, &qy, qmin, qmax);
  free(a), free(b);
  return rc;
}

typedef struct {
  int32_t channels, hw, k, stride, pad;
  int32_t kind; /* 0 max, 1 avg, 2 avg incl. pad, 3 global */
  int32_t layout, dtype;
} pool_case;

static pyrt_pool2d_shape pool_shape(const pool_case *c) {
  const int32_t span = c->hw + 2 * c->pad - c->k;
  pyrt_pool2d_shape s = {1,
                         c->channels,
                         c->hw,
                         c->hw,
                         c->k,
                         c->k,
                         c->stride,
                         c->stride,
                         1,
                         1,
                         c->pad,
                         c->pad,
                         c->pad,
                         c->pad,
                         span / c->stride + 1,
                         span / c->stride + 1,
                         c->kind == 2,
                         c->layout};
  return s;
}

static int pool_run(pyrt_context *ctx, const void *params, uint64_t seed,
                    void *y) {
  const pool_case *c = params;
  rng r = {seed};
  const pyrt_pool2d_shape s = pool_shape(c);
  const size_t n = (size_t)c->channels * c->hw * c->hw;
  uint8_t *x = xmalloc(n);
  fill_codes(&r, x, n, c->dtype);
  pyrt_qparams qx = qparams(&r, c->dtype), qy = qparams(&r, c->dtype);
  int rc = c->kind == 0 ? pyrt_qmaxpool2d(ctx, &s, x, c->dtype, y)
           : c->kind == 3 && c->layout == PYRT_NHWC
               ? pyrt_qglobalavgpool_nhwc(ctx, 1, (int64_t)c->hw * c->hw,
                                          c->channels, x, &qx, y, &qy)
           : c->kind == 3
               ? pyrt_qglobalavgpool(ctx, c->channels, (int64_t)c->hw * c->hw,
                                     x, &qx, y, &qy)
               : pyrt_qavgpool2d(ctx, &s, x, &qx, y, &qy);
  free(x);
  return rc;
}

/* ---- data movement ------------------------------------------------------ */

typedef struct {
  int32_t elem_size, batch, rows, cols; /* elem_size 0: lut8 of rows * cols */
} move_case;

static int move_run(pyrt_context *ctx, const void *params, uint64_t seed,
                    void *y) {
  const move_case *c = params;
  rng r = {seed};
  const size_t n = (size_t)c->batch * c->rows * c->cols;
  const size_t bytes = n * (c->elem_size ? (size_t)c->elem_size : 1);
  uint8_t *x = xmalloc(bytes), table[256];
  fill_codes(&r, x, bytes, PYRT_U8);
  fill_codes(&r, table, sizeof table, PYRT_U8);
  const int rc = c->elem_size ? pyrt_transpose(ctx, c->elem_size, c->batch,
                                               c->rows, c->cols, x, y)
                              : pyrt_lut8(ctx, (int64_t)n, table, x, y);
  free(x);
  return rc;
}

/* ---- the cases
 * -------------------------------------------------------------------- */

int main(void) {
  make_contexts();
  char name[160];
  static const int32_t edges[] = {1,  3,  4,  5,  7,  8,  9,  15,
                                  16, 17, 31, 32, 33, 63, 64, 65};
  const int n_edges = (int)(sizeof edges / sizeof edges[0]);
  /* qgemm: M and N over the tile edges, K over the K-block edges. */
  static const int32_t ks[] = {1,  3,  4,  8,  15,  16, 17,
                               31, 32, 33, 64, 255, 257};
  const int32_t dtypes[] = {PYRT_U8, PYRT_S8};
  int i = 0;
  for (int m = 0; m < n_edges; m += 2) {
    for (int n = 0; n < n_edges; n += 3) {
      const int32_t K = ks[i++ % (int)(sizeof ks / sizeof ks[0])];
      const int32_t xd = dtypes[i % 2], wd = dtypes[(i / 2) % 2];
      const int32_t od =
          (int32_t[]){PYRT_U8, PYRT_S8, PYRT_S32, PYRT_F32}[i % 4];
      qgemm_case c = {edges[m], edges[n], K, xd, wd, od, i % 3 != 0};
      snprintf(name, sizeof name, "qgemm M%d N%d K%d a%d w%d out%d per_ch%d",
               c.M, c.N, c.K, xd, wd, od, c.per_channel);
      run_case(name, qgemm_run, &c, dtype_size(od) * (size_t)c.M * (c.N + 5));
    }
  }
  for (int k = 0; k < (int)(sizeof ks / sizeof ks[0]); k++) {
    qgemm_case c = {17, 33, ks[k], PYRT_U8, PYRT_S8, PYRT_U8, 1};
    snprintf(name, sizeof name, "qgemm M%d N%d K%d", c.M, c.N, c.K);
    run_case(name, qgemm_run, &c, (size_t)c.M * (c.N + 5));
  }
  /* convolutions: in_c, hw, out_c, groups, k, stride, dilation, pad */
  static const conv_case convs[] = {
      {3, 17, 16, 1, 7, 2, 1, 3},   {8, 9, 17, 1, 3, 1, 1, 1},
      {16, 8, 32, 1, 1, 1, 1, 0},   {33, 5, 15, 1, 1, 2, 1, 0},
      {8, 11, 8, 2, 3, 1, 2, 2},    {32, 9, 32, 32, 3, 1, 1, 1},
      {17, 10, 17, 17, 3, 2, 1, 1}, {24, 7, 48, 24, 5, 1, 1, 2},
      {64, 4, 65, 1, 3, 1, 1, 1},
  };
  for (size_t c = 0; c < sizeof convs / sizeof convs[0]; c++) {
    const conv_case *v = &convs[c];
    snprintf(name, sizeof name, "qconv2d c%d hw%d o%d g%d k%d s%d d%d p%d",
             v->in_c, v->hw, v->out_c, v->groups, v->k, v->stride, v->dilation,
             v->pad);
    for (int d = 0; d < 2; d++) {
      const qconv_case q = {v, dtypes[d]};
      char qname[200];
      snprintf(qname, sizeof qname, "%s dtype%d", name, q.dtype);
      run_case(qname, qconv_run, &q, conv_out_elems(v));
    }
    name[0] = 'f'; /* "fconv2d ..." */
    run_case(name, conv_run, v, sizeof(float) * conv_out_elems(v));
  }
  static const sgemm_case few_columns[] = {
      {65, 7, 33}, {130, 3, 9}, {64, 1, 5}};
  for (size_t f = 0; f < sizeof few_columns / sizeof few_columns[0]; f++) {
    const sgemm_case *c = &few_columns[f];
    snprintf(name, sizeof name, "sgemm M%d N%d K%d", c->M, c->N, c->K);
    run_case(name, sgemm_run, c, sizeof(float) * (size_t)c->M * (c->N + 2));
  }
  for (int m = 0; m < n_edges; m += 3) {
    sgemm_case c = {edges[m], edges[(m * 7 + 5) % n_edges], ks[m % 10]};
    snprintf(name, sizeof name, "sgemm M%d N%d K%d", c.M, c.N, c.K);
    run_case(name, sgemm_run, &c, sizeof(float) * (size_t)c.M * (c.N + 2));
  }
  for (int e = 0; e < n_edges; e += 4) {
    for (int d = 0; d < 4; d++) {
      const int32_t od = (int32_t[]){PYRT_U8, PYRT_S8, PYRT_S32, PYRT_F32}[d];
      requant_case c = {edges[e] + 2, edges[(e + 5) % n_edges],
                        d % 2 ? edges[e] + 2 : 1, od};
      snprintf(name, sizeof name, "requantize %dx%d ch%d out%d", c.rows, c.cols,
               c.channels, od);
      run_case(name, requant_run, &c, dtype_size(od) * (size_t)c.rows * c.cols);
    }
  }
  for (int e = 0; e < n_edges; e += 3) {
    for (int q = 0; q < 4; q++) {
      quant_case c = {2, edges[e], edges[(e + 7) % n_edges], dtypes[q % 2],
                      q / 2};
      snprintf(name, sizeof name, "%s %dx%dx%d dtype%d",
               c.dequantize ? "dequantize" : "quantize", c.outer, c.axis_len,
               c.inner, c.dtype);
      run_case(name, quant_run, &c,
               (c.dequantize ? sizeof(float) : 1) * (size_t)c.outer *
                   c.axis_len * c.inner);
    }
  }
  for (int e = 0; e < n_edges; e += 2) {
    binary_case c = {e % 4 ? PYRT_ADD : PYRT_MUL, 1, 1, edges[e] * 3 + 1,
                     dtypes[e % 3 == 0]};
    snprintf(name, sizeof name, "qbinary op%d n%d dtype%d", c.op, c.inner,
             c.dtype);
    run_case(name, binary_run, &c, (size_t)c.inner);
  }
  /* broadcast b: Squeeze-Excite NHWC and NCHW, per channel, scalar */
  static const binary_case broadcasts[] = {
      {PYRT_MUL, 2, 9, 17, PYRT_U8}, {PYRT_ADD, 2, 9, 65, PYRT_S8},
      {PYRT_MUL, 6, 16, 1, PYRT_S8}, {PYRT_ADD, 1, 7, 33, PYRT_U8},
      {PYRT_ADD, 1, 50, 1, PYRT_U8}, {PYRT_MUL, 1, 31, 1, PYRT_S8},
  };
  for (size_t e = 0; e < sizeof broadcasts / sizeof broadcasts[0]; e++) {
    const binary_case *c = &broadcasts[e];
    snprintf(name, sizeof name, "qbinary_broadcast op%d %dx%dx%d dtype%d",
             c->op, c->outer, c->middle, c->inner, c->dtype);
    run_case(name, binary_run, c, (size_t)c->outer * c->middle * c->inner);
  }
  static const pool_case pools[] = {
      {16, 9, 3, 2, 1, 0, PYRT_NCHW, PYRT_U8},
      {17, 8, 2, 2, 0, 0, PYRT_NCHW, PYRT_S8},
      {3, 70, 3, 1, 1, 0, PYRT_NCHW, PYRT_S8},
      {2, 99, 3, 2, 1, 0, PYRT_NCHW, PYRT_U8},
      {33, 7, 3, 1, 1, 1, PYRT_NCHW, PYRT_U8},
      {8, 10, 3, 2, 1, 2, PYRT_NCHW, PYRT_S8},
      {64, 5, 0, 1, 0, 3, PYRT_NCHW, PYRT_U8},
      {15, 7, 0, 1, 0, 3, PYRT_NCHW, PYRT_S8},
      {3, 33, 0, 1, 0, 3, PYRT_NCHW, PYRT_U8},
      {16, 9, 3, 2, 1, 0, PYRT_NHWC, PYRT_S8},
      {33, 8, 2, 2, 0, 0, PYRT_NHWC, PYRT_U8},
      {65, 7, 3, 1, 1, 1, PYRT_NHWC, PYRT_S8},
      {8, 10, 3, 2, 1, 2, PYRT_NHWC, PYRT_U8},
      {64, 5, 0, 1, 0, 3, PYRT_NHWC, PYRT_S8},
      {15, 7, 0, 1, 0, 3, PYRT_NHWC, PYRT_U8},
  };
  for (size_t p = 0; p < sizeof pools / sizeof pools[0]; p++) {
    const pool_case *c = &pools[p];
    const pyrt_pool2d_shape s = pool_shape(c);
    snprintf(name, sizeof name,
             "qpool kind%d c%d hw%d k%d s%d p%d layout%d dtype%d", c->kind,
             c->channels, c->hw, c->k, c->stride, c->pad, c->layout, c->dtype);
    run_case(
        name, pool_run, c,
        (size_t)c->channels * (c->kind == 3 ? 1 : (size_t)s.out_h * s.out_w));
  }
  static const move_case moves[] = {
      {1, 1, 3, 300}, {1, 2, 64, 49}, {1, 1, 257, 5},  {4, 1, 3, 300},
      {4, 2, 33, 17}, {4, 1, 1, 9},   {0, 1, 1, 1000}, {0, 3, 7, 11},
  };
  for (size_t m = 0; m < sizeof moves / sizeof moves[0]; m++) {
    const move_case *c = &moves[m];
    snprintf(name, sizeof name, "%s elem%d %dx%dx%d",
             c->elem_size ? "transpose" : "lut8", c->elem_size, c->batch,
             c->rows, c->cols);
    run_case(name, move_run, c,
             (size_t)c->batch * c->rows * c->cols *
                 (c->elem_size ? (size_t)c->elem_size : 1));
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
