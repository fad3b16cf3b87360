/* gemm.c - the portable GEMM frame behind gemm.h: threading, blocking, packing, edge tiles.
 *
 * Only the micro-kernels (kernels/<isa>.c) know the instruction set. For each call, plan_block
 * decides how a block runs (block_plan) and gemm_block runs the plan:
 *
 *   threads   The threads split C by columns when N is wide enough, else by rows, never K, so
 *             every C element is one FMA chain whatever the thread count or the order the
 *             chunks are taken in. With a schedule (gemm.h), C is cut into chunks (CHUNK_COLS
 *             columns, or a block of rows) and the chunks into one range per thread: each
 *             thread takes its own range first, which keeps it on the same columns of a weight
 *             matrix in the forward product and in its update, in its core's cache; then the
 *             chunks left in the others' ranges, so a thread slowed by something else does
 *             not hold up the team. Without a schedule each thread takes a fixed equal block.
 *             No barrier inside fm_gemm_thread: it can run inside a caller's parallel region.
 *   loops     for ic (mc_max rows of the block)        A block stays in L2
 *               for jc (one nr-wide column panel)
 *                 for pc (kc steps of K)                 B panel packed, in L1
 *                                                        (B in column panels: K whole)
 *                   for ir (tiles of <= mr rows)          micro-kernel on A (packed or not)
 *             The set's blocksizes (fm_blocksizes, kernels/<isa>.c) give mc, kc and the
 *             packing thresholds.
 *   kernels   The set offers these tile shapes: "wide" for A stored by rows, "columns" for A
 *             stored by columns (rsa == 1) or packed, "narrow" when the block is at most
 *             narrow.nr columns wide (a 10-wide output layer), "row" for a single row.
 *   packing   A stored by rows, at least pack_a_min_rows rows, is copied into column panels
 *             (one per row tile, all of K) when the set has a pack_a routine, once per block,
 *             into this thread's workspace, and "columns" runs on the panels. Otherwise A is
 *             read in place with its own strides (as BLIS's "sup" kernels for small problems).
 *             B is packed when its columns are strided (transposed weights in the input
 *             gradient) or when its panel is reused by enough row tiles to pay for the copy.
 *             A network's weights live in column panels of FM_PANEL (gemm.h): the forward
 *             product reads them in place, as if packed, and the weight update writes them
 *             there (no tile crosses a panel's edge).
 *   lists     With fm_hints.tile_steps, each row tile of A for the "columns" kernel is listed
 *             once per block (fm_tile_steps: the steps where one of its rows is not zero; a
 *             packed panel right after its packing, while in L1) into the workspace after the
 *             packed panels, and the kernel runs over its tile's list (zero_runs.h: the same
 *             bits). The sets without pack_a list A stored by rows too, read in place
 *             (fm_row_tile_steps), for their "wide" kernel (the set's wide_lists).
 *   K blocks  A partial sum is parked in C between K blocks (exact), except for FM_EPI_UPDATE,
 *             whose C holds the weights: that epilogue runs with one K block.
 *   edges     Tiles of fewer than mr rows or nr columns go to the same micro-kernel, which
 *             masks them; row tiles are balanced (e.g. 200 rows = 34 tiles of 5 or 6).
 *
 * benchmarks/HISTORY.md has the measurements behind these choices.
 */
#include <stdint.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/registry.h"
#include "frame/gemm.h"
#include "frame/gemm_pairs.h"
#include "frame/pack.h"
#include "frame/prefetch.h"
#include "frame/threads.h"
#include "kernels/ukernel.h"
#include "frame/workspace.h"
#include "frame/zero_runs.h"

enum {
    STACK_FLOATS = 16384, /* the packing buffer on the stack: 64 KiB (KC x 64, or 512 x 32) */
    LIST_TRIAL_TILES = 3, /* tiles of a block listed before giving up on lists (list_tile) */
    TILE_SUMS_FLOATS = 1024, /* an update's sums parked apart from its weights (gemm_block):
                                at least every kernel's MR x NR, 384 at most (6 x 64, 12 x 32,
                                24 x 16) or 1 x 128 */
    CHUNK_COLS = 32    /* columns per chunk of a dynamically scheduled product: one column tile
                          of the "columns" kernel, so a thread that finishes first waits at the
                          next barrier for at most a small chunk */
};

/* The K block length for this epilogue, B read from column panels (b_in_panels) or not. */
static ptrdiff_t k_block(const fm_blocksizes *bs, ptrdiff_t K, const fm_epilogue *epi,
                         int b_in_panels)
{
    const ptrdiff_t kc = b_in_panels ? bs->kc_panels : bs->kc;
    if (epi->kind == FM_EPI_UPDATE || K <= kc)
        return K;
    /* Equal blocks: 784 = 7 x 112 rather than 6 x 128 + 16. */
    ptrdiff_t nblocks = (K + kc - 1) / kc;
    return (K + nblocks - 1) / nblocks;
}

/* Packs the kc x nb block of B at rows [pc, pc + kc), columns [jc, jc + nb) into buf (nr
 * floats per row), for B stored by strides or, FM_PANELS_BT, as a transpose in column panels
 * (copied one panel's run of rows at a time). */
static void pack_b_block(const fm_kernel_set *ks, const fm_product *p, float *buf, int nr,
                         ptrdiff_t pc, ptrdiff_t kc, ptrdiff_t jc, int nb)
{
    if (p->panels == FM_PANELS_BT) {
        /* B(r, j) = B^T(j, r): B^T is N x K, its panels cut B's rows. */
        for (ptrdiff_t r0 = pc; r0 < pc + kc;) {
            ptrdiff_t w;
            const float *src = p->B + fm_panel_start(p->N, p->K, r0, &w) + jc * w;
            ptrdiff_t run = w - r0 % FM_PANEL;   /* the rows left in r0's panel */
            if (run > pc + kc - r0)
                run = pc + kc - r0;
            if (ks->pack_bt != NULL)
                ks->pack_bt(buf + (r0 - pc) * nr, nr, run, nb, src, w);
            else
                fm_pack_b(buf + (r0 - pc) * nr, nr, run, nb, src, 1, w);
            r0 += run;
        }
        return;
    }
    const float *bp = p->B + pc * p->rsb + jc * p->csb;
    if (p->rsb == 1 && p->csb != 1 && ks->pack_bt != NULL)
        ks->pack_bt(buf, nr, kc, nb, bp, p->csb);
    else
        fm_pack_b(buf, nr, kc, nb, bp, p->rsb, p->csb);
}

/* The row tiles of a block of rows [start, end), in turn: n_tiles balanced tiles
 * (fm_tile_height), or, with runs of rows to compute, tiles of mr rows laid greedily over the
 * runs, each starting at the first row of a run not yet covered (fewest tiles; rows between
 * runs are left out, rows inside a tile computed whether in a run or not). */
typedef struct {
    ptrdiff_t next, end;          /* the first row not yet covered; the block's end */
    ptrdiff_t rows, n_tiles, it;  /* balanced: the block's rows, its tiles, the next one's index */
    int mr;
    const ptrdiff_t *runs;        /* NULL: balanced tiles */
    int n_runs, r;                /* the runs, and the first that may hold uncovered rows */
} row_tiles;

/* The next tile: 1 and its first row *i and height *mt, or 0 when there is none. */
static int next_row_tile(row_tiles *rt, ptrdiff_t *i, int *mt)
{
    if (rt->runs == NULL) {
        if (rt->it == rt->n_tiles)
            return 0;
        *i = rt->next;
        *mt = fm_tile_height(rt->rows, rt->n_tiles, rt->it++);
    } else {
        while (rt->r < rt->n_runs && rt->runs[2 * rt->r + 1] <= rt->next)
            rt->r++;
        if (rt->r == rt->n_runs)
            return 0;
        ptrdiff_t first = rt->runs[2 * rt->r] > rt->next ? rt->runs[2 * rt->r] : rt->next;
        if (first >= rt->end)
            return 0;
        *i = first;
        *mt = (int)(rt->end - first < rt->mr ? rt->end - first : rt->mr);
    }
    rt->next = *i + *mt;
    return 1;
}

/* The column tiles of a block of columns [n0, n1), in turn: at most nr wide and, when an
 * operand is in column panels, inside one panel. Left to right, or with `downwards` panel by
 * panel from the last, each panel's tiles still left to right (gemm.h, columns_downwards). */
typedef struct {
    ptrdiff_t n0;                 /* the block's first column */
    ptrdiff_t next, seg_start, seg_end;   /* the next tile's column; its segment of columns */
    int nr, in_panels, downwards;
} column_tiles;

/* Where the segment of columns that ends at `end` starts: n0, or with `downwards` the start
 * of the panel that holds column end - 1 (n0 if that is further left). */
static ptrdiff_t segment_start(const column_tiles *ct, ptrdiff_t end)
{
    ptrdiff_t panel = (end - 1) / FM_PANEL * FM_PANEL;
    return ct->downwards && panel > ct->n0 ? panel : ct->n0;
}

static column_tiles column_tiles_of(ptrdiff_t n0, ptrdiff_t n1, int nr, int in_panels,
                                    int downwards)
{
    column_tiles ct = { n0, n0, n0, n1, nr, in_panels, downwards };
    if (n1 > n0)
        ct.seg_start = ct.next = segment_start(&ct, n1);
    return ct;
}

/* The next tile: 1 and its first column *jc and width *nb, or 0 when there is none. */
static int next_column_tile(column_tiles *ct, ptrdiff_t *jc, int *nb)
{
    if (ct->next >= ct->seg_end) {             /* this segment is done: the one before it */
        if (ct->seg_start <= ct->n0)
            return 0;
        ct->seg_end = ct->seg_start;
        ct->seg_start = ct->next = segment_start(ct, ct->seg_end);
    }
    ptrdiff_t end = ct->seg_end;
    if (ct->in_panels && ct->next / FM_PANEL * FM_PANEL + FM_PANEL < end)
        end = ct->next / FM_PANEL * FM_PANEL + FM_PANEL;
    *jc = ct->next;
    *nb = (int)(end - ct->next < ct->nr ? end - ct->next : ct->nr);
    ct->next += *nb;
    return 1;
}

/* Whether rows [i0, i1) of p's A, stored by rows (csa == 1: gemm.h, a_not_finite), are free
 * of NaN and infinity. */
static int rows_finite(const fm_kernel_set *ks, const fm_product *p, ptrdiff_t i0, ptrdiff_t i1)
{
    for (ptrdiff_t i = i0; i < i1; i++)
        if (!ks->all_finite(p->A + i * p->rsa, p->K))
            return 0;
    return 1;
}

/* The bytes of this thread's workspace that a block packs `rows` rows of A (stored by rows,
 * K columns) into: one block of at most mc_packed rows, in panels of columns.mr rows; 0 when
 * it reads so few rows in place. */
static size_t packed_a_bytes(const fm_kernel_set *ks, ptrdiff_t rows, ptrdiff_t K)
{
    if (ks->pack_a == NULL || K <= 0 || rows < ks->blocks.pack_a_min_rows)
        return 0;
    ptrdiff_t block = rows < ks->blocks.mc_packed ? rows : ks->blocks.mc_packed;
    ptrdiff_t panels = (block + ks->columns.mr - 1) / ks->columns.mr;
    return sizeof(float) * (size_t)(panels * ks->columns.mr) * (size_t)K;
}

/* One tile's list in the workspace: its count, then room for K steps (zero_runs.h's slack). */
static ptrdiff_t tile_list_floats(ptrdiff_t K)
{
    return K + 1 + FM_LIST_SLACK;
}

/* The bytes of the tile lists (fm_product.tile_steps) of one block of up to `rows` rows of A,
 * cut into blocks of mc rows, K steps: a tile per mr rows, and one more per run of rows when
 * the tiles are laid over runs (row_tiles). */
static size_t tile_lists_bytes(ptrdiff_t rows, ptrdiff_t mc, int mr, ptrdiff_t K)
{
    ptrdiff_t block = rows < mc ? rows : mc;
    ptrdiff_t tiles = (block + mr - 1) / mr + FM_MAX_RUNS;
    return sizeof(int32_t) * (size_t)tiles * (size_t)tile_list_floats(K);
}

/* The bytes of the tile lists a block makes for `rows` rows of A over K steps: A packed
 * (blocks of mc_packed rows, tiles of the columns kernel), or read in place (one block of
 * mc_in_place rows, tiles of the columns kernel for A stored by columns, of the wide kernel
 * for A stored by rows). fm_reserve_packing reserves what plan_block asks for. */
static size_t block_lists_bytes(const fm_kernel_set *ks, ptrdiff_t rows, ptrdiff_t K,
                                int packed, int by_columns)
{
    if (packed)
        return tile_lists_bytes(rows, ks->blocks.mc_packed, ks->columns.mr, K);
    return tile_lists_bytes(rows, ks->blocks.mc_in_place,
                            by_columns ? ks->columns.mr : ks->wide.mr, K);
}

void fm_reserve_packing(ptrdiff_t rows, ptrdiff_t K)
{
    const fm_kernel_set *ks = fm_kernels();
    size_t packed = packed_a_bytes(ks, rows, K);
    size_t forward = packed > 0 ? packed + block_lists_bytes(ks, rows, K, 1, 0)
                     : ks->wide_lists ? block_lists_bytes(ks, rows, K, 0, 0) : 0;
    size_t update = block_lists_bytes(ks, K, rows, 0, 1);
    (void)fm_thread_workspace(forward > update ? forward : update);  /* on failure, gemm_block
                                                                        asks again */
}

/* The steps of K that h's k_runs keep (all of K without runs). */
static ptrdiff_t steps_kept(const fm_product *p, const fm_hints *h)
{
    if (h->k_runs == NULL)
        return p->K;
    ptrdiff_t kept = 0;
    for (int r = 0; r < h->n_k_runs; r++)
        kept += h->k_runs[2 * r + 1] - h->k_runs[2 * r];
    return kept;
}

/* Lists the row tiles of one block of a product in turn (fm_product.tile_steps). */
typedef struct {
    int32_t *lists;      /* a slot of tile_list_floats(K) per tile: its count, then its steps */
    ptrdiff_t K, kept;   /* the product's steps, and those its k_runs keep (steps_kept) */
    int any_pays;        /* some tile listed so far skips enough to pay */
} tile_lister;

/* Lists row tile `it`: the steps where one of its m rows of A is not zero (A stored by
 * columns, rsa == 1, step stride csa; or by rows, csa == 1, row stride rsa), or a count of -1
 * when they would skip too little more than the runs keep (a sixteenth of K) to pay for the
 * list. When none of the first LIST_TRIAL_TILES tiles of a block pays, the block's others are
 * not listed (count -1): a batch with blank columns but no other zeros (a dense image in a
 * blank frame) would pay for lists it does not use. */
static void list_tile(const fm_kernel_set *ks, tile_lister *tl, ptrdiff_t it, const float *a,
                      ptrdiff_t rsa, ptrdiff_t csa, int m)
{
    int32_t *slot = tl->lists + it * tile_list_floats(tl->K);
    if (!tl->any_pays && it >= LIST_TRIAL_TILES) {
        slot[0] = -1;
        return;
    }
    int n = rsa == 1 ? ks->tile_steps(a, csa, m, tl->K, slot + 1)
                     : fm_row_tile_steps(a, rsa, m, tl->K, slot + 1);
    int pays = fm_skips_enough(tl->K, tl->kept - n);
    slot[0] = pays ? n : -1;
    tl->any_pays |= pays;
}

/* How a block of a product runs, decided once per call by plan_block from the product, the
 * caller's hints and the kernel set: which kernel and tile, the K blocks, what is packed and
 * what is listed. run_block carries the plan out and decides nothing. */
typedef struct {
    fm_ukernel_fn kernel;
    int mr, nr;                 /* the kernel's tile; nr at most FM_PANEL with panels */
    int row;                    /* the row kernel: takes the hints' list of steps */
    ptrdiff_t kc_max, n_kblocks;
    ptrdiff_t mc_max;           /* rows of A a block */
    int b_in_panels, c_in_panels;
    int b_strided;              /* B's columns are strided: every panel of B is packed */
    int b_fits_stack;           /* a kc_max x nr panel of B fits the stack buffer */
    int kernel_epilogue;        /* the kernel applies the epilogue (fm_epilogue_inline); else
                                   the set's epilogue_tile runs after it */
    float *apack;               /* A's packed panels in the workspace; NULL: A read in place */
    int32_t *lists;             /* the row tiles' lists of steps in the workspace, or NULL */
    ptrdiff_t kept;             /* the steps the hints' runs keep (a list pays against them) */
} block_plan;

/* The plan for rows [m0, m1) x columns [n0, n1) of p. */
static void plan_block(const fm_kernel_set *ks, const fm_product *p, const fm_hints *h,
                      ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1, block_plan *pl)
{
    const ptrdiff_t K = p->K;
    const int by_columns = p->rsa == 1, by_rows = p->rsa != 1 && p->csa == 1;
    pl->b_in_panels = p->panels == FM_PANELS_B;
    pl->c_in_panels = p->panels == FM_PANELS_C;
    pl->b_strided = p->panels == FM_PANELS_BT || (!pl->b_in_panels && p->csb != 1);
    pl->kc_max = k_block(&ks->blocks, K, &p->epi, pl->b_in_panels);
    pl->n_kblocks = K > 0 ? (K + pl->kc_max - 1) / pl->kc_max : 1;
    /* One row with a list of steps goes to the row kernel, the one kernel that follows a list,
     * however narrow (a narrow tile of one row is the same computation). */
    const int listed_row = p->M == 1 && h->k_list != NULL;
    const int narrow = !listed_row && n1 - n0 <= ks->narrow.nr;
    pl->row = !narrow && m1 - m0 == 1;
    const int tiled = !narrow && !pl->row;
    /* A stored by rows, tall enough to repay the copy: packed into column panels, one block
     * at a time, in this thread's workspace. Without a workspace it is read in place. */
    const size_t apack_bytes = tiled && by_rows ? packed_a_bytes(ks, m1 - m0, K) : 0;
    /* Tile lists (fm_hints.tile_steps) for the columns kernel, after the packed panels, or
     * for the wide kernel on A stored by rows and read in place in the sets that follow them. */
    const int wide_listed = !by_columns && apack_bytes == 0 && ks->wide_lists;
    const int listing = h->tile_steps && tiled && pl->kc_max >= K
                        && (by_columns || apack_bytes > 0 || wide_listed);
    const size_t lists_bytes = listing ? block_lists_bytes(ks, m1 - m0, K, apack_bytes > 0,
                                                           by_columns) : 0;
    unsigned char *workspace = apack_bytes + lists_bytes > 0
                               ? fm_thread_workspace(apack_bytes + lists_bytes) : NULL;
    pl->apack = workspace != NULL && apack_bytes > 0 ? (float *)workspace : NULL;
    pl->lists = workspace != NULL && lists_bytes > 0
                ? (int32_t *)(workspace + apack_bytes) : NULL;
    pl->kept = pl->lists != NULL ? steps_kept(p, h) : K;
    const int columns = tiled && (by_columns || pl->apack != NULL);
    const fm_tile_kernel *tk = narrow ? &ks->narrow : pl->row ? &ks->row
                               : columns ? &ks->columns : &ks->wide;
    pl->kernel = tk->run;
    pl->mr = narrow ? (by_columns ? ks->narrow.mr : ks->mr_narrow_rows) : pl->row ? 1 : tk->mr;
    pl->nr = tk->nr;
    if ((pl->b_in_panels || pl->c_in_panels) && pl->nr > FM_PANEL)
        pl->nr = FM_PANEL;   /* every kernel's width divides FM_PANEL, up to the row kernel's */
    pl->mc_max = pl->apack != NULL ? ks->blocks.mc_packed : ks->blocks.mc_in_place;
    pl->b_fits_stack = pl->kc_max * pl->nr <= STACK_FLOATS;
    pl->kernel_epilogue = fm_epilogue_inline(&p->epi);
}

/* Packs A's rows [ic, ic + mc) into the plan's column panels, one per row tile, checking each
 * for NaN and infinity (hints' a_not_finite) and listing it while it is in L1. */
static void pack_block(const fm_kernel_set *ks, const fm_product *p, const fm_hints *h,
                       const block_plan *pl, tile_lister *lister, ptrdiff_t ic, ptrdiff_t mc,
                       ptrdiff_t n_tiles)
{
    const ptrdiff_t panel_floats = (ptrdiff_t)pl->mr * p->K;
    ptrdiff_t i = ic;
    for (ptrdiff_t it = 0; it < n_tiles; it++) {
        int mt = fm_tile_height(mc, n_tiles, it);
        float *panel = pl->apack + it * panel_floats;
        ks->pack_a(panel, mt, p->K, p->A + i * p->rsa, p->rsa);
        /* The rows past mt are packed as zeros: the whole panel can be checked. */
        if (h->a_not_finite != NULL && !ks->all_finite(panel, panel_floats))
            *h->a_not_finite = 1;
        if (pl->lists != NULL)
            list_tile(ks, lister, it, panel, 1, pl->mr, mt);
        i += mt;
    }
}

/* C rows [m0, m1) x columns [n0, n1) of product p, as plan_block plans them. Returns 0, or -1
 * when a packing buffer could not be allocated.
 * a_ready: NULL, or in/out for a thread computing several column chunks of one product: 1 when
 * its workspace already holds A's packed panels and tile lists of rows [m0, m1) (one block),
 * set by the call that made them, so the next chunk skips the copy and the lists.
 *
 * B's packed panel lives on this thread's stack (64 KiB), so concurrent calls from several
 * threads share nothing and steady-state calls allocate nothing. An update (K unsplit) of a B
 * with strided columns whose panel outgrows the stack, which the network's products never are
 * (benchmarks/c/gemm_check tests it), packs on the heap instead. B in column panels
 * (FM_PANELS_B) is read in place: its rows are already runs of at most FM_PANEL floats, as a
 * packed panel's are. With panels, no tile crosses a panel's edge. */
static int gemm_block(const fm_kernel_set *ks, const fm_product *p, const fm_hints *h,
                      ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1, int *a_ready)
{
    if (p->bf16)
        return fm_gemm_block_pairs(ks, fm_pairs(), p, h, m0, m1, n0, n1, a_ready);
    _Alignas(64) float stack_buf[STACK_FLOATS];
    block_plan pl;
    plan_block(ks, p, h, m0, m1, n0, n1, &pl);
    /* An update out of line (Adam) has the kernel park its sums apart: C holds the weights. */
    _Alignas(64) float sums[TILE_SUMS_FLOATS];
    const int sums_apart = p->epi.kind == FM_EPI_UPDATE && !pl.kernel_epilogue
                           && pl.mr * pl.nr <= TILE_SUMS_FLOATS;
    if (p->epi.kind == FM_EPI_UPDATE && !pl.kernel_epilogue && !sums_apart)
        return -1;   /* no kernel set has such a tile */
    float *heap_buf = NULL;
    if (pl.b_strided && !pl.b_fits_stack) {
        heap_buf = malloc(sizeof(float) * (size_t)pl.kc_max * (size_t)pl.nr);
        if (heap_buf == NULL)
            return -1;
    }
    float *buf = heap_buf != NULL ? heap_buf : stack_buf;
    const ptrdiff_t K = p->K;
    /* The packed panel of row tile `it` holds A(rows of the tile, 0..K-1) as
     * apack[it*mr*K + p*mr + i]: the kernel reads it as A stored by columns, stride mr. */
    const ptrdiff_t panel_floats = (ptrdiff_t)pl.mr * K;

    for (ptrdiff_t ic = m0; ic < m1; ic += pl.mc_max) {
        const ptrdiff_t mc = m1 - ic < pl.mc_max ? m1 - ic : pl.mc_max;
        const ptrdiff_t n_tiles = (mc + pl.mr - 1) / pl.mr;
        const int pack = pl.b_strided || (!pl.b_in_panels && pl.b_fits_stack
                                          && n_tiles >= ks->blocks.pack_b_min_tiles);
        const int ready = a_ready != NULL && *a_ready;
        tile_lister lister = { pl.lists, K, pl.kept, 0 };
        if (pl.apack != NULL && !ready) {
            pack_block(ks, p, h, &pl, &lister, ic, mc, n_tiles);
        } else if (pl.lists != NULL && !ready) {   /* A read in place */
            row_tiles rt = { ic, ic + mc, mc, n_tiles, 0, pl.mr, h->m_runs, h->n_m_runs, 0 };
            ptrdiff_t i;
            int mt;
            for (ptrdiff_t it = 0; next_row_tile(&rt, &i, &mt); it++)
                list_tile(ks, &lister, it, p->A + i * p->rsa, p->rsa, p->csa, mt);
        }
        if (a_ready != NULL && (pl.apack != NULL || pl.lists != NULL))
            *a_ready = m1 - m0 <= pl.mc_max;
        if (pl.apack == NULL && h->a_not_finite != NULL && !rows_finite(ks, p, ic, ic + mc))
            *h->a_not_finite = 1;
        column_tiles ct = column_tiles_of(n0, n1, pl.nr, pl.b_in_panels || pl.c_in_panels,
                                          h->columns_downwards);
        ptrdiff_t jc;
        int nb;
        while (next_column_tile(&ct, &jc, &nb)) {
            /* B's panel (B in panels) or C's and the state's (C in panels) for columns jc.. */
            ptrdiff_t b_start = 0, b_width = 0, c_start = jc, ldc = p->ldc;
            if (pl.b_in_panels || pl.c_in_panels) {
                ptrdiff_t width, start = fm_panel_start(pl.b_in_panels ? K : p->M, p->N, jc,
                                                        &width);
                if (pl.b_in_panels) {
                    b_start = start;
                    b_width = width;
                } else {
                    c_start = start;
                    ldc = width;
                }
            }
            for (ptrdiff_t kb = 0; kb < pl.n_kblocks; kb++) {
                const ptrdiff_t pc = kb * pl.kc_max;
                const ptrdiff_t kc = K - pc < pl.kc_max ? K - pc : pl.kc_max;
                const float *bp;
                ptrdiff_t rsbp;
                if (pack) {
                    pack_b_block(ks, p, buf, pl.nr, pc, kc, jc, nb);
                    bp = buf;
                    rsbp = pl.nr;
                } else if (pl.b_in_panels) {
                    bp = p->B + b_start + pc * b_width;
                    rsbp = b_width;
                } else {
                    bp = p->B + pc * p->rsb + jc * p->csb;
                    rsbp = p->rsb;
                }
                const int whole_k = pl.n_kblocks == 1, last = kb == pl.n_kblocks - 1;
                fm_tile t = { .epi = &p->epi, .j0 = jc, .first = kb == 0,
                              .last = last && pl.kernel_epilogue,
                              .runs = whole_k ? h->k_runs : NULL, .n_runs = h->n_k_runs,
                              .k_list = whole_k && pl.row ? h->k_list : NULL,
                              .n_k_list = h->n_k_list, .sums = sums_apart ? sums : NULL,
                              .ld_sums = pl.nr };
                row_tiles rt = { ic, ic + mc, mc, n_tiles, 0, pl.mr,
                                 pl.apack == NULL ? h->m_runs : NULL, h->n_m_runs, 0 };
                ptrdiff_t i;
                int mt;
                for (ptrdiff_t it = 0; next_row_tile(&rt, &i, &mt); it++) {
                    float *c = p->C + c_start + i * ldc;
                    float *kernel_c = sums_apart ? sums : c;
                    const ptrdiff_t kernel_ldc = sums_apart ? pl.nr : ldc;
                    t.i0 = i;
                    if (pl.lists != NULL) {
                        const int32_t *slot = pl.lists + it * tile_list_floats(K);
                        t.k_list = slot[0] >= 0 ? slot + 1 : NULL;
                        t.n_k_list = slot[0];
                    }
                    for (int s = 0; s < FM_OPT_STATES; s++)
                        if (p->epi.kind == FM_EPI_UPDATE && p->epi.state[s] != NULL)
                            t.state[s] = p->epi.state[s] + c_start + i * ldc;
                    if (last && sums_apart && ks->blocks.prefetch_update)
                        prefetch_update_tile(&t, c, ldc, mt, nb);
                    if (pl.apack != NULL)
                        pl.kernel(mt, nb, kc, pl.apack + it * panel_floats + pc * pl.mr, 1,
                                  pl.mr, bp, rsbp, kernel_c, kernel_ldc, &t);
                    else
                        pl.kernel(mt, nb, kc, p->A + i * p->rsa + pc * p->csa, p->rsa, p->csa,
                                  bp, rsbp, kernel_c, kernel_ldc, &t);
                    if (last && !pl.kernel_epilogue)
                        ks->epilogue_tile(&t, mt, nb, c, ldc);
                }
            }
            /* The weights an update wrote, checked once the column's tiles are done. */
            if (p->epi.not_finite != NULL
                && !ks->finite_rows(p->C + c_start + ic * ldc, ldc, mc, nb))
                atomic_store_explicit(p->epi.not_finite, 1, memory_order_relaxed);
        }
    }
    free(heap_buf);
    return 0;
}

/* Whether to split columns (1) or rows (0) among nth threads. Columns when they are many: each
 * thread then reads only its part of B (the weights). Rows for a tall C (predicting thousands of
 * samples): each thread then reads and packs only its own rows of A. */
static int split_columns(ptrdiff_t M, ptrdiff_t N, int nth)
{
    if (M >= 8 * N)
        return 0;
    return N >= 64 * (ptrdiff_t)nth || N >= M;
}

void fm_schedule_reset(fm_schedule *s)
{
    for (int r = 0; r < FM_SCHEDULE_RANGES; r++)
        atomic_init(&s->taken[r], 0);
}

/* The columns of a chunk of p: CHUNK_COLS, or a bf16 product's whole tile when A is stored by
 * rows (its "rows" kernel is 64 wide in the native set: a chunk of 32 would halve its tiles). */
static ptrdiff_t chunk_columns(const fm_product *p)
{
    const int by_columns = p->rsa == 1 && p->csa != 1;
    if (p->bf16 && !by_columns && fm_pairs()->rows.nr > CHUNK_COLS)
        return fm_pairs()->rows.nr;
    return CHUNK_COLS;
}

/* Chunks of a dynamically scheduled product: column panels of chunk_cols, or, for a row split,
 * at least two row blocks per thread and no more than MC_PACKED rows each: e.g. fwd1 (N = 512)
 * is 16 column chunks, 8 per thread of 2. */
static ptrdiff_t chunk_count(const fm_kernel_set *ks, ptrdiff_t M, ptrdiff_t N, int columns,
                             ptrdiff_t chunk_cols, int nth)
{
    if (columns)
        return (N + chunk_cols - 1) / chunk_cols;
    const ptrdiff_t mc = ks->blocks.mc_packed;
    ptrdiff_t per_thread = (M + (ptrdiff_t)nth * mc - 1) / ((ptrdiff_t)nth * mc);
    ptrdiff_t n = (ptrdiff_t)nth * (per_thread > 2 ? per_thread : 2);
    return n < M ? n : M;
}

int fm_gemm_thread(int tid, int nth, fm_schedule *sched, const fm_product *p,
                   const fm_hints *hints)
{
    static const fm_hints none;
    const fm_hints *h = hints != NULL ? hints : &none;
    const fm_kernel_set *ks = fm_kernels();
    const ptrdiff_t M = p->M, N = p->N;
    if (M <= 0 || N <= 0)
        return 0;
    if (nth <= 1)
        return gemm_block(ks, p, h, 0, M, 0, N, NULL);
    const int columns = split_columns(M, N, nth);
    /* Column chunks of a tall packed A would each pack it again: fixed shares instead. */
    if (sched != NULL && !(columns && p->rsa != 1 && M > ks->blocks.mc_packed)) {
        const ptrdiff_t chunk_cols = chunk_columns(p);
        const ptrdiff_t n_chunks = chunk_count(ks, M, N, columns, chunk_cols, nth);
        const int n_ranges = nth < FM_SCHEDULE_RANGES ? nth : FM_SCHEDULE_RANGES;
        int a_ready = 0, failed = 0;
        for (int v = 0; v < n_ranges; v++) {
            const int r = (tid + v) % n_ranges;   /* its own range first, then the others' */
            const ptrdiff_t first = n_chunks * r / n_ranges;
            const ptrdiff_t size = n_chunks * (r + 1) / n_ranges - first;
            for (;;) {
                ptrdiff_t c = atomic_fetch_add_explicit(&sched->taken[r], 1, memory_order_relaxed);
                if (c >= size)
                    break;
                c += first;
                if (columns) {
                    ptrdiff_t n0 = c * chunk_cols, n1 = n0 + chunk_cols < N ? n0 + chunk_cols : N;
                    failed |= gemm_block(ks, p, h, 0, M, n0, n1, &a_ready) != 0;
                } else {
                    ptrdiff_t m0 = M * c / n_chunks, m1 = M * (c + 1) / n_chunks;
                    failed |= gemm_block(ks, p, h, m0, m1, 0, N, NULL) != 0;
                }
            }
        }
        return failed ? -1 : 0;
    }
    ptrdiff_t m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (columns) {
        ptrdiff_t units = (N + 15) / 16;
        n0 = units * tid / nth * 16;
        n1 = units * (tid + 1) / nth * 16;
        if (n1 > N)
            n1 = N;
    } else {
        m0 = M * tid / nth;
        m1 = M * (tid + 1) / nth;
    }
    if (m0 >= m1 || n0 >= n1)
        return 0;
    return gemm_block(ks, p, h, m0, m1, n0, n1, NULL);
}

int fm_product_threads(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, int nth)
{
    double flops = 2.0 * (double)M * (double)N * (double)(K > 0 ? K : 1);
    double cap = flops / 65536.0;
    if (cap < nth)
        nth = cap < 1.0 ? 1 : (int)cap;
    return nth;
}

/* fm_gemm and fm_gemm_bf16: the product of strided operands, in float or bf16. */
static int gemm_strided(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *A, ptrdiff_t rsa,
                        ptrdiff_t csa, const float *B, ptrdiff_t rsb, ptrdiff_t csb, float *C,
                        ptrdiff_t ldc, const fm_epilogue *epi, int bf16)
{
    fm_product p = { .M = M, .N = N, .K = K, .A = A, .rsa = rsa, .csa = csa, .B = B,
                      .rsb = rsb, .csb = csb, .C = C, .ldc = ldc, .epi = *epi,
                      .panels = FM_PANELS_NONE, .bf16 = bf16 };
    return fm_product_run(&p);
}

int fm_gemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
            const float *A, ptrdiff_t rsa, ptrdiff_t csa,
            const float *B, ptrdiff_t rsb, ptrdiff_t csb,
            float *C, ptrdiff_t ldc,
            const fm_epilogue *epi)
{
    return gemm_strided(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, epi, 0);
}

int fm_gemm_bf16(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                 const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                 const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                 float *C, ptrdiff_t ldc,
                 const fm_epilogue *epi)
{
    return gemm_strided(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, epi, 1);
}

/* fm_product_run with the caller's hints (or NULL). */
static int product_run_hinted(const fm_product *p, const fm_hints *h)
{
    if (p->M <= 0 || p->N <= 0)
        return 0;
    fm_dispatch_init();
    int nth = fm_product_threads(p->M, p->N, p->K, fm_get_num_threads());
    if (nth <= 1)
        return fm_gemm_thread(0, 1, NULL, p, h);
    int failed = 0;
#ifdef _OPENMP
    fm_schedule sched;
    fm_schedule_reset(&sched);
    #pragma omp parallel num_threads(nth) reduction(|:failed)
    failed |= fm_gemm_thread(omp_get_thread_num(), omp_get_num_threads(), &sched, p, h) != 0;
#else
    failed = fm_gemm_thread(0, 1, NULL, p, h) != 0;
#endif
    return failed ? -1 : 0;
}

int fm_product_run(const fm_product *p)
{
    return product_run_hinted(p, NULL);
}

int fm_gemm_nonzero_runs(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                         const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                         const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                         float *C, ptrdiff_t ldc,
                         const fm_epilogue *epi, int bf16)
{
    fm_product p = { .M = M, .N = N, .K = K, .A = A, .rsa = rsa, .csa = csa, .B = B,
                      .rsb = rsb, .csb = csb, .C = C, .ldc = ldc, .epi = *epi,
                      .panels = FM_PANELS_NONE, .bf16 = bf16 != 0 };
    ptrdiff_t runs[2 * FM_MAX_RUNS];
    fm_hints h = { 0 };
    if (csa == 1 && M > 0 && K > 0) {
        int n = fm_nonzero_runs(A, M, K, rsa, runs);
        if (n >= 0) {
            h.k_runs = runs;
            h.n_k_runs = n;
        }
    }
    return product_run_hinted(&p, &h);
}

int fm_product_share(const fm_product *p, const fm_hints *h, int tid, int nth,
                     fm_schedule *sched)
{
    int used = fm_product_threads(p->M, p->N, p->K, nth);
    if (tid >= used)
        return 0;
    return fm_gemm_thread(tid, used, sched, p, h);
}
