/* tide.core: the autocast regions' switch (tide/autocast.h); the Lua side,
 * tide.autocast with its function and <close> forms, is in tide/amp.lua. */
#include "tide/autocast.h"
#include "l_util.h"

/* _autocast_enter(dtype | nil, enabled) -> depth */
static int a_enter(lua_State *L)
{
    bool enabled = lua_toboolean(L, 2);
    td_dtype dt = lua_isnoneornil(L, 1) ? TD_FLOAT32 : lt_check_dtype(L, 1);
    int depth = 0;
    LT_CALL(L, td_autocast_enter(dt, enabled, &depth), "autocast");
    lua_pushinteger(L, depth);
    return 1;
}

/* _autocast_exit(depth) */
static int a_exit(lua_State *L)
{
    lua_Integer d = luaL_checkinteger(L, 1);
    if (d < 0 || d > 1 << 20) luaL_argerror(L, 1, "not a depth autocast gave");
    LT_CALL(L, td_autocast_exit((int)d), "autocast");
    return 0;
}

static int a_is_enabled(lua_State *L)
{
    lua_pushboolean(L, td_autocast_enabled());
    return 1;
}

static int a_dtype(lua_State *L)
{
    lua_pushstring(L, td_dtype_name(td_autocast_dtype()));
    return 1;
}

const luaL_Reg lt_autocast_funcs[] = {
    {"_autocast_enter", a_enter},
    {"_autocast_exit", a_exit},
    {"is_autocast_enabled", a_is_enabled},
    {"get_autocast_dtype", a_dtype},
    {NULL, NULL},
};
