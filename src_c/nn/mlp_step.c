/* mlp_step.c - a whole training step and a whole forward pass over every layer, in one call.
 *
 * Each call is one OpenMP parallel region (none for a pass too small for two threads,
 * team_for): the team computes every product in turn, each thread its share
 * (fm_product_share), with a barrier only where a product reads what the previous one wrote.
 * A training step of an L-layer network has 2L - 2 barriers (one when L = 1):
 *
 *   forward    layer 0 | layer 1 | ... | layer L-2 |          each reads the one before
 *   output     per thread, its own rows: layer L-1's       |  a row needs only its own row
 *              product, the loss and its gradient, the          of what came before
 *              input gradient of layer L-1
 *   backward   update L-1, input gradient of L-2     |        W[L-2] read before it moves
 *              update L-2, input gradient of L-3     |        (independent: no barrier between)
 *              ...
 *              update 1, update 0                             the region's end joins them
 *
 * The output layer is skinny (10 wide for MNIST): its three steps are a few microseconds of
 * work each, which a barrier apiece would cost as much again and which do not split well by
 * columns. Split by rows instead, each thread runs them back to back on its own rows (see
 * output_rows_share). Each product has its own schedule (gemm.h): the threads take its
 * chunks in turn, so one thread slowed by the rest of the machine does not hold the team up at
 * the next barrier. Which thread computes which element never changes a result (gemm.h), so
 * the step's bits do not depend on the thread count or the schedule.
 *
 * A shuffled batch (fm_train_step_rows) is gathered by the same team first, each thread its
 * share of the rows, and one barrier more, instead of a copy made before the call.
 *
 * A forward pass of many rows (predicting) runs block by block instead (forward_blocks_share):
 * one region, no barrier.
 *
 * Layer 0 keeps to the columns of its input that hold a nonzero in some row of the batch (or
 * block): handwritten digits leave about 245 of MNIST's 784 pixels blank throughout a batch of
 * 200. Its forward product skips the others' terms, and with plain SGD its update skips their
 * weights' rows, which the update would leave as they are (zero_runs.h: the same bits). Inside
 * those runs each row tile keeps to the pixels it has ink in, and each tile of pixels of the
 * update to the digits that have ink there (gemm.h, tile_steps): about half of the full
 * products' terms are left for MNIST batches.
 *
 * A pass over one row goes further (forward_row_share): every layer skips each zero entry of
 * its input, listed one by one, scattered as the ReLU leaves them.
 *
 * benchmarks/HISTORY.md has the measurements behind these choices.
 */
#include <math.h>
#include <string.h>
#include <stdatomic.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/registry.h"
#include "nn/layers.h"
#include "frame/zero_runs.h"

/* Schedules for a step's products (3 per layer); layers beyond use fixed shares. */
enum { MAX_SCHEDULES = 96 };

typedef struct {
    fm_schedule s[MAX_SCHEDULES];
} step_schedules;

static void reset_schedules(step_schedules *ss)
{
    for (int i = 0; i < MAX_SCHEDULES; i++)
        fm_schedule_reset(&ss->s[i]);
}

/* Schedule number i, or NULL (fixed shares) when there are not that many. */
static fm_schedule *schedule(step_schedules *ss, int i)
{
    return ss != NULL && i < MAX_SCHEDULES ? &ss->s[i] : NULL;
}

/* How many threads a pass is worth. A team costs its start, its barriers and its end, and each
 * thread then reads what the others wrote; a pass too small for two threads runs without a
 * parallel region. */
/* A training step: a second thread pays from about this much work each. */
static const double STEP_FLOP_PER_THREAD = 20e6;
/* A forward pass: the same in "units", a flop or 1 / UNITS_PER_WEIGHT_BYTE bytes of weights
 * (streaming the weights is the cost of a pass over few rows). */
static const double FORWARD_UNITS_PER_THREAD = 1.25e6;
static const double UNITS_PER_WEIGHT_BYTE = 2.5;

/* Between 1 and nth threads: one per `per_thread` of `work`. */
static int team_for(double work, double per_thread, int nth)
{
    double team = work / per_thread;
    return team >= nth ? nth : team < 1.0 ? 1 : (int)team;
}

/* The flops of one pass of the network's products over M rows; its weights' bytes. */
static double pass_flop(const fm_net *net, ptrdiff_t M)
{
    double flop = 0.0;
    for (int l = 0; l < net->n_layers; l++)
        flop += 2.0 * (double)M * (double)net->sizes[l] * (double)net->sizes[l + 1];
    return flop;
}

static double weight_bytes(const fm_net *net)
{
    return pass_flop(net, 1) / 2.0 * (double)sizeof(float);
}

/* The widest layer, input and output included: the most columns of an A that a product of a
 * pass or a step packs (fm_reserve_packing). */
static ptrdiff_t widest(const fm_net *net)
{
    ptrdiff_t w = 0;
    for (int l = 0; l <= net->n_layers; l++)
        w = net->sizes[l] > w ? net->sizes[l] : w;
    return w;
}

/* A barrier of the enclosing team; nothing when the caller runs alone. */
static void team_barrier(int nth)
{
    if (nth > 1) {
#ifdef _OPENMP
        #pragma omp barrier
#endif
    }
}

/* The runs of columns of the input X (M x K) that are not zero in every row (zero_runs.h), in
 * runs (room for 2 * FM_MAX_RUNS values); returns their number, or -1 when none are worth
 * skipping. Every thread of a team finds the same runs itself: no barrier. */
static int input_runs(const float *X, ptrdiff_t M, ptrdiff_t K, ptrdiff_t *runs)
{
    return fm_nonzero_runs(X, M, K, K, runs);
}

/* Hints for layer 0's forward product: keep to the n runs of its input's columns, and each tile
 * of rows to the columns it has a nonzero in (gemm.h, tile_steps); none if n < 0, when the
 * input has too few zeros to pay for looking for them. */
static fm_hints runs_hints(const ptrdiff_t *runs, int n)
{
    fm_hints h = { 0 };
    if (n >= 0) {
        h.k_runs = runs;
        h.n_k_runs = n;
        h.tile_steps = 1;
    }
    return h;
}

/* The threads a network's calls may use (fm_net.n_threads). */
static int net_threads(const fm_net *net)
{
    return fm_threads_for(net->n_threads);
}

/* Hidden layer l's dropout in a training step of net, for rows from row0 of the batch, in *d:
 * returns d, or NULL when the layer drops nothing (ops/dropout.h). */
static const fm_dropout *layer_dropout(const fm_net *net, int l, ptrdiff_t row0, fm_dropout *d)
{
    if (net->dropout == NULL || !(net->dropout[l] > 0.0))
        return NULL;
    const double p = net->dropout[l];
    *d = (fm_dropout){ .threshold = (uint32_t)(p * 4294967296.0),   /* p 2^32 < 2^32 */
                       .scale = (float)(1.0 / (1.0 - p)),
                       .key = { (uint32_t)net->dropout_seed, (uint32_t)(net->dropout_seed >> 32) },
                       .layer = (uint32_t)l, .step = (uint32_t)net->dropout_step, .row0 = row0 };
    return d;
}

/* Thread tid's part of layers [0, n) of a forward pass, layer l's output to dest[l] (and, when
 * pre is not NULL, what its derivative reads to pre[l] where the step keeps it:
 * fm_net_keeps_pre), with a barrier after each; with dropout, the step's (layer_dropout); layer 0
 * computes only the runs of X's columns (input_runs), if n_runs >= 0; downwards: each
 * product's columns_downwards (gemm.h). Returns 0, or -1 when a buffer could not be
 * allocated. */
static int hidden_share(const fm_net *net, int n, ptrdiff_t M, const float *X,
                        const ptrdiff_t *runs, int n_runs, float *const *dest,
                        float *const *pre, int dropout, step_schedules *ss, int downwards,
                        int tid, int nth)
{
    int failed = 0;
    const float *input = X;
    for (int l = 0; l < n; l++) {
        fm_product p = fm_forward_product(dest[l], input, net->W[l], net->b[l], M,
                                          net->sizes[l], net->sizes[l + 1], net->activation, 1);
        p.bf16 = net->bf16;
        if (pre != NULL && fm_net_keeps_pre(net, l)) {
            p.epi.pre = pre[l];
            p.epi.ldm = net->sizes[l + 1];
        }
        fm_dropout drop;
        if (dropout)
            p.epi.dropout = layer_dropout(net, l, 0, &drop);
        fm_hints h = l == 0 ? runs_hints(runs, n_runs) : (fm_hints){ 0 };
        h.columns_downwards = downwards;
        failed |= fm_product_share(&p, &h, tid, nth, schedule(ss, l)) != 0;
        team_barrier(nth);
        input = dest[l];
    }
    return failed ? -1 : 0;
}

/* Inputs up to this wide are listed for a pass over one row (the list lives on the stack). */
enum { MAX_LISTED = 4096 };

/* Thread tid's part of a forward pass over one row: every layer's product runs over the
 * nonzero entries of its input alone (fm_nonzero_list; the same bits, zero_runs.h), each
 * thread listing them for itself after the barrier before it. A digit's ink is about 145 of
 * MNIST's 784 pixels, and the ReLU leaves about half of each hidden layer at zero, scattered:
 * a row's product reads one row of the weights per entry, so each skips that many. */
static int forward_row_share(const fm_net *net, const float *x, float *out,
                             float *const *scratch, int downwards, int tid, int nth)
{
    int32_t list[MAX_LISTED + FM_LIST_SLACK];
    const fm_nonzero_list_fn nonzero_list = fm_kernels()->nonzero_list;
    int failed = 0;
    int last = net->n_layers - 1;
    const float *input = x;
    for (int l = 0; l <= last; l++) {
        ptrdiff_t K = net->sizes[l];
        float *dest = l == last ? out : scratch[l];
        fm_product p = fm_forward_product(dest, input, net->W[l], net->b[l], 1, K,
                                          net->sizes[l + 1],
                                          l != last ? net->activation : FM_ACT_NONE, 1);
        p.bf16 = net->bf16;
        int n = K <= MAX_LISTED ? nonzero_list(input, K, list) : -1;
        fm_hints h = { .columns_downwards = downwards };
        if (n >= 0) {
            h.k_list = list;
            h.n_k_list = n;
        }
        failed |= fm_product_share(&p, &h, tid, nth, NULL) != 0;
        if (l < last)
            team_barrier(nth);
        input = dest;
    }
    return failed ? -1 : 0;
}

/* Thread tid's part of a forward pass layer by layer: the hidden layers (a barrier after
 * each), then the output layer into out (the caller's barrier or the region's end), every
 * product's columns downwards or not as `downwards` says. */
static int forward_share(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                         float *const *scratch, step_schedules *ss, int downwards, int tid,
                         int nth)
{
    if (M == 1)
        return forward_row_share(net, X, out, scratch, downwards, tid, nth);
    fm_reserve_packing(M, widest(net));
    int last = net->n_layers - 1;
    ptrdiff_t runs[2 * FM_MAX_RUNS];
    /* Not for bf16: whether a pass goes by blocks, where a bf16 product takes no runs, follows
     * the thread count (goes_by_blocks), and a bf16 product's runs change its bits. */
    int n_runs = last > 0 && !net->bf16 ? input_runs(X, M, net->sizes[0], runs) : -1;
    int failed = hidden_share(net, last, M, X, runs, n_runs, scratch, NULL, 0, ss, downwards,
                              tid, nth) != 0;
    fm_product p = fm_forward_product(out, last == 0 ? X : scratch[last - 1], net->W[last],
                                      net->b[last], M, net->sizes[last], net->sizes[last + 1],
                                      FM_ACT_NONE, 1);
    p.bf16 = net->bf16;
    fm_hints h = { .columns_downwards = downwards };
    failed |= fm_product_share(&p, &h, tid, nth, schedule(ss, last)) != 0;
    return failed ? -1 : 0;
}

/* A forward pass of many rows goes block by block instead: each thread takes a block of rows
 * and runs it through every layer alone, its activations in a slot of the scratch buffers of
 * its own, so no thread waits for another between layers and a block's activations stay in
 * its core's cache. Blocks shrink towards the end (a quarter of the rows left per thread) so
 * that the threads finish together. Every element is the same FMA chain as layer by layer
 * (gemm.h): the same bits. */
enum {
    BLOCK_ROWS = 240,        /* rows per block: 20 tiles of 12 */
    MIN_BLOCK_ROWS = 48,     /* the smallest block handed out, but for the very last */
    BLOCKS_PER_THREAD = 4    /* go block by block when there are this many per thread */
};

/* Claims the next block of rows from the shared counter *next: returns its row count (0 when
 * none are left) and sets *m0 to its first row. */
static ptrdiff_t claim_block(atomic_ptrdiff_t *next, ptrdiff_t M, int nth, ptrdiff_t *m0)
{
    ptrdiff_t start = atomic_load_explicit(next, memory_order_relaxed);
    ptrdiff_t rows;
    do {
        if (start >= M)
            return 0;
        rows = (M - start) / (4 * (ptrdiff_t)nth);
        rows = rows > BLOCK_ROWS ? BLOCK_ROWS : rows < MIN_BLOCK_ROWS ? MIN_BLOCK_ROWS : rows;
        if (rows > M - start)
            rows = M - start;
    } while (!atomic_compare_exchange_weak_explicit(next, &start, start + rows,
                                                    memory_order_relaxed, memory_order_relaxed));
    *m0 = start;
    return rows;
}

/* Thread tid's part of a forward pass block by block, among nth; its slot of scratch[l] is
 * rows [tid * BLOCK_ROWS, (tid + 1) * BLOCK_ROWS). With not_finite, layer 0's product checks
 * each block for a NaN or an infinity as it packs it (fm_product.a_not_finite: in the cache,
 * not one more pass over X from memory); a thread that finds one sets the flag, and every
 * thread stops after its current block. */
static int forward_blocks_share(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                                float *const *scratch, atomic_ptrdiff_t *next,
                                atomic_int *not_finite, int tid, int nth)
{
    int failed = 0;
    int last = net->n_layers - 1;
    ptrdiff_t m0, rows;
    ptrdiff_t runs[2 * FM_MAX_RUNS];
    int bad_block = 0;
    fm_reserve_packing(BLOCK_ROWS, widest(net));
    while ((rows = claim_block(next, M, nth, &m0)) > 0) {
        const float *input = X + m0 * net->sizes[0];
        for (int l = 0; l <= last; l++) {
            ptrdiff_t N = net->sizes[l + 1];
            float *dest = l == last ? out + m0 * N : scratch[l] + tid * BLOCK_ROWS * N;
            fm_product p = fm_forward_product(dest, input, net->W[l], net->b[l], rows,
                                              net->sizes[l], N,
                                              l != last ? net->activation : FM_ACT_NONE, 1);
            p.bf16 = net->bf16;
            fm_hints h = { 0 };
            if (l == 0) {
                /* A bf16 product's runs change its bits (gemm.h, k_runs), and these blocks
                 * follow the thread count: a block's runs are for float products alone. */
                if (!net->bf16)
                    h = runs_hints(runs, input_runs(input, rows, net->sizes[0], runs));
                if (not_finite != NULL)
                    h.a_not_finite = &bad_block;
            }
            failed |= fm_gemm_thread(0, 1, NULL, &p, &h) != 0;
            input = dest;
        }
        if (not_finite != NULL) {
            if (bad_block)
                atomic_store_explicit(not_finite, 1, memory_order_relaxed);
            if (atomic_load_explicit(not_finite, memory_order_relaxed))
                break;
        }
    }
    return failed ? -1 : 0;
}

/* What the threads of a training step share besides the network. The batch's loss is summed
 * in slots of whole rows, one slot per row up to LOSS_SLOTS rows (more rows share slots:
 * ceil(M / LOSS_SLOTS) each), each slot by the thread that owns its rows, then the slots in
 * order by every thread: the same additions in the same order whatever the thread count, so
 * the same loss. It lives on fm_train_step's stack. */
enum {
    LOSS_SLOTS = 1024,
    SLOT_UNIT = 8,  /* threads' row ranges start at multiples of 8 slots: whole 8-row tiles */
    SCAN_THREADS = 2,       /* teams of up to this many split the scan of the batch's columns */
    SCAN_COLUMNS = 2048     /* for inputs up to this wide (the bits live on the stack) */
};

typedef struct {
    double slot_sum[LOSS_SLOTS]; /* the loss summed over each slot's rows */
    uint32_t column_bits[SCAN_THREADS][SCAN_COLUMNS];   /* shared_input_runs's, one a thread */
    ptrdiff_t rows_per_slot;     /* ceil(M / LOSS_SLOTS) */
    ptrdiff_t n_slots;           /* ceil(M / rows_per_slot) */
    atomic_int failed;           /* a thread's share could not run: no thread updates */
    atomic_int bad_index;        /* a label or row number was out of range: no thread updates */
    atomic_int not_finite;       /* the update wrote a NaN or infinite weight */
} step_shared;

static void step_shared_init(step_shared *sh, ptrdiff_t M)
{
    sh->rows_per_slot = (M + LOSS_SLOTS - 1) / LOSS_SLOTS;
    sh->n_slots = (M + sh->rows_per_slot - 1) / sh->rows_per_slot;
    atomic_init(&sh->failed, 0);
    atomic_init(&sh->bad_index, 0);
    atomic_init(&sh->not_finite, 0);
}

/* What the input gradient of layer l + 1 takes hidden layer l's derivative from: its output,
 * or what pre[l] keeps (fm_net_keeps_pre: the pre-activation for an activation that keeps it,
 * a dropout layer's output before the drop). */
static const float *derivative_source(const fm_net *net, int l)
{
    return fm_net_keeps_pre(net, l) ? net->pre[l] : net->act[l];
}

/* Whether one of the n labels is outside [0, N). */
static int any_label_outside(const int32_t *labels, ptrdiff_t n, ptrdiff_t N)
{
    for (ptrdiff_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= N)
            return 1;
    return 0;
}

/* Thread tid's part of the output layer in a training step: for its own rows (whole slots),
 * layer L-1's forward product, the loss and its gradient, and the input gradient of layer
 * L-1 (which reads W[L-1] before any thread updates it). */
static int output_rows_share(const fm_net *net, ptrdiff_t M, const float *X,
                             const fm_targets *t, step_shared *sh, int tid, int nth)
{
    const int last = net->n_layers - 1;
    const ptrdiff_t units = (sh->n_slots + SLOT_UNIT - 1) / SLOT_UNIT;
    ptrdiff_t s0 = units * tid / nth * SLOT_UNIT, s1 = units * (tid + 1) / nth * SLOT_UNIT;
    s1 = s1 < sh->n_slots ? s1 : sh->n_slots;
    if (s0 >= s1)
        return 0;
    const ptrdiff_t r0 = s0 * sh->rows_per_slot;
    const ptrdiff_t r1 = s1 * sh->rows_per_slot < M ? s1 * sh->rows_per_slot : M;
    const ptrdiff_t K = net->sizes[last], N = net->sizes[last + 1];
    const float *input = last == 0 ? X : net->act[last - 1];
    float *out = net->act[last], *dout = net->grad[last];

    fm_product f = fm_forward_product(out + r0 * N, input + r0 * K, net->W[last], net->b[last],
                                      r1 - r0, K, N, FM_ACT_NONE, 1);
    f.bf16 = net->bf16;
    int failed = fm_gemm_thread(0, 1, NULL, &f, NULL) != 0;
    for (ptrdiff_t s = s0; s < s1; s++) {
        ptrdiff_t i = s * sh->rows_per_slot;
        ptrdiff_t rows = M - i < sh->rows_per_slot ? M - i : sh->rows_per_slot;
        sh->slot_sum[s] = fm_targets_rows_grad(dout + i * N, out + i * N, t, i, rows, N, M);
        if (isnan(sh->slot_sum[s]) && t->labels != NULL
            && any_label_outside(t->labels + i, rows, N))
            atomic_store_explicit(&sh->bad_index, 1, memory_order_relaxed);
    }
    if (last > 0) {
        const float *source = derivative_source(net, last - 1) + r0 * K;
        fm_product d = fm_input_grad_product(net->grad[last - 1] + r0 * K, dout + r0 * N,
                                             net->W[last], source, net->activation, r1 - r0, K,
                                             N, 1);
        d.bf16 = net->bf16;
        fm_dropout drop;
        d.epi.dropout = layer_dropout(net, last - 1, r0, &drop);
        failed |= fm_gemm_thread(0, 1, NULL, &d, NULL) != 0;
    }
    return failed ? -1 : 0;
}

/* Thread tid's rows of a gathered batch: row rows[i] of X (n rows) and its targets (t's: a
 * label, or a row of Y and a weight) to row i of batch. Each row number is read once and
 * checked; one outside [0, n) sets sh->bad_index and its row is not copied. */
static void gather_share(ptrdiff_t M, ptrdiff_t n_in, ptrdiff_t n_out, const float *X,
                         const fm_targets *t, ptrdiff_t n, const int64_t *rows,
                         const fm_batch *batch, step_shared *sh, int tid, int nth)
{
    const size_t row_bytes = sizeof(float) * (size_t)n_in;
    for (ptrdiff_t i = M * tid / nth; i < M * (tid + 1) / nth; i++) {
        const int64_t r = *(const volatile int64_t *)(rows + i);
        if (r < 0 || r >= n) {
            atomic_store_explicit(&sh->bad_index, 1, memory_order_relaxed);
            continue;
        }
        memcpy(batch->X + i * n_in, X + (ptrdiff_t)r * n_in, row_bytes);
        if (t->labels != NULL)
            batch->labels[i] = t->labels[r];
        if (t->Y != NULL)
            memcpy(batch->Y + i * n_out, t->Y + (ptrdiff_t)r * n_out,
                   sizeof(float) * (size_t)n_out);
        if (t->weights != NULL)
            batch->weights[i] = t->weights[r];
    }
}

/* Layer l's state buffers of the update rule, for W (sW) and b (sb): each NULL when unused. */
static void layer_states(const fm_net *net, int l, float *sW[FM_OPT_STATES],
                         float *sb[FM_OPT_STATES])
{
    for (int s = 0; s < FM_OPT_STATES; s++) {
        sW[s] = net->state_W[s] != NULL ? net->state_W[s][l] : NULL;
        sb[s] = net->state_b[s] != NULL ? net->state_b[s][l] : NULL;
    }
}

/* The runs of X's nonzero columns (input_runs) for every thread of a team, each thread ORing
 * the columns of its own rows (those it gathered, or its share) and all of them reading the
 * OR after a barrier: each core reads half of the batch from memory instead of all of it. The
 * same runs as input_runs; teams too large or inputs too wide scan alone. */
static int shared_input_runs(const float *X, ptrdiff_t M, ptrdiff_t K, ptrdiff_t *runs,
                             step_shared *sh, int tid, int nth)
{
    if (nth < 2 || nth > SCAN_THREADS || K > SCAN_COLUMNS)
        return input_runs(X, M, K, runs);
    const ptrdiff_t m0 = M * tid / nth, m1 = M * (tid + 1) / nth;
    uint32_t *mine = sh->column_bits[tid];
    memset(mine, 0, sizeof(uint32_t) * (size_t)K);
    fm_or_columns(mine, X + m0 * K, m1 - m0, K, K);
    team_barrier(nth);
    uint32_t bits[SCAN_COLUMNS];
    for (ptrdiff_t j = 0; j < K; j++) {
        uint32_t any = 0;
        for (int t = 0; t < nth; t++)
            any |= sh->column_bits[t][j];
        bits[j] = any;
    }
    return fm_runs_of_columns(bits, K, runs);
}

/* Thread tid's part of fm_train_step; thread 0 writes *loss. With gW != NULL (the gradient
 * mode, fm_gradient, opt unused) the walk back writes each layer's gradient to gW[l], gb[l]
 * instead of updating it. */
static int train_share(const fm_net *net, ptrdiff_t M, const float *X, const fm_targets *t,
                       const fm_optimizer *opt, float *const *gW, float *const *gb,
                       double *loss, step_shared *sh, step_schedules *ss, int tid, int nth)
{
    const int L = net->n_layers;
    fm_reserve_packing(M, widest(net));
    ptrdiff_t runs[2 * FM_MAX_RUNS];
    int n_runs = L > 1 ? shared_input_runs(X, M, net->sizes[0], runs, sh, tid, nth) : -1;
    int failed = hidden_share(net, L - 1, M, X, runs, n_runs, net->act, net->pre, 1, ss, 0,
                              tid, nth) != 0;
    failed |= output_rows_share(net, M, X, t, sh, tid, nth) != 0;
    if (failed)
        atomic_store_explicit(&sh->failed, 1, memory_order_relaxed);
    team_barrier(nth);   /* every slot summed, every row of the output's gradients written */

    double total = 0.0;
    for (ptrdiff_t s = 0; s < sh->n_slots; s++)
        total += sh->slot_sum[s];
    if (t->kind == FM_LOSS_MSE || t->kind == FM_LOSS_CROSS_ENTROPY)
        total /= (double)M;
    if (tid == 0)
        *loss = total;
    /* A loss beyond float range means the float32 gradients are already meaningless (the
     * gradient mode writes them all the same: its caller sees the loss). */
    if (atomic_load_explicit(&sh->failed, memory_order_relaxed)
        || (gW == NULL && !isfinite((float)total)))
        return failed ? -1 : 0;
    atomic_int *not_finite = net->check_finite ? &sh->not_finite : NULL;

    /* Walk back: each layer's input gradient is taken before that layer's weights move
     * (the output layer's in output_rows_share). */
    for (int l = L - 1; l >= 0; l--) {
        const float *input = l == 0 ? X : net->act[l - 1];
        ptrdiff_t K = net->sizes[l], N = net->sizes[l + 1];
        if (l > 0 && l < L - 1) {
            fm_product p = fm_input_grad_product(net->grad[l - 1], net->grad[l], net->W[l],
                                                 derivative_source(net, l - 1),
                                                 net->activation, M, K, N, 1);
            p.bf16 = net->bf16;
            fm_dropout drop;
            p.epi.dropout = layer_dropout(net, l - 1, 0, &drop);
            failed |= fm_product_share(&p, NULL, tid, nth, schedule(ss, L + l)) != 0;
            team_barrier(nth);
        }
        if (gW != NULL) {
            fm_product g = fm_weight_grad_product(gW[l], input, net->grad[l], M, K, N);
            g.bf16 = net->bf16;
            fm_hints h = { .tile_steps = l == 0 && n_runs >= 0 };
            failed |= fm_product_share(&g, &h, tid, nth, schedule(ss, 2 * L + l)) != 0;
            fm_bias_grad_share(gb[l], net->grad[l], M, N, tid, nth);
            continue;
        }
        float *sW[FM_OPT_STATES], *sb[FM_OPT_STATES];
        layer_states(net, l, sW, sb);
        fm_product u = fm_weight_update_product(net->W[l], sW, input, net->grad[l], M, K, N, opt,
                                                not_finite, 1);
        u.bf16 = net->bf16;
        /* Plain SGD leaves the rows of W[0] for X's zero columns as they are: skip them. Each
         * tile of those rows sums over the samples it has a nonzero in (gemm.h, tile_steps). */
        fm_hints h = { .tile_steps = l == 0 && n_runs >= 0 };
        if (l == 0 && n_runs >= 0 && opt->alpha == 0.0f && opt->rule == FM_OPT_SGD
            && sW[0] == NULL) {
            h.m_runs = runs;
            h.n_m_runs = n_runs;
        }
        failed |= fm_product_share(&u, &h, tid, nth, schedule(ss, 2 * L + l)) != 0;
        fm_bias_update_share(net->b[l], sb, net->grad[l], M, N, opt, not_finite, tid, nth);
    }
    return failed ? -1 : 0;
}

/* The threads worth using for a forward pass of M rows. */
static int forward_team(const fm_net *net, ptrdiff_t M)
{
    double units = pass_flop(net, M) + UNITS_PER_WEIGHT_BYTE * weight_bytes(net);
    return team_for(units, FORWARD_UNITS_PER_THREAD, net_threads(net));
}

static int goes_by_blocks(ptrdiff_t M, int nth)
{
    return M >= (ptrdiff_t)nth * BLOCKS_PER_THREAD * BLOCK_ROWS;
}

ptrdiff_t fm_forward_scratch_rows(const fm_net *net, ptrdiff_t M)
{
    enum { LAYER_CHUNK_ROWS = 4096 };   /* bounds the scratch of a pass layer by layer */
    int nth = forward_team(net, M);
    if (goes_by_blocks(M, nth))
        return (ptrdiff_t)nth * BLOCK_ROWS;
    return M < LAYER_CHUNK_ROWS ? M : LAYER_CHUNK_ROWS;
}

/* A pass over this many rows or fewer splits each product in fixed shares (no schedule), so
 * that each thread reads the same columns of the weights on every call and finds them in its
 * own core's L2. With a schedule, a thread that starts late has columns taken by the other,
 * which then moves them between the cores' caches call after call; past this many rows a
 * schedule's help against a slowed thread counts for more. */
enum { FIXED_SHARE_ROWS = 16 };

/* Passes of a few rows take their columns upwards and downwards in turn (columns_downwards).
 * A thread's share of the weights can about fill its core's L2 (about 1 MB of MNIST's for a
 * dense row on each of 2 threads). Read in the same order every call, each line is evicted
 * just before it is wanted again; in the opposite order, a call starts on the lines the last
 * one read last. */
static atomic_uint few_row_passes;

/* A forward pass of M rows layer by layer, in chunks of at most scratch_rows rows. */
static int forward_by_layers(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                             float *const *scratch, ptrdiff_t scratch_rows)
{
    int failed = 0;
    ptrdiff_t n_in = net->sizes[0], n_out = net->sizes[net->n_layers];
    for (ptrdiff_t start = 0; start < M && !failed; start += scratch_rows) {
        ptrdiff_t rows = M - start < scratch_rows ? M - start : scratch_rows;
        const float *x = X + start * n_in;
        float *o = out + start * n_out;
        int nth = forward_team(net, rows);
        int downwards = rows <= FIXED_SHARE_ROWS
                        && atomic_fetch_add_explicit(&few_row_passes, 1, memory_order_relaxed) & 1;
#ifdef _OPENMP
        if (nth > 1) {
            step_schedules ss;
            step_schedules *schedules = NULL;  /* fixed shares */
            if (rows > FIXED_SHARE_ROWS) {
                reset_schedules(&ss);
                schedules = &ss;
            }
            #pragma omp parallel num_threads(nth) reduction(|:failed)
            failed |= forward_share(net, rows, x, o, scratch, schedules, downwards,
                                    omp_get_thread_num(), omp_get_num_threads()) != 0;
            continue;
        }
#else
        (void)nth;   /* without OpenMP every pass runs on the calling thread */
#endif
        failed |= forward_share(net, rows, x, o, scratch, NULL, downwards, 0, 1) != 0;
    }
    return failed ? -1 : 0;
}

/* A forward pass block by block on a team of nth threads (forward_blocks_share). */
static int forward_blocks(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                          float *const *scratch, int nth, atomic_int *not_finite)
{
    atomic_ptrdiff_t next;
    atomic_init(&next, 0);
#ifdef _OPENMP
    if (nth > 1) {
        int failed = 0;
        #pragma omp parallel num_threads(nth) reduction(|:failed)
        failed |= forward_blocks_share(net, M, X, out, scratch, &next, not_finite,
                                       omp_get_thread_num(), omp_get_num_threads()) != 0;
        return failed ? -1 : 0;
    }
#else
    (void)nth;   /* without OpenMP the blocks run on the calling thread */
#endif
    return forward_blocks_share(net, M, X, out, scratch, &next, not_finite, 0, 1);
}

/* fm_forward, and with check fm_forward_finite. */
static int forward(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                   float *const *scratch, ptrdiff_t scratch_rows, int check)
{
    fm_dispatch_init();
    int nth = forward_team(net, M);
    if (nth > scratch_rows / BLOCK_ROWS)
        nth = (int)(scratch_rows / BLOCK_ROWS);   /* a slot of BLOCK_ROWS rows each */
    if (nth < 1 || !goes_by_blocks(M, nth)) {
        /* At most a few thousand rows: checked in one pass before the team starts. */
        if (check && !fm_kernels()->all_finite(X, M * net->sizes[0]))
            return FM_ERR_NOT_FINITE;
        return forward_by_layers(net, M, X, out, scratch, scratch_rows);
    }
    atomic_int not_finite;
    atomic_init(&not_finite, 0);
    int status = forward_blocks(net, M, X, out, scratch, nth, check ? &not_finite : NULL);
    return atomic_load_explicit(&not_finite, memory_order_relaxed) ? FM_ERR_NOT_FINITE : status;
}

int fm_forward(const fm_net *net, ptrdiff_t M, const float *X, float *out, float *const *scratch,
               ptrdiff_t scratch_rows)
{
    return forward(net, M, X, out, scratch, scratch_rows, 0);
}

int fm_forward_finite(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                      float *const *scratch, ptrdiff_t scratch_rows)
{
    return forward(net, M, X, out, scratch, scratch_rows, 1);
}

/* What a step computes: its input and targets, its gathered batch, its update or gradients. */
typedef struct {
    ptrdiff_t M;
    const float *X;
    const fm_targets *t;
    ptrdiff_t n;               /* with rows: the rows of X and t */
    const int64_t *rows;       /* NULL, or the batch's rows, gathered into batch */
    const fm_batch *batch;
    const fm_optimizer *opt;
    float *const *gW, *const *gb;   /* NULL, or the gradient mode's outputs */
    double *loss;
} step_call;

/* Thread tid's part of a training step on (X, targets), or, with rows != NULL, on those rows
 * of X, which the team gathers first into batch, a barrier between. */
static int step_share(const fm_net *net, const step_call *c, step_shared *sh,
                      step_schedules *ss, int tid, int nth)
{
    if (c->rows == NULL)
        return train_share(net, c->M, c->X, c->t, c->opt, c->gW, c->gb, c->loss, sh, ss, tid,
                           nth);
    gather_share(c->M, net->sizes[0], net->sizes[net->n_layers], c->X, c->t, c->n, c->rows,
                 c->batch, sh, tid, nth);
    team_barrier(nth);
    if (atomic_load_explicit(&sh->bad_index, memory_order_relaxed))
        return 0;
    const fm_targets gathered = { .kind = c->t->kind,
                                  .labels = c->t->labels ? c->batch->labels : NULL,
                                  .Y = c->t->Y ? c->batch->Y : NULL,
                                  .weights = c->t->weights ? c->batch->weights : NULL,
                                  .scale = c->t->scale };
    return train_share(net, c->M, c->batch->X, &gathered, c->opt, c->gW, c->gb, c->loss, sh, ss,
                       tid, nth);
}

/* A training step, in one parallel region (see step_share). */
static int train_step(const fm_net *net, const step_call *c)
{
    const ptrdiff_t M = c->M;
    fm_dispatch_init();
    for (int l = 0; l < net->n_layers - 1; l++)
        if (fm_net_keeps_pre(net, l) && net->pre == NULL)
            return FM_ERR_MEMORY;   /* no buffers for what its derivative reads */
    /* forward, input gradients and weight gradients: three passes' flops */
    int nth = team_for(3.0 * pass_flop(net, M), STEP_FLOP_PER_THREAD, net_threads(net));
    step_shared sh;
    step_shared_init(&sh, M);
    int failed = 0;
#ifdef _OPENMP
    if (nth > 1) {
        step_schedules ss;
        reset_schedules(&ss);
        #pragma omp parallel num_threads(nth) reduction(|:failed)
        failed |= step_share(net, c, &sh, &ss, omp_get_thread_num(), omp_get_num_threads()) != 0;
    } else
#else
    (void)nth;   /* without OpenMP every step runs on the calling thread */
#endif
    {
        failed = step_share(net, c, &sh, NULL, 0, 1) != 0;
    }
    if (failed)
        return FM_ERR_MEMORY;
    if (atomic_load(&sh.bad_index))
        return FM_ERR_INDEX;
    return atomic_load(&sh.not_finite) ? FM_ERR_NOT_FINITE : 0;
}

int fm_train_step(const fm_net *net, ptrdiff_t M, const float *X, const int32_t *labels,
                  int loss_kind, const fm_optimizer *opt, double *loss)
{
    const fm_targets t = { .kind = loss_kind, .labels = labels };
    const step_call c = { .M = M, .X = X, .t = &t, .opt = opt, .loss = loss };
    return train_step(net, &c);
}

int fm_train_step_rows(const fm_net *net, ptrdiff_t M, const float *X, const int32_t *labels,
                       ptrdiff_t n, const int64_t *rows, float *batch, int32_t *batch_labels,
                       int loss_kind, const fm_optimizer *opt, double *loss)
{
    const fm_targets t = { .kind = loss_kind, .labels = labels };
    const fm_batch b = { .X = batch, .labels = batch_labels };
    const step_call c = { .M = M, .X = X, .t = &t, .n = n, .rows = rows, .batch = &b,
                          .opt = opt, .loss = loss };
    return train_step(net, &c);
}

int fm_train_step_targets(const fm_net *net, ptrdiff_t M, const float *X, const fm_targets *t,
                          ptrdiff_t n, const int64_t *rows, const fm_batch *batch,
                          const fm_optimizer *opt, double *loss)
{
    const step_call c = { .M = M, .X = X, .t = t, .n = n, .rows = rows, .batch = batch,
                          .opt = opt, .loss = loss };
    return train_step(net, &c);
}

int fm_gradient(const fm_net *net, ptrdiff_t M, const float *X, const fm_targets *t,
                float *const *gW, float *const *gb, double *loss)
{
    const fm_optimizer none = { 0 };
    const step_call c = { .M = M, .X = X, .t = t, .opt = &none, .gW = gW, .gb = gb,
                          .loss = loss };
    return train_step(net, &c);
}

double fm_weights_sum_squares(const fm_net *net)
{
    /* In storage order (column panels), element i of a layer into chain i % SUM_CHAINS, the
       chains added pairwise at the end: the same value on every path. One chain waited on
       each add's latency (80-100 us a call for 784-100-10, called once a training step). */
    enum { SUM_CHAINS = 8 };
    double acc[SUM_CHAINS] = { 0.0 };
    for (int l = 0; l < net->n_layers; l++) {
        const float *W = net->W[l];
        const ptrdiff_t n = net->sizes[l] * net->sizes[l + 1];
        ptrdiff_t i = 0;
        for (; i + SUM_CHAINS <= n; i += SUM_CHAINS)
            for (int k = 0; k < SUM_CHAINS; k++)
                acc[k] += (double)W[i + k] * (double)W[i + k];
        for (int k = 0; i < n; i++, k++)
            acc[k] += (double)W[i] * (double)W[i];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
