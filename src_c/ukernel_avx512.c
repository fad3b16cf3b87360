/* ukernel_avx512.c - the micro-kernels for AVX-512 (see ukernel.h for the contract).
 *
 * Wide: up to 6 x 64. Each step p loads one 64-float row of B into four zmm registers,
 * broadcasts A(i,p) for the 6 rows and issues 24 independent FMAs into 24 zmm accumulators
 * (24 FMAs per 10 loads keep both FMA ports of a core busy; 24 chains hide the 4-cycle latency).
 * Six rows of A read in place need only six row offsets, which stay in registers; a 12 x 32
 * tile needs twelve and the compiler spills them (measured: 6 x 64 runs about 1.2x faster).
 * Narrow: up to 24 x 16, one zmm per row, for n <= 16 (the 10-wide output layer); with A
 * stored by rows the frame asks for 8 rows at most (more row offsets than registers spill).
 * Columns: up to 12 x 32, for A stored by columns, where the 12 values A(0..11, p) are one run
 * read at constant offsets; the frame also feeds it A stored by rows once pack_a has copied
 * that into 12-row column panels (about 10% faster than wide on A in place, copy included).
 * Packing: pack_bt and pack_a transpose 16 x 16 blocks in registers (5x the portable copy).
 * Edge tiles: m selects a fully unrolled body (switch below); n becomes a lane mask, and masked
 * loads and stores never touch memory outside the tile.
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")

#include <immintrin.h>

#include "ukernel.h"
#include "zero_runs.h"

enum { MR_WIDE = 6, NR_WIDE = 64, MR_COLUMNS = 12, NR_COLUMNS = 32, MR_NARROW = 24,
       NR_NARROW = 16, MR_MAX = 24 };

#define FM_INLINE static inline __attribute__((always_inline))

/* The lowest n lanes (n may be <= 0 or >= 16). */
FM_INLINE __mmask16 lane_mask(int n)
{
    if (n <= 0)
        return 0;
    if (n >= 16)
        return 0xFFFF;
    return (__mmask16)((1u << n) - 1u);
}

/* Writes the epilogue of one vector of accumulators, C(i, j..j+15) at c, lanes in mk.
 * i, j: position inside the tile. Same operations, same order as epilogue.h. */
FM_INLINE void store_vector(const fm_tile *t, __m512 acc, ptrdiff_t i, ptrdiff_t j,
                            float *c, ptrdiff_t ldc, __mmask16 mk)
{
    const fm_epilogue *e = t->epi;
    const __m512 zero = _mm512_setzero_ps();
    __m512 r = acc;
    if (t->last) {
        switch (e->kind) {
        case FM_EPI_STORE:
            break;
        case FM_EPI_BIAS:
            r = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mk, e->bias + t->j0 + j));
            break;
        case FM_EPI_BIAS_RELU:
            r = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mk, e->bias + t->j0 + j));
            r = _mm512_max_ps(r, zero); /* r > 0 ? r : 0, as in epilogue.h (NaN -> 0) */
            break;
        case FM_EPI_MASK: {
            __m512 m = _mm512_maskz_loadu_ps(mk, e->mask + (t->i0 + i) * e->ldm + t->j0 + j);
            r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ), acc);
            break;
        }
        case FM_EPI_SGD: {
            __m512 w = _mm512_maskz_loadu_ps(mk, c);
            __m512 g = e->alpha != 0.0f ? _mm512_fmadd_ps(_mm512_set1_ps(e->alpha), w, acc) : acc;
            if (e->velocity == NULL) {
                r = _mm512_fmadd_ps(_mm512_set1_ps(-e->lr), g, w);
            } else {
                float *vp = t->v + i * ldc + j;
                __m512 mom = _mm512_set1_ps(e->momentum);
                __m512 tt = _mm512_mul_ps(_mm512_set1_ps(-e->lr), g);
                __m512 vel = _mm512_fmadd_ps(mom, _mm512_maskz_loadu_ps(mk, vp), tt);
                _mm512_mask_storeu_ps(vp, mk, vel);
                r = _mm512_add_ps(w, e->nesterov ? _mm512_fmadd_ps(mom, vel, tt) : vel);
            }
            break;
        }
        }
    }
    _mm512_mask_storeu_ps(c, mk, r);
}

/* The FMA steps p0 <= p < p1 of a tile of MR rows and NV vectors into acc. */
FM_INLINE void steps(const int MR, const int NV, const int FULL, __m512 acc[][8],
                     const __mmask16 mk[8], ptrdiff_t p0, ptrdiff_t p1, const float *a,
                     ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb)
{
    a += p0 * csa;
    b += p0 * rsb;
    /* Two steps per trip: measured, the training step 4-6% and a 10,000-row forward pass 6%
     * faster than one step per trip (4 per trip: 1-3%, 8: none). */
    #pragma GCC unroll 2
    for (ptrdiff_t p = p0; p < p1; p++) {
        __m512 bv[8];
        /* A column-major (rows 1 apart, steps csa apart): too far apart for the hardware
         * prefetchers, so fetch the column 16 steps ahead. */
        if (rsa == 1) {
            _mm_prefetch((const char *)(a + 16 * csa), _MM_HINT_T0);
            _mm_prefetch((const char *)(a + 16 * csa + MR - 1), _MM_HINT_T0);
        }
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            bv[v] = FULL ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(mk[v], b + 16 * v);
        #pragma GCC unroll 24
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i * rsa]);
            #pragma GCC unroll 8
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += rsb;
    }
}

/* The FMA steps p = list[0], ..., list[n_list - 1] (ascending) of a tile of MR rows and NV
 * vectors into acc: one row's nonzero entries of A, scattered, or the steps where a tile of
 * A stored by columns has one (zero_runs.h). */
FM_INLINE void steps_listed(const int MR, const int NV, const int FULL, __m512 acc[][8],
                            const __mmask16 mk[8], const int32_t *list, int n_list,
                            const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
                            ptrdiff_t rsb)
{
    #pragma GCC unroll 2
    for (int s = 0; s < n_list; s++) {
        const ptrdiff_t p = list[s];
        __m512 bv[8];
        /* A column-major: fetch the column 16 listed steps ahead, as steps() does. */
        if (rsa == 1 && MR > 1) {
            const float *ahead = a + list[s + 16 < n_list ? s + 16 : n_list - 1] * csa;
            _mm_prefetch((const char *)ahead, _MM_HINT_T0);
            _mm_prefetch((const char *)(ahead + MR - 1), _MM_HINT_T0);
        }
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            bv[v] = FULL ? _mm512_loadu_ps(b + p * rsb + 16 * v)
                         : _mm512_maskz_loadu_ps(mk[v], b + p * rsb + 16 * v);
        #pragma GCC unroll 24
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i * rsa + p * csa]);
            #pragma GCC unroll 8
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
}

/* The FMA steps of a tile into acc: all of k, or only the runs of k where A is not zero
 * throughout, or only the steps of a list (zero_runs.h). FULL: n == 16 * NV, so B's rows are
 * read with plain loads (paired on Zen 4 against masked loads everywhere: a training step
 * 0.99x the time on 1 and 2 threads). */
FM_INLINE void tile_steps_of(const int MR, const int NV, const int LISTED, const int FULL,
                             __m512 acc[][8], const __mmask16 mk[8], ptrdiff_t k,
                             const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
                             ptrdiff_t rsb, const fm_tile *t)
{
    if (LISTED) {
        steps_listed(MR, NV, FULL, acc, mk, t->k_list, t->n_k_list, a, rsa, csa, b, rsb);
    } else if (t->runs == NULL) {
        steps(MR, NV, FULL, acc, mk, 0, k, a, rsa, csa, b, rsb);
    } else {
        for (int r = 0; r < t->n_runs; r++)
            steps(MR, NV, FULL, acc, mk, t->runs[2 * r], t->runs[2 * r + 1], a, rsa, csa, b,
                  rsb);
    }
}

/* The tile body for exactly MR rows and NV (1 to 8) vectors of 16 columns, n columns valid;
 * LISTED: over the steps in t's list (the tiles that have one), else its runs. */
FM_INLINE void tile(const int MR, const int NV, const int LISTED, int n, ptrdiff_t k,
                    const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                    const float *b, ptrdiff_t rsb,
                    float *c, ptrdiff_t ldc, const fm_tile *t)
{
    __mmask16 mk[8];
    __m512 acc[MR_MAX][8];

    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        mk[v] = lane_mask(n - 16 * v);

    #pragma GCC unroll 24
    for (int i = 0; i < MR; i++) {
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[i][v] = t->first ? _mm512_setzero_ps()
                                 : _mm512_maskz_loadu_ps(mk[v], c + i * ldc + 16 * v);
    }

    /* The C tile (and mask) are read at the end: fetch them while the FMAs run. */
    if (k >= 32) {
        const fm_epilogue *e = t->epi;
        #pragma GCC unroll 24
        for (int i = 0; i < MR; i++) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * ldc + 16 * NV - 1), _MM_HINT_T0);
            if (t->last && e->kind == FM_EPI_MASK) {
                const float *mrow = e->mask + (t->i0 + i) * e->ldm + t->j0;
                _mm_prefetch((const char *)mrow, _MM_HINT_T0);
                _mm_prefetch((const char *)(mrow + 16 * NV - 1), _MM_HINT_T0);
            }
        }
    }

    if (n == 16 * NV)
        tile_steps_of(MR, NV, LISTED, 1, acc, mk, k, a, rsa, csa, b, rsb, t);
    else
        tile_steps_of(MR, NV, LISTED, 0, acc, mk, k, a, rsa, csa, b, rsb, t);

    /* The epilogue reads the tile's and the product's fields from local copies: a store to C
     * cannot change a local, so they stay in registers rather than being loaded again after
     * every vector stored (measured: the training step 1.5-3% faster). */
    const fm_epilogue epi = *t->epi;
    fm_tile tile_fields = *t;
    tile_fields.epi = &epi;
    #pragma GCC unroll 24
    for (int i = 0; i < MR; i++) {
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            store_vector(&tile_fields, acc[i][v], i, 16 * v, c + i * ldc + 16 * v, ldc, mk[v]);
    }
}

/* Rows are read at a + i*rsa; when rsa == 1 (a transposed A, as in the weight gradient) the
 * compiler addresses them with constant offsets, so give it that case on its own. */
FM_INLINE void tile_rows(const int MR, const int NV, int n, ptrdiff_t k,
                         const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                         const float *b, ptrdiff_t rsb,
                         float *c, ptrdiff_t ldc, const fm_tile *t)
{
    if (rsa == 1)
        tile(MR, NV, 0, n, k, a, 1, csa, b, rsb, c, ldc, t);
    else
        tile(MR, NV, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* One row: over its list of steps if it has one, else as any tile (tile_rows). */
FM_INLINE void tile_row(const int NV, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa,
                        ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                        const fm_tile *t)
{
    if (t->k_list != NULL)
        tile(1, NV, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t);
    else
        tile_rows(1, NV, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

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
    __mmask16 mp = lane_mask(np);
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
        transpose_block(dst + p0 * MR_COLUMNS, MR_COLUMNS, lane_mask(MR_COLUMNS),
                        k - p0 < 16 ? (int)(k - p0) : 16, m, src + p0, rsa);
}

/* m x n tiles with m <= 6 and n <= 64: NV = ceil(n / 16) vectors per row. */
static void kernel_wide(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                        const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    switch (((n + 15) / 16) * 8 + m) {
    case 1 * 8 + 1: tile_rows(1, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 2: tile_rows(2, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 3: tile_rows(3, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 4: tile_rows(4, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 5: tile_rows(5, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 1 * 8 + 6: tile_rows(6, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 1: tile_rows(1, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 2: tile_rows(2, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 3: tile_rows(3, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 4: tile_rows(4, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 5: tile_rows(5, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2 * 8 + 6: tile_rows(6, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 1: tile_rows(1, 3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 2: tile_rows(2, 3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 3: tile_rows(3, 3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 4: tile_rows(4, 3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 5: tile_rows(5, 3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3 * 8 + 6: tile_rows(6, 3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 1: tile_rows(1, 4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 2: tile_rows(2, 4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 3: tile_rows(3, 4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 4: tile_rows(4, 4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 5: tile_rows(5, 4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4 * 8 + 6: tile_rows(6, 4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* m x n tiles with m <= 24 and n <= 16 (one vector per row). */
static void kernel_narrow(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                          const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    switch (m) {
    case 7: tile_rows(7, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8: tile_rows(8, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 9: tile_rows(9, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 10: tile_rows(10, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 11: tile_rows(11, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 12: tile_rows(12, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 13: tile_rows(13, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 14: tile_rows(14, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 15: tile_rows(15, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 16: tile_rows(16, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 17: tile_rows(17, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 18: tile_rows(18, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 19: tile_rows(19, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 20: tile_rows(20, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 21: tile_rows(21, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 22: tile_rows(22, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 23: tile_rows(23, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 24: tile_rows(24, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: kernel_wide(m, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    }
}

/* A tile of kernel_columns: over its list of steps if it has one (ukernel.h; A stored by
 * columns, rsa == 1), else as any tile (tile_rows). */
FM_INLINE void tile_columns(const int MR, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa,
                            ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c,
                            ptrdiff_t ldc, const fm_tile *t)
{
    if (t->k_list == NULL)
        tile_rows(MR, 2, n, k, a, rsa, csa, b, rsb, c, ldc, t);
    else if (n <= 16)
        tile(MR, 1, 1, n, k, a, 1, csa, b, rsb, c, ldc, t);
    else
        tile(MR, 2, 1, n, k, a, 1, csa, b, rsb, c, ldc, t);
}

/* m x n tiles with m <= 12 and n <= 32, for A stored by columns (rsa == 1: the transposed
 * activations of the weight gradient). The 12 values A(0..11, p) are one 48-byte run, so the
 * broadcasts use constant offsets, and a K x 32 panel of B (25 KiB for K = 200) stays in L1
 * next to the A lines. A tile without a list of 16 columns or fewer goes to kernel_narrow. */
static void kernel_columns(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa,
                           ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                           const fm_tile *t)
{
    if (n <= 16 && t->k_list == NULL) {
        kernel_narrow(m, n, k, a, rsa, csa, b, rsb, c, ldc, t);
        return;
    }
    switch (m) {
    case 1: tile_columns(1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2: tile_columns(2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3: tile_columns(3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4: tile_columns(4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 5: tile_columns(5, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 6: tile_columns(6, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 7: tile_columns(7, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8: tile_columns(8, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 9: tile_columns(9, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 10: tile_columns(10, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 11: tile_columns(11, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 12: tile_columns(12, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* One row, n <= 128 columns (a single sample's forward pass): eight vectors give eight
 * independent chains, enough to cover the FMA latency that a 1 x 64 tile (four) cannot. A
 * network's weights in 64-column panels give it 64 columns at most; the panels' sequential
 * reads more than make up for that (gemm.c). Given a list (fm_tile), it runs those steps alone. */
static void kernel_row(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                       const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    (void)m;
    switch ((n + 15) / 16) {
    case 1: tile_row(1, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2: tile_row(2, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3: tile_row(3, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4: tile_row(4, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 5: tile_row(5, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 6: tile_row(6, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 7: tile_row(7, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 8: tile_row(8, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
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
        __mmask16 valid = lane_mask((int)(K - k < 16 ? K - k : 16));
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
    const __mmask16 rows = lane_mask(m);
    ptrdiff_t n = 0;
    for (ptrdiff_t p = 0; p < k; p++) {
        __m512i bits = _mm512_maskz_loadu_epi32(rows, a + p * csa);
        list[n] = (int32_t)p;
        n += _mm512_mask_test_epi32_mask(rows, bits, magnitude) != 0;
    }
    return (int)n;
}

/* fm_all_finite 16 floats at a time: a float is NaN or infinite when its exponent bits are
 * all ones. It checks a packed panel of A while the panel is in L1 (gemm.h: a_not_finite),
 * about 4x the portable loop's pace there. */
static int all_finite(const float *x, ptrdiff_t n)
{
    const __m512i exponent = _mm512_set1_epi32(0x7f800000);
    __mmask16 bad = 0;
    for (ptrdiff_t i = 0; i < n; i += 16) {
        __mmask16 valid = lane_mask((int)(n - i < 16 ? n - i : 16));
        __m512i bits = _mm512_and_si512(_mm512_maskz_loadu_epi32(valid, x + i), exponent);
        bad |= _mm512_mask_cmpeq_epi32_mask(valid, bits, exponent);
    }
    return bad == 0;
}

const fm_kernel_set fm_kernels_avx512 = {
    "avx512", MR_WIDE, NR_WIDE, kernel_wide, MR_COLUMNS, NR_COLUMNS, kernel_columns,
    MR_NARROW, NR_NARROW, kernel_narrow, 8, 128, kernel_row, pack_bt, pack_a, nonzero_list,
    tile_steps, all_finite, 0
};

#endif /* x86 */
