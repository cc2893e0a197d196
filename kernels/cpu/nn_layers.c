/* The CPU layers table: batch norm, 2-d pooling and dropout, each in a
 * file of its own (layers.h lists them). */
#include "layers.h"

const struct td_layers_kernels td_cpu_layers = {
    .bn_stats = td_cpu_bn_stats,
    .bn_apply = td_cpu_bn_apply,
    .bn_backward = td_cpu_bn_backward,
    .pool2d = td_cpu_pool2d,
    .pool2d_backward = td_cpu_pool2d_backward,
    .dropout = td_cpu_dropout,
    .gn_forward = td_cpu_gn_forward,
    .gn_backward = td_cpu_gn_backward,
};
