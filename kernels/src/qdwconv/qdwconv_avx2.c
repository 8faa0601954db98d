/* AVX2 depthwise Conv2D, NHWC, 16 channels per pair of ymm (XNNPACK's
 * unipass dwconv with an indirection table).
 *
 * Exact int32 arithmetic, two taps per int32 lane: the bytes of taps t and
 * t + 1 are interleaved per channel and widened to 16 bits (x in [0, 255],
 * or [-128, 127] for s8), w' = w - w_zero (in [-255, 255]) is packed as the
 * matching int16 pair, and vpmaddwd gives x_t w'_t + x_t+1 w'_t+1 per
 * channel (|.| < 2^17, no saturation), vpaddd accumulating and wrapping
 * like the reference; an odd last tap pairs with a zero weight. The
 * widened halves keep the channels in order (lanes 0-7, 8-15). The
 * activation zero point is folded out:
 *   sum_t (x_t - x_zero) w'_t = sum_t x_t w'_t - x_zero * sum_t w'_t
 * and a tap in the padding reads a row of x_zero bytes (adding exactly the
 * x_zero w'_t the correction removes), so per output pixel the taps are
 * one table of row pointers and the channel loop has no branches; PX
 * pixels of a row go together and share each weight load. s8 activations
 * are sign-extended with their own zero point (no flip).
 *
 * Block: int32 wsum[CP] (sum_t w'_t) | int16 pairs w'[CP / 16][P][16][2],
 * P = ceil(taps / 2), CP = C rounded up to 16, zero-padded. Scratch: the tap
 * pointers, base[CP] (bias minus the zero-point term) and the row of x_zero
 * bytes.
 */
#include <string.h>

#include "requant/requant_avx2.h"

enum { VL = 16, PX = 4 };

static int32_t padded(int32_t channels) {
  return (channels + VL - 1) / VL * VL;
}

static int32_t pairs(int32_t taps) {
  return (taps + 1) / 2;
}

/* Tap pairs; with 9 taps also the 3x3 column layout (see col_rows). */
static size_t weights_size(int32_t channels, int32_t taps) {
  return (size_t)padded(channels) *
         ((size_t)pairs(taps) + 1 + (taps == 9) * 12) * 4;
}

static void pack(int32_t channels, int32_t taps, const int8_t *w_s8,
                 const int32_t *w_zero, void *dst) {
  const int32_t cp = padded(channels), P = pairs(taps);
  uint32_t *wsum = (uint32_t *)dst;
  int16_t *w = (int16_t *)(wsum + cp);
  memset(dst, 0, weights_size(channels, taps));
  for (int32_t c = 0; c < channels; c++)
    for (int32_t t = 0; t < taps; t++) {
      const int32_t v = w_s8[(size_t)c * taps + t] - w_zero[c];
      w[(((size_t)(c / VL) * P + t / 2) * VL + c % VL) * 2 + t % 2] =
          (int16_t)v;
      wsum[c] += (uint32_t)v;
    }
  if (taps != 9) return;
  /* 3x3 columns: [C / 16][kx][4][16][2] pairs, for rows (0, 1) and (2, 3)
     of a column: upper output row (w0, w1), (w2, 0); lower (0, w0),
     (w1, w2), w_ky = the tap (ky, kx) */
  int16_t *wc = w + (size_t)cp * P * 2;
  for (int32_t c = 0; c < channels; c++)
    for (int32_t kx = 0; kx < 3; kx++) {
      int16_t t[3];
      for (int32_t ky = 0; ky < 3; ky++)
        t[ky] = (int16_t)(w_s8[(size_t)c * taps + 3 * ky + kx] - w_zero[c]);
      const int16_t v[4][2] = {
          {t[0], t[1]}, {t[2], 0}, {0, t[0]}, {t[1], t[2]}};
      for (int32_t q = 0; q < 4; q++)
        for (int32_t i = 0; i < 2; i++)
          wc[((((size_t)(c / VL) * 3 + kx) * 4 + q) * VL + c % VL) * 2 + i] =
              v[q][i];
    }
}

static size_t scratch_size(const pyrt_conv2d_shape *s) {
  const size_t taps = (size_t)s->kernel_h * (size_t)s->kernel_w;
  return PYRT_ALIGN_UP(PX * taps * sizeof(void *)) +
         (size_t)padded(s->in_c) * 4 + (size_t)s->in_w * (size_t)s->in_c + VL;
}

/* 16 channels of x (n valid; the rest read as 0). */
static inline __attribute__((always_inline)) __m128i load_x(const uint8_t *src,
                                                            int32_t n) {
  if (n >= VL) return _mm_loadu_si128((const __m128i *)src);
  uint8_t tmp[16] = {0};
  memcpy(tmp, src, (size_t)n);
  return _mm_loadu_si128((const __m128i *)tmp);
}

/* acc[p][h] += the tap pair (a, b) of 16 channels under weights w (h: the
   channel halves 0-7, 8-15). */
static inline __attribute__((always_inline)) void madd_pair(
    __m128i a, __m128i b, const __m256i *w, int is_s8, __m256i *acc) {
  const __m128i lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
  const __m256i x0 =
      is_s8 ? _mm256_cvtepi8_epi16(lo) : _mm256_cvtepu8_epi16(lo);
  const __m256i x1 =
      is_s8 ? _mm256_cvtepi8_epi16(hi) : _mm256_cvtepu8_epi16(hi);
  acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x0, w[0]));
  acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x1, w[1]));
}

/* acc[p] = base + sum over taps for P output pixels, 16 channels at c0
   (two ymm each). Pixel p's tap t is at ptr[p * taps + t], or with step > 0
   (an interior group: no tap in the padding) at ptr[t] + p * step. Several
   pixels share each weight load. */
static inline __attribute__((always_inline)) void pixels(
    const int P, const uint8_t *const *ptr, size_t step, int32_t taps,
    const int16_t *w, const int32_t *base, int32_t c0, int32_t n, int is_s8,
    __m256i (*acc)[2]) {
  for (int p = 0; p < P; p++) {
    acc[p][0] = _mm256_loadu_si256((const __m256i *)(base + c0));
    acc[p][1] = _mm256_loadu_si256((const __m256i *)(base + c0 + 8));
  }
  for (int32_t t = 0; t < taps; t += 2, w += 2 * VL) {
    const __m256i wt[2] = {_mm256_loadu_si256((const __m256i *)w),
                           _mm256_loadu_si256((const __m256i *)(w + VL))};
    for (int p = 0; p < P; p++) {
      const uint8_t *const *pt = step ? ptr : ptr + p * taps;
      const size_t at = (step ? p * step : 0) + (size_t)c0;
      const __m128i a = load_x(pt[t] + at, n);
      const __m128i b = t + 1 < taps ? load_x(pt[t + 1] + at, n) : a;
      madd_pair(a, b, wt, is_s8, acc[p]);
    }
  }
}

/* P output pixels from (r, ox): tap tables (one, shifted per pixel, when
   no tap of the group is in the padding), then every channel block. */
static inline __attribute__((always_inline)) void row_pixels(
    const int P, const pyrt_conv2d_shape *s, const uint8_t *image,
    const int16_t *w, const int32_t *base, const uint8_t *zrow,
    const uint8_t **ptr, int32_t r, int32_t ox, int rows_inside, int is_s8,
    const pyrt_output_stage *out, const pyrt_avx2_stage *k,
    const pyrt_avx2_bytes *k2, void *y) {
  const int32_t C = s->in_c, taps = s->kernel_h * s->kernel_w;
  const int32_t iy0 = r % s->out_h * s->stride_h - s->pad_top;
  const int32_t ix0 = ox * s->stride_w - s->pad_left;
  const size_t row_bytes = (size_t)s->in_w * C;
  const int inside =
      rows_inside && ix0 >= 0 &&
      ix0 + (P - 1) * s->stride_w + (s->kernel_w - 1) * s->dilation_w < s->in_w;
  for (int p = 0; p < (inside ? 1 : P); p++)
    for (int32_t ky = 0, t = 0; ky < s->kernel_h; ky++) {
      const int32_t iy = iy0 + ky * s->dilation_h;
      for (int32_t kx = 0; kx < s->kernel_w; kx++, t++) {
        const int32_t ix = ix0 + p * s->stride_w + kx * s->dilation_w;
        ptr[p * taps + t] =
            iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w
                ? image + (size_t)iy * row_bytes + (size_t)ix * C
                : zrow;
      }
    }
  const size_t step = inside ? (size_t)s->stride_w * C : 0;
  const size_t at = ((size_t)r * s->out_w + (size_t)ox) * C;
  const int32_t P2 = pairs(taps);
  __m256i acc[PX][2];
  for (int32_t c0 = 0; c0 < C; c0 += VL) {
    const int32_t n = C - c0 < VL ? C - c0 : VL;
    const int16_t *wb = w + (size_t)c0 * P2 * 2;
    if (n == VL)
      pixels(P, ptr, step, taps, wb, base, c0, VL, is_s8, acc);
    else
      pixels(P, ptr, step, taps, wb, base, c0, n, is_s8, acc);
    if (n == VL && (k->dtype == PYRT_U8 || k->dtype == PYRT_S8)) {
      const __m256 s0 = pyrt_avx2_scale(
          out->per_channel ? out->scale + c0 : out->scale, out->per_channel, 8);
      const __m256 s1 =
          pyrt_avx2_scale(out->per_channel ? out->scale + c0 + 8 : out->scale,
                          out->per_channel, 8);
      for (int p = 0; p < P; p++)
        _mm_storeu_si128(
            (__m128i *)((char *)y + at + (size_t)p * C + c0),
            pyrt_avx2_pack_bytes(pyrt_avx2_round(acc[p][0], s0),
                                 pyrt_avx2_round(acc[p][1], s1), k2));
      continue;
    }
    for (int h = 0; h < 2 && 8 * h < n; h++) {
      const int32_t c = c0 + 8 * h, m = n - 8 * h < 8 ? n - 8 * h : 8;
      const __m256 sc = pyrt_avx2_scale(
          out->per_channel ? out->scale + c : out->scale, out->per_channel, m);
      for (int p = 0; p < P; p++)
        pyrt_avx2_output(acc[p][h], m, sc, k, y, at + (size_t)p * C + c);
    }
  }
}

static inline __attribute__((always_inline)) void rows(
    const int is_s8, const pyrt_conv2d_shape *s, const int16_t *w,
    const int32_t *base, const uint8_t *zrow, const uint8_t **ptr,
    const uint8_t *x, const pyrt_output_stage *out, void *y, int32_t r0,
    int32_t r1) {
  const pyrt_avx2_stage k = pyrt_avx2_stage_init(out);
  const pyrt_avx2_bytes k2 = pyrt_avx2_bytes_init(out);
  for (int32_t r = r0; r < r1; r++) {
    const uint8_t *image =
        x + (size_t)(r / s->out_h) * s->in_h * s->in_w * s->in_c;
    const int32_t iy0 = r % s->out_h * s->stride_h - s->pad_top;
    const int inside =
        iy0 >= 0 && iy0 + (s->kernel_h - 1) * s->dilation_h < s->in_h;
    int32_t ox = 0;
    for (; ox + PX <= s->out_w; ox += PX)
      row_pixels(PX, s, image, w, base, zrow, ptr, r, ox, inside, is_s8, out,
                 &k, &k2, y);
    for (; ox < s->out_w; ox++)
      row_pixels(1, s, image, w, base, zrow, ptr, r, ox, inside, is_s8, out, &k,
                 &k2, y);
  }
}

/* ---- 3x3, dilation 1, stride 1: columns of taps ----------------------- */

/* A column of 16 channels, rows 0-3 (3 rows: row 3 is row 2 under zero
   weights) widened as the pairs (row 0, row 1), (row 2, row 3) per
   channel: [pair][half]. Each column is built once and used by the three
   output pixels over it, for two output rows (stride_h 1): the upper takes
   rows 0-2, the lower rows 1-3. */
static inline __attribute__((always_inline)) void col_load(
    const int is_s8, const int nrows, const uint8_t *const *row,
    const uint8_t *zrow, int32_t ix, int32_t in_w, size_t C, size_t c0,
    int32_t n, __m256i *z) {
  const int in = (uint32_t)ix < (uint32_t)in_w;
  __m128i x[4];
  for (int r = 0; r < nrows; r++)
    x[r] = load_x(in ? row[r] + (size_t)ix * C + c0 : zrow + c0, n);
  const __m128i b = nrows == 4 ? x[3] : x[2];
  const __m128i p[4] = {_mm_unpacklo_epi8(x[0], x[1]),
                        _mm_unpackhi_epi8(x[0], x[1]),
                        _mm_unpacklo_epi8(x[2], b), _mm_unpackhi_epi8(x[2], b)};
  for (int q = 0; q < 4; q++)
    z[q] = is_s8 ? _mm256_cvtepi8_epi16(p[q]) : _mm256_cvtepu8_epi16(p[q]);
}

static inline __attribute__((always_inline)) void col_block(
    const int is_s8, const int pair, const pyrt_conv2d_shape *s,
    const int16_t *wc, const int32_t *base, const uint8_t *zrow,
    const uint8_t *const *row, int32_t c0, const pyrt_output_stage *out,
    const pyrt_avx2_stage *k, const pyrt_avx2_bytes *kb, char *y, size_t ldy) {
  const int32_t C = s->in_c, ow = s->out_w, pl = s->pad_left;
  const int32_t n = C - c0 < VL ? C - c0 : VL;
  const int nrows = pair ? 4 : 3;
  const __m256i *w = (const __m256i *)(wc + (size_t)c0 * 24);
  __m256i win[3][4]; /* columns ox, ox + 1, ox + 2 at [(ox + kx) % 3] */
  col_load(is_s8, nrows, row, zrow, -pl, s->in_w, (size_t)C, (size_t)c0, n,
           win[0]);
  col_load(is_s8, nrows, row, zrow, 1 - pl, s->in_w, (size_t)C, (size_t)c0, n,
           win[1]);
  const __m256i b0 = _mm256_loadu_si256((const __m256i *)(base + c0));
  const __m256i b1 = _mm256_loadu_si256((const __m256i *)(base + c0 + 8));
  const int byte_out = n == VL && (k->dtype == PYRT_U8 || k->dtype == PYRT_S8);
  const __m256 s0 = k->dtype == PYRT_S32 ? _mm256_setzero_ps()
                    : out->per_channel ? pyrt_avx2_scale(out->scale + c0, 1, n)
                                       : _mm256_set1_ps(out->scale[0]);
  const __m256 s1 = k->dtype == PYRT_S32 || n <= 8 ? _mm256_setzero_ps()
                    : out->per_channel
                        ? pyrt_avx2_scale(out->scale + c0 + 8, 1, n - 8)
                        : _mm256_set1_ps(out->scale[0]);
  for (int32_t ox = 0; ox < ow; ox++) {
    col_load(is_s8, nrows, row, zrow, ox + 2 - pl, s->in_w, (size_t)C,
             (size_t)c0, n, win[(ox + 2) % 3]);
    __m256i acc[2][2] = {{b0, b1}, {b0, b1}}; /* [row][half] */
    for (int kx = 0; kx < 3; kx++) {
      const __m256i *z = win[(ox + kx) % 3], *wk = w + kx * 8;
      for (int h = 0; h < 2; h++)
        for (int r = 0; r < (pair ? 2 : 1); r++)
          acc[r][h] = _mm256_add_epi32(
              acc[r][h],
              _mm256_add_epi32(_mm256_madd_epi16(z[h], wk[4 * r + h]),
                               _mm256_madd_epi16(z[2 + h], wk[4 * r + 2 + h])));
    }
    for (int r = 0; r < (pair ? 2 : 1); r++) {
      const size_t at = (size_t)ox * C + c0;
      char *dst = y + (size_t)r * ldy;
      if (byte_out) {
        _mm_storeu_si128(
            (__m128i *)(dst + at),
            pyrt_avx2_pack_bytes(pyrt_avx2_round(acc[r][0], s0),
                                 pyrt_avx2_round(acc[r][1], s1), kb));
        continue;
      }
      pyrt_avx2_output(acc[r][0], n < 8 ? n : 8, s0, k, dst, at);
      if (n > 8) pyrt_avx2_output(acc[r][1], n - 8, s1, k, dst, at + 8);
    }
  }
}

/* Output rows [r0, r1), in pairs where stride_h is 1 and both rows are of
   the same image. */
static inline __attribute__((always_inline)) void col_rows(
    const int is_s8, const pyrt_conv2d_shape *s, const int16_t *wc,
    const int32_t *base, const uint8_t *zrow, const uint8_t *x,
    const pyrt_output_stage *out, void *y, int32_t r0, int32_t r1) {
  const pyrt_avx2_stage k = pyrt_avx2_stage_init(out);
  const pyrt_avx2_bytes kb = pyrt_avx2_bytes_init(out);
  const size_t row_bytes = (size_t)s->in_w * s->in_c;
  const size_t out_size =
      out->out_dtype == PYRT_U8 || out->out_dtype == PYRT_S8 ? 1 : 4;
  const size_t ldy = (size_t)s->out_w * s->in_c * out_size;
  for (int32_t r = r0; r < r1;) {
    const uint8_t *image = x + (size_t)(r / s->out_h) * s->in_h * row_bytes;
    const int32_t oy = r % s->out_h, iy0 = oy * s->stride_h - s->pad_top;
    const int pair = s->stride_h == 1 && r + 1 < r1 && oy + 1 < s->out_h;
    const uint8_t *row[4];
    for (int32_t i = 0; i < 4; i++) {
      const int32_t iy = iy0 + i;
      row[i] = iy >= 0 && iy < s->in_h ? image + (size_t)iy * row_bytes : zrow;
    }
    char *yr = (char *)y + (size_t)r * ldy;
    for (int32_t c0 = 0; c0 < s->in_c; c0 += VL)
      if (pair)
        col_block(is_s8, 1, s, wc, base, zrow, row, c0, out, &k, &kb, yr, ldy);
      else
        col_block(is_s8, 0, s, wc, base, zrow, row, c0, out, &k, &kb, yr, ldy);
    r += pair ? 2 : 1;
  }
}

static void run(const pyrt_conv2d_shape *s, const void *packed,
                const uint8_t *x, int32_t x_flip, int32_t x_zero,
                const int32_t *bias, const pyrt_output_stage *out, void *y,
                int32_t r0, int32_t r1, void *scratch) {
  const int32_t C = s->in_c, cp = padded(C), taps = s->kernel_h * s->kernel_w;
  const int32_t *wsum = (const int32_t *)pyrt_pack_weights(packed);
  const int16_t *w = (const int16_t *)(wsum + cp);
  const int32_t zero = x_flip ? x_zero - 128 : x_zero; /* x's own domain */
  const uint8_t **ptr = (const uint8_t **)scratch;
  int32_t *base =
      (int32_t *)((char *)scratch + PYRT_ALIGN_UP(PX * taps * sizeof(void *)));
  uint8_t *zrow = (uint8_t *)(base + cp);
  memset(zrow, (uint8_t)zero, (size_t)s->in_w * C + VL);
  for (int32_t c = 0; c < cp; c++)
    base[c] = (int32_t)((c < C && bias ? (uint32_t)bias[c] : 0u) -
                        (uint32_t)zero * (uint32_t)wsum[c]);
  const int columns = s->kernel_h == 3 && s->kernel_w == 3 &&
                      s->dilation_h == 1 && s->dilation_w == 1 &&
                      s->stride_w == 1;
  const int16_t *wc = w + (size_t)cp * pairs(taps) * 2;
  if (columns && x_flip)
    col_rows(1, s, wc, base, zrow, x, out, y, r0, r1);
  else if (columns)
    col_rows(0, s, wc, base, zrow, x, out, y, r0, r1);
  else if (x_flip)
    rows(1, s, w, base, zrow, ptr, x, out, y, r0, r1);
  else
    rows(0, s, w, base, zrow, ptr, x, out, y, r0, r1);
}

void pyrt_qdwconv_init_avx2(pyrt_kernel_table *t) {
  t->qdwconv = (pyrt_qdwconv_config){weights_size, pack, scratch_size, run};
}
