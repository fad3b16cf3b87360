/* bench_util.h - what the C benchmark harnesses share: a clock, filled buffers, sorting times,
 * the MNIST network they time.
 * Header-only (static functions), so each harness stays one file to compile. Define
 * _POSIX_C_SOURCE before including it (clock_gettime). */
#ifndef FASTMLP_BENCH_UTIL_H
#define FASTMLP_BENCH_UTIL_H

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fastmlp.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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

enum { BENCH_BATCH = 200, BENCH_MAX_LAYERS = 9 };

/* A network with buffers for batches of BENCH_BATCH rows, and `samples` input rows with labels:
 * the same fixed values in every harness and every run. The tutorial's 784-512-256-10 unless a
 * harness asks for other widths (bench_net_make). */
typedef struct {
    ptrdiff_t sizes[BENCH_MAX_LAYERS + 1];
    float *W[BENCH_MAX_LAYERS], *b[BENCH_MAX_LAYERS], *act[BENCH_MAX_LAYERS],
        *grad[BENCH_MAX_LAYERS];
    fm_net net;            /* points into this struct: make it in place, do not copy it */
    float *X;              /* samples x sizes[0] */
    int32_t *labels;       /* samples, in [0, output width) */
} bench_mnist;

/* The network of n_layers layers of widths sizes[0..n_layers] (input first). */
static void bench_net_make(bench_mnist *m, ptrdiff_t samples, const ptrdiff_t *sizes,
                           int n_layers)
{
    for (int l = 0; l <= n_layers; l++)
        m->sizes[l] = sizes[l];
    for (int l = 0; l < n_layers; l++) {
        m->W[l] = bench_pattern((size_t)(sizes[l] * sizes[l + 1]), 0.1f);
        m->b[l] = bench_pattern((size_t)sizes[l + 1], 0.01f);
        m->act[l] = bench_pattern((size_t)(BENCH_BATCH * sizes[l + 1]), 1.0f);
        m->grad[l] = bench_pattern((size_t)(BENCH_BATCH * sizes[l + 1]), 1.0f);
    }
    m->net = (fm_net){ .n_layers = n_layers, .sizes = m->sizes, .W = m->W, .b = m->b,
                       .act = m->act, .grad = m->grad, .activation = FM_ACT_RELU,
                       .check_finite = getenv("AB_CHECK_FINITE") != NULL };
    m->X = bench_pattern((size_t)samples * (size_t)sizes[0], 1.0f);
    m->labels = malloc(sizeof(int32_t) * (size_t)samples);
    if (m->labels == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (ptrdiff_t i = 0; i < samples; i++)
        m->labels[i] = (int32_t)((i * 7) % sizes[n_layers]);
}

/* The tutorial's widths, input first: 3 layers. */
static const ptrdiff_t bench_tutorial_sizes[4] = { 784, 512, 256, 10 };

/* The tutorial's network, 784-512-256-10. */
static void bench_mnist_make(bench_mnist *m, ptrdiff_t samples)
{
    bench_net_make(m, samples, bench_tutorial_sizes, 3);
}

/* Exits with a message naming what failed. */
static void bench_fail(const char *what)
{
    fprintf(stderr, "%s failed\n", what);
    exit(1);
}

/* The widths from the environment variable `name` ("784,100,10": input first), or the
 * tutorial's; returns the number of layers. */
static int bench_sizes(const char *name, ptrdiff_t sizes[BENCH_MAX_LAYERS + 1])
{
    const char *text = getenv(name);
    if (text == NULL) {
        memcpy(sizes, bench_tutorial_sizes, sizeof bench_tutorial_sizes);
        return 3;
    }
    int n = 0, bad = 0;
    char *end;
    do {
        long width = strtol(text, &end, 10);
        bad = end == text || width < 1 || width > 65536 || n > BENCH_MAX_LAYERS
              || (*end != ',' && *end != '\0');
        if (bad)
            break;
        sizes[n++] = width;
        text = end + 1;
    } while (*end == ',');
    if (bad || n < 2) {
        fprintf(stderr, "%s: 2 to 10 widths of 1 to 65536, comma-separated\n", name);
        exit(2);
    }
    return n - 1;
}

/* Adam's step as the harnesses take it: beta_1 0.9, beta_2 0.999, epsilon 1e-8. */
static const fm_optimizer bench_adam = { .lr = 1e-5f, .rule = FM_OPT_ADAM, .beta_1 = 0.9f,
                                         .beta_2 = 0.999f, .epsilon = 1e-8f };

/* Adam's rate for step t >= 1 into o->lr_t, computed in double as the binding does. */
static void bench_adam_rate(fm_optimizer *o, long t)
{
    o->lr_t = (float)(o->lr * sqrt(1.0 - pow(o->beta_2, (double)t))
                      / (1.0 - pow(o->beta_1, (double)t)));
}

/* Adam's two moments for every W and b of m's network, zero. */
static void bench_give_adam_state(bench_mnist *m)
{
    const int L = m->net.n_layers;
    float *state[2][2][BENCH_MAX_LAYERS];   /* [state][W, b][layer] */
    for (int s = 0; s < 2; s++) {
        for (int l = 0; l < L; l++) {
            size_t nW = (size_t)(m->sizes[l] * m->sizes[l + 1]), nb = (size_t)m->sizes[l + 1];
            state[s][0][l] = bench_pattern(nW, 0.0f);
            state[s][1][l] = bench_pattern(nb, 0.0f);
        }
    }
    for (int s = 0; s < 2; s++) {
        float **copy = malloc(sizeof(float *) * 2 * (size_t)L);
        if (copy == NULL)
            bench_fail("malloc");
        memcpy(copy, state[s][0], sizeof(float *) * (size_t)L);
        memcpy(copy + L, state[s][1], sizeof(float *) * (size_t)L);
        m->net.state_W[s] = copy;
        m->net.state_b[s] = copy + L;
    }
}

/* The round trip of a cache line between two OpenMP threads, in ns (median of 9 runs of 20,000
 * trips), or 0 without two threads. Two cores that share an L3 answer in about 70-120 ns;
 * cores on different dies in 300 ns or more, and a 2-thread step, whose threads hand each
 * other every product's output, is then slower although each core's speed is the same. A
 * virtual machine's cores can move between the two from one minute to the next. */
static double bench_round_trip_ns(void)
{
    enum { TRIPS = 20000, RUNS = 9 };
    static _Alignas(64) _Atomic long flag;
    double ns[RUNS];
    int two = 0;
    for (int r = 0; r < RUNS; r++) {
        double t0 = 0.0, t1 = 0.0;
        atomic_store(&flag, 0);
#pragma omp parallel num_threads(2)
        {
#ifdef _OPENMP
            const int me = omp_get_thread_num(), n = omp_get_num_threads();
#else
            const int me = 0, n = 1;
#endif
            if (n == 2) {
                if (me == 0) {
                    two = 1;
                    t0 = bench_now();
                }
                for (long i = 0; i < TRIPS; i++) {
                    const long mine = 2 * i + me;
                    while (atomic_load_explicit(&flag, memory_order_acquire) != mine)
                        ;
                    atomic_store_explicit(&flag, mine + 1, memory_order_release);
                }
                if (me == 0)
                    t1 = bench_now();
            }
        }
        ns[r] = (t1 - t0) * 1e9 / TRIPS;
    }
    if (!two)
        return 0.0;
    qsort(ns, RUNS, sizeof(double), bench_cmp_double);
    return ns[RUNS / 2];
}

#endif
