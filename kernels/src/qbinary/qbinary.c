/* Public int8 elementwise Add / Mul (QLinearAdd / QLinearMul semantics);
   the arithmetic is described in qbinary_scalar.c. */
#include <math.h>

#include "internal.h"

static int check_qparams(const char *what, const pyrt_qparams *q) {
  if (q == NULL) return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s is NULL", what);
  if (q->dtype != PYRT_U8 && q->dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s dtype must be U8 or S8", what);
  if (!isfinite(q->scale) || q->scale <= 0.0f)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s scale must be finite and > 0",
                     what);
  const int32_t lo = q->dtype == PYRT_U8 ? 0 : -128;
  if (q->zero_point < lo || q->zero_point > lo + 255)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: %s zero point %d out of range",
                     what, q->zero_point);
  return PYRT_OK;
}

int pyrt_qbinary(pyrt_context *ctx, int32_t op, int64_t n, const void *a,
                 const pyrt_qparams *qa, const void *b, const pyrt_qparams *qb,
                 void *y, const pyrt_qparams *qy, int32_t qmin, int32_t qmax) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "qbinary: ctx is NULL");
  if (op != PYRT_ADD && op != PYRT_MUL)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: unknown op %d", op);
  if (n <= 0) return pyrt_fail(PYRT_ERR_ARG, "qbinary: n must be > 0");
  if (a == NULL || b == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: NULL buffer");
  int rc = check_qparams("a", qa);
  if (!rc) rc = check_qparams("b", qb);
  if (!rc) rc = check_qparams("y", qy);
  if (rc) return rc;
  const int32_t lo = qy->dtype == PYRT_U8 ? 0 : -128;
  if (qmin < lo || qmax > lo + 255 || qmin > qmax)
    return pyrt_fail(PYRT_ERR_ARG, "qbinary: clamp [%d, %d] out of range", qmin,
                     qmax);
  /* The kernel's multipliers (same expressions): finite, and the largest
     |v| (|a - za|, |b - zb| <= 255) finite, so v is never Inf or NaN. */
  const float ma = qa->scale / qy->scale, mb = qb->scale / qy->scale;
  const float mab = qa->scale * qb->scale / qy->scale;
  const float worst =
      op == PYRT_ADD ? 255.0f * ma + 255.0f * mb : 65025.0f * mab;
  if (!isfinite(worst))
    return pyrt_fail(PYRT_ERR_ARG,
                     "qbinary: scales a %g, b %g, y %g give an infinite "
                     "multiplier",
                     (double)qa->scale, (double)qb->scale, (double)qy->scale);
  ctx->t->qbinary(op, n, a, qa, b, qb, y, qy, qmin, qmax);
  return PYRT_OK;
}
