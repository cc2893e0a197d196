/* layers: front-end declarations (issue 4). */
#ifndef TIDE_LAYERS_H
#define TIDE_LAYERS_H

#include "tide/tide.h"

#endif
