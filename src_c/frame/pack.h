/* pack.h - copying a panel of B into the contiguous layout the micro-kernels read.
 *
 * A packed panel is kc rows of nr floats: dst[p*nr + j] = B(p, j) for j < n, 0 for n <= j < nr.
 * The source is B(p, j) = src[p*rsb + j*csb]; src points at the panel's first element.
 * Packing only copies floats, so it never changes a result, only where the kernel finds it.
 */
#ifndef FASTMLP_PACK_H
#define FASTMLP_PACK_H

#include <stddef.h>

void fm_pack_b(float *dst, int nr, ptrdiff_t kc, int n,
               const float *src, ptrdiff_t rsb, ptrdiff_t csb);

#endif
