/* tide.core: layers (issue 4). */
#include "l_util.h"

const luaL_Reg lt_layers_funcs[] = {
    {NULL, NULL},
};
