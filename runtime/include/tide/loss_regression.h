/* regression losses: front-end declarations (see ../shared/DESIGN.md, "Losses").
 *
 * Each takes its positional tensors, an options struct (NULL = the
 * defaults, also given by the TD_*_DEFAULTS initialisers) and returns the
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

/* mse_loss, l1_loss: reduction "mean" */
typedef struct {
    td_reduction reduction;
} td_mse_loss_opts, td_l1_loss_opts;
#define TD_MSE_LOSS_DEFAULTS {TD_REDUCE_MEAN}
#define TD_L1_LOSS_DEFAULTS {TD_REDUCE_MEAN}

/* smooth_l1_loss: beta 1.0 (>= 0; 0 is L1), reduction "mean" */
typedef struct {
    td_reduction reduction;
    double beta;
} td_smooth_l1_loss_opts;
#define TD_SMOOTH_L1_LOSS_DEFAULTS {TD_REDUCE_MEAN, 1.0}

/* huber_loss: delta 1.0 (> 0), reduction "mean" */
typedef struct {
    td_reduction reduction;
    double delta;
} td_huber_loss_opts;
#define TD_HUBER_LOSS_DEFAULTS {TD_REDUCE_MEAN, 1.0}

/* kl_div: log_target false, reduction "mean" (over every element, as
 * PyTorch; "batchmean" = sum / input.size(0) is the mathematical KL) */
typedef struct {
    td_reduction reduction;
    bool log_target;
} td_kl_div_opts;
#define TD_KL_DIV_DEFAULTS {TD_REDUCE_MEAN, false}

/* poisson_nll_loss: log_input true, full false, eps 1e-8 (> 0, used only
 * when log_input is false), reduction "mean" */
typedef struct {
    td_reduction reduction;
    bool log_input, full;
    double eps;
} td_poisson_nll_loss_opts;
#define TD_POISSON_NLL_LOSS_DEFAULTS {TD_REDUCE_MEAN, true, false, 1e-8}

/* gaussian_nll_loss: full false, eps 1e-6 (> 0, the floor of var),
 * reduction "mean". var has input's shape, or input's with the last dim 1,
 * or input's without the last dim (one variance per sample). */
typedef struct {
    td_reduction reduction;
    bool full;
    double eps;
} td_gaussian_nll_loss_opts;
#define TD_GAUSSIAN_NLL_LOSS_DEFAULTS {TD_REDUCE_MEAN, false, 1e-6}

td_status td_mse_loss(td_tensor *input, td_tensor *target, const td_mse_loss_opts *o, td_tensor **out);
td_status td_l1_loss(td_tensor *input, td_tensor *target, const td_l1_loss_opts *o, td_tensor **out);
td_status td_smooth_l1_loss(td_tensor *input, td_tensor *target, const td_smooth_l1_loss_opts *o,
                            td_tensor **out);
td_status td_huber_loss(td_tensor *input, td_tensor *target, const td_huber_loss_opts *o,
                        td_tensor **out);
td_status td_kl_div(td_tensor *input, td_tensor *target, const td_kl_div_opts *o, td_tensor **out);
td_status td_poisson_nll_loss(td_tensor *input, td_tensor *target, const td_poisson_nll_loss_opts *o,
                              td_tensor **out);
td_status td_gaussian_nll_loss(td_tensor *input, td_tensor *target, td_tensor *var,
                               const td_gaussian_nll_loss_opts *o, td_tensor **out);

#endif
