/* conv: front-end declarations (issue 4). */
#ifndef TIDE_CONV_H
#define TIDE_CONV_H

#include "tide/tide.h"

#endif
