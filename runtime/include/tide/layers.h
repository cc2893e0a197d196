/* layers: the functional layers other than convolution.
 *
 * Argument numbers in errors are the Lua call's: the positional arguments
 * in order, then the options table. Optional tensors are NULL when absent.
 */
#ifndef TIDE_LAYERS_H
#define TIDE_LAYERS_H

#include "tide/tide.h"

/* x (..., in) @ w^T (w is (out, in)) + bias (out) */
td_status td_linear(td_tensor *x, td_tensor *w, td_tensor *bias, td_tensor **out);

typedef struct {
    td_tensor *weight, *bias; /* (C) or NULL */
    bool training;
    double momentum, eps;
} td_batch_norm_opts;
#define TD_BATCH_NORM_OPTS_DEFAULT                                                                 \
    {                                                                                              \
        NULL, NULL, false, 0.1, 1e-5                                                               \
    }
/* x (N, C) or (N, C, *); running_mean / running_var (C), updated in place
 * when training (either may be NULL then) */
td_status td_batch_norm(td_tensor *x, td_tensor *running_mean, td_tensor *running_var,
                        const td_batch_norm_opts *o, td_tensor **out);

/* normalise over the last `nd` dims, which must equal shape[0..nd) */
td_status td_layer_norm(td_tensor *x, int nd, const int64_t *shape, td_tensor *weight,
                        td_tensor *bias, double eps, td_tensor **out);

typedef struct {
    int64_t kernel[2], stride[2], padding[2], dilation[2];
    bool ceil_mode, count_include_pad;
} td_pool2d_opts;
/* x (N, C, H, W) or (C, H, W); stride[0] == 0 means stride = kernel */
td_status td_max_pool2d(td_tensor *x, const td_pool2d_opts *o, td_tensor **out);
td_status td_avg_pool2d(td_tensor *x, const td_pool2d_opts *o, td_tensor **out);
/* avg_pool2d dividing every window's sum by divisor_override (> 0) */
td_status td_avg_pool2d_divisor(td_tensor *x, const td_pool2d_opts *o, int64_t divisor_override,
                                td_tensor **out);
td_status td_adaptive_avg_pool2d(td_tensor *x, int64_t oh, int64_t ow, td_tensor **out);

/* keep each element with probability 1 - p and scale it by 1 / (1 - p) */
td_status td_dropout(td_tensor *x, double p, bool training, td_tensor **out);
td_status td_leaky_relu(td_tensor *x, double negative_slope, td_tensor **out);
/* rows of weight (V, D) at int64 indices of any shape; padding_idx < 0 = none
 * (after wrapping a negative one) */
td_status td_embedding(td_tensor *indices, td_tensor *weight, bool has_padding_idx,
                       int64_t padding_idx, td_tensor **out);

/* max_pool2d that also gives the argmax of each output (int64, the
 * output's shape, flat over the input plane's h * w as PyTorch's) */
td_status td_max_pool2d_with_indices(td_tensor *x, const td_pool2d_opts *o, td_tensor **out,
                                     td_tensor **indices);
/* x (N, C, H, W) or (C, H, W) into oh x ow adaptive windows; indices
 * (may be NULL) as td_max_pool2d_with_indices */
td_status td_adaptive_max_pool2d(td_tensor *x, int64_t oh, int64_t ow, td_tensor **out,
                                 td_tensor **indices);

/* x (N, C, *) normalised over each of num_groups groups of C / num_groups
 * channels (with *), then weight[c], bias[c] (each (C) or NULL) */
td_status td_group_norm(td_tensor *x, int64_t num_groups, td_tensor *weight, td_tensor *bias,
                        double eps, td_tensor **out);

#endif
