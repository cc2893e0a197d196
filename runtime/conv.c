/* conv2d's front-end: check every argument once, one kernel call, one
 * autograd node whose backward calls the backward-data and
 * backward-weights kernels for whichever inputs need a gradient.
 * Argument numbers in errors are the Lua call's: 1 input, 2 weight, 3 the
 * options table (bias, stride, padding, dilation, groups). */
#include "internal.h"
#include "tide/autocast.h"

#include <stdio.h>

typedef struct {
    td_tensor *x, *w; /* x in the kernels' layout, w contiguous, both of the op's dtype */
    td_conv_args args;
} conv_ctx;

/* t (x or gy) as the kernels take it: as it is when the backend takes
 * channels-last float32 and t is contiguous NCHW (the backend reorders it
 * itself, at no more cost than our copy), else dense in the kernels'
 * layout; *cl says which */
static td_status activation(td_tensor *t, const td_conv_args *a, td_tensor **out, bool *cl)
{
    if (a->channels_last && t->dtype == a->dtype && td_is_contiguous(t)) {
        *cl = false;
        return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    }
    *cl = a->channels_last;
    return td_dense_raw(t, a->dtype, a->channels_last, out);
}

static td_status conv_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const conv_ctx *c = nd->ctx;
    td_conv_args a = c->args;
    td_tensor *x = c->x, *w = c->w;
    td_tensor *gy = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
    td_status st = TD_OK;
    const td_backend *be = td_backend_of(x);
    td_device dev = td_device_of(x);
    bool want_x = nd->next[0] != NULL, want_w = nd->next[1] != NULL,
         want_b = nd->n_next > 2 && nd->next[2] != NULL;
    TD_CHECK(activation(g, &a, &gy, &a.gy_cl));
    if (want_x) TD_CHECK(td_empty_layout_on(4, x->shape, a.dtype, dev, a.channels_last, &gx));
    /* an empty batch contributes nothing: zeros */
    if (want_w)
        TD_CHECK(a.n > 0 ? td_empty_on(4, w->shape, a.dtype, dev, &gw)
                         : td_full_on(4, w->shape, 0, a.dtype, dev, &gw));
    if (want_b)
        TD_CHECK(a.n > 0 ? td_empty_on(1, &a.o, a.dtype, dev, &gb)
                         : td_full_on(1, &a.o, 0, a.dtype, dev, &gb));
    if (a.n > 0)
        TD_CHECK(be->conv->backward(&a, td_data_ptr(x), td_data_ptr(w), td_data_ptr(gy),
                                    gx ? td_data_ptr(gx) : NULL, gw ? td_data_ptr(gw) : NULL,
                                    gb ? td_data_ptr(gb) : NULL));
    gi[0] = gx;
    gi[1] = gw;
    if (nd->n_next > 2) gi[2] = gb;
    gx = gw = gb = NULL;
fail:
    td_tensor_release(gy);
    td_tensor_release(gx);
    td_tensor_release(gw);
    td_tensor_release(gb);
    return st;
}

static td_status check_pair(const char *opt, const int64_t *v, int64_t min)
{
    for (int i = 0; i < 2; i++) {
        if (v[i] < min)
            return td_error(TD_EINVAL, 3, "conv2d: %s must be %s, got {%lld, %lld}", opt,
                            min == 0 ? "non-negative" : "positive", (long long)v[0],
                            (long long)v[1]);
        if (v[i] > INT32_MAX) /* keeps the size arithmetic far from overflow */
            return td_error(TD_EINVAL, 3, "conv2d: %s {%lld, %lld} is too large", opt,
                            (long long)v[0], (long long)v[1]);
    }
    return TD_OK;
}

static td_status conv2d_4d(td_tensor *x, td_tensor *w, const td_conv2d_opts *o, td_tensor **out)
{
    char s1[160], s2[160];
    td_tensor *b = o->bias;
    td_tensor *all[3] = {x, w, b};
    TD_TRY(td_same_device(3, all));
    if (w->ndim != 4) {
        td_shape_str(w, s1, sizeof s1);
        return td_error(
            TD_ESHAPE, 2,
            "conv2d: weight must be 4-dim (out_channels, in_channels/groups, kH, kW), got shape %s",
            s1);
    }
    if (w->dtype != x->dtype)
        return td_error(TD_EDTYPE, 2, "conv2d: weight must be %s like input, got %s",
                        td_dtype_name(x->dtype), td_dtype_name(w->dtype));
    TD_TRY(check_pair("stride", o->stride, 1));
    TD_TRY(check_pair("padding", o->padding, 0));
    TD_TRY(check_pair("dilation", o->dilation, 1));
    if (o->groups < 1)
        return td_error(TD_EINVAL, 3, "conv2d: groups must be positive, got %lld",
                        (long long)o->groups);
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
    int64_t oc = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    if (c % o->groups != 0)
        return td_error(TD_EINVAL, 3,
                        "conv2d: input channels (%lld) must be divisible by groups (%lld)",
                        (long long)c, (long long)o->groups);
    if (oc % o->groups != 0 || oc == 0)
        return td_error(
            TD_EINVAL, 2,
            "conv2d: weight's out_channels (%lld) must be a positive multiple of groups (%lld)",
            (long long)oc, (long long)o->groups);
    if (w->shape[1] * o->groups != c || c == 0) {
        td_shape_str(x, s1, sizeof s1);
        td_shape_str(w, s2, sizeof s2);
        return td_error(
            TD_ESHAPE, 2,
            "conv2d: weight %s expects %lld input channels (in_channels/groups = %lld, groups = %lld), "
            "input %s has %lld",
            s2, (long long)(w->shape[1] * o->groups), (long long)w->shape[1], (long long)o->groups,
            s1, (long long)c);
    }
    if (kh < 1 || kw < 1) {
        td_shape_str(w, s2, sizeof s2);
        return td_error(TD_ESHAPE, 2, "conv2d: weight %s has an empty kernel", s2);
    }
    if (b) {
        if (b->dtype != x->dtype)
            return td_error(TD_EDTYPE, 3, "conv2d: bias must be %s like input, got %s",
                            td_dtype_name(x->dtype), td_dtype_name(b->dtype));
        if (b->ndim != 1 || b->shape[0] != oc) {
            td_shape_str(b, s1, sizeof s1);
            return td_error(
                TD_ESHAPE, 3,
                "conv2d: bias must have shape (%lld), one value per output channel, got %s",
                (long long)oc, s1);
        }
    }
    int64_t ekh = o->dilation[0] * (kh - 1) + 1, ekw = o->dilation[1] * (kw - 1) + 1;
    int64_t ph = h + 2 * o->padding[0], pw = wd + 2 * o->padding[1];
    if (ph < ekh || pw < ekw) {
        td_shape_str(x, s1, sizeof s1);
        return td_error(
            TD_ESHAPE, 1,
            "conv2d: the (dilated) kernel %lldx%lld is bigger than the padded input %lldx%lld "
            "(input %s, padding {%lld, %lld})",
            (long long)ekh, (long long)ekw, (long long)ph, (long long)pw, s1,
            (long long)o->padding[0], (long long)o->padding[1]);
    }
    td_conv_args a = {x->dtype,
                      n,
                      c,
                      h,
                      wd,
                      oc,
                      kh,
                      kw,
                      (ph - ekh) / o->stride[0] + 1,
                      (pw - ekw) / o->stride[1] + 1,
                      o->stride[0],
                      o->stride[1],
                      o->padding[0],
                      o->padding[1],
                      o->dilation[0],
                      o->dilation[1],
                      o->groups,
                      x->dtype != TD_FLOAT64 && td_backend_of(x)->conv->f32_channels_last,
                      false,
                      false};
    a.x_cl = a.gy_cl = a.channels_last;

    td_tensor *cx = NULL, *cw = NULL, *cb = NULL, *y = NULL;
    td_status st = TD_OK;
    int64_t yshape[4] = {n, oc, a.oh, a.ow};
    /* the output is channels-last when the backend takes that layout, so the
     * next layer reads it as it is; the input as activation() gives it */
    TD_CHECK(td_empty_layout_on(4, yshape, x->dtype, td_device_of(x), a.channels_last, &y));
    TD_CHECK(activation(x, &a, &cx, &a.x_cl));
    TD_CHECK(td_dense_raw(w, x->dtype, false, &cw));
    if (b) TD_CHECK(td_dense_raw(b, x->dtype, false, &cb));
    if (n > 0)
        TD_CHECK(td_backend_of(x)->conv->forward(&a, td_data_ptr(cx), td_data_ptr(cw),
                                                 cb ? td_data_ptr(cb) : NULL, td_data_ptr(y)));
    td_tensor *ins[3] = {x, w, b};
    int nin = b ? 3 : 2;
    if (td_needs_grad(nin, ins)) {
        td_node *node;
        conv_ctx *ctx = NULL;
        TD_CHECK(td_node_new("ConvolutionBackward", conv_backward, nin, ins, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->args = a;
            st = td_node_keep(node, cx, &ctx->x);
        }
        if (st == TD_OK) st = td_node_keep(node, cw, &ctx->w);
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(cw);
    td_tensor_release(cb);
    td_tensor_release(y);
    return st;
}

bool td_conv_takes_lowp(const td_tensor *t)
{
    const struct td_conv_kernels *k = td_backend_of(t)->conv;
    return td_dtype_is_lowp(t->dtype) && !td_deterministic() && k && k->takes_lowp &&
           k->takes_lowp(t->dtype);
}

td_status td_conv_path(td_device dev, td_dtype dt, const char **out)
{
    TD_TRY(td_device_check(dev));
    const td_backend *be = td_backend_for(dev);
    *out = be && be->conv && be->conv->path ? be->conv->path(dt) : "unknown";
    return TD_OK;
}

/* inputs in bfloat16 or float16 that the kernels do not take (see
 * td_conv_takes_lowp): widened to float32 for the float32
 * kernels, the result rounded back to the input's dtype, every step
 * recorded so gradients come back in the inputs' dtypes (the numbers of a
 * low-precision convolution that accumulates in float32) */
static td_status conv2d_lowp(td_tensor *x, td_tensor *w, const td_conv2d_opts *o, td_tensor **out)
{
    if (w->dtype != x->dtype || (o->bias && o->bias->dtype != x->dtype))
        return td_error(TD_EDTYPE, w->dtype != x->dtype ? 2 : 0,
                        "conv2d: weight and bias must be %s like input, got %s%s%s",
                        td_dtype_name(x->dtype), td_dtype_name(w->dtype), o->bias ? " and " : "",
                        o->bias ? td_dtype_name(o->bias->dtype) : "");
    td_tensor *in[3] = {x, w, o->bias}, *c[3], *y = NULL;
    TD_TRY(td_autocast_float32(3, in, c));
    td_conv2d_opts o32 = *o;
    o32.bias = c[2];
    td_status st = td_conv2d(c[0], c[1], &o32, &y);
    if (st == TD_OK) st = td_to_dtype(y, x->dtype, out);
    td_tensor_release(y);
    td_autocast_release(3, c);
    return st;
}

td_status td_conv2d(td_tensor *x, td_tensor *w, const td_conv2d_opts *o, td_tensor **out)
{
    char s1[160];
    if (td_autocast_enabled()) {
        td_tensor *in[3] = {x, w, o->bias}, *c[3];
        int depth;
        TD_TRY(td_autocast_begin(3, in, c, &depth));
        td_conv2d_opts oc = *o;
        oc.bias = c[2];
        td_status st = td_conv2d(c[0], c[1], &oc, out);
        td_autocast_end(3, c, depth);
        return st;
    }
    if (td_dtype_is_lowp(x->dtype) && !td_conv_takes_lowp(x)) return conv2d_lowp(x, w, o, out);
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64 && !td_dtype_is_lowp(x->dtype))
        return td_error(TD_EDTYPE, 1, "conv2d: input must be float32 or float64, got %s",
                        td_dtype_name(x->dtype));
    if (x->ndim == 4) return conv2d_4d(x, w, o, out);
    if (x->ndim != 3) {
        td_shape_str(x, s1, sizeof s1);
        return td_error(TD_ESHAPE, 1,
                        "conv2d: input must be 4-dim (N, C, H, W) or 3-dim (C, H, W), got shape %s",
                        s1);
    }
    /* unbatched (C, H, W): through a batch of one, as PyTorch */
    td_tensor *x4 = NULL, *y4 = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_unsqueeze(x, 0, &x4));
    TD_CHECK(conv2d_4d(x4, w, o, &y4));
    TD_CHECK(td_squeeze(y4, 0, false, out));
fail:
    td_tensor_release(x4);
    td_tensor_release(y4);
    return st;
}
