/* tide.core: the margin losses. */
#include "l_util.h"

const luaL_Reg lt_loss_margin_funcs[] = {
    {NULL, NULL},
};
