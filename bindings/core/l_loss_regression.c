/* tide.core: the regression losses. */
#include "l_util.h"

const luaL_Reg lt_loss_regression_funcs[] = {
    {NULL, NULL},
};
