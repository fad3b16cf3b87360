/* zero_runs.c - the runs of nonzero columns of an input batch (zero_runs.h). */
#include <stdint.h>
#include <string.h>   /* memcpy, memset */

#include "frame/zero_runs.h"

enum { CHUNK = 512 };   /* columns scanned at once: their flags live on the stack */

/* Columns are stepped over a block at a time while a block is all zero, or has no zero, as
 * the case may be: the test on a block vectorises, a test column by column does not (it took
 * 1.1-2.4 us on one 784-float row, most of a one-sample pass's scan). */
enum { BLOCK = 16 };

/* A batch's rows are ORed this many at a time between the tests for a dense chunk. */
enum { ROWS_PER_TEST = 8 };

static int block_all_zero(const uint32_t *bits)
{
    uint32_t any = 0;
    for (int t = 0; t < BLOCK; t++)
        any |= bits[t];
    return any == 0;
}

static int block_none_zero(const uint32_t *bits)
{
    int zero = 0;
    for (int t = 0; t < BLOCK; t++)
        zero |= bits[t] == 0;
    return !zero;
}

/* The first column j' >= j where bits[j'] != 0, or w if none. */
static ptrdiff_t next_nonzero(const uint32_t *bits, ptrdiff_t j, ptrdiff_t w)
{
    while (j + BLOCK <= w && block_all_zero(bits + j))
        j += BLOCK;
    while (j < w && bits[j] == 0)
        j++;
    return j;
}

/* The first column j' >= j where bits[j'] == 0, or w if none. */
static ptrdiff_t next_zero(const uint32_t *bits, ptrdiff_t j, ptrdiff_t w)
{
    while (j + BLOCK <= w && block_none_zero(bits + j))
        j += BLOCK;
    while (j < w && bits[j] != 0)
        j++;
    return j;
}

/* bits[j] |= the bits but the sign of column j of rows [0, m) of x (row stride ldx), j < w:
 * nonzero exactly where one of the rows is (-0.0 counts as zero). Four rows at a time, so
 * that bits is loaded and stored once for four rows' loads (the loops vectorise): a batch of
 * 200 digits in the cache took 8.6 us to scan, against 23 us row by row. */
static void or_rows(uint32_t *restrict bits, const float *x, ptrdiff_t ldx, ptrdiff_t m,
                    ptrdiff_t w)
{
    ptrdiff_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const float *r = x + i * ldx;
        for (ptrdiff_t j = 0; j < w; j++) {
            uint32_t b0, b1, b2, b3;
            memcpy(&b0, r + j, sizeof b0);
            memcpy(&b1, r + ldx + j, sizeof b1);
            memcpy(&b2, r + 2 * ldx + j, sizeof b2);
            memcpy(&b3, r + 3 * ldx + j, sizeof b3);
            bits[j] |= (b0 | b1 | b2 | b3) & 0x7fffffffu;
        }
    }
    for (; i < m; i++) {
        const float *r = x + i * ldx;
        for (ptrdiff_t j = 0; j < w; j++) {
            uint32_t b;
            memcpy(&b, r + j, sizeof b);
            bits[j] |= b & 0x7fffffffu;
        }
    }
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

void fm_or_columns(uint32_t *bits, const float *X, ptrdiff_t M, ptrdiff_t K, ptrdiff_t ldx)
{
    for (ptrdiff_t c0 = 0; c0 < K; c0 += CHUNK) {
        const ptrdiff_t w = K - c0 < CHUNK ? K - c0 : CHUNK;
        /* Stop as soon as every column of the chunk is nonzero: a dense batch is decided by
         * its first rows (the test on bits vectorises; -0.0 counts as zero). */
        int dense = 0;
        for (ptrdiff_t i = 0; i < M && !dense; i += ROWS_PER_TEST) {
            or_rows(bits + c0, X + i * ldx + c0, ldx,
                    M - i < ROWS_PER_TEST ? M - i : ROWS_PER_TEST, w);
            dense = next_zero(bits + c0, 0, w) == w;
        }
    }
}

/* Extends the runs (n so far, the open one starting at *run_start, or -1) over the w columns
 * whose bits are bits[0..w), the first of them column c0. Returns the new n. */
static int add_runs_of_bits(const uint32_t *bits, ptrdiff_t w, ptrdiff_t c0, ptrdiff_t *runs,
                            int n, ptrdiff_t *run_start)
{
    /* The columns alternate between stretches of zero and of nonzero bits. */
    for (ptrdiff_t j = 0; j < w;) {
        if (*run_start < 0) {
            j = next_nonzero(bits, j, w);
            if (j < w)
                *run_start = c0 + j;
        } else {
            j = next_zero(bits, j, w);
            if (j < w) {
                n = add_run(runs, n, *run_start, c0 + j);
                *run_start = -1;
            }
        }
    }
    return n;
}

/* Closes the open run at K and returns n, or -1 when the runs skip too little to pay. */
static int finish_runs(ptrdiff_t *runs, int n, ptrdiff_t run_start, ptrdiff_t K)
{
    if (run_start >= 0)
        n = add_run(runs, n, run_start, K);
    ptrdiff_t kept = 0;
    for (int r = 0; r < n; r++)
        kept += runs[2 * r + 1] - runs[2 * r];
    return fm_worth_skipping(K, kept) ? n : -1;
}

int fm_runs_of_columns(const uint32_t *bits, ptrdiff_t K, ptrdiff_t *runs)
{
    ptrdiff_t run_start = -1;
    int n = add_runs_of_bits(bits, K, 0, runs, 0, &run_start);
    return finish_runs(runs, n, run_start, K);
}

int fm_nonzero_runs(const float *X, ptrdiff_t M, ptrdiff_t K, ptrdiff_t ldx, ptrdiff_t *runs)
{
    if (M <= 0)                  /* no row: every column is zero */
        return K == 0 ? -1 : 0;
    uint32_t bits[CHUNK];
    int n = 0;
    ptrdiff_t run_start = -1;    /* the open run's first column, or -1 */
    for (ptrdiff_t c0 = 0; c0 < K; c0 += CHUNK) {
        const ptrdiff_t w = K - c0 < CHUNK ? K - c0 : CHUNK;
        memset(bits, 0, sizeof(uint32_t) * (size_t)w);
        fm_or_columns(bits, X + c0, M, w, ldx);
        n = add_runs_of_bits(bits, w, c0, runs, n, &run_start);
    }
    return finish_runs(runs, n, run_start, K);
}

int fm_nonzero_list(const float *x, ptrdiff_t K, int32_t *list)
{
    /* Branch-free: every column is written, and the count moves on past the nonzero ones (a
     * branch on scattered zeros mispredicts on every other column). */
    ptrdiff_t n = 0;
    for (ptrdiff_t k = 0; k < K; k++) {
        uint32_t b;
        memcpy(&b, x + k, sizeof b);
        list[n] = (int32_t)k;
        n += (b & 0x7fffffffu) != 0;
    }
    return fm_worth_skipping(K, n) ? (int)n : -1;
}

int fm_tile_steps(const float *a, ptrdiff_t csa, int m, ptrdiff_t k, int32_t *list)
{
    ptrdiff_t n = 0;
    for (ptrdiff_t p = 0; p < k; p++) {
        uint32_t any = 0;
        for (int i = 0; i < m; i++) {
            uint32_t b;
            memcpy(&b, a + i + p * csa, sizeof b);
            any |= b & 0x7fffffffu;
        }
        list[n] = (int32_t)p;
        n += any != 0;
    }
    return (int)n;
}

int fm_row_tile_steps(const float *a, ptrdiff_t rsa, int m, ptrdiff_t k, int32_t *list)
{
    uint32_t bits[CHUNK];
    ptrdiff_t n = 0;
    for (ptrdiff_t c0 = 0; c0 < k; c0 += CHUNK) {
        const ptrdiff_t w = k - c0 < CHUNK ? k - c0 : CHUNK;
        /* The OR of the rows (or_rows), then the list branch-free (as in fm_nonzero_list). */
        memset(bits, 0, sizeof(uint32_t) * (size_t)w);
        or_rows(bits, a + c0, rsa, m, w);
        for (ptrdiff_t j = 0; j < w; j++) {
            list[n] = (int32_t)(c0 + j);
            n += bits[j] != 0;
        }
    }
    return (int)n;
}
