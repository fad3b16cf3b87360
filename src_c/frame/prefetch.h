/* prefetch.h - asks for an update tile's weights and optimiser state in L2 before its kernel
 * runs. An update out of line (Adam) reads and writes the weights and both moments right after
 * the kernel; fetched while the kernel runs, they come from L3 at its bandwidth instead of one
 * miss at a time. L1 would lose them to the kernel's own panels.
 * Both functions are always inlined: GCC deems a function made of prefetches alone free of
 * effects, and drops the calls to it. */
#ifndef FASTMLP_PREFETCH_H
#define FASTMLP_PREFETCH_H

#include <stddef.h>

#include "kernels/ukernel.h"
#include "ops/optimizer.h"

#define FM_PREFETCH_INLINE static inline __attribute__((always_inline))

/* The m x n block at c (row stride ldc) into L2. */
FM_PREFETCH_INLINE void prefetch_block_l2(const float *c, ptrdiff_t ldc, int m, int n)
{
    enum { LINE_FLOATS = 16, FOR_WRITE = 1, INTO_L2 = 2 };
    for (int i = 0; i < m; i++) {
        const float *row = c + i * ldc;
        for (int j = 0; j < n; j += LINE_FLOATS)
            __builtin_prefetch(row + j, FOR_WRITE, INTO_L2);
        __builtin_prefetch(row + n - 1, FOR_WRITE, INTO_L2);
    }
}

/* The weights at c and the tile's optimiser state (t->state, same layout), m x n. */
FM_PREFETCH_INLINE void prefetch_update_tile(const fm_tile *t, const float *c, ptrdiff_t ldc,
                                             int m, int n)
{
    prefetch_block_l2(c, ldc, m, n);
    for (int s = 0; s < FM_OPT_STATES; s++)
        if (t->state[s] != NULL)
            prefetch_block_l2(t->state[s], ldc, m, n);
}

#endif
