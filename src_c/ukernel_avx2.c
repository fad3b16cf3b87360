/* ukernel_avx2.c - the micro-kernel for AVX2 + FMA (see ukernel.h for the contract).
 *
 * Up to 6 x 16: each step p loads one 16-float row of B into two ymm registers, broadcasts
 * A(i,p) for the 6 rows and issues 12 independent FMAs into 12 ymm accumulators. One row (a
 * single sample's pass): up to 1 x 64, eight chains.
 * Edge tiles: m selects a fully unrolled body; n becomes a lane mask for vmaskmov loads and
 * stores, which never touch memory outside the tile. Whole vectors use plain loads and stores
 * (load8, store8): paired on Zen 4 against vmaskmov everywhere, a training step took 0.79x the
 * time on 1 thread and 0.83x on 2 (benchmarks/c/ab_builds with FASTMLP_ISA=avx2).
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#pragma GCC target("avx2,fma")

#include <immintrin.h>

#include "fastmlp.h"   /* fm_all_finite */
#include "ukernel.h"
#include "zero_runs.h"

enum { MR = 6, NR = 16, NR_ROW = 64, NV_MAX = 8 };

#define FM_INLINE static inline __attribute__((always_inline))

/* All-ones in the lanes below n (n may be <= 0 or >= 8). */
FM_INLINE __m256i lane_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The lanes mk of the 8 floats at p, the others zero; all 8 when full. vmaskmov is for edge
 * tiles alone: AMD's cores run it far slower than a plain load or store (its store as
 * microcode), and the steps' loop issued two for every 12 FMAs. */
FM_INLINE __m256 load8(const float *p, __m256i mk, int full)
{
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mk);
}

/* Stores the lanes mk of v at p; all 8 when full. */
FM_INLINE void store8(float *p, __m256i mk, __m256 v, int full)
{
    if (full)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, mk, v);
}

/* Writes the epilogue of one vector of accumulators, C(i, j..j+7) at c, lanes in mk (all 8
 * when full). i, j: position inside the tile. Same operations, same order as epilogue.h. */
FM_INLINE void store_vector(const fm_tile *t, __m256 acc, ptrdiff_t i, ptrdiff_t j,
                            float *c, ptrdiff_t ldc, __m256i mk, int full)
{
    const fm_epilogue *e = t->epi;
    const __m256 zero = _mm256_setzero_ps();
    __m256 r = acc;
    if (t->last) {
        switch (e->kind) {
        case FM_EPI_STORE:
            break;
        case FM_EPI_BIAS:
            r = _mm256_add_ps(acc, load8(e->bias + t->j0 + j, mk, full));
            break;
        case FM_EPI_BIAS_RELU:
            r = _mm256_add_ps(acc, load8(e->bias + t->j0 + j, mk, full));
            r = _mm256_max_ps(r, zero); /* r > 0 ? r : 0, as in epilogue.h (NaN -> 0) */
            break;
        case FM_EPI_MASK: {
            __m256 m = load8(e->mask + (t->i0 + i) * e->ldm + t->j0 + j, mk, full);
            r = _mm256_and_ps(_mm256_cmp_ps(m, zero, _CMP_GT_OQ), acc);
            break;
        }
        case FM_EPI_SGD: {
            __m256 w = load8(c, mk, full);
            __m256 g = e->alpha != 0.0f ? _mm256_fmadd_ps(_mm256_set1_ps(e->alpha), w, acc) : acc;
            if (e->velocity == NULL) {
                r = _mm256_fmadd_ps(_mm256_set1_ps(-e->lr), g, w);
            } else {
                float *vp = t->v + i * ldc + j;
                __m256 mom = _mm256_set1_ps(e->momentum);
                __m256 tt = _mm256_mul_ps(_mm256_set1_ps(-e->lr), g);
                __m256 vel = _mm256_fmadd_ps(mom, load8(vp, mk, full), tt);
                store8(vp, mk, vel, full);
                r = _mm256_add_ps(w, e->nesterov ? _mm256_fmadd_ps(mom, vel, tt) : vel);
            }
            break;
        }
        }
    }
    store8(c, mk, r, full);
}

/* The FMA steps p0 <= p < p1 of a tile of M rows and NV vectors into acc. */
FM_INLINE void steps(const int M, const int NV, const int FULL, __m256 acc[][NV_MAX],
                     const __m256i mk[NV_MAX], ptrdiff_t p0, ptrdiff_t p1, const float *a,
                     ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb)
{
    a += p0 * csa;
    b += p0 * rsb;
    /* Two steps per trip, as in ukernel_avx512.c (measured here: the training step 3% faster). */
    #pragma GCC unroll 2
    for (ptrdiff_t p = p0; p < p1; p++) {
        __m256 bv[NV_MAX];
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            bv[v] = load8(b + 8 * v, mk[v], FULL);
        #pragma GCC unroll 8
        for (int i = 0; i < M; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * rsa);
            #pragma GCC unroll 8
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += rsb;
    }
}

/* The FMA steps p = list[0], ..., list[n_list - 1] (ascending) of a tile of M rows and NV
 * vectors into acc: one row's nonzero entries of A, scattered, or the steps where a tile of
 * A stored by columns has one (zero_runs.h). */
FM_INLINE void steps_listed(const int M, const int NV, const int FULL, __m256 acc[][NV_MAX],
                            const __m256i mk[NV_MAX], const int32_t *list, int n_list,
                            const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
                            ptrdiff_t rsb)
{
    for (int s = 0; s < n_list; s++) {
        const ptrdiff_t p = list[s];
        __m256 bv[NV_MAX];
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            bv[v] = load8(b + p * rsb + 8 * v, mk[v], FULL);
        #pragma GCC unroll 8
        for (int i = 0; i < M; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * rsa + p * csa);
            #pragma GCC unroll 8
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
}

/* The FMA steps of a tile into acc: all of k, or only the runs of k where A is not zero
 * throughout, or only the steps of a list (zero_runs.h). FULL: n == 8 * NV, plain loads. */
FM_INLINE void tile_steps_of(const int M, const int NV, const int LISTED, const int FULL,
                             __m256 acc[][NV_MAX], const __m256i mk[NV_MAX], ptrdiff_t k,
                             const float *a, ptrdiff_t rsa, ptrdiff_t csa, const float *b,
                             ptrdiff_t rsb, const fm_tile *t)
{
    if (LISTED) {
        steps_listed(M, NV, FULL, acc, mk, t->k_list, t->n_k_list, a, rsa, csa, b, rsb);
    } else if (t->runs == NULL) {
        steps(M, NV, FULL, acc, mk, 0, k, a, rsa, csa, b, rsb);
    } else {
        for (int r = 0; r < t->n_runs; r++)
            steps(M, NV, FULL, acc, mk, t->runs[2 * r], t->runs[2 * r + 1], a, rsa, csa, b, rsb);
    }
}

/* The tile body for exactly M rows and NV (1 to 8) vectors of 8 columns, n columns valid;
 * LISTED: over the steps in t's list (the tiles that have one), else its runs. */
FM_INLINE void tile(const int M, const int NV, const int LISTED, int n, ptrdiff_t k,
                    const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                    const float *b, ptrdiff_t rsb,
                    float *c, ptrdiff_t ldc, const fm_tile *t)
{
    __m256i mk[NV_MAX];
    int full[NV_MAX];   /* which vectors are whole */
    __m256 acc[MR][NV_MAX];

    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        mk[v] = lane_mask(n - 8 * v);
        full[v] = n >= 8 * (v + 1);
    }

    #pragma GCC unroll 8
    for (int i = 0; i < M; i++) {
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[i][v] = t->first ? _mm256_setzero_ps() : load8(c + i * ldc + 8 * v, mk[v], full[v]);
    }

    if (n == 8 * NV)
        tile_steps_of(M, NV, LISTED, 1, acc, mk, k, a, rsa, csa, b, rsb, t);
    else
        tile_steps_of(M, NV, LISTED, 0, acc, mk, k, a, rsa, csa, b, rsb, t);

    /* Local copies of the fields, as in ukernel_avx512.c: kept in registers across the stores. */
    const fm_epilogue epi = *t->epi;
    fm_tile tile_fields = *t;
    tile_fields.epi = &epi;
    #pragma GCC unroll 8
    for (int i = 0; i < M; i++) {
        #pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            store_vector(&tile_fields, acc[i][v], i, 8 * v, c + i * ldc + 8 * v, ldc, mk[v],
                         full[v]);
    }
}

FM_INLINE void tile_nv(const int M, const int LISTED, int n, ptrdiff_t k, const float *a,
                       ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c,
                       ptrdiff_t ldc, const fm_tile *t)
{
    if (n > 8)
        tile(M, 2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t);
    else
        tile(M, 1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* An m x n tile, m <= 6 and n <= 16, over its list (LISTED) or its runs. */
FM_INLINE void tile_m(const int LISTED, int m, int n, ptrdiff_t k, const float *a,
                      ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c,
                      ptrdiff_t ldc, const fm_tile *t)
{
    switch (m) {
    case 1: tile_nv(1, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 2: tile_nv(2, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 3: tile_nv(3, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 4: tile_nv(4, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 5: tile_nv(5, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    case 6: tile_nv(6, LISTED, n, k, a, rsa, csa, b, rsb, c, ldc, t); break;
    default: break;
    }
}

/* m x n tiles with m <= 6 and n <= 16: wide, columns and narrow; a wide or columns tile may
 * have a list (ukernel.h, wide_lists). */
static void kernel(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                   const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    if (t->k_list != NULL)
        tile_m(1, m, n, k, a, rsa, csa, b, rsb, c, ldc, t);
    else
        tile_m(0, m, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

/* One row, n <= 64 columns (a single sample's forward pass), over its list of steps if it has
 * one: eight vectors give eight independent chains, enough to cover the FMA latency on two FMA
 * pipes, which the 1 x 16 tile of `kernel` (two chains) cannot. */
FM_INLINE void tile_row(const int NV, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa,
                        ptrdiff_t csa, const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc,
                        const fm_tile *t)
{
    if (t->k_list != NULL)
        tile(1, NV, 1, n, k, a, rsa, csa, b, rsb, c, ldc, t);
    else
        tile(1, NV, 0, n, k, a, rsa, csa, b, rsb, c, ldc, t);
}

static void kernel_row(int m, int n, ptrdiff_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                       const float *b, ptrdiff_t rsb, float *c, ptrdiff_t ldc, const fm_tile *t)
{
    (void)m;
    switch ((n + 7) / 8) {
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

/* fm_tile_steps one step at a time: the step's m values (m <= 8) in one masked load, and the
 * same branch-free count as the portable loop. A masked load is cheap on AMD (the masked
 * store is the slow one). In a profile of 2-thread steps on the digits (the first layer's
 * update lists its tiles of 6 pixels) the portable loop took 2.5% of the time, this 1.0%;
 * paired, a step took 0.977x the time. */
static int tile_steps(const float *a, ptrdiff_t csa, int m, ptrdiff_t k, int32_t *list)
{
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
    const __m256i rows = lane_mask(m);
    ptrdiff_t n = 0;
    for (ptrdiff_t p = 0; p < k; p++) {
        __m256i bits = _mm256_castps_si256(_mm256_maskload_ps(a + p * csa, rows));
        list[n] = (int32_t)p;
        n += !_mm256_testz_si256(bits, magnitude);
    }
    return (int)n;
}

/* One kernel serves the wide, columns and narrow shapes; kernel_row one row. */
const fm_kernel_set fm_kernels_avx2 = {
    "avx2", MR, NR, kernel, MR, NR, kernel, MR, NR, kernel, MR, NR_ROW, kernel_row, NULL, NULL,
    fm_nonzero_list, tile_steps, fm_all_finite, 1
};

#endif /* x86 */
