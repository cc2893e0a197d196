/* tide.core: views, copies and dtype conversions, joining and splitting,
 * index ops. */
#include "l_dims.h"
#include "tide/tensor_args.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sizes ---------------------------------------------------------------- */

/* t:shape(), t:size() and t:stride() return plain sequences, so indexing,
   #, ipairs, table.concat and passing them on as a shape work as on any
   table; the metatable only adds what a bare table lacks: print shows
   {2, 3} instead of an address, and == compares the sizes, as torch.Size
   does, instead of the identities. */
#define LT_SHAPE "tide.Shape"

static int shape_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '{');
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1) luaL_addstring(&b, ", ");
        lua_geti(L, 1, i);
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
    return 1;
}

static int shape_eq(lua_State *L)
{
    int same = lua_istable(L, 1) && lua_istable(L, 2) && luaL_len(L, 1) == luaL_len(L, 2);
    for (lua_Integer i = 1, n = same ? luaL_len(L, 1) : 0; i <= n && same; i++) {
        lua_geti(L, 1, i);
        lua_geti(L, 2, i);
        same = lua_compare(L, -1, -2, LUA_OPEQ);
        lua_pop(L, 2);
    }
    lua_pushboolean(L, same);
    return 1;
}

static void push_sizes(lua_State *L, int n, const int64_t *v)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    if (luaL_newmetatable(L, LT_SHAPE)) {
        lua_pushcfunction(L, shape_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, shape_eq);
        lua_setfield(L, -2, "__eq");
    }
    lua_setmetatable(L, -2);
}

/* dim argument arg of fname, wrapped into [0, ndim) */
static int size_dim(lua_State *L, td_tensor *t, int arg, const char *fname)
{
    int d = lt_check_dim(L, arg), w;
    if (td_wrap_dim(d, t->ndim, arg, &w) != TD_OK) lt_fail(L, fname, 0);
    if (t->ndim == 0) luaL_argerror(L, arg, "a 0-dim tensor has no dims");
    return w;
}

static int s_shape(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    push_sizes(L, t->ndim, t->shape);
    return 1;
}

static int s_size(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    if (lua_isnoneornil(L, 2))
        push_sizes(L, t->ndim, t->shape);
    else
        lua_pushinteger(L, (lua_Integer)t->shape[size_dim(L, t, 2, "size")]);
    return 1;
}

static int s_stride(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    if (lua_isnoneornil(L, 2))
        push_sizes(L, t->ndim, t->stride);
    else
        lua_pushinteger(L, (lua_Integer)t->stride[size_dim(L, t, 2, "stride")]);
    return 1;
}

/* ---- views ---------------------------------------------------------------- */

typedef td_status (*shape_fn)(td_tensor *, int, const int64_t *, td_tensor **);

/* fname(x, shape) with shape a table or numbers; -1 infers (view/reshape) */
static int reshaped(lua_State *L, shape_fn fn, int allow_neg, const char *fname)
{
    td_tensor *x = lt_check(L, 1);
    int64_t shape[TD_MAX_DIMS];
    int next = 0;
    int n = lt_check_shape(L, 2, shape, 1, allow_neg, &next);
    lt_no_more(L, next - 1, "the shape");
    LT_CALL(L, fn(x, n, shape, lt_new(L)), fname);
    return 1;
}

static int s_view(lua_State *L) { return reshaped(L, td_view, 1, "view"); }
static int s_reshape(lua_State *L) { return reshaped(L, td_reshape, 1, "reshape"); }
static int s_expand(lua_State *L) { return reshaped(L, td_expand, 1, "expand"); }

/* view_as(x, other), expand_as(x, other) */
static int s_view_as(lua_State *L)
{
    lt_no_more(L, 2, "other");
    td_tensor *x = lt_check(L, 1), *o = lt_check(L, 2);
    LT_CALL(L, td_view(x, o->ndim, o->shape, lt_new(L)), "view_as");
    return 1;
}

static int s_expand_as(lua_State *L)
{
    lt_no_more(L, 2, "other");
    td_tensor *x = lt_check(L, 1), *o = lt_check(L, 2);
    LT_CALL(L, td_expand(x, o->ndim, o->shape, lt_new(L)), "expand_as");
    return 1;
}

static int s_transpose(lua_State *L)
{
    lt_no_more(L, 3, "dim1");
    td_tensor *x = lt_check(L, 1);
    int d0 = lt_check_dim(L, 2), d1 = lt_check_dim(L, 3);
    LT_CALL(L, td_transpose(x, d0, d1, lt_new(L)), "transpose");
    return 1;
}

/* permute(x, {dims}) or permute(x, d0, d1, ...) */
static int s_permute(lua_State *L)
{
    td_tensor *x = lt_check(L, 1);
    int64_t dims64[TD_MAX_DIMS];
    int dims[TD_MAX_DIMS];
    if (lua_type(L, 2) == LUA_TTABLE) {
        lt_no_more(L, 2, "the dims");
        lua_Integer len = luaL_len(L, 2);
        if (len > TD_MAX_DIMS) luaL_argerror(L, 2, "too many dims");
        for (int i = 0; i < (int)len; i++) {
            lua_geti(L, 2, i + 1);
            int ok;
            dims64[i] = (int64_t)lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_argerror(L, 2, "dims must be integers");
            lua_pop(L, 1);
        }
        for (int i = 0; i < (int)len; i++) dims[i] = (int)dims64[i];
        LT_CALL(L, td_permute(x, (int)len, dims, lt_new(L)), "permute");
        return 1;
    }
    int n = lua_gettop(L) - 1;
    if (n > TD_MAX_DIMS) luaL_argerror(L, 2 + TD_MAX_DIMS, "too many dims");
    for (int i = 0; i < n; i++) dims[i] = lt_check_dim(L, i + 2);
    LT_CALL(L, td_permute(x, n, dims, lt_new(L)), "permute");
    return 1;
}

static int s_t(lua_State *L)
{
    lt_no_more(L, 1, "the tensor");
    LT_CALL(L, td_t(lt_check(L, 1), lt_new(L)), "t");
    return 1;
}

static int s_narrow(lua_State *L)
{
    lt_no_more(L, 4, "length");
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    LT_CALL(L, td_narrow(x, dim, (int64_t)start, (int64_t)len, lt_new(L)), "narrow");
    return 1;
}

static int s_select(lua_State *L)
{
    lt_no_more(L, 3, "index");
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    lua_Integer i = luaL_checkinteger(L, 3);
    LT_CALL(L, td_select(x, dim, (int64_t)i, lt_new(L)), "select");
    return 1;
}

/* squeeze(x) drops every size-1 dim; squeeze(x, dim) only that one */
static int s_squeeze(lua_State *L)
{
    lt_no_more(L, 2, "dim");
    td_tensor *x = lt_check(L, 1);
    int all = lua_isnoneornil(L, 2);
    int dim = all ? 0 : lt_check_dim(L, 2);
    LT_CALL(L, td_squeeze(x, dim, all, lt_new(L)), "squeeze");
    return 1;
}

static int s_unsqueeze(lua_State *L)
{
    lt_no_more(L, 2, "dim");
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    LT_CALL(L, td_unsqueeze(x, dim, lt_new(L)), "unsqueeze");
    return 1;
}

/* flatten(x, [start = 0], [end = -1]) */
static int s_flatten(lua_State *L)
{
    lt_no_more(L, 3, "end_dim");
    td_tensor *x = lt_check(L, 1);
    int start = lua_isnoneornil(L, 2) ? 0 : lt_check_dim(L, 2);
    int end = lua_isnoneornil(L, 3) ? -1 : lt_check_dim(L, 3);
    LT_CALL(L, td_flatten(x, start, end, lt_new(L)), "flatten");
    return 1;
}

/* ---- copies and conversions -------------------------------------------------- */

/* contiguous(x, [{memory_format = "contiguous_format" | "channels_last"}]) */
static int s_contiguous(lua_State *L)
{
    td_tensor *x = lt_check(L, 1);
    static const char *const keys[] = {"memory_format", NULL};
    lt_check_options(L, 2, keys);
    lt_no_more(L, 2, "the options");
    if (lt_opt_channels_last(L, 2, "contiguous")) {
        LT_CALL(L, td_contiguous_channels_last(x, lt_new(L)), "contiguous");
        return 1;
    }
    if (td_is_contiguous(x)) {
        lua_settop(L, 1);
        return 1;
    }
    LT_CALL(L, td_contiguous(x, lt_new(L)), "contiguous");
    return 1;
}

static int s_clone(lua_State *L)
{
    lt_no_more(L, 1, "the tensor (memory_format is not supported)");
    LT_CALL(L, td_clone(lt_check(L, 1), lt_new(L)), "clone");
    return 1;
}

/* the same tensor when it already has dtype dt, as PyTorch */
static int convert(lua_State *L, td_dtype dt, const char *fname)
{
    td_tensor *x = lt_check(L, 1);
    if (x->dtype == dt) {
        lua_pushvalue(L, 1);
        return 1;
    }
    LT_CALL(L, td_to_dtype(x, dt, lt_new(L)), fname);
    return 1;
}

static int s_float(lua_State *L) { return convert(L, TD_FLOAT32, "float"); }
static int s_double(lua_State *L) { return convert(L, TD_FLOAT64, "double"); }
static int s_long(lua_State *L) { return convert(L, TD_INT64, "long"); }
static int s_byte(lua_State *L) { return convert(L, TD_UINT8, "byte"); }
static int s_bfloat16(lua_State *L) { return convert(L, TD_BFLOAT16, "bfloat16"); }
static int s_half(lua_State *L) { return convert(L, TD_FLOAT16, "half"); }

/* type(x) -> "float32"; type(x, dtype) converts */
static int s_type(lua_State *L)
{
    td_tensor *x = lt_check(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_pushstring(L, td_dtype_name(x->dtype));
        return 1;
    }
    td_dtype dt = lt_check_dtype(L, 2);
    lua_settop(L, 1);
    return convert(L, dt, "type");
}

/* ---- joining and splitting ----------------------------------------------------- */

/* a Lua list of tensors at arg -> array (a userdata kept on the stack) */
static td_tensor **check_list(lua_State *L, int arg, int *n)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Integer len = luaL_len(L, arg);
    if (len < 1) luaL_argerror(L, arg, "expected a non-empty list of tensors");
    if (len > 1 << 20) luaL_argerror(L, arg, "list too long");
    td_tensor **ts = lua_newuserdatauv(L, (size_t)len * sizeof *ts, 0);
    for (lua_Integer i = 0; i < len; i++) {
        lua_geti(L, arg, i + 1);
        lt_box *b = luaL_testudata(L, -1, LT_TENSOR);
        if (!b)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "entry %d is a %s, expected a tensor", (int)i + 1,
                                          luaL_typename(L, -1)));
        if (!b->t)
            luaL_argerror(L, arg, lua_pushfstring(L, "entry %d is a closed tensor", (int)i + 1));
        ts[i] = b->t;
        lua_pop(L, 1); /* still referenced by the list */
    }
    *n = (int)len;
    return ts;
}

typedef td_status (*join_fn)(int, td_tensor **, int, td_tensor **);

static int join(lua_State *L, join_fn fn, const char *fname)
{
    lt_no_more(L, 2, "dim");
    int n;
    int dim = lua_isnoneornil(L, 2) ? 0 : lt_check_dim(L, 2);
    td_tensor **ts = check_list(L, 1, &n);
    /* the runtime blames the list as argument 1 and dim as 2, as Lua does */
    lt_check_status(L, fn(n, ts, dim, lt_new(L)), fname, 0);
    return 1;
}

static int s_cat(lua_State *L) { return join(L, td_cat, "cat"); }
static int s_stack(lua_State *L) { return join(L, td_stack, "stack"); }

typedef td_status (*split_fn)(td_tensor *, int64_t, int, int *, td_tensor ***);

/* split(x, size, [dim = 0]) / chunk(x, n, [dim = 0]) -> Lua list of tensors;
 * split's size may be a list of sizes */
static int pieces(lua_State *L, split_fn fn, const char *fname)
{
    td_tensor *x = lt_check(L, 1);
    if (lt_top(L) > 3) luaL_argerror(L, 4, "no argument expected after dim");
    int dim = lua_isnoneornil(L, 3) ? 0 : lt_check_dim(L, 3);
    int count = 0;
    td_tensor **ps = NULL;
    if (fn == td_split && lua_type(L, 2) == LUA_TTABLE) {
        int n = (int)luaL_len(L, 2);
        int64_t *sizes = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n > 0 ? n : 1), 0);
        for (int i = 0; i < n; i++) {
            lua_geti(L, 2, i + 1);
            if (!lua_isinteger(L, -1))
                luaL_argerror(L, 2,
                              lua_pushfstring(L, "split sizes must be integers, got %s at %d",
                                              luaL_typename(L, -1), i + 1));
            sizes[i] = (int64_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        if (td_split_sizes(x, n, sizes, dim, &count, &ps) != TD_OK) lt_fail(L, fname, 0);
    } else {
        lua_Integer size = luaL_checkinteger(L, 2);
        if (size <= 0) luaL_argerror(L, 2, "must be positive");
        if (fn(x, (int64_t)size, dim, &count, &ps) != TD_OK) lt_fail(L, fname, 0);
    }
    /* box each piece before anything can raise */
    if (!lua_checkstack(L, count + 4)) {
        for (int i = 0; i < count; i++) td_tensor_release(ps[i]);
        free(ps);
        return luaL_error(L, "%s: too many pieces", fname);
    }
    lua_createtable(L, count, 0);
    for (int i = 0; i < count; i++) {
        td_tensor **slot = lt_new(L);
        *slot = ps[i];
        ps[i] = NULL;
        lua_rawseti(L, -2, i + 1);
    }
    free(ps);
    lt_account(L);
    return 1;
}

static int s_split(lua_State *L) { return pieces(L, td_split, "split"); }
static int s_chunk(lua_State *L) { return pieces(L, td_chunk, "chunk"); }

/* ---- index ops ------------------------------------------------------------------ */

static int s_index_select(lua_State *L)
{
    lt_no_more(L, 3, "index");
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    td_tensor *idx = lt_check(L, 3);
    LT_CALL(L, td_index_select(x, dim, idx, lt_new(L)), "index_select");
    return 1;
}

static int s_gather(lua_State *L)
{
    lt_no_more(L, 3, "index (sparse_grad is not supported)");
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    td_tensor *idx = lt_check(L, 3);
    LT_CALL(L, td_gather(x, dim, idx, lt_new(L)), "gather");
    return 1;
}

/* scatter(x, dim, index, src) with src a tensor or a number; returns a copy */
static int s_scatter(lua_State *L)
{
    lt_no_more(L, 4, "src (reduce is not supported: scatter_add adds)");
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    td_tensor *idx = lt_check(L, 3);
    td_tensor *src = lt_test(L, 4);
    if (src)
        LT_CALL(L, td_scatter(x, dim, idx, src, false, lt_new(L)), "scatter");
    else
        LT_CALL(L, td_scatter_scalar(x, dim, idx, luaL_checknumber(L, 4), lt_new(L)), "scatter");
    return 1;
}

static int s_scatter_add(lua_State *L)
{
    lt_no_more(L, 4, "src");
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    td_tensor *idx = lt_check(L, 3), *src = lt_check(L, 4);
    LT_CALL(L, td_scatter(x, dim, idx, src, true, lt_new(L)), "scatter_add");
    return 1;
}

/* index_add(x, dim, index, source, {alpha = 1}) = x with alpha * source added */
static int s_index_add(lua_State *L)
{
    static const char *const keys[] = {"alpha", NULL};
    td_tensor *x = lt_check(L, 1);
    int dim = lt_check_dim(L, 2);
    td_tensor *idx = lt_check(L, 3), *src = lt_check(L, 4);
    lt_check_options(L, 5, keys);
    if (lt_top(L) > 5) luaL_argerror(L, 6, "no argument expected after the options");
    if (lt_opt_field(L, 5, "alpha") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_argerror(L, 5,
                          lua_pushfstring(L, "option 'alpha' must be a number, got %s",
                                          luaL_typename(L, -1)));
        if (!td_dtype_is_float(src->dtype) && !lua_isinteger(L, -1))
            luaL_argerror(L, 5, "alpha must be an integer for an integer source");
        double alpha = lua_tonumber(L, -1);
        if (alpha != 1) {
            td_tensor **scaled = lt_new(L);
            LT_CALL(L, td_binary_scalar(TD_MUL, src, alpha, false, scaled), "index_add");
            src = *scaled;
        }
    }
    LT_CALL(L, td_index_add(x, dim, idx, src, lt_new(L)), "index_add");
    return 1;
}

/* masked_fill(x, mask, value): value a number or a 0-dim tensor (which
 * then takes a gradient) */
static int s_masked_fill(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *mask = lt_check(L, 2);
    if (lt_top(L) > 3) luaL_argerror(L, 4, "no argument expected after value");
    td_tensor *tv = lt_test(L, 3);
    if (tv) {
        LT_CALL(L, td_masked_fill_tensor(x, mask, tv, lt_new(L)), "masked_fill");
        return 1;
    }
    double v = luaL_checknumber(L, 3);
    LT_CALL(L, td_masked_fill(x, mask, v, lt_new(L)), "masked_fill");
    return 1;
}

/* the dtype of a number beside the tensor t (NULL: beside another number),
 * as PyTorch's where: a float tensor's own, an integer tensor's for a
 * whole number, else float32; two numbers give int64 when both are Lua
 * integers */
static td_dtype where_number_dtype(lua_State *L, int arg, const td_tensor *t)
{
    if (lua_type(L, arg) != LUA_TNUMBER) return TD_FLOAT32; /* a type error follows */
    double v = lua_tonumber(L, arg);
    if (!t) return lua_isinteger(L, 2) && lua_isinteger(L, 3) ? TD_INT64 : TD_FLOAT32;
    if (td_dtype_is_float(t->dtype)) return t->dtype;
    if (v != floor(v)) return TD_FLOAT32;
    if (t->dtype == TD_UINT8 && (v < 0 || v > 255))
        luaL_argerror(L, arg, lua_pushfstring(L, "%f does not fit the uint8 tensor beside it", v));
    return t->dtype;
}

/* where(cond, a, b): a and b tensors or numbers */
static int s_where(lua_State *L)
{
    lt_no_more(L, 3, "other");
    td_tensor *cond = lt_check(L, 1);
    td_tensor *a = lt_test(L, 2), *b = lt_test(L, 3);
    td_dtype dt = where_number_dtype(L, a ? 3 : 2, a ? a : b);
    lua_settop(L, 3);
    if (!a) a = lt_check_tensor_or_number(L, 2, dt, "where");
    if (!b) b = lt_check_tensor_or_number(L, 3, dt, "where");
    LT_CALL(L, td_where(cond, a, b, lt_new(L)), "where");
    return 1;
}

/* shape, size and stride replace l_tensor.c's, registered before these */
const luaL_Reg lt_shape_methods[] = {
    {"shape", s_shape},
    {"size", s_size},
    {"stride", s_stride},
    {"view", s_view},
    {"reshape", s_reshape},
    {"expand", s_expand},
    {"view_as", s_view_as},
    {"expand_as", s_expand_as},
    {"transpose", s_transpose},
    {"permute", s_permute},
    {"t", s_t},
    {"narrow", s_narrow},
    {"select", s_select},
    {"squeeze", s_squeeze},
    {"unsqueeze", s_unsqueeze},
    {"flatten", s_flatten},
    {"contiguous", s_contiguous},
    {"clone", s_clone},
    {"float", s_float},
    {"double", s_double},
    {"long", s_long},
    {"byte", s_byte},
    {"bfloat16", s_bfloat16},
    {"half", s_half},
    /* cpu, cuda, to: l_device.c */
    {"type", s_type},
    {"split", s_split},
    {"chunk", s_chunk},
    {"index_select", s_index_select},
    {"gather", s_gather},
    {"scatter", s_scatter},
    {"scatter_add", s_scatter_add},
    {"index_add", s_index_add},
    {"masked_fill", s_masked_fill},
    {NULL, NULL},
};

const luaL_Reg lt_shape_funcs[] = {
    {"cat", s_cat},
    {"stack", s_stack},
    {"where", s_where},
    {NULL, NULL},
};
