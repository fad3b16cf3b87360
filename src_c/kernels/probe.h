/* probe.h - the FMA throughput probe of one instruction set (kernels/peak.c), written once over
 * the vector interface. Each kernel set includes its vec_<isa>.h, defines PROBE_CHAINS (as
 * many independent chains as fit in its registers beside two constants, at least 8 to cover
 * the FMA latency on two ports) and includes this. */
#ifndef FASTMLP_PROBE_H
#define FASTMLP_PROBE_H

#include "kernels/ukernel.h"

/* bursts x FM_PROBE_BURST steps of one FMA a chain; returns a value that depends on all of
 * them, so that none is optimised away. */
static __attribute__((noinline)) float peak_probe(long bursts)
{
    fm_vec x[PROBE_CHAINS];
    const fm_vec s = v_set1(0.999f), t = v_set1(0.001f);
    for (int c = 0; c < PROBE_CHAINS; c++)
        x[c] = v_set1((float)c);
    for (long r = 0; r < bursts; r++) {
        for (int p = 0; p < FM_PROBE_BURST; p++) {
            #pragma GCC unroll 16
            for (int c = 0; c < PROBE_CHAINS; c++)
                x[c] = v_fma(x[c], s, t);
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

/* The same with v_dot2_bf16 (bf16 products, ops/bf16.h): two multiplies and two adds a lane
 * and step. */
static __attribute__((noinline)) float peak_probe_pairs(long bursts)
{
    fm_vec x[PROBE_CHAINS];
    const fm_vec s = v_set1(0.001f), t = v_set1(0.002f);   /* pairs of tiny bf16 */
    for (int c = 0; c < PROBE_CHAINS; c++)
        x[c] = v_set1((float)c);
    for (long r = 0; r < bursts; r++) {
        for (int p = 0; p < FM_PROBE_BURST; p++) {
            #pragma GCC unroll 16
            for (int c = 0; c < PROBE_CHAINS; c++)
                x[c] = v_dot2_bf16(x[c], s, t);
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

/* The probes' entries in a kernel set and in its pairs. */
#define PROBE_ENTRY { .run = peak_probe, .flops_per_step = 2 * PROBE_CHAINS * FM_VL }
#define PROBE_PAIRS_ENTRY { .run = peak_probe_pairs, .flops_per_step = 4 * PROBE_CHAINS * FM_VL }

#endif
