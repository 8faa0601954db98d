#include "requant/requant.h"

void pyrt_requantize_scalar(int64_t rows, int64_t cols, int32_t channels,
                            const int32_t *acc, const pyrt_output_stage *out,
                            void *y) {
  for (int64_t r = 0; r < rows; r++)
    pyrt_output_row(acc + r * cols, cols, pyrt_stage_scale(out, r % channels),
                    out, y, r * cols);
}
