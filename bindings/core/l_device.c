/* tide.core: devices. Parsing "cpu" / "cuda" / "cuda:N", moving tensors
 * (t:to, t:cuda, t:cpu), the tide.cuda table, and the gate that keeps
 * CUDA tensors away from ops whose CUDA kernels do not exist yet.
 *
 * The gate: every function of tide.core is registered through
 * lt_register. Those named in `aware` below run through the runtime's
 * device-aware paths and are registered as they are; those in `to_host`
 * read every element on the host (totable, printing), so CUDA tensors
 * among their arguments are copied to the CPU first; every other one is
 * wrapped, and refuses CUDA tensors (as arguments, or one level down in a
 * table argument: option tables, parameter lists) with "NAME is not
 * implemented on cuda yet". A new function is thus safe by default. Until
 * a tensor is made on a device the wrapper costs one flag test. */
#include "l_util.h"

#include <string.h>

/* ---- device names --------------------------------------------------------- */

td_device lt_parse_device(lua_State *L, int arg, const char *s)
{
    td_device d;
    if (td_device_parse(s, &d) != TD_OK || td_device_check(d) != TD_OK) {
        lua_pushstring(L, td_last_error());
        td_clear_error();
        luaL_argerror(L, arg, lua_tostring(L, -1));
    }
    return d;
}

void lt_check_device(lua_State *L, int arg, const char *device)
{
    (void)lt_parse_device(L, arg, device);
}

int lt_is_device_name(const char *s) { return strcmp(s, "cpu") == 0 || strncmp(s, "cuda", 4) == 0; }

/* replace the tensor at the top of the stack by its copy on dev */
void lt_move_top(lua_State *L, td_device dev, const char *fname)
{
    td_tensor *t = lt_check(L, -1);
    if (td_device_eq(td_device_of(t), dev)) return;
    td_tensor **slot = lt_new(L);
    lt_check_status(L, td_to_device(t, dev, slot), fname, 0);
    lua_replace(L, -2);
}

/* ---- tensor methods ---------------------------------------------------------- */

static int d_device(lua_State *L)
{
    char buf[32];
    lua_pushstring(L, td_device_str(td_device_of(lt_check(L, 1)), buf, sizeof buf));
    return 1;
}

static int move(lua_State *L, td_device dev, const char *fname)
{
    lt_check(L, 1);
    lua_settop(L, 1);
    lt_move_top(L, dev, fname);
    return 1;
}

/* t:cpu() */
static int d_cpu(lua_State *L) { return move(L, TD_DEVICE_CPU, "cpu"); }

/* t:cuda([device]): device 0, N, or "cuda:N" */
static int d_cuda(lua_State *L)
{
    lt_check(L, 1);
    td_device d = {TD_CUDA, 0};
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer i = luaL_checkinteger(L, 2);
        if (i < 0 || i > 1023) luaL_argerror(L, 2, "device index out of range");
        d.index = (int)i;
        char buf[32];
        lt_check_device(L, 2, td_device_str(d, buf, sizeof buf));
    } else if (!lua_isnoneornil(L, 2)) {
        d = lt_parse_device(L, 2, luaL_checkstring(L, 2));
    } else if (td_device_check(d) != TD_OK) {
        lt_fail(L, "cuda", 0); /* says why: no CUDA in this build, or no GPU here */
    }
    return move(L, d, "cuda");
}

/* the rounding option of t:to: false for "nearest" (the default), true
 * for "stochastic" (float32 to bfloat16 / float16 only) */
static int check_rounding(lua_State *L, int arg)
{
    if (lt_opt_field(L, arg, "rounding") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    const char *r = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING || (strcmp(r, "nearest") && strcmp(r, "stochastic")))
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "rounding must be \"nearest\" or \"stochastic\", got %s",
                                      lua_type(L, -1) == LUA_TSTRING ? r : luaL_typename(L, -1)));
    int stochastic = strcmp(r, "stochastic") == 0;
    lua_pop(L, 1);
    return stochastic;
}

/* t:to("float64" | "cuda" | "cuda:1" | "cpu" | {dtype = , device = , rounding = }), or
 * t:to("bfloat16", {rounding = "stochastic"}) */
static int d_to(lua_State *L)
{
    static const char *const keys[] = {"dtype", "device", "rounding", NULL};
    static const char *const after_keys[] = {"rounding", NULL};
    td_tensor *x = lt_check(L, 1);
    td_dtype dt = x->dtype;
    td_device dev = td_device_of(x);
    int stochastic = 0, oarg = 2;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *s = lua_tostring(L, 2);
        if (lt_is_device_name(s))
            dev = lt_parse_device(L, 2, s);
        else
            dt = lt_check_dtype(L, 2);
        oarg = 3;
        lt_check_options(L, 3, after_keys);
        stochastic = check_rounding(L, 3);
    } else {
        lt_check_options(L, 2, keys);
        if (lt_opt_field(L, 2, "device") == LUA_TSTRING)
            dev = lt_parse_device(L, 2, lua_tostring(L, -1));
        lua_pop(L, 1);
        if (lt_opt_field(L, 2, "dtype") == LUA_TSTRING)
            dt = lt_parse_dtype(L, 2, lua_tostring(L, -1));
        lua_pop(L, 1);
        stochastic = check_rounding(L, 2);
    }
    if (lua_gettop(L) > oarg && !lua_isnil(L, oarg + 1))
        luaL_argerror(L, oarg + 1, "no argument expected after the options");
    if (stochastic && !td_dtype_is_lowp(dt))
        luaL_argerror(L, oarg,
                      lua_pushfstring(L,
                                      "rounding = \"stochastic\" is for bfloat16 and float16 "
                                      "results, not %s",
                                      td_dtype_name(dt)));
    lua_settop(L, 1);
    if (stochastic && x->dtype != dt) { /* rounded on the cpu, then moved */
        lt_move_top(L, TD_DEVICE_CPU, "to");
        td_tensor *h = lt_check(L, -1);
        LT_CALL(L, td_to_dtype_stochastic(h, dt, lt_new(L)), "to");
        lt_move_top(L, dev, "to");
        return 1;
    }
    lt_move_top(L, dev, "to");
    td_tensor *y = lt_check(L, -1);
    if (y->dtype != dt) LT_CALL(L, td_to_dtype(y, dt, lt_new(L)), "to");
    return 1;
}

const luaL_Reg lt_device_methods[] = {
    {"device", d_device}, {"cpu", d_cpu}, {"cuda", d_cuda}, {"to", d_to}, {NULL, NULL},
};

/* ---- tide.cuda ------------------------------------------------------------------- */

static int c_is_available(lua_State *L)
{
    lua_pushboolean(L, td_cuda_is_available());
    return 1;
}

static int c_device_count(lua_State *L)
{
    lua_pushinteger(L, td_cuda_device_count());
    return 1;
}

static int c_synchronize(lua_State *L)
{
    LT_CALL(L, td_cuda_synchronize(), "synchronize");
    return 0;
}

static int c_empty_cache(lua_State *L)
{
    (void)L;
    td_cuda_empty_cache();
    return 0;
}

/* memory([device]) -> {live, peak, total, reserved, free, capacity} */
int lt_push_cuda_memory(lua_State *L, int arg, td_device d)
{
    td_cuda_memory_stats ms;
    if (td_cuda_memory(d.index, &ms) != TD_OK) {
        lua_pushstring(L, td_last_error());
        td_clear_error();
        luaL_argerror(L, arg, lua_tostring(L, -1));
    }
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, (lua_Integer)ms.live_bytes);
    lua_setfield(L, -2, "live");
    lua_pushinteger(L, (lua_Integer)ms.peak_bytes);
    lua_setfield(L, -2, "peak");
    lua_pushinteger(L, (lua_Integer)ms.allocated_total);
    lua_setfield(L, -2, "total");
    lua_pushinteger(L, (lua_Integer)ms.reserved_bytes);
    lua_setfield(L, -2, "reserved");
    lua_pushinteger(L, (lua_Integer)ms.free_bytes);
    lua_setfield(L, -2, "free");
    lua_pushinteger(L, (lua_Integer)ms.total_bytes);
    lua_setfield(L, -2, "capacity");
    return 1;
}

static int c_memory(lua_State *L)
{
    td_device d = lt_parse_device(L, 1, luaL_optstring(L, 1, "cuda"));
    if (d.type != TD_CUDA) luaL_argerror(L, 1, "expected a CUDA device");
    return lt_push_cuda_memory(L, 1, d);
}

const luaL_Reg lt_cuda_funcs[] = {
    {"is_available", c_is_available},
    {"device_count", c_device_count},
    {"synchronize", c_synchronize},
    {"empty_cache", c_empty_cache},
    {"memory", c_memory},
    {NULL, NULL},
};

/* ---- out of memory: one full collection before the retry -------------------------- */

static void collect(void *ud)
{
    lua_State *L = ud;
    lua_gc(L, LUA_GCCOLLECT);
}

void lt_install_oom_handler(lua_State *L)
{
    /* the main thread: it outlives every coroutine that might allocate */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    td_set_oom_handler(collect, lua_tothread(L, -1));
    lua_pop(L, 1);
}

/* ---- the gate ------------------------------------------------------------------------- */

/* device-aware: runtime paths that follow the tensors' device */
static const char *const aware[] = {
    /* l_tensor.c */
    "shape",
    "size",
    "stride",
    "dim",
    "numel",
    "dtype",
    "device",
    "is_contiguous",
    "storage_offset",
    "element_size",
    "is_floating_point",
    "get",
    "set",
    "item",
    "close",
    "__gc",
    "__close",
    "__index",
    "__newindex",
    /* l_ops.c */
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "clamp",
    "add_",
    "sub_",
    "mul_",
    "div_",
    "fill_",
    "zero_",
    "copy_",
    "sum",
    "mean",
    "prod",
    "max",
    "min",
    "argmax",
    "argmin",
    "var",
    "std",
    "norm",
    "softmax",
    "log_softmax",
    /* l_reduce.c */
    "all",
    "any",
    "amax",
    "amin",
    "einsum",
    "logsumexp",
    "cumsum",
    "cumprod",
    "one_hot",
    "matmul",
    "mm",
    "bmm",
    "addmm",
    "__add",
    "__sub",
    "__mul",
    "__div",
    "__pow",
    "__unm",
    /* l_shape.c */
    "view",
    "reshape",
    "expand",
    "view_as",
    "expand_as",
    "transpose",
    "permute",
    "t",
    "narrow",
    "select",
    "squeeze",
    "unsqueeze",
    "flatten",
    "contiguous",
    "clone",
    "float",
    "double",
    "long",
    "byte",
    "bfloat16",
    "half",
    "cpu",
    "cuda",
    "to",
    "type",
    "split",
    "chunk",
    "masked_fill",
    "cat",
    "stack",
    "where",
    /* l_numeric.c: op table kernels and nan_to_num's */
    "round",
    "nan_to_num",
    "isclose",
    "allclose",
    "equal",
    /* l_autograd.c */
    "backward",
    "requires_grad_",
    "zero_grad",
    "detach",
    "is_grad_enabled",
    "set_grad_enabled",
    "no_grad",
    "enable_grad",
    /* l_create.c: *_like make their result on the tensor's device */
    "zeros_like",
    "ones_like",
    "full_like",
    "rand_like",
    "randn_like",
    /* l_layers.c: composed of the ops above */
    "linear",
    /* l_conv.c, l_layers.c: cuDNN convolution and our batch norm, pooling and dropout kernels */
    "conv2d",
    "batch_norm",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "dropout",
    /* l_module.c */
    "is_tensor",
    "memory",
    /* l_shape.c, l_layers.c, l_optim.c: CUDA kernels (the losses ask the loss table, l_loss.c) */
    "_sgd_step",
    "_adam_step",
    "_rmsprop_step",
    "index_select",
    "gather",
    "scatter",
    "scatter_add",
    "index_add",
    "embedding",
    "layer_norm",
    "leaky_relu",
    NULL,
};

/* read every element on the host */
static const char *const to_host[] = {"totable", "tolist", "__tostring", NULL};

/* Of the device-aware ones, those whose CUDA kernels take bfloat16 and
 * float16 (docs/precision.md): elementwise and reductions (the op table's
 * rows too, registered elsewhere), element moves, conversions. Every other
 * device-aware one refuses a low-precision CUDA tensor with "NAME:
 * bfloat16 tensors on cuda are not supported yet", as `gated` refuses
 * CUDA tensors: a function added to `aware` is safe by default. */
static const char *const lowp_cuda[] = {
    "shape", "size", "stride", "dim", "numel", "dtype", "device", "is_contiguous", "storage_offset",
    "element_size", "is_floating_point", "get", "set", "item", "close", "__gc", "__close",
    "__index", "__newindex", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne",
    "lt", "le", "gt", "ge", "clamp", "add_", "sub_", "mul_", "div_", "fill_", "zero_", "copy_",
    "sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std", "norm", "softmax",
    "log_softmax", "all", "any", "amax", "amin", "logsumexp", "cumsum", "cumprod", "__add", "__sub",
    "__mul", "__div", "__pow", "__unm", "view", "reshape", "expand", "view_as", "expand_as",
    "transpose", "permute", "t", "narrow", "select", "squeeze", "unsqueeze", "flatten",
    "contiguous", "clone", "float", "double", "long", "byte", "bfloat16", "half", "cpu", "cuda",
    "to", "type", "split", "chunk", "masked_fill", "cat", "stack", "where", "round", "equal",
    "nan_to_num", "isclose", "allclose", "backward", "requires_grad_", "zero_grad", "detach",
    "is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad", "zeros_like", "ones_like",
    "full_like", "rand_like", "randn_like", "is_tensor", "memory", "index_select", "gather",
    "scatter", "scatter_add", "index_add",
    /* products: cuBLAS GemmEx in bfloat16 / float16, float32 compute (kernels/cuda/backend.c) */
    "matmul", "mm", "bmm", "addmm", "linear", "einsum", NULL};

static int listed(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0) return 1;
    return 0;
}

static int off_cpu(lua_State *L, int idx)
{
    lt_box *b = luaL_testudata(L, idx, LT_TENSOR);
    return b && b->t && td_device_of(b->t).type != TD_CPU;
}

static int any_off_cpu(lua_State *L)
{
    int top = lua_gettop(L);
    for (int i = 1; i <= top; i++) {
        if (off_cpu(L, i)) return 1;
        if (lua_type(L, i) != LUA_TTABLE) continue;
        lua_pushnil(L);
        while (lua_next(L, i)) {
            int hit = off_cpu(L, -1);
            lua_pop(L, 1);
            if (hit) {
                lua_pop(L, 1);
                return 1;
            }
        }
    }
    return 0;
}

static int lowp_off_cpu(lua_State *L, int idx)
{
    lt_box *b = luaL_testudata(L, idx, LT_TENSOR);
    return b && b->t && td_device_of(b->t).type != TD_CPU && td_dtype_is_lowp(b->t->dtype)
               ? (int)b->t->dtype + 1
               : 0;
}

/* the dtype + 1 of a low-precision CUDA tensor among the arguments (or one
 * level down in a table argument), else 0 */
static int any_lowp_off_cpu(lua_State *L)
{
    int top = lua_gettop(L);
    for (int i = 1; i <= top; i++) {
        int hit = lowp_off_cpu(L, i);
        if (hit) return hit;
        if (lua_type(L, i) != LUA_TTABLE) continue;
        lua_pushnil(L);
        while (lua_next(L, i)) {
            hit = lowp_off_cpu(L, -1);
            lua_pop(L, 1);
            if (hit) {
                lua_pop(L, 1);
                return hit;
            }
        }
    }
    return 0;
}

static int lowp_gated(lua_State *L)
{
    const luaL_Reg *r = lua_touserdata(L, lua_upvalueindex(1));
    int hit = td_devices_used() ? any_lowp_off_cpu(L) : 0;
    if (hit)
        return luaL_error(L,
                          "%s: %s tensors on cuda are not supported yet (convert with :float() "
                          "or move with :cpu())",
                          r->name, td_dtype_name((td_dtype)(hit - 1)));
    return r->func(L);
}

static int gated(lua_State *L)
{
    const luaL_Reg *r = lua_touserdata(L, lua_upvalueindex(1));
    if (td_devices_used() && any_off_cpu(L))
        return luaL_error(L, "%s is not implemented on cuda yet", r->name);
    return r->func(L);
}

static int hosted(lua_State *L)
{
    const luaL_Reg *r = lua_touserdata(L, lua_upvalueindex(1));
    if (td_devices_used()) {
        int top = lua_gettop(L);
        for (int i = 1; i <= top; i++) {
            if (!off_cpu(L, i)) continue;
            lua_pushvalue(L, i);
            lt_move_top(L, TD_DEVICE_CPU, r->name);
            lua_replace(L, i);
        }
    }
    return r->func(L);
}

void lt_push_registered(lua_State *L, const luaL_Reg *r)
{
    if (listed(aware, r->name) && listed(lowp_cuda, r->name)) {
        lua_pushcfunction(L, r->func);
    } else if (listed(aware, r->name)) {
        lua_pushlightuserdata(L, (void *)r);
        lua_pushcclosure(L, lowp_gated, 1);
    } else {
        lua_pushlightuserdata(L, (void *)r);
        lua_pushcclosure(L, listed(to_host, r->name) ? hosted : gated, 1);
    }
}

void lt_register(lua_State *L, const luaL_Reg *r)
{
    for (; r->name; r++) {
        if (!r->func) continue;
        lt_push_registered(L, r);
        lua_setfield(L, -2, r->name);
    }
}
