/* The tide command: lua's command line (lua.c) with the tide library put
   within reach of `require` and a REPL of its own (repl.c).

     tide script.lua a b    run a script; arg[0] = script, arg[1..] = a b
     tide -e CODE           run CODE (repeatable), -l mod requires mod
     tide -i script.lua     REPL after the script
     tide -                 run stdin as a script
     tide --threads N ...   kernels on N threads (TIDE_NUM_THREADS)
     tide                   the REPL (also when stdin is not a terminal) */

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "tide/tide.h"

/* Defined by the binding in bindings/core/, linked into this executable. */
extern int luaopen_tide_core(lua_State *L);

/* Option bits found by collect_args. */
enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_H = 16, HAS_THREADS = 32 };

static void print_usage(FILE *out)
{
    fputs("usage: tide [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter the REPL after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -v        show version information\n"
          "  -W        turn warnings on\n"
          "  --threads N  run kernels on N threads (default: the free cores)\n"
          "  -h        show this help\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "With no script and no -e or -v, tide starts the REPL.\n"
          "Environment: TIDE_PATH (where tide's Lua files are), TIDE_DOC_DIR\n"
          "(docs for ?name), TIDE_HISTORY (REPL history, default ~/.tide_history),\n"
          "TIDE_NUM_THREADS (as --threads).\n",
          out);
}

static void print_version(void)
{
    printf("tide %s (%s)\n", TIDE_VERSION, LUA_RELEASE);
    fflush(stdout);
}

double tide_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tide_report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (td_dist_world_size() > 1) /* under mpirun: which rank failed */
            fprintf(stderr, "%s: rank %d: %s\n", TIDE_PROGNAME, td_dist_rank(),
                    msg ? msg : "(error object is not a string)");
        else
            fprintf(stderr, "%s: %s\n", TIDE_PROGNAME,
                    msg ? msg : "(error object is not a string)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

/* --- Ctrl-C: as lua.c, a signal handler can only set a hook; the hook
   then raises the error inside the running Lua code. --- */

static lua_State *running_L = NULL;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void on_sigint(int sig)
{
    int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills the process */
    lua_sethook(running_L, stop_hook, mask, 1);
}

/* Message handler: adds a traceback; non-string errors go through
   __tostring when they have one. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int tide_docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    running_L = L;
    signal(SIGINT, on_sigint);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    lua_remove(L, base);
    return status;
}

/* --- where tide's Lua files are --- */

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void add_dir_templates(luaL_Buffer *b, const char *dir)
{
    luaL_addstring(b, dir);
    luaL_addstring(b, "/?.lua;");
    luaL_addstring(b, dir);
    luaL_addstring(b, "/?/init.lua");
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The folder above the one that holds this executable, symbolic links
   resolved: the prefix of an installed tide (PREFIX/bin/tide). "" when
   /proc/self/exe cannot be read. */
static const char *exe_prefix(void)
{
    static char prefix[4096];
    static int done;
    if (!done) {
        done = 1;
        ssize_t n = readlink("/proc/self/exe", prefix, sizeof prefix - 1);
        prefix[n > 0 ? n : 0] = '\0';
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(prefix, '/');
            if (slash == NULL) {
                prefix[0] = '\0';
                break;
            }
            *slash = '\0';
        }
    }
    return prefix;
}

/* Where an installed tide's Lua files are, relative to its own location,
   so a tree moved (DESTDIR, `cmake --install --prefix`, a luarocks tree)
   needs no TIDE_PATH: the configured folder first, then the layout that
   `make install` and luarocks trees share. NULL when tide is not installed
   (a build directory). */
static const char *installed_lua_dir(void)
{
    static char dir[4096 + 64];
    static const char *found;
    static int done;
    if (done) return found;
    done = 1;
    const char *prefix = exe_prefix();
    if (*prefix == '\0') return NULL;
    static const char *const rel[] = {TIDE_LUA_RELDIR, "share/lua/5.4"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        char init[sizeof dir + 32];
        snprintf(dir, sizeof dir, "%s/%s", prefix, rel[i]);
        snprintf(init, sizeof init, "%s/tide/init.lua", dir);
        if (file_exists(init)) return found = dir;
    }
    return NULL;
}

/* An installed tide's docs, for the REPL's `?`: the configured folder
   beside the prefix, else tide/doc beside the Lua files (where the
   rockspec puts them, since luarocks deploys only bin/, lua/ and lib/).
   Passed on as TIDE_DOC_DIR, which the help reads first, unless the user
   set it. */
static void set_installed_doc_dir(void)
{
    const char *env = getenv("TIDE_DOC_DIR");
    const char *lua = installed_lua_dir();
    if ((env != NULL && *env != '\0') || lua == NULL) return;
    char dir[4096 + 64];
    snprintf(dir, sizeof dir, "%s/%s", exe_prefix(), TIDE_DOC_RELDIR);
    if (!dir_exists(dir)) snprintf(dir, sizeof dir, "%s/tide/doc", lua);
    if (dir_exists(dir)) setenv("TIDE_DOC_DIR", dir, 1);
}

/* Pushes the package.path templates for tide: TIDE_PATH (a template list
   when it holds a '?', else a directory), else the install tree this
   executable sits in, else the source tree so that a build runs from any
   directory without installing, else the configured install directory. */
static void push_tide_path(lua_State *L)
{
    const char *env = getenv("TIDE_PATH");
    const char *installed = installed_lua_dir();
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (env != NULL && *env != '\0') {
        if (strchr(env, '?') != NULL)
            luaL_addstring(&b, env);
        else
            add_dir_templates(&b, env);
    } else if (installed != NULL) {
        add_dir_templates(&b, installed);
    } else if (dir_exists(TIDE_SOURCE_DIR "/bindings")) {
        add_dir_templates(&b, TIDE_SOURCE_DIR "/bindings");
        luaL_addstring(&b, ";" TIDE_SOURCE_DIR "/models/?.lua");
    } else {
        add_dir_templates(&b, TIDE_LUA_INSTALL_DIR);
    }
    luaL_pushresult(&b);
}

/* Prepends tide's templates to package.path and preloads tide.core, which
   is linked into this executable. */
static void setup_package(lua_State *L)
{
    set_installed_doc_dir();
    lua_getglobal(L, "package");
    push_tide_path(L);
    lua_pushliteral(L, ";");
    lua_getfield(L, -3, "path");
    lua_concat(L, 3);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tide_core);
    lua_setfield(L, -2, "tide.core");
    lua_pop(L, 2);
}

/* _G.__index: the first read of an unset global `tide` requires the
   library, so `tide -e 'print(tide.zeros{2})'` works while `tide -e ''`
   and scripts that never touch it do not pay for loading it. */
static int lazy_global(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "tide") != 0) return 0;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tide");
    lua_call(L, 1, 1);
    lua_pushliteral(L, "tide");
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

static void setup_lazy_global(lua_State *L)
{
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lazy_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* --- the command line, as lua.c reads it --- */

/* --threads N: TIDE_NUM_THREADS for the runtime, which reads it when
   tide's core loads (runtime/threads.c); 0 when N is not a count */
static int set_threads(const char *v)
{
    return td_thread_count(v) && setenv("TIDE_NUM_THREADS", v, 1) == 0;
}

/* Reads the options; *first becomes the index of the script (argc when
   there is none). */
static int collect_args(char **argv, int *first)
{
    int args = 0, i;
    for (i = 1; argv[i] != NULL; i++) {
        *first = i;
        if (argv[i][0] != '-') return args; /* the script */
        switch (argv[i][1]) {
        case '-':
            if (strcmp(argv[i], "--help") == 0) {
                args |= HAS_H;
                break;
            }
            if (strncmp(argv[i], "--threads", 9) == 0 &&
                (argv[i][9] == '\0' || argv[i][9] == '=')) {
                const char *v = argv[i][9] == '=' ? argv[i] + 10 : argv[++i];
                if (!v || !set_threads(v)) {
                    *first = i;
                    return HAS_ERROR | HAS_THREADS;
                }
                break;
            }
            if (argv[i][2] != '\0') return HAS_ERROR;
            *first = i + 1;
            return args;
        case '\0': return args; /* "-": stdin is the script */
        case 'i':
            if (argv[i][2] != '\0') return HAS_ERROR;
            args |= HAS_I;
            break;
        case 'v':
            if (argv[i][2] != '\0') return HAS_ERROR;
            args |= HAS_V;
            break;
        case 'h':
            if (argv[i][2] != '\0') return HAS_ERROR;
            args |= HAS_H;
            break;
        case 'W':
            if (argv[i][2] != '\0') return HAS_ERROR;
            break;
        case 'e':
        case 'l': /* both take an argument */
            if (argv[i][1] == 'e') args |= HAS_E;
            if (argv[i][2] == '\0') { /* argument is the next word */
                i++;
                if (argv[i] == NULL || argv[i][0] == '-') return HAS_ERROR;
            }
            break;
        default: return HAS_ERROR;
        }
    }
    *first = i;
    return args;
}

/* Global `arg`: arg[0] the script, arg[1..] its arguments, the interpreter
   and options at negative indices. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
    if (script == argc) script = 0; /* no script: arg[0] is the interpreter */
    lua_createtable(L, argc - (script + 1), script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int do_string(lua_State *L, const char *code)
{
    int status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
    if (status == LUA_OK) status = tide_docall(L, 0, 0);
    return tide_report(L, status);
}

static int do_require(lua_State *L, const char *name)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    int status = tide_docall(L, 1, 1);
    if (status == LUA_OK) lua_setglobal(L, name);
    return tide_report(L, status);
}

/* Runs -e, -l and -W in order; 0 when one of them failed. */
static int run_args(lua_State *L, char **argv, int n)
{
    for (int i = 1; i < n; i++) {
        int option = argv[i][1];
        if (option == 'W') {
            lua_warning(L, "@on", 0);
        } else if (option == 'e' || option == 'l') {
            const char *extra = argv[i] + 2;
            if (*extra == '\0') extra = argv[++i];
            int status = option == 'e' ? do_string(L, extra) : do_require(L, extra);
            if (status != LUA_OK) return 0;
        }
    }
    return 1;
}

/* Pushes arg[1..#arg], which the script also receives as `...`. */
static int push_script_args(lua_State *L)
{
    if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(n + 1));
    return n;
}

static int handle_script(lua_State *L, char **argv)
{
    const char *fname = argv[0];
    if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
        fname = NULL;                     /* luaL_loadfile reads stdin */
    int status = luaL_loadfile(L, fname); /* skips a first '#' line */
    if (status == LUA_OK) status = tide_docall(L, push_script_args(L), LUA_MULTRET);
    return tide_report(L, status);
}

/* Everything runs here, under lua_pcall, so a Lua error in the setup is
   reported rather than fatal. Pushes true on success. */
static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    int script;
    int args = collect_args(argv, &script);
    if (args == (HAS_ERROR | HAS_THREADS)) {
        fprintf(stderr, "%s: --threads needs a thread count from 1 to %d (4 per online CPU)%s%s\n",
                TIDE_PROGNAME, td_max_threads(), argv[script] ? ", got " : "",
                argv[script] ? argv[script] : "");
        print_usage(stderr);
        return 0;
    }
    if (args == HAS_ERROR) {
        const char *opt = argv[script];
        if ((opt[1] == 'e' || opt[1] == 'l') && opt[2] == '\0')
            fprintf(stderr, "%s: '%s' needs argument\n", TIDE_PROGNAME, opt);
        else
            fprintf(stderr, "%s: unrecognized option '%s'\n", TIDE_PROGNAME, opt);
        print_usage(stderr);
        return 0;
    }
    if (args & HAS_H) {
        print_usage(stdout);
        lua_pushboolean(L, 1);
        return 1;
    }
    luaL_checkversion(L);
    luaL_openlibs(L);
    setup_package(L);
    setup_lazy_global(L);
    create_arg_table(L, argv, argc, script);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    if (args & HAS_V) print_version();
    if (!run_args(L, argv, script)) return 0;
    if (script < argc && handle_script(L, argv + script) != LUA_OK) return 0;
    if ((args & HAS_I) || (script == argc && !(args & (HAS_E | HAS_V)))) {
        if (tide_repl(L) != 0) return 0;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", TIDE_PROGNAME);
        return EXIT_FAILURE;
    }
    lua_gc(L, LUA_GCSTOP); /* no collection while the libraries load */
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int ok = lua_toboolean(L, -1);
    tide_report(L, status);
    /* a failing rank ends the whole job, or the others would wait for it
     * in their next collective until the timeout */
    if (!(status == LUA_OK && ok)) td_dist_abort(1);
    lua_close(L);
    return (status == LUA_OK && ok) ? EXIT_SUCCESS : EXIT_FAILURE;
}
