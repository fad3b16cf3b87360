/* bench_util.h - what the C benchmark harnesses share: a clock, filled buffers, sorting times,
 * the MNIST network they time.
 * Header-only (static functions), so each harness stays one file to compile. Define
 * _POSIX_C_SOURCE before including it (clock_gettime). */
#ifndef FASTMLP_BENCH_UTIL_H
#define FASTMLP_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fastmlp.h"

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

enum { BENCH_BATCH = 200 };

/* The tutorial's network, 784-512-256-10, with buffers for batches of BENCH_BATCH rows, and
 * `samples` input rows with labels: the same fixed values in every harness and every run. */
typedef struct {
    ptrdiff_t sizes[4];
    float *W[3], *b[3], *act[3], *grad[3];
    fm_net net;            /* points into this struct: make it in place, do not copy it */
    float *X;              /* samples x 784 */
    int32_t *labels;       /* samples, in [0, 10) */
} bench_mnist;

static void bench_mnist_make(bench_mnist *m, ptrdiff_t samples)
{
    const ptrdiff_t sizes[4] = { 784, 512, 256, 10 };
    for (int l = 0; l < 4; l++)
        m->sizes[l] = sizes[l];
    for (int l = 0; l < 3; l++) {
        m->W[l] = bench_pattern((size_t)(sizes[l] * sizes[l + 1]), 0.1f);
        m->b[l] = bench_pattern((size_t)sizes[l + 1], 0.01f);
        m->act[l] = bench_pattern((size_t)(BENCH_BATCH * sizes[l + 1]), 1.0f);
        m->grad[l] = bench_pattern((size_t)(BENCH_BATCH * sizes[l + 1]), 1.0f);
    }
    m->net = (fm_net){ .n_layers = 3, .sizes = m->sizes, .W = m->W, .b = m->b, .act = m->act,
                       .grad = m->grad, .activation = FM_ACT_RELU,
                       .check_finite = getenv("AB_CHECK_FINITE") != NULL };
    m->X = bench_pattern((size_t)samples * 784, 1.0f);
    m->labels = malloc(sizeof(int32_t) * (size_t)samples);
    if (m->labels == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (ptrdiff_t i = 0; i < samples; i++)
        m->labels[i] = (int32_t)((i * 7) % 10);
}

#endif
