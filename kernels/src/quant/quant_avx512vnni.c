/* AVX-512 QuantizeLinear / DequantizeLinear for runs with one scale and
 * zero point (per tensor, per axis): 16 elements per vector, the tail
 * masked, the scalar definition's float steps in the same order (IEEE
 * division, round to nearest even, NaN -> zero point, clamp); runs with
 * per-element parameters by the scalar code.
 */
#include <immintrin.h>

#include "internal.h"

static int32_t zero_at(const void *zero, int32_t dtype) {
  if (zero == NULL) return 0;
  if (dtype == PYRT_U8) return *(const uint8_t *)zero;
  if (dtype == PYRT_S8) return *(const int8_t *)zero;
  return *(const int32_t *)zero;
}

static inline __mmask16 tail_mask(int64_t left) {
  return (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
}

static void quantize(int64_t n, const float *x, const float *scale,
                     const void *zero, int64_t step, int32_t out_dtype,
                     void *y) {
  if (step != 0) {
    pyrt_quantize_scalar(n, x, scale, zero, step, out_dtype, y);
    return;
  }
  const int u8 = out_dtype == PYRT_U8;
  const __m512 s = _mm512_set1_ps(scale[0]);
  const __m512 z = _mm512_set1_ps((float)zero_at(zero, out_dtype));
  const __m512 lo = _mm512_set1_ps(u8 ? 0.0f : -128.0f);
  const __m512 hi = _mm512_set1_ps(u8 ? 255.0f : 127.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), s);
    v = _mm512_add_ps(
        _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
        z);
    v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v, z);
    const __m512i q =
        _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi));
    char *dst = (char *)y + i;
    if (u8)
      _mm_mask_storeu_epi8(dst, m, _mm512_cvtusepi32_epi8(q));
    else
      _mm_mask_storeu_epi8(dst, m, _mm512_cvtsepi32_epi8(q));
  }
}

static void dequantize(int64_t n, const void *x, int32_t x_dtype,
                       const float *scale, const void *zero, int64_t step,
                       float *y) {
  if (step != 0) {
    pyrt_dequantize_scalar(n, x, x_dtype, scale, zero, step, y);
    return;
  }
  const int32_t zero32 = zero_at(zero, x_dtype);
  if (x_dtype == PYRT_S32 && zero32 != 0) { /* the scalar's int64 difference */
    pyrt_dequantize_scalar(n, x, x_dtype, scale, zero, step, y);
    return;
  }
  const __m512 s = _mm512_set1_ps(scale[0]);
  const __m512i z = _mm512_set1_epi32(zero32);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __m512i q;
    if (x_dtype == PYRT_S32) {
      q = _mm512_maskz_loadu_epi32(m, (const int32_t *)x + i);
    } else {
      const __m128i b = _mm_maskz_loadu_epi8(m, (const char *)x + i);
      q = x_dtype == PYRT_U8 ? _mm512_cvtepu8_epi32(b)
                             : _mm512_cvtepi8_epi32(b);
      q = _mm512_sub_epi32(q, z);
    }
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(q), s));
  }
}

/* min / max return their second operand when one is NaN: NaNs drop out */
static void range_f32(int64_t n, const float *x, float *lo, float *hi) {
  __m512 l0 = _mm512_setzero_ps(), h0 = l0, l1 = l0, h1 = l0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    l0 = _mm512_min_ps(a, l0), h0 = _mm512_max_ps(a, h0);
    l1 = _mm512_min_ps(b, l1), h1 = _mm512_max_ps(b, h1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 a = _mm512_maskz_loadu_ps(m, x + i); /* zeros past n */
    l0 = _mm512_min_ps(a, l0), h0 = _mm512_max_ps(a, h0);
  }
  *lo = _mm512_reduce_min_ps(_mm512_min_ps(l0, l1));
  *hi = _mm512_reduce_max_ps(_mm512_max_ps(h0, h1));
}

void pyrt_quant_init_avx512vnni(pyrt_kernel_table *t) {
  t->range_f32 = range_f32;
  t->quantize = quantize;
  t->dequantize = dequantize;
}
