/* Scalar LayerNormalization rows, the reference: per row of n values
 *   v[c] = DQ(x[c]) (+ bias[c]) (+ DQ(residual[c]))
 *   mean, inv = pyrt_ln_stats(v)          (fmath.h: onnxruntime's order)
 *   out[c] = fma((v[c] - mean) * inv, gamma[c], beta[c])
 *            or (v[c] - mean) * inv * gamma[c] without beta
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
    float mean, inv;
    pyrt_ln_stats(n, v, j->epsilon, &mean, &inv);
    for (int32_t c = 0; c < n; c++) {
      const float t = (v[c] - mean) * inv;
      v[c] =
          j->beta != NULL ? fmaf(t, j->gamma[c], j->beta[c]) : t * j->gamma[c];
    }
    if (j->y != NULL) memcpy(j->y + r * n, v, (size_t)n * sizeof(float));
    if (j->yq != NULL) pyrt_store_row(n, v, j->yq, r * n, &j->qy);
  }
}
