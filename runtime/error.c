/* The last error, per thread, so a DataLoader thread cannot clobber the
 * message the Lua thread is about to raise. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_msg[1024];
static _Thread_local int last_arg;

const char *td_last_error(void) { return last_msg[0] ? last_msg : "unknown error"; }
int td_last_error_arg(void) { return last_arg; }

void td_clear_error(void)
{
    last_msg[0] = 0;
    last_arg = 0;
}

td_status td_error(td_status code, int arg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    last_arg = arg;
    return code;
}

void td_error_prefix(const char *fmt, ...)
{
    char prefix[256], old[sizeof last_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_msg, sizeof old);
    size_t k = strlen(prefix), rest = sizeof last_msg - 1 - k;
    memcpy(last_msg, prefix, k);
    size_t m = strnlen(old, rest);
    memcpy(last_msg + k, old, m);
    last_msg[k + m] = 0;
}

td_status td_need_float(td_dtype dt, int arg, const char *fn, const char *what)
{
    if (dt == TD_FLOAT32 || dt == TD_FLOAT64) return TD_OK;
    if (td_dtype_is_lowp(dt)) return td_refuse_lowp(dt, arg, fn, what);
    return td_error(TD_EDTYPE, arg,
                    "%s: %s must be float32 or float64, got %s (convert with :float())", fn, what,
                    td_dtype_name(dt));
}

td_status td_need_float_lowp(td_dtype dt, int arg, const char *fn, const char *what)
{
    if (td_dtype_is_float(dt)) return TD_OK;
    return td_error(TD_EDTYPE, arg,
                    "%s: %s must be a float dtype (float32, float64, bfloat16 or float16), got %s "
                    "(convert with :float())",
                    fn, what, td_dtype_name(dt));
}

td_status td_refuse_lowp(td_dtype dt, int arg, const char *fn, const char *what)
{
    if (!td_dtype_is_lowp(dt)) return TD_OK;
    return td_error(TD_EDTYPE, arg,
                    "%s: %s is %s, which %s does not support yet (convert with :float())", fn, what,
                    td_dtype_name(dt), fn);
}
