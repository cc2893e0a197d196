/* tide.core: the ctc losses. */
#include "l_util.h"

const luaL_Reg lt_loss_ctc_funcs[] = {
    {NULL, NULL},
};
