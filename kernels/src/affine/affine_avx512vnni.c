/* AVX-512 per-channel affine map: 16 lanes of the scalar definition's float
   steps (affine_scalar.c: one fma, rint, + zero, clamp); a run's last < 16
   elements take the scalar code, which is the same definition. */
#include <immintrin.h>

#include "internal.h"

/* clamp as the scalar v < lo ? lo : v, then v > hi ? hi : v (NaN passes). */
static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) {
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

static void affine16(int64_t n, const void *x, const float *a, const float *b,
                     int32_t step, const pyrt_affine_args *p, void *y) {
  const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
  const __m512 xz = _mm512_set1_ps(p->x_zero), yz = _mm512_set1_ps(p->y_zero);
  __m512 va = _mm512_set1_ps(a[0]), vb = _mm512_set1_ps(b[0]);
  const int64_t full = n / 16 * 16;
  for (int64_t i = 0; i < full; i += 16) {
    if (step) va = _mm512_loadu_ps(a + i), vb = _mm512_loadu_ps(b + i);
    if (p->x_dtype == PYRT_F32) {
      const __m512 v = _mm512_add_ps(
          _mm512_mul_ps(_mm512_loadu_ps((const float *)x + i), va), vb);
      _mm512_storeu_ps((float *)y + i, clamp16(v, lo, hi));
      continue;
    }
    const __m128i raw = _mm_loadu_si128((const __m128i *)((const char *)x + i));
    const __m512i wide = p->x_dtype == PYRT_U8 ? _mm512_cvtepu8_epi32(raw)
                                               : _mm512_cvtepi8_epi32(raw);
    const __m512 xf = _mm512_sub_ps(_mm512_cvtepi32_ps(wide), xz);
    const __m512 v =
        _mm512_roundscale_ps(_mm512_fmadd_ps(xf, va, vb),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i q = _mm512_cvtps_epi32(clamp16(_mm512_add_ps(v, yz), lo, hi));
    const __m128i out = p->y_dtype == PYRT_U8 ? _mm512_cvtusepi32_epi8(q)
                                              : _mm512_cvtsepi32_epi8(q);
    _mm_storeu_si128((__m128i *)((char *)y + i), out);
  }
  if (full < n) {
    const int64_t size = p->x_dtype == PYRT_F32 ? 4 : 1;
    pyrt_channel_affine_scalar(n - full, (const char *)x + full * size,
                               a + full * step, b + full * step, step, p,
                               (char *)y + full * size);
  }
}

void pyrt_affine_init_avx512vnni(pyrt_kernel_table *t) {
  t->channel_affine = affine16;
}
