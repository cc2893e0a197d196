/* tide.core: every loss of the loss table as fname(inputs..., {options}),
 * the table itself for the Lua layer (loss_table), and for the nn modules
 * their forward (loss_module_forward[name]) and the options check they run
 * when they are made (loss_check_options). */
#include "l_util.h"

#include <string.h>

static const char *const family_names[TD_LOSS_NFAMILIES] = {"softmax", "binary", "regression",
                                                            "margin", "ctc"};
static const char *const input_kinds[] = {"scores",      "log_probs", "probs",  "classes",
                                          "binary",      "signs",     "real",   "positive",
                                          "label_lists", "sequences", "lengths"};
static const char *const opt_types[] = {"number", "integer",          "boolean",
                                        "tensor", "number or tensor", "reduction"};

/* "weight, ignore_index, label_smoothing, reduction" */
static const char *known_options(lua_State *L, const td_loss_def *d)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (const td_loss_opt *o = d->opts; o->name; o++) {
        if (o != d->opts) luaL_addstring(&b, ", ");
        luaL_addstring(&b, o->name);
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

static const td_loss_opt *find_option(const td_loss_def *d, const char *key)
{
    for (const td_loss_opt *o = d->opts; o->name; o++)
        if (strcmp(o->name, key) == 0) return o;
    return NULL;
}

/* the options table at arg into opts (defaults first); NULL, or the
 * message of the first bad option (pushed on the stack) */
static const char *read_options(lua_State *L, const td_loss_def *d, int arg, td_any_loss_opts *opts)
{
    td_loss_defaults(d, opts);
    if (lua_isnoneornil(L, arg)) return NULL;
    if (lua_type(L, arg) != LUA_TTABLE)
        return lua_pushfstring(L, "options table expected, got %s", luaL_typename(L, arg));
    char *base = (char *)opts;
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return lua_pushfstring(L, "option names must be strings, got %s", luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        const td_loss_opt *o = find_option(d, key);
        if (!o)
            return lua_pushfstring(L, "unknown option '%s'; known: %s", key, known_options(L, d));
        int tp = lua_type(L, -1);
        lt_box *box = luaL_testudata(L, -1, LT_TENSOR);
        switch (o->type) {
        case TD_OPT_NUMBER:
            if (tp != LUA_TNUMBER)
                return lua_pushfstring(L, "option '%s' must be a number, got %s", key,
                                       luaL_typename(L, -1));
            *(double *)(base + o->offset) = lua_tonumber(L, -1);
            break;
        case TD_OPT_INTEGER: {
            int isint = 0;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (!isint)
                return lua_pushfstring(L, "option '%s' must be an integer, got %s", key,
                                       luaL_typename(L, -1));
            *(int64_t *)(base + o->offset) = (int64_t)v;
            break;
        }
        case TD_OPT_BOOLEAN:
            if (tp != LUA_TBOOLEAN)
                return lua_pushfstring(L, "option '%s' must be a boolean, got %s", key,
                                       luaL_typename(L, -1));
            *(bool *)(base + o->offset) = lua_toboolean(L, -1);
            break;
        case TD_OPT_ALPHA:
            if (tp == LUA_TNUMBER) {
                *(double *)(base + o->offset2) = lua_tonumber(L, -1);
                break;
            }
            if (!box)
                return lua_pushfstring(L, "option '%s' must be a number or a tensor, got %s", key,
                                       luaL_typename(L, -1));
            if (!box->t) return lua_pushfstring(L, "option '%s' is a closed tensor", key);
            *(td_tensor **)(base + o->offset) = box->t;
            break;
        case TD_OPT_TENSOR:
            if (!box)
                return lua_pushfstring(L, "option '%s' must be a tensor, got %s", key,
                                       luaL_typename(L, -1));
            if (!box->t) return lua_pushfstring(L, "option '%s' is a closed tensor", key);
            *(td_tensor **)(base + o->offset) = box->t;
            break;
        case TD_OPT_REDUCTION: {
            if (tp != LUA_TSTRING)
                return lua_pushfstring(L, "option 'reduction' must be a string, got %s",
                                       luaL_typename(L, -1));
            td_reduction r;
            if (td_reduction_parse(lua_tostring(L, -1), d->batchmean, 0, &r) != TD_OK) {
                const char *msg = lua_pushstring(L, td_last_error());
                td_clear_error();
                return msg;
            }
            *(td_reduction *)(base + o->offset) = r;
            break;
        }
        }
        lua_pop(L, 1);
    }
    return NULL;
}

static int loss_argerror(lua_State *L, const td_loss_def *d, int arg, const char *msg)
{
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, d->name, msg);
}

/* a lengths argument: an int64 tensor as it is, or a list of integers (or,
 * for unbatched input, one integer) turned into an int64 tensor that
 * replaces it on the stack */
static td_tensor *check_lengths(lua_State *L, const td_loss_def *d, int arg)
{
    const char *name = d->inputs[arg - 1].name;
    td_tensor *t = lt_test(L, arg);
    if (t) return t;
    int tp = lua_type(L, arg);
    if (tp == LUA_TNUMBER) {
        if (!lua_isinteger(L, arg))
            loss_argerror(
                L, d, arg,
                lua_pushfstring(L, "%s must be integers, got %f", name, lua_tonumber(L, arg)));
        td_tensor **slot = lt_new(L);
        LT_CALL(L, td_empty(0, NULL, TD_INT64, slot), d->name);
        *(int64_t *)td_data_ptr(*slot) = (int64_t)lua_tointeger(L, arg);
    } else if (tp == LUA_TTABLE) {
        int64_t n = (int64_t)luaL_len(L, arg);
        td_tensor **slot = lt_new(L);
        LT_CALL(L, td_empty(1, &n, TD_INT64, slot), d->name);
        int64_t *v = td_data_ptr(*slot);
        for (int64_t i = 0; i < n; i++) {
            lua_geti(L, arg, (lua_Integer)i + 1);
            int isint = 0;
            lua_Integer x = lua_tointegerx(L, -1, &isint);
            if (!isint)
                loss_argerror(L, d, arg,
                              lua_pushfstring(L, "%s[%d] must be an integer, got %s", name, (int)i,
                                              lua_type(L, -1) == LUA_TNUMBER
                                                  ? "a float"
                                                  : luaL_typename(L, -1)));
            lua_pop(L, 1);
            v[i] = (int64_t)x;
        }
    } else {
        loss_argerror(L, d, arg,
                      lua_pushfstring(L, "int64 tensor or list of integers expected, got %s",
                                      luaL_typename(L, arg)));
    }
    lua_replace(L, arg);
    return lt_check(L, arg);
}

static td_tensor *check_input(lua_State *L, const td_loss_def *d, int arg)
{
    lt_box *b = luaL_testudata(L, arg, LT_TENSOR);
    if (!b)
        loss_argerror(L, d, arg,
                      lua_pushfstring(L, "tensor expected, got %s", luaL_typename(L, arg)));
    if (!b->t) loss_argerror(L, d, arg, "attempt to use a closed tensor");
    return b->t;
}

/* the runtime's error as "bad argument #n to 'name' (...)", named by the
 * loss whatever name the caller gave the function */
static int loss_fail(lua_State *L, const td_loss_def *d)
{
    const char *msg = td_last_error();
    size_t n = strlen(d->name);
    if (strncmp(msg, d->name, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    int arg = td_last_error_arg();
    lua_pushstring(L, msg);
    td_clear_error();
    if (arg > 0) return loss_argerror(L, d, arg, lua_tostring(L, -1));
    return luaL_error(L, "%s: %s", d->name, lua_tostring(L, -1));
}

static int run_loss(lua_State *L, const td_loss_def *d)
{
    int oarg = d->n_inputs + 1;
    td_tensor *in[TD_LOSS_MAX_INPUTS] = {NULL};
    for (int i = 0; i < d->n_inputs; i++)
        if (d->inputs[i].kind != TD_IN_LENGTHS) in[i] = check_input(L, d, i + 1);
    td_any_loss_opts opts;
    const char *msg = read_options(L, d, oarg, &opts);
    if (msg) return loss_argerror(L, d, oarg, msg);
    lua_settop(L, oarg);
    for (int i = 0; i < d->n_inputs; i++)
        if (d->inputs[i].kind == TD_IN_LENGTHS) in[i] = check_lengths(L, d, i + 1);
    if (td_loss_run(d, in, &opts, lt_new(L)) != TD_OK) return loss_fail(L, d);
    lt_account(L);
    return 1;
}

/* forward(self, inputs...) of a loss module: the loss with self.options */
static int l_loss_module_forward(lua_State *L)
{
    const td_loss_def *d = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_gettop(L) > d->n_inputs + 1)
        return luaL_error(
            L,
            "bad argument #%d to '%s' (%s takes %d inputs; its options are given when it is made)",
            d->n_inputs + 1, d->module, d->module, d->n_inputs);
    lua_getfield(L, 1, "options");
    lua_replace(L, 1);
    lua_settop(L, d->n_inputs + 1);
    lua_rotate(L, 1, -1); /* inputs..., options */
    return run_loss(L, d);
}

static int l_loss(lua_State *L) { return run_loss(L, lua_touserdata(L, lua_upvalueindex(1))); }

/* loss_check_options(name, options): nil when the options are good for the
 * loss, else the message (for nn modules, which raise it at their maker's
 * line) */
static int l_loss_check_options(lua_State *L)
{
    const td_loss_def *d = td_loss_find(luaL_checkstring(L, 1));
    if (!d)
        return luaL_argerror(L, 1, lua_pushfstring(L, "no loss named '%s'", lua_tostring(L, 1)));
    lua_settop(L, 2);
    td_any_loss_opts opts;
    const char *msg = read_options(L, d, 2, &opts);
    if (msg) {
        return 1;
    }
    if (td_loss_check_opts(d, &opts) != TD_OK) {
        const char *m = td_last_error();
        size_t n = strlen(d->name);
        if (strncmp(m, d->name, n) == 0 && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
        lua_pushstring(L, m);
        td_clear_error();
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

static void push_default(lua_State *L, const td_loss_opt *o)
{
    switch (o->type) {
    case TD_OPT_NUMBER:
    case TD_OPT_ALPHA: lua_pushnumber(L, o->def); break;
    case TD_OPT_INTEGER: lua_pushinteger(L, (lua_Integer)o->def); break;
    case TD_OPT_BOOLEAN: lua_pushboolean(L, o->def != 0); break;
    case TD_OPT_REDUCTION: lua_pushstring(L, td_reduction_name((td_reduction)o->def)); break;
    case TD_OPT_TENSOR: lua_pushnil(L); break;
    }
}

/* loss_table(): every row as a Lua table: name, module, node, family,
 * summary, batchmean, inputs = {{name, kind}...}, options = {{name, type,
 * default, range}...}, and whether this build has it on cuda */
static int l_loss_table(lua_State *L)
{
    int n = td_loss_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const td_loss_def *d = td_loss_at(i);
        lua_createtable(L, 0, 9);
        lua_pushstring(L, d->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, d->module);
        lua_setfield(L, -2, "module");
        lua_pushstring(L, d->node);
        lua_setfield(L, -2, "node");
        lua_pushstring(L, family_names[d->family]);
        lua_setfield(L, -2, "family");
        lua_pushstring(L, d->summary);
        lua_setfield(L, -2, "summary");
        lua_pushboolean(L, d->batchmean);
        lua_setfield(L, -2, "batchmean");
        lua_pushboolean(L, d->target_grad);
        lua_setfield(L, -2, "target_grad");
        lua_pushboolean(L, td_loss_on_device(d, (td_device){TD_CUDA, 0}));
        lua_setfield(L, -2, "cuda");
        lua_createtable(L, d->n_inputs, 0);
        for (int k = 0; k < d->n_inputs; k++) {
            lua_createtable(L, 0, 2);
            lua_pushstring(L, d->inputs[k].name);
            lua_setfield(L, -2, "name");
            lua_pushstring(L, input_kinds[d->inputs[k].kind]);
            lua_setfield(L, -2, "kind");
            lua_pushstring(L, d->inputs[k].dims);
            lua_setfield(L, -2, "dims");
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "inputs");
        lua_newtable(L);
        int k = 0;
        for (const td_loss_opt *o = d->opts; o->name; o++) {
            lua_createtable(L, 0, 4);
            lua_pushstring(L, o->name);
            lua_setfield(L, -2, "name");
            lua_pushstring(L, opt_types[o->type]);
            lua_setfield(L, -2, "type");
            push_default(L, o);
            lua_setfield(L, -2, "default");
            if (o->says) {
                lua_pushstring(L, o->says);
                lua_setfield(L, -2, "range");
            }
            lua_rawseti(L, -2, ++k);
        }
        lua_setfield(L, -2, "options");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

void lt_register_losses(lua_State *L)
{
    lua_newtable(L); /* loss_module_forward */
    for (int i = 0; i < td_loss_count(); i++) {
        const td_loss_def *d = td_loss_at(i);
        lua_pushlightuserdata(L, (void *)d);
        lua_pushcclosure(L, l_loss, 1);
        lua_setfield(L, -3, d->name);
        lua_pushlightuserdata(L, (void *)d);
        lua_pushcclosure(L, l_loss_module_forward, 1);
        lua_setfield(L, -2, d->name);
    }
    lua_setfield(L, -2, "loss_module_forward");
    lua_pushcfunction(L, l_loss_table);
    lua_setfield(L, -2, "loss_table");
    lua_pushcfunction(L, l_loss_check_options);
    lua_setfield(L, -2, "loss_check_options");
}
