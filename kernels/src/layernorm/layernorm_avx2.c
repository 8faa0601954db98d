/* AVX2 LayerNormalization rows: layernorm_scalar.c's arithmetic 8 lanes at
   a time (bit-exact with it; see fmath/fmath_avx2.h). */
#include "fmath/fmath_avx2.h"

static void layernorm_rows(const pyrt_layernorm_job *j, int64_t r0, int64_t r1,
                           float *buf) {
  const int32_t n = j->cols;
  const pyrt_qparams f32 = {PYRT_F32, 1.0f, 0};
  for (int64_t r = r0; r < r1; r++) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int32_t c = 0; c < n; c += 8) {
      __m256 v = pyrt_load8(j->x, r * n + c, &j->qx, n - c);
      if (j->bias != NULL)
        v = _mm256_add_ps(v, pyrt_load8(j->bias, c, &f32, n - c));
      if (j->residual != NULL)
        v = _mm256_add_ps(v, pyrt_load8(j->residual, r * n + c, &j->qr, n - c));
      pyrt_store8(v, buf, c, &f32, n - c);
      if (j->sum != NULL) pyrt_store8(v, j->sum, r * n + c, &f32, n - c);
      pyrt_accumulate8(&lo, &hi, c, n - c, v);
    }
    const __m256 mean = _mm256_set1_ps(pyrt_fold8x2(lo, hi) / (float)n);
    lo = hi = _mm256_setzero_ps();
    for (int32_t c = 0; c < n; c += 8) {
      const __m256 t = _mm256_sub_ps(pyrt_load8(buf, c, &f32, n - c), mean);
      pyrt_store8(t, buf, c, &f32, n - c);
      pyrt_accumulate8(&lo, &hi, c, n - c, _mm256_mul_ps(t, t));
    }
    const __m256 inv = _mm256_set1_ps(
        1.0f / sqrtf(pyrt_fold8x2(lo, hi) / (float)n + j->epsilon));
    for (int32_t c = 0; c < n; c += 8) {
      __m256 v =
          _mm256_mul_ps(_mm256_mul_ps(pyrt_load8(buf, c, &f32, n - c), inv),
                        pyrt_load8(j->gamma, c, &f32, n - c));
      if (j->beta != NULL)
        v = _mm256_add_ps(v, pyrt_load8(j->beta, c, &f32, n - c));
      if (j->y != NULL) pyrt_store8(v, j->y, r * n + c, &f32, n - c);
      if (j->yq != NULL) pyrt_store8(v, j->yq, r * n + c, &j->qy, n - c);
    }
  }
}

void pyrt_layernorm_init_avx2(pyrt_kernel_table *t) {
  t->layernorm = layernorm_rows;
}
