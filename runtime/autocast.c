/* Autocast regions: a small per-thread stack, and the two casts the op
 * front-ends apply (tide/autocast.h). A front-end asks td_autocast_enabled
 * first, so outside a region an op pays one thread-local load. */
#include "internal.h"
#include "tide/autocast.h"

#define MAX_DEPTH 64

typedef struct {
    bool enabled;
    td_dtype dtype;
} region;

static _Thread_local region stack[MAX_DEPTH];
static _Thread_local int depth;

td_status td_autocast_enter(td_dtype dt, bool enabled, int *out_depth)
{
    if (enabled && !td_dtype_is_lowp(dt))
        return td_error(TD_EDTYPE, 1, "autocast: dtype must be bfloat16 or float16, got %s",
                        td_dtype_name(dt));
    if (depth == MAX_DEPTH)
        return td_error(TD_EINVAL, 0,
                        "autocast: more than %d regions open at once (are regions closed?)",
                        MAX_DEPTH);
    stack[depth].enabled = enabled;
    stack[depth].dtype = enabled ? dt : TD_FLOAT32;
    *out_depth = depth++;
    return TD_OK;
}

td_status td_autocast_exit(int d)
{
    if (depth == 0) return td_error(TD_EINVAL, 0, "autocast: no region is open");
    if (d != depth - 1)
        return td_error(TD_EINVAL, 1,
                        "autocast: regions closed out of order (closing the one opened at depth "
                        "%d while depth %d is innermost)",
                        d, depth - 1);
    depth--;
    return TD_OK;
}

bool td_autocast_enabled(void) { return depth > 0 && stack[depth - 1].enabled; }

td_dtype td_autocast_dtype(void)
{
    return td_autocast_enabled() ? stack[depth - 1].dtype : TD_FLOAT32;
}

void td_autocast_release(int n, td_tensor **t)
{
    for (int i = 0; i < n; i++) {
        td_tensor_release(t[i]);
        t[i] = NULL;
    }
}

/* out[i]: in[i] cast to `to` where its dtype is from_a or from_b, else in[i] */
static td_status cast_where(int n, td_tensor *const *in, td_tensor **out, td_dtype from_a,
                            td_dtype from_b, td_dtype to)
{
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; i < n; i++) {
        td_tensor *t = in[i];
        if (!t) continue;
        td_status st = TD_OK;
        if (t->dtype == from_a || t->dtype == from_b) {
            st = td_to_dtype(t, to, &out[i]);
        } else {
            td_tensor_retain(t);
            out[i] = t;
        }
        if (st != TD_OK) {
            td_autocast_release(i, out);
            return st;
        }
    }
    return TD_OK;
}

td_status td_autocast_begin(int n, td_tensor *const *in, td_tensor **out, int *d)
{
    /* float64 stays float64, as in PyTorch */
    td_dtype to = td_autocast_dtype();
    TD_TRY(cast_where(n, in, out, TD_FLOAT32, TD_FLOAT32, to));
    td_status st = td_autocast_enter(TD_FLOAT32, false, d);
    if (st != TD_OK) td_autocast_release(n, out);
    return st;
}

void td_autocast_end(int n, td_tensor **out, int d)
{
    td_autocast_release(n, out);
    /* the depth begin opened is innermost again once the op has returned */
    (void)td_autocast_exit(d);
}

td_status td_autocast_float32(int n, td_tensor *const *in, td_tensor **out)
{
    return cast_where(n, in, out, TD_BFLOAT16, TD_FLOAT16, TD_FLOAT32);
}
