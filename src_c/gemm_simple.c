/* gemm_simple.c - a plain, correct, cache-friendly fm_gemm (see gemm.h).
 *
 * Each thread owns column panels of NB columns. For its panel it packs B (K x NB) once, then
 * walks the rows MB at a time keeping an MB x NB block of accumulators, so each C element is a
 * single fmaf chain over k in ascending order: the contract that makes every path agree.
 * The panel routine is compiled for AVX-512, AVX2+FMA and baseline x86-64 (target_clones); the
 * baseline build still calls fmaf, so its results are identical, only slower.
 */
#include <stdlib.h>
#include <string.h>

#include "epilogue.h"
#include "gemm.h"
#include "threads.h"

enum { NB = 64, MB = 4 };

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define FM_MULTIVERSION __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define FM_MULTIVERSION
#endif

/* C rows [0, M) x columns [j0, j0 + nb) from the packed panel Bp (K x NB, row-major). */
FM_MULTIVERSION
static void panel_multiply(ptrdiff_t M, ptrdiff_t nb, ptrdiff_t K, ptrdiff_t j0,
                           const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                           const float *Bp, float *C, ptrdiff_t ldc, const fm_epilogue *epi)
{
    float acc[MB][NB];
    for (ptrdiff_t i0 = 0; i0 < M; i0 += MB) {
        ptrdiff_t mb = M - i0 < MB ? M - i0 : MB;
        memset(acc, 0, sizeof acc);
        for (ptrdiff_t k = 0; k < K; k++) {
            const float *brow = Bp + k * NB;
            for (ptrdiff_t r = 0; r < mb; r++) {
                float a = A[(i0 + r) * rsa + k * csa];
                for (ptrdiff_t c = 0; c < NB; c++)
                    acc[r][c] = fmaf(a, brow[c], acc[r][c]);
            }
        }
        for (ptrdiff_t r = 0; r < mb; r++) {
            ptrdiff_t i = i0 + r;
            for (ptrdiff_t c = 0; c < nb; c++) {
                ptrdiff_t j = j0 + c;
                float *v = epi->kind == FM_EPI_SGD && epi->velocity ? epi->velocity + i * ldc + j : NULL;
                fm_epilogue_store(epi, acc[r][c], i, j, C + i * ldc + j, v);
            }
        }
    }
}

int fm_gemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
             const float *A, ptrdiff_t rsa, ptrdiff_t csa,
             const float *B, ptrdiff_t rsb, ptrdiff_t csb,
             float *C, ptrdiff_t ldc,
             const fm_epilogue *epi)
{
    if (M <= 0 || N <= 0)
        return 0;
    int failed = 0;
    ptrdiff_t n_panels = (N + NB - 1) / NB;
    int n_threads = fm_get_num_threads();
    if (n_threads > n_panels)
        n_threads = (int)n_panels;
    if ((double)M * N * (K + 1) < 65536.0)
        n_threads = 1;

    #pragma omp parallel num_threads(n_threads)
    {
        /* K may be 0: keep at least one row so the buffer is valid. */
        float *Bp = malloc(sizeof(float) * NB * (size_t)(K > 0 ? K : 1));
        #pragma omp for schedule(static)
        for (ptrdiff_t p = 0; p < n_panels; p++) {
            ptrdiff_t j0 = p * NB;
            ptrdiff_t nb = N - j0 < NB ? N - j0 : NB;
            if (Bp == NULL) {
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            for (ptrdiff_t k = 0; k < K; k++) {
                for (ptrdiff_t c = 0; c < nb; c++)
                    Bp[k * NB + c] = B[k * rsb + (j0 + c) * csb];
                for (ptrdiff_t c = nb; c < NB; c++)
                    Bp[k * NB + c] = 0.0f;
            }
            panel_multiply(M, nb, K, j0, A, rsa, csa, Bp, C, ldc, epi);
        }
        free(Bp);
    }
    return failed ? -1 : 0;
}
