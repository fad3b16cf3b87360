/* epilogue.h - what a product does with each finished sum (frame/gemm.h, fm_epilogue), written
 * once over the vector interface (kernels/vec.h). Each kernel set compiles it with its own
 * vec_<isa>.h; the portable kernel and the bias update with vec_generic.h, one float a vector.
 * The operations and their order are the same on every path, so every path gives the same bits.
 * Include a vec_<isa>.h, then this.
 */
#ifndef FASTMLP_EPILOGUE_H
#define FASTMLP_EPILOGUE_H

#include <stdatomic.h>

#include "frame/gemm.h"
#include "kernels/ukernel.h"
#include "ops/activation.h"
#include "ops/optimizer.h"

/* The lanes mk of the vector at p (all of them when full), the others zero. */
FM_INLINE fm_vec load_part(const float *p, fm_lanes mk, int full)
{
    return full && !FM_MASKED_IS_CHEAP ? v_load(p) : v_load_lanes(p, mk);
}

/* Stores the lanes mk of v at p (all of them when full). */
FM_INLINE void store_part(float *p, fm_lanes mk, fm_vec v, int full)
{
    if (full && !FM_MASKED_IS_CHEAP)
        v_store(p, v);
    else
        v_store_lanes(p, mk, v);
}

/* Whether the micro-kernel applies e in its store (else it parks the sums and epilogue_tile
 * runs over the finished tile). */
static inline int fm_epilogue_inline(const fm_epilogue *e)
{
    return e->kind != FM_EPI_BIAS_ACT || fm_activation_cheap(e->activation);
}

/* Writes the epilogue of one vector of sums acc to C(i, j..) at c, lanes mk (all when full).
 * i, j: the vector's place inside the tile t. INLINE: in the micro-kernel's store, where only
 * the cheap activations come (fm_epilogue_inline), so the others' code stays out of it. */
FM_INLINE void epilogue_vector(const int INLINE, const fm_epilogue *e, const fm_tile *t,
                               fm_vec acc, ptrdiff_t i, ptrdiff_t j, float *c, ptrdiff_t ldc,
                               fm_lanes mk, int full)
{
    fm_vec r = acc;
    switch (e->kind) {
    case FM_EPI_STORE:
        break;
    case FM_EPI_BIAS:
        r = v_add(acc, load_part(e->bias + t->j0 + j, mk, full));
        break;
    case FM_EPI_BIAS_ACT: {
        const fm_vec z = v_add(acc, load_part(e->bias + t->j0 + j, mk, full));
        r = INLINE ? activation_forward_cheap(e->activation, z)
                   : activation_forward(e->activation, z);
        break;
    }
    case FM_EPI_ACT_GRAD:
        r = activation_backward(e->activation, acc,
                                load_part(e->mask + (t->i0 + i) * e->ldm + t->j0 + j, mk, full));
        break;
    case FM_EPI_UPDATE: {
        const fm_vec w = load_part(c, mk, full);
        if (t->state[0] == NULL) {
            r = optimizer_step(&e->opt, w, acc, NULL);
        } else {
            float *vp = t->state[0] + i * ldc + j;
            fm_vec vel = load_part(vp, mk, full);
            r = optimizer_step(&e->opt, w, acc, &vel);
            store_part(vp, mk, vel, full);
        }
        /* Lanes outside mk hold zeros, which stay finite. */
        if (e->not_finite != NULL && v_any_not_finite(r))
            atomic_store_explicit(e->not_finite, 1, memory_order_relaxed);
        break;
    }
    }
    store_part(c, mk, r, full);
}

#endif
