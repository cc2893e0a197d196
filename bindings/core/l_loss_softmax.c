/* tide.core: the softmax losses. */
#include "l_util.h"

const luaL_Reg lt_loss_softmax_funcs[] = {
    {NULL, NULL},
};
