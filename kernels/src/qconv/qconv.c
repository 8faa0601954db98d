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
  if (s == NULL || w == NULL || packed == NULL)
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
      dw ? 0 : PYRT_ALIGN_UP(pyrt_pack_int8_size(PYRT_PACK_GEMM, gm, gk));
  /* The magic goes in last, so a failed pack is never mistaken for one. */
  *h = (conv_pack_header){0,
                          pyrt_isa_id(),
                          dw,
                          s->groups,
                          dw ? s->out_c : gm,
                          dw ? taps : gk,
                          (int64_t)bytes};
  if (dw) {
    rc = pyrt_pack_int8("qconv2d_pack", PYRT_PACK_DWCONV, s->out_c, taps, w,
                        w_dtype, w_zero, w_zero_per_channel, body);
  } else {
    for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
      const char *wg = (const char *)w + (size_t)g * (size_t)gm * (size_t)gk;
      const int32_t *zg = w_zero && w_zero_per_channel
                              ? w_zero + (size_t)g * (size_t)gm
                              : w_zero;
      rc = pyrt_pack_int8("qconv2d_pack", PYRT_PACK_GEMM, gm, gk, wg, w_dtype,
                          zg, w_zero_per_channel, body + (size_t)g * bytes);
    }
  }
  if (rc == PYRT_OK) h->magic = PYRT_CONV_MAGIC;
  return rc;
}

/* First and one-past-last output index whose input index o * stride + off
   lies in [0, in); the rest of [0, out) reads padding. */
static void valid_range(int32_t out, int32_t in, int32_t stride, int32_t off,
                        int32_t *lo, int32_t *hi) {
  const int32_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  const int32_t b = in - off <= 0 ? 0 : (in - off - 1) / stride + 1;
  *lo = a < out ? a : out;
  *hi = b < out ? b : out;
  if (*hi < *lo) *hi = *lo;
}

/* col[k][(oy - oy0) * out_w + ox] for k = (c, ky, kx) and output rows
   [oy0, oy1); taps in the padding read `pad` (x_zero). Bytes are copied as
   is, which serves u8 and s8 alike. */
static void im2col(const pyrt_conv2d_shape *s, const uint8_t *x, uint8_t pad,
                   int32_t oy0, int32_t oy1, uint8_t *col) {
  const int32_t cin = s->in_c / s->groups, ow = s->out_w;
  uint8_t *dst = col;
  for (int32_t c = 0; c < cin; c++)
    for (int32_t ky = 0; ky < s->kernel_h; ky++)
      for (int32_t kx = 0; kx < s->kernel_w; kx++) {
        const int32_t x0 = kx * s->dilation_w - s->pad_left;
        int32_t lo, hi;
        valid_range(ow, s->in_w, s->stride_w, x0, &lo, &hi);
        for (int32_t oy = oy0; oy < oy1; oy++, dst += ow) {
          const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
          if (iy < 0 || iy >= s->in_h) {
            memset(dst, pad, (size_t)ow);
            continue;
          }
          const uint8_t *src =
              x + ((size_t)c * (size_t)s->in_h + (size_t)iy) * (size_t)s->in_w;
          memset(dst, pad, (size_t)lo);
          if (s->stride_w == 1) {
            if (hi > lo) memcpy(dst + lo, src + (lo + x0), (size_t)(hi - lo));
          } else {
            for (int32_t ox = lo; ox < hi; ox++)
              dst[ox] = src[ox * s->stride_w + x0];
          }
          memset(dst + hi, pad, (size_t)(ow - hi));
        }
      }
}

static size_t dtype_size(int32_t dtype) {
  return dtype == PYRT_U8 || dtype == PYRT_S8 ? 1 : 4;
}

/* im2col works on bands of whole output rows, about COL_TILE_BYTES (so the
   band is still in L2 when the GEMM reads it, and large images need no
   K x out_h*out_w buffer) but at least COL_MIN_COLS columns (short GEMMs
   waste the microkernel's column blocks). */
enum { COL_TILE_BYTES = 256 * 1024, COL_MIN_COLS = 256 };
/* The im2col band never exceeds this; a single output row that does
   (pathological shapes) is refused. */
#define PYRT_MAX_COL_BYTES ((int64_t)1 << 31)

int pyrt_qconv2d(const pyrt_conv2d_shape *s, const void *packed, const void *x,
                 int32_t x_dtype, int32_t x_zero, const int32_t *bias,
                 const pyrt_output_stage *out, void *y) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (packed == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qconv2d: NULL buffer");
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
  if (h->isa != pyrt_isa_id())
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
  if (dw) {
    rc = pyrt_check_pack("qconv2d", body, PYRT_PACK_DWCONV, s->out_c,
                         s->kernel_h * s->kernel_w);
    return rc ? rc
              : pyrt_kernels()->qdwconv(s, body, x, x_dtype, x_zero, bias, out,
                                        y);
  }
  for (int32_t g = 0; g < s->groups; g++) {
    rc = pyrt_check_pack("qconv2d", body + (size_t)g * (size_t)h->group_bytes,
                         PYRT_PACK_GEMM, gm, gk);
    if (rc) return rc;
  }
  const int32_t oh = s->out_h, ow = s->out_w, n = oh * ow;
  /* 1x1, stride 1, no pad: the input planes already are X[K][H*W]. */
  const int direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 &&
                     s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                     s->pad_bottom == 0 && s->pad_right == 0;
  int32_t band = oh; /* output rows per im2col band */
  uint8_t *col = NULL;
  if (!direct) {
    const int64_t row_bytes = (int64_t)gk * ow;
    if (row_bytes > PYRT_MAX_COL_BYTES)
      return pyrt_fail(PYRT_ERR_SHAPE,
                       "qconv2d: %d x %d im2col rows are too large", gk, ow);
    int64_t rows = COL_TILE_BYTES / row_bytes;
    const int64_t min_rows = (COL_MIN_COLS + ow - 1) / ow;
    if (rows < min_rows) rows = min_rows;
    if (rows > PYRT_MAX_COL_BYTES / row_bytes)
      rows = PYRT_MAX_COL_BYTES / row_bytes; /* >= 1 after the check above */
    band = rows < oh ? (int32_t)rows : oh;
    col = malloc((size_t)row_bytes * (size_t)band);
    if (col == NULL) return pyrt_fail(PYRT_ERR_NOMEM, "qconv2d: out of memory");
  }
  const size_t in_plane = (size_t)s->in_h * (size_t)s->in_w;
  const size_t out_size = dtype_size(out->out_dtype);
  const int32_t cin = s->in_c / s->groups;
  const pyrt_kernel_table *t = pyrt_kernels();
  for (int32_t b = 0; b < s->batch && rc == PYRT_OK; b++)
    for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
      const uint8_t *xg = (const uint8_t *)x +
                          ((size_t)b * s->in_c + (size_t)g * cin) * in_plane;
      const void *wg = body + (size_t)g * (size_t)h->group_bytes;
      const int32_t *bg = bias ? bias + (size_t)g * gm : NULL;
      pyrt_output_stage stage = *out; /* this group's channels */
      if (out->per_channel && out->out_dtype != PYRT_S32)
        stage.scale = out->scale + (size_t)g * gm;
      char *yg = (char *)y +
                 ((size_t)b * s->out_c + (size_t)g * gm) * (size_t)n * out_size;
      if (direct) {
        rc = t->qgemm(gm, n, gk, wg, xg, x_dtype, x_zero, n, bg, &stage, yg, n);
        continue;
      }
      for (int32_t oy0 = 0; oy0 < oh && rc == PYRT_OK; oy0 += band) {
        const int32_t oy1 = oh - oy0 < band ? oh : oy0 + band;
        const int32_t tn = (oy1 - oy0) * ow;
        im2col(s, xg, (uint8_t)x_zero, oy0, oy1, col);
        rc = t->qgemm(gm, tn, gk, wg, col, x_dtype, x_zero, tn, bg, &stage,
                      yg + (size_t)oy0 * (size_t)ow * out_size, n);
      }
    }
  free(col);
  return rc;
}
