/* The CPU backend table called directly on small hand-built tensors, with
 * expected values worked out by hand or by a plain reference loop. */
#include "internal.h"
#include "cpu/cpu.h"

#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static const td_backend *be;

static td_tensor *make(td_dtype dt, int ndim, const int64_t *shape)
{
    td_tensor *t = NULL;
    ck_assert_int_eq(td_empty(ndim, shape, dt, &t), TD_OK);
    return t;
}

static td_tensor *make1(td_dtype dt, int64_t n) { return make(dt, 1, &n); }

static td_tensor *make2(td_dtype dt, int64_t r, int64_t c)
{
    int64_t s[2] = {r, c};
    return make(dt, 2, s);
}

static char *base(const td_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)td_dtype_size(t->dtype);
}

/* element at flat storage position i (from the view's offset) */
static double at(const td_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case TD_FLOAT32: return ((float *)base(t))[i];
    case TD_FLOAT64: return ((double *)base(t))[i];
    case TD_INT64: return (double)((int64_t *)base(t))[i];
    default: return ((uint8_t *)base(t))[i];
    }
}

static void put(td_tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case TD_FLOAT32: ((float *)base(t))[i] = (float)v; break;
    case TD_FLOAT64: ((double *)base(t))[i] = v; break;
    case TD_INT64: ((int64_t *)base(t))[i] = (int64_t)v; break;
    default: ((uint8_t *)base(t))[i] = (uint8_t)v; break;
    }
}

static void fill_from(td_tensor *t, const double *v)
{
    int64_t n = td_numel(t);
    for (int64_t i = 0; i < n; i++) put(t, i, v[i]);
}

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void fill_random(td_tensor *t, double lo, double hi)
{
    int64_t n = td_numel(t);
    for (int64_t i = 0; i < n; i++) put(t, i, lo + (hi - lo) * urand());
}

/* a header-only view sharing t's storage; not reference-counted */
static td_tensor view(const td_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                      int64_t offset)
{
    td_tensor v = *t;
    v.ndim = ndim;
    v.offset = offset;
    for (int d = 0; d < ndim; d++) v.shape[d] = shape[d], v.stride[d] = stride[d];
    return v;
}

#define CLOSE(a, b, tol)                                                                           \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a,        \
                  (double)(a), (double)(b))

/* ---- allocator ------------------------------------------------------- */

START_TEST(alloc_aligned_and_cached)
{
    void *p = be->alloc(0, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    be->free(0, p, 100);
    size_t big = (size_t)3 << 20;
    void *q = be->alloc(0, big);
    ck_assert_uint_eq((uintptr_t)q % 64, 0);
    memset(q, 1, big);
    be->free(0, q, big);
    void *r = be->alloc(0, big);
    ck_assert_ptr_eq(q, r); /* reused from the cache, pages already there */
    be->free(0, r, big);
    td_cpu_empty_cache();
}
END_TEST

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

/* a cached block of another size goes back to the system before a new
 * block is mapped, so what the process holds stays within the cache's cap
 * (the larger of 256 MiB and the peak in use, here 264 MiB): without the
 * trim, 264 + 132 MiB would be resident */
START_TEST(alloc_trims_before_mapping)
{
    td_cpu_empty_cache();
    size_t a = (size_t)264 << 20, b = (size_t)132 << 20;
    long base = rss_kb();
    if (base < 0) return; /* no /proc: nothing to measure */
    void *p = be->alloc(0, a);
    ck_assert_ptr_nonnull(p);
    memset(p, 1, a);
    be->free(0, p, a); /* cached: it fits the cap */
    ck_assert_int_gt(rss_kb() - base, 200 << 10);
    void *q = be->alloc(0, b);
    ck_assert_ptr_nonnull(q);
    memset(q, 1, b);
    long grown = rss_kb() - base;
    ck_assert_msg(grown < 300 << 10, "resident set grew by %ld MiB", grown >> 10);
    be->free(0, q, b);
    td_cpu_empty_cache();
    ck_assert_msg(rss_kb() - base < 64 << 10, "emptied cache left %ld MiB",
                  (rss_kb() - base) >> 10);
}
END_TEST

/* ---- copy and fill ---------------------------------------------------- */

START_TEST(copy_transposed)
{
    td_tensor *x = make2(TD_FLOAT32, 2, 3), *y = make2(TD_FLOAT32, 3, 2);
    double v[6] = {1, 2, 3, 4, 5, 6};
    fill_from(x, v);
    int64_t sh[2] = {3, 2}, st[2] = {1, 3};
    td_tensor xt = view(x, 2, sh, st, 0);
    be->copy(y, &xt);
    double want[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) CLOSE(at(y, i), want[i], 0);
    td_tensor_release(x);
    td_tensor_release(y);
}
END_TEST

START_TEST(copy_converts)
{
    td_tensor *x = make1(TD_FLOAT64, 5), *i = make1(TD_INT64, 5), *u = make1(TD_UINT8, 5);
    double v[5] = {-2.7, 2.7, 300, -1, 255.9};
    fill_from(x, v);
    be->copy(i, x);
    be->copy(u, x);
    double wi[5] = {-2, 2, 300, -1, 255}, wu[5] = {254, 2, 44, 255, 255};
    for (int k = 0; k < 5; k++) {
        CLOSE(at(i, k), wi[k], 0);
        CLOSE(at(u, k), wu[k], 0);
    }
    td_tensor *f = make1(TD_FLOAT32, 5);
    be->copy(f, u);
    CLOSE(at(f, 2), 44, 0);
    td_tensor_release(x);
    td_tensor_release(i);
    td_tensor_release(u);
    td_tensor_release(f);
}
END_TEST

START_TEST(copy_large_contiguous)
{
    int64_t n = 3000000;
    td_tensor *x = make1(TD_FLOAT32, n), *y = make1(TD_FLOAT32, n), *d = make1(TD_FLOAT64, n);
    fill_random(x, -1, 1);
    be->copy(y, x);
    be->copy(d, x);
    ck_assert(memcmp(base(x), base(y), (size_t)n * 4) == 0);
    for (int64_t k = 0; k < n; k += 9973) CLOSE(at(d, k), at(x, k), 0);
    td_tensor_release(x);
    td_tensor_release(y);
    td_tensor_release(d);
}
END_TEST

START_TEST(fill_strided)
{
    td_tensor *x = make1(TD_INT64, 10);
    be->fill(x, 0);
    int64_t sh[1] = {5}, st[1] = {2};
    td_tensor ev = view(x, 1, sh, st, 1);
    be->fill(&ev, 7.9);
    for (int k = 0; k < 10; k++) CLOSE(at(x, k), k % 2 ? 7 : 0, 0);
    td_tensor_release(x);
}
END_TEST

/* ---- unary ------------------------------------------------------------ */

START_TEST(unary_values)
{
    td_tensor *x = make1(TD_FLOAT32, 6), *y = make1(TD_FLOAT32, 6);
    double v[6] = {-100, -1, 0, 1, 100, NAN};
    fill_from(x, v);
    be->unary(TD_SIGMOID, y, x, NULL);
    CLOSE(at(y, 0), 0, 1e-30);
    CLOSE(at(y, 1), 0.26894142, 1e-7);
    CLOSE(at(y, 2), 0.5, 0);
    CLOSE(at(y, 4), 1, 0);
    ck_assert(isnan(at(y, 5)));
    be->unary(TD_GELU, y, x, NULL);
    CLOSE(at(y, 3), 0.84134475, 1e-7);
    CLOSE(at(y, 1), -0.15865525, 1e-7);
    be->unary(TD_RELU, y, x, NULL);
    CLOSE(at(y, 1), 0, 0);
    CLOSE(at(y, 3), 1, 0);
    ck_assert(isnan(at(y, 5)));
    be->unary(TD_EXP, y, x, NULL);
    CLOSE(at(y, 0), 0, 0);
    CLOSE(at(y, 3), 2.7182817, 3e-7);
    ck_assert(isinf(at(y, 4)));
    ck_assert(isnan(at(y, 5)));
    be->unary(TD_SIGN, y, x, NULL);
    CLOSE(at(y, 0), -1, 0);
    CLOSE(at(y, 2), 0, 0);
    td_tensor_release(x);
    td_tensor_release(y);
}
END_TEST

START_TEST(unary_ints)
{
    td_tensor *x = make1(TD_INT64, 3), *y = make1(TD_INT64, 3);
    double v[3] = {-5, 0, 7};
    fill_from(x, v);
    be->unary(TD_ABS, y, x, NULL);
    CLOSE(at(y, 0), 5, 0);
    be->unary(TD_SQUARE, y, x, NULL);
    CLOSE(at(y, 2), 49, 0);
    td_tensor *u = make1(TD_UINT8, 2), *w = make1(TD_UINT8, 2);
    double uv[2] = {1, 200};
    fill_from(u, uv);
    be->unary(TD_NEG, w, u, NULL);
    CLOSE(at(w, 0), 255, 0);
    CLOSE(at(w, 1), 56, 0);
    td_tensor_release(x);
    td_tensor_release(y);
    td_tensor_release(u);
    td_tensor_release(w);
}
END_TEST

/* our vectorised expf against libm's double exp, over its whole range */
START_TEST(expf_accuracy)
{
    int64_t n = 200001;
    td_tensor *x = make1(TD_FLOAT32, n), *y = make1(TD_FLOAT32, n);
    for (int64_t i = 0; i < n; i++) put(x, i, -87.0 + 175.5 * (double)i / (double)(n - 1));
    be->unary(TD_EXP, y, x, NULL);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double want = exp(at(x, i)), rel = fabs(at(y, i) - want) / want;
        worst = rel > worst ? rel : worst;
    }
    ck_assert_msg(worst < 2.5e-7, "expf relative error %g", worst);
    td_tensor_release(x);
    td_tensor_release(y);
}
END_TEST

START_TEST(unary_grad_values)
{
    td_tensor *x = make1(TD_FLOAT64, 3), *y = make1(TD_FLOAT64, 3), *g = make1(TD_FLOAT64, 3),
              *gx = make1(TD_FLOAT64, 3);
    double v[3] = {-1, 0, 2}, ones[3] = {1, 1, 1};
    fill_from(x, v);
    fill_from(g, ones);
    be->unary(TD_SIGMOID, y, x, NULL);
    be->unary_grad(TD_SIGMOID, gx, x, y, g, NULL);
    for (int i = 0; i < 3; i++) CLOSE(at(gx, i), at(y, i) * (1 - at(y, i)), 1e-15);
    be->unary_grad(TD_SIGMOID, gx, x, NULL, g, NULL);
    for (int i = 0; i < 3; i++) CLOSE(at(gx, i), at(y, i) * (1 - at(y, i)), 1e-15);
    be->unary_grad(TD_RELU, gx, x, NULL, g, NULL);
    CLOSE(at(gx, 1), 0, 0);
    CLOSE(at(gx, 2), 1, 0);
    be->unary_grad(TD_ABS, gx, x, NULL, g, NULL);
    CLOSE(at(gx, 0), -1, 0);
    CLOSE(at(gx, 1), 0, 0);
    /* gelu's derivative against a central difference */
    td_tensor *xp = make1(TD_FLOAT64, 3), *xm = make1(TD_FLOAT64, 3), *yp = make1(TD_FLOAT64, 3),
              *ym = make1(TD_FLOAT64, 3);
    double h = 1e-6;
    for (int i = 0; i < 3; i++) put(xp, i, v[i] + h), put(xm, i, v[i] - h);
    be->unary(TD_GELU, yp, xp, NULL);
    be->unary(TD_GELU, ym, xm, NULL);
    be->unary_grad(TD_GELU, gx, x, NULL, g, NULL);
    for (int i = 0; i < 3; i++) CLOSE(at(gx, i), (at(yp, i) - at(ym, i)) / (2 * h), 1e-8);
    td_tensor *ts[] = {x, y, g, gx, xp, xm, yp, ym};
    for (int i = 0; i < 8; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- binary, clamp, where --------------------------------------------- */

START_TEST(binary_broadcast)
{
    td_tensor *a = make2(TD_FLOAT32, 2, 3), *b = make1(TD_FLOAT32, 3), *o = make2(TD_FLOAT32, 2, 3);
    double va[6] = {1, 2, 3, 4, 5, 6}, vb[3] = {10, 20, 30};
    fill_from(a, va);
    fill_from(b, vb);
    int64_t sh[2] = {2, 3}, st[2] = {0, 1};
    td_tensor bb = view(b, 2, sh, st, 0);
    be->binary(TD_ADD, o, a, &bb);
    double want[6] = {11, 22, 33, 14, 25, 36};
    for (int i = 0; i < 6; i++) CLOSE(at(o, i), want[i], 0);
    /* a scalar broadcast on the left, a transposed operand on the right */
    int64_t zst[2] = {0, 0}, tsh[2] = {2, 3}, tst[2] = {1, 2};
    td_tensor s = view(b, 2, sh, zst, 1);    /* 20 everywhere */
    td_tensor at_ = view(a, 2, tsh, tst, 0); /* a viewed (3,2) transposed to (2,3) */
    be->binary(TD_SUB, o, &s, &at_);
    double want2[6] = {19, 17, 15, 18, 16, 14};
    for (int i = 0; i < 6; i++) CLOSE(at(o, i), want2[i], 0);
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(o);
}
END_TEST

START_TEST(binary_nan_and_compare)
{
    td_tensor *a = make1(TD_FLOAT64, 3), *b = make1(TD_FLOAT64, 3), *o = make1(TD_FLOAT64, 3),
              *c = make1(TD_UINT8, 3);
    double va[3] = {NAN, 1, 5}, vb[3] = {1, NAN, 2};
    fill_from(a, va);
    fill_from(b, vb);
    be->binary(TD_MAXIMUM, o, a, b);
    ck_assert(isnan(at(o, 0)) && isnan(at(o, 1)));
    CLOSE(at(o, 2), 5, 0);
    be->binary(TD_MINIMUM, o, a, b);
    ck_assert(isnan(at(o, 0)) && isnan(at(o, 1)));
    CLOSE(at(o, 2), 2, 0);
    be->binary(TD_GT, c, a, b);
    CLOSE(at(c, 0), 0, 0);
    CLOSE(at(c, 2), 1, 0);
    be->binary(TD_NE, c, a, b);
    CLOSE(at(c, 0), 1, 0);
    be->binary(TD_POW, o, b, b);
    CLOSE(at(o, 2), 4, 0);
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(o);
    td_tensor_release(c);
}
END_TEST

START_TEST(binary_ints)
{
    td_tensor *a = make1(TD_INT64, 3), *b = make1(TD_INT64, 3), *o = make1(TD_INT64, 3);
    ((int64_t *)base(a))[0] = INT64_MAX;
    ((int64_t *)base(b))[0] = 1;
    put(a, 1, 3), put(b, 1, 13);
    put(a, 2, 2), put(b, 2, -1);
    be->binary(TD_ADD, o, a, b);
    ck_assert(((int64_t *)base(o))[0] == INT64_MIN);
    be->binary(TD_POW, o, a, b);
    CLOSE(at(o, 1), 1594323, 0);
    CLOSE(at(o, 2), 0, 0);
    td_tensor *u = make1(TD_UINT8, 1), *w = make1(TD_UINT8, 1);
    put(u, 0, 200);
    be->binary(TD_ADD, w, u, u);
    CLOSE(at(w, 0), 144, 0);
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(o);
    td_tensor_release(u);
    td_tensor_release(w);
}
END_TEST

START_TEST(binary_large_parallel)
{
    int64_t n = 1 << 20;
    td_tensor *a = make1(TD_FLOAT32, n), *b = make1(TD_FLOAT32, n), *o = make1(TD_FLOAT32, n);
    fill_random(a, -1, 1);
    fill_random(b, -1, 1);
    be->binary(TD_MUL, o, a, b);
    for (int64_t i = 0; i < n; i++)
        ck_assert(((float *)base(o))[i] == ((float *)base(a))[i] * ((float *)base(b))[i]);
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(o);
}
END_TEST

START_TEST(clamp_and_where)
{
    td_tensor *x = make1(TD_FLOAT32, 4), *o = make1(TD_FLOAT32, 4);
    double v[4] = {-5, 0.5, 5, NAN};
    fill_from(x, v);
    be->clamp(o, x, -INFINITY, 1);
    CLOSE(at(o, 0), -5, 0);
    CLOSE(at(o, 2), 1, 0);
    ck_assert(isnan(at(o, 3)));
    be->clamp(o, x, 0, INFINITY);
    CLOSE(at(o, 0), 0, 0);
    CLOSE(at(o, 2), 5, 0);
    td_tensor *xi = make1(TD_INT64, 4), *oi = make1(TD_INT64, 4);
    double vi[4] = {-5, 0, 5, 9};
    fill_from(xi, vi);
    be->clamp(oi, xi, -1.5, 6.5);
    CLOSE(at(oi, 0), -1, 0);
    CLOSE(at(oi, 3), 6, 0);
    td_tensor *c = make1(TD_UINT8, 4);
    double vc[4] = {1, 0, 1, 0};
    fill_from(c, vc);
    be->where(o, c, x, x);
    CLOSE(at(o, 1), 0.5, 0);
    int64_t sh[1] = {4}, st[1] = {0};
    td_tensor zero = view(o, 1, sh, st, 1);
    td_tensor *o2 = make1(TD_FLOAT32, 4);
    be->where(o2, c, x, &zero);
    CLOSE(at(o2, 0), -5, 0);
    CLOSE(at(o2, 1), 0.5, 0);
    CLOSE(at(o2, 3), 0.5, 0);
    td_tensor *ts[] = {x, o, xi, oi, c, o2};
    for (int i = 0; i < 6; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- reductions -------------------------------------------------------- */

START_TEST(sum_pairwise)
{
    int64_t n = 1000000;
    td_tensor *x = make1(TD_FLOAT32, n), *o = make1(TD_FLOAT32, 1);
    for (int64_t i = 0; i < n; i++) put(x, i, 0.1);
    be->reduce(TD_SUM, o, NULL, x, 1, n, 1);
    /* a running float sum drifts to ~100958; pairwise stays close */
    CLOSE(at(o, 0), 1e6 * (double)0.1f, 0.05);
    td_tensor *e = make1(TD_FLOAT32, 0);
    be->reduce(TD_SUM, o, NULL, e, 1, 0, 1);
    CLOSE(at(o, 0), 0, 0);
    be->reduce(TD_PROD, o, NULL, e, 1, 0, 1);
    CLOSE(at(o, 0), 1, 0);
    td_tensor_release(x);
    td_tensor_release(o);
    td_tensor_release(e);
}
END_TEST

static void sum_ref(const td_tensor *x, int64_t outer, int64_t n, int64_t inner, double *ref)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += at(x, (o * n + i) * inner + c);
            ref[o * inner + c] = s;
        }
}

/* the same bits at 1 and 2 threads, and close to a double sum */
static void check_sum_threads(td_dtype dt, int64_t outer, int64_t n, int64_t inner)
{
    int64_t shape[3] = {outer, n, inner}, osh[2] = {outer, inner};
    td_tensor *x = make(dt, 3, shape), *o1 = make(dt, 2, osh), *o2 = make(dt, 2, osh);
    fill_random(x, -1, 1);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    be->reduce(TD_SUM, o1, NULL, x, outer, n, inner);
    omp_set_num_threads(2);
    be->reduce(TD_SUM, o2, NULL, x, outer, n, inner);
    omp_set_num_threads(saved);
    ck_assert(memcmp(base(o1), base(o2), (size_t)(outer * inner) * td_dtype_size(dt)) == 0);
    double *ref = malloc(sizeof(double) * (size_t)(outer * inner));
    sum_ref(x, outer, n, inner, ref);
    double tol = dt == TD_FLOAT32 ? 1e-5 * sqrt((double)n) + 1e-5 : 1e-12 * (double)n;
    for (int64_t i = 0; i < outer * inner; i++) CLOSE(at(o1, i), ref[i], tol);
    free(ref);
    td_tensor_release(x);
    td_tensor_release(o1);
    td_tensor_release(o2);
}

START_TEST(sum_deterministic)
{
    check_sum_threads(TD_FLOAT32, 1, 3000001, 1); /* one giant row: blocks on threads */
    check_sum_threads(TD_FLOAT32, 1, 200000, 3);  /* few columns, long rows */
    check_sum_threads(TD_FLOAT32, 3, 50000, 70);  /* column tiles */
    check_sum_threads(TD_FLOAT64, 1000, 333, 1);  /* many short rows */
    check_sum_threads(TD_FLOAT64, 2, 9000, 130);
}
END_TEST

START_TEST(max_min_arg)
{
    /* (2, 4, 2): reduce the middle */
    int64_t shape[3] = {2, 4, 2};
    td_tensor *x = make(TD_FLOAT32, 3, shape), *o = make2(TD_FLOAT32, 2, 2),
              *ix = make2(TD_INT64, 2, 2);
    double v[16] = {1,  5, 3,  5, 3,  2, 0,  NAN, /* o=0: col0 1,3,3,0  col1 5,5,2,NaN */
                    -1, 0, -1, 0, -2, 0, -3, 0};
    fill_from(x, v);
    be->reduce(TD_MAX, o, ix, x, 2, 4, 2);
    CLOSE(at(o, 0), 3, 0);
    CLOSE(at(ix, 0), 1, 0); /* first of the equal maxima */
    ck_assert(isnan(at(o, 1)));
    CLOSE(at(ix, 1), 3, 0);
    CLOSE(at(o, 2), -1, 0);
    CLOSE(at(ix, 2), 0, 0);
    CLOSE(at(ix, 3), 0, 0);
    be->reduce(TD_MIN, o, ix, x, 2, 4, 2);
    CLOSE(at(o, 0), 0, 0);
    CLOSE(at(ix, 0), 3, 0);
    CLOSE(at(o, 2), -3, 0);
    be->reduce(TD_ARGMIN, ix, NULL, x, 2, 4, 2);
    CLOSE(at(ix, 2), 3, 0);
    be->reduce(TD_ARGMAX, ix, NULL, x, 1, 16, 1);
    CLOSE(at(ix, 0), 7, 0); /* the NaN */
    be->reduce(TD_PROD, o, NULL, x, 2, 4, 2);
    CLOSE(at(o, 0), 0, 0);
    CLOSE(at(o, 2), 6, 0);
    td_tensor *xi = make1(TD_INT64, 4), *oi = make1(TD_INT64, 1);
    double vi[4] = {3, -7, 11, 100};
    fill_from(xi, vi);
    be->reduce(TD_SUM, oi, NULL, xi, 1, 4, 1);
    CLOSE(at(oi, 0), 107, 0);
    be->reduce(TD_MAX, oi, NULL, xi, 1, 4, 1);
    CLOSE(at(oi, 0), 100, 0);
    td_tensor *ts[] = {x, o, ix, xi, oi};
    for (int i = 0; i < 5; i++) td_tensor_release(ts[i]);
}
END_TEST

/* ---- softmax ----------------------------------------------------------- */

START_TEST(softmax_values)
{
    td_tensor *x = make2(TD_FLOAT32, 3, 3), *y = make2(TD_FLOAT32, 3, 3);
    double v[9] = {2, 1, 0.1, 1e4, -1e4, 0, -INFINITY, 0, -INFINITY};
    fill_from(x, v);
    be->softmax(y, x, 3, 3, 1, false);
    CLOSE(at(y, 0), 0.659001, 1e-6);
    CLOSE(at(y, 1), 0.242433, 1e-6);
    CLOSE(at(y, 2), 0.098566, 1e-6);
    CLOSE(at(y, 3), 1, 0);
    CLOSE(at(y, 4), 0, 0);
    CLOSE(at(y, 6), 0, 0);
    CLOSE(at(y, 7), 1, 0);
    be->softmax(y, x, 3, 3, 1, true);
    CLOSE(at(y, 0), log(0.659001), 2e-6);
    CLOSE(at(y, 3), 0, 0);
    CLOSE(at(y, 4), -2e4, 0);
    ck_assert(isfinite(at(y, 5)));
    ck_assert(isinf(at(y, 6)) && at(y, 6) < 0);
    td_tensor_release(x);
    td_tensor_release(y);
}
END_TEST

/* rows against a double reference, inner == 1 and the same data transposed */
START_TEST(softmax_inner_matches)
{
    int64_t r = 5, c = 37;
    td_tensor *x = make2(TD_FLOAT32, r, c), *xt = make2(TD_FLOAT32, c, r),
              *y = make2(TD_FLOAT32, r, c), *yt = make2(TD_FLOAT32, c, r);
    fill_random(x, -20, 20);
    int64_t sh[2] = {c, r}, st[2] = {1, c};
    td_tensor tv = view(x, 2, sh, st, 0);
    be->copy(xt, &tv);
    for (int lg = 0; lg < 2; lg++) {
        be->softmax(y, x, r, c, 1, lg);
        be->softmax(yt, xt, 1, c, r, lg);
        for (int64_t i = 0; i < r; i++) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < c; j++) m = fmax(m, at(x, i * c + j));
            for (int64_t j = 0; j < c; j++) s += exp(at(x, i * c + j) - m);
            for (int64_t j = 0; j < c; j++) {
                double want = lg ? at(x, i * c + j) - m - log(s) : exp(at(x, i * c + j) - m) / s;
                /* float's rounding of x - max alone moves exp by |x - max| ulps */
                double tol = lg ? 4e-6 : (3e-7 + 1.2e-7 * (m - at(x, i * c + j))) * want;
                CLOSE(at(y, i * c + j), want, tol);
                CLOSE(at(yt, j * r + i), want, tol);
            }
        }
    }
    td_tensor_release(x);
    td_tensor_release(xt);
    td_tensor_release(y);
    td_tensor_release(yt);
}
END_TEST

START_TEST(softmax_backward_values)
{
    for (int dt = 0; dt < 2; dt++) {
        td_tensor *x = make2(dt, 1, 3), *y = make2(dt, 1, 3), *g = make2(dt, 1, 3),
                  *gx = make2(dt, 1, 3), *gxt = make2(dt, 3, 1);
        double v[3] = {2, 1, 0.1}, gv[3] = {1, -2, 0.5};
        fill_from(x, v);
        fill_from(g, gv);
        for (int lg = 0; lg < 2; lg++) {
            be->softmax(y, x, 1, 3, 1, lg);
            be->softmax_backward(gx, y, g, 1, 3, 1, lg);
            /* the same as one column: (1, 3, 1) with inner on the slow path */
            be->softmax_backward(gxt, y, g, 1, 1, 3, lg);
            double p[3], dot = 0, sg = 0;
            for (int i = 0; i < 3; i++) p[i] = lg ? exp(at(y, i)) : at(y, i);
            for (int i = 0; i < 3; i++) dot += gv[i] * p[i], sg += gv[i];
            for (int i = 0; i < 3; i++) {
                double want = lg ? gv[i] - p[i] * sg : p[i] * (gv[i] - dot);
                CLOSE(at(gx, i), want, 1e-6);
            }
        }
        be->softmax_backward(gxt, y, g, 3, 1, 1, true); /* n = 1 rows: gx = gy - exp(y) gy */
        td_tensor *ts[] = {x, y, g, gx, gxt};
        for (int i = 0; i < 5; i++) td_tensor_release(ts[i]);
    }
}
END_TEST

/* ---- gemm -------------------------------------------------------------- */

static double elem(const td_tensor *t, bool tr, int64_t ld, int64_t off, int64_t r, int64_t c)
{
    return at(t, off + (tr ? c * ld + r : r * ld + c));
}

static void check_gemm(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                       int64_t k, double alpha, double beta)
{
    int64_t lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 1;
    int64_t sa = (ta ? k : m) * lda, sb = (tb ? n : k) * ldb, sc = m * ldc;
    td_tensor *a = make1(dt, batch * sa), *b = make1(dt, batch * sb), *c = make1(dt, batch * sc),
              *c0 = make1(dt, batch * sc);
    fill_random(a, -3, 3);
    fill_random(b, -3, 3);
    fill_random(c, -3, 3);
    be->copy(c0, c);
    ck_assert_int_eq(be->gemm(dt, batch, ta, tb, m, n, k, alpha, base(a), lda, sa, base(b), ldb, sb,
                              beta, base(c), ldc, sc),
                     TD_OK);
    for (int64_t q = 0; q < batch; q++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += elem(a, ta, lda, q * sa, i, p) * elem(b, tb, ldb, q * sb, p, j);
                double want = alpha * s + beta * at(c0, q * sc + i * ldc + j);
                CLOSE(at(c, q * sc + i * ldc + j), want, dt == TD_FLOAT32 ? 1e-3 : 1e-9);
            }
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(c);
    td_tensor_release(c0);
}

START_TEST(gemm_against_loop)
{
    td_dtype dts[3] = {TD_FLOAT32, TD_FLOAT64, TD_INT64};
    for (int d = 0; d < 3; d++)
        for (int t = 0; t < 4; t++) {
            check_gemm(dts[d], 3, t & 1, t & 2, 5, 7, 4, 1, 0);
            check_gemm(dts[d], 2, t & 1, t & 2, 3, 2, 6, 2, 1);
        }
    check_gemm(TD_FLOAT32, 1, false, false, 1, 9, 5, 1, 0);   /* a single row */
    check_gemm(TD_FLOAT32, 2, false, false, 3, 4, 0, 1, 0.5); /* k = 0: C = beta C */
    check_gemm(TD_FLOAT64, 1, true, false, 64, 80, 100, 0.5, 0);
}
END_TEST

/* ---- indexing ------------------------------------------------------------ */

START_TEST(index_select_rows_and_cols)
{
    td_tensor *x = make2(TD_FLOAT32, 3, 4), *ix = make1(TD_INT64, 4);
    double v[12] = {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}, iv[4] = {2, 0, 2, 1};
    fill_from(x, v);
    fill_from(ix, iv);
    td_tensor *o = make2(TD_FLOAT32, 4, 4);
    be->index_select(o, x, 0, ix);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) CLOSE(at(o, r * 4 + c), 10 * iv[r] + c, 0);
    td_tensor *o1 = make2(TD_FLOAT32, 3, 4);
    be->index_select(o1, x, 1, ix);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) CLOSE(at(o1, r * 4 + c), 10 * r + iv[c], 0);
    /* a transposed x takes the strided path */
    int64_t sh[2] = {4, 3}, st[2] = {1, 4};
    td_tensor xt = view(x, 2, sh, st, 0);
    td_tensor *o2 = make2(TD_FLOAT32, 4, 3);
    be->index_select(o2, &xt, 0, ix);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++) CLOSE(at(o2, r * 3 + c), 10 * c + iv[r], 0);
    td_tensor *ts[] = {x, ix, o, o1, o2};
    for (int i = 0; i < 5; i++) td_tensor_release(ts[i]);
}
END_TEST

START_TEST(gather_scatter)
{
    td_tensor *x = make2(TD_FLOAT64, 3, 4), *ix = make2(TD_INT64, 2, 2),
              *o = make2(TD_FLOAT64, 2, 2);
    double v[12] = {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}, iv[4] = {3, 0, 1, 1};
    fill_from(x, v);
    fill_from(ix, iv);
    be->gather(o, x, 1, ix); /* index smaller than x in dim 0 */
    CLOSE(at(o, 0), 3, 0);
    CLOSE(at(o, 1), 0, 0);
    CLOSE(at(o, 2), 11, 0);
    CLOSE(at(o, 3), 11, 0);
    be->gather(o, x, 0, ix); /* o[i][j] = x[ix[i][j]][j] */
    CLOSE(at(o, 1), 1, 0);
    CLOSE(at(o, 2), 10, 0);
    CLOSE(at(o, 3), 11, 0);
    /* scatter src (3,3) over the (2,2) index along dim 1 */
    td_tensor *src = make2(TD_FLOAT64, 3, 3), *d = make2(TD_FLOAT64, 2, 4);
    double sv[9] = {1, 2, 0, 3, 4, 0, 0, 0, 0};
    fill_from(src, sv);
    be->fill(d, 0);
    be->scatter(d, 1, ix, src, false);
    double want[8] = {2, 0, 0, 1, 0, 4, 0, 0}; /* row 1: index 1 twice, the last wins */
    for (int i = 0; i < 8; i++) CLOSE(at(d, i), want[i], 0);
    be->fill(d, 1);
    be->scatter(d, 1, ix, src, true);
    double wacc[8] = {3, 1, 1, 2, 1, 8, 1, 1};
    for (int i = 0; i < 8; i++) CLOSE(at(d, i), wacc[i], 0);
    td_tensor *ts[] = {x, ix, o, src, d};
    for (int i = 0; i < 5; i++) td_tensor_release(ts[i]);
}
END_TEST

START_TEST(index_add_duplicates)
{
    td_tensor *o = make2(TD_FLOAT32, 3, 2), *src = make2(TD_FLOAT32, 4, 2),
              *ix = make1(TD_INT64, 4);
    double sv[8] = {1, 2, 3, 4, 5, 6, 7, 8}, iv[4] = {2, 0, 2, 2};
    fill_from(src, sv);
    fill_from(ix, iv);
    be->fill(o, 0.5);
    be->index_add(o, 0, ix, src);
    double want[6] = {3.5, 4.5, 0.5, 0.5, 13.5, 16.5};
    for (int i = 0; i < 6; i++) CLOSE(at(o, i), want[i], 0);
    /* along dim 1 of a (2, 3) out from a (2, 2) src */
    td_tensor *o1 = make2(TD_INT64, 2, 3), *s1 = make2(TD_INT64, 2, 2), *i1 = make1(TD_INT64, 2);
    double s1v[4] = {1, 2, 3, 4}, i1v[2] = {1, 1};
    fill_from(s1, s1v);
    fill_from(i1, i1v);
    be->fill(o1, 0);
    be->index_add(o1, 1, i1, s1);
    double w1[6] = {0, 3, 0, 0, 7, 0};
    for (int i = 0; i < 6; i++) CLOSE(at(o1, i), w1[i], 0);
    td_tensor *ts[] = {o, src, ix, o1, s1, i1};
    for (int i = 0; i < 6; i++) td_tensor_release(ts[i]);
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, alloc_aligned_and_cached);
    tcase_add_test(tc, alloc_trims_before_mapping);
    tcase_add_test(tc, copy_transposed);
    tcase_add_test(tc, copy_converts);
    tcase_add_test(tc, copy_large_contiguous);
    tcase_add_test(tc, fill_strided);
    tcase_add_test(tc, unary_values);
    tcase_add_test(tc, unary_ints);
    tcase_add_test(tc, expf_accuracy);
    tcase_add_test(tc, unary_grad_values);
    tcase_add_test(tc, binary_broadcast);
    tcase_add_test(tc, binary_nan_and_compare);
    tcase_add_test(tc, binary_ints);
    tcase_add_test(tc, binary_large_parallel);
    tcase_add_test(tc, clamp_and_where);
    tcase_add_test(tc, sum_pairwise);
    tcase_add_test(tc, sum_deterministic);
    tcase_add_test(tc, max_min_arg);
    tcase_add_test(tc, softmax_values);
    tcase_add_test(tc, softmax_inner_matches);
    tcase_add_test(tc, softmax_backward_values);
    tcase_add_test(tc, gemm_against_loop);
    tcase_add_test(tc, index_select_rows_and_cols);
    tcase_add_test(tc, gather_scatter);
    tcase_add_test(tc, index_add_duplicates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    be = td_cpu_backend();
    SRunner *sr = srunner_create(kernels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
