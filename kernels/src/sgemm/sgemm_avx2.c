/* AVX2 + FMA fp32 GEMM tile (6 rows x 16 columns) and depthwise kernel.
 *
 * Per k the tile loads two ymm of the packed panel once and broadcasts each
 * row's a[r][k]; one vfmadd231ps per row and column vector: 12
 * accumulators, 2 weight vectors and the broadcast fit the 16 registers.
 * vfmadd is the exactly rounded fma of the scalar reference and the clamp
 * is vmaxps(lo, v) then vminps(hi, v), the reference's selects, so results
 * are bit-exact with sgemm_scalar.c. Columns past nr are masked off.
 */
#include <immintrin.h>

#include "internal.h"

enum { MR = 6, NR = 16, KC = 256 };

#define PYRT_UNROLL _Pragma("GCC unroll 16")

/* Lanes [0, n) of 8 (n may be <= 0 or > 8). */
static inline __m256i lanes(int32_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

static inline __m256 clamp_to(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

static inline __attribute__((always_inline)) void tile(
    const int mr, int32_t nr, int32_t kc, const float *a, size_t lda,
    const float *b, const float *init, const float *clamp, float *y,
    size_t ldy) {
  const __m256i m0 = lanes(nr), m1 = lanes(nr - 8);
  __m256 c0[MR], c1[MR];
  if (init) {
    const __m256 i0 = _mm256_loadu_ps(init), i1 = _mm256_loadu_ps(init + 8);
    PYRT_UNROLL
    for (int r = 0; r < mr; r++) c0[r] = i0, c1[r] = i1;
  } else {
    PYRT_UNROLL
    for (int r = 0; r < mr; r++) {
      c0[r] = _mm256_maskload_ps(y + (size_t)r * ldy, m0);
      c1[r] = _mm256_maskload_ps(y + (size_t)r * ldy + 8, m1);
    }
  }
  for (int32_t k = 0; k < kc; k++, b += NR) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    PYRT_UNROLL
    for (int r = 0; r < mr; r++) {
      const __m256 av = _mm256_broadcast_ss(a + (size_t)r * lda + (size_t)k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
  if (clamp) {
    const __m256 lo = _mm256_set1_ps(clamp[0]), hi = _mm256_set1_ps(clamp[1]);
    PYRT_UNROLL
    for (int r = 0; r < mr; r++) {
      c0[r] = clamp_to(c0[r], lo, hi);
      c1[r] = clamp_to(c1[r], lo, hi);
    }
  }
  PYRT_UNROLL
  for (int r = 0; r < mr; r++) {
    float *d = y + (size_t)r * ldy;
    if (nr == NR) {
      _mm256_storeu_ps(d, c0[r]);
      _mm256_storeu_ps(d + 8, c1[r]);
    } else {
      _mm256_maskstore_ps(d, m0, c0[r]);
      _mm256_maskstore_ps(d + 8, m1, c1[r]);
    }
  }
}

static void ukernel(int32_t mr, int32_t nr, int32_t kc, const float *a,
                    size_t lda, const float *b, const float *init,
                    const float *clamp, float *y, size_t ldy) {
  switch (mr) {
    case 6:
      tile(6, nr, kc, a, lda, b, init, clamp, y, ldy);
      break;
    case 5:
      tile(5, nr, kc, a, lda, b, init, clamp, y, ldy);
      break;
    case 4:
      tile(4, nr, kc, a, lda, b, init, clamp, y, ldy);
      break;
    case 3:
      tile(3, nr, kc, a, lda, b, init, clamp, y, ldy);
      break;
    case 2:
      tile(2, nr, kc, a, lda, b, init, clamp, y, ldy);
      break;
    default:
      tile(1, nr, kc, a, lda, b, init, clamp, y, ldy);
      break;
  }
}

static inline __m256 load(const float *p, int masked, __m256i m) {
  return masked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}

/* Channels [c, c + 8 * nv) of pixels [0, px): each tap's weight vectors are
   loaded once for all px pixels. When `masked`, one vector of the lanes in
   m. */
static inline __attribute__((always_inline)) void dw_tile(
    const int px, const int nv, const int masked, int32_t c, __m256i m,
    int32_t taps, const float *const *x, const float *const *w, size_t at,
    size_t x_step, const float *bias, __m256 lo, __m256 hi, float *y,
    int32_t channels) {
  __m256 acc[4][2];
  for (int v = 0; v < nv; v++) {
    const __m256 bv = load(bias + c + 8 * v, masked, m);
    PYRT_UNROLL
    for (int p = 0; p < px; p++) acc[p][v] = bv;
  }
  for (int32_t i = 0; i < taps; i++) {
    const float *xi = x[i] + at + c, *wi = w[i] + c;
    for (int v = 0; v < nv; v++) {
      const __m256 wv = load(wi + 8 * v, masked, m);
      PYRT_UNROLL
      for (int p = 0; p < px; p++)
        acc[p][v] = _mm256_fmadd_ps(
            load(xi + (size_t)p * x_step + 8 * v, masked, m), wv, acc[p][v]);
    }
  }
  PYRT_UNROLL
  for (int p = 0; p < px; p++)
    for (int v = 0; v < nv; v++) {
      const __m256 out = clamp_to(acc[p][v], lo, hi);
      float *d = y + (size_t)p * channels + c + 8 * v;
      if (masked)
        _mm256_maskstore_ps(d, m, out);
      else
        _mm256_storeu_ps(d, out);
    }
}

/* Channels [c, c + 8 * nv) of every pixel, four at a time. */
static inline __attribute__((always_inline)) void dw_channels(
    const int nv, const int masked, int32_t c, __m256i m, int32_t taps,
    const float *const *x, const float *const *w, int32_t pixels, size_t x_step,
    const float *bias, __m256 lo, __m256 hi, float *y, int32_t channels) {
  int32_t p = 0;
  for (; p + 4 <= pixels; p += 4)
    dw_tile(4, nv, masked, c, m, taps, x, w, (size_t)p * x_step, x_step, bias,
            lo, hi, y + (size_t)p * channels, channels);
  for (; p < pixels; p++)
    dw_tile(1, nv, masked, c, m, taps, x, w, (size_t)p * x_step, x_step, bias,
            lo, hi, y + (size_t)p * channels, channels);
}

static void dwconv(int32_t channels, int32_t taps, const float *const *x,
                   const float *const *w, int32_t pixels, size_t x_step,
                   const float *bias, const float *clamp, float *y) {
  const __m256 lo = _mm256_set1_ps(clamp[0]), hi = _mm256_set1_ps(clamp[1]);
  const __m256i none = _mm256_setzero_si256();
  int32_t c = 0;
  for (; c + 16 <= channels; c += 16)
    dw_channels(2, 0, c, none, taps, x, w, pixels, x_step, bias, lo, hi, y,
                channels);
  for (; c + 8 <= channels; c += 8)
    dw_channels(1, 0, c, none, taps, x, w, pixels, x_step, bias, lo, hi, y,
                channels);
  if (c < channels)
    dw_channels(1, 1, c, lanes(channels - c), taps, x, w, pixels, x_step, bias,
                lo, hi, y, channels);
}

void pyrt_sgemm_init_avx2(pyrt_kernel_table *t) {
  t->sgemm = (pyrt_sgemm_config){MR, NR, KC, ukernel};
  t->sdwconv = (pyrt_sdwconv_config){dwconv};
}
