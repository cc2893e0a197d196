/* Kernels of the conv family (issue 4): one table per backend. */
#ifndef TIDE_KERNELS_NN_CONV_H
#define TIDE_KERNELS_NN_CONV_H

#include "tide/tide.h"

struct td_conv_kernels {
    int reserved; /* entries come with the ops */
};

#endif
