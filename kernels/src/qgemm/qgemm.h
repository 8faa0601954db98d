/* Packing shared by qgemm, qconv and qdwconv (kernels/src/qgemm/qgemm.c). */
#ifndef PYRT_QGEMM_H
#define PYRT_QGEMM_H

#include "internal.h"

/* Bytes a pack of `kind` (PYRT_PACK_GEMM or PYRT_PACK_DWCONV) takes. */
size_t pyrt_pack_int8_size(int32_t kind, int32_t M, int32_t K);
/* Validates w / w_zero and writes header, row sums, zero points and the ISA
   weight block. `op` names the caller in error messages. */
int pyrt_pack_int8(const char *op, int32_t kind, int32_t M, int32_t K,
                   const void *w, int32_t w_dtype, const int32_t *w_zero,
                   int32_t w_zero_per_row, void *packed);
/* 0 if `packed` is a pack of `kind` for M x K under the active ISA. */
int pyrt_check_pack(const char *op, const void *packed, int32_t kind, int32_t M,
                    int32_t K);

#endif
