/* Group norm on CUDA (nn_group_norm.cu): the layers table's gn_forward
 * and gn_backward entries (kernels/nn_layers.h says what they do). */
#ifndef TIDE_KERNELS_CUDA_NN_GROUP_NORM_H
#define TIDE_KERNELS_CUDA_NN_GROUP_NORM_H

#include "cuda_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

void td_cuda_gn_forward(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t g,
                        int64_t inner, const void *weight, const void *bias, double eps,
                        double *mean, double *rstd);
void td_cuda_gn_backward(td_dtype dt, const void *x, const void *gy, const void *weight,
                         const double *mean, const double *rstd, int64_t n, int64_t c, int64_t g,
                         int64_t inner, double *sums, double *gwb, void *gx);

#ifdef __cplusplus
}
#endif

#endif
