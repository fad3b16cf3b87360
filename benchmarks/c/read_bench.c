/* read_bench.c - how fast each core reads a buffer of its own: the bound on a one-row forward
 * pass, which reads every weight once and does one FMA per weight it reads.
 *
 *   usage: read_bench [BYTES_PER_THREAD (950000)] [REPEATS (200)]
 *
 * Every OpenMP thread (OMP_NUM_THREADS) fills a buffer of its own, then, between barriers so
 * that all read at once, reads it REPEATS times with 512-bit loads (AVX-512 machines) or
 * 256-bit loads, summed into independent chains, and prints its best time. 950,000 bytes is a
 * thread's share of a dense row's weights on 2 threads (README: "One sample"). Compiled like
 * the package: -O3, no -march; the read loop carries its own target.
 */
#define _POSIX_C_SOURCE 200809L

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>

#include <omp.h>

#include "bench_util.h"

/* Sums n floats (a multiple of 64) into four 16-wide chains: the adds are cheaper than the
 * loads, so the loop runs at the speed of the loads. */
__attribute__((target("avx512f"))) static float read_avx512(const float *x, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(x + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(x + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(x + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(x + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* The same with 256-bit loads: four 8-wide chains over 32 floats a turn. */
__attribute__((target("avx"))) static float read_avx(const float *x, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(x + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(x + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(x + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

int main(int argc, char **argv)
{
    const double bytes_asked = argc > 1 ? atof(argv[1]) : 950000.0;
    const int repeats = argc > 2 ? atoi(argv[2]) : 200;
    if (bytes_asked < 256.0 || repeats < 1) {
        fprintf(stderr, "usage: read_bench [BYTES_PER_THREAD >= 256] [REPEATS >= 1]\n");
        return 2;
    }
    const size_t n = (size_t)(bytes_asked / sizeof(float)) / 64 * 64;   /* whole turns */
    const int wide = __builtin_cpu_supports("avx512f");
    printf("%zu bytes a thread, %d threads, %s loads, best of %d\n", n * sizeof(float),
           omp_get_max_threads(), wide ? "512-bit" : "256-bit", repeats);
    #pragma omp parallel
    {
        float *x = bench_pattern(n, 1.0f);
        double best = 1e30;
        float sink = 0.0f;
        for (int r = 0; r < repeats; r++) {
            #pragma omp barrier
            double t = bench_now();
            sink += wide ? read_avx512(x, n) : read_avx(x, n);
            t = bench_now() - t;
            best = t < best ? t : best;
        }
        #pragma omp critical
        printf("thread %d: %.2f us, %.1f GB/s (checksum %g)\n", omp_get_thread_num(), best * 1e6,
               (double)(n * sizeof(float)) / best / 1e9, (double)sink);
        free(x);
    }
    return 0;
}
