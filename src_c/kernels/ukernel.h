/* ukernel.h - the micro-kernel contract: the only code in fastmlp that knows an instruction set.
 *
 * (Written once, in the manner of BLIS's docs/KernelsHowTo.md.)
 *
 * A micro-kernel computes one tile of C, at most MR rows by NR columns, held in registers:
 *
 *     for i < m, j < n:
 *         acc(i,j) = first ? 0.0f : C(i,j)                     (C(i,j) = c[i*ldc + j])
 *         for p = 0, 1, ..., k-1 (ascending), or only the p in the tile's runs, or in its list:
 *             acc(i,j) = fmaf(A(i,p), B(p,j), acc(i,j))
 *         C(i,j) = last ? epilogue(acc(i,j)) : acc(i,j)
 *
 *     A(i,p) = a[i*rsa + p*csa]     any strides: A is read in place, never packed
 *     B(p,j) = b[p*rsb + j]         unit column stride: a packed panel (rsb = NR) or the caller's
 *                                   row-major B; columns j >= n are never read
 *
 * m may be anything in 1..MR and n anything in 1..NR: the kernel handles edge tiles itself
 * (AVX-512 with mask registers, AVX2 with masked loads and stores, generic with loop bounds),
 * and reads or writes nothing outside the m x n tile of A rows, B columns, C, mask and state.
 * k may be 0 (then acc is 0 or the parked C). The runs (fm_tile) skip steps p where A is zero
 * in every row (zero_runs.h), which leaves the result's bits as they are; so does a list, which
 * the frame gives to the row kernel (one row, whose zeros may be scattered) and to the columns
 * kernel (the steps where one of the tile's rows is not zero: fm_product.tile_steps), and, in
 * the sets that say so (wide_lists), to the wide kernel.
 *
 * first = 0 / last = 0 let the frame split K into blocks: a partial sum is parked in C between
 * blocks. Float stores are exact, so the chain and its result are the same as without the split.
 * The frame never splits K for FM_EPI_UPDATE, whose C holds the weights.
 *
 * The epilogue is gemm.h's fm_epilogue, applied to the tile whose top-left element is C(i0, j0)
 * of the whole product: bias[j0 + j], mask[(i0 + i)*ldm + j0 + j], and the update rule's
 * state state[s][i*ldc + j] (state[s]: the element of state buffer s that pairs with c[0], so
 * the state has C's layout, whether C is row-major or in column panels). Every kernel
 * applies ops/epilogue.h, written once over the vector interface (vec.h), so every kernel
 * gives bit-identical results. A kernel is given only the epilogues it applies in its store
 * (fm_epilogue_inline, gemm.h); for the others the frame gives it last = 0, then runs the
 * set's epilogue_tile over the finished tile while it is in L1.
 *
 * Kernels are plain functions; the table fm_kernel_set below tells the frame (gemm.c) their MR
 * and NR. "wide" is the workhorse; "columns" is its shape for A stored by columns (rsa == 1,
 * the weight gradient), where a taller tile reads A in longer runs; "narrow" is the same
 * computation specialised for n <= 16 with more rows (the 10-wide output layer, where a wide
 * tile would waste most of its lanes); "row" is a single row (a one-sample forward pass), wide
 * enough to run as many independent chains as a full tile. All honour the contract for any
 * strides.
 * pack_bt is a packing routine (as BLIS's packm kernels): a transposing copy, which portable C
 * does at a fraction of the speed of in-register transposes. pack_a is its counterpart for A:
 * when a set offers it, the frame copies A stored by rows into column panels of columns.mr
 * rows and runs the "columns" kernel on them, which is faster than "wide" on A read in place.
 */
#ifndef FASTMLP_UKERNEL_H
#define FASTMLP_UKERNEL_H

#include <stddef.h>

#include "frame/gemm.h"

typedef struct {
    const fm_epilogue *epi;  /* the whole product's epilogue */
    ptrdiff_t i0, j0;        /* the tile's top-left element in the whole product */
    float *state[FM_OPT_STATES]; /* FM_EPI_UPDATE: each state buffer's element at c[0], or NULL */
    int first;               /* 1: acc starts at 0; 0: acc starts at the partial parked in C */
    int last;                /* 1: apply the epilogue; 0: park acc in C */
    const ptrdiff_t *runs;   /* NULL: p runs over 0..k-1; else over the n_runs runs */
    int n_runs;              /* [runs[2r], runs[2r+1]) within [0, k), ascending */
    const int32_t *k_list;   /* NULL, or (the row and columns kernels) p takes these n_k_list */
    int n_k_list;            /* values alone, ascending, within [0, k); runs are then unused */
    const float *sums;       /* epilogue_tile: NULL when the sums are parked in C, else where
                                the kernel parked them, row stride ld_sums (an update out of
                                line: its C holds the weights) */
    ptrdiff_t ld_sums;
} fm_tile;

/* The epilogue over a finished m x n tile whose sums are parked in C, or in t->sums
 * (ops/epilogue.h). */
typedef void (*fm_epilogue_tile_fn)(const fm_tile *t, int m, int n, float *c, ptrdiff_t ldc);

typedef void (*fm_ukernel_fn)(int m, int n, ptrdiff_t k,
                              const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                              const float *b, ptrdiff_t rsb,
                              float *c, ptrdiff_t ldc, const fm_tile *t);

/* zero_runs.h's fm_nonzero_list: the same list and count, whatever the instruction set. */
typedef int (*fm_nonzero_list_fn)(const float *x, ptrdiff_t K, int32_t *list);

/* zero_runs.h's fm_tile_steps, for m <= mr_columns: the same list and count, whatever the
 * instruction set. */
typedef int (*fm_tile_steps_fn)(const float *a, ptrdiff_t csa, int m, ptrdiff_t k,
                                int32_t *list);

/* fastmlp.h's fm_all_finite: whether none of the n floats at x is NaN or infinite. */
typedef int (*fm_all_finite_fn)(const float *x, ptrdiff_t n);

/* Optional packing of a transposed B (rsb == 1): the same result as pack.h's fm_pack_b(dst, nr,
 * kc, n, src, 1, csb), i.e. dst[p*nr + j] = src[j*csb + p] for j < n, zeros up to nr. */
typedef void (*fm_pack_bt_fn)(float *dst, int nr, ptrdiff_t kc, int n,
                              const float *src, ptrdiff_t csb);

/* Optional packing of up to mr_columns rows of A stored by rows (A(i,p) = src[i*rsa + p], i < m)
 * into one column panel: dst[p*mr_columns + i] for p < k, with rows m..mr_columns-1 zero. */
typedef void (*fm_pack_a_fn)(float *dst, int m, ptrdiff_t k, const float *src, ptrdiff_t rsa);

/* One tile shape of a set: its kernel computes tiles of at most mr x nr. */
typedef struct {
    int mr, nr;
    fm_ukernel_fn run;
} fm_tile_kernel;

/* The frame's blocking for a set (frame/gemm.c), tuned with the set's kernels, in the manner of
 * BLIS's per-architecture configs. */
typedef struct {
    int kc;                /* K block when B is packed: a kc x nr panel stays in L1 */
    int kc_panels;         /* K block when B is read in place from column panels */
    int mc_packed;         /* rows of A a block when A is packed: the block stays in L2 */
    int mc_in_place;       /* rows of A a block when A is read in place */
    int pack_a_min_rows;   /* A stored by rows is packed when at least this many rows reuse it */
    int pack_b_min_tiles;  /* a row-major B panel is packed when this many row tiles reuse it */
    int prefetch_update;   /* nonzero: an out-of-line update (Adam) asks for each tile's weights
                              and state in L2 before its kernel runs (frame/prefetch.h) */
} fm_blocksizes;


/* Steps of each probe burst (kernels/probe.h). */
enum { FM_PROBE_BURST = 4096 };

/* A set's FMA throughput probe (kernels/peak.c): run(bursts) makes bursts x FM_PROBE_BURST
 * steps of flops_per_step flops. */
typedef struct {
    float (*run)(long bursts);
    int flops_per_step;
} fm_probe;

/* pairs.h's packing: dst[j] = the bf16 pair (r0[j], r1[j]) for j < n (r1 NULL: a zero high
 * half), and dst[q] = the pair (src[2q], src[2q + 1]) for q < (k + 1) / 2 (ops/bf16.h). */
typedef void (*fm_pair_rows_fn)(float *dst, const float *r0, const float *r1, ptrdiff_t n);
typedef void (*fm_pair_row_fn)(float *dst, const float *src, ptrdiff_t k);

/* A set's bf16 products (kernels/pairs.h, frame/gemm_pairs.c): tiles whose k steps are pairs
 * of bf16 (A and B hold a pair in each float's place), and the packing that makes the pairs. */
typedef struct {
    const char *name;           /* e.g. "avx512_bf16 (VDPBF16PS)", "avx2 (emulated)" */
    int native;                 /* 1: the CPU's bf16 instructions; 0: their exact emulation */
    fm_tile_kernel rows;        /* A in rows of pairs (csa == 1) */
    fm_tile_kernel columns;     /* A in columns of pairs (rsa == 1) */
    fm_pair_rows_fn pair_rows;
    fm_pair_row_fn pair_row;
    fm_probe probe;             /* its throughput (kernels/probe.h, peak_probe_pairs) */
} fm_pairs_set;

typedef struct {
    const char *name;           /* "generic", "avx2", "avx512" */
    fm_tile_kernel wide;        /* the workhorse, A read in place */
    fm_tile_kernel columns;     /* A stored by columns (rsa == 1), or packed by pack_a */
    fm_tile_kernel narrow;      /* n <= narrow.nr: more rows a tile (a 10-wide output layer) */
    int mr_narrow_rows;         /* the narrow kernel's best height when A is stored by rows */
    fm_tile_kernel row;         /* one row (m == 1), at most row.nr columns */
    fm_epilogue_tile_fn epilogue_tile;  /* the epilogues the kernels leave out
                                           (fm_epilogue_inline), over a finished tile */
    int (*finite_rows)(const float *c, ptrdiff_t ldc, ptrdiff_t m, int n);  /* ops/epilogue.h */
    fm_pack_bt_fn pack_bt;      /* NULL: the portable fm_pack_b */
    fm_pack_a_fn pack_a;        /* NULL: A stored by rows goes to "wide", read in place */
    fm_nonzero_list_fn nonzero_list;   /* a one-row pass's lists of steps (nn/mlp_step.c) */
    fm_tile_steps_fn tile_steps;       /* a columns tile's list of steps (gemm.h: tile_steps) */
    fm_all_finite_fn all_finite;       /* a prediction's input check (gemm.h: a_not_finite) */
    int wide_lists;             /* nonzero: "wide" follows a tile's list too, so the frame lists
                                   A stored by rows and read in place (gemm.h: tile_steps) */
    fm_blocksizes blocks;
    fm_probe probe;
    const fm_pairs_set *pairs;  /* bf16 products, emulated with the set's FMAs (NULL: the
                                   registry's choice, registry.h's fm_pairs) */
} fm_kernel_set;

/* One table per instruction set; each lives in its own translation unit (kernels/<isa>.c),
 * compiled for that instruction set. Use one only after registry.h says the CPU has it. */
extern const fm_kernel_set fm_kernels_generic;
extern const fm_kernel_set fm_kernels_avx2;
extern const fm_kernel_set fm_kernels_avx512;
/* VDPBF16PS (AVX512_BF16): the avx512 set's bf16 products on CPUs that have it. */
extern const fm_pairs_set fm_pairs_avx512_bf16;

#endif
