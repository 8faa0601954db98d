/* The kernel tables, filled once from the CPU's features, and per-thread
 * error text. Each level starts as a copy of the level below and overrides
 * the entries it does better: scalar -> avx2 -> avxvnni and
 * scalar -> avx2 -> avx512vnni on x86,
 * scalar -> rvv on RISC-V.
 */
#if defined(PYRT_HAVE_RISCV)
#define _GNU_SOURCE /* syscall(), for riscv_hwprobe */
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[512];

int pyrt_fail(int code, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, args);
  va_end(args);
  return code;
}

const char *pyrt_last_error(void) {
  return last_error;
}

static void init_scalar(pyrt_kernel_table *t) {
  pyrt_init_scalar(t);
  pyrt_qdwconv_init_scalar(t);
  t->requantize = pyrt_requantize_scalar;
  pyrt_sgemm_init_scalar(t);
  t->quantize = pyrt_quantize_scalar;
  t->range_f32 = pyrt_range_f32_scalar;
  t->dequantize = pyrt_dequantize_scalar;
  t->qbinary = pyrt_qbinary_scalar;
  t->qmaxpool2d = pyrt_qmaxpool2d_scalar;
  t->qmaxpool2d_nhwc = pyrt_qmaxpool2d_nhwc_scalar;
  t->qavgpool2d = pyrt_qavgpool2d_scalar;
  t->qavgpool2d_nhwc = pyrt_qavgpool2d_nhwc_scalar;
  t->qglobalavgpool = pyrt_qglobalavgpool_scalar;
  t->softmax = pyrt_softmax_scalar;
  t->layernorm = pyrt_layernorm_scalar;
  t->activation = pyrt_activation_scalar;
  t->qglobalavgpool_nhwc = pyrt_qglobalavgpool_nhwc_scalar;
  t->transpose = pyrt_transpose_scalar;
  t->lut8 = pyrt_lut8_scalar;
  t->channel_affine = pyrt_channel_affine_scalar;
  t->maxpool2d_f32 = pyrt_maxpool2d_f32_scalar;
  t->avgpool2d_f32 = pyrt_avgpool2d_f32_scalar;
  pyrt_felem_init_scalar(t);
}

#if defined(PYRT_HAVE_X86)
/* __builtin_cpu_supports reports an AVX feature only when the OS saves the
   ymm / zmm state (libgcc checks XGETBV), so these also say the OS allows
   it. */
static int has_avx2(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}
static int has_avxvnni(void) {
  return __builtin_cpu_supports("avxvnni");
}
static int has_avx512vnni(void) {
  return __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
}
static void init_avx2(pyrt_kernel_table *t) {
  t->vector_bits = 256;
  pyrt_qgemm_init_avx2(t);
  pyrt_qdwconv_init_avx2(t);
  pyrt_requant_init_avx2(t);
  pyrt_qpool_init_avx2(t);
  pyrt_qbinary_init_avx2(t);
  pyrt_quant_init_avx2(t);
  pyrt_sgemm_init_avx2(t);
  pyrt_softmax_init_avx2(t);
  pyrt_layernorm_init_avx2(t);
  pyrt_activation_init_avx2(t);
  pyrt_affine_init_avx2(t);
  pyrt_layout_init_avx2(t);
  pyrt_pool_f32_init_avx2(t);
  pyrt_felem_init_avx2(t);
}
static void init_avxvnni(pyrt_kernel_table *t) {
  pyrt_qgemm_init_avxvnni(t);
}
static void init_avx512vnni(pyrt_kernel_table *t) {
  t->vector_bits = 512;
  pyrt_qgemm_init_avx512vnni(t);
  pyrt_softmax_init_avx512vnni(t);
  pyrt_layernorm_init_avx512vnni(t);
  pyrt_activation_init_avx512vnni(t);
  pyrt_qdwconv_init_avx512vnni(t);
  pyrt_requant_init_avx512vnni(t);
  pyrt_qpool_init_avx512vnni(t);
  pyrt_qbinary_init_avx512vnni(t);
  pyrt_quant_init_avx512vnni(t);
  pyrt_sgemm_init_avx512vnni(t);
  pyrt_affine_init_avx512vnni(t);
  pyrt_layout_init_avx512vnni(t);
  pyrt_pool_f32_init_avx512vnni(t);
  pyrt_felem_init_avx512vnni(t);
}
#endif

#if defined(PYRT_HAVE_RISCV)
/* RVV 1.0 with Zba/Zbb/Zbs (what *_rvv.c are compiled for): riscv_hwprobe
   (Linux 6.4+) knows all four; older kernels and QEMU 7.2 only report V in
   AT_HWCAP, and every RVV 1.0 Linux CPU so far has the three Zb*. */
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

static int has_rvv(void) {
  struct {
    int64_t key;
    uint64_t value;
  } probe = {4, 0}; /* RISCV_HWPROBE_KEY_IMA_EXT_0 */
  const uint64_t v = 1u << 2, zba = 1u << 3, zbb = 1u << 4, zbs = 1u << 5;
  if (syscall(258 /* __NR_riscv_hwprobe */, &probe, 1, 0, NULL, 0) == 0 &&
      probe.key == 4)
    return (probe.value & (v | zba | zbb | zbs)) == (v | zba | zbb | zbs);
  return (getauxval(AT_HWCAP) >> ('V' - 'A')) & 1;
}
static void init_rvv(pyrt_kernel_table *t) {
  pyrt_qgemm_init_rvv(t);
  pyrt_qbinary_init_rvv(t);
  pyrt_quant_init_rvv(t);
  pyrt_requant_init_rvv(t);
  pyrt_qdwconv_init_rvv(t);
  pyrt_sgemm_init_rvv(t);
  pyrt_qpool_init_rvv(t);
  pyrt_layout_init_rvv(t);
}
#endif

typedef struct {
  const char *name;
  int parent;             /* index of the level below, -1 for none */
  int (*supported)(void); /* NULL: always */
  void (*init)(pyrt_kernel_table *t);
} level;

static const level levels[] = {
    {"scalar", -1, NULL, init_scalar},
#if defined(PYRT_HAVE_X86)
    {"avx2", 0, has_avx2, init_avx2},
    {"avxvnni", 1, has_avxvnni, init_avxvnni},
    {"avx512vnni", 1, has_avx512vnni, init_avx512vnni},
#endif
#if defined(PYRT_HAVE_RISCV)
    {"rvv", 0, has_rvv, init_rvv},
#endif
};
enum { LEVELS = sizeof levels / sizeof levels[0] };

static pyrt_kernel_table tables[LEVELS];
static int usable[LEVELS];
static char available[128];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill_tables(void) {
#if defined(PYRT_HAVE_X86)
  __builtin_cpu_init();
#endif
  for (int i = 0; i < LEVELS; i++) {
    const level *l = &levels[i];
    usable[i] = (l->parent < 0 || usable[l->parent]) &&
                (l->supported == NULL || l->supported());
    if (!usable[i]) continue;
    if (l->parent >= 0) tables[i] = tables[l->parent];
    l->init(&tables[i]);
    tables[i].name = l->name;
    tables[i].id = i;
    if (available[0] != '\0') strcat(available, ",");
    strcat(available, l->name);
  }
}

const char *pyrt_isa_available(void) {
  pthread_once(&once, fill_tables);
  return available;
}

const char *pyrt_isa_default(void) {
  pthread_once(&once, fill_tables);
  const char *env = getenv("PYRT_ISA");
  if (env != NULL && env[0] != '\0') return env;
  for (int i = LEVELS - 1; i >= 0; i--)
    if (usable[i]) return levels[i].name;
  return "scalar";
}

const pyrt_kernel_table *pyrt_find_table(const char *name) {
  pthread_once(&once, fill_tables);
  if (name == NULL) name = pyrt_isa_default();
  for (int i = 0; i < LEVELS; i++) {
    if (strcmp(levels[i].name, name) != 0) continue;
    if (!usable[i]) {
      pyrt_fail(PYRT_ERR_ISA,
                "ISA '%s' is not supported by this CPU (have: %s)", name,
                available);
      return NULL;
    }
    return &tables[i];
  }
  pyrt_fail(PYRT_ERR_ISA,
            "unknown ISA '%s' (known: scalar, avx2, avxvnni, avx512vnni, rvv; "
            "this CPU has: %s)",
            name, available);
  return NULL;
}
