/* tide.core: rnn_layer(mode, x, h0, w_ih, w_hh, {c0, b_ih, b_hh, w_hr,
 * batch_sizes, reverse}), one layer in one direction; tide.nn's RNN, LSTM
 * and GRU (bindings/tide/nn_rnn.lua) stack it. */
#include "l_util.h"

#include <stdlib.h>

/* batch_sizes: an int64 tensor or a table of integers, into a new array
 * kept in a userdata pushed on the stack (freed by the collector) */
static int64_t *opt_batch_sizes(lua_State *L, int arg, int64_t *steps)
{
    int tp = lt_opt_field(L, arg, "batch_sizes");
    if (tp == LUA_TNIL || (tp == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
        lua_pop(L, 1);
        *steps = 0;
        return NULL;
    }
    td_tensor *t = lt_test(L, -1);
    int64_t n = t ? (t->ndim == 1 ? t->shape[0] : -1)
                  : (tp == LUA_TTABLE ? (int64_t)lua_rawlen(L, -1) : -1);
    if (n < 1 || (t && t->dtype != TD_INT64))
        luaL_argerror(L, arg,
                      "batch_sizes must be a non-empty 1-dim int64 tensor or table of integers");
    int64_t *bs = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)n, 0);
    for (int64_t i = 0; i < n; i++) {
        if (t) {
            bs[i] = (int64_t)td_get_flat(t, i);
        } else {
            int ok;
            lua_rawgeti(L, -2, i + 1);
            bs[i] = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok) luaL_argerror(L, arg, "batch_sizes must hold integers");
        }
    }
    lua_remove(L, -2);
    *steps = n;
    return bs;
}

static int l_rnn_layer(lua_State *L)
{
    static const char *const modes[] = {"RNN_TANH", "RNN_RELU", "LSTM", "GRU", NULL};
    static const char *const keys[] = {"c0",          "b_ih",    "b_hh", "w_hr",
                                       "batch_sizes", "reverse", NULL};
    td_rnn_layer_args a = {0};
    a.kind = (td_rnn_kind)luaL_checkoption(L, 1, NULL, modes);
    a.x = lt_check(L, 2);
    a.h0 = lt_check(L, 3);
    a.w_ih = lt_check(L, 4);
    a.w_hh = lt_check(L, 5);
    lt_check_options(L, 6, keys);
    a.c0 = lt_opt_tensor(L, 6, "c0");
    a.b_ih = lt_opt_tensor(L, 6, "b_ih");
    a.b_hh = lt_opt_tensor(L, 6, "b_hh");
    a.w_hr = lt_opt_tensor(L, 6, "w_hr");
    a.reverse = lt_opt_boolean(L, 6, "reverse", 0);
    a.batch_sizes = opt_batch_sizes(L, 6, &a.steps);
    /* the runtime numbers its arguments x, h0, c0, weights; they are not
     * this call's positions, so the message goes out without a number (a
     * shift past the stack top) and names the tensor instead */
    lt_check_status(L, td_rnn_layer(&a, lt_new(L)), "rnn_layer", 1000);
    return 1;
}

const luaL_Reg lt_rnn_funcs[] = {
    {"rnn_layer", l_rnn_layer},
    {NULL, NULL},
};
