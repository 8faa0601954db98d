/* AVX2 int8 pools: NHWC max / average / global average vectorized over the
 * channels (16 or 32 per step), NCHW global average over each row with
 * vpsadbw. Sums are exact integers (int16 lanes over up to 255 taps, then
 * int32 lanes: at most 2^23 taps, else the scalar code); then qpool.h's
 * float requantization, step for step.
 * Channels past the last whole vector go through the same definition one
 * at a time.
 */
#include <immintrin.h>

#include "qpool/qpool.h"

enum { MAX_TAPS = 1 << 23 }; /* 255 * taps fits int32 */

static inline int32_t code(const char *p, int u8) {
  return u8 ? *(const uint8_t *)p : *(const int8_t *)p;
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
  const int64_t C = s->channels, body = C / 32 * 32;
  const __m256i low = _mm256_set1_epi8(u8 ? 0 : -128);
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      char *out = (char *)y + (r * s->out_w + ox) * C;
      for (int64_t c = 0; c < body; c += 32) {
        __m256i best = low;
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++) {
            const __m256i v = _mm256_loadu_si256(
                (const __m256i *)(tap(s, (const char *)x, b, &w, ky, kx) + c));
            best = u8 ? _mm256_max_epu8(best, v) : _mm256_max_epi8(best, v);
          }
        _mm256_storeu_si256((__m256i *)(out + c), best);
      }
      for (int64_t c = body; c < C; c++) {
        int32_t best = INT32_MIN;
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++) {
            const int32_t v =
                code(tap(s, (const char *)x, b, &w, ky, kx) + c, u8);
            best = v > best ? v : best;
          }
        out[c] = (char)best;
      }
    }
}

/* Exact sums of 16 channels: int16 lanes over at most 255 taps (255 * 255
   fits u16, 255 * -128 s16), then added into int32 lanes lo (channels 0-7)
   and hi. */
typedef struct {
  __m256i s16, lo, hi;
  int32_t n;
} sum16;

static inline void sum16_init(sum16 *s) {
  s->s16 = s->lo = s->hi = _mm256_setzero_si256();
  s->n = 0;
}

static inline void sum16_flush(sum16 *s, int u8) {
  const __m128i l = _mm256_castsi256_si128(s->s16);
  const __m128i h = _mm256_extracti128_si256(s->s16, 1);
  s->lo = _mm256_add_epi32(
      s->lo, u8 ? _mm256_cvtepu16_epi32(l) : _mm256_cvtepi16_epi32(l));
  s->hi = _mm256_add_epi32(
      s->hi, u8 ? _mm256_cvtepu16_epi32(h) : _mm256_cvtepi16_epi32(h));
  s->s16 = _mm256_setzero_si256();
  s->n = 0;
}

static inline void sum16_add(sum16 *s, const char *p, int u8) {
  const __m128i v = _mm_loadu_si128((const __m128i *)p);
  s->s16 = _mm256_add_epi16(
      s->s16, u8 ? _mm256_cvtepu8_epi16(v) : _mm256_cvtepi8_epi16(v));
  if (++s->n == 255) sum16_flush(s, u8);
}

/* pyrt_pool_value of 16 int32 sums of (x - zx) into 16 codes at out. */
static inline void store16(__m256i lo, __m256i hi, __m256 m, __m256 zy,
                           int u8_out, char *out) {
  const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m256 qlo = _mm256_set1_ps(u8_out ? 0.0f : -128.0f);
  const __m256 qhi = _mm256_set1_ps(u8_out ? 255.0f : 127.0f);
  __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(lo), m);
  __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(hi), m);
  f0 = _mm256_add_ps(_mm256_round_ps(f0, rn), zy);
  f1 = _mm256_add_ps(_mm256_round_ps(f1, rn), zy);
  f0 = _mm256_min_ps(_mm256_max_ps(f0, qlo), qhi);
  f1 = _mm256_min_ps(_mm256_max_ps(f1, qlo), qhi);
  const __m256i w = _mm256_permute4x64_epi64(
      _mm256_packs_epi32(_mm256_cvtps_epi32(f0), _mm256_cvtps_epi32(f1)), 0xD8);
  const __m128i wl = _mm256_castsi256_si128(w);
  const __m128i wh = _mm256_extracti128_si256(w, 1);
  _mm_storeu_si128((__m128i *)out,
                   u8_out ? _mm_packus_epi16(wl, wh) : _mm_packs_epi16(wl, wh));
}

static void avgpool_nhwc(const pyrt_pool2d_shape *s, const void *x,
                         const pyrt_qparams *qx, void *y,
                         const pyrt_qparams *qy, int64_t r0, int64_t r1) {
  if ((int64_t)s->kernel_h * s->kernel_w > MAX_TAPS) {
    pyrt_qavgpool2d_nhwc_scalar(s, x, qx, y, qy, r0, r1);
    return;
  }
  const int u8 = qx->dtype == PYRT_U8, u8_out = qy->dtype == PYRT_U8;
  const int64_t C = s->channels, body = C / 16 * 16;
  const __m256 zy = _mm256_set1_ps((float)qy->zero_point);
  for (int64_t r = r0; r < r1; r++)
    for (int32_t ox = 0; ox < s->out_w; ox++) {
      const int64_t b = r / s->out_h;
      const pyrt_pool_window w =
          pyrt_pool_window_at(s, (int32_t)(r % s->out_h), ox);
      const float m = pyrt_pool_multiplier(qx, qy, w.count);
      const int32_t taps = (w.ky1 - w.ky0) * (w.kx1 - w.kx0);
      const __m256i corr = _mm256_set1_epi32(taps * qx->zero_point);
      const __m256 vm = _mm256_set1_ps(m);
      char *out = (char *)y + (r * s->out_w + ox) * C;
      for (int64_t c = 0; c < body; c += 16) {
        sum16 sum;
        sum16_init(&sum);
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++)
            sum16_add(&sum, tap(s, (const char *)x, b, &w, ky, kx) + c, u8);
        sum16_flush(&sum, u8);
        store16(_mm256_sub_epi32(sum.lo, corr), _mm256_sub_epi32(sum.hi, corr),
                vm, zy, u8_out, out + c);
      }
      for (int64_t c = body; c < C; c++) {
        int64_t sum = 0;
        for (int32_t ky = w.ky0; ky < w.ky1; ky++)
          for (int32_t kx = w.kx0; kx < w.kx1; kx++)
            sum += code(tap(s, (const char *)x, b, &w, ky, kx) + c, u8) -
                   qx->zero_point;
        out[c] =
            (char)pyrt_pool_value(sum, m, qy->dtype, (float)qy->zero_point);
      }
    }
}

static void globalavgpool_nhwc(int64_t hw, int64_t ld, int64_t cols,
                               const void *x, const pyrt_qparams *qx, void *y,
                               const pyrt_qparams *qy) {
  const int64_t body = hw > MAX_TAPS ? 0 : cols / 16 * 16;
  const int u8 = qx->dtype == PYRT_U8, u8_out = qy->dtype == PYRT_U8;
  const __m256 vm = _mm256_set1_ps(pyrt_pool_multiplier(qx, qy, hw));
  const __m256 zy = _mm256_set1_ps((float)qy->zero_point);
  const __m256i corr =
      _mm256_set1_epi32((int32_t)(body ? hw : 0) * qx->zero_point);
  for (int64_t c = 0; c < body; c += 16) {
    sum16 sum;
    sum16_init(&sum);
    for (int64_t i = 0; i < hw; i++)
      sum16_add(&sum, (const char *)x + i * ld + c, u8);
    sum16_flush(&sum, u8);
    store16(_mm256_sub_epi32(sum.lo, corr), _mm256_sub_epi32(sum.hi, corr), vm,
            zy, u8_out, (char *)y + c);
  }
  if (body < cols)
    pyrt_qglobalavgpool_nhwc_scalar(hw, ld, cols - body, (const char *)x + body,
                                    qx, (char *)y + body, qy);
}

/* NCHW: each row's codes summed 32 at a time by vpsadbw (s8 flipped to u8,
   +128 each, taken off after). */
static void globalavgpool(int64_t rows, int64_t hw, const void *x,
                          const pyrt_qparams *qx, void *y,
                          const pyrt_qparams *qy) {
  const int u8 = qx->dtype == PYRT_U8;
  const float m = pyrt_pool_multiplier(qx, qy, hw);
  const float zy = (float)qy->zero_point;
  const int64_t body = hw / 32 * 32;
  const __m256i flip = _mm256_set1_epi8(u8 ? 0 : -128);
  for (int64_t r = 0; r < rows; r++) {
    const char *p = (const char *)x + r * hw;
    __m256i acc = _mm256_setzero_si256();
    for (int64_t i = 0; i < body; i += 32) {
      const __m256i v =
          _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)), flip);
      acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, _mm256_setzero_si256()));
    }
    const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(acc),
                                    _mm256_extracti128_si256(acc, 1));
    int64_t sum = _mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1);
    if (!u8) sum -= 128 * body;
    for (int64_t i = body; i < hw; i++) sum += code(p + i, u8);
    sum -= hw * qx->zero_point;
    const int32_t v = pyrt_pool_value(sum, m, qy->dtype, zy);
    ((char *)y)[r] = (char)v;
  }
}

void pyrt_qpool_init_avx2(pyrt_kernel_table *t) {
  t->qmaxpool2d_nhwc = maxpool_nhwc;
  t->qavgpool2d_nhwc = avgpool_nhwc;
  t->qglobalavgpool_nhwc = globalavgpool_nhwc;
  t->qglobalavgpool = globalavgpool;
}
