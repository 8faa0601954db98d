/* AVX-512 fp32 GEMM tile and depthwise kernel (in the avx512vnni table:
 * tables are per level, and every CPU of that level has AVX-512F).
 *
 * The tile is MR rows x NV zmm of 16 columns: per k, NV panel vectors are
 * loaded once and each row's a[r][k] broadcast; MR * NV accumulators, NV
 * weight vectors and the broadcast fit the 32 registers. A panel of at most
 * 16 live columns (the last one of N = 16, 48, 144 ...) runs one vector
 * wide. 14 x 32 with K blocks of 256 measured best of 14 x 32, 8 x 48 and
 * 6 x 64 on Zen 4 ResNet-18 / MobileNetV2 layers. vfmadd is the
 * exactly rounded fma of the scalar reference and the clamp is vmaxps(lo,
 * v) then vminps(hi, v), its selects: bit-exact with sgemm_scalar.c.
 * Columns past nr are masked off.
 */
#include <immintrin.h>

#include "internal.h"

enum { MR = 14, NV = 2, NR = 16 * NV, KC = 256 };

static inline __mmask16 lanes(int32_t n) {
  return n >= 16  ? (__mmask16)0xFFFF
         : n <= 0 ? (__mmask16)0
                  : (__mmask16)((1u << n) - 1);
}

static inline __m512 clamp_to(__m512 v, __m512 lo, __m512 hi) {
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

static inline __attribute__((always_inline)) void tile(
    const int mr, const int nv, int32_t nr, int32_t kc, const float *a,
    size_t lda, const float *b, const float *init, const float *clamp, float *y,
    size_t ldy) {
  __mmask16 m[NV];
  for (int v = 0; v < nv; v++) m[v] = lanes(nr - 16 * v);
  __m512 c[MR][NV];
  if (init) {
    for (int v = 0; v < nv; v++) {
      const __m512 iv = _mm512_loadu_ps(init + 16 * v);
      for (int r = 0; r < mr; r++) c[r][v] = iv;
    }
  } else {
    for (int r = 0; r < mr; r++)
      for (int v = 0; v < nv; v++)
        c[r][v] = _mm512_maskz_loadu_ps(m[v], y + (size_t)r * ldy + 16 * v);
  }
  for (int32_t k = 0; k < kc; k++, b += NR) {
    __m512 bv[NV];
    for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
    for (int r = 0; r < mr; r++) {
      const __m512 av = _mm512_set1_ps(a[(size_t)r * lda + (size_t)k]);
      for (int v = 0; v < nv; v++)
        c[r][v] = _mm512_fmadd_ps(av, bv[v], c[r][v]);
    }
  }
  if (clamp) {
    const __m512 lo = _mm512_set1_ps(clamp[0]), hi = _mm512_set1_ps(clamp[1]);
    for (int r = 0; r < mr; r++)
      for (int v = 0; v < nv; v++) c[r][v] = clamp_to(c[r][v], lo, hi);
  }
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < nv; v++)
      _mm512_mask_storeu_ps(y + (size_t)r * ldy + 16 * v, m[v], c[r][v]);
}

/* A panel with at most 16 live columns runs one vector wide. */
static inline __attribute__((always_inline)) void tile_nr(
    const int mr, int32_t nr, int32_t kc, const float *a, size_t lda,
    const float *b, const float *init, const float *clamp, float *y,
    size_t ldy) {
  if (nr > 16)
    tile(mr, 2, nr, kc, a, lda, b, init, clamp, y, ldy);
  else
    tile(mr, 1, nr, kc, a, lda, b, init, clamp, y, ldy);
}

#define TILE_CASE(n)                                    \
  case n:                                               \
    tile_nr(n, nr, kc, a, lda, b, init, clamp, y, ldy); \
    break;

static void ukernel(int32_t mr, int32_t nr, int32_t kc, const float *a,
                    size_t lda, const float *b, const float *init,
                    const float *clamp, float *y, size_t ldy) {
  switch (mr) {
    TILE_CASE(14)
    TILE_CASE(13)
    TILE_CASE(12)
    TILE_CASE(11)
    TILE_CASE(10)
    TILE_CASE(9)
    TILE_CASE(8)
    TILE_CASE(7)
    TILE_CASE(6)
    TILE_CASE(5)
    TILE_CASE(4)
    TILE_CASE(3)
    TILE_CASE(2)
    default:
      tile_nr(1, nr, kc, a, lda, b, init, clamp, y, ldy);
      break;
  }
}

/* Channels [c, c + 16 * nv) of pixels [0, px): each tap's weight vectors
   are loaded once for all px pixels. Vector v is masked to m[v]. */
static inline __attribute__((always_inline)) void dw_tile(
    const int px, const int nv, int32_t c, const __mmask16 *m, int32_t taps,
    const float *const *x, const float *const *w, size_t at, size_t x_step,
    const float *bias, __m512 lo, __m512 hi, float *y, int32_t channels) {
  __m512 acc[4][2];
  for (int v = 0; v < nv; v++) {
    const __m512 bv = _mm512_maskz_loadu_ps(m[v], bias + c + 16 * v);
    for (int p = 0; p < px; p++) acc[p][v] = bv;
  }
  for (int32_t i = 0; i < taps; i++) {
    const float *xi = x[i] + at + c, *wi = w[i] + c;
    for (int v = 0; v < nv; v++) {
      const __m512 wv = _mm512_maskz_loadu_ps(m[v], wi + 16 * v);
      for (int p = 0; p < px; p++)
        acc[p][v] = _mm512_fmadd_ps(
            _mm512_maskz_loadu_ps(m[v], xi + (size_t)p * x_step + 16 * v), wv,
            acc[p][v]);
    }
  }
  for (int p = 0; p < px; p++)
    for (int v = 0; v < nv; v++)
      _mm512_mask_storeu_ps(y + (size_t)p * channels + c + 16 * v, m[v],
                            clamp_to(acc[p][v], lo, hi));
}

/* Channels [c, c + 16 * nv) of every pixel, four at a time. */
static inline __attribute__((always_inline)) void dw_channels(
    const int nv, int32_t c, const __mmask16 *m, int32_t taps,
    const float *const *x, const float *const *w, int32_t pixels, size_t x_step,
    const float *bias, __m512 lo, __m512 hi, float *y, int32_t channels) {
  int32_t p = 0;
  for (; p + 4 <= pixels; p += 4)
    dw_tile(4, nv, c, m, taps, x, w, (size_t)p * x_step, x_step, bias, lo, hi,
            y + (size_t)p * channels, channels);
  for (; p < pixels; p++)
    dw_tile(1, nv, c, m, taps, x, w, (size_t)p * x_step, x_step, bias, lo, hi,
            y + (size_t)p * channels, channels);
}

static void dwconv(int32_t channels, int32_t taps, const float *const *x,
                   const float *const *w, int32_t pixels, size_t x_step,
                   const float *bias, const float *clamp, float *y) {
  const __m512 lo = _mm512_set1_ps(clamp[0]), hi = _mm512_set1_ps(clamp[1]);
  const __mmask16 all[2] = {0xFFFF, 0xFFFF};
  int32_t c = 0;
  for (; c + 32 <= channels; c += 32)
    dw_channels(2, c, all, taps, x, w, pixels, x_step, bias, lo, hi, y,
                channels);
  for (; c < channels; c += 16) {
    const __mmask16 m = lanes(channels - c);
    dw_channels(1, c, &m, taps, x, w, pixels, x_step, bias, lo, hi, y,
                channels);
  }
}

void pyrt_sgemm_init_avx512vnni(pyrt_kernel_table *t) {
  t->sgemm = (pyrt_sgemm_config){MR, NR, KC, ukernel};
  t->sdwconv = (pyrt_sdwconv_config){dwconv};
}
