/* gemm.h - the one internal interface to matrix multiplication in fastmlp.
 *
 * fm_gemm computes, for every i < M and j < N,
 *
 *     acc      = fma chain over k = 0, 1, ..., K-1 (ascending) of A(i,k) * B(k,j), starting at 0.0f
 *     C(i,j)   = epilogue(acc)
 *
 * with A(i,k) = A[i*rsa + k*csa]   (so a transposed operand is just swapped strides)
 *      B(k,j) = B[k*rsb + j*csb]
 *      C(i,j) = C[i*ldc + j]       (C is row-major with unit column stride)
 *
 * The epilogue (fm_epilogue.kind; ops/epilogue.h writes it once for every path):
 *     FM_EPI_STORE      C = acc                                  (overwrites C)
 *     FM_EPI_BIAS       C = acc + bias[j]
 *     FM_EPI_BIAS_ACT   C = f(acc + bias[j]), f the activation (ops/activation.h); with pre,
 *                       also pre[i*ldm + j] = acc + bias[j]. With dropout, C = f(z) d(i,j),
 *                       d the unit's factor (ops/dropout.h: 0 or 1 / (1 - p)), and pre, when
 *                       given, keeps what the derivative reads: z (fm_activation_keeps_z) or
 *                       f(z) undropped
 *     FM_EPI_ACT_GRAD   C = acc * f'(z), f' from the activation's output mask[i*ldm + j] (or
 *                       from z there, for an activation that keeps it)
 *                       (ReLU: mask > 0 ? acc : 0); with dropout, C = (acc d(i,j)) * f'(z)
 *     FM_EPI_UPDATE     in-place optimiser step on the weights held in C, acc the gradient
 *                       (ops/optimizer.h), with the rule's state (S_s(i,j) =
 *                       state[s][i*ldc + j], C's layout): momentum's velocity (state 0) or
 *                       Adam's moments (states 0 and 1), or none for plain SGD
 *
 * Reproducibility contract: each acc is one FMA chain in the fixed k order above, whatever the
 * instruction set, the blocking or the thread count (threads split M or N, never K; a partial
 * sum may be parked in memory between K blocks because float stores are exact). Every code path
 * therefore produces bit-identical C. A call with k_runs, k_list or m_runs (fm_hints, below)
 * leaves out terms 0 * b: that keeps every chain's result, bit for bit, while b is finite
 * (zero_runs.h).
 *
 * The caller guarantees M, N, K >= 0, valid non-aliasing buffers (C never aliases A, B, bias or
 * mask), and that M*K, K*N, M*N fit in ptrdiff_t.
 */
#ifndef FASTMLP_GEMM_H
#define FASTMLP_GEMM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/activation.h"
#include "ops/dropout.h"
#include "ops/optimizer.h"

enum fm_epilogue_kind {
    FM_EPI_STORE = 0,
    FM_EPI_BIAS = 1,
    FM_EPI_BIAS_ACT = 2,
    FM_EPI_ACT_GRAD = 3,
    FM_EPI_UPDATE = 4
};

typedef struct {
    enum fm_epilogue_kind kind;
    const float *bias;              /* length N, for FM_EPI_BIAS and FM_EPI_BIAS_ACT */
    enum fm_activation activation;  /* FM_EPI_BIAS_ACT, FM_EPI_ACT_GRAD */
    const float *mask;              /* FM_EPI_ACT_GRAD: M x N with row stride ldm */
    ptrdiff_t ldm;
    float *pre;                     /* FM_EPI_BIAS_ACT: NULL, or where z = acc + bias goes too
                                       (M x N, row stride ldm), for an activation that keeps
                                       it (fm_activation_keeps_z) */
    fm_optimizer opt;               /* FM_EPI_UPDATE */
    float *state[FM_OPT_STATES];    /* FM_EPI_UPDATE: the rule's state buffers, each M x N in
                                       C's layout, or NULL (ops/optimizer.h): state[0] the
                                       velocity, NULL for plain SGD; Adam's moments in
                                       state[0] and state[1], both given */
    atomic_int *not_finite;         /* FM_EPI_UPDATE: NULL, or set to 1 when a weight it
                                       writes is NaN or infinite */
    const fm_dropout *dropout;      /* FM_EPI_BIAS_ACT, FM_EPI_ACT_GRAD: NULL, or the layer's
                                       dropout in this step (ops/dropout.h), its rows those of
                                       C from dropout->row0 */
} fm_epilogue;

/* Whether a micro-kernel applies e in its store. The frame hands the others to the kernel set's
 * epilogue_tile, over each finished tile while it is in L1 (kernels/ukernel.h). */
static inline int fm_epilogue_inline(const fm_epilogue *e)
{
    if (e->kind == FM_EPI_UPDATE)
        return e->opt.rule != FM_OPT_ADAM;
    if (e->kind != FM_EPI_BIAS_ACT && e->kind != FM_EPI_ACT_GRAD)
        return 1;
    /* dropout's factors are made over the finished tile */
    return e->dropout == NULL && fm_activation_cheap(e->activation);
}

/* Returns 0, or -1 when a packing buffer could not be allocated (C is then unspecified).
 * Runs on fm_get_num_threads() OpenMP threads (fewer for small products). Packing buffers live
 * on the stack or in a per-thread workspace (workspace.h) that grows on a thread's first large
 * call and is reused after, so steady-state calls allocate nothing, and concurrent calls from
 * several threads share nothing. */
int fm_gemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
             const float *A, ptrdiff_t rsa, ptrdiff_t csa,
             const float *B, ptrdiff_t rsb, ptrdiff_t csb,
             float *C, ptrdiff_t ldc,
             const fm_epilogue *epi);

/* fm_gemm with the products in bf16 (fm_product.bf16): A and B rounded to bf16, their
 * products summed in float in VDPBF16PS's order (ops/bf16.h). */
int fm_gemm_bf16(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                 const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                 const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                 float *C, ptrdiff_t ldc,
                 const fm_epilogue *epi);

/* fm_gemm (bf16 zero) or fm_gemm_bf16 (nonzero) computing only the runs of A's columns that
 * hold a nonzero (fm_nonzero_runs), as a network's first layer does, when A is stored by rows
 * (csa == 1; else all of K): a float product's bits are the same either way; a bf16 product
 * leaves out the pairs with neither step in a run and those its groups of rows leave out
 * (fm_hints.k_runs). */
int fm_gemm_nonzero_runs(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                         const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                         const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                         float *C, ptrdiff_t ldc,
                         const fm_epilogue *epi, int bf16);

/* A team's shared schedule for one product: how many chunks of C each thread's range has handed
 * out (teams of more than FM_SCHEDULE_RANGES threads share ranges). Give each product a
 * schedule of its own, set to zero (fm_schedule_reset) before the team starts on it. */
enum { FM_SCHEDULE_RANGES = 8 };

typedef struct {
    atomic_int taken[FM_SCHEDULE_RANGES];   /* chunks handed out so far from each range */
} fm_schedule;

void fm_schedule_reset(fm_schedule *s);

/* Rows in tile `it` when a block of rows is cut into n_tiles balanced row tiles: the first
 * (rows % n_tiles) get one row more (e.g. 200 rows = 17 tiles of 12 or 11). The frame cuts
 * every block so; gemm_bench packs as it does. */
static inline int fm_tile_height(ptrdiff_t rows, ptrdiff_t n_tiles, ptrdiff_t it)
{
    return (int)(rows / n_tiles + (it < rows % n_tiles));
}

/* Column panels: the layout fastmlp keeps a network's weights in, so that the forward product
 * reads them as the micro-kernels want them, without packing. A rows x cols matrix is stored as
 * ceil(cols / FM_PANEL) panels; panel q holds columns [q*FM_PANEL, q*FM_PANEL + w) as a rows x w
 * row-major block starting at element q*FM_PANEL*rows, where w = FM_PANEL, or the columns left
 * for the last panel. Element (r, j) is at fm_panel_start(rows, cols, j, &w) + r*w. The matrix
 * takes rows*cols floats, as row-major would. */
enum { FM_PANEL = 64 };

static inline ptrdiff_t fm_panel_start(ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t j,
                                       ptrdiff_t *width)
{
    ptrdiff_t q0 = j / FM_PANEL * FM_PANEL;
    *width = cols - q0 < FM_PANEL ? cols - q0 : FM_PANEL;
    return q0 * rows + (j - q0);
}

/* Which operand of a product is stored in column panels. */
enum fm_panels {
    FM_PANELS_NONE = 0,   /* every operand as its strides say */
    FM_PANELS_B = 1,      /* B (K x N) in column panels; rsb, csb unused (the forward product) */
    FM_PANELS_BT = 2,     /* B's transpose (N x K) in column panels; rsb, csb unused (the input
                             gradient, B = W^T) */
    FM_PANELS_C = 3       /* C (M x N) in column panels, and the update's state alike; ldc unused
                             (the weight update) */
};

/* One product: what it computes, nothing about how (gemm.c plans that per call). */
typedef struct {
    ptrdiff_t M, N, K;
    const float *A;
    ptrdiff_t rsa, csa;
    const float *B;
    ptrdiff_t rsb, csb;
    float *C;
    ptrdiff_t ldc;
    fm_epilogue epi;
    enum fm_panels panels;
    int bf16;        /* nonzero: A and B rounded to bf16, their products summed in float as
                        VDPBF16PS sums them (ops/bf16.h, frame/gemm_pairs.c); the epilogue
                        as a float product's. Of the hints that leave work out it takes
                        k_runs (by pairs) and m_runs, not the lists */
} fm_product;

/* What a caller knows of a product's data, which lets a call leave work out (zero_runs.h: the
 * same bits) or check its input on the way. All zero (or a NULL fm_hints): none of it. */
typedef struct {
    /* NULL, or the runs of K to compute, [k_runs[2r], k_runs[2r+1]) in ascending order, when
     * A is zero in every other column. Honoured when K is not cut into blocks (always for B
     * in column panels, K <= the set's kc_panels); else all of K. A bf16 product with A
     * stored by rows (and no m_runs) leaves out each pair of steps (2q, 2q + 1) with neither
     * in a run, K cut or not, and in each group of 6 rows of A from row 0 the pairs zero in
     * all its rows (frame/gemm_pairs.c). That can change its bits where a float product's
     * cannot: a partial sum flushed to -0 stays -0 where the zero pair would have made it +0
     * (reference.gemm_bf16's runs). So a bf16 product's runs must depend on the data alone,
     * not on the thread count: those of the whole product's A (fm_nonzero_runs), at most
     * FM_MAX_RUNS of them. */
    const ptrdiff_t *k_runs;
    int n_k_runs;
    /* NULL, or the runs of rows of C to compute, in ascending order; C's other rows are left
     * as they are. For a weight update whose A is zero in those rows and whose epilogue is
     * plain SGD, which would leave them as they are. Honoured when A is read in place, and
     * by bf16 products (at most FM_MAX_RUNS runs). */
    const ptrdiff_t *m_runs;
    int n_m_runs;
    /* NULL, or for a one-row product (M == 1) the only steps of K to compute, n_k_list of them
     * in ascending order, when A is zero at every other: scattered zeros, which runs would cut
     * into pieces. Taken instead of k_runs; honoured when K is not cut into blocks. */
    const int32_t *k_list;
    int n_k_list;
    /* Nonzero: each row tile of A, stored by columns or packed into column panels, computes
     * only the steps of K where one of its rows is not zero (fm_tile_steps). For the first
     * layer of a batch with blank inputs: a tile of 12 handwritten digits leaves out the
     * pixels none of the 12 has ink in, and a tile of 12 pixels in the weight update the
     * digits with no ink in any of them. The lists are made once per tile of a block, when A
     * is packed or, read in place, before the block's first column tile, and kept in the
     * thread's workspace with the packed panels. Honoured by the "columns" kernel, and by
     * "wide" on A stored by rows in the sets that list it (wide_lists), when K is not cut into
     * blocks; a tile whose list would skip less than a sixteenth of K takes k_runs instead. */
    int tile_steps;
    /* NULL, or, for A stored by rows (csa == 1, a forward product's input), a flag this call
     * sets to 1 when the rows of A it reads hold a NaN or an infinity: each packed panel is
     * checked right after the packing, while it is in L1, and A read in place row by row
     * before its block. Set by the thread that runs the call, never read or cleared: give
     * each thread a flag of its own. */
    int *a_not_finite;
    /* Nonzero: a thread takes its columns panel by panel from the last to the first (each
     * panel's tiles still left to right), for a caller that alternates the direction from call
     * to call (nn/mlp_step.c: passes of a few rows). The same bits either way. */
    int columns_downwards;
} fm_hints;

/* Thread tid's share of product p (with the caller's hints h, or NULL) among nth threads, for callers that are already inside a
 * parallel region: every thread of the team calls it with the same arguments (and its own tid);
 * together they compute all of C. With sched == NULL the shares are fixed (thread tid takes the
 * tid-th of nth equal blocks); with a schedule, C is cut into chunks (column panels or row
 * blocks), each thread takes the chunks of its own range, then any left in the others', so a
 * thread slowed by something else on the machine leaves more of the work to the others.
 * Either way the result is the same bits (gemm.h). It synchronises nothing: the chunks are
 * disjoint blocks of C, so the caller places a barrier before C is read. Returns 0 or -1 as
 * fm_gemm does.
 * Call fm_dispatch_init() (kernels/registry.h) or fm_gemm once before the first parallel use. */
int fm_gemm_thread(int tid, int nth, fm_schedule *sched, const fm_product *p,
                   const fm_hints *h);

/* Makes the calling thread's packing workspace (workspace.h) as large as the products of a
 * call will want for a share of up to `rows` rows of an A of up to K columns (its packed
 * panels and tile lists, or the lists alone where A is read in place), or for the tile lists
 * of a weight update over those rows (an A of K rows and `rows` steps), before the first
 * product of the call asks for it. A thread's share can change from call to call (chunks
 * taken from a shared counter, blocks of rows that shrink towards the end), and its workspace
 * would then grow in the middle of steady-state calls, which allocate nothing. Nothing is
 * reserved for shares too small to pack. */
void fm_reserve_packing(ptrdiff_t rows, ptrdiff_t K);

/* fm_gemm on p, in a parallel region of its own. */
int fm_product_run(const fm_product *p);

/* Of nth threads, how many an M x N x K product is worth: about 64 kFLOP each at least, and
 * one at the very least. fm_gemm and fm_product_share use no more. */
int fm_product_threads(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, int nth);

/* Thread tid's share of p when a team of nth threads (inside a parallel region) computes it:
 * fm_gemm_thread among the first few threads, as many as p is worth (fm_product_threads);
 * the others have no share and return 0 at once. sched: p's own schedule, or NULL for fixed
 * shares. Synchronises nothing: the caller places a barrier before C is read. */
int fm_product_share(const fm_product *p, const fm_hints *h, int tid, int nth,
                     fm_schedule *sched);

#endif
