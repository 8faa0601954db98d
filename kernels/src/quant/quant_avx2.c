/* AVX2 QuantizeLinear / DequantizeLinear for runs with one scale and zero
 * point (per tensor, per axis): 32 elements per step, the scalar
 * definition's float steps in the same order (IEEE division, round to
 * nearest even, NaN -> zero point, clamp), the rest of a run and runs with
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

/* 8 floats -> 8 integral, clamped values as int32. */
static inline __m256i quantize8(__m256 x, __m256 s, __m256 z, __m256 lo,
                                __m256 hi) {
  __m256 v = _mm256_round_ps(_mm256_div_ps(x, s),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_add_ps(v, z);
  v = _mm256_blendv_ps(v, z, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
}

static void quantize(int64_t n, const float *x, const float *scale,
                     const void *zero, int64_t step, int32_t out_dtype,
                     void *y) {
  int64_t i = 0;
  if (step == 0) {
    const int u8 = out_dtype == PYRT_U8;
    const __m256 s = _mm256_set1_ps(scale[0]);
    const __m256 z = _mm256_set1_ps((float)zero_at(zero, out_dtype));
    const __m256 lo = _mm256_set1_ps(u8 ? 0.0f : -128.0f);
    const __m256 hi = _mm256_set1_ps(u8 ? 255.0f : 127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (; i + 32 <= n; i += 32) {
      const __m256i q0 = quantize8(_mm256_loadu_ps(x + i), s, z, lo, hi);
      const __m256i q1 = quantize8(_mm256_loadu_ps(x + i + 8), s, z, lo, hi);
      const __m256i q2 = quantize8(_mm256_loadu_ps(x + i + 16), s, z, lo, hi);
      const __m256i q3 = quantize8(_mm256_loadu_ps(x + i + 24), s, z, lo, hi);
      const __m256i w01 = _mm256_packs_epi32(q0, q1);
      const __m256i w23 = _mm256_packs_epi32(q2, q3);
      const __m256i b =
          u8 ? _mm256_packus_epi16(w01, w23) : _mm256_packs_epi16(w01, w23);
      _mm256_storeu_si256((__m256i *)((char *)y + i),
                          _mm256_permutevar8x32_epi32(b, order));
    }
  }
  if (i < n)
    pyrt_quantize_scalar(n - i, x + i, scale, zero, step, out_dtype,
                         (char *)y + i);
}

static void dequantize(int64_t n, const void *x, int32_t x_dtype,
                       const float *scale, const void *zero, int64_t step,
                       float *y) {
  int64_t i = 0;
  const int32_t z = zero_at(zero, x_dtype);
  /* S32 with a zero point takes the scalar int64 difference */
  if (step == 0 && (x_dtype != PYRT_S32 || z == 0)) {
    const __m256 s = _mm256_set1_ps(scale[0]);
    const __m256i zv = _mm256_set1_epi32(z);
    for (; i + 8 <= n; i += 8) {
      __m256i q;
      if (x_dtype == PYRT_S32) {
        q = _mm256_loadu_si256((const __m256i *)((const int32_t *)x + i));
      } else {
        const __m128i b =
            _mm_loadl_epi64((const __m128i *)((const char *)x + i));
        q = x_dtype == PYRT_U8 ? _mm256_cvtepu8_epi32(b)
                               : _mm256_cvtepi8_epi32(b);
        q = _mm256_sub_epi32(q, zv);
      }
      _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), s));
    }
  }
  if (i < n) {
    const size_t width = x_dtype == PYRT_S32 ? 4 : 1;
    pyrt_dequantize_scalar(n - i, (const char *)x + (size_t)i * width, x_dtype,
                           scale, zero, step, y + i);
  }
}

/* min / max return their second operand when one is NaN: NaNs drop out */
static void range_f32(int64_t n, const float *x, float *lo, float *hi) {
  __m256 l = _mm256_setzero_ps(), h = l;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(x + i);
    l = _mm256_min_ps(a, l), h = _mm256_max_ps(a, h);
  }
  float lanes_l[8], lanes_h[8];
  _mm256_storeu_ps(lanes_l, l);
  _mm256_storeu_ps(lanes_h, h);
  float rl = 0.0f, rh = 0.0f;
  for (int k = 0; k < 8; k++) {
    rl = lanes_l[k] < rl ? lanes_l[k] : rl;
    rh = lanes_h[k] > rh ? lanes_h[k] : rh;
  }
  for (; i < n; i++) {
    rl = x[i] < rl ? x[i] : rl;
    rh = x[i] > rh ? x[i] : rh;
  }
  *lo = rl, *hi = rh;
}

void pyrt_quant_init_avx2(pyrt_kernel_table *t) {
  t->range_f32 = range_f32;
  t->quantize = quantize;
  t->dequantize = dequantize;
}
