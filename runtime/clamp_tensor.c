/* clamp with tensor bounds: min(max(x, lo), hi), broadcast. The gradient
 * is PyTorch's (clamp_backward_min_max), not maximum's and minimum's,
 * which split ties: x takes it where lo <= x <= hi; lo where x < lo and
 * lo < hi; hi where x > hi or hi < lo (where the bounds cross, the result
 * is hi). With lo == hi and x outside, neither bound takes it. */
#include "internal.h"
#include "tide/tensor_args.h"

typedef struct {
    td_tensor *x, *lo, *hi;
} clamp_tensor_ctx;

/* g where mask, else 0, summed to input i's shape */
static td_status masked_grad(td_node *n, int i, td_tensor *mask, td_tensor *g, td_tensor **gi)
{
    td_tensor *z = NULL, *t = NULL;
    td_status st;
    TD_CHECK(td_full_on(0, NULL, 0.0, g->dtype, td_device_of(g), &z));
    TD_CHECK(td_where(mask, g, z, &t));
    TD_CHECK(td_grad_to_input(n, i, t, gi));
fail:
    td_tensor_release(z);
    td_tensor_release(t);
    return st;
}

static td_status clamp_tensor_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const clamp_tensor_ctx *c = n->ctx;
    td_tensor *t[7] = {NULL};
    td_status st = TD_OK;
    /* t[0]: x >= lo, t[1]: x <= hi, t[2]: lo < hi, t[3]: hi < lo */
    if (c->lo) TD_CHECK(td_binary(TD_GE, c->x, c->lo, &t[0]));
    if (c->hi) TD_CHECK(td_binary(TD_LE, c->x, c->hi, &t[1]));
    if (c->lo && c->hi) {
        TD_CHECK(td_binary(TD_LT, c->lo, c->hi, &t[2]));
        TD_CHECK(td_binary(TD_LT, c->hi, c->lo, &t[3]));
    }
    if (n->next[0]) {
        if (t[0] && t[1]) TD_CHECK(td_binary(TD_MUL, t[0], t[1], &t[4]));
        TD_CHECK(masked_grad(n, 0, t[4] ? t[4] : t[0] ? t[0] : t[1], g, &gi[0]));
    }
    if (c->lo && n->next[1]) {
        td_tensor *below = NULL;
        TD_CHECK(td_binary_scalar(TD_EQ, t[0], 0.0, false, &below));
        if (t[2]) {
            st = td_binary(TD_MUL, below, t[2], &t[5]);
            td_tensor_release(below);
            if (st != TD_OK) goto fail;
        } else {
            t[5] = below;
        }
        TD_CHECK(masked_grad(n, 1, t[5], g, &gi[1]));
    }
    if (c->hi && n->next[2]) {
        td_tensor *above = NULL;
        TD_CHECK(td_binary_scalar(TD_EQ, t[1], 0.0, false, &above));
        if (t[3]) {
            st = td_binary(TD_MAXIMUM, above, t[3], &t[6]);
            td_tensor_release(above);
            if (st != TD_OK) goto fail;
        } else {
            t[6] = above;
        }
        TD_CHECK(masked_grad(n, 2, t[6], g, &gi[2]));
    }
fail:
    td_release_many(7, t);
    return st;
}

td_status td_clamp_tensor(td_tensor *x, td_tensor *lo, td_tensor *hi, td_tensor **out)
{
    if (!lo && !hi)
        return td_error(TD_EINVAL, 2, "clamp: at least one of min and max must be given");
    td_tensor *a = NULL, *b = NULL;
    td_status st;
    bool prev = td_set_grad_enabled(false);
    if (lo)
        st = td_binary(TD_MAXIMUM, x, lo, &a);
    else {
        td_tensor_retain(x);
        a = x, st = TD_OK;
    }
    if (st == TD_OK && hi)
        st = td_binary(TD_MINIMUM, a, hi, &b);
    else if (st == TD_OK) {
        td_tensor_retain(a);
        b = a;
    }
    td_set_grad_enabled(prev);
    if (st != TD_OK) goto fail;
    td_tensor *in[3] = {x, lo, hi};
    if (td_dtype_is_float(b->dtype) && td_needs_grad(3, in)) {
        td_node *node;
        clamp_tensor_ctx *c = NULL;
        TD_CHECK(td_node_new("ClampBackward", clamp_tensor_backward, 3, in, &node));
        st = TD_NODE_CTX(node, &c);
        if (st == TD_OK) st = td_node_keep(node, x, &c->x);
        if (st == TD_OK && lo) st = td_node_keep(node, lo, &c->lo);
        if (st == TD_OK && hi) st = td_node_keep(node, hi, &c->hi);
        TD_CHECK(td_node_finish(node, st, b));
    }
    *out = b;
    b = NULL;
fail:
    td_tensor_release(a);
    td_tensor_release(b);
    return st;
}
