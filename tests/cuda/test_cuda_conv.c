/* conv2d (cuDNN), batch_norm, pooling and dropout on CUDA against the CPU
 * backend, as tests/cuda/test_cuda.c does for the core ops: the same
 * random inputs on both devices through the runtime's front-ends and
 * autograd, outputs and every gradient compared by normalised MSE (1e-7
 * float32, 1e-15 float64), NaN only where the CPU has it; running
 * statistics compared after the update; sentinel guards around outputs
 * written straight from the backend table; two runs give the same bits.
 *
 * cuDNN must load (dlopen, no GPU needed) on every machine that built the
 * CUDA backend; the rest exits 77 (skipped) where no GPU is usable. */
#include "internal.h"
#include "cuda_check.h"
#include "cuda/nn.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const td_device GPU = {TD_CUDA, 0};

static const td_dtype float_dtypes[] = {TD_FLOAT32, TD_FLOAT64};

/* ---- one op, both devices, with gradients ---------------------------------------- */

#define MAX_IN 5
typedef td_status (*layer_fn)(td_tensor **in, const void *ctx, td_tensor **out);

typedef struct {
    td_tensor *y;          /* the CUDA output */
    td_tensor *in[MAX_IN]; /* the CUDA inputs (leaves) */
} gpu_run;

/* runs f on cpu_in (leaves; those requiring grad get gradients) and on
 * their copies on the GPU; compares the outputs and, through the loss
 * sum(y * r) with the same random r, every gradient. Returns the GPU run
 * for further checks (release with drop_run). */
static gpu_run compare_op(const char *what, int nin, td_tensor **cpu_in, layer_fn f,
                          const void *ctx)
{
    gpu_run g = {0};
    char buf[160];
    for (int i = 0; i < nin; i++) {
        if (!cpu_in[i]) continue;
        td_tensor *d = NULL;
        ck_assert_int_eq(td_detach(cpu_in[i], &d), TD_OK);
        g.in[i] = gpu(d);
        td_tensor_release(d);
        if (cpu_in[i]->requires_grad) ck_assert_int_eq(td_set_requires_grad(g.in[i], true), TD_OK);
    }
    td_tensor *yc = NULL;
    ck_assert_msg(f(cpu_in, ctx, &yc) == TD_OK, "%s on cpu: %s", what, td_last_error());
    ck_assert_msg(f(g.in, ctx, &g.y) == TD_OK, "%s on cuda: %s", what, td_last_error());
    expect_close_keep(what, yc, g.y);
    bool any = false;
    for (int i = 0; i < nin; i++) any = any || (cpu_in[i] && cpu_in[i]->requires_grad);
    if (any) {
        td_tensor *r = randn(yc->dtype, yc->ndim, yc->shape), *rg = gpu(r);
        td_tensor *pc = NULL, *pg = NULL, *lc = NULL, *lg = NULL;
        ck_assert_int_eq(td_binary(TD_MUL, yc, r, &pc), TD_OK);
        ck_assert_int_eq(td_binary(TD_MUL, g.y, rg, &pg), TD_OK);
        ck_assert_int_eq(td_sum(pc, 0, true, false, &lc), TD_OK);
        ck_assert_int_eq(td_sum(pg, 0, true, false, &lg), TD_OK);
        ck_assert_msg(td_backward(lc, NULL, false) == TD_OK, "%s backward on cpu: %s", what,
                      td_last_error());
        ck_assert_msg(td_backward(lg, NULL, false) == TD_OK, "%s backward on cuda: %s", what,
                      td_last_error());
        for (int i = 0; i < nin; i++) {
            if (!cpu_in[i] || !cpu_in[i]->requires_grad) continue;
            snprintf(buf, sizeof buf, "%s: gradient of input %d", what, i);
            expect_close_keep(buf, cpu_in[i]->grad, g.in[i]->grad);
        }
        td_tensor *ts[] = {r, rg, pc, pg, lc, lg};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
    }
    td_tensor_release(yc);
    return g;
}

static void drop_run(gpu_run *g, int nin)
{
    td_tensor_release(g->y);
    for (int i = 0; i < nin; i++) td_tensor_release(g->in[i]);
}

static td_tensor *leaf(td_dtype dt, int ndim, const int64_t *shape, bool grad)
{
    td_tensor *t = randn(dt, ndim, shape);
    if (grad) ck_assert_int_eq(td_set_requires_grad(t, true), TD_OK);
    return t;
}

/* ---- cuDNN loads ------------------------------------------------------------------ */

START_TEST(cudnn_is_loaded)
{
    ck_assert_msg(td_cudnn_load() == TD_OK, "%s", td_last_error());
    ck_assert_uint_ge(td_cudnn_version(), 90000);
}
END_TEST

/* ---- conv2d ------------------------------------------------------------------------ */

typedef struct {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups;
    bool bias;
} conv_case;

static const conv_case conv_cases[] = {
    {2, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},    /* same padding */
    {3, 8, 16, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, false}, /* strided, as ResNet's downsampling */
    {2, 6, 12, 10, 9, 3, 2, 1, 2, 2, 0, 2, 3, 3, true},   /* groups, dilation, uneven everything */
    {2, 8, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, true},   /* depthwise */
    {4, 16, 8, 8, 32, 1, 1, 2, 2, 0, 0, 1, 1, 1, false},  /* 1x1 shortcut */
    {1, 3, 32, 32, 64, 7, 7, 2, 2, 3, 3, 1, 1, 1, false}, /* ImageNet stem */
    {5, 4, 7, 7, 6, 5, 5, 1, 1, 0, 0, 1, 1, 2, true},     /* kernel nearly the input */
    {2, 3, 5, 5, 2, 3, 3, 3, 3, 2, 2, 2, 2, 1, true},     /* padding beyond the dilated reach */
};

static td_status conv_op(td_tensor **in, const void *ctx, td_tensor **out)
{
    const conv_case *k = ctx;
    td_conv2d_opts o = TD_CONV2D_OPTS_DEFAULT;
    o.bias = in[2];
    o.stride[0] = k->sh, o.stride[1] = k->sw;
    o.padding[0] = k->ph, o.padding[1] = k->pw;
    o.dilation[0] = k->dh, o.dilation[1] = k->dw;
    o.groups = k->groups;
    return td_conv2d(in[0], in[1], &o, out);
}

START_TEST(conv2d_shapes_options_and_gradients)
{
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
            const conv_case *k = &conv_cases[i];
            int64_t xs[4] = {k->n, k->c, k->h, k->w},
                    ws[4] = {k->o, k->c / k->groups, k->kh, k->kw}, bs[1] = {k->o};
            td_tensor *in[3] = {leaf(float_dtypes[d], 4, xs, true),
                                leaf(float_dtypes[d], 4, ws, true),
                                k->bias ? leaf(float_dtypes[d], 1, bs, true) : NULL};
            char what[96];
            snprintf(what, sizeof what, "conv2d case %zu %s", i, td_dtype_name(float_dtypes[d]));
            gpu_run g = compare_op(what, 3, in, conv_op, k);
            drop_run(&g, 3);
            for (int j = 0; j < 3; j++) td_tensor_release(in[j]);
        }
}
END_TEST

START_TEST(conv2d_only_some_gradients)
{
    /* weights frozen: backward data alone; input a constant: backward weights alone */
    const conv_case *k = &conv_cases[2];
    int64_t xs[4] = {k->n, k->c, k->h, k->w}, ws[4] = {k->o, k->c / k->groups, k->kh, k->kw},
            bs[1] = {k->o};
    for (int which = 0; which < 2; which++) {
        td_tensor *in[3] = {leaf(TD_FLOAT32, 4, xs, which == 0),
                            leaf(TD_FLOAT32, 4, ws, which == 1),
                            leaf(TD_FLOAT32, 1, bs, which == 1)};
        gpu_run g =
            compare_op(which ? "conv2d weights only" : "conv2d input only", 3, in, conv_op, k);
        drop_run(&g, 3);
        for (int j = 0; j < 3; j++) td_tensor_release(in[j]);
    }
}
END_TEST

START_TEST(conv2d_unbatched_and_empty_batch)
{
    conv_case k = {0, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true};
    int64_t xs3[3] = {3, 6, 6}, xs0[4] = {0, 3, 6, 6}, ws[4] = {4, 3, 3, 3}, bs[1] = {4};
    td_tensor *in[3] = {leaf(TD_FLOAT32, 3, xs3, true), leaf(TD_FLOAT32, 4, ws, true),
                        leaf(TD_FLOAT32, 1, bs, true)};
    gpu_run g = compare_op("conv2d unbatched (C, H, W)", 3, in, conv_op, &k);
    drop_run(&g, 3);
    td_tensor_release(in[0]);
    in[0] = leaf(TD_FLOAT32, 4, xs0, true);
    g = compare_op("conv2d empty batch", 3, in, conv_op, &k);
    drop_run(&g, 3);
    for (int j = 0; j < 3; j++) td_tensor_release(in[j]);
}
END_TEST

START_TEST(conv2d_mixed_devices_refused)
{
    int64_t xs[4] = {1, 2, 4, 4}, ws[4] = {2, 2, 3, 3};
    td_tensor *x = randn(TD_FLOAT32, 4, xs), *w = randn(TD_FLOAT32, 4, ws), *gx = gpu(x), *y = NULL;
    td_conv2d_opts o = TD_CONV2D_OPTS_DEFAULT;
    ck_assert_int_ne(td_conv2d(gx, w, &o, &y), TD_OK);
    ck_assert_str_eq(td_last_error(),
                     "expected all tensors on the same device, got cuda:0 and cpu");
    td_clear_error();
    td_tensor *ts[] = {x, w, gx};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

START_TEST(conv2d_deterministic)
{
    const conv_case *k = &conv_cases[1];
    int64_t xs[4] = {k->n, k->c, k->h, k->w}, ws[4] = {k->o, k->c / k->groups, k->kh, k->kw};
    td_tensor *x = randn(TD_FLOAT32, 4, xs), *w = randn(TD_FLOAT32, 4, ws), *gx = gpu(x),
              *gw = gpu(w);
    td_tensor *ys[2] = {0}, *gxs[2] = {0}, *gws[2] = {0};
    for (int run = 0; run < 2; run++) {
        td_tensor *lx = NULL, *lw = NULL, *s = NULL;
        ck_assert_int_eq(td_detach(gx, &lx), TD_OK);
        ck_assert_int_eq(td_detach(gw, &lw), TD_OK);
        ck_assert_int_eq(td_set_requires_grad(lx, true), TD_OK);
        ck_assert_int_eq(td_set_requires_grad(lw, true), TD_OK);
        td_tensor *in[3] = {lx, lw, NULL};
        ck_assert_int_eq(conv_op(in, k, &ys[run]), TD_OK);
        ck_assert_int_eq(td_sum(ys[run], 0, true, false, &s), TD_OK);
        ck_assert_int_eq(td_backward(s, NULL, false), TD_OK);
        td_tensor_retain(gxs[run] = lx->grad);
        td_tensor_retain(gws[run] = lw->grad);
        td_tensor_release(s);
        td_tensor_release(lx);
        td_tensor_release(lw);
    }
    same_bits("conv2d forward", ys[0], ys[1]);
    same_bits("conv2d backward data", gxs[0], gxs[1]);
    same_bits("conv2d backward weights", gws[0], gws[1]);
    td_tensor *ts[] = {x, w, gx, gw, ys[0], ys[1], gxs[0], gxs[1], gws[0], gws[1]};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- batch norm ------------------------------------------------------------------------ */

typedef struct {
    bool training;
    double momentum, eps;
} bn_case;

/* in: x, weight, bias, running_mean, running_var */
static td_status bn_op(td_tensor **in, const void *ctx, td_tensor **out)
{
    const bn_case *k = ctx;
    td_batch_norm_opts o = TD_BATCH_NORM_OPTS_DEFAULT;
    o.weight = in[1];
    o.bias = in[2];
    o.training = k->training;
    o.momentum = k->momentum;
    o.eps = k->eps;
    return td_batch_norm(in[0], in[3], in[4], &o, out);
}

START_TEST(batch_norm_train_eval_running_stats)
{
    int64_t shapes[3][4] = {{16, 5, 0, 0}, {4, 6, 33, 0}, {8, 7, 9, 11}};
    int nds[3] = {2, 3, 4};
    for (int d = 0; d < 2; d++)
        for (int s = 0; s < 3; s++)
            for (int mode = 0; mode < 4; mode++) {
                /* 0 train affine, 1 train without running stats or affine, 2 eval, 3 train far from
                 * 0 */
                td_dtype dt = float_dtypes[d];
                int64_t c = shapes[s][1];
                bn_case k = {mode != 2, 0.1 + 0.2 * mode, 1e-5};
                td_tensor *in[5] = {leaf(dt, nds[s], shapes[s], true), NULL, NULL, NULL, NULL};
                if (mode != 1) {
                    in[1] = leaf(dt, 1, &c, true);
                    in[2] = leaf(dt, 1, &c, true);
                    td_tensor *v = randn(dt, 1, &c);
                    in[3] = randn(dt, 1, &c);
                    ck_assert_int_eq(td_unary(TD_ABS, v, &in[4]), TD_OK); /* a variance */
                    td_tensor_release(v);
                }
                if (mode == 3) { /* mean 1000, spread 1: the statistics must not cancel */
                    td_tensor *far = NULL;
                    ck_assert_int_eq(td_binary_scalar(TD_ADD, in[0], 1000.0, false, &far), TD_OK);
                    td_tensor *dx = NULL;
                    ck_assert_int_eq(td_detach(far, &dx), TD_OK);
                    ck_assert_int_eq(td_set_requires_grad(dx, true), TD_OK);
                    td_tensor_release(far);
                    td_tensor_release(in[0]);
                    in[0] = dx;
                }
                char what[96];
                snprintf(what, sizeof what, "batch_norm %dd mode %d %s", nds[s], mode,
                         td_dtype_name(dt));
                gpu_run g = compare_op(what, 5, in, bn_op, &k);
                if (in[3]) {
                    char w2[128];
                    snprintf(w2, sizeof w2, "%s running_mean", what);
                    expect_close_keep(w2, in[3], g.in[3]);
                    snprintf(w2, sizeof w2, "%s running_var", what);
                    expect_close_keep(w2, in[4], g.in[4]);
                }
                drop_run(&g, 5);
                for (int j = 0; j < 5; j++) td_tensor_release(in[j]);
            }
}
END_TEST

START_TEST(batch_norm_strided_running_stats)
{
    /* running_mean and running_var as strided views of one buffer, on each device */
    int64_t xs[4] = {4, 3, 5, 5}, six = 6, three = 3, two = 2;
    td_tensor *x = randn(TD_FLOAT32, 4, xs), *gxx = gpu(x), *buf = NULL, *gbuf = NULL;
    ck_assert_int_eq(td_full_on(1, &six, 0.5, TD_FLOAT32, TD_DEVICE_CPU, &buf), TD_OK);
    gbuf = gpu(buf);
    td_tensor *rm = NULL, *rv = NULL, *grm = NULL, *grv = NULL, *yc = NULL, *yg = NULL;
    ck_assert_int_eq(td_make_view(buf, 1, &three, &two, 0, &rm), TD_OK);
    ck_assert_int_eq(td_make_view(buf, 1, &three, &two, 1, &rv), TD_OK);
    ck_assert_int_eq(td_make_view(gbuf, 1, &three, &two, 0, &grm), TD_OK);
    ck_assert_int_eq(td_make_view(gbuf, 1, &three, &two, 1, &grv), TD_OK);
    bn_case k = {true, 0.3, 1e-3};
    td_tensor *in[5] = {x, NULL, NULL, rm, rv}, *gin[5] = {gxx, NULL, NULL, grm, grv};
    ck_assert_int_eq(bn_op(in, &k, &yc), TD_OK);
    ck_assert_msg(bn_op(gin, &k, &yg) == TD_OK, "%s", td_last_error());
    expect_close_keep("batch_norm with strided running stats", yc, yg);
    expect_close_keep("strided running stats (the whole buffer)", buf, gbuf);
    td_tensor *ts[] = {x, gxx, buf, gbuf, rm, rv, grm, grv, yc, yg};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

START_TEST(batch_norm_deterministic)
{
    int64_t xs[4] = {32, 16, 17, 17}, c = 16;
    td_tensor *x = randn(TD_FLOAT32, 4, xs), *gx = gpu(x), *w = randn(TD_FLOAT32, 1, &c),
              *gw = gpu(w);
    td_tensor *ys[2] = {0}, *gxs[2] = {0}, *gws[2] = {0};
    for (int run = 0; run < 2; run++) {
        td_tensor *lx = NULL, *lw = NULL, *s = NULL;
        ck_assert_int_eq(td_detach(gx, &lx), TD_OK);
        ck_assert_int_eq(td_detach(gw, &lw), TD_OK);
        ck_assert_int_eq(td_set_requires_grad(lx, true), TD_OK);
        ck_assert_int_eq(td_set_requires_grad(lw, true), TD_OK);
        td_tensor *in[5] = {lx, lw, NULL, NULL, NULL};
        bn_case k = {true, 0.1, 1e-5};
        ck_assert_int_eq(bn_op(in, &k, &ys[run]), TD_OK);
        td_tensor *sq = NULL;
        ck_assert_int_eq(td_binary(TD_MUL, ys[run], ys[run], &sq), TD_OK);
        ck_assert_int_eq(td_sum(sq, 0, true, false, &s), TD_OK);
        ck_assert_int_eq(td_backward(s, NULL, false), TD_OK);
        td_tensor_retain(gxs[run] = lx->grad);
        td_tensor_retain(gws[run] = lw->grad);
        td_tensor *ts[] = {s, sq, lx, lw};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
    }
    same_bits("batch_norm forward", ys[0], ys[1]);
    same_bits("batch_norm input gradient", gxs[0], gxs[1]);
    same_bits("batch_norm weight gradient", gws[0], gws[1]);
    td_tensor *ts[] = {x, gx, w, gw, ys[0], ys[1], gxs[0], gxs[1], gws[0], gws[1]};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- pooling ------------------------------------------------------------------------ */

typedef struct {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    td_pool2d_opts o;
    int64_t oh, ow; /* adaptive */
} pool_case;

static td_status pool_op(td_tensor **in, const void *ctx, td_tensor **out)
{
    const pool_case *k = ctx;
    if (k->kind == 0) return td_max_pool2d(in[0], &k->o, out);
    if (k->kind == 1) return td_avg_pool2d(in[0], &k->o, out);
    return td_adaptive_avg_pool2d(in[0], k->oh, k->ow, out);
}

/* kernel, stride, padding, dilation, ceil_mode, count_include_pad */
#define P(kh, kw, sh, sw, ph, pw, dh, dw, ceil, inc)                                               \
    {                                                                                              \
        {kh, kw}, {sh, sw}, {ph, pw}, {dh, dw}, ceil, inc                                          \
    }
static const td_pool2d_opts max_cases[] = {
    P(2, 2, 2, 2, 0, 0, 1, 1, false, true), /* the common 2x2 */
    P(3, 3, 2, 2, 1, 1, 1, 1, false, true), /* ResNet's stem: overlapping windows */
    P(3, 3, 2, 2, 1, 1, 1, 1, true, true),  /* ... with ceil_mode */
    P(3, 2, 1, 2, 1, 0, 2, 3, false, true), /* dilation, uneven */
    P(2, 3, 3, 1, 1, 1, 1, 1, true, true),  /* stride beyond the kernel */
    P(5, 5, 1, 1, 2, 2, 1, 1, false, true), /* every input in 25 windows */
};
static const td_pool2d_opts avg_cases[] = {
    P(2, 2, 2, 2, 0, 0, 1, 1, false, true),  P(3, 3, 2, 2, 1, 1, 1, 1, false, true),
    P(3, 3, 2, 2, 1, 1, 1, 1, false, false), P(3, 3, 2, 2, 1, 1, 1, 1, true, true),
    P(3, 3, 2, 2, 1, 1, 1, 1, true, false),  P(4, 3, 3, 2, 2, 1, 1, 1, true, false),
    P(3, 3, 1, 1, 1, 1, 1, 1, false, true),
};
#undef P

static void pool_check(const char *what, const pool_case *k, td_tensor *x)
{
    td_tensor *in[1] = {x};
    gpu_run g = compare_op(what, 1, in, pool_op, k);
    drop_run(&g, 1);
}

START_TEST(pooling_every_option)
{
    int64_t xs[4] = {2, 3, 13, 14};
    for (int d = 0; d < 2; d++) {
        td_dtype dt = float_dtypes[d];
        char what[96];
        for (size_t i = 0; i < sizeof max_cases / sizeof *max_cases; i++) {
            pool_case k = {0, max_cases[i], 0, 0};
            td_tensor *x = leaf(dt, 4, xs, true);
            snprintf(what, sizeof what, "max_pool2d case %zu %s", i, td_dtype_name(dt));
            pool_check(what, &k, x);
            td_tensor_release(x);
        }
        for (size_t i = 0; i < sizeof avg_cases / sizeof *avg_cases; i++) {
            pool_case k = {1, avg_cases[i], 0, 0};
            td_tensor *x = leaf(dt, 4, xs, true);
            snprintf(what, sizeof what, "avg_pool2d case %zu %s", i, td_dtype_name(dt));
            pool_check(what, &k, x);
            td_tensor_release(x);
        }
        int64_t outs[][2] = {{1, 1}, {4, 4}, {5, 3}, {13, 14}, {20, 17}, {7, 1}};
        for (size_t i = 0; i < sizeof outs / sizeof *outs; i++) {
            pool_case k = {2, avg_cases[0], outs[i][0], outs[i][1]}; /* the options are unused */
            td_tensor *x = leaf(dt, 4, xs, true);
            snprintf(what, sizeof what, "adaptive_avg_pool2d %lldx%lld %s", (long long)outs[i][0],
                     (long long)outs[i][1], td_dtype_name(dt));
            pool_check(what, &k, x);
            td_tensor_release(x);
        }
    }
    /* unbatched (C, H, W) */
    int64_t s3[3] = {3, 8, 9};
    pool_case k = {0, max_cases[1], 0, 0};
    td_tensor *x = leaf(TD_FLOAT32, 3, s3, true);
    pool_check("max_pool2d unbatched", &k, x);
    td_tensor_release(x);
}
END_TEST

START_TEST(max_pool_ties_and_nan)
{
    /* values on a coarse grid (many ties in each window), -inf, and NaNs:
     * the first of equal maxima wins, a NaN wins over everything */
    int64_t xs[4] = {2, 2, 11, 12};
    for (int d = 0; d < 2; d++) {
        td_tensor *r = randn(float_dtypes[d], 4, xs), *x = NULL;
        int64_t n = td_numel(r);
        double *v = malloc(sizeof(double) * (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            v[i] = floor(td_get_flat(r, i));
            if (i % 37 == 5) v[i] = NAN;
            if (i % 41 == 7) v[i] = -INFINITY;
        }
        ck_assert_int_eq(td_from_data(4, xs, float_dtypes[d], v, &x), TD_OK);
        free(v);
        ck_assert_int_eq(td_set_requires_grad(x, true), TD_OK);
        for (size_t i = 0; i < sizeof max_cases / sizeof *max_cases; i++) {
            pool_case k = {0, max_cases[i], 0, 0};
            char what[96];
            snprintf(what, sizeof what, "max_pool2d ties and NaN case %zu %s", i,
                     td_dtype_name(float_dtypes[d]));
            td_tensor_release(x->grad);
            x->grad = NULL;
            pool_check(what, &k, x);
        }
        td_tensor_release(r);
        td_tensor_release(x);
    }
}
END_TEST

START_TEST(pooling_backward_deterministic)
{
    int64_t xs[4] = {8, 16, 32, 32};
    td_tensor *x = randn(TD_FLOAT32, 4, xs), *gxx = gpu(x);
    pool_case ks[2] = {{0, max_cases[5], 0, 0}, {1, avg_cases[6], 0, 0}};
    for (int i = 0; i < 2; i++) {
        td_tensor *grads[2] = {0};
        for (int run = 0; run < 2; run++) {
            td_tensor *lx = NULL, *y = NULL, *s = NULL, *sq = NULL;
            ck_assert_int_eq(td_detach(gxx, &lx), TD_OK);
            ck_assert_int_eq(td_set_requires_grad(lx, true), TD_OK);
            td_tensor *in[1] = {lx};
            ck_assert_int_eq(pool_op(in, &ks[i], &y), TD_OK);
            ck_assert_int_eq(td_binary(TD_MUL, y, y, &sq), TD_OK);
            ck_assert_int_eq(td_sum(sq, 0, true, false, &s), TD_OK);
            ck_assert_int_eq(td_backward(s, NULL, false), TD_OK);
            td_tensor_retain(grads[run] = lx->grad);
            td_tensor *ts[] = {lx, y, s, sq};
            for (size_t j = 0; j < sizeof ts / sizeof *ts; j++) td_tensor_release(ts[j]);
        }
        same_bits(i ? "avg_pool2d backward" : "max_pool2d backward", grads[0], grads[1]);
        td_tensor_release(grads[0]);
        td_tensor_release(grads[1]);
    }
    td_tensor_release(x);
    td_tensor_release(gxx);
}
END_TEST

/* ---- dropout ------------------------------------------------------------------------------ */

START_TEST(dropout_same_mask_as_cpu)
{
    int64_t n = 100003;
    for (int d = 0; d < 2; d++) {
        td_dtype dt = float_dtypes[d];
        td_tensor *x = randn(dt, 1, &n), *gx = gpu(x), *yc = NULL, *yg = NULL;
        ck_assert_int_eq(td_empty_like(x, &yc), TD_OK);
        ck_assert_int_eq(td_empty_like(gx, &yg), TD_OK);
        double ps[3] = {0.1, 0.5, 1.0};
        for (int i = 0; i < 3; i++) {
            uint64_t key = 0x1234567890abcdefull + (uint64_t)i;
            td_cpu_backend()->layers->dropout(dt, td_data_ptr(yc), td_data_ptr(x), n, key, ps[i]);
            td_backend_for(GPU)->layers->dropout(dt, td_data_ptr(yg), td_data_ptr(gx), n, key,
                                                 ps[i]);
            expect_close_keep("dropout", yc, yg);
        }
        td_tensor *ts[] = {x, gx, yc, yg};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
    }
}
END_TEST

/* ---- guards: no write outside the output ----------------------------------------------------- */

START_TEST(guards_around_outputs)
{
    const td_backend *be = td_backend_for(GPU);
    /* conv: y, then gx, gw, gb */
    td_conv_args a = {TD_FLOAT32, 3, 4, 9, 8, 6, 3, 3,     5,     4,
                      2,          2, 1, 1, 1, 1, 2, false, false, false};
    int64_t xs[4] = {3, 4, 9, 8}, ws[4] = {6, 2, 3, 3}, ys[4] = {3, 6, 5, 4}, o = 6;
    td_tensor *x = randn(TD_FLOAT32, 4, xs), *w = randn(TD_FLOAT32, 4, ws),
              *b = randn(TD_FLOAT32, 1, &o);
    td_tensor *gy = randn(TD_FLOAT32, 4, ys);
    td_tensor *gxx = gpu(x), *gww = gpu(w), *gb = gpu(b), *ggy = gpu(gy), *v = NULL, *buf = NULL;
    int64_t ny = 3 * 6 * 5 * 4, nx = 3 * 4 * 9 * 8, nw = 6 * 2 * 3 * 3;
    buf = guarded(ny, &v);
    ck_assert_int_eq(
        be->conv->forward(&a, td_data_ptr(gxx), td_data_ptr(gww), td_data_ptr(gb), td_data_ptr(v)),
        TD_OK);
    check_guards("conv2d forward", buf, ny);
    td_tensor_release(v);
    td_tensor_release(buf);
    buf = guarded(nx, &v);
    ck_assert_int_eq(
        be->conv->backward_data(&a, td_data_ptr(ggy), td_data_ptr(gww), td_data_ptr(v)), TD_OK);
    check_guards("conv2d backward data", buf, nx);
    td_tensor_release(v);
    td_tensor_release(buf);
    buf = guarded(nw, &v);
    td_tensor *v2 = NULL, *buf2 = guarded(o, &v2);
    ck_assert_int_eq(be->conv->backward_weights(&a, td_data_ptr(gxx), td_data_ptr(ggy),
                                                td_data_ptr(v), td_data_ptr(v2)),
                     TD_OK);
    check_guards("conv2d backward weights", buf, nw);
    check_guards("conv2d bias gradient", buf2, o);
    td_tensor *ts[] = {v, buf, v2, buf2, x, w, b, gy, gxx, gww, gb, ggy};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);

    /* pooling: y (and the argmax), then gx */
    int64_t ps[4] = {2, 3, 11, 10};
    td_tensor *px = randn(TD_FLOAT32, 4, ps), *gpx = gpu(px);
    td_pool2d_args pa = {TD_POOL_MAX, TD_FLOAT32, 2, 3, 11, 10, 6,    5,     3, 3,
                         2,           2,          1, 1, 1,  1,  true, false, 0};
    int64_t npy = 2 * 3 * 6 * 5, npx = 2 * 3 * 11 * 10;
    int64_t is[1] = {npy};
    td_tensor *idx = NULL;
    ck_assert_int_eq(td_empty_on(1, is, TD_INT64, GPU, &idx), TD_OK);
    for (int kind = 0; kind < 3; kind++) {
        pa.kind = (td_pool_kind)kind;
        buf = guarded(npy, &v);
        be->layers->pool2d(&pa, td_data_ptr(gpx), td_data_ptr(v),
                           kind == 0 ? td_data_ptr(idx) : NULL);
        check_guards("pool2d", buf, npy);
        td_tensor *g2 = NULL, *gbuf = guarded(npx, &g2);
        be->layers->pool2d_backward(&pa, td_data_ptr(v), kind == 0 ? td_data_ptr(idx) : NULL,
                                    td_data_ptr(g2));
        check_guards("pool2d backward", gbuf, npx);
        td_tensor_release(g2);
        td_tensor_release(gbuf);
        td_tensor_release(v);
        td_tensor_release(buf);
    }
    /* batch norm apply */
    buf = guarded(npx, &v);
    int64_t three = 3;
    td_tensor *sc = NULL, *sh = NULL;
    ck_assert_int_eq(td_full_on(1, &three, 2.0, TD_FLOAT64, GPU, &sc), TD_OK);
    ck_assert_int_eq(td_full_on(1, &three, 0.5, TD_FLOAT64, GPU, &sh), TD_OK);
    be->layers->bn_apply(TD_FLOAT32, td_data_ptr(gpx), td_data_ptr(v), 2, 3, 110, td_data_ptr(sc),
                         td_data_ptr(sh));
    check_guards("batch_norm apply", buf, npx);
    td_tensor *ts2[] = {v, buf, sc, sh, px, gpx, idx};
    for (size_t i = 0; i < sizeof ts2 / sizeof *ts2; i++) td_tensor_release(ts2[i]);
}
END_TEST

static Suite *conv_suite(void)
{
    Suite *s = suite_create("cuda_conv");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, cudnn_is_loaded);
    tcase_add_test(tc, conv2d_shapes_options_and_gradients);
    tcase_add_test(tc, conv2d_only_some_gradients);
    tcase_add_test(tc, conv2d_unbatched_and_empty_batch);
    tcase_add_test(tc, conv2d_mixed_devices_refused);
    tcase_add_test(tc, conv2d_deterministic);
    tcase_add_test(tc, batch_norm_train_eval_running_stats);
    tcase_add_test(tc, batch_norm_strided_running_stats);
    tcase_add_test(tc, batch_norm_deterministic);
    tcase_add_test(tc, pooling_every_option);
    tcase_add_test(tc, max_pool_ties_and_nan);
    tcase_add_test(tc, pooling_backward_deterministic);
    tcase_add_test(tc, dropout_same_mask_as_cpu);
    tcase_add_test(tc, guards_around_outputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* every machine that built the backend must be able to open cuDNN */
    if (td_cudnn_load() != TD_OK) {
        printf("FAILED: %s\n", td_last_error());
        return EXIT_FAILURE;
    }
    char note[64];
    snprintf(note, sizeof note, "(cuDNN %zu loads)", td_cudnn_version());
    return run_cuda_suite(conv_suite, 4321, note);
}
