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
    /* the rest of the family: 1-3-d and transposed convolution, padding,
     * resampling (below); NULL where a backend has none */
    const struct td_convnd_kernels *nd;
    /* whether forward, backward and nd's convolutions take dt, a low
     * precision (bfloat16 where the CPU has AVX512-BF16; checked at run
     * time); NULL: none. The front-ends widen to float32 otherwise. */
    bool (*takes_lowp)(td_dtype dt);
    /* the path dt's convolutions take (tide.backend_info); NULL: unknown */
    const char *(*path)(td_dtype dt);
};

/* the CPU backend's two paths (kernels/cpu/nn_conv_direct.c, float64, and
 * kernels/cpu/nn_conv_dnnl.c, float32), behind td_cpu_conv */
td_status td_conv_direct_forward(const td_conv_args *a, const double *x, const double *w,
                                 const double *b, double *y);
td_status td_conv_direct_backward_data(const td_conv_args *a, const double *gy, const double *w,
                                       double *gx);
td_status td_conv_direct_backward_weights(const td_conv_args *a, const double *x, const double *gy,
                                          double *gw, double *gb);
/* (float32, or bfloat16 where td_cpu_conv.takes says so) */
td_status td_conv_dnnl_forward(const td_conv_args *a, const void *x, const void *w, const void *b,
                               void *y);
td_status td_conv_dnnl_backward_data(const td_conv_args *a, const void *gy, const void *w,
                                     void *gx);
td_status td_conv_dnnl_backward_weights(const td_conv_args *a, const void *x, const void *gy,
                                        void *gw, void *gb);
td_status td_conv_dnnl_backward(const td_conv_args *a, const void *x, const void *w, const void *gy,
                                void *gx, void *gw, void *gb);
/* float32 gw and gb in an order fixed by the shape (deterministic mode) */
td_status td_conv_fixed_backward_weights(const td_conv_args *a, const float *x, const float *gy,
                                         float *gw, float *gb);

/* N-d convolution (nd = 1, 2 or 3 spatial dims), every buffer contiguous
 * in PyTorch's layout: x (n, c, in...), w (o, c/groups, k...),
 * y (n, o, out...). Dims past nd are 1 (k 1, stride 1, pad 0, dil 1). A
 * transposed convolution is backward_data run as its forward: out is
 * floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1, except that an
 * output_padding of a stride or more (which a larger dilation allows)
 * makes it smaller, trailing inputs then unread (zero gradient). No bias:
 * the front-end adds it. */
typedef struct {
    td_dtype dtype;
    int nd;
    int64_t n, c, o, groups;
    int64_t in[3], k[3], out[3], stride[3], pad[3], dil[3];
} td_convnd_args;

/* Separable resampling of the last 3 dims of x (outer, in[0], in[1],
 * in[2]) into y (outer, out[0], out[1], out[2]), both contiguous: padding
 * (one tap, index -1 reading `value`), nearest (one tap), linear (two),
 * cubic (four). Per dim d, output index o reads taps[d] inputs
 * idx[d][o * taps[d] + t] with weights wt[d][same]; y is the sum over the
 * taps of every dim of the product of their weights times x there.
 * inv_ptr[d] (in[d] + 1 entries) and inv_pos[d] list, for each input
 * index, the positions o * taps[d] + t that read it, in increasing order,
 * so the backward sums a fixed set in a fixed order (deterministic). The
 * tables live on the tensors' device. */
typedef struct {
    td_dtype dtype;
    int64_t outer;
    int64_t in[3], out[3];
    int64_t taps[3];
    const int64_t *idx[3], *inv_ptr[3], *inv_pos[3];
    const double *wt[3];
    double value;
} td_resample_args;

struct td_convnd_kernels {
    td_status (*forward)(const td_convnd_args *a, const void *x, const void *w, void *y);
    td_status (*backward_data)(const td_convnd_args *a, const void *gy, const void *w, void *gx);
    td_status (*backward_weights)(const td_convnd_args *a, const void *x, const void *gy, void *gw);
    td_status (*resample)(const td_resample_args *a, const void *x, void *y);
    td_status (*resample_backward)(const td_resample_args *a, const void *gy, void *gx);
};

/* the CPU's: float64 through direct loops (nn_convnd_direct.c), float32
 * through oneDNN (nn_convnd_dnnl.c) */
td_status td_convnd_direct_forward(const td_convnd_args *a, const double *x, const double *w,
                                   double *y);
td_status td_convnd_direct_backward_data(const td_convnd_args *a, const double *gy, const double *w,
                                         double *gx);
td_status td_convnd_direct_backward_weights(const td_convnd_args *a, const double *x,
                                            const double *gy, double *gw);
td_status td_convnd_dnnl_forward(const td_convnd_args *a, const void *x, const void *w, void *y);
td_status td_convnd_dnnl_backward_data(const td_convnd_args *a, const void *gy, const void *w,
                                       void *gx);
td_status td_convnd_dnnl_backward_weights(const td_convnd_args *a, const void *x, const void *gy,
                                          void *gw);

#endif
