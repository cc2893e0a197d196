/* tide.core: data (issue 4). */
#include "l_util.h"

const luaL_Reg lt_data_funcs[] = {
    {NULL, NULL},
};
