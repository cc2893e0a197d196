/* Non-temporal stores for elementwise outputs larger than the cache
 * (stream.c). */
#ifndef TIDE_KERNELS_CPU_STREAM_H
#define TIDE_KERNELS_CPU_STREAM_H

#include "tide/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* outputs of at least this many bytes stream */
size_t td_cpu_stream_min_bytes(void);

/* o[i] = a[i * sa] op b[i * sb] with streaming stores, sa and sb 0 or 1;
 * false (nothing written) for an op or stride it does not stream */
bool td_cpu_stream_binary_f32(td_binary_op op, float *restrict o, const float *a, int64_t sa,
                              const float *b, int64_t sb, int64_t n);

#endif
