/* How many threads tide's kernels and oneDNN's run on. One OpenMP pool
 * serves both, so one setting rules both.
 *
 * A count the user gives (TIDE_NUM_THREADS, `tide --threads N`,
 * OMP_NUM_THREADS, tide.set_num_threads) is kept as it is. Otherwise the
 * default is every core we may run on (under an MPI launcher, the node's
 * cores shared among its ranks), and it follows the cores other processes
 * leave free. OpenMP and oneDNN split each parallel region into equal
 * static shares: beside one busy process on a 2-core machine, the thread
 * that shares a core with it finishes its half late and the other waits
 * for it, so 2 threads ran a smallcnn step 1.4x and a LeNet-5 step 1.9x
 * slower than 1 thread did. Neither a passive wait nor a bounded spin
 * helped (both cost 10-30% on a quiet machine), and oneDNN's kernels cannot
 * be given dynamic shares. So a monitor thread measures, every 200 ms
 * (the first time after 50 ms), how many of our cores other processes
 * kept busy (/proc/stat's time on those cores less our own CPU time), and
 * when two windows in a row (or the first) agree on a new count the
 * kernels take it at their next call (td_cpu_threads_sync).
 * A changed count changes how oneDNN splits a weight gradient's sum, so
 * its bits: a run that must repeat bit for bit pins the count. (oneDNN's
 * pooling primitives keep the count they were built for: pooling is a
 * small part of a step, and its bits stay the same at every count.) */
#include "internal.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_NS       200000000L
#define FIRST_WINDOW_NS 50000000L

static struct {
    pthread_mutex_t lock;
    pthread_t thread;
    bool running, stop;
    pthread_cond_t wake;
    int base;      /* the default: the most threads the monitor gives */
    cpu_set_t set; /* the cores we may run on */
} mon = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static double now_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* busy seconds of the cores in `set` since boot, from /proc/stat's
 * per-core lines: time in processes and interrupts. A hypervisor's steal
 * is left out: it comes and goes with other guests, and tide could only
 * guess at it. */
static bool busy_seconds(const cpu_set_t *set, double *out)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return false;
    static long tick;
    if (!tick) tick = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    char line[512];
    unsigned long long busy = 0;
    bool any = false;
    while (fgets(line, sizeof line, f)) {
        int cpu;
        unsigned long long v[8] = {0};
        if (strncmp(line, "cpu", 3) != 0) break;
        if (line[3] < '0' || line[3] > '9') continue; /* the "cpu " total line */
        if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) != 9)
            continue;
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, set)) continue;
        /* user nice system idle iowait irq softirq steal */
        busy += v[0] + v[1] + v[2] + v[5] + v[6];
        any = true;
    }
    fclose(f);
    *out = (double)busy / (double)tick;
    return any;
}

/* a child of fork() has no monitor thread; it keeps the count it has */
static void forget_monitor(void)
{
    mon.running = false;
    pthread_mutex_init(&mon.lock, NULL);
    td_cpu_set_thread_target(0);
}

static void *monitor(void *arg)
{
    (void)arg;
    double busy0, ours0 = now_s(CLOCK_PROCESS_CPUTIME_ID), t0 = now_s(CLOCK_MONOTONIC);
    if (!busy_seconds(&mon.set, &busy0)) return NULL;
    int cores = CPU_COUNT(&mon.set), seen = mon.base, current = mon.base;
    /* the first window is short and decides alone, so a short script
     * beside a busy process runs on the right count almost from its start */
    long window = FIRST_WINDOW_NS;
    pthread_mutex_lock(&mon.lock);
    while (!mon.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += window;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&mon.wake, &mon.lock, &until);
        if (mon.stop) break;
        double busy, ours = now_s(CLOCK_PROCESS_CPUTIME_ID), t = now_s(CLOCK_MONOTONIC);
        if (!busy_seconds(&mon.set, &busy)) break;
        /* cores the others kept busy over the window; our own spinning
         * threads are in `ours`, so they never count */
        double others = ((busy - busy0) - (ours - ours0)) / (t - t0);
        busy0 = busy, ours0 = ours, t0 = t;
        long free_cores = lround((double)cores - (others > 0 ? others : 0));
        int want = free_cores < 1 ? 1 : free_cores > mon.base ? mon.base : (int)free_cores;
        if (want != current && (want == seen || window == FIRST_WINDOW_NS)) {
            current = want; /* two windows in a row, or the first */
            td_cpu_set_thread_target(want);
        }
        seen = want;
        window = WINDOW_NS;
    }
    pthread_mutex_unlock(&mon.lock);
    return NULL;
}

static void monitor_stop(void)
{
    pthread_mutex_lock(&mon.lock);
    bool running = mon.running;
    mon.stop = true;
    mon.running = false;
    pthread_cond_signal(&mon.wake);
    pthread_mutex_unlock(&mon.lock);
    if (running) pthread_join(mon.thread, NULL);
    td_cpu_set_thread_target(0);
}

int td_max_threads(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? 4 * (int)online : 4;
}

int td_thread_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (end == s || *end || v < 1 || v > td_max_threads()) ? 0 : (int)v;
}

void td_threads_init(void)
{
    if (sched_getaffinity(0, sizeof mon.set, &mon.set) != 0 || CPU_COUNT(&mon.set) < 1) {
        CPU_ZERO(&mon.set);
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        for (long i = 0; i < (online > 0 ? online : 1) && i < CPU_SETSIZE; i++)
            CPU_SET((int)i, &mon.set);
    }
    const char *mine = getenv("TIDE_NUM_THREADS");
    if (mine && *mine) {
        int n = td_thread_count(mine);
        if (n) {
            omp_set_num_threads(n);
            return;
        }
        fprintf(stderr,
                "tide: TIDE_NUM_THREADS=%s is not a thread count from 1 to %d; using the "
                "default\n",
                mine, td_max_threads());
    }
    const char *omp = getenv("OMP_NUM_THREADS");
    if (omp && *omp) return; /* the user's, as OpenMP read it */
    int n = CPU_COUNT(&mon.set);
    int local = td_dist_launcher_local_size();
    if (local > 1) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        int share = online > 0 ? (int)(online / local) : 1;
        if (share < n) n = share;
    }
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    const char *follow = getenv("TIDE_FOLLOW_FREE_CORES");
    /* (a second Lua state loading tide finds the monitor running) */
    if (n < 2 || (follow && strcmp(follow, "0") == 0) || mon.running) return;
    mon.base = n;
    mon.stop = false;
    /* (the default stack: the libraries' static TLS lives in it, and
     * oneDNN's alone outgrows a small one) no monitor when its thread
     * cannot start: the count stays fixed */
    if (pthread_create(&mon.thread, NULL, monitor, NULL) == 0) {
        mon.running = true;
        atexit(monitor_stop);
        pthread_atfork(NULL, NULL, forget_monitor);
    }
}

void td_set_num_threads(int n)
{
    monitor_stop(); /* the user's count from now on */
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}

int td_get_num_threads(void) { return td_cpu_threads_sync(); }

/* read by kernels on whichever thread runs them */
static bool deterministic;

void td_set_deterministic(bool on) { __atomic_store_n(&deterministic, on, __ATOMIC_RELAXED); }

bool td_deterministic(void) { return __atomic_load_n(&deterministic, __ATOMIC_RELAXED); }

bool td_threads_follow_free_cores(void) { return mon.running; }
