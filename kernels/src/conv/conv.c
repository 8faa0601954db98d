/*
 * fp32 Conv2D (NCHW), the float twin of qconv/qconv.c.
 *
 * Depthwise (groups == in_c > 1, any channel multiplier) runs a direct loop;
 * everything else is one sgemm per (image, group):
 *   y[g] (out_c/groups x out_h*out_w) = W[g] (out_c/groups x K) x col,
 *   K = in_c/groups * kernel_h * kernel_w,
 * where col is X itself for 1x1 stride-1 unpadded convolutions and an im2col
 * buffer otherwise, built a band of output rows at a time so it stays small.
 * Padding reads as 0.0f. Weights are packed per group by pyrt_sgemm_pack.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* no FMA: the same sums on every compiler */
#endif

#define PYRT_FCONV_MAGIC 0x46545250u /* "PRTF" */

/* Bytes of im2col buffer per band; at least one output row is always used. */
#define COL_BAND_BYTES ((size_t)1 << 20)

typedef struct {
  uint32_t magic;
  int32_t isa;
  int32_t depthwise;
  int32_t groups;
  int32_t in_c, out_c, kernel_h, kernel_w;
  int32_t group_m, group_k; /* per-group GEMM shape */
  int64_t group_bytes;      /* one group's sgemm pack, aligned */
} fconv_pack_header;

typedef struct {
  int32_t depthwise, group_m, group_k;
  size_t group_bytes; /* 0 for depthwise */
  size_t body_bytes;  /* everything after the header */
} fconv_plan;

static size_t header_size(void) {
  return PYRT_ALIGN_UP(sizeof(fconv_pack_header));
}

/* Validates the shape (out_h/out_w too when check_out) and sizes the pack. */
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
  /* infer bounds in_c/groups * kernel_h * kernel_w and out_h * out_w by
     INT32_MAX / 4, so the products below cannot overflow. */
  p->depthwise = s->groups == s->in_c && s->groups > 1;
  p->group_m = s->out_c / s->groups;
  p->group_k = s->in_c / s->groups * s->kernel_h * s->kernel_w;
  const uint64_t taps = (uint64_t)s->kernel_h * (uint64_t)s->kernel_w;
  if (p->depthwise) {
    const uint64_t bytes = (uint64_t)s->out_c * taps * sizeof(float);
    if (bytes > SIZE_MAX / 2)
      return pyrt_fail(PYRT_ERR_SHAPE, "%s: weights too large", op);
    p->group_bytes = 0;
    p->body_bytes = (size_t)bytes;
    return PYRT_OK;
  }
  const size_t one = pyrt_sgemm_packed_size(ctx, p->group_m, p->group_k);
  if (one == 0 || one > SIZE_MAX / 2 / (size_t)s->groups)
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: weights too large (%d x %d x %d)", op,
                     s->groups, p->group_m, p->group_k);
  p->group_bytes = PYRT_ALIGN_UP(one);
  p->body_bytes = (size_t)s->groups * p->group_bytes;
  return PYRT_OK;
}

size_t pyrt_conv2d_packed_size(const pyrt_context *ctx,
                               const pyrt_conv2d_shape *s) {
  if (ctx == NULL) return 0;
  fconv_plan p = {0, 0, 0, 0, 0};
  if (fconv_check(ctx, "conv2d_packed_size", s, 0, &p)) return 0;
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
      PYRT_FCONV_MAGIC, ctx->t->id, p.depthwise,           s->groups,
      s->in_c,          s->out_c,   s->kernel_h,           s->kernel_w,
      p.group_m,        p.group_k,  (int64_t)p.group_bytes};
  if (p.depthwise) {
    memcpy(body, w, p.body_bytes);
    return PYRT_OK;
  }
  const size_t group_w = (size_t)p.group_m * (size_t)p.group_k;
  for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++)
    rc = pyrt_sgemm_pack(ctx, p.group_m, p.group_k, w + (size_t)g * group_w,
                         body + (size_t)g * p.group_bytes);
  return rc;
}

/* First output index o >= 0 with 0 <= o * stride + off, and one past the
   last with o * stride + off < size; both clipped to [0, out). */
static void valid_range(int64_t off, int32_t stride, int32_t size, int32_t out,
                        int32_t *first, int32_t *end) {
  int64_t f = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t e = size - off <= 0 ? 0 : (size - off + stride - 1) / stride;
  f = f > out ? out : f;
  e = e > out ? out : e;
  *first = (int32_t)f;
  *end = (int32_t)(e < f ? f : e);
}

/* col[k][r * out_w + ox] for output rows [oy0, oy0 + rows) of one group;
   k runs over (channel, ky, kx) like the weights. */
static void im2col_f32(const pyrt_conv2d_shape *s, const float *x, int32_t oy0,
                       int32_t rows, float *col) {
  const int32_t cin = s->in_c / s->groups, ow = s->out_w;
  const size_t n = (size_t)rows * (size_t)ow;
  size_t k = 0;
  for (int32_t c = 0; c < cin; c++)
    for (int32_t ky = 0; ky < s->kernel_h; ky++)
      for (int32_t kx = 0; kx < s->kernel_w; kx++, k++) {
        const int64_t xoff = (int64_t)kx * s->dilation_w - s->pad_left;
        int32_t ox0, ox1;
        valid_range(xoff, s->stride_w, s->in_w, ow, &ox0, &ox1);
        float *dst = col + k * n;
        for (int32_t r = 0; r < rows; r++, dst += ow) {
          const int64_t iy = (int64_t)(oy0 + r) * s->stride_h - s->pad_top +
                             (int64_t)ky * s->dilation_h;
          if (iy < 0 || iy >= s->in_h) {
            memset(dst, 0, (size_t)ow * sizeof(float));
            continue;
          }
          const float *src =
              x + ((size_t)c * (size_t)s->in_h + (size_t)iy) * (size_t)s->in_w;
          for (int32_t ox = 0; ox < ox0; ox++) dst[ox] = 0.0f;
          for (int32_t ox = ox0; ox < ox1; ox++)
            dst[ox] = src[(int64_t)ox * s->stride_w + xoff];
          for (int32_t ox = ox1; ox < ow; ox++) dst[ox] = 0.0f;
        }
      }
}

/*
 * Direct depthwise convolution, output channel oc reading input channel
 * oc / (out_c / in_c). Per output element: acc = 0.0f, then acc += w * x
 * over the taps in (ky, kx) order, skipping taps that fall in the padding,
 * then + bias and the clamp. Rows are accumulated in y itself one tap at a
 * time, so the inner loop runs over output columns and vectorizes.
 */
static void depthwise_f32(const pyrt_conv2d_shape *s, const float *w,
                          const float *x, const float *bias, float lo, float hi,
                          float *y) {
  const int32_t mult = s->out_c / s->in_c, ow = s->out_w;
  const size_t taps = (size_t)s->kernel_h * (size_t)s->kernel_w;
  const size_t in_plane = (size_t)s->in_h * (size_t)s->in_w;
  const size_t out_plane = (size_t)s->out_h * (size_t)ow;
  for (int32_t b = 0; b < s->batch; b++)
    for (int32_t oc = 0; oc < s->out_c; oc++) {
      const float *xc =
          x + ((size_t)b * (size_t)s->in_c + (size_t)(oc / mult)) * in_plane;
      const float *wc = w + (size_t)oc * taps;
      float *yc = y + ((size_t)b * (size_t)s->out_c + (size_t)oc) * out_plane;
      const float bv = bias ? bias[oc] : 0.0f;
      for (int32_t oy = 0; oy < s->out_h; oy++) {
        float *dst = yc + (size_t)oy * (size_t)ow;
        for (int32_t ox = 0; ox < ow; ox++) dst[ox] = 0.0f;
        for (int32_t ky = 0; ky < s->kernel_h; ky++) {
          const int64_t iy = (int64_t)oy * s->stride_h - s->pad_top +
                             (int64_t)ky * s->dilation_h;
          if (iy < 0 || iy >= s->in_h) continue;
          const float *src = xc + (size_t)iy * (size_t)s->in_w;
          for (int32_t kx = 0; kx < s->kernel_w; kx++) {
            const int64_t xoff = (int64_t)kx * s->dilation_w - s->pad_left;
            const float wv = wc[(size_t)ky * (size_t)s->kernel_w + kx];
            int32_t ox0, ox1;
            valid_range(xoff, s->stride_w, s->in_w, ow, &ox0, &ox1);
            if (s->stride_w == 1) {
              const float *sx = src + (xoff + ox0); /* in bounds */
              float *dx = dst + ox0;
              for (int32_t i = 0; i < ox1 - ox0; i++) dx[i] += wv * sx[i];
            } else {
              for (int32_t ox = ox0; ox < ox1; ox++)
                dst[ox] += wv * src[(int64_t)ox * s->stride_w + xoff];
            }
          }
        }
        for (int32_t ox = 0; ox < ow; ox++) {
          float v = dst[ox] + bv;
          v = v < lo ? lo : v;
          dst[ox] = v > hi ? hi : v;
        }
      }
    }
}

int pyrt_conv2d(pyrt_context *ctx, const pyrt_conv2d_shape *s,
                const void *packed, const float *x, const float *bias, float lo,
                float hi, float *y) {
  if (ctx == NULL || packed == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d: NULL argument");
  fconv_plan p = {0, 0, 0, 0, 0};
  int rc = fconv_check(ctx, "conv2d", s, 1, &p);
  if (rc) return rc;
  if (isnan(lo) || isnan(hi) || lo > hi)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d: clamp [%g, %g] is not a range",
                     (double)lo, (double)hi);
  const fconv_pack_header *h = (const fconv_pack_header *)packed;
  if (h->magic != PYRT_FCONV_MAGIC || h->isa != ctx->t->id ||
      h->depthwise != p.depthwise || h->groups != s->groups ||
      h->in_c != s->in_c || h->out_c != s->out_c ||
      h->kernel_h != s->kernel_h || h->kernel_w != s->kernel_w ||
      h->group_m != p.group_m || h->group_k != p.group_k ||
      h->group_bytes != (int64_t)p.group_bytes)
    return pyrt_fail(PYRT_ERR_PACK,
                     "conv2d: weights were packed for another shape or ISA");
  const char *body = (const char *)packed + header_size();
  if (p.depthwise) {
    depthwise_f32(s, (const float *)body, x, bias, lo, hi, y);
    return PYRT_OK;
  }

  const int32_t n = s->out_h * s->out_w, gm = p.group_m, gk = p.group_k;
  const int direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 &&
                     s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                     s->pad_bottom == 0 && s->pad_right == 0;
  float *col = NULL;
  int32_t band = s->out_h; /* output rows per im2col band */
  if (!direct) {
    const size_t row_bytes = (size_t)gk * (size_t)s->out_w * sizeof(float);
    const size_t fit = COL_BAND_BYTES / row_bytes;
    band = fit < 1 ? 1 : fit < (size_t)s->out_h ? (int32_t)fit : s->out_h;
    col = malloc(row_bytes * (size_t)band);
    if (col == NULL)
      return pyrt_fail(PYRT_ERR_NOMEM, "conv2d: out of memory (%zu bytes)",
                       row_bytes * (size_t)band);
  }
  const size_t in_plane = (size_t)s->in_h * (size_t)s->in_w;
  const int32_t cin = s->in_c / s->groups;
  for (int32_t b = 0; b < s->batch && rc == PYRT_OK; b++)
    for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
      const float *xg =
          x +
          ((size_t)b * (size_t)s->in_c + (size_t)g * (size_t)cin) * in_plane;
      float *yg = y + ((size_t)b * (size_t)s->out_c + (size_t)g * (size_t)gm) *
                          (size_t)n;
      const void *wg = body + (size_t)g * p.group_bytes;
      const float *bg = bias ? bias + (size_t)g * (size_t)gm : NULL;
      if (direct) {
        rc = pyrt_sgemm(ctx, gm, n, gk, wg, xg, n, bg, lo, hi, yg, n);
        continue;
      }
      for (int32_t oy = 0; oy < s->out_h && rc == PYRT_OK; oy += band) {
        const int32_t rows = s->out_h - oy < band ? s->out_h - oy : band;
        const int32_t cols = rows * s->out_w;
        im2col_f32(s, xg, oy, rows, col);
        rc = pyrt_sgemm(ctx, gm, cols, gk, wg, col, cols, bg, lo, hi,
                        yg + (size_t)oy * (size_t)s->out_w, n);
      }
    }
  free(col);
  return rc;
}
