/* The kernel tables, the choice among them, and per-thread error text. */
#include <stdarg.h>
#include <stdio.h>
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

static const pyrt_kernel_table scalar_table = {
    .name = "scalar",
    .qgemm_weights_size = pyrt_qgemm_weights_size_scalar,
    .qgemm_pack_weights = pyrt_qgemm_pack_weights_scalar,
    .qgemm = pyrt_qgemm_scalar,
    .qdwconv_weights_size = pyrt_qdwconv_weights_size_scalar,
    .qdwconv_pack_weights = pyrt_qdwconv_pack_weights_scalar,
    .qdwconv = pyrt_qdwconv_scalar,
    .requantize = pyrt_requantize_scalar,
    .sgemm_weights_size = pyrt_sgemm_weights_size_scalar,
    .sgemm_pack_weights = pyrt_sgemm_pack_weights_scalar,
    .sgemm = pyrt_sgemm_scalar,
    .quantize = pyrt_quantize_scalar,
    .dequantize = pyrt_dequantize_scalar,
    .qbinary = pyrt_qbinary_scalar,
    .qmaxpool2d = pyrt_qmaxpool2d_scalar,
    .qavgpool2d = pyrt_qavgpool2d_scalar,
    .qglobalavgpool = pyrt_qglobalavgpool_scalar,
};

/* Every table this build has, worst first; SIMD tables join here together
   with the CPU check that admits them. */
static const pyrt_kernel_table *const tables[] = {&scalar_table};
enum { TABLE_COUNT = sizeof tables / sizeof tables[0] };

static int cpu_supports(int id) {
  (void)id;
  return 1; /* scalar runs everywhere */
}

static int active = -1;

static int best_table(void) {
  int best = 0;
  for (int i = 0; i < TABLE_COUNT; i++)
    if (cpu_supports(i)) best = i;
  return best;
}

int pyrt_isa_id(void) {
  if (active < 0) active = best_table();
  return active;
}

const pyrt_kernel_table *pyrt_kernels(void) {
  return tables[pyrt_isa_id()];
}

const char *pyrt_isa(void) {
  return pyrt_kernels()->name;
}

const char *pyrt_isa_available(void) {
  static char names[128];
  if (names[0] == '\0') {
    for (int i = 0; i < TABLE_COUNT; i++) {
      if (!cpu_supports(i)) continue;
      if (names[0] != '\0') strcat(names, ",");
      strcat(names, tables[i]->name);
    }
  }
  return names;
}

int pyrt_set_isa(const char *name) {
  if (name == NULL) return pyrt_fail(PYRT_ERR_ARG, "set_isa: name is NULL");
  for (int i = 0; i < TABLE_COUNT; i++) {
    if (strcmp(tables[i]->name, name) != 0) continue;
    if (!cpu_supports(i))
      return pyrt_fail(PYRT_ERR_ISA, "set_isa: this CPU cannot run '%s'", name);
    active = i;
    return PYRT_OK;
  }
  return pyrt_fail(PYRT_ERR_ISA, "set_isa: unknown ISA '%s' (have: %s)", name,
                   pyrt_isa_available());
}
