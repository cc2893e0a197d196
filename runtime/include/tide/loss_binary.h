/* binary losses: front-end declarations (see ../shared/DESIGN.md, "Losses").
 *
 * Inputs are float32 or float64, all of one dtype; target has input's
 * shape. Optional tensors (weight, pos_weight) may be NULL. Errors name
 * the argument as the Lua call counts it: 1 input, 2 target, 3 options.
 * Gradients flow to input, and to target where PyTorch gives one
 * (binary_cross_entropy, binary_cross_entropy_with_logits,
 * multilabel_soft_margin_loss); weights take none.
 */
#ifndef TIDE_LOSS_BINARY_H
#define TIDE_LOSS_BINARY_H

#include "tide/losses.h"

/* the options of each (td_binary_loss_opts; defaults in the loss table) */
typedef td_binary_loss_opts td_bce_opts, td_bce_logits_opts, td_sigmoid_focal_opts,
    td_multilabel_soft_margin_opts, td_asymmetric_opts, td_soft_margin_opts;

td_status td_binary_cross_entropy(td_tensor *p, td_tensor *y, const td_bce_opts *o,
                                  td_tensor **out);
td_status td_binary_cross_entropy_with_logits(td_tensor *x, td_tensor *y,
                                              const td_bce_logits_opts *o, td_tensor **out);
td_status td_sigmoid_focal_loss(td_tensor *x, td_tensor *y, const td_sigmoid_focal_opts *o,
                                td_tensor **out);
td_status td_multilabel_soft_margin_loss(td_tensor *x, td_tensor *y,
                                         const td_multilabel_soft_margin_opts *o, td_tensor **out);
td_status td_asymmetric_loss(td_tensor *x, td_tensor *y, const td_asymmetric_opts *o,
                             td_tensor **out);
td_status td_soft_margin_loss(td_tensor *x, td_tensor *y, const td_soft_margin_opts *o,
                              td_tensor **out);

#endif
