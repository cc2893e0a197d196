/* tide.core: tide.backend_info([device]), which path each dtype's matrix
 * products take on a device of this machine (docs/precision.md). */
#include "l_util.h"

/* backend_info([device = "cpu"]) -> {device = "cpu", threads = n,
 * matmul = {float32 = "onednn sgemm", ..., bfloat16 = "onednn 2.6.3
 * brg:avx512_core_bf16" or "float32 fallback (...)"}, conv = {same keys}} */
static int bi_backend_info(lua_State *L)
{
    lt_check_nargs(L, 1);
    const char *name = luaL_optstring(L, 1, "cpu");
    td_device d = lt_parse_device(L, 1, name);
    static const td_dtype dts[] = {TD_FLOAT32, TD_FLOAT64, TD_BFLOAT16, TD_FLOAT16};
    lua_createtable(L, 0, 3);
    char dev[32];
    td_device_str(d, dev, sizeof dev);
    lua_pushstring(L, dev);
    lua_setfield(L, -2, "device");
    lua_pushinteger(L, td_get_num_threads());
    lua_setfield(L, -2, "threads");
    lua_createtable(L, 0, 4);
    for (size_t i = 0; i < sizeof dts / sizeof *dts; i++) {
        const char *path;
        if (td_matmul_path(d, dts[i], &path) != TD_OK) lt_fail(L, "backend_info", 0);
        lua_pushstring(L, path);
        lua_setfield(L, -2, td_dtype_name(dts[i]));
    }
    lua_setfield(L, -2, "matmul");
    lua_createtable(L, 0, 4);
    for (size_t i = 0; i < sizeof dts / sizeof *dts; i++) {
        const char *path;
        if (td_conv_path(d, dts[i], &path) != TD_OK) lt_fail(L, "backend_info", 0);
        lua_pushstring(L, path);
        lua_setfield(L, -2, td_dtype_name(dts[i]));
    }
    lua_setfield(L, -2, "conv");
    return 1;
}

const luaL_Reg lt_backend_info_funcs[] = {
    {"backend_info", bi_backend_info},
    {NULL, NULL},
};
