/* The fp32 GEMM: weight packing, the public entry points, and the one
 * driver every ISA's tile runs under, the float twin of qgemm/qgemm.c.
 *
 * y[M][N] = A[M][K] x W[K][N]. Bands of M and chunks of NR-column panels
 * make the tasks (gemm_tasks.h, shared with the int8 driver). Per band the
 * driver builds A once when it is a convolution (im2col, NHWC, padding
 * 0.0f) and otherwise reads it in place; then for each K block of the
 * ISA's kc, each panel, each MR-row tile it runs the tile: the first block
 * starts from the bias, later ones from the partial sums parked in y, the
 * last one clamps. The arithmetic is the one definition in internal.h.
 */
#include "sgemm/sgemm.h"

#include <math.h>
#include <string.h>

#include "gemm_tasks.h"

/* Packs stay far below this; it keeps every size computation in range. */
#define PYRT_MAX_PACK_ELEMS ((int64_t)1 << 34)

static size_t header_size(void) {
  return PYRT_ALIGN_UP(sizeof(pyrt_pack_header));
}

static const float *panels_of(const void *packed) {
  return (const float *)((const char *)packed + header_size());
}

size_t pyrt_sgemm_pack_size(const pyrt_kernel_table *t, int32_t N, int32_t K) {
  if (N <= 0 || K <= 0 || (int64_t)N * K > PYRT_MAX_PACK_ELEMS) return 0;
  const size_t nr = (size_t)t->sgemm.nr;
  return header_size() + ((size_t)N + nr - 1) / nr * nr * (size_t)K * 4;
}

void pyrt_sgemm_pack_into(const pyrt_kernel_table *t, int32_t N, int32_t K,
                          const float *w, void *packed) {
  const int32_t nr = t->sgemm.nr;
  float *d = (float *)((char *)packed + header_size());
  for (int32_t n0 = 0; n0 < N; n0 += nr)
    for (int32_t k = 0; k < K; k++)
      for (int32_t j = 0; j < nr; j++)
        *d++ = n0 + j < N ? w[(size_t)(n0 + j) * (size_t)K + (size_t)k] : 0.0f;
  *(pyrt_pack_header *)packed = (pyrt_pack_header){
      PYRT_PACK_MAGIC, t->id, PYRT_PACK_SGEMM, N, K, 0, nr, 1};
}

int pyrt_sgemm_check_pack(const pyrt_kernel_table *t, const char *op,
                          const void *packed, int32_t N, int32_t K) {
  if (packed == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: packed is NULL", op);
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  if (h->magic != PYRT_PACK_MAGIC || h->kind != PYRT_PACK_SGEMM)
    return pyrt_fail(PYRT_ERR_PACK, "%s: buffer is not packed fp32 weights",
                     op);
  if (h->isa != t->id || h->nr != t->sgemm.nr)
    return pyrt_fail(PYRT_ERR_PACK,
                     "%s: weights were packed for another ISA; pack again", op);
  if (h->N != N || h->K != K)
    return pyrt_fail(PYRT_ERR_PACK,
                     "%s: weights packed as %d x %d, call needs %d x %d", op,
                     h->N, h->K, N, K);
  return PYRT_OK;
}

/* ---- the driver ---------------------------------------------------------- */

typedef struct {
  pyrt_context *ctx;
  const pyrt_sgemm_config *c;
  int32_t M, N, K;
  const pyrt_sgemm_a *a;
  const float *b;    /* packed panels */
  const float *bias; /* panels * NR values, zero-padded */
  float clamp[2];
  float *y;
  size_t ldy;
  pyrt_gemm_tasks tasks;
  int copy; /* copy K blocks of A (see copy_blocks) */
  int status;
} drive_job;

/* im2col rows [m0, m1) of an NHWC convolution: row m holds, for each tap
   (ky, kx), the group's in_c / groups channels of the input pixel it
   reads, or 0.0f in the padding; K = kernel_h * kernel_w * in_c / groups,
   the order of the packed weights [out_c][kh][kw][in_c / groups]. With one
   group and no dilation a kernel row inside the input is one contiguous
   run of kernel_w * in_c floats. */
static void im2col_nhwc(const pyrt_sgemm_a *a, int32_t m0, int32_t m1,
                        int32_t K, float *dst) {
  const pyrt_conv2d_shape *s = a->conv;
  const int32_t cin = s->in_c / s->groups, ohw = s->out_h * s->out_w;
  const int32_t kw = s->kernel_w, row = kw * cin;
  const int runs = s->groups == 1 && s->dilation_w == 1;
  for (int32_t m = m0; m < m1; m++, dst += K) {
    const int32_t b = m / ohw, oy = m % ohw / s->out_w, ox = m % s->out_w;
    const int32_t ix0 = ox * s->stride_w - s->pad_left;
    float *d = dst;
    for (int32_t ky = 0; ky < s->kernel_h; ky++, d += row) {
      const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
      if (iy < 0 || iy >= s->in_h) {
        memset(d, 0, (size_t)row * sizeof(float));
        continue;
      }
      const float *src =
          a->a + ((size_t)b * s->in_h + (size_t)iy) * s->in_w * s->in_c +
          (size_t)a->group * cin;
      if (runs && ix0 >= 0 && ix0 + kw <= s->in_w) {
        memcpy(d, src + (size_t)ix0 * s->in_c, (size_t)row * sizeof(float));
        continue;
      }
      for (int32_t kx = 0; kx < kw; kx++) {
        const int32_t ix = ix0 + kx * s->dilation_w;
        float *dk = d + (size_t)kx * cin;
        if (ix < 0 || ix >= s->in_w)
          memset(dk, 0, (size_t)cin * sizeof(float));
        else
          memcpy(dk, src + (size_t)ix * s->in_c, (size_t)cin * sizeof(float));
      }
    }
  }
}

/* Row stride of a packed K block of A: kc plus one cache line. */
static size_t block_stride(const pyrt_sgemm_config *c) {
  return (size_t)c->kc + 16;
}

/* 1 if each K block of A is to be copied to rows block_stride() apart:
   when the tile's mr rows, lda floats apart, crowd one set of a 64-set L1
   (strides near a multiple of 4 KiB: K or in_c 1024, K 4608 ...) and A is
   in cache anyway (im2col rows, or a small matrix). Copying rows that
   spread well, or streaming a large A from memory through the copy, costs
   more than it saves (measured on Zen 4). */
static int copy_blocks(const pyrt_sgemm_a *a, int32_t M, int32_t K,
                       int32_t mr) {
  const size_t lda = a->conv != NULL ? (size_t)K : a->lda;
  if (a->conv == NULL && (size_t)M * lda * 4 > ((size_t)2 << 20)) return 0;
  int32_t count[64] = {0};
  for (int32_t r = 0; r < mr; r++)
    if (++count[(size_t)r * lda * 4 / 64 % 64] > 4) return 1;
  return 0;
}

static void drive_task(void *arg, int32_t task, int32_t worker) {
  drive_job *j = (drive_job *)arg;
  const pyrt_sgemm_config *c = j->c;
  int32_t m0, m1, p0, p1;
  pyrt_gemm_task_range(&j->tasks, j->M, task, &m0, &m1, &p0, &p1);
  const size_t rows = (size_t)(m1 - m0), ldp = block_stride(c);
  const size_t cols = j->a->conv != NULL ? PYRT_ALIGN_UP(rows * j->K * 4) : 0;
  /* scratch: im2col rows (convolutions) | the copied K block */
  const size_t bytes = cols + (j->copy ? rows * ldp * 4 : 0);
  char *s = bytes ? pyrt_scratch(j->ctx, worker, bytes) : NULL;
  if (bytes && s == NULL) {
    j->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
    return;
  }
  const float *a = j->a->a + (size_t)m0 * j->a->lda;
  size_t lda = j->a->lda;
  if (j->a->conv != NULL) {
    im2col_nhwc(j->a, m0, m1, j->K, (float *)s);
    a = (const float *)s;
    lda = (size_t)j->K;
  }
  float *block = (float *)(s + cols);
  const size_t panel = (size_t)j->K * (size_t)c->nr;
  for (int32_t k0 = 0; k0 < j->K; k0 += c->kc) {
    const int32_t kc = j->K - k0 < c->kc ? j->K - k0 : c->kc;
    const int first = k0 == 0, last = k0 + kc == j->K;
    const float *ak = a + (size_t)k0;
    size_t ldk = lda;
    if (j->copy) {
      for (size_t r = 0; r < rows; r++)
        memcpy(block + r * ldp, ak + r * lda, (size_t)kc * 4);
      ak = block;
      ldk = ldp;
    }
    for (int32_t p = p0; p < p1; p++) {
      const int32_t n0 = p * c->nr;
      const int32_t nr = j->N - n0 < c->nr ? j->N - n0 : c->nr;
      const float *b = j->b + (size_t)p * panel + (size_t)k0 * (size_t)c->nr;
      for (int32_t r0 = m0; r0 < m1; r0 += c->mr) {
        const int32_t mr = m1 - r0 < c->mr ? m1 - r0 : c->mr;
        c->ukernel(mr, nr, kc, ak + (size_t)(r0 - m0) * ldk, ldk, b,
                   first ? j->bias + n0 : NULL, last ? j->clamp : NULL,
                   j->y + (size_t)r0 * j->ldy + (size_t)n0, j->ldy);
      }
    }
  }
}

/* Bands of about this many bytes of a K block of A stay in L2 while every
   panel of B streams past them; twice the int8 driver's, so that e.g. 128
   rows stream a large B once (measured on Zen 4: 96, 160, 256 KiB). */
enum { BAND_BYTES = 192 * 1024 };

int pyrt_sgemm_drive(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
                     const pyrt_sgemm_a *a, const void *packed,
                     const float *bias, float lo, float hi, float *y,
                     size_t ldy) {
  const pyrt_sgemm_config *c = &ctx->t->sgemm;
  drive_job j = {ctx,
                 c,
                 M,
                 N,
                 K,
                 a,
                 panels_of(packed),
                 NULL,
                 {lo, hi},
                 y,
                 ldy,
                 {0, 0, 0, 0, 0},
                 copy_blocks(a, M, K, c->mr),
                 PYRT_OK};
  const int32_t kc = K < c->kc ? K : c->kc;
  j.tasks = pyrt_gemm_tasks_plan(M, N, c->mr, c->nr, (int64_t)kc * 4,
                                 BAND_BYTES, (int64_t)kc * N * 4, ctx->threads);
  const size_t padded = (size_t)j.tasks.panels * (size_t)c->nr;
  float *b = pyrt_scratch(ctx, PYRT_SHARED, padded * sizeof(float));
  if (b == NULL) return pyrt_fail(PYRT_ERR_NOMEM, "sgemm: out of memory");
  for (size_t n = 0; n < padded; n++)
    b[n] = bias && n < (size_t)N ? bias[n] : 0.0f;
  j.bias = b;
  pyrt_parallel(ctx, pyrt_gemm_task_count(&j.tasks), drive_task, &j);
  if (j.status != PYRT_OK)
    return pyrt_fail(j.status, "sgemm: out of memory for scratch");
  return PYRT_OK;
}

/* ---- public entry points ------------------------------------------------- */

size_t pyrt_sgemm_packed_size(const pyrt_context *ctx, int32_t N, int32_t K) {
  return ctx ? pyrt_sgemm_pack_size(ctx->t, N, K) : 0;
}

int pyrt_sgemm_pack(const pyrt_context *ctx, int32_t N, int32_t K,
                    const float *w, void *packed) {
  if (ctx == NULL || w == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "sgemm_pack: ctx, w or packed is NULL");
  if (N <= 0 || K <= 0)
    return pyrt_fail(PYRT_ERR_ARG,
                     "sgemm_pack: N and K must be > 0, got %d, %d", N, K);
  if ((int64_t)N * K > PYRT_MAX_PACK_ELEMS)
    return pyrt_fail(PYRT_ERR_SHAPE,
                     "sgemm_pack: %d x %d weights are too large", N, K);
  pyrt_sgemm_pack_into(ctx->t, N, K, w, packed);
  return PYRT_OK;
}

int pyrt_check_clamp(const char *op, float lo, float hi) {
  if (isnan(lo) || isnan(hi) || lo > hi)
    return pyrt_fail(PYRT_ERR_ARG, "%s: clamp [%g, %g] is not a range", op,
                     (double)lo, (double)hi);
  return PYRT_OK;
}

int pyrt_sgemm(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
               const float *a, int32_t lda, const void *packed,
               const float *bias, float lo, float hi, float *y, int32_t ldy) {
  if (ctx == NULL || a == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "sgemm: ctx, a or y is NULL");
  if (M <= 0 || N <= 0 || K <= 0)
    return pyrt_fail(PYRT_ERR_ARG, "sgemm: M, N, K must be > 0, got %d, %d, %d",
                     M, N, K);
  if (lda < K || ldy < N)
    return pyrt_fail(PYRT_ERR_ARG,
                     "sgemm: lda %d must be >= K %d and ldy %d >= N %d", lda, K,
                     ldy, N);
  int rc = pyrt_check_clamp("sgemm", lo, hi);
  if (rc == PYRT_OK) rc = pyrt_sgemm_check_pack(ctx->t, "sgemm", packed, N, K);
  if (rc) return rc;
  const pyrt_sgemm_a src = {a, (size_t)lda, NULL, 0};
  pyrt_context_enter(ctx);
  rc = pyrt_sgemm_drive(ctx, M, N, K, &src, packed, bias, lo, hi, y,
                        (size_t)ldy);
  pyrt_context_leave(ctx);
  return rc;
}
