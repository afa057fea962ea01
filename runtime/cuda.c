/* cuda.c — the GPU: CUDA's driver API, loaded at run time.
 *
 * dlc must build, and run on the CPU, where there is no CUDA at all, so the
 * driver is dlopen'ed on first use and its functions looked up by name:
 * the `_v2` ones where CUDA's header maps the plain name to them (the
 * plain ones are the legacy 32-bit ABI), and the primary context of device
 * 0, which needs no cuCtxCreate version. Every way to fail (no driver, the
 * stub library that CUDA's toolkit ships for linking, no GPU, a driver
 * too old for the PTX) gives a one-line reason.
 *
 * A train copies its buffers to the device once, then launches the kernel
 * for up to DLRT_GPU_CHUNK steps at a time (DLC_GPU_CHUNK, fewer, for the
 * tests and for measuring; DLC_GPU_BLOCKS sets the grid): a grid of more
 * than one block
 * is launched cooperatively, which guarantees that all its blocks are
 * resident at once, as the kernel's grid-wide barrier needs. Between
 * launches only the chunk's losses come back (for the log lines and the
 * divergence watch, dlrt_step), and at the end the buffers asked for.
 */
#include "dlrt.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The few types and constants of cuda.h that are used. */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_STUB_LIBRARY = 34,
  CUDA_ERROR_NO_DEVICE = 100,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
};

#define CUDA_FUNCTIONS(X)                                                                     \
  X(cuInit, (unsigned flags))                                                                 \
  X(cuGetErrorName, (CUresult r, const char **name))                                          \
  X(cuDeviceGet, (CUdevice * dev, int ordinal))                                               \
  X(cuDeviceGetAttribute, (int *value, int attribute, CUdevice dev))                          \
  X(cuDevicePrimaryCtxRetain, (CUcontext * ctx, CUdevice dev))                                \
  X(cuCtxSetCurrent, (CUcontext ctx))                                                         \
  X(cuCtxSynchronize, (void))                                                                 \
  X(cuModuleLoadData, (CUmodule * mod, const void *image))                                    \
  X(cuModuleGetFunction, (CUfunction * fn, CUmodule mod, const char *name))                   \
  X(cuModuleUnload, (CUmodule mod))                                                           \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessor, (int *blocks, CUfunction fn, int block, size_t shared)) \
  X(cuMemAlloc_v2, (CUdeviceptr * p, size_t bytes))                                           \
  X(cuMemFree_v2, (CUdeviceptr p))                                                            \
  X(cuMemcpyHtoD_v2, (CUdeviceptr to, const void *from, size_t bytes))                        \
  X(cuMemcpyDtoH_v2, (void *to, CUdeviceptr from, size_t bytes))                              \
  X(cuLaunchKernel, (CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,        \
                     unsigned by, unsigned bz, unsigned shared, CUstream s, void **args,      \
                     void **extra))                                                           \
  X(cuLaunchCooperativeKernel, (CUfunction fn, unsigned gx, unsigned gy, unsigned gz,          \
                                unsigned bx, unsigned by, unsigned bz, unsigned shared,       \
                                CUstream s, void **args))

/* The driver, once per process (the library and its context are the
 * process's anyway). */
static struct {
  bool tried;
  int status;                                    /* 0, or -1: why says why */
  char why[256];
  void *lib;
#define X(name, params) CUresult (*name) params;
  CUDA_FUNCTIONS(X)
#undef X
  CUdevice dev;
  CUcontext ctx;
  int sms;                                       /* multiprocessors */
} cuda;

static const char *error_name(CUresult r) {
  const char *name = NULL;
  if (!cuda.cuGetErrorName || cuda.cuGetErrorName(r, &name) != CUDA_SUCCESS || !name)
    return "an unknown CUDA error";
  return name;
}

/* True when r is success; else the reason in err. */
static bool ok(CUresult r, const char *what, char *err, size_t errsize) {
  if (r != CUDA_SUCCESS)
    snprintf(err, errsize, "%s failed on the GPU: %s (%d)", what, error_name(r), r);
  return r == CUDA_SUCCESS;
}

static int load_driver(char *err, size_t n) {
  const char *path = getenv("DLC_LIBCUDA");
  if (!path || !*path)
    path = "libcuda.so.1";
  cuda.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!cuda.lib) {
    snprintf(err, n, "no CUDA driver: cannot load %s (%s); --target gpu needs an NVIDIA GPU and its driver",
             path, dlerror());
    return -1;
  }
#define X(name, params)                                                                       \
  if (!(*(void **)&cuda.name = dlsym(cuda.lib, #name))) {                                     \
    snprintf(err, n, "the CUDA driver %s has no %s: it is too old for dlc", path, #name);     \
    return -1;                                                                                \
  }
  CUDA_FUNCTIONS(X)
#undef X
  CUresult r = cuda.cuInit(0);
  if (r == CUDA_ERROR_STUB_LIBRARY) {
    snprintf(err, n,
             "no CUDA driver: %s is CUDA's stub library, not a driver (no NVIDIA driver is installed)",
             path);
    return -1;
  }
  if (r == CUDA_ERROR_NO_DEVICE) {
    snprintf(err, n, "no CUDA GPU: the driver finds no device (%s)", error_name(r));
    return -1;
  }
  if (!ok(r, "starting the CUDA driver (cuInit)", err, n) ||
      !ok(cuda.cuDeviceGet(&cuda.dev, 0), "cuDeviceGet", err, n) ||
      !ok(cuda.cuDeviceGetAttribute(&cuda.sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, cuda.dev),
          "cuDeviceGetAttribute", err, n) ||
      !ok(cuda.cuDevicePrimaryCtxRetain(&cuda.ctx, cuda.dev), "cuDevicePrimaryCtxRetain", err, n) ||
      !ok(cuda.cuCtxSetCurrent(cuda.ctx), "cuCtxSetCurrent", err, n))
    return -1;
  return 0;
}

int dlrt_cuda_init(char *err, size_t errsize) {
  if (!cuda.tried) {
    cuda.tried = true;
    cuda.status = load_driver(cuda.why, sizeof cuda.why);
  }
  if (cuda.status)
    snprintf(err, errsize, "%s", cuda.why);
  return cuda.status;
}

/* Device memory holding a copy of n bytes at host (NULL: uninitialized). */
static bool upload(CUdeviceptr *dev, const void *host, size_t n, char *err, size_t errsize) {
  return ok(cuda.cuMemAlloc_v2(dev, n ? n : 1), "allocating GPU memory", err, errsize) &&
         (!host || ok(cuda.cuMemcpyHtoD_v2(*dev, host, n), "copying to the GPU", err, errsize));
}

/* Each thread should have at least this many elements of the longest
 * vector: with fewer, the grid-wide barrier (a round trip through L2 per
 * block) costs more than the extra threads save, and a small model is best
 * run by one block, whose barrier is bar.sync. A first guess, not yet
 * measured on a GPU; DLC_GPU_BLOCKS sets the grid for measuring. */
enum { MIN_ELEMENTS_PER_THREAD = 16 };

/* Blocks: as many as can be resident at once (a cooperative launch needs
 * it), no more than the kernel has room for, nor than the data fills. */
static int64_t grid_size(const DlrtGpuTrain *t, CUfunction fn, char *err, size_t errsize) {
  int per_sm = 0;
  if (!ok(cuda.cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, t->block, 0),
          "cuOccupancyMaxActiveBlocksPerMultiprocessor", err, errsize))
    return 0;
  int64_t per_block = (int64_t)t->block * MIN_ELEMENTS_PER_THREAD;
  int64_t grid = (t->elements + per_block - 1) / per_block;
  const char *forced = getenv("DLC_GPU_BLOCKS");
  if (forced && atoll(forced) > 0)
    grid = atoll(forced);
  int64_t resident = (int64_t)per_sm * cuda.sms;
  grid = grid < resident ? grid : resident;
  grid = grid < t->max_grid ? grid : t->max_grid;
  return grid < 1 ? 1 : grid;
}

/* One launch, waited for. */
static bool launch(CUfunction fn, int64_t grid, const DlrtGpuTrain *t, void **args, char *err,
                   size_t errsize) {
  CUresult r = grid > 1 ? cuda.cuLaunchCooperativeKernel(fn, (unsigned)grid, 1, 1, (unsigned)t->block,
                                                         1, 1, 0, NULL, args)
                        : cuda.cuLaunchKernel(fn, 1, 1, 1, (unsigned)t->block, 1, 1, 0, NULL, args, NULL);
  return ok(r, "launching the training kernel", err, errsize) &&
         ok(cuda.cuCtxSynchronize(), "running the training kernel", err, errsize);
}

int dlrt_gpu_train(const DlrtGpuTrain *t, int64_t *result, char *err, size_t errsize) {
  if (dlrt_cuda_init(err, errsize))
    return -1;
  CUmodule mod = NULL;
  CUfunction fn;
  CUdeviceptr *dev = calloc((size_t)t->nbufs + 1, sizeof(CUdeviceptr));
  CUdeviceptr table = 0, losses = 0, scratch = 0, barrier = 0, res = 0;
  double *chunk_losses = malloc(sizeof(double) * DLRT_GPU_CHUNK);
  bool good = ok(cuda.cuModuleLoadData(&mod, t->ptx), "loading the PTX (cuModuleLoadData)", err, errsize) &&
              ok(cuda.cuModuleGetFunction(&fn, mod, t->kernel), "cuModuleGetFunction", err, errsize);
  int64_t grid = good ? grid_size(t, fn, err, errsize) : 0;
  good = grid > 0;
  for (int k = 0; good && k < t->nbufs; k++)
    good = upload(&dev[k], t->bufs[k], t->bytes[k], err, errsize);
  good = good && upload(&table, dev, sizeof(CUdeviceptr) * (size_t)t->nbufs, err, errsize) &&
         upload(&losses, NULL, sizeof(double) * DLRT_GPU_CHUNK, err, errsize) &&
         upload(&scratch, NULL, sizeof(double) * (size_t)t->scratch_doubles, err, errsize) &&
         upload(&barrier, NULL, sizeof(int64_t), err, errsize) &&
         upload(&res, NULL, sizeof(int64_t), err, errsize);

  *result = t->steps;
  const char *chunk_env = getenv("DLC_GPU_CHUNK");
  int64_t chunk = chunk_env ? atoll(chunk_env) : DLRT_GPU_CHUNK;
  chunk = chunk < 1 || chunk > DLRT_GPU_CHUNK ? DLRT_GPU_CHUNK : chunk;
  for (int64_t step = t->first_step; good && step < t->steps;) {
    int64_t last = step + chunk < t->steps ? step + chunk : t->steps, r = 0;
    const int64_t zero = 0;
    void *args[] = {&table, &step, &last, &losses, &scratch, &barrier, &res};
    good = ok(cuda.cuMemcpyHtoD_v2(barrier, &zero, sizeof zero), "copying to the GPU", err, errsize) &&
           launch(fn, grid, t, args, err, errsize) &&
           ok(cuda.cuMemcpyDtoH_v2(&r, res, sizeof r), "copying from the GPU", err, errsize);
    /* Steps whose loss was computed: up to the last, or to the one that
     * stopped (its loss is logged, as on the CPU). */
    int64_t upto = r == last ? last : r >= 0 ? r + 1 : -r;
    if (good && (upto <= step || upto > last)) {
      snprintf(err, errsize, "the training kernel returned %lld for steps %lld to %lld", (long long)r,
               (long long)step, (long long)last - 1);
      good = false;
    }
    good = good && ok(cuda.cuMemcpyDtoH_v2(chunk_losses, losses, sizeof(double) * (size_t)(upto - step)),
                      "copying from the GPU", err, errsize);
    for (int64_t k = step; good && k < upto; k++)
      dlrt_step(t->log, k, chunk_losses[k - step]);
    if (good && r != last) {
      *result = r;
      break;
    }
    step = last;
    if (good && dlrt_interrupt && step < t->steps) {
      *result = dlrt_train_interrupted(t->steps, step);
      break;
    }
  }
  for (int k = 0; good && k < t->nbufs; k++)
    if (t->copy_back[k])
      good = ok(cuda.cuMemcpyDtoH_v2(t->bufs[k], dev[k], t->bytes[k]), "copying from the GPU", err, errsize);

  CUdeviceptr owned[] = {table, losses, scratch, barrier, res};
  for (size_t k = 0; k < sizeof owned / sizeof *owned; k++)
    if (owned[k])
      cuda.cuMemFree_v2(owned[k]);
  for (int k = 0; k < t->nbufs; k++)
    if (dev[k])
      cuda.cuMemFree_v2(dev[k]);
  if (mod)
    cuda.cuModuleUnload(mod);
  free(dev);
  free(chunk_losses);
  return good ? 0 : -1;
}
