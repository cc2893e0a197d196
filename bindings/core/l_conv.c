/* tide.core: conv (issue 4). */
#include "l_util.h"

const luaL_Reg lt_conv_funcs[] = {
    {NULL, NULL},
};
