/* QEMU TCG plugin: dynamic RISC-V instruction counts, scalar and vector apart,
   in regions the guest marks with a HINT instruction.

     qemu-riscv64 -plugin libinsn_count.so,outfile=counts.json ... PROGRAM

   Built against QEMU 7.2's qemu-plugin.h (plugin API version 1) by
   tools/riscv64.sh setup. Every instruction is counted once per execution:
   each translation block adds its instruction counts to the totals inline on
   entry, which costs almost nothing at run time.

   Classes: "vector" is every RVV 1.0 instruction: major opcode OP-V (0x57,
   arithmetic and vsetvl*, the latter also counted as "vsetvl") and the
   vector loads / stores, which share LOAD-FP / STORE-FP (0x07 / 0x27) with
   the scalar FP ones but have a width field of 0, 5, 6 or 7 (scalar FLH /
   FLW / FLD / FLQ use 1 to 4). Everything else, compressed instructions
   included, is "scalar".

   Marks: `slti x0, x0, imm` is a HINT reserved for custom use (it writes x0:
   architecturally a no-op, any RISC-V CPU runs it). The guest sends a mark
   id, an unsigned 32-bit number, most significant bit first, as
   imm = MARK_BIT0 / MARK_BIT1 per bit, then imm = MARK_COMMIT
   (tools/profile_mark.c does this). From the commit on, instructions count
   to the region of that id, until the next commit. Before the first mark
   they count to region 0, which by convention is also "outside any layer".
   A region's counts sum over all its entries.

   Output (JSON, to outfile= or QEMU's log): totals, the number of marks, and
   one object per region that was entered:
     {"total": {"insns": N, "scalar": S, "vector": V, "vsetvl": C},
      "marks": M,
      "regions": [{"id": 0, "entries": E, "insns": ..., "scalar": ...,
                   "vector": ..., "vsetvl": ...}, ...]}

   Threads: the counters are shared by all guest threads and not atomic, so
   counts of concurrently running threads may lose updates; run the guest
   single-threaded (e.g. OPENBLAS_NUM_THREADS=1) for exact figures. */
#define _POSIX_C_SOURCE 200809L /* open_memstream, strdup */
#include <inttypes.h>
#include <qemu-plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

enum { MARK_BIT0 = 0x7f0, MARK_BIT1 = 0x7f1, MARK_COMMIT = 0x7f2 };
enum { SCALAR, VECTOR, VSETVL, CLASSES };

typedef struct {
  uint64_t n[CLASSES];
} counts;

typedef struct {
  counts c;
  uint64_t entries;
} region;

static counts total; /* incremented inline at every translation block entry */
static counts boundary; /* totals at the last commit */
static region *regions;
static size_t region_count;
static uint32_t current;
static uint32_t pending_id;
static uint64_t marks;
static char *outfile;

/* Per marker instruction: the kind of mark, and the instructions of its
   block from the marker on (already in `total` when the marker runs). */
typedef struct {
  int kind;
  counts after;
} marker;

static int classify(const uint8_t *bytes, size_t size) {
  if (size != 4) return SCALAR; /* compressed: no RVV forms */
  uint32_t insn = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 |
                  (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
  uint32_t opcode = insn & 0x7f, funct3 = (insn >> 12) & 7;
  if (opcode == 0x57) return funct3 == 7 ? VSETVL : VECTOR;
  if ((opcode == 0x07 || opcode == 0x27) && (funct3 == 0 || funct3 >= 5))
    return VECTOR;
  return SCALAR;
}

/* slti x0, x0, imm: rd = x0, funct3 = 2, rs1 = x0, opcode OP-IMM. */
static int mark_kind(const uint8_t *bytes, size_t size) {
  if (size != 4) return -1;
  uint32_t insn = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 |
                  (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
  if ((insn & 0xfffff) != 0x02013) return -1;
  int imm = (int)(insn >> 20);
  return imm == MARK_BIT0 || imm == MARK_BIT1 || imm == MARK_COMMIT ? imm : -1;
}

static region *region_at(uint32_t id) {
  if (id >= region_count) {
    size_t n = region_count ? region_count : 64;
    while (n <= id) n *= 2;
    region *grown = realloc(regions, n * sizeof *grown);
    if (grown == NULL) {
      fprintf(stderr, "insn_count: out of memory for region %" PRIu32 "\n", id);
      exit(1);
    }
    memset(grown + region_count, 0, (n - region_count) * sizeof *grown);
    regions = grown;
    region_count = n;
  }
  return &regions[id];
}

static void close_region(const counts *now) {
  region *r = region_at(current);
  for (int k = 0; k < CLASSES; k++) {
    r->c.n[k] += now->n[k] - boundary.n[k];
    boundary.n[k] = now->n[k];
  }
}

static void on_mark(unsigned int vcpu, void *userdata) {
  (void)vcpu;
  const marker *m = userdata;
  if (m->kind != MARK_COMMIT) {
    pending_id = pending_id << 1 | (m->kind == MARK_BIT1);
    return;
  }
  counts now;
  for (int k = 0; k < CLASSES; k++) now.n[k] = total.n[k] - m->after.n[k];
  close_region(&now);
  current = pending_id;
  pending_id = 0;
  region_at(current)->entries++;
  marks++;
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  counts in_tb = {{0}};
  int cls[n > 0 ? n : 1];
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    cls[i] = classify(qemu_plugin_insn_data(insn), qemu_plugin_insn_size(insn));
    in_tb.n[cls[i]]++;
  }
  /* vsetvl is counted as vector and as vsetvl */
  uint64_t add[CLASSES] = {in_tb.n[SCALAR], in_tb.n[VECTOR] + in_tb.n[VSETVL],
                           in_tb.n[VSETVL]};
  for (int k = 0; k < CLASSES; k++)
    if (add[k])
      qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                               &total.n[k], add[k]);
  counts after = {{0}};
  for (size_t i = n; i-- > 0;) {
    after.n[SCALAR] += cls[i] == SCALAR;
    after.n[VECTOR] += cls[i] != SCALAR;
    after.n[VSETVL] += cls[i] == VSETVL;
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    int kind =
        mark_kind(qemu_plugin_insn_data(insn), qemu_plugin_insn_size(insn));
    if (kind < 0) continue;
    marker *m = malloc(sizeof *m); /* lives as long as the translation */
    if (m == NULL) continue;
    m->kind = kind;
    m->after = after;
    qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark,
                                           QEMU_PLUGIN_CB_NO_REGS, m);
  }
}

static void print_counts(FILE *f, const counts *c) {
  fprintf(f,
          "\"insns\": %" PRIu64 ", \"scalar\": %" PRIu64
          ", \"vector\": %" PRIu64 ", \"vsetvl\": %" PRIu64,
          c->n[SCALAR] + c->n[VECTOR], c->n[SCALAR], c->n[VECTOR],
          c->n[VSETVL]);
}

static void at_exit(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  close_region(&total);
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (f == NULL) return;
  fprintf(f, "{\"total\": {");
  print_counts(f, &total);
  fprintf(f, "}, \"marks\": %" PRIu64 ", \"regions\": [", marks);
  const char *sep = "";
  for (size_t i = 0; i < region_count; i++) {
    if (regions[i].entries == 0 && i != 0) continue;
    fprintf(f, "%s\n  {\"id\": %zu, \"entries\": %" PRIu64 ", ", sep, i,
            regions[i].entries);
    print_counts(f, &regions[i].c);
    fprintf(f, "}");
    sep = ",";
  }
  fprintf(f, "]}\n");
  fclose(f);
  FILE *out = outfile ? fopen(outfile, "w") : NULL;
  if (out) {
    fputs(text, out);
    fclose(out);
  } else {
    qemu_plugin_outs(text);
  }
  free(text);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info, int argc,
                                           char **argv) {
  (void)info;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "outfile=", 8) == 0) {
      outfile = strdup(argv[i] + 8);
    } else {
      fprintf(stderr,
              "insn_count: unknown argument '%s' (have: outfile=PATH)\n",
              argv[i]);
      return -1;
    }
  }
  region_at(0);
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
