/* tide.core: the tensor userdata: life cycle, fields, element access. */
#include "l_util.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- life cycle --------------------------------------------------------- */

static int t_gc(lua_State *L)
{
    lt_box *b = luaL_checkudata(L, 1, LT_TENSOR);
    if (b->t) td_tensor_release(b->t);
    b->t = NULL;
    return 0;
}

/* `local x <close> = ...` releases early; later use is an error */
static int t_close(lua_State *L) { return t_gc(L); }

static int t_tostring(lua_State *L)
{
    lt_box *b = luaL_checkudata(L, 1, LT_TENSOR);
    if (!b->t) {
        lua_pushstring(L, "tensor(closed)");
        return 1;
    }
    char buf[128];
    lua_pushfstring(L, "tensor(shape=%s, dtype=%s)", td_shape_str(b->t, buf, sizeof buf),
                    td_dtype_name(b->t->dtype));
    return 1;
}

/* t.grad, t.requires_grad, ... come from l_autograd.c; methods from the
 * table in upvalue 1; t[i] is refused with a pointer to the right tools */
static int t_index(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
        lua_pop(L, 1);
        const char *key = lua_tostring(L, 2);
        return lt_get_field(L, lt_check(L, 1), key);
    }
    if (lua_type(L, 2) == LUA_TNUMBER)
        return luaL_error(
            L,
            "tensors cannot be indexed with t[i]; use t:select(dim, i), t:narrow(dim, start, len), "
            "t:get(i, ...) or t:set(value, i, ...) (indices are 0-based)");
    return luaL_error(L, "tensors cannot be indexed with a %s", luaL_typename(L, 2));
}

static int t_newindex(lua_State *L)
{
    const char *key = luaL_checkstring(L, 2);
    td_tensor *t = lt_check(L, 1);
    if (!lt_set_field(L, t, key))
        return luaL_error(L, "cannot set field '%s' of a tensor (settable: grad, requires_grad)",
                          key);
    return 0;
}

/* ---- size and layout ---------------------------------------------------- */

static int t_dim(lua_State *L)
{
    lua_pushinteger(L, lt_check(L, 1)->ndim);
    return 1;
}

static int t_numel(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)td_numel(lt_check(L, 1)));
    return 1;
}

static int t_dtype(lua_State *L)
{
    lua_pushstring(L, td_dtype_name(lt_check(L, 1)->dtype));
    return 1;
}

static int t_is_contiguous(lua_State *L)
{
    td_tensor *x = lt_check(L, 1);
    lua_pushboolean(L, lt_opt_channels_last(L, 2, "is_contiguous") ? td_is_channels_last(x)
                                                                   : td_is_contiguous(x));
    return 1;
}

static int t_storage_offset(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lt_check(L, 1)->offset);
    return 1;
}

static int t_element_size(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)td_dtype_size(lt_check(L, 1)->dtype));
    return 1;
}

static int t_is_floating_point(lua_State *L)
{
    lua_pushboolean(L, td_dtype_is_float(lt_check(L, 1)->dtype));
    return 1;
}

/* ---- elements ----------------------------------------------------------- */

/* a number as Lua sees it: integers for integer dtypes */
static void push_value(lua_State *L, td_dtype dt, double v)
{
    if (!td_dtype_is_float(dt) && isfinite(v))
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

static int read_indices(lua_State *L, int first, int64_t *idx)
{
    int n = lua_gettop(L) - first + 1;
    if (n > TD_MAX_DIMS) luaL_argerror(L, first + TD_MAX_DIMS, "too many indices");
    for (int i = 0; i < n; i++) idx[i] = (int64_t)luaL_checkinteger(L, first + i);
    return n;
}

/* t:get(i, j, ...) -> number (0-based, negative counts from the end) */
static int t_get(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    int64_t idx[TD_MAX_DIMS];
    int n = read_indices(L, 2, idx);
    double v;
    if (td_get(t, n, idx, &v) != TD_OK) lt_fail(L, "get", 1);
    push_value(L, t->dtype, v);
    return 1;
}

/* t:set(value, i, j, ...) -> t */
static int t_set(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    double value = luaL_checknumber(L, 2);
    int64_t idx[TD_MAX_DIMS];
    int n = read_indices(L, 3, idx);
    if (td_set(t, n, idx, value) != TD_OK) lt_fail(L, "set", 2);
    lua_settop(L, 1);
    return 1;
}

static int t_item(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    double v;
    if (td_item(t, &v) != TD_OK) lt_fail(L, "item", 0);
    push_value(L, t->dtype, v);
    return 1;
}

static void fill_table(lua_State *L, td_tensor *t, int d, int64_t *flat)
{
    int64_t n = t->shape[d];
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        if (d == t->ndim - 1)
            push_value(L, t->dtype, td_get_flat(t, (*flat)++));
        else
            fill_table(L, t, d + 1, flat);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* t:totable() -> nested Lua table (a number for a 0-dim tensor) */
static int t_totable(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    if (t->ndim == 0) {
        push_value(L, t->dtype, td_get_flat(t, 0));
        return 1;
    }
    /* Lua arrays index with int and every element costs a table slot:
     * refuse before building gigabytes that could never be finished */
    int64_t n = td_numel(t);
    if (n > INT_MAX)
        return luaL_error(L,
                          "totable: a tensor of %I elements does not fit in a Lua table "
                          "(at most %d)",
                          (lua_Integer)n, INT_MAX);
    luaL_checkstack(L, t->ndim + 4, "tensor too deep");
    int64_t flat = 0;
    fill_table(L, t, 0, &flat);
    return 1;
}

static int t_tolist(lua_State *L) { return t_totable(L); }

const luaL_Reg lt_tensor_methods[] = {
    {"dim", t_dim},
    {"numel", t_numel},
    {"dtype", t_dtype},
    /* device: l_device.c */
    {"is_contiguous", t_is_contiguous},
    {"storage_offset", t_storage_offset},
    {"element_size", t_element_size},
    {"is_floating_point", t_is_floating_point},
    {"get", t_get},
    {"set", t_set},
    {"item", t_item},
    {"totable", t_totable},
    {"tolist", t_tolist},
    {"close", t_close},
    {NULL, NULL},
};

const luaL_Reg lt_tensor_meta[] = {
    {"__gc", t_gc},
    {"__close", t_close},
    {"__tostring", t_tostring},
    {"__index", NULL}, /* set with the methods table as upvalue by l_module.c */
    {"__newindex", t_newindex},
    {NULL, NULL},
};

int lt_install_index(lua_State *L)
{
    /* stack: metatable, methods */
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
    return 0;
}
