/* Scalar transpose (blocked so both sides stay in cache) and lookup table. */
#include <string.h>

#include "internal.h"

enum { TB = 32 };

/* Few rows (an image's channels into NHWC, a channel shuffle): y is written
   in order, one element of each row per column. */
#define PYRT_TRANSPOSE_FEW(NAME, T, R)                               \
  static void NAME(int64_t cols, const T *x, int64_t ldx, T *y) {    \
    for (int64_t c = 0; c < cols; c++)                               \
      for (int64_t r = 0; r < R; r++) y[c * R + r] = x[r * ldx + c]; \
  }
PYRT_TRANSPOSE_FEW(few8_2, uint8_t, 2)
PYRT_TRANSPOSE_FEW(few8_3, uint8_t, 3)
PYRT_TRANSPOSE_FEW(few8_4, uint8_t, 4)
PYRT_TRANSPOSE_FEW(few32_2, uint32_t, 2)
PYRT_TRANSPOSE_FEW(few32_3, uint32_t, 3)
PYRT_TRANSPOSE_FEW(few32_4, uint32_t, 4)

#define PYRT_TRANSPOSE(NAME, T, FEW2, FEW3, FEW4)                             \
  static void NAME(int64_t rows, int64_t cols, const T *x, int64_t ldx,       \
                   T *y) {                                                    \
    void (*few)(int64_t, const T *, int64_t, T *) = rows == 2   ? FEW2        \
                                                    : rows == 3 ? FEW3        \
                                                    : rows == 4 ? FEW4        \
                                                                : NULL;       \
    if (few) {                                                                \
      few(cols, x, ldx, y);                                                   \
      return;                                                                 \
    }                                                                         \
    for (int64_t r0 = 0; r0 < rows; r0 += TB)                                 \
      for (int64_t c0 = 0; c0 < cols; c0 += TB) {                             \
        const int64_t r1 = r0 + TB < rows ? r0 + TB : rows;                   \
        const int64_t c1 = c0 + TB < cols ? c0 + TB : cols;                   \
        for (int64_t c = c0; c < c1; c++)                                     \
          for (int64_t r = r0; r < r1; r++) y[c * rows + r] = x[r * ldx + c]; \
      }                                                                       \
  }
PYRT_TRANSPOSE(transpose8, uint8_t, few8_2, few8_3, few8_4)
PYRT_TRANSPOSE(transpose32, uint32_t, few32_2, few32_3, few32_4)

void pyrt_transpose_scalar(int32_t elem_size, int64_t rows, int64_t cols,
                           const void *x, int64_t ldx, void *y) {
  if (elem_size == 1)
    transpose8(rows, cols, (const uint8_t *)x, ldx, (uint8_t *)y);
  else
    transpose32(rows, cols, (const uint32_t *)x, ldx, (uint32_t *)y);
}

void pyrt_lut8_scalar(int64_t n, const uint8_t *table, const uint8_t *x,
                      uint8_t *y) {
  for (int64_t i = 0; i < n; i++) y[i] = table[x[i]];
}
