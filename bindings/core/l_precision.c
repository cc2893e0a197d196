/* tide.core: tide.finfo and tide.iinfo, PyTorch's torch.finfo / torch.iinfo
 * (docs/precision.md). */
#include "l_util.h"

#include <stdio.h>

#define FINFO_META "tide.finfo"
#define IINFO_META "tide.iinfo"

/* the dtype at arg: a name, or float32 when absent (PyTorch's default) */
static td_dtype info_dtype(lua_State *L, int arg)
{
    lt_check_nargs(L, arg);
    return lua_isnoneornil(L, arg) ? TD_FLOAT32 : lt_check_dtype(L, arg);
}

/* "finfo(resolution=0.01, min=-3.38953e+38, ..., dtype=bfloat16)", as PyTorch prints */
static int finfo_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const keys[] = {"resolution",      "min", "max", "eps",
                                       "smallest_normal", "tiny"};
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "finfo(");
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char num[64];
        lua_getfield(L, 1, keys[i]);
        snprintf(num, sizeof num, "%s=%g, ", keys[i], lua_tonumber(L, -1));
        lua_pop(L, 1);
        luaL_addstring(&b, num);
    }
    lua_getfield(L, 1, "dtype");
    luaL_addstring(&b, "dtype=");
    luaL_addstring(&b, luaL_optstring(L, -1, "?"));
    lua_pop(L, 1);
    luaL_addstring(&b, ")");
    luaL_pushresult(&b);
    return 1;
}

/* tide.finfo([dtype]) -> {bits, eps, max, min, tiny, smallest_normal, resolution, dtype} */
static int p_finfo(lua_State *L)
{
    td_dtype dt = info_dtype(L, 1);
    td_finfo_t f;
    if (td_finfo(dt, &f) != TD_OK) lt_fail(L, "finfo", 1);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, f.bits);
    lua_setfield(L, -2, "bits");
    const struct {
        const char *name;
        double v;
    } fields[] = {{"eps", f.eps},
                  {"max", f.max},
                  {"min", f.min},
                  {"tiny", f.tiny},
                  {"smallest_normal", f.tiny},
                  {"resolution", f.resolution}};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        lua_pushnumber(L, fields[i].v);
        lua_setfield(L, -2, fields[i].name);
    }
    lua_pushstring(L, td_dtype_name(dt));
    lua_setfield(L, -2, "dtype");
    if (luaL_newmetatable(L, FINFO_META)) {
        lua_pushcfunction(L, finfo_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_setmetatable(L, -2);
    return 1;
}

static int iinfo_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "min");
    lua_getfield(L, 1, "max");
    lua_getfield(L, 1, "dtype");
    lua_pushfstring(L, "iinfo(min=%I, max=%I, dtype=%s)", (lua_Integer)lua_tointeger(L, -3),
                    (lua_Integer)lua_tointeger(L, -2), luaL_optstring(L, -1, "?"));
    return 1;
}

/* tide.iinfo(dtype) -> {bits, max, min, dtype} for int64 and uint8 */
static int p_iinfo(lua_State *L)
{
    td_dtype dt = lt_check_dtype(L, 1);
    lt_check_nargs(L, 1);
    if (dt != TD_INT64 && dt != TD_UINT8)
        luaL_argerror(L, 1,
                      lua_pushfstring(L,
                                      "iinfo: %s is not an integer dtype (tide.finfo is for "
                                      "floats)",
                                      td_dtype_name(dt)));
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, dt == TD_INT64 ? 64 : 8);
    lua_setfield(L, -2, "bits");
    lua_pushinteger(L, dt == TD_INT64 ? LUA_MAXINTEGER : 255);
    lua_setfield(L, -2, "max");
    lua_pushinteger(L, dt == TD_INT64 ? LUA_MININTEGER : 0);
    lua_setfield(L, -2, "min");
    lua_pushstring(L, td_dtype_name(dt));
    lua_setfield(L, -2, "dtype");
    if (luaL_newmetatable(L, IINFO_META)) {
        lua_pushcfunction(L, iinfo_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_setmetatable(L, -2);
    return 1;
}

const luaL_Reg lt_precision_funcs[] = {
    {"finfo", p_finfo},
    {"iinfo", p_iinfo},
    {NULL, NULL},
};
