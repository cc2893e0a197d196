/* The autograd engine through the C API: accumulation, graph release,
 * retain_graph, in-place detection, shared subgraphs, deep graphs. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tide/tide.h"

static td_tensor *vec(const double *v, int64_t n, bool grad)
{
    td_tensor *t = NULL;
    ck_assert_int_eq(td_from_data(1, &n, TD_FLOAT64, v, &t), TD_OK);
    if (grad) ck_assert_int_eq(td_set_requires_grad(t, true), TD_OK);
    return t;
}

static double at(const td_tensor *t, int64_t i) { return td_get_flat(t, i); }

/* y = sum(x * x * 3): dy/dx = 6x, and a second backward adds to .grad */
START_TEST(test_accumulates)
{
    double v[3] = {1, -2, 0.5};
    td_tensor *x = vec(v, 3, true), *sq = NULL, *m = NULL, *y = NULL;
    ck_assert_int_eq(td_binary(TD_MUL, x, x, &sq), TD_OK);
    ck_assert_int_eq(td_binary_scalar(TD_MUL, sq, 3.0, false, &m), TD_OK);
    ck_assert_int_eq(td_sum(m, 0, true, false, &y), TD_OK);
    ck_assert_int_eq(td_backward(y, NULL, true), TD_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(at(x->grad, i), 6 * v[i], 1e-12);
    ck_assert_int_eq(td_backward(y, NULL, false), TD_OK);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(at(x->grad, i), 12 * v[i], 1e-12);
    /* the graph was freed by the last backward */
    ck_assert_int_eq(td_backward(y, NULL, false), TD_EGRAD);
    ck_assert_ptr_nonnull(strstr(td_last_error(), "second time"));
    td_tensor_release(y);
    td_tensor_release(m);
    td_tensor_release(sq);
    td_tensor_release(x);
}
END_TEST

/* x feeds two branches that meet again: gradients from both add up */
START_TEST(test_shared_subgraph)
{
    double v[2] = {2, 3};
    td_tensor *x = vec(v, 2, true), *e = NULL, *a = NULL, *b = NULL, *s = NULL, *y = NULL;
    ck_assert_int_eq(td_unary(TD_EXP, x, &e), TD_OK);
    ck_assert_int_eq(td_binary(TD_MUL, e, x, &a), TD_OK); /* x e^x */
    ck_assert_int_eq(td_unary(TD_SIN, e, &b), TD_OK);     /* sin(e^x) */
    ck_assert_int_eq(td_binary(TD_ADD, a, b, &s), TD_OK);
    ck_assert_int_eq(td_sum(s, 0, true, false, &y), TD_OK);
    ck_assert_int_eq(td_backward(y, NULL, false), TD_OK);
    for (int i = 0; i < 2; i++) {
        double ex = exp(v[i]), want = ex + v[i] * ex + cos(ex) * ex;
        ck_assert_double_eq_tol(at(x->grad, i), want, 1e-9 * fabs(want));
    }
    td_tensor *ts[] = {y, s, b, a, e, x};
    for (int i = 0; i < 6; i++) td_tensor_release(ts[i]);
}
END_TEST

START_TEST(test_nonscalar_needs_gradient)
{
    double v[2] = {1, 2}, w[2] = {10, 100};
    td_tensor *x = vec(v, 2, true), *y = NULL, *g = vec(w, 2, false);
    ck_assert_int_eq(td_binary_scalar(TD_MUL, x, 2.0, false, &y), TD_OK);
    ck_assert_int_eq(td_backward(y, NULL, false), TD_EGRAD);
    ck_assert_int_eq(td_backward(y, g, false), TD_OK);
    ck_assert_double_eq_tol(at(x->grad, 0), 20, 1e-12);
    ck_assert_double_eq_tol(at(x->grad, 1), 200, 1e-12);
    td_tensor_release(g);
    td_tensor_release(y);
    td_tensor_release(x);
}
END_TEST

START_TEST(test_inplace_on_saved_tensor)
{
    double v[2] = {1, 2};
    td_tensor *x = vec(v, 2, true), *e = NULL, *y = NULL;
    ck_assert_int_eq(td_unary(TD_EXP, x, &e), TD_OK); /* saves its output */
    ck_assert_int_eq(td_sum(e, 0, true, false, &y), TD_OK);
    ck_assert_int_eq(td_fill_(e, 0.0), TD_OK);
    /* fill_ cut e's history, so y's graph still holds the exp node with a
     * saved tensor whose version moved */
    ck_assert_int_eq(td_backward(y, NULL, false), TD_EGRAD);
    ck_assert_ptr_nonnull(strstr(td_last_error(), "in-place"));
    /* a leaf that requires grad cannot be changed in place */
    ck_assert_int_eq(td_fill_(x, 1.0), TD_EGRAD);
    bool prev = td_set_grad_enabled(false);
    ck_assert_int_eq(td_fill_(x, 1.0), TD_OK);
    td_set_grad_enabled(prev);
    td_tensor_release(y);
    td_tensor_release(e);
    td_tensor_release(x);
}
END_TEST

START_TEST(test_no_grad_records_nothing)
{
    double v[2] = {1, 2};
    td_tensor *x = vec(v, 2, true), *y = NULL;
    bool prev = td_set_grad_enabled(false);
    ck_assert_int_eq(td_unary(TD_EXP, x, &y), TD_OK);
    td_set_grad_enabled(prev);
    ck_assert(!y->requires_grad);
    ck_assert_ptr_null(y->grad_fn);
    ck_assert_int_eq(td_backward(y, NULL, false), TD_EGRAD);
    td_tensor_release(y);
    td_tensor_release(x);
}
END_TEST

/* a chain 200k nodes deep is built, differentiated and freed without
 * recursion on the C stack */
START_TEST(test_deep_chain)
{
    double v[1] = {1};
    td_tensor *x = vec(v, 1, true), *cur = x;
    td_tensor_retain(cur);
    for (int i = 0; i < 200000; i++) {
        td_tensor *next = NULL;
        ck_assert_int_eq(td_binary_scalar(TD_ADD, cur, 1.0, false, &next), TD_OK);
        td_tensor_release(cur);
        cur = next;
    }
    td_tensor *y = NULL;
    ck_assert_int_eq(td_sum(cur, 0, true, false, &y), TD_OK);
    ck_assert_int_eq(td_backward(y, NULL, false), TD_OK);
    ck_assert_double_eq(at(x->grad, 0), 1.0);
    td_tensor_release(y);
    td_tensor_release(cur);
    td_tensor_release(x);
}
END_TEST

/* a leaf dies before its graph: the accumulator must not touch it */
START_TEST(test_leaf_freed_first)
{
    double v[2] = {1, 2};
    td_tensor *x = vec(v, 2, true), *y = NULL, *s = NULL;
    ck_assert_int_eq(td_unary(TD_TANH, x, &y), TD_OK);
    td_tensor_release(x);
    ck_assert_int_eq(td_sum(y, 0, true, false, &s), TD_OK);
    ck_assert_int_eq(td_backward(s, NULL, false), TD_OK);
    td_tensor_release(s);
    td_tensor_release(y);
}
END_TEST

START_TEST(test_requires_grad_rules)
{
    int64_t n = 2;
    td_tensor *i = NULL, *x = NULL, *y = NULL;
    ck_assert_int_eq(td_zeros(1, &n, TD_INT64, &i), TD_OK);
    ck_assert_int_eq(td_set_requires_grad(i, true), TD_EDTYPE);
    ck_assert_int_eq(td_ones(1, &n, TD_FLOAT32, &x), TD_OK);
    ck_assert_int_eq(td_set_requires_grad(x, true), TD_OK);
    ck_assert_int_eq(td_unary(TD_EXP, x, &y), TD_OK);
    ck_assert_int_eq(td_set_requires_grad(y, false), TD_EGRAD);
    ck_assert(!td_is_leaf(y));
    ck_assert_str_eq(td_grad_fn_name(y), "ExpBackward");
    td_tensor_release(y);
    td_tensor_release(x);
    td_tensor_release(i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_accumulates);
    tcase_add_test(tc, test_shared_subgraph);
    tcase_add_test(tc, test_nonscalar_needs_gradient);
    tcase_add_test(tc, test_inplace_on_saved_tensor);
    tcase_add_test(tc, test_no_grad_records_nothing);
    tcase_add_test(tc, test_deep_chain);
    tcase_add_test(tc, test_leaf_freed_first);
    tcase_add_test(tc, test_requires_grad_rules);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
