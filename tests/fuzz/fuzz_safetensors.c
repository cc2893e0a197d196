/* libFuzzer target for the safetensors reader (make fuzz): any bytes must
 * give either tensors or an error, never a crash, a leak or a read out of
 * bounds. What parses is written back and must parse to the same tensors
 * and metadata. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tide/tide.h"

static char path[4096];

/* the round trip's file, on tmpfs where there is one (the writer syncs
 * every file it writes) */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct stat st;
    const char *dir = getenv("TMPDIR");
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        dir = "/dev/shm";
    else if (!dir || !*dir)
        dir = "/tmp";
    snprintf(path, sizeof path, "%s/fuzz_safetensors.%d", dir, (int)getpid());
    return 0;
}

static int same_tensor(const td_tensor *a, const td_tensor *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    size_t n = (size_t)td_numel(a) * td_dtype_size(a->dtype);
    return n == 0 || memcmp(td_data_ptr(a), td_data_ptr(b), n) == 0;
}

/* every entry of a has its twin in b, under the same name */
static int same_file(const td_safetensors *a, const td_safetensors *b)
{
    if (a->n != b->n || a->n_meta != b->n_meta) return 0;
    for (int i = 0; i < a->n; i++) {
        int found = 0;
        for (int j = 0; j < b->n && !found; j++)
            found =
                strcmp(a->names[i], b->names[j]) == 0 && same_tensor(a->tensors[i], b->tensors[j]);
        if (!found) return 0;
    }
    for (int i = 0; i < a->n_meta; i++) {
        int found = 0;
        for (int j = 0; j < b->n_meta && !found; j++)
            found = strcmp(a->meta_keys[i], b->meta_keys[j]) == 0 &&
                    strcmp(a->meta_values[i], b->meta_values[j]) == 0;
        if (!found) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    td_safetensors s;
    if (td_parse_safetensors(data, size, "fuzz", &s) != TD_OK) {
        td_clear_error();
        return 0;
    }
    /* the writer takes whatever the reader accepts */
    if (td_save_safetensors(path, s.n, (const char *const *)s.names, s.tensors, s.n_meta,
                            (const char *const *)s.meta_keys,
                            (const char *const *)s.meta_values) != TD_OK) {
        fprintf(stderr, "fuzz_safetensors: cannot write back what parsed: %s\n", td_last_error());
        __builtin_trap();
    }
    td_safetensors back;
    if (td_load_safetensors(path, &back) != TD_OK) {
        fprintf(stderr, "fuzz_safetensors: cannot read back what it wrote: %s\n", td_last_error());
        __builtin_trap();
    }
    if (!same_file(&s, &back)) __builtin_trap();
    td_safetensors_free(&back);
    unlink(path);
    td_safetensors_free(&s);
    return 0;
}
