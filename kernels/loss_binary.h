/* Kernels of the binary losses: one table per backend.
 *
 * Every entry has the same form. x, y (n) are contiguous and of one float
 * dtype; w and pw are NULL or contiguous (n), already broadcast to x's
 * shape. loss (n), or (rows) for multilabel_soft_margin, receives the
 * per-element (per-row) loss. dx and dy are NULL or (n): the derivative of
 * each element's loss (the row's, for multilabel) with respect to x and y,
 * times a->scale. Each returns -1, or the smallest index of an input it
 * refuses (p outside [0, 1] for bce, y outside [0, 1] for sigmoid_focal);
 * then the outputs are unspecified. Elements spread over threads; each
 * result depends on its element only, so the bits do not depend on the
 * thread count.
 */
#ifndef TIDE_KERNELS_LOSS_BINARY_H
#define TIDE_KERNELS_LOSS_BINARY_H

#include "tide/core.h"

typedef struct {
    double scale;                           /* multiplies dx and dy (1/n for "mean") */
    double smoothing;                       /* bce_logits: y becomes y(1-e) + e/2 */
    double alpha, gamma;                    /* sigmoid_focal: alpha < 0 = off */
    double gamma_pos, gamma_neg, clip, eps; /* asymmetric */
    int64_t cols;                           /* multilabel_soft_margin: C (rows = n / C) */
} td_binary_loss_args;

typedef int64_t (*td_binary_loss_fn)(const td_binary_loss_args *a, int64_t n, td_tensor *loss,
                                     td_tensor *dx, td_tensor *dy, const td_tensor *x,
                                     const td_tensor *y, const td_tensor *w, const td_tensor *pw);

struct td_binary_loss_kernels {
    /* p, y, w (n) -> loss (n) = -w[y max(log p, -100) + (1-y) max(log(1-p), -100)] */
    td_binary_loss_fn bce;
    /* x, y, w, pw (n) -> loss (n), stable for any x */
    td_binary_loss_fn bce_logits;
    /* x, y (n) -> loss (n) = alpha_t ce (1-p_t)^gamma (torchvision) */
    td_binary_loss_fn sigmoid_focal;
    /* x, y (n) -> loss (n), ASL (Ben-Baruch et al. 2021) */
    td_binary_loss_fn asymmetric;
    /* x, y (n) -> loss (n) = softplus(-y x) */
    td_binary_loss_fn soft_margin;
    /* x, y, w (rows, C) -> loss (rows) = sum_c w (softplus(x) - y x) / C */
    td_binary_loss_fn multilabel_soft_margin;
};

#endif
