/* peak.c - the FMA throughput probe (see peak.h): the current kernel set's probe
 * (kernels/probe.h), or its bf16 products' (peak_probe_pairs), on every thread, in bursts, until `seconds` passed. */
#define _POSIX_C_SOURCE 200809L

#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "frame/threads.h"
#include "kernels/peak.h"
#include "kernels/registry.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs the probe for `bursts` bursts and returns its flops. */
static double run_probe(const fm_probe *probe, long bursts, double *check)
{
    *check += probe->run(bursts);
    return (double)probe->flops_per_step * FM_PROBE_BURST * (double)bursts;
}

static double probe_gflops(const fm_probe *probe, int n_threads, double seconds)
{
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
        run_probe(probe, 1, &check); /* warm up: wake the vector units */
        double t0 = now(), t = t0, flops = 0.0;
        long bursts = 1;
        while (t - t0 < seconds) {
            flops += run_probe(probe, bursts, &check);
            t = now();
            if (bursts < 64)
                bursts *= 2;
        }
        total_flops += check == check ? flops : 0.0; /* uses check: the probes must run */
        elapsed = t - t0;
    }
    return elapsed > 0.0 ? total_flops / elapsed * 1e-9 : 0.0;
}

double fm_peak_gflops(int n_threads, double seconds)
{
    return probe_gflops(&fm_kernels()->probe, n_threads, seconds);
}

double fm_peak_gflops_bf16(int n_threads, double seconds)
{
    return probe_gflops(&fm_pairs()->probe, n_threads, seconds);
}
