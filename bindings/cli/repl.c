/* The tide REPL: line editing and history through libedit when stdin is a
   terminal, plain lines otherwise (so tests and pipes can drive it).
   Each input is compiled as `return <input>` first, so an expression
   prints its values, then as a statement; code that ends early ("<eof>"
   in the syntax error) continues on a ">> " line. A trailing ';' silences
   the results, and every evaluation is followed by its wall time. Results
   are shown by tide.print's show (tables laid out) and kept in `_`; the
   top-level locals of a chunk become globals, so `local x = 5` is still
   there on the next line, as in trepl. */

#include <editline/readline.h>
#include <lauxlib.h>
#include <lua.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PROMPT       "tide> "
#define PROMPT2      ">> "
#define HISTORY_MAX  1000
#define CHUNKNAME    "=stdin"
#define NEED_MORE    (-1)  /* compile() status: the chunk is unfinished */
#define INPUT_CLOSED (-2)  /* read_chunk() status: end of input */
#define INTERRUPTED  (-3)  /* read_chunk() status: Ctrl-C at a prompt */
#define CONTINUATION ">> " /* history file: the next line of a multi-line entry */

static int interactive;         /* stdin is a terminal */
static char history_path[4096]; /* empty: no history file */

/* Ctrl-C at a prompt: libedit's read fails with EINTR and readline returns
   NULL; this flag tells that apart from end of input, so Ctrl-C drops the
   line being typed instead of ending the session. */
static volatile sig_atomic_t prompt_interrupted;

/* Ctrl-C during an evaluation; see repl_docall. */
static volatile sig_atomic_t eval_interrupted;
static lua_State *eval_L;

/* tide.print's show in the registry; LUA_NOREF: results go to print as they are */
static int show_ref = LUA_NOREF;

static void on_prompt_sigint(int sig)
{
    (void)sig;
    prompt_interrupted = 1;
}

/* --- input --- */

/* One line without its newline, malloc'd; NULL at end of input. */
static char *read_line(const char *prompt)
{
    if (interactive) {
        struct sigaction sa = {0}, old;
        sa.sa_handler = on_prompt_sigint; /* no SA_RESTART: the read must end */
        sigaction(SIGINT, &sa, &old);
        char *line = readline(prompt);
        sigaction(SIGINT, &old, NULL);
        return line;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    return line;
}

/* Appends "\n" and line to *code (both malloc'd); frees line. */
static char *append_line(char *code, char *line)
{
    size_t a = strlen(code), b = strlen(line);
    char *joined = realloc(code, a + b + 2);
    if (joined == NULL) {
        free(line);
        return code;
    }
    joined[a] = '\n';
    memcpy(joined + a + 1, line, b + 1);
    free(line);
    return joined;
}

/* --- history: a plain text file, one line per entry, the newest last; a
   multi-line entry (a function typed over several prompts) stays one
   entry, its later lines written after CONTINUATION --- */

static void history_set_path(void)
{
    const char *env = getenv("TIDE_HISTORY");
    const char *home = getenv("HOME");
    if (env != NULL && *env != '\0')
        snprintf(history_path, sizeof history_path, "%s", env);
    else if (home != NULL && *home != '\0')
        snprintf(history_path, sizeof history_path, "%s/.tide_history", home);
}

static void history_write_entry(FILE *f, const char *entry)
{
    for (const char *nl; (nl = strchr(entry, '\n')) != NULL; entry = nl + 1)
        fprintf(f, "%.*s\n" CONTINUATION, (int)(nl - entry), entry);
    fprintf(f, "%s\n", entry);
}

/* Rewrites the file with its newest HISTORY_MAX entries, so it never grows
   without bound while each session only appends. */
static void history_rewrite(char **entries, int n)
{
    FILE *f = fopen(history_path, "w");
    if (f == NULL) return;
    for (int i = n > HISTORY_MAX ? n - HISTORY_MAX : 0; i < n; i++)
        history_write_entry(f, entries[i]);
    fclose(f);
}

static void history_load(void)
{
    FILE *f = fopen(history_path, "r");
    if (f == NULL) return;
    char **lines = NULL, *line = NULL;
    int n = 0, cap = 0;
    size_t len = 0;
    ssize_t got;
    while ((got = getline(&line, &len, f)) >= 0) {
        if (got > 0 && line[got - 1] == '\n') line[got - 1] = '\0';
        if (n > 0 && strncmp(line, CONTINUATION, strlen(CONTINUATION)) == 0) {
            char *more = strdup(line + strlen(CONTINUATION));
            if (more != NULL) lines[n - 1] = append_line(lines[n - 1], more);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            lines = realloc(lines, (size_t)cap * sizeof *lines);
            if (lines == NULL) break;
        }
        lines[n++] = strdup(line);
    }
    fclose(f);
    free(line);
    for (int i = n > HISTORY_MAX ? n - HISTORY_MAX : 0; i < n; i++) add_history(lines[i]);
    if (n > HISTORY_MAX) history_rewrite(lines, n);
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

/* Adds an entry to the editing history and appends it to the file at
   once, so a crashed session keeps what was typed. */
static void history_save(const char *line)
{
    static char *last = NULL;
    if (!interactive || line[strspn(line, " \t")] == '\0') return;
    if (last != NULL && strcmp(last, line) == 0) return;
    free(last);
    last = strdup(line);
    add_history(line);
    if (history_path[0] == '\0') return;
    FILE *f = fopen(history_path, "a");
    if (f == NULL) return;
    history_write_entry(f, line);
    fclose(f);
}

/* --- compiling --- */

/* A syntax error that ends at "<eof>" means the code is unfinished. */
static int is_incomplete(lua_State *L, int status)
{
    static const char mark[] = "<eof>";
    size_t len, marklen = sizeof mark - 1;
    if (status != LUA_ERRSYNTAX) return 0;
    const char *msg = lua_tolstring(L, -1, &len);
    return msg != NULL && len >= marklen && strcmp(msg + len - marklen, mark) == 0;
}

/* A statement chunk ends with a call of its first argument (export_locals),
   which then sees the chunk's top-level locals; a chunk that ends with
   `return` cannot take it and runs without. */
static int load_statement(lua_State *L, const char *code)
{
    const char *with = lua_pushfstring(L, "%s\n;(...)()", code);
    int status = luaL_loadbuffer(L, with, strlen(with), CHUNKNAME);
    lua_remove(L, -2);
    if (status == LUA_OK) return LUA_OK;
    lua_pop(L, 1);
    return luaL_loadbuffer(L, code, strlen(code), CHUNKNAME);
}

/* Pushes the compiled chunk (LUA_OK), or returns NEED_MORE with nothing
   pushed, or a syntax error status with its message pushed. */
static int compile(lua_State *L, const char *code)
{
    const char *ret = lua_pushfstring(L, "return %s", code);
    int status = luaL_loadbuffer(L, ret, strlen(ret), CHUNKNAME);
    lua_remove(L, -2);
    if (status == LUA_OK) return LUA_OK;
    int ret_incomplete = is_incomplete(L, status);
    lua_pop(L, 1);
    status = load_statement(L, code);
    if (status == LUA_OK) return LUA_OK;
    if (is_incomplete(L, status) || ret_incomplete) {
        lua_pop(L, 1);
        return NEED_MORE;
    }
    return status;
}

/* Compiles `first` and as many continuation lines as it needs. Returns
   LUA_OK with the chunk pushed, an error status with the message pushed,
   or INPUT_CLOSED (nothing pushed). *code receives the whole text (malloc'd). */
static int read_chunk(lua_State *L, char *first, char **code)
{
    *code = first;
    for (;;) {
        int status = compile(L, *code);
        if (status != NEED_MORE) return status;
        char *line = read_line(PROMPT2);
        if (line == NULL && prompt_interrupted) return INTERRUPTED;
        if (line == NULL) {
            /* end of input inside a chunk: say what is unfinished, stop */
            if (luaL_loadbuffer(L, *code, strlen(*code), CHUNKNAME) != LUA_OK)
                tide_report(L, LUA_ERRSYNTAX);
            else
                lua_pop(L, 1);
            return INPUT_CLOSED;
        }
        *code = append_line(*code, line);
    }
}

/* --- evaluating --- */

static int ends_with_semicolon(const char *code)
{
    size_t n = strlen(code);
    while (n > 0 && (code[n - 1] == ' ' || code[n - 1] == '\t' || code[n - 1] == '\r')) n--;
    return n > 0 && code[n - 1] == ';';
}

/* Called at the end of a statement chunk: copies the chunk's active locals
   into globals of the same names, later ones last so that a shadowing
   local wins. */
static int export_locals(lua_State *L)
{
    lua_Debug ar;
    if (!lua_getstack(L, 1, &ar)) return 0;
    const char *name;
    for (int i = 1; (name = lua_getlocal(L, &ar, i)) != NULL; i++) {
        if (name[0] == '(' || strcmp(name, "_ENV") == 0) /* temporaries, the environment */
            lua_pop(L, 1);
        else
            lua_setglobal(L, name);
    }
    return 0;
}

/* Ctrl-C during an evaluation. As in lua.c, the handler can only set a
   hook, which raises the error in the running Lua code; unlike lua.c the
   hook stays set until the evaluation returns, so a pcall inside the
   library cannot swallow the interrupt, and the message is a plain
   "interrupted": where it landed (a file of the library, most often) says
   nothing to the user. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_pushliteral(L, "interrupted");
    lua_error(L);
}

static void on_eval_sigint(int sig)
{
    eval_interrupted = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills the process */
    /* line and count events only: a call hook would also fire on the
       message handler and turn the error into an error in error handling */
    lua_sethook(eval_L, interrupt_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* Message handler: a traceback, or "interrupted" alone after Ctrl-C
   (containers that prefix a child's error must not change it). */
static int eval_msghandler(lua_State *L)
{
    if (eval_interrupted) {
        lua_pushliteral(L, "interrupted");
        return 1;
    }
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* tide_docall for the REPL's chunks: its own Ctrl-C and message handler. */
static int repl_docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, eval_msghandler);
    lua_insert(L, base);
    eval_L = L;
    eval_interrupted = 0;
    signal(SIGINT, on_eval_sigint);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    lua_sethook(L, NULL, 0, 0);
    if (eval_interrupted && status != LUA_OK) {
        lua_pop(L, 1); /* whatever a library made of it */
        lua_pushliteral(L, "interrupted");
    }
    eval_interrupted = 0;
    lua_remove(L, base);
    return status;
}

/* Prints the values above `base`, laid out by tide.print's show when the
   library loaded, through the global print. */
static void print_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    if (n <= 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    if (show_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, show_ref);
        lua_insert(L, base + 1);
        if (lua_pcall(L, n, 1, 0) != LUA_OK) {
            fprintf(stderr, "%s: error showing the results (%s)\n", TIDE_PROGNAME,
                    lua_tostring(L, -1));
            return;
        }
        n = 1;
    }
    lua_getglobal(L, "print");
    lua_insert(L, base + 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK) {
        const char *msg = lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
        fprintf(stderr, "%s: %s\n", TIDE_PROGNAME, msg);
    }
}

/* Runs the chunk on top of the stack and shows its results and time; the
   first result, shown or not, becomes `_`. */
static void evaluate(lua_State *L, int silent)
{
    int base = lua_gettop(L) - 1;
    lua_pushcfunction(L, export_locals);
    double start = tide_now();
    int status = repl_docall(L, 1, LUA_MULTRET);
    double elapsed = tide_now() - start;
    if (status == LUA_OK && lua_gettop(L) > base) {
        lua_pushvalue(L, base + 1);
        lua_setglobal(L, "_");
    }
    if (status == LUA_OK && !silent)
        print_results(L, base);
    else
        tide_report(L, status);
    lua_settop(L, base);
    fflush(stderr);
    printf("[%.4fs]\n", elapsed);
    fflush(stdout);
}

/* "?" and "?name" ask for help instead of running code. */
static int handle_help(lua_State *L, const char *line)
{
    const char *p = line + strspn(line, " \t");
    if (*p != '?') return 0;
    tide_help(L, p + 1);
    fflush(stdout);
    return 1;
}

/* One prompt's worth: reads, compiles, runs. 0 at end of input. */
static int repl_step(lua_State *L)
{
    char *line = read_line(PROMPT);
    if (line == NULL && prompt_interrupted) {
        prompt_interrupted = 0;
        putchar('\n');
        return 1;
    }
    if (line == NULL) return 0;
    if (line[strspn(line, " \t\r")] == '\0') {
        free(line);
        return 1;
    }
    if (handle_help(L, line)) {
        history_save(line);
        free(line);
        return 1;
    }
    char *code;
    int status = read_chunk(L, line, &code);
    history_save(code); /* the whole chunk: recalled, it runs again as typed */
    int silent = ends_with_semicolon(code);
    free(code);
    if (status == INPUT_CLOSED) return 0;
    if (status == INTERRUPTED) {
        prompt_interrupted = 0;
        putchar('\n');
        return 1;
    }
    if (status == LUA_OK)
        evaluate(L, silent);
    else
        tide_report(L, status);
    return 1;
}

/* Loads the library into the global `tide` so that completion sees it,
   and keeps tide.print's show for the results; a broken library leaves a
   warning and a working REPL. */
static void preload_tide(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tide");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
        lua_setglobal(L, "tide");
        int top = lua_gettop(L);
        lua_getglobal(L, "require");
        lua_pushliteral(L, "tide.print");
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_getfield(L, -1, "show") == LUA_TFUNCTION)
            show_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_settop(L, top);
        return;
    }
    fprintf(stderr, "%s: warning: the tide library did not load: %s\n", TIDE_PROGNAME,
            lua_tostring(L, -1));
    lua_pop(L, 1);
}

int tide_repl(lua_State *L)
{
    interactive = isatty(STDIN_FILENO);
    if (interactive) {
        setlocale(LC_CTYPE, ""); /* UTF-8 editing; LC_NUMERIC stays "C" for Lua */
        rl_readline_name = "tide";
        tide_complete_init(L);
        history_set_path();
        stifle_history(HISTORY_MAX);
        history_load();
        printf("tide %s (%s)  type ? for help, Ctrl-D to exit\n", TIDE_VERSION, LUA_RELEASE);
        fflush(stdout);
    }
    preload_tide(L);
    int top = lua_gettop(L);
    while (repl_step(L)) lua_settop(L, top);
    lua_settop(L, top);
    if (interactive) putchar('\n');
    fflush(stdout);
    return 0;
}
