/* Thread-pool stress for the ThreadSanitizer build (tests/test_sanitizers.py):
 * several threads share one multi-threaded context and each also runs its own,
 * over every kernel table; every result must equal the one-thread result.
 * Exit status 0 when all agree, 1 otherwise (TSan reports races itself). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyrt/kernels.h"

enum { M = 97, N = 70, K = 131, CALLERS = 3, ROUNDS = 20 };

static uint8_t a[M * K];
static int8_t w[N * K];
static int32_t bias[N];
static float scale[N];
static uint8_t expected[M * N];

typedef struct {
  pyrt_context *shared;
  const char *isa;
  const void *packed;
  int failures;
} job;

static int gemm(pyrt_context *ctx, const void *packed, uint8_t *y) {
  const pyrt_output_stage out = {PYRT_U8, 1, scale, 3, 0, 255};
  return pyrt_qgemm(ctx, M, N, K, a, PYRT_U8, 7, K, packed, bias, &out, y, N);
}

static void *caller(void *raw) {
  job *j = (job *)raw;
  pyrt_context *own = NULL;
  if (pyrt_context_create(j->isa, 2, &own) != PYRT_OK) {
    j->failures++;
    return NULL;
  }
  uint8_t y[M * N];
  for (int r = 0; r < ROUNDS; r++) {
    pyrt_context *ctx = r % 2 ? own : j->shared;
    memset(y, 0, sizeof y);
    if (gemm(ctx, j->packed, y) != PYRT_OK || memcmp(y, expected, sizeof y))
      j->failures++;
  }
  pyrt_context_destroy(own);
  return NULL;
}

int main(void) {
  srand(1);
  for (int i = 0; i < M * K; i++) a[i] = (uint8_t)rand();
  for (int i = 0; i < N * K; i++) w[i] = (int8_t)rand();
  for (int i = 0; i < N; i++) bias[i] = rand() % 1000 - 500, scale[i] = 1e-4f;
  char isas[128];
  snprintf(isas, sizeof isas, "%s", pyrt_isa_available());
  int failures = 0;
  for (char *isa = strtok(isas, ","); isa; isa = strtok(NULL, ",")) {
    pyrt_context *one = NULL, *shared = NULL;
    if (pyrt_context_create(isa, 1, &one) ||
        pyrt_context_create(isa, 3, &shared))
      return 1;
    void *packed = malloc(pyrt_qgemm_packed_size(one, N, K));
    if (pyrt_qgemm_pack(one, N, K, w, PYRT_S8, NULL, 0, packed) ||
        gemm(one, packed, expected))
      return 1;
    job jobs[CALLERS];
    pthread_t threads[CALLERS];
    for (int t = 0; t < CALLERS; t++) {
      jobs[t] = (job){shared, isa, packed, 0};
      pthread_create(&threads[t], NULL, caller, &jobs[t]);
    }
    for (int t = 0; t < CALLERS; t++) {
      pthread_join(threads[t], NULL);
      failures += jobs[t].failures;
    }
    printf("%s: %d mismatches\n", isa, failures);
    free(packed);
    pyrt_context_destroy(one);
    pyrt_context_destroy(shared);
  }
  return failures ? 1 : 0;
}
