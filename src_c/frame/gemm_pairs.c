/* gemm_pairs.c - a bf16 product's block (fm_product.bf16; ops/bf16.h says what it computes).
 *
 * The loops are gemm.c's for a packed A and a packed B, over pairs of K's steps instead of
 * steps: for each block of rows, A's pairs are made once into this thread's workspace; for
 * each column tile and K block, B's pairs into a panel of nr words a pair; then the set's
 * pairs kernel runs over the row tiles, and the float epilogue as a float product's would.
 *
 *   A stored by rows (csa == 1, a forward product's input, an input gradient's dZ): each row
 *   becomes a row of pairs, which the "rows" kernel reads in place. A stored by columns
 *   (rsa == 1, the weight gradient's transposed activations): two rows of the activations
 *   become one row of pairs, which the "columns" kernel reads as columns.
 *   B: two rows of B make a row of the panel's pairs; a B whose columns are strided (the
 *   input gradient's transposed weights) has each column made into pairs, then transposed.
 *
 * Threads split C as for a float product (gemm.c), never K; K blocks start at even steps, so
 * every element is one chain of pairs in the same order whatever the blocking or the thread
 * count.
 *
 * Of the hints that leave zeros out, two are taken: k_runs, for A stored by rows, leaves out
 * the pairs with neither step in a run (a batch of digits' blank pixels: about 28% of the
 * first layer's pairs in a batch of 200); A's pairs and B's are packed for the kept pairs
 * alone, one after another. Then each group of PAIR_GROUP_ROWS rows of A, fixed from row 0,
 * also leaves out the pairs zero in all its rows (54% of the pairs in 6 digits): its tiles
 * run the listed kernels over the pairs it keeps. A flushed partial sum can be a negative
 * zero, which a left-out zero pair would not turn positive as a kept one does, so both are
 * part of what the product computes (gemm.h, k_runs; reference.gemm_bf16); the groups are the
 * data's, whatever the tiles, blocks and threads. m_runs leaves out rows of C, as a float
 * product does: a zero row of A sums to +0 however the steps flush, so those are the bits of
 * computing them. The float products' tile lists are not taken. */
#include <stdint.h>
#include <string.h>

#include "frame/gemm_pairs.h"
#include "frame/pack.h"
#include "frame/prefetch.h"
#include "frame/workspace.h"
#include "frame/zero_runs.h"
#include "ops/bf16.h"

enum {
    PAIR_GROUP_ROWS = 6,   /* rows of A that share the pairs they leave out: one tile of the
                              native set (54% of the pairs of 6 digits, 47% of 12: the step
                              2-3% shorter than with 12); the reference's PAIR_GROUP_ROWS */
    LINE_WORDS = 16,   /* rows of pairs in the workspace start on 64-byte lines */
    SUMS_WORDS = 1024, /* an update's sums parked apart from its weights, as gemm.c's */
    A_BLOCK_WORDS = 196608  /* A's pairs of one block of rows: 768 KiB, in a 1 MiB L2 beside B's
                               panel. As many rows as fit (at least the set's mc_packed), so
                               that a thread taking column chunks of a product makes A's pairs
                               once (a_ready) rather than once a chunk */
};

static ptrdiff_t round_up(ptrdiff_t x, ptrdiff_t to)
{
    return (x + to - 1) / to * to;
}

/* The K block in pairs: whole for an update (its C holds the weights), else equal blocks of
 * at most the set's kc. */
static ptrdiff_t pair_block(const fm_kernel_set *ks, ptrdiff_t pairs, const fm_epilogue *epi)
{
    const ptrdiff_t kc = ks->blocks.kc;
    if (epi->kind == FM_EPI_UPDATE || pairs <= kc)
        return pairs;
    ptrdiff_t nblocks = (pairs + kc - 1) / kc;
    return (pairs + nblocks - 1) / nblocks;
}

/* dst[q] = the pair (src[2q*stride], src[(2q+1)*stride]) for k steps: a strided pair_row. */
static void pair_row_strided(const fm_pairs_set *ps, float *dst, const float *src,
                             ptrdiff_t stride, ptrdiff_t k)
{
    if (stride == 1) {
        ps->pair_row(dst, src, k);
        return;
    }
    for (ptrdiff_t q = 0; 2 * q < k; q++) {
        float high = 2 * q + 1 < k ? src[(2 * q + 1) * stride] : 0.0f;
        uint32_t word = fm_bf16_pair(src[2 * q * stride], high);
        dst[q] = fm_bits_float(word);
    }
}

/* tmp[j*nq + q] (j < nb, q < nq) into the panel dst[q*nr + j], zeros for j in [nb, nr). */
static void transpose_pairs(const fm_kernel_set *ks, float *dst, int nr, ptrdiff_t nq, int nb,
                            const float *tmp)
{
    if (ks->pack_bt != NULL)
        ks->pack_bt(dst, nr, nq, nb, tmp, nq);
    else
        fm_pack_b(dst, nr, nq, nb, tmp, 1, nq);
}

/* B's pairs q0 <= q < q0 + nq of columns [jc, jc + nb) into dst[(q - q0)*nr + j], zeros for
 * j in [nb, nr); tmp: room for nb x nq words when B's columns are strided. */
static void pack_b_pairs(const fm_kernel_set *ks, const fm_pairs_set *ps, const fm_product *p,
                         float *dst, int nr, ptrdiff_t q0, ptrdiff_t nq, ptrdiff_t jc, int nb,
                         float *tmp)
{
    const ptrdiff_t K = p->K, k0 = 2 * q0, k1 = 2 * (q0 + nq) < K ? 2 * (q0 + nq) : K;
    if (p->panels == FM_PANELS_BT) {
        /* B(k, j) = B^T(j, k), B^T in column panels: each column of B is runs of k within one
         * panel of B^T, and the panels' edges are even. */
        for (int j = 0; j < nb; j++)
            for (ptrdiff_t r0 = k0; r0 < k1;) {
                ptrdiff_t w;
                const float *src = p->B + fm_panel_start(p->N, K, r0, &w) + (jc + j) * w;
                ptrdiff_t run = w - r0 % FM_PANEL;
                if (run > k1 - r0)
                    run = k1 - r0;
                ps->pair_row(tmp + j * nq + (r0 - k0) / 2, src, run);
                r0 += run;
            }
        transpose_pairs(ks, dst, nr, nq, nb, tmp);
        return;
    }
    const float *base;
    ptrdiff_t rs, cs;
    if (p->panels == FM_PANELS_B) {
        ptrdiff_t w;
        base = p->B + fm_panel_start(K, p->N, jc, &w);
        rs = w;
        cs = 1;
    } else {
        base = p->B + jc * p->csb;
        rs = p->rsb;
        cs = p->csb;
    }
    if (cs == 1) {
        for (ptrdiff_t q = 0; q < nq; q++) {
            const ptrdiff_t k = k0 + 2 * q;
            float *row = dst + q * nr;
            ps->pair_rows(row, base + k * rs, k + 1 < K ? base + (k + 1) * rs : NULL, nb);
            for (int j = nb; j < nr; j++)
                row[j] = 0.0f;
        }
        return;
    }
    for (int j = 0; j < nb; j++)
        pair_row_strided(ps, tmp + j * nq, base + j * cs + k0 * rs, rs, k1 - k0);
    transpose_pairs(ks, dst, nr, nq, nb, tmp);
}

/* Runs of consecutive rows of C, or of pairs of K's steps, in ascending order:
 * [start[s], start[s] + len[s]) for s < n, total of them in all. */
enum { MAX_SPANS = FM_MAX_RUNS + 1 };

typedef struct {
    int n;
    ptrdiff_t total;
    ptrdiff_t start[MAX_SPANS], len[MAX_SPANS];
} spans;

/* A stretch of one run that falls in a window of the runs laid one after another: its first
 * index, its length, and its position in that concatenation. */
typedef struct {
    ptrdiff_t start, len, offset;
} piece;

static void spans_add(spans *s, ptrdiff_t start, ptrdiff_t end)
{
    if (end <= start)
        return;
    if (s->n > 0 && start <= s->start[s->n - 1] + s->len[s->n - 1]) {
        ptrdiff_t last_end = s->start[s->n - 1] + s->len[s->n - 1];
        if (end > last_end) {
            s->total += end - last_end;
            s->len[s->n - 1] = end - s->start[s->n - 1];
        }
        return;
    }
    s->start[s->n] = start;
    s->len[s->n] = end - start;
    s->total += end - start;
    s->n++;
}

/* The pieces of s that fall in positions [c0, c1) of its runs laid one after another, into
 * out (room for MAX_SPANS); returns their number. */
static int span_pieces(const spans *s, ptrdiff_t c0, ptrdiff_t c1, piece *out)
{
    int n = 0;
    ptrdiff_t offset = 0;
    for (int r = 0; r < s->n && offset < c1; r++) {
        const ptrdiff_t lo = c0 > offset ? c0 : offset;
        const ptrdiff_t hi = c1 < offset + s->len[r] ? c1 : offset + s->len[r];
        if (lo < hi)
            out[n++] = (piece){ s->start[r] + (lo - offset), hi - lo, lo };
        offset += s->len[r];
    }
    return n;
}

/* The rows of [m0, m1) to compute: those in the hints' m_runs (the other rows of a plain SGD
 * update whose A is zero there stay as they are: the sums over zero rows of A are +0 whatever
 * the flushing, so the bits are those of computing them), or all of them. */
static void rows_to_compute(const fm_hints *h, ptrdiff_t m0, ptrdiff_t m1, spans *s)
{
    *s = (spans){ 0 };
    if (h == NULL || h->m_runs == NULL || h->n_m_runs > FM_MAX_RUNS) {
        spans_add(s, m0, m1);
        return;
    }
    for (int r = 0; r < h->n_m_runs; r++) {
        const ptrdiff_t lo = h->m_runs[2 * r] > m0 ? h->m_runs[2 * r] : m0;
        const ptrdiff_t hi = h->m_runs[2 * r + 1] < m1 ? h->m_runs[2 * r + 1] : m1;
        spans_add(s, lo, hi);
    }
}

/* The pairs of K's steps to sum: for A stored by rows with the hints' k_runs, each pair with a
 * step in a run (fm_hints.k_runs: a pair with neither is left out); else all of them.
 * Returns 1 when it took the runs. */
static int pairs_to_sum(const fm_hints *h, ptrdiff_t K, int by_columns, spans *s)
{
    *s = (spans){ 0 };
    if (h == NULL || h->k_runs == NULL || by_columns || h->n_k_runs > FM_MAX_RUNS) {
        spans_add(s, 0, (K + 1) / 2);
        return 0;
    }
    for (int r = 0; r < h->n_k_runs; r++)
        spans_add(s, h->k_runs[2 * r] / 2, (h->k_runs[2 * r + 1] + 1) / 2);
    return 1;
}

/* A's rows [ic, ic + mc) as pairs into a: by rows, row i at a + (i - ic)*lda; by columns,
 * pair q of every row at a + q*lda. The pairs are those of `pairs` (all of K's without runs),
 * one after another. */
static void pack_a_pairs(const fm_pairs_set *ps, const fm_product *p, int by_columns, float *a,
                         ptrdiff_t lda, ptrdiff_t ic, ptrdiff_t mc, const spans *pairs)
{
    const ptrdiff_t K = p->K;
    if (by_columns) {
        const float *col = p->A + ic;   /* A(i, k) = A[i + k*csa] */
        for (ptrdiff_t q = 0; 2 * q < K; q++)
            ps->pair_rows(a + q * lda, col + 2 * q * p->csa,
                          2 * q + 1 < K ? col + (2 * q + 1) * p->csa : NULL, mc);
        return;
    }
    for (ptrdiff_t i = 0; i < mc; i++) {
        const float *row = p->A + (ic + i) * p->rsa;
        float *dst = a + i * lda;
        for (int s = 0; s < pairs->n; s++) {
            const ptrdiff_t k0 = 2 * pairs->start[s];
            const ptrdiff_t k1 = 2 * (pairs->start[s] + pairs->len[s]) < K
                                 ? 2 * (pairs->start[s] + pairs->len[s]) : K;
            pair_row_strided(ps, dst, row + k0 * p->csa, p->csa, k1 - k0);
            dst += pairs->len[s];
        }
    }
}

/* B's pairs at positions [c0, c0 + nq) of `pairs` laid one after another, into the panel dst
 * (pack_b_pairs on each stretch of consecutive pairs). */
static void pack_b_kept(const fm_kernel_set *ks, const fm_pairs_set *ps, const fm_product *p,
                        float *dst, int nr, const spans *pairs, ptrdiff_t c0, ptrdiff_t nq,
                        ptrdiff_t jc, int nb, float *tmp)
{
    piece pc[MAX_SPANS];
    const int n = span_pieces(pairs, c0, c0 + nq, pc);
    for (int s = 0; s < n; s++)
        pack_b_pairs(ks, ps, p, dst + (pc[s].offset - c0) * nr, nr, pc[s].start, pc[s].len, jc,
                     nb, tmp);
}

/* The groups' lists of the pairs they keep, made once per block of A: group g (rows
 * [g*PAIR_GROUP_ROWS, ...) of A) has, for each K block kb, the positions among the packed
 * pairs that are nonzero in one of its rows, relative to the block's first pair:
 * pos[start[g][kb] ... start[g][kb + 1]). A group whose lists hold every pair keeps them all
 * and takes no list. */
typedef struct {
    ptrdiff_t first;        /* the block's first group */
    ptrdiff_t n_kblocks;
    ptrdiff_t pairs;        /* the packed pairs: pos entries a group */
    int32_t *pos;
    int32_t *start;         /* n_kblocks + 1 entries a group */
} group_lists;

/* The int32 words of the lists of n_groups groups. */
static ptrdiff_t group_lists_words(ptrdiff_t n_groups, ptrdiff_t pairs, ptrdiff_t n_kblocks)
{
    return n_groups * (pairs + n_kblocks + 1);
}

/* Group g's list (lists->pos etc. at g - lists->first): the kept pairs nonzero (in bf16) in one
 * of its rows. Rows of the block (packed at apairs, row i at apairs + (i - row0)*lda) are
 * read there, the group's other rows packed into `row` first; `seen` holds a word a pair. */
static void make_group_list(const fm_pairs_set *ps, const fm_product *p, const spans *pairs,
                            const float *apairs, ptrdiff_t lda, ptrdiff_t row0, ptrdiff_t row1,
                            ptrdiff_t g, ptrdiff_t kc, group_lists *lists, float *row,
                            uint32_t *seen)
{
    const ptrdiff_t np = pairs->total;
    const ptrdiff_t i0 = g * PAIR_GROUP_ROWS;
    const ptrdiff_t i1 = i0 + PAIR_GROUP_ROWS < p->M ? i0 + PAIR_GROUP_ROWS : p->M;
    for (ptrdiff_t q = 0; q < np; q++)
        seen[q] = 0;
    for (ptrdiff_t i = i0; i < i1; i++) {
        const float *words = row;
        if (i >= row0 && i < row1)
            words = apairs + (i - row0) * lda;
        else
            pack_a_pairs(ps, p, 0, row, lda, i, 1, pairs);
        for (ptrdiff_t q = 0; q < np; q++) {
            uint32_t w;
            memcpy(&w, words + q, sizeof w);
            seen[q] |= w & 0x7FFF7FFFu;   /* a pair of bf16 zeros, of either sign: 0 */
        }
    }
    const ptrdiff_t at = g - lists->first;
    int32_t *pos = lists->pos + at * lists->pairs;
    int32_t *start = lists->start + at * (lists->n_kblocks + 1);
    ptrdiff_t n = 0;
    for (ptrdiff_t kb = 0; kb < lists->n_kblocks; kb++) {
        start[kb] = (int32_t)n;
        const ptrdiff_t q1 = (kb + 1) * kc < np ? (kb + 1) * kc : np;
        for (ptrdiff_t q = kb * kc; q < q1; q++) {   /* without a branch: most are taken */
            pos[n] = (int32_t)(q - kb * kc);
            n += seen[q] != 0;
        }
    }
    start[lists->n_kblocks] = (int32_t)n;
}

/* A tile of mt < mr rows over t's list: the set's listed kernel runs mr rows (those past mt
 * whatever the packed A holds there) into `tile` (row stride nr, C's partial sums copied in
 * first after the first K block), and C's mt rows get the epilogue (last) or the partial sums
 * from it. The epilogue out of line gives the kernel store's bits (ops/epilogue.h). */
static void short_listed_tile(const fm_kernel_set *ks, const fm_tile_kernel *tk, fm_tile t,
                              int mt, int nb, ptrdiff_t nq, const float *a, ptrdiff_t lda,
                              const float *b, int nr, float *c, ptrdiff_t ldc, int last,
                              float *tile)
{
    if (!t.first)
        for (int i = 0; i < mt; i++)
            memcpy(tile + i * nr, c + i * ldc, sizeof(float) * (size_t)nb);
    t.last = 0;
    tk->run(tk->mr, nb, nq, a, lda, 1, b, nr, tile, nr, &t);
    if (last) {
        t.sums = tile;
        t.ld_sums = nr;
        ks->epilogue_tile(&t, mt, nb, c, ldc);
        return;
    }
    for (int i = 0; i < mt; i++)
        memcpy(c + i * ldc, tile + i * nr, sizeof(float) * (size_t)nb);
}

/* The rows from i on that share a list: up to end, or with groups up to the end of i's group,
 * whose list for K block kb goes into t (none when the group keeps every pair). */
static ptrdiff_t rows_sharing_list(const group_lists *lists, ptrdiff_t i, ptrdiff_t end,
                                   ptrdiff_t kb, fm_tile *t)
{
    t->k_list = NULL;
    t->n_k_list = 0;
    if (lists->pos == NULL)
        return end;
    const ptrdiff_t g = i / PAIR_GROUP_ROWS, at = g - lists->first;
    const int32_t *start = lists->start + at * (lists->n_kblocks + 1);
    if (start[lists->n_kblocks] < lists->pairs) {
        t->k_list = lists->pos + at * lists->pairs + start[kb];
        t->n_k_list = start[kb + 1] - start[kb];
    }
    return (g + 1) * PAIR_GROUP_ROWS < end ? (g + 1) * PAIR_GROUP_ROWS : end;
}

int fm_gemm_block_pairs(const fm_kernel_set *ks, const fm_pairs_set *ps, const fm_product *p,
                        const fm_hints *h, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0,
                        ptrdiff_t n1, int *a_ready)
{
    const ptrdiff_t K = p->K;
    const int by_columns = p->rsa == 1 && p->csa != 1;
    const fm_tile_kernel *tk = by_columns ? &ps->columns : &ps->rows;
    const int mr = tk->mr;
    const int in_panels = p->panels == FM_PANELS_B || p->panels == FM_PANELS_C;
    const int nr = in_panels && tk->nr > FM_PANEL ? FM_PANEL : tk->nr;

    /* The rows of C to compute and the pairs of K to sum, each laid one after another in the
     * packed A (all of them without hints). */
    spans row_spans, pair_spans;
    rows_to_compute(h, m0, m1, &row_spans);
    const int took_runs = pairs_to_sum(h, K, by_columns, &pair_spans);
    const ptrdiff_t pairs = pair_spans.total, all_rows = row_spans.total;

    const ptrdiff_t fit = A_BLOCK_WORDS / (pairs > 0 ? pairs : 1);
    const ptrdiff_t mc_max = fit > ks->blocks.mc_packed ? fit : ks->blocks.mc_packed;
    const ptrdiff_t rows = all_rows < mc_max ? all_rows : mc_max;
    const ptrdiff_t kc = pair_block(ks, pairs, &p->epi);
    const ptrdiff_t n_kblocks = kc > 0 ? (pairs + kc - 1) / kc : 1;
    const ptrdiff_t lda = by_columns ? round_up(rows, LINE_WORDS) : round_up(pairs, LINE_WORDS);
    /* the groups leave out pairs where the runs did, over every row of C (no caller gives
     * m_runs with k_runs) */
    const int grouped = took_runs && h->m_runs == NULL;
    /* (a short listed tile reads up to mr rows from its first: room past the block's last) */
    const ptrdiff_t a_words = by_columns ? pairs * lda : (rows + (grouped ? mr : 0)) * lda;
    const ptrdiff_t b_words = round_up(kc * nr, LINE_WORDS);
    const int b_strided = p->panels == FM_PANELS_BT || (p->panels != FM_PANELS_B && p->csb != 1);
    const ptrdiff_t tmp_words = b_strided ? kc * nr : 0;
    /* the lists of the groups of a block of rows (a block starts and ends inside a group at
     * most), then a row of A packed for them and a word a pair seen (lda words each) */
    const ptrdiff_t n_groups = grouped ? rows / PAIR_GROUP_ROWS + 2 : 0;
    const ptrdiff_t lists_words = round_up(group_lists_words(n_groups, pairs, n_kblocks),
                                           LINE_WORDS);
    const ptrdiff_t list_words = grouped ? lists_words + 2 * lda : 0;
    float *ws = fm_thread_workspace(sizeof(float) * (size_t)(a_words + b_words + tmp_words
                                                             + list_words));
    if (ws == NULL)
        return -1;
    float *apairs = ws, *bpanel = ws + a_words, *tmp = bpanel + b_words;
    group_lists lists = { 0 };
    float *group_row = NULL;
    uint32_t *group_seen = NULL;
    if (grouped) {
        int32_t *words = (int32_t *)(tmp + tmp_words);
        lists = (group_lists){ .n_kblocks = n_kblocks, .pairs = pairs,
                               .pos = words, .start = words + n_groups * pairs };
        group_row = (float *)words + lists_words;
        group_seen = (uint32_t *)(group_row + lda);
    }

    const int kernel_epilogue = fm_epilogue_inline(&p->epi);
    _Alignas(64) float sums[SUMS_WORDS];   /* also a short listed tile's */
    const int sums_apart = p->epi.kind == FM_EPI_UPDATE && !kernel_epilogue;
    if ((sums_apart || grouped) && mr * nr > SUMS_WORDS)
        return -1;   /* no pairs set has such a tile */

    for (ptrdiff_t cb = 0; cb < all_rows; cb += mc_max) {
        /* A block: rows [cb, cb + mc) of those to compute, in pieces of consecutive rows */
        const ptrdiff_t mc = all_rows - cb < mc_max ? all_rows - cb : mc_max;
        piece block[MAX_SPANS];
        const int n_pieces = span_pieces(&row_spans, cb, cb + mc, block);
        for (int b = 0; b < n_pieces; b++) {
            const ptrdiff_t at = block[b].offset - cb;   /* the piece's first row in the block */
            if (h != NULL && h->a_not_finite != NULL && p->csa == 1)
                for (ptrdiff_t i = block[b].start; i < block[b].start + block[b].len; i++)
                    if (!ks->all_finite(p->A + i * p->rsa, K))
                        *h->a_not_finite = 1;
            if (a_ready == NULL || !*a_ready)
                pack_a_pairs(ps, p, by_columns, by_columns ? apairs + at : apairs + at * lda, lda,
                             block[b].start, block[b].len, &pair_spans);
        }
        if (grouped) {
            const ptrdiff_t row0 = block[0].start, row1 = row0 + mc;   /* one piece */
            lists.first = row0 / PAIR_GROUP_ROWS;
            if (a_ready == NULL || !*a_ready)
                for (ptrdiff_t g = lists.first; g * PAIR_GROUP_ROWS < row1; g++)
                    make_group_list(ps, p, &pair_spans, apairs, lda, row0, row1, g, kc, &lists,
                                    group_row, group_seen);
        }
        if (a_ready != NULL)
            *a_ready = all_rows <= mc_max;
        for (ptrdiff_t jc = n0; jc < n1;) {
            /* a tile of at most nr columns, inside one panel when an operand is in panels */
            ptrdiff_t end = n1;
            if (in_panels && jc / FM_PANEL * FM_PANEL + FM_PANEL < end)
                end = jc / FM_PANEL * FM_PANEL + FM_PANEL;
            const int nb = (int)(end - jc < nr ? end - jc : nr);
            ptrdiff_t c_start = jc, ldc = p->ldc;
            if (p->panels == FM_PANELS_C) {
                ptrdiff_t width;
                c_start = fm_panel_start(p->M, p->N, jc, &width);
                ldc = width;
            }
            for (ptrdiff_t kb = 0; kb < n_kblocks; kb++) {
                const ptrdiff_t q0 = kb * kc, nq = pairs - q0 < kc ? pairs - q0 : kc;
                pack_b_kept(ks, ps, p, bpanel, nr, &pair_spans, q0, nq, jc, nb, tmp);
                const int last = kb == n_kblocks - 1;
                fm_tile t = { .epi = &p->epi, .j0 = jc, .first = kb == 0,
                              .last = last && kernel_epilogue,
                              .sums = sums_apart ? sums : NULL, .ld_sums = nr };
                for (int b = 0; b < n_pieces; b++) {
                    const ptrdiff_t at = block[b].offset - cb, end = block[b].start + block[b].len;
                    for (ptrdiff_t i = block[b].start; i < end;) {
                        const ptrdiff_t len = rows_sharing_list(&lists, i, end, kb, &t) - i;
                        const ptrdiff_t n_tiles = (len + mr - 1) / mr;
                        for (ptrdiff_t it = 0; it < n_tiles; it++) {
                            const int mt = fm_tile_height(len, n_tiles, it);
                            const ptrdiff_t ia = at + (i - block[b].start);   /* row in the block */
                            float *c = p->C + c_start + i * ldc;
                            t.i0 = i;
                            for (int s = 0; s < FM_OPT_STATES; s++)
                                if (p->epi.kind == FM_EPI_UPDATE && p->epi.state[s] != NULL)
                                    t.state[s] = p->epi.state[s] + c_start + i * ldc;
                            if (last && sums_apart)
                                prefetch_update_tile(&t, c, ldc, mt, nb);
                            const float *a = by_columns ? apairs + q0 * lda + ia
                                                        : apairs + ia * lda + q0;
                            if (t.k_list != NULL && mt < mr) {
                                short_listed_tile(ks, tk, t, mt, nb, nq, a, lda, bpanel, nr, c,
                                                  ldc, last, sums);
                            } else {
                                tk->run(mt, nb, nq, a, by_columns ? 1 : lda,
                                        by_columns ? lda : 1, bpanel, nr, sums_apart ? sums : c,
                                        sums_apart ? nr : ldc, &t);
                                if (last && !kernel_epilogue)
                                    ks->epilogue_tile(&t, mt, nb, c, ldc);
                            }
                            i += mt;
                        }
                    }
                }
            }
            if (p->epi.not_finite != NULL)
                for (int b = 0; b < n_pieces; b++)
                    if (!ks->finite_rows(p->C + c_start + block[b].start * ldc, ldc, block[b].len,
                                         nb))
                        atomic_store_explicit(p->epi.not_finite, 1, memory_order_relaxed);
            jc += nb;
        }
    }
    return 0;
}
