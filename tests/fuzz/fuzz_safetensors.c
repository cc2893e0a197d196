/* libFuzzer target for the safetensors reader (make fuzz): any bytes must
 * give either tensors or an error, never a crash, a leak or a read out of
 * bounds. What parses is written back and must parse to the same tensors. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tide/tide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    td_safetensors s;
    if (td_parse_safetensors(data, size, "fuzz", &s) != TD_OK) return 0;
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_safetensors.%d", (int)getpid());
    if (td_save_safetensors(path, s.n, (const char *const *)s.names, s.tensors, s.n_meta,
                            (const char *const *)s.meta_keys,
                            (const char *const *)s.meta_values) == TD_OK) {
        td_safetensors back;
        if (td_load_safetensors(path, &back) != TD_OK) __builtin_trap();
        if (back.n != s.n || back.n_meta != s.n_meta) __builtin_trap();
        td_safetensors_free(&back);
        unlink(path);
    }
    td_safetensors_free(&s);
    return 0;
}
