/* AVX2 LayerNormalization rows: layernorm_scalar.c's arithmetic 8 lanes at
   a time (bit-exact with it; see fmath/fmath_avx2.h). */
#include "fmath/fmath_avx2.h"

static void layernorm_rows(const pyrt_layernorm_job *j, int64_t r0, int64_t r1,
                           float *buf) {
  const int32_t n = j->cols;
  const pyrt_qparams f32 = {PYRT_F32, 1.0f, 0};
  for (int64_t r = r0; r < r1; r++) {
    for (int32_t c = 0; c < n; c += 8) {
      __m256 v = pyrt_load8(j->x, r * n + c, &j->qx, n - c);
      if (j->bias != NULL)
        v = _mm256_add_ps(v, pyrt_load8(j->bias, c, &f32, n - c));
      if (j->residual != NULL)
        v = _mm256_add_ps(v, pyrt_load8(j->residual, r * n + c, &j->qr, n - c));
      pyrt_store8(v, buf, c, &f32, n - c);
      if (j->sum != NULL) pyrt_store8(v, j->sum, r * n + c, &f32, n - c);
    }
    float mean_, inv_;
    pyrt_ln_stats8(n, buf, j->epsilon, &mean_, &inv_);
    const __m256 mean = _mm256_set1_ps(mean_), inv = _mm256_set1_ps(inv_);
    for (int32_t c = 0; c < n; c += 8) {
      const __m256 t = _mm256_mul_ps(
          _mm256_sub_ps(pyrt_load8(buf, c, &f32, n - c), mean), inv);
      const __m256 g = pyrt_load8(j->gamma, c, &f32, n - c);
      const __m256 v =
          j->beta != NULL
              ? _mm256_fmadd_ps(t, g, pyrt_load8(j->beta, c, &f32, n - c))
              : _mm256_mul_ps(t, g);
      if (j->y != NULL) pyrt_store8(v, j->y, r * n + c, &f32, n - c);
      if (j->yq != NULL) pyrt_store8(v, j->yq, r * n + c, &j->qy, n - c);
    }
  }
}

void pyrt_layernorm_init_avx2(pyrt_kernel_table *t) {
  t->layernorm = layernorm_rows;
}
