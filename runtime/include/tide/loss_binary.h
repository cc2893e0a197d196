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

typedef struct {
    td_tensor *weight;     /* NULL; broadcasts to input */
    td_reduction reduction; /* TD_REDUCE_MEAN */
} td_bce_opts;

typedef struct {
    td_tensor *weight;     /* NULL; broadcasts to input */
    td_tensor *pos_weight; /* NULL; broadcasts on the last (class) dim */
    double label_smoothing; /* 0, in [0, 1] */
    td_reduction reduction; /* TD_REDUCE_MEAN */
} td_bce_logits_opts;

typedef struct {
    double alpha;           /* 0.25; negative = off */
    double gamma;           /* 2, >= 0 */
    td_reduction reduction; /* TD_REDUCE_NONE, as torchvision */
} td_sigmoid_focal_opts;

typedef struct {
    td_tensor *weight;      /* NULL; (C) or anything broadcasting to input */
    td_reduction reduction; /* TD_REDUCE_MEAN (over samples) */
} td_multilabel_soft_margin_opts;

typedef struct {
    double gamma_pos;       /* 0, >= 0 */
    double gamma_neg;       /* 4, >= 0 */
    double clip;            /* 0.05, in [0, 1]; 0 = no shift */
    double eps;             /* 1e-8, > 0 */
    td_reduction reduction; /* TD_REDUCE_MEAN (over elements; "sum" is the paper's) */
} td_asymmetric_opts;

typedef struct {
    td_reduction reduction; /* TD_REDUCE_MEAN */
} td_soft_margin_opts;

void td_bce_opts_default(td_bce_opts *o);
void td_bce_logits_opts_default(td_bce_logits_opts *o);
void td_sigmoid_focal_opts_default(td_sigmoid_focal_opts *o);
void td_multilabel_soft_margin_opts_default(td_multilabel_soft_margin_opts *o);
void td_asymmetric_opts_default(td_asymmetric_opts *o);
void td_soft_margin_opts_default(td_soft_margin_opts *o);

td_status td_binary_cross_entropy(td_tensor *p, td_tensor *y, const td_bce_opts *o, td_tensor **out);
td_status td_binary_cross_entropy_with_logits(td_tensor *x, td_tensor *y, const td_bce_logits_opts *o,
                                              td_tensor **out);
td_status td_sigmoid_focal_loss(td_tensor *x, td_tensor *y, const td_sigmoid_focal_opts *o, td_tensor **out);
td_status td_multilabel_soft_margin_loss(td_tensor *x, td_tensor *y, const td_multilabel_soft_margin_opts *o,
                                         td_tensor **out);
td_status td_asymmetric_loss(td_tensor *x, td_tensor *y, const td_asymmetric_opts *o, td_tensor **out);
td_status td_soft_margin_loss(td_tensor *x, td_tensor *y, const td_soft_margin_opts *o, td_tensor **out);

#endif
