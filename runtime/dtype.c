#include "internal.h"

static const char *names[TD_NDTYPES] = {"float32", "float64", "int64", "uint8"};
static const size_t sizes[TD_NDTYPES] = {4, 8, 8, 1};

size_t td_dtype_size(td_dtype dt) { return sizes[dt]; }
const char *td_dtype_name(td_dtype dt) { return (unsigned)dt < TD_NDTYPES ? names[dt] : "?"; }
bool td_dtype_is_float(td_dtype dt) { return dt == TD_FLOAT32 || dt == TD_FLOAT64; }

td_status td_dtype_parse(const char *name, td_dtype *out)
{
    static const struct {
        const char *name;
        td_dtype dt;
    } aliases[] = {
        {"float32", TD_FLOAT32}, {"float", TD_FLOAT32}, {"float64", TD_FLOAT64},
        {"double", TD_FLOAT64},  {"int64", TD_INT64},   {"long", TD_INT64},
        {"uint8", TD_UINT8},     {"byte", TD_UINT8},    {"bool", TD_UINT8},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(name, aliases[i].name) == 0) {
            *out = aliases[i].dt;
            return TD_OK;
        }
    return td_error(TD_EINVAL, 0, "unknown dtype '%s' (expected float32, float64, int64 or uint8)",
                    name);
}

/* PyTorch's order: uint8 < int64 < float32 < float64 */
td_dtype td_promote(td_dtype a, td_dtype b)
{
    static const int rank[TD_NDTYPES] = {2, 3, 1, 0};
    return rank[a] >= rank[b] ? a : b;
}
