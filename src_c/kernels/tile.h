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
 *   TILE_TALL_RV, TILE_TALL_NC  (macros, optional) the set's tall tiles (tall_body): up to
 *                       TILE_TALL_RV vectors of rows by TILE_TALL_NC <= FM_VL columns
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

/* A float tile, and a tile of a bf16 product: k steps of pairs, A and B holding a pair in each
 * float's place (kernels/pairs.h packs them; no runs or lists). Macros rather than wrappers:
 * one more level of inlined function changes how GCC allocates the float kernels' registers. */
#define tile(...) tile_body(0, __VA_ARGS__)
#define tile_pairs(MR, NV, ...) tile_body(1, MR, NV, 0, __VA_ARGS__)

#ifdef TILE_TALL_NC
_Static_assert(TILE_TALL_NC <= FM_VL, "a tall tile's row of sums is one vector");

/* The FMA steps p of a tall tile (below): A's column p, down the tile's RV vectors of rows,
 * into each of the NC columns' accumulators. */
FM_INLINE void tall_step(const int RV, const int NC, fm_vec acc[][TILE_TALL_NC],
                         const fm_lanes mk[], const float *ap, const float *bp)
{
    fm_vec av[TILE_TALL_RV];
    #pragma GCC unroll 4
    for (int r = 0; r < RV; r++)
        av[r] = v_load_lanes(ap + FM_VL * r, mk[r]);
    #pragma GCC unroll 8
    for (int j = 0; j < NC; j++) {
        const fm_vec bj = v_broadcast(bp + j);
        #pragma GCC unroll 4
        for (int r = 0; r < RV; r++)
            acc[r][j] = v_fma(av[r], bj, acc[r][j]);
    }
}

/* A tall tile: m rows (m <= RV vectors) by exactly NC columns, for A stored by columns (rsa
 * == 1), with its vectors down the rows: A(i.., p) is one vector, B(p, j) a broadcast, one
 * accumulator a column. For the few columns past the last whole tile (100 hidden units are
 * 3 x 32 + 4) and the weight gradient of an output a few columns wide, where a row-vector tile
 * would leave half of its 16 lanes empty or more. The same chains, in
 * the same order, as any other tile (ukernel.h); the sums go through a small buffer to C's
 * rows, where the epilogue runs as it does in tile_body. */
FM_INLINE void tall_body(const int RV, const int NC, int m, ptrdiff_t k, const float *a,
                         ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                         const fm_tile *t)
{
    fm_lanes mk[TILE_TALL_RV];
    fm_vec acc[TILE_TALL_RV][TILE_TALL_NC];
    _Alignas(64) float cols[TILE_TALL_NC][TILE_TALL_RV * FM_VL];   /* column j: C(0.., j) */

    #pragma GCC unroll 4
    for (int r = 0; r < RV; r++)
        mk[r] = v_lanes(m - FM_VL * r);
    if (!t->first)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < NC; j++)
                cols[j][i] = c[i * ldc + j];
    #pragma GCC unroll 4
    for (int r = 0; r < RV; r++) {
        #pragma GCC unroll 8
        for (int j = 0; j < NC; j++)
            acc[r][j] = t->first ? v_zero() : v_load_lanes(cols[j] + FM_VL * r, mk[r]);
    }

    if (t->k_list != NULL) {
        for (int s = 0; s < t->n_k_list; s++)
            tall_step(RV, NC, acc, mk, a + t->k_list[s] * csa, b + t->k_list[s] * rsb);
    } else {
        const int n_runs = t->runs != NULL ? t->n_runs : 1;
        for (int q = 0; q < n_runs; q++) {
            const ptrdiff_t p0 = t->runs != NULL ? t->runs[2 * q] : 0;
            const ptrdiff_t p1 = t->runs != NULL ? t->runs[2 * q + 1] : k;
            #pragma GCC unroll 2
            for (ptrdiff_t p = p0; p < p1; p++)
                tall_step(RV, NC, acc, mk, a + p * csa, b + p * rsb);
        }
    }

    #pragma GCC unroll 4
    for (int r = 0; r < RV; r++) {
        #pragma GCC unroll 8
        for (int j = 0; j < NC; j++)
            v_store(cols[j] + FM_VL * r, acc[r][j]);
    }
    const fm_lanes row_lanes = v_lanes(NC);
    for (int i = 0; i < m; i++) {
        _Alignas(64) float row[FM_VL];
        for (int j = 0; j < NC; j++)
            row[j] = cols[j][i];
        const fm_vec sums = v_load_lanes(row, row_lanes);
        if (t->last)
            epilogue_vector(1, t->epi, t, sums, i, 0, c + i * ldc, ldc, row_lanes, 0, NULL);
        else
            store_part(c + i * ldc, row_lanes, sums, 0);
    }
}
#endif

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
