/* Kernels of the layers family: one table per backend. Tensors
 * are contiguous; per-channel statistics are double arrays on the
 * backend's device (host memory on the CPU, device memory on CUDA). */
#ifndef TIDE_KERNELS_NN_LAYERS_H
#define TIDE_KERNELS_NN_LAYERS_H

#include "tide/core.h"

typedef enum { TD_POOL_MAX, TD_POOL_AVG, TD_POOL_ADAPTIVE_AVG, TD_POOL_ADAPTIVE_MAX } td_pool_kind;

/* planes = N * C planes of h x w into oh x ow */
typedef struct {
    td_pool_kind kind;
    td_dtype dtype;
    int64_t n, c, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    bool count_include_pad;
    /* x, y, idx, gy and gx all stored N, H, W, C (channels-last) rather
     * than N, C, H, W; idx still holds the in-plane h * w + w. The CPU only:
     * the CUDA front-end always passes false. */
    bool channels_last;
    /* an average pool's divisor instead of its window's size; 0: none */
    int64_t divisor_override;
} td_pool2d_args;

struct td_layers_kernels {
    /* x viewed as (n, c, inner): per-channel mean and biased variance */
    void (*bn_stats)(td_dtype dt, const void *x, int64_t n, int64_t c, int64_t inner, double *mean,
                     double *var);
    /* y = x * scale[c] + shift[c] */
    void (*bn_apply)(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t inner,
                     const double *scale, const double *shift);
    /* sums per channel of gy and gy * xhat, xhat = (x - mean) * invstd;
     * then, when gx is not NULL, gx = gs[c] * (gy - (training ? (sum_gy + xhat
     * sum_gy_xhat) / (n inner) : 0)) with gs = invstd * weight */
    void (*bn_backward)(td_dtype dt, const void *x, const void *gy, void *gx, int64_t n, int64_t c,
                        int64_t inner, const double *mean, const double *invstd, const double *gs,
                        bool training, double *sum_gy, double *sum_gy_xhat);
    /* pooling; idx (int64, max only) receives each output's argmax h * w + w */
    void (*pool2d)(const td_pool2d_args *a, const void *x, void *y, int64_t *idx);
    /* gx (zeroed here) from gy */
    void (*pool2d_backward)(const td_pool2d_args *a, const void *gy, const int64_t *idx, void *gx);
    /* out = x * keep(key, i) / (1 - p), keep(key, i) from a counter-based hash */
    void (*dropout)(td_dtype dt, void *out, const void *x, int64_t n, uint64_t key, double p);
    /* devices only (NULL on the CPU, whose front-end loops on the host):
     * batch norm's per-channel step with every array on the device.
     * Training: rm, rv (when not NULL) move toward mean and the unbiased
     * var * cnt / (cnt - 1) by momentum; evaluation: mean, var are read
     * from rm, rv. Then invstd = 1 / sqrt(var + eps), gs = invstd * weight,
     * shift = bias - mean * gs (weight 1, bias 0 when NULL). rm, rv,
     * weight, bias are 1-dim tensors of dt, any stride. */
    void (*bn_finalize)(td_dtype dt, int64_t c, bool training, double cnt, double momentum,
                        double eps, double *mean, double *var, td_tensor *rm, td_tensor *rv,
                        const td_tensor *weight, const td_tensor *bias, double *invstd, double *gs,
                        double *shift);
    /* group norm, x viewed as (n, g, c / g, inner), contiguous: per (n, g)
     * row the mean and rstd = 1 / sqrt(biased var + eps) in double, summed
     * in a fixed order; y = (x - mean) rstd weight[c] + bias[c] (weight,
     * bias: c values of dt, or NULL) */
    void (*gn_forward)(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t g,
                       int64_t inner, const void *weight, const void *bias, double eps,
                       double *mean, double *rstd);
    /* from the forward's mean and rstd: sums[2 n c] receives per (n, c)
     * the sums of gy * x and of gy; gwb[2 c] the weight's and the bias's
     * gradients (summed over n in order); gx (when not NULL) the input's */
    void (*gn_backward)(td_dtype dt, const void *x, const void *gy, const void *weight,
                        const double *mean, const double *rstd, int64_t n, int64_t c, int64_t g,
                        int64_t inner, double *sums, double *gwb, void *gx);
};

/* float32 average pooling (and adaptive average pooling that is a plain
 * average pool) through oneDNN (cpu/nn_pool_dnnl.c), in the layout
 * a->channels_last names: true when done,
 * false when oneDNN does not take the case or fails, and the caller runs
 * the plain loops instead */
bool td_pool_dnnl_forward(const td_pool2d_args *a, const float *x, float *y);
bool td_pool_dnnl_backward(const td_pool2d_args *a, const float *gy, float *gx);

#endif
