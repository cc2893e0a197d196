/* Kernels of the layers family (issue 4): one table per backend. */
#ifndef TIDE_KERNELS_NN_LAYERS_H
#define TIDE_KERNELS_NN_LAYERS_H

#include "tide/tide.h"

struct td_layers_kernels {
    int reserved; /* entries come with the ops */
};

#endif
