/* ukernel_generic.c - the portable micro-kernel (see ukernel.h for the contract).
 *
 * Plain C with fmaf, compiled for the baseline instruction set. fmaf rounds once, exactly as a
 * hardware FMA does (glibc's fmaf uses the FMA instruction when the CPU has it), so this kernel
 * gives the same bits as the SIMD ones; it is the reference and the fallback, not the fast path.
 */
#include <math.h>

#include "epilogue.h"
#include "fastmlp.h"   /* fm_all_finite */
#include "ukernel.h"
#include "zero_runs.h"

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

    const fm_epilogue *e = t->epi;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float *cij = c + i * ldc + j;
            if (!t->last) {
                *cij = acc[i][j];
                continue;
            }
            ptrdiff_t gi = t->i0 + i, gj = t->j0 + j;
            float *v = e->kind == FM_EPI_SGD && t->v != NULL ? t->v + i * ldc + j : NULL;
            fm_epilogue_store(e, acc[i][j], gi, gj, cij, v);
        }
    }
}

/* One kernel serves every shape: wide, columns, narrow and row. */
const fm_kernel_set fm_kernels_generic = {
    "generic", MR, NR, kernel, MR, NR, kernel, MR, NR, kernel, MR, NR, kernel, NULL, NULL,
    fm_nonzero_list, fm_tile_steps, fm_all_finite, 1
};
