/* epilogue.h - the scalar definition of every fm_gemm epilogue (see gemm.h).
 *
 * Portable code paths call fm_epilogue_store() element by element; SIMD paths must compute
 * exactly the same operations in the same order so that every path gives identical bits.
 */
#ifndef FASTMLP_EPILOGUE_H
#define FASTMLP_EPILOGUE_H

#include <math.h>
#include <stddef.h>

#include "gemm.h"

/* Stores the epilogue of `acc` into C(i,j) = *c; V(i,j) = *v when the epilogue has a velocity. */
static inline void fm_epilogue_store(const fm_epilogue *epi, float acc,
                                     ptrdiff_t i, ptrdiff_t j, float *c, float *v)
{
    switch (epi->kind) {
    case FM_EPI_STORE:
        *c = acc;
        break;
    case FM_EPI_BIAS:
        *c = acc + epi->bias[j];
        break;
    case FM_EPI_BIAS_RELU: {
        float z = acc + epi->bias[j];
        *c = z > 0.0f ? z : 0.0f;
        break;
    }
    case FM_EPI_MASK:
        *c = epi->mask[i * epi->ldm + j] > 0.0f ? acc : 0.0f;
        break;
    case FM_EPI_SGD: {
        float w = *c;
        float g = epi->alpha != 0.0f ? fmaf(epi->alpha, w, acc) : acc;
        if (v == NULL) {
            *c = fmaf(-epi->lr, g, w);
        } else {
            float t = -epi->lr * g;
            float vel = fmaf(epi->momentum, *v, t);
            *v = vel;
            *c = w + (epi->nesterov ? fmaf(epi->momentum, vel, t) : vel);
        }
        break;
    }
    }
}

#endif
