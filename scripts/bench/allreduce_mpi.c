/* The baseline of scripts/bench/allreduce.sh: MPI_Allreduce called
 * directly, in place, float32 sum over MPI_COMM_WORLD, at 4 KB to 64 MB.
 *
 *   mpirun -np 2 build/bench_allreduce_mpi [-b blocks] [-t seconds] [-m] [-p]
 *
 * Each size: warm-up calls, then `blocks` timed blocks of the same number
 * of calls (enough for about `seconds` per block, 0.05 by default), a
 * barrier before each; a block's time is the slowest rank's. Rank 0
 * prints one line per size, the median over the blocks of the time per
 * call and the bus bandwidth 2(n-1)/n * bytes / time (what each rank's
 * link carries in a ring), as
 *
 *   allreduce bytes=4096 iters=2000 blocks=7 ranks=2 median_s=2.1e-06 busbw_GBps=1.95
 *
 * Each size's buffer is memory of the kind tide's CPU allocator gives a
 * tensor of that size: 64-byte aligned from malloc below 1 MB, 2 MB
 * aligned with MADV_HUGEPAGE from 1 MB up. That matters: Open MPI's
 * shared-memory transport copies large messages between the processes
 * through the kernel (CMA), page by page, and huge pages made that about
 * 2x faster at 16 MB here. -p takes every buffer from plain malloc
 * instead; -m starts MPI with MPI_THREAD_MULTIPLE, as tide.distributed
 * does, to see what that level costs by itself. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_BLOCKS 64
#define LARGE      ((size_t)1 << 20) /* as kernels/cpu/backend.c */
#define HUGE_PAGE  ((size_t)2 << 20)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs, int n)
{
    qsort(xs, (size_t)n, sizeof *xs, cmp_double);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

/* seconds per call of `iters` calls, the slowest rank's */
static double timed_block(float *buf, int count, int iters)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++)
        MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double dt = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return dt / iters;
}

/* zeroed: zeros stay zeros under repeated sums (no overflow, no denormals) */
static float *alloc_like_tide(size_t bytes, int plain)
{
    void *p = NULL;
    size_t whole = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; /* all of each huge page */
    if (plain)
        p = malloc(bytes);
    else if (bytes < LARGE)
        p = posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
    else if (posix_memalign(&p, HUGE_PAGE, whole) == 0)
        madvise(p, whole, MADV_HUGEPAGE); /* advice only: failure is harmless */
    else
        p = NULL;
    if (p) memset(p, 0, bytes);
    return p;
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: mpirun -np N %s [-b blocks (1-%d)] [-t seconds per block] [-m] [-p]\n",
            prog, MAX_BLOCKS);
    exit(2);
}

int main(int argc, char **argv)
{
    int blocks = 7, multiple = 0, plain = 0;
    double target = 0.05;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            target = atof(argv[++i]);
        else if (!strcmp(argv[i], "-m"))
            multiple = 1;
        else if (!strcmp(argv[i], "-p"))
            plain = 1;
        else
            usage(argv[0]);
    }
    if (blocks < 1 || blocks > MAX_BLOCKS || !(target > 0)) usage(argv[0]);

    int provided = 0, rank = 0, world = 1;
    if (multiple)
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    else
        MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);

    const int max_bytes = 64 << 20;
    if (rank == 0)
        printf("# MPI_Allreduce in place, float32 sum, %d ranks, %s%s\n", world,
               plain ? "malloc'd buffers" : "buffers as tide allocates tensors",
               multiple ? ", MPI_THREAD_MULTIPLE" : "");

    for (int bytes = 4 << 10; bytes <= max_bytes; bytes *= 4) {
        int count = bytes / (int)sizeof(float);
        float *buf = alloc_like_tide((size_t)bytes, plain);
        if (!buf) {
            fprintf(stderr, "bench_allreduce_mpi: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        int few = bytes >= (4 << 20) ? 2 : 20;
        timed_block(buf, count, few); /* warm-up */
        double one = timed_block(buf, count, few);
        int iters = (int)(target / one);
        if (iters < 3) iters = 3;
        if (iters > 20000) iters = 20000;
        /* every rank must make the same number of calls: rank 0's */
        MPI_Bcast(&iters, 1, MPI_INT, 0, MPI_COMM_WORLD);
        double times[MAX_BLOCKS];
        for (int b = 0; b < blocks; b++) times[b] = timed_block(buf, count, iters);
        double t = median(times, blocks);
        double busbw = 2.0 * (world - 1) / world * bytes / t / 1e9;
        if (rank == 0) {
            printf("allreduce bytes=%d iters=%d blocks=%d ranks=%d median_s=%.6g busbw_GBps=%.4g\n",
                   bytes, iters, blocks, world, t, busbw);
            fflush(stdout);
        }
        free(buf);
    }
    MPI_Finalize();
    return 0;
}
