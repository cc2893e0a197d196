/* tide.core: serialize (issue 4). */
#include "l_util.h"

const luaL_Reg lt_serialize_funcs[] = {
    {NULL, NULL},
};
