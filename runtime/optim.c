/* The optimizers' front-ends: check param, grad and state once, then one
 * fused kernel pass per parameter (kernels/nn_optim.h). Nothing is recorded
 * for autograd: the update writes the leaf's storage in place and bumps its
 * version, so a graph that saved the old values fails loudly in backward.
 * Argument numbers in errors are the tide.core binding's: param 1, grad 2,
 * state tensors from 3, options last. */
#include "internal.h"

#include <math.h>

typedef struct {
    const char *name;
    td_tensor *param, *grad;
    td_tensor *work_p, *work_g; /* contiguous copies, or views of the originals */
} step_ctx;

static td_status check_like(const char *name, const td_tensor *param, const td_tensor *t, int arg,
                            const char *what, bool contiguous)
{
    char a[160], b[160];
    if (t->dtype != param->dtype)
        return td_error(TD_EDTYPE, arg, "%s: %s must be %s like param, got %s", name, what,
                        td_dtype_name(param->dtype), td_dtype_name(t->dtype));
    if (!td_same_shape(t, param))
        return td_error(TD_ESHAPE, arg, "%s: %s must have param's shape %s, got %s", name, what,
                        td_shape_str(param, a, sizeof a), td_shape_str(t, b, sizeof b));
    if (!td_device_eq(td_device_of(t), td_device_of(param)))
        return td_error(TD_EINVAL, arg, "%s: %s must be on param's device", name, what);
    if (contiguous && !td_is_contiguous(t))
        return td_error(TD_EINVAL, arg, "%s: %s must be contiguous", name, what);
    return TD_OK;
}

static td_status contig(td_tensor *t, td_tensor **out)
{
    if (td_is_contiguous(t)) return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    TD_TRY(td_empty_like(t, out));
    td_backend_of(t)->copy(*out, t);
    return TD_OK;
}

/* checks param and grad, and makes contiguous working buffers */
static td_status step_begin(step_ctx *c, const char *name, td_tensor *param, td_tensor *grad)
{
    c->name = name;
    c->param = param;
    c->grad = grad;
    c->work_p = c->work_g = NULL;
    if (!param) return td_error(TD_EINVAL, 1, "%s: param must be a tensor", name);
    if (!grad) return td_error(TD_EINVAL, 2, "%s: grad must be a tensor", name);
    if (param->dtype != TD_FLOAT32 && param->dtype != TD_FLOAT64)
        return td_error(TD_EDTYPE, 1, "%s: param must be float32 or float64, got %s", name,
                        td_dtype_name(param->dtype));
    TD_TRY(check_like(name, param, grad, 2, "grad", false));
    if (!td_backend_of(param)->optim)
        return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", name,
                        td_backend_of(param)->name);
    if (grad->storage == param->storage)
        return td_error(TD_EINVAL, 2, "%s: grad must not share memory with param", name);
    td_status st;
    TD_CHECK(contig(param, &c->work_p));
    TD_CHECK(contig(grad, &c->work_g));
    return TD_OK;
fail:
    if (c->work_p) td_tensor_release(c->work_p);
    c->work_p = NULL;
    return st;
}

/* copies the result back when param was not contiguous, bumps versions */
static void step_end(step_ctx *c, int nstate, td_tensor **state)
{
    if (c->work_p->storage != c->param->storage) td_backend_of(c->param)->copy(c->param, c->work_p);
    td_bump_version(c->param);
    for (int i = 0; i < nstate; i++)
        if (state[i]) td_bump_version(state[i]);
    td_tensor_release(c->work_p);
    td_tensor_release(c->work_g);
}

static td_status check_number(const char *name, const char *what, double v, double lo, int arg)
{
    if (!(v >= lo) || isinf(v))
        return td_error(TD_EINVAL, arg, "%s: %s must be a finite number >= %g, got %g", name, what,
                        lo, v);
    return TD_OK;
}

static td_status check_state(const step_ctx *c, td_tensor *t, int arg, const char *what,
                             bool required)
{
    if (!t) {
        if (required)
            return td_error(TD_EINVAL, arg, "%s: %s is required by these options", c->name, what);
        return TD_OK;
    }
    if (t->storage == c->param->storage || t->storage == c->grad->storage)
        return td_error(TD_EINVAL, arg, "%s: %s must not share memory with param or grad", c->name,
                        what);
    return check_like(c->name, c->param, t, arg, what, true);
}

td_status td_sgd_step(td_tensor *param, td_tensor *grad, td_tensor *momentum_buf,
                      const td_sgd_opts *o)
{
    const char *name = "sgd_step";
    TD_TRY(check_number(name, "lr", o->lr, 0, 4));
    TD_TRY(check_number(name, "momentum", o->momentum, 0, 4));
    TD_TRY(check_number(name, "weight_decay", o->weight_decay, 0, 4));
    if (!isfinite(o->dampening))
        return td_error(TD_EINVAL, 4, "%s: dampening must be finite", name);
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return td_error(TD_EINVAL, 4,
                        "%s: nesterov momentum requires a momentum and zero dampening", name);
    step_ctx c;
    TD_TRY(step_begin(&c, name, param, grad));
    td_status st = check_state(&c, momentum_buf, 3, "momentum_buffer", o->momentum != 0);
    if (st != TD_OK) {
        td_tensor_release(c.work_p);
        td_tensor_release(c.work_g);
        return st;
    }
    td_tensor *buf = o->momentum != 0 ? momentum_buf : NULL;
    td_backend_of(param)->optim->sgd(param->dtype, td_numel(param), td_data_ptr(c.work_p),
                                     td_data_ptr(c.work_g), buf ? td_data_ptr(buf) : NULL, o);
    step_end(&c, 1, &buf);
    return TD_OK;
}

td_status td_adam_step(td_tensor *param, td_tensor *grad, td_tensor *exp_avg, td_tensor *exp_avg_sq,
                       td_tensor *max_exp_avg_sq, const td_adam_opts *o)
{
    const char *name = "adam_step";
    TD_TRY(check_number(name, "lr", o->lr, 0, 6));
    TD_TRY(check_number(name, "eps", o->eps, 0, 6));
    TD_TRY(check_number(name, "weight_decay", o->weight_decay, 0, 6));
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
        return td_error(TD_EINVAL, 6, "%s: betas must be in [0, 1), got (%g, %g)", name, o->beta1,
                        o->beta2);
    if (o->step < 1)
        return td_error(TD_EINVAL, 6, "%s: step must be >= 1, got %lld", name, (long long)o->step);
    step_ctx c;
    TD_TRY(step_begin(&c, name, param, grad));
    td_status st;
    TD_CHECK(check_state(&c, exp_avg, 3, "exp_avg", true));
    TD_CHECK(check_state(&c, exp_avg_sq, 4, "exp_avg_sq", true));
    TD_CHECK(check_state(&c, max_exp_avg_sq, 5, "max_exp_avg_sq", o->amsgrad));
    if (exp_avg->storage == exp_avg_sq->storage ||
        (o->amsgrad && (max_exp_avg_sq->storage == exp_avg->storage ||
                        max_exp_avg_sq->storage == exp_avg_sq->storage)))
        TD_CHECK(td_error(TD_EINVAL, 4, "%s: state tensors must not share memory", name));
    td_tensor *st_t[3] = {exp_avg, exp_avg_sq, o->amsgrad ? max_exp_avg_sq : NULL};
    td_backend_of(param)->optim->adam(
        param->dtype, td_numel(param), td_data_ptr(c.work_p), td_data_ptr(c.work_g),
        td_data_ptr(exp_avg), td_data_ptr(exp_avg_sq), st_t[2] ? td_data_ptr(st_t[2]) : NULL, o);
    step_end(&c, 3, st_t);
    return TD_OK;
fail:
    td_tensor_release(c.work_p);
    td_tensor_release(c.work_g);
    return st;
}

td_status td_rmsprop_step(td_tensor *param, td_tensor *grad, td_tensor *square_avg,
                          td_tensor *grad_avg, td_tensor *momentum_buf, const td_rmsprop_opts *o)
{
    const char *name = "rmsprop_step";
    TD_TRY(check_number(name, "lr", o->lr, 0, 6));
    TD_TRY(check_number(name, "alpha", o->alpha, 0, 6));
    TD_TRY(check_number(name, "eps", o->eps, 0, 6));
    TD_TRY(check_number(name, "weight_decay", o->weight_decay, 0, 6));
    TD_TRY(check_number(name, "momentum", o->momentum, 0, 6));
    step_ctx c;
    TD_TRY(step_begin(&c, name, param, grad));
    td_status st;
    TD_CHECK(check_state(&c, square_avg, 3, "square_avg", true));
    TD_CHECK(check_state(&c, grad_avg, 4, "grad_avg", o->centered));
    TD_CHECK(check_state(&c, momentum_buf, 5, "momentum_buffer", o->momentum > 0));
    td_tensor *st_t[3] = {square_avg, o->centered ? grad_avg : NULL,
                          o->momentum > 0 ? momentum_buf : NULL};
    if ((st_t[1] && st_t[1]->storage == square_avg->storage) ||
        (st_t[2] && st_t[2]->storage == square_avg->storage) ||
        (st_t[1] && st_t[2] && st_t[1]->storage == st_t[2]->storage))
        TD_CHECK(td_error(TD_EINVAL, 4, "%s: state tensors must not share memory", name));
    td_backend_of(param)->optim->rmsprop(param->dtype, td_numel(param), td_data_ptr(c.work_p),
                                         td_data_ptr(c.work_g), td_data_ptr(square_avg),
                                         st_t[1] ? td_data_ptr(st_t[1]) : NULL,
                                         st_t[2] ? td_data_ptr(st_t[2]) : NULL, o);
    step_end(&c, 3, st_t);
    return TD_OK;
fail:
    td_tensor_release(c.work_p);
    td_tensor_release(c.work_g);
    return st;
}

/* ---- parameter lists --------------------------------------------------------
 * td_sgd_step_multi / td_adam_step_multi: the backend's multi-tensor kernel
 * when the whole list qualifies (see multi_ok), else the single steps one
 * after another, which also report any error exactly as they would alone. */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static bool like_contig(const td_tensor *param, const td_tensor *t)
{
    return t && t->dtype == param->dtype && td_same_shape(t, param) &&
           td_device_eq(td_device_of(t), td_device_of(param)) && td_is_contiguous(t);
}

/* every param float, contiguous, on params[0]'s device with its dtype; grads
 * and the ns state lists (each required) like their param; every storage
 * written (params, states) distinct from all others and from every grad */
static bool multi_ok(int count, td_tensor *const *params, td_tensor *const *grads,
                     td_tensor *const *const *state, int ns)
{
    if (count < 1 || !params || !grads || !params[0]) return false;
    td_tensor *p0 = params[0];
    if (p0->dtype != TD_FLOAT32 && p0->dtype != TD_FLOAT64) return false;
    for (int j = 0; j < ns; j++)
        if (!state[j]) return false;
    for (int i = 0; i < count; i++) {
        td_tensor *p = params[i];
        if (!p || p->dtype != p0->dtype || !td_device_eq(td_device_of(p), td_device_of(p0)) ||
            !td_is_contiguous(p) || !like_contig(p, grads[i]))
            return false;
        for (int j = 0; j < ns; j++)
            if (!like_contig(p, state[j][i])) return false;
    }
    size_t nw = (size_t)count * (size_t)(1 + ns);
    void **w = malloc(nw * sizeof *w);
    if (!w) return false;
    for (int i = 0; i < count; i++) {
        w[(size_t)i * (1 + ns)] = params[i]->storage;
        for (int j = 0; j < ns; j++) w[(size_t)i * (1 + ns) + 1 + j] = state[j][i]->storage;
    }
    qsort(w, nw, sizeof *w, cmp_ptr);
    bool ok = true;
    for (size_t k = 1; k < nw && ok; k++) ok = w[k] != w[k - 1];
    for (int i = 0; i < count && ok; i++) {
        void *g = grads[i]->storage;
        ok = bsearch(&g, w, nw, sizeof *w, cmp_ptr) == NULL;
    }
    free(w);
    return ok;
}

/* data pointers and sizes of the list, for the backend */
typedef struct {
    void **ptr;     /* 5 arrays of count: param, grad, state 0..2 */
    int64_t *numel; /* count */
} multi_args;

static td_status multi_begin(multi_args *a, int count, td_tensor *const *params,
                             td_tensor *const *grads, td_tensor *const *const *state, int ns)
{
    a->ptr = malloc((size_t)count * 5 * sizeof *a->ptr);
    a->numel = malloc((size_t)count * sizeof *a->numel);
    if (!a->ptr || !a->numel) {
        free(a->ptr);
        free(a->numel);
        return td_error(TD_ENOMEM, 1, "optimizer step: out of memory for %d parameters", count);
    }
    for (int i = 0; i < count; i++) {
        a->ptr[i] = td_data_ptr(params[i]);
        a->ptr[count + i] = td_data_ptr(grads[i]);
        for (int j = 0; j < 3; j++)
            a->ptr[(size_t)(2 + j) * count + i] = j < ns ? td_data_ptr(state[j][i]) : NULL;
        a->numel[i] = td_numel(params[i]);
    }
    return TD_OK;
}

static void multi_end(multi_args *a, int count, td_tensor *const *params,
                      td_tensor *const *const *state, int ns)
{
    for (int i = 0; i < count; i++) {
        td_bump_version(params[i]);
        for (int j = 0; j < ns; j++) td_bump_version(state[j][i]);
    }
    free(a->ptr);
    free(a->numel);
}

td_status td_sgd_step_multi(int count, td_tensor *const *params, td_tensor *const *grads,
                            td_tensor *const *momentum_bufs, const td_sgd_opts *o)
{
    int ns = o->momentum != 0 ? 1 : 0;
    td_tensor *const *state[1] = {momentum_bufs};
    const struct td_optim_kernels *k =
        count > 0 && params && params[0] ? td_backend_of(params[0])->optim : NULL;
    /* the single step's option checks, on a parameter that passes its own */
    bool opts_ok = o->lr >= 0 && o->momentum >= 0 && o->weight_decay >= 0 && isfinite(o->lr) &&
                   isfinite(o->momentum) && isfinite(o->weight_decay) && isfinite(o->dampening) &&
                   !(o->nesterov && (o->momentum <= 0 || o->dampening != 0));
    if (k && k->sgd_multi && opts_ok && multi_ok(count, params, grads, state, ns)) {
        multi_args a;
        TD_TRY(multi_begin(&a, count, params, grads, state, ns));
        k->sgd_multi(params[0]->dtype, count, a.ptr, (const void *const *)(a.ptr + count),
                     ns ? a.ptr + 2 * (size_t)count : NULL, a.numel, o);
        multi_end(&a, count, params, state, ns);
        return TD_OK;
    }
    for (int i = 0; i < count; i++)
        TD_TRY(td_sgd_step(params[i], grads[i], momentum_bufs ? momentum_bufs[i] : NULL, o));
    return TD_OK;
}

td_status td_adam_step_multi(int count, td_tensor *const *params, td_tensor *const *grads,
                             td_tensor *const *exp_avgs, td_tensor *const *exp_avg_sqs,
                             td_tensor *const *max_exp_avg_sqs, const td_adam_opts *o)
{
    int ns = o->amsgrad ? 3 : 2;
    td_tensor *const *state[3] = {exp_avgs, exp_avg_sqs, max_exp_avg_sqs};
    const struct td_optim_kernels *k =
        count > 0 && params && params[0] ? td_backend_of(params[0])->optim : NULL;
    bool opts_ok = o->lr >= 0 && o->eps >= 0 && o->weight_decay >= 0 && isfinite(o->lr) &&
                   isfinite(o->eps) && isfinite(o->weight_decay) && o->beta1 >= 0 && o->beta1 < 1 &&
                   o->beta2 >= 0 && o->beta2 < 1 && o->step >= 1;
    if (k && k->adam_multi && opts_ok && multi_ok(count, params, grads, state, ns)) {
        multi_args a;
        TD_TRY(multi_begin(&a, count, params, grads, state, ns));
        k->adam_multi(params[0]->dtype, count, a.ptr, (const void *const *)(a.ptr + count),
                      a.ptr + 2 * (size_t)count, a.ptr + 3 * (size_t)count,
                      ns == 3 ? a.ptr + 4 * (size_t)count : NULL, a.numel, o);
        multi_end(&a, count, params, state, ns);
        return TD_OK;
    }
    for (int i = 0; i < count; i++)
        TD_TRY(td_adam_step(params[i], grads[i], exp_avgs ? exp_avgs[i] : NULL,
                            exp_avg_sqs ? exp_avg_sqs[i] : NULL,
                            max_exp_avg_sqs ? max_exp_avg_sqs[i] : NULL, o));
    return TD_OK;
}
