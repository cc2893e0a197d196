/* serialize: front-end declarations (issue 4). */
#ifndef TIDE_SERIALIZE_H
#define TIDE_SERIALIZE_H

#include "tide/tide.h"

#endif
