/* The CUDA backend as the runtime sees it (runtime/device.c includes this
 * only in a build with CUDA). Plain C: the .cu files give these C linkage.
 *
 * Every entry answers on a machine without a driver or GPU: the count is
 * 0 and `why` says what cudart reported, so `tide.cuda.is_available()` is
 * false there and moving a tensor to "cuda" is an error, never a crash. */
#ifndef TIDE_KERNELS_CUDA_H
#define TIDE_KERNELS_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "tide/tide.h"

/* devices usable here (asked once); *why, when not NULL, gets cudart's
 * reason for 0 */
int td_cuda_count(const char **why);
const td_backend *td_cuda_backend(void);
td_status td_cuda_sync_all(void);
/* cached blocks of every device back to the driver */
void td_cuda_release_cached(void);
td_status td_cuda_stats(int device, td_cuda_memory_stats *out);
int64_t td_cuda_take_allocated(void);

#ifdef __cplusplus
}
#endif

#endif
