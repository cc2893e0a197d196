/* margin losses: front-end declarations (see ../shared/DESIGN.md, "Losses";
 * docs/losses_margin.md for formulas and PyTorch differences).
 *
 * Every function checks its arguments once (errors name the loss and the
 * 1-based argument: inputs in order, then the options as the last one),
 * runs one fused kernel, reduces with td_loss_reduce_raw and records one
 * autograd node. Float inputs are float32 or float64, all of one dtype.
 * The *_DEFAULTS macros give PyTorch's defaults.
 */
#ifndef TIDE_LOSS_MARGIN_H
#define TIDE_LOSS_MARGIN_H

#include "tide/losses.h"

/* input (N, C) or (C), target int64 (N) or, for (C), () or (1) */
typedef struct {
    int p;              /* 1 or 2; default 1 */
    double margin;      /* default 1 */
    td_tensor *weight;  /* (C) per-class weights, or NULL (default) */
    td_reduction reduction; /* default mean: a plain mean over N */
} td_multi_margin_opts;
#define TD_MULTI_MARGIN_DEFAULTS {1, 1.0, NULL, TD_REDUCE_MEAN}
td_status td_multi_margin_loss(td_tensor *input, td_tensor *target, const td_multi_margin_opts *o,
                               td_tensor **out);

/* input (N, C) or (C); target int64 of the same shape, class indices
 * ending at the first -1 */
typedef struct {
    td_reduction reduction; /* default mean */
} td_multilabel_margin_opts;
#define TD_MULTILABEL_MARGIN_DEFAULTS {TD_REDUCE_MEAN}
td_status td_multilabel_margin_loss(td_tensor *input, td_tensor *target,
                                    const td_multilabel_margin_opts *o, td_tensor **out);

/* input and target broadcast together; target float (input's dtype) or int64 */
typedef struct {
    double margin;          /* default 1 */
    td_reduction reduction; /* default mean */
} td_hinge_embedding_opts;
#define TD_HINGE_EMBEDDING_DEFAULTS {1.0, TD_REDUCE_MEAN}
td_status td_hinge_embedding_loss(td_tensor *input, td_tensor *target,
                                  const td_hinge_embedding_opts *o, td_tensor **out);

/* x1, x2 (N, D) with y (N), or (D) with y () */
typedef struct {
    double margin;          /* default 0 */
    td_reduction reduction; /* default mean */
} td_cosine_embedding_opts;
#define TD_COSINE_EMBEDDING_DEFAULTS {0.0, TD_REDUCE_MEAN}
td_status td_cosine_embedding_loss(td_tensor *x1, td_tensor *x2, td_tensor *y,
                                   const td_cosine_embedding_opts *o, td_tensor **out);

/* x1, x2, y with the same number of dims, broadcast together */
typedef struct {
    double margin;          /* default 0 */
    td_reduction reduction; /* default mean */
} td_margin_ranking_opts;
#define TD_MARGIN_RANKING_DEFAULTS {0.0, TD_REDUCE_MEAN}
td_status td_margin_ranking_loss(td_tensor *x1, td_tensor *x2, td_tensor *y,
                                 const td_margin_ranking_opts *o, td_tensor **out);

/* anchor, positive, negative: all (N, D) or all (D) */
typedef struct {
    double margin;          /* default 1 */
    double p;               /* norm degree, > 0; default 2 */
    double eps;             /* added to each difference; default 1e-6 */
    bool swap;              /* default false */
    td_reduction reduction; /* default mean */
} td_triplet_margin_opts;
#define TD_TRIPLET_MARGIN_DEFAULTS {1.0, 2.0, 1e-6, false, TD_REDUCE_MEAN}
td_status td_triplet_margin_loss(td_tensor *anchor, td_tensor *positive, td_tensor *negative,
                                 const td_triplet_margin_opts *o, td_tensor **out);

#endif
