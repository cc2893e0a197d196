/* Opening the CUDA libraries that are looked up at run time, not linked
 * (cuBLAS, NCCL): the same search and the same account of what failed. */
#include "cuda_internal.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *why;
    size_t n;
} account;

/* appends "; <message>" to the account (the first without "; ") */
__attribute__((format(printf, 2, 3))) static void note(account *a, const char *fmt, ...)
{
    size_t n = strlen(a->why);
    if (n + 3 >= a->n) return;
    if (n > 0) {
        memcpy(a->why + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->why + n, a->n - n, fmt, ap);
    va_end(ap);
}

static void *try_open(account *a, const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        if (e && strstr(e, path))
            note(a, "%s", e);
        else
            note(a, "%s: %s", path, e ? e : "not found");
    }
    return h;
}

void *td_cuda_dlopen(const char *name, const char *dir, const char *env, const char *fix, char *why,
                     size_t why_n, char *path, size_t path_n)
{
    account a = {why, why_n};
    why[0] = '\0';
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", name);
    void *h = try_open(&a, buf);
    if (!h && dir && dir[0]) {
        snprintf(buf, sizeof buf, "%s/%s", dir, name);
        h = try_open(&a, buf);
    }
    const char *list_env = getenv(env);
    if (!h && (!list_env || !*list_env)) note(&a, "%s is not set", env);
    if (!h && list_env && *list_env) {
        /* each entry: the library itself or its folder */
        char *list = strdup(list_env);
        char *save = NULL;
        for (char *p = list ? strtok_r(list, ":", &save) : NULL; p && !h;
             p = strtok_r(NULL, ":", &save)) {
            struct stat st;
            if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                snprintf(buf, sizeof buf, "%s/%s", p, name);
            else
                snprintf(buf, sizeof buf, "%s", p);
            h = try_open(&a, buf);
        }
        free(list);
    }
    if (!h) {
        note(&a, "%s", fix);
        return NULL;
    }
    why[0] = '\0'; /* the earlier tries' failures are not the answer */
    if (path) snprintf(path, path_n, "%s", buf);
    return h;
}
