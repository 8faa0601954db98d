/* fp32 Conv2D (NCHW): im2col + sgemm per group, or a direct depthwise loop.
   Mirrors qconv/qconv.c so FP32 and INT8 models run the same way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PYRT_FCONV_MAGIC 0x46545250u /* "PRTF" */

typedef struct {
  uint32_t magic;
  int32_t isa;
  int32_t depthwise;
  int32_t groups;
  int32_t group_m, group_k;
  int64_t group_bytes;
} fconv_pack_header;

static size_t header_size(void) {
  return PYRT_ALIGN_UP(sizeof(fconv_pack_header));
}

static int fconv_check(const char *op, const pyrt_conv2d_shape *s,
                       int check_out, int32_t *dw, int32_t *gm, int32_t *gk) {
  if (s == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: shape is NULL", op);
  pyrt_conv2d_shape t = *s;
  int rc = pyrt_conv2d_infer(&t);
  if (rc) return rc;
  if (check_out && (t.out_h != s->out_h || t.out_w != s->out_w))
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: output is %dx%d, not %dx%d", op,
                     t.out_h, t.out_w, s->out_h, s->out_w);
  *dw = s->groups == s->in_c && s->out_c == s->in_c && s->groups > 1;
  *gm = s->out_c / s->groups;
  *gk = s->in_c / s->groups * s->kernel_h * s->kernel_w;
  return PYRT_OK;
}

size_t pyrt_conv2d_packed_size(const pyrt_conv2d_shape *s) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (fconv_check("conv2d_packed_size", s, 0, &dw, &gm, &gk)) return 0;
  if (dw)
    return header_size() +
           (size_t)s->out_c * (size_t)(s->kernel_h * s->kernel_w) * 4;
  return header_size() +
         (size_t)s->groups * PYRT_ALIGN_UP(pyrt_sgemm_packed_size(gm, gk));
}

int pyrt_conv2d_pack(const pyrt_conv2d_shape *s, const float *w, void *packed) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (w == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d_pack: NULL argument");
  int rc = fconv_check("conv2d_pack", s, 0, &dw, &gm, &gk);
  if (rc) return rc;
  fconv_pack_header *h = (fconv_pack_header *)packed;
  char *body = (char *)packed + header_size();
  const size_t bytes = PYRT_ALIGN_UP(pyrt_sgemm_packed_size(gm, gk));
  *h = (fconv_pack_header){
      PYRT_FCONV_MAGIC, pyrt_isa_id(), dw, s->groups, gm, gk, (int64_t)bytes};
  if (dw) {
    memcpy(body, w, (size_t)s->out_c * (size_t)(s->kernel_h * s->kernel_w) * 4);
    return PYRT_OK;
  }
  for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++)
    rc = pyrt_sgemm_pack(gm, gk, w + (size_t)g * (size_t)gm * (size_t)gk,
                         body + (size_t)g * bytes);
  return rc;
}

static void im2col_f32(const pyrt_conv2d_shape *s, const float *x, float *col) {
  const int32_t cin = s->in_c / s->groups, ow = s->out_w, oh = s->out_h;
  size_t k = 0;
  for (int32_t c = 0; c < cin; c++)
    for (int32_t ky = 0; ky < s->kernel_h; ky++)
      for (int32_t kx = 0; kx < s->kernel_w; kx++, k++) {
        float *dst = col + k * (size_t)oh * (size_t)ow;
        for (int32_t oy = 0; oy < oh; oy++, dst += ow) {
          const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
          const float *src =
              x + ((size_t)c * s->in_h + (size_t)(iy < 0 ? 0 : iy)) * s->in_w;
          const int32_t x0 = kx * s->dilation_w - s->pad_left;
          for (int32_t ox = 0; ox < ow; ox++) {
            const int32_t ix = ox * s->stride_w + x0;
            dst[ox] = iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w
                          ? src[ix]
                          : 0.0f;
          }
        }
      }
}

static void depthwise_f32(const pyrt_conv2d_shape *s, const float *w,
                          const float *x, const float *bias, float lo, float hi,
                          float *y) {
  const int32_t taps = s->kernel_h * s->kernel_w;
  for (int32_t b = 0; b < s->batch; b++)
    for (int32_t c = 0; c < s->in_c; c++) {
      const size_t plane = (size_t)b * (size_t)s->in_c + (size_t)c;
      const float *xc = x + plane * (size_t)s->in_h * (size_t)s->in_w;
      const float *wc = w + (size_t)c * (size_t)taps;
      float *yc = y + plane * (size_t)s->out_h * (size_t)s->out_w;
      for (int32_t oy = 0; oy < s->out_h; oy++)
        for (int32_t ox = 0; ox < s->out_w; ox++) {
          float acc = 0.0f;
          for (int32_t ky = 0; ky < s->kernel_h; ky++) {
            const int32_t iy =
                oy * s->stride_h - s->pad_top + ky * s->dilation_h;
            if (iy < 0 || iy >= s->in_h) continue;
            for (int32_t kx = 0; kx < s->kernel_w; kx++) {
              const int32_t ix =
                  ox * s->stride_w - s->pad_left + kx * s->dilation_w;
              if (ix < 0 || ix >= s->in_w) continue;
              acc += wc[ky * s->kernel_w + kx] * xc[(size_t)iy * s->in_w + ix];
            }
          }
          float v = acc + (bias ? bias[c] : 0.0f);
          v = v < lo ? lo : v;
          yc[(size_t)oy * s->out_w + ox] = v > hi ? hi : v;
        }
    }
}

int pyrt_conv2d(const pyrt_conv2d_shape *s, const void *packed, const float *x,
                const float *bias, float lo, float hi, float *y) {
  int32_t dw = 0, gm = 0, gk = 0;
  if (packed == NULL || x == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d: NULL buffer");
  int rc = fconv_check("conv2d", s, 1, &dw, &gm, &gk);
  if (rc) return rc;
  if (isnan(lo) || isnan(hi) || lo > hi)
    return pyrt_fail(PYRT_ERR_ARG, "conv2d: clamp is not a range");
  const fconv_pack_header *h = (const fconv_pack_header *)packed;
  if (h->magic != PYRT_FCONV_MAGIC || h->isa != pyrt_isa_id() ||
      h->depthwise != dw || h->groups != s->groups || h->group_m != gm ||
      h->group_k != gk)
    return pyrt_fail(PYRT_ERR_PACK,
                     "conv2d: weights were packed for another shape or ISA");
  const char *body = (const char *)packed + header_size();
  if (dw) {
    depthwise_f32(s, (const float *)body, x, bias, lo, hi, y);
    return PYRT_OK;
  }
  const int32_t n = s->out_h * s->out_w;
  const int direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 &&
                     s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                     s->pad_bottom == 0 && s->pad_right == 0;
  float *col = NULL;
  if (!direct) {
    col = malloc((size_t)gk * (size_t)n * sizeof(float));
    if (col == NULL) return pyrt_fail(PYRT_ERR_NOMEM, "conv2d: out of memory");
  }
  const size_t in_plane = (size_t)s->in_h * (size_t)s->in_w;
  const int32_t cin = s->in_c / s->groups;
  for (int32_t b = 0; b < s->batch && rc == PYRT_OK; b++)
    for (int32_t g = 0; g < s->groups && rc == PYRT_OK; g++) {
      const float *xg = x + ((size_t)b * s->in_c + (size_t)g * cin) * in_plane;
      if (!direct) im2col_f32(s, xg, col);
      rc = pyrt_sgemm(gm, n, gk, body + (size_t)g * (size_t)h->group_bytes,
                      direct ? xg : col, n, bias ? bias + (size_t)g * gm : NULL,
                      lo, hi, y + ((size_t)b * s->out_c + (size_t)g * gm) * n,
                      n);
    }
  free(col);
  return rc;
}
