/* AVX-512 int8 pools: NHWC max over 64 channels per vector, NHWC average /
 * global average over 32 channels per int16 vector, channel tails masked,
 * NCHW global average over each row with vpsadbw. Sums are exact integers
 * (int16 lanes over up to 255 taps, then int32 lanes: at most 2^23 taps,
 * else the scalar code); then qpool.h's float requantization, step for
 * step.
 */
#include <immintrin.h>

#include "qpool/qpool.h"

enum { MAX_TAPS = 1 << 23 }; /* 255 * taps fits int32 */

static inline __mmask64 mask64(int64_t left) {
  return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
}
static inline __mmask16 mask16(int64_t left) {
  if (left <= 0) return 0;
  return (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
}

/* Where tap (ky, kx) of window w reads channel 0 of image b. */
static inline const char *tap(const pyrt_pool2d_shape *s, const char *x,
                              int64_t b, const pyrt_pool_window *w, int32_t ky,
                              int32_t kx) {
  const int64_t iy = w->y0 + (int64_t)ky * s->dilation_h;
  const int64_t ix = w->x0 + (int64_t)kx * s->dilation_w;
  return x + ((b * s->in_h + iy) * s->in_w + ix) * s->channels;
}

static void maxpool_nhwc(const pyrt_pool2d_shape *s, const void *x,
                         int32_t dtype, void *y, int64_t r0, int64_t r1) {
  const int u8 = dtype == PYRT_U8;
  const int64_t C = s->channels;
  const __m512i low = _mm512_set1_epi8(u8 ? 0 : -128);
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      char *out = (char *)y + (r * s->out_w + ox) * C;
      for (int64_t c = 0; c < C; c += 64) {
        const __mmask64 m = mask64(C - c);
        __m512i best = low;
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++) {
            const __m512i v = _mm512_maskz_loadu_epi8(
                m, tap(s, (const char *)x, b, &w, ky, kx) + c);
            best = u8 ? _mm512_max_epu8(best, v) : _mm512_max_epi8(best, v);
          }
        _mm512_mask_storeu_epi8(out + c, m, best);
      }
    }
}

static inline __mmask32 mask32(int64_t left) {
  if (left <= 0) return 0;
  return (__mmask32)(left >= 32 ? 0xFFFFFFFFu : (1u << left) - 1);
}

/* Exact sums of 32 (masked) channels: int16 lanes over at most 255 taps
   (255 * 255 fits u16, 255 * -128 s16), then added into int32 lanes lo
   (channels 0-15) and hi. */
typedef struct {
  __m512i s16, lo, hi;
  int32_t n;
} sum32;

static inline void sum32_init(sum32 *s) {
  s->s16 = s->lo = s->hi = _mm512_setzero_si512();
  s->n = 0;
}

static inline void sum32_flush(sum32 *s, int u8) {
  const __m256i l = _mm512_castsi512_si256(s->s16);
  const __m256i h = _mm512_extracti64x4_epi64(s->s16, 1);
  s->lo = _mm512_add_epi32(
      s->lo, u8 ? _mm512_cvtepu16_epi32(l) : _mm512_cvtepi16_epi32(l));
  s->hi = _mm512_add_epi32(
      s->hi, u8 ? _mm512_cvtepu16_epi32(h) : _mm512_cvtepi16_epi32(h));
  s->s16 = _mm512_setzero_si512();
  s->n = 0;
}

static inline void sum32_add(sum32 *s, const char *p, __mmask32 k, int u8) {
  const __m256i v = _mm256_maskz_loadu_epi8(k, p);
  s->s16 = _mm512_add_epi16(
      s->s16, u8 ? _mm512_cvtepu8_epi16(v) : _mm512_cvtepi8_epi16(v));
  if (++s->n == 255) sum32_flush(s, u8);
}

/* pyrt_pool_value of 16 int32 sums of (x - zx) into the masked codes at
   out. */
static inline void store16(__m512i sum, __m512 m, __m512 zy, int u8_out,
                           __mmask16 k, char *out) {
  const __m512 qlo = _mm512_set1_ps(u8_out ? 0.0f : -128.0f);
  const __m512 qhi = _mm512_set1_ps(u8_out ? 255.0f : 127.0f);
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), m);
  f = _mm512_add_ps(
      _mm512_roundscale_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
      zy);
  const __m512i q =
      _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(f, qlo), qhi));
  if (u8_out)
    _mm_mask_storeu_epi8(out, k, _mm512_cvtusepi32_epi8(q));
  else
    _mm_mask_storeu_epi8(out, k, _mm512_cvtsepi32_epi8(q));
}

static void avgpool_nhwc(const pyrt_pool2d_shape *s, const void *x,
                         const pyrt_qparams *qx, void *y,
                         const pyrt_qparams *qy, int64_t r0, int64_t r1) {
  if ((int64_t)s->kernel_h * s->kernel_w > MAX_TAPS) {
    pyrt_qavgpool2d_nhwc_scalar(s, x, qx, y, qy, r0, r1);
    return;
  }
  const int u8 = qx->dtype == PYRT_U8, u8_out = qy->dtype == PYRT_U8;
  const int64_t C = s->channels;
  const __m512 zy = _mm512_set1_ps((float)qy->zero_point);
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      const __m512 m = _mm512_set1_ps(pyrt_pool_multiplier(qx, qy, w.count));
      const int32_t taps = (w.ky1 - w.ky0) * (w.kx1 - w.kx0);
      const __m512i corr = _mm512_set1_epi32(taps * qx->zero_point);
      char *out = (char *)y + (r * s->out_w + ox) * C;
      for (int64_t c = 0; c < C; c += 32) {
        const __mmask32 k = mask32(C - c);
        sum32 sum;
        sum32_init(&sum);
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++)
            sum32_add(&sum, tap(s, (const char *)x, b, &w, ky, kx) + c, k, u8);
        sum32_flush(&sum, u8);
        store16(_mm512_sub_epi32(sum.lo, corr), m, zy, u8_out, mask16(C - c),
                out + c);
        store16(_mm512_sub_epi32(sum.hi, corr), m, zy, u8_out,
                mask16(C - c - 16), out + c + 16);
      }
    }
}

static void globalavgpool_nhwc(int64_t hw, int64_t ld, int64_t cols,
                               const void *x, const pyrt_qparams *qx, void *y,
                               const pyrt_qparams *qy) {
  if (hw > MAX_TAPS) {
    pyrt_qglobalavgpool_nhwc_scalar(hw, ld, cols, x, qx, y, qy);
    return;
  }
  const int u8 = qx->dtype == PYRT_U8, u8_out = qy->dtype == PYRT_U8;
  const __m512 m = _mm512_set1_ps(pyrt_pool_multiplier(qx, qy, hw));
  const __m512 zy = _mm512_set1_ps((float)qy->zero_point);
  const __m512i corr = _mm512_set1_epi32((int32_t)hw * qx->zero_point);
  for (int64_t c = 0; c < cols; c += 64) {
    sum32 sum[2];
    const __mmask32 k[2] = {mask32(cols - c), mask32(cols - c - 32)};
    sum32_init(&sum[0]);
    sum32_init(&sum[1]);
    for (int64_t i = 0; i < hw; i++) {
      const char *p = (const char *)x + i * ld + c;
      sum32_add(&sum[0], p, k[0], u8);
      sum32_add(&sum[1], p + 32, k[1], u8);
    }
    for (int q = 0; q < 2; q++) {
      sum32_flush(&sum[q], u8);
      char *out = (char *)y + c + 32 * q;
      store16(_mm512_sub_epi32(sum[q].lo, corr), m, zy, u8_out,
              mask16(cols - c - 32 * q), out);
      store16(_mm512_sub_epi32(sum[q].hi, corr), m, zy, u8_out,
              mask16(cols - c - 32 * q - 16), out + 16);
    }
  }
}

/* NCHW: each row's codes summed 64 at a time by vpsadbw (s8 flipped to u8,
   +128 each, taken off after). */
static void globalavgpool(int64_t rows, int64_t hw, const void *x,
                          const pyrt_qparams *qx, void *y,
                          const pyrt_qparams *qy) {
  const int u8 = qx->dtype == PYRT_U8;
  const float m = pyrt_pool_multiplier(qx, qy, hw);
  const float zy = (float)qy->zero_point;
  const __m512i flip = _mm512_set1_epi8(u8 ? 0 : -128);
  for (int64_t r = 0; r < rows; r++) {
    const char *p = (const char *)x + r * hw;
    __m512i acc = _mm512_setzero_si512();
    for (int64_t i = 0; i < hw; i += 64) {
      const __mmask64 k = mask64(hw - i);
      const __m512i v = _mm512_maskz_mov_epi8(
          k, _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, p + i), flip));
      acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, _mm512_setzero_si512()));
    }
    int64_t sum = _mm512_reduce_add_epi64(acc);
    if (!u8) sum -= 128 * hw;
    sum -= hw * qx->zero_point;
    ((char *)y)[r] = (char)pyrt_pool_value(sum, m, qy->dtype, zy);
  }
}

void pyrt_qpool_init_avx512vnni(pyrt_kernel_table *t) {
  t->qmaxpool2d_nhwc = maxpool_nhwc;
  t->qavgpool2d_nhwc = avgpool_nhwc;
  t->qglobalavgpool_nhwc = globalavgpool_nhwc;
  t->qglobalavgpool = globalavgpool;
}
