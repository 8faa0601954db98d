/* Scalar LayerNormalization rows, the reference: per row of n values
 *   v[c] = DQ(x[c]) (+ bias[c]) (+ DQ(residual[c]))
 *   mean = sum v / n, var = sum (v - mean)^2 / n   (PYRT_LANES partial sums)
 *   inv = 1 / sqrtf(var + epsilon)
 *   out[c] = (v[c] - mean) * inv * gamma[c] (+ beta[c])
 * then the float row and / or its quantization (and v itself if asked).
 */
#include "fmath/fmath.h"

void pyrt_layernorm_scalar(const pyrt_layernorm_job *j, int64_t r0, int64_t r1,
                           float *buf) {
  const int32_t n = j->cols;
  float *v = buf, *d = buf + n;
  for (int64_t r = r0; r < r1; r++) {
    pyrt_load_row(n, j->x, r * n, &j->qx, v);
    if (j->bias != NULL)
      for (int32_t c = 0; c < n; c++) v[c] = v[c] + j->bias[c];
    if (j->residual != NULL) {
      pyrt_load_row(n, j->residual, r * n, &j->qr, d);
      for (int32_t c = 0; c < n; c++) v[c] = v[c] + d[c];
    }
    if (j->sum != NULL) memcpy(j->sum + r * n, v, (size_t)n * sizeof(float));
    const float mean = pyrt_sum(n, v) / (float)n;
    for (int32_t c = 0; c < n; c++) {
      const float t = v[c] - mean;
      v[c] = t;
      d[c] = t * t;
    }
    const float inv = 1.0f / sqrtf(pyrt_sum(n, d) / (float)n + j->epsilon);
    for (int32_t c = 0; c < n; c++) v[c] = v[c] * inv * j->gamma[c];
    if (j->beta != NULL)
      for (int32_t c = 0; c < n; c++) v[c] = v[c] + j->beta[c];
    if (j->y != NULL) memcpy(j->y + r * n, v, (size_t)n * sizeof(float));
    if (j->yq != NULL) pyrt_store_row(n, v, j->yq, r * n, &j->qy);
  }
}
