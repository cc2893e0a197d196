/* Kernels of the margin losses: one table per backend.
 *
 * Every tensor handed to these is contiguous, and all float operands share
 * one dtype (float32 or float64). Each forward writes the per-sample loss
 * `out` (before any reduction). Each backward takes `gy`, the gradient of
 * that per-sample loss: contiguous, with numel 1 (the same value for every
 * sample, after a mean or a sum) or one value per sample; every gradient is
 * gy * scale * d out / d input. Gradient outputs that are NULL are not
 * wanted. Rows run over the OpenMP threads; nothing is reduced across rows,
 * so the bits never depend on the thread count.
 */
#ifndef TIDE_KERNELS_LOSS_MARGIN_H
#define TIDE_KERNELS_LOSS_MARGIN_H

#include "tide/core.h"

struct td_margin_loss_kernels {
    /* x (N,C), target int64 (N) in [0,C), weight (C) or NULL -> out (N):
     * (1/C) sum_{i != y} w[y] max(0, margin - x[y] + x[i])^p, p 1 or 2 */
    void (*multi_margin)(td_tensor *out, const td_tensor *x, const td_tensor *target,
                         const td_tensor *weight, int p, double margin, int64_t n, int64_t c);
    /* gx (N,C) */
    void (*multi_margin_backward)(td_tensor *gx, const td_tensor *gy, double scale,
                                  const td_tensor *x, const td_tensor *target,
                                  const td_tensor *weight, int p, double margin, int64_t n,
                                  int64_t c);
    /* x (N,C), target int64 (N,C) of indices in [0,C) ended by the first
     * -1 -> out (N): sum over listed j (duplicates count again) and
     * unlisted i of max(0, 1 - x[y_j] + x[i]) / C */
    void (*multilabel_margin)(td_tensor *out, const td_tensor *x, const td_tensor *target,
                              int64_t n, int64_t c);
    void (*multilabel_margin_backward)(td_tensor *gx, const td_tensor *gy, double scale,
                                       const td_tensor *x, const td_tensor *target, int64_t n,
                                       int64_t c);
    /* elementwise, x and y (n): (y != -1 ? x : 0) + (y != 1 ? max(0, margin - x) : 0) */
    void (*hinge_embedding)(td_tensor *out, const td_tensor *x, const td_tensor *y, double margin,
                            int64_t n);
    void (*hinge_embedding_backward)(td_tensor *gx, const td_tensor *gy, double scale,
                                     const td_tensor *x, const td_tensor *y, double margin,
                                     int64_t n);
    /* x1, x2 (N,D), y (N) -> out (N): y = 1: 1 - cos; y = -1:
     * max(0, cos - margin); else 0, with
     * cos = x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)) */
    void (*cosine_embedding)(td_tensor *out, const td_tensor *x1, const td_tensor *x2,
                             const td_tensor *y, double margin, int64_t n, int64_t d);
    /* g1, g2 (N,D), either may be NULL */
    void (*cosine_embedding_backward)(td_tensor *g1, td_tensor *g2, const td_tensor *gy,
                                      double scale, const td_tensor *x1, const td_tensor *x2,
                                      const td_tensor *y, double margin, int64_t n, int64_t d);
    /* elementwise, x1, x2, y (n): max(0, -y (x1 - x2) + margin) */
    void (*margin_ranking)(td_tensor *out, const td_tensor *x1, const td_tensor *x2,
                           const td_tensor *y, double margin, int64_t n);
    /* g1, g2 (n), either may be NULL */
    void (*margin_ranking_backward)(td_tensor *g1, td_tensor *g2, const td_tensor *gy, double scale,
                                    const td_tensor *x1, const td_tensor *x2, const td_tensor *y,
                                    double margin, int64_t n);
    /* a, p, q (N,D) -> out (N): max(0, d(a,p) - d(a,q) + margin), with
     * d(u,v) = |u - v + eps|_p and, when swap, d(a,q) <- min(d(a,q), d(p,q)) */
    void (*triplet_margin)(td_tensor *out, const td_tensor *a, const td_tensor *p,
                           const td_tensor *q, double margin, double norm_p, double eps, bool swap,
                           int64_t n, int64_t d);
    /* ga, gp, gq (N,D), any may be NULL */
    void (*triplet_margin_backward)(td_tensor *ga, td_tensor *gp, td_tensor *gq,
                                    const td_tensor *gy, double scale, const td_tensor *a,
                                    const td_tensor *p, const td_tensor *q, double margin,
                                    double norm_p, double eps, bool swap, int64_t n, int64_t d);
    /* target int64 (n) contiguous -> the first position whose value is
     * outside [lo, hi), or -1: the front-end's index check, run where the
     * data lives (one download on CUDA) */
    int64_t (*check_range)(const td_tensor *target, int64_t n, int64_t lo, int64_t hi);
};

#endif
