/* AVX2 softmax rows: softmax_scalar.c's arithmetic 8 lanes at a time
   (bit-exact with it; see fmath/fmath_avx2.h). */
#include "fmath/fmath_avx2.h"

static void softmax_rows(const pyrt_softmax_job *j, int64_t r0, int64_t r1,
                         float *buf) {
  const int32_t n = j->cols;
  const __m256 mul = _mm256_set1_ps(j->x_mul), div = _mm256_set1_ps(j->x_div);
  const pyrt_qparams f32 = {PYRT_F32, 1.0f, 0};
  for (int64_t r = r0; r < r1; r++) {
    const float *m = j->mask ? j->mask + (r / j->rows_per_mask) * n : NULL;
    __m256 hi = _mm256_set1_ps(-INFINITY);
    for (int32_t c = 0; c < n; c += 8) {
      __m256 v = pyrt_load8(j->x, r * n + c, &j->qx, n - c);
      if (j->x_mul != 1.0f) v = _mm256_mul_ps(v, mul);
      if (j->x_div != 1.0f) v = _mm256_div_ps(v, div);
      if (m != NULL) v = _mm256_add_ps(v, pyrt_load8(m, c, &f32, n - c));
      pyrt_store8(v, buf, c, &f32, n - c);
      hi = _mm256_blendv_ps(hi, _mm256_max_ps(hi, v), pyrt_valid8(n - c));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, hi);
    float top = lanes[0];
    for (int l = 1; l < 8; l++) top = lanes[l] > top ? lanes[l] : top;
    const __m256 t = _mm256_set1_ps(top);
    __m256 lo = _mm256_setzero_ps(), hi16 = _mm256_setzero_ps();
    for (int32_t c = 0; c < n; c += 8) {
      const __m256 e =
          pyrt_softmax_exp8(_mm256_sub_ps(pyrt_load8(buf, c, &f32, n - c), t));
      pyrt_store8(e, buf, c, &f32, n - c);
      pyrt_accumulate8(&lo, &hi16, c, n - c, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / pyrt_fold8x2(lo, hi16));
    for (int32_t c = 0; c < n; c += 8) {
      const __m256 y = _mm256_mul_ps(pyrt_load8(buf, c, &f32, n - c), inv);
      pyrt_store8(y, j->y, r * n + c, &j->qy, n - c);
    }
  }
}

void pyrt_softmax_init_avx2(pyrt_kernel_table *t) {
  t->softmax = softmax_rows;
}
