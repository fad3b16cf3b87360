/* probe.h - the FMA throughput probe of one instruction set (kernels/peak.c), written once over
 * the vector interface. Each kernel set includes its vec_<isa>.h, defines PROBE_CHAINS (as
 * many independent chains as fit in its registers beside two constants, at least 8 to cover
 * the FMA latency on two ports) and includes this. */
#ifndef FASTMLP_PROBE_H
#define FASTMLP_PROBE_H

#include "kernels/ukernel.h"

/* bursts x FM_PROBE_BURST steps of one FMA a chain, or with PAIRS one v_dot2_bf16 (bf16
 * products, ops/bf16.h); returns a value that depends on all of them, so that none is
 * optimised away. */
FM_INLINE float probe_chains(const int PAIRS, long bursts)
{
    fm_vec x[PROBE_CHAINS];
    /* FMA: x stays near 1; pairs: tiny bf16, x grows slowly */
    const fm_vec s = v_set1(PAIRS ? 0.001f : 0.999f), t = v_set1(PAIRS ? 0.002f : 0.001f);
    for (int c = 0; c < PROBE_CHAINS; c++)
        x[c] = v_set1((float)c);
    for (long r = 0; r < bursts; r++) {
        for (int p = 0; p < FM_PROBE_BURST; p++) {
            #pragma GCC unroll 16
            for (int c = 0; c < PROBE_CHAINS; c++)
                x[c] = PAIRS ? v_dot2_bf16(x[c], s, t) : v_fma(x[c], s, t);
        }
    }
    fm_vec sum = v_zero();
    for (int c = 0; c < PROBE_CHAINS; c++)
        sum = v_add(sum, x[c]);
    float lanes[FM_VL], total = 0.0f;
    v_store(lanes, sum);
    for (int i = 0; i < FM_VL; i++)
        total += lanes[i];
    return total;
}

static __attribute__((noinline)) float peak_probe(long bursts)
{
    return probe_chains(0, bursts);
}

/* Two multiplies and two adds a lane and step. */
static __attribute__((noinline)) float peak_probe_pairs(long bursts)
{
    return probe_chains(1, bursts);
}

/* The probes' entries in a kernel set and in its pairs. */
#define PROBE_ENTRY { .run = peak_probe, .flops_per_step = 2 * PROBE_CHAINS * FM_VL }
#define PROBE_PAIRS_ENTRY { .run = peak_probe_pairs, .flops_per_step = 4 * PROBE_CHAINS * FM_VL }

#endif
