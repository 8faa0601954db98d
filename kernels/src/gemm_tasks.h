/* How the GEMM drivers (int8 qgemm/qgemm.c, fp32 sgemm/sgemm.c) cut
 * y[M][N] into tasks for pyrt_parallel: M into bands of whole MR tiles,
 * N into chunks of NR-column panels; a task is one band x one chunk. The
 * split depends on the thread count only through how many tasks there are:
 * every task writes its own block of y, so results never do.
 */
#ifndef PYRT_GEMM_TASKS_H
#define PYRT_GEMM_TASKS_H

#include <stdint.h>

typedef struct {
  int32_t band, bands;       /* rows per band (whole tiles), band count */
  int32_t panels, per_chunk; /* NR-column panels, panels per task */
  int32_t chunks;            /* panel chunks per band */
} pyrt_gemm_tasks;

/* Packed weights larger than this do not stay in L2 (1 MB or more per core
   on the x86 and RISC-V parts pyrt targets) beside a band of A: each band
   then reads them from L3 again. Such GEMMs take bands of up to
   PYRT_GEMM_STREAM_BAND bytes of A and give threads panel chunks (their own
   share of the weights) rather than bands of their own. */
enum { PYRT_GEMM_L2_WEIGHTS = 512 * 1024, PYRT_GEMM_STREAM_BAND = 384 * 1024 };

/* row_bytes: bytes of one row of A as the tile reads it; b_bytes: the
   packed weights every band runs over. Bands hold about band_bytes (the
   driver's choice: A stays in L2 while every panel of B streams past it),
   and are small enough to give every thread a few; if there are still too
   few bands for the threads, the panels are split too. Bands are whole
   tiles, as even as that allows. A single thread runs whole bands: a
   chunk of panels would cost it the band's packing again. */
static inline pyrt_gemm_tasks pyrt_gemm_tasks_plan(
    int32_t M, int32_t N, int32_t mr, int32_t nr, int64_t row_bytes,
    int64_t band_bytes, int64_t b_bytes, int32_t threads) {
  pyrt_gemm_tasks t;
  const int big_b = b_bytes > PYRT_GEMM_L2_WEIGHTS;
  if (row_bytes < 1) row_bytes = 1;
  int64_t band = (big_b ? PYRT_GEMM_STREAM_BAND : band_bytes) / row_bytes;
  const int64_t per_thread = ((int64_t)M + 4 * threads - 1) / (4 * threads);
  if (threads > 1 && !big_b && band > per_thread) band = per_thread;
  if (band < 1) band = 1;
  if (band > M) band = M;
  const int64_t bands = (M + band - 1) / band;
  band = ((M + bands - 1) / bands + mr - 1) / mr * mr; /* even, whole tiles */
  if (band > M) band = M;
  t.band = (int32_t)band;
  t.bands = (int32_t)((M + band - 1) / band);
  t.panels = (N + nr - 1) / nr;
  int32_t chunks = 1;
  if (threads > 1 && t.bands < 2 * threads) {
    chunks = (2 * threads + t.bands - 1) / t.bands;
    if (chunks > t.panels) chunks = t.panels;
  }
  t.per_chunk = (t.panels + chunks - 1) / chunks;
  t.chunks = (t.panels + t.per_chunk - 1) / t.per_chunk;
  return t;
}

static inline int32_t pyrt_gemm_task_count(const pyrt_gemm_tasks *t) {
  return t->bands * t->chunks;
}

/* Task `task`'s rows [*m0, *m1) and panels [*p0, *p1). Tasks go band by
   band, in row order (the pool gives each thread a contiguous share of
   them: the same rows from one kernel to the next, and few bands of A to
   pack). */
static inline void pyrt_gemm_task_range(const pyrt_gemm_tasks *t, int32_t M,
                                        int32_t task, int32_t *m0, int32_t *m1,
                                        int32_t *p0, int32_t *p1) {
  const int32_t band = task / t->chunks, chunk = task % t->chunks;
  *m0 = band * t->band;
  *m1 = *m0 + t->band < M ? *m0 + t->band : M;
  *p0 = chunk * t->per_chunk;
  *p1 = *p0 + t->per_chunk < t->panels ? *p0 + t->per_chunk : t->panels;
}

#endif
