/* tide.core: autograd: backward, grad mode, the grad / requires_grad /
 * is_leaf / grad_fn fields. */
#include "l_util.h"

#include <string.h>

/* ---- fields (called from __index / __newindex, tensor at index 1) -------- */

/* t.grad gives the same userdata while the gradient tensor is the same, so
 * `w.grad == w.grad` holds; the last one is cached in t's user value */
static int push_grad(lua_State *L, td_tensor *t)
{
    if (!t->grad) {
        lua_pushnil(L);
        lua_setiuservalue(L, 1, 1);
        lua_pushnil(L);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    lt_box *c = luaL_testudata(L, -1, LT_TENSOR);
    if (c && c->t == t->grad) return 1;
    lua_pop(L, 1);
    lt_push_retained(L, t->grad);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
    return 1;
}

int lt_get_field(lua_State *L, td_tensor *t, const char *key)
{
    if (strcmp(key, "grad") == 0) return push_grad(L, t);
    if (strcmp(key, "requires_grad") == 0) {
        lua_pushboolean(L, t->requires_grad);
        return 1;
    }
    if (strcmp(key, "is_leaf") == 0) {
        lua_pushboolean(L, td_is_leaf(t));
        return 1;
    }
    if (strcmp(key, "grad_fn") == 0) {
        const char *name = td_grad_fn_name(t);
        if (name)
            lua_pushstring(L, name);
        else
            lua_pushnil(L);
        return 1;
    }
    return 0; /* nil: unknown names are neither methods nor fields */
}

/* t.grad = g (a tensor of t's shape and dtype, or nil); t.requires_grad = b */
int lt_set_field(lua_State *L, td_tensor *t, const char *key)
{
    if (strcmp(key, "grad") == 0) {
        if (lua_isnil(L, 3)) {
            td_set_grad(t, NULL);
        } else {
            td_tensor *g = lt_test(L, 3);
            if (!g)
                return luaL_error(L, "t.grad must be a tensor or nil, got %s", luaL_typename(L, 3));
            char a[128], b[128];
            if (!td_same_shape(g, t))
                return luaL_error(L,
                                  "assigned grad of shape %s does not match the tensor's shape %s",
                                  td_shape_str(g, a, sizeof a), td_shape_str(t, b, sizeof b));
            if (g->dtype != t->dtype)
                return luaL_error(L,
                                  "assigned grad of dtype %s does not match the tensor's dtype %s",
                                  td_dtype_name(g->dtype), td_dtype_name(t->dtype));
            td_set_grad(t, g);
        }
        lua_pushvalue(L, 3);
        lua_setiuservalue(L, 1, 1);
        return 1;
    }
    if (strcmp(key, "requires_grad") == 0) {
        if (lua_type(L, 3) != LUA_TBOOLEAN)
            return luaL_error(L, "t.requires_grad must be a boolean, got %s", luaL_typename(L, 3));
        if (td_set_requires_grad(t, lua_toboolean(L, 3)) != TD_OK) {
            lua_pushstring(L, td_last_error());
            td_clear_error();
            return luaL_error(L, "%s", lua_tostring(L, -1));
        }
        return 1;
    }
    return 0;
}

/* ---- methods ---------------------------------------------------------------- */

/* backward(t, [grad], {retain_graph = false}) */
static int a_backward(lua_State *L)
{
    static const char *const keys[] = {"retain_graph", NULL};
    td_tensor *t = lt_check(L, 1);
    td_tensor *grad = NULL;
    int oarg = 2;
    if (!lt_is_options(L, 2)) {
        if (!lua_isnoneornil(L, 2)) grad = lt_check(L, 2);
        oarg = 3;
    }
    lt_check_options(L, oarg, keys);
    bool retain = lt_opt_boolean(L, oarg, "retain_graph", 0);
    if (grad && !td_same_shape(grad, t)) {
        char a[128], b[128];
        return luaL_argerror(
            L, 2,
            lua_pushfstring(L, "gradient of shape %s does not match the output's shape %s",
                            td_shape_str(grad, a, sizeof a), td_shape_str(t, b, sizeof b)));
    }
    LT_CALL(L, td_backward(t, grad, retain), "backward");
    return 0;
}

/* requires_grad_(t, [on = true]) -> t */
static int a_requires_grad_(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    bool on = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
    LT_CALL(L, td_set_requires_grad(t, on), "requires_grad_");
    lua_settop(L, 1);
    return 1;
}

/* zero_grad(t): t.grad = nil, as PyTorch's set_to_none */
static int a_zero_grad(lua_State *L)
{
    td_tensor *t = lt_check(L, 1);
    td_set_grad(t, NULL);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 1);
    return 0;
}

static int a_detach(lua_State *L)
{
    LT_CALL(L, td_detach(lt_check(L, 1), lt_new(L)), "detach");
    return 1;
}

/* ---- grad mode --------------------------------------------------------------- */

static int a_is_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, td_grad_enabled());
    return 1;
}

/* set_grad_enabled(on) -> previous mode */
static int a_set_grad_enabled(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    lua_pushboolean(L, td_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

/* no_grad(fn, ...) -> fn's results, run with grad recording off; the mode
 * is restored even when fn raises (the error is raised again) */
static int a_no_grad(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 1;
    bool prev = td_set_grad_enabled(false);
    int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
    td_set_grad_enabled(prev);
    if (st != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

/* enable_grad(fn, ...): the opposite, for use inside no_grad */
static int a_enable_grad(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 1;
    bool prev = td_set_grad_enabled(true);
    int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
    td_set_grad_enabled(prev);
    if (st != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

const luaL_Reg lt_autograd_methods[] = {
    {"backward", a_backward},
    {"requires_grad_", a_requires_grad_},
    {"zero_grad", a_zero_grad},
    {"detach", a_detach},
    {NULL, NULL},
};

const luaL_Reg lt_autograd_funcs[] = {
    {"is_grad_enabled", a_is_grad_enabled},
    {"set_grad_enabled", a_set_grad_enabled},
    {"no_grad", a_no_grad},
    {"enable_grad", a_enable_grad},
    {NULL, NULL},
};
