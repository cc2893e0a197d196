/* regression losses: front-end declarations (see ../shared/DESIGN.md, "Losses").
 *
 * Each takes its positional tensors, an options struct (NULL = the
 * defaults of the loss table) and returns the
 * loss through `out`: a 0-dim tensor for "mean" and "sum" (and kl_div's
 * "batchmean"), the per-element losses for "none". input and target (and
 * var) broadcast against each other, as PyTorch allows (PyTorch warns when
 * input and target shapes differ). All float arguments share one dtype,
 * float32 or float64. The result records one autograd node whose backward
 * is closed form; docs/losses_regression.md has the formulas.
 *
 * Errors name the loss and the argument, counted as in the Lua call: input
 * 1, target 2, (var 3,) the options table last. */
#ifndef TIDE_LOSS_REGRESSION_H
#define TIDE_LOSS_REGRESSION_H

#include "tide/losses.h"

/* the options of each (td_regression_loss_opts; defaults in the loss table) */
typedef td_regression_loss_opts td_mse_loss_opts, td_l1_loss_opts, td_smooth_l1_loss_opts,
    td_huber_loss_opts, td_kl_div_opts, td_poisson_nll_loss_opts, td_gaussian_nll_loss_opts;

/* var (gaussian_nll_loss) has input's shape, or input's with the last dim
 * 1, or input's without the last dim (one variance per sample) */
td_status td_mse_loss(td_tensor *input, td_tensor *target, const td_mse_loss_opts *o,
                      td_tensor **out);
td_status td_l1_loss(td_tensor *input, td_tensor *target, const td_l1_loss_opts *o,
                     td_tensor **out);
td_status td_smooth_l1_loss(td_tensor *input, td_tensor *target, const td_smooth_l1_loss_opts *o,
                            td_tensor **out);
td_status td_huber_loss(td_tensor *input, td_tensor *target, const td_huber_loss_opts *o,
                        td_tensor **out);
td_status td_kl_div(td_tensor *input, td_tensor *target, const td_kl_div_opts *o, td_tensor **out);
td_status td_poisson_nll_loss(td_tensor *input, td_tensor *target,
                              const td_poisson_nll_loss_opts *o, td_tensor **out);
td_status td_gaussian_nll_loss(td_tensor *input, td_tensor *target, td_tensor *var,
                               const td_gaussian_nll_loss_opts *o, td_tensor **out);

#endif
