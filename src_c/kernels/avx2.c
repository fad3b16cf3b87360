/* avx2.c - the AVX2 + FMA kernel set: its tile shapes and blocksizes (see ukernel.h for the
 * contract, tile.h for the loops it shares with the other sets).
 *
 * Up to 6 x 16: each step loads one 16-float row of B into two ymm registers and issues 12
 * independent FMAs into 12 accumulators, for every shape (wide, columns, narrow). One row (a
 * single sample's pass): up to 1 x 64, eight chains.
 * Edge tiles: m selects an unrolled body; n becomes a lane mask for vmaskmov, which is for edge
 * tiles alone (AMD's cores run its store as microcode).
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

/* Every function below is compiled for avx2 (clang has no "#pragma GCC target"). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#include "kernels/vec_avx2.h"

#include "fastmlp.h"   /* fm_all_finite */

enum { MR = 6, NR = 16, NR_ROW = 64, TILE_MR_MAX = 6 };
enum { TILE_PREFETCH_A = 0, TILE_PREFETCH_C = 0, TILE_FEW_REGISTERS = 1 };

#include "kernels/tile.h"

enum { PROBE_CHAINS = 12 };   /* 16 registers: with 16 chains three spill */
#include "kernels/probe.h"

enum { PAIRS_MR_ROWS = MR, PAIRS_NV_ROWS = NR / 8, PAIRS_MR_COLUMNS = MR,
       PAIRS_NV_COLUMNS = NR / 8 };
#include "kernels/pairs.h"

static const fm_pairs_set pairs = PAIRS_SET("avx2 (emulated)", 0);

/* An m x n tile, m <= 6 and n <= 16, over its list (LISTED) or its runs. */
FM_INLINE void tile_m(const int LISTED, int m, int n, ptrdiff_t k, const float *a,
                      ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c,
                      ptrdiff_t ldc, const fm_tile *t)
{
    switch ((n > 8) * 8 + m) {
    case 0 + 1: tile(1, 1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 0 + 2: tile(2, 1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 0 + 3: tile(3, 1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 0 + 4: tile(4, 1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 0 + 5: tile(5, 1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 0 + 6: tile(6, 1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8 + 1: tile(1, 2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8 + 2: tile(2, 2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8 + 3: tile(3, 2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8 + 4: tile(4, 2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8 + 5: tile(5, 2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8 + 6: tile(6, 2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* m x n tiles with m <= 6 and n <= 16: wide, columns and narrow; a tile may have a list
 * (ukernel.h, wide_lists). */
static void kernel(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                   const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    if (t->k_list != NULL)
        tile_m(1, m, n, k, a, rsa, csa, b, rsb, c, ldc, t);
    else
        tile_m(0, m, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* fm_tile_steps one step at a time: the step's m values (m <= 8) in one masked load, and the
 * same branch-free count as the portable loop. A masked load is cheap on AMD (the masked
 * store is the slow one). */
static int tile_steps(const float *a, ptrdiff_t csa, int m, ptrdiff_t k, int32_t *list)
{
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
    const __m256i rows = v_lanes(m);
    ptrdiff_t n = 0;
    for (ptrdiff_t p = 0; p < k; p++) {
        __m256i bits = _mm256_castps_si256(_mm256_maskload_ps(a + p * csa, rows));
        list[n] = (int32_t)p;
        n += !_mm256_testz_si256(bits, magnitude);
    }
    return (int)n;
}

const fm_kernel_set fm_kernels_avx2 = {
    .name = "avx2",
    .wide = { .mr = MR, .nr = NR, .run = kernel },
    .columns = { .mr = MR, .nr = NR, .run = kernel },
    .narrow = { .mr = MR, .nr = NR, .run = kernel },
    .mr_narrow_rows = MR,
    .row = { .mr = 1, .nr = NR_ROW, .run = kernel_row },
    .nonzero_list = fm_nonzero_list,
    .tile_steps = tile_steps,
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
        .prefetch_update = 0,   /* a 6 x 16 tile's kernel is too short to hide it: the
                                   prefetches wait on the misses they make */
    },
};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif /* x86 */
