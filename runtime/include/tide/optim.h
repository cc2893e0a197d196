/* optim: front-end declarations (issue 4). */
#ifndef TIDE_OPTIM_H
#define TIDE_OPTIM_H

#include "tide/tide.h"

#endif
