/* pack.c - B panels into kernel order (see pack.h). Portable C: plain copies. */
#include <string.h>

#include "frame/pack.h"

/* Rows of B are contiguous (csb == 1): each packed row is a copy plus zero padding. */
static void pack_rows(float *dst, int nr, ptrdiff_t kc, int n, const float *src, ptrdiff_t rsb)
{
    for (ptrdiff_t p = 0; p < kc; p++) {
        memcpy(dst + p * nr, src + p * rsb, sizeof(float) * (size_t)n);
        for (int j = n; j < nr; j++)
            dst[p * nr + j] = 0.0f;
    }
}

/* Columns of B strided (a transposed matrix, rsb == 1, in the input gradient): a transpose.
 * Blocks of 8 columns x 64 rows keep both sides in L1 while the reads stream. */
static void pack_columns(float *dst, int nr, ptrdiff_t kc, int n, const float *src,
                         ptrdiff_t rsb, ptrdiff_t csb)
{
    enum { JB = 8, PB = 64 };
    for (ptrdiff_t p0 = 0; p0 < kc; p0 += PB) {
        ptrdiff_t p1 = p0 + PB < kc ? p0 + PB : kc;
        for (int j0 = 0; j0 < n; j0 += JB) {
            int j1 = j0 + JB < n ? j0 + JB : n;
            for (int j = j0; j < j1; j++) {
                const float *col = src + j * csb;
                for (ptrdiff_t p = p0; p < p1; p++)
                    dst[p * nr + j] = col[p * rsb];
            }
        }
        for (ptrdiff_t p = p0; p < p1; p++)
            for (int j = n; j < nr; j++)
                dst[p * nr + j] = 0.0f;
    }
}

void fm_pack_b(float *dst, int nr, ptrdiff_t kc, int n,
               const float *src, ptrdiff_t rsb, ptrdiff_t csb)
{
    if (csb == 1)
        pack_rows(dst, nr, kc, n, src, rsb);
    else
        pack_columns(dst, nr, kc, n, src, rsb, csb);
}
