/* libFuzzer target for tide.checkpoint.load (make fuzz): the first byte of
 * an input picks one of the checkpoint's metadata keys, the rest replaces
 * that key's JSON in a real checkpoint of a model, an optimizer, a
 * scheduler and a loader, which is then loaded into them. A Lua error is
 * fine; a crash, a leak, an abort, a failed load that changed an object or
 * a successful one that did not load the model is a bug. The Lua half is
 * fuzz_checkpoint.lua. */
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the binding in bindings/core/, linked into this executable */
extern int luaopen_tide_core(lua_State *L);

/* Lua lines as coverage: libFuzzer sees only the C that clang instrumented,
 * while most of what a checkpoint's metadata steers is Lua (checkpoint.lua
 * and each object's load_state_dict). While the load runs, a line hook
 * counts each pair (line before, line) in counters that libFuzzer reads
 * beside its own. */
#define LUA_EDGES 65536
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[LUA_EDGES];
static uint32_t last_line;

static void count_line(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "S", ar)) return;
    uint32_t here =
        (uint32_t)((uintptr_t)ar->source >> 3) * 2654435761u ^ (uint32_t)ar->currentline * 40503u;
    lua_edges[(here ^ last_line) % LUA_EDGES]++;
    last_line = here >> 1;
}

/* fuzz_cover(on): the hook on or off */
static int l_cover(lua_State *L)
{
    last_line = 0;
    lua_sethook(L, lua_toboolean(L, 1) ? count_line : NULL, LUA_MASKLINE, 0);
    return 0;
}

static lua_State *L;
static int run_ref, n_keys;
static char dir[4096];

static void fail_lua(const char *what)
{
    fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, lua_tostring(L, -1));
    abort();
}

/* the checkpoint folder of process pid under base, emptied (a crash may
 * leave a writer's temporary file beside the checkpoint) and removed */
static void remove_dir(const char *base, long pid)
{
    char d[sizeof dir], path[sizeof dir + 300];
    snprintf(d, sizeof d, "%s/fuzz_checkpoint.%ld", base, pid);
    DIR *h = opendir(d);
    struct dirent *e;
    while (h && (e = readdir(h)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", d, e->d_name);
        unlink(path);
    }
    if (h) closedir(h);
    rmdir(d);
}

static const char *base_dir(void)
{
    struct stat st;
    const char *base = getenv("TMPDIR");
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    return base && *base ? base : "/tmp";
}

static void remove_own_dir(void) { remove_dir(base_dir(), (long)getpid()); }

/* A folder of our own for the checkpoint, on tmpfs where there is one:
 * every input writes the file, and tide.save syncs it. A crash ends the
 * process without atexit, so the folders of processes that are gone are
 * removed here. */
static void make_dir(void)
{
    const char *base = base_dir();
    DIR *d = opendir(base);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "fuzz_checkpoint.", 16) != 0) continue;
        long pid = strtol(e->d_name + 16, &end, 10);
        if (*end == '\0' && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            remove_dir(base, pid);
    }
    if (d) closedir(d);
    snprintf(dir, sizeof dir, "%s/fuzz_checkpoint.%ld", base, (long)getpid());
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_checkpoint: cannot make %s: %s\n", dir, strerror(errno));
        abort();
    }
    atexit(remove_own_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* one thread: the tensors are tiny, and a pool would only add noise */
    setenv("TIDE_NUM_THREADS", "1", 0);
    make_dir();
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, TIDE_SOURCE_DIR "/bindings/?.lua;" TIDE_SOURCE_DIR
                                      "/bindings/?/init.lua;" TIDE_SOURCE_DIR "/tests/fuzz/?.lua");
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tide_core);
    lua_setfield(L, -2, "tide.core");
    lua_pop(L, 2);
    lua_register(L, "fuzz_cover", l_cover);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "fuzz_checkpoint");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) fail_lua("loading fuzz_checkpoint.lua");
    lua_getfield(L, -1, "KEYS");
    n_keys = (int)luaL_len(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "setup");
    lua_pushstring(L, dir);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) fail_lua("setup");
    run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return -1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
    lua_pushinteger(L, data[0] % n_keys + 1);
    lua_pushlstring(L, (const char *)data + 1, size - 1);
    /* run catches the load's errors itself: one that escapes is the
     * harness's own */
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) fail_lua("run");
    if (!lua_toboolean(L, -2)) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", lua_tostring(L, -1));
        __builtin_trap();
    }
    int skip = strcmp(lua_tostring(L, -1), "skip") == 0;
    lua_pop(L, 2);
    /* what the input allocated is freed before it ends, so that
     * libFuzzer's count of mallocs and frees balances and it looks for
     * leaks only where there may be one (the heap scan it runs otherwise
     * costs more than the input). Twice: a tensor's finalizer frees its C
     * memory in the first cycle, its Lua box goes in the second. */
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCCOLLECT);
    /* -1: an input tide.save refused is not worth keeping (clang 14's
     * libFuzzer keeps it all the same) */
    return skip ? -1 : 0;
}
