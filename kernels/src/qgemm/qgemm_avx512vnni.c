/* AVX512-VNNI int8 GEMM tile: 8 rows x 32 columns over K groups of 4.
 *
 * Per K group, two zmm of packed weights (32 columns x 4 s8) are loaded
 * once and each row's 4 activation bytes are broadcast into a zmm; one
 * vpdpbusd (u8 x s8, four products summed into each int32 lane, wrapping,
 * no saturation) per row and column vector. 16 accumulators, 2 weight
 * vectors and a broadcast fit the 32 registers. The epilogue requantizes 16
 * channels at a time with the scalar definition's exact float steps.
 */
#include <immintrin.h>
#include <string.h>

#include "requant/requant.h"

enum { MR = 8, NR = 32, KR = 4 };

static inline __attribute__((always_inline)) void tile(const int mr, int32_t kp,
                                                       const uint8_t *a,
                                                       size_t lda,
                                                       const int8_t *b,
                                                       int32_t *acc) {
  __m512i c0[MR], c1[MR];
  for (int r = 0; r < mr; r++) c0[r] = c1[r] = _mm512_setzero_si512();
  for (int32_t k = 0; k < kp; k += KR, b += NR * KR) {
    const __m512i b0 = _mm512_loadu_si512((const void *)b);
    const __m512i b1 = _mm512_loadu_si512((const void *)(b + 64));
    for (int r = 0; r < mr; r++) {
      int32_t word;
      memcpy(&word, a + (size_t)r * lda + (size_t)k, 4);
      const __m512i av = _mm512_set1_epi32(word);
      c0[r] = _mm512_dpbusd_epi32(c0[r], av, b0);
      c1[r] = _mm512_dpbusd_epi32(c1[r], av, b1);
    }
  }
  for (int r = 0; r < mr; r++) {
    _mm512_storeu_si512((void *)(acc + r * NR), c0[r]);
    _mm512_storeu_si512((void *)(acc + r * NR + 16), c1[r]);
  }
}

static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc) {
  const int8_t *w = (const int8_t *)b;
  switch (mr) {
    case 8:
      tile(8, kp, a, lda, w, acc);
      break;
    case 7:
      tile(7, kp, a, lda, w, acc);
      break;
    case 6:
      tile(6, kp, a, lda, w, acc);
      break;
    case 5:
      tile(5, kp, a, lda, w, acc);
      break;
    case 4:
      tile(4, kp, a, lda, w, acc);
      break;
    case 3:
      tile(3, kp, a, lda, w, acc);
      break;
    case 2:
      tile(2, kp, a, lda, w, acc);
      break;
    default:
      tile(1, kp, a, lda, w, acc);
      break;
  }
}

static void epilogue(int32_t mr, int32_t nr, const int32_t *acc, int32_t ld_acc,
                     const int32_t *fixed, const int32_t *w_zero,
                     const int32_t *row_sum, const float *scale,
                     const pyrt_output_stage *out, void *y, size_t ldy) {
  if (out->out_dtype != PYRT_U8 && out->out_dtype != PYRT_S8) {
    pyrt_qgemm_epilogue_scalar(mr, nr, acc, ld_acc, fixed, w_zero, row_sum,
                               scale, out, y, ldy);
    return;
  }
  const __m512 zero = _mm512_set1_ps((float)out->zero_point);
  const __m512 qmin = _mm512_set1_ps((float)out->qmin);
  const __m512 qmax = _mm512_set1_ps((float)out->qmax);
  const __m512 one_scale = _mm512_set1_ps(scale[0]);
  for (int32_t j = 0; j < nr; j += 16) {
    const __mmask16 m =
        nr - j >= 16 ? 0xFFFF : (__mmask16)((1u << (nr - j)) - 1);
    const __m512i f = _mm512_maskz_loadu_epi32(m, fixed + j);
    const __m512i zw = w_zero ? _mm512_maskz_loadu_epi32(m, w_zero + j)
                              : _mm512_setzero_si512();
    const __m512 s =
        out->per_channel ? _mm512_maskz_loadu_ps(m, scale + j) : one_scale;
    for (int32_t r = 0; r < mr; r++) {
      __m512i v = _mm512_add_epi32(
          _mm512_maskz_loadu_epi32(m, acc + (size_t)r * ld_acc + j), f);
      if (w_zero)
        v = _mm512_sub_epi32(
            v, _mm512_mullo_epi32(zw, _mm512_set1_epi32(row_sum[r])));
      __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(v), s);
      x = _mm512_roundscale_ps(x,
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      x = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(x, zero), qmin), qmax);
      const __m512i q = _mm512_cvtps_epi32(x);
      char *dst = (char *)y + (size_t)r * ldy + (size_t)j;
      if (out->out_dtype == PYRT_U8)
        _mm_mask_storeu_epi8(dst, m, _mm512_cvtusepi32_epi8(q));
      else
        _mm_mask_storeu_epi8(dst, m, _mm512_cvtsepi32_epi8(q));
    }
  }
}

void pyrt_qgemm_init_avx512vnni(pyrt_kernel_table *t) {
  t->qgemm =
      (pyrt_qgemm_config){MR, NR, KR, 1, 1, ukernel, NULL, epilogue, NULL};
}
