/* tide.core: data readers, the DataLoader's C half and the generator that
 * loaders and samplers own. The Lua half (bindings/tide/data.lua) checks
 * options and calls these with plain values; the leading underscore marks
 * them as internal. */
#include "l_util.h"

#include <stdlib.h>
#include <string.h>

#define LT_LOADER "tide.data.Loader"
#define LT_RNG    "tide.data.Generator"

/* _mnist(dir, split, hint, fname) / _cifar10(...) -> images, labels */
static int read_pair(lua_State *L, td_status (*load)(const char *, const char *, const char *,
                                                     td_tensor **, td_tensor **))
{
    const char *dir = luaL_checkstring(L, 1), *split = luaL_checkstring(L, 2);
    const char *hint = luaL_optstring(L, 3, NULL), *fname = luaL_optstring(L, 4, "data");
    td_tensor **im = lt_new(L), **lb = lt_new(L);
    td_tensor *a, *b;
    td_status st = load(dir, split, hint, &a, &b);
    if (st == TD_OK) {
        *im = a;
        *lb = b;
    }
    lt_check_status(L, st, fname, -100); /* never blame an argument */
    return 2;
}

static int l_mnist(lua_State *L) { return read_pair(L, td_mnist_load); }
static int l_cifar10(lua_State *L) { return read_pair(L, td_cifar10_load); }

/* _idx_read(path) -> uint8 tensor of the file's dims */
static int l_idx_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uint8_t *buf;
    size_t n;
    td_tensor **slot = lt_new(L);
    td_status st = td_read_file(path, &buf, &n);
    if (st == TD_OK) {
        st = td_idx_parse(buf, n, path, slot);
        free(buf);
    }
    lt_check_status(L, st, "idx_read", -100);
    return 1;
}

/* ---- generator -------------------------------------------------------- */

static td_rng *check_rng(lua_State *L, int arg) { return luaL_checkudata(L, arg, LT_RNG); }

/* _generator(seed or nil): seeded from tide's generator when nil */
static int l_generator(lua_State *L)
{
    uint64_t seed = lua_isnoneornil(L, 1) ? td_random_u64() : (uint64_t)luaL_checkinteger(L, 1);
    td_rng *r = lua_newuserdatauv(L, sizeof *r, 0);
    td_rng_seed(r, seed);
    luaL_setmetatable(L, LT_RNG);
    return 1;
}

/* g:permutation(n) -> int64 tensor; g:permutation(n, true) -> arange */
static int rng_permutation(lua_State *L)
{
    td_rng *r = check_rng(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "size must be non-negative");
    int identity = lua_toboolean(L, 3);
    td_tensor **slot = lt_new(L);
    int64_t shape = n;
    lt_check_status(L, td_empty(1, &shape, TD_INT64, slot), "permutation", 0);
    int64_t *p = td_data_ptr(*slot);
    if (identity)
        for (int64_t i = 0; i < n; i++) p[i] = i;
    else
        td_rng_permutation(r, n, p);
    return 1;
}

/* g:key() -> a fresh integer (the seed of an epoch's random transforms) */
static int rng_key(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)td_rng_next(check_rng(L, 1)));
    return 1;
}

/* g:weighted(weights float64 tensor, num, replacement) -> int64 tensor */
static int rng_weighted(lua_State *L)
{
    td_rng *r = check_rng(L, 1);
    td_tensor *w = lt_check(L, 2);
    lua_Integer num = luaL_checkinteger(L, 3);
    int repl = lua_toboolean(L, 4);
    if (w->dtype != TD_FLOAT64 || w->ndim != 1 || !td_is_contiguous(w))
        return luaL_argerror(L, 2, "weights must be a contiguous float64 vector");
    luaL_argcheck(L, num >= 0, 3, "num_samples must be non-negative");
    td_tensor **slot = lt_new(L);
    int64_t shape = num;
    lt_check_status(L, td_empty(1, &shape, TD_INT64, slot), "WeightedSampler", 0);
    lt_check_status(
        L, td_weighted_sample(r, td_data_ptr(w), w->shape[0], num, repl, td_data_ptr(*slot)),
        "WeightedSampler", -100);
    return 1;
}

static const luaL_Reg rng_methods[] = {
    {"permutation", rng_permutation},
    {"key", rng_key},
    {"weighted", rng_weighted},
    {NULL, NULL},
};

/* ---- loader ----------------------------------------------------------- */

typedef struct {
    td_loader *l;
} loader_box;

static loader_box *check_loader(lua_State *L, int arg)
{
    loader_box *b = luaL_checkudata(L, arg, LT_LOADER);
    if (!b->l) luaL_argerror(L, arg, "the loader is closed");
    return b;
}

static double num_field(lua_State *L, int idx, const char *k, double def)
{
    double v = def;
    if (lua_getfield(L, idx, k) != LUA_TNIL) v = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* one transform from {kind = ..., mean = {...}, std = {...}, h, w, padding, p} */
static void read_transform(lua_State *L, int idx, td_transform *tf)
{
    memset(tf, 0, sizeof *tf);
    lua_getfield(L, idx, "kind");
    const char *kind = luaL_checkstring(L, -1);
    if (strcmp(kind, "normalize") == 0) {
        tf->kind = TD_TF_NORMALIZE;
        lua_getfield(L, idx, "mean");
        lua_getfield(L, idx, "std");
        int n = (int)luaL_len(L, -2);
        if (n < 1 || n > TD_TF_MAX_CHANNELS || luaL_len(L, -1) != n)
            luaL_error(L, "normalize: mean and std need the same length, 1 to %d",
                       TD_TF_MAX_CHANNELS);
        tf->nch = n;
        for (int c = 0; c < n; c++) {
            lua_geti(L, -2, c + 1);
            tf->mean[c] = luaL_checknumber(L, -1);
            lua_geti(L, -2, c + 1);
            tf->std[c] = luaL_checknumber(L, -1);
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    } else if (strcmp(kind, "random_crop") == 0) {
        tf->kind = TD_TF_RANDOM_CROP;
        tf->size_h = (int64_t)num_field(L, idx, "h", 0);
        tf->size_w = (int64_t)num_field(L, idx, "w", 0);
        tf->padding = (int64_t)num_field(L, idx, "padding", 0);
    } else if (strcmp(kind, "random_hflip") == 0) {
        tf->kind = TD_TF_RANDOM_HFLIP;
        tf->p = num_field(L, idx, "p", 0.5);
    } else {
        luaL_error(L, "unknown transform kind '%s'", kind);
    }
    lua_pop(L, 1);
}

/* _loader(images, labels, batch_size, drop_last, transforms list or nil,
 *         device string or nil, pin_memory) */
static int l_loader(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    td_loader_opts o = {0};
    o.batch_size = luaL_checkinteger(L, 3);
    o.drop_last = lua_toboolean(L, 4);
    td_transform tfs[32];
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        lua_Integer n = luaL_len(L, 5);
        if (n > 32) return luaL_error(L, "DataLoader: at most 32 built-in transforms");
        for (int i = 0; i < (int)n; i++) {
            lua_geti(L, 5, i + 1);
            read_transform(L, lua_gettop(L), &tfs[i]);
            lua_pop(L, 1);
        }
        o.n_transforms = (int)n;
        o.transforms = tfs;
    }
    if (!lua_isnoneornil(L, 6))
        lt_check_status(L, td_device_parse(luaL_checkstring(L, 6), &o.device), "DataLoader", -100);
    o.pin_memory = lua_toboolean(L, 7);
    loader_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->l = NULL;
    luaL_setmetatable(L, LT_LOADER);
    td_loader *l;
    lt_check_status(L, td_loader_new(x, y, &o, &l), "DataLoader", -100);
    b->l = l;
    return 1;
}

/* loader:start(order int64 tensor, key) */
static int loader_start(lua_State *L)
{
    loader_box *b = check_loader(L, 1);
    td_tensor *order = lt_check(L, 2);
    lua_Integer key = luaL_checkinteger(L, 3);
    if (order->dtype != TD_INT64 || order->ndim != 1 || !td_is_contiguous(order))
        return luaL_argerror(L, 2, "the epoch order must be a contiguous int64 vector");
    lt_check_status(L, td_loader_start(b->l, td_data_ptr(order), order->shape[0], (uint64_t)key),
                    "DataLoader", -100);
    return 0;
}

/* loader:next() -> x, y or nothing at the end of the epoch */
static int loader_next(lua_State *L)
{
    loader_box *b = check_loader(L, 1);
    td_tensor **xs = lt_new(L), **ys = lt_new(L);
    td_tensor *x, *y;
    td_status st = td_loader_next(b->l, &x, &y);
    if (st == TD_OK && x) {
        *xs = x;
        *ys = y;
    }
    lt_check_status(L, st, "DataLoader", -100);
    return x ? 2 : 0;
}

static int loader_num_batches(lua_State *L)
{
    loader_box *b = check_loader(L, 1);
    lua_pushinteger(L, (lua_Integer)td_loader_num_batches(b->l, luaL_checkinteger(L, 2)));
    return 1;
}

static int loader_stop(lua_State *L)
{
    loader_box *b = luaL_checkudata(L, 1, LT_LOADER);
    if (b->l) td_loader_stop(b->l);
    return 0;
}

static int loader_gc(lua_State *L)
{
    loader_box *b = luaL_checkudata(L, 1, LT_LOADER);
    td_loader_free(b->l);
    b->l = NULL;
    return 0;
}

static const luaL_Reg loader_methods[] = {
    {"start", loader_start}, {"next", loader_next}, {"num_batches", loader_num_batches},
    {"stop", loader_stop},   {NULL, NULL},
};

static void make_meta(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        if (gc) {
            lua_pushcfunction(L, gc);
            lua_setfield(L, -2, "__gc");
            lua_pushcfunction(L, gc);
            lua_setfield(L, -2, "__close");
        }
    }
    lua_pop(L, 1);
}

static void ensure_metas(lua_State *L)
{
    make_meta(L, LT_LOADER, loader_methods, loader_gc);
    make_meta(L, LT_RNG, rng_methods, NULL);
}

static int l_data_init(lua_State *L)
{
    ensure_metas(L);
    return 0;
}

const luaL_Reg lt_data_funcs[] = {
    {"_data_init", l_data_init},
    {"_mnist", l_mnist},
    {"_cifar10", l_cifar10},
    {"_idx_read", l_idx_read},
    {"_generator", l_generator},
    {"_loader", l_loader},
    {NULL, NULL},
};
