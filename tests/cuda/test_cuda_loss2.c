/* CUDA against CPU for the margin losses and ctc_loss, in the
 * manner of test_cuda_nn.c: the same inputs through the runtime's
 * front-ends on both devices, value and every gradient compared by
 * normalised MSE (below 1e-7 for float32, 1e-15 for float64: both devices
 * run the same formulas in the same order, in double for the margin
 * losses' sums, so only the device's exp, log and pow may differ, by an
 * ulp), NaN and infinities only where the CPU has them; every option and
 * reduction; the data-dependent errors with the CPU's very message; and
 * reruns for identical bits.
 *
 * Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable. */
#include "internal.h"
#include "cuda_check.h"
#include "tide/losses.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const td_dtype float_dtypes[] = {TD_FLOAT32, TD_FLOAT64};
static const td_reduction reductions[] = {TD_REDUCE_NONE, TD_REDUCE_MEAN, TD_REDUCE_SUM};

/* ---- helpers (the shared ones are in cuda_check.h) ----------------------------- */

/* +-1 labels of dtype dt */
static td_tensor *signs(td_dtype dt, int ndim, const int64_t *shape)
{
    td_tensor *r = randn(dt, ndim, shape), *s = NULL;
    ck_assert_int_eq(td_unary(TD_SIGN, r, &s), TD_OK);
    td_tensor_release(r);
    return s;
}

/* f twice on the same CUDA inputs: identical bits, value and gradient of input 0 */
static void same_bits_twice(const char *what, op_fn f, const void *ctx, int n, td_tensor **cin)
{
    td_tensor *gi[8] = {0}, *o[2] = {NULL, NULL}, *g[2] = {NULL, NULL};
    for (int i = 0; i < n; i++) gi[i] = cin[i] ? gpu(cin[i]) : NULL;
    ck_assert_int_eq(td_set_requires_grad(gi[0], true), TD_OK);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(f(ctx, gi, &o[k]) == TD_OK, "%s: %s", what, td_last_error());
        ck_assert_int_eq(td_backward(o[k], NULL, false), TD_OK);
        g[k] = host(gi[0]->grad);
        td_tensor *h = host(o[k]);
        td_tensor_release(o[k]);
        o[k] = h;
        gi[0]->grad = (td_tensor_release(gi[0]->grad), NULL);
    }
    size_t nb = (size_t)td_numel(g[0]) * td_dtype_size(g[0]->dtype);
    ck_assert_msg(memcmp(td_data_ptr(g[0]), td_data_ptr(g[1]), nb) == 0,
                  "%s: gradients of two runs differ", what);
    ck_assert_msg(memcmp(td_data_ptr(o[0]), td_data_ptr(o[1]), td_dtype_size(o[0]->dtype)) == 0,
                  "%s: values of two runs differ", what);
    for (int k = 0; k < 2; k++) {
        td_tensor_release(o[k]);
        td_tensor_release(g[k]);
    }
    for (int i = 0; i < n; i++) td_tensor_release(gi[i]);
}

/* ---- margin losses ------------------------------------------------------------- */

typedef struct {
    int op; /* 0 multi_margin, 1 multilabel_margin, 2 hinge, 3 cosine, 4 ranking, 5 triplet */
    td_reduction red;
    int p;
    double margin, np;
    bool swap;
} mg_case;

/* in: the loss's tensors in order, then (multi_margin) the weight */
static td_status run_mg(const void *ctx, td_tensor **in, td_tensor **out)
{
    const mg_case *c = ctx;
    switch (c->op) {
    case 0: {
        td_multi_margin_opts o = {
            .p = c->p, .margin = c->margin, .weight = in[2], .reduction = c->red};
        return td_multi_margin_loss(in[0], in[1], &o, out);
    }
    case 1: {
        td_multilabel_margin_opts o = {.reduction = c->red};
        return td_multilabel_margin_loss(in[0], in[1], &o, out);
    }
    case 2: {
        td_hinge_embedding_opts o = {.margin = c->margin, .reduction = c->red};
        return td_hinge_embedding_loss(in[0], in[1], &o, out);
    }
    case 3: {
        td_cosine_embedding_opts o = {.margin = c->margin, .reduction = c->red};
        return td_cosine_embedding_loss(in[0], in[1], in[2], &o, out);
    }
    case 4: {
        td_margin_ranking_opts o = {.margin = c->margin, .reduction = c->red};
        return td_margin_ranking_loss(in[0], in[1], in[2], &o, out);
    }
    default: {
        td_triplet_margin_opts o = {
            .margin = c->margin, .p = c->np, .eps = 1e-6, .swap = c->swap, .reduction = c->red};
        return td_triplet_margin_loss(in[0], in[1], in[2], &o, out);
    }
    }
}

/* (n, c) multilabel targets: each row a list of random length (duplicates
 * allowed, sometimes empty, sometimes full) ended by -1, then junk */
static td_tensor *multilabel_targets(int64_t n, int64_t c)
{
    int64_t s[2] = {n, c};
    td_tensor *t = randint(0, c, 2, s);
    for (int64_t r = 0; r < n; r++) {
        int64_t len = r % (c + 1);
        if (len < c) ck_assert_int_eq(td_set(t, 2, (int64_t[]){r, len}, -1), TD_OK);
        if (len + 2 < c) ck_assert_int_eq(td_set(t, 2, (int64_t[]){r, len + 2}, -1), TD_OK);
    }
    return t;
}

START_TEST(margin_losses_every_option)
{
    const int64_t N = 23, C = 9, D = 17;
    int64_t nc[2] = {N, C}, nd[2] = {N, D}, n1 = N;
    char what[160];
    for (int d = 0; d < 2; d++)
        for (int red = 0; red < 3; red++) {
            td_dtype dt = float_dtypes[d];
            td_reduction r = reductions[red];
            /* multi_margin: p, margin, weight; (N, C) and unbatched (C) */
            for (int p = 1; p <= 2; p++)
                for (int m = 0; m < 2; m++)
                    for (int w = 0; w < 2; w++)
                        for (int ub = 0; ub < 2; ub++) {
                            td_tensor *x = ub ? randn(dt, 1, &C) : scaled(randn(dt, 2, nc), 1.5);
                            td_tensor *t = ub ? randint(0, C, 0, NULL) : randint(0, C, 1, &n1);
                            td_tensor *wt = w ? uniform(dt, 1, &C, 0.2, 2) : NULL;
                            mg_case c = {0, r, p, m ? 0.3 : 1.0, 0, false};
                            td_tensor *in[3] = {x, t, wt};
                            snprintf(what, sizeof what,
                                     "multi_margin %s %s p %d margin %g weight %d unbatched %d",
                                     td_dtype_name(dt), td_reduction_name(r), p, c.margin, w, ub);
                            parity(what, run_mg, &c, 3, in, 1u);
                            td_tensor_release(x);
                            td_tensor_release(t);
                            td_tensor_release(wt);
                        }
            /* multilabel_margin, (N, C) and unbatched (C) */
            for (int ub = 0; ub < 2; ub++) {
                td_tensor *x = ub ? randn(dt, 1, &C) : randn(dt, 2, nc);
                td_tensor *t0 = multilabel_targets(ub ? 4 : N, C), *t = NULL;
                if (ub)
                    ck_assert_int_eq(
                        td_make_view(t0, 1, &C, &t0->stride[1], t0->offset + 3 * C, &t), TD_OK);
                else
                    t = (td_tensor_retain(t0), t0);
                mg_case c = {1, r, 0, 0, 0, false};
                td_tensor *in[2] = {x, t};
                snprintf(what, sizeof what, "multilabel_margin %s %s unbatched %d",
                         td_dtype_name(dt), td_reduction_name(r), ub);
                parity(what, run_mg, &c, 2, in, 1u);
                td_tensor_release(x);
                td_tensor_release(t);
                td_tensor_release(t0);
            }
            /* hinge_embedding: float and int64 labels, margins, a broadcast label row */
            for (int m = 0; m < 2; m++)
                for (int lab = 0; lab < 3; lab++) {
                    td_tensor *x = scaled(randn(dt, 2, nc), 2), *y = NULL;
                    if (lab == 0) y = signs(dt, 2, nc);
                    if (lab == 1) {
                        td_tensor *s = signs(dt, 2, nc);
                        ck_assert_int_eq(td_cast_raw(s, TD_INT64, &y), TD_OK);
                        td_tensor_release(s);
                    }
                    if (lab == 2) y = signs(dt, 1, &C); /* broadcast over rows */
                    mg_case c = {2, r, 0, m ? 0.5 : 1.0, 0, false};
                    td_tensor *in[2] = {x, y};
                    snprintf(what, sizeof what, "hinge_embedding %s %s margin %g labels %d",
                             td_dtype_name(dt), td_reduction_name(r), c.margin, lab);
                    parity(what, run_mg, &c, 2, in, 1u);
                    td_tensor_release(x);
                    td_tensor_release(y);
                }
            /* cosine_embedding: margins (some negatives active), a label of 0, unbatched */
            for (int m = 0; m < 2; m++)
                for (int ub = 0; ub < 2; ub++) {
                    td_tensor *a = ub ? randn(dt, 1, &D) : randn(dt, 2, nd);
                    td_tensor *b = ub ? randn(dt, 1, &D) : randn(dt, 2, nd);
                    td_tensor *y = ub ? signs(dt, 0, NULL) : signs(dt, 1, &n1);
                    if (!ub) ck_assert_int_eq(td_set(y, 1, (int64_t[]){5}, 0.0), TD_OK);
                    mg_case c = {3, r, 0, m ? -0.2 : 0.0, 0, false};
                    td_tensor *in[3] = {a, b, y};
                    snprintf(what, sizeof what, "cosine_embedding %s %s margin %g unbatched %d",
                             td_dtype_name(dt), td_reduction_name(r), c.margin, ub);
                    parity(what, run_mg, &c, 3, in, 3u);
                    td_tensor_release(a);
                    td_tensor_release(b);
                    td_tensor_release(y);
                }
            /* margin_ranking: margins, and (N, 1) against (1, D) broadcast */
            for (int m = 0; m < 2; m++)
                for (int bc = 0; bc < 2; bc++) {
                    int64_t col[2] = {N, 1}, row[2] = {1, D};
                    td_tensor *a = bc ? randn(dt, 2, col) : randn(dt, 1, &n1);
                    td_tensor *b = bc ? randn(dt, 2, row) : randn(dt, 1, &n1);
                    td_tensor *y = bc ? signs(dt, 2, nd) : signs(dt, 1, &n1);
                    mg_case c = {4, r, 0, m ? 0.5 : 0.0, 0, false};
                    td_tensor *in[3] = {a, b, y};
                    snprintf(what, sizeof what, "margin_ranking %s %s margin %g broadcast %d",
                             td_dtype_name(dt), td_reduction_name(r), c.margin, bc);
                    parity(what, run_mg, &c, 3, in, 3u);
                    td_tensor_release(a);
                    td_tensor_release(b);
                    td_tensor_release(y);
                }
            /* triplet_margin: p 1, 2, 3 and 1.5, swap, margins, unbatched */
            static const double nps[] = {1, 2, 3, 1.5};
            for (int k = 0; k < 4; k++)
                for (int sw = 0; sw < 2; sw++)
                    for (int ub = 0; ub < 2; ub++) {
                        td_tensor *a = ub ? randn(dt, 1, &D) : randn(dt, 2, nd);
                        td_tensor *p = ub ? randn(dt, 1, &D) : randn(dt, 2, nd);
                        td_tensor *q = ub ? randn(dt, 1, &D) : randn(dt, 2, nd);
                        mg_case c = {5, r, 0, sw ? 0.5 : 1.0, nps[k], sw != 0};
                        td_tensor *in[3] = {a, p, q};
                        snprintf(what, sizeof what,
                                 "triplet_margin %s %s p %g swap %d unbatched %d",
                                 td_dtype_name(dt), td_reduction_name(r), nps[k], sw, ub);
                        parity(what, run_mg, &c, 3, in, 7u);
                        td_tensor_release(a);
                        td_tensor_release(p);
                        td_tensor_release(q);
                    }
        }
}
END_TEST

START_TEST(margin_losses_errors_and_determinism)
{
    const int64_t N = 11, C = 7;
    int64_t nc[2] = {N, C}, n1 = N;
    /* a class index out of range: the CPU's message, found on the device */
    td_tensor *x = randn(TD_FLOAT32, 2, nc), *t = randint(0, C, 1, &n1);
    ck_assert_int_eq(td_set(t, 1, (int64_t[]){6}, (double)C), TD_OK);
    ck_assert_int_eq(td_set(t, 1, (int64_t[]){9}, -3), TD_OK);
    mg_case c = {0, TD_REDUCE_MEAN, 1, 1.0, 0, false};
    td_tensor *in[3] = {x, t, NULL};
    same_error("multi_margin target out of range", run_mg, &c, 3, in);
    td_tensor *ml = multilabel_targets(N, C);
    ck_assert_int_eq(td_set(ml, 2, (int64_t[]){4, 5}, -2), TD_OK);
    ck_assert_int_eq(td_set(ml, 2, (int64_t[]){8, 1}, (double)C), TD_OK);
    mg_case c1 = {1, TD_REDUCE_MEAN, 0, 0, 0, false};
    td_tensor *in1[2] = {x, ml};
    same_error("multilabel_margin target out of range", run_mg, &c1, 2, in1);
    /* reruns give the same bits */
    td_tensor *ml2 = multilabel_targets(N, C), *t2 = randint(0, C, 1, &n1);
    td_tensor *in2[2] = {x, ml2};
    same_bits_twice("multilabel_margin", run_mg, &c1, 2, in2);
    td_tensor *in3[3] = {x, t2, NULL};
    mg_case c3 = {0, TD_REDUCE_SUM, 2, 1.0, 0, false};
    same_bits_twice("multi_margin", run_mg, &c3, 3, in3);
    td_tensor *ts[] = {x, t, ml, ml2, t2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- ctc_loss ------------------------------------------------------------------ */

typedef struct {
    td_ctc_options o;
} ctc_case;

/* in: log_probs, targets, input_lengths, target_lengths */
static td_status run_ctc(const void *ctx, td_tensor **in, td_tensor **out)
{
    const ctc_case *c = ctx;
    return td_ctc_loss(in[0], in[1], in[2], in[3], &c->o, out);
}

static td_tensor *longs(int n, const double *v)
{
    int64_t s = n;
    td_tensor *t = NULL;
    ck_assert_int_eq(td_from_data(1, &s, TD_INT64, v, &t), TD_OK);
    return t;
}

/* log_softmax of scaled noise, (T, N, C) or (T, C) */
static td_tensor *log_probs(td_dtype dt, int ndim, const int64_t *shape)
{
    td_tensor *x = scaled(randn(dt, ndim, shape), 2), *lp = NULL;
    ck_assert_int_eq(td_log_softmax(x, -1, &lp), TD_OK);
    td_tensor_release(x);
    return lp;
}

START_TEST(ctc_every_option)
{
    enum { T = 13, N = 5, C = 6, S = 5 };
    int64_t shape[3] = {T, N, C};
    /* padded targets: repeated labels (the skip transition is barred),
     * an empty target, a target too long for its input (inf, or 0 with
     * zero_infinity), a sample of input length 0 */
    static const double tl_v[N] = {5, 2, 0, 5, 3};
    static const double il_v[N] = {13, 9, 6, 4, 0};
    char what[160];
    for (int d = 0; d < 2; d++)
        for (int red = 0; red < 3; red++)
            for (int zi = 0; zi < 2; zi++)
                for (int bl = 0; bl < 2; bl++)
                    for (int layout = 0; layout < 3;
                         layout++) { /* padded, concatenated, unbatched */
                        td_dtype dt = float_dtypes[d];
                        int64_t blank = bl ? C - 1 : 0, lo = bl ? 0 : 1, hi = bl ? C - 1 : C;
                        td_tensor *lp = NULL, *tg = NULL, *il = NULL, *tl = NULL;
                        if (layout == 2) {
                            int64_t s2[2] = {T, C}, s1 = 4;
                            lp = log_probs(dt, 2, s2);
                            tg = randint(lo, hi, 1, &s1);
                            ck_assert_int_eq(td_set(tg, 1, (int64_t[]){2}, td_get_flat(tg, 1)),
                                             TD_OK); /* a repeat */
                            il = longs(1, (double[]){11});
                            tl = longs(1, (double[]){4});
                        } else {
                            lp = log_probs(dt, 3, shape);
                            int64_t ps[2] = {N, S}, cat = 5 + 2 + 0 + 5 + 3;
                            tg = layout == 0 ? randint(lo, hi, 2, ps) : randint(lo, hi, 1, &cat);
                            /* sample 0 repeats a label; sample 3 (5 labels, 4 steps) cannot align
                             */
                            if (layout == 0)
                                ck_assert_int_eq(
                                    td_set(tg, 2, (int64_t[]){0, 2}, td_get_flat(tg, 1)), TD_OK);
                            else
                                ck_assert_int_eq(td_set(tg, 1, (int64_t[]){2}, td_get_flat(tg, 1)),
                                                 TD_OK);
                            il = longs(N, il_v);
                            tl = longs(N, tl_v);
                        }
                        ctc_case c = {{blank, reductions[red], zi != 0}};
                        td_tensor *in[4] = {lp, tg, il, tl};
                        snprintf(what, sizeof what,
                                 "ctc_loss %s %s zero_infinity %d blank %lld layout %d",
                                 td_dtype_name(dt), td_reduction_name(c.o.reduction), zi,
                                 (long long)blank, layout);
                        parity(what, run_ctc, &c, 4, in, 1u);
                        td_tensor *ts[] = {lp, tg, il, tl};
                        for (int i = 0; i < 4; i++) td_tensor_release(ts[i]);
                    }
}
END_TEST

START_TEST(ctc_long_targets_errors_and_determinism)
{
    /* more positions (2S + 1 = 301) than a block has threads */
    enum { T = 400, N = 3, C = 20, S = 150 };
    int64_t shape[3] = {T, N, C}, ps[2] = {N, S};
    td_tensor *lp = log_probs(TD_FLOAT64, 3, shape), *tg = randint(1, C, 2, ps);
    td_tensor *il = longs(N, (double[]){400, 350, 320}), *tl = longs(N, (double[]){150, 140, 7});
    ctc_case c = {{0, TD_REDUCE_MEAN, false}};
    td_tensor *in[4] = {lp, tg, il, tl};
    parity("ctc_loss S = 150 float64", run_ctc, &c, 4, in, 1u);
    same_bits_twice("ctc_loss S = 150", run_ctc, &c, 4, in);
    td_tensor *lp32 = NULL;
    ck_assert_int_eq(td_cast_raw(lp, TD_FLOAT32, &lp32), TD_OK);
    in[0] = lp32;
    parity("ctc_loss S = 150 float32", run_ctc, &c, 4, in, 1u);
    /* a blank inside a target, and a label out of range: the CPU's errors */
    ck_assert_int_eq(td_set(tg, 2, (int64_t[]){1, 3}, 0), TD_OK);
    same_error("ctc_loss blank in a target", run_ctc, &c, 4, in);
    ck_assert_int_eq(td_set(tg, 2, (int64_t[]){1, 3}, C), TD_OK);
    same_error("ctc_loss target out of range", run_ctc, &c, 4, in);
    td_tensor *bad = longs(N, (double[]){401, 350, 320});
    in[2] = bad;
    same_error("ctc_loss input length above T", run_ctc, &c, 4, in);
    td_tensor *ts[] = {lp, lp32, tg, il, tl, bad};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------- */

static Suite *loss2_suite(void)
{
    Suite *s = suite_create("cuda_loss2");
    TCase *tc = tcase_create("margin_ctc");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, margin_losses_every_option);
    tcase_add_test(tc, margin_losses_errors_and_determinism);
    tcase_add_test(tc, ctc_every_option);
    tcase_add_test(tc, ctc_long_targets_errors_and_determinism);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_cuda_suite(loss2_suite, 2718, NULL); }
