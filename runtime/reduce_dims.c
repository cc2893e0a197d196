/* Reductions over a list of dims, amax / amin, and the norms td_norm
 * leaves out (p = 0, +-inf with ties shared, nuclear).
 *
 * Several dims are permuted behind the kept ones and flattened into one,
 * then reduced by the one-dim front-end in a single pass (or, for sums
 * and the like, run by run: over_runs); either way the order is fixed by
 * the shape, whatever order the dims were listed in, and the gradient
 * comes back through the recorded permute and reshape. */
#include "internal.h"
#include "svd.h"
#include "tide/reduce_dims.h"

#include <math.h>

/* a reduction over one dim, or over all of them */
typedef td_status (*one_fn)(td_tensor *x, int dim, bool all, bool keepdim, const void *arg,
                            td_tensor **out);

typedef struct {
    int n;   /* dims named */
    int dim; /* the last one named */
    bool all;
    bool red[TD_MAX_DIMS];
} dim_set;

static td_status read_dims(const char *fn, const td_tensor *x, int ndims, const int *dims, int arg,
                           dim_set *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < ndims; i++) {
        int d;
        TD_TRY(td_wrap_dim(dims[i], x->ndim, arg, &d));
        if (s->red[d])
            return td_error(TD_EINVAL, arg, "%s: dim %d appears more than once in the list of dims",
                            fn, d);
        s->red[d] = true;
        s->n++;
        s->dim = d;
    }
    s->all = ndims == 0 || x->ndim == 0 || s->n == x->ndim;
    return TD_OK;
}

/* dims is argument 2 of fn, or 3 for norm (after p) */
static td_status over_dims(const char *fn, td_tensor *x, int ndims, const int *dims, bool keepdim,
                           one_fn f, const void *arg, td_tensor **out)
{
    dim_set s;
    TD_TRY(read_dims(fn, x, ndims, dims, strcmp(fn, "norm") ? 2 : 3, &s));
    if (s.all) return f(x, 0, true, keepdim, arg, out);
    if (s.n == 1) return f(x, s.dim, false, keepdim, arg, out);
    int perm[TD_MAX_DIMS], k = 0, ond = 0;
    int64_t rows_shape[2] = {1, 1}, oshape[TD_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        if (!s.red[i]) perm[k++] = i, rows_shape[0] *= x->shape[i];
    for (int i = 0; i < x->ndim; i++)
        if (s.red[i]) perm[k++] = i, rows_shape[1] *= x->shape[i];
    for (int i = 0; i < x->ndim; i++)
        if (!s.red[i] || keepdim) oshape[ond++] = s.red[i] ? 1 : x->shape[i];
    td_tensor *pt = NULL, *rows = NULL, *r = NULL;
    td_status st;
    TD_CHECK(td_permute(x, x->ndim, perm, &pt));
    TD_CHECK(td_reshape(pt, 2, rows_shape, &rows));
    TD_CHECK(f(rows, 1, false, false, arg, &r));
    TD_CHECK(td_reshape(r, ond, oshape, out));
fail:
    td_tensor_release(pt);
    td_tensor_release(rows);
    td_tensor_release(r);
    return st;
}

/* For the reductions where one dim after another gives the same value
 * (sum, mean, prod, all, any): each run of adjacent dims is one kernel
 * pass over an (outer, n, inner) view, the last run first, instead of the
 * permuted copy over_dims makes (3x faster over (0, 2) of a 64x256x256
 * tensor). The order is fixed by the shape and the dims alone. */
static td_status over_runs(const char *fn, td_tensor *x, int ndims, const int *dims, bool keepdim,
                           one_fn f, const void *arg, td_tensor **out)
{
    dim_set s;
    TD_TRY(read_dims(fn, x, ndims, dims, 2, &s));
    if (s.all) return f(x, 0, true, keepdim, arg, out);
    if (s.n == 1) return f(x, s.dim, false, keepdim, arg, out);
    int nd = x->ndim;
    int64_t shape[TD_MAX_DIMS]; /* x's, with the runs done so far as 1 */
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)nd);
    td_tensor *cur = x;
    td_tensor_retain(cur);
    td_status st = TD_OK;
    for (int i = nd - 1; i >= 0 && st == TD_OK;) {
        if (!s.red[i]) {
            i--;
            continue;
        }
        int hi = i;
        while (i >= 0 && s.red[i]) i--;
        int lo = i + 1, k = 0;
        int64_t flat[TD_MAX_DIMS], n = 1;
        for (int j = 0; j < lo; j++) flat[k++] = shape[j];
        for (int j = lo; j <= hi; j++) n *= shape[j], shape[j] = 1;
        flat[k++] = n;
        for (int j = hi + 1; j < nd; j++) flat[k++] = shape[j];
        td_tensor *v = NULL, *r = NULL;
        st = td_reshape(cur, k, flat, &v);
        if (st == TD_OK) st = f(v, lo, false, true, arg, &r);
        td_tensor_release(v);
        td_tensor_release(cur);
        cur = NULL;
        if (st == TD_OK) st = td_reshape(r, nd, shape, &cur);
        td_tensor_release(r);
    }
    if (st == TD_OK) {
        int64_t oshape[TD_MAX_DIMS];
        int ond = 0;
        for (int j = 0; j < nd; j++)
            if (!s.red[j] || keepdim) oshape[ond++] = shape[j];
        st = td_reshape(cur, ond, oshape, out);
    }
    td_tensor_release(cur);
    return st;
}

/* x, or x cast to dtype when has_dtype (recorded) */
static td_status cast_first(td_tensor *x, bool has_dtype, td_dtype dtype, td_tensor **out)
{
    if (!has_dtype || dtype == x->dtype) {
        td_tensor_retain(x);
        *out = x;
        return TD_OK;
    }
    return td_to_dtype(x, dtype, out);
}

typedef td_status (*plain_fn)(td_tensor *, int, bool, bool, td_tensor **);

static td_status plain_one(td_tensor *x, int dim, bool all, bool keepdim, const void *arg,
                           td_tensor **out)
{
    return (*(const plain_fn *)arg)(x, dim, all, keepdim, out);
}

/* a bfloat16 / float16 sum, mean or prod over several runs of dims in
 * float32, rounded once at the end rather than after each run */
typedef struct {
    const char *fn;
    plain_fn f;
    int ndims;
    const int *dims;
    bool keepdim;
} runs_args;

static td_status runs_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const runs_args *r = a;
    return over_runs(r->fn, xf, r->ndims, r->dims, r->keepdim, plain_one, &r->f, out);
}

static td_status plain_dims(const char *fn, plain_fn f, td_tensor *x, int ndims, const int *dims,
                            bool keepdim, bool has_dtype, td_dtype dtype, td_tensor **out)
{
    td_tensor *c = NULL;
    TD_TRY(cast_first(x, has_dtype, dtype, &c));
    td_status st;
    if (td_dtype_is_lowp(c->dtype) && ndims > 1 && f != td_all && f != td_any)
        st = td_lowp_via_float32(c, runs_f32, &(runs_args){fn, f, ndims, dims, keepdim}, out);
    else
        st = over_runs(fn, c, ndims, dims, keepdim, plain_one, &f, out);
    td_tensor_release(c);
    return st;
}

td_status td_sum_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, bool has_dtype,
                      td_dtype dtype, td_tensor **out)
{
    return plain_dims("sum", td_sum, x, ndims, dims, keepdim, has_dtype, dtype, out);
}

td_status td_mean_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, bool has_dtype,
                       td_dtype dtype, td_tensor **out)
{
    if (!has_dtype) TD_TRY(td_need_float_lowp(x->dtype, 1, "mean", "input"));
    return plain_dims("mean", td_mean, x, ndims, dims, keepdim, has_dtype, dtype, out);
}

td_status td_prod_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, bool has_dtype,
                       td_dtype dtype, td_tensor **out)
{
    return plain_dims("prod", td_prod, x, ndims, dims, keepdim, has_dtype, dtype, out);
}

td_status td_all_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out)
{
    return plain_dims("all", td_all, x, ndims, dims, keepdim, false, x->dtype, out);
}

td_status td_any_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out)
{
    return plain_dims("any", td_any, x, ndims, dims, keepdim, false, x->dtype, out);
}

static td_status var_one(td_tensor *x, int dim, bool all, bool keepdim, const void *arg,
                         td_tensor **out)
{
    return td_var(x, dim, all, keepdim, *(const int64_t *)arg, out);
}

static td_status std_one(td_tensor *x, int dim, bool all, bool keepdim, const void *arg,
                         td_tensor **out)
{
    return td_std(x, dim, all, keepdim, *(const int64_t *)arg, out);
}

td_status td_var_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, int64_t correction,
                      td_tensor **out)
{
    TD_TRY(td_need_float_lowp(x->dtype, 1, "var", "input"));
    return over_dims("var", x, ndims, dims, keepdim, var_one, &correction, out);
}

td_status td_std_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, int64_t correction,
                      td_tensor **out)
{
    TD_TRY(td_need_float_lowp(x->dtype, 1, "std", "input"));
    return over_dims("std", x, ndims, dims, keepdim, std_one, &correction, out);
}

/* ---- amax and amin ----------------------------------------------------- */

typedef struct {
    int dim;
    bool all;
    td_tensor *x, *out; /* out with the reduced dim kept as 1 */
} extreme_ctx;

/* the gradient goes to every element equal to the result, split evenly
 * among them (PyTorch's amax rule, also its rule for the inf-norms) */
static td_status even_split_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const extreme_ctx *c = n->ctx;
    td_tensor *t[6] = {NULL};
    td_status st;
    TD_CHECK(td_reshape(g, c->out->ndim, c->out->shape, &t[0]));
    TD_CHECK(td_binary(TD_EQ, c->x, c->out, &t[1]));
    TD_CHECK(td_cast_raw(t[1], g->dtype, &t[2]));
    TD_CHECK(td_sum(t[2], c->dim, c->all, true, &t[3]));
    TD_CHECK(td_binary(TD_DIV, t[0], t[3], &t[4]));
    TD_CHECK(td_binary(TD_MUL, t[2], t[4], &t[5]));
    TD_CHECK(td_grad_to_input(n, 0, t[5], gi));
fail:
    td_release_many(6, t);
    return st;
}

static td_status extreme_one(td_tensor *x, int dim, bool all, bool keepdim, const void *arg,
                             td_tensor **out)
{
    bool is_max = *(const bool *)arg;
    const char *fn = is_max ? "amax" : "amin";
    if (all ? td_numel(x) == 0 : x->ndim > 0 && x->shape[dim] == 0)
        return td_error(TD_ESHAPE, 1, "%s: cannot reduce over an empty dim (size 0)", fn);
    td_tensor *vk = NULL, *v = NULL;
    td_status st;
    bool prev = td_set_grad_enabled(false);
    st = (is_max ? td_max : td_min)(x, dim, all, true, &vk, NULL);
    int nd = 0;
    int64_t shape[TD_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        if (!(all || i == dim))
            shape[nd++] = x->shape[i];
        else if (keepdim)
            shape[nd++] = 1;
    if (st == TD_OK) st = td_reshape(vk, nd, shape, &v);
    td_set_grad_enabled(prev);
    if (st != TD_OK) goto fail;
    if (td_dtype_is_float(x->dtype) && td_needs_grad(1, &x)) {
        td_node *node;
        extreme_ctx *c = NULL;
        TD_CHECK(td_node_new(is_max ? "AmaxBackward" : "AminBackward", even_split_backward, 1, &x,
                             &node));
        st = TD_NODE_CTX(node, &c);
        if (st == TD_OK) {
            c->dim = dim;
            c->all = all;
            st = td_node_keep(node, x, &c->x);
        }
        if (st == TD_OK) st = td_node_keep(node, vk, &c->out);
        TD_CHECK(td_node_finish(node, st, v));
    }
    *out = v;
    v = NULL;
fail:
    td_tensor_release(vk);
    td_tensor_release(v);
    return st;
}

td_status td_amax(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out)
{
    static const bool is_max = true;
    return over_dims("amax", x, ndims, dims, keepdim, extreme_one, &is_max, out);
}

td_status td_amin(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out)
{
    static const bool is_max = false;
    return over_dims("amin", x, ndims, dims, keepdim, extreme_one, &is_max, out);
}

/* ---- norms --------------------------------------------------------------- */

/* p = 0 is a count: its gradient is zero everywhere (PyTorch gives zeros) */
static td_status zero_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    return td_full_on(n->in_ndim[0], n->in_shape[0], 0.0, n->in_dtype[0], td_device_of(g), gi);
}

static td_status count_nonzero(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    td_tensor *ne = NULL, *f = NULL, *v = NULL;
    td_status st;
    TD_CHECK(td_binary_scalar(TD_NE, x, 0.0, false, &ne));
    TD_CHECK(td_cast_raw(ne, x->dtype, &f));
    bool prev = td_set_grad_enabled(false);
    st = td_sum(f, dim, all, keepdim, &v);
    td_set_grad_enabled(prev);
    if (st != TD_OK) goto fail;
    if (td_needs_grad(1, &x)) {
        td_node *node;
        TD_CHECK(td_node_new("NormBackward", zero_backward, 1, &x, &node));
        TD_CHECK(td_node_finish(node, TD_OK, v));
    }
    *out = v;
    v = NULL;
fail:
    td_tensor_release(ne);
    td_tensor_release(f);
    td_tensor_release(v);
    return st;
}

static td_status norm_one(td_tensor *x, int dim, bool all, bool keepdim, const void *arg,
                          td_tensor **out)
{
    double p = *(const double *)arg;
    if (p == 0) return count_nonzero(x, dim, all, keepdim, out);
    if (!isinf(p)) return td_norm(x, p, dim, all, keepdim, out);
    td_tensor *a = NULL;
    bool is_max = p > 0;
    TD_TRY(td_unary(TD_ABS, x, &a));
    td_status st = extreme_one(a, dim, all, keepdim, &is_max, out);
    td_tensor_release(a);
    return st;
}

td_status td_norm_dims(td_tensor *x, double p, int ndims, const int *dims, bool keepdim,
                       td_tensor **out)
{
    TD_TRY(td_need_float_lowp(x->dtype, 1, "norm", "input"));
    if (isnan(p)) return td_error(TD_EINVAL, 2, "norm: p must be a number, got nan");
    return over_dims("norm", x, ndims, dims, keepdim, norm_one, &p, out);
}

/* U Vh of the thin SVD of the matrices of x over (d0, d1), in x's layout,
 * dtype and device; recording nothing */
static td_status nuc_direction(td_tensor *x, int d0, int d1, td_tensor **out)
{
    int perm[TD_MAX_DIMS], inv[TD_MAX_DIMS], k = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d0 && i != d1) perm[k++] = i;
    perm[k++] = d0;
    perm[k++] = d1;
    for (int i = 0; i < x->ndim; i++) inv[perm[i]] = i;
    td_tensor *t[6] = {NULL};
    td_status st;
    bool prev = td_set_grad_enabled(false);
    TD_CHECK(td_permute(x, x->ndim, perm, &t[0]));
    TD_CHECK(td_to_device(t[0], TD_DEVICE_CPU, &t[1]));
    TD_CHECK(td_to_dtype(t[1], TD_FLOAT64, &t[2]));
    TD_CHECK(td_contiguous(t[2], &t[3]));
    TD_CHECK(td_empty(t[3]->ndim, t[3]->shape, TD_FLOAT64, &t[4]));
    int64_t m = x->shape[d0], n = x->shape[d1];
    int64_t batch = m > 0 && n > 0 ? td_numel(t[3]) / (m * n) : 0;
    TD_CHECK(td_svd_direction(td_data_ptr(t[3]), batch, m, n, td_data_ptr(t[4])));
    TD_CHECK(td_permute(t[4], x->ndim, inv, &t[5]));
    td_tensor_release(t[0]);
    t[0] = NULL;
    TD_CHECK(td_to_dtype(t[5], x->dtype, &t[0]));
    TD_CHECK(td_to_device(t[0], td_device_of(x), out));
fail:
    td_set_grad_enabled(prev);
    td_release_many(6, t);
    return st;
}

/* sum_i s_i = trace(U^T X V) = sum(X * U Vh): the value and, with U Vh
 * held fixed, the gradient U Vh (PyTorch's) from recorded ops */
td_status td_norm_nuc(td_tensor *x, int d0, int d1, bool keepdim, td_tensor **out)
{
    TD_TRY(td_need_float(x->dtype, 1, "norm", "input"));
    if (x->ndim < 2)
        return td_error(TD_ESHAPE, 1, "norm: 'nuc' needs a tensor of at least 2 dims, got %d",
                        x->ndim);
    int a, b;
    TD_TRY(td_wrap_dim(d0, x->ndim, 3, &a));
    TD_TRY(td_wrap_dim(d1, x->ndim, 3, &b));
    if (a == b)
        return td_error(TD_EINVAL, 3, "norm: 'nuc' needs two different dims, got %d twice", a);
    td_tensor *uvh = NULL, *prod = NULL;
    td_status st;
    TD_CHECK(nuc_direction(x, a, b, &uvh));
    TD_CHECK(td_binary(TD_MUL, x, uvh, &prod));
    int dims[2] = {a, b};
    TD_CHECK(td_sum_dims(prod, 2, dims, keepdim, false, x->dtype, out));
fail:
    td_tensor_release(uvh);
    td_tensor_release(prod);
    return st;
}

/* ---- softmax with a dtype ---------------------------------------------- */

td_status td_softmax_dtype(td_tensor *x, int dim, bool log, bool has_dtype, td_dtype dtype,
                           td_tensor **out)
{
    td_tensor *c = NULL;
    TD_TRY(cast_first(x, has_dtype, dtype, &c));
    td_status st = log ? td_log_softmax(c, dim, out) : td_softmax(c, dim, out);
    td_tensor_release(c);
    return st;
}
