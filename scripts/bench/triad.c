/* The memory-bandwidth limit the benchmarks compare themselves with: a
 * STREAM triad a[i] = b[i] + s * c[i] over three float32 arrays, OpenMP on
 * OMP_NUM_THREADS threads. The arrays are first touched under the same
 * static schedule as the timed loop, so each thread streams its own pages.
 * A pass counts 3 * n * 4 bytes, as STREAM does (two reads, one write; the
 * write-allocate read is not counted), so it compares directly with the
 * byte counts of scripts/bench/benchlib.lua. Its stores are ordinary ones:
 * a kernel with streaming stores, which skip that read, can pass 100%.
 *
 * Usage: bench_triad [n] [passes]   (default 64M elements, 20 passes)
 * Prints `key value` lines: n, passes, threads, seconds (the best pass),
 * triad_gbs (from the best pass), check (a checksum, so the passes stay). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static void triad(float *restrict a, const float *restrict b, const float *restrict c, float s,
                  long n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 64L << 20;
    int passes = argc > 2 ? atoi(argv[2]) : 20;
    if (n <= 0 || passes <= 0) {
        fprintf(stderr, "usage: bench_triad [n] [passes]\n");
        return 2;
    }
    size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
    float *a = aligned_alloc(64, bytes), *b = aligned_alloc(64, bytes),
          *c = aligned_alloc(64, bytes);
    if (!a || !b || !c) {
        fprintf(stderr, "bench_triad: cannot allocate 3 x %zu bytes\n", bytes);
        free(a), free(b), free(c);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        a[i] = 0.0f;
        b[i] = 1.0f;
        c[i] = 2.0f;
    }

    double best = 0;
    for (int p = 0; p < passes; p++) {
        double t0 = omp_get_wtime();
        triad(a, b, c, 0.5f, n);
        double dt = omp_get_wtime() - t0;
        if (p == 0 || dt < best) best = dt;
    }
    double check = 0;
    for (long i = 0; i < n; i += 4096) check += a[i];

    printf("n %ld\npasses %d\nthreads %d\n", n, passes, omp_get_max_threads());
    printf("seconds %.9f\ntriad_gbs %.3f\ncheck %.1f\n", best,
           3.0 * (double)n * sizeof(float) / best / 1e9, check);
    free(a), free(b), free(c);
    return 0;
}
