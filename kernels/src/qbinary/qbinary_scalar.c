/*
 * Scalar int8 Add / Mul (QLinearAdd / QLinearMul). Arithmetic, in float:
 *   ma = sa / sy, mb = sb / sy, mab = (sa * sb) / sy    (once per call)
 *   va = (float)a - (float)za, vb = (float)b - (float)zb  (both exact)
 *   ADD: v = va * ma + vb * mb     MUL: v = (va * vb) * mab  (va * vb exact)
 *   y = clamp(rintf(v) + zy, qmin, qmax)
 * No fused multiply-add (pragma below; CMake adds -ffp-contract=off).
 * pyrt_qbinary rejects parameters for which v could be Inf or NaN. Work goes
 * in chunks: widen a and b to float, combine, narrow; each loop has a single
 * dtype and vectorizes.
 */
#include <math.h>

#include "internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

enum { CHUNK = 256 };

/* dst[i] = (float)p[i] - zero */
static void widen(const void *p, int32_t dtype, int64_t at, int32_t n,
                  float zero, float *dst) {
  if (dtype == PYRT_U8) {
    const uint8_t *q = (const uint8_t *)p + at;
    for (int32_t i = 0; i < n; i++) dst[i] = (float)q[i] - zero;
  } else {
    const int8_t *q = (const int8_t *)p + at;
    for (int32_t i = 0; i < n; i++) dst[i] = (float)q[i] - zero;
  }
}

static void narrow(const float *v, int32_t n, float zero, float lo, float hi,
                   int32_t dtype, void *p, int64_t at) {
  if (dtype == PYRT_U8) {
    uint8_t *q = (uint8_t *)p + at;
    for (int32_t i = 0; i < n; i++) {
      float r = rintf(v[i]) + zero;
      r = r < lo ? lo : r > hi ? hi : r;
      q[i] = (uint8_t)r;
    }
  } else {
    int8_t *q = (int8_t *)p + at;
    for (int32_t i = 0; i < n; i++) {
      float r = rintf(v[i]) + zero;
      r = r < lo ? lo : r > hi ? hi : r;
      q[i] = (int8_t)r;
    }
  }
}

void pyrt_qbinary_scalar(int32_t op, int64_t rows, int64_t cols, const void *a,
                         const pyrt_qparams *qa, const void *b, int32_t b_step,
                         const pyrt_qparams *qb, void *y,
                         const pyrt_qparams *qy, int32_t qmin, int32_t qmax) {
  const float ma = qa->scale / qy->scale, mb = qb->scale / qy->scale;
  const float mab = qa->scale * qb->scale / qy->scale;
  float va[CHUNK], vb[CHUNK];
  if (b_step == 0) { /* one b value: widen it once */
    widen(b, qb->dtype, 0, 1, (float)qb->zero_point, vb);
    for (int32_t i = 1; i < CHUNK; i++) vb[i] = vb[0];
  }
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
      const int32_t m = cols - c0 < CHUNK ? (int32_t)(cols - c0) : CHUNK;
      const int64_t at = r * cols + c0;
      widen(a, qa->dtype, at, m, (float)qa->zero_point, va);
      if (b_step) widen(b, qb->dtype, c0, m, (float)qb->zero_point, vb);
      if (op == PYRT_ADD)
        for (int32_t i = 0; i < m; i++) va[i] = va[i] * ma + vb[i] * mb;
      else
        for (int32_t i = 0; i < m; i++) va[i] = va[i] * vb[i] * mab;
      narrow(va, m, (float)qy->zero_point, (float)qmin, (float)qmax, qy->dtype,
             y, at);
    }
}
