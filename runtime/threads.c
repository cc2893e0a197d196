/* One OpenMP pool serves our kernels and oneDNN's, so one setting rules both. */
#include "internal.h"

#include <omp.h>

void td_set_num_threads(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}

int td_get_num_threads(void) { return omp_get_max_threads(); }
