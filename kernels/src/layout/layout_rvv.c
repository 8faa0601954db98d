/* RVV transpose, y[c][r] = x[r * ldx + c]: each row of y is a strided load
 * of a column of x (vlse8 / vlse32) and one contiguous store. Lookup
 * tables: one indexed load (vluxei8, the codes as byte offsets) per vector.
 */
#include <riscv_vector.h>

#include "internal.h"

static void transpose(int32_t elem_size, int64_t rows, int64_t cols,
                      const void *x, int64_t ldx, void *y) {
  const ptrdiff_t stride = (ptrdiff_t)(ldx * elem_size);
  for (int64_t c = 0; c < cols; c++) {
    const char *src = (const char *)x + c * elem_size;
    char *dst = (char *)y + c * rows * elem_size;
    for (int64_t r = 0; r < rows;) {
      if (elem_size == 1) {
        const size_t vl = __riscv_vsetvl_e8m8((size_t)(rows - r));
        __riscv_vse8_v_u8m8(
            (uint8_t *)dst + r,
            __riscv_vlse8_v_u8m8((const uint8_t *)src + r * stride, stride, vl),
            vl);
        r += (int64_t)vl;
      } else {
        const size_t vl = __riscv_vsetvl_e32m8((size_t)(rows - r));
        __riscv_vse32_v_u32m8(
            (uint32_t *)dst + r,
            __riscv_vlse32_v_u32m8(
                (const uint32_t *)(const void *)(src + r * stride), stride, vl),
            vl);
        r += (int64_t)vl;
      }
    }
  }
}

static void lut8(int64_t n, const uint8_t *table, const uint8_t *x,
                 uint8_t *y) {
  for (size_t vl; n > 0; n -= (int64_t)vl, x += vl, y += vl) {
    vl = __riscv_vsetvl_e8m8((size_t)n);
    __riscv_vse8_v_u8m8(
        y, __riscv_vluxei8_v_u8m8(table, __riscv_vle8_v_u8m8(x, vl), vl), vl);
  }
}

void pyrt_layout_init_rvv(pyrt_kernel_table *t) {
  t->transpose = transpose;
  t->lut8 = lut8;
}
