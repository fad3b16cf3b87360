/* dropout.h - inverted dropout's masks: which units of a hidden layer's output a training step
 * drops. A unit's mask is a function of its place alone, (seed, step, layer, row of the batch,
 * column), so it never depends on the thread, the tile or the instruction set that computes it.
 *
 * The generator is Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011; Random123's philox.h, checked against its tests/kat_vectors in
 * tests/test_dropout.py): a 64-bit key and a 128-bit counter give four 32-bit words through ten
 * rounds of two 32 x 32 -> 64-bit multiplications and xors. The key is the seed; the counter
 * (column / 4, row, layer, step), and a unit takes word column % 4 of its counter's four. It is
 * dropped when that word is below threshold = floor(p 2^32), kept and scaled by 1 / (1 - p)
 * otherwise (inverted dropout, as Keras and PyTorch do). fastmlp/reference.py computes the same
 * words in NumPy. Plain C: integers give the same bits everywhere.
 */
#ifndef FASTMLP_DROPOUT_H
#define FASTMLP_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

/* One layer's dropout in one training step. */
typedef struct {
    uint32_t threshold;   /* a unit is dropped when its word is below: floor(p 2^32) */
    float scale;          /* a kept unit's factor: 1 / (1 - p), rounded to float */
    uint32_t key[2];      /* the seed, low word first */
    uint32_t layer;       /* the hidden layer, from 0 */
    uint32_t step;        /* the training step's number (mod 2^32) */
    ptrdiff_t row0;       /* the batch row of the product's row 0 (a thread's rows) */
} fm_dropout;

/* Philox4x32-10: out = the four words of counter ctr under key. */
static inline void fm_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;   /* the multipliers */
    const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;   /* the key's step between rounds */
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        const uint64_t p0 = (uint64_t)M0 * c0, p1 = (uint64_t)M1 * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += W0;
        k1 += W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The words of the n_groups counters (g0 + g, row, d->layer, d->step), g < n_groups, to
 * word[4 g ..]: each counter's four words in a row. One loop of independent counters, which a
 * compiler may run several to a vector: integers, the same words either way. */
static inline void fm_dropout_words(const fm_dropout *d, uint32_t row, uint32_t g0, int n_groups,
                                    uint32_t *word)
{
    for (int g = 0; g < n_groups; g++) {
        const uint32_t ctr[4] = { g0 + (uint32_t)g, row, d->layer, d->step };
        fm_philox4x32(ctr, d->key, word + 4 * g);
    }
}

/* The factors of n units of row `row` (of the product: d->row0 + row in the batch) from column
 * col: 0 for a dropped unit, d->scale for a kept one. */
static inline void fm_dropout_factors(const fm_dropout *d, ptrdiff_t row, ptrdiff_t col, int n,
                                      float *factor)
{
    enum { GROUPS = 16 };   /* counters a pass: 64 units */
    uint32_t word[4 * GROUPS];
    const uint32_t r = (uint32_t)(d->row0 + row);
    for (int j = 0; j < n;) {
        const ptrdiff_t c = col + j, g0 = c >> 2;
        const int skip = (int)(c & 3);   /* the first counter's words before column c */
        const int take = n - j < 4 * GROUPS - skip ? n - j : 4 * GROUPS - skip;
        fm_dropout_words(d, r, (uint32_t)g0, (skip + take + 3) / 4, word);
        for (int u = 0; u < take; u++)
            factor[j + u] = word[skip + u] >= d->threshold ? d->scale : 0.0f;
        j += take;
    }
}

#endif
