/* team.c — the threads that run one train function together.
 *
 * The workers are created once and sleep on a condition variable between
 * runs. Within a run they meet at a spinning barrier: a run's threads
 * meet a few times per training step, microseconds apart, where a sleep
 * and a wake-up would cost more than the step. A thread that has spun a
 * while yields its processor, so that a machine with fewer free cores
 * than threads still makes progress.
 */
#include "dlrt.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

enum { SPINS_BEFORE_YIELD = 4000 };

struct DlrtTeam {
  int nthreads;
  pthread_t *workers;                            /* threads 1 .. nthreads - 1 */
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  uint64_t run;                                  /* runs started; guarded by mu */
  int running;                                   /* workers still in the current run */
  bool quit;
  void (*job)(void *, int);
  void *arg;
  atomic_int arrived;                            /* at the barrier, this round */
  atomic_uint_fast64_t round;                    /* barrier rounds completed */
};

typedef struct Worker {
  DlrtTeam *team;
  int thread;
} Worker;

static void *worker_main(void *p) {
  Worker w = *(Worker *)p;
  free(p);
  DlrtTeam *t = w.team;
  uint64_t seen = 0;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    while (t->run == seen && !t->quit)
      pthread_cond_wait(&t->wake, &t->mu);
    if (t->quit)
      break;
    seen = t->run;
    pthread_mutex_unlock(&t->mu);
    t->job(t->arg, w.thread);
    pthread_mutex_lock(&t->mu);
    if (--t->running == 0)
      pthread_cond_signal(&t->done);
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

DlrtTeam *dlrt_team_new(int nthreads) {
  DlrtTeam *t = calloc(1, sizeof *t);
  t->nthreads = nthreads < 1 ? 1 : nthreads;
  t->workers = calloc((size_t)t->nthreads, sizeof(pthread_t));
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->wake, NULL);
  pthread_cond_init(&t->done, NULL);
  /* Workers take no signals: a Ctrl-C must reach the thread that reads the
   * terminal or runs the program, not a worker asleep between runs. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int k = 1; k < t->nthreads; k++) {
    Worker *w = malloc(sizeof *w);
    *w = (Worker){t, k};
    if (pthread_create(&t->workers[k], NULL, worker_main, w) != 0) {
      free(w);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      t->nthreads = k;                           /* dlrt_team_free joins the ones made */
      dlrt_team_free(t);
      return NULL;
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return t;
}

void dlrt_team_free(DlrtTeam *t) {
  if (!t)
    return;
  pthread_mutex_lock(&t->mu);
  t->quit = true;
  pthread_cond_broadcast(&t->wake);
  pthread_mutex_unlock(&t->mu);
  for (int k = 1; k < t->nthreads; k++)
    pthread_join(t->workers[k], NULL);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->wake);
  pthread_cond_destroy(&t->done);
  free(t->workers);
  free(t);
}

int dlrt_team_size(const DlrtTeam *t) { return t->nthreads; }

void dlrt_team_run(DlrtTeam *t, void (*job)(void *, int), void *arg) {
  pthread_mutex_lock(&t->mu);
  t->job = job;
  t->arg = arg;
  t->running = t->nthreads - 1;
  t->run++;
  pthread_cond_broadcast(&t->wake);
  pthread_mutex_unlock(&t->mu);
  job(arg, 0);
  pthread_mutex_lock(&t->mu);
  while (t->running > 0)
    pthread_cond_wait(&t->done, &t->mu);
  pthread_mutex_unlock(&t->mu);
}

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* The last thread to arrive resets the count, then opens the round; the
 * release/acquire pair on `round` carries every thread's earlier writes
 * to every other. */
void dlrt_team_barrier(DlrtTeam *t) {
  uint_fast64_t round = atomic_load_explicit(&t->round, memory_order_acquire);
  if (atomic_fetch_add_explicit(&t->arrived, 1, memory_order_acq_rel) == t->nthreads - 1) {
    atomic_store_explicit(&t->arrived, 0, memory_order_relaxed);
    atomic_store_explicit(&t->round, round + 1, memory_order_release);
    return;
  }
  for (int spins = 0; atomic_load_explicit(&t->round, memory_order_acquire) == round; spins++) {
    if (spins < SPINS_BEFORE_YIELD)
      relax();
    else
      sched_yield();
  }
}

int dlrt_cpu_count(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
