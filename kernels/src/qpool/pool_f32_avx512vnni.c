/* The fp32 pools of pool_f32.h compiled with avx512vnni's flags (wider vectors,
   the same operations per channel: the scalar table's bits). */
#include "internal.h"
#include "qpool/pool_f32.h"

static void maxpool(const pyrt_pool2d_shape *s, const float *x, float *y,
                    int64_t r0, int64_t r1) {
  pyrt_maxpool2d_f32_rows(s, x, y, r0, r1);
}

static void avgpool(const pyrt_pool2d_shape *s, const float *x, float *y,
                    int64_t r0, int64_t r1) {
  pyrt_avgpool2d_f32_rows(s, x, y, r0, r1);
}

void pyrt_pool_f32_init_avx512vnni(pyrt_kernel_table *t) {
  t->maxpool2d_f32 = maxpool;
  t->avgpool2d_f32 = avgpool;
}
