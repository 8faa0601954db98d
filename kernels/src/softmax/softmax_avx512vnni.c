/* AVX-512 softmax rows: softmax_scalar.c's arithmetic 16 lanes at a time
   (bit-exact with it; see fmath/fmath_avx512.h). */
#include "fmath/fmath_avx512.h"

static void softmax_rows(const pyrt_softmax_job *j, int64_t r0, int64_t r1,
                         float *buf) {
  const int32_t n = j->cols;
  const __m512 mul = _mm512_set1_ps(j->x_mul), div = _mm512_set1_ps(j->x_div);
  for (int64_t r = r0; r < r1; r++) {
    const float *m = j->mask ? j->mask + (r / j->rows_per_mask) * n : NULL;
    __m512 hi = _mm512_set1_ps(-INFINITY);
    for (int32_t c = 0; c < n; c += 16) {
      const __mmask16 k = pyrt_tail16(n - c);
      __m512 v = pyrt_load16(j->x, r * n + c, &j->qx, k);
      if (j->x_mul != 1.0f) v = _mm512_mul_ps(v, mul);
      if (j->x_div != 1.0f) v = _mm512_div_ps(v, div);
      if (m != NULL) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, m + c));
      _mm512_mask_storeu_ps(buf + c, k, v);
      hi = _mm512_mask_max_ps(hi, k, hi, v);
    }
    const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(hi));
    __m512 acc = _mm512_setzero_ps();
    for (int32_t c = 0; c < n; c += 16) {
      const __mmask16 k = pyrt_tail16(n - c);
      const __m512 e = pyrt_softmax_exp16(
          _mm512_sub_ps(_mm512_maskz_loadu_ps(k, buf + c), top));
      _mm512_mask_storeu_ps(buf + c, k, e);
      acc = _mm512_mask_add_ps(acc, k, acc, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / pyrt_fold16(acc));
    for (int32_t c = 0; c < n; c += 16) {
      const __mmask16 k = pyrt_tail16(n - c);
      const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, buf + c), inv);
      pyrt_store16(y, j->y, r * n + c, &j->qy, k);
    }
  }
}

void pyrt_softmax_init_avx512vnni(pyrt_kernel_table *t) {
  t->softmax = softmax_rows;
}
