/* One definition of how an int32 accumulator becomes an output value, shared
   by requantize, qgemm, qconv and qdwconv so every path rounds alike. */
#ifndef PYRT_REQUANT_H
#define PYRT_REQUANT_H

#include <math.h>

#include "internal.h"

/* rint(acc * scale) + zero, clamped to [qmin, qmax] in float before the
   conversion (no out-of-range float->int UB). Half to even by rintf. */
static inline int32_t pyrt_requant_value(int32_t acc, float scale, float zero,
                                         float qmin, float qmax) {
  float v = rintf((float)acc * scale) + zero;
  v = v < qmin ? qmin : v;
  v = v > qmax ? qmax : v;
  return (int32_t)v;
}

/* Writes n accumulators of one channel into y (element offset `at`). */
static inline void pyrt_output_row(const int32_t *acc, int64_t n, float scale,
                                   const pyrt_output_stage *out, void *y,
                                   int64_t at) {
  const float zero = (float)out->zero_point;
  const float qmin = (float)out->qmin, qmax = (float)out->qmax;
  switch (out->out_dtype) {
    case PYRT_U8: {
      uint8_t *dst = (uint8_t *)y + at;
      for (int64_t i = 0; i < n; i++)
        dst[i] = (uint8_t)pyrt_requant_value(acc[i], scale, zero, qmin, qmax);
      break;
    }
    case PYRT_S8: {
      int8_t *dst = (int8_t *)y + at;
      for (int64_t i = 0; i < n; i++)
        dst[i] = (int8_t)pyrt_requant_value(acc[i], scale, zero, qmin, qmax);
      break;
    }
    case PYRT_S32: {
      int32_t *dst = (int32_t *)y + at;
      for (int64_t i = 0; i < n; i++) dst[i] = acc[i];
      break;
    }
    default: {
      float *dst = (float *)y + at;
      for (int64_t i = 0; i < n; i++) dst[i] = (float)acc[i] * scale;
      break;
    }
  }
}

/* Writes n accumulators of n consecutive channels (NHWC rows: the channel
   is the column) into y (element offset `at`); scale[i] is channel i's, or
   scale[0] for all when per_channel is 0. */
static inline void pyrt_output_channels(const int32_t *acc, int64_t n,
                                        const float *scale, int32_t per_channel,
                                        const pyrt_output_stage *out, void *y,
                                        int64_t at) {
  const float zero = (float)out->zero_point;
  const float qmin = (float)out->qmin, qmax = (float)out->qmax;
  const int64_t step = per_channel ? 1 : 0;
  switch (out->out_dtype) {
    case PYRT_U8: {
      uint8_t *dst = (uint8_t *)y + at;
      for (int64_t i = 0; i < n; i++)
        dst[i] = (uint8_t)pyrt_requant_value(acc[i], scale[i * step], zero,
                                             qmin, qmax);
      break;
    }
    case PYRT_S8: {
      int8_t *dst = (int8_t *)y + at;
      for (int64_t i = 0; i < n; i++)
        dst[i] = (int8_t)pyrt_requant_value(acc[i], scale[i * step], zero, qmin,
                                            qmax);
      break;
    }
    case PYRT_S32: {
      int32_t *dst = (int32_t *)y + at;
      for (int64_t i = 0; i < n; i++) dst[i] = acc[i];
      break;
    }
    default: {
      float *dst = (float *)y + at;
      for (int64_t i = 0; i < n; i++) dst[i] = (float)acc[i] * scale[i * step];
      break;
    }
  }
}

static inline float pyrt_stage_scale(const pyrt_output_stage *out, int64_t c) {
  return out->per_channel ? out->scale[c] : out->scale[0];
}

/* Validates an output stage for `channels` channels; 0 or an error code. */
int pyrt_check_output_stage(const char *op, const pyrt_output_stage *out,
                            int64_t channels);

#endif
