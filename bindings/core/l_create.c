/* tide.core: making tensors: from Lua tables, constants, ranges, random. */
#include "l_util.h"

#include <string.h>

/* creation functions check their arguments here; what the runtime still
 * refuses is reported as "fname: message" */
#define NOARG (-1000)

/* ---- tide.tensor(data, dtype_or_options) -------------------------------- */

typedef struct {
    lua_State *L;
    int ndim;
    int64_t shape[TD_MAX_DIMS];
    lua_Integer pos[TD_MAX_DIMS];
    double *buf;
    int64_t n;
    td_dtype dtype;
} nest;

/* "{2,1}": where in the nested table we are, 1-based like Lua */
static const char *nest_pos(nest *s, int depth)
{
    luaL_Buffer b;
    luaL_buffinit(s->L, &b);
    luaL_addchar(&b, '{');
    for (int i = 0; i < depth; i++) {
        if (i) luaL_addchar(&b, ',');
        lua_pushinteger(s->L, s->pos[i]);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
    return lua_tostring(s->L, -1);
}

static void nest_shape(nest *s, int idx)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_pushvalue(L, idx);
    while (lua_type(L, -1) == LUA_TTABLE) {
        if (s->ndim == TD_MAX_DIMS)
            luaL_argerror(L, 1,
                          lua_pushfstring(L, "nested table is deeper than %d levels", TD_MAX_DIMS));
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        s->shape[s->ndim++] = n;
        if (n == 0) break;
        lua_rawgeti(L, -1, 1);
    }
    lua_settop(L, top);
}

static void nest_fill(nest *s, int d)
{
    lua_State *L = s->L;
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    if (len != s->shape[d])
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "ragged nested table: %s has length %I, expected %I",
                                      nest_pos(s, d), len, (lua_Integer)s->shape[d]));
    luaL_checkstack(L, 4, "nested table too deep");
    for (lua_Integer i = 1; i <= len; i++) {
        int tp = lua_rawgeti(L, -1, i);
        const char *tname = lua_typename(L, tp);
        s->pos[d] = i;
        if (d == s->ndim - 1) {
            if (tp == LUA_TTABLE)
                luaL_argerror(
                    L, 1,
                    lua_pushfstring(L, "ragged nested table: %s is a table, expected a number",
                                    nest_pos(s, d + 1)));
            if (tp != LUA_TNUMBER)
                luaL_argerror(L, 1,
                              lua_pushfstring(L, "non-numeric entry at %s (a %s)",
                                              nest_pos(s, d + 1), tname));
            double v = lua_tonumber(L, -1);
            /* an integer tensor has no value for these; storing one would
             * silently give INT64_MIN */
            if (!td_dtype_is_float(s->dtype) &&
                !(v >= -9223372036854775808.0 && v < 9223372036854775808.0)) {
                const char *at = nest_pos(s, d + 1);
                luaL_argerror(L, 1,
                              lua_pushfstring(L, "entry %s is %s, which %s cannot hold", at,
                                              v != v ? "NaN" : lua_tostring(L, -2),
                                              td_dtype_name(s->dtype)));
            }
            s->buf[s->n++] = v;
        } else {
            if (tp == LUA_TNUMBER)
                luaL_argerror(
                    L, 1,
                    lua_pushfstring(
                        L, "ragged nested table: %s is a number, expected a table of %I entries",
                        nest_pos(s, d + 1), (lua_Integer)s->shape[d + 1]));
            if (tp != LUA_TTABLE)
                luaL_argerror(L, 1,
                              lua_pushfstring(L, "non-numeric entry at %s (a %s)",
                                              nest_pos(s, d + 1), tname));
            nest_fill(s, d + 1);
        }
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L)
{
    lt_create_opts o;
    lt_check_create_opts(L, 2, &o, TD_FLOAT32);
    td_tensor *src = lt_test(L, 1);
    td_tensor **slot;
    if (src) { /* a copy, detached from the graph */
        td_tensor *d = NULL;
        td_tensor **tmp = lt_new(L);
        LT_CALL(L, td_detach(src, tmp), "tensor");
        slot = lt_new(L);
        LT_CALL(L, td_to_dtype(*tmp, o.has_dtype ? o.dtype : src->dtype, &d), "tensor");
        if (d == *tmp) { /* same dtype: still need a copy of its own */
            td_tensor_release(d);
            LT_CALL(L, td_clone(*tmp, slot), "tensor");
        } else {
            *slot = d;
        }
        lt_drop(L, -2);
    } else if (lua_type(L, 1) == LUA_TNUMBER) {
        slot = lt_new(L);
        lt_check_status(L, td_scalar(lua_tonumber(L, 1), o.dtype, slot), "tensor", NOARG);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        nest s;
        memset(&s, 0, sizeof s);
        s.L = L;
        s.dtype = o.dtype;
        nest_shape(&s, 1);
        int64_t numel = 1;
        for (int i = 0; i < s.ndim; i++) numel *= s.shape[i];
        s.buf = lua_newuserdatauv(L, (size_t)(numel > 0 ? numel : 1) * sizeof(double), 0);
        lua_pushvalue(L, 1);
        nest_fill(&s, 0);
        lua_pop(L, 1);
        slot = lt_new(L);
        lt_check_status(L, td_from_data(s.ndim, s.shape, o.dtype, s.buf, slot), "tensor", NOARG);
    }
    lt_apply_create_opts(L, &o, 2);
    return 1;
}

/* ---- constants ----------------------------------------------------------- */

typedef td_status (*const_fn)(int, const int64_t *, td_dtype, td_tensor **);

/* fname(shape..., options) with shape a table or numbers */
static int make_shaped(lua_State *L, const char *fname, const_fn fn, int float_only)
{
    int64_t shape[TD_MAX_DIMS];
    int next;
    int n = lt_check_shape(L, 1, shape, 1, 0, &next);
    lt_create_opts o;
    lt_check_create_opts(L, next, &o, TD_FLOAT32);
    if (float_only && !td_dtype_is_float(o.dtype))
        luaL_argerror(L, next,
                      lua_pushfstring(L,
                                      "%s makes float tensors (float32, float64, bfloat16, "
                                      "float16), not %s",
                                      fname, td_dtype_name(o.dtype)));
    lt_check_status(L, fn(n, shape, o.dtype, lt_new(L)), fname, NOARG);
    lt_apply_create_opts(L, &o, next);
    return 1;
}

static int l_zeros(lua_State *L) { return make_shaped(L, "zeros", td_zeros, 0); }
static int l_ones(lua_State *L) { return make_shaped(L, "ones", td_ones, 0); }
static int l_empty(lua_State *L) { return make_shaped(L, "empty", td_zeros, 0); }
static int l_rand(lua_State *L) { return make_shaped(L, "rand", td_rand, 1); }
static int l_randn(lua_State *L) { return make_shaped(L, "randn", td_randn, 1); }

/* full(shape, value, options) */
static int l_full(lua_State *L)
{
    int64_t shape[TD_MAX_DIMS];
    int n = lt_check_shape(L, 1, shape, 0, 0, NULL);
    double v = luaL_checknumber(L, 2);
    lt_create_opts o;
    lt_check_create_opts(L, 3, &o, TD_FLOAT32);
    lt_check_status(L, td_full(n, shape, v, o.dtype, lt_new(L)), "full", NOARG);
    lt_apply_create_opts(L, &o, 3);
    return 1;
}

/* NAME_like(t, [value], options): t's shape and dtype */
static int make_like(lua_State *L, const char *fname, int kind)
{
    td_tensor *t = lt_check(L, 1);
    int oarg = 2;
    double v = 0;
    if (kind == 2) {
        v = luaL_checknumber(L, 2);
        oarg = 3;
    }
    lt_create_opts o;
    lt_check_create_opts(L, oarg, &o, t->dtype);
    if (!o.has_device) { /* t's device unless asked otherwise */
        o.device = td_device_of(t);
        o.has_device = o.device.type != TD_CPU;
    }
    td_tensor **slot = lt_new(L);
    td_status st;
    switch (kind) {
    case 0: st = td_zeros(t->ndim, t->shape, o.dtype, slot); break;
    case 1: st = td_ones(t->ndim, t->shape, o.dtype, slot); break;
    case 2: st = td_full(t->ndim, t->shape, v, o.dtype, slot); break;
    case 3: st = td_rand(t->ndim, t->shape, o.dtype, slot); break;
    default: st = td_randn(t->ndim, t->shape, o.dtype, slot); break;
    }
    lt_check_status(L, st, fname, NOARG);
    lt_apply_create_opts(L, &o, oarg);
    return 1;
}

static int l_zeros_like(lua_State *L) { return make_like(L, "zeros_like", 0); }
static int l_ones_like(lua_State *L) { return make_like(L, "ones_like", 1); }
static int l_full_like(lua_State *L) { return make_like(L, "full_like", 2); }
static int l_rand_like(lua_State *L) { return make_like(L, "rand_like", 3); }
static int l_randn_like(lua_State *L) { return make_like(L, "randn_like", 4); }

/* ---- ranges --------------------------------------------------------------- */

/* arange(end) | arange(start, end) | arange(start, end, step), then options;
 * all-integer arguments give int64 (as PyTorch), any float gives float32 */
static int l_arange(lua_State *L)
{
    double v[3];
    int n = 0, all_int = 1;
    while (n < 3 && lua_type(L, n + 1) == LUA_TNUMBER) {
        v[n] = lua_tonumber(L, n + 1);
        all_int = all_int && lua_isinteger(L, n + 1);
        n++;
    }
    if (n == 0) luaL_typeerror(L, 1, "number");
    double start = n >= 2 ? v[0] : 0, end = n >= 2 ? v[1] : v[0], step = n == 3 ? v[2] : 1;
    lt_create_opts o;
    lt_check_create_opts(L, n + 1, &o, all_int ? TD_INT64 : TD_FLOAT32);
    td_status st = td_arange(start, end, step, o.dtype, lt_new(L));
    /* the runtime numbers start, end, step as 1, 2, 3; with one argument,
     * end is Lua's argument 1; arguments not given are not named */
    int shift = 0, rarg = td_last_error_arg();
    if (n == 1)
        shift = rarg == 2 ? -1 : NOARG;
    else if (rarg > n)
        shift = NOARG;
    lt_check_status(L, st, "arange", shift);
    lt_apply_create_opts(L, &o, n + 1);
    return 1;
}

static int l_linspace(lua_State *L)
{
    double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
    lua_Integer steps = luaL_checkinteger(L, 3);
    if (steps < 0) luaL_argerror(L, 3, "number of steps must be non-negative");
    lt_create_opts o;
    lt_check_create_opts(L, 4, &o, TD_FLOAT32);
    lt_check_status(L, td_linspace(a, b, (int64_t)steps, o.dtype, lt_new(L)), "linspace", 0);
    lt_apply_create_opts(L, &o, 4);
    return 1;
}

/* eye(n, [m], options) */
static int l_eye(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1), m = n;
    int oarg = 2;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        m = luaL_checkinteger(L, 2);
        oarg = 3;
    }
    if (n < 0) luaL_argerror(L, 1, "size must be non-negative");
    if (m < 0) luaL_argerror(L, 2, "size must be non-negative");
    lt_create_opts o;
    lt_check_create_opts(L, oarg, &o, TD_FLOAT32);
    lt_check_status(L, td_eye((int64_t)n, (int64_t)m, o.dtype, lt_new(L)), "eye", NOARG);
    lt_apply_create_opts(L, &o, oarg);
    return 1;
}

/* ---- random ---------------------------------------------------------------- */

/* randint(low, high, shape, options) | randint(high, shape, options) */
static int l_randint(lua_State *L)
{
    lua_Integer low = 0, high;
    int sarg;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        low = luaL_checkinteger(L, 1);
        high = luaL_checkinteger(L, 2);
        sarg = 3;
    } else {
        high = luaL_checkinteger(L, 1);
        sarg = 2;
    }
    if (high <= low)
        luaL_argerror(L, sarg - 1,
                      lua_pushfstring(L, "high (%I) must be greater than low (%I)", high, low));
    int64_t shape[TD_MAX_DIMS];
    int n = lt_check_shape(L, sarg, shape, 0, 0, NULL);
    lt_create_opts o;
    lt_check_create_opts(L, sarg + 1, &o, TD_INT64);
    lt_check_status(L, td_randint((int64_t)low, (int64_t)high, n, shape, o.dtype, lt_new(L)),
                    "randint", NOARG);
    lt_apply_create_opts(L, &o, sarg + 1);
    return 1;
}

static int l_randperm(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0) luaL_argerror(L, 1, "n must be non-negative");
    lt_create_opts o;
    lt_check_create_opts(L, 2, &o, TD_INT64);
    lt_check_status(L, td_randperm((int64_t)n, o.dtype, lt_new(L)), "randperm", NOARG);
    lt_apply_create_opts(L, &o, 2);
    return 1;
}

static int l_manual_seed(lua_State *L)
{
    td_manual_seed((uint64_t)luaL_checkinteger(L, 1));
    return 0;
}

const luaL_Reg lt_create_funcs[] = {
    {"tensor", l_tensor},
    {"zeros", l_zeros},
    {"ones", l_ones},
    {"empty", l_empty},
    {"full", l_full},
    {"zeros_like", l_zeros_like},
    {"ones_like", l_ones_like},
    {"full_like", l_full_like},
    {"rand_like", l_rand_like},
    {"randn_like", l_randn_like},
    {"arange", l_arange},
    {"linspace", l_linspace},
    {"eye", l_eye},
    {"rand", l_rand},
    {"randn", l_randn},
    {"randint", l_randint},
    {"randperm", l_randperm},
    {"manual_seed", l_manual_seed},
    {NULL, NULL},
};
