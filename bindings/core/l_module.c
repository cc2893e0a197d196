/* tide.core: the module: luaopen, registration, threads, memory, clock,
 * deterministic mode, version, the tide.cuda table (l_device.c). */
#include "l_util.h"

#include <dlfcn.h>
#include <string.h>
#include <time.h>

/* Lua unloads C modules when the state closes; core.so pulls in the
 * OpenMP runtime, whose worker threads outlive that, so unloading it
 * crashes at exit. Pin the module (and with it libgomp) in memory. */
static void pin_module(void)
{
    Dl_info info;
    if (dladdr((void *)pin_module, &info) && info.dli_fname) {
        void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
        (void)h; /* never closed: that is the point */
    }
}

static int m_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1) luaL_argerror(L, 1, "number of threads must be at least 1");
    if (n > td_max_threads())
        return luaL_argerror(
            L, 1,
            lua_pushfstring(L, "%I threads is more than 4 per online CPU (at most %d here)", n,
                            td_max_threads()));
    td_set_num_threads((int)n);
    return 0;
}

static int m_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, td_get_num_threads());
    return 1;
}

/* use_deterministic(on) -> the previous setting */
static int m_use_deterministic(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    bool was = td_deterministic();
    td_set_deterministic(lua_toboolean(L, 1));
    lua_pushboolean(L, was);
    return 1;
}

static int m_is_deterministic(lua_State *L)
{
    lua_pushboolean(L, td_deterministic());
    return 1;
}

/* memory([device = "cpu"]) -> {live = bytes, peak = bytes, total = bytes};
 * a CUDA device adds reserved (held by the caching allocator), free and
 * capacity (the device's own count) */
static int m_memory(lua_State *L)
{
    td_device d = lt_parse_device(L, 1, luaL_optstring(L, 1, "cpu"));
    if (d.type == TD_CUDA) return lt_push_cuda_memory(L, 1, d);
    td_memory_stats ms;
    td_memory(&ms);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)ms.live_bytes);
    lua_setfield(L, -2, "live");
    lua_pushinteger(L, (lua_Integer)ms.peak_bytes);
    lua_setfield(L, -2, "peak");
    lua_pushinteger(L, (lua_Integer)ms.allocated_total);
    lua_setfield(L, -2, "total");
    return 1;
}

/* clock() -> monotonic wall-clock seconds */
static int m_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

static int m_is_tensor(lua_State *L)
{
    lua_pushboolean(L, luaL_testudata(L, 1, LT_TENSOR) != NULL);
    return 1;
}

static const luaL_Reg module_funcs[] = {
    {"set_num_threads", m_set_num_threads},
    {"get_num_threads", m_get_num_threads},
    {"use_deterministic", m_use_deterministic},
    {"is_deterministic", m_is_deterministic},
    {"memory", m_memory},
    {"clock", m_clock},
    {"is_tensor", m_is_tensor},
    {NULL, NULL},
};

/* methods go into the methods table (t:name()) and the module (tide.name(t)) */
static void add_methods(lua_State *L, int module, int methods, const luaL_Reg *r)
{
    for (; r->name; r++) {
        lt_push_registered(L, r);
        lua_pushvalue(L, -1);
        lua_setfield(L, methods, r->name);
        lua_setfield(L, module, r->name);
    }
}

int luaopen_tide_core(lua_State *L)
{
    luaL_checkversion(L);
    pin_module();
    lua_newtable(L); /* module */
    int module = lua_gettop(L);

    lua_newtable(L); /* methods */
    int methods = lua_gettop(L);
    add_methods(L, module, methods, lt_tensor_methods);
    add_methods(L, module, methods, lt_ops_methods);
    lt_register_op_table(L, module, methods);
    add_methods(L, module, methods, lt_numeric_methods);
    add_methods(L, module, methods, lt_shape_methods);
    add_methods(L, module, methods, lt_reorder_methods);
    add_methods(L, module, methods, lt_reduce_methods);
    add_methods(L, module, methods, lt_autograd_methods);
    add_methods(L, module, methods, lt_device_methods);

    /* the metatable: metamethods, then __index over the methods */
    if (luaL_newmetatable(L, LT_TENSOR)) {
        lt_register(L, lt_tensor_meta);
        lt_register(L, lt_ops_meta);
        lua_pushliteral(L, "tide.Tensor");
        lua_setfield(L, -2, "__name");
    }
    lua_pushvalue(L, methods);
    lt_install_index(L);
    lua_setfield(L, module, "_metatable");

    lua_pushvalue(L, methods);
    lua_setfield(L, module, "Tensor");
    lua_settop(L, module);

    lt_register(L, lt_create_funcs);
    lt_register(L, lt_shape_funcs);
    lt_register(L, lt_reduce_funcs);
    lt_register(L, lt_autograd_funcs);
    lt_register(L, module_funcs);
    lt_register_losses(L);
    lt_register(L, lt_conv_funcs);
    {
        extern const luaL_Reg lt_convnd_funcs[];
        lt_register(L, lt_convnd_funcs);
    }
    {
        extern const luaL_Reg lt_rnn_funcs[];
        lt_register(L, lt_rnn_funcs);
    }
    {
        extern const luaL_Reg lt_precision_funcs[]; /* l_precision.c */
        lt_register(L, lt_precision_funcs);
    }
    {
        extern const luaL_Reg lt_backend_info_funcs[]; /* l_backend_info.c */
        lt_register(L, lt_backend_info_funcs);
    }
    {
        extern const luaL_Reg lt_autocast_funcs[]; /* l_autocast.c */
        lt_register(L, lt_autocast_funcs);
    }
    lt_register(L, lt_layers_funcs);
    lt_register(L, lt_attention_funcs);
    lt_register(L, lt_optim_funcs);
    lt_register(L, lt_data_funcs);
    lt_register(L, lt_serialize_funcs);
    lt_register(L, lt_term_funcs);

    lua_newtable(L);
    luaL_setfuncs(L, lt_cuda_funcs, 0);
    lua_setfield(L, -2, "cuda");
    lt_push_distributed(L);
    lua_setfield(L, -2, "distributed");
    td_threads_init();
    lt_install_oom_handler(L);
    lua_pushliteral(L, TD_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
