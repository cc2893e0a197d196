/* The functional layers other than convolution: linear, batch_norm,
 * layer_norm, the 2-d pools, dropout, leaky_relu, embedding. batch_norm,
 * the pools, dropout and embedding are one autograd node each with a
 * hand-written backward over the kernels of kernels/nn_layers.h; linear,
 * layer_norm and leaky_relu are compositions of differentiable td_* ops.
 * Argument numbers in errors are the Lua call's. */
#include "internal.h"
#include "tide/autocast.h"

#include <math.h>
#include <stdio.h>

static td_status same_dtype(const td_tensor *t, const td_tensor *x, int arg, const char *fn,
                            const char *what)
{
    if (t->dtype != x->dtype)
        return td_error(TD_EDTYPE, arg, "%s: %s must be %s like input, got %s", fn, what,
                        td_dtype_name(x->dtype), td_dtype_name(t->dtype));
    return TD_OK;
}

/* ---- linear ---------------------------------------------------------- */

td_status td_linear(td_tensor *x, td_tensor *w, td_tensor *bias, td_tensor **out)
{
    if (td_autocast_enabled()) {
        td_tensor *in[3] = {x, w, bias}, *c[3];
        int depth;
        TD_TRY(td_autocast_begin(3, in, c, &depth));
        td_status st = td_linear(c[0], c[1], c[2], out);
        td_autocast_end(3, c, depth);
        return st;
    }
    char s1[160], s2[160];
    TD_TRY(td_need_float_lowp(x->dtype, 1, "linear", "input"));
    TD_TRY(same_dtype(w, x, 2, "linear", "weight"));
    if (x->ndim < 1)
        return td_error(TD_ESHAPE, 1, "linear: input must have at least 1 dim, got a 0-dim tensor");
    if (w->ndim != 2 || w->shape[1] != x->shape[x->ndim - 1]) {
        td_shape_str(w, s1, sizeof s1);
        td_shape_str(x, s2, sizeof s2);
        return td_error(TD_ESHAPE, 2,
                        "linear: weight must be (out, in) with in = %lld (input %s), got %s",
                        (long long)x->shape[x->ndim - 1], s2, s1);
    }
    if (bias) {
        TD_TRY(same_dtype(bias, x, 3, "linear", "bias"));
        if (bias->ndim != 1 || bias->shape[0] != w->shape[0]) {
            td_shape_str(bias, s1, sizeof s1);
            return td_error(TD_ESHAPE, 3, "linear: bias must have shape (%lld), got %s",
                            (long long)w->shape[0], s1);
        }
    }
    td_tensor *wt = NULL, *y = NULL;
    td_status st;
    TD_CHECK(td_t(w, &wt));
    TD_CHECK(td_matmul(x, wt, &y));
    if (bias) {
        td_tensor *z = NULL;
        TD_CHECK(td_binary(TD_ADD, y, bias, &z));
        td_tensor_release(y);
        y = z;
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(wt);
    td_tensor_release(y);
    return st;
}

/* ---- batch norm ------------------------------------------------------ */

/* part k (c values) of the float64 tensor v, as a new tensor of dtype dt */
static td_status channel_part(td_tensor *v, int64_t k, int64_t c, td_dtype dt, td_tensor **out)
{
    int64_t one = 1;
    td_tensor *part = NULL;
    TD_TRY(td_make_view(v, 1, &c, &one, v->offset + k * c, &part));
    td_status st = td_empty_on(1, &c, dt, td_device_of(v), out);
    if (st == TD_OK) td_backend_of(v)->copy(*out, part);
    td_tensor_release(part);
    return st;
}

/* gy and gx take x's layout */
typedef struct {
    td_tensor *x;        /* contiguous, or channels-last on the CPU */
    td_tensor *stats;    /* float64 on x's device: mean[C], invstd[C], gs[C] */
    int64_t n, c, inner; /* as the kernels read x */
    bool training;
} bn_ctx;

static td_status bn_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const bn_ctx *ctx = nd->ctx;
    td_tensor *x = ctx->x, *stats = ctx->stats;
    int64_t n = ctx->n, c = ctx->c, inner = ctx->inner, two_c = 2 * c;
    bool training = ctx->training;
    td_tensor *cg = NULL, *gx = NULL, *gw = NULL, *gb = NULL, *sums = NULL;
    td_status st;
    const double *sd = td_data_ptr(stats);
    TD_CHECK(
        td_empty_on(1, &two_c, TD_FLOAT64, td_device_of(x), &sums)); /* sum_gy[C], sum_gy_xhat[C] */
    TD_CHECK(td_dense_raw(g, x->dtype, td_keeps_channels_last(x), &cg));
    if (nd->next[0]) TD_CHECK(td_empty_as(x, x->dtype, &gx));
    double *sp = td_data_ptr(sums);
    td_backend_of(x)->layers->bn_backward(x->dtype, td_data_ptr(x), td_data_ptr(cg),
                                          gx ? td_data_ptr(gx) : NULL, n, c, inner, sd, sd + c,
                                          sd + 2 * c, training, sp, sp + c);
    if (gx) {
        gi[0] = gx;
        gx = NULL;
    }
    if (nd->n_next > 1 && nd->next[1]) {
        TD_CHECK(channel_part(sums, 1, c, nd->in_dtype[1], &gw));
        gi[1] = gw;
        gw = NULL;
    }
    if (nd->n_next > 2 && nd->next[2]) {
        TD_CHECK(channel_part(sums, 0, c, nd->in_dtype[2], &gb));
        gi[2] = gb;
        gb = NULL;
    }
fail:
    td_tensor_release(sums);
    td_tensor_release(cg);
    td_tensor_release(gx);
    td_tensor_release(gw);
    td_tensor_release(gb);
    return st;
}

/* an empty batch in training has no statistics to take: the running stats
 * stay as they are, the output is as empty as the input, and weight and
 * bias get zero gradients, as PyTorch's */
static td_status bn_empty_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    for (int i = 0; i < nd->n_next; i++)
        if (nd->next[i])
            TD_TRY(td_full_on(nd->in_ndim[i], nd->in_shape[i], 0.0, nd->in_dtype[i],
                              td_device_of(g), &gi[i]));
    return TD_OK;
}

static td_status bn_empty(td_tensor *x, const td_batch_norm_opts *o, td_tensor **out)
{
    td_tensor *y = NULL;
    TD_TRY(td_empty_on(x->ndim, x->shape, x->dtype, td_device_of(x), &y));
    td_tensor *ins[3] = {x, o->weight, o->bias};
    if (td_needs_grad(3, ins)) {
        td_node *node = NULL;
        td_status st = td_node_new("NativeBatchNormBackward", bn_empty_backward, 3, ins, &node);
        if (st == TD_OK) st = td_node_finish(node, TD_OK, y);
        if (st != TD_OK) {
            td_tensor_release(y);
            return st;
        }
    }
    *out = y;
    return TD_OK;
}

static td_status check_channel_vec(td_tensor *v, const td_tensor *x, int64_t c, int arg,
                                   const char *what)
{
    TD_TRY(same_dtype(v, x, arg, "batch_norm", what));
    if (v->ndim != 1 || v->shape[0] != c) {
        char s[160];
        td_shape_str(v, s, sizeof s);
        return td_error(TD_ESHAPE, arg,
                        "batch_norm: %s must have shape (%lld), one value per channel, got %s",
                        what, (long long)c, s);
    }
    return TD_OK;
}

static double vec_get(const td_tensor *v, int64_t i)
{
    const char *p = td_data_ptr(v);
    int64_t o = i * v->stride[0];
    return v->dtype == TD_FLOAT32 ? ((const float *)p)[o] : ((const double *)p)[o];
}

static void vec_set(td_tensor *v, int64_t i, double x)
{
    char *p = td_data_ptr(v);
    int64_t o = i * v->stride[0];
    if (v->dtype == TD_FLOAT32)
        ((float *)p)[o] = (float)x;
    else
        ((double *)p)[o] = x;
}

/* the CPU's per-channel step: statistics, running-stat update (PyTorch's
 * unbiased running_var), then invstd, gs = invstd * weight, shift */
static void bn_host_step(const td_backend *be, td_tensor *x, td_tensor *cx, td_tensor *rm,
                         td_tensor *rv, const td_batch_norm_opts *o, int64_t n, int64_t c,
                         int64_t inner, double *mean, double *var, double *invstd, double *gs,
                         double *shift)
{
    if (o->training) {
        be->layers->bn_stats(x->dtype, td_data_ptr(cx), n, c, inner, mean, var);
        double cnt = (double)(n * inner), m = o->momentum;
        for (int64_t i = 0; i < c; i++) {
            if (rm) vec_set(rm, i, (1 - m) * vec_get(rm, i) + m * mean[i]);
            if (rv) vec_set(rv, i, (1 - m) * vec_get(rv, i) + m * var[i] * cnt / (cnt - 1));
        }
        if (rm) td_bump_version(rm);
        if (rv) td_bump_version(rv);
    } else {
        for (int64_t i = 0; i < c; i++) {
            mean[i] = vec_get(rm, i);
            var[i] = vec_get(rv, i);
        }
    }
    for (int64_t i = 0; i < c; i++) {
        invstd[i] = 1.0 / sqrt(var[i] + o->eps);
        double w = o->weight ? vec_get(o->weight, i) : 1.0, b = o->bias ? vec_get(o->bias, i) : 0.0;
        gs[i] = invstd[i] * w;
        shift[i] = b - mean[i] * gs[i];
    }
}

td_status td_batch_norm(td_tensor *x, td_tensor *rm, td_tensor *rv, const td_batch_norm_opts *o,
                        td_tensor **out)
{
    /* under autocast a low-precision input is normalised in float32 and
     * stays float32, beside the float32 weights and running statistics */
    if (td_autocast_enabled() && td_dtype_is_lowp(x->dtype)) {
        td_tensor *in[3] = {x, o->weight, o->bias}, *c[3];
        TD_TRY(td_autocast_float32(3, in, c));
        td_batch_norm_opts o32 = *o;
        o32.weight = c[1];
        o32.bias = c[2];
        td_status st = td_batch_norm(c[0], rm, rv, &o32, out);
        td_autocast_release(3, c);
        return st;
    }
    TD_TRY(td_need_float(x->dtype, 1, "batch_norm", "input"));
    if (x->ndim < 2) {
        char s[160];
        td_shape_str(x, s, sizeof s);
        return td_error(TD_ESHAPE, 1, "batch_norm: input must be (N, C) or (N, C, *), got %s", s);
    }
    int64_t n = x->shape[0], c = x->shape[1], inner = td_shape_numel(x->ndim - 2, x->shape + 2);
    if (rm) TD_TRY(check_channel_vec(rm, x, c, 2, "running_mean"));
    if (rv) TD_TRY(check_channel_vec(rv, x, c, 3, "running_var"));
    if (!o->training && (!rm || !rv))
        return td_error(TD_EINVAL, rm ? 3 : 2,
                        "batch_norm: running_mean and running_var are needed in evaluation "
                        "(training = false)");
    if (o->weight) TD_TRY(check_channel_vec(o->weight, x, c, 4, "weight"));
    if (o->bias) TD_TRY(check_channel_vec(o->bias, x, c, 4, "bias"));
    td_tensor *all[5] = {x, rm, rv, o->weight, o->bias};
    TD_TRY(td_same_device(5, all));
    if (!(o->eps >= 0))
        return td_error(TD_EINVAL, 4, "batch_norm: eps must be >= 0, got %g", o->eps);
    if (!isfinite(o->momentum))
        return td_error(TD_EINVAL, 4, "batch_norm: momentum must be a number, got %g", o->momentum);
    if (o->training && n * inner == 0) return bn_empty(x, o, out);
    if (o->training && n * inner == 1) {
        char s[160];
        td_shape_str(x, s, sizeof s);
        return td_error(
            TD_ESHAPE, 1,
            "batch_norm: expected more than 1 value per channel when training, got input %s", s);
    }
    const td_backend *be = td_backend_of(x);
    td_tensor *cx = NULL, *y = NULL, *stats = NULL, *scratch = NULL;
    td_status st;
    int64_t three_c = 3 * c, two_c = 2 * c;
    double *var = NULL, *shift = NULL;
    TD_CHECK(td_empty_on(1, &three_c, TD_FLOAT64, td_device_of(x), &stats));
    double *mean = td_data_ptr(stats), *invstd = mean + c, *gs = mean + 2 * c;
    /* a CPU channels-last x is read as it is: (N H W) rows x C channels,
     * n = N H W, inner = 1 (the statistics count stays n * inner) */
    bool rows = td_keeps_channels_last(x);
    TD_CHECK(td_dense_raw(x, x->dtype, rows, &cx));
    if (rows) {
        n *= inner;
        inner = 1;
    }
    if (be->layers->bn_finalize) { /* a device: every per-channel array stays there */
        TD_CHECK(td_empty_on(1, &two_c, TD_FLOAT64, td_device_of(x), &scratch));
        double *dvar = td_data_ptr(scratch);
        if (o->training) be->layers->bn_stats(x->dtype, td_data_ptr(cx), n, c, inner, mean, dvar);
        be->layers->bn_finalize(x->dtype, c, o->training, (double)(n * inner), o->momentum, o->eps,
                                mean, dvar, rm, rv, o->weight, o->bias, invstd, gs, dvar + c);
        if (o->training && rm) td_bump_version(rm);
        if (o->training && rv) td_bump_version(rv);
    } else {
        var = malloc(sizeof(double) * (size_t)(2 * c + 1));
        if (!var) {
            st = td_error(TD_ENOMEM, 0, "out of memory in batch_norm");
            goto fail;
        }
        shift = var + c;
        bn_host_step(be, x, cx, rm, rv, o, n, c, inner, mean, var, invstd, gs, shift);
    }
    TD_CHECK(td_empty_as(cx, x->dtype, &y));
    be->layers->bn_apply(x->dtype, td_data_ptr(cx), td_data_ptr(y), n, c, inner, gs,
                         scratch ? (double *)td_data_ptr(scratch) + c : shift);
    td_tensor *ins[3] = {x, o->weight, o->bias};
    if (td_needs_grad(3, ins)) {
        td_node *node = NULL;
        bn_ctx *ctx = NULL;
        TD_CHECK(td_node_new(o->training ? "NativeBatchNormBackward" : "BatchNormEvalBackward",
                             bn_backward, 3, ins, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->n = n;
            ctx->c = c;
            ctx->inner = inner;
            ctx->training = o->training;
            st = td_node_keep(node, cx, &ctx->x);
        }
        if (st == TD_OK) st = td_node_keep(node, stats, &ctx->stats);
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
fail:
    free(var);
    td_tensor_release(scratch);
    td_tensor_release(cx);
    td_tensor_release(y);
    td_tensor_release(stats);
    return st;
}

/* ---- layer norm (a composition) ---------------------------------------- */

td_status td_layer_norm(td_tensor *x, int nd, const int64_t *shape, td_tensor *weight,
                        td_tensor *bias, double eps, td_tensor **out)
{
    if (td_autocast_enabled() && td_dtype_is_lowp(x->dtype)) { /* float32, as batch_norm */
        td_tensor *in[3] = {x, weight, bias}, *c[3];
        TD_TRY(td_autocast_float32(3, in, c));
        td_status st = td_layer_norm(c[0], nd, shape, c[1], c[2], eps, out);
        td_autocast_release(3, c);
        return st;
    }
    char s1[160], s2[160];
    TD_TRY(td_need_float(x->dtype, 1, "layer_norm", "input"));
    if (nd < 1 || nd > x->ndim) {
        td_shape_str(x, s1, sizeof s1);
        return td_error(TD_ESHAPE, 2,
                        "layer_norm: normalized_shape must have 1 to %d dims for input %s, got %d",
                        x->ndim, s1, nd);
    }
    bool match = true;
    for (int i = 0; i < nd; i++) match = match && shape[i] == x->shape[x->ndim - nd + i];
    if (!match) {
        td_shape_str(x, s1, sizeof s1);
        return td_error(TD_ESHAPE, 2,
                        "layer_norm: normalized_shape must equal the last %d dims of input %s", nd,
                        s1);
    }
    td_tensor *affine[2] = {weight, bias};
    const char *names[2] = {"weight", "bias"};
    for (int k = 0; k < 2; k++) {
        td_tensor *t = affine[k];
        if (!t) continue;
        TD_TRY(same_dtype(t, x, 3, "layer_norm", names[k]));
        bool ok = t->ndim == nd;
        for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == shape[i];
        if (!ok) {
            td_shape_str(t, s2, sizeof s2);
            return td_error(TD_ESHAPE, 3, "layer_norm: %s must have normalized_shape, got %s",
                            names[k], s2);
        }
    }
    if (!(eps >= 0)) return td_error(TD_EINVAL, 3, "layer_norm: eps must be >= 0, got %g", eps);
    int64_t m = td_shape_numel(nd, shape);
    int64_t two[2] = {td_numel(x) / (m ? m : 1), m};
    if (m == 0) two[0] = td_shape_numel(x->ndim - nd, x->shape);
    td_tensor *xr = NULL, *mu = NULL, *d = NULL, *d2 = NULL, *var = NULL, *rs = NULL, *yn = NULL,
              *y = NULL, *t = NULL;
    td_status st;
    TD_CHECK(td_reshape(x, 2, two, &xr));
    TD_CHECK(td_mean(xr, 1, false, true, &mu));
    TD_CHECK(td_binary(TD_SUB, xr, mu, &d));
    TD_CHECK(td_binary(TD_MUL, d, d, &d2));
    TD_CHECK(td_mean(d2, 1, false, true, &var));
    td_tensor_release(d2);
    d2 = NULL;
    TD_CHECK(td_binary_scalar(TD_ADD, var, eps, false, &d2));
    TD_CHECK(td_pow_scalar(d2, -0.5, &rs));
    TD_CHECK(td_binary(TD_MUL, d, rs, &yn));
    TD_CHECK(td_reshape(yn, x->ndim, x->shape, &y));
    if (weight) {
        TD_CHECK(td_binary(TD_MUL, y, weight, &t));
        td_tensor_release(y);
        y = t;
        t = NULL;
    }
    if (bias) {
        TD_CHECK(td_binary(TD_ADD, y, bias, &t));
        td_tensor_release(y);
        y = t;
        t = NULL;
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(xr);
    td_tensor_release(mu);
    td_tensor_release(d);
    td_tensor_release(d2);
    td_tensor_release(var);
    td_tensor_release(rs);
    td_tensor_release(yn);
    td_tensor_release(y);
    td_tensor_release(t);
    return st;
}

/* ---- pooling --------------------------------------------------------- */

typedef struct {
    td_tensor *argmax; /* max pool only */
    td_pool2d_args args;
} pool_ctx;

static td_status pool_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const pool_ctx *ctx = nd->ctx;
    const td_pool2d_args a = ctx->args;
    td_tensor *idx = ctx->argmax;
    td_tensor *cg = NULL, *gx = NULL;
    td_status st;
    /* the forward's layout: gy brought to it (a view when it already is), gx in it */
    TD_CHECK(td_dense_raw(g, a.dtype, a.channels_last, &cg));
    TD_CHECK(td_empty_layout_on(nd->in_ndim[0], nd->in_shape[0], a.dtype, td_device_of(cg),
                                a.channels_last, &gx));
    td_backend_of(gx)->layers->pool2d_backward(&a, td_data_ptr(cg), idx ? td_data_ptr(idx) : NULL,
                                               td_data_ptr(gx));
    gi[0] = gx;
    gx = NULL;
fail:
    td_tensor_release(cg);
    td_tensor_release(gx);
    return st;
}

/* out_idx, when not NULL, receives the max pools' argmax (int64, the
 * output's shape, each the in-plane h * w + w) */
static td_status pool_run(td_tensor *x, td_pool2d_args *a, const char *fn, const char *node_name,
                          td_tensor **out, td_tensor **out_idx)
{
    bool batched = x->ndim == 4;
    a->n = batched ? x->shape[0] : 1;
    a->c = x->shape[batched ? 1 : 0];
    a->dtype = x->dtype;
    td_tensor *cx = NULL, *y = NULL, *idx = NULL;
    td_status st;
    int64_t oshape[4];
    int ond = x->ndim;
    memcpy(oshape, x->shape, sizeof(int64_t) * (size_t)ond);
    oshape[ond - 2] = a->oh;
    oshape[ond - 1] = a->ow;
    (void)fn;
    /* a CPU channels-last input is read as it is (no copy), its outputs
     * (and the argmax, whose values are the in-plane h * w + w either way)
     * made in the same layout; unbatched and CUDA inputs are made
     * contiguous, as before */
    /* adaptive max pooling has NCHW loops only */
    a->channels_last = a->kind != TD_POOL_ADAPTIVE_MAX && td_keeps_channels_last(x);
    TD_CHECK(td_dense_raw(x, x->dtype, a->channels_last, &cx));
    TD_CHECK(td_empty_layout_on(ond, oshape, x->dtype, td_device_of(x), a->channels_last, &y));
    if (a->kind == TD_POOL_MAX || a->kind == TD_POOL_ADAPTIVE_MAX)
        TD_CHECK(
            td_empty_layout_on(ond, oshape, TD_INT64, td_device_of(x), a->channels_last, &idx));
    td_backend_of(x)->layers->pool2d(a, td_data_ptr(cx), td_data_ptr(y),
                                     idx ? td_data_ptr(idx) : NULL);
    if (td_needs_grad(1, &x)) {
        td_node *node = NULL;
        pool_ctx *ctx = NULL;
        TD_CHECK(td_node_new(node_name, pool_backward, 1, &x, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) ctx->args = *a;
        if (st == TD_OK && idx) st = td_node_keep(node, idx, &ctx->argmax);
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
    if (out_idx) {
        *out_idx = idx;
        idx = NULL;
    }
fail:
    td_tensor_release(cx);
    td_tensor_release(y);
    td_tensor_release(idx);
    return st;
}

static td_status check_pool_input(const td_tensor *x, const char *fn)
{
    TD_TRY(td_need_float(x->dtype, 1, fn, "input"));
    if (x->ndim != 3 && x->ndim != 4) {
        char s[160];
        td_shape_str(x, s, sizeof s);
        return td_error(TD_ESHAPE, 1, "%s: input must be (N, C, H, W) or (C, H, W), got %s", fn, s);
    }
    return TD_OK;
}

/* PyTorch's pooling output size */
static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode)
{
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) o--;
    return o;
}

static td_status pool_plan(td_tensor *x, const td_pool2d_opts *o, bool is_max, td_pool2d_args *a,
                           const char *fn)
{
    TD_TRY(check_pool_input(x, fn));
    int64_t st[2] = {o->stride[0], o->stride[1]};
    if (st[0] == 0 && st[1] == 0) st[0] = o->kernel[0], st[1] = o->kernel[1];
    for (int i = 0; i < 2; i++) {
        if (o->kernel[i] < 1)
            return td_error(TD_EINVAL, 2, "%s: kernel_size must be positive, got %lld", fn,
                            (long long)o->kernel[i]);
        if (st[i] < 1)
            return td_error(TD_EINVAL, 3, "%s: stride must be positive, got %lld", fn,
                            (long long)st[i]);
        if (o->dilation[i] < 1)
            return td_error(TD_EINVAL, 3, "%s: dilation must be positive, got %lld", fn,
                            (long long)o->dilation[i]);
        int64_t eff = o->kernel[i]; /* PyTorch: half the kernel, whatever the dilation */
        if (o->padding[i] < 0 || o->padding[i] > eff / 2)
            return td_error(
                TD_EINVAL, 3,
                "%s: padding must be between 0 and half the kernel size (%lld), got %lld", fn,
                (long long)(eff / 2), (long long)o->padding[i]);
    }
    int nd = x->ndim;
    a->kind = is_max ? TD_POOL_MAX : TD_POOL_AVG;
    a->h = x->shape[nd - 2], a->w = x->shape[nd - 1];
    a->kh = o->kernel[0], a->kw = o->kernel[1], a->sh = st[0], a->sw = st[1];
    a->ph = o->padding[0], a->pw = o->padding[1];
    a->dh = is_max ? o->dilation[0] : 1, a->dw = is_max ? o->dilation[1] : 1;
    a->count_include_pad = o->count_include_pad;
    a->oh = pool_out(a->h, a->kh, a->sh, a->ph, a->dh, o->ceil_mode);
    a->ow = pool_out(a->w, a->kw, a->sw, a->pw, a->dw, o->ceil_mode);
    if (a->oh < 1 || a->ow < 1) {
        char s[160];
        td_shape_str(x, s, sizeof s);
        return td_error(TD_ESHAPE, 2, "%s: output size %lldx%lld is too small for input %s", fn,
                        (long long)a->oh, (long long)a->ow, s);
    }
    return TD_OK;
}

/* the pools on bfloat16 / float16 inputs: the float32 kernels between a
 * widening and a rounding (a maximum is exact either way) */
static td_status max_pool_f32(td_tensor *xf, const void *o, td_tensor **out)
{
    return td_max_pool2d(xf, o, out);
}

static td_status avg_pool_f32(td_tensor *xf, const void *o, td_tensor **out)
{
    return td_avg_pool2d(xf, o, out);
}

typedef struct {
    const td_pool2d_opts *o;
    int64_t divisor, oh, ow;
} pool_lowp_args;

static td_status avg_pool_divisor_f32(td_tensor *xf, const void *args, td_tensor **out)
{
    const pool_lowp_args *p = args;
    return td_avg_pool2d_divisor(xf, p->o, p->divisor, out);
}

static td_status adaptive_avg_pool_f32(td_tensor *xf, const void *args, td_tensor **out)
{
    const pool_lowp_args *p = args;
    return td_adaptive_avg_pool2d(xf, p->oh, p->ow, out);
}

td_status td_max_pool2d(td_tensor *x, const td_pool2d_opts *o, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype)) return td_lowp_via_float32(x, max_pool_f32, o, out);
    td_pool2d_args a = {0};
    TD_TRY(pool_plan(x, o, true, &a, "max_pool2d"));
    return pool_run(x, &a, "max_pool2d", "MaxPool2DWithIndicesBackward", out, NULL);
}

td_status td_max_pool2d_with_indices(td_tensor *x, const td_pool2d_opts *o, td_tensor **out,
                                     td_tensor **indices)
{
    td_pool2d_args a = {0};
    TD_TRY(pool_plan(x, o, true, &a, "max_pool2d"));
    return pool_run(x, &a, "max_pool2d", "MaxPool2DWithIndicesBackward", out, indices);
}

td_status td_avg_pool2d(td_tensor *x, const td_pool2d_opts *o, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype)) return td_lowp_via_float32(x, avg_pool_f32, o, out);
    td_pool2d_args a = {0};
    TD_TRY(pool_plan(x, o, false, &a, "avg_pool2d"));
    return pool_run(x, &a, "avg_pool2d", "AvgPool2DBackward", out, NULL);
}

td_status td_avg_pool2d_divisor(td_tensor *x, const td_pool2d_opts *o, int64_t divisor_override,
                                td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, avg_pool_divisor_f32,
                                   &(pool_lowp_args){o, divisor_override, 0, 0}, out);
    td_pool2d_args a = {0};
    TD_TRY(pool_plan(x, o, false, &a, "avg_pool2d"));
    if (divisor_override < 1)
        return td_error(TD_EINVAL, 3, "avg_pool2d: divisor_override must be positive, got %lld",
                        (long long)divisor_override);
    a.divisor_override = divisor_override;
    return pool_run(x, &a, "avg_pool2d", "AvgPool2DBackward", out, NULL);
}

td_status td_adaptive_avg_pool2d(td_tensor *x, int64_t oh, int64_t ow, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, adaptive_avg_pool_f32, &(pool_lowp_args){NULL, 0, oh, ow},
                                   out);
    TD_TRY(check_pool_input(x, "adaptive_avg_pool2d"));
    if (oh < 1 || ow < 1)
        return td_error(TD_EINVAL, 2,
                        "adaptive_avg_pool2d: output_size must be positive, got %lldx%lld",
                        (long long)oh, (long long)ow);
    td_pool2d_args a = {0};
    a.kind = TD_POOL_ADAPTIVE_AVG;
    a.h = x->shape[x->ndim - 2], a.w = x->shape[x->ndim - 1];
    a.oh = oh, a.ow = ow;
    a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = 1;
    return pool_run(x, &a, "adaptive_avg_pool2d", "AdaptiveAvgPool2DBackward", out, NULL);
}

td_status td_adaptive_max_pool2d(td_tensor *x, int64_t oh, int64_t ow, td_tensor **out,
                                 td_tensor **indices)
{
    TD_TRY(check_pool_input(x, "adaptive_max_pool2d"));
    if (oh < 1 || ow < 1)
        return td_error(TD_EINVAL, 2,
                        "adaptive_max_pool2d: output_size must be positive, got %lldx%lld",
                        (long long)oh, (long long)ow);
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    if (h < 1 || w < 1) {
        char s[160];
        td_shape_str(x, s, sizeof s);
        return td_error(TD_ESHAPE, 1, "adaptive_max_pool2d: input %s has an empty plane", s);
    }
    td_pool2d_args a = {0};
    a.kind = TD_POOL_ADAPTIVE_MAX;
    a.h = h, a.w = w;
    a.oh = oh, a.ow = ow;
    a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = 1;
    return pool_run(x, &a, "adaptive_max_pool2d", "AdaptiveMaxPool2DBackward", out, indices);
}

/* ---- dropout --------------------------------------------------------- */

/* the forward's mask is regenerated from its key */
typedef struct {
    uint64_t key;
    double p;
} dropout_ctx;

static td_status dropout_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const dropout_ctx *ctx = nd->ctx;
    td_tensor *cg = NULL, *gx = NULL;
    td_status st;
    td_dtype dt = nd->in_dtype[0];
    TD_CHECK(td_dense_raw(g, dt, false, &cg));
    TD_CHECK(td_empty_like(cg, &gx));
    td_backend_of(gx)->layers->dropout(dt, td_data_ptr(gx), td_data_ptr(cg), td_numel(gx), ctx->key,
                                       ctx->p);
    gi[0] = gx;
    gx = NULL;
fail:
    td_tensor_release(cg);
    td_tensor_release(gx);
    return st;
}

td_status td_dropout(td_tensor *x, double p, bool training, td_tensor **out)
{
    TD_TRY(td_need_float(x->dtype, 1, "dropout", "input"));
    if (!(p >= 0 && p <= 1))
        return td_error(TD_EINVAL, 2, "dropout: p must be in [0, 1], got %g", p);
    if (!training || p == 0) return td_detach_view_like(x, out);
    uint64_t key = td_random_u64();
    td_tensor *cx = NULL, *y = NULL;
    td_status st;
    TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
    TD_CHECK(td_empty_like(x, &y));
    td_backend_of(x)->layers->dropout(x->dtype, td_data_ptr(y), td_data_ptr(cx), td_numel(y), key,
                                      p);
    if (td_needs_grad(1, &x)) {
        td_node *node = NULL;
        dropout_ctx *ctx = NULL;
        TD_CHECK(td_node_new("DropoutBackward", dropout_backward, 1, &x, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->key = key;
            ctx->p = p;
        }
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(y);
    return st;
}

/* ---- leaky_relu (a composition) ---------------------------------------- */

td_status td_leaky_relu(td_tensor *x, double slope, td_tensor **out)
{
    TD_TRY(td_need_float(x->dtype, 1, "leaky_relu", "input"));
    if (!isfinite(slope))
        return td_error(TD_EINVAL, 2, "leaky_relu: negative_slope must be finite, got %g", slope);
    td_tensor *mask = NULL, *neg = NULL;
    td_status st;
    TD_CHECK(td_binary_scalar(TD_GT, x, 0.0, false, &mask));
    TD_CHECK(td_binary_scalar(TD_MUL, x, slope, false, &neg));
    TD_CHECK(td_where(mask, x, neg, out));
fail:
    td_tensor_release(mask);
    td_tensor_release(neg);
    return st;
}

/* ---- embedding ------------------------------------------------------- */

typedef struct {
    td_tensor *indices;  /* flat */
    int64_t padding_idx; /* wrapped, or -1 for none */
} embedding_ctx;

static td_status embedding_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const embedding_ctx *ctx = nd->ctx;
    td_tensor *idx = ctx->indices, *cg = NULL, *z = NULL, *gw = NULL;
    td_status st;
    td_dtype dt = nd->in_dtype[1];
    int64_t v = nd->in_shape[1][0], d = nd->in_shape[1][1], pad = ctx->padding_idx;
    int64_t n = td_numel(idx);
    int64_t two[2] = {n, d};
    TD_CHECK(td_empty_on(2, two, dt, td_device_of(idx), &cg));
    {
        td_tensor *gv = NULL;
        TD_CHECK(td_reshape(g, 2, two, &gv));
        td_backend_of(cg)->copy(cg, gv);
        td_tensor_release(gv);
    }
    if (pad >= 0) { /* rows of padding_idx take no gradient (on any device) */
        td_tensor *eq = NULL, *m = NULL, *f = NULL;
        int64_t col[2] = {n, 1};
        st = td_binary_scalar(TD_EQ, idx, (double)pad, false, &eq);
        if (st == TD_OK) st = td_view(eq, 2, col, &m);
        if (st == TD_OK) st = td_masked_fill(cg, m, 0.0, &f);
        td_tensor_release(eq);
        td_tensor_release(m);
        if (st != TD_OK) goto fail;
        td_tensor_release(cg);
        cg = f;
    }
    int64_t ws[2] = {v, d};
    TD_CHECK(td_full_on(2, ws, 0.0, dt, td_device_of(idx), &z));
    td_backend_of(z)->index_add(z, 0, idx, cg);
    gi[1] = z;
    z = NULL;
fail:
    td_tensor_release(cg);
    td_tensor_release(z);
    td_tensor_release(gw);
    return st;
}

td_status td_embedding(td_tensor *indices, td_tensor *weight, bool has_pad, int64_t pad,
                       td_tensor **out)
{
    if (indices->dtype != TD_INT64)
        return td_error(TD_EDTYPE, 1, "embedding: indices must be int64, got %s",
                        td_dtype_name(indices->dtype));
    TD_TRY(td_need_float(weight->dtype, 2, "embedding", "weight"));
    if (weight->ndim != 2) {
        char s[160];
        td_shape_str(weight, s, sizeof s);
        return td_error(TD_ESHAPE, 2,
                        "embedding: weight must be (num_embeddings, embedding_dim), got %s", s);
    }
    int64_t v = weight->shape[0], d = weight->shape[1];
    if (has_pad) {
        if (pad < -v || pad >= v)
            return td_error(TD_ERANGE, 3,
                            "embedding: padding_idx %lld is out of range for %lld embeddings",
                            (long long)pad, (long long)v);
        if (pad < 0) pad += v;
    } else {
        pad = -1;
    }
    if (indices->ndim + 1 > TD_MAX_DIMS)
        return td_error(TD_ESHAPE, 1, "embedding: indices have too many dims (%d)", indices->ndim);
    td_tensor *ci = NULL, *wd = NULL, *y = NULL, *yr = NULL;
    td_status st;
    int64_t n = td_numel(indices);
    TD_CHECK(td_dense_raw(indices, TD_INT64, false, &ci));
    {
        td_tensor *on[2] = {indices, weight}, *h = NULL; /* a device index is checked on the host */
        TD_CHECK(td_same_device(2, on));
        if (td_device_of(ci).type != TD_CPU) TD_CHECK(td_to_device(ci, TD_DEVICE_CPU, &h));
        const int64_t *ip = td_data_ptr(h ? h : ci);
        for (int64_t i = 0; i < n; i++)
            if (ip[i] < 0 || ip[i] >= v) {
                st = td_error(
                    TD_ERANGE, 1,
                    "embedding: index %lld at position %lld is out of range for %lld embeddings",
                    (long long)ip[i], (long long)i, (long long)v);
                td_tensor_release(h);
                goto fail;
            }
        td_tensor_release(h);
    }
    int64_t flat[1] = {n};
    {
        td_tensor *f = NULL;
        TD_CHECK(td_view(ci, 1, flat, &f));
        td_tensor_release(ci);
        ci = f;
    }
    int64_t two[2] = {n, d};
    TD_CHECK(td_empty_on(2, two, weight->dtype, td_device_of(weight), &y));
    td_backend_of(weight)->index_select(y, weight, 0, ci);
    int64_t oshape[TD_MAX_DIMS];
    memcpy(oshape, indices->shape, sizeof(int64_t) * (size_t)indices->ndim);
    oshape[indices->ndim] = d;
    TD_CHECK(td_view(y, indices->ndim + 1, oshape, &yr));
    td_tensor *ins[2] = {indices, weight};
    if (td_needs_grad(2, ins)) {
        td_node *node = NULL;
        embedding_ctx *ctx = NULL;
        TD_CHECK(td_node_new("EmbeddingBackward", embedding_backward, 2, ins, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->padding_idx = pad;
            st = td_node_keep(node, ci, &ctx->indices);
        }
        TD_CHECK(td_node_finish(node, st, yr));
    }
    *out = yr;
    yr = NULL;
fail:
    td_tensor_release(ci);
    td_tensor_release(wd);
    td_tensor_release(y);
    td_tensor_release(yr);
    return st;
}
