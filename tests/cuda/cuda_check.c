/* The shared helpers of the tests/cuda programs (see cuda_check.h). */
#include "cuda_check.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const td_device GPU = {TD_CUDA, 0};

td_tensor *randn(td_dtype dt, int ndim, const int64_t *shape)
{
    td_tensor *t = NULL;
    if (td_dtype_is_float(dt))
        ck_assert_int_eq(td_randn(ndim, shape, dt, &t), TD_OK);
    else
        ck_assert_int_eq(td_randint(dt == TD_UINT8 ? 0 : -50, 50, ndim, shape, dt, &t), TD_OK);
    return t;
}

td_tensor *randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape)
{
    td_tensor *t = NULL;
    ck_assert_int_eq(td_randint(lo, hi, ndim, shape, TD_INT64, &t), TD_OK);
    return t;
}

/* uniform in (lo, hi) */
td_tensor *uniform(td_dtype dt, int ndim, const int64_t *shape, double lo, double hi)
{
    td_tensor *u = NULL, *a = NULL, *b = NULL;
    ck_assert_int_eq(td_rand(ndim, shape, dt, &u), TD_OK);
    ck_assert_int_eq(td_binary_scalar(TD_MUL, u, hi - lo, false, &a), TD_OK);
    ck_assert_int_eq(td_binary_scalar(TD_ADD, a, lo, false, &b), TD_OK);
    td_tensor_release(u);
    td_tensor_release(a);
    return b;
}

td_tensor *scaled(td_tensor *t, double k)
{
    td_tensor *r = NULL;
    ck_assert_int_eq(td_binary_scalar(TD_MUL, t, k, false, &r), TD_OK);
    td_tensor_release(t);
    return r;
}

td_tensor *gpu(td_tensor *t)
{
    td_tensor *g = NULL;
    ck_assert_msg(td_to_device(t, GPU, &g) == TD_OK, "to cuda: %s", td_last_error());
    return g;
}

td_tensor *host(td_tensor *t)
{
    td_tensor *h = NULL;
    ck_assert_msg(td_to_device(t, TD_DEVICE_CPU, &h) == TD_OK, "to cpu: %s", td_last_error());
    return h;
}

void expect_close_keep_tol(const char *what, const td_tensor *cpu, td_tensor *g, double tol)
{
    ck_assert_msg(cpu && g, "%s: a result is missing", what);
    ck_assert_msg(td_device_of(g).type == TD_CUDA, "%s: result is not on cuda", what);
    ck_assert_msg(td_cuda_synchronize() == TD_OK, "%s: %s", what, td_last_error());
    td_tensor *h = host(g);
    ck_assert_msg(td_same_shape(cpu, h), "%s: shapes differ", what);
    ck_assert_msg(cpu->dtype == h->dtype, "%s: dtypes differ", what);
    int64_t n = td_numel(cpu);
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = td_get_flat(cpu, i), b = td_get_flat(h, i);
        if (!td_dtype_is_float(cpu->dtype)) {
            ck_assert_msg(a == b, "%s: element %lld is %g on cuda, %g on cpu", what, (long long)i,
                          b, a);
            continue;
        }
        if (isnan(a) || isnan(b)) {
            ck_assert_msg(isnan(a) && isnan(b), "%s: element %lld is %g on cuda, %g on cpu", what,
                          (long long)i, b, a);
            continue;
        }
        if (isinf(a) || isinf(b)) {
            ck_assert_msg(a == b, "%s: element %lld is %g on cuda, %g on cpu", what, (long long)i,
                          b, a);
            continue;
        }
        err += (a - b) * (a - b);
        ref += a * a;
    }
    if (td_dtype_is_float(cpu->dtype)) {
        double nmse = ref > 0 ? err / ref : err;
        if (tol <= 0) tol = cpu->dtype == TD_FLOAT64 ? 1e-15 : 1e-7;
        ck_assert_msg(nmse < tol, "%s: NMSE %g above %g", what, nmse, tol);
    }
    td_tensor_release(h);
}

void expect_close_tol(const char *what, const td_tensor *cpu, td_tensor *g, double tol)
{
    expect_close_keep_tol(what, cpu, g, tol);
    td_tensor_release(g);
}

void expect_close(const char *what, const td_tensor *cpu, td_tensor *g)
{
    expect_close_tol(what, cpu, g, 0);
}
void expect_close_keep(const char *what, const td_tensor *cpu, td_tensor *g)
{
    expect_close_keep_tol(what, cpu, g, 0);
}

void same_bits(const char *what, td_tensor *a, td_tensor *b)
{
    td_tensor *ha = host(a), *hb = host(b);
    size_t nbytes = (size_t)td_numel(ha) * td_dtype_size(ha->dtype);
    ck_assert_msg(memcmp(td_data_ptr(ha), td_data_ptr(hb), nbytes) == 0, "%s: two runs differ",
                  what);
    td_tensor_release(ha);
    td_tensor_release(hb);
}

void parity_tol(const char *what, op_fn f, const void *ctx, int n, td_tensor **cin,
                unsigned grad_mask, double tol)
{
    td_tensor *ci[8] = {0}, *gi[8] = {0}, *oc = NULL, *og = NULL;
    for (int i = 0; i < n; i++) {
        if (!cin[i]) continue;
        ck_assert_int_eq(td_detach(cin[i], &ci[i]), TD_OK);
        gi[i] = gpu(ci[i]);
        if (grad_mask & (1u << i)) {
            ck_assert_int_eq(td_set_requires_grad(ci[i], true), TD_OK);
            ck_assert_int_eq(td_set_requires_grad(gi[i], true), TD_OK);
        }
    }
    ck_assert_msg(f(ctx, ci, &oc) == TD_OK, "%s on cpu: %s", what, td_last_error());
    ck_assert_msg(f(ctx, gi, &og) == TD_OK, "%s on cuda: %s", what, td_last_error());
    td_tensor_retain(og);
    expect_close_tol(what, oc, og, tol);
    if (grad_mask) {
        td_tensor *gy = NULL, *ggy = NULL;
        if (oc->ndim > 0) {
            gy = randn(oc->dtype, oc->ndim, oc->shape);
            ggy = gpu(gy);
        }
        ck_assert_msg(td_backward(oc, gy, false) == TD_OK, "%s backward on cpu: %s", what,
                      td_last_error());
        ck_assert_msg(td_backward(og, ggy, false) == TD_OK, "%s backward on cuda: %s", what,
                      td_last_error());
        for (int i = 0; i < n; i++) {
            if (!(grad_mask & (1u << i)) || !ci[i]) continue;
            char w2[200];
            snprintf(w2, sizeof w2, "%s: gradient of input %d", what, i);
            ck_assert_msg(ci[i]->grad && gi[i]->grad, "%s missing", w2);
            td_tensor_retain(gi[i]->grad);
            expect_close_tol(w2, ci[i]->grad, gi[i]->grad, tol);
        }
        td_tensor_release(gy);
        td_tensor_release(ggy);
    }
    td_tensor_release(oc);
    td_tensor_release(og);
    for (int i = 0; i < n; i++) {
        td_tensor_release(ci[i]);
        td_tensor_release(gi[i]);
    }
}

void parity(const char *what, op_fn f, const void *ctx, int n, td_tensor **cin, unsigned grad_mask)
{
    parity_tol(what, f, ctx, n, cin, grad_mask, 0);
}

void same_error(const char *what, op_fn f, const void *ctx, int n, td_tensor **cin)
{
    td_tensor *gi[8] = {0}, *o = NULL;
    for (int i = 0; i < n; i++) gi[i] = cin[i] ? gpu(cin[i]) : NULL;
    ck_assert_msg(f(ctx, cin, &o) != TD_OK, "%s: the cpu accepted it", what);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", td_last_error());
    td_clear_error();
    ck_assert_msg(f(ctx, gi, &o) != TD_OK, "%s: cuda accepted it", what);
    ck_assert_msg(strcmp(msg, td_last_error()) == 0, "%s: cuda says '%s', the cpu '%s'", what,
                  td_last_error(), msg);
    td_clear_error();
    ck_assert_int_eq(td_cuda_synchronize(), TD_OK);
    for (int i = 0; i < n; i++) td_tensor_release(gi[i]);
}

td_tensor *guarded(int64_t n, td_tensor **view)
{
    int64_t total = n + 2 * GUARD;
    td_tensor *buf = NULL;
    ck_assert_int_eq(td_full_on(1, &total, SENTINEL, TD_FLOAT32, GPU, &buf), TD_OK);
    ck_assert_int_eq(td_narrow(buf, 0, GUARD, n, view), TD_OK);
    return buf;
}

void check_guards(const char *what, td_tensor *buf, int64_t n)
{
    ck_assert_msg(td_cuda_synchronize() == TD_OK, "%s: %s", what, td_last_error());
    td_tensor *h = host(buf);
    const float *p = td_data_ptr(h);
    for (int64_t i = 0; i < GUARD; i++) {
        ck_assert_msg(p[i] == SENTINEL, "%s: wrote %lld elements before its output", what,
                      (long long)(GUARD - i));
        ck_assert_msg(p[GUARD + n + i] == SENTINEL, "%s: wrote past its output (element %lld)",
                      what, (long long)i);
    }
    td_tensor_release(h);
}

int run_cuda_suite(Suite *(*make_suite)(void), uint64_t seed, const char *note)
{
    if (!td_cuda_is_available()) {
        td_device_check((td_device){TD_CUDA, 0}); /* sets the message saying why */
        printf("SKIPPED: %s%s%s\n", td_last_error(), note ? " " : "", note ? note : "");
        return SKIP;
    }
    td_manual_seed(seed);
    SRunner *sr = srunner_create(make_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
