/* The tensor core through its public C API only (tide/tide.h): shapes,
 * strides, views over shared storage, broadcasting, every op family with
 * hand-computed values, and every error status with its message and the
 * argument it names. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tide/tide.h"

#define OK(call) ck_assert_int_eq((call), TD_OK)
#define TOL      1e-12

/* ---- helpers ---------------------------------------------------------- */

static td_tensor *mk(int ndim, const int64_t *shape, td_dtype dt, const double *v)
{
    td_tensor *t = NULL;
    OK(td_from_data(ndim, shape, dt, v, &t));
    return t;
}

static td_tensor *mk1(int64_t n, const double *v) { return mk(1, &n, TD_FLOAT64, v); }

static td_tensor *mk2(int64_t r, int64_t c, const double *v)
{
    int64_t s[2] = {r, c};
    return mk(2, s, TD_FLOAT64, v);
}

static td_tensor *idx1(int64_t n, const double *v) { return mk(1, &n, TD_INT64, v); }

static void rel(td_tensor *t) { td_tensor_release(t); }

static void check_shape(const td_tensor *t, int ndim, const int64_t *shape)
{
    ck_assert_int_eq(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) ck_assert_int_eq(t->shape[i], shape[i]);
}

static void check_stride(const td_tensor *t, const int64_t *stride)
{
    for (int i = 0; i < t->ndim; i++) ck_assert_int_eq(t->stride[i], stride[i]);
}

/* the values of t in logical order, within tol */
static void check_values(const td_tensor *t, int64_t n, const double *want, double tol)
{
    ck_assert_int_eq(td_numel(t), n);
    for (int64_t i = 0; i < n; i++) {
        double got = td_get_flat(t, i);
        if (isnan(want[i])) {
            ck_assert_msg(isnan(got), "element %lld: got %.17g, expected nan", (long long)i, got);
            continue;
        }
        ck_assert_msg(fabs(got - want[i]) <= tol * (1 + fabs(want[i])),
                      "element %lld: got %.17g, expected %.17g", (long long)i, got, want[i]);
    }
}

/* the status and message, whatever argument is named */
#define check_error(...) check_error_at(__LINE__, __VA_ARGS__)
#define check_fails(...) check_fails_at(__LINE__, __VA_ARGS__)

static void check_fails_at(int line, td_status st, td_status code, const char *part1,
                           const char *part2)
{
    ck_assert_msg(st == code, "line %d: status %d, expected %d (%s)", line, (int)st, (int)code,
                  td_last_error());
    const char *m = td_last_error();
    if (part1) ck_assert_msg(strstr(m, part1) != NULL, "line %d: '%s' not in: %s", line, part1, m);
    if (part2) ck_assert_msg(strstr(m, part2) != NULL, "line %d: '%s' not in: %s", line, part2, m);
}

static void check_error_at(int line, td_status st, td_status code, int arg, const char *part1,
                           const char *part2)
{
    ck_assert_msg(st == code, "line %d: status %d, expected %d (%s)", line, (int)st, (int)code,
                  td_last_error());
    ck_assert_msg(td_last_error_arg() == arg, "line %d: argument %d named, expected %d (%s)", line,
                  td_last_error_arg(), arg, td_last_error());
    const char *m = td_last_error();
    ck_assert_ptr_nonnull(m);
    if (part1) ck_assert_msg(strstr(m, part1) != NULL, "line %d: '%s' not in: %s", line, part1, m);
    if (part2) ck_assert_msg(strstr(m, part2) != NULL, "line %d: '%s' not in: %s", line, part2, m);
}

/* ---- shapes and strides ------------------------------------------------- */

START_TEST(test_shapes_strides)
{
    int64_t s[3] = {2, 3, 4};
    td_tensor *t = NULL;
    OK(td_zeros(3, s, TD_FLOAT32, &t));
    check_shape(t, 3, s);
    check_stride(t, (int64_t[]){12, 4, 1});
    ck_assert_int_eq(t->offset, 0);
    ck_assert_int_eq(td_numel(t), 24);
    ck_assert(td_is_contiguous(t));
    ck_assert_int_eq(t->dtype, TD_FLOAT32);
    ck_assert_uint_ge(t->storage->nbytes, 24 * 4);
    char buf[64];
    ck_assert_str_eq(td_shape_str(t, buf, sizeof buf), "(2,3,4)");
    rel(t);

    /* 0-dim scalars */
    td_tensor *sc = NULL;
    OK(td_scalar(2.5, TD_FLOAT64, &sc));
    ck_assert_int_eq(sc->ndim, 0);
    ck_assert_int_eq(td_numel(sc), 1);
    double v;
    OK(td_item(sc, &v));
    ck_assert_double_eq(v, 2.5);
    rel(sc);

    /* 8 dims is the limit */
    int64_t s8[8] = {1, 2, 1, 2, 1, 2, 1, 2}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    OK(td_ones(8, s8, TD_FLOAT32, &t));
    ck_assert_int_eq(td_numel(t), 16);
    rel(t);
    t = NULL;
    check_error(td_zeros(9, s9, TD_FLOAT32, &t), TD_ESHAPE, 1, "8", NULL);

    /* dtypes */
    ck_assert_uint_eq(td_dtype_size(TD_FLOAT32), 4);
    ck_assert_uint_eq(td_dtype_size(TD_FLOAT64), 8);
    ck_assert_uint_eq(td_dtype_size(TD_INT64), 8);
    ck_assert_uint_eq(td_dtype_size(TD_UINT8), 1);
    ck_assert_str_eq(td_dtype_name(TD_INT64), "int64");
    td_dtype dt;
    OK(td_dtype_parse("float64", &dt));
    ck_assert_int_eq(dt, TD_FLOAT64);
    ck_assert(td_dtype_is_float(TD_FLOAT32));
    ck_assert(!td_dtype_is_float(TD_UINT8));
    ck_assert_int_eq(td_promote(TD_FLOAT32, TD_FLOAT64), TD_FLOAT64);
    ck_assert_int_eq(td_promote(TD_INT64, TD_FLOAT32), TD_FLOAT32);
    ck_assert_int_eq(td_promote(TD_UINT8, TD_INT64), TD_INT64);
}
END_TEST

START_TEST(test_get_set_item)
{
    double v[6] = {1, 2, 3, 4, 5, 6};
    td_tensor *t = mk2(2, 3, v);
    double x;
    OK(td_get(t, 2, (int64_t[]){1, 2}, &x));
    ck_assert_double_eq(x, 6);
    OK(td_get(t, 2, (int64_t[]){-1, 0}, &x)); /* negative counts from the end */
    ck_assert_double_eq(x, 4);
    OK(td_set(t, 2, (int64_t[]){0, 1}, -7));
    ck_assert_double_eq(td_get_flat(t, 1), -7);
    ck_assert_int_eq(td_item(t, &x), TD_EINVAL);
    rel(t);
}
END_TEST

/* ---- views share storage ------------------------------------------------- */

static td_tensor *arange24(void)
{
    td_tensor *a = NULL, *v = NULL;
    OK(td_arange(0, 24, 1, TD_FLOAT64, &a));
    OK(td_view(a, 3, (int64_t[]){2, 3, 4}, &v));
    rel(a);
    return v;
}

START_TEST(test_views)
{
    td_tensor *b = arange24(), *v = NULL;

    OK(td_view(b, 2, (int64_t[]){6, 4}, &v));
    ck_assert_ptr_eq(v->storage, b->storage);
    check_stride(v, (int64_t[]){4, 1});
    OK(td_set(v, 2, (int64_t[]){5, 3}, -1));
    ck_assert_double_eq(td_get_flat(b, 23), -1);
    rel(v);

    OK(td_view(b, 2, (int64_t[]){-1, 8}, &v)); /* -1 is inferred */
    check_shape(v, 2, (int64_t[]){3, 8});
    rel(v);

    OK(td_transpose(b, 0, 2, &v));
    ck_assert_ptr_eq(v->storage, b->storage);
    check_shape(v, 3, (int64_t[]){4, 3, 2});
    check_stride(v, (int64_t[]){1, 4, 12});
    ck_assert(!td_is_contiguous(v));
    double x;
    OK(td_get(v, 3, (int64_t[]){3, 1, 0}, &x));
    ck_assert_double_eq(x, 7); /* b[0][1][3] */
    rel(v);

    OK(td_narrow(b, 2, 1, 2, &v));
    ck_assert_ptr_eq(v->storage, b->storage);
    check_shape(v, 3, (int64_t[]){2, 3, 2});
    check_stride(v, (int64_t[]){12, 4, 1});
    ck_assert_int_eq(v->offset, b->offset + 1);
    OK(td_fill_(v, 100));
    ck_assert_double_eq(td_get_flat(b, 1), 100);
    ck_assert_double_eq(td_get_flat(b, 2), 100);
    ck_assert_double_eq(td_get_flat(b, 3), 3);
    rel(v);

    OK(td_select(b, 1, 2, &v));
    check_shape(v, 2, (int64_t[]){2, 4});
    check_stride(v, (int64_t[]){12, 1});
    ck_assert_int_eq(v->offset, b->offset + 8);
    rel(v);
    OK(td_select(b, 0, -1, &v));
    ck_assert_int_eq(v->offset, b->offset + 12);
    rel(v);

    int dims[3] = {2, 0, 1};
    OK(td_permute(b, 3, dims, &v));
    check_shape(v, 3, (int64_t[]){4, 2, 3});
    check_stride(v, (int64_t[]){1, 12, 4});
    ck_assert_ptr_eq(v->storage, b->storage);
    rel(v);

    td_tensor *m = NULL;
    OK(td_view(b, 2, (int64_t[]){4, 6}, &m));
    OK(td_t(m, &v));
    check_shape(v, 2, (int64_t[]){6, 4});
    check_stride(v, (int64_t[]){1, 6});
    rel(v);
    rel(m);

    OK(td_unsqueeze(b, 1, &v));
    check_shape(v, 4, (int64_t[]){2, 1, 3, 4});
    ck_assert_ptr_eq(v->storage, b->storage);
    td_tensor *sq = NULL;
    OK(td_squeeze(v, 1, false, &sq));
    check_shape(sq, 3, (int64_t[]){2, 3, 4});
    check_stride(sq, (int64_t[]){12, 4, 1});
    rel(sq);
    rel(v);

    OK(td_flatten(b, 1, 2, &v));
    check_shape(v, 2, (int64_t[]){2, 12});
    ck_assert_ptr_eq(v->storage, b->storage);
    rel(v);

    /* contiguous: the same tensor when already contiguous, a copy otherwise */
    OK(td_contiguous(b, &v));
    ck_assert_ptr_eq(v, b);
    rel(v);
    td_tensor *tr = NULL;
    OK(td_transpose(b, 0, 1, &tr));
    OK(td_contiguous(tr, &v));
    ck_assert_ptr_ne(v->storage, b->storage);
    ck_assert(td_is_contiguous(v));
    check_stride(v, (int64_t[]){8, 4, 1});
    for (int64_t i = 0; i < 24; i++) ck_assert_double_eq(td_get_flat(v, i), td_get_flat(tr, i));
    rel(v);
    /* view of a non-contiguous tensor fails, reshape copies */
    v = NULL;
    ck_assert_int_eq(td_view(tr, 1, (int64_t[]){24}, &v), TD_ESHAPE);
    OK(td_reshape(tr, 1, (int64_t[]){24}, &v));
    ck_assert_ptr_ne(v->storage, b->storage);
    ck_assert_double_eq(td_get_flat(v, 4), 12);
    rel(v);
    rel(tr);
    rel(b);

    /* expand: stride 0 over the same storage */
    double c[3] = {1, 2, 3};
    td_tensor *col = mk2(3, 1, c);
    OK(td_expand(col, 2, (int64_t[]){3, 4}, &v));
    check_shape(v, 2, (int64_t[]){3, 4});
    check_stride(v, (int64_t[]){1, 0});
    ck_assert_ptr_eq(v->storage, col->storage);
    ck_assert_double_eq(td_get_flat(v, 7), 2);
    rel(v);
    OK(td_expand(col, 3, (int64_t[]){2, 3, 2}, &v));
    check_stride(v, (int64_t[]){0, 1, 0});
    rel(v);
    rel(col);

    /* split and chunk give views */
    td_tensor *y = arange24(), **pieces = NULL;
    int count = 0;
    OK(td_split(y, 3, 2, &count, &pieces));
    ck_assert_int_eq(count, 2);
    check_shape(pieces[0], 3, (int64_t[]){2, 3, 3});
    check_shape(pieces[1], 3, (int64_t[]){2, 3, 1});
    ck_assert_ptr_eq(pieces[1]->storage, y->storage);
    ck_assert_int_eq(pieces[1]->offset, y->offset + 3);
    for (int i = 0; i < count; i++) rel(pieces[i]);
    free(pieces);
    OK(td_chunk(y, 2, 1, &count, &pieces));
    ck_assert_int_eq(count, 2);
    check_shape(pieces[0], 3, (int64_t[]){2, 2, 4});
    check_shape(pieces[1], 3, (int64_t[]){2, 1, 4});
    ck_assert_int_eq(pieces[1]->offset, y->offset + 8);
    for (int i = 0; i < count; i++) rel(pieces[i]);
    free(pieces);
    rel(y);
}
END_TEST

/* ---- broadcasting --------------------------------------------------------- */

START_TEST(test_broadcasting)
{
    double a[3] = {1, 2, 3}, b[4] = {10, 20, 30, 40};
    td_tensor *ta = mk2(3, 1, a), *tb = mk2(1, 4, b), *out = NULL;
    int nd;
    int64_t shape[TD_MAX_DIMS];
    OK(td_broadcast_shape(ta, tb, &nd, shape));
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(shape[0], 3);
    ck_assert_int_eq(shape[1], 4);
    OK(td_binary(TD_ADD, ta, tb, &out));
    check_shape(out, 2, (int64_t[]){3, 4});
    double want[12] = {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43};
    check_values(out, 12, want, 0);
    rel(out);

    /* (2,1,3) with (4,1) -> (2,4,3) */
    td_tensor *p = NULL, *q = NULL;
    OK(td_ones(3, (int64_t[]){2, 1, 3}, TD_FLOAT32, &p));
    OK(td_ones(2, (int64_t[]){4, 1}, TD_FLOAT32, &q));
    OK(td_broadcast_shape(p, q, &nd, shape));
    ck_assert_int_eq(nd, 3);
    ck_assert_int_eq(shape[0], 2);
    ck_assert_int_eq(shape[1], 4);
    ck_assert_int_eq(shape[2], 3);
    rel(p);
    rel(q);

    /* (3) with (4): no */
    td_tensor *r = NULL, *r3 = mk1(3, a);
    OK(td_ones(1, (int64_t[]){4}, TD_FLOAT64, &r));
    check_error(td_broadcast_shape(r3, r, &nd, shape), TD_ESHAPE, 2, "(3)", "(4)");
    rel(r);
    rel(r3);
    rel(ta);
    rel(tb);

    /* sum_to_shape undoes a broadcast */
    td_tensor *g = NULL, *s = NULL;
    OK(td_ones(2, (int64_t[]){3, 4}, TD_FLOAT64, &g));
    OK(td_sum_to_shape(g, 2, (int64_t[]){1, 4}, &s));
    check_shape(s, 2, (int64_t[]){1, 4});
    check_values(s, 4, (double[]){3, 3, 3, 3}, 0);
    rel(s);
    OK(td_sum_to_shape(g, 1, (int64_t[]){4}, &s));
    check_values(s, 4, (double[]){3, 3, 3, 3}, 0);
    rel(s);
    rel(g);
}
END_TEST

/* ---- creation ----------------------------------------------------------- */

START_TEST(test_creation)
{
    td_tensor *t = NULL;
    OK(td_arange(0, 5, 1, TD_INT64, &t));
    check_values(t, 5, (double[]){0, 1, 2, 3, 4}, 0);
    ck_assert_int_eq(t->dtype, TD_INT64);
    rel(t);
    OK(td_arange(1, 2, 0.25, TD_FLOAT64, &t));
    check_values(t, 4, (double[]){1, 1.25, 1.5, 1.75}, 0);
    rel(t);
    OK(td_arange(3, 0, -1, TD_FLOAT32, &t));
    check_values(t, 3, (double[]){3, 2, 1}, 0);
    rel(t);
    OK(td_linspace(0, 1, 5, TD_FLOAT64, &t));
    check_values(t, 5, (double[]){0, 0.25, 0.5, 0.75, 1}, TOL);
    rel(t);
    OK(td_eye(2, 3, TD_FLOAT32, &t));
    check_shape(t, 2, (int64_t[]){2, 3});
    check_values(t, 6, (double[]){1, 0, 0, 0, 1, 0}, 0);
    rel(t);
    OK(td_full(2, (int64_t[]){2, 2}, 7.5, TD_FLOAT64, &t));
    check_values(t, 4, (double[]){7.5, 7.5, 7.5, 7.5}, 0);
    rel(t);
    OK(td_zeros(1, (int64_t[]){3}, TD_UINT8, &t));
    check_values(t, 3, (double[]){0, 0, 0}, 0);
    rel(t);

    /* float32 rounds, int64 and uint8 hold integers */
    td_tensor *f = mk(1, (int64_t[]){1}, TD_FLOAT32, (double[]){0.1});
    ck_assert_double_eq(td_get_flat(f, 0), (double)0.1f);
    rel(f);
    f = mk(1, (int64_t[]){2}, TD_UINT8, (double[]){255, 7});
    check_values(f, 2, (double[]){255, 7}, 0);
    rel(f);
}
END_TEST

START_TEST(test_random)
{
    int64_t s[1] = {100};
    td_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    td_manual_seed(123);
    OK(td_randn(1, s, TD_FLOAT64, &a));
    OK(td_randperm(50, TD_INT64, &c));
    td_manual_seed(123);
    OK(td_randn(1, s, TD_FLOAT64, &b));
    OK(td_randperm(50, TD_INT64, &d));
    for (int i = 0; i < 100; i++) ck_assert_double_eq(td_get_flat(a, i), td_get_flat(b, i));
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) {
        ck_assert_double_eq(td_get_flat(c, i), td_get_flat(d, i));
        int k = (int)td_get_flat(c, i);
        ck_assert(k >= 0 && k < 50);
        ck_assert_int_eq(seen[k], 0);
        seen[k] = 1;
    }
    rel(a);
    rel(b);
    rel(c);
    rel(d);
    OK(td_rand(1, (int64_t[]){1000}, TD_FLOAT32, &a));
    for (int i = 0; i < 1000; i++) ck_assert(td_get_flat(a, i) >= 0 && td_get_flat(a, i) < 1);
    rel(a);
    OK(td_randint(-2, 3, 1, (int64_t[]){1000}, TD_INT64, &a));
    int lo = 0, hi = 0;
    for (int i = 0; i < 1000; i++) {
        double v = td_get_flat(a, i);
        ck_assert(v >= -2 && v < 3 && v == floor(v));
        lo |= v == -2;
        hi |= v == 2;
    }
    ck_assert(lo && hi);
    rel(a);
}
END_TEST

/* ---- elementwise ---------------------------------------------------------- */

START_TEST(test_unary)
{
    double v[4] = {-1.5, 0, 0.5, 2};
    td_tensor *x = mk1(4, v), *out = NULL;
    struct {
        td_unary_op op;
        double want[4];
    } cases[] = {
        {TD_EXP, {exp(-1.5), 1, exp(0.5), exp(2)}},
        {TD_ABS, {1.5, 0, 0.5, 2}},
        {TD_NEG, {1.5, 0, -0.5, -2}},
        {TD_SIN, {sin(-1.5), 0, sin(0.5), sin(2)}},
        {TD_COS, {cos(-1.5), 1, cos(0.5), cos(2)}},
        {TD_TANH, {tanh(-1.5), 0, tanh(0.5), tanh(2)}},
        {TD_SIGMOID, {1 / (1 + exp(1.5)), 0.5, 1 / (1 + exp(-0.5)), 1 / (1 + exp(-2))}},
        {TD_RELU, {0, 0, 0.5, 2}},
        {TD_GELU,
         {-1.5 * 0.5 * erfc(1.5 / sqrt(2)), 0, 0.5 * 0.5 * erfc(-0.5 / sqrt(2)),
          2 * 0.5 * erfc(-2 / sqrt(2))}},
        {TD_SIGN, {-1, 0, 1, 1}},
        {TD_SQUARE, {2.25, 0, 0.25, 4}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        OK(td_unary(cases[i].op, x, &out));
        ck_assert_int_eq(out->dtype, TD_FLOAT64);
        check_values(out, 4, cases[i].want, TOL);
        rel(out);
    }
    double p[3] = {0.25, 1, 4};
    td_tensor *y = mk1(3, p);
    OK(td_unary(TD_LOG, y, &out));
    check_values(out, 3, (double[]){log(0.25), 0, log(4)}, TOL);
    rel(out);
    OK(td_unary(TD_LOG1P, y, &out));
    check_values(out, 3, (double[]){log1p(0.25), log(2), log(5)}, TOL);
    rel(out);
    OK(td_unary(TD_SQRT, y, &out));
    check_values(out, 3, (double[]){0.5, 1, 2}, TOL);
    rel(out);
    OK(td_unary(TD_RECIPROCAL, y, &out));
    check_values(out, 3, (double[]){4, 1, 0.25}, TOL);
    rel(out);
    /* stable at extremes */
    td_tensor *e = mk1(2, (double[]){-800, 800});
    OK(td_unary(TD_SIGMOID, e, &out));
    check_values(out, 2, (double[]){0, 1}, TOL);
    rel(out);
    OK(td_unary(TD_TANH, e, &out));
    check_values(out, 2, (double[]){-1, 1}, TOL);
    rel(out);
    rel(e);
    /* float32 stays float32 */
    td_tensor *f = mk(1, (int64_t[]){2}, TD_FLOAT32, (double[]){0, 1});
    OK(td_unary(TD_EXP, f, &out));
    ck_assert_int_eq(out->dtype, TD_FLOAT32);
    check_values(out, 2, (double[]){1, exp(1)}, 1e-6);
    rel(out);
    rel(f);
    rel(y);
    rel(x);
}
END_TEST

START_TEST(test_binary)
{
    double a[4] = {1, 2, 3, 4}, b[4] = {2, -1, 0.5, 4};
    td_tensor *x = mk2(2, 2, a), *y = mk2(2, 2, b), *out = NULL;
    struct {
        td_binary_op op;
        double want[4];
        td_dtype dt;
    } cases[] = {
        {TD_ADD, {3, 1, 3.5, 8}, TD_FLOAT64},
        {TD_SUB, {-1, 3, 2.5, 0}, TD_FLOAT64},
        {TD_MUL, {2, -2, 1.5, 16}, TD_FLOAT64},
        {TD_DIV, {0.5, -2, 6, 1}, TD_FLOAT64},
        {TD_POW, {1, 0.5, sqrt(3), 256}, TD_FLOAT64},
        {TD_MAXIMUM, {2, 2, 3, 4}, TD_FLOAT64},
        {TD_MINIMUM, {1, -1, 0.5, 4}, TD_FLOAT64},
        {TD_EQ, {0, 0, 0, 1}, TD_UINT8},
        {TD_NE, {1, 1, 1, 0}, TD_UINT8},
        {TD_LT, {1, 0, 0, 0}, TD_UINT8},
        {TD_LE, {1, 0, 0, 1}, TD_UINT8},
        {TD_GT, {0, 1, 1, 0}, TD_UINT8},
        {TD_GE, {0, 1, 1, 1}, TD_UINT8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        OK(td_binary(cases[i].op, x, y, &out));
        ck_assert_int_eq(out->dtype, cases[i].dt);
        check_values(out, 4, cases[i].want, TOL);
        rel(out);
    }
    /* scalars on either side */
    OK(td_binary_scalar(TD_SUB, x, 1, false, &out));
    check_values(out, 4, (double[]){0, 1, 2, 3}, 0);
    rel(out);
    OK(td_binary_scalar(TD_SUB, x, 1, true, &out));
    check_values(out, 4, (double[]){0, -1, -2, -3}, 0);
    rel(out);
    OK(td_binary_scalar(TD_DIV, x, 8, true, &out));
    check_values(out, 4, (double[]){8, 4, 8.0 / 3, 2}, TOL);
    rel(out);
    OK(td_binary_scalar(TD_GT, x, 2, false, &out));
    ck_assert_int_eq(out->dtype, TD_UINT8);
    check_values(out, 4, (double[]){0, 0, 1, 1}, 0);
    rel(out);
    OK(td_pow_scalar(x, 2, &out));
    check_values(out, 4, (double[]){1, 4, 9, 16}, TOL);
    rel(out);
    OK(td_pow_scalar(x, -0.5, &out));
    check_values(out, 4, (double[]){1, 1 / sqrt(2), 1 / sqrt(3), 0.5}, TOL);
    rel(out);
    OK(td_clamp(y, -0.5, 1, &out));
    check_values(out, 4, (double[]){1, -0.5, 0.5, 1}, 0);
    rel(out);
    OK(td_clamp(y, -INFINITY, 0.75, &out));
    check_values(out, 4, (double[]){0.75, -1, 0.5, 0.75}, 0);
    rel(out);

    /* dtype promotion: int64 + float32 -> float32, int64 + int64 -> int64 */
    td_tensor *i = mk(1, (int64_t[]){2}, TD_INT64, (double[]){3, -4});
    td_tensor *f = mk(1, (int64_t[]){2}, TD_FLOAT32, (double[]){0.5, 0.5});
    OK(td_binary(TD_ADD, i, f, &out));
    ck_assert_int_eq(out->dtype, TD_FLOAT32);
    check_values(out, 2, (double[]){3.5, -3.5}, 0);
    rel(out);
    OK(td_binary(TD_MUL, i, i, &out));
    ck_assert_int_eq(out->dtype, TD_INT64);
    check_values(out, 2, (double[]){9, 16}, 0);
    rel(out);
    rel(i);
    rel(f);

    /* where and masked_fill (uint8 conditions) */
    td_tensor *cond = NULL;
    OK(td_binary(TD_GT, x, y, &cond));
    OK(td_where(cond, x, y, &out));
    check_values(out, 4, (double[]){2, 2, 3, 4}, 0);
    rel(out);
    td_tensor *mask = mk(1, (int64_t[]){2}, TD_UINT8, (double[]){1, 0});
    OK(td_masked_fill(x, mask, -9, &out)); /* the mask broadcasts over rows */
    check_values(out, 4, (double[]){-9, 2, -9, 4}, 0);
    rel(out);
    rel(mask);
    rel(cond);

    /* in place */
    td_tensor *z = NULL;
    OK(td_clone(x, &z));
    OK(td_binary_(TD_ADD, z, y));
    check_values(z, 4, (double[]){3, 1, 3.5, 8}, 0);
    td_tensor *row = mk1(2, (double[]){10, 100});
    OK(td_binary_(TD_MUL, z, row));
    check_values(z, 4, (double[]){30, 100, 35, 800}, 0);
    OK(td_copy_(z, row));
    check_values(z, 4, (double[]){10, 100, 10, 100}, 0);
    OK(td_fill_(z, 0.5));
    check_values(z, 4, (double[]){0.5, 0.5, 0.5, 0.5}, 0);
    check_values(x, 4, a, 0); /* the clone is its own storage */
    rel(row);
    rel(z);
    rel(x);
    rel(y);
}
END_TEST

/* ---- reductions ------------------------------------------------------------ */

START_TEST(test_reductions)
{
    /* [[1, 5, 3], [4, 2, 6]] */
    double v[6] = {1, 5, 3, 4, 2, 6};
    td_tensor *x = mk2(2, 3, v), *out = NULL, *idx = NULL;

    OK(td_sum(x, 0, true, false, &out));
    ck_assert_int_eq(out->ndim, 0);
    check_values(out, 1, (double[]){21}, 0);
    rel(out);
    OK(td_sum(x, 1, false, false, &out));
    check_shape(out, 1, (int64_t[]){2});
    check_values(out, 2, (double[]){9, 12}, 0);
    rel(out);
    OK(td_sum(x, 0, false, true, &out));
    check_shape(out, 2, (int64_t[]){1, 3});
    check_values(out, 3, (double[]){5, 7, 9}, 0);
    rel(out);
    OK(td_sum(x, -1, false, true, &out));
    check_shape(out, 2, (int64_t[]){2, 1});
    rel(out);
    OK(td_mean(x, 0, false, false, &out));
    check_values(out, 3, (double[]){2.5, 3.5, 4.5}, TOL);
    rel(out);
    OK(td_mean(x, 0, true, false, &out));
    check_values(out, 1, (double[]){3.5}, TOL);
    rel(out);
    OK(td_prod(x, 1, false, false, &out));
    check_values(out, 2, (double[]){15, 48}, 0);
    rel(out);
    OK(td_prod(x, 0, true, false, &out));
    check_values(out, 1, (double[]){720}, 0);
    rel(out);
    /* var of {1,5,3} = 4 (unbiased), of {4,2,6} = 4 */
    OK(td_var(x, 1, false, false, 1, &out));
    check_values(out, 2, (double[]){4, 4}, TOL);
    rel(out);
    OK(td_var(x, 1, false, false, 0, &out));
    check_values(out, 2, (double[]){8.0 / 3, 8.0 / 3}, TOL);
    rel(out);
    OK(td_std(x, 0, true, false, 1, &out)); /* all: mean 3.5, sum sq dev 17.5, /5 */
    check_values(out, 1, (double[]){sqrt(3.5)}, TOL);
    rel(out);
    OK(td_norm(x, 2, 0, true, false, &out));
    check_values(out, 1, (double[]){sqrt(91)}, TOL);
    rel(out);
    OK(td_norm(x, 1, 0, false, true, &out));
    check_shape(out, 2, (int64_t[]){1, 3});
    check_values(out, 3, (double[]){5, 7, 9}, TOL);
    rel(out);

    OK(td_max(x, 1, false, false, &out, &idx));
    check_values(out, 2, (double[]){5, 6}, 0);
    ck_assert_int_eq(idx->dtype, TD_INT64);
    check_values(idx, 2, (double[]){1, 2}, 0);
    rel(out);
    rel(idx);
    OK(td_min(x, 0, false, true, &out, &idx));
    check_shape(out, 2, (int64_t[]){1, 3});
    check_values(out, 3, (double[]){1, 2, 3}, 0);
    check_values(idx, 3, (double[]){0, 1, 0}, 0);
    rel(out);
    rel(idx);
    OK(td_max(x, 0, true, false, &out, NULL));
    check_values(out, 1, (double[]){6}, 0);
    rel(out);
    OK(td_argmax(x, 0, true, false, &out));
    ck_assert_int_eq(out->dtype, TD_INT64);
    check_values(out, 1, (double[]){5}, 0);
    rel(out);
    OK(td_argmin(x, 1, false, false, &out));
    check_values(out, 2, (double[]){0, 1}, 0);
    rel(out);

    /* softmax and log_softmax, stable at +-1e4 */
    double big[3] = {1e4, -1e4, 1e4};
    td_tensor *b = mk1(3, big);
    OK(td_softmax(b, 0, &out));
    check_values(out, 3, (double[]){0.5, 0, 0.5}, TOL);
    rel(out);
    OK(td_log_softmax(b, -1, &out));
    check_values(out, 3, (double[]){-log(2), -2e4 - log(2), -log(2)}, TOL);
    rel(out);
    rel(b);
    OK(td_softmax(x, 1, &out));
    double d = exp(1) + exp(5) + exp(3);
    ck_assert_double_eq_tol(td_get_flat(out, 0), exp(1) / d, 1e-15);
    ck_assert_double_eq_tol(td_get_flat(out, 1), exp(5) / d, 1e-15);
    rel(out);

    /* int64 sums stay int64 */
    td_tensor *n = mk(1, (int64_t[]){3}, TD_INT64, (double[]){7, -2, 5});
    OK(td_sum(n, 0, true, false, &out));
    ck_assert_int_eq(out->dtype, TD_INT64);
    check_values(out, 1, (double[]){10}, 0);
    rel(out);
    rel(n);
    rel(x);
}
END_TEST

/* the same bits whatever the thread count */
START_TEST(test_reduction_threads)
{
    td_tensor *x = NULL, *s1 = NULL, *s2 = NULL;
    td_manual_seed(5);
    OK(td_randn(1, (int64_t[]){3000000}, TD_FLOAT32, &x));
    int saved = td_get_num_threads();
    td_set_num_threads(1);
    ck_assert_int_eq(td_get_num_threads(), 1);
    OK(td_sum(x, 0, true, false, &s1));
    td_set_num_threads(2);
    OK(td_sum(x, 0, true, false, &s2));
    td_set_num_threads(saved);
    double a, b;
    OK(td_item(s1, &a));
    OK(td_item(s2, &b));
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    rel(s1);
    rel(s2);
    rel(x);
}
END_TEST

/* ---- linear algebra ---------------------------------------------------------- */

START_TEST(test_linalg)
{
    /* [[1,2,3],[4,5,6]] @ [[1,0],[0,1],[1,1]] = [[4,5],[10,11]] */
    double av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {1, 0, 0, 1, 1, 1};
    for (int k = 0; k < 2; k++) {
        td_dtype dt = k == 0 ? TD_FLOAT64 : TD_FLOAT32;
        td_tensor *a = mk(2, (int64_t[]){2, 3}, dt, av), *b = mk(2, (int64_t[]){3, 2}, dt, bv),
                  *out = NULL;
        OK(td_mm(a, b, &out));
        ck_assert_int_eq(out->dtype, dt);
        check_shape(out, 2, (int64_t[]){2, 2});
        check_values(out, 4, (double[]){4, 5, 10, 11}, 1e-6);
        rel(out);
        /* transposed operands (non-contiguous) */
        td_tensor *at = NULL, *bt = NULL;
        OK(td_t(a, &at));
        OK(td_t(b, &bt));
        OK(td_mm(bt, at, &out)); /* (b^T a^T) = (ab)^T */
        check_values(out, 4, (double[]){4, 10, 5, 11}, 1e-6);
        rel(out);
        rel(at);
        rel(bt);
        /* addmm: 0.5 * [1,2] + 2 * ab */
        td_tensor *in = mk(1, (int64_t[]){2}, dt, (double[]){1, 2});
        OK(td_addmm(in, a, b, 0.5, 2, &out));
        check_values(out, 4, (double[]){8.5, 11, 20.5, 23}, 1e-6);
        rel(out);
        rel(in);
        rel(a);
        rel(b);
    }
    /* matmul: 1-d and 1-d is a dot product, 0-dim result */
    td_tensor *u = mk1(3, (double[]){1, 2, 3}), *w = mk1(3, (double[]){4, -5, 6}), *out = NULL;
    OK(td_matmul(u, w, &out));
    ck_assert_int_eq(out->ndim, 0);
    check_values(out, 1, (double[]){12}, 0);
    rel(out);
    /* matrix @ vector */
    td_tensor *m = mk2(2, 3, (double[]){1, 0, 1, 0, 1, 0});
    OK(td_matmul(m, u, &out));
    check_shape(out, 1, (int64_t[]){2});
    check_values(out, 2, (double[]){4, 2}, 0);
    rel(out);
    /* bmm and broadcast batch matmul: (2,1,2,3) @ (3,3,1) -> (2,3,2,1) */
    td_tensor *ba = NULL, *bb = NULL;
    OK(td_ones(3, (int64_t[]){2, 2, 3}, TD_FLOAT64, &ba));
    OK(td_full(3, (int64_t[]){2, 3, 1}, 2, TD_FLOAT64, &bb));
    OK(td_bmm(ba, bb, &out));
    check_shape(out, 3, (int64_t[]){2, 2, 1});
    check_values(out, 4, (double[]){6, 6, 6, 6}, 0);
    rel(out);
    rel(ba);
    rel(bb);
    OK(td_ones(4, (int64_t[]){2, 1, 2, 3}, TD_FLOAT64, &ba));
    OK(td_full(3, (int64_t[]){3, 3, 1}, 0.5, TD_FLOAT64, &bb));
    OK(td_matmul(ba, bb, &out));
    check_shape(out, 4, (int64_t[]){2, 3, 2, 1});
    ck_assert_double_eq(td_get_flat(out, 11), 1.5);
    rel(out);
    rel(ba);
    rel(bb);
    rel(m);
    rel(u);
    rel(w);
}
END_TEST

/* ---- indexing, joining ------------------------------------------------------ */

START_TEST(test_indexing)
{
    /* x = [[0,1,2],[3,4,5],[6,7,8]] */
    td_tensor *a = NULL, *x = NULL, *out = NULL;
    OK(td_arange(0, 9, 1, TD_FLOAT64, &a));
    OK(td_view(a, 2, (int64_t[]){3, 3}, &x));
    td_tensor *i = idx1(3, (double[]){2, 0, 2});
    OK(td_index_select(x, 0, i, &out));
    check_values(out, 9, (double[]){6, 7, 8, 0, 1, 2, 6, 7, 8}, 0);
    rel(out);
    OK(td_index_select(x, 1, i, &out));
    check_values(out, 9, (double[]){2, 0, 2, 5, 3, 5, 8, 6, 8}, 0);
    rel(out);
    td_tensor *g = mk(2, (int64_t[]){3, 1}, TD_INT64, (double[]){2, 0, 1});
    OK(td_gather(x, 1, g, &out));
    check_shape(out, 2, (int64_t[]){3, 1});
    check_values(out, 3, (double[]){2, 3, 7}, 0);
    rel(out);
    /* scatter a row of sources into a zero tensor along dim 1 */
    td_tensor *z = NULL, *src = mk2(3, 1, (double[]){10, 20, 30});
    OK(td_zeros(2, (int64_t[]){3, 3}, TD_FLOAT64, &z));
    OK(td_scatter(z, 1, g, src, false, &out));
    check_values(out, 9, (double[]){0, 0, 10, 20, 0, 0, 0, 30, 0}, 0);
    rel(out);
    td_tensor *g2 = mk(2, (int64_t[]){1, 2}, TD_INT64, (double[]){1, 1});
    td_tensor *s2 = mk2(1, 2, (double[]){5, 6});
    OK(td_scatter(x, 0, g2, s2, true, &out)); /* accumulate */
    check_values(out, 9, (double[]){0, 1, 2, 8, 10, 5, 6, 7, 8}, 0);
    rel(out);
    OK(td_scatter_scalar(z, 1, g, -1, &out));
    check_values(out, 9, (double[]){0, 0, -1, -1, 0, 0, 0, -1, 0}, 0);
    rel(out);
    td_tensor *ia = idx1(2, (double[]){0, 0});
    td_tensor *rows = mk2(2, 3, (double[]){1, 1, 1, 2, 2, 2});
    OK(td_index_add(z, 0, ia, rows, &out));
    check_values(out, 9, (double[]){3, 3, 3, 0, 0, 0, 0, 0, 0}, 0);
    rel(out);
    rel(rows);
    rel(ia);
    rel(g2);
    rel(s2);
    rel(src);
    rel(z);
    rel(g);
    rel(i);

    /* cat and stack */
    td_tensor *p = mk2(1, 3, (double[]){-1, -2, -3}), *ts[2] = {x, p};
    OK(td_cat(2, ts, 0, &out));
    check_shape(out, 2, (int64_t[]){4, 3});
    check_values(out, 12, (double[]){0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3}, 0);
    rel(out);
    td_tensor *q = NULL, *r2[2];
    OK(td_t(p, &q));
    r2[0] = x;
    r2[1] = q;
    OK(td_cat(2, r2, 1, &out));
    check_shape(out, 2, (int64_t[]){3, 4});
    check_values(out, 12, (double[]){0, 1, 2, -1, 3, 4, 5, -2, 6, 7, 8, -3}, 0);
    rel(out);
    td_tensor *s[2] = {p, p};
    OK(td_stack(2, s, 1, &out));
    check_shape(out, 3, (int64_t[]){1, 2, 3});
    rel(out);
    OK(td_stack(2, s, 0, &out));
    check_shape(out, 3, (int64_t[]){2, 1, 3});
    rel(out);
    rel(q);
    rel(p);

    /* dtype conversion and detach */
    OK(td_to_dtype(x, TD_INT64, &out));
    ck_assert_int_eq(out->dtype, TD_INT64);
    check_values(out, 9, (double[]){0, 1, 2, 3, 4, 5, 6, 7, 8}, 0);
    rel(out);
    td_tensor *fl = mk1(2, (double[]){1.75, -2.75});
    OK(td_to_dtype(fl, TD_INT64, &out));
    check_values(out, 2, (double[]){1, -2}, 0); /* toward zero */
    rel(out);
    rel(fl);
    OK(td_detach(x, &out));
    ck_assert_ptr_eq(out->storage, x->storage);
    ck_assert(!out->requires_grad);
    rel(out);
    rel(x);
    rel(a);
}
END_TEST

/* ---- autograd through the C API ------------------------------------------------ */

START_TEST(test_autograd_basics)
{
    double v[3] = {1, -2, 0.5};
    td_tensor *x = mk1(3, v), *sq = NULL, *s = NULL;
    OK(td_set_requires_grad(x, true));
    ck_assert(td_is_leaf(x));
    ck_assert(td_grad_enabled());
    OK(td_pow_scalar(x, 2, &sq));
    ck_assert(!td_is_leaf(sq));
    ck_assert(sq->requires_grad);
    ck_assert_ptr_nonnull(td_grad_fn_name(sq));
    OK(td_sum(sq, 0, true, false, &s));
    OK(td_backward(s, NULL, false));
    check_values(x->grad, 3, (double[]){2, -4, 1}, TOL);
    td_set_grad(x, NULL);
    ck_assert_ptr_null(x->grad);
    rel(s);
    rel(sq);

    /* no grad mode records nothing */
    bool prev = td_set_grad_enabled(false);
    ck_assert(prev);
    OK(td_unary(TD_EXP, x, &sq));
    ck_assert(!sq->requires_grad);
    ck_assert_ptr_null(sq->grad_fn);
    td_set_grad_enabled(prev);
    rel(sq);

    /* backward of a non-scalar with an explicit gradient */
    td_tensor *y = NULL, *gout = mk1(3, (double[]){1, 0, 2});
    OK(td_binary_scalar(TD_MUL, x, 3, false, &y));
    OK(td_backward(y, gout, false));
    check_values(x->grad, 3, (double[]){3, 0, 6}, TOL);
    rel(gout);
    rel(y);
    rel(x);
}
END_TEST

/* ---- every error status ------------------------------------------------------------ */

START_TEST(test_errors)
{
    td_tensor *a = NULL, *b = NULL, *out = NULL;
    OK(td_ones(2, (int64_t[]){2, 3}, TD_FLOAT64, &a));
    OK(td_ones(2, (int64_t[]){2, 3}, TD_FLOAT64, &b));

    /* TD_ESHAPE */
    check_error(td_mm(a, b, &out), TD_ESHAPE, 1, "(2,3)", "multiplied");
    ck_assert_ptr_null(out);
    check_error(td_matmul(a, b, &out), TD_ESHAPE, 1, "(2,3)", "multiplied");
    td_tensor *c = NULL;
    OK(td_ones(1, (int64_t[]){4}, TD_FLOAT64, &c));
    check_error(td_binary(TD_ADD, a, c, &out), TD_ESHAPE, 2, "(2,3)", "(4)");
    check_error(td_view(a, 1, (int64_t[]){4}, &out), TD_ESHAPE, 2, "(2,3)", NULL);
    check_error(td_view(a, 2, (int64_t[]){-1, -1}, &out), TD_ESHAPE, 2, "-1", NULL);
    check_error(td_expand(a, 2, (int64_t[]){4, 3}, &out), TD_ESHAPE, 2, "(2,3)", NULL);
    td_tensor *ts[2] = {a, c};
    check_fails(td_cat(2, ts, 0, &out), TD_ESHAPE, "cat", NULL);
    check_fails(td_stack(2, ts, 0, &out), TD_ESHAPE, "stack", NULL);
    check_error(td_zeros(1, (int64_t[]){-2}, TD_FLOAT32, &out), TD_ESHAPE, 1, "-2", NULL);

    /* TD_EDTYPE */
    td_tensor *n = NULL;
    OK(td_zeros(1, (int64_t[]){2}, TD_INT64, &n));
    check_error(td_set_requires_grad(n, true), TD_EDTYPE, 1, "int64", NULL);
    td_tensor *fidx = mk2(2, 1, (double[]){0, 1});
    check_error(td_gather(a, 1, fidx, &out), TD_EDTYPE, 3, "int64", "float64");
    td_tensor *fi1 = mk1(1, (double[]){0});
    check_error(td_index_select(a, 0, fi1, &out), TD_EDTYPE, 3, "int64", NULL);
    check_error(td_where(a, a, b, &out), TD_EDTYPE, 1, "uint8", NULL);
    check_error(td_masked_fill(a, a, 0, &out), TD_EDTYPE, 2, "uint8", NULL);
    check_fails(td_randn(1, (int64_t[]){2}, TD_INT64, &out), TD_EDTYPE, "int64", NULL);

    /* TD_ERANGE */
    check_error(td_sum(a, 2, false, false, &out), TD_ERANGE, 2, "dim 2", NULL);
    check_error(td_transpose(a, 0, -3, &out), TD_ERANGE, 3, "-3", NULL);
    check_error(td_softmax(a, 5, &out), TD_ERANGE, 2, "5", NULL);
    double v;
    check_error(td_get(a, 2, (int64_t[]){0, 3}, &v), TD_ERANGE, 2, "3", NULL);
    check_error(td_get(a, 2, (int64_t[]){-3, 0}, &v), TD_ERANGE, 1, "-3", NULL);
    check_error(td_select(a, 0, 2, &out), TD_ERANGE, 3, "2", NULL);
    check_error(td_narrow(a, 1, 2, 2, &out), TD_ERANGE, 4, "2", NULL);
    check_error(td_narrow(a, 1, 3, 1, &out), TD_ERANGE, 4, "3", NULL);
    td_tensor *bad = mk(2, (int64_t[]){2, 1}, TD_INT64, (double[]){0, 3});
    check_error(td_gather(a, 1, bad, &out), TD_ERANGE, 3, "3", "gather");
    td_tensor *bad1 = idx1(1, (double[]){2});
    check_error(td_index_select(a, 0, bad1, &out), TD_ERANGE, 3, "2", "index_select");

    /* TD_EINVAL */
    check_error(td_clamp(a, 1, -1, &out), TD_EINVAL, 2, "clamp", NULL);
    check_error(td_arange(0, 1, 0, TD_FLOAT32, &out), TD_EINVAL, 3, "step", NULL);
    td_dtype dt;
    ck_assert_int_eq(td_dtype_parse("complex64", &dt), TD_EINVAL);
    ck_assert_ptr_nonnull(strstr(td_last_error(), "complex64"));
    check_error(td_item(a, &v), TD_EINVAL, 1, "6", NULL);
    check_error(td_get(a, 1, (int64_t[]){0}, &v), TD_EINVAL, 1, NULL, NULL);

    /* TD_EGRAD: backward twice without retain_graph; backward with nothing to do */
    td_tensor *x = NULL, *e = NULL, *s = NULL;
    OK(td_ones(1, (int64_t[]){3}, TD_FLOAT64, &x));
    OK(td_set_requires_grad(x, true));
    OK(td_unary(TD_EXP, x, &e));
    OK(td_sum(e, 0, true, false, &s));
    OK(td_backward(s, NULL, false));
    check_fails(td_backward(s, NULL, false), TD_EGRAD, "second time", NULL);
    ck_assert_ptr_nonnull(strstr(td_last_error(), "retain_graph"));
    check_error(td_backward(a, NULL, false), TD_EGRAD, 1, "grad", NULL);
    /* non-scalar without a gradient */
    td_tensor *e2 = NULL;
    OK(td_unary(TD_EXP, x, &e2));
    check_error(td_backward(e2, NULL, false), TD_EGRAD, 1, NULL, NULL);
    /* in-place on a saved tensor */
    td_tensor *m = NULL, *sq = NULL, *s2 = NULL;
    OK(td_binary_scalar(TD_MUL, x, 1, false, &m));
    OK(td_binary(TD_MUL, m, m, &sq));
    OK(td_sum(sq, 0, true, false, &s2));
    OK(td_fill_(m, 2));
    ck_assert_int_eq(td_backward(s2, NULL, false), TD_EGRAD);
    ck_assert_msg(strstr(td_last_error(), "in-place") || strstr(td_last_error(), "modified"), "%s",
                  td_last_error());

    /* errors leave nothing behind: a normal op still works */
    td_clear_error();
    ck_assert_int_eq(td_last_error_arg(), 0);
    OK(td_binary(TD_ADD, a, b, &out));
    check_values(out, 6, (double[]){2, 2, 2, 2, 2, 2}, 0);
    rel(out);

    td_tensor *all[] = {a, b, c, n, fidx, fi1, bad, bad1, x, e, s, e2, m, sq, s2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) rel(all[i]);
}
END_TEST

/* storage is freed when the last view goes */
START_TEST(test_refcounts)
{
    td_memory_stats m0, m1, m2;
    td_memory(&m0);
    td_tensor *a = NULL, *v = NULL;
    OK(td_zeros(1, (int64_t[]){1 << 20}, TD_FLOAT64, &a));
    OK(td_narrow(a, 0, 10, 100, &v));
    td_memory(&m1);
    ck_assert_int_ge(m1.live_bytes - m0.live_bytes, 8 << 20);
    ck_assert_int_ge(m1.peak_bytes, m1.live_bytes);
    rel(a); /* the view keeps the storage */
    ck_assert_double_eq(td_get_flat(v, 5), 0);
    rel(v);
    td_memory(&m2);
    ck_assert_int_eq(m2.live_bytes, m0.live_bytes);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shapes_strides);
    tcase_add_test(tc, test_get_set_item);
    tcase_add_test(tc, test_views);
    tcase_add_test(tc, test_broadcasting);
    tcase_add_test(tc, test_creation);
    tcase_add_test(tc, test_random);
    tcase_add_test(tc, test_unary);
    tcase_add_test(tc, test_binary);
    tcase_add_test(tc, test_reductions);
    tcase_add_test(tc, test_reduction_threads);
    tcase_add_test(tc, test_linalg);
    tcase_add_test(tc, test_indexing);
    tcase_add_test(tc, test_autograd_basics);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_refcounts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
