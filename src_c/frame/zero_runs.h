/* zero_runs.h - the columns of an input batch that hold a nonzero, as runs, so that the first
 * layer's products can skip the columns that are zero in every row (the blank border of
 * handwritten digits: about 245 of MNIST's 784 pixels in a batch of 200); and those of a single
 * row, as a list, so that each layer of a one-row pass skips every zero of its input.
 *
 * Skipping a term A(i,p) * B(p,j) with A(i,p) == 0 leaves an FMA chain's result unchanged
 * whenever B(p,j) is finite: the term is a signed zero, adding a signed zero to a nonzero
 * value gives that value, and a chain that starts at +0 can only reach zero as +0, to which
 * either signed zero adds +0. So a product over the runs gives the same bits as the product
 * over all of K (only a weight already infinite or NaN, whose product with 0 is NaN, tells
 * them apart). Likewise a weight row whose input column is zero throughout has the gradient
 * +0 (every term skipped), and plain SGD's fmaf(-lr, +0, w) is w: the update can leave the row
 * out. The runs depend on the data alone, so every instruction set and thread count skips the
 * same columns.
 */
#ifndef FASTMLP_ZERO_RUNS_H
#define FASTMLP_ZERO_RUNS_H

#include <stddef.h>
#include <stdint.h>

enum {
    FM_MAX_RUNS = 48,   /* runs kept; later columns join the last run */
    FM_MIN_GAP = 4      /* shorter gaps of zero columns are computed through: restarting the
                           micro-kernel's loop costs about as much as a few FMA steps */
};

/* Whether leaving out `skipped` more of K steps pays for finding them: at least a sixteenth
 * of K, and at least one. fm_worth_skipping applies it to all of K; a tile's list (gemm.c),
 * to the steps the batch's runs keep. */
static inline int fm_skips_enough(ptrdiff_t K, ptrdiff_t skipped)
{
    return skipped >= K / 16 && skipped > 0;
}

/* Whether keeping `kept` of K columns skips enough to pay (fm_skips_enough).
 * fm_nonzero_runs and every fm_nonzero_list follow it. */
static inline int fm_worth_skipping(ptrdiff_t K, ptrdiff_t kept)
{
    return fm_skips_enough(K, K - kept);
}

/* The nonzero columns of X (M x K, row stride ldx) as n runs [runs[2r], runs[2r+1]), in
 * ascending order: every column with a nonzero in some row lies in a run. Returns n, or -1
 * when the runs would skip less than a sixteenth of K (then the caller skips nothing, and a
 * dense batch costs one scan of its first rows). runs has room for 2 * FM_MAX_RUNS values. */
int fm_nonzero_runs(const float *X, ptrdiff_t M, ptrdiff_t K, ptrdiff_t ldx, ptrdiff_t *runs);

/* The two halves of fm_nonzero_runs, for threads that share the scan of a batch:
 * fm_or_columns ORs into bits[j] (j < K, zeroed by the caller) the bits but the sign of column
 * j of X's M rows, stopping early on a chunk of columns with no zero left; fm_runs_of_columns
 * makes the runs of the columns whose bits are nonzero, as fm_nonzero_runs does. The OR of
 * the bits of any split of the rows gives fm_nonzero_runs's runs. */
void fm_or_columns(uint32_t *bits, const float *X, ptrdiff_t M, ptrdiff_t K, ptrdiff_t ldx);
int fm_runs_of_columns(const uint32_t *bits, ptrdiff_t K, ptrdiff_t *runs);

/* The columns of one row x (K floats) that are not zero, in ascending order, in list (room for
 * K + FM_LIST_SLACK values: a vector version may write past the last). Returns their number,
 * or -1 when fewer than a sixteenth of them are zero (then the caller skips nothing). A row's
 * zeros need not be contiguous: the ReLU leaves about half of a hidden layer's outputs at zero,
 * scattered. The kernel sets (ukernel.h) carry this or a vector version of it. */
enum { FM_LIST_SLACK = 16 };

int fm_nonzero_list(const float *x, ptrdiff_t K, int32_t *list);

/* The steps of a tile of A stored by columns where one of its m rows is not zero: every p < k
 * with a[i + p*csa] != 0 (sign bit aside) for some i < m, in ascending order, in list (room
 * for k + FM_LIST_SLACK values). Returns their number, however many: a tile of a batch of
 * digits covers only the pixels its own rows have ink in (gemm.h, fm_product.tile_steps), and
 * the caller weighs that against the steps of all of k. The kernel sets carry this or a
 * vector version of it. */
int fm_tile_steps(const float *a, ptrdiff_t csa, int m, ptrdiff_t k, int32_t *list);

/* The same for a tile of m rows of A stored by rows, row stride rsa (a forward product's
 * input read in place, by the kernel sets without pack_a): every p < k with a[i*rsa + p] != 0
 * for some i < m. */
int fm_row_tile_steps(const float *a, ptrdiff_t rsa, int m, ptrdiff_t k, int32_t *list);

#endif
