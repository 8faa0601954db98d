/* AVX-512 LayerNormalization rows: layernorm_scalar.c's arithmetic 16 lanes
   at a time (bit-exact with it; see fmath/fmath_avx512.h), the statistics
   in onnxruntime's own 4- and 8-lane vectors (fmath/fmath_avx2.h). */
#include "fmath/fmath_avx2.h"
#include "fmath/fmath_avx512.h"

static void layernorm_rows(const pyrt_layernorm_job *j, int64_t r0, int64_t r1,
                           float *buf) {
  const int32_t n = j->cols;
  for (int64_t r = r0; r < r1; r++) {
    for (int32_t c = 0; c < n; c += 16) {
      const __mmask16 k = pyrt_tail16(n - c);
      __m512 v = pyrt_load16(j->x, r * n + c, &j->qx, k);
      if (j->bias != NULL)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, j->bias + c));
      if (j->residual != NULL)
        v = _mm512_add_ps(v, pyrt_load16(j->residual, r * n + c, &j->qr, k));
      _mm512_mask_storeu_ps(buf + c, k, v);
      if (j->sum != NULL) _mm512_mask_storeu_ps(j->sum + r * n + c, k, v);
    }
    float mean_, inv_;
    pyrt_ln_stats8(n, buf, j->epsilon, &mean_, &inv_);
    const __m512 mean = _mm512_set1_ps(mean_), inv = _mm512_set1_ps(inv_);
    for (int32_t c = 0; c < n; c += 16) {
      const __mmask16 k = pyrt_tail16(n - c);
      const __m512 t = _mm512_mul_ps(
          _mm512_sub_ps(_mm512_maskz_loadu_ps(k, buf + c), mean), inv);
      const __m512 g = _mm512_maskz_loadu_ps(k, j->gamma + c);
      const __m512 v =
          j->beta != NULL
              ? _mm512_fmadd_ps(t, g, _mm512_maskz_loadu_ps(k, j->beta + c))
              : _mm512_mul_ps(t, g);
      if (j->y != NULL) _mm512_mask_storeu_ps(j->y + r * n + c, k, v);
      if (j->yq != NULL) pyrt_store16(v, j->yq, r * n + c, &j->qy, k);
    }
  }
}

void pyrt_layernorm_init_avx512vnni(pyrt_kernel_table *t) {
  t->layernorm = layernorm_rows;
}
