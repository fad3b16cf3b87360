/* count_allocations.c - how many heap allocations fastmlp's steady-state calls make: none.
 *
 * This program defines malloc and its relatives itself, so every allocation in the process
 * (the C library's, libgomp's, fastmlp's, on every thread) passes through a counter before it
 * reaches glibc's own allocator (__libc_malloc and friends: glibc only). It builds the MNIST
 * network, warms each kind of call up with one call (a thread's packing workspace is made on
 * its first large call, OpenMP starts its team on the first parallel region), then counts the
 * allocations of more calls of each kind:
 *   training steps, plain SGD and with momentum, MSE and cross-entropy, in order and on
 *   shuffled rows (fm_train_step, fm_train_step_rows), full and partial batches;
 *   forward passes of 1, 7, 16, 200 and 3000 rows, checked for NaN or not.
 * It prints one line per kind and exits 1 if any made an allocation, 2 if it could not run or
 * its counter did not count.
 *   usage: count_allocations THREADS [REPEATS (20)]   (FASTMLP_ISA picks the instruction set)
 * Built and run by tests/test_no_allocation.py. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/registry.h"
#include "fastmlp.h"
#include "frame/threads.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t count, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t alignment, size_t n);
extern void __libc_free(void *p);

static atomic_int counting;
static atomic_long allocations;

static void count(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}

void *calloc(size_t count_, size_t n)
{
    count();
    return __libc_calloc(count_, n);
}

void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t alignment, size_t n)
{
    count();
    return __libc_memalign(alignment, n);
}

void *memalign(size_t alignment, size_t n)
{
    count();
    return __libc_memalign(alignment, n);
}

int posix_memalign(void **p, size_t alignment, size_t n)
{
    count();
    *p = __libc_memalign(alignment, n);
    return *p != NULL ? 0 : ENOMEM;
}

void free(void *p)
{
    __libc_free(p);
}

/* SAMPLES rows: enough for a pass block by block on up to 3 threads (mlp_step.c). */
enum { LAYERS = 3, BATCH = 200, SAMPLES = 3000 };

static float *filled(size_t n, float scale)
{
    float *p = __libc_memalign(64, (n * sizeof(float) + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = scale * ((float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f);
    return p;
}

/* The calls counted, each kind run `repeats` times after one warm-up call. */
typedef struct {
    fm_net plain, momentum;
    const float *X;
    const int32_t *labels;
    const int64_t *rows;
    float *batch, *out, *scratch[LAYERS - 1];
    int32_t *batch_labels;
} calls;

static int run(const calls *c, int kind)
{
    const fm_optimizer sgd = { .lr = 1e-4f },
                       nesterov = { .lr = 1e-4f, .alpha = 1e-5f, .momentum = 0.9f, .nesterov = 1 };
    double loss;
    switch (kind) {
    case 0: return fm_train_step(&c->plain, BATCH, c->X, c->labels, FM_LOSS_MSE, &sgd, &loss);
    case 1: return fm_train_step(&c->plain, 77, c->X, c->labels, FM_LOSS_CROSS_ENTROPY, &sgd,
                                 &loss);
    case 2: return fm_train_step(&c->momentum, BATCH, c->X, c->labels, FM_LOSS_MSE, &nesterov,
                                 &loss);
    case 3: return fm_train_step_rows(&c->plain, BATCH, c->X, c->labels, SAMPLES, c->rows, c->batch,
                                      c->batch_labels, FM_LOSS_MSE, &sgd, &loss);
    default: break;
    }
    static const ptrdiff_t rows[] = { 1, 7, 16, 200, SAMPLES };
    const int pass = (kind - 4) / 2, check = (kind - 4) % 2;
    const ptrdiff_t M = rows[pass];
    const ptrdiff_t scratch_rows = fm_forward_scratch_rows(&c->plain, M);
    if (check)
        return fm_forward_finite(&c->plain, M, c->X, c->out, c->scratch, scratch_rows);
    return fm_forward(&c->plain, M, c->X, c->out, c->scratch, scratch_rows);
}

static const char *const KINDS[] = {
    "training step, batch 200, MSE", "training step, 77 rows, cross-entropy",
    "training step, Nesterov momentum and L2", "training step on shuffled rows",
    "forward, 1 row", "forward, 1 row, checked", "forward, 7 rows", "forward, 7 rows, checked",
    "forward, 16 rows", "forward, 16 rows, checked", "forward, 200 rows",
    "forward, 200 rows, checked", "forward, 3000 rows", "forward, 3000 rows, checked",
};
enum { N_KINDS = sizeof KINDS / sizeof KINDS[0] };

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s THREADS [REPEATS]\n", argv[0]);
        return 2;
    }
    fm_set_num_threads(atoi(argv[1]));
    const int repeats = argc == 3 ? atoi(argv[2]) : 20;
    const char *isa = getenv("FASTMLP_ISA");
    if (isa != NULL && fm_isa_set(isa) != 0) {
        fprintf(stderr, "instruction set %s unknown or unsupported\n", isa);
        return 2;
    }

    static const ptrdiff_t sizes[LAYERS + 1] = { 784, 512, 256, 10 };
    float *W[LAYERS], *b[LAYERS], *vW[LAYERS], *vb[LAYERS], *act[LAYERS], *grad[LAYERS];
    float *W2[LAYERS], *b2[LAYERS], *act2[LAYERS], *grad2[LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        size_t weights = (size_t)(sizes[l] * sizes[l + 1]), width = (size_t)sizes[l + 1];
        W[l] = filled(weights, 0.1f);
        b[l] = filled(width, 0.01f);
        W2[l] = filled(weights, 0.1f);
        b2[l] = filled(width, 0.01f);
        vW[l] = filled(weights, 0.001f);
        vb[l] = filled(width, 0.001f);
        act[l] = filled(BATCH * width, 1.0f);
        grad[l] = filled(BATCH * width, 1.0f);
        act2[l] = filled(BATCH * width, 1.0f);
        grad2[l] = filled(BATCH * width, 1.0f);
    }
    calls c;
    c.plain = (fm_net){ .n_layers = LAYERS, .sizes = sizes, .W = W, .b = b, .act = act,
                        .grad = grad };
    c.momentum = (fm_net){ .n_layers = LAYERS, .sizes = sizes, .W = W2, .b = b2,
                           .state_W = { vW }, .state_b = { vb }, .act = act2, .grad = grad2 };
    float *X = filled((size_t)SAMPLES * 784, 1.0f);
    for (size_t i = 0; i < (size_t)SAMPLES * 784; i += 3)
        X[i] = 0.0f;                  /* zeros, so that passes skip some inputs */
    for (size_t i = 0; i < (size_t)SAMPLES * 784; i += 784)
        memset(X + i, 0, sizeof(float) * 100);   /* a blank border: zero columns, so that the
                                                    first layer's tiles list their steps */
    c.X = X;
    int32_t *labels = __libc_malloc(sizeof(int32_t) * SAMPLES);
    int64_t *rows = __libc_malloc(sizeof(int64_t) * BATCH);
    c.batch_labels = __libc_malloc(sizeof(int32_t) * BATCH);
    if (labels == NULL || rows == NULL || c.batch_labels == NULL)
        return 2;
    for (int i = 0; i < SAMPLES; i++)
        labels[i] = (i * 7) % 10;
    for (int i = 0; i < BATCH; i++)
        rows[i] = (i * 37) % SAMPLES;
    c.labels = labels;
    c.rows = rows;
    c.batch = filled((size_t)BATCH * 784, 1.0f);
    c.out = filled((size_t)SAMPLES * 10, 1.0f);
    c.scratch[0] = filled((size_t)SAMPLES * 512, 1.0f);
    c.scratch[1] = filled((size_t)SAMPLES * 256, 1.0f);

    /* The counter must see an allocation, or it counts nothing at all (called through a
     * volatile pointer, which the compiler cannot pair with the free and leave out). */
    void *(*volatile allocate)(size_t) = malloc;
    atomic_store(&counting, 1);
    free(allocate(64));
    atomic_store(&counting, 0);
    if (atomic_load(&allocations) != 1) {
        fprintf(stderr, "a malloc counted %ld times: not counting\n", atomic_load(&allocations));
        return 2;
    }
    /* The very first call makes the packing workspaces and starts the OpenMP team. */
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    int status = run(&c, 0);
    atomic_store(&counting, 0);
    printf("first call (workspaces made, threads started): %ld allocations\n",
           atomic_load(&allocations));
    if (status != 0) {
        fprintf(stderr, "the first call failed\n");
        return 2;
    }

    int failed = 0;
    for (int kind = 0; kind < N_KINDS; kind++) {
        if (run(&c, kind) != 0) {                     /* the warm-up call */
            fprintf(stderr, "%s failed\n", KINDS[kind]);
            return 2;
        }
        atomic_store(&allocations, 0);
        atomic_store(&counting, 1);
        status = 0;
        for (int r = 0; r < repeats; r++)
            status |= run(&c, kind);
        atomic_store(&counting, 0);
        long n = atomic_load(&allocations);
        printf("%s: %ld allocations in %d calls%s\n", KINDS[kind], n, repeats,
               status != 0 ? " (a call failed)" : "");
        failed |= n != 0 || status != 0;
    }
    return failed ? 1 : 0;
}
