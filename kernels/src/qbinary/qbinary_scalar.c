/* Scalar int8 Add / Mul: real values combined in float with multipliers
   computed once, then rounded half to even into y's quantization. */
#include <math.h>

#include "internal.h"

static float load(const void *p, int32_t dtype, int64_t i) {
  return dtype == PYRT_U8 ? (float)((const uint8_t *)p)[i]
                          : (float)((const int8_t *)p)[i];
}

void pyrt_qbinary_scalar(int32_t op, int64_t n, const void *a,
                         const pyrt_qparams *qa, const void *b,
                         const pyrt_qparams *qb, void *y,
                         const pyrt_qparams *qy, int32_t qmin, int32_t qmax) {
  const float za = (float)qa->zero_point, zb = (float)qb->zero_point;
  const float zy = (float)qy->zero_point, lo = (float)qmin, hi = (float)qmax;
  const float ma = qa->scale / qy->scale, mb = qb->scale / qy->scale;
  const float mab = qa->scale * qb->scale / qy->scale;
  for (int64_t i = 0; i < n; i++) {
    const float va = load(a, qa->dtype, i) - za,
                vb = load(b, qb->dtype, i) - zb;
    float v = op == PYRT_ADD ? va * ma + vb * mb : va * vb * mab;
    v = rintf(v) + zy;
    v = v < lo ? lo : v > hi ? hi : v;
    if (qy->dtype == PYRT_U8)
      ((uint8_t *)y)[i] = (uint8_t)v;
    else
      ((int8_t *)y)[i] = (int8_t)v;
  }
}
