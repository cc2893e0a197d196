/* The CPU layers table (td_cpu_layers, nn_layers.c) is assembled from one
 * file per op: batch norm (nn_batch_norm.c), 2-d pooling (nn_pool.c, with
 * nn_pool_nhwc.c for channels-last data and nn_pool_dnnl.c for float32
 * averages through oneDNN) and dropout (nn_dropout.c). Each function is
 * the table's entry of the same name; kernels/nn_layers.h says what it does. */
#ifndef TIDE_KERNELS_CPU_LAYERS_H
#define TIDE_KERNELS_CPU_LAYERS_H

#include "cpu.h"

void td_cpu_bn_stats(td_dtype dt, const void *x, int64_t n, int64_t c, int64_t inner, double *mean,
                     double *var);
void td_cpu_bn_apply(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t inner,
                     const double *scale, const double *shift);
void td_cpu_bn_backward(td_dtype dt, const void *x, const void *gy, void *gx, int64_t n, int64_t c,
                        int64_t inner, const double *mean, const double *invstd, const double *gs,
                        bool training, double *sum_gy, double *sum_gy_xhat);

void td_cpu_pool2d(const td_pool2d_args *a, const void *x, void *y, int64_t *idx);
void td_cpu_pool2d_backward(const td_pool2d_args *a, const void *gy, const int64_t *idx, void *gx);

/* adaptive max pooling (nn_pool_adaptive_max.c), which td_cpu_pool2d and
 * its backward hand TD_POOL_ADAPTIVE_MAX to */
void td_cpu_adaptive_max_pool2d(const td_pool2d_args *a, const void *x, void *y, int64_t *idx);
void td_cpu_adaptive_max_pool2d_backward(const td_pool2d_args *a, const void *gy,
                                         const int64_t *idx, void *gx);

/* group norm (nn_group_norm.c) */
void td_cpu_gn_forward(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t g,
                       int64_t inner, const void *weight, const void *bias, double eps,
                       double *mean, double *rstd);
void td_cpu_gn_backward(td_dtype dt, const void *x, const void *gy, const void *weight,
                        const double *mean, const double *rstd, int64_t n, int64_t c, int64_t g,
                        int64_t inner, double *sums, double *gwb, void *gx);

void td_cpu_dropout(td_dtype dt, void *out, const void *x, int64_t n, uint64_t key, double p);

#endif
