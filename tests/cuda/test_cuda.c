/* CUDA against CPU, as ggml's test-backend-ops does it: every op the CUDA
 * backend has, run through the runtime's front-ends on the same random
 * inputs on both devices, the CUDA result brought back and compared.
 *
 * - floats: normalised MSE, sum (a - b)^2 / sum a^2, below 1e-7 for
 *   float32 and 1e-15 for float64; a NaN on one side only fails, and
 *   infinities must match; integers and uint8 must be equal
 * - guards: kernels called straight from the backend table write into a
 *   view in the middle of a buffer whose ends hold sentinels; a changed
 *   sentinel is an out-of-bounds write
 * - determinism: reductions and softmax run twice give the same bits
 *
 * Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable, so such a
 * run reports itself skipped, never passed; cuBLAS (opened on first use)
 * must load even then, or the run fails. */
#include "internal.h"
#include "cuda_check.h"
#include "cuda/cuda_internal.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const td_device GPU = {TD_CUDA, 0};

static const td_dtype all_dtypes[] = {TD_FLOAT32, TD_FLOAT64, TD_INT64, TD_UINT8};
static const td_dtype float_dtypes[] = {TD_FLOAT32, TD_FLOAT64};

/* ---- device basics ------------------------------------------------------------ */

START_TEST(round_trip_and_memory)
{
    int64_t s[2] = {37, 53};
    td_tensor *x = randn(TD_FLOAT32, 2, s), *g = gpu(x), *h = host(g);
    ck_assert_int_eq(memcmp(td_data_ptr(x), td_data_ptr(h), 37 * 53 * 4), 0);
    char buf[32];
    ck_assert_str_eq(td_device_str(td_device_of(g), buf, sizeof buf), "cuda:0");
    td_cuda_memory_stats ms;
    ck_assert_int_eq(td_cuda_memory(0, &ms), TD_OK);
    ck_assert_int_ge(ms.live_bytes, 37 * 53 * 4);
    ck_assert_int_ge(ms.peak_bytes, ms.live_bytes);
    ck_assert_int_ge(ms.reserved_bytes, ms.live_bytes);
    /* a mix of devices is refused by name */
    td_tensor *r = NULL;
    ck_assert_int_ne(td_binary(TD_ADD, x, g, &r), TD_OK);
    ck_assert_str_eq(td_last_error(),
                     "expected all tensors on the same device, got cpu and cuda:0");
    td_clear_error();
    /* a freed block comes back from the cache */
    void *p = g->storage->data;
    td_tensor_release(g);
    td_tensor *g2 = gpu(x);
    ck_assert_ptr_eq(g2->storage->data, p);
    td_cuda_empty_cache();
    td_tensor_release(g2);
    td_tensor_release(h);
    td_tensor_release(x);
}
END_TEST

/* ---- copy and fill ---------------------------------------------------------------- */

START_TEST(copy_every_dtype_pair_strided)
{
    int64_t s[3] = {4, 5, 6};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            td_tensor *x = randn(all_dtypes[i], 3, s), *xt = NULL, *g = gpu(x), *gt = NULL,
                      *c = NULL, *d = NULL;
            ck_assert_int_eq(td_transpose(x, 0, 2, &xt), TD_OK);
            ck_assert_int_eq(td_transpose(g, 0, 2, &gt), TD_OK);
            ck_assert_int_eq(td_cast_raw(xt, all_dtypes[j], &c), TD_OK); /* strided source, cast */
            ck_assert_int_eq(td_cast_raw(gt, all_dtypes[j], &d), TD_OK);
            char what[64];
            snprintf(what, sizeof what, "copy %s -> %s", td_dtype_name(all_dtypes[i]),
                     td_dtype_name(all_dtypes[j]));
            expect_close(what, c, d);
            td_tensor_release(c);
            td_tensor_release(xt);
            td_tensor_release(gt);
            td_tensor_release(g);
            td_tensor_release(x);
        }
}
END_TEST

START_TEST(fill_and_copy_into_views)
{
    int64_t s[2] = {9, 11};
    for (int i = 0; i < 4; i++) {
        td_tensor *x = randn(all_dtypes[i], 2, s), *g = gpu(x), *vx = NULL, *vg = NULL;
        ck_assert_int_eq(td_narrow(x, 1, 2, 5, &vx), TD_OK);
        ck_assert_int_eq(td_narrow(g, 1, 2, 5, &vg), TD_OK);
        ck_assert_int_eq(td_fill_(vx, 3.75), TD_OK);
        ck_assert_int_eq(td_fill_(vg, 3.75), TD_OK);
        td_tensor_retain(g);
        expect_close("fill a narrowed view", x, g);
        td_tensor_release(vx);
        td_tensor_release(vg);
        td_tensor_release(g);
        td_tensor_release(x);
    }
}
END_TEST

/* ---- unary and their gradients ----------------------------------------------------- */

START_TEST(unary_ops_and_grads)
{
    int64_t s[2] = {33, 65};
    for (int d = 0; d < 2; d++)
        for (int op = 0; op < TD_NUNARY; op++) {
            td_tensor *r = randn(float_dtypes[d], 2, s), *x = NULL;
            /* log, sqrt, log1p, reciprocal want positive inputs */
            td_tensor *a = NULL;
            ck_assert_int_eq(td_unary(TD_ABS, r, &a), TD_OK);
            ck_assert_int_eq(td_binary_scalar(TD_ADD, a, 0.1, false, &x), TD_OK);
            if (op != TD_LOG && op != TD_SQRT && op != TD_LOG1P && op != TD_RECIPROCAL) {
                td_tensor_release(x);
                td_tensor_retain(x = r);
            }
            td_tensor *g = gpu(x), *yc = NULL, *yg = NULL;
            ck_assert_int_eq(td_unary((td_unary_op)op, x, &yc), TD_OK);
            ck_assert_int_eq(td_unary((td_unary_op)op, g, &yg), TD_OK);
            char what[64];
            snprintf(what, sizeof what, "unary %d %s", op, td_dtype_name(float_dtypes[d]));
            td_tensor_retain(yg);
            expect_close(what, yc, yg);
            /* gradient straight from the table, with and without y */
            td_tensor *gy = randn(float_dtypes[d], 2, s), *ggy = gpu(gy);
            for (int with_y = 0; with_y < 2; with_y++) {
                td_tensor *gxc = NULL, *gxg = NULL;
                ck_assert_int_eq(td_empty_like(x, &gxc), TD_OK);
                ck_assert_int_eq(td_empty_like(g, &gxg), TD_OK);
                double p[TD_OP_MAX_PARAMS];
                td_op_param_values(td_unary_def((td_unary_op)op), p);
                td_cpu_backend()->unary_grad((td_unary_op)op, gxc, x, with_y ? yc : NULL, gy, p);
                td_backend_of(g)->unary_grad((td_unary_op)op, gxg, g, with_y ? yg : NULL, ggy, p);
                snprintf(what, sizeof what, "unary_grad %d %s y=%d", op,
                         td_dtype_name(float_dtypes[d]), with_y);
                expect_close(what, gxc, gxg);
                td_tensor_release(gxc);
            }
            td_tensor_release(gy);
            td_tensor_release(ggy);
            td_tensor_release(yc);
            td_tensor_release(yg);
            td_tensor_release(g);
            td_tensor_release(x);
            td_tensor_release(a);
            td_tensor_release(r);
        }
}
END_TEST

/* ---- binary, broadcasting, comparisons, clamp, where ----------------------------------- */

START_TEST(binary_ops_broadcast)
{
    int64_t sa[3] = {3, 1, 17}, sb[2] = {4, 17};
    for (int d = 0; d < 4; d++)
        for (int op = 0; op < TD_NBINARY; op++) {
            td_dtype dt = all_dtypes[d];
            td_tensor *a = randn(dt, 3, sa), *b = randn(dt, 2, sb);
            if (op == TD_POW) { /* small exponents keep integers exact and floats finite */
                td_tensor *c = NULL;
                ck_assert_int_eq(td_clamp(b, 0, 3, &c), TD_OK);
                td_tensor_release(b);
                b = c;
                if (td_dtype_is_float(dt)) {
                    ck_assert_int_eq(td_unary(TD_ABS, a, &c), TD_OK);
                    td_tensor_release(a);
                    a = c;
                }
            }
            td_tensor *ga = gpu(a), *gb = gpu(b), *rc = NULL, *rg = NULL;
            ck_assert_int_eq(td_binary((td_binary_op)op, a, b, &rc), TD_OK);
            ck_assert_int_eq(td_binary((td_binary_op)op, ga, gb, &rg), TD_OK);
            char what[64];
            snprintf(what, sizeof what, "binary %d %s", op, td_dtype_name(dt));
            expect_close(what, rc, rg);
            /* a number beside a CUDA tensor */
            td_tensor *sc = NULL, *sg = NULL;
            ck_assert_int_eq(td_binary_scalar((td_binary_op)op, a, 2, true, &sc), TD_OK);
            ck_assert_int_eq(td_binary_scalar((td_binary_op)op, ga, 2, true, &sg), TD_OK);
            expect_close(what, sc, sg);
            td_tensor_release(sc);
            td_tensor_release(rc);
            td_tensor_release(ga);
            td_tensor_release(gb);
            td_tensor_release(a);
            td_tensor_release(b);
        }
}
END_TEST

START_TEST(clamp_where_masked_fill)
{
    int64_t s[2] = {19, 23};
    for (int d = 0; d < 4; d++) {
        td_dtype dt = all_dtypes[d];
        td_tensor *x = randn(dt, 2, s), *y = randn(dt, 2, s), *gx = gpu(x), *gy = gpu(y);
        td_tensor *c1 = NULL, *c2 = NULL, *m1 = NULL, *m2 = NULL, *w1 = NULL, *w2 = NULL,
                  *f1 = NULL, *f2 = NULL;
        ck_assert_int_eq(td_clamp(x, -0.5, 20.25, &c1), TD_OK);
        ck_assert_int_eq(td_clamp(gx, -0.5, 20.25, &c2), TD_OK);
        expect_close("clamp", c1, c2);
        ck_assert_int_eq(td_binary(TD_GT, x, y, &m1), TD_OK);
        ck_assert_int_eq(td_binary(TD_GT, gx, gy, &m2), TD_OK);
        ck_assert_int_eq(td_where(m1, x, y, &w1), TD_OK);
        ck_assert_int_eq(td_where(m2, gx, gy, &w2), TD_OK);
        expect_close("where", w1, w2);
        ck_assert_int_eq(td_masked_fill(x, m1, 7, &f1), TD_OK);
        ck_assert_int_eq(td_masked_fill(gx, m2, 7, &f2), TD_OK);
        expect_close("masked_fill", f1, f2);
        td_tensor *ts[] = {x, y, gx, gy, c1, m1, m2, w1, f1};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
    }
}
END_TEST

/* ---- reductions and softmax --------------------------------------------------------------- */

typedef td_status (*reduce_fn)(td_tensor *, int, bool, bool, td_tensor **);

static td_status max_values(td_tensor *x, int dim, bool all, bool keep, td_tensor **out)
{
    return td_max(x, dim, all, keep, out, NULL);
}

static td_status min_indices(td_tensor *x, int dim, bool all, bool keep, td_tensor **out)
{
    td_tensor *v = NULL;
    td_status st = td_min(x, dim, all, keep, &v, out);
    td_tensor_release(v);
    return st;
}

START_TEST(reductions_every_dim)
{
    static const reduce_fn fns[] = {td_sum,      td_mean,   td_prod,  max_values,
                                    min_indices, td_argmax, td_argmin};
    static const char *names[] = {"sum",           "mean",   "prod",  "max",
                                  "min (indices)", "argmax", "argmin"};
    int64_t s[3] = {7, 300, 9}, s1[1] = {5000};
    for (int d = 0; d < 3; d++) {
        td_dtype dt = all_dtypes[d];
        td_tensor *x = randn(dt, 3, s), *gx = gpu(x), *l = randn(dt, 1, s1), *gl = gpu(l);
        for (int f = 0; f < 7; f++) {
            if (f == 1 && !td_dtype_is_float(dt)) continue; /* mean wants floats */
            td_tensor *src = x, *gsrc = gx, *sm = NULL, *gsm = NULL;
            if (f == 2 && td_dtype_is_float(dt)) { /* prod of values near 1 stays finite */
                ck_assert_int_eq(td_binary_scalar(TD_MUL, x, 0.01, false, &sm), TD_OK);
                td_tensor *t = NULL;
                ck_assert_int_eq(td_binary_scalar(TD_ADD, sm, 1.0, false, &t), TD_OK);
                td_tensor_release(sm);
                sm = t;
                gsm = gpu(sm);
                src = sm;
                gsrc = gsm;
            }
            for (int dim = -1; dim < 3; dim++) {
                td_tensor *rc = NULL, *rg = NULL;
                ck_assert_int_eq(fns[f](src, dim < 0 ? 0 : dim, dim < 0, false, &rc), TD_OK);
                ck_assert_int_eq(fns[f](gsrc, dim < 0 ? 0 : dim, dim < 0, false, &rg), TD_OK);
                char what[64];
                snprintf(what, sizeof what, "%s dim %d %s", names[f], dim, td_dtype_name(dt));
                expect_close(what, rc, rg);
                td_tensor_release(rc);
            }
            if (f != 2) { /* one long row: many elements per thread */
                td_tensor *rc = NULL, *rg = NULL;
                ck_assert_int_eq(fns[f](l, 0, true, false, &rc), TD_OK);
                ck_assert_int_eq(fns[f](gl, 0, true, false, &rg), TD_OK);
                expect_close(names[f], rc, rg);
                td_tensor_release(rc);
            }
            td_tensor_release(sm);
            td_tensor_release(gsm);
        }
        td_tensor_release(x);
        td_tensor_release(gx);
        td_tensor_release(l);
        td_tensor_release(gl);
    }
}
END_TEST

START_TEST(extremes_ties_and_nan)
{
    double v[8] = {1, 5, 5, -2, NAN, 3, NAN, 5};
    int64_t s[1] = {8};
    td_tensor *x = NULL;
    ck_assert_int_eq(td_from_data(1, s, TD_FLOAT32, v, &x), TD_OK);
    td_tensor *gx = gpu(x), *a = NULL, *b = NULL;
    ck_assert_int_eq(td_argmax(x, 0, true, false, &a), TD_OK);
    ck_assert_int_eq(td_argmax(gx, 0, true, false, &b), TD_OK);
    expect_close("argmax with NaN (the first NaN)", a, b);
    td_tensor_release(a);
    td_tensor *n1 = NULL;
    ck_assert_int_eq(td_narrow(x, 0, 0, 4, &n1), TD_OK); /* ties: the first */
    td_tensor *gn = gpu(n1);
    ck_assert_int_eq(td_argmax(n1, 0, true, false, &a), TD_OK);
    ck_assert_int_eq(td_argmax(gn, 0, true, false, &b), TD_OK);
    expect_close("argmax ties", a, b);
    td_tensor *ts[] = {x, gx, a, n1, gn};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

START_TEST(softmax_forward_backward)
{
    int64_t s[3] = {6, 129, 5};
    for (int d = 0; d < 2; d++)
        for (int log = 0; log < 2; log++)
            for (int dim = 0; dim < 3; dim++) {
                td_tensor *x = randn(float_dtypes[d], 3, s), *big = NULL;
                ck_assert_int_eq(td_binary_scalar(TD_MUL, x, 1e3, false, &big),
                                 TD_OK); /* large logits */
                td_tensor *gx = gpu(big), *yc = NULL, *yg = NULL;
                ck_assert_int_eq((log ? td_log_softmax : td_softmax)(big, dim, &yc), TD_OK);
                ck_assert_int_eq((log ? td_log_softmax : td_softmax)(gx, dim, &yg), TD_OK);
                char what[64];
                snprintf(what, sizeof what, "%s dim %d %s", log ? "log_softmax" : "softmax", dim,
                         td_dtype_name(float_dtypes[d]));
                td_tensor_retain(yg);
                expect_close(what, yc, yg);
                /* backward from the table, contiguous (outer, n, inner) */
                int64_t outer = 1, inner = 1;
                for (int i = 0; i < dim; i++) outer *= s[i];
                for (int i = dim + 1; i < 3; i++) inner *= s[i];
                td_tensor *gy = randn(float_dtypes[d], 3, s), *ggy = gpu(gy), *gxc = NULL,
                          *gxg = NULL;
                ck_assert_int_eq(td_empty_like(yc, &gxc), TD_OK);
                ck_assert_int_eq(td_empty_like(yg, &gxg), TD_OK);
                td_cpu_backend()->softmax_backward(gxc, yc, gy, outer, s[dim], inner, log);
                td_backend_of(yg)->softmax_backward(gxg, yg, ggy, outer, s[dim], inner, log);
                snprintf(what, sizeof what, "%s backward dim %d", log ? "log_softmax" : "softmax",
                         dim);
                expect_close(what, gxc, gxg);
                td_tensor *ts[] = {x, big, gx, yc, yg, gy, ggy, gxc};
                for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
            }
}
END_TEST

/* ---- matmul through cuBLAS --------------------------------------------------------------------
 */

START_TEST(cublas_is_loaded)
{
    ck_assert_msg(td_cublas_load() == TD_OK, "%s", td_last_error());
    ck_assert_int_ge(td_cublas_version(), 130000);
}
END_TEST

START_TEST(matmul_shapes_and_views)
{
    for (int d = 0; d < 2; d++) {
        td_dtype dt = float_dtypes[d];
        int64_t sa[2] = {37, 61}, sb[2] = {61, 29}, sba[3] = {5, 37, 61}, sbb[3] = {5, 61, 29},
                sv[1] = {61};
        td_tensor *a = randn(dt, 2, sa), *b = randn(dt, 2, sb), *ba = randn(dt, 3, sba),
                  *bb = randn(dt, 3, sbb);
        td_tensor *v = randn(dt, 1, sv);
        td_tensor *ga = gpu(a), *gb = gpu(b), *gba = gpu(ba), *gbb = gpu(bb), *gv = gpu(v);
        td_tensor *rc = NULL, *rg = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;
        ck_assert_int_eq(td_mm(a, b, &rc), TD_OK);
        ck_assert_int_eq(td_mm(ga, gb, &rg), TD_OK);
        expect_close("mm", rc, rg);
        td_tensor_release(rc);
        ck_assert_int_eq(td_bmm(ba, bb, &rc), TD_OK);
        ck_assert_int_eq(td_bmm(gba, gbb, &rg), TD_OK);
        expect_close("bmm", rc, rg);
        td_tensor_release(rc);
        /* transposed views reach cuBLAS as transpose flags */
        ck_assert_int_eq(td_t(b, &t1), TD_OK);
        ck_assert_int_eq(td_t(gb, &t2), TD_OK);
        ck_assert_int_eq(td_t(a, &t3), TD_OK);
        ck_assert_int_eq(td_t(ga, &t4), TD_OK);
        ck_assert_int_eq(td_mm(t1, t3, &rc), TD_OK);
        ck_assert_int_eq(td_mm(t2, t4, &rg), TD_OK);
        expect_close("mm of transposes", rc, rg);
        td_tensor_release(rc);
        /* matmul: broadcast batch against a matrix, and a vector */
        ck_assert_int_eq(td_matmul(ba, b, &rc), TD_OK);
        ck_assert_int_eq(td_matmul(gba, gb, &rg), TD_OK);
        expect_close("matmul broadcast", rc, rg);
        td_tensor_release(rc);
        ck_assert_int_eq(td_matmul(a, v, &rc), TD_OK);
        ck_assert_int_eq(td_matmul(ga, gv, &rg), TD_OK);
        expect_close("matmul vector", rc, rg);
        td_tensor_release(rc);
        td_tensor *ts[] = {a, b, ba, bb, v, ga, gb, gba, gbb, gv, t1, t2, t3, t4};
        for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
    }
}
END_TEST

/* ---- autograd on the device
 * ---------------------------------------------------------------------- */

START_TEST(gradient_flows_back_to_the_cpu_leaf)
{
    int64_t s[2] = {8, 10};
    td_tensor *w = randn(TD_FLOAT32, 2, s), *g = NULL, *y = NULL, *l = NULL;
    ck_assert_int_eq(td_set_requires_grad(w, true), TD_OK);
    ck_assert_int_eq(td_to_device(w, GPU, &g), TD_OK);
    ck_assert_int_eq(td_log_softmax(g, 1, &y), TD_OK);
    ck_assert_int_eq(td_sum(y, 0, true, false, &l), TD_OK);
    ck_assert_int_eq(td_backward(l, NULL, false), TD_OK);
    ck_assert_ptr_nonnull(w->grad);
    ck_assert_int_eq(td_device_of(w->grad).type, TD_CPU);
    /* the same on the CPU */
    td_tensor *w2 = NULL, *y2 = NULL, *l2 = NULL;
    ck_assert_int_eq(td_detach(w, &w2), TD_OK);
    ck_assert_int_eq(td_set_requires_grad(w2, true), TD_OK);
    ck_assert_int_eq(td_log_softmax(w2, 1, &y2), TD_OK);
    ck_assert_int_eq(td_sum(y2, 0, true, false, &l2), TD_OK);
    ck_assert_int_eq(td_backward(l2, NULL, false), TD_OK);
    td_tensor *gg = gpu(w->grad);
    expect_close("gradient through to(cuda)", w2->grad, gg);
    td_tensor *ts[] = {w, g, y, l, w2, y2, l2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- guards: no write outside the output
 * ------------------------------------------------------------- */

START_TEST(guards_around_outputs)
{
    const td_backend *be = td_backend_for(GPU);
    int64_t n = 3000, s2[2] = {30, 100};
    td_tensor *x = randn(TD_FLOAT32, 1, &n), *gx = gpu(x), *o = NULL, *buf = NULL;
    buf = guarded(n, &o);
    be->unary(TD_EXP, o, gx, NULL);
    check_guards("unary", buf, n);
    be->binary(TD_ADD, o, gx, gx);
    check_guards("binary", buf, n);
    be->copy(o, gx);
    check_guards("copy", buf, n);
    be->fill(o, 1.5);
    check_guards("fill", buf, n);
    be->clamp(o, gx, -1, 1);
    check_guards("clamp", buf, n);
    td_tensor *x2 = NULL;
    ck_assert_int_eq(td_view(gx, 2, s2, &x2), TD_OK);
    be->softmax(o, x2, 30, 100, 1, false);
    check_guards("softmax rows", buf, n);
    be->softmax(o, x2, 1, 30, 100, true);
    check_guards("softmax columns", buf, n);
    td_tensor_release(o);
    td_tensor_release(buf);
    int64_t m = 30;
    buf = guarded(m, &o);
    be->reduce(TD_SUM, o, NULL, x2, 30, 100, 1);
    check_guards("sum rows", buf, m);
    be->reduce(TD_MAX, o, NULL, x2, 1, 100, 30); /* (1, 100, 30) over the 100 */
    check_guards("max columns", buf, m);
    td_tensor_release(o);
    td_tensor_release(buf);
    td_tensor *ts[] = {x, gx, x2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- determinism: the same bits twice
 * ------------------------------------------------------------------ */

START_TEST(deterministic_reductions)
{
    int64_t big = 1 << 22, s[2] = {64, 1 << 16};
    td_tensor *x = randn(TD_FLOAT32, 1, &big), *gx = gpu(x), *m = NULL;
    ck_assert_int_eq(td_view(gx, 2, s, &m), TD_OK);
    td_status (*ops[])(td_tensor *, int, bool, bool, td_tensor **) = {td_sum, td_mean};
    for (int k = 0; k < 2; k++)
        for (int dim = -1; dim < 2; dim++) {
            td_tensor *a = NULL, *b = NULL;
            ck_assert_int_eq(ops[k](m, dim < 0 ? 0 : dim, dim < 0, false, &a), TD_OK);
            ck_assert_int_eq(ops[k](m, dim < 0 ? 0 : dim, dim < 0, false, &b), TD_OK);
            same_bits(k ? "mean" : "sum", a, b);
            td_tensor_release(a);
            td_tensor_release(b);
        }
    td_tensor *a = NULL, *b = NULL;
    ck_assert_int_eq(td_log_softmax(m, 1, &a), TD_OK);
    ck_assert_int_eq(td_log_softmax(m, 1, &b), TD_OK);
    same_bits("log_softmax", a, b);
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(m);
    td_tensor_release(gx);
    td_tensor_release(x);
}
END_TEST

static Suite *cuda_suite(void)
{
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, round_trip_and_memory);
    tcase_add_test(tc, copy_every_dtype_pair_strided);
    tcase_add_test(tc, fill_and_copy_into_views);
    tcase_add_test(tc, unary_ops_and_grads);
    tcase_add_test(tc, binary_ops_broadcast);
    tcase_add_test(tc, clamp_where_masked_fill);
    tcase_add_test(tc, reductions_every_dim);
    tcase_add_test(tc, extremes_ties_and_nan);
    tcase_add_test(tc, softmax_forward_backward);
    tcase_add_test(tc, cublas_is_loaded);
    tcase_add_test(tc, matmul_shapes_and_views);
    tcase_add_test(tc, gradient_flows_back_to_the_cpu_leaf);
    tcase_add_test(tc, guards_around_outputs);
    tcase_add_test(tc, deterministic_reductions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* every machine that built the backend must be able to open cuBLAS */
    if (td_cublas_load() != TD_OK) {
        printf("FAILED: %s\n", td_last_error());
        return EXIT_FAILURE;
    }
    int v = td_cublas_version();
    char note[64];
    snprintf(note, sizeof note, "(cuBLAS %d.%d.%d loads)", v / 10000, v / 100 % 100, v % 100);
    return run_cuda_suite(cuda_suite, 1234, note);
}
