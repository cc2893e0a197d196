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

td_status td_softmax_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts, td_tensor **out);
td_status td_binary_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts, td_tensor **out);
td_status td_regression_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts, td_tensor **out);
td_status td_margin_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts, td_tensor **out);
td_status td_ctc_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts, td_tensor **out);

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

/* t as the kernels read it: contiguous, of dtype dt (t's own when dt < 0),
 * a view when it already is, recording nothing */
td_status td_loss_dense(td_tensor *t, int dt, td_tensor **out);

#endif
