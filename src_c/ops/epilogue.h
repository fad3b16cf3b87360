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

/* Writes the epilogue of one vector of sums acc to C(i, j..) at c, lanes mk (all when full).
 * i, j: the vector's place inside the tile t. INLINE: in the micro-kernel's store, where only
 * the cheap activations come (fm_epilogue_inline), so the others' code stays out of it: a
 * kernel that holds its accumulators in 16 vector registers spills them for less. drop: NULL,
 * or the lanes' dropout factors (e->dropout; out of line alone). */
FM_INLINE void epilogue_vector(const int INLINE, const fm_epilogue *e, const fm_tile *t,
                               fm_vec acc, ptrdiff_t i, ptrdiff_t j, float *c, ptrdiff_t ldc,
                               fm_lanes mk, int full, const float *drop)
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
        /* Out of line alone: no cheap activation keeps z, and dropout runs out of line. What
         * the derivative reads: z, or a dropout layer's output before the drop. */
        if (!INLINE && e->pre != NULL)
            store_part(e->pre + (t->i0 + i) * e->ldm + t->j0 + j, mk,
                       fm_activation_keeps_z(e->activation) ? z : r, full);
        if (!INLINE && drop != NULL)
            r = v_mul(r, load_part(drop, mk, full));
        break;
    }
    case FM_EPI_ACT_GRAD: {
        const fm_vec a = load_part(e->mask + (t->i0 + i) * e->ldm + t->j0 + j, mk, full);
        const fm_vec g = !INLINE && drop != NULL ? v_mul(acc, load_part(drop, mk, full)) : acc;
        r = INLINE ? activation_backward_cheap(e->activation, g, a)
                   : activation_backward(e->activation, g, a);
        break;
    }
    case FM_EPI_UPDATE: {
        const fm_vec w = load_part(c, mk, full);
        if (!INLINE && e->opt.rule == FM_OPT_ADAM) {   /* never in a kernel's store */
            float *mp = t->state[0] + i * ldc + j, *vp = t->state[1] + i * ldc + j;
            fm_vec m = load_part(mp, mk, full), v = load_part(vp, mk, full);
            r = adam_step(&e->opt, w, acc, &m, &v);
            store_part(mp, mk, m, full);
            store_part(vp, mk, v, full);
        } else if (t->state[0] == NULL) {
            r = optimizer_step(&e->opt, w, acc, NULL);
        } else {
            float *vp = t->state[0] + i * ldc + j;
            fm_vec vel = load_part(vp, mk, full);
            r = optimizer_step(&e->opt, w, acc, &vel);
            store_part(vp, mk, vel, full);
        }
        /* Lanes outside mk hold zeros, which stay finite (Adam's: 0 / epsilon). */
        /* In a kernel's store the frame checks the finished weights instead (finite_rows): the
         * check would cost the kernel registers. */
        if (!INLINE && e->not_finite != NULL && v_any_not_finite(r))
            atomic_store_explicit(e->not_finite, 1, memory_order_relaxed);
        break;
    }
    }
    store_part(c, mk, r, full);
}

/* Adam's step over a finished tile of an update's sums (parked in t->sums), out of line. The
 * rule's constants are read from a local copy, which the tile's stores cannot change, so they
 * stay in registers instead of being loaded again after every store; the weights' finiteness
 * is gathered over the tile into one flag. The same operations as epilogue_vector's. */
static void adam_tile(const fm_tile *t, int m, int n, float *c, ptrdiff_t ldc)
{
    const fm_optimizer o = t->epi->opt;
    int bad = 0;
    for (int i = 0; i < m; i++) {
        const float *sums = t->sums + i * t->ld_sums;
        float *w = c + i * ldc, *m1 = t->state[0] + i * ldc, *m2 = t->state[1] + i * ldc;
        for (int j = 0; j < n; j += FM_VL) {
            const int full = n - j >= FM_VL;
            const fm_lanes mk = v_lanes(n - j);
            fm_vec first = load_part(m1 + j, mk, full), second = load_part(m2 + j, mk, full);
            const fm_vec r = adam_step(&o, load_part(w + j, mk, full),
                                       load_part(sums + j, mk, full), &first, &second);
            bad |= v_any_not_finite(r);   /* lanes outside mk hold zeros: 0 / epsilon */
            store_part(m1 + j, mk, first, full);
            store_part(m2 + j, mk, second, full);
            store_part(w + j, mk, r, full);
        }
    }
    if (bad && t->epi->not_finite != NULL)
        atomic_store_explicit(t->epi->not_finite, 1, memory_order_relaxed);
}

/* The epilogue of a finished tile of m x n sums parked in C (or, for an update, in t->sums),
 * out of line: for the epilogues that a micro-kernel's store leaves out (fm_epilogue_inline),
 * while the tile is in L1. The frame calls it (the set's epilogue_tile) right after the
 * kernel: a call inside a kernel's body would cost it registers. */
static void epilogue_tile(const fm_tile *t, int m, int n, float *c, ptrdiff_t ldc)
{
    if (t->epi->kind == FM_EPI_UPDATE && t->epi->opt.rule == FM_OPT_ADAM && t->sums != NULL) {
        adam_tile(t, m, n, c, ldc);
        return;
    }
    const fm_dropout *d = t->epi->dropout;
    enum { DROP_CHUNK = 64 };   /* columns whose dropout factors are made at a time */
    float drop[DROP_CHUNK];
    /* ReLU's input gradient needs no mask: a dropped unit's output is 0, where the derivative
     * is 0 too, so every unit's factor can be the kept units' (the same bits). */
    const int relu_grad = d != NULL && t->epi->kind == FM_EPI_ACT_GRAD
                          && t->epi->activation == FM_ACT_RELU;
    if (relu_grad)
        for (int j = 0; j < DROP_CHUNK; j++)
            drop[j] = d->scale;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j += FM_VL) {
            const int full = n - j >= FM_VL;
            const fm_lanes mk = v_lanes(n - j);
            float *cij = c + i * ldc + j;
            const float *sij = t->sums != NULL ? t->sums + i * t->ld_sums + j : cij;
            if (d != NULL && !relu_grad && j % DROP_CHUNK == 0)   /* FM_VL divides it */
                fm_dropout_factors(d, t->i0 + i, t->j0 + j,
                                   n - j < DROP_CHUNK ? n - j : DROP_CHUNK, drop);
            epilogue_vector(0, t->epi, t, load_part(sij, mk, full), i, j, cij, ldc, mk, full,
                            d != NULL ? drop + j % DROP_CHUNK : NULL);
        }
    }
}

/* Whether the m x n block at c (row stride ldc) holds no NaN and no infinity: the weights an
 * update product just wrote (fm_epilogue.not_finite). */
static int finite_rows(const float *c, ptrdiff_t ldc, ptrdiff_t m, int n)
{
    int bad = 0;
    for (ptrdiff_t i = 0; i < m; i++) {
        for (int j = 0; j < n; j += FM_VL) {
            const int full = n - j >= FM_VL;
            bad |= v_any_not_finite(load_part(c + i * ldc + j, v_lanes(n - j), full));
        }
    }
    return !bad;
}

#endif
