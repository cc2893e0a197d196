/* What the loss table and the loss families share inside the runtime: each
 * family's front-end and its kinds. A family's front-end gets the row, the
 * row's inputs and the family's options struct, already checked against
 * the row's ranges. */
#ifndef TIDE_LOSS_FAMILY_H
#define TIDE_LOSS_FAMILY_H

#include "internal.h"
#include "tide/losses.h"

typedef td_status (*td_loss_front_fn)(const td_loss_def *d, td_tensor *const *in, const void *opts,
                                      td_tensor **out);

td_status td_softmax_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                              td_tensor **out);
td_status td_binary_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                             td_tensor **out);
td_status td_regression_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                                 td_tensor **out);
td_status td_margin_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                             td_tensor **out);
td_status td_ctc_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                          td_tensor **out);

/* the binary family's kinds (softmax rows use td_smx_kind, regression
 * rows td_regression_op) */
typedef enum {
    TD_BIN_BCE,
    TD_BIN_BCE_LOGITS,
    TD_BIN_FOCAL,
    TD_BIN_ASL,
    TD_BIN_SOFT_MARGIN,
    TD_BIN_MULTILABEL
} td_binary_kind;

typedef enum {
    TD_MARGIN_MULTI,
    TD_MARGIN_MULTILABEL,
    TD_MARGIN_HINGE,
    TD_MARGIN_COSINE,
    TD_MARGIN_RANKING,
    TD_MARGIN_TRIPLET
} td_margin_kind;

/* fills a loss node's context: keeps the tensors backward needs (with
 * td_node_keep) and sets the rest; arg is the family's own */
typedef td_status (*td_loss_fill_fn)(td_node *node, void *ctx, const void *arg);

/* The end every loss shares: elem (the per-sample or per-element losses)
 * reduced as r says, the mean dividing by divisor, into *out; and when any
 * of the n inputs needs a gradient, the row's node with backward bw and a
 * zeroed context of ctx_size bytes that fill completes. */
td_status td_loss_record(const td_loss_def *d, td_tensor *elem, td_reduction r, double divisor,
                         int n, td_tensor *const *inputs, td_backward_fn bw, size_t ctx_size,
                         td_loss_fill_fn fill, const void *arg, td_tensor **out);

#endif
