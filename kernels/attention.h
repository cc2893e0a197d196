/* Kernels of fused scaled dot-product attention: one table per backend.
 *
 * q (bh, L, E), k (bh, S, E), v (bh, S, Ev), out (bh, L, Ev) and lse
 * (bh, L) are contiguous, of one float dtype. Neither direction ever holds
 * the L x S matrix: the forward walks key tiles with a running row max and
 * sum (FlashAttention-2), the backward recomputes each tile's
 * probabilities from lse. Every sum runs in an order fixed by the shape,
 * so the bits depend on neither the thread count nor scheduling.
 */
#ifndef TIDE_KERNELS_ATTENTION_H
#define TIDE_KERNELS_ATTENTION_H

#include "tide/core.h"

typedef enum { TD_ATTN_MASK_NONE, TD_ATTN_MASK_BOOL, TD_ATTN_MASK_FLOAT } td_attn_mask_kind;

typedef struct {
    td_dtype dtype;
    int64_t bh, l, s, e, ev;
    /* bh = outer * heads + head; the mask's element for (outer, head, i, j)
     * sits at mask_stride[0] outer + mask_stride[1] head + mask_stride[2] i
     * + mask_stride[3] j (stride 0 where it is broadcast) */
    int64_t heads;
    td_attn_mask_kind mask_kind; /* BOOL: uint8, non-zero takes part; FLOAT: added, q's dtype */
    int64_t mask_stride[4];
    bool causal; /* key j takes part for query i when j <= i */
    double scale;
    /* dropout on the probabilities: probability p (0 = none), the keep bit
     * of (b, i, j) is td_counter_bits(key, (b L + i) S + j) as dropout's */
    double dropout_p;
    uint64_t key;
} td_attn_args;

struct td_attention_kernels {
    /* out and lse (natural log of each row's softmax denominator, -inf for
     * a row where nothing takes part; its output is then NaN as the
     * unfused softmax gives) */
    td_status (*forward)(const td_attn_args *a, const void *q, const void *k, const void *v,
                         const void *mask, void *out, void *lse);
    /* gq, gk, gv (all three written, contiguous like q, k, v) from gout,
     * with out and lse from the forward */
    td_status (*backward)(const td_attn_args *a, const void *q, const void *k, const void *v,
                          const void *mask, const void *out, const void *lse, const void *gout,
                          void *gq, void *gk, void *gv);
};

#endif
