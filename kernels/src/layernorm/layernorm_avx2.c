/* AVX2 LayerNormalization rows: layernorm_scalar.c's arithmetic 8 lanes at
   a time (bit-exact with it; see fmath/fmath_avx2.h). */
#include "fmath/fmath_avx2.h"

/* v = DQ(x) (+ bias) (+ DQ(residual)) of row r, also to j->sum if asked. */
static void load_row(const pyrt_layernorm_job *j, int64_t r, float *v) {
  const int32_t n = j->cols;
  const pyrt_qparams f32 = {PYRT_F32, 1.0f, 0};
  for (int32_t c = 0; c < n; c += 8) {
    __m256 x = pyrt_load8(j->x, r * n + c, &j->qx, n - c);
    if (j->bias != NULL)
      x = _mm256_add_ps(x, pyrt_load8(j->bias, c, &f32, n - c));
    if (j->residual != NULL)
      x = _mm256_add_ps(x, pyrt_load8(j->residual, r * n + c, &j->qr, n - c));
    pyrt_store8(x, v, c, &f32, n - c);
    if (j->sum != NULL) pyrt_store8(x, j->sum, r * n + c, &f32, n - c);
  }
}

static void store_row(const pyrt_layernorm_job *j, int64_t r, const float *v,
                      float mean_, float inv_) {
  const int32_t n = j->cols;
  const pyrt_qparams f32 = {PYRT_F32, 1.0f, 0};
  const __m256 mean = _mm256_set1_ps(mean_), inv = _mm256_set1_ps(inv_);
  for (int32_t c = 0; c < n; c += 8) {
    const __m256 t =
        _mm256_mul_ps(_mm256_sub_ps(pyrt_load8(v, c, &f32, n - c), mean), inv);
    const __m256 g = pyrt_load8(j->gamma, c, &f32, n - c);
    const __m256 y =
        j->beta != NULL
            ? _mm256_fmadd_ps(t, g, pyrt_load8(j->beta, c, &f32, n - c))
            : _mm256_mul_ps(t, g);
    if (j->y != NULL) pyrt_store8(y, j->y, r * n + c, &f32, n - c);
    if (j->yq != NULL) pyrt_store8(y, j->yq, r * n + c, &j->qy, n - c);
  }
}

static void layernorm_rows(const pyrt_layernorm_job *j, int64_t r0, int64_t r1,
                           float *buf) {
  const int32_t n = j->cols;
  for (int64_t g = r0; g < r1; g += PYRT_LN_ROWS) {
    const int rows = r1 - g < PYRT_LN_ROWS ? (int)(r1 - g) : PYRT_LN_ROWS;
    const float *v_rows[PYRT_LN_ROWS];
    for (int i = 0; i < PYRT_LN_ROWS;
         i++) /* short groups repeat their last row */
      v_rows[i] = buf + (size_t)(i < rows ? i : rows - 1) * n;
    for (int i = 0; i < rows; i++) load_row(j, g + i, buf + (size_t)i * n);
    float means[PYRT_LN_ROWS], invs[PYRT_LN_ROWS];
    pyrt_ln_stats8(n, v_rows, j->epsilon, means, invs);
    for (int i = 0; i < rows; i++)
      store_row(j, g + i, v_rows[i], means[i], invs[i]);
  }
}

void pyrt_layernorm_init_avx2(pyrt_kernel_table *t) {
  t->layernorm = layernorm_rows;
}
