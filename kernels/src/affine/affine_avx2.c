/* AVX2 per-channel affine map: 8 lanes of the scalar definition's float
   steps (affine_scalar.c: one fma, rint, + zero, clamp); a run's last < 8
   elements take the scalar code, which is the same definition. */
#include <immintrin.h>

#include "internal.h"

/* clamp as the scalar v < lo ? lo : v, then v > hi ? hi : v (NaN passes). */
static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

static void affine8(int64_t n, const void *x, const float *a, const float *b,
                    int32_t step, const pyrt_affine_args *p, void *y) {
  const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
  const __m256 xz = _mm256_set1_ps(p->x_zero), yz = _mm256_set1_ps(p->y_zero);
  __m256 va = _mm256_set1_ps(a[0]), vb = _mm256_set1_ps(b[0]);
  const int64_t full = n / 8 * 8;
  for (int64_t i = 0; i < full; i += 8) {
    if (step) va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);
    if (p->x_dtype == PYRT_F32) {
      const __m256 v = _mm256_add_ps(
          _mm256_mul_ps(_mm256_loadu_ps((const float *)x + i), va), vb);
      _mm256_storeu_ps((float *)y + i, clamp8(v, lo, hi));
      continue;
    }
    const __m128i raw = _mm_loadl_epi64((const __m128i *)((const char *)x + i));
    const __m256i wide = p->x_dtype == PYRT_U8 ? _mm256_cvtepu8_epi32(raw)
                                               : _mm256_cvtepi8_epi32(raw);
    const __m256 xf = _mm256_sub_ps(_mm256_cvtepi32_ps(wide), xz);
    const __m256 v =
        _mm256_round_ps(_mm256_fmadd_ps(xf, va, vb),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i q = _mm256_cvtps_epi32(clamp8(_mm256_add_ps(v, yz), lo, hi));
    /* 8 int32 in range -> 8 bytes */
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q),
                                        _mm256_extracti128_si256(q, 1));
    const __m128i out = p->y_dtype == PYRT_U8 ? _mm_packus_epi16(w16, w16)
                                              : _mm_packs_epi16(w16, w16);
    _mm_storel_epi64((__m128i *)((char *)y + i), out);
  }
  if (full < n) {
    const int64_t size = p->x_dtype == PYRT_F32 ? 4 : 1;
    pyrt_channel_affine_scalar(n - full, (const char *)x + full * size,
                               a + full * step, b + full * step, step, p,
                               (char *)y + full * size);
  }
}

void pyrt_affine_init_avx2(pyrt_kernel_table *t) {
  t->channel_affine = affine8;
}
