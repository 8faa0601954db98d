/* The int8 GEMM: weight packing, the public entry points, and the one
 * driver every ISA's tile runs under (MLAS's qgemm.h is the model).
 *
 * y[M][N] = A[M][K] x B[K][N]. The driver cuts M into bands and N into
 * panels of the ISA's NR columns; a task is a band x a range of panels, so
 * threads split both. Per band it packs A once (im2col for convolutions,
 * the s8 -> u8 flip, K padded to KR, widened when the tile wants it), then
 * runs the MR x NR tile over every panel and hands the int32 tile to the
 * ISA's epilogue, which adds the zero-point correction and bias and
 * requantizes:
 *   sum_k (a - za)(w - zw) = sum_k a w - za colsum_w - zw rowsum_a + K za zw
 * The terms without rowsum_a are one `fixed` value per column; rowsum_a is
 * needed only when some weight zero point is nonzero.
 */
#include "qgemm/qgemm.h"

#include <stdlib.h>
#include <string.h>

#include "gemm_tasks.h"
#include "requant/requant.h"

/* Packs stay far below this; it keeps every size computation in range. */
#define PYRT_MAX_PACK_ELEMS ((int64_t)1 << 34)

static int32_t round_up(int32_t v, int32_t m) {
  return (v + m - 1) / m * m;
}

size_t pyrt_qgemm_block_size(const pyrt_qgemm_config *c, int32_t N, int32_t K) {
  return (size_t)round_up(N, c->nr) * (size_t)round_up(K, c->kr) *
         (size_t)c->b_width;
}

void pyrt_qgemm_pack_block(const pyrt_qgemm_config *c, int32_t N, int32_t K,
                           const uint8_t *w, ptrdiff_t stride_n,
                           ptrdiff_t stride_k, uint8_t flip, void *dst,
                           int32_t *col_sum) {
  const int32_t nr = c->nr, kr = c->kr, kp = round_up(K, kr);
  const size_t panel = (size_t)kp * (size_t)nr;   /* elements per panel */
  memset(dst, 0, pyrt_qgemm_block_size(c, N, K)); /* the padding stays 0 */
  if (col_sum != NULL) memset(col_sum, 0, (size_t)N * sizeof(int32_t));
  /* k outer: each source row of B (k fixed) is read along n */
  for (int32_t k = 0; k < K; k++) {
    const uint8_t *src = w + (ptrdiff_t)k * stride_k;
    const size_t at_k = (size_t)(k / kr) * (size_t)(nr * kr) + (size_t)(k % kr);
    for (int32_t n0 = 0, p = 0; n0 < N; n0 += nr, p++) {
      const int32_t cols = N - n0 < nr ? N - n0 : nr;
      const size_t base = (size_t)p * panel + at_k;
      const uint8_t *s = src + (ptrdiff_t)n0 * stride_n;
      if (c->b_width == 2) {
        int16_t *d = (int16_t *)dst + base;
        for (int32_t j = 0; j < cols; j++)
          d[(size_t)j * kr] = (int8_t)(s[(ptrdiff_t)j * stride_n] ^ flip);
      } else {
        int8_t *d = (int8_t *)dst + base;
        for (int32_t j = 0; j < cols; j++)
          d[(size_t)j * kr] = (int8_t)(s[(ptrdiff_t)j * stride_n] ^ flip);
      }
      if (col_sum != NULL) /* wraps like the int32 accumulators it corrects */
        for (int32_t j = 0; j < cols; j++)
          col_sum[n0 + j] =
              (int32_t)((uint32_t)col_sum[n0 + j] +
                        (uint32_t)(int8_t)(s[(ptrdiff_t)j * stride_n] ^ flip));
    }
  }
}

size_t pyrt_pack_int8_size(const pyrt_kernel_table *t, int32_t kind, int32_t N,
                           int32_t K) {
  if (N <= 0 || K <= 0 || (int64_t)N * K > PYRT_MAX_PACK_ELEMS) return 0;
  size_t block = kind == PYRT_PACK_DWCONV
                     ? t->qdwconv.weights_size(N, K)
                     : pyrt_qgemm_block_size(&t->qgemm, N, K);
  return pyrt_pack_prefix_size(N) + block;
}

int pyrt_pack_int8(const pyrt_kernel_table *t, const char *op, int32_t kind,
                   int32_t N, int32_t K, const void *w, int32_t w_dtype,
                   const int32_t *w_zero, int32_t w_zero_per_channel,
                   void *packed) {
  if (w == NULL || packed == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "%s: weights or packed buffer is NULL", op);
  if (N <= 0 || K <= 0)
    return pyrt_fail(PYRT_ERR_ARG, "%s: N and K must be > 0, got %d, %d", op, N,
                     K);
  if ((int64_t)N * K > PYRT_MAX_PACK_ELEMS)
    return pyrt_fail(PYRT_ERR_SHAPE, "%s: %d x %d weights are too large", op, N,
                     K);
  if (w_dtype != PYRT_U8 && w_dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "%s: weights must be U8 or S8, got %d", op,
                     w_dtype);
  const int32_t lo = w_dtype == PYRT_U8 ? 0 : -128;
  const int32_t shift = w_dtype == PYRT_U8 ? 128 : 0; /* u8 -> s8 */
  /* Validate everything before writing: a failed pack leaves the buffer as
     it was, and the magic goes in last. */
  for (int32_t n = 0; n < N; n++) {
    const int32_t z = w_zero == NULL ? 0 : w_zero[w_zero_per_channel ? n : 0];
    if (z < lo || z > lo + 255)
      return pyrt_fail(PYRT_ERR_ARG,
                       "%s: weight zero point %d (channel %d) outside [%d, %d]",
                       op, z, n, lo, lo + 255);
  }
  int8_t *w_s8 = malloc((size_t)N * (size_t)K);
  if (w_s8 == NULL) return pyrt_fail(PYRT_ERR_NOMEM, "%s: out of memory", op);
  pyrt_pack_header *h = (pyrt_pack_header *)packed;
  *h = (pyrt_pack_header){0, t->id, kind, N, K, 0, 0, 0};
  if (kind == PYRT_PACK_GEMM) h->nr = t->qgemm.nr, h->kr = t->qgemm.kr;
  int32_t *col_sum = pyrt_pack_col_sum(packed);
  int32_t *zero = pyrt_pack_w_zero(packed);
  int32_t has_w_zero = 0;
  for (int32_t n = 0; n < N; n++) {
    zero[n] = (w_zero == NULL ? 0 : w_zero[w_zero_per_channel ? n : 0]) - shift;
    has_w_zero |= zero[n] != 0;
    uint32_t sum = 0; /* wraps like the int32 accumulators it corrects */
    for (int32_t k = 0; k < K; k++) {
      const size_t i = (size_t)n * (size_t)K + (size_t)k;
      const int32_t v = w_dtype == PYRT_U8
                            ? (int32_t)((const uint8_t *)w)[i] - shift
                            : (int32_t)((const int8_t *)w)[i];
      w_s8[i] = (int8_t)v;
      sum += (uint32_t)v;
    }
    col_sum[n] = (int32_t)sum;
  }
  h->has_w_zero = has_w_zero;
  if (kind == PYRT_PACK_DWCONV)
    t->qdwconv.pack(N, K, w_s8, zero, pyrt_pack_weights(packed));
  else
    pyrt_qgemm_pack_block(&t->qgemm, N, K, (const uint8_t *)w_s8, K, 1, 0,
                          pyrt_pack_weights(packed), NULL);
  free(w_s8);
  h->magic = PYRT_PACK_MAGIC; /* last: the pack is complete */
  return PYRT_OK;
}

int pyrt_check_pack(const pyrt_kernel_table *t, const char *op,
                    const void *packed, int32_t kind, int32_t N, int32_t K) {
  if (packed == NULL) return pyrt_fail(PYRT_ERR_ARG, "%s: packed is NULL", op);
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  if (h->magic != PYRT_PACK_MAGIC || h->kind != kind)
    return pyrt_fail(PYRT_ERR_PACK, "%s: buffer is not packed weights", op);
  if (h->isa != t->id || (kind == PYRT_PACK_GEMM &&
                          (h->nr != t->qgemm.nr || h->kr != t->qgemm.kr)))
    return pyrt_fail(PYRT_ERR_PACK,
                     "%s: weights were packed for another ISA; pack again", op);
  if (h->N != N || h->K != K)
    return pyrt_fail(PYRT_ERR_PACK,
                     "%s: weights packed as %d x %d, call needs %d x %d", op,
                     h->N, h->K, N, K);
  return PYRT_OK;
}

/* ---- the driver ---------------------------------------------------------- */

/* Bands of about this many packed A bytes stay in L2 while every panel
   of B streams past them. */
enum { BAND_BYTES = 96 * 1024 };

typedef struct {
  pyrt_context *ctx;
  const pyrt_qgemm_config *c;
  int32_t M, N, K, kp;
  const pyrt_qgemm_a *a;
  const char *b;      /* packed weight block */
  size_t panel_bytes; /* one NR-column panel */
  const int32_t *fixed;
  const int32_t *w_zero; /* NULL when all are zero */
  const pyrt_output_stage *out;
  char *y;
  size_t ldy, out_size;
  pyrt_gemm_tasks tasks;
  int32_t *band_of; /* [worker]: the band its scratch holds (-1: none) */
  int status;
} drive_job;

/* n bytes of src, flipped (x ^ 0x80 for s8, else a copy), to dst. */
static void copy_flip(uint8_t *dst, const uint8_t *src, size_t n,
                      uint8_t flip) {
  if (flip == 0) {
    memcpy(dst, src, n);
    return;
  }
  if (n < 8 || n >= 64) { /* the long loop vectorizes */
    for (size_t i = 0; i < n; i++) dst[i] = src[i] ^ flip;
    return;
  }
  /* 8 bytes at a time, the last word overlapping: short im2col spans (21
     bytes in a 7x7 stem over 3 channels) need no byte loop either. */
  const uint64_t mask = 0x0101010101010101u * flip;
  for (size_t i = 0;; i += 8) {
    if (i + 8 > n) i = n - 8;
    uint64_t word;
    memcpy(&word, src + i, 8);
    word ^= mask;
    memcpy(dst + i, &word, 8);
    if (i + 8 == n) break;
  }
}

/* rows x n bytes, flipped, between strided rows: the table's copy_rows when
   it has one. */
static void copy_rows(const pyrt_qgemm_config *c, uint8_t *dst, size_t ld_dst,
                      const uint8_t *src, size_t ld_src, int32_t rows, size_t n,
                      uint8_t flip) {
  if (c->copy_rows != NULL) {
    c->copy_rows(dst, ld_dst, src, ld_src, rows, n, flip);
    return;
  }
  for (int32_t r = 0; r < rows; r++, dst += ld_dst, src += ld_src)
    copy_flip(dst, src, n, flip);
}

/* The im2col row (K bytes, flipped, then zeros up to kp) of output pixel
   (b, oy, ox), tap by tap: pixels whose window crosses a border. */
static void im2col_pixel(const pyrt_qgemm_a *a, int32_t b, int32_t oy,
                         int32_t ox, int32_t kp, uint8_t *dst) {
  const pyrt_conv2d_shape *s = a->conv;
  const int32_t cin = s->in_c / s->groups;
  const int32_t k = cin * s->kernel_h * s->kernel_w;
  const uint8_t pad = (uint8_t)a->zero;
  uint8_t *d = dst;
  for (int32_t ky = 0; ky < s->kernel_h; ky++) {
    const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
    const uint8_t *line =
        a->a + ((size_t)b * s->in_h + (size_t)iy) * s->in_w * s->in_c +
        (size_t)a->group * cin;
    for (int32_t kx = 0; kx < s->kernel_w; kx++, d += cin) {
      const int32_t ix = ox * s->stride_w - s->pad_left + kx * s->dilation_w;
      if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w)
        memset(d, pad, (size_t)cin);
      else
        copy_flip(d, line + (size_t)ix * s->in_c, (size_t)cin, a->flip);
    }
  }
  memset(dst + k, 0, (size_t)(kp - k));
}

/* im2col rows [m0, m1) of an NHWC convolution, flipped, K padded to kp.
   Per output row, the pixels whose window lies inside the image horizontally
   go together: with dilation_w 1 and one group, one kernel row of K is one
   contiguous span of x, so each kernel row is one strided copy of all those
   pixels (a 7x7 stem over 3 channels: 7 copies of 21-byte spans per output
   row segment, not 49 per pixel). */
static void im2col_nhwc(const pyrt_qgemm_config *c, const pyrt_qgemm_a *a,
                        int32_t m0, int32_t m1, int32_t kp, uint8_t *dst) {
  const pyrt_conv2d_shape *s = a->conv;
  const int32_t cin = s->in_c / s->groups, ow = s->out_w;
  const int32_t ohw = s->out_h * ow, k = cin * s->kernel_h * s->kernel_w;
  const size_t span = (size_t)s->kernel_w * cin;     /* one kernel row of K */
  const size_t step = (size_t)s->stride_w * s->in_c; /* x bytes per pixel */
  int32_t lo = 0, hi = 0; /* the pixels [lo, hi) inside horizontally */
  if (s->dilation_w == 1 && cin == s->in_c) {
    lo = (s->pad_left + s->stride_w - 1) / s->stride_w;
    const int32_t last = s->in_w + s->pad_left - s->kernel_w; /* ix0 <= */
    hi = last < 0 ? 0 : last / s->stride_w + 1;
    hi = hi < ow ? hi : ow;
    lo = lo < hi ? lo : hi;
  }
  for (int32_t m = m0; m < m1;) {
    const int32_t b = m / ohw, oy = m % ohw / ow, ox = m % ow;
    const int32_t n = m1 - m < ow - ox ? m1 - m : ow - ox; /* this row */
    uint8_t *row = dst + (size_t)(m - m0) * kp;
    const int32_t i0 = ox > lo ? ox : lo, i1 = ox + n < hi ? ox + n : hi;
    for (int32_t p = ox; p < ox + n; p++)
      if (p < i0 || p >= i1)
        im2col_pixel(a, b, oy, p, kp, row + (size_t)(p - ox) * kp);
    if (i1 > i0) {
      uint8_t *d = row + (size_t)(i0 - ox) * kp;
      const int32_t count = i1 - i0;
      for (int32_t ky = 0; ky < s->kernel_h; ky++, d += span) {
        const int32_t iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
        if (iy < 0 || iy >= s->in_h) {
          for (int32_t p = 0; p < count; p++)
            memset(d + (size_t)p * kp, (uint8_t)a->zero, span);
          continue;
        }
        const uint8_t *x =
            a->a + ((size_t)b * s->in_h + (size_t)iy) * s->in_w * s->in_c +
            (size_t)(i0 * s->stride_w - s->pad_left) * s->in_c;
        copy_rows(c, d, (size_t)kp, x, step, count, span, a->flip);
      }
      for (int32_t p = 0; p < count; p++) {
        uint8_t *pixel = row + (size_t)(i0 - ox + p) * kp;
        for (int32_t i = k; i < kp; i++) pixel[i] = 0; /* fewer than KR */
      }
    }
    m += n;
  }
}

/* The tile reads A where it lies (and flips it) when A is a matrix of K
   bytes per row the tile takes as they are. */
static int in_place(const drive_job *j) {
  return j->a->conv == NULL && j->c->a_width == 1 && j->kp == j->K;
}

/* Rows [m0, m1) of A as the tile reads them, *lda bytes apart: the source
   itself (in place; *flip is the tile's flip), or packed into buf (im2col,
   the flip, K padded to kp; *flip 0) and widened into wide when the tile
   takes 16-bit activations. When some weight zero point is nonzero, the
   rows' sums go to sums. Without `fill`, buf, wide and sums hold these rows
   already. */
static const uint8_t *prepare_rows(const drive_job *j, int32_t m0, int32_t m1,
                                   int fill, uint8_t *buf, uint8_t *wide,
                                   int32_t *sums, size_t *lda, uint8_t *flip) {
  const pyrt_qgemm_a *a = j->a;
  const pyrt_qgemm_config *c = j->c;
  const int32_t kp = j->kp, rows = m1 - m0;
  const int row_sums = fill && j->w_zero != NULL;
  if (in_place(j)) {
    const uint8_t *src = a->a + (size_t)m0 * a->lda;
    *lda = a->lda;
    *flip = a->flip;
    for (int32_t r = 0; row_sums && r < rows; r++) {
      uint32_t sum = 0; /* wraps like the int32 accumulators it corrects */
      for (int32_t k = 0; k < j->K; k++)
        sum += (uint8_t)(src[(size_t)r * a->lda + (size_t)k] ^ a->flip);
      sums[r] = (int32_t)sum;
    }
    return src;
  }
  *flip = 0;
  *lda = (size_t)kp * (size_t)c->a_width;
  if (!fill) return c->a_width == 1 ? buf : wide;
  if (a->conv != NULL) {
    im2col_nhwc(c, a, m0, m1, kp, buf);
  } else {
    copy_rows(c, buf, (size_t)kp, a->a + (size_t)m0 * a->lda, a->lda, rows,
              (size_t)j->K, a->flip);
    if (kp > j->K)
      for (int32_t r = 0; r < rows; r++)
        memset(buf + (size_t)r * kp + j->K, 0, (size_t)(kp - j->K));
  }
  for (int32_t r = 0; row_sums && r < rows; r++) {
    uint32_t sum = 0; /* the padding lanes are 0 */
    for (int32_t k = 0; k < kp; k++) sum += buf[(size_t)r * kp + (size_t)k];
    sums[r] = (int32_t)sum;
  }
  if (c->a_width == 1) return buf;
  c->widen_a(rows, kp, buf, (size_t)kp, wide, *lda);
  return wide;
}

static size_t band_scratch(const pyrt_qgemm_config *c, int32_t band,
                           int32_t kp) {
  const size_t rows = (size_t)band;
  return PYRT_ALIGN_UP(rows * (size_t)kp) +
         (c->a_width == 2 ? PYRT_ALIGN_UP(rows * (size_t)kp * 2) : 0) +
         PYRT_ALIGN_UP(rows * 4) + (size_t)c->mr * (size_t)c->nr * 4;
}

/* Task `task` on scratch s. *band_of is the band whose rows s holds from
   this worker's previous task of the job (-1: none): a worker runs a
   contiguous share of the tasks, which go band by band, so it packs each
   band once, not once per panel chunk. */
static void run_task(const drive_job *j, int32_t task, char *s,
                     int32_t *band_of) {
  const pyrt_qgemm_config *c = j->c;
  int32_t m0, m1, p0, p1;
  pyrt_gemm_task_range(&j->tasks, j->M, task, &m0, &m1, &p0, &p1);
  const int32_t band_index = task / j->tasks.chunks;
  const int fill = *band_of != band_index;
  *band_of = band_index;
  const size_t band = (size_t)j->tasks.band, kp = (size_t)j->kp;
  const size_t narrow = PYRT_ALIGN_UP(band * kp);
  const size_t wide = c->a_width == 2 ? PYRT_ALIGN_UP(band * kp * 2) : 0;
  int32_t *row_sum = (int32_t *)(s + narrow + wide);
  int32_t *acc = (int32_t *)(s + narrow + wide + PYRT_ALIGN_UP(band * 4));
  size_t lda;
  uint8_t flip;
  const uint8_t *a = prepare_rows(j, m0, m1, fill, (uint8_t *)s,
                                  (uint8_t *)s + narrow, row_sum, &lda, &flip);
  const pyrt_output_stage *out = j->out;
  for (int32_t p = p0; p < p1; p++) {
    const int32_t n0 = p * c->nr;
    const int32_t nr = j->N - n0 < c->nr ? j->N - n0 : c->nr;
    const void *b = j->b + (size_t)p * j->panel_bytes;
    const float *scale = out->per_channel ? out->scale + n0 : out->scale;
    const int half = c->ukernel_half != NULL && 2 * nr <= c->nr;
    for (int32_t r0 = m0; r0 < m1; r0 += c->mr) {
      const int32_t mr = m1 - r0 < c->mr ? m1 - r0 : c->mr;
      (half ? c->ukernel_half : c->ukernel)(
          mr, j->kp, a + (size_t)(r0 - m0) * lda, lda, b, acc, flip);
      c->epilogue(mr, nr, acc, c->nr, j->fixed + n0,
                  j->w_zero ? j->w_zero + n0 : NULL, row_sum + (r0 - m0), scale,
                  out, j->y + ((size_t)r0 * j->ldy + (size_t)n0) * j->out_size,
                  j->ldy);
    }
  }
}

static void drive_task(void *arg, int32_t task, int32_t worker) {
  drive_job *j = (drive_job *)arg;
  char *s =
      pyrt_scratch(j->ctx, worker, band_scratch(j->c, j->tasks.band, j->kp));
  if (s == NULL) {
    j->status = PYRT_ERR_NOMEM; /* benign race: every writer stores this */
    return;
  }
  run_task(j, task, s, &j->band_of[worker]);
}

/* fixed[n] = bias[n] - za * colsum[n] + K * za * zw[n] (wrapping). */
static void fixed_terms(int32_t N, int32_t K, const pyrt_qgemm_a *a,
                        const void *packed, const int32_t *bias,
                        int32_t *fixed) {
  const int32_t *col_sum = pyrt_pack_col_sum(packed);
  const int32_t *w_zero = pyrt_pack_w_zero(packed);
  const uint32_t za = (uint32_t)a->zero;
  for (int32_t n = 0; n < N; n++)
    fixed[n] =
        (int32_t)((bias ? (uint32_t)bias[n] : 0u) - za * (uint32_t)col_sum[n] +
                  (uint32_t)K * za * (uint32_t)w_zero[n]);
}

/* The job for y = A x packed on `threads` threads (gemm_tasks.h: bands and
   panel chunks). */
static drive_job make_job(pyrt_context *ctx, const pyrt_qgemm_config *c,
                          int32_t threads, int32_t M, int32_t N, int32_t K,
                          const pyrt_qgemm_a *a, const void *packed,
                          const int32_t *fixed, const pyrt_output_stage *out,
                          void *y, size_t ldy) {
  const pyrt_pack_header *h = (const pyrt_pack_header *)packed;
  drive_job j = {0};
  j.ctx = ctx;
  j.c = c;
  j.M = M, j.N = N, j.K = K, j.kp = round_up(K, c->kr);
  j.a = a;
  j.b = (const char *)pyrt_pack_weights(packed);
  j.fixed = fixed;
  j.w_zero = h->has_w_zero ? pyrt_pack_w_zero(packed) : NULL;
  j.out = out;
  j.y = (char *)y;
  j.ldy = ldy;
  j.out_size = out->out_dtype == PYRT_U8 || out->out_dtype == PYRT_S8 ? 1 : 4;
  j.status = PYRT_OK;
  j.panel_bytes = (size_t)j.kp * (size_t)c->nr * (size_t)c->b_width;
  j.tasks =
      pyrt_gemm_tasks_plan(M, N, c->mr, c->nr, (int64_t)j.kp * c->a_width,
                           BAND_BYTES, (int64_t)j.kp * N * c->b_width, threads);
  return j;
}

int pyrt_qgemm_drive(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
                     const pyrt_qgemm_a *a, const void *packed,
                     const int32_t *bias, const pyrt_output_stage *out, void *y,
                     size_t ldy) {
  const size_t fixed_bytes = PYRT_ALIGN_UP((size_t)N * 4);
  int32_t *fixed =
      pyrt_scratch(ctx, PYRT_SHARED, fixed_bytes + (size_t)ctx->threads * 4);
  if (fixed == NULL) return pyrt_fail(PYRT_ERR_NOMEM, "qgemm: out of memory");
  fixed_terms(N, K, a, packed, bias, fixed);
  drive_job j = make_job(ctx, &ctx->t->qgemm, ctx->threads, M, N, K, a, packed,
                         fixed, out, y, ldy);
  j.band_of = (int32_t *)((char *)fixed + fixed_bytes);
  for (int32_t w = 0; w < ctx->threads; w++) j.band_of[w] = -1;
  pyrt_parallel(ctx, pyrt_gemm_task_count(&j.tasks), drive_task, &j);
  if (j.status != PYRT_OK)
    return pyrt_fail(j.status, "qgemm: out of memory for scratch");
  return PYRT_OK;
}

size_t pyrt_qgemm_serial_scratch(const pyrt_qgemm_config *c, int32_t M,
                                 int32_t N, int32_t K) {
  const int32_t kp = round_up(K, c->kr);
  const pyrt_gemm_tasks t =
      pyrt_gemm_tasks_plan(M, N, c->mr, c->nr, (int64_t)kp * c->a_width,
                           BAND_BYTES, (int64_t)kp * N * c->b_width, 1);
  return PYRT_ALIGN_UP((size_t)N * 4) + band_scratch(c, t.band, kp);
}

void pyrt_qgemm_drive_serial(const pyrt_qgemm_config *c, int32_t M, int32_t N,
                             int32_t K, const pyrt_qgemm_a *a,
                             const void *packed, const int32_t *bias,
                             const pyrt_output_stage *out, void *y, size_t ldy,
                             void *scratch) {
  int32_t *fixed = (int32_t *)scratch;
  fixed_terms(N, K, a, packed, bias, fixed);
  const drive_job j =
      make_job(NULL, c, 1, M, N, K, a, packed, fixed, out, y, ldy);
  char *s = (char *)scratch + PYRT_ALIGN_UP((size_t)N * 4);
  const int32_t tasks = pyrt_gemm_task_count(&j.tasks);
  int32_t band_of = -1;
  for (int32_t t = 0; t < tasks; t++) run_task(&j, t, s, &band_of);
}

/* ---- public entry points ---------------------------------------------------
 */

size_t pyrt_qgemm_packed_size(const pyrt_context *ctx, int32_t N, int32_t K) {
  return ctx ? pyrt_pack_int8_size(ctx->t, PYRT_PACK_GEMM, N, K) : 0;
}

int pyrt_qgemm_pack(const pyrt_context *ctx, int32_t N, int32_t K,
                    const void *w, int32_t w_dtype, const int32_t *w_zero,
                    int32_t w_zero_per_channel, void *packed) {
  if (ctx == NULL) return pyrt_fail(PYRT_ERR_ARG, "qgemm_pack: ctx is NULL");
  return pyrt_pack_int8(ctx->t, "qgemm_pack", PYRT_PACK_GEMM, N, K, w, w_dtype,
                        w_zero, w_zero_per_channel, packed);
}

int pyrt_qgemm(pyrt_context *ctx, int32_t M, int32_t N, int32_t K,
               const void *a, int32_t a_dtype, int32_t a_zero, int32_t lda,
               const void *packed, const int32_t *bias,
               const pyrt_output_stage *out, void *y, int32_t ldy) {
  if (ctx == NULL || a == NULL || y == NULL)
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: ctx, a or y is NULL");
  if (M <= 0 || N <= 0 || K <= 0)
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: M, N, K must be > 0, got %d, %d, %d",
                     M, N, K);
  if (lda < K || ldy < N)
    return pyrt_fail(PYRT_ERR_ARG,
                     "qgemm: lda %d must be >= K %d and ldy %d >= N %d", lda, K,
                     ldy, N);
  if (a_dtype != PYRT_U8 && a_dtype != PYRT_S8)
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: a must be U8 or S8, got %d",
                     a_dtype);
  if (a_zero < (a_dtype == PYRT_U8 ? 0 : -128) ||
      a_zero > (a_dtype == PYRT_U8 ? 255 : 127))
    return pyrt_fail(PYRT_ERR_ARG, "qgemm: a zero point %d out of range",
                     a_zero);
  int rc = pyrt_check_pack(ctx->t, "qgemm", packed, PYRT_PACK_GEMM, N, K);
  if (rc == PYRT_OK) rc = pyrt_check_output_stage("qgemm", out, N);
  if (rc) return rc;
  const uint8_t flip = a_dtype == PYRT_S8 ? 0x80 : 0;
  const pyrt_qgemm_a src = {
      (const uint8_t *)a,       (size_t)lda, NULL, 0, flip,
      a_zero + (flip ? 128 : 0)};
  pyrt_context_enter(ctx);
  rc = pyrt_qgemm_drive(ctx, M, N, K, &src, packed, bias, out, y, (size_t)ldy);
  pyrt_context_leave(ctx);
  return rc;
}
