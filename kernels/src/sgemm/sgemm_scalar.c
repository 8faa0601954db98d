/*
 * Scalar fp32 GEMM: y[M][N] = clamp(W[M][K] x X[K][N] + bias, lo, hi).
 *
 * Arithmetic (every SIMD variant must reproduce it bit for bit):
 *   acc = 0.0f; for k = 0 .. K-1: acc = acc + w[m][k] * x[k][n];
 *   v = acc + bias[m]  (bias NULL: v = acc + 0.0f);
 *   v = v < lo ? lo : v;  y = v > hi ? hi : v;
 * i.e. k strictly ascending, every product and sum rounded separately (no
 * fused multiply-add; see the pragma below), NaN passes through the clamp.
 *
 * Blocking: weights are packed into panels of MR rows, k-major
 * (panel[k][r] = W[m0 + r][k], missing rows zero), so a 4x8 block of y lives
 * in registers while k runs. X is read in place in KC x NC blocks that stay
 * in cache while every weight panel passes over them; between K blocks the
 * running sums are parked (unrounded) in y, which keeps the order above.
 */
#include <string.h>

#include "internal.h"

/* clang contracts a * b + c into an FMA by default; gcc does not in ISO C
   mode (-std=c11). Either would break bit-exactness with other ISAs. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

enum { MR = 4, NR = 8, KC = 256, NC = 128 };

size_t pyrt_sgemm_weights_size_scalar(int32_t M, int32_t K) {
  const size_t panels = ((size_t)M + MR - 1) / MR;
  return panels * MR * (size_t)K * sizeof(float);
}

void pyrt_sgemm_pack_weights_scalar(int32_t M, int32_t K, const float *w,
                                    void *dst) {
  float *p = (float *)dst;
  for (int32_t m0 = 0; m0 < M; m0 += MR)
    for (int32_t k = 0; k < K; k++)
      for (int32_t r = 0; r < MR; r++)
        *p++ = m0 + r < M ? w[(size_t)(m0 + r) * (size_t)K + (size_t)k] : 0.0f;
}

/* acc[MR][NR] += panel[0..kc) x x[0..kc)[0..NR): constant trip counts, so
   the compiler keeps acc in vector registers. */
static void micro_tile(int32_t kc, const float *panel, const float *x,
                       int32_t ldx, float acc[MR][NR]) {
  for (int32_t k = 0; k < kc; k++) {
    const float *xr = x + (size_t)k * (size_t)ldx;
    const float *wr = panel + (size_t)k * MR;
    for (int32_t r = 0; r < MR; r++)
      for (int32_t j = 0; j < NR; j++) acc[r][j] += wr[r] * xr[j];
  }
}

/* One column of y (the N % NR tail): vectorizes over the MR rows instead. */
static void micro_column(int32_t kc, const float *panel, const float *x,
                         int32_t ldx, float acc[MR]) {
  for (int32_t k = 0; k < kc; k++) {
    const float xv = x[(size_t)k * (size_t)ldx];
    for (int32_t r = 0; r < MR; r++) acc[r] += panel[(size_t)k * MR + r] * xv;
  }
}

static float finish(float acc, const float *bias, int32_t m, float lo,
                    float hi) {
  float v = acc + (bias ? bias[m] : 0.0f);
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

void pyrt_sgemm_scalar(int32_t M, int32_t N, int32_t K, const void *weights,
                       const float *x, int32_t ldx, const float *bias, float lo,
                       float hi, float *y, int32_t ldy) {
  const float *w = (const float *)weights;
  for (int32_t n0 = 0; n0 < N; n0 += NC) {
    const int32_t nc = N - n0 < NC ? N - n0 : NC;
    for (int32_t k0 = 0; k0 < K; k0 += KC) {
      const int32_t kc = K - k0 < KC ? K - k0 : KC;
      const int first = k0 == 0, last = k0 + kc == K;
      const float *xb = x + (size_t)k0 * (size_t)ldx + n0;
      for (int32_t m0 = 0; m0 < M; m0 += MR) {
        const int32_t mr = M - m0 < MR ? M - m0 : MR;
        const float *panel = w + (size_t)m0 * (size_t)K + (size_t)k0 * MR;
        float *yb = y + (size_t)m0 * (size_t)ldy + n0;
        int32_t j0 = 0;
        for (; j0 + NR <= nc; j0 += NR) {
          float acc[MR][NR];
          for (int32_t r = 0; r < MR; r++)
            for (int32_t j = 0; j < NR; j++)
              acc[r][j] = first || r >= mr
                              ? 0.0f
                              : yb[(size_t)r * (size_t)ldy + j0 + j];
          micro_tile(kc, panel, xb + j0, ldx, acc);
          for (int32_t r = 0; r < mr; r++) {
            float *dst = yb + (size_t)r * (size_t)ldy + j0;
            for (int32_t j = 0; j < NR; j++)
              dst[j] =
                  last ? finish(acc[r][j], bias, m0 + r, lo, hi) : acc[r][j];
          }
        }
        for (; j0 < nc; j0++) {
          float acc[MR];
          for (int32_t r = 0; r < MR; r++)
            acc[r] = first || r >= mr ? 0.0f : yb[(size_t)r * (size_t)ldy + j0];
          micro_column(kc, panel, xb + j0, ldx, acc);
          for (int32_t r = 0; r < mr; r++)
            yb[(size_t)r * (size_t)ldy + j0] =
                last ? finish(acc[r], bias, m0 + r, lo, hi) : acc[r];
        }
      }
    }
  }
}
