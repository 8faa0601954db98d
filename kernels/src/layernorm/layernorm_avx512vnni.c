/* AVX-512 LayerNormalization rows: layernorm_scalar.c's arithmetic 16 lanes
   at a time (bit-exact with it; see fmath/fmath_avx512.h), the statistics
   in onnxruntime's own 4- and 8-lane vectors (fmath/fmath_avx2.h). */
#include "fmath/fmath_avx2.h"
#include "fmath/fmath_avx512.h"

/* v = DQ(x) (+ bias) (+ DQ(residual)) of row r, also to j->sum if asked. */
static void load_row(const pyrt_layernorm_job *j, int64_t r, float *v) {
  const int32_t n = j->cols;
  for (int32_t c = 0; c < n; c += 16) {
    const __mmask16 k = pyrt_tail16(n - c);
    __m512 x = pyrt_load16(j->x, r * n + c, &j->qx, k);
    if (j->bias != NULL)
      x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, j->bias + c));
    if (j->residual != NULL)
      x = _mm512_add_ps(x, pyrt_load16(j->residual, r * n + c, &j->qr, k));
    _mm512_mask_storeu_ps(v + c, k, x);
    if (j->sum != NULL) _mm512_mask_storeu_ps(j->sum + r * n + c, k, x);
  }
}

static void store_row(const pyrt_layernorm_job *j, int64_t r, const float *v,
                      float mean_, float inv_) {
  const int32_t n = j->cols;
  const __m512 mean = _mm512_set1_ps(mean_), inv = _mm512_set1_ps(inv_);
  for (int32_t c = 0; c < n; c += 16) {
    const __mmask16 k = pyrt_tail16(n - c);
    const __m512 t = _mm512_mul_ps(
        _mm512_sub_ps(_mm512_maskz_loadu_ps(k, v + c), mean), inv);
    const __m512 g = _mm512_maskz_loadu_ps(k, j->gamma + c);
    const __m512 y =
        j->beta != NULL
            ? _mm512_fmadd_ps(t, g, _mm512_maskz_loadu_ps(k, j->beta + c))
            : _mm512_mul_ps(t, g);
    if (j->y != NULL) _mm512_mask_storeu_ps(j->y + r * n + c, k, y);
    if (j->yq != NULL) pyrt_store16(y, j->yq, r * n + c, &j->qy, k);
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

void pyrt_layernorm_init_avx512vnni(pyrt_kernel_table *t) {
  t->layernorm = layernorm_rows;
}
