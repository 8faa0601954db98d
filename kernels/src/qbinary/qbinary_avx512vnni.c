/* AVX-512 int8 Add / Mul: 16 elements per float vector, the scalar
 * definition's float steps in its order (qbinary_scalar.c; no FMA). Whole
 * runs of 64 round in the conversion and take the zero point and clamp on
 * saturating packs (requant_avx512.h: bit-identical to the float clamp, a
 * NaN lands on qmin as in the masked tail); the row's tail is masked.
 */
#include <immintrin.h>

#include "requant/requant_avx512.h"

static inline __m512 widen16(__m128i b, int32_t dtype, __m512 zero) {
  const __m512i v =
      dtype == PYRT_U8 ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
  return _mm512_sub_ps(_mm512_cvtepi32_ps(v), zero);
}

static inline __mmask16 tail_mask(int64_t left) {
  return (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
}

static void qbinary(int32_t op, int64_t rows, int64_t cols, const void *a,
                    const pyrt_qparams *qa, const void *b, int32_t b_step,
                    const pyrt_qparams *qb, void *y, const pyrt_qparams *qy,
                    int32_t qmin, int32_t qmax) {
  const float ma = qa->scale / qy->scale, mb = qb->scale / qy->scale;
  const float mab = qa->scale * qb->scale / qy->scale;
  const __m512 vma = _mm512_set1_ps(ma), vmb = _mm512_set1_ps(mb);
  const __m512 vmab = _mm512_set1_ps(mab);
  const __m512 za = _mm512_set1_ps((float)qa->zero_point);
  const __m512 zb = _mm512_set1_ps((float)qb->zero_point);
  const __m512 zy = _mm512_set1_ps((float)qy->zero_point);
  const __m512 lo = _mm512_set1_ps((float)qmin);
  const __m512 hi = _mm512_set1_ps((float)qmax);
  const int u8 = qy->dtype == PYRT_U8, add = op == PYRT_ADD;
  const int32_t a_dtype = qa->dtype, b_dtype = qb->dtype; /* not reloaded */
  const float b0 = qb->dtype == PYRT_U8 ? (float)*(const uint8_t *)b
                                        : (float)*(const int8_t *)b;
  const __m512 vb_one = _mm512_sub_ps(_mm512_set1_ps(b0), zb);
  const pyrt_output_stage stage = {qy->dtype,      0,    NULL,
                                   qy->zero_point, qmin, qmax};
  const pyrt_avx512_bytes k = pyrt_avx512_bytes_init(&stage);
  const __m512 big = _mm512_set1_ps(2147483520.0f);
  for (int64_t r = 0; r < rows; r++) {
    const char *ar = (const char *)a + r * cols;
    char *yr = (char *)y + r * cols;
    int64_t c = 0;
    for (; c + 64 <= cols; c += 64) {
      __m512i q[4];
      for (int i = 0; i < 4; i++) {
        const int64_t at = c + 16 * i;
        const __m512 va =
            widen16(_mm_loadu_si128((const __m128i *)(ar + at)), a_dtype, za);
        const __m512 vb =
            b_step
                ? widen16(
                      _mm_loadu_si128((const __m128i *)((const char *)b + at)),
                      b_dtype, zb)
                : vb_one;
        const __m512 v =
            add ? _mm512_add_ps(_mm512_mul_ps(va, vma), _mm512_mul_ps(vb, vmb))
                : _mm512_mul_ps(_mm512_mul_ps(va, vb), vmab);
        q[i] = _mm512_cvt_roundps_epi32(
            _mm512_min_ps(big, v),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      }
      _mm512_storeu_si512((void *)(yr + c),
                          pyrt_avx512_rows(q[0], q[1], q[2], q[3], &k));
    }
    for (; c < cols; c += 16) {
      const __mmask16 m = tail_mask(cols - c);
      const __m512 va = widen16(_mm_maskz_loadu_epi8(m, ar + c), a_dtype, za);
      const __m512 vb =
          b_step ? widen16(_mm_maskz_loadu_epi8(m, (const char *)b + c),
                           b_dtype, zb)
                 : vb_one;
      __m512 v =
          add ? _mm512_add_ps(_mm512_mul_ps(va, vma), _mm512_mul_ps(vb, vmb))
              : _mm512_mul_ps(_mm512_mul_ps(va, vb), vmab);
      v = _mm512_add_ps(_mm512_roundscale_ps(
                            v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                        zy);
      const __m512i q =
          _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi));
      if (u8)
        _mm_mask_storeu_epi8(yr + c, m, _mm512_cvtusepi32_epi8(q));
      else
        _mm_mask_storeu_epi8(yr + c, m, _mm512_cvtsepi32_epi8(q));
    }
  }
}

void pyrt_qbinary_init_avx512vnni(pyrt_kernel_table *t) {
  t->qbinary = qbinary;
}
