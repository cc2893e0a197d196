#include "internal.h"

static const char *names[TD_NDTYPES] = {"float32", "float64",  "int64",
                                        "uint8",   "bfloat16", "float16"};
static const size_t sizes[TD_NDTYPES] = {4, 8, 8, 1, 2, 2};

size_t td_dtype_size(td_dtype dt) { return sizes[dt]; }
const char *td_dtype_name(td_dtype dt) { return (unsigned)dt < TD_NDTYPES ? names[dt] : "?"; }
bool td_dtype_is_float(td_dtype dt)
{
    return dt == TD_FLOAT32 || dt == TD_FLOAT64 || td_dtype_is_lowp(dt);
}

td_status td_dtype_parse(const char *name, td_dtype *out)
{
    static const struct {
        const char *name;
        td_dtype dt;
    } aliases[] = {
        {"float32", TD_FLOAT32},   {"float", TD_FLOAT32},   {"float64", TD_FLOAT64},
        {"double", TD_FLOAT64},    {"int64", TD_INT64},     {"long", TD_INT64},
        {"uint8", TD_UINT8},       {"byte", TD_UINT8},      {"bool", TD_UINT8},
        {"bfloat16", TD_BFLOAT16}, {"float16", TD_FLOAT16}, {"half", TD_FLOAT16},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(name, aliases[i].name) == 0) {
            *out = aliases[i].dt;
            return TD_OK;
        }
    return td_error(TD_EINVAL, 0,
                    "unknown dtype '%s' (expected float32, float64, bfloat16, float16, "
                    "int64 or uint8)",
                    name);
}

/* PyTorch's order: uint8 < int64 < bfloat16, float16 < float32 < float64;
 * the two 2-byte floats, neither holding the other, meet in float32 */
td_dtype td_promote(td_dtype a, td_dtype b)
{
    static const int rank[TD_NDTYPES] = {3, 4, 1, 0, 2, 2};
    if (td_dtype_is_lowp(a) && td_dtype_is_lowp(b) && a != b) return TD_FLOAT32;
    return rank[a] >= rank[b] ? a : b;
}

td_status td_finfo(td_dtype dt, td_finfo_t *out)
{
    switch (dt) {
    case TD_FLOAT32: *out = (td_finfo_t){32, 0x1p-23, 0x1.fffffep+127, 0, 0x1p-126, 1e-6}; break;
    case TD_FLOAT64:
        *out = (td_finfo_t){64, 0x1p-52, 0x1.fffffffffffffp+1023, 0, 0x1p-1022, 1e-15};
        break;
    case TD_BFLOAT16: *out = (td_finfo_t){16, 0x1p-7, 0x1.fep+127, 0, 0x1p-126, 1e-2}; break;
    case TD_FLOAT16: *out = (td_finfo_t){16, 0x1p-10, 65504.0, 0, 0x1p-14, 1e-3}; break;
    default:
        return td_error(TD_EDTYPE, 1,
                        "finfo: %s is not a floating point dtype (tide.iinfo is for "
                        "integers)",
                        td_dtype_name(dt));
    }
    out->min = -out->max;
    return TD_OK;
}
