/* One OpenMP pool serves our kernels and oneDNN's, so one setting rules both. */
#include "internal.h"

#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

/* Ranks that mpirun starts on one node share its cores: each takes its
 * share (and no more than the cores it is bound to), unless the user
 * said how many with OMP_NUM_THREADS or later with set_num_threads. */
void td_threads_init(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    int local = td_dist_launcher_local_size();
    if ((env && *env) || local <= 1) return;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = online > 0 ? (int)(online / local) : 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < n) n = CPU_COUNT(&set);
    omp_set_num_threads(n < 1 ? 1 : n);
}

void td_set_num_threads(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}

int td_get_num_threads(void) { return omp_get_max_threads(); }
