/* data: front-end declarations (issue 4). */
#ifndef TIDE_DATA_H
#define TIDE_DATA_H

#include "tide/tide.h"

#endif
