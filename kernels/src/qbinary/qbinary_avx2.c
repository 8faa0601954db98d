/* AVX2 int8 Add / Mul: 16 elements per step in two float vectors, the
 * scalar definition's float steps in its order (qbinary_scalar.c; no FMA);
 * a row's last < 16 elements through zero-padded copies.
 */
#include <immintrin.h>
#include <string.h>

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

/* The call's constants, in registers. */
typedef struct {
  __m256 ma, mb, mab, za, zb, zy, lo, hi, b_one;
  int32_t a_dtype, b_dtype, add, u8, b_step;
} consts;

/* 16 outputs at y from 16 codes at a and (b_step) at b. */
static inline __attribute__((always_inline)) void step16(const consts *k,
                                                         const char *a,
                                                         const char *b,
                                                         char *y) {
  __m256 a0, a1, b0 = k->b_one, b1 = k->b_one, v0, v1;
  widen16(a, k->a_dtype, k->za, &a0, &a1);
  if (k->b_step) widen16(b, k->b_dtype, k->zb, &b0, &b1);
  if (k->add) {
    v0 = _mm256_add_ps(_mm256_mul_ps(a0, k->ma), _mm256_mul_ps(b0, k->mb));
    v1 = _mm256_add_ps(_mm256_mul_ps(a1, k->ma), _mm256_mul_ps(b1, k->mb));
  } else {
    v0 = _mm256_mul_ps(_mm256_mul_ps(a0, b0), k->mab);
    v1 = _mm256_mul_ps(_mm256_mul_ps(a1, b1), k->mab);
  }
  const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  v0 = _mm256_add_ps(_mm256_round_ps(v0, rn), k->zy);
  v1 = _mm256_add_ps(_mm256_round_ps(v1, rn), k->zy);
  v0 = _mm256_min_ps(_mm256_max_ps(v0, k->lo), k->hi);
  v1 = _mm256_min_ps(_mm256_max_ps(v1, k->lo), k->hi);
  const __m256i w = _mm256_permute4x64_epi64(
      _mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1)), 0xD8);
  const __m128i wl = _mm256_castsi256_si128(w);
  const __m128i wh = _mm256_extracti128_si256(w, 1);
  _mm_storeu_si128((__m128i *)y,
                   k->u8 ? _mm_packus_epi16(wl, wh) : _mm_packs_epi16(wl, wh));
}

static void qbinary(int32_t op, int64_t rows, int64_t cols, const void *a,
                    const pyrt_qparams *qa, const void *b, int32_t b_step,
                    const pyrt_qparams *qb, void *y, const pyrt_qparams *qy,
                    int32_t qmin, int32_t qmax) {
  consts k;
  k.ma = _mm256_set1_ps(qa->scale / qy->scale);
  k.mb = _mm256_set1_ps(qb->scale / qy->scale);
  k.mab = _mm256_set1_ps(qa->scale * qb->scale / qy->scale);
  k.za = _mm256_set1_ps((float)qa->zero_point);
  k.zb = _mm256_set1_ps((float)qb->zero_point);
  k.zy = _mm256_set1_ps((float)qy->zero_point);
  k.lo = _mm256_set1_ps((float)qmin);
  k.hi = _mm256_set1_ps((float)qmax);
  /* one b value: its float, as the scalar widens it */
  const float b0 = qb->dtype == PYRT_U8 ? (float)*(const uint8_t *)b
                                        : (float)*(const int8_t *)b;
  k.b_one = _mm256_sub_ps(_mm256_set1_ps(b0), k.zb);
  k.a_dtype = qa->dtype, k.b_dtype = qb->dtype, k.b_step = b_step;
  k.add = op == PYRT_ADD, k.u8 = qy->dtype == PYRT_U8;
  const int64_t body = cols / 16 * 16;
  const size_t tail = (size_t)(cols - body);
  for (int64_t r = 0; r < rows; r++) {
    const char *ar = (const char *)a + r * cols;
    char *yr = (char *)y + r * cols;
    for (int64_t c = 0; c < body; c += 16)
      step16(&k, ar + c, (const char *)b + c, yr + c);
    if (tail) { /* the last < 16 through zero-padded copies */
      char a_tail[16] = {0}, b_tail[16] = {0}, y_tail[16];
      memcpy(a_tail, ar + body, tail);
      if (b_step) memcpy(b_tail, (const char *)b + body, tail);
      step16(&k, a_tail, b_tail, y_tail);
      memcpy(yr + body, y_tail, tail);
    }
  }
}

void pyrt_qbinary_init_avx2(pyrt_kernel_table *t) {
  t->qbinary = qbinary;
}
