/* The N-d and transposed convolutions' front-end (conv1d, conv3d,
 * conv_transpose1d/2d/3d; conv2d keeps runtime/conv.c): check every
 * argument once, one kernel call, one autograd node for input and weight.
 * A transposed convolution is the gradient of a convolution with respect
 * to its input, so it runs the convolution kernels with the roles swapped:
 * its forward is backward_data, its input gradient the forward. The bias
 * is added by an ordinary broadcast add, which records its own gradient.
 * Argument numbers in errors are the Lua call's: 1 input, 2 weight, 3 the
 * options. */
#include "internal.h"
#include "tide/autocast.h"

typedef struct {
    td_tensor *x, *w; /* contiguous, of the op's dtype */
    td_convnd_args args;
    bool transposed;
} convnd_ctx;

static const char *op_name(int nd, bool transposed)
{
    static const char *const names[2][4] = {
        {"", "conv1d", "conv2d", "conv3d"},
        {"", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}};
    return names[transposed][nd];
}

static td_status convnd_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const convnd_ctx *c = nd->ctx;
    const td_convnd_args *a = &c->args;
    const struct td_convnd_kernels *k = td_backend_of(c->x)->conv->nd;
    td_device dev = td_device_of(c->x);
    td_tensor *gy = NULL, *gx = NULL, *gw = NULL;
    td_status st = TD_OK;
    bool want_x = nd->next[0] != NULL, want_w = nd->next[1] != NULL;
    TD_CHECK(td_dense_raw(g, a->dtype, false, &gy));
    if (want_x) TD_CHECK(td_empty_on(c->x->ndim, c->x->shape, a->dtype, dev, &gx));
    if (want_w)
        TD_CHECK(a->n > 0 ? td_empty_on(c->w->ndim, c->w->shape, a->dtype, dev, &gw)
                          : td_full_on(c->w->ndim, c->w->shape, 0, a->dtype, dev, &gw));
    if (a->n > 0) {
        void *px = td_data_ptr(c->x), *pw = td_data_ptr(c->w), *pg = td_data_ptr(gy);
        if (c->transposed) {
            /* the op's input is the convolution's output and vice versa */
            if (gx) TD_CHECK(k->forward(a, pg, pw, td_data_ptr(gx)));
            if (gw) TD_CHECK(k->backward_weights(a, pg, px, td_data_ptr(gw)));
        } else {
            if (gx) TD_CHECK(k->backward_data(a, pg, pw, td_data_ptr(gx)));
            if (gw) TD_CHECK(k->backward_weights(a, px, pg, td_data_ptr(gw)));
        }
    }
    gi[0] = gx;
    gi[1] = gw;
    gx = gw = NULL;
fail:
    td_tensor_release(gy);
    td_tensor_release(gx);
    td_tensor_release(gw);
    return st;
}

static td_status check_opt(const char *fn, const char *opt, int nd, const int64_t *v, int64_t min)
{
    for (int i = 0; i < nd; i++) {
        if (v[i] < min)
            return td_error(TD_EINVAL, 3, "%s: %s must be %s, got %lld", fn, opt,
                            min == 0 ? "non-negative" : "positive", (long long)v[i]);
        if (v[i] > INT32_MAX) /* keeps the size arithmetic far from overflow */
            return td_error(TD_EINVAL, 3, "%s: %s %lld is too large", fn, opt, (long long)v[i]);
    }
    return TD_OK;
}

static td_status check_weight(const char *fn, int nd, td_tensor *x, td_tensor *w,
                              const td_convnd_opts *o)
{
    char s1[160], s2[160];
    static const char *const kdims[4] = {"", "kW", "kH, kW", "kD, kH, kW"};
    if (w->ndim != nd + 2) {
        td_shape_str(w, s1, sizeof s1);
        return td_error(
            TD_ESHAPE, 2, "%s: weight must be %d-dim (%s, %s), got shape %s", fn, nd + 2,
            o->transposed ? "in_channels, out_channels/groups" : "out_channels, in_channels/groups",
            kdims[nd], s1);
    }
    if (w->dtype != x->dtype)
        return td_error(TD_EDTYPE, 2, "%s: weight must be %s like input, got %s", fn,
                        td_dtype_name(x->dtype), td_dtype_name(w->dtype));
    int64_t c = x->shape[1], g = o->groups;
    if (c % g != 0 || c == 0)
        return td_error(TD_EINVAL, 3,
                        "%s: input channels (%lld) must be a positive multiple of groups (%lld)",
                        fn, (long long)c, (long long)g);
    bool bad = o->transposed ? w->shape[0] != c : w->shape[1] * g != c;
    int64_t outs = o->transposed ? w->shape[1] * g : w->shape[0];
    if (!bad && !o->transposed && outs % g != 0) bad = true;
    if (bad || outs == 0) {
        td_shape_str(x, s1, sizeof s1);
        td_shape_str(w, s2, sizeof s2);
        return td_error(TD_ESHAPE, 2,
                        "%s: weight %s does not fit input %s with groups = %lld (weight is (%s, "
                        "%s, kernel...))",
                        fn, s2, s1, (long long)g,
                        o->transposed ? "in_channels" : "out_channels (a multiple of groups)",
                        o->transposed ? "out_channels/groups" : "in_channels/groups");
    }
    for (int i = 0; i < nd; i++)
        if (w->shape[2 + i] < 1) {
            td_shape_str(w, s2, sizeof s2);
            return td_error(TD_ESHAPE, 2, "%s: weight %s has an empty kernel", fn, s2);
        }
    return TD_OK;
}

static td_status convnd_batched(int nd, td_tensor *x, td_tensor *w, const td_convnd_opts *o,
                                td_tensor **out)
{
    const char *fn = op_name(nd, o->transposed);
    char s1[160];
    td_tensor *all[3] = {x, w, o->bias};
    TD_TRY(td_same_device(3, all));
    if (!td_backend_of(x)->conv->nd)
        return td_error(TD_EINVAL, 1, "%s: not available on %s tensors", fn,
                        td_backend_of(x)->name);
    TD_TRY(check_opt(fn, "stride", nd, o->stride, 1));
    TD_TRY(check_opt(fn, "padding", nd, o->padding, 0));
    TD_TRY(check_opt(fn, "dilation", nd, o->dilation, 1));
    TD_TRY(check_opt(fn, "output_padding", nd, o->output_padding, 0));
    if (o->groups < 1)
        return td_error(TD_EINVAL, 3, "%s: groups must be positive, got %lld", fn,
                        (long long)o->groups);
    TD_TRY(check_weight(fn, nd, x, w, o));
    td_convnd_args a;
    memset(&a, 0, sizeof a);
    a.dtype = x->dtype;
    a.nd = nd;
    a.n = x->shape[0];
    a.groups = o->groups;
    int64_t outs = o->transposed ? w->shape[1] * o->groups : w->shape[0];
    /* the convolution's view: x (n, c, in), y (n, o, out) */
    a.c = o->transposed ? outs : x->shape[1];
    a.o = o->transposed ? x->shape[1] : outs;
    int64_t yshape[5] = {a.n, outs};
    for (int i = 0; i < 3; i++) {
        bool on = i < nd;
        int64_t size = on ? x->shape[2 + i] : 1, k = on ? w->shape[2 + i] : 1;
        int64_t s = on ? o->stride[i] : 1, p = on ? o->padding[i] : 0, d = on ? o->dilation[i] : 1;
        int64_t op = on ? o->output_padding[i] : 0, ek = d * (k - 1) + 1;
        a.k[i] = k;
        a.stride[i] = s;
        a.pad[i] = p;
        a.dil[i] = d;
        if (!o->transposed) {
            if (op != 0)
                return td_error(TD_EINVAL, 3, "%s: output_padding is for transposed convolutions",
                                fn);
            if (size + 2 * p < ek) {
                td_shape_str(x, s1, sizeof s1);
                return td_error(TD_ESHAPE, 1,
                                "%s: the (dilated) kernel (%lld) is bigger than the padded input "
                                "(%lld) in spatial dim %d (input %s, padding %lld)",
                                fn, (long long)ek, (long long)(size + 2 * p), i + 1, s1,
                                (long long)p);
            }
            a.in[i] = size;
            a.out[i] = (size + 2 * p - ek) / s + 1;
        } else {
            if (op >= s && op >= d)
                return td_error(TD_EINVAL, 3,
                                "%s: output_padding (%lld) must be smaller than stride (%lld) or "
                                "dilation (%lld)",
                                fn, (long long)op, (long long)s, (long long)d);
            int64_t osz = (size - 1) * s - 2 * p + ek + op;
            if (osz < 1) {
                td_shape_str(x, s1, sizeof s1);
                return td_error(TD_ESHAPE, 1,
                                "%s: input %s gives an empty output (size %lld) in spatial dim %d",
                                fn, s1, (long long)osz, i + 1);
            }
            a.in[i] = osz;
            a.out[i] = size;
        }
        if (on) yshape[2 + i] = o->transposed ? a.in[i] : a.out[i];
    }
    if (o->bias) {
        td_tensor *b = o->bias;
        if (b->dtype != x->dtype)
            return td_error(TD_EDTYPE, 3, "%s: bias must be %s like input, got %s", fn,
                            td_dtype_name(x->dtype), td_dtype_name(b->dtype));
        if (b->ndim != 1 || b->shape[0] != outs) {
            td_shape_str(b, s1, sizeof s1);
            return td_error(TD_ESHAPE, 3,
                            "%s: bias must have shape (%lld), one value per output channel, got %s",
                            fn, (long long)outs, s1);
        }
    }
    TD_TRY(td_check_shape(nd + 2, yshape, 1));

    const struct td_convnd_kernels *k = td_backend_of(x)->conv->nd;
    td_tensor *cx = NULL, *cw = NULL, *y = NULL, *bv = NULL, *yb = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_empty_on(nd + 2, yshape, x->dtype, td_device_of(x), &y));
    TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
    TD_CHECK(td_dense_raw(w, x->dtype, false, &cw));
    if (a.n > 0) {
        if (o->transposed)
            TD_CHECK(k->backward_data(&a, td_data_ptr(cx), td_data_ptr(cw), td_data_ptr(y)));
        else
            TD_CHECK(k->forward(&a, td_data_ptr(cx), td_data_ptr(cw), td_data_ptr(y)));
    }
    td_tensor *ins[2] = {x, w};
    if (td_needs_grad(2, ins)) {
        td_node *node;
        convnd_ctx *ctx = NULL;
        TD_CHECK(td_node_new(o->transposed ? "ConvolutionTransposeBackward" : "ConvolutionBackward",
                             convnd_backward, 2, ins, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->args = a;
            ctx->transposed = o->transposed;
            st = td_node_keep(node, cx, &ctx->x);
        }
        if (st == TD_OK) st = td_node_keep(node, cw, &ctx->w);
        TD_CHECK(td_node_finish(node, st, y));
    }
    if (o->bias) {
        int64_t bshape[4] = {outs, 1, 1, 1};
        TD_CHECK(td_view(o->bias, nd + 1, bshape, &bv));
        TD_CHECK(td_binary(TD_ADD, y, bv, &yb));
        td_tensor_release(y);
        y = yb;
        yb = NULL;
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(cw);
    td_tensor_release(y);
    td_tensor_release(bv);
    td_tensor_release(yb);
    return st;
}

/* bfloat16 / float16 inputs the kernels do not take: through the float32
 * kernels, as conv2d's */
static td_status convnd_lowp(int nd, td_tensor *x, td_tensor *w, const td_convnd_opts *o,
                             td_tensor **out)
{
    if (w->dtype != x->dtype || (o->bias && o->bias->dtype != x->dtype))
        return td_error(TD_EDTYPE, w->dtype != x->dtype ? 2 : 0,
                        "%s: weight and bias must be %s like input, got %s%s%s",
                        op_name(nd, o->transposed), td_dtype_name(x->dtype),
                        td_dtype_name(w->dtype), o->bias ? " and " : "",
                        o->bias ? td_dtype_name(o->bias->dtype) : "");
    td_tensor *in[3] = {x, w, o->bias}, *c[3], *y = NULL;
    TD_TRY(td_autocast_float32(3, in, c));
    td_convnd_opts o32 = *o;
    o32.bias = c[2];
    td_status st = td_convnd(nd, c[0], c[1], &o32, &y);
    if (st == TD_OK) st = td_to_dtype(y, x->dtype, out);
    td_tensor_release(y);
    td_autocast_release(3, c);
    return st;
}

td_status td_convnd(int nd, td_tensor *x, td_tensor *w, const td_convnd_opts *o, td_tensor **out)
{
    char s1[160];
    if (nd < 1 || nd > 3)
        return td_error(TD_EINVAL, 0, "convolution: %d spatial dims (1 to 3 are supported)", nd);
    const char *fn = op_name(nd, o->transposed);
    /* PyTorch 1.13's CPU autocast list has the convolutions but not the
     * transposed ones, which stay float32 */
    if (td_autocast_enabled() && !o->transposed) {
        td_tensor *in[3] = {x, w, o->bias}, *c[3];
        int depth;
        TD_TRY(td_autocast_begin(3, in, c, &depth));
        td_convnd_opts oc = *o;
        oc.bias = c[2];
        td_status st = td_convnd(nd, c[0], c[1], &oc, out);
        td_autocast_end(3, c, depth);
        return st;
    }
    if (td_dtype_is_lowp(x->dtype) && !td_conv_takes_lowp(x)) return convnd_lowp(nd, x, w, o, out);
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64 && !td_dtype_is_lowp(x->dtype))
        return td_error(TD_EDTYPE, 1, "%s: input must be float32 or float64, got %s", fn,
                        td_dtype_name(x->dtype));
    if (x->ndim == nd + 2) return convnd_batched(nd, x, w, o, out);
    if (x->ndim != nd + 1) {
        static const char *const dims[4] = {"", "L", "H, W", "D, H, W"};
        td_shape_str(x, s1, sizeof s1);
        return td_error(TD_ESHAPE, 1,
                        "%s: input must be %d-dim (N, C, %s) or %d-dim (C, %s), got "
                        "shape %s",
                        fn, nd + 2, dims[nd], nd + 1, dims[nd], s1);
    }
    /* unbatched: through a batch of one, as PyTorch */
    td_tensor *xb = NULL, *yb = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_unsqueeze(x, 0, &xb));
    TD_CHECK(convnd_batched(nd, xb, w, o, &yb));
    TD_CHECK(td_squeeze(yb, 0, false, out));
fail:
    td_tensor_release(xb);
    td_tensor_release(yb);
    return st;
}
