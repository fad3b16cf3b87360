/* peak.h - the machine's measured FMA throughput, the yardstick for "% of peak". */
#ifndef FASTMLP_PEAK_H
#define FASTMLP_PEAK_H

/* GFLOP/s (one FMA = 2 flops) that n_threads threads reach together for about `seconds`,
 * each running independent FMA chains with the widest vectors of the current instruction set
 * (kernels/registry.h). n_threads <= 0 means fm_get_num_threads(). */
double fm_peak_gflops(int n_threads, double seconds);

/* The same for bf16 products (ops/bf16.h): GFLOP/s of VDPBF16PS chains (2 multiplies and 2
 * adds a lane), or of their emulation where the CPU lacks them (kernels/registry.h, fm_pairs). */
double fm_peak_gflops_bf16(int n_threads, double seconds);

#endif
