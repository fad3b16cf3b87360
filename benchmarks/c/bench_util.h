/* bench_util.h - what the C benchmark harnesses share: a clock, filled buffers, sorting times.
 * Header-only (static functions), so each harness stays one file to compile. Define
 * _POSIX_C_SOURCE before including it (clock_gettime). */
#ifndef FASTMLP_BENCH_UTIL_H
#define FASTMLP_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* n floats, 64-byte aligned, filled with a fixed pattern in [-scale/2, scale/2): timing does
 * not depend on the values, and every run sees the same ones. Exits when out of memory. */
static float *bench_pattern(size_t n, float scale)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = scale * ((float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f);
    return p;
}

/* For qsort on doubles, ascending. */
static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
