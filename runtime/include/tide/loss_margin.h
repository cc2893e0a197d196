/* margin losses: front-end declarations (see ../shared/DESIGN.md, "Losses";
 * docs/losses_margin.md for formulas and PyTorch differences).
 *
 * Every function checks its arguments once (errors name the loss and the
 * 1-based argument: inputs in order, then the options as the last one),
 * runs one fused kernel, reduces with td_loss_reduce_raw and records one
 * autograd node. Float inputs are float32 or float64, all of one dtype.
 */
#ifndef TIDE_LOSS_MARGIN_H
#define TIDE_LOSS_MARGIN_H

#include "tide/losses.h"

/* the options of each (td_margin_loss_opts; defaults in the loss table) */
typedef td_margin_loss_opts td_multi_margin_opts, td_multilabel_margin_opts,
    td_hinge_embedding_opts, td_cosine_embedding_opts, td_margin_ranking_opts,
    td_triplet_margin_opts;

/* input (N, C) or (C), target int64 (N) or, for (C), () or (1) */
td_status td_multi_margin_loss(td_tensor *input, td_tensor *target, const td_multi_margin_opts *o,
                               td_tensor **out);

/* input (N, C) or (C); target int64 of the same shape, class indices
 * ending at the first -1 */
td_status td_multilabel_margin_loss(td_tensor *input, td_tensor *target,
                                    const td_multilabel_margin_opts *o, td_tensor **out);

/* input and target broadcast together; target float (input's dtype) or int64 */
td_status td_hinge_embedding_loss(td_tensor *input, td_tensor *target,
                                  const td_hinge_embedding_opts *o, td_tensor **out);

/* x1, x2 (N, D) with y (N), or (D) with y () */
td_status td_cosine_embedding_loss(td_tensor *x1, td_tensor *x2, td_tensor *y,
                                   const td_cosine_embedding_opts *o, td_tensor **out);

/* x1, x2, y with the same number of dims, broadcast together */
td_status td_margin_ranking_loss(td_tensor *x1, td_tensor *x2, td_tensor *y,
                                 const td_margin_ranking_opts *o, td_tensor **out);

/* anchor, positive, negative: all (N, D) or all (D) */
td_status td_triplet_margin_loss(td_tensor *anchor, td_tensor *positive, td_tensor *negative,
                                 const td_triplet_margin_opts *o, td_tensor **out);

#endif
