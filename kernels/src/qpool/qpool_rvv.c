/* RVV int8 pools with qpool.h's definitions: NHWC max / average / global
 * average vectorized over the channels, NCHW max over the output columns
 * (strided loads; the columns whose window crosses the border go one at a
 * time), NCHW global average with widening reductions. Sums are exact
 * integers (int32 lanes: at most 2^23 taps, else the scalar kernels); the
 * averages then take pyrt_pool_value's float steps (requant_rvv.h). NCHW
 * average pooling stays scalar.
 */
#include "qpool/qpool.h"
#include "requant/requant_rvv.h"

enum { MAX_TAPS = 1 << 23 }; /* 255 * taps fits int32 */

static void (*scalar_avgpool_nhwc)(const pyrt_pool2d_shape *s, const void *x,
                                   const pyrt_qparams *qx, void *y,
                                   const pyrt_qparams *qy, int64_t r0,
                                   int64_t r1);
static void (*scalar_globalavgpool_nhwc)(int64_t hw, int64_t ld, int64_t cols,
                                         const void *x, const pyrt_qparams *qx,
                                         void *y, const pyrt_qparams *qy);
static void (*scalar_globalavgpool)(int64_t rows, int64_t hw, const void *x,
                                    const pyrt_qparams *qx, void *y,
                                    const pyrt_qparams *qy);

/* Where tap (ky, kx) of window w reads channel 0 of image b (NHWC). */
static inline const char *tap(const pyrt_pool2d_shape *s, const char *x,
                              int64_t b, const pyrt_pool_window *w, int32_t ky,
                              int32_t kx) {
  const int64_t iy = w->y0 + (int64_t)ky * s->dilation_h;
  const int64_t ix = w->x0 + (int64_t)kx * s->dilation_w;
  return x + ((b * s->in_h + iy) * s->in_w + ix) * s->channels;
}

/* max of a and the vl codes at p, as u8 or s8 */
static inline vint8m8_t max8(vint8m8_t a, const char *p, int u8, size_t vl) {
  if (u8)
    return __riscv_vreinterpret_v_u8m8_i8m8(
        __riscv_vmaxu_vv_u8m8(__riscv_vreinterpret_v_i8m8_u8m8(a),
                              __riscv_vle8_v_u8m8((const uint8_t *)p, vl), vl));
  return __riscv_vmax_vv_i8m8(a, __riscv_vle8_v_i8m8((const int8_t *)p, vl),
                              vl);
}

static void maxpool_nhwc(const pyrt_pool2d_shape *s, const void *x,
                         int32_t dtype, void *y, int64_t r0, int64_t r1) {
  const int u8 = dtype == PYRT_U8;
  const int64_t C = s->channels;
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      char *out = (char *)y + (r * s->out_w + ox) * C;
      for (int64_t c = 0; c < C;) {
        const size_t vl = __riscv_vsetvl_e8m8((size_t)(C - c));
        vint8m8_t best = __riscv_vmv_v_x_i8m8(u8 ? 0 : -128, vl);
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++)
            best =
                max8(best, tap(s, (const char *)x, b, &w, ky, kx) + c, u8, vl);
        __riscv_vse8_v_i8m8((int8_t *)out + c, best, vl);
        c += (int64_t)vl;
      }
    }
}

/* sum of (x - zx) over vl channels at p, added to acc (int32 lanes) */
static inline vint32m8_t add_codes(vint32m8_t acc, const char *p, int u8,
                                   int32_t zx, size_t vl) {
  vint32m8_t v;
  if (u8)
    v = __riscv_vreinterpret_v_u32m8_i32m8(__riscv_vzext_vf4_u32m8(
        __riscv_vle8_v_u8m2((const uint8_t *)p, vl), vl));
  else
    v = __riscv_vsext_vf4_i32m8(__riscv_vle8_v_i8m2((const int8_t *)p, vl), vl);
  return __riscv_vadd_vv_i32m8(acc, __riscv_vsub_vx_i32m8(v, zx, vl), vl);
}

/* pyrt_pool_value on vl sums */
static inline void store_means(vint32m8_t sum, float m, const pyrt_qparams *qy,
                               char *y, size_t vl) {
  const int32_t lo = qy->dtype == PYRT_U8 ? 0 : -128;
  const vfloat32m8_t v =
      __riscv_vfmul_vf_f32m8(__riscv_vfcvt_f_x_v_f32m8(sum, vl), m, vl);
  __riscv_vse8_v_i8m2((int8_t *)y,
                      pyrt_rvv_round_codes(v, qy->zero_point, lo, lo + 255, vl),
                      vl);
}

static void avgpool_nhwc(const pyrt_pool2d_shape *s, const void *x,
                         const pyrt_qparams *qx, void *y,
                         const pyrt_qparams *qy, int64_t r0, int64_t r1) {
  if ((int64_t)s->kernel_h * s->kernel_w > MAX_TAPS) {
    scalar_avgpool_nhwc(s, x, qx, y, qy, r0, r1);
    return;
  }
  const int u8 = qx->dtype == PYRT_U8;
  const int64_t C = s->channels;
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      const float m = pyrt_pool_multiplier(qx, qy, w.count);
      char *out = (char *)y + (r * s->out_w + ox) * C;
      for (int64_t c = 0; c < C;) {
        const size_t vl = __riscv_vsetvl_e32m8((size_t)(C - c));
        vint32m8_t sum = __riscv_vmv_v_x_i32m8(0, vl);
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++)
            sum = add_codes(sum, tap(s, (const char *)x, b, &w, ky, kx) + c, u8,
                            qx->zero_point, vl);
        store_means(sum, m, qy, out + c, vl);
        c += (int64_t)vl;
      }
    }
}

static void globalavgpool_nhwc(int64_t hw, int64_t ld, int64_t cols,
                               const void *x, const pyrt_qparams *qx, void *y,
                               const pyrt_qparams *qy) {
  if (hw > MAX_TAPS) {
    scalar_globalavgpool_nhwc(hw, ld, cols, x, qx, y, qy);
    return;
  }
  const int u8 = qx->dtype == PYRT_U8;
  const float m = pyrt_pool_multiplier(qx, qy, hw);
  for (int64_t c = 0; c < cols;) {
    const size_t vl = __riscv_vsetvl_e32m8((size_t)(cols - c));
    vint32m8_t sum = __riscv_vmv_v_x_i32m8(0, vl);
    for (int64_t i = 0; i < hw; i++)
      sum =
          add_codes(sum, (const char *)x + i * ld + c, u8, qx->zero_point, vl);
    store_means(sum, m, qy, (char *)y + c, vl);
    c += (int64_t)vl;
  }
}

static void globalavgpool(int64_t rows, int64_t hw, const void *x,
                          const pyrt_qparams *qx, void *y,
                          const pyrt_qparams *qy) {
  if (hw > MAX_TAPS) {
    scalar_globalavgpool(rows, hw, x, qx, y, qy);
    return;
  }
  const float m = pyrt_pool_multiplier(qx, qy, hw);
  const float zy = (float)qy->zero_point;
  const size_t one = __riscv_vsetvlmax_e32m1();
  for (int64_t r = 0; r < rows; r++) {
    const char *p = (const char *)x + r * hw;
    vint32m1_t total = __riscv_vmv_v_x_i32m1(0, one);
    for (int64_t i = 0; i < hw;) {
      const size_t vl = __riscv_vsetvl_e8m4((size_t)(hw - i));
      if (qx->dtype == PYRT_U8)
        total =
            __riscv_vreinterpret_v_u32m1_i32m1(__riscv_vwredsumu_vs_u16m8_u32m1(
                __riscv_vzext_vf2_u16m8(
                    __riscv_vle8_v_u8m4((const uint8_t *)p + i, vl), vl),
                __riscv_vreinterpret_v_i32m1_u32m1(total), vl));
      else
        total = __riscv_vwredsum_vs_i16m8_i32m1(
            __riscv_vsext_vf2_i16m8(
                __riscv_vle8_v_i8m4((const int8_t *)p + i, vl), vl),
            total, vl);
      i += (int64_t)vl;
    }
    const int64_t sum = (int64_t)__riscv_vmv_x_s_i32m1_i32(total) -
                        (int64_t)qx->zero_point * hw;
    const int32_t v = pyrt_pool_value(sum, m, qy->dtype, zy);
    if (qy->dtype == PYRT_U8)
      ((uint8_t *)y)[r] = (uint8_t)v;
    else
      ((int8_t *)y)[r] = (int8_t)v;
  }
}

/* NCHW max: one output row of one plane. Columns [lo, hi) have every tap of
   their window inside the row: vectors of them with strided loads. */
static int32_t max_window(const char *plane, int u8, const pyrt_pool2d_shape *s,
                          const pyrt_pool_window *w) {
  int32_t best = INT32_MIN;
  for (int32_t ky = w->ky0; ky < w->ky1; ky++)
    for (int32_t kx = w->kx0; kx < w->kx1; kx++) {
      const char *p = plane + (w->y0 + (int64_t)ky * s->dilation_h) * s->in_w +
                      w->x0 + (int64_t)kx * s->dilation_w;
      const int32_t v = u8 ? *(const uint8_t *)p : *(const int8_t *)p;
      best = v > best ? v : best;
    }
  return best;
}

static void maxpool(const pyrt_pool2d_shape *s, const void *x, int32_t dtype,
                    void *y, int64_t r0, int64_t r1) {
  const int u8 = dtype == PYRT_U8;
  const int64_t in_plane = (int64_t)s->in_h * s->in_w;
  const int64_t sw = s->stride_w,
                span = (int64_t)(s->kernel_w - 1) * s->dilation_w;
  /* ox * sw - pad_left >= 0 and ox * sw - pad_left + span < in_w */
  int64_t lo = (s->pad_left + sw - 1) / sw;
  int64_t hi = s->in_w - 1 + s->pad_left - span < 0
                   ? 0
                   : (s->in_w - 1 + s->pad_left - span) / sw + 1;
  lo = lo > s->out_w ? s->out_w : lo;
  hi = hi > s->out_w ? s->out_w : hi < lo ? lo : hi;
  for (int64_t r = r0; r < r1; r++) {
    const char *plane = (const char *)x + r / s->out_h * in_plane;
    char *out = (char *)y + r * s->out_w;
    const int32_t oy = (int32_t)(r % s->out_h);
    for (int64_t ox = 0; ox < s->out_w; ox++) {
      if (ox == lo) ox = hi;
      if (ox >= s->out_w) break;
      const pyrt_pool_window w = pyrt_pool_window_at(s, oy, (int32_t)ox);
      out[ox] = (char)max_window(plane, u8, s, &w);
    }
    const pyrt_pool_window w = pyrt_pool_window_at(s, oy, (int32_t)lo);
    for (int64_t ox = lo; ox < hi;) {
      const size_t vl = __riscv_vsetvl_e8m8((size_t)(hi - ox));
      vint8m8_t best = __riscv_vmv_v_x_i8m8(u8 ? 0 : -128, vl);
      for (int32_t ky = w.ky0; ky < w.ky1; ky++) {
        const char *row =
            plane + (w.y0 + (int64_t)ky * s->dilation_h) * s->in_w;
        for (int32_t kx = 0; kx < s->kernel_w; kx++) {
          const char *p =
              row + ox * sw - s->pad_left + (int64_t)kx * s->dilation_w;
          const vint8m8_t v = __riscv_vlse8_v_i8m8((const int8_t *)p, sw, vl);
          best = u8 ? __riscv_vreinterpret_v_u8m8_i8m8(__riscv_vmaxu_vv_u8m8(
                          __riscv_vreinterpret_v_i8m8_u8m8(best),
                          __riscv_vreinterpret_v_i8m8_u8m8(v), vl))
                    : __riscv_vmax_vv_i8m8(best, v, vl);
        }
      }
      __riscv_vse8_v_i8m8((int8_t *)out + ox, best, vl);
      ox += (int64_t)vl;
    }
  }
}

void pyrt_qpool_init_rvv(pyrt_kernel_table *t) {
  scalar_avgpool_nhwc = t->qavgpool2d_nhwc; /* the level below's */
  scalar_globalavgpool_nhwc = t->qglobalavgpool_nhwc;
  scalar_globalavgpool = t->qglobalavgpool;
  t->qmaxpool2d = maxpool;
  t->qmaxpool2d_nhwc = maxpool_nhwc;
  t->qavgpool2d_nhwc = avgpool_nhwc;
  t->qglobalavgpool_nhwc = globalavgpool_nhwc;
  t->qglobalavgpool = globalavgpool;
}
