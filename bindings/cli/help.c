/* `?name` in the REPL: prints the section of the docs (Markdown) whose heading names
   `name`. A heading "## tide.zeros(shape, opts)" answers ?zeros and
   ?tide.zeros; "## Tensor:matmul" answers ?matmul, ?Tensor:matmul and
   ?x:matmul. The section runs to the next heading of the same or a higher
   level. Docs are looked for in $TIDE_DOC_DIR, then the source tree's
   docs/, then the install directory. A loss is also found by its module
   name or a qualified name (?CrossEntropyLoss, ?tide.nn.FocalLoss,
   ?F.cross_entropy): the loss table says its options and defaults, then
   its section follows. */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "tide/tide.h"

#define NAME_MAX_LEN 256

static const char repl_help[] =
    "tide REPL\n"
    "  1 + 1           an expression prints its value(s)\n"
    "  x = f();        a trailing ';' silences the results\n"
    "  function f()    unfinished code continues on a '>> ' line\n"
    "  ?name           help from the docs: ?tide.zeros, ?zeros, ?matmul\n"
    "  ?               this help\n"
    "  TAB             completes globals, fields (tide.ze<TAB>) and methods (x:ma<TAB>)\n"
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
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:");
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
        for (; blanks > 0; blanks--) putchar('\n');
        fputs(line, stdout);
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

/* Searches the .md files of dir in name order; 1 when a section was printed. */
static int search_dir(const char *dir, const char *q)
{
    struct dirent **files;
    int n = scandir(dir, &files, is_markdown, alphasort);
    if (n < 0) return 0;
    int found = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]->d_name);
        if (!found) found = print_section(path, q);
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

/* the sections of q in the docs; 1 when one was printed */
static int search_docs(const char *q)
{
    const char *env = getenv("TIDE_DOC_DIR");
    if (env != NULL && *env != '\0' && search_dir(env, q)) return 1;
    const char *docs =
        dir_exists(TIDE_SOURCE_DIR "/docs") ? TIDE_SOURCE_DIR "/docs" : TIDE_DOC_INSTALL_DIR;
    return search_dir(docs, q);
}

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
    printf("tide.F.%s(", d->name);
    for (int i = 0; i < d->n_inputs; i++) printf("%s%s", i ? ", " : "", d->inputs[i].name);
    printf(", {options}), tide.nn.%s{options}: %s\n", d->module, d->summary);
    for (const td_loss_opt *o = d->opts; o->name; o++) {
        printf("  %-16s default ", o->name);
        switch (o->type) {
        case TD_OPT_TENSOR: printf("none"); break;
        case TD_OPT_BOOLEAN: printf("%s", o->def != 0 ? "true" : "false"); break;
        case TD_OPT_REDUCTION: printf("\"%s\"", td_reduction_name((td_reduction)o->def)); break;
        case TD_OPT_INTEGER: printf("%lld", (long long)o->def); break;
        default: printf("%g", o->def); break;
        }
        if (o->says) printf(", %s", o->says);
        putchar('\n');
    }
    putchar('\n');
    search_docs(d->name);
    return 1;
}

void tide_help(const char *query)
{
    char q[NAME_MAX_LEN];
    trim_name(query, q, sizeof q);
    if (q[0] == '\0') {
        fputs(repl_help, stdout);
        return;
    }
    if (loss_help(q) || search_docs(q)) return;
    printf("no help for '%s'\n", q);
}
