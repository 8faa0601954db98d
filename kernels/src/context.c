/* Execution contexts: a kernel table, a small pthread pool and per-worker
 * scratch.
 *
 * The pool runs one job (fn over tasks [0, tasks)) at a time, the caller
 * taking part as worker 0. Each of the T workers owns a contiguous range of
 * the tasks, [w * tasks / T, (w + 1) * tasks / T): it takes its tasks from
 * the front and, once its range is empty, steals from the back of the
 * others'. Kernels number their tasks along the rows of their output
 * (pixels, in NHWC), so a worker keeps to about the same rows from one
 * kernel to the next and reads what it wrote from its own cache, while
 * stealing evens out uneven tasks and descheduled threads. Which worker ran
 * which task never changes a result: tasks write disjoint outputs.
 *
 * No lock is taken on the way of a task: ranges are claimed by
 * compare-and-swap, and a worker counts itself in `busy` while it may touch
 * them, so the caller rewrites them for the next job only once no worker is
 * left in the last one (it marks the job odd first: a worker that comes in
 * late sees that and stays out). Between jobs workers spin a while on the
 * job counter, then sleep on a condition variable; the caller spins a while
 * for the last tasks of a job, then sleeps too.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One worker's tasks [next, end): next in the low 32 bits, end in the high
   ones; a cache line each. */
typedef struct {
  uint64_t tasks;
  char pad[PYRT_ALIGN - sizeof(uint64_t)];
} pool_range;

struct pyrt_pool {
  pthread_mutex_t mutex; /* for sleeping and waking only */
  pthread_cond_t wake;   /* a new job (or shutdown) for sleeping workers */
  pthread_cond_t done;   /* the last task finished, for a sleeping caller */
  pthread_t *threads;
  pool_range *ranges; /* [workers + 1] */
  int32_t workers;    /* threads started, besides the caller */
  /* accessed atomically */
  uint64_t job; /* 2 per job; odd while the caller sets one up */
  int32_t busy; /* workers inside a job */
  int32_t finished, sleepers, caller_sleeps, shutdown;
  /* the job: written while `job` is odd and no worker is busy */
  pyrt_task_fn fn;
  void *arg;
  int32_t tasks;
};

/* Spin iterations (pause: about 25 ns on Zen 4, longer on Intel) before a
   worker sleeps between jobs, or the caller sleeps for the last tasks:
   kernels of one model come back to back, and a futex wake-up costs tens
   of microseconds on a VM. Longer spins slowed small models on a 2-vCPU
   machine, measured. Every YIELD-th iteration yields the CPU instead: when
   the machine is oversubscribed, the thread spun for may be waiting for
   this very CPU (2 threads pinned to one CPU: MobileNetV2 0.56x the speed
   of 1 thread without, 1.02x with; no change when the CPUs are free). */
enum { SPIN = 2000, YIELD = 256 };

static inline void spin_pause(int i) {
  if (i % YIELD == YIELD - 1) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static int32_t take_front(pool_range *r) {
  uint64_t v = __atomic_load_n(&r->tasks, __ATOMIC_RELAXED);
  for (;;) {
    const uint32_t next = (uint32_t)v, end = (uint32_t)(v >> 32);
    if (next >= end) return -1;
    if (__atomic_compare_exchange_n(&r->tasks, &v, v + 1, 1, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      return (int32_t)next;
  }
}

static int32_t take_back(pool_range *r) {
  uint64_t v = __atomic_load_n(&r->tasks, __ATOMIC_RELAXED);
  for (;;) {
    const uint32_t next = (uint32_t)v, end = (uint32_t)(v >> 32);
    if (next >= end) return -1;
    const uint64_t rest = (uint64_t)(end - 1) << 32 | next;
    if (__atomic_compare_exchange_n(&r->tasks, &v, rest, 1, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      return (int32_t)(end - 1);
  }
}

/* Runs tasks of the current job as worker w until none is left. */
static void run_tasks(pyrt_pool *p, int32_t w) {
  const int32_t n = p->workers + 1, tasks = p->tasks;
  const pyrt_task_fn fn = p->fn;
  void *arg = p->arg;
  for (;;) {
    int32_t task = take_front(&p->ranges[w]);
    for (int32_t i = 1; task < 0 && i < n; i++)
      task = take_back(&p->ranges[(w + i) % n]);
    if (task < 0) return;
    fn(arg, task, w);
    if (__atomic_add_fetch(&p->finished, 1, __ATOMIC_SEQ_CST) == tasks &&
        w != 0 && __atomic_load_n(&p->caller_sleeps, __ATOMIC_SEQ_CST)) {
      pthread_mutex_lock(&p->mutex);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mutex);
    }
  }
}

static int ready(uint64_t job, uint64_t seen) {
  return job != seen && job % 2 == 0;
}

/* Waits for a job other than `seen`; returns it (check shutdown). */
static uint64_t wait_job(pyrt_pool *p, uint64_t seen) {
  uint64_t job = 0;
  for (int i = 0; i < SPIN; spin_pause(i++)) {
    job = __atomic_load_n(&p->job, __ATOMIC_ACQUIRE);
    if (ready(job, seen) || __atomic_load_n(&p->shutdown, __ATOMIC_ACQUIRE))
      return job;
  }
  pthread_mutex_lock(&p->mutex);
  __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    job = __atomic_load_n(&p->job, __ATOMIC_SEQ_CST);
    if (ready(job, seen) || __atomic_load_n(&p->shutdown, __ATOMIC_ACQUIRE))
      break;
    pthread_cond_wait(&p->wake, &p->mutex);
  }
  __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&p->mutex);
  return job;
}

typedef struct {
  pyrt_pool *pool;
  int32_t worker;
} worker_arg;

static void *worker_main(void *raw) {
  worker_arg w = *(worker_arg *)raw;
  free(raw);
  pyrt_pool *p = w.pool;
  uint64_t seen = 0;
  for (;;) {
    const uint64_t job = wait_job(p, seen);
    if (__atomic_load_n(&p->shutdown, __ATOMIC_ACQUIRE)) break;
    __atomic_add_fetch(&p->busy, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->job, __ATOMIC_SEQ_CST) == job) { /* still it */
      seen = job;
      run_tasks(p, w.worker);
    }
    __atomic_sub_fetch(&p->busy, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void pool_destroy(pyrt_pool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mutex);
  __atomic_store_n(&p->shutdown, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mutex);
  for (int32_t i = 0; i < p->workers; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mutex);
  free(p->threads);
  free(p->ranges);
  free(p);
}

static pyrt_pool *pool_create(int32_t workers) {
  pyrt_pool *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->threads = calloc((size_t)workers, sizeof *p->threads);
  p->ranges =
      aligned_alloc(PYRT_ALIGN, sizeof(pool_range) * (size_t)(workers + 1));
  if (p->threads == NULL || p->ranges == NULL) {
    free(p->threads);
    free(p->ranges);
    free(p);
    return NULL;
  }
  memset(p->ranges, 0, sizeof(pool_range) * (size_t)(workers + 1));
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
  /* Mark the job odd, and wait for workers still in the last one (they
     leave within a few instructions unless descheduled). */
  const uint64_t job = __atomic_load_n(&p->job, __ATOMIC_RELAXED) + 2;
  __atomic_store_n(&p->job, job - 1, __ATOMIC_SEQ_CST);
  for (int i = 0; __atomic_load_n(&p->busy, __ATOMIC_SEQ_CST) != 0; i++)
    spin_pause(i < SPIN ? i : YIELD - 1);
  const int64_t n = p->workers + 1;
  p->fn = fn;
  p->arg = arg;
  p->tasks = tasks;
  __atomic_store_n(&p->finished, 0, __ATOMIC_RELAXED);
  for (int64_t w = 0; w < n; w++)
    __atomic_store_n(
        &p->ranges[w].tasks,
        (uint64_t)((w + 1) * tasks / n) << 32 | (uint64_t)(w * tasks / n),
        __ATOMIC_RELAXED);
  __atomic_store_n(&p->job, job, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
    pthread_mutex_lock(&p->mutex);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
  }
  run_tasks(p, 0);
  for (int i = 0; i < SPIN; spin_pause(i++))
    if (__atomic_load_n(&p->finished, __ATOMIC_ACQUIRE) == tasks) return;
  pthread_mutex_lock(&p->mutex);
  __atomic_store_n(&p->caller_sleeps, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&p->finished, __ATOMIC_SEQ_CST) != tasks)
    pthread_cond_wait(&p->done, &p->mutex);
  __atomic_store_n(&p->caller_sleeps, 0, __ATOMIC_RELAXED);
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
