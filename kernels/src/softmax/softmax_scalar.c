/* Scalar softmax rows, the reference: per row
 *   v[c] = DQ(x[c]) * x_mul / x_div + mask[c]   (each skipped when 1,
 *                                          mask when NULL)
 *   m = max v (NaN propagates through v - m)
 *   e[c] = pyrt_softmax_expf(v[c] - m), s = sum e (PYRT_LANES partial sums)
 *   y[c] = Q(e[c] * (1 / s))
 * as onnxruntime (MLAS, AVX-512) computes it, bit for bit: max-subtract,
 * its exp, its sum order, a multiply by the reciprocal.
 */
#include "fmath/fmath.h"

void pyrt_softmax_scalar(const pyrt_softmax_job *j, int64_t r0, int64_t r1,
                         float *buf) {
  const int32_t n = j->cols;
  for (int64_t r = r0; r < r1; r++) {
    float *v = buf;
    pyrt_load_row(n, j->x, r * n, &j->qx, v);
    if (j->x_mul != 1.0f)
      for (int32_t c = 0; c < n; c++) v[c] = v[c] * j->x_mul;
    if (j->x_div != 1.0f)
      for (int32_t c = 0; c < n; c++) v[c] = v[c] / j->x_div;
    if (j->mask != NULL) {
      const float *m = j->mask + (r / j->rows_per_mask) * n;
      for (int32_t c = 0; c < n; c++) v[c] = v[c] + m[c];
    }
    float hi = v[0];
    for (int32_t c = 1; c < n; c++) hi = v[c] > hi ? v[c] : hi;
    for (int32_t c = 0; c < n; c++) v[c] = pyrt_softmax_expf(v[c] - hi);
    const float inv = 1.0f / pyrt_sum(n, v);
    for (int32_t c = 0; c < n; c++) v[c] = v[c] * inv;
    pyrt_store_row(n, v, j->y, r * n, &j->qy);
  }
}
