/* peak.c - an FMA throughput probe (see peak.h).
 *
 * Each thread runs independent chains x = fma(x, s, t) in vectors of the current instruction
 * set, in bursts, until `seconds` passed: at least 8 chains cover the 4-cycle FMA latency on
 * both FMA ports, and all of them and the two constants must fit in registers. AVX-512 has 32
 * vector registers and runs 16 chains; AVX2 and scalar code have 16, so they run 12: with 16
 * chains the compiler kept three of them on the stack, each step a load, an FMA and a store on
 * one chain, and the AVX2 probe read 66-71 GFLOP/s on one core where the AVX2 kernels reached
 * 74 (a "peak" below what the products attain).
 * The probes for each instruction set are compiled for it with a target attribute and are only
 * called when dispatch.h says the CPU has it.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/registry.h"
#include "kernels/peak.h"
#include "frame/threads.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FM_X86 1
#include <immintrin.h>
#else
#define FM_X86 0
#endif

enum {
    CHAINS_AVX512 = 16,
    CHAINS = 12,   /* AVX2 and scalar: 16 registers */
    BURST = 4096
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each probe runs `bursts` x BURST steps of one FMA per chain and returns a value that depends
 * on all of them (so nothing is optimised away). Flops per step: chains * lanes * 2. */
#if FM_X86
__attribute__((target("avx512f,fma"), noinline))
static float probe_avx512(long bursts)
{
    __m512 x[CHAINS_AVX512];
    const __m512 s = _mm512_set1_ps(0.999f), t = _mm512_set1_ps(0.001f);
    for (int c = 0; c < CHAINS_AVX512; c++)
        x[c] = _mm512_set1_ps((float)c);
    for (long r = 0; r < bursts; r++) {
        for (int p = 0; p < BURST; p++) {
            #pragma GCC unroll 16
            for (int c = 0; c < CHAINS_AVX512; c++)
                x[c] = _mm512_fmadd_ps(x[c], s, t);
        }
    }
    __m512 sum = _mm512_setzero_ps();
    for (int c = 0; c < CHAINS_AVX512; c++)
        sum = _mm512_add_ps(sum, x[c]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"), noinline))
static float probe_avx2(long bursts)
{
    __m256 x[CHAINS];
    const __m256 s = _mm256_set1_ps(0.999f), t = _mm256_set1_ps(0.001f);
    for (int c = 0; c < CHAINS; c++)
        x[c] = _mm256_set1_ps((float)c);
    for (long r = 0; r < bursts; r++) {
        for (int p = 0; p < BURST; p++) {
            #pragma GCC unroll 16
            for (int c = 0; c < CHAINS; c++)
                x[c] = _mm256_fmadd_ps(x[c], s, t);
        }
    }
    __m256 sum = _mm256_setzero_ps();
    for (int c = 0; c < CHAINS; c++)
        sum = _mm256_add_ps(sum, x[c]);
    float out[8];
    _mm256_storeu_ps(out, sum);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
#endif

__attribute__((noinline))
static float probe_generic(long bursts)
{
    float x[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        x[c] = (float)c;
    for (long r = 0; r < bursts; r++)
        for (int p = 0; p < BURST; p++)
            for (int c = 0; c < CHAINS; c++)
                x[c] = fmaf(x[c], 0.999f, 0.001f);
    float sum = 0.0f;
    for (int c = 0; c < CHAINS; c++)
        sum += x[c];
    return sum;
}

/* Runs the probe for `name` and returns its flops. */
static double run_probe(const char *name, long bursts, double *check)
{
    double per_step;
#if FM_X86
    if (strcmp(name, "avx512") == 0) {
        *check += probe_avx512(bursts);
        per_step = CHAINS_AVX512 * 16 * 2;
        return per_step * BURST * (double)bursts;
    }
    if (strcmp(name, "avx2") == 0) {
        *check += probe_avx2(bursts);
        per_step = CHAINS * 8 * 2;
        return per_step * BURST * (double)bursts;
    }
#endif
    *check += probe_generic(bursts);
    per_step = CHAINS * 2;
    return per_step * BURST * (double)bursts;
}

double fm_peak_gflops(int n_threads, double seconds)
{
    const char *name = fm_isa_name();
    if (n_threads <= 0)
        n_threads = fm_get_num_threads();
    if (seconds <= 0.0)
        seconds = 0.01;
    double total_flops = 0.0, elapsed = 0.0;
#ifdef _OPENMP
    #pragma omp parallel num_threads(n_threads) reduction(+:total_flops) reduction(max:elapsed)
#endif
    {
        double check = 0.0;
        run_probe(name, 1, &check); /* warm up: wake the vector units */
        double t0 = now(), t = t0, flops = 0.0;
        long bursts = 1;
        while (t - t0 < seconds) {
            flops += run_probe(name, bursts, &check);
            t = now();
            if (bursts < 64)
                bursts *= 2;
        }
        total_flops += check == check ? flops : 0.0; /* uses check: the probes must run */
        elapsed = t - t0;
    }
    return elapsed > 0.0 ? total_flops / elapsed * 1e-9 : 0.0;
}
