/* pairs.h - a kernel set's bf16 products (precision "bf16"): the packing that rounds to bf16
 * and the tiles over pairs, written once for the SIMD sets, after tile.h.
 *
 * The frame (frame/gemm_pairs.c) rounds each operand to bf16 while it copies it into the
 * thread's workspace, two steps of K to a 32-bit word (ops/bf16.h: a pair), then runs these
 * tiles over the pairs as tile.h runs float tiles over steps: a pair of A broadcast, NV
 * vectors of B's pairs loaded, one v_dot2_bf16 into each accumulator. The set defines
 *
 *   PAIRS_MR_ROWS, PAIRS_NV_ROWS        the tallest and widest tile for A in rows of pairs
 *   PAIRS_MR_COLUMNS, PAIRS_NV_COLUMNS  the same for A in columns of pairs (rsa == 1)
 *
 * (after probe.h) and gets pairs_rows, pairs_columns (fm_ukernel_fn), pair_rows and pair_row (fm_pairs_set).
 * The generic set takes the packing alone, and runs its own loop over v_dot2_bf16. A set whose
 * vector interface rounds to bf16 in one instruction (FM_VEC_BF16_PACK) packs with it, the
 * same bits as fm_bf16_bits.
 */
#ifndef FASTMLP_PAIRS_H
#define FASTMLP_PAIRS_H

#include <string.h>

#include "ops/bf16.h"

/* The float at p's bits, and a word stored where a float goes (memcpy: no aliasing of types). */
FM_INLINE uint32_t bits_at(const float *p)
{
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return u;
}

FM_INLINE void store_word(float *p, uint32_t u)
{
    memcpy(p, &u, sizeof u);
}

/* dst[j] = the pair (r0[j], r1[j]) for j < n; r1 NULL: (r0[j], 0). */
static void pair_rows(float *dst, const float *r0, const float *r1, ptrdiff_t n)
{
#ifdef FM_VEC_BF16_PACK   /* by the instruction, the last vector's lanes masked */
    ptrdiff_t j = 0;
    for (; j + FM_VL <= n; j += FM_VL)
        v_store(dst + j, v_bf16_pairs(v_load(r0 + j), r1 != NULL ? v_load(r1 + j) : v_zero()));
    if (j < n) {
        const fm_lanes mk = v_lanes((int)(n - j));
        v_store_lanes(dst + j, mk, v_bf16_pairs(v_load_lanes(r0 + j, mk),
                                                r1 != NULL ? v_load_lanes(r1 + j, mk) : v_zero()));
    }
    return;
#endif
    if (r1 == NULL) {
        for (ptrdiff_t j = 0; j < n; j++)
            store_word(dst + j, fm_bf16_bits(bits_at(r0 + j)) >> 16);
        return;
    }
    for (ptrdiff_t j = 0; j < n; j++)
        store_word(dst + j, (fm_bf16_bits(bits_at(r0 + j)) >> 16) | fm_bf16_bits(bits_at(r1 + j)));
}

/* dst[q] = the pair (src[2q], src[2q + 1]) for q < (k + 1) / 2, the last one's high half zero
 * when k is odd. */
static void pair_row(float *dst, const float *src, ptrdiff_t k)
{
#ifdef FM_VEC_BF16_PACK   /* by the instruction, the last vector's lanes masked (the first
                             layer packs runs of a few pairs: tails are most of its calls) */
    ptrdiff_t q = 0;
    for (; 2 * (q + FM_VL) <= k; q += FM_VL)
        v_store(dst + q, v_bf16_pairs_in_order(v_load(src + 2 * q), v_load(src + 2 * q + FM_VL)));
    const ptrdiff_t rest = k - 2 * q;   /* floats left: fewer than 2 FM_VL */
    if (rest > 0) {
        const fm_vec first = v_load_lanes(src + 2 * q, v_lanes((int)rest));
        const fm_vec second = v_load_lanes(src + 2 * q + FM_VL, v_lanes((int)rest - FM_VL));
        const fm_lanes pairs_left = v_lanes((int)(rest + 1) / 2);
        v_store_lanes(dst + q, pairs_left, v_bf16_pairs_in_order(first, second));
    }
    return;
#endif
    const ptrdiff_t whole = k / 2;
    for (ptrdiff_t q = 0; q < whole; q++)
        store_word(dst + q, (fm_bf16_bits(bits_at(src + 2 * q)) >> 16)
                            | fm_bf16_bits(bits_at(src + 2 * q + 1)));
    if (k % 2 != 0)
        store_word(dst + whole, fm_bf16_bits(bits_at(src + k - 1)) >> 16);
}

#ifdef FASTMLP_TILE_H   /* the SIMD sets' tiles; the generic set has a loop of its own */

/* A tile of MR rows and n <= NV_MAX vectors of pairs. */
FM_INLINE void pairs_tile(const int MR, const int NV_MAX, int n, ptrdiff_t k, const float *a,
                          ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c,
                          ptrdiff_t ldc, const fm_tile *t)
{
    switch ((n + FM_VL - 1) / FM_VL) {
    case 1: tile_pairs(MR, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2: if (NV_MAX >= 2) tile_pairs(MR, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3: if (NV_MAX >= 3) tile_pairs(MR, 3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4: if (NV_MAX >= 4) tile_pairs(MR, 4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* m x n tiles, m <= PAIRS_MR_ROWS, n <= PAIRS_NV_ROWS vectors: A in rows of pairs, read in
 * place (csa == 1). With t's list (the first layer's groups of rows, frame/gemm_pairs.c) the
 * tile is PAIRS_MR_ROWS tall and PAIRS_NV_ROWS vectors wide, the columns past n masked: one
 * variant, to keep the build short (the frame runs a shorter listed tile as a full one into
 * a tile of its own). */
static void pairs_rows(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                       const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    if (t->k_list != NULL) {
        if (m == PAIRS_MR_ROWS)
            tile_body(1, PAIRS_MR_ROWS, PAIRS_NV_ROWS, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t);
        return;
    }
    switch (m) {
    case 1: pairs_tile(1, PAIRS_NV_ROWS, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2: pairs_tile(2, PAIRS_NV_ROWS, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3: pairs_tile(3, PAIRS_NV_ROWS, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4: pairs_tile(4, PAIRS_NV_ROWS, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 5: pairs_tile(5, PAIRS_NV_ROWS, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 6: pairs_tile(6, PAIRS_NV_ROWS, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* m x n tiles, m <= PAIRS_MR_COLUMNS, n <= PAIRS_NV_COLUMNS vectors: A in columns of pairs
 * (rsa == 1), whose MR pairs of a step are one run. */
static void pairs_columns(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa,
                          ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                          const fm_tile *t)
{
    (void)rsa;
    switch (m) {
    case 1: pairs_tile(1, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 2: pairs_tile(2, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 3: pairs_tile(3, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 4: pairs_tile(4, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 5: pairs_tile(5, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 6: pairs_tile(6, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 7: if (PAIRS_MR_COLUMNS >= 7) pairs_tile(7, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 8: if (PAIRS_MR_COLUMNS >= 8) pairs_tile(8, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 9: if (PAIRS_MR_COLUMNS >= 9) pairs_tile(9, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 10: if (PAIRS_MR_COLUMNS >= 10) pairs_tile(10, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 11: if (PAIRS_MR_COLUMNS >= 11) pairs_tile(11, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 12: if (PAIRS_MR_COLUMNS >= 12) pairs_tile(12, PAIRS_NV_COLUMNS, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* The set's fm_pairs_set. */
#define PAIRS_SET(set_name, is_native) {                                                  \
        .name = set_name, .native = is_native,                                            \
        .rows = { .mr = PAIRS_MR_ROWS, .nr = PAIRS_NV_ROWS * FM_VL, .run = pairs_rows },  \
        .columns = { .mr = PAIRS_MR_COLUMNS, .nr = PAIRS_NV_COLUMNS * FM_VL,              \
                     .run = pairs_columns },                                              \
        .pair_rows = pair_rows, .pair_row = pair_row, .probe = PROBE_PAIRS_ENTRY }

#endif /* FASTMLP_TILE_H */

#endif
