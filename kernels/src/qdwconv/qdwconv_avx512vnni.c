/* AVX-512 depthwise Conv2D, NHWC (XNNPACK's unipass dwconv with an
 * indirection table). Two paths, chosen by the pack's w_zero:
 *
 * Symmetric weights (every w_zero 0: what onnxruntime's, PyTorch's and
 * most quantizers write): vpdpbusd, four taps per int32 lane. The bytes
 * of four taps are interleaved per channel in registers (two rounds of
 * vpunpck, all inside 128-bit lanes), which leaves the 16 channels of a
 * lane in the order 0-3 | 4-7 | 8-11 | 12-15 across four accumulators;
 * the weights are packed in that order, and the vpackssdw / vpack*sswb of
 * the epilogue put the channels back in place. Each 128-bit lane is one
 * (pixel, 16 channels) pair, so a zmm holds 64 channels of one pixel, 32
 * of two or 16 of four (the tails of C = 32, 96, 144 ... waste nothing).
 * x is u8: s8 activations are flipped (x ^ 0x80 = x + 128) on load, their
 * zero point shifted alike, as in the GEMM driver. Taps go in groups of
 * four, the last padded with zero weights (3x3: 4 + 4 + 1).
 *
 * Asymmetric weights: w' = w - w_zero is in [-255, 255], too wide for
 * vpdpbusd; w' is packed as a u16 in the low half of each int32 lane (high
 * half 0), x widened to int32 lanes, and vpdpwssd adds x * w' + x_hi * 0.
 *
 * Both are exact int32 arithmetic, wrapping like the reference, with the
 * activation zero point folded out:
 *   sum_t (x_t - x_zero) w'_t = sum_t x_t w'_t - x_zero * sum_t w'_t
 * and a tap in the padding reads a row of x_zero bytes (adding exactly the
 * x_zero w'_t the correction removes), so per output pixel the taps are
 * one table of row pointers and the channel loop has no branches.
 *
 * Symmetric block: s8 w[B][G][4][64], B blocks of up to 64 channels, G =
 * ceil(taps / 4) groups: for block b, group g and accumulator k, lane L
 * byte 4 i + j is the weight of tap 4 g + j of channel 64 b + 16 L + 4 k +
 * i (a block of 32 or 16 channels repeats them in lanes 2-3 or 1-3).
 * Asymmetric block: int32 wsum[CP] (sum_t w'_t) | int32 w'[CP / 16][taps]
 * [16], CP = C rounded up to 16, zero-padded. The larger of the two is
 * reserved. Scratch: the tap pointers, the accumulator bases (bias minus
 * the zero-point term; and for the symmetric path the scales, both in the
 * weights' order) and the row of x_zero bytes.
 */
#include <string.h>

#include "requant/requant_avx512.h"

enum { VL = 16, PX = 4, BLOCK = 64 };

static int32_t padded(int32_t channels) {
  return (channels + VL - 1) / VL * VL;
}

static int32_t groups(int32_t taps) {
  return (taps + 3) / 4;
}

static int32_t blocks(int32_t channels) {
  return (channels + BLOCK - 1) / BLOCK;
}

/* 16-channel chunks in block b: 4, or 1 / 2 in a last block of <= 32
   channels (lanes then hold 4 / 2 pixels). */
static int32_t block_chunks(int32_t channels, int32_t b) {
  const int32_t left = (channels - b * BLOCK + VL - 1) / VL;
  return left >= 3 ? 4 : left;
}

/* Tap groups; with 9 taps also the 3x3 column layout (see col_rows). */
static size_t sym_weights_size(int32_t channels, int32_t taps) {
  return (size_t)blocks(channels) * ((size_t)groups(taps) + (taps == 9) * 6) *
         4 * BLOCK;
}

static size_t wide_weights_size(int32_t channels, int32_t taps) {
  return (size_t)padded(channels) * ((size_t)taps + 1) * 4;
}

static size_t weights_size(int32_t channels, int32_t taps) {
  const size_t a = sym_weights_size(channels, taps);
  const size_t b = wide_weights_size(channels, taps);
  return a > b ? a : b;
}

/* The channel in lane byte `byte` (0..63) of accumulator k of block b. */
static int32_t lane_channel(int32_t channels, int32_t b, int32_t k,
                            int32_t byte) {
  const int32_t n = block_chunks(channels, b), lane = byte / 16;
  return b * BLOCK + lane % n * VL + 4 * k + byte % 16 / 4;
}

static void sym_pack(int32_t channels, int32_t taps, const int8_t *w_s8,
                     int8_t *w) {
  const int32_t G = groups(taps);
  for (int32_t b = 0; b < blocks(channels); b++)
    for (int32_t g = 0; g < G; g++)
      for (int32_t k = 0; k < 4; k++, w += BLOCK)
        for (int32_t i = 0; i < BLOCK; i++) {
          const int32_t c = lane_channel(channels, b, k, i);
          const int32_t t = 4 * g + i % 4;
          w[i] = c < channels && t < taps ? w_s8[(size_t)c * taps + t] : 0;
        }
  if (taps != 9) return;
  /* column kx of a 3x3 filter: bytes 0-2 (the upper output row of a pair)
     or 1-3 (the lower) are the taps (0, kx), (1, kx), (2, kx) */
  for (int32_t b = 0; b < blocks(channels); b++)
    for (int32_t kx = 0; kx < 3; kx++)
      for (int32_t lower = 0; lower < 2; lower++)
        for (int32_t k = 0; k < 4; k++, w += BLOCK)
          for (int32_t i = 0; i < BLOCK; i++) {
            const int32_t c = lane_channel(channels, b, k, i);
            const int32_t ky = i % 4 - lower;
            w[i] = c < channels && ky >= 0 && ky < 3
                       ? w_s8[(size_t)c * taps + 3 * ky + kx]
                       : 0;
          }
}

static void wide_pack(int32_t channels, int32_t taps, const int8_t *w_s8,
                      const int32_t *w_zero, uint32_t *wsum) {
  const int32_t cp = padded(channels);
  uint32_t *w = wsum + cp;
  for (int32_t c = 0; c < channels; c++)
    for (int32_t t = 0; t < taps; t++) {
      const int32_t v = w_s8[(size_t)c * taps + t] - w_zero[c];
      w[((size_t)(c / VL) * taps + t) * VL + c % VL] = (uint16_t)v;
      wsum[c] += (uint32_t)v;
    }
}

static void pack(int32_t channels, int32_t taps, const int8_t *w_s8,
                 const int32_t *w_zero, void *dst) {
  int symmetric = 1;
  for (int32_t c = 0; c < channels; c++) symmetric &= w_zero[c] == 0;
  memset(dst, 0, weights_size(channels, taps));
  if (symmetric)
    sym_pack(channels, taps, w_s8, (int8_t *)dst);
  else
    wide_pack(channels, taps, w_s8, w_zero, (uint32_t *)dst);
}

/* Scratch: tap pointers (PX pixels' tables; the symmetric path's: a row's,
   its row pointers and column offsets) | int32 base and float scale
   (the symmetric path: [B][4][16] each; the other: base[CP]) | a row of
   x_zero bytes. */
static size_t pointers_size(const pyrt_conv2d_shape *s) {
  const size_t taps = (size_t)s->kernel_h * (size_t)s->kernel_w;
  const size_t px = (size_t)(s->out_w > PX ? s->out_w : PX);
  return PYRT_ALIGN_UP((px * taps + (size_t)s->kernel_h + (size_t)s->kernel_w) *
                       sizeof(void *));
}

static size_t scratch_size(const pyrt_conv2d_shape *s) {
  return pointers_size(s) + 2 * (size_t)blocks(s->in_c) * 4 * BLOCK * 4 +
         (size_t)s->in_w * (size_t)s->in_c + BLOCK;
}

/* The tap pointers of output pixels [ox0, ox0 + n) of output row r:
   ptr[p * taps + t], zrow for taps in the padding. */
static void tap_pointers(const pyrt_conv2d_shape *s, const uint8_t *image,
                         const uint8_t *zrow, int32_t r, int32_t ox0, int32_t n,
                         const uint8_t **ptr) {
  const int32_t C = s->in_c;
  const int32_t iy0 = r % s->out_h * s->stride_h - s->pad_top;
  const size_t row_bytes = (size_t)s->in_w * C;
  for (int32_t p = 0; p < n; p++) {
    const int32_t ix0 = (ox0 + p) * s->stride_w - s->pad_left;
    for (int32_t ky = 0; ky < s->kernel_h; ky++) {
      const int32_t iy = iy0 + ky * s->dilation_h;
      const int row_in = iy >= 0 && iy < s->in_h;
      for (int32_t kx = 0; kx < s->kernel_w; kx++) {
        const int32_t ix = ix0 + kx * s->dilation_w;
        *ptr++ = row_in && ix >= 0 && ix < s->in_w
                     ? image + (size_t)iy * row_bytes + (size_t)ix * C
                     : zrow;
      }
    }
  }
}

/* ---- symmetric weights: vpdpbusd, four taps per lane ------------------ */

typedef struct {
  pyrt_avx512_stage k;  /* s32 / f32 outputs */
  pyrt_avx512_bytes kb; /* u8 / s8 */
} sym_stage;

/* Bytes < n (n >= 0). */
static inline __mmask64 bytes_mask(int32_t n) {
  return n >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1;
}

/* One tap of LP pixels (p[j] + c for lane pixel j), 64 / LP bytes each,
   `valid` of them real (the rest read as 0), flipped to u8 for s8 x. */
static inline __attribute__((always_inline)) __m512i load_taps(
    const int LP, const uint8_t *const *p, size_t c, int32_t valid, int is_s8) {
  __m512i v;
  if (LP == 1) {
    v = valid >= 64 ? _mm512_loadu_si512(p[0] + c)
                    : _mm512_maskz_loadu_epi8(bytes_mask(valid), p[0] + c);
  } else if (LP == 2) {
    const __mmask32 m = (__mmask32)bytes_mask(valid);
    const __m256i a = valid >= 32
                          ? _mm256_loadu_si256((const __m256i *)(p[0] + c))
                          : _mm256_maskz_loadu_epi8(m, p[0] + c);
    const __m256i b = valid >= 32
                          ? _mm256_loadu_si256((const __m256i *)(p[1] + c))
                          : _mm256_maskz_loadu_epi8(m, p[1] + c);
    v = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  } else {
    const __mmask16 m = (__mmask16)bytes_mask(valid);
    __m128i q[4];
    for (int j = 0; j < 4; j++)
      q[j] = valid >= 16 ? _mm_loadu_si128((const __m128i *)(p[j] + c))
                         : _mm_maskz_loadu_epi8(m, p[j] + c);
    v = _mm512_inserti32x4(
        _mm512_inserti32x4(
            _mm512_inserti32x4(_mm512_castsi128_si512(q[0]), q[1], 1), q[2], 2),
        q[3], 3);
  }
  return is_s8 ? _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)) : v;
}

/* q[k] lane dword i = the bytes of taps a, b, c, d of lane channel 4k + i
   (m of them real: 1, 2 or 4; the padding taps have zero weights). */
static inline __attribute__((always_inline)) void interleave(
    const int m, __m512i a, __m512i b, __m512i c, __m512i d, __m512i *q) {
  if (m == 1) { /* byte 0 of dword i: x of channel 4k + i; 1-3: zero */
    const int z = (int)0x80808000u;
    for (int k = 0; k < 4; k++)
      q[k] = _mm512_shuffle_epi8(
          a, _mm512_set4_epi32(z | (4 * k + 3), z | (4 * k + 2),
                               z | (4 * k + 1), z | 4 * k));
    return;
  }
  const __m512i ab0 = _mm512_unpacklo_epi8(a, b);
  const __m512i ab1 = _mm512_unpackhi_epi8(a, b);
  if (m == 2) {
    q[0] = _mm512_unpacklo_epi16(ab0, ab0);
    q[1] = _mm512_unpackhi_epi16(ab0, ab0);
    q[2] = _mm512_unpacklo_epi16(ab1, ab1);
    q[3] = _mm512_unpackhi_epi16(ab1, ab1);
    return;
  }
  const __m512i cd0 = _mm512_unpacklo_epi8(c, d);
  const __m512i cd1 = _mm512_unpackhi_epi8(c, d);
  q[0] = _mm512_unpacklo_epi16(ab0, cd0);
  q[1] = _mm512_unpackhi_epi16(ab0, cd0);
  q[2] = _mm512_unpacklo_epi16(ab1, cd1);
  q[3] = _mm512_unpackhi_epi16(ab1, cd1);
}

/* Stores 64 output bytes of LP pixels (pixel j at dst[j], 64 / LP bytes
   each, `valid` of them; pixels >= n are not stored). */
static inline __attribute__((always_inline)) void store_bytes(
    const int LP, __m512i v, char *const *dst, int32_t n, int32_t valid) {
  if (LP == 1) {
    if (valid >= 64)
      _mm512_storeu_si512(dst[0], v);
    else
      _mm512_mask_storeu_epi8(dst[0], bytes_mask(valid), v);
  } else if (LP == 2) {
    const __mmask32 m = (__mmask32)bytes_mask(valid);
    for (int j = 0; j < 2 && j < n; j++) {
      const __m256i h =
          j ? _mm512_extracti64x4_epi64(v, 1) : _mm512_castsi512_si256(v);
      if (valid >= 32)
        _mm256_storeu_si256((__m256i *)dst[j], h);
      else
        _mm256_mask_storeu_epi8(dst[j], m, h);
    }
  } else {
    const __mmask16 m = (__mmask16)bytes_mask(valid);
    for (int j = 0; j < 4 && j < n; j++) {
      const __m128i h = j == 0   ? _mm512_castsi512_si128(v)
                        : j == 1 ? _mm512_extracti32x4_epi32(v, 1)
                        : j == 2 ? _mm512_extracti32x4_epi32(v, 2)
                                 : _mm512_extracti32x4_epi32(v, 3);
      if (valid >= 16)
        _mm_storeu_si128((__m128i *)dst[j], h);
      else
        _mm_mask_storeu_epi8(dst[j], m, h);
    }
  }
}

/* The output stage of a block's four accumulators for LP pixels. u8 / s8:
   the packs of pyrt_avx512_pack_bytes restore the channel order;
   s32 / f32: back to channel order per lane. */
/* s32 / f32 outputs (out of line: they keep the hot loops' registers). */
static __attribute__((noinline)) void sym_output_wide(
    int32_t LP, __m512i a0, __m512i a1, __m512i a2, __m512i a3, int32_t c0,
    const pyrt_output_stage *out, const pyrt_avx512_stage *k, char *const *dst,
    int32_t n, int32_t valid) {
  int32_t lanes[4][16], v[16];
  _mm512_storeu_si512(lanes[0], a0);
  _mm512_storeu_si512(lanes[1], a1);
  _mm512_storeu_si512(lanes[2], a2);
  _mm512_storeu_si512(lanes[3], a3);
  for (int lane = 0; lane < 4; lane++) {
    const int32_t j = lane / (4 / LP), chunk = lane % (4 / LP);
    const int32_t left = valid - VL * chunk;
    if (j >= n || left <= 0) continue;
    for (int q = 0; q < 4; q++) memcpy(v + 4 * q, lanes[q] + 4 * lane, 16);
    const int32_t c = c0 + VL * chunk;
    const __mmask16 m = pyrt_avx512_mask(left);
    const __m512 sc =
        k->dtype == PYRT_S32
            ? _mm512_setzero_ps() /* unused (and scale may be NULL) */
            : pyrt_avx512_scale(out->per_channel ? out->scale + c : out->scale,
                                out->per_channel, m);
    pyrt_avx512_output(_mm512_loadu_si512(v), m, sc, k, dst[j] - 4 * c0,
                       (size_t)c); /* 4-byte elements */
  }
}

static inline __attribute__((always_inline)) void sym_output(
    const int LP, const __m512i *acc, const float *scale, int32_t c0,
    const pyrt_output_stage *out, const sym_stage *k, char *const *dst,
    int32_t n, int32_t valid) {
  if (k->k.dtype == PYRT_U8 || k->k.dtype == PYRT_S8) {
    __m512i r[4];
    for (int j = 0; j < 4; j++)
      r[j] = pyrt_avx512_round(acc[j], _mm512_loadu_ps(scale + 16 * j));
    store_bytes(LP, pyrt_avx512_pack_bytes(r[0], r[1], r[2], r[3], &k->kb), dst,
                n, valid);
  } else {
    sym_output_wide(LP, acc[0], acc[1], acc[2], acc[3], c0, out, &k->k, dst, n,
                    valid);
  }
}

/* Where lane pixel j's taps are: in a stepped group (no tap in the
   padding columns), tap (ky, kx) at row[ky] + pixel[j] + col[kx]; else
   tap t at table[j][t]. */
typedef struct {
  const uint8_t *const *row;
  const ptrdiff_t *col;
  ptrdiff_t pixel[4];
  const uint8_t *const *table[4];
} sym_taps;

/* LP output pixels (dst[j]; n of them real) for the channels of one block
   (c0, `valid` of them) on a KH x KW filter: acc = base + the tap groups
   of four, then the output stage. */
static inline __attribute__((always_inline)) void sym_pixels(
    const int LP, const int KH, const int KW, const int is_s8,
    const int stepped, const sym_taps *tp, const __m512i *w,
    const int32_t *base, const float *scale, int32_t c0, int32_t valid,
    const pyrt_output_stage *out, const sym_stage *k, char *const *dst,
    int32_t n) {
  const int32_t T = KH * KW, G = (T + 3) / 4;
  __m512i acc[4];
  for (int j = 0; j < 4; j++) acc[j] = _mm512_loadu_si512(base + 16 * j);
  for (int32_t g = 0; g < G; g++) {
    const int32_t m = T - 4 * g >= 4 ? 4 : T - 4 * g;
    __m512i x[4], q[4];
    for (int i = 0; i < m; i++) {
      const int32_t t = 4 * g + i;
      const uint8_t *p[4];
      for (int j = 0; j < LP; j++)
        p[j] = stepped ? tp->row[t / KW] + tp->pixel[j] + tp->col[t % KW]
                       : tp->table[j][t];
      x[i] = load_taps(LP, p, (size_t)c0, valid, is_s8);
    }
    if (m == 1)
      interleave(1, x[0], x[0], x[0], x[0], q);
    else if (m == 2)
      interleave(2, x[0], x[1], x[0], x[0], q);
    else /* a third tap pairs with a copy of the first, weight 0 */
      interleave(4, x[0], x[1], x[2], x[m == 4 ? 3 : 0], q);
    for (int j = 0; j < 4; j++)
      acc[j] = _mm512_dpbusd_epi32(acc[j], q[j], w[4 * g + j]);
  }
  sym_output(LP, acc, scale, c0, out, k, dst, n, valid);
}

/* Scratch of the symmetric path, and what a row's passes share. */
typedef struct {
  const pyrt_conv2d_shape *s;
  const __m512i *w;
  const __m512i *w_col;  /* 3x3: [B][kx][upper, lower][4] */
  const int32_t *base;   /* [B][4][16], the weights' order */
  const float *scale;    /* [B][4][16] */
  const uint8_t *zrow;   /* in_w * C + 64 bytes of x_zero */
  const uint8_t **table; /* out_w * taps, then row[KH], col[KW] */
  const pyrt_output_stage *out;
  size_t out_size;
} sym_job;

/* Output row r, channel block b (LP pixels per zmm): stepped groups inside
   [lo, hi), the others through a tap table. */
static inline __attribute__((always_inline)) void sym_row_block(
    const int LP, const int KH, const int KW, const int is_s8,
    const sym_job *job, const sym_stage *k, const uint8_t *const *row,
    const ptrdiff_t *col, int32_t lo, int32_t hi, int32_t b, char *y) {
  const pyrt_conv2d_shape *s = job->s;
  const int32_t C = s->in_c, ow = s->out_w, c0 = b * BLOCK;
  const int32_t G = (KH * KW + 3) / 4;
  const __m512i *w = job->w + (size_t)b * G * 4;
  const int32_t *base = job->base + (size_t)b * 64;
  const float *scale = job->scale + (size_t)b * 64;
  const ptrdiff_t step = (ptrdiff_t)s->stride_w * C;
  sym_taps tp = {row, col, {0}, {0}};
  for (int32_t ox = 0; ox < ow; ox += LP) {
    char *dst[4];
    for (int j = 0; j < LP; j++) {
      const int32_t o = ox + j < ow ? ox + j : ow - 1;
      dst[j] = y + ((size_t)o * C + (size_t)c0) * job->out_size;
      tp.pixel[j] = o * step;
      tp.table[j] = job->table + (size_t)o * KH * KW;
    }
    if (ox >= lo && ox + LP <= hi && C - c0 >= BLOCK / LP) { /* no masks */
      sym_pixels(LP, KH, KW, is_s8, 1, &tp, w, base, scale, c0, BLOCK / LP,
                 job->out, k, dst, ow - ox);
    } else if (ox >= lo && ox + LP <= hi) {
      sym_pixels(LP, KH, KW, is_s8, 1, &tp, w, base, scale, c0, C - c0,
                 job->out, k, dst, ow - ox);
    } else {
      sym_pixels(LP, KH, KW, is_s8, 0, &tp, w, base, scale, c0, C - c0,
                 job->out, k, dst, ow - ox);
    }
  }
}

static inline __attribute__((always_inline)) void sym_rows(
    const int KH, const int KW, const int is_s8, const sym_job *job,
    const uint8_t *x, void *y, int32_t r0, int32_t r1) {
  const pyrt_conv2d_shape *s = job->s;
  const sym_stage k = {pyrt_avx512_stage_init(job->out),
                       pyrt_avx512_bytes_init(job->out)};
  const int32_t C = s->in_c, ow = s->out_w;
  const size_t row_bytes = (size_t)s->in_w * C;
  /* pixels whose taps are all inside the columns: [lo, hi) */
  const int32_t span = (KW - 1) * s->dilation_w;
  int32_t lo = (s->pad_left + s->stride_w - 1) / s->stride_w;
  int32_t hi = s->in_w - span + s->pad_left <= 0
                   ? 0
                   : (s->in_w - 1 - span + s->pad_left) / s->stride_w + 1;
  hi = hi < ow ? hi : ow;
  lo = lo < hi ? lo : hi;
  const uint8_t **row = job->table + (size_t)ow * KH * KW;
  ptrdiff_t *col = (ptrdiff_t *)(row + KH);
  for (int32_t kx = 0; kx < KW; kx++)
    col[kx] = (ptrdiff_t)(kx * s->dilation_w - s->pad_left) * C;
  for (int32_t r = r0; r < r1; r++) {
    const uint8_t *image = x + (size_t)(r / s->out_h) * s->in_h * row_bytes;
    const int32_t iy0 = r % s->out_h * s->stride_h - s->pad_top;
    for (int32_t ky = 0; ky < KH; ky++) {
      const int32_t iy = iy0 + ky * s->dilation_h;
      row[ky] =
          iy >= 0 && iy < s->in_h ? image + (size_t)iy * row_bytes : job->zrow;
    }
    /* the tables of the pixels an unstepped group may hold (any LP) */
    const int32_t lo4 = (lo + 3) / 4 * 4 < ow ? (lo + 3) / 4 * 4 : ow;
    const int32_t hi4 = hi / 4 * 4 > lo4 ? hi / 4 * 4 : lo4;
    tap_pointers(s, image, job->zrow, r, 0, lo4, job->table);
    tap_pointers(s, image, job->zrow, r, hi4, ow - hi4,
                 job->table + (size_t)hi4 * KH * KW);
    char *yr = (char *)y + (size_t)r * ow * C * job->out_size;
    for (int32_t b = 0; b < blocks(C); b++) {
      const int32_t n = block_chunks(C, b);
      if (n == 4)
        sym_row_block(1, KH, KW, is_s8, job, &k, row, col, lo, hi, b, yr);
      else if (n == 2)
        sym_row_block(2, KH, KW, is_s8, job, &k, row, col, lo, hi, b, yr);
      else
        sym_row_block(4, KH, KW, is_s8, job, &k, row, col, lo, hi, b, yr);
    }
  }
}

/* ---- 3x3, dilation 1, stride_w 1 or 2: columns of taps ---------------- */

/* The tap groups here are columns: (rows iy .. iy + 3, one input column)
   of a block, interleaved once and used by the three output pixels whose
   filter covers that column (stride 1; two with stride 2), and by two
   output rows at once with stride_h 1 (the upper row's taps are bytes 0-2
   of each lane, the lower row's bytes 1-3). A zmm of LP > 1 pixels holds
   LP columns S apart (S = stride_w); the column sets a group of output
   pixels needs beyond the new ones are lanes of two others (valignd). */

/* Z(j): input columns j + S l - pad_left (lane pixel l) of `nrows` rows,
   interleaved; columns outside the image read the row of x_zero bytes. */
typedef struct {
  __m512i q[4];
} col4; /* a column group's four accumulator-ordered vectors */

static inline __attribute__((always_inline)) col4
col_load(const int LP, const int S, const int nrows, const int is_s8,
         const uint8_t *const *row, const uint8_t *zrow, int32_t j, int32_t pl,
         int32_t in_w, size_t C, size_t c0, int32_t valid) {
  __m512i x[4];
  for (int r = 0; r < nrows; r++) {
    const uint8_t *p[4];
    for (int l = 0; l < LP; l++) {
      const int32_t ix = j + S * l - pl;
      p[l] = (uint32_t)ix < (uint32_t)in_w ? row[r] + (size_t)ix * C : zrow;
    }
    x[r] = load_taps(LP, p, c0, valid, is_s8);
  }
  col4 z;
  interleave(4, x[0], x[1], x[2], nrows == 4 ? x[3] : x[0], z.q);
  return z;
}

/* Lane pixels shifted by `by` (1 or 2) slots of LP: (a, n) -> the columns
   between them. */
static inline __attribute__((always_inline)) col4 col_shift(const int LP,
                                                            col4 n, col4 a,
                                                            const int by) {
  col4 z;
  for (int q = 0; q < 4; q++)
    z.q[q] = by * 16 / LP == 16  ? n.q[q]
             : by * 16 / LP == 8 ? _mm512_alignr_epi32(n.q[q], a.q[q], 8)
                                 : _mm512_alignr_epi32(n.q[q], a.q[q], 4);
  return z;
}

/* acc[k] += the three columns a, b, c (kx = 0, 1, 2) under weights w. */
static inline __attribute__((always_inline)) void col_madd(col4 a, col4 b,
                                                           col4 c,
                                                           const __m512i *w,
                                                           __m512i *acc) {
  for (int k = 0; k < 4; k++) {
    acc[k] = _mm512_dpbusd_epi32(acc[k], a.q[k], w[k]);
    acc[k] = _mm512_dpbusd_epi32(acc[k], b.q[k], w[8 + k]);
    acc[k] = _mm512_dpbusd_epi32(acc[k], c.q[k], w[16 + k]);
  }
}

/* One output row (pair: two, the second at y + ldy) of block b. */
static inline __attribute__((always_inline)) void col_block(
    const int LP, const int S, const int pair, const int is_s8,
    const sym_job *job, const sym_stage *k, const uint8_t *const *row,
    int32_t b, int32_t valid, char *y, size_t ldy) {
  const pyrt_conv2d_shape *s = job->s;
  const size_t C = (size_t)s->in_c, c0 = (size_t)b * BLOCK;
  const int32_t ow = s->out_w, pl = s->pad_left, in_w = s->in_w;
  const int nrows = pair ? 4 : 3;
  const __m512i *w = job->w_col + (size_t)b * 24;
  const int32_t *base = job->base + (size_t)b * 64;
  const float *scale = job->scale + (size_t)b * 64;
  const uint8_t *zrow = job->zrow;
  col4 A = col_load(LP, S, nrows, is_s8, row, zrow, 0, pl, in_w, C, c0, valid);
  col4 B = A;
  if (LP == 1 && S == 1)
    B = col_load(LP, S, nrows, is_s8, row, zrow, 1, pl, in_w, C, c0, valid);
  for (int32_t ox = 0; ox < ow; ox += LP) {
    const int32_t j = S * ox; /* Z(j) = A */
    col4 Z1, Z2, N;
    if (S == 1) { /* new: Z(j + LP), or Z(j + 2) when LP is 1 */
      N = col_load(LP, S, nrows, is_s8, row, zrow, j + (LP == 1 ? 2 : LP), pl,
                   in_w, C, c0, valid);
      Z1 = LP == 1 ? B : col_shift(LP, N, A, 1);
      Z2 = LP == 1 ? N : col_shift(LP, N, A, 2);
    } else { /* new: Z(j + 1) and Z(j + 2 LP) */
      Z1 = col_load(LP, S, nrows, is_s8, row, zrow, j + 1, pl, in_w, C, c0,
                    valid);
      N = col_load(LP, S, nrows, is_s8, row, zrow, j + 2 * LP, pl, in_w, C, c0,
                   valid);
      Z2 = col_shift(LP, N, A, 1);
    }
    char *dst[4], *dst2[4];
    for (int l = 0; l < LP; l++) {
      const int32_t o = ox + l < ow ? ox + l : ow - 1;
      dst[l] = y + ((size_t)o * C + c0) * job->out_size;
      dst2[l] = dst[l] + ldy;
    }
    __m512i acc[4];
    for (int q = 0; q < 4; q++) acc[q] = _mm512_loadu_si512(base + 16 * q);
    if (pair) {
      __m512i acc2[4];
      for (int q = 0; q < 4; q++) acc2[q] = acc[q];
      col_madd(A, Z1, Z2, w, acc);
      col_madd(A, Z1, Z2, w + 4, acc2);
      sym_output(LP, acc, scale, (int32_t)c0, job->out, k, dst, ow - ox, valid);
      sym_output(LP, acc2, scale, (int32_t)c0, job->out, k, dst2, ow - ox,
                 valid);
    } else {
      col_madd(A, Z1, Z2, w, acc);
      sym_output(LP, acc, scale, (int32_t)c0, job->out, k, dst, ow - ox, valid);
    }
    if (LP == 1 && S == 1)
      A = B, B = N;
    else
      A = N;
  }
}

static inline __attribute__((always_inline)) void col_blocks(
    const int S, const int pair, const int is_s8, const sym_job *job,
    const sym_stage *k, const uint8_t *const *row, char *y, size_t ldy) {
  const int32_t C = job->s->in_c;
  for (int32_t b = 0; b < blocks(C); b++) {
    const int32_t n = block_chunks(C, b), left = C - b * BLOCK;
    if (n == 4 && left >= BLOCK)
      col_block(1, S, pair, is_s8, job, k, row, b, BLOCK, y, ldy);
    else if (n == 4)
      col_block(1, S, pair, is_s8, job, k, row, b, left, y, ldy);
    else if (n == 2)
      col_block(2, S, pair, is_s8, job, k, row, b, left, y, ldy);
    else
      col_block(4, S, pair, is_s8, job, k, row, b, left, y, ldy);
  }
}

/* Output rows [r0, r1), in pairs where stride_h is 1 and both rows are of
   the same image. */
static inline __attribute__((always_inline)) void col_rows(
    const int S, const int is_s8, const sym_job *job, const uint8_t *x, void *y,
    int32_t r0, int32_t r1) {
  const pyrt_conv2d_shape *s = job->s;
  const sym_stage k = {pyrt_avx512_stage_init(job->out),
                       pyrt_avx512_bytes_init(job->out)};
  const size_t row_bytes = (size_t)s->in_w * s->in_c;
  const size_t ldy = (size_t)s->out_w * s->in_c * job->out_size;
  for (int32_t r = r0; r < r1;) {
    const uint8_t *image = x + (size_t)(r / s->out_h) * s->in_h * row_bytes;
    const int32_t oy = r % s->out_h, iy0 = oy * s->stride_h - s->pad_top;
    const int pair = s->stride_h == 1 && r + 1 < r1 && oy + 1 < s->out_h;
    const uint8_t *row[4];
    for (int32_t i = 0; i < 4; i++) {
      const int32_t iy = iy0 + i;
      row[i] =
          iy >= 0 && iy < s->in_h ? image + (size_t)iy * row_bytes : job->zrow;
    }
    char *yr = (char *)y + (size_t)r * ldy;
    if (pair)
      col_blocks(S, 1, is_s8, job, &k, row, yr, ldy);
    else
      col_blocks(S, 0, is_s8, job, &k, row, yr, ldy);
    r += pair ? 2 : 1;
  }
}

/* dst[k][lane L] = n[L] lane k: four vectors of 16 channels in the order
   of the accumulators (lane L dword i of accumulator k: channel 16 L + 4 k
   + i). */
static inline void to_lanes(const __m512i *n, int32_t *dst) {
  const __m512i a = _mm512_shuffle_i32x4(n[0], n[1], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i b = _mm512_shuffle_i32x4(n[2], n[3], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i c = _mm512_shuffle_i32x4(n[0], n[1], _MM_SHUFFLE(3, 2, 3, 2));
  const __m512i d = _mm512_shuffle_i32x4(n[2], n[3], _MM_SHUFFLE(3, 2, 3, 2));
  _mm512_storeu_si512(dst, _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
  _mm512_storeu_si512(dst + 16,
                      _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  _mm512_storeu_si512(dst + 32,
                      _mm512_shuffle_i32x4(c, d, _MM_SHUFFLE(2, 0, 2, 0)));
  _mm512_storeu_si512(dst + 48,
                      _mm512_shuffle_i32x4(c, d, _MM_SHUFFLE(3, 1, 3, 1)));
}

static void sym_run(const pyrt_conv2d_shape *s, const void *packed,
                    const uint8_t *x, int32_t x_flip, int32_t x_zero,
                    const int32_t *bias, const pyrt_output_stage *out, void *y,
                    int32_t r0, int32_t r1, void *scratch) {
  const int32_t C = s->in_c, nb = blocks(C), taps = s->kernel_h * s->kernel_w;
  const int32_t *wsum = pyrt_pack_col_sum(packed);
  int32_t *base = (int32_t *)((char *)scratch + pointers_size(s));
  float *scale = (float *)(base + (size_t)nb * 64);
  uint8_t *zrow = (uint8_t *)(scale + (size_t)nb * 64);
  /* x_zero is in the u8 (flipped) domain; the row is read as x and flipped
     like it */
  memset(zrow, (uint8_t)(x_zero ^ x_flip), (size_t)s->in_w * C + BLOCK);
  const int scaled = out->out_dtype != PYRT_S32; /* s32: no scale */
  for (int32_t b = 0; b < nb; b++) {
    const int32_t n = block_chunks(C, b);
    __m512i nb_[4], ns[4]; /* the block's chunks in channel order */
    for (int32_t m = 0; m < 4; m++) {
      const int32_t c = b * BLOCK + m % n * VL;
      const __mmask16 v = pyrt_avx512_mask(C > c ? C - c : 0);
      const __m512i sum = _mm512_maskz_loadu_epi32(v, wsum + c);
      nb_[m] = _mm512_sub_epi32(
          bias ? _mm512_maskz_loadu_epi32(v, bias + c) : _mm512_setzero_si512(),
          _mm512_mullo_epi32(_mm512_set1_epi32(x_zero), sum));
      ns[m] = _mm512_castps_si512(
          !scaled ? _mm512_set1_ps(1.0f)
          : out->per_channel
              ? _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), v, out->scale + c)
              : _mm512_set1_ps(out->scale[0]));
    }
    to_lanes(nb_, base + (size_t)b * 64);
    to_lanes(ns, (int32_t *)scale + (size_t)b * 64);
  }
  const __m512i *w = (const __m512i *)pyrt_pack_weights(packed);
  const sym_job job = {
      s,
      w,
      w + (size_t)nb * groups(taps) * 4,
      base,
      scale,
      zrow,
      (const uint8_t **)scratch,
      out,
      out->out_dtype == PYRT_U8 || out->out_dtype == PYRT_S8 ? 1 : 4};
  const int columns = s->kernel_h == 3 && s->kernel_w == 3 &&
                      s->dilation_h == 1 && s->dilation_w == 1 &&
                      s->stride_w <= 2;
  if (columns && s->stride_w == 1 && x_flip)
    col_rows(1, 1, &job, x, y, r0, r1);
  else if (columns && s->stride_w == 1)
    col_rows(1, 0, &job, x, y, r0, r1);
  else if (columns && x_flip)
    col_rows(2, 1, &job, x, y, r0, r1);
  else if (columns)
    col_rows(2, 0, &job, x, y, r0, r1);
  else if (s->kernel_h == 3 && s->kernel_w == 3 && x_flip)
    sym_rows(3, 3, 1, &job, x, y, r0, r1);
  else if (s->kernel_h == 3 && s->kernel_w == 3)
    sym_rows(3, 3, 0, &job, x, y, r0, r1);
  else if (x_flip)
    sym_rows(s->kernel_h, s->kernel_w, 1, &job, x, y, r0, r1);
  else
    sym_rows(s->kernel_h, s->kernel_w, 0, &job, x, y, r0, r1);
}

/* ---- asymmetric weights: vpdpwssd on x widened to int32 --------------- */

/* x widened to int32 lanes (16 channels; m valid unless m is all ones). */
static inline __attribute__((always_inline)) __m512i load_x(const uint8_t *src,
                                                            __mmask16 m,
                                                            int is_s8) {
  const __m128i b = m == 0xFFFF ? _mm_loadu_si128((const __m128i *)src)
                                : _mm_maskz_loadu_epi8(m, src);
  return is_s8 ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

/* acc[p] = base + sum over taps for P output pixels, 16 channels at c0.
   Pixel p's tap t is at ptr[p * taps + t], or with step > 0 (an interior
   group: no tap in the padding) at ptr[t] + p * step. Two chains per pixel and
   several pixels sharing each weight load keep enough independent work in
   flight to hide vpdpwssd latency. */
static inline __attribute__((always_inline)) void pixels(
    const int P, const uint8_t *const *ptr, size_t step, int32_t taps,
    const int32_t *w, const int32_t *base, int32_t c0, __mmask16 m, int is_s8,
    __m512i *acc) {
  __m512i acc0[PX], acc1[PX];
  for (int p = 0; p < P; p++) {
    acc0[p] = _mm512_loadu_si512(base + c0);
    acc1[p] = _mm512_setzero_si512();
  }
  int32_t t = 0;
  for (; t + 2 <= taps; t += 2, w += 2 * VL) {
    const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + VL);
    for (int p = 0; p < P; p++) {
      const uint8_t *const *pt = step ? ptr : ptr + p * taps;
      const size_t at = (step ? p * step : 0) + (size_t)c0;
      acc0[p] = _mm512_dpwssd_epi32(acc0[p], load_x(pt[t] + at, m, is_s8), w0);
      acc1[p] =
          _mm512_dpwssd_epi32(acc1[p], load_x(pt[t + 1] + at, m, is_s8), w1);
    }
  }
  if (t < taps) {
    const __m512i w0 = _mm512_loadu_si512(w);
    for (int p = 0; p < P; p++)
      acc0[p] = _mm512_dpwssd_epi32(
          acc0[p],
          load_x(step ? ptr[t] + p * step + c0 : ptr[p * taps + t] + c0, m,
                 is_s8),
          w0);
  }
  for (int p = 0; p < P; p++) acc[p] = _mm512_add_epi32(acc0[p], acc1[p]);
}

/* P output pixels from (r, ox): tap tables (one, shifted per pixel, when
   no tap of the group is in the padding), then every channel block. */
static inline __attribute__((always_inline)) void row_pixels(
    const int P, const pyrt_conv2d_shape *s, const uint8_t *image,
    const int32_t *w, const int32_t *base, const uint8_t *zrow,
    const uint8_t **ptr, int32_t r, int32_t ox, int rows_inside, int is_s8,
    const pyrt_output_stage *out, const pyrt_avx512_stage *k, void *y) {
  const int32_t C = s->in_c, taps = s->kernel_h * s->kernel_w;
  const int32_t ix0 = ox * s->stride_w - s->pad_left;
  const int inside =
      rows_inside && ix0 >= 0 &&
      ix0 + (P - 1) * s->stride_w + (s->kernel_w - 1) * s->dilation_w < s->in_w;
  tap_pointers(s, image, zrow, r, ox, inside ? 1 : P, ptr);
  const size_t step = inside ? (size_t)s->stride_w * C : 0;
  const size_t at = ((size_t)r * s->out_w + (size_t)ox) * C;
  __m512i acc[PX];
  for (int32_t c0 = 0; c0 < C; c0 += VL) {
    const __mmask16 m = pyrt_avx512_mask(C - c0);
    if (m == 0xFFFF)
      pixels(P, ptr, step, taps, w + (size_t)c0 * taps, base, c0, 0xFFFF, is_s8,
             acc);
    else
      pixels(P, ptr, step, taps, w + (size_t)c0 * taps, base, c0, m, is_s8,
             acc);
    const __m512 sc = pyrt_avx512_scale(
        out->per_channel ? out->scale + c0 : out->scale, out->per_channel, m);
    for (int p = 0; p < P; p++)
      pyrt_avx512_output(acc[p], m, sc, k, y, at + (size_t)p * C + c0);
  }
}

static inline __attribute__((always_inline)) void wide_rows(
    const int is_s8, const pyrt_conv2d_shape *s, const int32_t *w,
    const int32_t *base, const uint8_t *zrow, const uint8_t **ptr,
    const uint8_t *x, const pyrt_output_stage *out, void *y, int32_t r0,
    int32_t r1) {
  const pyrt_avx512_stage k = pyrt_avx512_stage_init(out);
  for (int32_t r = r0; r < r1; r++) {
    const uint8_t *image =
        x + (size_t)(r / s->out_h) * s->in_h * s->in_w * s->in_c;
    const int32_t iy0 = r % s->out_h * s->stride_h - s->pad_top;
    const int inside =
        iy0 >= 0 && iy0 + (s->kernel_h - 1) * s->dilation_h < s->in_h;
    int32_t ox = 0;
    for (; ox + PX <= s->out_w; ox += PX)
      row_pixels(PX, s, image, w, base, zrow, ptr, r, ox, inside, is_s8, out,
                 &k, y);
    for (; ox < s->out_w; ox++)
      row_pixels(1, s, image, w, base, zrow, ptr, r, ox, inside, is_s8, out, &k,
                 y);
  }
}

static void wide_run(const pyrt_conv2d_shape *s, const void *packed,
                     const uint8_t *x, int32_t x_flip, int32_t x_zero,
                     const int32_t *bias, const pyrt_output_stage *out, void *y,
                     int32_t r0, int32_t r1, void *scratch) {
  const int32_t C = s->in_c, cp = padded(C);
  const int32_t *wsum = (const int32_t *)pyrt_pack_weights(packed);
  const int32_t *w = wsum + cp;
  const int32_t zero = x_flip ? x_zero - 128 : x_zero; /* x's own domain */
  const uint8_t **ptr = (const uint8_t **)scratch;
  int32_t *base = (int32_t *)((char *)scratch + pointers_size(s));
  uint8_t *zrow = (uint8_t *)(base + cp);
  memset(zrow, (uint8_t)zero, (size_t)cp);
  for (int32_t c = 0; c < cp; c++)
    base[c] = (int32_t)((c < C && bias ? (uint32_t)bias[c] : 0u) -
                        (uint32_t)zero * (uint32_t)wsum[c]);
  if (x_flip)
    wide_rows(1, s, w, base, zrow, ptr, x, out, y, r0, r1);
  else
    wide_rows(0, s, w, base, zrow, ptr, x, out, y, r0, r1);
}

static void run(const pyrt_conv2d_shape *s, const void *packed,
                const uint8_t *x, int32_t x_flip, int32_t x_zero,
                const int32_t *bias, const pyrt_output_stage *out, void *y,
                int32_t r0, int32_t r1, void *scratch) {
  if (((const pyrt_pack_header *)packed)->has_w_zero)
    wide_run(s, packed, x, x_flip, x_zero, bias, out, y, r0, r1, scratch);
  else
    sym_run(s, packed, x, x_flip, x_zero, bias, out, y, r0, r1, scratch);
}

void pyrt_qdwconv_init_avx512vnni(pyrt_kernel_table *t) {
  t->qdwconv = (pyrt_qdwconv_config){weights_size, pack, scratch_size, run};
}
