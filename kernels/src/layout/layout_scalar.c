/* Scalar transpose (blocked so both sides stay in cache) and lookup table. */
#include <string.h>

#include "internal.h"

enum { TB = 32 };

/* Few rows (an image's channels into NHWC, a channel shuffle): y is written
   in order, one element of each row per column. */
#define PYRT_TRANSPOSE_FEW(NAME, T, R)                                \
  static void NAME(int64_t cols, const T *x, T *y) {                  \
    for (int64_t c = 0; c < cols; c++)                                \
      for (int64_t r = 0; r < R; r++) y[c * R + r] = x[r * cols + c]; \
  }
PYRT_TRANSPOSE_FEW(few8_2, uint8_t, 2)
PYRT_TRANSPOSE_FEW(few8_3, uint8_t, 3)
PYRT_TRANSPOSE_FEW(few8_4, uint8_t, 4)
PYRT_TRANSPOSE_FEW(few32_2, uint32_t, 2)
PYRT_TRANSPOSE_FEW(few32_3, uint32_t, 3)
PYRT_TRANSPOSE_FEW(few32_4, uint32_t, 4)

#define PYRT_TRANSPOSE(NAME, T, FEW2, FEW3, FEW4)                           \
  static void NAME(int64_t batch, int64_t rows, int64_t cols, const T *x,   \
                   T *y) {                                                  \
    void (*few)(int64_t, const T *, T *) = rows == 2   ? FEW2               \
                                           : rows == 3 ? FEW3               \
                                           : rows == 4 ? FEW4               \
                                                       : NULL;              \
    for (int64_t b = 0; b < batch; b++, x += rows * cols, y += rows * cols) \
      if (few)                                                              \
        few(cols, x, y);                                                    \
      else                                                                  \
        for (int64_t r0 = 0; r0 < rows; r0 += TB)                           \
          for (int64_t c0 = 0; c0 < cols; c0 += TB) {                       \
            const int64_t r1 = r0 + TB < rows ? r0 + TB : rows;             \
            const int64_t c1 = c0 + TB < cols ? c0 + TB : cols;             \
            for (int64_t c = c0; c < c1; c++)                               \
              for (int64_t r = r0; r < r1; r++)                             \
                y[c * rows + r] = x[r * cols + c];                          \
          }                                                                 \
  }
PYRT_TRANSPOSE(transpose8, uint8_t, few8_2, few8_3, few8_4)
PYRT_TRANSPOSE(transpose32, uint32_t, few32_2, few32_3, few32_4)

void pyrt_transpose_scalar(int32_t elem_size, int64_t batch, int64_t rows,
                           int64_t cols, const void *x, void *y) {
  if (rows == 1 || cols == 1) {
    memcpy(y, x, (size_t)(batch * rows * cols * elem_size));
  } else if (elem_size == 1) {
    transpose8(batch, rows, cols, (const uint8_t *)x, (uint8_t *)y);
  } else {
    transpose32(batch, rows, cols, (const uint32_t *)x, (uint32_t *)y);
  }
}

void pyrt_lut8_scalar(int64_t n, const uint8_t *table, const uint8_t *x,
                      uint8_t *y) {
  for (int64_t i = 0; i < n; i++) y[i] = table[x[i]];
}
