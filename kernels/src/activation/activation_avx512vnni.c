/* AVX-512 bias + activation rows: activation_scalar.c's arithmetic 16 lanes
   at a time (bit-exact with it; see fmath/fmath_avx512.h). */
#include "fmath/fmath_avx512.h"

static void activation_rows(const pyrt_activation_job *j, int64_t r0,
                            int64_t r1, float *buf) {
  (void)buf;
  const int32_t n = j->cols;
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  for (int64_t r = r0; r < r1; r++) {
    for (int32_t c = 0; c < n; c += 16) {
      const __mmask16 k = pyrt_tail16(n - c);
      __m512 v = pyrt_load16(j->x, r * n + c, &j->qx, k);
      if (j->bias != NULL)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, j->bias + c));
      if (j->act == PYRT_ACT_GELU) {
        const __m512 e =
            pyrt_erf16(_mm512_div_ps(v, _mm512_set1_ps(1.41421356237309505f)));
        v = _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, e));
      } else if (j->act == PYRT_ACT_GELU_TANH) {
        const __m512 cube = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
        const __m512 u = _mm512_mul_ps(
            _mm512_set1_ps(0.797884560802865356f),
            _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(0.044715f), cube)));
        v = _mm512_mul_ps(_mm512_mul_ps(half, v),
                          _mm512_add_ps(one, pyrt_tanh16(u)));
      }
      pyrt_store16(v, j->y, r * n + c, &j->qy, k);
    }
  }
}

void pyrt_activation_init_avx512vnni(pyrt_kernel_table *t) {
  t->activation = activation_rows;
}
