/* tide.core: elementwise math, reductions, softmax, linear algebra. */
#include "l_util.h"

#include <math.h>

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

/* every unary row of the op table, as tide.name(x) and x:name(); and the
 * table itself, as tide.op_table() */
static int unary(lua_State *L)
{
    const td_op_def *d = lua_touserdata(L, lua_upvalueindex(1));
    LT_CALL(L, td_unary((td_unary_op)d->op, lt_check(L, 1), lt_new(L)), d->name);
    return 1;
}

/* op_table(): every row as {name, node, arity, domain, summary} */
static int op_table(lua_State *L)
{
    static const char *const domains[] = {"real", "positive", "off_kink", "off_integer"};
    lua_createtable(L, td_op_count(), 0);
    for (int i = 0; i < td_op_count(); i++) {
        const td_op_def *d = td_op_at(i);
        lua_createtable(L, 0, 5);
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
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

void lt_register_op_table(lua_State *L, int module, int methods)
{
    lua_pushcfunction(L, op_table);
    lua_setfield(L, module, "op_table");
    for (int i = 0; i < td_op_count(); i++) {
        const td_op_def *d = td_op_at(i);
        if (d->arity != 1) continue;
        lua_pushlightuserdata(L, (void *)d);
        lua_pushcclosure(L, unary, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, methods, d->name);
        lua_setfield(L, module, d->name);
    }
}

/* clamp(x, min, max) with nil meaning unbounded, or clamp(x, {min=, max=}) */
static int o_clamp(lua_State *L)
{
    static const char *const keys[] = {"min", "max", NULL};
    td_tensor *x = lt_check(L, 1);
    double lo = -INFINITY, hi = INFINITY;
    int has = 0;
    if (lt_is_options(L, 2)) {
        lt_check_options(L, 2, keys);
        if (lt_opt_field(L, 2, "min") != LUA_TNIL) has = 1;
        lua_pop(L, 1);
        if (lt_opt_field(L, 2, "max") != LUA_TNIL) has = 1;
        lua_pop(L, 1);
        lo = lt_opt_number(L, 2, "min", lo);
        hi = lt_opt_number(L, 2, "max", hi);
    } else {
        if (!lua_isnoneornil(L, 2)) lo = luaL_checknumber(L, 2), has = 1;
        if (!lua_isnoneornil(L, 3)) hi = luaL_checknumber(L, 3), has = 1;
    }
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
    td_tensor *x = lt_check(L, 1);
    int dim;
    bool keepdim;
    int all = reduce_args(L, x, 2, &dim, &keepdim, fname);
    LT_CALL(L, fn(x, dim, all, keepdim, lt_new(L)), fname);
    return 1;
}

static int o_sum(lua_State *L) { return reduce(L, td_sum, "sum"); }
static int o_mean(lua_State *L) { return reduce(L, td_mean, "mean"); }
static int o_prod(lua_State *L) { return reduce(L, td_prod, "prod"); }
static int o_argmax(lua_State *L) { return reduce(L, td_argmax, "argmax"); }
static int o_argmin(lua_State *L) { return reduce(L, td_argmin, "argmin"); }

typedef td_status (*minmax_fn)(td_tensor *, int, bool, bool, td_tensor **, td_tensor **);

/* max(x) -> value; max(x, dim, keepdim) -> values, indices; max(x, y) -> maximum */
static int minmax(lua_State *L, minmax_fn fn, td_binary_op op, const char *fname)
{
    td_tensor *x = lt_check(L, 1);
    if (lt_test(L, 2)) return binary(L, op, fname);
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

typedef td_status (*var_fn)(td_tensor *, int, bool, bool, int64_t, td_tensor **);

/* var(x, [dim], [keepdim], {correction = 1 | unbiased = true}) */
static int var_std(lua_State *L, var_fn fn, const char *fname)
{
    static const char *const keys[] = {"correction", "unbiased", NULL};
    td_tensor *x = lt_check(L, 1);
    int top = lua_gettop(L);
    int64_t correction = 1;
    if (top >= 2 && lt_is_options(L, top)) {
        lt_check_options(L, top, keys);
        if (lt_opt_field(L, top, "correction") != LUA_TNIL &&
            lt_opt_field(L, top, "unbiased") != LUA_TNIL)
            luaL_argerror(L, top, "give correction or unbiased, not both");
        lua_settop(L, top);
        correction = lt_opt_boolean(L, top, "unbiased", 1) ? 1 : 0;
        correction = (int64_t)lt_opt_integer(L, top, "correction", correction);
        lua_settop(L, top - 1);
    }
    int dim;
    bool keepdim;
    int all = reduce_args(L, x, 2, &dim, &keepdim, fname);
    LT_CALL(L, fn(x, dim, all, keepdim, correction, lt_new(L)), fname);
    return 1;
}

static int o_var(lua_State *L) { return var_std(L, td_var, "var"); }
static int o_std(lua_State *L) { return var_std(L, td_std, "std"); }

/* norm(x, [p = 2], [dim], [keepdim]); p may be "fro" or math.huge */
static int o_norm(lua_State *L)
{
    td_tensor *x = lt_check(L, 1);
    double p = 2;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *s = lua_tostring(L, 2);
        if (s[0] != 'f' || s[1] != 'r' || s[2] != 'o' || s[3])
            luaL_argerror(L, 2, "p must be a number or 'fro'");
    } else if (!lua_isnoneornil(L, 2)) {
        p = luaL_checknumber(L, 2);
    }
    int dim;
    bool keepdim;
    int all = reduce_args(L, x, 3, &dim, &keepdim, "norm");
    LT_CALL(L, td_norm(x, p, dim, all, keepdim, lt_new(L)), "norm");
    return 1;
}

static int softmax_like(lua_State *L, td_status (*fn)(td_tensor *, int, td_tensor **),
                        const char *fname)
{
    td_tensor *x = lt_check(L, 1);
    if (lua_isnoneornil(L, 2)) luaL_argerror(L, 2, "dim expected (softmax has no implicit dim)");
    int dim = lt_check_dim(L, 2);
    LT_CALL(L, fn(x, dim, lt_new(L)), fname);
    return 1;
}

static int o_softmax(lua_State *L) { return softmax_like(L, td_softmax, "softmax"); }
static int o_log_softmax(lua_State *L) { return softmax_like(L, td_log_softmax, "log_softmax"); }

/* ---- linear algebra ----------------------------------------------------------- */

static int o_matmul(lua_State *L)
{
    LT_CALL(L, td_matmul(lt_check(L, 1), lt_check(L, 2), lt_new(L)), "matmul");
    return 1;
}

static int o_mm(lua_State *L)
{
    LT_CALL(L, td_mm(lt_check(L, 1), lt_check(L, 2), lt_new(L)), "mm");
    return 1;
}

static int o_bmm(lua_State *L)
{
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
