/* sizes.c - overflow checks on the sizes of a network's buffers. */
#include <stdint.h>

#include "fastmlp.h"

/* *product = a * b * unit when that fits in ptrdiff_t (a, b, unit >= 0); else returns -1. */
static int checked_product(ptrdiff_t a, ptrdiff_t b, ptrdiff_t unit, ptrdiff_t *product)
{
    if (a < 0 || b < 0)
        return -1;
    if (a != 0 && b > PTRDIFF_MAX / a)
        return -1;
    ptrdiff_t ab = a * b;
    if (ab != 0 && unit > PTRDIFF_MAX / ab)
        return -1;
    *product = ab * unit;
    return 0;
}

int fm_network_sizes_check(int n_layers, const ptrdiff_t *sizes, ptrdiff_t max_batch)
{
    if (n_layers < 1 || max_batch < 1)
        return -1;
    ptrdiff_t bytes;
    for (int l = 0; l < n_layers; l++) {
        if (sizes[l] < 1 || sizes[l + 1] < 1)
            return -1;
        /* W[l], and act[l] / grad[l] (max_batch rows); the biases are smaller than both. */
        if (checked_product(sizes[l], sizes[l + 1], (ptrdiff_t)sizeof(float), &bytes) != 0)
            return -1;
        if (checked_product(max_batch, sizes[l + 1], (ptrdiff_t)sizeof(float), &bytes) != 0)
            return -1;
    }
    /* The input batch itself, max_batch x sizes[0]. */
    return checked_product(max_batch, sizes[0], (ptrdiff_t)sizeof(float), &bytes);
}
