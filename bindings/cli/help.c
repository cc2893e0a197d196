/* `?name` in the REPL: prints the section of the docs (Markdown) whose heading names
   `name`. A heading "## tide.zeros(shape, opts)" answers ?zeros and
   ?tide.zeros; "## Tensor:matmul" answers ?matmul, ?Tensor:matmul and
   ?x:matmul. The section runs to the next heading of the same or a higher
   level. Docs are looked for in $TIDE_DOC_DIR, then the source tree's
   docs/, then the install directory. A loss is also found by its module
   name or a qualified name (?CrossEntropyLoss, ?tide.nn.FocalLoss,
   ?F.cross_entropy): the loss table says its options and defaults, then
   its section follows; an op of the op table likewise (?tide.F.elu). A
   qualified name falls back to its last part, looked for first in the
   file its namespace names (?tide.nn.Linear:
   "## Linear" of nn.md); ?x:name asks the value x (a tensor's method, a
   module's class); a namespace gives its file's introduction and the
   names it documents (?tide.nn), or a table its fields (?tide.F). Long
   help goes through a pager when stdout is a terminal. */

#include <dirent.h>
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "tide/tide.h"

#define NAME_MAX_LEN 256
#define NAME_CHARS   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:"

/* where the help text goes: a memory stream, paged or copied to stdout */
static FILE *out;

static const char repl_help[] =
    "tide REPL\n"
    "  1 + 1           an expression prints its value(s); tables are laid out\n"
    "  _               the last result\n"
    "  x = f();        a trailing ';' silences the results\n"
    "  local y = 2     top-level locals stay visible on the next lines\n"
    "  function f()    unfinished code continues on a '>> ' line\n"
    "  ?name           help from the docs: ?tide.zeros, ?tide.nn.Linear, ?x:sum, ?tide.nn\n"
    "  ?               this help\n"
    "  TAB             completes globals, fields (tide.ze<TAB>), methods (x:ma<TAB>)\n"
    "                  and, inside a string, file names\n"
    "  Ctrl-C          interrupts a running evaluation\n"
    "  Ctrl-D          exits\n"
    "Each evaluation is followed by its wall time, as [0.0012s].\n"
    "The global `tide` is loaded; history is kept in ~/.tide_history\n"
    "(TIDE_HISTORY moves it). See docs/repl.md.\n";

/* Skips the spaces around a query; writes the name into out. */
static void trim_name(const char *in, char *out, size_t size)
{
    in += strspn(in, " \t");
    size_t n = strlen(in);
    while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t' || in[n - 1] == '\r')) n--;
    if (n >= size) n = size - 1;
    memcpy(out, in, n);
    out[n] = '\0';
}

/* Level of a Markdown heading ("## x" is 2), 0 for any other line. */
static int heading_level(const char *line)
{
    int level = 0;
    while (line[level] == '#') level++;
    return level > 0 && (line[level] == ' ' || line[level] == '\t') ? level : 0;
}

/* The name a heading documents: its first run of name characters, past
   backticks, so "## `tide.zeros(shape)`" gives "tide.zeros". */
static void heading_name(const char *line, char *out, size_t size)
{
    const char *p = line + strspn(line, "#");
    p += strspn(p, " \t`");
    size_t n = strspn(p, NAME_CHARS);
    if (n >= size) n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static const char *skip_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(s, prefix, n) == 0 ? s + n : s;
}

/* Does the heading name `id` answer the query `q`? */
static int names_match(const char *id, const char *q)
{
    const char *a = skip_prefix(id, "tide."), *b = skip_prefix(q, "tide.");
    if (*a == '\0' || *b == '\0') return 0;
    if (strcmp(a, b) == 0) return 1;
    if (strncmp(a, "Tensor:", 7) != 0 && strncmp(a, "Tensor.", 7) != 0) return 0;
    const char *method = strrchr(b, ':'); /* ?x:matmul asks for the method */
    return strcmp(a + 7, method ? method + 1 : b) == 0;
}

/* Prints the section of the file at path that documents q; 1 if found. */
static int print_section(const char *path, const char *q)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char *line = NULL, name[NAME_MAX_LEN];
    size_t cap = 0;
    int found = 0, blanks = 0;
    while (getline(&line, &cap, f) >= 0) {
        int level = heading_level(line);
        if (found && level > 0 && level <= found) break;
        if (!found && level >= 2) {
            heading_name(line, name, sizeof name);
            if (names_match(name, q)) found = level;
        }
        if (!found) continue;
        if (line[strspn(line, " \t\r\n")] == '\0') { /* hold blank lines: none at the end */
            blanks++;
            continue;
        }
        for (; blanks > 0; blanks--) fputc('\n', out);
        fputs(line, out);
    }
    free(line);
    fclose(f);
    return found != 0;
}

static int is_markdown(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 3 && strcmp(e->d_name + n - 3, ".md") == 0;
}

/* Searches the .md files of dir in name order, the file named first
   ("nn.md") before the others; 1 when a section was printed. */
static int search_dir(const char *dir, const char *q, const char *first)
{
    char path[4096];
    if (first != NULL) {
        snprintf(path, sizeof path, "%s/%s", dir, first);
        if (print_section(path, q)) return 1;
    }
    struct dirent **files;
    int n = scandir(dir, &files, is_markdown, alphasort);
    if (n < 0) return 0;
    int found = 0;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]->d_name);
        if (!found && !(first && strcmp(first, files[i]->d_name) == 0))
            found = print_section(path, q);
        free(files[i]);
    }
    free(files);
    return found;
}

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *docs_dir(void)
{
    return dir_exists(TIDE_SOURCE_DIR "/docs") ? TIDE_SOURCE_DIR "/docs" : TIDE_DOC_INSTALL_DIR;
}

/* the section of q in the docs, looked for in `first` (a file name or
   NULL) before the others; 1 when one was printed */
static int search_docs_in(const char *q, const char *first)
{
    const char *env = getenv("TIDE_DOC_DIR");
    if (env != NULL && *env != '\0' && search_dir(env, q, first)) return 1;
    return search_dir(docs_dir(), q, first);
}

static int search_docs(const char *q) { return search_docs_in(q, NULL); }

/* q without "tide.", "nn.", "F.", "functional." in front */
static const char *unqualified(const char *q)
{
    static const char *const prefixes[] = {"tide.", "nn.", "functional.", "F."};
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
            size_t n = strlen(prefixes[i]);
            if (strncmp(q, prefixes[i], n) == 0) {
                q += n;
                again = 1;
            }
        }
    }
    return q;
}

/* a loss of the loss table: its function, module and options, then its docs */
static int loss_help(const char *q)
{
    const td_loss_def *d = td_loss_find(unqualified(q));
    if (!d) return 0;
    fprintf(out, "tide.F.%s(", d->name);
    for (int i = 0; i < d->n_inputs; i++) fprintf(out, "%s%s", i ? ", " : "", d->inputs[i].name);
    fprintf(out, ", {options}), tide.nn.%s{options}: %s\n", d->module, d->summary);
    for (const td_loss_opt *o = d->opts; o->name; o++) {
        fprintf(out, "  %-16s default ", o->name);
        switch (o->type) {
        case TD_OPT_TENSOR: fprintf(out, "none"); break;
        case TD_OPT_BOOLEAN: fprintf(out, "%s", o->def != 0 ? "true" : "false"); break;
        case TD_OPT_REDUCTION:
            fprintf(out, "\"%s\"", td_reduction_name((td_reduction)o->def));
            break;
        case TD_OPT_INTEGER: fprintf(out, "%lld", (long long)o->def); break;
        default: fprintf(out, "%g", o->def); break;
        }
        if (o->says) fprintf(out, ", %s", o->says);
        fputc('\n', out);
    }
    fputc('\n', out);
    search_docs(d->name);
    return 1;
}

/* a row of the elementwise op table: its call with its parameters and
 * their defaults, and its summary, then its docs */
static int op_help(const char *q)
{
    const td_op_def *d = td_op_find(unqualified(q));
    if (!d) return 0;
    if (d->scope != TD_SCOPE_F) fprintf(out, "tide.%s", d->name);
    if (d->scope == TD_SCOPE_BOTH) fprintf(out, ", ");
    if (d->scope != TD_SCOPE_TENSOR) fprintf(out, "tide.F.%s", d->name);
    fprintf(out, d->arity == 1 ? "(x" : "(a, b");
    int n = td_op_nparams(d), optional = 0;
    for (int i = 0; i < n; i++)
        if (d->params[i].required)
            fprintf(out, ", %s", d->params[i].name);
        else
            optional++;
    for (int i = 0, k = 0; i < n; i++) {
        const td_op_param *p = &d->params[i];
        if (p->required) continue;
        fprintf(out, "%s%s = ", k++ ? ", " : ", {", p->name);
        if (p->choices)
            fprintf(out, "\"%s\"", p->choices[(int)p->value]);
        else
            fprintf(out, "%g", p->value);
    }
    fprintf(out, "%s): %s\n\n", optional ? "}" : "", d->summary);
    search_docs(d->name);
    return 1;
}

/* q's last part after '.' or ':' */
static const char *last_part(const char *q)
{
    const char *p = q;
    for (const char *s = q; *s; s++)
        if (*s == '.' || *s == ':') p = s + 1;
    return p;
}

/* "ns.md" for the namespace before q's last part ("tide.nn.Linear": nn.md) */
static void namespace_file(const char *q, char *file, size_t size)
{
    const char *last = last_part(q), *start = last - 1;
    file[0] = '\0';
    if (last == q) return;
    while (start > q && start[-1] != '.' && start[-1] != ':') start--;
    snprintf(file, size, "%.*s.md", (int)(last - 1 - start), start);
}

/* Pushes the value a dotted name ("tide.nn", "x") names among the globals,
   or nil; a throwing __index only means nil. */
static int resolve_name(lua_State *L)
{
    const char *p = lua_tostring(L, 1);
    lua_pushglobaltable(L);
    while (*p && !lua_isnil(L, -1)) {
        size_t n = strcspn(p, ".");
        if (!lua_istable(L, -1) && !lua_isuserdata(L, -1)) return lua_pushnil(L), 1;
        lua_pushlstring(L, p, n);
        lua_gettable(L, -2);
        lua_remove(L, -2);
        p += n + (p[n] == '.');
    }
    return 1;
}

static void push_value(lua_State *L, const char *name, size_t len)
{
    lua_pushcfunction(L, resolve_name);
    lua_pushlstring(L, name, len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* ?x:name with x a value: a tensor's method (Tensor:name, tide.name), else
   the method of x's class (its metatable's __name, as modules have), the
   bare name, then the class itself */
static int method_help(lua_State *L, const char *q)
{
    const char *colon = strrchr(q, ':');
    if (colon == NULL || L == NULL) return 0;
    char name[2 * NAME_MAX_LEN];
    push_value(L, q, (size_t)(colon - q));
    int found = 0;
    if (luaL_testudata(L, -1, "tide.Tensor") != NULL) {
        snprintf(name, sizeof name, "Tensor:%s", colon + 1);
        found = search_docs(name);
        snprintf(name, sizeof name, "tide.%s", colon + 1);
        found = found || search_docs(name);
    } else if (luaL_getmetafield(L, -1, "__name") == LUA_TSTRING) {
        snprintf(name, sizeof name, "%s:%s", lua_tostring(L, -1), colon + 1);
        found = search_docs(name) || search_docs(colon + 1) || search_docs(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return found;
}

/* Adds name to a comma-separated list wrapped at 78 columns. */
static void list_name(int *column, const char *name)
{
    if (*column > 0 && *column + (int)strlen(name) + 2 > 78) {
        fputs(",\n", out);
        *column = 0;
    }
    *column += fprintf(out, "%s%s", *column ? ", " : "  ", name);
}

/* The introduction of a docs file (up to its first "## ") and the names it
   documents; 1 when the file exists. */
static int file_overview(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char *line = NULL, name[NAME_MAX_LEN];
    size_t cap = 0;
    int intro = 1, column = 0;
    while (getline(&line, &cap, f) >= 0) {
        int level = heading_level(line);
        if (intro && level == 2) {
            intro = 0;
            fputs("Documented here (?name for each):\n", out);
        }
        if (intro) fputs(line, out);
        if (intro || level != 2) continue;
        heading_name(line, name, sizeof name);
        if (name[0] != '\0') list_name(&column, name);
    }
    if (column > 0) fputc('\n', out);
    free(line);
    fclose(f);
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return x && y ? strcmp(x, y) : (x != NULL) - (y != NULL);
}

/* ?tide.nn: the docs file the namespace names; else, when q names a table,
   its fields */
static int namespace_help(lua_State *L, const char *q)
{
    char file[NAME_MAX_LEN + 4], path[4096];
    snprintf(file, sizeof file, "%s.md", last_part(q));
    const char *env = getenv("TIDE_DOC_DIR");
    if (env != NULL && *env != '\0') {
        snprintf(path, sizeof path, "%s/%s", env, file);
        if (file_overview(path)) return 1;
    }
    snprintf(path, sizeof path, "%s/%s", docs_dir(), file);
    if (file_overview(path)) return 1;
    if (L == NULL || strchr(q, ':') != NULL) return 0;
    push_value(L, q, strlen(q));
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    fprintf(out, "%s: a table; its fields:\n", q);
    int t = lua_gettop(L), column = 0;
    size_t n = 0, cap = 0;
    char **names = NULL;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (grown == NULL) break;
            names = grown;
        }
        names[n++] = strdup(lua_tostring(L, -1));
    }
    lua_settop(L, t - 1);
    qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        if (names[i] != NULL) list_name(&column, names[i]);
        free(names[i]);
    }
    free(names);
    if (column > 0) fputc('\n', out);
    return 1;
}

/* Finds the help for q; 1 when something was written. */
static int find_help(lua_State *L, const char *q)
{
    if (loss_help(q) || op_help(q) || search_docs(q) || method_help(L, q)) return 1;
    const char *last = last_part(q);
    if (last != q && *last != '\0') {
        char file[NAME_MAX_LEN + 4];
        namespace_file(q, file, sizeof file);
        if (search_docs_in(last, file)) return 1;
    }
    return namespace_help(L, q);
}

/* Rows of the terminal on stdout, 0 when it is not one. */
static int terminal_rows(void)
{
    struct winsize ws;
    if (!isatty(STDOUT_FILENO)) return 0;
    return ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 ? ws.ws_row : 24;
}

/* Shows text through $PAGER (else less -FRX) when it does not fit the
   terminal; on stdout when that is not a terminal, or the pager cannot
   run. Ctrl-C belongs to the pager meanwhile, and a pager quit early
   must not end tide with SIGPIPE. */
static void show(const char *text, size_t len)
{
    int lines = 0, rows = terminal_rows();
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    const char *pager = getenv("PAGER");
    if (pager == NULL || *pager == '\0') pager = "less -FRX";
    if (rows > 0 && lines >= rows - 1) {
        fflush(stdout);
        void (*old_int)(int) = signal(SIGINT, SIG_IGN);
        void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
        FILE *p = popen(pager, "w");
        int status = -1;
        if (p != NULL) {
            fwrite(text, 1, len, p);
            status = pclose(p);
        }
        signal(SIGINT, old_int);
        signal(SIGPIPE, old_pipe);
        if (status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 127)) return;
    }
    fwrite(text, 1, len, stdout);
}

void tide_help(lua_State *L, const char *query)
{
    char q[NAME_MAX_LEN], *text = NULL;
    size_t len = 0;
    trim_name(query, q, sizeof q);
    out = open_memstream(&text, &len);
    if (out == NULL) out = stdout;
    if (q[0] == '\0')
        fputs(repl_help, out);
    else if (!find_help(L, q))
        fprintf(out, "no help for '%s'\n", q);
    if (out != stdout) {
        fclose(out);
        show(text, len);
        free(text);
    }
    out = NULL;
}
