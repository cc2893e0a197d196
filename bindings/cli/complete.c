/* Tab completion for the REPL: globals and keywords, fields of tables
   (`tide.ze<TAB>`) and methods found through metatables (`x:ma<TAB>`),
   walking __index chains as trepl did. The word is resolved with
   lua_getfield under lua_pcall, so a throwing __index only means no
   matches. Inside a string literal, TAB completes a file name. */

#include <dirent.h>
#include <editline/readline.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* Everything that cannot be part of `a.b.c:d`, so that readline hands
   over the whole dotted word. */
#define WORD_BREAKS " \t\n\"\\'`@$><=;|&{(+-*/%^~#,[]()"
#define MAX_DEPTH   8 /* __index chains longer than this are cut */

static lua_State *complete_L;
static char **matches;
static size_t n_matches, cap_matches;

static const char *const keywords[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                       "false", "for",   "function", "goto",  "if",     "in",
                                       "local", "nil",   "not",      "or",    "repeat", "return",
                                       "then",  "true",  "until",    "while", NULL};

static void clear_matches(void)
{
    for (size_t i = 0; i < n_matches; i++) free(matches[i]);
    n_matches = 0;
}

/* Records prefix..name as a candidate. */
static void add_match(const char *prefix, size_t prefix_len, const char *name)
{
    if (n_matches == cap_matches) {
        size_t cap = cap_matches ? 2 * cap_matches : 64;
        char **grown = realloc(matches, cap * sizeof *grown);
        if (grown == NULL) return;
        matches = grown;
        cap_matches = cap;
    }
    size_t len = strlen(name);
    char *m = malloc(prefix_len + len + 1);
    if (m == NULL) return;
    memcpy(m, prefix, prefix_len);
    memcpy(m + prefix_len, name, len + 1);
    matches[n_matches++] = m;
}

static int is_identifier(const char *s)
{
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
    for (s++; *s; s++)
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

/* What the word being completed looks like: `prefix` is everything up to
   and including the last '.' or ':', `partial` the rest. */
typedef struct {
    const char *prefix;
    size_t prefix_len;
    const char *partial;
    int methods_only; /* after ':' only callables make sense */
} word;

static int is_callable(lua_State *L, int idx)
{
    if (lua_isfunction(L, idx)) return 1;
    int callable = luaL_getmetafield(L, idx, "__call") != LUA_TNIL;
    if (callable) lua_pop(L, 1);
    return callable;
}

/* Adds the string keys of the table at t that fit the word. Names that
   start with "__" (metamethods) show only when asked for. */
static void add_keys(lua_State *L, int t, const word *w)
{
    size_t plen = strlen(w->partial);
    int want_meta = strncmp(w->partial, "__", 2) == 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            if (is_identifier(k) && strncmp(k, w->partial, plen) == 0 &&
                (want_meta || strncmp(k, "__", 2) != 0) && (!w->methods_only || is_callable(L, -1)))
                add_match(w->prefix, w->prefix_len, k);
        }
        lua_pop(L, 1);
    }
}

static void add_fields(lua_State *L, int v, const word *w, int depth);

/* A function __index (a userdata answering fields in C, or a Lua closure)
   cannot be listed; guess from what it can reach: the metatable's own
   names and the tables among its upvalues (the methods table a binding
   keeps there), leaving out _ENV and the globals. */
static void add_index_function(lua_State *L, int mt, int fn, const word *w, int depth)
{
    add_keys(L, mt, w);
    const char *name;
    for (int i = 1; (name = lua_getupvalue(L, fn, i)) != NULL; i++) {
        lua_pushglobaltable(L);
        int skip = strcmp(name, "_ENV") == 0 || lua_rawequal(L, -1, -2) || !lua_istable(L, -2);
        lua_pop(L, 1);
        if (!skip) add_fields(L, lua_gettop(L), w, depth + 1);
        lua_pop(L, 1);
    }
}

/* Adds the fields of the value at v: its own keys when a table, then
   through its metatable, where a table __index is walked like the value
   itself. */
static void add_fields(lua_State *L, int v, const word *w, int depth)
{
    if (depth > MAX_DEPTH) return;
    if (lua_istable(L, v)) add_keys(L, v, w);
    if (!lua_getmetatable(L, v)) return;
    int mt = lua_gettop(L);
    lua_pushliteral(L, "__index");
    lua_rawget(L, mt);
    if (lua_istable(L, -1))
        add_fields(L, lua_gettop(L), w, depth + 1);
    else if (lua_isfunction(L, -1))
        add_index_function(L, mt, lua_gettop(L), w, depth);
    lua_settop(L, mt - 1);
}

/* Pushes the value that w->prefix names ("a.b.c." without its last
   separator), starting from the globals. Runs under lua_pcall. */
static int resolve_prefix(lua_State *L)
{
    const word *w = lua_touserdata(L, 1);
    lua_pushglobaltable(L);
    const char *p = w->prefix, *end = w->prefix + w->prefix_len - 1;
    while (p < end) {
        const char *dot = p;
        while (dot < end && *dot != '.' && *dot != ':') dot++;
        if (lua_isnoneornil(L, -1)) return 1;
        lua_pushlstring(L, p, (size_t)(dot - p));
        lua_gettable(L, -2); /* may run __index: hence the pcall */
        lua_remove(L, -2);
        p = dot + 1;
    }
    add_fields(L, lua_gettop(L), w, 0);
    return 0;
}

static void add_keywords(const word *w)
{
    size_t plen = strlen(w->partial);
    for (const char *const *k = keywords; *k; k++)
        if (strncmp(*k, w->partial, plen) == 0) add_match("", 0, *k);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the candidates and drops repeats (a key found both in a table and
   down its __index chain). */
static void sort_unique(void)
{
    if (n_matches == 0) return;
    qsort(matches, n_matches, sizeof *matches, compare_strings);
    size_t out = 1;
    for (size_t i = 1; i < n_matches; i++) {
        if (strcmp(matches[i], matches[out - 1]) == 0)
            free(matches[i]);
        else
            matches[out++] = matches[i];
    }
    n_matches = out;
}

static void find_matches(lua_State *L, const char *text)
{
    clear_matches();
    const char *sep = strpbrk(text, ".:");
    const char *last = NULL;
    for (; sep != NULL; sep = strpbrk(sep + 1, ".:")) last = sep;
    word w = {text, 0, text, 0};
    if (last != NULL) {
        w.prefix_len = (size_t)(last - text) + 1;
        w.partial = last + 1;
        w.methods_only = *last == ':';
    } else {
        add_keywords(&w);
    }
    int top = lua_gettop(L);
    if (last == NULL) {
        /* globals: the same walk as for fields, from _G */
        w.prefix_len = 0;
        lua_pushglobaltable(L);
        add_fields(L, lua_gettop(L), &w, 0);
    } else {
        lua_pushcfunction(L, resolve_prefix);
        lua_pushlightuserdata(L, &w);
        lua_pcall(L, 1, 0, 0);
    }
    lua_settop(L, top);
    sort_unique();
}

/* Hands the candidates to readline one at a time, as it expects. */
static char *next_match(const char *text, int state)
{
    static size_t next;
    (void)text;
    if (state == 0) next = 0;
    return next < n_matches ? strdup(matches[next++]) : NULL;
}

/* Where the open string literal before `start` begins (the index just
   past its quote), or -1 when start is not inside a string. */
static int string_start(int start)
{
    char quote = 0;
    int open = -1;
    for (int i = 0; i < start && rl_line_buffer[i]; i++) {
        char c = rl_line_buffer[i];
        if (quote && c == '\\' && rl_line_buffer[i + 1]) {
            i++;
        } else if (quote && c == quote) {
            quote = 0;
        } else if (!quote && (c == '"' || c == '\'')) {
            quote = c;
            open = i + 1;
        }
    }
    return quote ? open : -1;
}

/* File names for the string from line[open] to line[end]: the word breaks
   ('/', '-', ...) cut readline's word short of the path, so the directory
   is read from the whole string, and each candidate is the name with the
   part of it before `start` dropped (or the typed text between start and
   the name put in front). Directories end in '/'; dot files show only when
   the name typed starts with '.'; "~/" means $HOME. */
static void find_files(int open, int start, int end)
{
    clear_matches();
    char path[4096];
    int len = end - open;
    if (len < 0 || (size_t)len >= sizeof path) return;
    memcpy(path, rl_line_buffer + open, (size_t)len);
    path[len] = '\0';
    char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int base_at = open + (int)(base - path); /* where the name starts in the line */
    char dir[4096];
    const char *home = getenv("HOME");
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if (path[0] == '~' && path[1] == '/' && home != NULL)
        snprintf(dir, sizeof dir, "%s%.*s", home, (int)(slash - path - 1), path + 1);
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    DIR *d = opendir(dir);
    if (d == NULL) return;
    size_t blen = strlen(base);
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (name[0] == '.' && base[0] != '.') continue;
        char full[8192], cand[4096];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, name);
        int is_dir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
        if (base_at >= start)
            snprintf(cand, sizeof cand, "%.*s%s%s", base_at - start, rl_line_buffer + start, name,
                     is_dir ? "/" : "");
        else if ((int)strlen(name) >= start - base_at)
            snprintf(cand, sizeof cand, "%s%s", name + (start - base_at), is_dir ? "/" : "");
        else
            continue;
        add_match("", 0, cand);
    }
    closedir(d);
    sort_unique();
}

static char **complete(const char *text, int start, int end)
{
    rl_attempted_completion_over = 1; /* never readline's own file names */
    int open = string_start(start);
    if (open >= 0)
        find_files(open, start, end);
    else
        find_matches(complete_L, text);
    return n_matches ? rl_completion_matches(text, next_match) : NULL;
}

void tide_complete_init(lua_State *L)
{
    complete_L = L;
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = WORD_BREAKS;
    rl_completer_word_break_characters = (char *)WORD_BREAKS;
    rl_completion_append_character = '\0'; /* `tide.zeros` then `(` or `.` */
}
