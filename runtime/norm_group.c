/* group_norm: one autograd node with a hand-written backward over the
 * layers table's gn_forward / gn_backward (kernels/nn_layers.h). The
 * statistics are kept in double on x's device. Argument numbers in errors
 * are the Lua call's: x, num_groups, then the options table. */
#include "internal.h"
#include "tide/autocast.h"

#include <math.h>

typedef struct {
    td_tensor *x, *weight; /* contiguous; weight NULL when absent */
    td_tensor *stats;      /* float64: mean[n g], rstd[n g] */
    int64_t n, c, g, inner;
} gn_ctx;

/* values [k c, (k + 1) c) of the float64 v as a new (c) tensor of dt */
static td_status part_of(td_tensor *v, int64_t k, int64_t c, td_dtype dt, td_tensor **out)
{
    int64_t one = 1;
    td_tensor *p = NULL;
    TD_TRY(td_make_view(v, 1, &c, &one, v->offset + k * c, &p));
    td_status st = td_empty_on(1, &c, dt, td_device_of(v), out);
    if (st == TD_OK) td_backend_of(v)->copy(*out, p);
    td_tensor_release(p);
    return st;
}

static td_status gn_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const gn_ctx *ctx = nd->ctx;
    td_tensor *x = ctx->x, *cg = NULL, *gx = NULL, *sums = NULL, *gwb = NULL;
    td_status st;
    int64_t n = ctx->n, c = ctx->c, two_nc = 2 * n * c, two_c = 2 * c;
    TD_CHECK(td_empty_on(1, &two_nc, TD_FLOAT64, td_device_of(x), &sums));
    TD_CHECK(td_empty_on(1, &two_c, TD_FLOAT64, td_device_of(x), &gwb));
    TD_CHECK(td_dense_raw(g, x->dtype, false, &cg));
    if (nd->next[0]) TD_CHECK(td_empty_on(x->ndim, x->shape, x->dtype, td_device_of(x), &gx));
    const double *sd = td_data_ptr(ctx->stats);
    td_backend_of(x)->layers->gn_backward(
        x->dtype, td_data_ptr(x), td_data_ptr(cg), ctx->weight ? td_data_ptr(ctx->weight) : NULL,
        sd, sd + n * ctx->g, n, c, ctx->g, ctx->inner, td_data_ptr(sums), td_data_ptr(gwb),
        gx ? td_data_ptr(gx) : NULL);
    if (gx) {
        gi[0] = gx;
        gx = NULL;
    }
    if (nd->n_next > 1 && nd->next[1]) TD_CHECK(part_of(gwb, 0, c, nd->in_dtype[1], &gi[1]));
    if (nd->n_next > 2 && nd->next[2]) TD_CHECK(part_of(gwb, 1, c, nd->in_dtype[2], &gi[2]));
fail:
    td_tensor_release(cg);
    td_tensor_release(gx);
    td_tensor_release(sums);
    td_tensor_release(gwb);
    return st;
}

static td_status check_affine(td_tensor *v, const td_tensor *x, int64_t c, const char *what)
{
    if (v->dtype != x->dtype)
        return td_error(TD_EDTYPE, 3, "group_norm: %s must be %s like input, got %s", what,
                        td_dtype_name(x->dtype), td_dtype_name(v->dtype));
    if (v->ndim != 1 || v->shape[0] != c) {
        char s[160];
        td_shape_str(v, s, sizeof s);
        return td_error(TD_ESHAPE, 3,
                        "group_norm: %s must have shape (%lld), one value per channel, got %s",
                        what, (long long)c, s);
    }
    return TD_OK;
}

td_status td_group_norm(td_tensor *x, int64_t groups, td_tensor *weight, td_tensor *bias,
                        double eps, td_tensor **out)
{
    if (td_autocast_enabled() && td_dtype_is_lowp(x->dtype)) { /* float32, as batch_norm */
        td_tensor *in[3] = {x, weight, bias}, *c[3];
        TD_TRY(td_autocast_float32(3, in, c));
        td_status st = td_group_norm(c[0], groups, c[1], c[2], eps, out);
        td_autocast_release(3, c);
        return st;
    }
    char s[160];
    TD_TRY(td_need_float(x->dtype, 1, "group_norm", "input"));
    if (x->ndim < 2) {
        td_shape_str(x, s, sizeof s);
        return td_error(TD_ESHAPE, 1, "group_norm: input must be (N, C) or (N, C, *), got %s", s);
    }
    int64_t n = x->shape[0], c = x->shape[1], inner = td_shape_numel(x->ndim - 2, x->shape + 2);
    if (groups < 1 || c % groups != 0) {
        td_shape_str(x, s, sizeof s);
        return td_error(TD_EINVAL, 2,
                        "group_norm: num_groups must be positive and divide the %lld channels of "
                        "input %s, got %lld",
                        (long long)c, s, (long long)groups);
    }
    if (weight) TD_TRY(check_affine(weight, x, c, "weight"));
    if (bias) TD_TRY(check_affine(bias, x, c, "bias"));
    td_tensor *all[3] = {x, weight, bias};
    TD_TRY(td_same_device(3, all));
    if (!(eps >= 0)) return td_error(TD_EINVAL, 3, "group_norm: eps must be >= 0, got %g", eps);
    const td_backend *be = td_backend_of(x);
    td_tensor *cx = NULL, *cw = NULL, *cb = NULL, *y = NULL, *stats = NULL;
    td_status st;
    int64_t two_ng = 2 * n * groups;
    TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
    if (weight) TD_CHECK(td_dense_raw(weight, x->dtype, false, &cw));
    if (bias) TD_CHECK(td_dense_raw(bias, x->dtype, false, &cb));
    TD_CHECK(td_empty_on(1, &two_ng, TD_FLOAT64, td_device_of(x), &stats));
    TD_CHECK(td_empty_on(x->ndim, x->shape, x->dtype, td_device_of(x), &y));
    double *sd = td_data_ptr(stats);
    if (n * groups > 0)
        be->layers->gn_forward(x->dtype, td_data_ptr(cx), td_data_ptr(y), n, c, groups, inner,
                               cw ? td_data_ptr(cw) : NULL, cb ? td_data_ptr(cb) : NULL, eps, sd,
                               sd + n * groups);
    if (td_needs_grad(3, all)) {
        td_node *node = NULL;
        gn_ctx *ctx = NULL;
        TD_CHECK(td_node_new("NativeGroupNormBackward", gn_backward, 3, all, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->n = n, ctx->c = c, ctx->g = groups, ctx->inner = inner;
            st = td_node_keep(node, cx, &ctx->x);
        }
        if (st == TD_OK) st = td_node_keep(node, stats, &ctx->stats);
        if (st == TD_OK && cw) st = td_node_keep(node, cw, &ctx->weight);
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(cw);
    td_tensor_release(cb);
    td_tensor_release(y);
    td_tensor_release(stats);
    return st;
}
