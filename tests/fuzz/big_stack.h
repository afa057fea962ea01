/* big_stack.h — what both fuzz targets share: each input runs on a thread
 * with the compiler's 512 MB stack, as `dlc` runs its passes. */
#ifndef DLC_FUZZ_BIG_STACK_H
#define DLC_FUZZ_BIG_STACK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct FuzzInput {
  const uint8_t *data;
  size_t size;
} FuzzInput;

static inline void run_on_big_stack(void *(*run)(void *), const uint8_t *data, size_t size) {
  FuzzInput in = {data, size};
  pthread_attr_t attr;
  pthread_t thread;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, (size_t)512 << 20);
  if (pthread_create(&thread, &attr, run, &in) == 0)
    pthread_join(thread, NULL);
  pthread_attr_destroy(&attr);
}

#endif
