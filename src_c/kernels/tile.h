/* tile.h - the micro-kernels' loops, written once over the vector interface (kernels/vec.h).
 *
 * Each SIMD kernel set (avx2.c, avx512.c) includes its vec_<isa>.h, defines the constants
 * below, then includes this file and picks its tile shapes from it. A tile of MR rows and NV
 * vectors keeps MR x NV accumulators in registers; every step p loads NV vectors of B's row p,
 * broadcasts A(i,p) for each row and issues MR x NV independent FMAs (ukernel.h's contract).
 *
 *   TILE_MR_MAX         the tallest tile the set asks for (the accumulators' array)
 *   TILE_PREFETCH_A     nonzero: A stored by columns is fetched 16 steps ahead (rows 1 apart
 *                       and steps csa apart are too far apart for the hardware prefetchers)
 *   TILE_PREFETCH_C     nonzero: the C tile (and the ACT_GRAD mask) is fetched while the FMAs
 *                       run; sets with 16 vector registers spill for it instead
 *   TILE_FEW_REGISTERS  nonzero for sets with 16 vector registers, where a tile's 12
 *                       accumulators leave one spare: the epilogue then reads the product's
 *                       fields where they are (local copies would hold registers through a
 *                       tile's steps), but in tiles with a list, and those make their lane
 *                       masks again after the steps instead of keeping them through them
 */
#ifndef FASTMLP_TILE_H
#define FASTMLP_TILE_H

#include "frame/zero_runs.h"
#include "kernels/ukernel.h"
#include "ops/epilogue.h"

enum { TILE_NV_MAX = 8 };

/* One step's multiply-add into an accumulator: an FMA, or with PAIRS (a bf16 product's panels,
 * ops/bf16.h) the two products of a pair of bf16 in each lane of a and b. */
FM_INLINE fm_vec step_mac(const int PAIRS, fm_vec a, fm_vec b, fm_vec acc)
{
    return PAIRS ? v_dot2_bf16(acc, a, b) : v_fma(a, b, acc);
}

/* The FMA steps p0 <= p < p1 of a tile of MR rows and NV vectors into acc. FULL: whole
 * vectors of B, read with plain loads (masked loads at the edge tiles alone). */
FM_INLINE void steps(const int PAIRS, const int MR, const int NV, const int FULL,
                     fm_vec acc[][TILE_NV_MAX],
                     const fm_lanes mk[TILE_NV_MAX], ptrdiff_t p0, ptrdiff_t p1, const float *a,
                     ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb)
{
    a += p0 * csa;
    b += p0 * rsb;
    /* Two steps a trip: the loop's own instructions then hide behind the FMAs. */
    #pragma GCC unroll 2
    for (ptrdiff_t p = p0; p < p1; p++) {
        fm_vec bv[TILE_NV_MAX];
        if (TILE_PREFETCH_A && rsa == 1) {
            v_prefetch(a + 16 * csa);
            v_prefetch(a + 16 * csa + MR - 1);
        }
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            bv[v] = FULL ? v_load(b + FM_VL * v) : v_load_lanes(b + FM_VL * v, mk[v]);
        #pragma GCC unroll 24
        for (int i = 0; i < MR; i++) {
            const fm_vec ai = v_broadcast(a + i * rsa);
            #pragma GCC unroll 8
            for (int v = 0; v < NV; v++)
                acc[i][v] = step_mac(PAIRS, ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += rsb;
    }
}

/* The FMA steps p = list[0], ..., list[n_list - 1] (ascending) into acc: one row's nonzero
 * entries of A, scattered, or the steps where one of a tile's rows is not zero (zero_runs.h). */
FM_INLINE void steps_listed(const int PAIRS, const int MR, const int NV, const int FULL,
                            fm_vec acc[][TILE_NV_MAX], const fm_lanes mk[TILE_NV_MAX],
                            const int32_t *list, int n_list, const float *a, ptrdiff_t rsa,
                            ptrdiff_t csa, const float *b, ptrdiff_t rsb)
{
    #pragma GCC unroll 2
    for (int s = 0; s < n_list; s++) {
        const ptrdiff_t p = list[s];
        fm_vec bv[TILE_NV_MAX];
        if (TILE_PREFETCH_A && rsa == 1 && MR > 1) {
            const float *ahead = a + list[s + 16 < n_list ? s + 16 : n_list - 1] * csa;
            v_prefetch(ahead);
            v_prefetch(ahead + MR - 1);
        }
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            bv[v] = FULL ? v_load(b + p * rsb + FM_VL * v)
                         : v_load_lanes(b + p * rsb + FM_VL * v, mk[v]);
        #pragma GCC unroll 24
        for (int i = 0; i < MR; i++) {
            const fm_vec ai = v_broadcast(a + i * rsa + p * csa);
            #pragma GCC unroll 8
            for (int v = 0; v < NV; v++)
                acc[i][v] = step_mac(PAIRS, ai, bv[v], acc[i][v]);
        }
    }
}

/* The FMA steps of a tile: its list (LISTED), or its runs of k, all of k being one run. */
FM_INLINE void tile_steps_of(const int PAIRS, const int MR, const int NV, const int LISTED,
                             const int FULL,
                             fm_vec acc[][TILE_NV_MAX], const fm_lanes mk[TILE_NV_MAX],
                             ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                             const float *b, ptrdiff_t rsb, const fm_tile *t)
{
    if (LISTED) {
        steps_listed(PAIRS, MR, NV, FULL, acc, mk, t->k_list, t->n_k_list, a, rsa, csa, b, rsb);
        return;
    }
    /* All of k on its own, not as a run of one: in a loop of runs the compiler keeps some
     * accumulators in memory where 16 vector registers hold them all but one. */
    if (t->runs == NULL) {
        steps(PAIRS, MR, NV, FULL, acc, mk, 0, k, a, rsa, csa, b, rsb);
        return;
    }
    for (int r = 0; r < t->n_runs; r++)
        steps(PAIRS, MR, NV, FULL, acc, mk, t->runs[2 * r], t->runs[2 * r + 1], a, rsa, csa, b, rsb);
}

/* The tile body for exactly MR rows and NV vectors, n columns valid (ukernel.h's contract);
 * LISTED: over the steps in t's list, else its runs; PAIRS: k steps of bf16 pairs (step_mac). */
FM_INLINE void tile_body(const int PAIRS, const int MR, const int NV, const int LISTED, int n,
                         ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                         const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    fm_lanes mk[TILE_NV_MAX];
    int full[TILE_NV_MAX];
    fm_vec acc[TILE_MR_MAX][TILE_NV_MAX];

    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        mk[v] = v_lanes(n - FM_VL * v);
        full[v] = n >= FM_VL * (v + 1);
    }
    #pragma GCC unroll 24
    for (int i = 0; i < MR; i++) {
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[i][v] = t->first ? v_zero() : load_part(c + i * ldc + FM_VL * v, mk[v], full[v]);
    }

    if (TILE_PREFETCH_C && k >= 32) {
        const fm_epilogue *e = t->epi;
        #pragma GCC unroll 24
        for (int i = 0; i < MR; i++) {
            v_prefetch(c + i * ldc);
            v_prefetch(c + i * ldc + FM_VL * NV - 1);
            if (t->last && e->kind == FM_EPI_ACT_GRAD) {
                const float *mrow = e->mask + (t->i0 + i) * e->ldm + t->j0;
                v_prefetch(mrow);
                v_prefetch(mrow + FM_VL * NV - 1);
            }
        }
    }

    if (n == FM_VL * NV)
        tile_steps_of(PAIRS, MR, NV, LISTED, 1, acc, mk, k, a, rsa, csa, b, rsb, t);
    else
        tile_steps_of(PAIRS, MR, NV, LISTED, 0, acc, mk, k, a, rsa, csa, b, rsb, t);

    /* The epilogue reads the tile's and the product's fields from local copies: a store to C
     * cannot change a local, so they stay in registers rather than being loaded again after
     * every vector stored (TILE_FEW_REGISTERS says where not). */
    const int local_fields = !TILE_FEW_REGISTERS || LISTED;
    fm_epilogue epi;
    fm_tile fields;
    if (local_fields) {
        epi = *t->epi;
        fields = *t;
        fields.epi = &epi;
    }
    const fm_epilogue *e = local_fields ? &epi : t->epi;
    const fm_tile *tf = local_fields ? &fields : t;
    /* n, hidden from the compiler, so that it makes the masks again rather than keep them */
    int n_again = n;
    if (TILE_FEW_REGISTERS && LISTED)
        __asm__("" : "+r"(n_again));
    #pragma GCC unroll 24
    for (int i = 0; i < MR; i++) {
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            float *cv = c + i * ldc + FM_VL * v;
            const fm_lanes mkv = TILE_FEW_REGISTERS && LISTED ? v_lanes(n_again - FM_VL * v)
                                                              : mk[v];
            if (t->last)
                epilogue_vector(1, e, tf, acc[i][v], i, FM_VL * v, cv, ldc, mkv, full[v], NULL);
            else
                store_part(cv, mkv, acc[i][v], full[v]);
        }
    }
}

/* A float tile (tile_body). */
FM_INLINE void tile(const int MR, const int NV, const int LISTED, int n, ptrdiff_t k,
                    const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb,
                    float *c, ptrdiff_t ldc, const fm_tile *t)
{
    tile_body(0, MR, NV, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* A tile of a bf16 product: k steps of pairs, A and B holding a pair in each float's place
 * (kernels/pairs.h packs them; no runs or lists). */
FM_INLINE void tile_pairs(const int MR, const int NV, int n, ptrdiff_t k, const float *a,
                          ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c,
                          ptrdiff_t ldc, const fm_tile *t)
{
    tile_body(1, MR, NV, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* A tile whose rows of A may be 1 apart (rsa == 1: A stored by columns, or packed): the
 * compiler then addresses them with constant offsets, so that case gets a body of its own. */
FM_INLINE void tile_any_rsa(const int MR, const int NV, const int LISTED, int n, ptrdiff_t k,
                            const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
                            ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    if (rsa == 1)
        tile(MR, NV, LISTED, n, k, a, 1, csa, b, rsb, c, ldc, t);
    else
        tile(MR, NV, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* One row of up to TILE_NV_MAX vectors (a single sample's pass), over its list if it has one:
 * NV vectors give NV independent chains. */
FM_INLINE void row_tile(const int NV, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa,
                        ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                        const fm_tile *t)
{
    if (t->k_list != NULL)
        tile(1, NV, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t);
    else
        tile(1, NV, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* The row kernel: one row, n <= TILE_NV_MAX vectors. */
static void kernel_row(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                       const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    (void)m;
    switch ((n + FM_VL - 1) / FM_VL) {
    case 1: row_tile(1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2: row_tile(2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3: row_tile(3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4: row_tile(4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 5: row_tile(5, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 6: row_tile(6, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 7: row_tile(7, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8: row_tile(8, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

#endif
