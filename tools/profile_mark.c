/* Layer marks for the QEMU instruction-count plugin
   (tools/qemu_plugin/insn_count.c).

   pyrt_profile_mark(id) sends `id` as a run of `slti x0, x0, imm` HINTs
   (reserved for custom use: architecturally no-ops, so a marked build runs
   unchanged on a board): one per bit, most significant first, imm 0x7f0 for a 0
   and 0x7f1 for a 1, then imm 0x7f2 to commit. The plugin counts what follows
   to region `id` until the next mark; id 0 means "outside any layer". A mark
   costs about three instructions per bit of `id`. On other architectures the
   function does nothing, so callers need no #ifdef.

   This file is meant to join the kernel library (kernels/src/profile.c, with
   `void pyrt_profile_mark(uint32_t id);` in kernels/include/pyrt/kernels.h). */
#include <stdint.h>

void pyrt_profile_mark(uint32_t id);

void pyrt_profile_mark(uint32_t id) {
#if defined(__riscv)
  int bits = 0;
  while (bits < 32 && (id >> bits) != 0) bits++;
  while (bits-- > 0) {
    if ((id >> bits) & 1u)
      __asm__ volatile("slti x0, x0, 0x7f1");
    else
      __asm__ volatile("slti x0, x0, 0x7f0");
  }
  __asm__ volatile("slti x0, x0, 0x7f2");
#else
  (void)id;
#endif
}
