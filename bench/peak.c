/* Peak multiply-accumulate rate of one core: a register loop of independent
 * int8 dot products and one of fp32 FMAs, with no loads or stores.
 *
 * The instructions come from the compile flags (bench/peak.py picks them):
 *   -mavx512vnni -mavx512bw -mavx512f  int8 vpdpbusd zmm (64 MACs per op),
 *                                      fp32 vfmadd zmm (16)
 *   -mavxvnni -mavx2 -mfma             int8 vpdpbusd ymm (32), fp32 ymm (8)
 *   -mavx2 -mfma                       int8 vpmaddwd ymm (16), fp32 ymm (8)
 * Prints: <int8 GMAC/s> <fp32 GMAC/s> <int8 instruction> <fp32 instruction>
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
typedef __m512i ivec;
typedef __m512 fvec;
#define INT8_OP "vpdpbusd-zmm"
#define INT8_MACS 64
#define FP32_OP "vfmadd231ps-zmm"
#define FP32_MACS 16
#define ISET(v) _mm512_set1_epi32(v)
#define IMAC(acc, a, b) _mm512_dpbusd_epi32(acc, a, b)
#define IRED(v) _mm512_reduce_add_epi32(v)
#define FSET(v) _mm512_set1_ps(v)
#define FMAC(acc, a, b) _mm512_fmadd_ps(a, b, acc)
#define FRED(v) _mm512_reduce_add_ps(v)
#else
typedef __m256i ivec;
typedef __m256 fvec;
#if defined(__AVXVNNI__)
#define INT8_OP "vpdpbusd-ymm"
#define INT8_MACS 32
#define IMAC(acc, a, b) _mm256_dpbusd_avx_epi32(acc, a, b)
#else
#define INT8_OP "vpmaddwd-ymm"
#define INT8_MACS 16
/* madds the accumulator: with loop-invariant operands it would be hoisted */
#define IMAC(acc, a, b) _mm256_add_epi32(acc, _mm256_madd_epi16(acc, b))
#endif
#define FP32_OP "vfmadd231ps-ymm"
#define FP32_MACS 8
#define ISET(v) _mm256_set1_epi32(v)
#define FSET(v) _mm256_set1_ps(v)
#define FMAC(acc, a, b) _mm256_fmadd_ps(a, b, acc)
static int IRED(__m256i v) {
  int lane[8], sum = 0;
  _mm256_storeu_si256((__m256i *)lane, v);
  for (int i = 0; i < 8; i++) sum += lane[i];
  return sum;
}
static float FRED(__m256 v) {
  float lane[8], sum = 0;
  _mm256_storeu_ps(lane, v);
  for (int i = 0; i < 8; i++) sum += lane[i];
  return sum;
}
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* seed is read at run time, so nothing folds to a constant; sink is written
 * at the end, so the loops' results stay live. */
static volatile int seed = 1;
static volatile double sink;

/* CHAINS independent accumulators: enough for latency x throughput of current
 * cores, few enough for AVX2's 16 registers, named so that each one stays in a
 * register. */
#define CHAINS 12
#define REPEAT(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* Seconds for `iters` iterations of CHAINS int8 dot products. */
static double int8_loop(long iters) {
  ivec a = ISET(seed), b = ISET(seed + 1);
  (void)a; /* the vpmaddwd loop does not read it */
#define DECLARE(c) ivec acc##c = ISET(c);
#define STEP(c) acc##c = IMAC(acc##c, a, b);
#define DRAIN(c) sink += IRED(acc##c);
  REPEAT(DECLARE)
  double start = now();
  for (long i = 0; i < iters; i++) {
    REPEAT(STEP)
  }
  double seconds = now() - start;
  REPEAT(DRAIN)
  return seconds;
#undef DECLARE
#undef STEP
#undef DRAIN
}

/* Seconds for `iters` iterations of CHAINS fp32 FMAs. */
static double fp32_loop(long iters) {
  fvec a = FSET(1.0f + 1e-9f * seed), b = FSET(0.999999f);
#define DECLARE(c) fvec acc##c = FSET(c);
#define STEP(c) acc##c = FMAC(acc##c, a, b);
#define DRAIN(c) sink += FRED(acc##c);
  REPEAT(DECLARE)
  double start = now();
  for (long i = 0; i < iters; i++) {
    REPEAT(STEP)
  }
  double seconds = now() - start;
  REPEAT(DRAIN)
  return seconds;
#undef DECLARE
#undef STEP
#undef DRAIN
}

/* GMAC/s: the best of 5 runs of at least 0.1 s each. */
static double best_rate(double (*loop)(long), int macs_per_op) {
  long iters = 1000;
  while (loop(iters) < 0.1) iters *= 2;
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double s = loop(iters);
    best = s < best ? s : best;
  }
  return (double)iters * CHAINS * macs_per_op / best / 1e9;
}

int main(void) {
  double int8 = best_rate(int8_loop, INT8_MACS);
  double fp32 = best_rate(fp32_loop, FP32_MACS);
  printf("%.1f %.1f %s %s\n", int8, fp32, INT8_OP, FP32_OP);
  return 0;
}
