/* conv: 2-d convolution. */
#ifndef TIDE_CONV_H
#define TIDE_CONV_H

#include "tide/tide.h"

/* options of td_conv2d; stride, padding, dilation are {h, w} */
typedef struct {
    td_tensor *bias; /* (O) or NULL */
    int64_t stride[2];
    int64_t padding[2];
    int64_t dilation[2];
    int64_t groups;
} td_conv2d_opts;

#define TD_CONV2D_OPTS_DEFAULT                                                                     \
    {                                                                                              \
        NULL, {1, 1}, {0, 0}, {1, 1}, 1                                                            \
    }

/* y = conv2d(x, w) + bias, as PyTorch's F.conv2d: x (N, C, H, W),
 * w (O, C/groups, kH, kW), y (N, O, OH, OW) with
 * OH = (H + 2 padding - dilation (kH - 1) - 1) / stride + 1 (likewise OW).
 * float32 (through oneDNN on the CPU) or float64 (a direct loop); one
 * autograd node giving the gradients of x, w and bias. Errors name
 * argument 1 (x), 2 (w) or 3 (the options). */
td_status td_conv2d(td_tensor *x, td_tensor *w, const td_conv2d_opts *o, td_tensor **out);

#endif
