/* tide.core: dims lists, keepdim and the dtype option of the reductions. */
#include "l_dims.h"

int lt_top(lua_State *L)
{
    int top = lua_gettop(L);
    while (top > 0 && lua_isnil(L, top)) top--;
    lua_settop(L, top);
    return top;
}

void lt_no_more(lua_State *L, int n, const char *after)
{
    if (lt_top(L) > n)
        luaL_argerror(L, n + 1, lua_pushfstring(L, "no argument expected after %s", after));
}

int lt_trailing_options(lua_State *L, int from)
{
    int top = lt_top(L);
    if (top < from || lua_type(L, top) != LUA_TTABLE || lt_test(L, top)) return 0;
    int list = lua_rawgeti(L, top, 1) != LUA_TNIL;
    lua_pop(L, 1);
    return list ? 0 : top;
}

int lt_check_dims(lua_State *L, int arg, int *dims)
{
    if (lua_isnoneornil(L, arg)) return 0;
    if (lua_type(L, arg) != LUA_TTABLE) {
        dims[0] = lt_check_dim(L, arg);
        return 1;
    }
    lua_Integer n = luaL_len(L, arg);
    if (n > TD_MAX_DIMS)
        luaL_argerror(L, arg, lua_pushfstring(L, "%d dims listed, more than a tensor has", (int)n));
    for (int i = 0; i < (int)n; i++) {
        lua_geti(L, arg, i + 1);
        if (!lua_isinteger(L, -1))
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "dims must be integers, got %s at %d",
                                          luaL_typename(L, -1), i + 1));
        dims[i] = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return (int)n;
}

bool lt_check_keepdim(lua_State *L, int arg)
{
    if (!lua_isnoneornil(L, arg) && lua_type(L, arg) != LUA_TBOOLEAN)
        luaL_typeerror(L, arg, "boolean (keepdim)");
    return lua_toboolean(L, arg);
}

td_dtype lt_opt_dtype(lua_State *L, int arg, bool *has)
{
    *has = false;
    if (!arg) return TD_FLOAT32;
    td_dtype dt = TD_FLOAT32;
    if (lt_opt_field(L, arg, "dtype") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option 'dtype' must be a string, got %s",
                                          luaL_typename(L, -1)));
        dt = lt_parse_dtype(L, arg, lua_tostring(L, -1));
        *has = true;
    }
    lua_pop(L, 1);
    return dt;
}
