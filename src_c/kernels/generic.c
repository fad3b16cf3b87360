/* generic.c - the portable kernel set (see ukernel.h for the contract).
 *
 * Plain C with fmaf, compiled for the baseline instruction set, and the epilogue of
 * ops/epilogue.h over vec_generic.h (one float a vector). fmaf rounds once, exactly as a
 * hardware FMA does, so this set gives the same bits as the SIMD ones; it is the reference and
 * the fallback, not the fast path.
 */
#include "kernels/vec_generic.h"

#include "fastmlp.h"   /* fm_all_finite */
#include "frame/zero_runs.h"
#include "kernels/ukernel.h"
#include "ops/epilogue.h"

#include "kernels/pairs.h"

enum { PROBE_CHAINS = 12 };   /* as AVX2 */
#include "kernels/probe.h"

enum { MR = 4, NR = 16 };

static void kernel(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                   const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    float acc[MR][NR];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            acc[i][j] = t->first ? 0.0f : c[i * ldc + j];

    /* Every step p of k, or those of the runs, or those of the list (ukernel.h). */
    const ptrdiff_t whole[2] = { 0, k };
    const ptrdiff_t *runs = t->runs != NULL ? t->runs : whole;
    const int n_runs = t->k_list != NULL ? t->n_k_list : t->runs != NULL ? t->n_runs : 1;
    for (int r = 0; r < n_runs; r++) {
        ptrdiff_t p0 = t->k_list != NULL ? t->k_list[r] : runs[2 * r];
        ptrdiff_t p1 = t->k_list != NULL ? p0 + 1 : runs[2 * r + 1];
        for (ptrdiff_t p = p0; p < p1; p++) {
            for (int i = 0; i < m; i++) {
                float ai = a[i * rsa + p * csa];
                for (int j = 0; j < n; j++)
                    acc[i][j] = fmaf(ai, b[p * rsb + j], acc[i][j]);
            }
        }
    }

    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            if (t->last)
                epilogue_vector(0, t->epi, t, acc[i][j], i, j, c + i * ldc + j, ldc, 1, 1, NULL);
            else
                c[i * ldc + j] = acc[i][j];
        }
}

/* The same loop over pairs of bf16 (kernels/pairs.h): every step p a pair, all k of them or
 * those of the tile's list. */
static void kernel_pairs(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                         const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    float acc[MR][NR];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            acc[i][j] = t->first ? 0.0f : c[i * ldc + j];
    const ptrdiff_t steps = t->k_list != NULL ? t->n_k_list : k;
    for (ptrdiff_t s = 0; s < steps; s++) {
        const ptrdiff_t p = t->k_list != NULL ? t->k_list[s] : s;
        for (int i = 0; i < m; i++) {
            float ai = a[i * rsa + p * csa];
            for (int j = 0; j < n; j++)
                acc[i][j] = v_dot2_bf16(acc[i][j], ai, b[p * rsb + j]);
        }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            if (t->last)
                epilogue_vector(0, t->epi, t, acc[i][j], i, j, c + i * ldc + j, ldc, 1, 1, NULL);
            else
                c[i * ldc + j] = acc[i][j];
        }
}

static const fm_pairs_set pairs = {
    .name = "generic (emulated)", .native = 0,
    .rows = { .mr = MR, .nr = NR, .run = kernel_pairs },
    .columns = { .mr = MR, .nr = NR, .run = kernel_pairs },
    .pair_rows = pair_rows, .pair_row = pair_row,
    .probe = PROBE_PAIRS_ENTRY,
};

/* One kernel serves every shape: wide, columns, narrow and row. */
const fm_kernel_set fm_kernels_generic = {
    .name = "generic",
    .wide = { .mr = MR, .nr = NR, .run = kernel },
    .columns = { .mr = MR, .nr = NR, .run = kernel },
    .narrow = { .mr = MR, .nr = NR, .run = kernel },
    .mr_narrow_rows = MR,
    .row = { .mr = 1, .nr = NR, .run = kernel },
    .nonzero_list = fm_nonzero_list,
    .tile_steps = fm_tile_steps,
    .all_finite = fm_all_finite,
    .wide_lists = 1,
    .epilogue_tile = epilogue_tile,
    .finite_rows = finite_rows,
    .probe = PROBE_ENTRY,
    .pairs = &pairs,
    .blocks = {
        .kc = 128,
        .kc_panels = 1024,
        .mc_packed = 480,
        .mc_in_place = 800,
        .pack_a_min_rows = 24,
        .pack_b_min_tiles = 3,
        .prefetch_update = 1,
    },
};
