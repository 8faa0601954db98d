/*
 * fp32 Conv2D, NHWC, the float twin of qconv/qconv.c.
 *
 * Depthwise (groups == in_c == out_c > 1) runs the table's sdwconv kernel,
 * threaded over output rows: per output row this file resolves strides,
 * dilations and padding into one list of tap pointers for the pixels whose
 * window lies inside the input, and one list per edge pixel (taps in the
 * padding left out), so the ISA kernel only sums over channels.
 * Everything else is one fp32 GEMM driver call per group:
 *   y[pixels][out_c/groups] = im2col(x)[pixels][K] x W[K][out_c/groups],
 *   K = kernel_h * kernel_w * in_c/groups,
 * written straight into NHWC (row stride out_c); a 1x1, stride-1, unpadded
 * convolution reads x as the A matrix itself. The driver's im2col writes
 * 0.0f for the padding, so there a padded tap adds fma(0, w, acc).
 */
#include <stdint.h>
#include <string.h>

#include "sgemm/sgemm.h"

#define PYRT_FCONV_MAGIC 0x46545250u /* "PRTF" */

typedef struct {
  uint32_t magic;
  int32_t isa;
  int32_t depthwise;
  int32_t groups, in_c, out_c, kernel_h, kernel_w;
  int64_t group_bytes; /* one group's sgemm pack, aligned; 0 for depthwise */
} fconv_pack_header;

typedef struct {
  int32_t depthwise, group_n, group_k; /* the per-group GEMM shape */
  size_t group_bytes, body_bytes;      /* body: everything after the header */
} fconv_plan;

static size_t header_size(void) {
  return PYRT_ALIGN_UP(sizeof(fconv_pack_header));
}

/* Validates the shape (out_h / out_w too when check_out) and sizes the
   pack. */
static int fconv_check(const pyrt_context *ctx, const char *op,
                       const pyrt_conv2d_shape *s, int check_out,
                       fconv_plan *p) {
  if (s == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: shape is NULL", op);
  pyrt_conv2d_shape t = *s;
  int rc = pyrt_conv2d_infer(&t);
  if (rc) return rc;
  if (check_out && (t.out_h != s->out_h || t.out_w != s->out_w))
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: output is %dx%d, not %dx%d", op,
                     t.out_h, t.out_w, s->out_h, s->out_w);
  /* infer bounds in_c/groups * kernel_h * kernel_w by INT32_MAX / 4. */
  p->depthwise = s->groups == s->in_c && s->out_c == s->in_c && s->groups > 1;
  p->group_n = s->out_c / s->groups;
  p->group_k = s->in_c / s->groups * s->kernel_h * s->kernel_w;
  if (p->depthwise) {
    const uint64_t bytes =
        (uint64_t)s->out_c * (uint64_t)s->kernel_h * (uint64_t)s->kernel_w * 4;
    if (bytes > SIZE_MAX / 2)
      return pyrt_fail(PYRT_ERR_SHAPE, "%s: weights too large", op);
    p->group_bytes = 0;
    p->body_bytes = (size_t)bytes;
    return PYRT_OK;
  }
  const size_t one = pyrt_sgemm_pack_size(ctx->t, p->group_n, p->group_k);
  if (one == 0 || one > SIZE_MAX / 2 / (size_t)s->groups)
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: weights too large (%d x %d x %d)", op,
                     s->groups, p->group_n, p->group_k);
  p->group_bytes = PYRT_ALIGN_UP(one);
  p->body_bytes = (size_t)s->groups * p->group_bytes;
  return PYRT_OK;
}

size_t pyrt_conv2d_packed_size(const pyrt_context *ctx,
                               const pyrt_conv2d_shape *s) {
  fconv_plan p = {0, 0, 0, 0, 0};
  if (ctx == NULL || fconv_check(ctx, "conv2d_packed_size", s, 0, &p)) return 0;
  return header_size() + p.body_bytes;
}

int pyrt_conv2d_pack(const pyrt_context *ctx, const pyrt_conv2d_shape *s,
                     const float *w, void *packed) {
  if (ctx == NULL || w == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d_pack: NULL argument");
  fconv_plan p = {0, 0, 0, 0, 0};
  int rc = fconv_check(ctx, "conv2d_pack", s, 0, &p);
  if (rc) return rc;
  char *body = (char *)packed + header_size();
  *(fconv_pack_header *)packed = (fconv_pack_header){
      PYRT_FCONV_MAGIC, ctx->t->id,  p.depthwise,
      s->groups,        s->in_c,     s->out_c,
      s->kernel_h,      s->kernel_w, (int64_t)p.group_bytes};
  if (p.depthwise) { /* [C][kh][kw][1] -> [taps][C] */
    const int32_t taps = s->kernel_h * s->kernel_w, C = s->out_c;
    float *d = (float *)body;
    for (int32_t t = 0; t < taps; t++)
      for (int32_t c = 0; c < C; c++)
        d[(size_t)t * C + c] = w[(size_t)c * taps + t];
    return PYRT_OK;
  }
  const size_t group_w = (size_t)p.group_n * (size_t)p.group_k;
  for (int32_t g = 0; g < s->groups; g++)
    pyrt_sgemm_pack_into(ctx->t, p.group_n, p.group_k, w + (size_t)g * group_w,
                         body + (size_t)g * p.group_bytes);
  return PYRT_OK;
}

/* ---- depthwise ----------------------------------------------------------- */

typedef struct {
  pyrt_context *ctx;
  const pyrt_conv2d_shape *s;
  const float *w, *x, *bias;
  float clamp[2];
  float *y;
  int32_t rows_per_task, rows;
  int status;
} dw_job;

/* Output pixels [ox0, ox1) of row (b, oy) in one kernel call: taps whose
   column falls outside the input for any of these pixels are left out, so
   callers pass either pixels that see every kx, or one pixel. */
static void dw_pixels(const dw_job *j, const float **xs, const float **ws,
                      int32_t b, int32_t oy, int32_t ox0, int32_t ox1) {
  const pyrt_conv2d_shape *s = j->s;
  const int32_t C = s->in_c, ix0 = ox0 * s->stride_w - s->pad_left;
  int32_t n = 0;
  for (int32_t ky = 0; ky < s->kernel_h; ky++) {
    const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
    if (iy < 0 || iy >= s->in_h) continue;
    const float *row = j->x + ((size_t)b * s->in_h + (size_t)iy) * s->in_w * C;
    for (int32_t kx = 0; kx < s->kernel_w; kx++) {
      const int32_t ix = ix0 + kx * s->dilation_w;
      if (ix < 0 || ix >= s->in_w) continue;
      xs[n] = row + (size_t)ix * C;
      ws[n++] = j->w + (size_t)(ky * s->kernel_w + kx) * C;
    }
  }
  float *y = j->y + (((size_t)b * s->out_h + oy) * s->out_w + ox0) * C;
  j->ctx->t->sdwconv.run(C, n, xs, ws, ox1 - ox0, (size_t)s->stride_w * C,
                         j->bias, j->clamp, y);
}

static void dw_task(void *arg, int32_t task, int32_t worker) {
  dw_job *j = (dw_job *)arg;
  const pyrt_conv2d_shape *s = j->s;
  const size_t taps = (size_t)s->kernel_h * (size_t)s->kernel_w;
  const float **xs = pyrt_scratch(j->ctx, worker, 2 * taps * sizeof(float *));
  if (xs == NULL) {
    j->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
    return;
  }
  const float **ws = xs + taps;
  /* Pixels [lo, hi) see every kx: 0 <= ox * stride - pad_left and
     ox * stride - pad_left + (kernel_w - 1) * dilation < in_w. */
  const int32_t sw = s->stride_w;
  const int64_t span = (int64_t)(s->kernel_w - 1) * s->dilation_w;
  int64_t lo = ((int64_t)s->pad_left + sw - 1) / sw;
  int64_t hi = s->in_w - span + s->pad_left <= 0
                   ? 0
                   : (s->in_w - span + s->pad_left - 1) / sw + 1;
  lo = lo < s->out_w ? lo : s->out_w;
  hi = hi < s->out_w ? hi : s->out_w;
  if (hi < lo) hi = lo;
  const int32_t r0 = task * j->rows_per_task;
  const int32_t r1 =
      r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
  for (int32_t r = r0; r < r1; r++) {
    const int32_t b = r / s->out_h, oy = r % s->out_h;
    for (int32_t ox = 0; ox < (int32_t)lo; ox++)
      dw_pixels(j, xs, ws, b, oy, ox, ox + 1);
    if (hi > lo) dw_pixels(j, xs, ws, b, oy, (int32_t)lo, (int32_t)hi);
    for (int32_t ox = (int32_t)hi; ox < s->out_w; ox++)
      dw_pixels(j, xs, ws, b, oy, ox, ox + 1);
  }
}

static int run_depthwise(pyrt_context *ctx, const pyrt_conv2d_shape *s,
                         const float *w, const float *x, const float *bias,
                         float lo, float hi, float *y) {
  dw_job j = {ctx, s, w, x, bias, {lo, hi}, y, 0, s->batch * s->out_h, 0};
  if (bias == NULL) {
    float *zeros = pyrt_scratch(ctx, PYRT_SHARED, (size_t)s->out_c * 4);
    if (zeros == NULL)
      return pyrt_fail(PYRT_ERR_NOMEM, "conv2d: out of memory");
    memset(zeros, 0, (size_t)s->out_c * 4);
    j.bias = zeros;
  }
  const int32_t tasks = j.rows < 4 * ctx->threads ? j.rows : 4 * ctx->threads;
  j.rows_per_task = (j.rows + tasks - 1) / tasks;
  pyrt_parallel(ctx, (j.rows + j.rows_per_task - 1) / j.rows_per_task, dw_task,
                &j);
  if (j.status != PYRT_OK)
    return pyrt_fail(j.status, "conv2d: out of memory for scratch");
  return PYRT_OK;
}

/* ---- entry point --------------------------------------------------------- */

int pyrt_conv2d(pyrt_context *ctx, const pyrt_conv2d_shape *s,
                const void *packed, const float *x, const float *bias, float lo,
                float hi, float *y) {
  if (ctx == NULL || packed == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d: NULL argument");
  fconv_plan p = {0, 0, 0, 0, 0};
  int rc = fconv_check(ctx, "conv2d", s, 1, &p);
  if (rc == PYRT_OK) rc = pyrt_check_clamp("conv2d", lo, hi);
  if (rc) return rc;
  const fconv_pack_header *h = (const fconv_pack_header *)packed;
  if (h->magic != PYRT_FCONV_MAGIC)
    return pyrt_fail(PYRT_ERR_PACK, "conv2d: buffer is not packed weights");
  if (h->isa != ctx->t->id)
    return pyrt_fail(PYRT_ERR_PACK,
                     "conv2d: weights were packed for another ISA; pack again");
  if (h->depthwise != p.depthwise || h->groups != s->groups ||
      h->in_c != s->in_c || h->out_c != s->out_c ||
      h->kernel_h != s->kernel_h || h->kernel_w != s->kernel_w ||
      h->group_bytes != (int64_t)p.group_bytes)
    return pyrt_fail(PYRT_ERR_PACK,
                     "conv2d: weights were packed for another shape");
  const char *body = (const char *)packed + header_size();
  if ((int64_t)s->batch * s->out_h * s->out_w > INT32_MAX / 4)
    return pyrt_fail(PYRT_ERR_SHAPE, "conv2d: batch x output too large");
  pyrt_context_enter(ctx);
  if (p.depthwise) {
    rc = run_depthwise(ctx, s, (const float *)body, x, bias, lo, hi, y);
    pyrt_context_leave(ctx);
    return rc;
  }
  const int32_t M = s->batch * s->out_h * s->out_w, gn = p.group_n;
  const int32_t cin = s->in_c / s->groups;
  const int direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 &&
                     s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                     s->pad_bottom == 0 && s->pad_right == 0;
  for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
    const pyrt_sgemm_a a = {direct ? x + (size_t)g * cin : x, (size_t)s->in_c,
                            direct ? NULL : s, g};
    rc = pyrt_sgemm_drive(ctx, M, gn, p.group_k, &a,
                          body + (size_t)g * p.group_bytes,
                          bias ? bias + (size_t)g * gn : NULL, lo, hi,
                          y + (size_t)g * gn, (size_t)s->out_c);
  }
  pyrt_context_leave(ctx);
  return rc;
}
