/* tide.core.distributed: the collectives, their handles, and the
 * data-parallel reducer that bindings/tide/distributed.lua builds
 * tide.distributed and nn.DistributedDataParallel on. */
#include "l_util.h"

#include <string.h>

#define LT_WORK "tide.distributed.Work"
#define LT_DDP  "tide.distributed.Reducer"

typedef struct {
    td_dist_work *w;
} work_box;

typedef struct {
    td_ddp *d;
} ddp_box;

static const char *const backend_names[] = {"auto", "mpi", "nccl", NULL};

static int l_init(lua_State *L)
{
    static const char *const keys[] = {"backend", "timeout", NULL};
    td_dist_init_opts o = {TD_DIST_AUTO, 600};
    if (!lua_isnoneornil(L, 1)) {
        lt_check_options(L, 1, keys);
        if (lt_opt_field(L, 1, "backend")) {
            const char *b = lua_tostring(L, -1);
            int i = 0;
            while (b && backend_names[i] && strcmp(b, backend_names[i])) i++;
            if (!b || !backend_names[i])
                return luaL_error(L,
                                  "init: option 'backend' must be \"auto\", \"mpi\" or \"nccl\"");
            o.backend = (td_dist_backend)i;
            lua_pop(L, 1);
        }
        o.timeout = lt_opt_number(L, 1, "timeout", 600);
    }
    LT_CALL(L, td_dist_init(&o), "init");
    return 0;
}

static int l_is_initialized(lua_State *L)
{
    lua_pushboolean(L, td_dist_is_initialized());
    return 1;
}

#define INT_GETTER(name, expr)                                                                     \
    static int name(lua_State *L)                                                                  \
    {                                                                                              \
        lua_pushinteger(L, (expr));                                                                \
        return 1;                                                                                  \
    }
INT_GETTER(l_rank, td_dist_rank())
INT_GETTER(l_world_size, td_dist_world_size())
INT_GETTER(l_local_rank, td_dist_local_rank())
INT_GETTER(l_local_size, td_dist_local_size())
INT_GETTER(l_launcher_local_size, td_dist_launcher_local_size())

static int l_backend(lua_State *L)
{
    lua_pushstring(L, td_dist_backend_name());
    return 1;
}

static int l_finalize(lua_State *L)
{
    LT_CALL(L, td_dist_finalize(), "finalize");
    return 0;
}

static int l_barrier(lua_State *L)
{
    LT_CALL(L, td_dist_barrier(), "barrier");
    return 0;
}

static int l_abort(lua_State *L)
{
    td_dist_abort((int)luaL_optinteger(L, 1, 1));
    return 0;
}

/* the options every collective takes; returns async */
static td_dist_opts coll_opts(lua_State *L, int arg, const char *fname, bool reduces,
                              bool broadcasts)
{
    static const char *const reduce_keys[] = {"op", "async", "check", NULL};
    static const char *const bcast_keys[] = {"src", "async", "check", NULL};
    static const char *const plain_keys[] = {"async", "check", NULL};
    td_dist_opts o = {.op = TD_DIST_SUM};
    if (lua_isnoneornil(L, arg)) return o;
    lt_check_options(L, arg, reduces ? reduce_keys : broadcasts ? bcast_keys : plain_keys);
    if (reduces && lt_opt_field(L, arg, "op")) {
        const char *s = lua_tostring(L, -1);
        if (!s || td_dist_op_parse(s, &o.op) != TD_OK) {
            td_clear_error();
            luaL_error(L, "%s: option 'op' must be \"sum\", \"avg\", \"max\", \"min\" or \"prod\"",
                       fname);
        }
        lua_pop(L, 1);
    }
    if (broadcasts) {
        lua_Integer src = lt_opt_integer(L, arg, "src", 0);
        if (src < 0 || src > 1 << 30) luaL_error(L, "%s: option 'src' must be a rank", fname);
        o.src = (int)src;
    }
    o.async = lt_opt_boolean(L, arg, "async", 0);
    o.nocheck = !lt_opt_boolean(L, arg, "check", 1);
    return o;
}

/* a handle whose wait() returns the value at index `result` */
static void push_work(lua_State *L, td_dist_work *w, int result)
{
    work_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->w = w;
    luaL_setmetatable(L, LT_WORK);
    lua_pushvalue(L, result);
    lua_setiuservalue(L, -2, 1);
}

static int collective(lua_State *L, const char *fname, bool reduces, bool broadcasts)
{
    td_tensor *t = lt_check(L, 1);
    td_dist_opts o = coll_opts(L, 2, fname, reduces, broadcasts);
    td_dist_work *w = NULL;
    td_status st = reduces ? td_dist_all_reduce(t, &o, o.async ? &w : NULL)
                           : td_dist_broadcast(t, &o, o.async ? &w : NULL);
    LT_CALL(L, st, fname);
    if (o.async) {
        push_work(L, w, 1);
        return 1;
    }
    lua_settop(L, 1);
    return 1;
}

static int l_all_reduce(lua_State *L) { return collective(L, "all_reduce", true, false); }
static int l_broadcast(lua_State *L) { return collective(L, "broadcast", false, true); }

static int to_new(lua_State *L, const char *fname, bool gather)
{
    td_tensor *t = lt_check(L, 1);
    td_dist_opts o = coll_opts(L, 2, fname, !gather, false);
    td_dist_work *w = NULL;
    td_tensor *out = NULL;
    td_status st = gather ? td_dist_all_gather(t, &o, &out, o.async ? &w : NULL)
                          : td_dist_reduce_scatter(t, &o, &out, o.async ? &w : NULL);
    LT_CALL(L, st, fname);
    *lt_new(L) = out;
    if (o.async) push_work(L, w, lua_gettop(L));
    return 1;
}

static int l_all_gather(lua_State *L) { return to_new(L, "all_gather", true); }
static int l_reduce_scatter(lua_State *L) { return to_new(L, "reduce_scatter", false); }

static int l_sum_with_grad(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *out = NULL;
    LT_CALL(L, td_dist_all_reduce_sum_grad(x, &out), "all_reduce");
    *lt_new(L) = out;
    return 1;
}

/* ---- handles ------------------------------------------------------------ */

static work_box *check_work(lua_State *L) { return luaL_checkudata(L, 1, LT_WORK); }

static int work_wait(lua_State *L)
{
    work_box *b = check_work(L);
    if (b->w) {
        td_dist_work *w = b->w;
        b->w = NULL;
        td_status st = td_dist_wait(w);
        td_dist_work_free(w);
        LT_CALL(L, st, "wait");
    }
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int work_is_completed(lua_State *L)
{
    work_box *b = check_work(L);
    lua_pushboolean(L, !b->w || td_dist_work_is_done(b->w));
    return 1;
}

static int work_gc(lua_State *L)
{
    work_box *b = check_work(L);
    if (b->w) td_dist_work_free(b->w);
    b->w = NULL;
    return 0;
}

static int work_tostring(lua_State *L)
{
    work_box *b = check_work(L);
    lua_pushstring(L, !b->w                        ? "tide.distributed work (waited)"
                      : td_dist_work_is_done(b->w) ? "tide.distributed work (done, not waited)"
                                                   : "tide.distributed work (running)");
    return 1;
}

/* ---- the reducer -------------------------------------------------------- */

static ddp_box *check_ddp(lua_State *L)
{
    ddp_box *b = luaL_checkudata(L, 1, LT_DDP);
    if (!b->d) luaL_error(L, "the reducer was closed");
    return b;
}

static int l_reducer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Number bytes = luaL_checknumber(L, 2);
    int n = (int)luaL_len(L, 1);
    td_tensor **ps = lua_newuserdatauv(L, sizeof *ps * (size_t)(n ? n : 1), 0);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        ps[i] = lt_test(L, -1);
        if (!ps[i]) luaL_error(L, "DistributedDataParallel: parameter %d is not a tensor", i + 1);
        lua_pop(L, 1);
    }
    ddp_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->d = NULL;
    luaL_setmetatable(L, LT_DDP);
    LT_CALL(L, td_ddp_new(n, ps, (int64_t)bytes, &b->d), "DistributedDataParallel");
    return 1;
}

static int ddp_set_sync(lua_State *L)
{
    td_ddp_set_sync(check_ddp(L)->d, lua_toboolean(L, 2));
    return 0;
}

static int ddp_buckets(lua_State *L)
{
    lua_pushinteger(L, td_ddp_bucket_count(check_ddp(L)->d));
    return 1;
}

static int ddp_timing(lua_State *L)
{
    double wait_s, comm_s;
    td_ddp_last_timing(check_ddp(L)->d, &wait_s, &comm_s);
    lua_pushnumber(L, wait_s);
    lua_pushnumber(L, comm_s);
    return 2;
}

static int ddp_gc(lua_State *L)
{
    ddp_box *b = luaL_checkudata(L, 1, LT_DDP);
    td_ddp_free(b->d);
    b->d = NULL;
    return 0;
}

static const luaL_Reg work_methods[] = {
    {"wait", work_wait}, {"is_completed", work_is_completed}, {NULL, NULL}};
static const luaL_Reg ddp_methods[] = {{"set_sync", ddp_set_sync},
                                       {"buckets", ddp_buckets},
                                       {"timing", ddp_timing},
                                       {"close", ddp_gc},
                                       {NULL, NULL}};

static const luaL_Reg funcs[] = {{"init", l_init},
                                 {"is_initialized", l_is_initialized},
                                 {"rank", l_rank},
                                 {"world_size", l_world_size},
                                 {"local_rank", l_local_rank},
                                 {"local_size", l_local_size},
                                 {"launcher_local_size", l_launcher_local_size},
                                 {"backend", l_backend},
                                 {"finalize", l_finalize},
                                 {"barrier", l_barrier},
                                 {"abort", l_abort},
                                 {"all_reduce", l_all_reduce},
                                 {"broadcast", l_broadcast},
                                 {"all_gather", l_all_gather},
                                 {"reduce_scatter", l_reduce_scatter},
                                 {"_sum_with_grad", l_sum_with_grad},
                                 {"_reducer", l_reducer},
                                 {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                      lua_CFunction tostring)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
        if (tostring) {
            lua_pushcfunction(L, tostring);
            lua_setfield(L, -2, "__tostring");
        }
    }
    lua_pop(L, 1);
}

/* leaves the table on the stack */
void lt_push_distributed(lua_State *L)
{
    new_class(L, LT_WORK, work_methods, work_gc, work_tostring);
    new_class(L, LT_DDP, ddp_methods, ddp_gc, NULL);
    lua_newtable(L);
    luaL_setfuncs(L, funcs, 0);
}
