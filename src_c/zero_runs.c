/* zero_runs.c - the runs of nonzero columns of an input batch (zero_runs.h). */
#include <stdint.h>
#include <string.h>

#include "zero_runs.h"

enum { CHUNK = 512 };   /* columns scanned at once: their flags live on the stack */

static int all_nonzero(const uint32_t *bits, ptrdiff_t w)
{
    for (ptrdiff_t j = 0; j < w; j++)
        if (bits[j] == 0)
            return 0;
    return 1;
}

/* Adds column run [start, end) to runs (n so far), merging it into the last run when the gap
 * between them is shorter than FM_MIN_GAP or when runs is full. Returns the new n. */
static int add_run(ptrdiff_t *runs, int n, ptrdiff_t start, ptrdiff_t end)
{
    if (n > 0 && (start - runs[2 * n - 1] < FM_MIN_GAP || n == FM_MAX_RUNS)) {
        runs[2 * n - 1] = end;
        return n;
    }
    runs[2 * n] = start;
    runs[2 * n + 1] = end;
    return n + 1;
}

int fm_nonzero_runs(const float *X, ptrdiff_t M, ptrdiff_t K, ptrdiff_t ldx, ptrdiff_t *runs)
{
    uint32_t bits[CHUNK];
    int n = 0;
    ptrdiff_t run_start = -1;    /* the open run's first column, or -1 */
    for (ptrdiff_t c0 = 0; c0 < K; c0 += CHUNK) {
        const ptrdiff_t w = K - c0 < CHUNK ? K - c0 : CHUNK;
        memset(bits, 0, sizeof(uint32_t) * (size_t)w);
        /* OR of every row's bits but the sign: nonzero exactly where some row is nonzero (the
         * test on bits vectorises; -0.0 counts as zero). Stop as soon as every column is
         * nonzero: a dense batch is decided by its first rows. */
        for (ptrdiff_t i = 0; i < M; i++) {
            const float *row = X + i * ldx + c0;
            for (ptrdiff_t j = 0; j < w; j++) {
                uint32_t b;
                memcpy(&b, row + j, sizeof b);
                bits[j] |= b & 0x7fffffffu;
            }
            if (all_nonzero(bits, w))   /* stops at the first zero column, if any */
                break;
        }
        for (ptrdiff_t j = 0; j < w; j++) {
            if (bits[j] != 0 && run_start < 0) {
                run_start = c0 + j;
            } else if (bits[j] == 0 && run_start >= 0) {
                n = add_run(runs, n, run_start, c0 + j);
                run_start = -1;
            }
        }
    }
    if (run_start >= 0)
        n = add_run(runs, n, run_start, K);
    ptrdiff_t kept = 0;
    for (int r = 0; r < n; r++)
        kept += runs[2 * r + 1] - runs[2 * r];
    return K - kept < K / 16 || K - kept == 0 ? -1 : n;
}
