/* optim: one fused, in-place update step per parameter.
 *
 * Each function updates param and its state tensors in place, in one pass,
 * without recording autograd, and bumps the storage version of everything
 * it writes. grad and every state tensor must have param's shape and float
 * dtype (float32 or float64); state tensors must be contiguous (the Lua
 * optimizers make them so), param and grad may be any strided view.
 * Argument numbers in errors are those of the tide.core binding:
 * param 1, grad 2, state tensors 3..., the options table last.
 * Formulas are PyTorch 1.13's single-tensor ones (torch/optim/sgd.py, adam.py, ...). */
#ifndef TIDE_OPTIM_H
#define TIDE_OPTIM_H

#include "tide/tide.h" /* td_sgd_opts, td_adam_opts, td_rmsprop_opts (tide/core.h) */

#define TD_SGD_OPTS_DEFAULT                                                                        \
    {                                                                                              \
        1e-3, 0.0, 0.0, 0.0, false, false, true                                                    \
    }

/* d_p = +-grad + wd param; buf = momentum buf + (1 - dampening) d_p (= d_p
 * on the first step); d_p = nesterov ? d_p + momentum buf : buf;
 * param -= lr d_p. momentum_buf may be NULL when momentum == 0. */
td_status td_sgd_step(td_tensor *param, td_tensor *grad, td_tensor *momentum_buf,
                      const td_sgd_opts *o);

#define TD_ADAM_OPTS_DEFAULT                                                                       \
    {                                                                                              \
        1e-3, 0.9, 0.999, 1e-8, 0.0, 1, false, false, false                                        \
    }

/* max_exp_avg_sq is required when amsgrad, ignored otherwise */
td_status td_adam_step(td_tensor *param, td_tensor *grad, td_tensor *exp_avg, td_tensor *exp_avg_sq,
                       td_tensor *max_exp_avg_sq, const td_adam_opts *o);

/* The same steps over a parameter list: exactly td_sgd_step / td_adam_step
 * on params[i], grads[i] and the i-th state tensors for i = 0..count-1 (the
 * state arrays may be NULL where the single step takes NULL). When every
 * tensor is contiguous, of one dtype and on one device whose backend has a
 * multi-tensor kernel (CUDA), the list is updated in few launches;
 * otherwise (CPU) one parameter after another. */
td_status td_sgd_step_multi(int count, td_tensor *const *params, td_tensor *const *grads,
                            td_tensor *const *momentum_bufs, const td_sgd_opts *o);
td_status td_adam_step_multi(int count, td_tensor *const *params, td_tensor *const *grads,
                             td_tensor *const *exp_avgs, td_tensor *const *exp_avg_sqs,
                             td_tensor *const *max_exp_avg_sqs, const td_adam_opts *o);

#define TD_RMSPROP_OPTS_DEFAULT                                                                    \
    {                                                                                              \
        1e-2, 0.99, 1e-8, 0.0, 0.0, false, false                                                   \
    }

/* grad_avg is required when centered, momentum_buf when momentum > 0 */
td_status td_rmsprop_step(td_tensor *param, td_tensor *grad, td_tensor *square_avg,
                          td_tensor *grad_avg, td_tensor *momentum_buf, const td_rmsprop_opts *o);

#endif
