/* AVX2 int8 Add / Mul: 16 elements per step in two float vectors, the
 * scalar definition's float steps in its order (qbinary_scalar.c; no FMA),
 * the last < 16 elements of a row by the scalar code.
 */
#include <immintrin.h>

#include "internal.h"

/* 16 codes at p, widened to float minus the zero point: lo, hi halves. */
static inline void widen16(const void *p, int32_t dtype, __m256 zero,
                           __m256 *lo, __m256 *hi) {
  const __m128i b = _mm_loadu_si128((const __m128i *)p);
  const __m128i b_hi = _mm_srli_si128(b, 8);
  const __m256i l =
      dtype == PYRT_U8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
  const __m256i h = dtype == PYRT_U8 ? _mm256_cvtepu8_epi32(b_hi)
                                     : _mm256_cvtepi8_epi32(b_hi);
  *lo = _mm256_sub_ps(_mm256_cvtepi32_ps(l), zero);
  *hi = _mm256_sub_ps(_mm256_cvtepi32_ps(h), zero);
}

static void qbinary(int32_t op, int64_t rows, int64_t cols, const void *a,
                    const pyrt_qparams *qa, const void *b, int32_t b_step,
                    const pyrt_qparams *qb, void *y, const pyrt_qparams *qy,
                    int32_t qmin, int32_t qmax) {
  const float ma = qa->scale / qy->scale, mb = qb->scale / qy->scale;
  const float mab = qa->scale * qb->scale / qy->scale;
  const __m256 vma = _mm256_set1_ps(ma), vmb = _mm256_set1_ps(mb);
  const __m256 vmab = _mm256_set1_ps(mab);
  const __m256 za = _mm256_set1_ps((float)qa->zero_point);
  const __m256 zb = _mm256_set1_ps((float)qb->zero_point);
  const __m256 zy = _mm256_set1_ps((float)qy->zero_point);
  const __m256 lo = _mm256_set1_ps((float)qmin);
  const __m256 hi = _mm256_set1_ps((float)qmax);
  const int u8 = qy->dtype == PYRT_U8;
  /* one b value: its float, as the scalar widens it */
  const float b0 = qb->dtype == PYRT_U8 ? (float)*(const uint8_t *)b
                                        : (float)*(const int8_t *)b;
  const __m256 vb_one = _mm256_sub_ps(_mm256_set1_ps(b0), zb);
  const int64_t body = cols / 16 * 16;
  for (int64_t r = 0; r < rows; r++) {
    const char *ar = (const char *)a + r * cols;
    char *yr = (char *)y + r * cols;
    for (int64_t c = 0; c < body; c += 16) {
      __m256 a0, a1, b0v = vb_one, b1v = vb_one, v0, v1;
      widen16(ar + c, qa->dtype, za, &a0, &a1);
      if (b_step) widen16((const char *)b + c, qb->dtype, zb, &b0v, &b1v);
      if (op == PYRT_ADD) {
        v0 = _mm256_add_ps(_mm256_mul_ps(a0, vma), _mm256_mul_ps(b0v, vmb));
        v1 = _mm256_add_ps(_mm256_mul_ps(a1, vma), _mm256_mul_ps(b1v, vmb));
      } else {
        v0 = _mm256_mul_ps(_mm256_mul_ps(a0, b0v), vmab);
        v1 = _mm256_mul_ps(_mm256_mul_ps(a1, b1v), vmab);
      }
      const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
      v0 = _mm256_add_ps(_mm256_round_ps(v0, rn), zy);
      v1 = _mm256_add_ps(_mm256_round_ps(v1, rn), zy);
      v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
      v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
      const __m256i w = _mm256_permute4x64_epi64(
          _mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1)),
          0xD8);
      const __m128i wl = _mm256_castsi256_si128(w);
      const __m128i wh = _mm256_extracti128_si256(w, 1);
      _mm_storeu_si128((__m128i *)(yr + c),
                       u8 ? _mm_packus_epi16(wl, wh) : _mm_packs_epi16(wl, wh));
    }
    if (body < cols)
      pyrt_qbinary_scalar(op, 1, cols - body, ar + body, qa,
                          (const char *)b + (b_step ? body : 0), b_step, qb,
                          yr + body, qy, qmin, qmax);
  }
}

void pyrt_qbinary_init_avx2(pyrt_kernel_table *t) {
  t->qbinary = qbinary;
}
