/* Kernels of the softmax losses: one table per backend.
 *
 * Every loss of the family works on rows: x is contiguous (n, c, inner),
 * row r = (i, k) with i < n, k < inner holds the c logits
 * x[i*c*inner + j*inner + k], j < c (class stride `inner`, so K-dim inputs
 * need no transposing copy). Per-row results go to buffers of n*inner
 * elements in the order (i, k); the runtime sums them in a fixed order. */
#ifndef TIDE_KERNELS_LOSS_SOFTMAX_H
#define TIDE_KERNELS_LOSS_SOFTMAX_H

#include "tide/core.h"

typedef enum { TD_SMX_CE, TD_SMX_NLL, TD_SMX_FOCAL, TD_SMX_POLY1, TD_SMX_POLY1_FOCAL } td_smx_kind;

/* What a kind is made of, so the runtime and every backend branch on the
 * parts, not on names (macros: CUDA device code reads them too). Focal
 * kinds weigh by alpha (1 - p_y)^gamma and average over the counted
 * targets; poly kinds add epsilon (1 - p_t) (to the cross-entropy). */
#define TD_SMX_IS_FOCAL(k) ((k) == TD_SMX_FOCAL || (k) == TD_SMX_POLY1_FOCAL)
#define TD_SMX_IS_POLY(k)  ((k) == TD_SMX_POLY1 || (k) == TD_SMX_POLY1_FOCAL)

typedef struct {
    td_smx_kind kind;
    td_dtype dtype;        /* float32 or float64: x, prob, weight, alpha, row buffers */
    int64_t n, c, inner;   /* x (n, c, inner), contiguous */
    const void *x;         /* logits (CE, focal, poly1) or log-probabilities (NLL) */
    const int64_t *target; /* (n, inner) class indices, or NULL when prob is given */
    const void *prob;      /* (n, c, inner) class probabilities (CE only), or NULL */
    const void *weight;    /* (c) class weights (CE, NLL, poly1), or NULL for all 1 */
    const void *alpha;     /* (c) per-class alpha (focal), or NULL to use alpha_scalar */
    double alpha_scalar;   /* focal's alpha when alpha is NULL (1 = off) */
    int64_t ignore_index;  /* index targets equal to it give 0 loss and 0 gradient */
    double smoothing;      /* label smoothing e (CE, poly1): target becomes (1-e) onehot + e/c */
    double gamma;          /* focal */
    double epsilon;        /* poly1 */
} td_smx_args;

struct td_softmax_loss_kernels {
    /* target (n, inner) -> position of the first target outside [0, c) that
     * is not ignore_index, or -1; *count = non-ignored targets, *wsum = the
     * sum of weight[target] over them (count when weight is NULL), summed in
     * index order */
    int64_t (*check_targets)(const td_smx_args *a, int64_t *count, double *wsum);
    /* x (n,c,inner), target or prob -> loss (n*inner), aux0 (n*inner, 2),
     * aux1 (n*inner):
     *   CE, poly1: aux0 = (m, ls), the row max and the log of
     *     sum_j exp(x_j - m), so log p_j = (x_j - m) - ls; aux1 (prob
     *     targets only) = sum_c w_c t'_c with t' the smoothed target;
     *   focal: aux0 = (m, ls2), ls2 the same log-sum over the non-target
     *     classes only (-inf when they underflow), aux1 = the closed-form
     *     dloss/dx_target;
     *   NLL: aux0, aux1 unused (may be NULL). */
    void (*forward)(const td_smx_args *a, void *loss, void *aux0, void *aux1);
    /* gx (n,c,inner) = d(sum_r g_r loss_r)/dx with g_r = scale * gy[r] (gy
     * (n*inner), or NULL for g_r = scale); gt (n,c,inner), when not NULL,
     * the same for prob targets. Ignored rows get exactly 0. */
    void (*backward)(const td_smx_args *a, const void *aux0, const void *aux1, const void *gy,
                     double scale, void *gx, void *gt);
    /* forward, and in the same pass over each row (while it is in cache)
     * the backward with gy NULL and no gt: what a reduced loss's backward
     * will ask for, written before it asks. NULL in a backend that runs the
     * two apart. */
    void (*forward_grad)(const td_smx_args *a, void *loss, void *aux0, void *aux1, double scale,
                         void *gx);
};

#endif
