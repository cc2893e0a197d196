/* softmax losses: front-end declarations (see ../shared/DESIGN.md, "Losses",
 * and docs/losses_softmax.md).
 *
 * Shapes: input (N, C), K-dim (N, C, d1, ..., dk) or unbatched (C); index
 * targets int64 (N) / (N, d1, ..., dk) / 0-dim, or (cross_entropy only)
 * float class probabilities of input's shape. Float args share input's
 * dtype (float32 or float64). "none" returns the target's shape; "mean"
 * and "sum" a 0-dim tensor. Errors name the Lua argument: 1 input, 2
 * target, 3 the options table. Each call records one autograd node. */
#ifndef TIDE_LOSS_SOFTMAX_H
#define TIDE_LOSS_SOFTMAX_H

#include "tide/losses.h"

/* the options of each (td_softmax_loss_opts; defaults in the loss table) */
typedef td_softmax_loss_opts td_cross_entropy_opts, td_nll_loss_opts, td_focal_loss_opts,
    td_poly1_cross_entropy_opts;

/* -sum_c w_c t_c log softmax(input)_c, t the (smoothed) one-hot or the
 * given probabilities; "mean" divides by the targets' weight sum (index
 * targets) or by N*d1*...*dk (probabilities) */
td_status td_cross_entropy(td_tensor *input, td_tensor *target, const td_cross_entropy_opts *o,
                           td_tensor **out);
/* -w_y input_y, input being log-probabilities */
td_status td_nll_loss(td_tensor *input, td_tensor *target, const td_nll_loss_opts *o,
                      td_tensor **out);
/* -alpha_y (1 - p_y)^gamma log p_y, p = softmax(input) */
td_status td_focal_loss(td_tensor *input, td_tensor *target, const td_focal_loss_opts *o,
                        td_tensor **out);
/* cross_entropy + epsilon w_y (1 - p_t), p_t = sum_c t_c p_c */
td_status td_poly1_cross_entropy(td_tensor *input, td_tensor *target,
                                 const td_poly1_cross_entropy_opts *o, td_tensor **out);

#endif
