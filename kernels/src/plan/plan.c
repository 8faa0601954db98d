/* The execution plan: kernel calls resolved once, run back to back on one
 * arena. An entry keeps copies of its argument structs and arena offsets of
 * its tensors; running it calls the same public entry point a caller would,
 * so every argument is still checked (cheaply) on each run.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum kind {
  CONV,
  SGEMM,
  QCONV,
  QGEMM,
  QBINARY,
  QUANT,
  DEQUANT,
  MAXPOOL,
  AVGPOOL,
  GAP,
  GAP_NHWC,
  FGAP_NHWC,
  TRANSPOSE,
  LUT,
  COPY,
  /* CNN data movement and per-channel ops */
  COPY_ROWS,
  AFFINE,
  FAVGPOOL,
  /* fp32 elementwise */
  FUNARY,
  FBINARY,
  /* quantize_dynamic: zero point and scale read from the arena */
  DYNQUANT,
  QGEMM_DYN,
  QCONV_DYN,
  /* encoder entries (run_encoder_entry: every kind from QMATMUL on) */
  QMATMUL,
  SMATMUL,
  SOFTMAX,
  LAYERNORM,
  ACTIVATION,
  ATTENTION
};

/* pyrt_qmatmul's sizes and strides (QMATMUL, SMATMUL: dtypes and zeros unused)
 */
typedef struct {
  int32_t batch, M, N, K, a_dtype, a_zero, lda, b_dtype, b_zero, ldb_k, ldb_n,
      ldy;
  int64_t stride_a, stride_b, stride_y;
} qmatmul_args;

typedef struct {
  int32_t kind;
  int32_t i[6];             /* small integer arguments */
  int64_t n[4];             /* sizes */
  float lo, hi;             /* CONV, SGEMM clamp; SOFTMAX x_div, x_mul */
  int64_t x, b, y;          /* arena offsets: inputs and output */
  const void *p[4];         /* packed weights, bias, scales, zero points ... */
  pyrt_conv2d_shape conv;   /* QCONV */
  pyrt_pool2d_shape pool;   /* MAXPOOL, AVGPOOL */
  pyrt_output_stage out;    /* QCONV, QGEMM */
  pyrt_quant_layout layout; /* QUANT, DEQUANT */
  pyrt_qparams q[3];        /* QBINARY, AVGPOOL, GAP, GAP_NHWC */
  int64_t o[2]; /* more arena offsets (encoder entries, *_DYN's zero point and
                   scale, DYNQUANT's scale and zero; -1: none) */
  union {
    qmatmul_args qmatmul;
    pyrt_attention_args attention;
  } enc;
} entry;

struct pyrt_plan {
  entry *e;
  int32_t count, capacity;
};

int pyrt_plan_create(pyrt_plan **plan) {
  if (plan == NULL) return pyrt_fail(PYRT_ERR_ARG, "plan_create: NULL");
  *plan = calloc(1, sizeof **plan);
  return *plan ? PYRT_OK : pyrt_fail(PYRT_ERR_NOMEM, "plan: out of memory");
}

void pyrt_plan_destroy(pyrt_plan *plan) {
  if (plan == NULL) return;
  free(plan->e);
  free(plan);
}

/* A zeroed new entry of `kind`, or NULL (out of memory / NULL plan). */
static entry *add(pyrt_plan *p, int32_t kind) {
  if (p == NULL) return NULL;
  if (p->count == p->capacity) {
    const int32_t cap = p->capacity ? 2 * p->capacity : 16;
    entry *e = realloc(p->e, sizeof *e * (size_t)cap);
    if (e == NULL) return NULL;
    p->e = e;
    p->capacity = cap;
  }
  entry *e = &p->e[p->count];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  return e;
}

static int added(pyrt_plan *p, const entry *e) {
  return e ? p->count++ : -pyrt_fail(PYRT_ERR_NOMEM, "plan: cannot add entry");
}

int pyrt_plan_qconv2d(pyrt_plan *p, const pyrt_conv2d_shape *s,
                      const void *packed, int32_t x_dtype, int32_t x_zero,
                      const int32_t *bias, const pyrt_output_stage *out,
                      int64_t x, int64_t y) {
  if (s == NULL || out == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_qconv2d: NULL shape or stage");
  entry *e = add(p, QCONV);
  if (e) {
    e->conv = *s, e->out = *out, e->p[0] = packed, e->p[1] = bias;
    e->i[0] = x_dtype, e->i[1] = x_zero, e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_conv2d(pyrt_plan *p, const pyrt_conv2d_shape *s,
                     const void *packed, const float *bias, float lo, float hi,
                     int64_t x, int64_t y) {
  if (s == NULL) return -pyrt_fail(PYRT_ERR_ARG, "plan_conv2d: NULL shape");
  entry *e = add(p, CONV);
  if (e) {
    e->conv = *s, e->p[0] = packed, e->p[1] = bias, e->lo = lo, e->hi = hi;
    e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_sgemm(pyrt_plan *p, int32_t M, int32_t N, int32_t K, int64_t a,
                    int32_t lda, const void *packed, const float *bias,
                    float lo, float hi, int64_t y, int32_t ldy) {
  entry *e = add(p, SGEMM);
  if (e) {
    e->i[0] = M, e->i[1] = N, e->i[2] = K, e->i[3] = lda, e->n[0] = ldy;
    e->p[0] = packed, e->p[1] = bias, e->lo = lo, e->hi = hi;
    e->x = a, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_qgemm(pyrt_plan *p, int32_t M, int32_t N, int32_t K, int64_t a,
                    int32_t a_dtype, int32_t a_zero, int32_t lda,
                    const void *packed, const int32_t *bias,
                    const pyrt_output_stage *out, int64_t y, int32_t ldy) {
  if (out == NULL) return -pyrt_fail(PYRT_ERR_ARG, "plan_qgemm: NULL stage");
  entry *e = add(p, QGEMM);
  if (e) {
    e->i[0] = M, e->i[1] = N, e->i[2] = K, e->i[3] = a_dtype;
    e->i[4] = a_zero, e->i[5] = lda, e->n[0] = ldy;
    e->p[0] = packed, e->p[1] = bias, e->out = *out, e->x = a, e->y = y;
  }
  return added(p, e);
}

/* QGEMM_DYN / QCONV_DYN: the zero point at o[0]; with o[1] >= 0 a float32
   output stage whose n[1] scales are arena o[1]'s (p[2] NULL) or its one
   input scale times p[2]'s n[1] weight scales. */
static int dynamic_args(entry *e, int64_t zero, int64_t scale,
                        const float *w_scale, int64_t scales,
                        const pyrt_output_stage *out) {
  if (out == NULL || zero < 0 ||
      (scale >= 0 && (scales < 1 || scales > INT32_MAX)))
    return pyrt_fail(PYRT_ERR_ARG,
                     "plan: a dynamic entry needs a stage, a zero point and "
                     "1 or more scales");
  if (scale >= 0 && out->out_dtype != PYRT_F32)
    return pyrt_fail(PYRT_ERR_ARG,
                     "plan: scales read at run time need a float32 stage");
  e->out = *out, e->o[0] = zero, e->o[1] = scale, e->p[2] = w_scale;
  e->n[1] = scales;
  return PYRT_OK;
}

int pyrt_plan_qgemm_dynamic(pyrt_plan *p, int32_t M, int32_t N, int32_t K,
                            int64_t a, int32_t a_dtype, int64_t a_zero,
                            int32_t lda, const void *packed,
                            const int32_t *bias, const pyrt_output_stage *out,
                            int64_t scale, const float *w_scale, int64_t scales,
                            int64_t y, int32_t ldy) {
  entry *e = add(p, QGEMM_DYN);
  if (e) {
    const int rc = dynamic_args(e, a_zero, scale, w_scale, scales, out);
    if (rc) return -rc;
    e->i[0] = M, e->i[1] = N, e->i[2] = K, e->i[3] = a_dtype, e->i[5] = lda;
    e->n[0] = ldy, e->p[0] = packed, e->p[1] = bias, e->x = a, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_qconv2d_dynamic(pyrt_plan *p, const pyrt_conv2d_shape *s,
                              const void *packed, int32_t x_dtype,
                              int64_t x_zero, const int32_t *bias,
                              const pyrt_output_stage *out, int64_t scale,
                              const float *w_scale, int64_t scales, int64_t x,
                              int64_t y) {
  if (s == NULL) return -pyrt_fail(PYRT_ERR_ARG, "plan_qconv2d: NULL shape");
  entry *e = add(p, QCONV_DYN);
  if (e) {
    const int rc = dynamic_args(e, x_zero, scale, w_scale, scales, out);
    if (rc) return -rc;
    e->conv = *s, e->p[0] = packed, e->p[1] = bias, e->i[0] = x_dtype;
    e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_dynamic_quantize(pyrt_plan *p, int64_t n, int64_t x, int64_t y,
                               int64_t scale, int64_t zero) {
  entry *e = add(p, DYNQUANT);
  if (e) e->n[0] = n, e->x = x, e->y = y, e->o[0] = scale, e->o[1] = zero;
  return added(p, e);
}

/* A *_DYN entry's call: the zero point from the arena, and its stage with the
   scales of this run (on the stack up to 4096 of them, else allocated). */
static int run_dynamic(pyrt_context *ctx, const entry *e, char *arena) {
  const char *x = arena + e->x;
  char *y = arena + e->y;
  const int32_t dtype = e->kind == QCONV_DYN ? e->i[0] : e->i[3];
  const char z = arena[e->o[0]];
  const int32_t zero =
      dtype == PYRT_U8 ? (int32_t)(uint8_t)z : (int32_t)(int8_t)z;
  pyrt_output_stage out = e->out;
  float buf[4096], *scale = NULL; /* 16 KiB of the caller's stack */
  if (e->o[1] >= 0) {
    const float *in = (const float *)(arena + e->o[1]);
    const int64_t n = e->n[1];
    out.per_channel = n > 1;
    if (e->p[2] == NULL) {
      out.scale = in;
    } else {
      scale = n <= 4096 ? buf : malloc((size_t)n * sizeof(float));
      if (scale == NULL)
        return pyrt_fail(PYRT_ERR_NOMEM, "plan: out of memory for scales");
      const float *w = (const float *)e->p[2];
      for (int64_t i = 0; i < n; i++) scale[i] = in[0] * w[i];
      out.scale = scale;
    }
  }
  const int rc =
      e->kind == QCONV_DYN
          ? pyrt_qconv2d(ctx, &e->conv, e->p[0], x, dtype, zero,
                         (const int32_t *)e->p[1], &out, y)
          : pyrt_qgemm(ctx, e->i[0], e->i[1], e->i[2], x, dtype, zero, e->i[5],
                       e->p[0], (const int32_t *)e->p[1], &out, y,
                       (int32_t)e->n[0]);
  if (scale != buf) free(scale);
  return rc;
}

int pyrt_plan_qbinary_broadcast(pyrt_plan *p, int32_t op, int64_t outer,
                                int64_t middle, int64_t inner, int64_t a,
                                const pyrt_qparams *qa, int64_t b,
                                const pyrt_qparams *qb, int64_t y,
                                const pyrt_qparams *qy, int32_t qmin,
                                int32_t qmax) {
  if (qa == NULL || qb == NULL || qy == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_qbinary: NULL qparams");
  entry *e = add(p, QBINARY);
  if (e) {
    e->i[0] = op, e->i[1] = qmin, e->i[2] = qmax;
    e->n[0] = outer, e->n[1] = middle, e->n[2] = inner;
    e->q[0] = *qa, e->q[1] = *qb, e->q[2] = *qy;
    e->x = a, e->b = b, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_qbinary(pyrt_plan *p, int32_t op, int64_t n, int64_t a,
                      const pyrt_qparams *qa, int64_t b, const pyrt_qparams *qb,
                      int64_t y, const pyrt_qparams *qy, int32_t qmin,
                      int32_t qmax) {
  return pyrt_plan_qbinary_broadcast(p, op, 1, 1, n, a, qa, b, qb, y, qy, qmin,
                                     qmax);
}

int pyrt_plan_quantize(pyrt_plan *p, const pyrt_quant_layout *l, int64_t x,
                       const float *scale, const void *zero, int32_t out_dtype,
                       int64_t y) {
  if (l == NULL) return -pyrt_fail(PYRT_ERR_ARG, "plan_quantize: NULL layout");
  entry *e = add(p, QUANT);
  if (e) {
    e->layout = *l, e->p[0] = scale, e->p[1] = zero, e->i[0] = out_dtype;
    e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_dequantize(pyrt_plan *p, const pyrt_quant_layout *l, int64_t x,
                         int32_t x_dtype, const float *scale, const void *zero,
                         int64_t y) {
  if (l == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_dequantize: NULL layout");
  entry *e = add(p, DEQUANT);
  if (e) {
    e->layout = *l, e->p[0] = scale, e->p[1] = zero, e->i[0] = x_dtype;
    e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_qmaxpool2d(pyrt_plan *p, const pyrt_pool2d_shape *s, int64_t x,
                         int32_t dtype, int64_t y) {
  if (s == NULL) return -pyrt_fail(PYRT_ERR_ARG, "plan_qmaxpool2d: NULL shape");
  entry *e = add(p, MAXPOOL);
  if (e) e->pool = *s, e->i[0] = dtype, e->x = x, e->y = y;
  return added(p, e);
}

int pyrt_plan_qavgpool2d(pyrt_plan *p, const pyrt_pool2d_shape *s, int64_t x,
                         const pyrt_qparams *qx, int64_t y,
                         const pyrt_qparams *qy) {
  if (s == NULL || qx == NULL || qy == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_qavgpool2d: NULL argument");
  entry *e = add(p, AVGPOOL);
  if (e) e->pool = *s, e->q[0] = *qx, e->q[1] = *qy, e->x = x, e->y = y;
  return added(p, e);
}

int pyrt_plan_qglobalavgpool(pyrt_plan *p, int64_t rows, int64_t hw, int64_t x,
                             const pyrt_qparams *qx, int64_t y,
                             const pyrt_qparams *qy) {
  if (qx == NULL || qy == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_qglobalavgpool: NULL qparams");
  entry *e = add(p, GAP);
  if (e) {
    e->n[0] = rows, e->n[1] = hw, e->q[0] = *qx, e->q[1] = *qy;
    e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_qglobalavgpool_nhwc(pyrt_plan *p, int64_t batch, int64_t hw,
                                  int64_t channels, int64_t x,
                                  const pyrt_qparams *qx, int64_t y,
                                  const pyrt_qparams *qy) {
  if (qx == NULL || qy == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_qglobalavgpool_nhwc: NULL qparams");
  entry *e = add(p, GAP_NHWC);
  if (e) {
    e->n[0] = batch, e->n[1] = hw, e->n[2] = channels;
    e->q[0] = *qx, e->q[1] = *qy, e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_globalavgpool_f32_nhwc(pyrt_plan *p, int64_t batch, int64_t hw,
                                     int64_t channels, int64_t x, int64_t y) {
  entry *e = add(p, FGAP_NHWC);
  if (e) e->n[0] = batch, e->n[1] = hw, e->n[2] = channels, e->x = x, e->y = y;
  return added(p, e);
}

int pyrt_plan_transpose(pyrt_plan *p, int32_t elem_size, int64_t batch,
                        int64_t rows, int64_t cols, int64_t x, int64_t y) {
  entry *e = add(p, TRANSPOSE);
  if (e) {
    e->i[0] = elem_size, e->n[0] = batch, e->n[1] = rows, e->n[2] = cols;
    e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_lut8(pyrt_plan *p, int64_t n, const uint8_t *table, int64_t x,
                   int64_t y) {
  entry *e = add(p, LUT);
  if (e) e->n[0] = n, e->p[0] = table, e->x = x, e->y = y;
  return added(p, e);
}

int pyrt_plan_copy(pyrt_plan *p, int64_t bytes, int64_t x, int64_t y) {
  entry *e = add(p, COPY);
  if (e) e->n[0] = bytes, e->x = x, e->y = y;
  return added(p, e);
}

/* ---- CNN data movement and per-channel ops ---- */

int pyrt_plan_copy_rows(pyrt_plan *p, int64_t rows, int64_t bytes, int64_t x,
                        int64_t x_stride, int64_t y, int64_t y_stride) {
  entry *e = add(p, COPY_ROWS);
  if (e) {
    e->n[0] = rows, e->n[1] = bytes, e->n[2] = x_stride, e->n[3] = y_stride;
    e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_channel_affine(pyrt_plan *p, int64_t outer, int64_t channels,
                             int64_t inner, int64_t x, int32_t x_dtype,
                             int32_t x_zero, const float *a, const float *b,
                             int64_t y, int32_t y_dtype, int32_t y_zero,
                             float lo, float hi) {
  entry *e = add(p, AFFINE);
  if (e) {
    e->n[0] = outer, e->n[1] = channels, e->n[2] = inner;
    e->i[0] = x_dtype, e->i[1] = x_zero, e->i[2] = y_dtype, e->i[3] = y_zero;
    e->p[0] = a, e->p[1] = b, e->lo = lo, e->hi = hi, e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_avgpool2d_f32(pyrt_plan *p, const pyrt_pool2d_shape *s, int64_t x,
                            int64_t y) {
  if (s == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_avgpool2d_f32: NULL shape");
  entry *e = add(p, FAVGPOOL);
  if (e) e->pool = *s, e->x = x, e->y = y;
  return added(p, e);
}

/* ---- encoder entries: int8 MatMul of activations, float rows, attention -- */

int pyrt_plan_qmatmul(pyrt_plan *p, int32_t batch, int32_t M, int32_t N,
                      int32_t K, int64_t a, int32_t a_dtype, int32_t a_zero,
                      int64_t stride_a, int32_t lda, int64_t b, int32_t b_dtype,
                      int32_t b_zero, int64_t stride_b, int32_t ldb_k,
                      int32_t ldb_n, const pyrt_output_stage *out, int64_t y,
                      int64_t stride_y, int32_t ldy) {
  if (out == NULL) return -pyrt_fail(PYRT_ERR_ARG, "plan_qmatmul: NULL stage");
  entry *e = add(p, QMATMUL);
  if (e) {
    e->enc.qmatmul = (qmatmul_args){batch,  M,   N,        K,        a_dtype,
                                    a_zero, lda, b_dtype,  b_zero,   ldb_k,
                                    ldb_n,  ldy, stride_a, stride_b, stride_y};
    e->out = *out, e->x = a, e->b = b, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_smatmul(pyrt_plan *p, int32_t batch, int32_t M, int32_t N,
                      int32_t K, int64_t a, int64_t stride_a, int32_t lda,
                      int64_t b, int64_t stride_b, int32_t ldb_k, int32_t ldb_n,
                      int64_t y, int64_t stride_y, int32_t ldy) {
  entry *e = add(p, SMATMUL);
  if (e) {
    e->enc.qmatmul =
        (qmatmul_args){batch, M,     N,     K,   0,        0,        lda,     0,
                       0,     ldb_k, ldb_n, ldy, stride_a, stride_b, stride_y};
    e->x = a, e->b = b, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_softmax(pyrt_plan *p, int64_t rows, int32_t cols, int64_t x,
                      const pyrt_qparams *qx, float x_mul, float x_div,
                      int64_t mask, int64_t rows_per_mask, int64_t y,
                      const pyrt_qparams *qy) {
  if (qx == NULL || qy == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_softmax: NULL qparams");
  entry *e = add(p, SOFTMAX);
  if (e) {
    e->n[0] = rows, e->n[1] = rows_per_mask, e->i[0] = cols;
    e->lo = x_div, e->hi = x_mul;
    e->q[0] = *qx, e->q[1] = *qy, e->x = x, e->b = mask, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_layernorm(pyrt_plan *p, int64_t rows, int32_t cols, int64_t x,
                        const pyrt_qparams *qx, const float *bias,
                        int64_t residual, const pyrt_qparams *qr,
                        const float *gamma, const float *beta, float epsilon,
                        int64_t y, int64_t yq, const pyrt_qparams *qy,
                        int64_t sum) {
  if (qx == NULL || qr == NULL || qy == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_layernorm: NULL qparams");
  entry *e = add(p, LAYERNORM);
  if (e) {
    e->n[0] = rows, e->i[0] = cols, e->lo = epsilon;
    e->q[0] = *qx, e->q[1] = *qr, e->q[2] = *qy;
    e->p[0] = bias, e->p[1] = gamma, e->p[2] = beta;
    e->x = x, e->b = residual, e->y = y, e->o[0] = yq, e->o[1] = sum;
  }
  return added(p, e);
}

int pyrt_plan_activation(pyrt_plan *p, int64_t rows, int32_t cols, int64_t x,
                         const pyrt_qparams *qx, const float *bias, int32_t act,
                         int64_t y, const pyrt_qparams *qy) {
  if (qx == NULL || qy == NULL)
    return -pyrt_fail(PYRT_ERR_ARG, "plan_activation: NULL qparams");
  entry *e = add(p, ACTIVATION);
  if (e) {
    e->n[0] = rows, e->i[0] = cols, e->i[1] = act, e->p[0] = bias;
    e->q[0] = *qx, e->q[1] = *qy, e->x = x, e->y = y;
  }
  return added(p, e);
}

int pyrt_plan_attention(pyrt_plan *p, const pyrt_attention_args *a, int64_t q,
                        int64_t k, int64_t v, int64_t mask, int64_t y) {
  if (a == NULL) return -pyrt_fail(PYRT_ERR_ARG, "plan_attention: NULL args");
  entry *e = add(p, ATTENTION);
  if (e) {
    e->enc.attention = *a;
    e->x = q, e->b = k, e->o[0] = v, e->o[1] = mask, e->y = y;
  }
  return added(p, e);
}

/* An arena offset as a pointer; -1 is NULL. */
static void *in_arena(char *arena, int64_t offset) {
  return offset < 0 ? NULL : arena + offset;
}

static int run_encoder_entry(pyrt_context *ctx, const entry *e, char *arena) {
  char *x = arena + e->x, *y = in_arena(arena, e->y);
  switch (e->kind) {
    case QMATMUL: {
      const qmatmul_args *m = &e->enc.qmatmul;
      return pyrt_qmatmul(ctx, m->batch, m->M, m->N, m->K, x, m->a_dtype,
                          m->a_zero, m->stride_a, m->lda, arena + e->b,
                          m->b_dtype, m->b_zero, m->stride_b, m->ldb_k,
                          m->ldb_n, &e->out, y, m->stride_y, m->ldy);
    }
    case SMATMUL: {
      const qmatmul_args *m = &e->enc.qmatmul;
      return pyrt_smatmul(ctx, m->batch, m->M, m->N, m->K, (const float *)x,
                          m->stride_a, m->lda, (const float *)(arena + e->b),
                          m->stride_b, m->ldb_k, m->ldb_n, (float *)y,
                          m->stride_y, m->ldy);
    }
    case SOFTMAX:
      return pyrt_softmax(ctx, e->n[0], e->i[0], x, &e->q[0], e->hi, e->lo,
                          (const float *)in_arena(arena, e->b), e->n[1], y,
                          &e->q[1]);
    case LAYERNORM:
      return pyrt_layernorm(
          ctx, e->n[0], e->i[0], x, &e->q[0], (const float *)e->p[0],
          in_arena(arena, e->b), &e->q[1], (const float *)e->p[1],
          (const float *)e->p[2], e->lo, (float *)y, in_arena(arena, e->o[0]),
          &e->q[2], (float *)in_arena(arena, e->o[1]));
    case ACTIVATION:
      return pyrt_activation(ctx, e->n[0], e->i[0], x, &e->q[0],
                             (const float *)e->p[0], e->i[1], y, &e->q[1]);
    default: { /* ATTENTION */
      pyrt_attention_args a = e->enc.attention;
      a.q.data = x, a.k.data = arena + e->b, a.v.data = arena + e->o[0];
      a.mask = (const float *)in_arena(arena, e->o[1]), a.y = y;
      return pyrt_attention(ctx, &a);
    }
  }
}

/* ---- fp32 elementwise (felem/) ---- */

int pyrt_plan_funary(pyrt_plan *p, int32_t op, int64_t n, float alpha,
                     float beta, int64_t x, int64_t y) {
  entry *e = add(p, FUNARY);
  if (e) e->i[0] = op, e->n[0] = n, e->lo = alpha, e->hi = beta;
  if (e) e->x = x, e->y = y;
  return added(p, e);
}

int pyrt_plan_fbinary(pyrt_plan *p, int32_t op, int64_t outer, int64_t middle,
                      int64_t inner, int64_t a, int64_t b, int32_t b_first,
                      int64_t y) {
  entry *e = add(p, FBINARY);
  if (e) e->i[0] = op, e->i[1] = b_first, e->x = a, e->b = b, e->y = y;
  if (e) e->n[0] = outer, e->n[1] = middle, e->n[2] = inner;
  return added(p, e);
}

static int run_felem(pyrt_context *ctx, const entry *e, char *arena) {
  float *x = (float *)(arena + e->x), *y = (float *)(arena + e->y);
  if (e->kind == FUNARY)
    return pyrt_funary(ctx, e->i[0], e->n[0], x, e->lo, e->hi, y);
  return pyrt_fbinary_broadcast(ctx, e->i[0], e->n[0], e->n[1], e->n[2], x,
                                (const float *)(arena + e->b), e->i[1], y);
}
/* ---- end of fp32 elementwise */

static int run_entry(pyrt_context *ctx, const entry *e, char *arena) {
  if (e->kind >= QMATMUL) return run_encoder_entry(ctx, e, arena);
  if (e->kind == QGEMM_DYN || e->kind == QCONV_DYN)
    return run_dynamic(ctx, e, arena);
  char *x = arena + e->x, *y = arena + e->y;
  switch (e->kind) {
    case DYNQUANT:
      return pyrt_dynamic_quantize(ctx, e->n[0], (const float *)x, (uint8_t *)y,
                                   (float *)(arena + e->o[0]),
                                   (uint8_t *)(arena + e->o[1]));
    case CONV:
      return pyrt_conv2d(ctx, &e->conv, e->p[0], (const float *)x,
                         (const float *)e->p[1], e->lo, e->hi, (float *)y);
    case SGEMM:
      return pyrt_sgemm(ctx, e->i[0], e->i[1], e->i[2], (const float *)x,
                        e->i[3], e->p[0], (const float *)e->p[1], e->lo, e->hi,
                        (float *)y, (int32_t)e->n[0]);
    case QCONV:
      return pyrt_qconv2d(ctx, &e->conv, e->p[0], x, e->i[0], e->i[1],
                          (const int32_t *)e->p[1], &e->out, y);
    case QGEMM:
      return pyrt_qgemm(ctx, e->i[0], e->i[1], e->i[2], x, e->i[3], e->i[4],
                        e->i[5], e->p[0], (const int32_t *)e->p[1], &e->out, y,
                        (int32_t)e->n[0]);
    case QBINARY:
      return pyrt_qbinary_broadcast(ctx, e->i[0], e->n[0], e->n[1], e->n[2], x,
                                    &e->q[0], arena + e->b, &e->q[1], y,
                                    &e->q[2], e->i[1], e->i[2]);
    case QUANT:
      return pyrt_quantize(ctx, &e->layout, (const float *)x,
                           (const float *)e->p[0], e->p[1], e->i[0], y);
    case DEQUANT:
      return pyrt_dequantize(ctx, &e->layout, x, e->i[0],
                             (const float *)e->p[0], e->p[1], (float *)y);
    case MAXPOOL:
      return pyrt_qmaxpool2d(ctx, &e->pool, x, e->i[0], y);
    case AVGPOOL:
      return pyrt_qavgpool2d(ctx, &e->pool, x, &e->q[0], y, &e->q[1]);
    case GAP:
      return pyrt_qglobalavgpool(ctx, e->n[0], e->n[1], x, &e->q[0], y,
                                 &e->q[1]);
    case GAP_NHWC:
      return pyrt_qglobalavgpool_nhwc(ctx, e->n[0], e->n[1], e->n[2], x,
                                      &e->q[0], y, &e->q[1]);
    case FGAP_NHWC:
      return pyrt_globalavgpool_f32_nhwc(ctx, e->n[0], e->n[1], e->n[2],
                                         (const float *)x, (float *)y);
    case TRANSPOSE:
      return pyrt_transpose(ctx, e->i[0], e->n[0], e->n[1], e->n[2], x, y);
    case LUT:
      return pyrt_lut8(ctx, e->n[0], (const uint8_t *)e->p[0], x, y);
    case COPY_ROWS:
      return pyrt_copy_rows(ctx, e->n[0], e->n[1], x, e->n[2], y, e->n[3]);
    case AFFINE:
      return pyrt_channel_affine(ctx, e->n[0], e->n[1], e->n[2], x, e->i[0],
                                 e->i[1], (const float *)e->p[0],
                                 (const float *)e->p[1], y, e->i[2], e->i[3],
                                 e->lo, e->hi);
    case FAVGPOOL:
      return pyrt_avgpool2d_f32(ctx, &e->pool, (const float *)x, (float *)y);
    case FUNARY:
    case FBINARY:
      return run_felem(ctx, e, arena);
    default:
      if (e->n[0] > 0) memmove(y, x, (size_t)e->n[0]);
      return PYRT_OK;
  }
}

int pyrt_plan_run(pyrt_context *ctx, const pyrt_plan *p, int32_t first,
                  int32_t last, void *arena, int32_t *failed) {
  if (ctx == NULL || p == NULL || arena == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "plan_run: NULL argument");
  if (first < 0 || last > p->count || first > last)
    return pyrt_fail(PYRT_ERR_ARG, "plan_run: entries [%d, %d) of %d", first,
                     last, p->count);
  for (int32_t i = first; i < last; i++) {
    const int rc = run_entry(ctx, &p->e[i], (char *)arena);
    if (rc != PYRT_OK) {
      if (failed) *failed = i;
      return rc;
    }
  }
  return PYRT_OK;
}
