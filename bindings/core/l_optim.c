/* tide.core: optim (issue 4). */
#include "l_util.h"

const luaL_Reg lt_optim_funcs[] = {
    {NULL, NULL},
};
