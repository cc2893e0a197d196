/* tide.core: fused scaled dot-product attention, as PyTorch 2.0's
 * F.scaled_dot_product_attention(query, key, value, {attn_mask,
 * dropout_p, is_causal}). */
#include "l_util.h"

static int l_scaled_dot_product_attention(lua_State *L)
{
    static const char *const keys[] = {"attn_mask", "dropout_p", "is_causal", NULL};
    td_tensor *q = lt_check(L, 1), *k = lt_check(L, 2), *v = lt_check(L, 3);
    lt_check_options(L, 4, keys);
    td_sdpa_opts o = TD_SDPA_OPTS_DEFAULT;
    /* false is PyTorch's None */
    int tp = lt_opt_field(L, 4, "attn_mask");
    bool none = tp == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!none) o.attn_mask = lt_opt_tensor(L, 4, "attn_mask");
    o.dropout_p = lt_opt_number(L, 4, "dropout_p", 0.0);
    o.is_causal = lt_opt_boolean(L, 4, "is_causal", 0);
    LT_CALL(L, td_scaled_dot_product_attention(q, k, v, &o, lt_new(L)),
            "scaled_dot_product_attention");
    return 1;
}

const luaL_Reg lt_attention_funcs[] = {
    {"scaled_dot_product_attention", l_scaled_dot_product_attention},
    {NULL, NULL},
};
