/* AVX512-VNNI int8 GEMM tile: 8 rows x 32 columns over K groups of 4.
 *
 * Per K group, two zmm of packed weights (32 columns x 4 s8) are loaded
 * once and each row's 4 activation bytes are broadcast into a zmm; one
 * vpdpbusd (u8 x s8, four products summed into each int32 lane, wrapping,
 * no saturation) per row and column vector. 16 accumulators, 2 weight
 * vectors and a broadcast fit the 32 registers. The epilogue requantizes 16
 * channels at a time with the scalar definition's float steps
 * (requant_avx512.h).
 */
#include <immintrin.h>
#include <string.h>

#include "requant/requant_avx512.h"

enum { MR = 8, NR = 32, KR = 4 };

/* Row r of the tile; rows past mr repeat the last one (computed, never
   stored), so one straight-line kernel serves every mr. */
static inline const uint8_t *row(const uint8_t *a, size_t lda, int32_t r,
                                 int32_t mr) {
  return a + (size_t)(r < mr ? r : mr - 1) * lda;
}

/* One row's accumulators += its 4 activation bytes (flipped) x the K group:
   x1 only when the panel's second 16 columns are computed. */
#define STEP(ar, x0, x1)                                         \
  do {                                                           \
    int32_t word;                                                \
    memcpy(&word, (ar) + k, 4);                                  \
    __m512i av = _mm512_set1_epi32(word);                        \
    if (flip) av = _mm512_xor_si512(av, _mm512_set1_epi8(-128)); \
    x0 = _mm512_dpbusd_epi32(x0, av, b0);                        \
    if (!half) x1 = _mm512_dpbusd_epi32(x1, av, b1);             \
  } while (0)

/* Named accumulators, not arrays: GCC keeps these in registers (arrays of
   16 zmm it spills, which halved the speed of wider tiles). flip (0 or 1),
   half and rows (8, 4 or 2: the rows computed, >= mr) are constants in each
   instantiation below, so a tail tile of 1 or 3 rows costs 2 or 4 rows. */
static inline __attribute__((always_inline)) void tile(
    int32_t mr, int32_t kp, const uint8_t *a, size_t lda, const void *b,
    int32_t *acc, const int flip, const int half, const int rows) {
  const int8_t *w = (const int8_t *)b;
  const uint8_t *a0 = a, *a1 = row(a, lda, 1, mr), *a2 = row(a, lda, 2, mr),
                *a3 = row(a, lda, 3, mr), *a4 = row(a, lda, 4, mr),
                *a5 = row(a, lda, 5, mr), *a6 = row(a, lda, 6, mr),
                *a7 = row(a, lda, 7, mr);
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00,
          c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
          c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  for (int32_t k = 0; k < kp; k += KR, w += NR * KR) {
    const __m512i b0 = _mm512_loadu_si512((const void *)w);
    const __m512i b1 = half ? b0 : _mm512_loadu_si512((const void *)(w + 64));
    STEP(a0, c00, c01);
    STEP(a1, c10, c11);
    if (rows > 2) {
      STEP(a2, c20, c21);
      STEP(a3, c30, c31);
    }
    if (rows > 4) {
      STEP(a4, c40, c41);
      STEP(a5, c50, c51);
      STEP(a6, c60, c61);
      STEP(a7, c70, c71);
    }
  }
  const __m512i out[2 * MR] = {c00, c01, c10, c11, c20, c21, c30, c31,
                               c40, c41, c50, c51, c60, c61, c70, c71};
  for (int i = 0; i < 2 * rows; i++)
    if (!half || i % 2 == 0)
      _mm512_storeu_si512((void *)(acc + 16 * i), out[i]);
}

/* The instantiation for (mr, flip); half is a constant of the caller. */
static inline __attribute__((always_inline)) void tiles(
    int32_t mr, int32_t kp, const uint8_t *a, size_t lda, const void *b,
    int32_t *acc, uint8_t flip, const int half) {
  if (mr > 4) {
    if (flip)
      tile(mr, kp, a, lda, b, acc, 1, half, 8);
    else
      tile(mr, kp, a, lda, b, acc, 0, half, 8);
  } else if (mr > 2) {
    if (flip)
      tile(mr, kp, a, lda, b, acc, 1, half, 4);
    else
      tile(mr, kp, a, lda, b, acc, 0, half, 4);
  } else {
    if (flip)
      tile(mr, kp, a, lda, b, acc, 1, half, 2);
    else
      tile(mr, kp, a, lda, b, acc, 0, half, 2);
  }
}

static void ukernel(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                    const void *b, int32_t *acc, uint8_t flip) {
  tiles(mr, kp, a, lda, b, acc, flip, 0);
}

static void ukernel_half(int32_t mr, int32_t kp, const uint8_t *a, size_t lda,
                         const void *b, int32_t *acc, uint8_t flip) {
  tiles(mr, kp, a, lda, b, acc, flip, 1);
}

/* Row r's 32 accumulators with the zero-point terms, rounded. */
static inline __m512i corrected(const int32_t *acc, __m512i f, __m512i zw,
                                const int32_t *w_zero, int32_t row_sum) {
  __m512i v = _mm512_add_epi32(_mm512_loadu_si512(acc), f);
  if (w_zero)
    v = _mm512_sub_epi32(v, _mm512_mullo_epi32(zw, _mm512_set1_epi32(row_sum)));
  return v;
}

/* int8 outputs: two rows (64 bytes) per pack, pyrt_avx512_rows. */
static void epilogue_bytes(int32_t mr, int32_t nr, const int32_t *acc,
                           int32_t ld_acc, const int32_t *fixed,
                           const int32_t *w_zero, const int32_t *row_sum,
                           const float *scale, const pyrt_output_stage *out,
                           uint8_t *y, size_t ldy) {
  const pyrt_avx512_bytes k = pyrt_avx512_bytes_init(out);
  const __mmask16 m0 = pyrt_avx512_mask(nr);
  const __mmask16 m1 = nr > 16 ? pyrt_avx512_mask(nr - 16) : 0;
  const __mmask32 store = nr >= 32 ? 0xFFFFFFFFu : (1u << nr) - 1u;
  const __m512i f0 = _mm512_maskz_loadu_epi32(m0, fixed);
  const __m512i f1 = _mm512_maskz_loadu_epi32(m1, fixed + 16);
  const __m512i zw0 =
      w_zero ? _mm512_maskz_loadu_epi32(m0, w_zero) : _mm512_setzero_si512();
  const __m512i zw1 = w_zero ? _mm512_maskz_loadu_epi32(m1, w_zero + 16)
                             : _mm512_setzero_si512();
  const __m512 s0 = pyrt_avx512_scale(scale, out->per_channel, m0);
  const __m512 s1 =
      out->per_channel ? _mm512_maskz_loadu_ps(m1, scale + 16) : s0;
  if (nr <= 16) { /* four rows of 16 lanes per pack */
    const int32_t *rs = row_sum;
    for (int32_t r = 0; r < mr; r += 4) {
      __m512i v[4];
      for (int32_t i = 0; i < 4; i++) {
        const int32_t q = r + i < mr ? r + i : mr - 1;
        v[i] = pyrt_avx512_round(corrected(acc + (size_t)q * ld_acc, f0, zw0,
                                           w_zero, w_zero ? rs[q] : 0),
                                 s0);
      }
      const __m512i p = pyrt_avx512_rows(v[0], v[1], v[2], v[3], &k);
      const __m128i q[4] = {
          _mm512_castsi512_si128(p), _mm512_extracti32x4_epi32(p, 1),
          _mm512_extracti32x4_epi32(p, 2), _mm512_extracti32x4_epi32(p, 3)};
      for (int32_t i = 0; i < 4 && r + i < mr; i++)
        _mm_mask_storeu_epi8(y + (size_t)(r + i) * ldy, m0, q[i]);
    }
    return;
  }
  for (int32_t r = 0; r < mr; r += 2) {
    const int32_t *a = acc + (size_t)r * ld_acc;
    const __m512i a0 = pyrt_avx512_round(
        corrected(a, f0, zw0, w_zero, w_zero ? row_sum[r] : 0), s0);
    const __m512i a1 = pyrt_avx512_round(
        corrected(a + 16, f1, zw1, w_zero, w_zero ? row_sum[r] : 0), s1);
    __m512i b0 = a0, b1 = a1;
    if (r + 1 < mr) {
      const int32_t *b = a + ld_acc;
      b0 = pyrt_avx512_round(
          corrected(b, f0, zw0, w_zero, w_zero ? row_sum[r + 1] : 0), s0);
      b1 = pyrt_avx512_round(
          corrected(b + 16, f1, zw1, w_zero, w_zero ? row_sum[r + 1] : 0), s1);
    }
    const __m512i v = pyrt_avx512_rows(a0, a1, b0, b1, &k);
    _mm256_mask_storeu_epi8(y + (size_t)r * ldy, store,
                            _mm512_castsi512_si256(v));
    if (r + 1 < mr)
      _mm256_mask_storeu_epi8(y + (size_t)(r + 1) * ldy, store,
                              _mm512_extracti64x4_epi64(v, 1));
  }
}

static void epilogue(int32_t mr, int32_t nr, const int32_t *acc, int32_t ld_acc,
                     const int32_t *fixed, const int32_t *w_zero,
                     const int32_t *row_sum, const float *scale,
                     const pyrt_output_stage *out, void *y, size_t ldy) {
  if (out->out_dtype == PYRT_U8 || out->out_dtype == PYRT_S8) {
    epilogue_bytes(mr, nr, acc, ld_acc, fixed, w_zero, row_sum, scale, out,
                   (uint8_t *)y, ldy);
    return;
  }
  const pyrt_avx512_stage k = pyrt_avx512_stage_init(out);
  for (int32_t j = 0; j < nr; j += 16) {
    const __mmask16 m = pyrt_avx512_mask(nr - j);
    const __m512i f = _mm512_maskz_loadu_epi32(m, fixed + j);
    const __m512i zw = w_zero ? _mm512_maskz_loadu_epi32(m, w_zero + j)
                              : _mm512_setzero_si512();
    const __m512 s = pyrt_avx512_scale(scale + (out->per_channel ? j : 0),
                                       out->per_channel, m);
    for (int32_t r = 0; r < mr; r++)
      pyrt_avx512_output(corrected(acc + (size_t)r * ld_acc + j, f, zw, w_zero,
                                   w_zero ? row_sum[r] : 0),
                         m, s, &k, y, (size_t)r * ldy + (size_t)j);
  }
}

/* rows x n bytes, flipped: 64 bytes per (masked) load and store; a row of
   at most 64 bytes (im2col spans of a stem over 3 channels: 21) is one of
   each. */
static void copy_rows(uint8_t *dst, size_t ld_dst, const uint8_t *src,
                      size_t ld_src, int32_t rows, size_t n, uint8_t flip) {
  const __m512i fx = _mm512_set1_epi8((char)flip);
  const __mmask64 tail = n % 64 ? (1ull << (n % 64)) - 1u : 0;
  for (int32_t r = 0; r < rows; r++, dst += ld_dst, src += ld_src) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
      _mm512_storeu_si512(
          (void *)(dst + i),
          _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i)), fx));
    if (tail)
      _mm512_mask_storeu_epi8(
          dst + i, tail,
          _mm512_xor_si512(_mm512_maskz_loadu_epi8(tail, src + i), fx));
  }
}

void pyrt_qgemm_init_avx512vnni(pyrt_kernel_table *t) {
  t->qgemm = (pyrt_qgemm_config){
      MR, NR, KR, 1, 1, ukernel, NULL, epilogue, copy_rows, ukernel_half};
}
