/* Execution contexts: a kernel table, a small pthread pool and per-worker
 * scratch. The pool runs one job at a time: the caller posts fn/tasks,
 * every worker (the caller included) takes task indices from a shared
 * counter, and the caller returns once all tasks are done. Which worker ran
 * which task never changes a result: tasks write disjoint outputs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct pyrt_pool {
  pthread_mutex_t mutex;
  pthread_cond_t wake; /* a new job (or shutdown) for the workers */
  pthread_cond_t done; /* the last task of the job finished */
  pthread_t *threads;
  int32_t workers; /* threads started, besides the caller */
  uint64_t job;    /* incremented per job */
  int shutdown;
  pyrt_task_fn fn;
  void *arg;
  int32_t tasks, next, finished;
};

/* Takes tasks of the current job until none is left. Called with the mutex
   held; returns with it held. */
static void drain(pyrt_pool *p, int32_t worker) {
  while (p->next < p->tasks) {
    const int32_t task = p->next++;
    pyrt_task_fn fn = p->fn;
    void *arg = p->arg;
    pthread_mutex_unlock(&p->mutex);
    fn(arg, task, worker);
    pthread_mutex_lock(&p->mutex);
    if (++p->finished == p->tasks) pthread_cond_signal(&p->done);
  }
}

typedef struct {
  pyrt_pool *pool;
  int32_t worker;
} worker_arg;

/* Spin iterations (a few microseconds) a worker polls for the next job;
   longer spins slowed small models on a 2-vCPU machine, measured. */
enum { SPIN = 2000 };

static inline void pyrt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void *worker_main(void *raw) {
  worker_arg w = *(worker_arg *)raw;
  free(raw);
  pyrt_pool *p = w.pool;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mutex);
  for (;;) {
    if (!p->shutdown && p->job == seen) {
      /* Kernels of one model come back to back: spin a little before
         sleeping, so the next job does not wait for a futex wake-up. */
      pthread_mutex_unlock(&p->mutex);
      for (int i = 0;
           i < SPIN && __atomic_load_n(&p->job, __ATOMIC_ACQUIRE) == seen; i++)
        pyrt_cpu_relax();
      pthread_mutex_lock(&p->mutex);
    }
    while (!p->shutdown && p->job == seen)
      pthread_cond_wait(&p->wake, &p->mutex);
    if (p->shutdown) break;
    seen = p->job;
    drain(p, w.worker);
  }
  pthread_mutex_unlock(&p->mutex);
  return NULL;
}

static void pool_destroy(pyrt_pool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mutex);
  p->shutdown = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mutex);
  for (int32_t i = 0; i < p->workers; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mutex);
  free(p->threads);
  free(p);
}

static pyrt_pool *pool_create(int32_t workers) {
  pyrt_pool *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->threads = calloc((size_t)workers, sizeof *p->threads);
  if (p->threads == NULL) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mutex, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  for (int32_t i = 0; i < workers; i++) {
    worker_arg *w = malloc(sizeof *w);
    if (w == NULL) break;
    *w = (worker_arg){p, i + 1};
    if (pthread_create(&p->threads[i], NULL, worker_main, w) != 0) {
      free(w);
      break;
    }
    p->workers++;
  }
  if (p->workers != workers) {
    pool_destroy(p);
    return NULL;
  }
  return p;
}

void pyrt_parallel(pyrt_context *ctx, int32_t tasks, pyrt_task_fn fn,
                   void *arg) {
  pyrt_pool *p = ctx->pool;
  if (p == NULL || tasks <= 1) {
    for (int32_t t = 0; t < tasks; t++) fn(arg, t, 0);
    return;
  }
  pthread_mutex_lock(&p->mutex);
  p->fn = fn;
  p->arg = arg;
  p->tasks = tasks;
  p->next = 0;
  p->finished = 0;
  __atomic_store_n(&p->job, p->job + 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->wake);
  drain(p, 0);
  while (p->finished < p->tasks) pthread_cond_wait(&p->done, &p->mutex);
  pthread_mutex_unlock(&p->mutex);
}

pyrt_grid pyrt_grid_make(const pyrt_context *ctx, int64_t rows, int64_t cols) {
  pyrt_grid g = {rows, cols, rows, 0, 0, 1};
  const int64_t total = rows * cols;
  if (ctx->threads == 1 || total < 2 * PYRT_GRAIN) return g;
  int64_t grain = total / (PYRT_TASKS_PER_THREAD * (int64_t)ctx->threads);
  if (grain < PYRT_GRAIN) grain = PYRT_GRAIN;
  if (cols >= grain) {
    g.piece = (grain + 63) / 64 * 64;
    g.pieces = (cols + g.piece - 1) / g.piece;
    g.rows_per_task = 1;
    g.tasks = (int32_t)(rows * g.pieces);
  } else {
    g.rows_per_task = grain / cols;
    g.tasks = (int32_t)((rows + g.rows_per_task - 1) / g.rows_per_task);
  }
  return g;
}

void pyrt_grid_task(const pyrt_grid *g, int32_t task, int64_t *r0, int64_t *r1,
                    int64_t *c0, int64_t *c1) {
  if (g->pieces) {
    *r0 = task / g->pieces;
    *r1 = *r0 + 1;
    *c0 = task % g->pieces * g->piece;
    *c1 = *c0 + g->piece < g->cols ? *c0 + g->piece : g->cols;
    return;
  }
  *r0 = task * g->rows_per_task;
  *r1 = *r0 + g->rows_per_task < g->rows ? *r0 + g->rows_per_task : g->rows;
  *c0 = 0;
  *c1 = g->cols;
}

void *pyrt_scratch(pyrt_context *ctx, int32_t worker, size_t bytes) {
  if (worker == PYRT_SHARED) worker = ctx->threads;
  if (ctx->scratch[worker].size < bytes) {
    free(ctx->scratch[worker].data);
    const size_t size = PYRT_ALIGN_UP(bytes + bytes / 4);
    ctx->scratch[worker].data = aligned_alloc(PYRT_ALIGN, size);
    ctx->scratch[worker].size = ctx->scratch[worker].data ? size : 0;
  }
  return ctx->scratch[worker].data;
}

void pyrt_context_enter(pyrt_context *ctx) {
  pthread_mutex_lock((pthread_mutex_t *)ctx->lock);
}

void pyrt_context_leave(pyrt_context *ctx) {
  pthread_mutex_unlock((pthread_mutex_t *)ctx->lock);
}

/* Far more threads than any machine has cores is a caller's mistake. */
enum { MAX_THREADS = 1024 };

int pyrt_context_create(const char *isa, int32_t threads, pyrt_context **out) {
  if (out == NULL) return pyrt_fail(PYRT_ERR_ARG, "context: out is NULL");
  *out = NULL;
  if (threads < 1 || threads > MAX_THREADS)
    return pyrt_fail(PYRT_ERR_ARG,
                     "context: threads must be in [1, %d], got %d", MAX_THREADS,
                     threads);
  const pyrt_kernel_table *t = pyrt_find_table(isa);
  if (t == NULL) return PYRT_ERR_ISA; /* pyrt_find_table said why */
  pyrt_context *ctx = calloc(1, sizeof *ctx);
  pthread_mutex_t *lock = malloc(sizeof *lock);
  if (ctx != NULL)
    ctx->scratch = calloc((size_t)threads + 1, sizeof *ctx->scratch);
  if (ctx == NULL || lock == NULL || ctx->scratch == NULL) {
    if (ctx) free(ctx->scratch);
    free(ctx);
    free(lock);
    return pyrt_fail(PYRT_ERR_NOMEM, "context: out of memory");
  }
  pthread_mutex_init(lock, NULL);
  ctx->lock = lock;
  ctx->t = t;
  ctx->threads = threads;
  if (threads > 1) {
    ctx->pool = pool_create(threads - 1);
    if (ctx->pool == NULL) {
      pyrt_context_destroy(ctx);
      return pyrt_fail(PYRT_ERR_NOMEM, "context: cannot start %d threads",
                       threads - 1);
    }
  }
  *out = ctx;
  return PYRT_OK;
}

void pyrt_context_destroy(pyrt_context *ctx) {
  if (ctx == NULL) return;
  pool_destroy(ctx->pool);
  for (int32_t i = 0; i <= ctx->threads; i++) free(ctx->scratch[i].data);
  free(ctx->scratch);
  pthread_mutex_destroy((pthread_mutex_t *)ctx->lock);
  free(ctx->lock);
  free(ctx);
}

const char *pyrt_context_isa(const pyrt_context *ctx) {
  return ctx ? ctx->t->name : "";
}

int32_t pyrt_context_threads(const pyrt_context *ctx) {
  return ctx ? ctx->threads : 0;
}

int32_t pyrt_context_vector_bits(const pyrt_context *ctx) {
  return ctx ? ctx->t->vector_bits : 0;
}
