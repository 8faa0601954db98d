/* int8 Conv2D (NHWC): shape checks, packing, and the GEMM per group.
 * Depthwise convolutions (groups == in_c == out_c) go to the table's direct
 * qdwconv kernel, threaded over output rows; everything else is one driver
 * call per group: y[pixels][out_c/groups] = im2col(x)[pixels][K] x W[K][...]
 * with K = kernel_h * kernel_w * in_c/groups, written straight into NHWC
 * (row stride out_c). A 1x1, stride-1, unpadded convolution reads x as the
 * A matrix itself.
 */
#include <stdlib.h>
#include <string.h>

#include "qgemm/qgemm.h"
#include "requant/requant.h"

#define PYRT_CONV_MAGIC 0x43545250u /* "PRTC" */

typedef struct {
  uint32_t magic;
  int32_t isa;
  int32_t depthwise;
  int32_t groups;
  int32_t group_m, group_k; /* per-group GEMM shape */
  int64_t group_bytes;      /* size of one group's pack, aligned */
} conv_pack_header;

/* Kernels index the padded input with int32 arithmetic
   (oy * stride - pad + ky * dilation); keeping every term below this bound
   makes that overflow-free. Real models are many orders of magnitude below. */
#define PYRT_CONV_MAX_EXTENT (INT32_MAX / 4)

/* Output size along one axis; 0 if none, -1 if the extents are too large. */
static int64_t conv_out_size(int32_t in, int32_t k, int32_t stride,
                             int32_t dilation, int32_t pad_begin,
                             int32_t pad_end) {
  const int64_t span = (int64_t)dilation * (k - 1) + 1;
  const int64_t padded = (int64_t)in + pad_begin + pad_end;
  if (span > PYRT_CONV_MAX_EXTENT || padded > PYRT_CONV_MAX_EXTENT ||
      stride > PYRT_CONV_MAX_EXTENT)
    return -1;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

int pyrt_conv2d_infer(pyrt_conv2d_shape *s) {
  if (s == NULL) return pyrt_fail(PYRT_ERR_ARG, "conv2d: shape is NULL");
  if (s->batch <= 0 || s->in_c <= 0 || s->in_h <= 0 || s->in_w <= 0 ||
      s->out_c <= 0 || s->groups <= 0 || s->kernel_h <= 0 || s->kernel_w <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "conv2d: batch, channels, sizes, groups and kernel must "
                     "be > 0 (batch %d in_c %d in %dx%d out_c %d groups %d "
                     "kernel %dx%d)",
                     s->batch, s->in_c, s->in_h, s->in_w, s->out_c, s->groups,
                     s->kernel_h, s->kernel_w);
  if (s->stride_h <= 0 || s->stride_w <= 0 || s->dilation_h <= 0 ||
      s->dilation_w <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "conv2d: strides and dilations must be > 0, got %d %d %d "
                     "%d",
                     s->stride_h, s->stride_w, s->dilation_h, s->dilation_w);
  if (s->pad_top < 0 || s->pad_left < 0 || s->pad_bottom < 0 ||
      s->pad_right < 0)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d: pads must be >= 0");
  if (s->in_c % s->groups || s->out_c % s->groups)
    return pyrt_fail(PYRT_ERR_SHAPE,
                     "conv2d: in_c %d and out_c %d must be multiples of "
                     "groups %d",
                     s->in_c, s->out_c, s->groups);
  int64_t oh = conv_out_size(s->in_h, s->kernel_h, s->stride_h, s->dilation_h,
                             s->pad_top, s->pad_bottom);
  int64_t ow = conv_out_size(s->in_w, s->kernel_w, s->stride_w, s->dilation_w,
                             s->pad_left, s->pad_right);
  if (oh < 0 || ow < 0)
    return pyrt_fail(PYRT_ERR_SHAPE,
                     "conv2d: padded input, dilated kernel or stride above "
                     "%d (in %dx%d, kernel %dx%d, dilation %d, %d, stride %d, "
                     "%d)",
                     PYRT_CONV_MAX_EXTENT, s->in_h, s->in_w, s->kernel_h,
                     s->kernel_w, s->dilation_h, s->dilation_w, s->stride_h,
                     s->stride_w);
  if (oh == 0 || ow == 0)
    return pyrt_fail(PYRT_ERR_SHAPE,
                     "conv2d: a %dx%d kernel (dilation %d, %d) leaves no "
                     "output on a %dx%d input with these pads",
                     s->kernel_h, s->kernel_w, s->dilation_h, s->dilation_w,
                     s->in_h, s->in_w);
  if (oh * ow > INT32_MAX / 4 ||
      (int64_t)(s->in_c / s->groups) * s->kernel_h * s->kernel_w >
          INT32_MAX / 4)
    return pyrt_fail(PYRT_ERR_SHAPE, "conv2d: shape too large");
  s->out_h = (int32_t)oh;
  s->out_w = (int32_t)ow;
  return PYRT_OK;
}

/* Checks the caller's shape (incl. out_h/out_w) and fills the GEMM view. */
static int conv_check(const char *op, const pyrt_conv2d_shape *s,
                      int32_t *depthwise, int32_t *group_m, int32_t *group_k) {
  if (s == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: shape is NULL", op);
  pyrt_conv2d_shape t = *s;
  int rc = pyrt_conv2d_infer(&t);
  if (rc) return rc;
  if (t.out_h != s->out_h || t.out_w != s->out_w)
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: output is %dx%d, not %dx%d", op,
                     t.out_h, t.out_w, s->out_h, s->out_w);
  *depthwise = s->groups == s->in_c && s->out_c == s->in_c && s->groups > 1;
  *group_m = s->out_c / s->groups;
  *group_k = s->in_c / s->groups * s->kernel_h * s->kernel_w;
  return PYRT_OK;
}

static size_t header_size(void) {
  return PYRT_ALIGN_UP(sizeof(conv_pack_header));
}

size_t pyrt_qconv2d_packed_size(const pyrt_context *ctx,
                                const pyrt_conv2d_shape *s) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (ctx == NULL || s == NULL) return 0;
  pyrt_conv2d_shape t = *s;
  if (pyrt_conv2d_infer(&t) != PYRT_OK) return 0;
  if (conv_check("qconv2d_packed_size", &t, &dw, &gm, &gk) != PYRT_OK) return 0;
  if (dw)
    return header_size() +
           PYRT_ALIGN_UP(pyrt_pack_int8_size(ctx->t, PYRT_PACK_DWCONV, s->out_c,
                                             s->kernel_h * s->kernel_w));
  return header_size() +
         (size_t)s->groups *
             PYRT_ALIGN_UP(pyrt_pack_int8_size(ctx->t, PYRT_PACK_GEMM, gm, gk));
}

int pyrt_qconv2d_pack(const pyrt_context *ctx, const pyrt_conv2d_shape *s,
                      const void *w, int32_t w_dtype, const int32_t *w_zero,
                      int32_t w_zero_per_channel, void *packed) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (ctx == NULL || s == NULL || w == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d_pack: NULL argument");
  pyrt_conv2d_shape t = *s; /* packing needs no spatial output size */
  int rc = pyrt_conv2d_infer(&t);
  if (rc == PYRT_OK) rc = conv_check("qconv2d_pack", &t, &dw, &gm, &gk);
  if (rc) return rc;
  if (w_zero != NULL && (w_dtype == PYRT_U8 || w_dtype == PYRT_S8)) {
    const int32_t lo = w_dtype == PYRT_U8 ? 0 : -128; /* name the channel */
    for (int32_t c = 0; c < (w_zero_per_channel ? s->out_c : 1); c++)
      if (w_zero[c] < lo || w_zero[c] > lo + 255)
        return pyrt_fail(PYRT_ERR_ARG,
                         "qconv2d_pack: weight zero point %d (channel %d) "
                         "outside [%d, %d]",
                         w_zero[c], c, lo, lo + 255);
  }
  conv_pack_header *h = (conv_pack_header *)packed;
  char *body = (char *)packed + header_size();
  const int32_t taps = s->kernel_h * s->kernel_w;
  const size_t bytes =
      dw ? 0
         : PYRT_ALIGN_UP(pyrt_pack_int8_size(ctx->t, PYRT_PACK_GEMM, gm, gk));
  /* The magic goes in last, so a failed pack is never mistaken for one. */
  *h = (conv_pack_header){0,
                          ctx->t->id,
                          dw,
                          s->groups,
                          dw ? s->out_c : gm,
                          dw ? taps : gk,
                          (int64_t)bytes};
  if (dw) { /* [C][kh][kw][1] is [C][taps] */
    rc = pyrt_pack_int8(ctx->t, "qconv2d_pack", PYRT_PACK_DWCONV, s->out_c,
                        taps, w, w_dtype, w_zero, w_zero_per_channel, body);
  } else {
    for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
      const char *wg = (const char *)w + (size_t)g * (size_t)gm * (size_t)gk;
      const int32_t *zg = w_zero && w_zero_per_channel
                              ? w_zero + (size_t)g * (size_t)gm
                              : w_zero;
      rc = pyrt_pack_int8(ctx->t, "qconv2d_pack", PYRT_PACK_GEMM, gm, gk, wg,
                          w_dtype, zg, w_zero_per_channel,
                          body + (size_t)g * bytes);
    }
  }
  if (rc == PYRT_OK) h->magic = PYRT_CONV_MAGIC;
  return rc;
}

typedef struct {
  pyrt_context *ctx;
  const pyrt_qdwconv_config *dw;
  const pyrt_conv2d_shape *s;
  const void *packed;
  const uint8_t *x;
  int32_t flip, x_zero;
  const int32_t *bias;
  const pyrt_output_stage *out;
  void *y;
  int32_t rows_per_task, rows;
  size_t scratch;
  int status;
} dw_job;

static void dw_task(void *arg, int32_t task, int32_t worker) {
  dw_job *j = (dw_job *)arg;
  const int32_t r0 = task * j->rows_per_task;
  const int32_t r1 =
      r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
  void *scratch = NULL;
  if (j->scratch > 0) {
    scratch = pyrt_scratch(j->ctx, worker, j->scratch);
    if (scratch == NULL) {
      j->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
      return;
    }
  }
  j->dw->run(j->s, j->packed, j->x, j->flip, j->x_zero, j->bias, j->out, j->y,
             r0, r1, scratch);
}

static int run_depthwise(pyrt_context *ctx, const pyrt_conv2d_shape *s,
                         const void *body, const uint8_t *x, uint8_t flip,
                         int32_t x_zero, const int32_t *bias,
                         const pyrt_output_stage *out, void *y) {
  const pyrt_qdwconv_config *dw = &ctx->t->qdwconv;
  dw_job j = {ctx,
              dw,
              s,
              body,
              x,
              flip,
              x_zero,
              bias,
              out,
              y,
              0,
              s->batch * s->out_h,
              dw->scratch_size ? dw->scratch_size(s) : 0,
              PYRT_OK};
  /* a few tasks per thread balance the load; one thread runs one (each task
     prepares its own accumulator bases) */
  const int32_t want = ctx->threads == 1 ? 1 : 4 * ctx->threads;
  const int32_t tasks = j.rows < want ? j.rows : want;
  j.rows_per_task = (j.rows + tasks - 1) / tasks;
  pyrt_parallel(ctx, (j.rows + j.rows_per_task - 1) / j.rows_per_task, dw_task,
                &j);
  if (j.status != PYRT_OK)
    return pyrt_fail(j.status, "qconv2d: out of memory for scratch");
  return PYRT_OK;
}

int pyrt_qconv2d(pyrt_context *ctx, const pyrt_conv2d_shape *s,
                 const void *packed, const void *x, int32_t x_dtype,
                 int32_t x_zero, const int32_t *bias,
                 const pyrt_output_stage *out, void *y) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (ctx == NULL || packed == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d: NULL argument");
  int rc = conv_check("qconv2d", s, &dw, &gm, &gk);
  if (rc) return rc;
  if (x_dtype != PYRT_U8 && x_dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d: x must be U8 or S8, got %d",
                     x_dtype);
  if (x_zero < (x_dtype == PYRT_U8 ? 0 : -128) ||
      x_zero > (x_dtype == PYRT_U8 ? 255 : 127))
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d: x zero point %d out of range",
                     x_zero);
  const conv_pack_header *h = (const conv_pack_header *)packed;
  if (h->magic != PYRT_CONV_MAGIC)
    return pyrt_fail(PYRT_ERR_PACK, "qconv2d: buffer is not packed weights");
  if (h->isa != ctx->t->id)
    return pyrt_fail(
        PYRT_ERR_PACK,
        "qconv2d: weights were packed for another ISA; pack again");
  if (h->depthwise != dw || h->groups != s->groups ||
      (!dw && (h->group_m != gm || h->group_k != gk)))
    return pyrt_fail(PYRT_ERR_PACK,
                     "qconv2d: weights were packed for another shape");
  rc = pyrt_check_output_stage("qconv2d", out, s->out_c);
  if (rc) return rc;
  const char *body = (const char *)packed + header_size();
  const uint8_t flip = x_dtype == PYRT_S8 ? 0x80 : 0;
  const int32_t zero = x_zero + (flip ? 128 : 0);
  if (dw) {
    rc = pyrt_check_pack(ctx->t, "qconv2d", body, PYRT_PACK_DWCONV, s->out_c,
                         s->kernel_h * s->kernel_w);
    if (rc) return rc;
    pyrt_context_enter(ctx);
    rc = run_depthwise(ctx, s, body, x, flip, zero, bias, out, y);
    pyrt_context_leave(ctx);
    return rc;
  }
  for (int32_t g = 0; g < s->groups; g++) {
    rc = pyrt_check_pack(ctx->t, "qconv2d",
                         body + (size_t)g * (size_t)h->group_bytes,
                         PYRT_PACK_GEMM, gm, gk);
    if (rc) return rc;
  }
  if ((int64_t)s->batch * s->out_h * s->out_w > INT32_MAX)
    return pyrt_fail(PYRT_ERR_SHAPE, "qconv2d: batch x output too large");
  const int32_t M = s->batch * s->out_h * s->out_w;
  const int direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 &&
                     s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                     s->pad_bottom == 0 && s->pad_right == 0;
  const size_t out_size =
      out->out_dtype == PYRT_U8 || out->out_dtype == PYRT_S8 ? 1 : 4;
  pyrt_context_enter(ctx);
  for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
    pyrt_qgemm_a a = {
        (const uint8_t *)x, (size_t)s->in_c, direct ? NULL : s, g, flip, zero};
    if (direct) a.a += (size_t)g * (size_t)(s->in_c / s->groups);
    pyrt_output_stage stage = *out; /* this group's channels */
    if (out->per_channel && out->out_dtype != PYRT_S32)
      stage.scale = out->scale + (size_t)g * gm;
    rc = pyrt_qgemm_drive(
        ctx, M, gm, gk, &a, body + (size_t)g * (size_t)h->group_bytes,
        bias ? bias + (size_t)g * gm : NULL, &stage,
        (char *)y + (size_t)g * (size_t)gm * out_size, (size_t)s->out_c);
  }
  pyrt_context_leave(ctx);
  return rc;
}
