/* ctc_loss: argument checks, the per-sample buffer and its reduction, and
 * one autograd node whose backward runs the beta recursion.
 *
 * Lengths and target offsets are read to the host once (PyTorch keeps them
 * there too); the node's context keeps them, and saves log_probs, the
 * int64 targets, the per-sample nll and the alpha table. */
#include "loss_family.h"

#include <math.h>

/* a contiguous int64 copy of t on device dev (or a view when it already
 * is one there); records nothing */
static td_status contiguous_long_on(td_tensor *t, td_device dev, td_tensor **out)
{
    bool here = td_device_eq(td_device_of(t), dev);
    if (here && td_is_contiguous(t))
        return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    if (here) {
        TD_TRY(td_empty_on(t->ndim, t->shape, TD_INT64, dev, out));
        td_backend_of(t)->copy(*out, t);
        return TD_OK;
    }
    td_tensor *d = NULL, *c = NULL;
    TD_TRY(td_detach(t, &d));
    td_status st = td_to_device(d, dev, &c);
    td_tensor_release(d);
    TD_TRY(st);
    st = contiguous_long_on(c, dev, out);
    td_tensor_release(c);
    return st;
}

static td_status contiguous_long(td_tensor *t, td_tensor **out)
{
    return contiguous_long_on(t, TD_DEVICE_CPU, out);
}

/* lengths (int64, N values) into dst[0..N) */
static td_status read_lengths(td_tensor *len, const char *name, int arg, int64_t N, bool unbatched,
                              int64_t *dst)
{
    if (len->dtype != TD_INT64)
        return td_error(TD_EDTYPE, arg, "%s must be an int64 tensor or a list of integers, got %s",
                        name, td_dtype_name(len->dtype));
    if (len->ndim > 1 || td_numel(len) != N) {
        char buf[64];
        return td_error(TD_ESHAPE, arg, "%s must hold one length per sample (%s%lld), got shape %s",
                        name, unbatched ? "() or " : "", (long long)N,
                        td_shape_str(len, buf, sizeof buf));
    }
    if (N == 0) return TD_OK;
    td_tensor *c = NULL;
    TD_TRY(contiguous_long(len, &c));
    memcpy(dst, td_data_ptr(c), (size_t)N * sizeof *dst);
    td_tensor_release(c);
    return TD_OK;
}

typedef struct {
    td_ctc_plan p;
    bool unbatched;
    int64_t *host;      /* il, tl, offsets: 3N values, malloc'd */
    td_tensor *targets; /* contiguous int64 */
} ctc_args;

static td_status check_args(td_tensor *lp, td_tensor *targets, td_tensor *il, td_tensor *tl,
                            const td_ctc_options *opt, ctc_args *a)
{
    char buf[64];
    if (!td_dtype_is_float(lp->dtype))
        return td_error(TD_EDTYPE, 1, "log_probs must be float32 or float64, got %s",
                        td_dtype_name(lp->dtype));
    if (lp->ndim != 2 && lp->ndim != 3)
        return td_error(TD_ESHAPE, 1,
                        "log_probs must be (T, N, C) or unbatched (T, C), got shape %s",
                        td_shape_str(lp, buf, sizeof buf));
    a->unbatched = lp->ndim == 2;
    td_ctc_plan *p = &a->p;
    p->T = lp->shape[0];
    p->N = a->unbatched ? 1 : lp->shape[1];
    p->C = lp->shape[lp->ndim - 1];
    p->blank = opt->blank;
    if (opt->blank < 0 || opt->blank >= p->C)
        return td_error(TD_ERANGE, 5,
                        "option 'blank' = %lld is outside [0, %lld) (C, the classes of log_probs)",
                        (long long)opt->blank, (long long)p->C);
    if (targets->dtype != TD_INT64)
        return td_error(TD_EDTYPE, 2, "targets must be int64 class indices, got %s%s",
                        td_dtype_name(targets->dtype),
                        td_dtype_is_float(targets->dtype) ? " (convert with :long())" : "");
    bool padded = targets->ndim == 2;
    if (targets->ndim != 1 && !padded)
        return td_error(TD_ESHAPE, 2,
                        "targets must be (N, S) padded or 1-D concatenated, got shape %s",
                        td_shape_str(targets, buf, sizeof buf));
    if (padded && targets->shape[0] != p->N)
        return td_error(TD_ESHAPE, 2, "targets has %lld rows, but log_probs has a batch of %lld",
                        (long long)targets->shape[0], (long long)p->N);

    int64_t N = p->N;
    a->host = malloc((size_t)(3 * N + 1) * sizeof *a->host);
    if (!a->host) return td_error(TD_ENOMEM, 0, "out of memory");
    int64_t *ilh = a->host, *tlh = a->host + N, *off = a->host + 2 * N;
    TD_TRY(read_lengths(il, "input_lengths", 3, N, a->unbatched, ilh));
    TD_TRY(read_lengths(tl, "target_lengths", 4, N, a->unbatched, tlh));
    int64_t avail = padded ? targets->shape[1] : targets->shape[0], pos = 0, S = 0;
    for (int64_t b = 0; b < N; b++) {
        if (ilh[b] < 0 || ilh[b] > p->T)
            return td_error(TD_ERANGE, 3,
                            "input_lengths[%lld] = %lld is outside [0, %lld] (T, log_probs' dim 0)",
                            (long long)b, (long long)ilh[b], (long long)p->T);
        if (tlh[b] < 0)
            return td_error(TD_ERANGE, 4, "target_lengths[%lld] = %lld is negative", (long long)b,
                            (long long)tlh[b]);
        if (padded && tlh[b] > avail)
            return td_error(TD_ERANGE, 4,
                            "target_lengths[%lld] = %lld is more than S = %lld (targets' dim 1)",
                            (long long)b, (long long)tlh[b], (long long)avail);
        if (!padded && tlh[b] > avail - pos)
            return td_error(
                TD_ERANGE, 4,
                "target_lengths sum to more than the %lld concatenated targets (at sample %lld)",
                (long long)avail, (long long)b);
        off[b] = padded ? b * avail : pos;
        pos += tlh[b];
        if (tlh[b] > S) S = tlh[b];
    }
    p->S = S;
    p->input_len = ilh;
    p->target_len = tlh;
    p->tg_offset = off;

    /* the indices are checked on a host copy (a small int tensor), and the
     * kernel reads them where log_probs lives */
    td_tensor *host = NULL;
    TD_TRY(contiguous_long(targets, &host));
    td_status st = contiguous_long_on(targets, td_device_of(lp), &a->targets);
    if (st != TD_OK) {
        td_tensor_release(host);
        return st;
    }
    const int64_t *tg = td_data_ptr(host);
    for (int64_t b = 0; b < N; b++)
        for (int64_t i = 0; i < tlh[b]; i++) {
            int64_t v = tg[off[b] + i];
            if (v < 0 || v >= p->C)
                st = td_error(TD_ERANGE, 2, "target %lld of sample %lld is %lld, outside [0, %lld)",
                              (long long)i, (long long)b, (long long)v, (long long)p->C);
            else if (v == p->blank)
                st = td_error(TD_EINVAL, 2, "target %lld of sample %lld is %lld, the blank label",
                              (long long)i, (long long)b, (long long)v);
            if (st != TD_OK) {
                td_tensor_release(host);
                return st;
            }
        }
    td_tensor_release(host);
    return TD_OK;
}

/* log_probs as (T, N, C): unbatched (T, C) gets a batch dim of 1 */
static td_status batched_view(td_tensor *lp, bool unbatched, td_tensor **out)
{
    if (!unbatched) return td_make_view(lp, lp->ndim, lp->shape, lp->stride, lp->offset, out);
    int64_t shape[3] = {lp->shape[0], 1, lp->shape[1]};
    int64_t stride[3] = {lp->stride[0], lp->shape[1] * lp->stride[1], lp->stride[1]};
    return td_make_view(lp, 3, shape, stride, lp->offset, out);
}

/* ---- backward --------------------------------------------------------- */

typedef struct {
    td_ctc_plan p; /* its arrays point into host */
    td_reduction reduction;
    bool zero_infinity, unbatched;
    td_tensor *log_probs, *targets, *nll, *log_alpha;
    int64_t host[]; /* input lengths, target lengths, target offsets: N each */
} ctc_ctx;

static td_status ctc_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const ctc_ctx *c = n->ctx;
    td_tensor *lp = c->log_probs, *targets = c->targets, *nll = c->nll, *log_alpha = c->log_alpha;
    td_tensor *lp3 = NULL, *cg = NULL, *grad = NULL, *log_beta = NULL, *g2 = NULL;
    td_status st;
    td_ctc_plan p = c->p;
    bool unbatched = c->unbatched;
    TD_CHECK(batched_view(lp, unbatched, &lp3));
    if (g->dtype == lp->dtype)
        TD_CHECK(td_make_view(g, g->ndim, g->shape, g->stride, g->offset, &cg));
    else
        TD_CHECK(td_cast_raw(g, lp->dtype, &cg));
    int64_t gshape[3] = {p.T, p.N, p.C}, lshape[3] = {p.N, p.T, 2 * p.S + 1};
    TD_CHECK(td_empty_on(3, gshape, lp->dtype, td_device_of(lp), &grad));
    TD_CHECK(td_empty_on(3, lshape, lp->dtype, td_device_of(lp), &log_beta));
    td_backend_of(lp)->ctc_loss->backward(grad, log_beta, cg, c->reduction, lp3, targets, nll,
                                          log_alpha, &p, c->zero_infinity);
    if (unbatched) {
        int64_t shape[2] = {p.T, p.C};
        TD_CHECK(td_view(grad, 2, shape, &g2));
        TD_CHECK(td_grad_to_input(n, 0, g2, gi));
    } else {
        TD_CHECK(td_grad_to_input(n, 0, grad, gi));
    }
fail:
    td_tensor_release(lp3);
    td_tensor_release(cg);
    td_tensor_release(grad);
    td_tensor_release(log_beta);
    td_tensor_release(g2);
    return st;
}

/* ---- forward ---------------------------------------------------------- */

typedef struct {
    const ctc_args *a;
    const td_ctc_loss_opts *opt;
    td_tensor *nll, *log_alpha, *log_probs;
} ctc_fill_arg;

static td_status ctc_fill(td_node *node, void *ctx, const void *arg)
{
    const ctc_fill_arg *f = arg;
    ctc_ctx *c = ctx;
    const td_ctc_plan *p = &f->a->p;
    memcpy(c->host, f->a->host, 3 * (size_t)p->N * sizeof(int64_t));
    c->p = *p;
    c->p.input_len = c->host;
    c->p.target_len = c->host + p->N;
    c->p.tg_offset = c->host + 2 * p->N;
    c->reduction = f->opt->reduction;
    c->zero_infinity = f->opt->zero_infinity;
    c->unbatched = f->a->unbatched;
    TD_TRY(td_node_keep(node, f->log_probs, &c->log_probs));
    TD_TRY(td_node_keep(node, f->a->targets, &c->targets));
    TD_TRY(td_node_keep(node, f->nll, &c->nll));
    TD_TRY(td_node_keep(node, f->log_alpha, &c->log_alpha));
    return TD_OK;
}

td_status td_ctc_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                          td_tensor **out)
{
    const td_ctc_loss_opts *opt = opts;
    td_tensor *log_probs = in[0], *targets = in[1], *input_lengths = in[2], *target_lengths = in[3];
    ctc_args a = {0};
    td_tensor *lp3 = NULL, *nll = NULL, *elem = NULL, *elem0 = NULL, *log_alpha = NULL, *res = NULL;
    td_status st;
    TD_CHECK(check_args(log_probs, targets, input_lengths, target_lengths, opt, &a));
    const td_ctc_plan *p = &a.p;
    TD_CHECK(batched_view(log_probs, a.unbatched, &lp3));
    int64_t lshape[3] = {p->N, p->T, 2 * p->S + 1};
    td_device dev = td_device_of(log_probs);
    TD_CHECK(td_empty_on(1, &p->N, log_probs->dtype, dev, &nll));
    TD_CHECK(td_empty_on(1, &p->N, log_probs->dtype, dev, &elem));
    TD_CHECK(td_empty_on(3, lshape, log_probs->dtype, dev, &log_alpha));
    td_backend_of(log_probs)->ctc_loss->forward(nll, elem, log_alpha, lp3, a.targets, p,
                                                opt->zero_infinity,
                                                opt->reduction == TD_REDUCE_MEAN);
    /* "none" is (N), or 0-dim unbatched */
    if (a.unbatched)
        TD_CHECK(td_make_view(elem, 0, elem->shape, elem->stride, elem->offset, &elem0));
    ctc_fill_arg fa = {&a, opt, nll, log_alpha, log_probs};
    TD_CHECK(td_loss_record(d, elem0 ? elem0 : elem, opt->reduction, (double)p->N, 1, &log_probs,
                            ctc_backward, sizeof(ctc_ctx) + 3 * (size_t)p->N * sizeof(int64_t),
                            ctc_fill, &fa, &res));
    *out = res;
    res = NULL;
fail:
    td_tensor_release(elem0);
    free(a.host);
    td_tensor_release(a.targets);
    td_tensor_release(lp3);
    td_tensor_release(nll);
    td_tensor_release(elem);
    td_tensor_release(log_alpha);
    td_tensor_release(res);
    return st;
}
