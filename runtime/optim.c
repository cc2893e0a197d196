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
        return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", name, td_backend_of(param)->name);
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
        return td_error(TD_EINVAL, arg, "%s: %s must be a finite number >= %g, got %g", name, what, lo, v);
    return TD_OK;
}

static td_status check_state(const step_ctx *c, td_tensor *t, int arg, const char *what, bool required)
{
    if (!t) {
        if (required) return td_error(TD_EINVAL, arg, "%s: %s is required by these options", c->name, what);
        return TD_OK;
    }
    if (t->storage == c->param->storage || t->storage == c->grad->storage)
        return td_error(TD_EINVAL, arg, "%s: %s must not share memory with param or grad", c->name, what);
    return check_like(c->name, c->param, t, arg, what, true);
}

td_status td_sgd_step(td_tensor *param, td_tensor *grad, td_tensor *momentum_buf, const td_sgd_opts *o)
{
    const char *name = "sgd_step";
    TD_TRY(check_number(name, "lr", o->lr, 0, 4));
    TD_TRY(check_number(name, "momentum", o->momentum, 0, 4));
    TD_TRY(check_number(name, "weight_decay", o->weight_decay, 0, 4));
    if (!isfinite(o->dampening)) return td_error(TD_EINVAL, 4, "%s: dampening must be finite", name);
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return td_error(TD_EINVAL, 4, "%s: nesterov momentum requires a momentum and zero dampening", name);
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
        return td_error(TD_EINVAL, 6, "%s: betas must be in [0, 1), got (%g, %g)", name, o->beta1, o->beta2);
    if (o->step < 1) return td_error(TD_EINVAL, 6, "%s: step must be >= 1, got %lld", name, (long long)o->step);
    step_ctx c;
    TD_TRY(step_begin(&c, name, param, grad));
    td_status st;
    TD_CHECK(check_state(&c, exp_avg, 3, "exp_avg", true));
    TD_CHECK(check_state(&c, exp_avg_sq, 4, "exp_avg_sq", true));
    TD_CHECK(check_state(&c, max_exp_avg_sq, 5, "max_exp_avg_sq", o->amsgrad));
    if (exp_avg->storage == exp_avg_sq->storage ||
        (o->amsgrad && (max_exp_avg_sq->storage == exp_avg->storage || max_exp_avg_sq->storage == exp_avg_sq->storage)))
        TD_CHECK(td_error(TD_EINVAL, 4, "%s: state tensors must not share memory", name));
    td_tensor *st_t[3] = {exp_avg, exp_avg_sq, o->amsgrad ? max_exp_avg_sq : NULL};
    td_backend_of(param)->optim->adam(param->dtype, td_numel(param), td_data_ptr(c.work_p), td_data_ptr(c.work_g),
                                      td_data_ptr(exp_avg), td_data_ptr(exp_avg_sq),
                                      st_t[2] ? td_data_ptr(st_t[2]) : NULL, o);
    step_end(&c, 3, st_t);
    return TD_OK;
fail:
    td_tensor_release(c.work_p);
    td_tensor_release(c.work_g);
    return st;
}

td_status td_rmsprop_step(td_tensor *param, td_tensor *grad, td_tensor *square_avg, td_tensor *grad_avg,
                          td_tensor *momentum_buf, const td_rmsprop_opts *o)
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
    td_tensor *st_t[3] = {square_avg, o->centered ? grad_avg : NULL, o->momentum > 0 ? momentum_buf : NULL};
    if ((st_t[1] && st_t[1]->storage == square_avg->storage) || (st_t[2] && st_t[2]->storage == square_avg->storage) ||
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
