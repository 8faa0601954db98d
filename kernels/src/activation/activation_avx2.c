/* AVX2 bias + activation rows: activation_scalar.c's arithmetic 8 lanes at a
   time (bit-exact with it; see fmath/fmath_avx2.h). */
#include "fmath/fmath_avx2.h"

static void activation_rows(const pyrt_activation_job *j, int64_t r0,
                            int64_t r1, float *buf) {
  (void)buf;
  const int32_t n = j->cols;
  const pyrt_qparams f32 = {PYRT_F32, 1.0f, 0};
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  for (int64_t r = r0; r < r1; r++) {
    for (int32_t c = 0; c < n; c += 8) {
      __m256 v = pyrt_load8(j->x, r * n + c, &j->qx, n - c);
      if (j->bias != NULL)
        v = _mm256_add_ps(v, pyrt_load8(j->bias, c, &f32, n - c));
      if (j->act == PYRT_ACT_GELU) {
        const __m256 e =
            pyrt_erf8(_mm256_div_ps(v, _mm256_set1_ps(1.41421356237309505f)));
        v = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e));
      } else if (j->act == PYRT_ACT_GELU_TANH) {
        const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
        const __m256 u = _mm256_mul_ps(
            _mm256_set1_ps(0.797884560802865356f),
            _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(0.044715f), cube)));
        v = _mm256_mul_ps(_mm256_mul_ps(half, v),
                          _mm256_add_ps(one, pyrt_tanh8(u)));
      }
      pyrt_store8(v, j->y, r * n + c, &j->qy, n - c);
    }
  }
}

void pyrt_activation_init_avx2(pyrt_kernel_table *t) {
  t->activation = activation_rows;
}
