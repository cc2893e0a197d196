/* flip, roll, tril, triu: argument checks, a fresh contiguous result (as
 * PyTorch, never a view), and gradients that apply the inverse motion
 * (flip again, roll back) or the same mask. Backward calls the recorded
 * front-ends, so a gradient of a gradient works too. */
#include "internal.h"

typedef struct {
    int ndim;
    bool flat; /* roll without dims: over the flattened tensor */
    int64_t shift[TD_MAX_DIMS];
    int dims[TD_MAX_DIMS];
    int64_t diagonal;
    bool upper; /* triu, not tril */
} motion_ctx;

static td_status need_kernels(const char *fn, td_tensor *x)
{
    if (!td_backend_of(x)->reorder)
        return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", fn,
                        td_backend_of(x)->name);
    return TD_OK;
}

/* out = x moved by shift / flip per dim; flat: x as one dim, shift[0] */
static td_status remap(td_tensor *x, const int64_t *shift, const bool *flip, bool flat,
                       td_tensor **out)
{
    td_tensor *o = NULL, *vo = NULL, *vx = NULL, *cx = NULL;
    td_status st;
    TD_CHECK(td_empty_on(x->ndim, x->shape, x->dtype, td_device_of(x), &o));
    if (flat && x->ndim != 1) {
        int64_t n = td_numel(x), one = 1;
        TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
        TD_CHECK(td_make_view(o, 1, &n, &one, o->offset, &vo));
        TD_CHECK(td_make_view(cx, 1, &n, &one, cx->offset, &vx));
        td_backend_of(x)->reorder->remap(vo, vx, shift, flip);
    } else {
        td_backend_of(x)->reorder->remap(o, x, shift, flip);
    }
    *out = o;
    o = NULL;
fail:
    td_tensor_release(o);
    td_tensor_release(vo);
    td_tensor_release(vx);
    td_tensor_release(cx);
    return st;
}

/* attach to out a node named `name` over x with a copy of ctx */
static td_status record(const char *name, td_backward_fn fn, td_tensor *x, const motion_ctx *ctx,
                        td_tensor *out)
{
    if (!td_dtype_is_float(x->dtype) || !td_needs_grad(1, &x)) return TD_OK;
    td_node *n;
    motion_ctx *c = NULL;
    TD_TRY(td_node_new(name, fn, 1, &x, &n));
    td_status st = TD_NODE_CTX(n, &c);
    if (st == TD_OK) *c = *ctx;
    return td_node_finish(n, st, out);
}

/* ---- flip ------------------------------------------------------------------ */

static td_status flip_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const motion_ctx *c = n->ctx;
    td_tensor *t = NULL;
    TD_TRY(td_flip(g, c->ndim, c->dims, &t));
    td_status st = td_grad_to_input(n, 0, t, gi);
    td_tensor_release(t);
    return st;
}

td_status td_flip(td_tensor *x, int n, const int *dims, td_tensor **out)
{
    TD_TRY(need_kernels("flip", x));
    if (n < 0 || n > TD_MAX_DIMS)
        return td_error(TD_EINVAL, 2, "flip: dims has %d entries, at most %d allowed", n,
                        TD_MAX_DIMS);
    motion_ctx c = {.ndim = n};
    bool flip[TD_MAX_DIMS] = {false};
    int64_t shift[TD_MAX_DIMS] = {0};
    for (int i = 0; i < n; i++) {
        int d;
        TD_TRY(td_wrap_dim(dims[i], x->ndim, 2, &d));
        if (x->ndim && flip[d])
            return td_error(TD_EINVAL, 2, "flip: dim %d appears more than once in dims", d);
        if (x->ndim) flip[d] = true;
        c.dims[i] = d;
    }
    td_tensor *o;
    TD_TRY(remap(x, shift, flip, false, &o));
    td_status st = record("FlipBackward", flip_backward, x, &c, o);
    if (st != TD_OK) {
        td_tensor_release(o);
        return st;
    }
    *out = o;
    return TD_OK;
}

/* ---- roll ------------------------------------------------------------------ */

/* s mod size, in [0, size) (0 for an empty dim) */
static int64_t wrap_shift(int64_t s, int64_t size)
{
    if (size == 0) return 0;
    int64_t r = s % size;
    return r < 0 ? r + size : r;
}

static td_status roll_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const motion_ctx *c = n->ctx;
    int64_t back[TD_MAX_DIMS];
    for (int i = 0; i < c->ndim; i++) back[i] = -c->shift[i];
    td_tensor *t = NULL;
    TD_TRY(td_roll(g, c->ndim, back, c->flat ? NULL : c->dims, c->flat ? 0 : c->ndim, &t));
    td_status st = td_grad_to_input(n, 0, t, gi);
    td_tensor_release(t);
    return st;
}

td_status td_roll(td_tensor *x, int nshifts, const int64_t *shifts, const int *dims, int ndims,
                  td_tensor **out)
{
    TD_TRY(need_kernels("roll", x));
    if (nshifts == 0) return td_error(TD_EINVAL, 2, "roll: shifts must not be empty");
    if (nshifts > TD_MAX_DIMS)
        return td_error(TD_EINVAL, 2, "roll: shifts has %d entries, at most %d allowed", nshifts,
                        TD_MAX_DIMS);
    motion_ctx c = {0};
    int64_t shift[TD_MAX_DIMS] = {0};
    bool flip[TD_MAX_DIMS] = {false};
    if (!dims) {
        if (nshifts != 1)
            return td_error(TD_EINVAL, 2,
                            "roll: without dims, shifts must be one number (the tensor is "
                            "flattened), got %d",
                            nshifts);
        c.ndim = 1;
        c.flat = true;
        shift[0] = c.shift[0] = wrap_shift(shifts[0], td_numel(x));
    } else {
        if (ndims != nshifts)
            return td_error(TD_EINVAL, 3,
                            "roll: shifts and dims must have the same length, got %d and %d",
                            nshifts, ndims);
        if (x->ndim == 0)
            return td_error(TD_ERANGE, 3, "roll: dims given but the tensor has no dims");
        /* a dim named twice rolls twice: the shifts add up */
        for (int i = 0; i < ndims; i++) {
            int d;
            TD_TRY(td_wrap_dim(dims[i], x->ndim, 3, &d));
            shift[d] = wrap_shift(shift[d] + wrap_shift(shifts[i], x->shape[d]), x->shape[d]);
        }
        c.ndim = x->ndim;
        for (int d = 0; d < x->ndim; d++) {
            c.dims[d] = d;
            c.shift[d] = shift[d];
        }
    }
    td_tensor *o;
    TD_TRY(remap(x, shift, flip, c.flat, &o));
    td_status st = record("RollBackward", roll_backward, x, &c, o);
    if (st != TD_OK) {
        td_tensor_release(o);
        return st;
    }
    *out = o;
    return TD_OK;
}

/* ---- tril / triu ------------------------------------------------------------- */

static td_status triangle(td_tensor *x, int64_t diagonal, bool upper, td_tensor **out);

static td_status tri_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const motion_ctx *c = n->ctx;
    td_tensor *t = NULL;
    TD_TRY(triangle(g, c->diagonal, c->upper, &t));
    td_status st = td_grad_to_input(n, 0, t, gi);
    td_tensor_release(t);
    return st;
}

static td_status triangle(td_tensor *x, int64_t diagonal, bool upper, td_tensor **out)
{
    const char *fn = upper ? "triu" : "tril";
    TD_TRY(need_kernels(fn, x));
    if (x->ndim < 2)
        return td_error(TD_ESHAPE, 1, "%s: input must have at least 2 dims, got %d", fn, x->ndim);
    td_tensor *o;
    TD_TRY(td_empty_on(x->ndim, x->shape, x->dtype, td_device_of(x), &o));
    td_backend_of(x)->reorder->tri(o, x, diagonal, upper);
    motion_ctx c = {.diagonal = diagonal, .upper = upper};
    td_status st = record(upper ? "TriuBackward" : "TrilBackward", tri_backward, x, &c, o);
    if (st != TD_OK) {
        td_tensor_release(o);
        return st;
    }
    *out = o;
    return TD_OK;
}

td_status td_tril(td_tensor *x, int64_t diagonal, td_tensor **out)
{
    return triangle(x, diagonal, false, out);
}

td_status td_triu(td_tensor *x, int64_t diagonal, td_tensor **out)
{
    return triangle(x, diagonal, true, out);
}
