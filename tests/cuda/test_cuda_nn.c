/* CUDA against CPU for the losses, index ops, layers and optimizer steps,
 * in the manner of test_cuda.c: the same inputs through the
 * runtime's front-ends on both devices, values and gradients compared by
 * normalised MSE (below 1e-7 for float32, 1e-15 for float64 where the
 * formulas are the same; a few fused paths that sum in another order get
 * a stated looser bound), NaN only where the CPU has it, integers exact;
 * sentinels around outputs written straight through the backend table;
 * reruns for identical bits; and the data-dependent errors (a class
 * index out of range, a probability outside [0, 1]) raised with the CPU's
 * very message.
 *
 * Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable. */
#include "internal.h"
#include "cuda_check.h"
#include "tide/losses.h"
#include "tide/layers.h"
#include "tide/optim.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const td_device GPU = {TD_CUDA, 0};
static const td_dtype float_dtypes[] = {TD_FLOAT32, TD_FLOAT64};

static const td_reduction reductions[] = {TD_REDUCE_NONE, TD_REDUCE_MEAN, TD_REDUCE_SUM};

/* ---- softmax losses ------------------------------------------------------------ */

typedef struct {
    td_smx_kind kind;
    td_reduction red;
    int64_t ignore;
    double smoothing, gamma, epsilon, alpha_value;
} smx_case;

/* in: x, target, weight (alpha for focal) */
static td_status run_smx(const void *ctx, td_tensor **in, td_tensor **out)
{
    const smx_case *c = ctx;
    switch (c->kind) {
    case TD_SMX_CE: {
        td_cross_entropy_opts o = {.weight = in[2],
                                   .ignore_index = c->ignore,
                                   .label_smoothing = c->smoothing,
                                   .reduction = c->red};
        return td_cross_entropy(in[0], in[1], &o, out);
    }
    case TD_SMX_NLL: {
        td_nll_loss_opts o = {.weight = in[2], .ignore_index = c->ignore, .reduction = c->red};
        return td_nll_loss(in[0], in[1], &o, out);
    }
    case TD_SMX_FOCAL: {
        td_focal_loss_opts o = {.gamma = c->gamma,
                                .alpha = in[2],
                                .alpha_value = c->alpha_value,
                                .ignore_index = c->ignore,
                                .reduction = c->red};
        return td_focal_loss(in[0], in[1], &o, out);
    }
    default: {
        td_poly1_cross_entropy_opts o = {.epsilon = c->epsilon,
                                         .weight = in[2],
                                         .ignore_index = c->ignore,
                                         .label_smoothing = c->smoothing,
                                         .reduction = c->red};
        return td_poly1_cross_entropy(in[0], in[1], &o, out);
    }
    }
}

static const char *smx_names[] = {"cross_entropy", "nll_loss", "focal_loss", "poly1_cross_entropy"};

START_TEST(softmax_losses_every_option)
{
    /* (N, C), a long row, and K-dim (N, C, d1, d2) */
    static const int64_t shapes[3][4] = {{37, 11}, {5, 1000}, {4, 7, 3, 5}};
    static const int ndims[3] = {2, 2, 4};
    for (int d = 0; d < 2; d++)
        for (int sh = 0; sh < 3; sh++)
            for (int kind = 0; kind < 4; kind++)
                for (int red = 0; red < 3; red++)
                    for (int opt = 0; opt < 4; opt++) {
                        td_dtype dt = float_dtypes[d];
                        const int64_t *s = shapes[sh];
                        int nd = ndims[sh];
                        int64_t c = s[1], ts[3] = {s[0], nd > 2 ? s[2] : 0, nd > 2 ? s[3] : 0};
                        bool weighted = opt & 1, ignoring = opt & 2;
                        smx_case k = {(td_smx_kind)kind, reductions[red], -100, 0, 2.0, 1.0, 1.0};
                        if (kind == TD_SMX_CE || kind == TD_SMX_POLY1)
                            k.smoothing = opt == 3 ? 0.1 : 0;
                        if (kind == TD_SMX_FOCAL)
                            k.gamma = opt == 1 ? 0.5 : 2.0, k.alpha_value = opt == 2 ? 0.25 : 1;
                        if (ignoring) k.ignore = 2; /* a real class: it still sits in the softmax */
                        td_tensor *x = scaled(randn(dt, nd, s), sh == 1 ? 30 : 3);
                        if (kind == TD_SMX_NLL) {
                            td_tensor *l = NULL;
                            ck_assert_int_eq(td_log_softmax(x, 1, &l), TD_OK);
                            td_tensor_release(x);
                            x = l;
                        }
                        td_tensor *t = randint(0, c, nd - 1, ts);
                        td_tensor *w = weighted ? uniform(dt, 1, &c, 0.2, 2.0) : NULL;
                        td_tensor *in[3] = {x, t, w};
                        char what[160];
                        snprintf(what, sizeof what, "%s %s shape %d reduction %s option %d",
                                 smx_names[kind], td_dtype_name(dt), sh, td_reduction_name(k.red),
                                 opt);
                        parity(what, run_smx, &k, 3, in, 1u);
                        td_tensor_release(x);
                        td_tensor_release(t);
                        td_tensor_release(w);
                    }
}
END_TEST

START_TEST(cross_entropy_probability_targets)
{
    int64_t s[2] = {29, 13}, sk[3] = {6, 5, 7};
    for (int d = 0; d < 2; d++)
        for (int red = 0; red < 3; red++)
            for (int opt = 0; opt < 3; opt++) {
                td_dtype dt = float_dtypes[d];
                bool kdim = opt == 2;
                td_tensor *x = scaled(randn(dt, kdim ? 3 : 2, kdim ? sk : s), 4),
                          *r = randn(dt, kdim ? 3 : 2, kdim ? sk : s);
                td_tensor *p = NULL;
                ck_assert_int_eq(td_softmax(r, 1, &p), TD_OK);
                int64_t c = kdim ? sk[1] : s[1];
                td_tensor *w = opt == 1 ? uniform(dt, 1, &c, 0.2, 2.0) : NULL;
                smx_case k = {TD_SMX_CE, reductions[red], -100, opt == 0 ? 0.0 : 0.2, 0, 0, 1};
                td_tensor *in[3] = {x, p, w};
                char what[128];
                snprintf(what, sizeof what, "cross_entropy prob targets %s %s option %d",
                         td_dtype_name(dt), td_reduction_name(k.red), opt);
                parity(what, run_smx, &k, 3, in, 3u); /* gradients for the logits and the targets */
                td_tensor *ts[] = {x, r, p, w};
                for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
            }
}
END_TEST

START_TEST(softmax_losses_extremes_and_errors)
{
    int64_t s[2] = {16, 9}, n = 16;
    for (int d = 0; d < 2; d++) {
        td_dtype dt = float_dtypes[d];
        /* logits of +-1e4: finite values and gradients, matching the CPU */
        td_tensor *x = scaled(randn(dt, 2, s), 1e4), *t = randint(0, 9, 1, &n);
        for (int kind = 0; kind < 4; kind++) {
            if (kind == TD_SMX_NLL) continue;
            smx_case k = {
                (td_smx_kind)kind, TD_REDUCE_NONE, -100, kind == TD_SMX_CE ? 0.1 : 0, 0.5, 1, 1};
            td_tensor *in[3] = {x, t, NULL};
            char what[96];
            snprintf(what, sizeof what, "%s at +-1e4 %s", smx_names[kind], td_dtype_name(dt));
            parity(what, run_smx, &k, 3, in, 1u);
        }
        /* every target ignored: NaN for mean, 0 for sum */
        td_tensor *all = NULL;
        ck_assert_int_eq(td_full_on(1, &n, -100, TD_INT64, TD_DEVICE_CPU, &all), TD_OK);
        for (int red = 1; red < 3; red++) {
            smx_case k = {TD_SMX_CE, reductions[red], -100, 0, 0, 0, 1};
            td_tensor *in[3] = {x, all, NULL};
            parity("cross_entropy every target ignored", run_smx, &k, 3, in, 1u);
        }
        /* a target out of range: the same error on both devices */
        ck_assert_int_eq(td_set(t, 1, (int64_t[]){11}, 9), TD_OK);
        for (int kind = 0; kind < 4; kind++) {
            smx_case k = {(td_smx_kind)kind, TD_REDUCE_MEAN, -100, 0, 2, 1, 1};
            td_tensor *in[3] = {x, t, NULL};
            same_error(smx_names[kind], run_smx, &k, 3, in);
        }
        td_tensor_release(x);
        td_tensor_release(t);
        td_tensor_release(all);
    }
}
END_TEST

START_TEST(softmax_losses_deterministic)
{
    int64_t s[2] = {512, 1000}, n = 512;
    td_tensor *x = randn(TD_FLOAT32, 2, s), *t = randint(0, 1000, 1, &n), *gx = gpu(x),
              *gt = gpu(t);
    for (int kind = 0; kind < 4; kind++) {
        smx_case k = {
            (td_smx_kind)kind, TD_REDUCE_MEAN, -100, kind == TD_SMX_CE ? 0.1 : 0, 2, 1, 1};
        td_tensor *r[2] = {NULL, NULL}, *g[2] = {NULL, NULL};
        for (int run = 0; run < 2; run++) {
            td_tensor *leaf = NULL;
            ck_assert_int_eq(td_detach(gx, &leaf), TD_OK);
            ck_assert_int_eq(td_set_requires_grad(leaf, true), TD_OK);
            td_tensor *in[3] = {leaf, gt, NULL};
            ck_assert_int_eq(run_smx(&k, in, &r[run]), TD_OK);
            ck_assert_int_eq(td_backward(r[run], NULL, false), TD_OK);
            g[run] = leaf->grad;
            td_tensor_retain(g[run]);
            td_tensor_release(leaf);
        }
        same_bits(smx_names[kind], r[0], r[1]);
        same_bits(smx_names[kind], g[0], g[1]);
        td_release_many(2, r);
        td_release_many(2, g);
    }
    td_tensor *ts[] = {x, t, gx, gt};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- regression losses ------------------------------------------------------------ */

typedef struct {
    int op; /* 0 mse, 1 l1, 2 smooth_l1, 3 huber, 4 kl_div, 5 kl_div log_target, 6 poisson
               log_input, 7 poisson, 8 gaussian */
    td_reduction red;
    bool full;
} reg_case;

static td_status run_reg(const void *ctx, td_tensor **in, td_tensor **out)
{
    const reg_case *c = ctx;
    switch (c->op) {
    case 0: {
        td_mse_loss_opts o = {.reduction = c->red};
        return td_mse_loss(in[0], in[1], &o, out);
    }
    case 1: {
        td_l1_loss_opts o = {.reduction = c->red};
        return td_l1_loss(in[0], in[1], &o, out);
    }
    case 2: {
        td_smooth_l1_loss_opts o = {.reduction = c->red, .beta = 0.5};
        return td_smooth_l1_loss(in[0], in[1], &o, out);
    }
    case 3: {
        td_huber_loss_opts o = {.reduction = c->red, .delta = 0.7};
        return td_huber_loss(in[0], in[1], &o, out);
    }
    case 4: {
        td_kl_div_opts o = {.reduction = c->red, .log_target = false};
        return td_kl_div(in[0], in[1], &o, out);
    }
    case 5: {
        td_kl_div_opts o = {.reduction = c->red, .log_target = true};
        return td_kl_div(in[0], in[1], &o, out);
    }
    case 6: {
        td_poisson_nll_loss_opts o = {
            .reduction = c->red, .log_input = true, .full = c->full, .eps = 1e-8};
        return td_poisson_nll_loss(in[0], in[1], &o, out);
    }
    case 7: {
        td_poisson_nll_loss_opts o = {
            .reduction = c->red, .log_input = false, .full = c->full, .eps = 1e-8};
        return td_poisson_nll_loss(in[0], in[1], &o, out);
    }
    default: {
        td_gaussian_nll_loss_opts o = {.reduction = c->red, .full = c->full, .eps = 1e-6};
        return td_gaussian_nll_loss(in[0], in[1], in[2], &o, out);
    }
    }
}

START_TEST(regression_losses)
{
    int64_t s[2] = {23, 17}, sb[2] = {1, 17}, s1[1] = {23};
    for (int d = 0; d < 2; d++)
        for (int op = 0; op < 9; op++)
            for (int red = 0; red < 4; red++)
                for (int v = 0; v < 2; v++) {
                    td_dtype dt = float_dtypes[d];
                    if (red == 3 && op != 4 && op != 5) continue; /* batchmean is kl_div's */
                    td_reduction r = red == 3 ? TD_REDUCE_BATCHMEAN : reductions[red];
                    td_tensor *x, *y, *var = NULL;
                    /* v = 1: a broadcast target (or var without the last dim), and `full` */
                    const int64_t *ys = v && op != 8 ? sb : s;
                    if (op == 7)
                        x = uniform(dt, 2, s, 0.1, 3);
                    else
                        x = randn(dt, 2, s);
                    if (op == 4)
                        y = uniform(dt, 2, ys, 0.01, 1);
                    else if (op == 6 || op == 7)
                        y = uniform(dt, 2, ys, 0, 5);
                    else
                        y = randn(dt, 2, ys);
                    if (op == 4 && v)
                        ck_assert_int_eq(td_set(y, 2, (int64_t[]){0, 3}, 0.0), TD_OK); /* y = 0 */
                    if (op == 8) var = v ? uniform(dt, 1, s1, 0.1, 2) : uniform(dt, 2, s, 1e-7, 2);
                    reg_case c = {op, r, v == 1};
                    td_tensor *in[3] = {x, y, var};
                    char what[96];
                    snprintf(what, sizeof what, "regression %d %s %s variant %d", op,
                             td_dtype_name(dt), td_reduction_name(r), v);
                    parity(what, run_reg, &c, 3, in, op == 8 ? 7u : 3u);
                    td_tensor_release(x);
                    td_tensor_release(y);
                    td_tensor_release(var);
                }
    /* a negative variance: the same error on both devices */
    td_tensor *x = randn(TD_FLOAT32, 2, s), *y = randn(TD_FLOAT32, 2, s),
              *var = randn(TD_FLOAT32, 2, s);
    reg_case c = {8, TD_REDUCE_MEAN, false};
    td_tensor *in[3] = {x, y, var};
    same_error("gaussian_nll_loss negative var", run_reg, &c, 3, in);
    td_tensor_release(x);
    td_tensor_release(y);
    td_tensor_release(var);
}
END_TEST

/* ---- binary losses ------------------------------------------------------------- */

typedef struct {
    int op; /* 0 bce, 1 bce_logits, 2 sigmoid_focal, 3 asymmetric, 4 soft_margin, 5
               multilabel_soft_margin */
    td_reduction red;
    int v; /* variant: options on or off */
} bin_case;

/* in: x, y, weight, pos_weight */
static td_status run_bin(const void *ctx, td_tensor **in, td_tensor **out)
{
    const bin_case *c = ctx;
    switch (c->op) {
    case 0: {
        td_bce_opts o = {.weight = in[2], .reduction = c->red};
        return td_binary_cross_entropy(in[0], in[1], &o, out);
    }
    case 1: {
        td_bce_logits_opts o = {.weight = in[2],
                                .pos_weight = in[3],
                                .label_smoothing = c->v ? 0.1 : 0,
                                .reduction = c->red};
        return td_binary_cross_entropy_with_logits(in[0], in[1], &o, out);
    }
    case 2: {
        td_sigmoid_focal_opts o = {
            .alpha = c->v ? -1 : 0.25, .gamma = c->v ? 0.5 : 2, .reduction = c->red};
        return td_sigmoid_focal_loss(in[0], in[1], &o, out);
    }
    case 3: {
        td_asymmetric_opts o = {.gamma_pos = c->v ? 1 : 0,
                                .gamma_neg = 4,
                                .clip = c->v ? 0 : 0.05,
                                .eps = 1e-8,
                                .reduction = c->red};
        return td_asymmetric_loss(in[0], in[1], &o, out);
    }
    case 4: {
        td_soft_margin_opts o = {.reduction = c->red};
        return td_soft_margin_loss(in[0], in[1], &o, out);
    }
    default: {
        td_multilabel_soft_margin_opts o = {.weight = in[2], .reduction = c->red};
        return td_multilabel_soft_margin_loss(in[0], in[1], &o, out);
    }
    }
}

START_TEST(binary_losses)
{
    int64_t s[2] = {19, 13}, sc = 13;
    for (int d = 0; d < 2; d++)
        for (int op = 0; op < 6; op++)
            for (int red = 0; red < 3; red++)
                for (int v = 0; v < 2; v++) {
                    td_dtype dt = float_dtypes[d];
                    td_tensor *x =
                        op == 0 ? uniform(dt, 2, s, 0.001, 0.999) : scaled(randn(dt, 2, s), 4);
                    td_tensor *y, *w = NULL, *pw = NULL;
                    if (op == 4) {
                        td_tensor *r = randn(dt, 2, s), *sg = NULL;
                        ck_assert_int_eq(td_unary(TD_SIGN, r, &sg), TD_OK); /* +-1 */
                        td_tensor_release(r);
                        y = sg;
                    } else {
                        y = uniform(dt, 2, s, 0, 1); /* soft targets */
                    }
                    if (v && (op == 0 || op == 1 || op == 5)) w = uniform(dt, 1, &sc, 0.2, 2);
                    if (v && op == 1) pw = uniform(dt, 1, &sc, 0.5, 3);
                    if (op == 0 && v)
                        ck_assert_int_eq(td_set(x, 2, (int64_t[]){1, 1}, 0.0),
                                         TD_OK); /* log clamp */
                    bin_case c = {op, reductions[red], v};
                    td_tensor *in[4] = {x, y, w, pw};
                    char what[96];
                    snprintf(what, sizeof what, "binary loss %d %s %s variant %d", op,
                             td_dtype_name(dt), td_reduction_name(c.red), v);
                    /* bce's gradient at p = 0 is -1e12 w: compare in relative terms */
                    parity(what, run_bin, &c, 4, in, op == 0 || op == 1 || op == 5 ? 3u : 1u);
                    td_tensor *ts[] = {x, y, w, pw};
                    for (size_t i = 0; i < 4; i++) td_tensor_release(ts[i]);
                }
    /* probabilities outside [0, 1] for bce, targets for sigmoid_focal: the CPU's errors */
    td_tensor *p = uniform(TD_FLOAT32, 2, s, 0.1, 0.9), *y = uniform(TD_FLOAT32, 2, s, 0, 1);
    ck_assert_int_eq(td_set(p, 2, (int64_t[]){7, 3}, 1.5), TD_OK);
    ck_assert_int_eq(td_set(p, 2, (int64_t[]){9, 3}, -0.5), TD_OK);
    bin_case c = {0, TD_REDUCE_MEAN, 0};
    td_tensor *in[4] = {p, y, NULL, NULL};
    same_error("binary_cross_entropy p outside [0, 1]", run_bin, &c, 4, in);
    ck_assert_int_eq(td_set(y, 2, (int64_t[]){4, 4}, 2.0), TD_OK);
    c.op = 2;
    same_error("sigmoid_focal_loss y outside [0, 1]", run_bin, &c, 4, in);
    td_tensor_release(p);
    td_tensor_release(y);
}
END_TEST

/* ---- index ops, embedding, layer_norm, leaky_relu ---------------------------------- */

typedef struct {
    int op; /* 0 index_select, 1 gather, 2 scatter, 3 scatter_add, 4 index_add */
    int dim;
} idx_case;

/* in: x, index, src */
static td_status run_idx(const void *ctx, td_tensor **in, td_tensor **out)
{
    const idx_case *c = ctx;
    switch (c->op) {
    case 0: return td_index_select(in[0], c->dim, in[1], out);
    case 1: return td_gather(in[0], c->dim, in[1], out);
    case 2: return td_scatter(in[0], c->dim, in[1], in[2], false, out);
    case 3: return td_scatter(in[0], c->dim, in[1], in[2], true, out);
    default: return td_index_add(in[0], c->dim, in[1], in[2], out);
    }
}

START_TEST(index_ops_with_duplicates)
{
    int64_t s[3] = {6, 7, 5};
    static const td_dtype dts[3] = {TD_FLOAT32, TD_FLOAT64, TD_INT64};
    for (int d = 0; d < 3; d++)
        for (int op = 0; op < 5; op++)
            for (int dim = 0; dim < 3; dim++) {
                td_dtype dt = dts[d];
                td_tensor *x = NULL;
                if (dt == TD_INT64)
                    x = randint(-50, 50, 3, s);
                else
                    x = randn(dt, 3, s);
                td_tensor *index = NULL, *src = NULL;
                if (op == 0 || op == 4) { /* 1-D, 11 entries with duplicates */
                    int64_t len = 11;
                    index = randint(0, s[dim], 1, &len);
                    int64_t ss[3] = {s[0], s[1], s[2]};
                    ss[dim] = len;
                    src = dt == TD_INT64 ? randint(-50, 50, 3, ss) : randn(dt, 3, ss);
                } else { /* index of a smaller extent, duplicates along dim */
                    int64_t is[3] = {4, 5, 3};
                    index = randint(0, s[dim], 3, is);
                    src = dt == TD_INT64 ? randint(-50, 50, 3, s) : randn(dt, 3, s);
                }
                idx_case c = {op, dim};
                td_tensor *in[3] = {x, index, op == 0 || op == 1 ? NULL : src};
                char what[96];
                snprintf(what, sizeof what, "index op %d dim %d %s", op, dim, td_dtype_name(dt));
                unsigned mask = dt == TD_INT64 ? 0u : op <= 1 ? 1u : 5u;
                parity(what, run_idx, &c, 3, in, mask);
                td_tensor_release(x);
                td_tensor_release(index);
                td_tensor_release(src);
            }
    /* an index out of range: the same error */
    td_tensor *x = randn(TD_FLOAT32, 3, s), *index = NULL;
    int64_t len = 3;
    ck_assert_int_eq(td_from_data(1, &len, TD_INT64, (double[]){0, 9, 1}, &index), TD_OK);
    idx_case c = {0, 0};
    td_tensor *in[3] = {x, index, NULL};
    same_error("index_select out of range", run_idx, &c, 3, in);
    td_tensor_release(x);
    td_tensor_release(index);
}
END_TEST

typedef struct {
    int op; /* 0 embedding, 1 embedding with padding_idx, 2 layer_norm, 3 layer_norm affine, 4
               leaky_relu */
} layer_case;

static td_status run_layer(const void *ctx, td_tensor **in, td_tensor **out)
{
    const layer_case *c = ctx;
    switch (c->op) {
    case 0: return td_embedding(in[0], in[1], false, 0, out);
    case 1: return td_embedding(in[0], in[1], true, 3, out);
    case 2: return td_layer_norm(in[0], 1, &in[0]->shape[in[0]->ndim - 1], NULL, NULL, 1e-5, out);
    case 3: return td_layer_norm(in[0], 2, &in[0]->shape[in[0]->ndim - 2], in[1], in[2], 1e-5, out);
    default: return td_leaky_relu(in[0], 0.1, out);
    }
}

START_TEST(embedding_layer_norm_leaky_relu)
{
    for (int d = 0; d < 2; d++) {
        td_dtype dt = float_dtypes[d];
        int64_t ws[2] = {10, 6}, is[2] = {4, 9};
        td_tensor *w = randn(dt, 2, ws), *ix = randint(0, 10, 2, is);
        for (int op = 0; op < 2; op++) {
            layer_case c = {op};
            td_tensor *in[3] = {ix, w, NULL};
            parity(op ? "embedding padding_idx" : "embedding", run_layer, &c, 3, in, 2u);
        }
        int64_t xs[3] = {5, 7, 33}, ns[2] = {7, 33};
        td_tensor *x = scaled(randn(dt, 3, xs), 3), *g = randn(dt, 2, ns), *b = randn(dt, 2, ns);
        for (int op = 2; op < 5; op++) {
            layer_case c = {op};
            td_tensor *in[3] = {x, op == 3 ? g : NULL, op == 3 ? b : NULL};
            parity(op == 4 ? "leaky_relu" : "layer_norm", run_layer, &c, 3, in, op == 3 ? 7u : 1u);
        }
        td_tensor *ts[] = {w, ix, x, g, b};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
    }
}
END_TEST

/* gather and index_select written straight through the table into a
 * guarded buffer, and a scatter_add with many duplicates twice */
START_TEST(index_guards_and_determinism)
{
    const td_backend *be = td_backend_for(GPU);
    int64_t s[2] = {40, 50}, n = 40 * 30, is[2] = {40, 30}, total = n + 2048;
    td_tensor *x = randn(TD_FLOAT32, 2, s), *gx = gpu(x), *ix = randint(0, 50, 2, is),
              *gix = gpu(ix);
    td_tensor *buf = NULL, *o = NULL, *ov = NULL;
    ck_assert_int_eq(td_full_on(1, &total, 12345.0, TD_FLOAT32, GPU, &buf), TD_OK);
    ck_assert_int_eq(td_narrow(buf, 0, 1024, n, &o), TD_OK);
    ck_assert_int_eq(td_view(o, 2, is, &ov), TD_OK);
    be->gather(ov, gx, 1, gix);
    ck_assert_int_eq(td_cuda_synchronize(), TD_OK);
    td_tensor *h = host(buf);
    const float *p = td_data_ptr(h);
    for (int64_t i = 0; i < 1024; i++)
        ck_assert_msg(p[i] == 12345.0f && p[1024 + n + i] == 12345.0f,
                      "gather wrote outside its output");
    td_tensor_release(h);
    /* scatter_add of many duplicates: the same bits twice, and the CPU's */
    int64_t big[2] = {64, 4096}, bi[2] = {64, 4096}, zs[2] = {64, 8};
    td_tensor *src = randn(TD_FLOAT32, 2, big), *bix = randint(0, 8, 2, bi), *z = NULL;
    ck_assert_int_eq(td_zeros(2, zs, TD_FLOAT32, &z), TD_OK);
    td_tensor *gsrc = gpu(src), *gbix = gpu(bix), *gz = gpu(z), *r[2] = {NULL, NULL}, *rc = NULL;
    for (int run = 0; run < 2; run++)
        ck_assert_int_eq(td_scatter(gz, 1, gbix, gsrc, true, &r[run]), TD_OK);
    same_bits("scatter_add", r[0], r[1]);
    ck_assert_int_eq(td_scatter(z, 1, bix, src, true, &rc), TD_OK);
    td_tensor_retain(r[0]);
    expect_close("scatter_add with duplicates", rc, r[0]);
    td_release_many(2, r);
    td_tensor *ts[] = {x, gx, ix, gix, buf, o, ov, src, bix, z, gsrc, gbix, gz, rc};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- optimizer steps ------------------------------------------------------------- */

/* param, grad and up to three state tensors, stepped `iters` times on both
 * devices with the same fresh gradients; which: 0 sgd, 1 adam, 2 rmsprop */
static void optim_run(const char *what, int which, td_dtype dt, const void *opts)
{
    int64_t s[2] = {37, 129};
    td_tensor *p = randn(dt, 2, s), *gp = gpu(p), *st[3] = {0}, *gst[3] = {0};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(td_zeros(2, s, dt, &st[i]), TD_OK);
        gst[i] = gpu(st[i]);
    }
    for (int it = 0; it < 5; it++) {
        td_tensor *g = randn(dt, 2, s), *gg = gpu(g);
        switch (which) {
        case 0: {
            td_sgd_opts o = *(const td_sgd_opts *)opts;
            o.first_step = it == 0;
            ck_assert_msg(td_sgd_step(p, g, st[0], &o) == TD_OK, "%s: %s", what, td_last_error());
            ck_assert_msg(td_sgd_step(gp, gg, gst[0], &o) == TD_OK, "%s: %s", what,
                          td_last_error());
        } break;
        case 1: {
            td_adam_opts o = *(const td_adam_opts *)opts;
            o.step = it + 1;
            ck_assert_msg(td_adam_step(p, g, st[0], st[1], st[2], &o) == TD_OK, "%s: %s", what,
                          td_last_error());
            ck_assert_msg(td_adam_step(gp, gg, gst[0], gst[1], gst[2], &o) == TD_OK, "%s: %s", what,
                          td_last_error());
        } break;
        default: {
            const td_rmsprop_opts *o = opts;
            ck_assert_msg(td_rmsprop_step(p, g, st[0], st[1], st[2], o) == TD_OK, "%s: %s", what,
                          td_last_error());
            ck_assert_msg(td_rmsprop_step(gp, gg, gst[0], gst[1], gst[2], o) == TD_OK, "%s: %s",
                          what, td_last_error());
        } break;
        }
        td_tensor_release(g);
        td_tensor_release(gg);
    }
    char w2[160];
    snprintf(w2, sizeof w2, "%s %s: param after 5 steps", what, td_dtype_name(dt));
    expect_close_tol(w2, p, gp, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(w2, sizeof w2, "%s %s: state %d after 5 steps", what, td_dtype_name(dt), i);
        expect_close_tol(w2, st[i], gst[i], 0);
        td_tensor_release(st[i]);
    }
    td_tensor_release(p);
}

START_TEST(optimizer_steps)
{
    for (int d = 0; d < 2; d++) {
        td_dtype dt = float_dtypes[d];
        td_sgd_opts sgd[4] = {TD_SGD_OPTS_DEFAULT, TD_SGD_OPTS_DEFAULT, TD_SGD_OPTS_DEFAULT,
                              TD_SGD_OPTS_DEFAULT};
        sgd[0].lr = 0.1;
        sgd[1].lr = 0.05, sgd[1].momentum = 0.9, sgd[1].dampening = 0.1, sgd[1].weight_decay = 1e-2;
        sgd[2].lr = 0.05, sgd[2].momentum = 0.9, sgd[2].nesterov = true, sgd[2].weight_decay = 5e-4;
        sgd[3].lr = 0.05, sgd[3].momentum = 0.5, sgd[3].maximize = true;
        for (int i = 0; i < 4; i++) optim_run("sgd", 0, dt, &sgd[i]);
        td_adam_opts adam[4] = {TD_ADAM_OPTS_DEFAULT, TD_ADAM_OPTS_DEFAULT, TD_ADAM_OPTS_DEFAULT,
                                TD_ADAM_OPTS_DEFAULT};
        adam[1].weight_decay = 1e-2;                           /* Adam, L2 in the gradient */
        adam[2].weight_decay = 1e-2, adam[2].decoupled = true; /* AdamW */
        adam[3].weight_decay = 1e-2, adam[3].decoupled = true, adam[3].amsgrad = true,
        adam[3].maximize = true;
        for (int i = 0; i < 4; i++) optim_run("adam", 1, dt, &adam[i]);
        td_rmsprop_opts rms[3] = {TD_RMSPROP_OPTS_DEFAULT, TD_RMSPROP_OPTS_DEFAULT,
                                  TD_RMSPROP_OPTS_DEFAULT};
        rms[1].centered = true, rms[1].weight_decay = 1e-3;
        rms[2].centered = true, rms[2].momentum = 0.9;
        for (int i = 0; i < 3; i++) optim_run("rmsprop", 2, dt, &rms[i]);
    }
}
END_TEST

/* the multi-tensor steps (td_sgd_step_multi / td_adam_step_multi, few
 * launches over a list) on CUDA against the per-parameter CPU steps, over
 * several steps: 30 tensors (more than one launch's tensor table), sizes
 * from 1 element to several 64 Ki-element chunks (a tensor split across
 * launches), and in float32 one tensor of more chunks than one launch holds */
#define MT_N 31
static void multi_run(const char *what, int which, td_dtype dt, const void *opts, int nt)
{
    td_tensor *p[MT_N], *gp[MT_N], *st[3][MT_N], *gst[3][MT_N];
    for (int i = 0; i < nt; i++) {
        int64_t n = i == 30 ? 320 * 65536 + 77 : i % 7 == 3 ? 65536 * 3 + 11 + i : 1 + i * i * 13;
        p[i] = randn(dt, 1, &n);
        gp[i] = gpu(p[i]);
        for (int j = 0; j < 3; j++) {
            ck_assert_int_eq(td_zeros(1, &n, dt, &st[j][i]), TD_OK);
            gst[j][i] = gpu(st[j][i]);
        }
    }
    for (int it = 0; it < 4; it++) {
        td_tensor *g[MT_N], *gg[MT_N];
        for (int i = 0; i < nt; i++) {
            g[i] = randn(dt, 1, p[i]->shape);
            gg[i] = gpu(g[i]);
        }
        if (which == 0) {
            td_sgd_opts o = *(const td_sgd_opts *)opts;
            o.first_step = it == 0;
            for (int i = 0; i < nt; i++)
                ck_assert_msg(td_sgd_step(p[i], g[i], st[0][i], &o) == TD_OK, "%s: %s", what,
                              td_last_error());
            ck_assert_msg(td_sgd_step_multi(nt, gp, gg, gst[0], &o) == TD_OK, "%s: %s", what,
                          td_last_error());
        } else {
            td_adam_opts o = *(const td_adam_opts *)opts;
            o.step = it + 1;
            for (int i = 0; i < nt; i++)
                ck_assert_msg(td_adam_step(p[i], g[i], st[0][i], st[1][i], st[2][i], &o) == TD_OK,
                              "%s: %s", what, td_last_error());
            ck_assert_msg(td_adam_step_multi(nt, gp, gg, gst[0], gst[1], gst[2], &o) == TD_OK,
                          "%s: %s", what, td_last_error());
        }
        for (int i = 0; i < nt; i++) {
            td_tensor_release(g[i]);
            td_tensor_release(gg[i]);
        }
    }
    char w2[160];
    for (int i = 0; i < nt; i++) {
        snprintf(w2, sizeof w2, "%s multi %s: param %d after 4 steps", what, td_dtype_name(dt), i);
        expect_close_tol(w2, p[i], gp[i], 0);
        td_tensor_release(p[i]);
        for (int j = 0; j < 3; j++) {
            snprintf(w2, sizeof w2, "%s multi %s: state %d of param %d after 4 steps", what,
                     td_dtype_name(dt), j, i);
            expect_close_tol(w2, st[j][i], gst[j][i], 0);
            td_tensor_release(st[j][i]);
        }
    }
}

START_TEST(optimizer_multi_tensor_steps)
{
    for (int d = 0; d < 2; d++) {
        td_dtype dt = float_dtypes[d];
        int nt = dt == TD_FLOAT32 ? 31 : 30;
        td_sgd_opts sgd[3] = {TD_SGD_OPTS_DEFAULT, TD_SGD_OPTS_DEFAULT, TD_SGD_OPTS_DEFAULT};
        sgd[0].lr = 0.1;
        sgd[1].lr = 0.05, sgd[1].momentum = 0.9, sgd[1].dampening = 0.1, sgd[1].weight_decay = 1e-2;
        sgd[2].lr = 0.05, sgd[2].momentum = 0.9, sgd[2].nesterov = true, sgd[2].maximize = true;
        for (int i = 0; i < 3; i++) multi_run("sgd", 0, dt, &sgd[i], nt);
        td_adam_opts adam[3] = {TD_ADAM_OPTS_DEFAULT, TD_ADAM_OPTS_DEFAULT, TD_ADAM_OPTS_DEFAULT};
        adam[1].weight_decay = 1e-2; /* Adam, L2 */
        adam[2].weight_decay = 1e-2, adam[2].decoupled = true,
        adam[2].amsgrad = true; /* AdamW, amsgrad */
        for (int i = 0; i < 3; i++) multi_run("adam", 1, dt, &adam[i], nt);
    }
}
END_TEST

/* ---- the suite ------------------------------------------------------------------- */

static Suite *nn_suite(void)
{
    Suite *s = suite_create("cuda_nn");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, softmax_losses_every_option);
    tcase_add_test(tc, cross_entropy_probability_targets);
    tcase_add_test(tc, softmax_losses_extremes_and_errors);
    tcase_add_test(tc, softmax_losses_deterministic);
    tcase_add_test(tc, optimizer_steps);
    tcase_add_test(tc, optimizer_multi_tensor_steps);
    tcase_add_test(tc, regression_losses);
    tcase_add_test(tc, binary_losses);
    tcase_add_test(tc, index_ops_with_duplicates);
    tcase_add_test(tc, embedding_layer_norm_leaky_relu);
    tcase_add_test(tc, index_guards_and_determinism);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_cuda_suite(nn_suite, 4321, NULL); }
