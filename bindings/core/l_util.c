/* tide.core: argument checking, option tables, errors, GC accounting. */
#include "l_util.h"

#include <math.h>
#include <string.h>

/* ---- tensors on the Lua stack ------------------------------------------ */

td_tensor **lt_new(lua_State *L)
{
    /* one user value: l_autograd.c caches the userdata of t.grad there */
    lt_box *b = lua_newuserdatauv(L, sizeof(lt_box), 1);
    b->t = NULL;
    luaL_setmetatable(L, LT_TENSOR);
    return &b->t;
}

void lt_push_retained(lua_State *L, td_tensor *t)
{
    td_tensor **slot = lt_new(L);
    td_tensor_retain(t);
    *slot = t;
}

static td_tensor *box_tensor(lua_State *L, int arg, lt_box *b)
{
    if (!b->t) luaL_argerror(L, arg, "attempt to use a closed tensor");
    return b->t;
}

td_tensor *lt_check(lua_State *L, int arg)
{
    lt_box *b = luaL_testudata(L, arg, LT_TENSOR);
    if (!b) luaL_typeerror(L, arg, "tensor");
    return box_tensor(L, arg, b);
}

td_tensor *lt_test(lua_State *L, int arg)
{
    lt_box *b = luaL_testudata(L, arg, LT_TENSOR);
    return b ? box_tensor(L, arg, b) : NULL;
}

td_tensor *lt_check_tensor_or_number(lua_State *L, int arg, td_dtype dt, const char *fname)
{
    td_tensor *t = lt_test(L, arg);
    if (t) return t;
    if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "tensor or number");
    double v = lua_tonumber(L, arg);
    td_tensor **slot = lt_new(L);
    lt_check_status(L, td_scalar(v, dt, slot), fname, 0);
    return *slot;
}

void lt_drop(lua_State *L, int idx)
{
    lt_box *b = luaL_testudata(L, idx, LT_TENSOR);
    if (b && b->t) {
        td_tensor_release(b->t);
        b->t = NULL;
    }
}

/* ---- errors ------------------------------------------------------------- */

/* the runtime sometimes starts its message with "fname: "; Lua's wording
 * already names the function */
static const char *strip_name(const char *msg, const char *fname)
{
    size_t n = strlen(fname);
    if (strncmp(msg, fname, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') return msg + n + 2;
    return msg;
}

int lt_fail(lua_State *L, const char *fname, int shift)
{
    const char *msg = td_last_error();
    if (!msg || !*msg) msg = "unknown error";
    msg = strip_name(msg, fname);
    int arg = td_last_error_arg();
    if (arg > 0 && arg + shift <= lua_gettop(L) && arg + shift > 0) {
        /* as luaL_argerror: "bad argument #n to 'fname' (msg)", arguments
         * of a method call counted after self; but where the runtime
         * blames self, "bad argument 'self' to 'fname' (msg)" rather than
         * Lua's "calling 'fname' on bad self", so every such error reads
         * "bad argument" */
        lua_Debug ar;
        const char *name = fname;
        arg += shift;
        lua_pushstring(L, msg);
        td_clear_error();
        msg = lua_tostring(L, -1);
        if (lua_getstack(L, 0, &ar)) {
            lua_getinfo(L, "n", &ar);
            if (ar.name) name = ar.name;
            if (ar.namewhat && strcmp(ar.namewhat, "method") == 0) arg--;
        }
        if (arg == 0) return luaL_error(L, "bad argument 'self' to '%s' (%s)", name, msg);
        return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, msg);
    }
    lua_pushfstring(L, "%s: %s", fname, msg);
    td_clear_error();
    return lua_error(L);
}

void lt_check_status(lua_State *L, td_status st, const char *fname, int shift)
{
    if (st != TD_OK) lt_fail(L, fname, shift);
    lt_account(L);
}

/* ---- arguments ---------------------------------------------------------- */

static int64_t shape_entry(lua_State *L, int arg, int pos, int allow_neg)
{
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint) {
        if (pos > 0)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "shape entry %d must be an integer, got %s", pos,
                                          lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                                         : luaL_typename(L, -1)));
        luaL_argerror(L, arg, "size must be an integer");
    }
    if (v < 0 && !(allow_neg && v == -1)) {
        if (pos > 0)
            luaL_argerror(L, arg, lua_pushfstring(L, "shape entry %d is negative (%I)", pos, v));
        luaL_argerror(L, arg, lua_pushfstring(L, "size must be non-negative, got %I", v));
    }
    lua_pop(L, 1);
    return (int64_t)v;
}

int lt_check_shape(lua_State *L, int arg, int64_t *shape, int allow_varargs, int allow_neg,
                   int *next)
{
    int n = 0;
    if (lua_type(L, arg) == LUA_TTABLE && !lt_test(L, arg)) {
        lua_Integer len = luaL_len(L, arg);
        if (len > TD_MAX_DIMS)
            luaL_argerror(
                L, arg,
                lua_pushfstring(L, "tensors have at most %d dims, got %d", TD_MAX_DIMS, (int)len));
        for (int i = 0; i < (int)len; i++) {
            lua_geti(L, arg, i + 1);
            shape[n++] = shape_entry(L, arg, i + 1, allow_neg);
        }
        if (next) *next = arg + 1;
        return n;
    }
    if (allow_varargs && lua_type(L, arg) == LUA_TNUMBER) {
        int a = arg;
        while (lua_type(L, a) == LUA_TNUMBER) {
            if (n == TD_MAX_DIMS)
                luaL_argerror(L, a,
                              lua_pushfstring(L, "tensors have at most %d dims", TD_MAX_DIMS));
            lua_pushvalue(L, a);
            shape[n++] = shape_entry(L, a, 0, allow_neg);
            a++;
        }
        if (next) *next = a;
        return n;
    }
    return luaL_typeerror(L, arg, allow_varargs ? "shape (table or numbers)" : "shape table");
}

int lt_check_dim(lua_State *L, int arg)
{
    lua_Integer d = luaL_checkinteger(L, arg);
    if (d < -TD_MAX_DIMS - 1 || d > TD_MAX_DIMS)
        luaL_argerror(L, arg, lua_pushfstring(L, "dim %d is out of range", (int)d));
    return (int)d;
}

td_dtype lt_parse_dtype(lua_State *L, int arg, const char *name)
{
    td_dtype dt;
    for (int i = 0; i < TD_NDTYPES; i++)
        if (strcmp(name, td_dtype_name((td_dtype)i)) == 0) return (td_dtype)i;
    if (td_dtype_parse(name, &dt) == TD_OK) return dt; /* aliases the runtime knows */
    td_clear_error();
    return (td_dtype)luaL_argerror(
        L, arg,
        lua_pushfstring(
            L,
            "unknown dtype '%s' (expected float32, float64, bfloat16, float16, int64 or "
            "uint8)",
            name));
}

td_dtype lt_check_dtype(lua_State *L, int arg)
{
    return lt_parse_dtype(L, arg, luaL_checkstring(L, arg));
}

int lt_is_options(lua_State *L, int arg) { return lua_type(L, arg) == LUA_TTABLE; }

int lt_check_options(lua_State *L, int arg, const char *const *allowed)
{
    if (lua_isnoneornil(L, arg)) return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(
                L, arg,
                lua_pushfstring(L, "option names must be strings, got %s", luaL_typename(L, -1)));
        const char *key = lua_tostring(L, -1);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) ok = 1;
        if (!ok) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            lua_pushfstring(L, "unknown option '%s'; known: ", key);
            luaL_addvalue(&b);
            for (const char *const *a = allowed; *a; a++) {
                if (a != allowed) luaL_addstring(&b, ", ");
                luaL_addstring(&b, *a);
            }
            luaL_pushresult(&b);
            luaL_argerror(L, arg, lua_tostring(L, -1));
        }
    }
    return 1;
}

void lt_check_nargs(lua_State *L, int max)
{
    for (int i = lua_gettop(L); i > max; i--)
        if (!lua_isnil(L, i))
            luaL_argerror(
                L, i, lua_pushfstring(L, "unexpected extra argument (a %s)", luaL_typename(L, i)));
}

int lt_opt_field(lua_State *L, int arg, const char *name)
{
    if (lua_type(L, arg) != LUA_TTABLE) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    return lua_getfield(L, arg, name);
}

double lt_opt_number(lua_State *L, int arg, const char *name, double def)
{
    int tp = lt_opt_field(L, arg, name);
    double v = def;
    if (tp == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (tp != LUA_TNIL)
        luaL_argerror(
            L, arg,
            lua_pushfstring(L, "option '%s' must be a number, got %s", name, luaL_typename(L, -1)));
    lua_pop(L, 1);
    return v;
}

td_tensor *lt_opt_tensor(lua_State *L, int arg, const char *name)
{
    int tp = lt_opt_field(L, arg, name);
    td_tensor *t = NULL;
    if (tp != LUA_TNIL) {
        lt_box *b = luaL_testudata(L, -1, LT_TENSOR);
        if (!b)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option '%s' must be a tensor, got %s", name,
                                          luaL_typename(L, -1)));
        if (!b->t)
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' is a closed tensor", name));
        t = b->t;
    }
    lua_pop(L, 1);
    return t;
}

bool lt_opt_channels_last(lua_State *L, int arg, const char *fn)
{
    if (!lua_isnoneornil(L, arg) && lua_type(L, arg) != LUA_TTABLE)
        luaL_argerror(
            L, arg,
            lua_pushfstring(L, "%s: options must be a table, got %s", fn, luaL_typename(L, arg)));
    static const char *const keys[] = {"memory_format", NULL};
    lt_check_options(L, arg, keys); /* a misspelt name must not read as the default */
    int tp = lt_opt_field(L, arg, "memory_format");
    bool cl = false;
    if (tp != LUA_TNIL) {
        const char *v = tp == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (v && strcmp(v, "channels_last") == 0)
            cl = true;
        else if (!v || strcmp(v, "contiguous_format") != 0)
            luaL_argerror(L, arg,
                          lua_pushfstring(L,
                                          "%s: memory_format must be \"contiguous_format\" or "
                                          "\"channels_last\", got %s",
                                          fn, v ? v : luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return cl;
}

td_reduction lt_opt_reduction(lua_State *L, int arg, const char *def, int allow_batchmean)
{
    int tp = lt_opt_field(L, arg, "reduction");
    const char *name = def;
    if (tp == LUA_TSTRING)
        name = lua_tostring(L, -1);
    else if (tp != LUA_TNIL)
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "option 'reduction' must be a string, got %s",
                                      luaL_typename(L, -1)));
    td_reduction r;
    if (td_reduction_parse(name, allow_batchmean, 0, &r) != TD_OK)
        luaL_argerror(L, arg, td_last_error());
    lua_pop(L, 1);
    return r;
}

lua_Integer lt_opt_integer(lua_State *L, int arg, const char *name, lua_Integer def)
{
    int tp = lt_opt_field(L, arg, name);
    lua_Integer v = def;
    int isint = 0;
    if (tp != LUA_TNIL) {
        v = lua_tointegerx(L, -1, &isint);
        if (!isint)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option '%s' must be an integer, got %s", name,
                                          luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return v;
}

int lt_opt_boolean(lua_State *L, int arg, const char *name, int def)
{
    int tp = lt_opt_field(L, arg, name);
    int v = def;
    if (tp == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (tp != LUA_TNIL)
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "option '%s' must be a boolean, got %s", name,
                                      luaL_typename(L, -1)));
    lua_pop(L, 1);
    return v;
}

static const char *const create_keys[] = {"dtype", "requires_grad", "device", NULL};

void lt_check_create_opts(lua_State *L, int arg, lt_create_opts *o, td_dtype def)
{
    o->dtype = def;
    o->has_dtype = 0;
    o->requires_grad = 0;
    o->device = TD_DEVICE_CPU;
    o->has_device = 0;
    if (lua_type(L, arg) == LUA_TSTRING) {
        o->dtype = lt_check_dtype(L, arg);
        o->has_dtype = 1;
        return;
    }
    if (!lt_check_options(L, arg, create_keys)) return;
    if (lt_opt_field(L, arg, "dtype") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option 'dtype' must be a string, got %s",
                                          luaL_typename(L, -1)));
        o->dtype = lt_parse_dtype(L, arg, lua_tostring(L, -1));
        o->has_dtype = 1;
    }
    lua_pop(L, 1);
    if (lt_opt_field(L, arg, "device") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option 'device' must be a string, got %s",
                                          luaL_typename(L, -1)));
        o->device = lt_parse_device(L, arg, lua_tostring(L, -1));
        o->has_device = 1;
    }
    lua_pop(L, 1);
    o->requires_grad = lt_opt_boolean(L, arg, "requires_grad", 0);
}

void lt_apply_create_opts(lua_State *L, const lt_create_opts *o, int arg)
{
    if (o->has_device) lt_move_top(L, o->device, "device"); /* made on the CPU, then moved */
    if (!o->requires_grad) return;
    td_tensor *t = lt_check(L, -1);
    if (td_set_requires_grad(t, true) != TD_OK) {
        lua_pushstring(L, td_last_error());
        td_clear_error();
        luaL_argerror(L, arg, lua_tostring(L, -1));
    }
}

/* ---- memory accounting --------------------------------------------------
 * Lua's collector sees a tensor userdata as a few bytes, so a loop making
 * large tensors would grow without bound. As Torch7 did, we count the bytes
 * of storage the runtime allocated since the last collection; past a
 * threshold that grows with the live bytes (max(64 MiB, live / 8)) we run
 * a collection step, and a full cycle when twice past it. Storage that
 * only dead Lua values still hold (a step's activations, once backward
 * let them go) counts in the peak until the collector runs: at live / 2,
 * a resnet18 step at batch 64 peaked at 957 MB of RSS, at live / 8 at 789
 * MB, with no step time we could tell apart (tide's Lua heap is a few
 * hundred KB, a full cycle well under a millisecond). */

#define LT_GC_MIN ((int64_t)64 << 20)

static int64_t pending_bytes;

/* device memory is counted the same way, against the live device bytes,
 * with a lower floor: a GPU has less of it, and it is never swapped */
#define LT_GC_MIN_DEVICE ((int64_t)32 << 20)

static int64_t pending_device;

static void account_devices(lua_State *L)
{
    pending_device += td_cuda_memory_take_allocated();
    if (pending_device <= LT_GC_MIN_DEVICE) return;
    int64_t live = 0;
    for (int i = 0, n = td_cuda_device_count(); i < n; i++) {
        td_cuda_memory_stats ms;
        if (td_cuda_memory(i, &ms) == TD_OK) live += ms.live_bytes;
    }
    int64_t threshold = live / 2 > LT_GC_MIN_DEVICE ? live / 2 : LT_GC_MIN_DEVICE;
    if (pending_device <= threshold) return;
    if (pending_device > 2 * threshold) {
        lua_gc(L, LUA_GCCOLLECT);
        pending_device = 0;
    } else if (lua_gc(L, LUA_GCSTEP, (int)(pending_device >> 10))) {
        pending_device = 0;
    }
}

void lt_account(lua_State *L)
{
    if (td_devices_used()) account_devices(L);
    pending_bytes += td_memory_take_allocated();
    td_memory_stats ms;
    td_memory(&ms);
    int64_t threshold = ms.live_bytes / 8 > LT_GC_MIN ? ms.live_bytes / 8 : LT_GC_MIN;
    if (pending_bytes <= threshold) return;
    if (pending_bytes > 2 * threshold) {
        lua_gc(L, LUA_GCCOLLECT);
        pending_bytes = 0;
    } else if (lua_gc(L, LUA_GCSTEP, (int)(pending_bytes >> 10))) {
        pending_bytes = 0; /* the step finished a cycle */
    }
}
