/* tide.core: safetensors files (tide.save, tide.load) and what
 * tide.checkpoint builds on: JSON through jansson (for the metadata of a
 * checkpoint) and the generator's state as hex strings. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"

/* a tensor at stack index idx, or NULL (closed tensors count as none) */
static td_tensor *tensor_at(lua_State *L, int idx)
{
    lt_box *b = luaL_testudata(L, idx, LT_TENSOR);
    return b ? b->t : NULL;
}

/* whether the string at idx holds a NUL byte: the writer takes C strings,
 * so such a string would be cut short without a word */
static int has_nul(lua_State *L, int idx)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return strlen(s) != len;
}

/* tide.save(path, {name = tensor, ...}, {metadata = {key = "value"}}) */
static int l_save(lua_State *L)
{
    static const char *const allowed[] = {"metadata", NULL};
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lt_check_options(L, 3, allowed);
    lua_settop(L, 3);

    /* arrays in userdata, so an error below leaks nothing */
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_argerror(L, 2,
                                 lua_pushfstring(L, "tensor names must be strings, got a %s key",
                                                 luaL_typename(L, -2)));
        if (has_nul(L, -2))
            return luaL_argerror(L, 2, "a tensor name holds a NUL byte, which the file cannot");
        if (!tensor_at(L, -1))
            return luaL_argerror(L, 2,
                                 lua_pushfstring(L, "'%s' is a %s, not a tensor",
                                                 lua_tostring(L, -2), luaL_typename(L, -1)));
        lua_pop(L, 1);
        n++;
    }
    const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);  /* 4 */
    td_tensor **ts = lua_newuserdatauv(L, sizeof(td_tensor *) * (size_t)(n + 1), 0); /* 5 */
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        names[i] = lua_tostring(L, -2); /* the key stays in the table */
        ts[i] = tensor_at(L, -1);
        i++;
        lua_pop(L, 1);
    }

    int m = 0;
    lt_opt_field(L, 3, "metadata"); /* 6 */
    if (!lua_isnil(L, 6)) {
        if (!lua_istable(L, 6)) return luaL_argerror(L, 3, "metadata must be a table of strings");
        lua_pushnil(L);
        while (lua_next(L, 6)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_argerror(
                    L, 3,
                    lua_pushfstring(L, "metadata must map strings to strings, got %s = %s",
                                    luaL_typename(L, -2), luaL_typename(L, -1)));
            if (has_nul(L, -2) || has_nul(L, -1))
                return luaL_argerror(
                    L, 3,
                    lua_pushfstring(L, "metadata '%s' holds a NUL byte, which the file cannot",
                                    lua_tostring(L, -2)));
            lua_pop(L, 1);
            m++;
        }
    }
    const char **keys = lua_newuserdatauv(L, sizeof(char *) * (size_t)(m + 1), 0);
    const char **values = lua_newuserdatauv(L, sizeof(char *) * (size_t)(m + 1), 0);
    if (m > 0) {
        int j = 0;
        lua_pushnil(L);
        while (lua_next(L, 6)) {
            keys[j] = lua_tostring(L, -2);
            values[j] = lua_tostring(L, -1);
            j++;
            lua_pop(L, 1);
        }
    }
    lt_check_status(L, td_save_safetensors(path, n, names, ts, m, keys, values), "save", 0);
    return 0;
}

/* tide.load(path) -> {name = tensor, ...}, {key = "value", ...} */
static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    td_safetensors s;
    td_status st = td_load_safetensors(path, &s);
    if (st != TD_OK) return lt_fail(L, "load", 0);
    lua_createtable(L, 0, s.n);
    for (int i = 0; i < s.n; i++) {
        td_tensor **slot = lt_new(L);
        *slot = s.tensors[i]; /* the box takes the reference */
        s.tensors[i] = NULL;
        lua_setfield(L, -2, s.names[i]);
    }
    lua_createtable(L, 0, s.n_meta);
    for (int i = 0; i < s.n_meta; i++) {
        lua_pushstring(L, s.meta_values[i]);
        lua_setfield(L, -2, s.meta_keys[i]);
    }
    td_safetensors_free(&s);
    lt_account(L);
    return 2;
}

/* ---- JSON --------------------------------------------------------------- */

static char json_msg[256];

/* the Lua value at idx as JSON, or NULL with json_msg set */
static json_t *to_json(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) {
            snprintf(json_msg, sizeof json_msg, "%s cannot be stored in JSON",
                     lua_tostring(L, idx));
            return NULL;
        }
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn(s, len);
        if (!j) snprintf(json_msg, sizeof json_msg, "string '%.40s' is not valid UTF-8", s);
        return j;
    }
    case LUA_TTABLE: break;
    default:
        snprintf(json_msg, sizeof json_msg, "a %s cannot be stored in JSON", luaL_typename(L, idx));
        return NULL;
    }
    if (depth > 64) {
        snprintf(json_msg, sizeof json_msg, "tables nested too deep (a cycle?)");
        return NULL;
    }
    /* a sequence 1..n becomes an array; anything else an object, integer
     * keys written in decimal */
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    json_t *out;
    if (count > 0 && count == len) {
        out = json_array();
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, idx, i);
            json_t *v = to_json(L, -1, depth + 1);
            lua_pop(L, 1);
            if (!v) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, v);
        }
        return out;
    }
    out = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char kbuf[32];
        const char *k;
        if (lua_type(L, -2) == LUA_TSTRING) {
            if (has_nul(L, -2)) {
                /* jansson reads no NUL in a key back */
                snprintf(json_msg, sizeof json_msg, "key '%.40s...' holds a NUL byte",
                         lua_tostring(L, -2));
                lua_pop(L, 2);
                json_decref(out);
                return NULL;
            }
            k = lua_tostring(L, -2);
        } else if (lua_isinteger(L, -2)) {
            snprintf(kbuf, sizeof kbuf, "%lld", (long long)lua_tointeger(L, -2));
            k = kbuf;
        } else {
            snprintf(json_msg, sizeof json_msg, "a %s key cannot be stored in JSON",
                     luaL_typename(L, -2));
            lua_pop(L, 2);
            json_decref(out);
            return NULL;
        }
        json_t *v = to_json(L, -1, depth + 1);
        if (!v || json_object_set_new(out, k, v) != 0) {
            if (v) snprintf(json_msg, sizeof json_msg, "key '%.40s' is not valid UTF-8", k);
            lua_pop(L, 2);
            json_decref(out);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return out;
}

/* a canonical decimal integer ("0", "12", "-3"), as to_json writes keys */
static int int_key(const char *k, lua_Integer *out)
{
    const char *p = k + (*k == '-');
    if (!*p || (p[0] == '0' && (p[1] || k[0] == '-'))) return 0;
    for (const char *c = p; *c; c++)
        if (*c < '0' || *c > '9') return 0;
    if (strlen(p) > 18) return 0;
    *out = (lua_Integer)strtoll(k, NULL, 10);
    return 1;
}

static void push_json(lua_State *L, json_t *j)
{
    luaL_checkstack(L, 4, "JSON nested too deep");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            lua_Integer ik;
            if (int_key(k, &ik))
                lua_pushinteger(L, ik);
            else
                lua_pushstring(L, k);
            push_json(L, v);
            lua_rawset(L, -3);
        }
        break;
    }
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(j), 0);
        for (size_t i = 0; i < json_array_size(j); i++) {
            push_json(L, json_array_get(j, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(j)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    default: lua_pushnil(L); break;
    }
}

/* core._json_encode(value) -> string: floats keep every bit (17 digits) */
static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    json_t *j = to_json(L, 1, 0);
    if (!j) return luaL_argerror(L, 1, json_msg);
    char *s =
        json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    json_decref(j);
    if (!s) return luaL_error(L, "out of memory encoding JSON");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

/* core._json_decode(string) -> value, or nil and the parse error */
static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    json_error_t err;
    /* Lua strings hold NUL bytes, and to_json writes them as \u0000 */
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!j) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s (line %d, column %d)", err.text, err.line, err.column);
        return 2;
    }
    push_json(L, j);
    json_decref(j);
    return 1;
}

/* ---- the generator's state ----------------------------------------------- */

/* core._rng_state() -> {4 hex strings}; all zeros when never seeded */
static int l_rng_state(lua_State *L)
{
    uint64_t s[4];
    td_random_get_state(s);
    lua_createtable(L, 4, 0);
    for (int i = 0; i < 4; i++) {
        char buf[17];
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)s[i]);
        lua_pushstring(L, buf);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* core._set_rng_state({4 hex strings}[, check_only]): with check_only, only
 * validates, so checkpoint.load can refuse a bad file before it changes
 * anything */
static int l_set_rng_state(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    uint64_t s[4];
    for (int i = 0; i < 4; i++) {
        lua_rawgeti(L, 1, i + 1);
        const char *h = lua_tostring(L, -1);
        int ok = h && lua_type(L, -1) == LUA_TSTRING && strlen(h) == 16;
        for (int k = 0; ok && k < 16; k++)
            ok = (h[k] >= '0' && h[k] <= '9') || (h[k] >= 'a' && h[k] <= 'f') ||
                 (h[k] >= 'A' && h[k] <= 'F');
        if (!ok)
            return luaL_argerror(L, 1, "the generator's state is four strings of 16 hex digits");
        s[i] = strtoull(h, NULL, 16);
        lua_pop(L, 1);
    }
    if (!lua_toboolean(L, 2)) td_random_set_state(s);
    return 0;
}

const luaL_Reg lt_serialize_funcs[] = {
    {"save", l_save},
    {"load", l_load},
    {"_json_encode", l_json_encode},
    {"_json_decode", l_json_decode},
    {"_rng_state", l_rng_state},
    {"_set_rng_state", l_set_rng_state},
    {NULL, NULL},
};
