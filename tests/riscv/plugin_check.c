/* Known instruction mixes between layer marks, for the QEMU counting plugin's
   test.

   Region 5: one vsetvli, three OP-V instructions, one vector load and one
   vector store (LOAD-FP / STORE-FP with a vector width), one scalar flw and one
   fld: the plugin must count 6 vector (1 vsetvl) and at least the 2 FP loads as
   scalar. Region 6, entered 3 times: 1000 vadd.vv each. Region 100000: a 17-bit
   id. */
#include <stdint.h>
#include <stdio.h>

void pyrt_profile_mark(uint32_t id);

static int32_t buf[64];
static float f32 = 1.0f;
static double f64 = 2.0;

int main(void) {
  pyrt_profile_mark(5);
  __asm__ volatile(
      "vsetvli t0, zero, e32, m1, ta, ma\n"
      "vle8.v v1, (%0)\n"
      "vadd.vv v2, v1, v1\n"
      "vwmacc.vv v4, v1, v2\n"
      "vmv.v.i v3, 0\n"
      "vse32.v v2, (%0)\n"
      "flw ft0, 0(%1)\n"
      "fld ft1, 0(%2)\n" ::"r"(buf),
      "r"(&f32), "r"(&f64)
      : "t0", "ft0", "ft1", "memory");
  pyrt_profile_mark(0);
  for (int entry = 0; entry < 3; entry++) {
    pyrt_profile_mark(6);
    __asm__ volatile("vsetvli t0, zero, e32, m1, ta, ma" ::: "t0");
    for (int i = 0; i < 1000; i++) __asm__ volatile("vadd.vv v2, v1, v1");
    pyrt_profile_mark(0);
  }
  pyrt_profile_mark(100000);
  pyrt_profile_mark(0);
  printf("plugin_check done %d\n", buf[0]);
  return 0;
}
