/* fake_cuda.c — a CUDA driver for the tests of machines without a GPU.
 *
 * The runtime (runtime/cuda.c) loads it as it would libcuda.so.1 (through
 * DLC_LIBCUDA) and drives it as a GPU: memory is host memory, a device
 * pointer a host pointer; a module is accepted when it has the kernel, and
 * it and its function are the image it was loaded from; a launch calls the
 * function the test set with fake_cuda_set_launch (which runs the kernel
 * emulated, tests/unit/check_gpu.c) with that image, the launch's grid and
 * arguments. A device of two multiprocessors, two blocks each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*FakeLaunch)(const char *image, unsigned grid, unsigned block, void **args);

static FakeLaunch launcher;
int fake_cuda_launches;                          /* launches so far */

void fake_cuda_set_launch(FakeLaunch f) { launcher = f; }

enum { SUCCESS = 0, INVALID_IMAGE = 200, LAUNCH_FAILED = 719 };

int cuInit(unsigned flags) { return SUCCESS; }

int cuGetErrorName(int r, const char **name) {
  *name = r == INVALID_IMAGE ? "CUDA_ERROR_INVALID_IMAGE" : "CUDA_ERROR_LAUNCH_FAILED";
  return SUCCESS;
}

int cuDeviceGet(int *dev, int ordinal) {
  *dev = ordinal;
  return SUCCESS;
}

int cuDeviceGetAttribute(int *value, int attribute, int dev) {
  *value = 2;                                    /* multiprocessors */
  return SUCCESS;
}

int cuDevicePrimaryCtxRetain(void **ctx, int dev) {
  *ctx = &launcher;
  return SUCCESS;
}

int cuCtxSetCurrent(void *ctx) { return SUCCESS; }
int cuCtxSynchronize(void) { return SUCCESS; }

int cuModuleLoadData(void **mod, const void *image) {
  *mod = strstr(image, ".entry dl_steps(") ? (void *)image : NULL;
  return *mod ? SUCCESS : INVALID_IMAGE;
}

int cuModuleGetFunction(void **fn, void *mod, const char *name) {
  *fn = mod;
  return SUCCESS;
}

int cuModuleUnload(void *mod) { return SUCCESS; }

int cuOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, void *fn, int block, size_t shared) {
  *blocks = 2;
  return SUCCESS;
}

int cuMemAlloc_v2(uint64_t *p, size_t bytes) {
  *p = (uint64_t)(uintptr_t)calloc(1, bytes);
  return SUCCESS;
}

int cuMemFree_v2(uint64_t p) {
  free((void *)(uintptr_t)p);
  return SUCCESS;
}

int cuMemcpyHtoD_v2(uint64_t to, const void *from, size_t bytes) {
  memcpy((void *)(uintptr_t)to, from, bytes);
  return SUCCESS;
}

int cuMemcpyDtoH_v2(void *to, uint64_t from, size_t bytes) {
  memcpy(to, (const void *)(uintptr_t)from, bytes);
  return SUCCESS;
}

static int launch(void *fn, unsigned grid, unsigned block, void **args) {
  if (!launcher)
    return LAUNCH_FAILED;
  fake_cuda_launches++;
  launcher(fn, grid, block, args);
  return SUCCESS;
}

int cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned shared, void *stream, void **args, void **extra) {
  return gx == 1 ? launch(fn, gx, bx, args) : LAUNCH_FAILED;   /* a grid needs a cooperative launch */
}

int cuLaunchCooperativeKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                              unsigned by, unsigned bz, unsigned shared, void *stream, void **args) {
  return launch(fn, gx, bx, args);
}
