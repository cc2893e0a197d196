/* Kernels of the conv family: one table per backend.
 *
 * 2-d convolution, cross-correlation as PyTorch's conv2d. Every buffer is
 * contiguous in PyTorch's layout (activations channels-last instead when
 * a.channels_last; the inputs x and gy may each be either when
 * a.channels_last, as a.x_cl and a.gy_cl say) and of a.dtype:
 *   x (n, c, h, w)   w (o, c/groups, kh, kw)   b (o)   y (n, o, oh, ow)
 * The front-end has checked the shapes and computed oh, ow. Each entry
 * returns TD_OK, or an error (out of memory, a library failure) with the
 * message set.
 */
#ifndef TIDE_KERNELS_NN_CONV_H
#define TIDE_KERNELS_NN_CONV_H

#include "tide/core.h"

typedef struct {
    td_dtype dtype;
    int64_t n, c, h, w; /* input */
    int64_t o, kh, kw;  /* weight: (o, c / groups, kh, kw) */
    int64_t oh, ow;     /* output spatial size */
    int64_t sh, sw;     /* stride, >= 1 */
    int64_t ph, pw;     /* zero padding on both sides, >= 0 */
    int64_t dh, dw;     /* dilation, >= 1 */
    int64_t groups;     /* divides c and o */
    bool channels_last; /* y and gx stored N, H, W, C (weights stay OIHW) */
    /* x and gy stored N, H, W, C (else contiguous); both equal
     * channels_last unless it is true: a backend that takes channels-last
     * reorders whichever layout it is given, which spares a copy of an
     * NCHW input or of an NCHW output gradient */
    bool x_cl, gy_cl;
} td_conv_args;

struct td_conv_kernels {
    /* takes channels_last float32 activations (oneDNN's nhwc kernels run as
     * fast as its blocked ones, so no layout reorder is needed around them) */
    bool f32_channels_last;
    /* y = conv(x, w) + b; b may be NULL */
    td_status (*forward)(const td_conv_args *a, const void *x, const void *w, const void *b,
                         void *y);
    /* gx = d(sum(gy * y)) / dx: the transposed convolution of gy with w */
    td_status (*backward_data)(const td_conv_args *a, const void *gy, const void *w, void *gx);
    /* gw (and gb when not NULL: gy summed over n, oh, ow) from x and gy;
     * gw may be NULL when only gb is wanted */
    td_status (*backward_weights)(const td_conv_args *a, const void *x, const void *gy, void *gw,
                                  void *gb);
    /* both in one pass, for whichever of gx, gw, gb are not NULL (a
     * backend may share work between them: oneDNN reorders gy once) */
    td_status (*backward)(const td_conv_args *a, const void *x, const void *w, const void *gy,
                          void *gx, void *gw, void *gb);
};

/* the CPU backend's two paths (kernels/cpu/nn_conv_direct.c, float64, and
 * kernels/cpu/nn_conv_dnnl.c, float32), behind td_cpu_conv */
td_status td_conv_direct_forward(const td_conv_args *a, const double *x, const double *w,
                                 const double *b, double *y);
td_status td_conv_direct_backward_data(const td_conv_args *a, const double *gy, const double *w,
                                       double *gx);
td_status td_conv_direct_backward_weights(const td_conv_args *a, const double *x, const double *gy,
                                          double *gw, double *gb);
td_status td_conv_dnnl_forward(const td_conv_args *a, const float *x, const float *w,
                               const float *b, float *y);
td_status td_conv_dnnl_backward_data(const td_conv_args *a, const float *gy, const float *w,
                                     float *gx);
td_status td_conv_dnnl_backward_weights(const td_conv_args *a, const float *x, const float *gy,
                                        float *gw, float *gb);
td_status td_conv_dnnl_backward(const td_conv_args *a, const float *x, const float *w,
                                const float *gy, float *gx, float *gw, float *gb);
/* float32 gw and gb in an order fixed by the shape (deterministic mode) */
td_status td_conv_fixed_backward_weights(const td_conv_args *a, const float *x, const float *gy,
                                         float *gw, float *gb);

#endif
