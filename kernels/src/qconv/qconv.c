/* int8 Conv2D (NCHW): shape checks, packing, and the im2col + qgemm driver.
 * Depthwise convolutions (groups == in_c == out_c) go to the table's direct
 * qdwconv kernel instead; everything else becomes one GEMM per group:
 * y[g] (out_c/groups x out_h*out_w) = W[g] (out_c/groups x K) x col (K x ...)
 * with K = in_c/groups * kernel_h * kernel_w, written straight into NCHW.
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

static int64_t conv_out_size(int32_t in, int32_t k, int32_t stride,
                             int32_t dilation, int32_t pad_begin,
                             int32_t pad_end) {
  int64_t span = (int64_t)dilation * (k - 1) + 1;
  int64_t padded = (int64_t)in + pad_begin + pad_end;
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
  if (oh <= 0 || ow <= 0)
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

size_t pyrt_qconv2d_packed_size(const pyrt_conv2d_shape *s) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (s == NULL) return 0;
  pyrt_conv2d_shape t = *s;
  if (pyrt_conv2d_infer(&t) != PYRT_OK) return 0;
  if (conv_check("qconv2d_packed_size", &t, &dw, &gm, &gk) != PYRT_OK) return 0;
  if (dw)
    return header_size() +
           PYRT_ALIGN_UP(pyrt_pack_int8_size(PYRT_PACK_DWCONV, s->out_c,
                                             s->kernel_h * s->kernel_w));
  return header_size() + (size_t)s->groups * PYRT_ALIGN_UP(pyrt_pack_int8_size(
                                                 PYRT_PACK_GEMM, gm, gk));
}

int pyrt_qconv2d_pack(const pyrt_conv2d_shape *s, const void *w,
                      int32_t w_dtype, const int32_t *w_zero,
                      int32_t w_zero_per_channel, void *packed) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (s == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d_pack: NULL argument");
  pyrt_conv2d_shape t = *s; /* packing needs no spatial output size */
  int rc = pyrt_conv2d_infer(&t);
  if (rc == PYRT_OK) rc = conv_check("qconv2d_pack", &t, &dw, &gm, &gk);
  if (rc) return rc;
  conv_pack_header *h = (conv_pack_header *)packed;
  char *body = (char *)packed + header_size();
  if (dw) {
    *h = (conv_pack_header){PYRT_CONV_MAGIC,
                            pyrt_isa_id(),
                            1,
                            s->groups,
                            s->out_c,
                            s->kernel_h * s->kernel_w,
                            0};
    return pyrt_pack_int8("qconv2d_pack", PYRT_PACK_DWCONV, s->out_c,
                          s->kernel_h * s->kernel_w, w, w_dtype, w_zero,
                          w_zero_per_channel, body);
  }
  const size_t bytes =
      PYRT_ALIGN_UP(pyrt_pack_int8_size(PYRT_PACK_GEMM, gm, gk));
  *h = (conv_pack_header){PYRT_CONV_MAGIC, pyrt_isa_id(), 0, s->groups, gm, gk,
                          (int64_t)bytes};
  for (int32_t g = 0; g < s->groups; g++) {
    const char *wg = (const char *)w + (size_t)g * (size_t)gm * (size_t)gk;
    const int32_t *zg =
        w_zero && w_zero_per_channel ? w_zero + (size_t)g * (size_t)gm : w_zero;
    rc = pyrt_pack_int8("qconv2d_pack", PYRT_PACK_GEMM, gm, gk, wg, w_dtype, zg,
                        w_zero_per_channel, body + (size_t)g * bytes);
    if (rc) return rc;
  }
  return PYRT_OK;
}

/* col[k][p] for k = (c, ky, kx), p = (oy, ox); outside the image: pad. */
static void im2col(const pyrt_conv2d_shape *s, const uint8_t *x, uint8_t pad,
                   uint8_t *col) {
  const int32_t cin = s->in_c / s->groups, ow = s->out_w, oh = s->out_h;
  size_t k = 0;
  for (int32_t c = 0; c < cin; c++)
    for (int32_t ky = 0; ky < s->kernel_h; ky++)
      for (int32_t kx = 0; kx < s->kernel_w; kx++, k++) {
        uint8_t *dst = col + k * (size_t)oh * (size_t)ow;
        for (int32_t oy = 0; oy < oh; oy++, dst += ow) {
          const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
          if (iy < 0 || iy >= s->in_h) {
            memset(dst, pad, (size_t)ow);
            continue;
          }
          const uint8_t *src = x + ((size_t)c * s->in_h + iy) * s->in_w;
          const int32_t x0 = kx * s->dilation_w - s->pad_left;
          for (int32_t ox = 0; ox < ow; ox++) {
            const int32_t ix = ox * s->stride_w + x0;
            dst[ox] = ix >= 0 && ix < s->in_w ? src[ix] : pad;
          }
        }
      }
}

static size_t dtype_size(int32_t dtype) {
  return dtype == PYRT_U8 || dtype == PYRT_S8 ? 1 : 4;
}

int pyrt_qconv2d(const pyrt_conv2d_shape *s, const void *packed, const void *x,
                 int32_t x_dtype, int32_t x_zero, const int32_t *bias,
                 const pyrt_output_stage *out, void *y) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (packed == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d: NULL buffer");
  int rc = conv_check("qconv2d", s, &dw, &gm, &gk);
  if (rc) return rc;
  if (x_dtype != PYRT_U8 && x_dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d: x must be U8 or S8");
  if (x_zero < (x_dtype == PYRT_U8 ? 0 : -128) ||
      x_zero > (x_dtype == PYRT_U8 ? 255 : 127))
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d: x zero point %d out of range",
                     x_zero);
  const conv_pack_header *h = (const conv_pack_header *)packed;
  if (h->magic != PYRT_CONV_MAGIC || h->isa != pyrt_isa_id() ||
      h->depthwise != dw || h->groups != s->groups ||
      (!dw && (h->group_m != gm || h->group_k != gk)))
    return pyrt_fail(PYRT_ERR_PACK,
                     "qconv2d: weights were packed for another shape or ISA");
  rc = pyrt_check_output_stage("qconv2d", out, s->out_c);
  if (rc) return rc;
  const char *body = (const char *)packed + header_size();
  if (dw) {
    rc = pyrt_check_pack("qconv2d", body, PYRT_PACK_DWCONV, s->out_c,
                         s->kernel_h * s->kernel_w);
    return rc ? rc
              : pyrt_kernels()->qdwconv(s, body, x, x_dtype, x_zero, bias, out,
                                        y);
  }
  const int32_t n = s->out_h * s->out_w;
  const int direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 &&
                     s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                     s->pad_bottom == 0 && s->pad_right == 0;
  uint8_t *col = NULL;
  if (!direct) {
    col = malloc((size_t)gk * (size_t)n);
    if (col == NULL) return pyrt_fail(PYRT_ERR_NOMEM, "qconv2d: out of memory");
  }
  const size_t in_plane = (size_t)s->in_h * (size_t)s->in_w;
  const size_t out_size = dtype_size(out->out_dtype);
  const int32_t cin = s->in_c / s->groups;
  for (int32_t b = 0; b < s->batch && rc == PYRT_OK; b++)
    for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
      const uint8_t *xg = (const uint8_t *)x +
                          ((size_t)b * s->in_c + (size_t)g * cin) * in_plane;
      if (!direct) im2col(s, xg, (uint8_t)x_zero, col);
      pyrt_output_stage stage = *out;
      if (out->per_channel && out->out_dtype != PYRT_S32)
        stage.scale = out->scale + (size_t)g * gm;
      const size_t y_at = ((size_t)b * s->out_c + (size_t)g * gm) * (size_t)n;
      rc = pyrt_kernels()->qgemm(gm, n, gk,
                                 body + (size_t)g * (size_t)h->group_bytes,
                                 direct ? (const void *)xg : col, x_dtype,
                                 x_zero, n, bias ? bias + (size_t)g * gm : NULL,
                                 &stage, (char *)y + y_at * out_size, n);
    }
  free(col);
  return rc;
}
