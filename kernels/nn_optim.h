/* Kernels of the optim family: one table per backend.
 *
 * Each is one fused pass over n elements of contiguous buffers of the same
 * float dtype, updating param and state in place; elements are independent,
 * so results do not depend on the thread split. Optional buffers are NULL
 * when the options say they are unused. */
#ifndef TIDE_KERNELS_NN_OPTIM_H
#define TIDE_KERNELS_NN_OPTIM_H

#include "tide/core.h"

struct td_optim_kernels {
    /* param, grad, buf (n); buf NULL when momentum == 0 */
    void (*sgd)(td_dtype dt, int64_t n, void *param, const void *grad, void *buf,
                const td_sgd_opts *o);
    /* max_sq NULL unless amsgrad */
    void (*adam)(td_dtype dt, int64_t n, void *param, const void *grad, void *exp_avg,
                 void *exp_avg_sq, void *max_sq, const td_adam_opts *o);
    /* grad_avg NULL unless centered, buf NULL unless momentum > 0 */
    void (*rmsprop)(td_dtype dt, int64_t n, void *param, const void *grad, void *square_avg,
                    void *grad_avg, void *buf, const td_rmsprop_opts *o);
    /* optional (NULL: the runtime steps one parameter at a time): the same
     * updates over count contiguous tensors of one device and dtype in few
     * launches; numel[i] elements each; buf (the array) NULL when
     * momentum == 0, max_sq NULL unless amsgrad */
    void (*sgd_multi)(td_dtype dt, int count, void *const *param, const void *const *grad,
                      void *const *buf, const int64_t *numel, const td_sgd_opts *o);
    void (*adam_multi)(td_dtype dt, int count, void *const *param, const void *const *grad,
                       void *const *exp_avg, void *const *exp_avg_sq, void *const *max_sq,
                       const int64_t *numel, const td_adam_opts *o);
};

#endif
