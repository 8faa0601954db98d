/* Scalar bias + activation rows, the reference: per row
 *   v[c] = DQ(x[c]) (+ bias[c])
 *   GELU:      y = (0.5 * v) * (1 + erf(v / sqrt 2))     (pyrt_erff)
 *   GELU_TANH: y = (0.5 * v) * (1 + tanh(sqrt(2/pi) * (v + 0.044715 v^3)))
 *   IDENTITY:  y = v
 * then stored (quantized when y is U8 / S8).
 */
#include "fmath/fmath.h"

void pyrt_activation_scalar(const pyrt_activation_job *j, int64_t r0,
                            int64_t r1, float *buf) {
  const int32_t n = j->cols;
  for (int64_t r = r0; r < r1; r++) {
    float *v = buf;
    pyrt_load_row(n, j->x, r * n, &j->qx, v);
    if (j->bias != NULL)
      for (int32_t c = 0; c < n; c++) v[c] = v[c] + j->bias[c];
    if (j->act == PYRT_ACT_GELU) {
      for (int32_t c = 0; c < n; c++)
        v[c] = (0.5f * v[c]) * (1.0f + pyrt_erff(v[c] / 1.41421356237309505f));
    } else if (j->act == PYRT_ACT_GELU_TANH) {
      for (int32_t c = 0; c < n; c++) {
        const float x = v[c];
        const float u = 0.797884560802865356f * (x + 0.044715f * (x * x * x));
        v[c] = (0.5f * x) * (1.0f + pyrt_tanhf(u));
      }
    }
    pyrt_store_row(n, v, j->y, r * n, &j->qy);
  }
}
