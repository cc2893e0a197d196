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

/* options of td_convnd; per spatial dim, the first nd entries used */
typedef struct {
    td_tensor *bias; /* (out_channels) or NULL */
    int64_t stride[3];
    int64_t padding[3];        /* zeros on both sides */
    int64_t output_padding[3]; /* transposed only: extra size on one side */
    int64_t dilation[3];
    int64_t groups;
    bool transposed;
} td_convnd_opts;

#define TD_CONVND_OPTS_DEFAULT                                                                     \
    {                                                                                              \
        NULL, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {1, 1, 1}, 1, false                                 \
    }

/* The nd-dim convolution (nd 1 to 3) as PyTorch's F.conv1d / conv3d, or,
 * when o->transposed, its F.conv_transpose1d / 2d / 3d: x (N, C, ...) or
 * unbatched (C, ...); w (out, C/groups, k...), or (C, out/groups, k...)
 * transposed, whose output size is
 * (in - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1.
 * float32 or float64; one autograd node for x and w (the bias adds as a
 * broadcast add). Errors name argument 1 (x), 2 (w) or 3 (the options). */
td_status td_convnd(int nd, td_tensor *x, td_tensor *w, const td_convnd_opts *o, td_tensor **out);

typedef enum { TD_PAD_CONSTANT, TD_PAD_REFLECT, TD_PAD_REPLICATE, TD_PAD_CIRCULAR } td_pad_mode;

/* PyTorch's F.pad: pad holds npad (even) sizes, pairs for the last dim
 * first ({left, right, top, bottom, ...}); negative sizes crop (constant
 * mode only). Constant mode fills with value and pads at most 3 dims; the
 * others pad 1 to 3 trailing dims of an input with one or two dims
 * before them, reflect's sizes smaller than the dim, circular's at most
 * the dim. Differentiable; errors name argument 1 (x), 2 (pad) or 3. */
td_status td_pad(td_tensor *x, int npad, const int64_t *pad, td_pad_mode mode, double value,
                 td_tensor **out);

typedef enum { TD_INTERP_NEAREST, TD_INTERP_LINEAR, TD_INTERP_CUBIC } td_interp_mode;

/* PyTorch 1.13's F.interpolate over the nd = x->ndim - 2 trailing dims of
 * x (N, C, ...): size (nd entries) or, when size is NULL, scales (the
 * output size floor(in * scale), and 1 / scale in the source index, as
 * PyTorch with recompute_scale_factor unset). Linear is linear, bilinear
 * or trilinear by nd; cubic wants nd 2. align_corners only for linear
 * and cubic. Differentiable, deterministic backward; errors name argument
 * 1 (x) or 2 (the options). */
td_status td_interpolate(td_tensor *x, const int64_t *size, const double *scales,
                         td_interp_mode mode, bool align_corners, td_tensor **out);

#endif
