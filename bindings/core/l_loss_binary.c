/* tide.core: the binary losses. */
#include "l_util.h"

const luaL_Reg lt_loss_binary_funcs[] = {
    {NULL, NULL},
};
