/* tide.core: elementwise math, reductions, softmax, linear algebra. */
#include "l_util.h"
#include "l_dims.h"
#include "tide/reduce_dims.h"
#include "tide/tensor_args.h"

#include <math.h>
#include <string.h>

/* ---- elementwise: binary ---------------------------------------------------- */

/* a Lua number beside tensor t (PyTorch's wrapped-number rule): the result
 * keeps t's dtype when t is float, or when the number is a Lua integer and
 * t an integer tensor; a float number with an integer tensor gives float32 */
static td_tensor *promote_for_number(lua_State *L, td_tensor *t, int numarg, const char *fname)
{
    if (td_dtype_is_float(t->dtype) || lua_isinteger(L, numarg)) return t;
    td_tensor **tmp = lt_new(L);
    LT_CALL(L, td_to_dtype(t, TD_FLOAT32, tmp), fname);
    return *tmp;
}

static double check_number(lua_State *L, int arg)
{
    if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "tensor or number");
    return lua_tonumber(L, arg);
}

/* fname(a, b): tensors or numbers on either side (at least one tensor) */
static int binary(lua_State *L, td_binary_op op, const char *fname)
{
    td_tensor *a = lt_test(L, 1), *b = lt_test(L, 2);
    if (a && b) {
        LT_CALL(L, td_binary(op, a, b, lt_new(L)), fname);
    } else if (a) {
        double s = check_number(L, 2);
        a = promote_for_number(L, a, 2, fname);
        LT_CALL(L, td_binary_scalar(op, a, s, false, lt_new(L)), fname);
    } else if (b) {
        double s = check_number(L, 1);
        b = promote_for_number(L, b, 1, fname);
        LT_CALL(L, td_binary_scalar(op, b, s, true, lt_new(L)), fname);
    } else {
        return luaL_typeerror(L, 1, "tensor");
    }
    return 1;
}

static const char *const alpha_keys[] = {"alpha", NULL};

/* add(a, b, {alpha = 1}) = a + alpha * b; sub likewise */
static int add_sub(lua_State *L, td_binary_op op, const char *fname)
{
    lt_check_options(L, 3, alpha_keys);
    double alpha = lt_opt_number(L, 3, "alpha", 1);
    lua_settop(L, 2);
    if (alpha != 1) {
        td_tensor *b = lt_test(L, 2);
        if (b) {
            td_tensor **slot = lt_new(L);
            LT_CALL(L, td_binary_scalar(TD_MUL, b, alpha, false, slot), fname);
        } else {
            lua_pushnumber(L, check_number(L, 2) * alpha);
        }
        lua_replace(L, 2);
    }
    return binary(L, op, fname);
}

static int o_add(lua_State *L) { return add_sub(L, TD_ADD, "add"); }
static int o_sub(lua_State *L) { return add_sub(L, TD_SUB, "sub"); }
static int o_mul(lua_State *L) { return binary(L, TD_MUL, "mul"); }
static int o_div(lua_State *L) { return binary(L, TD_DIV, "div"); }
static int o_maximum(lua_State *L) { return binary(L, TD_MAXIMUM, "maximum"); }
static int o_minimum(lua_State *L) { return binary(L, TD_MINIMUM, "minimum"); }
static int o_eq(lua_State *L) { return binary(L, TD_EQ, "eq"); }
static int o_ne(lua_State *L) { return binary(L, TD_NE, "ne"); }
static int o_lt(lua_State *L) { return binary(L, TD_LT, "lt"); }
static int o_le(lua_State *L) { return binary(L, TD_LE, "le"); }
static int o_gt(lua_State *L) { return binary(L, TD_GT, "gt"); }
static int o_ge(lua_State *L) { return binary(L, TD_GE, "ge"); }

/* pow(x, p): p a number or a tensor; x ^ p and 2 ^ x too */
static int o_pow(lua_State *L)
{
    td_tensor *x = lt_test(L, 1);
    if (x && lua_type(L, 2) == LUA_TNUMBER) {
        double p = lua_tonumber(L, 2);
        x = promote_for_number(L, x, 2, "pow");
        LT_CALL(L, td_pow_scalar(x, p, lt_new(L)), "pow");
        return 1;
    }
    return binary(L, TD_POW, "pow");
}

/* __unm gets its operand twice */
static int o_unm(lua_State *L)
{
    LT_CALL(L, td_unary(TD_NEG, lt_check(L, 1), lt_new(L)), "neg");
    return 1;
}

/* ---- elementwise: unary -------------------------------------------------------- */

/* every row of the op table: a unary row as tide.name(x, ...) and
 * x:name(...) or as tide.F.name (its scope says which), a binary row
 * without a function of its own above as tide.name(a, b) and a:name(b);
 * and the table itself, as tide.op_table() */

/* luaL_argerror's message, naming the row's function itself (its
 * closures are found under no global name) */
static int row_argerror(lua_State *L, const td_op_def *d, int arg, const char *msg)
{
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, d->name, msg);
}

/* parameter i of row d from the value at idx: a number, or one of a
 * string option's choices (its index) */
static double param_value(lua_State *L, const td_op_def *d, int i, int idx, int arg)
{
    const td_op_param *pr = &d->params[i];
    if (pr->choices) {
        const char *v = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
        for (int k = 0; v && pr->choices[k]; k++)
            if (strcmp(v, pr->choices[k]) == 0) return k;
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        lua_pushfstring(L, "%s must be one of", pr->name);
        luaL_addvalue(&b);
        for (int k = 0; pr->choices[k]; k++) {
            lua_pushfstring(L, "%s \"%s\"", k ? "," : "", pr->choices[k]);
            luaL_addvalue(&b);
        }
        if (v)
            lua_pushfstring(L, ", got \"%s\"", v);
        else
            lua_pushfstring(L, ", got %s", luaL_typename(L, idx));
        luaL_addvalue(&b);
        luaL_pushresult(&b);
        row_argerror(L, d, arg, lua_tostring(L, -1));
    }
    if (lua_type(L, idx) != LUA_TNUMBER)
        row_argerror(
            L, d, arg,
            lua_pushfstring(L, "%s must be a number, got %s", pr->name, luaL_typename(L, idx)));
    return lua_tonumber(L, idx);
}

/* every key of the options table at opt names one of the row's parameters */
static void check_option_names(lua_State *L, const td_op_def *d, int opt)
{
    lua_pushnil(L);
    while (lua_next(L, opt)) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        for (int k = 0; key && k < td_op_nparams(d); k++)
            if (strcmp(key, d->params[k].name) == 0) key = NULL;
        if (!key && lua_type(L, -1) == LUA_TSTRING) continue;
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        if (key)
            lua_pushfstring(L, "unknown option '%s'; known: ", key);
        else
            lua_pushfstring(L, "option names must be strings, got %s", luaL_typename(L, -1));
        luaL_addvalue(&b);
        for (int k = 0; key && k < td_op_nparams(d); k++) {
            lua_pushfstring(L, "%s%s", k ? ", " : "", d->params[k].name);
            luaL_addvalue(&b);
        }
        if (key && td_op_nparams(d) == 0) luaL_addstring(&b, "none");
        luaL_pushresult(&b);
        row_argerror(L, d, opt, lua_tostring(L, -1));
    }
}

/* the row's parameters from arguments arg...: positionally in the row's
 * order, then by name in a trailing table; what is not given keeps its
 * default, and a required one must be given */
static void read_params(lua_State *L, const td_op_def *d, int arg, double *p)
{
    int np = td_op_nparams(d), top = lua_gettop(L), i = 0;
    bool given[TD_OP_MAX_PARAMS] = {false};
    td_op_param_values(d, p);
    for (; i < np && arg + i <= top && lua_type(L, arg + i) != LUA_TTABLE; i++) {
        p[i] = param_value(L, d, i, arg + i, arg + i);
        given[i] = true;
    }
    int opt = arg + i;
    if (opt <= top && lua_type(L, opt) == LUA_TTABLE) {
        check_option_names(L, d, opt);
        for (int k = 0; k < np; k++) {
            if (lua_getfield(L, opt, d->params[k].name) != LUA_TNIL) {
                if (given[k])
                    row_argerror(L, d, opt,
                                 lua_pushfstring(L, "%s is given twice, by position and name",
                                                 d->params[k].name));
                p[k] = param_value(L, d, k, -1, opt);
                given[k] = true;
            }
            lua_pop(L, 1);
        }
        opt++;
    }
    if (opt <= top)
        row_argerror(L, d, opt,
                     np ? lua_pushfstring(L,
                                          "%d parameter%s and an options table expected, got more",
                                          np, np > 1 ? "s" : "")
                        : "no parameters expected");
    for (int k = 0; k < np; k++)
        if (d->params[k].required && !given[k])
            row_argerror(L, d, arg + k, lua_pushfstring(L, "%s expected", d->params[k].name));
}

static int unary(lua_State *L)
{
    const td_op_def *d = lua_touserdata(L, lua_upvalueindex(1));
    td_tensor *x = lt_check(L, 1);
    double p[TD_OP_MAX_PARAMS];
    read_params(L, d, 2, p);
    LT_CALL(L, td_unary_p((td_unary_op)d->op, x, p, lt_new(L)), d->name);
    return 1;
}

static int binary_row(lua_State *L)
{
    const td_op_def *d = lua_touserdata(L, lua_upvalueindex(1));
    return binary(L, (td_binary_op)d->op, d->name);
}

static void push_param(lua_State *L, const td_op_param *pr)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, pr->name);
    lua_setfield(L, -2, "name");
    if (pr->choices) {
        lua_pushstring(L, pr->choices[(int)pr->value]);
        lua_newtable(L);
        for (int k = 0; pr->choices[k]; k++) {
            lua_pushstring(L, pr->choices[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -3, "choices");
    } else {
        lua_pushnumber(L, pr->value);
    }
    lua_setfield(L, -2, pr->required ? "typical" : "default");
    lua_pushboolean(L, pr->required);
    lua_setfield(L, -2, "required");
}

/* op_table(): every row as {name, node, arity, domain, summary, scope,
 * params = {{name, default | typical, required, choices}, ...}} */
static int op_table(lua_State *L)
{
    static const char *const domains[] = {"real",        "positive", "off_kink",
                                          "off_integer", "unit",     "above_one"};
    static const char *const scopes[] = {"tensor", "F", "both"};
    lua_createtable(L, td_op_count(), 0);
    for (int i = 0; i < td_op_count(); i++) {
        const td_op_def *d = td_op_at(i);
        lua_createtable(L, 0, 7);
        lua_pushstring(L, d->name);
        lua_setfield(L, -2, "name");
        if (d->node) {
            lua_pushstring(L, d->node);
            lua_setfield(L, -2, "node");
        }
        lua_pushinteger(L, d->arity);
        lua_setfield(L, -2, "arity");
        lua_pushstring(L, domains[d->domain]);
        lua_setfield(L, -2, "domain");
        lua_pushstring(L, d->summary);
        lua_setfield(L, -2, "summary");
        lua_pushstring(L, scopes[d->scope]);
        lua_setfield(L, -2, "scope");
        lua_createtable(L, td_op_nparams(d), 0);
        for (int k = 0; k < td_op_nparams(d); k++) {
            push_param(L, &d->params[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "params");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* module.functional_ops holds the rows of scope F and both, for tide.nn
 * to copy into tide.F */
void lt_register_op_table(lua_State *L, int module, int methods)
{
    lua_pushcfunction(L, op_table);
    lua_setfield(L, module, "op_table");
    lua_newtable(L);
    int functional = lua_gettop(L);
    for (int i = 0; i < td_op_count(); i++) {
        const td_op_def *d = td_op_at(i);
        if (d->arity == 2 && lua_getfield(L, methods, d->name) != LUA_TNIL) {
            lua_pop(L, 1); /* add, pow...: their own functions, with their options */
            continue;
        }
        if (d->arity == 2) lua_pop(L, 1);
        lua_pushlightuserdata(L, (void *)d);
        lua_pushcclosure(L, d->arity == 1 ? unary : binary_row, 1);
        if (d->scope != TD_SCOPE_TENSOR) {
            lua_pushvalue(L, -1);
            lua_setfield(L, functional, d->name);
        }
        if (d->scope != TD_SCOPE_F) {
            lua_pushvalue(L, -1);
            lua_setfield(L, methods, d->name);
            lua_pushvalue(L, -1);
            lua_setfield(L, module, d->name);
        }
        lua_pop(L, 1);
    }
    lua_setfield(L, module, "functional_ops");
}

/* a tensor bound of clamp: the tensor at arg, a number there as a 0-dim
 * tensor of x's dtype (float32 beside an integer x for a fraction), or NULL */
static td_tensor *clamp_bound(lua_State *L, int arg, const td_tensor *x)
{
    if (lua_isnil(L, arg)) return NULL;
    td_dtype dt = td_dtype_is_float(x->dtype) || lua_isinteger(L, arg) ? x->dtype : TD_FLOAT32;
    return lt_check_tensor_or_number(L, arg, dt, "clamp");
}

/* clamp(x, min, max) with nil meaning unbounded, or clamp(x, {min=, max=});
 * each bound a number or a tensor (broadcast) */
static int o_clamp(lua_State *L)
{
    static const char *const keys[] = {"min", "max", NULL};
    td_tensor *x = lt_check(L, 1);
    double lo = -INFINITY, hi = INFINITY;
    int has = 0;
    if (lt_is_options(L, 2)) {
        lt_check_options(L, 2, keys);
        if (lt_top(L) > 2) luaL_argerror(L, 3, "no argument expected after the options");
        lt_opt_field(L, 2, "min");
        lt_opt_field(L, 2, "max");
        lua_remove(L, 2);
    } else if (lt_top(L) > 3) {
        luaL_argerror(L, 4, "no argument expected after max");
    }
    lua_settop(L, 3);
    if (lt_test(L, 2) || lt_test(L, 3)) {
        td_tensor *tlo = clamp_bound(L, 2, x), *thi = clamp_bound(L, 3, x);
        LT_CALL(L, td_clamp_tensor(x, tlo, thi, lt_new(L)), "clamp");
        return 1;
    }
    if (!lua_isnil(L, 2)) lo = luaL_checknumber(L, 2), has = 1;
    if (!lua_isnil(L, 3)) hi = luaL_checknumber(L, 3), has = 1;
    if (!has) return luaL_error(L, "clamp: at least one of min and max must be given");
    if (lo > hi) return luaL_error(L, "clamp: min %f is greater than max %f", lo, hi);
    lua_settop(L, 1);
    LT_CALL(L, td_clamp(x, lo, hi, lt_new(L)), "clamp");
    return 1;
}

/* ---- in place: return self ------------------------------------------------------- */

static int inplace(lua_State *L, td_binary_op op, const char *fname)
{
    td_tensor *self = lt_check(L, 1);
    td_tensor *other = lt_test(L, 2);
    lua_settop(L, 2);
    if (!other) {
        double s = check_number(L, 2);
        td_dtype dt =
            td_dtype_is_float(self->dtype) || lua_isinteger(L, 2) ? self->dtype : TD_FLOAT32;
        td_tensor **slot = lt_new(L);
        LT_CALL(L, td_scalar(s, dt, slot), fname);
        other = *slot;
    }
    LT_CALL(L, td_binary_(op, self, other), fname);
    lt_drop(L, 3);
    lua_settop(L, 1);
    return 1;
}

static int o_add_(lua_State *L) { return inplace(L, TD_ADD, "add_"); }
static int o_sub_(lua_State *L) { return inplace(L, TD_SUB, "sub_"); }
static int o_mul_(lua_State *L) { return inplace(L, TD_MUL, "mul_"); }
static int o_div_(lua_State *L) { return inplace(L, TD_DIV, "div_"); }

static int o_fill_(lua_State *L)
{
    td_tensor *self = lt_check(L, 1);
    LT_CALL(L, td_fill_(self, luaL_checknumber(L, 2)), "fill_");
    lua_settop(L, 1);
    return 1;
}

static int o_zero_(lua_State *L)
{
    LT_CALL(L, td_fill_(lt_check(L, 1), 0), "zero_");
    lua_settop(L, 1);
    return 1;
}

static int o_copy_(lua_State *L)
{
    LT_CALL(L, td_copy_(lt_check(L, 1), lt_check(L, 2)), "copy_");
    lua_settop(L, 1);
    return 1;
}

/* ---- reductions ---------------------------------------------------------------- */

/* dim at arg (nil = all) and keepdim at arg + 1 */
static int reduce_args(lua_State *L, td_tensor *x, int arg, int *dim, bool *keepdim,
                       const char *fname)
{
    *keepdim = lua_toboolean(L, arg + 1);
    if (!lua_isnoneornil(L, arg + 1) && lua_type(L, arg + 1) != LUA_TBOOLEAN)
        luaL_typeerror(L, arg + 1, "boolean (keepdim)");
    if (lua_isnoneornil(L, arg)) {
        *dim = 0;
        return 1;
    }
    int d = lt_check_dim(L, arg);
    if (td_wrap_dim(d, x->ndim, arg, dim) != TD_OK) lt_fail(L, fname, 0);
    return 0;
}

typedef td_status (*reduce_fn)(td_tensor *, int, bool, bool, td_tensor **);

static int reduce(lua_State *L, reduce_fn fn, const char *fname)
{
    lt_no_more(L, 3, "keepdim");
    td_tensor *x = lt_check(L, 1);
    int dim;
    bool keepdim;
    int all = reduce_args(L, x, 2, &dim, &keepdim, fname);
    LT_CALL(L, fn(x, dim, all, keepdim, lt_new(L)), fname);
    return 1;
}

typedef td_status (*dims_fn)(td_tensor *, int, const int *, bool, bool, td_dtype, td_tensor **);

/* sum(x, [dims], [keepdim], [{dtype = ...}]): dims nil (all), a number or a list */
static int reduce_dims(lua_State *L, dims_fn fn, const char *fname)
{
    static const char *const keys[] = {"dtype", NULL};
    td_tensor *x = lt_check(L, 1);
    int opts = lt_trailing_options(L, 2);
    bool has_dtype = false;
    td_dtype dt = TD_FLOAT32;
    if (opts) {
        lt_check_options(L, opts, keys);
        dt = lt_opt_dtype(L, opts, &has_dtype);
        lua_settop(L, opts - 1);
    }
    if (lt_top(L) > 3) luaL_argerror(L, 4, "options table expected after keepdim");
    int dims[TD_MAX_DIMS];
    int n = lt_check_dims(L, 2, dims);
    bool keepdim = lt_check_keepdim(L, 3);
    LT_CALL(L, fn(x, n, dims, keepdim, has_dtype, dt, lt_new(L)), fname);
    return 1;
}

static int o_sum(lua_State *L) { return reduce_dims(L, td_sum_dims, "sum"); }
static int o_mean(lua_State *L) { return reduce_dims(L, td_mean_dims, "mean"); }
static int o_prod(lua_State *L) { return reduce_dims(L, td_prod_dims, "prod"); }
static int o_argmax(lua_State *L) { return reduce(L, td_argmax, "argmax"); }
static int o_argmin(lua_State *L) { return reduce(L, td_argmin, "argmin"); }

typedef td_status (*minmax_fn)(td_tensor *, int, bool, bool, td_tensor **, td_tensor **);

/* max(x) -> value; max(x, dim, keepdim) -> values, indices; max(x, y) -> maximum */
static int minmax(lua_State *L, minmax_fn fn, td_binary_op op, const char *fname)
{
    td_tensor *x = lt_check(L, 1);
    if (lt_test(L, 2)) return binary(L, op, fname);
    lt_no_more(L, 3, "keepdim");
    int dim;
    bool keepdim;
    int all = reduce_args(L, x, 2, &dim, &keepdim, fname);
    td_tensor **values = lt_new(L);
    if (all) {
        LT_CALL(L, fn(x, 0, true, keepdim, values, NULL), fname);
        return 1;
    }
    td_tensor **indices = lt_new(L);
    LT_CALL(L, fn(x, dim, false, keepdim, values, indices), fname);
    return 2;
}

static int o_max(lua_State *L) { return minmax(L, td_max, TD_MAXIMUM, "max"); }
static int o_min(lua_State *L) { return minmax(L, td_min, TD_MINIMUM, "min"); }

typedef td_status (*var_fn)(td_tensor *, int, const int *, bool, int64_t, td_tensor **);

/* var(x, [dims], [keepdim], {correction = 1 | unbiased = true}) */
static int var_std(lua_State *L, var_fn fn, const char *fname)
{
    static const char *const keys[] = {"correction", "unbiased", NULL};
    td_tensor *x = lt_check(L, 1);
    int top = lt_trailing_options(L, 2);
    int64_t correction = 1;
    if (top) {
        lt_check_options(L, top, keys);
        if (lt_opt_field(L, top, "correction") != LUA_TNIL &&
            lt_opt_field(L, top, "unbiased") != LUA_TNIL)
            luaL_argerror(L, top, "give correction or unbiased, not both");
        lua_settop(L, top);
        correction = lt_opt_boolean(L, top, "unbiased", 1) ? 1 : 0;
        correction = (int64_t)lt_opt_integer(L, top, "correction", correction);
        lua_settop(L, top - 1);
    }
    if (lt_top(L) > 3) luaL_argerror(L, 4, "options table expected after keepdim");
    int dims[TD_MAX_DIMS];
    int n = lt_check_dims(L, 2, dims);
    bool keepdim = lt_check_keepdim(L, 3);
    LT_CALL(L, fn(x, n, dims, keepdim, correction, lt_new(L)), fname);
    return 1;
}

static int o_var(lua_State *L) { return var_std(L, td_var_dims, "var"); }
static int o_std(lua_State *L) { return var_std(L, td_std_dims, "std"); }

/* norm(x, [p = "fro"], [dims], [keepdim], [{dtype = ...}]): p a number
 * (0, negative, math.huge and -math.huge too), "fro" or "nuc" */
static int o_norm(lua_State *L)
{
    static const char *const keys[] = {"dtype", NULL};
    td_tensor *x = lt_check(L, 1);
    int opts = lt_trailing_options(L, 2);
    bool has_dtype = false, nuc = false;
    td_dtype dt = TD_FLOAT32;
    if (opts) {
        lt_check_options(L, opts, keys);
        dt = lt_opt_dtype(L, opts, &has_dtype);
        lua_settop(L, opts - 1);
    }
    if (lt_top(L) > 4) luaL_argerror(L, 5, "options table expected after keepdim");
    double p = 2;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *s = lua_tostring(L, 2);
        nuc = strcmp(s, "nuc") == 0;
        if (!nuc && strcmp(s, "fro") != 0)
            luaL_argerror(L, 2, "p must be a number, 'fro' or 'nuc'");
    } else if (!lua_isnoneornil(L, 2)) {
        p = luaL_checknumber(L, 2);
    }
    int dims[TD_MAX_DIMS];
    int n = lt_check_dims(L, 3, dims);
    bool keepdim = lt_check_keepdim(L, 4);
    lua_settop(L, 4);
    if (has_dtype) {
        td_tensor **c = lt_new(L);
        LT_CALL(L, td_to_dtype(x, dt, c), "norm");
        x = *c;
    }
    if (!nuc) {
        LT_CALL(L, td_norm_dims(x, p, n, dims, keepdim, lt_new(L)), "norm");
        return 1;
    }
    if (n == 0 && x->ndim != 2) luaL_argerror(L, 1, "'nuc' norm without dims needs a 2-dim tensor");
    if (n != 0 && n != 2) luaL_argerror(L, 3, "'nuc' norm needs two dims");
    int d0 = n ? dims[0] : 0, d1 = n ? dims[1] : 1;
    LT_CALL(L, td_norm_nuc(x, d0, d1, keepdim, lt_new(L)), "norm");
    return 1;
}

/* softmax(x, dim, [{dtype = ...}]), the input cast to dtype first */
static int softmax_like(lua_State *L, bool log, const char *fname)
{
    static const char *const keys[] = {"dtype", NULL};
    td_tensor *x = lt_check(L, 1);
    if (lua_isnoneornil(L, 2)) luaL_argerror(L, 2, "dim expected (softmax has no implicit dim)");
    int dim = lt_check_dim(L, 2);
    bool has_dtype = false;
    td_dtype dt = TD_FLOAT32;
    if (lt_check_options(L, 3, keys)) dt = lt_opt_dtype(L, 3, &has_dtype);
    if (lt_top(L) > 3) luaL_argerror(L, 4, "no argument expected after the options");
    LT_CALL(L, td_softmax_dtype(x, dim, log, has_dtype, dt, lt_new(L)), fname);
    return 1;
}

static int o_softmax(lua_State *L) { return softmax_like(L, false, "softmax"); }
static int o_log_softmax(lua_State *L) { return softmax_like(L, true, "log_softmax"); }

/* ---- linear algebra ----------------------------------------------------------- */

static int o_matmul(lua_State *L)
{
    lt_check_nargs(L, 2);
    LT_CALL(L, td_matmul(lt_check(L, 1), lt_check(L, 2), lt_new(L)), "matmul");
    return 1;
}

static int o_mm(lua_State *L)
{
    lt_check_nargs(L, 2);
    LT_CALL(L, td_mm(lt_check(L, 1), lt_check(L, 2), lt_new(L)), "mm");
    return 1;
}

static int o_bmm(lua_State *L)
{
    lt_check_nargs(L, 2);
    LT_CALL(L, td_bmm(lt_check(L, 1), lt_check(L, 2), lt_new(L)), "bmm");
    return 1;
}

/* addmm(input, a, b, {beta = 1, alpha = 1}) = beta * input + alpha * (a @ b) */
static int o_addmm(lua_State *L)
{
    static const char *const keys[] = {"beta", "alpha", NULL};
    td_tensor *in = lt_check(L, 1), *a = lt_check(L, 2), *b = lt_check(L, 3);
    lt_check_options(L, 4, keys);
    double beta = lt_opt_number(L, 4, "beta", 1), alpha = lt_opt_number(L, 4, "alpha", 1);
    LT_CALL(L, td_addmm(in, a, b, beta, alpha, lt_new(L)), "addmm");
    return 1;
}

const luaL_Reg lt_ops_methods[] = {
    {"add", o_add},         {"sub", o_sub},         {"mul", o_mul},
    {"div", o_div},         {"pow", o_pow},         {"maximum", o_maximum},
    {"minimum", o_minimum}, {"eq", o_eq},           {"ne", o_ne},
    {"lt", o_lt},           {"le", o_le},           {"gt", o_gt},
    {"ge", o_ge},           {"clamp", o_clamp},     {"add_", o_add_},
    {"sub_", o_sub_},       {"mul_", o_mul_},       {"div_", o_div_},
    {"fill_", o_fill_},     {"zero_", o_zero_},     {"copy_", o_copy_},
    {"sum", o_sum},         {"mean", o_mean},       {"prod", o_prod},
    {"max", o_max},         {"min", o_min},         {"argmax", o_argmax},
    {"argmin", o_argmin},   {"var", o_var},         {"std", o_std},
    {"norm", o_norm},       {"softmax", o_softmax}, {"log_softmax", o_log_softmax},
    {"matmul", o_matmul},   {"mm", o_mm},           {"bmm", o_bmm},
    {"addmm", o_addmm},     {NULL, NULL},
};

const luaL_Reg lt_ops_meta[] = {
    {"__add", o_add}, {"__sub", o_sub}, {"__mul", o_mul}, {"__div", o_div},
    {"__pow", o_pow}, {"__unm", o_unm}, {NULL, NULL},
};
