/* avx512.c - the AVX-512 kernel set: its tile shapes, blocksizes and packing routines (see
 * ukernel.h for the contract, tile.h for the loops they share with the other sets).
 *
 * Wide: up to 6 x 64. Each step loads one 64-float row of B into four zmm registers and
 * issues 24 independent FMAs into 24 accumulators (24 FMAs per 10 loads keep both FMA ports
 * busy; 24 chains hide the 4-cycle latency). Six rows of A read in place need six row
 * offsets, which stay in registers.
 * Narrow: up to 24 x 16, one zmm per row, for n <= 16 (a 10-wide output layer); with A
 * stored by rows the frame asks for 8 rows at most (more row offsets than registers spill).
 * Columns: up to 12 x 32, for A stored by columns, where A(0..11, p) is one run read at
 * constant offsets; the frame also feeds it A stored by rows once pack_a has copied that into
 * 12-row column panels.
 * Tall: a columns or narrow tile of 8 columns or fewer with A stored by columns (the 4 past 96
 * of a 100-wide layer, a 1- or 2-wide output's weight gradient): one or two vectors down its
 * 12 or 24 rows, one accumulator a column (tile.h, tall_body).
 * Row: one row up to 128 columns, eight chains.
 * Packing: pack_bt and pack_a transpose 16 x 16 blocks in registers.
 * Edge tiles: m selects an unrolled body (the switches below); n becomes a lane mask.
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

/* Every function below is compiled for avx512 (clang has no "#pragma GCC target"). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,"  \
                                                    "avx512vl,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
#endif

#include "kernels/vec_avx512.h"

enum { MR_WIDE = 6, NR_WIDE = 64, MR_COLUMNS = 12, NR_COLUMNS = 32, MR_NARROW = 24,
       NR_NARROW = 16, MR_NARROW_ROWS = 8, NR_ROW = 128, TILE_MR_MAX = 24 };
enum { TILE_PREFETCH_A = 1, TILE_PREFETCH_C = 1, TILE_FEW_REGISTERS = 0 };
#define TILE_TALL_RV 2   /* tall tiles (tile.h): a columns tile's 12 rows, or a narrow one's */
#define TILE_TALL_NC 8   /* 24, in one or two vectors, for n <= 8 (where a row-vector tile's
                            lanes are half empty or more) */

#include "kernels/tile.h"

enum { PROBE_CHAINS = 16 };   /* 32 registers */
#include "kernels/probe.h"


/* In-register transpose of r[0..15] (rows) into columns. */
FM_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
    #pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    #pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    #pragma GCC unroll 16
    for (int h = 0; h < 2; h++) {
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    }
    #pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}

/* One transposed block: dst[p*ldd + j] = src[j*lds + p] for p < np and j < 16, where rows
 * j >= n of src read as zero; np, n <= 16. Each dst row gets the lanes of `store`. */
FM_INLINE void transpose_block(float *dst, ptrdiff_t ldd, __mmask16 store, int np, int n,
                               const float *src, ptrdiff_t lds)
{
    __mmask16 mp = v_lanes(np);
    __m512 r[16];
    #pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
        r[j] = j < n ? _mm512_maskz_loadu_ps(mp, src + j * lds) : _mm512_setzero_ps();
    transpose16(r);
    for (int p = 0; p < np; p++)
        _mm512_mask_storeu_ps(dst + p * ldd, store, r[p]);
}

/* Packs a transposed B (see fm_pack_bt_fn) 16 x 16 blocks at a time. */
static void pack_bt(float *dst, int nr, ptrdiff_t kc, int n, const float *src, ptrdiff_t csb)
{
    for (int j0 = 0; j0 < nr; j0 += 16)
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 16)
            transpose_block(dst + p0 * nr + j0, nr, 0xFFFF, kc - p0 < 16 ? (int)(kc - p0) : 16,
                            n - j0, src + j0 * csb + p0, csb);
}

/* Packs m <= 12 rows of A stored by rows into a 12-row column panel (see fm_pack_a_fn):
 * 16 x 16 transposes whose rows 12..15 are zero and never stored. */
static void pack_a(float *dst, int m, ptrdiff_t k, const float *src, ptrdiff_t rsa)
{
    for (ptrdiff_t p0 = 0; p0 < k; p0 += 16)
        transpose_block(dst + p0 * MR_COLUMNS, MR_COLUMNS, v_lanes(MR_COLUMNS),
                        k - p0 < 16 ? (int)(k - p0) : 16, m, src + p0, rsa);
}

/* m x n tiles with m <= 6 and n <= 64: NV = ceil(n / 16) vectors a row; A stored by rows. */
static void kernel_wide(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                        const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    switch (((n + 15) / 16) * 8 + m) {
    case 1 * 8 + 1: tile(1, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 2: tile(2, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 3: tile(3, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 4: tile(4, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 5: tile(5, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 6: tile(6, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 1: tile(1, 2, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 2: tile(2, 2, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 3: tile(3, 2, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 4: tile(4, 2, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 5: tile(5, 2, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 6: tile(6, 2, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 1: tile(1, 3, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 2: tile(2, 3, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 3: tile(3, 3, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 4: tile(4, 3, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 5: tile(5, 3, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 6: tile(6, 3, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 1: tile(1, 4, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 2: tile(2, 4, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 3: tile(3, 4, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 4: tile(4, 4, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 5: tile(5, 4, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 6: tile(6, 4, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* The tile of the rows below the first `rows` rows of t. */
static fm_tile tile_below(const fm_tile *t, int rows, ptrdiff_t ldc)
{
    fm_tile below = *t;
    below.i0 += rows;
    for (int s = 0; s < FM_OPT_STATES; s++)
        below.state[s] = t->state[s] != NULL ? t->state[s] + rows * ldc : NULL;
    return below;
}

/* m x n tiles with m <= 32 and n <= TILE_TALL_NC, A stored by columns (rsa == 1): tall_body,
 * one or two vectors down the rows. */
static void kernel_tall(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t csa, const float *b,
                        ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    switch ((m > 16) * 16 + n) {
    case 1: tall_body(1, 1, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 2: tall_body(1, 2, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 3: tall_body(1, 3, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 4: tall_body(1, 4, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 5: tall_body(1, 5, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 6: tall_body(1, 6, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 7: tall_body(1, 7, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 8: tall_body(1, 8, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 1: tall_body(2, 1, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 2: tall_body(2, 2, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 3: tall_body(2, 3, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 4: tall_body(2, 4, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 5: tall_body(2, 5, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 6: tall_body(2, 6, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 7: tall_body(2, 7, m, k, a, csa, b, rsb, c, ldc, t); break;
    case 16 + 8: tall_body(2, 8, m, k, a, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* m x n tiles with m <= 24 and n <= 16 (one vector a row). A stored by rows takes at most
 * MR_NARROW_ROWS rows a tile from the frame; taller tiles of it, which the frame never asks
 * for, go in pieces (fewer bodies to compile). */
static void kernel_narrow(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                          const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    if (rsa == 1 && n <= TILE_TALL_NC) {
        kernel_tall(m, n, k, a, csa, b, rsb, c, ldc, t);
        return;
    }
    if (rsa != 1 && m > MR_NARROW_ROWS) {
        const fm_tile below = tile_below(t, MR_NARROW_ROWS, ldc);
        kernel_narrow(MR_NARROW_ROWS, n, k, a, rsa, csa, b, rsb, c, ldc, t);
        kernel_narrow(m - MR_NARROW_ROWS, n, k, a + MR_NARROW_ROWS * rsa, rsa, csa, b, rsb,
                      c + MR_NARROW_ROWS * ldc, ldc, &below);
        return;
    }
    switch (m) {
    case 7: tile_any_rsa(7, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8: tile_any_rsa(8, 1, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 9: tile(9, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 10: tile(10, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 11: tile(11, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 12: tile(12, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 13: tile(13, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 14: tile(14, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 15: tile(15, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 16: tile(16, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 17: tile(17, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 18: tile(18, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 19: tile(19, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 20: tile(20, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 21: tile(21, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 22: tile(22, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 23: tile(23, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    case 24: tile(24, 1, 0, n, k, a, 1, csa, b, rsb, c, ldc, t); break;
    default: kernel_wide(m, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    }
}

/* A tile of kernel_columns (A stored by columns, rsa == 1), over its list of steps if it has
 * one, else its runs. */
FM_INLINE void tile_columns(const int MR, int n, ptrdiff_t k, const float *a, ptrdiff_t csa,
                            const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                            const fm_tile *t)
{
    if (t->k_list == NULL)
        tile(MR, 2, 0, n, k, a, 1, csa, b, rsb, c, ldc, t);
    else if (n <= 16)
        tile(MR, 1, 1, n, k, a, 1, csa, b, rsb, c, ldc, t);
    else
        tile(MR, 2, 1, n, k, a, 1, csa, b, rsb, c, ldc, t);
}

/* m x n tiles with m <= 12 and n <= 32, for A stored by columns (rsa == 1: the transposed
 * activations of the weight gradient, or a packed panel). The 12 values A(0..11, p) are one
 * 48-byte run, so the broadcasts use constant offsets. A tile without a list of 16 columns or
 * fewer goes to kernel_narrow; A with other strides, which the frame never gives this kernel,
 * to two wide tiles. */
static void kernel_columns(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa,
                           ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                           const fm_tile *t)
{
    if (n <= TILE_TALL_NC && rsa == 1) {
        kernel_tall(m, n, k, a, csa, b, rsb, c, ldc, t);
        return;
    }
    if (n <= 16 && t->k_list == NULL) {
        kernel_narrow(m, n, k, a, rsa, csa, b, rsb, c, ldc, t);
        return;
    }
    if (rsa != 1) {
        const int top = m < MR_WIDE ? m : MR_WIDE;
        const fm_tile below = tile_below(t, top, ldc);
        kernel_wide(top, n, k, a, rsa, csa, b, rsb, c, ldc, t);
        if (m > top)
            kernel_wide(m - top, n, k, a + top * rsa, rsa, csa, b, rsb, c + top * ldc, ldc, &below);
        return;
    }
    switch (m) {
    case 1: tile_columns(1, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 2: tile_columns(2, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 3: tile_columns(3, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 4: tile_columns(4, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 5: tile_columns(5, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 6: tile_columns(6, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 7: tile_columns(7, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 8: tile_columns(8, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 9: tile_columns(9, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 10: tile_columns(10, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 11: tile_columns(11, n, k, a, csa, b, rsb, c, ldc, t); break;
    case 12: tile_columns(12, n, k, a, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* fm_nonzero_list 16 columns at a time: a mask of the nonzero ones (sign bit aside) picks
 * their indices out of a vector of 16 (compressed to its low lanes and stored whole, so up to
 * 16 values land past the count: FM_LIST_SLACK). The portable loop takes about a cycle and a
 * half a column; a one-row MNIST pass lists 784 + 512 + 256 of them on each thread. */
static int nonzero_list(const float *x, ptrdiff_t K, int32_t *list)
{
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    const __m512i step = _mm512_set1_epi32(16);
    __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    ptrdiff_t n = 0;
    for (ptrdiff_t k = 0; k < K; k += 16) {
        __mmask16 valid = v_lanes((int)(K - k < 16 ? K - k : 16));
        __m512i bits = _mm512_maskz_loadu_epi32(valid, x + k);
        __mmask16 nonzero = _mm512_mask_test_epi32_mask(valid, bits, magnitude);
        _mm512_storeu_si512(list + n, _mm512_maskz_compress_epi32(nonzero, index));
        n += __builtin_popcount(nonzero);
        index = _mm512_add_epi32(index, step);
    }
    return fm_worth_skipping(K, n) ? (int)n : -1;
}

/* fm_tile_steps one step at a time: the step's m values in one masked load, and the same
 * branch-free count as the portable loop. */
static int tile_steps(const float *a, ptrdiff_t csa, int m, ptrdiff_t k, int32_t *list)
{
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    const __mmask16 rows = v_lanes(m);
    ptrdiff_t n = 0;
    for (ptrdiff_t p = 0; p < k; p++) {
        __m512i bits = _mm512_maskz_loadu_epi32(rows, a + p * csa);
        list[n] = (int32_t)p;
        n += _mm512_mask_test_epi32_mask(rows, bits, magnitude) != 0;
    }
    return (int)n;
}

/* fm_all_finite 16 floats at a time: a float is NaN or infinite when its exponent bits are
 * all ones. It checks a packed panel of A while the panel is in L1 (gemm.h: a_not_finite). */
static int all_finite(const float *x, ptrdiff_t n)
{
    const __m512i exponent = _mm512_set1_epi32(0x7f800000);
    __mmask16 bad = 0;
    for (ptrdiff_t i = 0; i < n; i += 16) {
        __mmask16 valid = v_lanes((int)(n - i < 16 ? n - i : 16));
        __m512i bits = _mm512_and_si512(_mm512_maskz_loadu_epi32(valid, x + i), exponent);
        bad |= _mm512_mask_cmpeq_epi32_mask(valid, bits, exponent);
    }
    return bad == 0;
}

const fm_kernel_set fm_kernels_avx512 = {
    .name = "avx512",
    .wide = { .mr = MR_WIDE, .nr = NR_WIDE, .run = kernel_wide },
    .columns = { .mr = MR_COLUMNS, .nr = NR_COLUMNS, .run = kernel_columns },
    .narrow = { .mr = MR_NARROW, .nr = NR_NARROW, .run = kernel_narrow },
    .mr_narrow_rows = MR_NARROW_ROWS,
    .row = { .mr = 1, .nr = NR_ROW, .run = kernel_row },
    .pack_bt = pack_bt,
    .pack_a = pack_a,
    .nonzero_list = nonzero_list,
    .tile_steps = tile_steps,
    .all_finite = all_finite,
    .wide_lists = 0,
    .epilogue_tile = epilogue_tile,
    .finite_rows = finite_rows,
    .probe = PROBE_ENTRY,
    .pairs = NULL,          /* registry.c: VDPBF16PS (avx512_bf16.c), else the AVX2 emulation */
    .blocks = {
        .kc = 128,           /* a KC x 64 packed B panel (32 KiB) stays in L1 */
        .kc_panels = 1024,   /* B read in place from column panels: whole K up to this */
        .mc_packed = 480,    /* rows of A a block when packed: 480 x 784 floats in L2 */
        .mc_in_place = 800,  /* A read in place: all 784 rows of dW1 in one block */
        .pack_a_min_rows = 24,
        .pack_b_min_tiles = 3,
        .prefetch_update = 1,   /* a 12 x 32 tile's kernel hides the fetch of its W, m and v */
    },
};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif /* x86 */
