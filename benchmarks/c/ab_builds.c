/* ab_builds.c - two builds of src_c/ timed against each other in one process, alternated.
 *
 * On a shared machine the load drifts by 10-50% from one minute to the next, far more than a
 * change worth making; two processes run one after the other compare two different machines.
 * Here both builds (shared libraries, each loaded with RTLD_LOCAL so their symbols stay apart)
 * run in the same process, round by round, the order swapped every round, and each round's
 * ratio compares two measurements taken a few milliseconds apart. The median of those ratios,
 * with its interquartile range, is the result.
 *
 *   usage: ab_builds WHAT THREADS ROUNDS LIB_A LIB_B
 *     WHAT  step    fm_train_step on the MNIST network (784-512-256-10, batch 200, MSE, SGD),
 *                   10 steps per measurement, each on the next 200 rows of a 60,000-row array
 *           fROWS   fm_forward of ROWS rows (e.g. f10000)
 *   FASTMLP_ISA picks the instruction set of both builds (default: the best the CPU has).
 *   AB_PRECISION=bf16 runs both builds' products in bf16 (fm_net.bf16); AB_PRECISION=fp32,bf16
 *   runs A in float and B in bf16 (give the same library twice to time the two precisions).
 *   AB_SIZES=784,100,10 gives the network's widths, input first (default the tutorial's);
 *   AB_OPTIMIZER=adam steps with Adam (beta_1 0.9, beta_2 0.999, epsilon 1e-8, its rate computed
 *   each step as the binding does) instead of plain SGD; AB_SHUFFLE=1 trains on shuffled
 *   batches as a fit does (fm_train_step_rows: the team gathers each batch's rows first).
 *   AB_INPUT=FILE takes the input rows from FILE, raw float32, 784 a row (at least 60,000 rows
 *   for steps, ROWS for a pass), instead of the dense pattern: e.g. MNIST's digits, written by
 *     python -c "import fastmlp as f; (x, _), _ = f.datasets.load_mnist();
 *                (x.reshape(-1, 784) / 255).astype('float32').tofile('/tmp/digits.f32')"
 *
 * Both builds must share fastmlp.h's fm_net and the signatures used here (unchanged since the
 * network step was added). `make ab BASE=<commit>` builds the base from git and runs this.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fastmlp.h"
#include "bench_util.h"

typedef int (*train_step_fn)(const fm_net *, ptrdiff_t, const float *, const int32_t *, int,
                             const fm_optimizer *, double *);
typedef int (*train_step_rows_fn)(const fm_net *, ptrdiff_t, const float *, const int32_t *,
                                  ptrdiff_t, const int64_t *, float *, int32_t *, int,
                                  const fm_optimizer *, double *);
typedef int (*forward_fn)(const fm_net *, ptrdiff_t, const float *, float *, float *const *,
                          ptrdiff_t);
typedef ptrdiff_t (*scratch_rows_fn)(const fm_net *, ptrdiff_t);
typedef void (*set_threads_fn)(int);
typedef int (*isa_set_fn)(const char *);
typedef const char *(*isa_name_fn)(void);

typedef struct {
    train_step_fn train_step;
    train_step_rows_fn train_step_rows;
    forward_fn forward;
    scratch_rows_fn scratch_rows;
    isa_name_fn isa_name;
} build;

enum { MAX_ROUNDS = 1000, STEPS = 10, SAMPLES = 60000, BATCH = BENCH_BATCH, MAX_SCRATCH_ROWS = 4096 };

static int load(const char *path, const char *isa, int threads, build *b)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return -1;
    }
    b->train_step = (train_step_fn)dlsym(h, "fm_train_step");
    b->train_step_rows = (train_step_rows_fn)dlsym(h, "fm_train_step_rows");
    b->forward = (forward_fn)dlsym(h, "fm_forward");
    b->scratch_rows = (scratch_rows_fn)dlsym(h, "fm_forward_scratch_rows");
    b->isa_name = (isa_name_fn)dlsym(h, "fm_isa_name");
    isa_set_fn isa_set = (isa_set_fn)dlsym(h, "fm_isa_set");
    set_threads_fn set_threads = (set_threads_fn)dlsym(h, "fm_set_num_threads");
    if (!b->train_step || !b->train_step_rows || !b->forward || !b->scratch_rows || !b->isa_name
        || !isa_set || !set_threads) {
        fprintf(stderr, "%s lacks a symbol this harness needs\n", path);
        return -1;
    }
    if (isa != NULL && isa_set(isa) != 0) {
        fprintf(stderr, "%s: isa %s unknown or unsupported\n", path, isa);
        return -1;
    }
    set_threads(threads);
    return 0;
}

/* Reads n rows of 784 floats from the raw float32 file at path into X. */
static int read_rows(const char *path, float *X, ptrdiff_t n)
{
    FILE *f = fopen(path, "rb");
    size_t got = f != NULL ? fread(X, sizeof(float) * 784, (size_t)n, f) : 0;
    if (f != NULL)
        fclose(f);
    if (got != (size_t)n) {
        fprintf(stderr, "%s: could not read %td rows of 784 floats\n", path, n);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s step|fROWS THREADS ROUNDS LIB_A LIB_B\n", argv[0]);
        return 2;
    }
    const int step = argv[1][0] == 's';
    const ptrdiff_t rows = step ? 0 : atol(argv[1] + 1);
    const int threads = atoi(argv[2]);
    int rounds = atoi(argv[3]);
    rounds = rounds < 2 ? 2 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    const char *isa = getenv("FASTMLP_ISA");   /* NULL: each build picks the best */
    build builds[2];
    if (load(argv[4], isa, threads, &builds[0]) != 0 || load(argv[5], isa, threads, &builds[1]) != 0)
        return 1;
    if (!step && rows < 1) {
        fprintf(stderr, "fROWS needs ROWS >= 1\n");
        return 2;
    }

    static bench_mnist m;
    ptrdiff_t sizes[BENCH_MAX_LAYERS + 1];
    const int n_layers = bench_sizes("AB_SIZES", sizes);
    bench_net_make(&m, rows > SAMPLES ? rows : SAMPLES, sizes, n_layers);   /* rows is 0 for steps */
    if (getenv("AB_INPUT") != NULL && sizes[0] != 784) {
        fprintf(stderr, "AB_INPUT holds rows of 784: AB_SIZES must start with 784\n");
        return 2;
    }
    fm_optimizer opt = { .lr = 1e-5f };
    const char *rule = getenv("AB_OPTIMIZER");
    if (rule != NULL && strcmp(rule, "adam") == 0) {
        opt = bench_adam;
        bench_give_adam_state(&m);
    } else if (rule != NULL && strcmp(rule, "sgd") != 0) {
        fprintf(stderr, "AB_OPTIMIZER: sgd or adam\n");
        return 2;
    }
    long adam_t = 0;
    /* AB_SHUFFLE: the samples in an order of their own (a fixed full-cycle walk), batch by
     * batch, and the buffers a batch is gathered into. */
    const int shuffle = getenv("AB_SHUFFLE") != NULL && strcmp(getenv("AB_SHUFFLE"), "0") != 0;
    int64_t *order = malloc(sizeof(int64_t) * SAMPLES);
    float *batch = bench_pattern((size_t)BATCH * (size_t)sizes[0], 1.0f);
    int32_t *batch_labels = malloc(sizeof(int32_t) * BATCH);
    if (order == NULL || batch_labels == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (ptrdiff_t i = 0; i < SAMPLES; i++)
        order[i] = (int64_t)((i * 7919) % SAMPLES);   /* 7919 is prime, coprime to 60,000 */
    if (getenv("AB_INPUT") != NULL && read_rows(getenv("AB_INPUT"), m.X, step ? SAMPLES : rows) != 0)
        return 1;
    int bf16[2] = { 0, 0 };   /* each build's precision */
    const char *precision = getenv("AB_PRECISION");
    if (precision != NULL) {
        const char *comma = strchr(precision, ',');
        bf16[0] = precision[0] == 'b';
        bf16[1] = comma != NULL ? comma[1] == 'b' : bf16[0];
    }
    const fm_net *net = &m.net;
    float *out = bench_pattern((size_t)(rows > 0 ? rows : 1) * (size_t)sizes[n_layers], 1.0f);
    float *scratch[BENCH_MAX_LAYERS];
    for (int l = 0; l < n_layers; l++)
        scratch[l] = bench_pattern((size_t)MAX_SCRATCH_ROWS * (size_t)sizes[l + 1], 1.0f);
    const int reps = step ? STEPS : rows >= 1000 ? 1 : 200;
    ptrdiff_t next = 0;

    static double t[2][MAX_ROUNDS], ratio[MAX_ROUNDS];
    for (int r = -2; r < rounds; r++) {           /* two rounds of warm-up */
        for (int h = 0; h < 2; h++) {
            const int v = (r & 1) ? 1 - h : h;      /* swap the order every round */
            const build *bd = &builds[v];
            m.net.bf16 = bf16[v];
            ptrdiff_t scratch_rows = step ? 0 : bd->scratch_rows(net, rows);
            if (scratch_rows > MAX_SCRATCH_ROWS) {
                fprintf(stderr, "scratch of %td rows asked for\n", scratch_rows);
                return 1;
            }
            double loss, t0 = bench_now();
            for (int s = 0; s < reps; s++) {
                int status;
                if (step) {
                    if (opt.rule == FM_OPT_ADAM)
                        bench_adam_rate(&opt, ++adam_t);
                    if (shuffle)
                        status = bd->train_step_rows(net, BATCH, m.X, m.labels, SAMPLES,
                                                     order + next, batch, batch_labels, 0, &opt,
                                                     &loss);
                    else
                        status = bd->train_step(net, BATCH, m.X + next * sizes[0],
                                                m.labels + next, 0, &opt, &loss);
                    next = (next + BATCH) % SAMPLES;
                } else {
                    status = bd->forward(net, rows, m.X, out, scratch, scratch_rows);
                }
                if (status != 0) {
                    fprintf(stderr, "build %d failed\n", v);
                    return 1;
                }
            }
            if (r >= 0)
                t[v][r] = (bench_now() - t0) / reps;
        }
    }
    for (int r = 0; r < rounds; r++)
        ratio[r] = t[1][r] / t[0][r];
    qsort(ratio, (size_t)rounds, sizeof(double), bench_cmp_double);
    qsort(t[0], (size_t)rounds, sizeof(double), bench_cmp_double);
    qsort(t[1], (size_t)rounds, sizeof(double), bench_cmp_double);
    printf("%s, %s, %d thread%s, %d rounds: A %.1f us, B %.1f us (medians); "
           "B/A per round: median %.3f, quartiles %.3f-%.3f\n",
           step ? "train step" : argv[1], builds[0].isa_name(), threads, threads == 1 ? "" : "s", rounds,
           t[0][rounds / 2] * 1e6, t[1][rounds / 2] * 1e6, ratio[rounds / 2],
           ratio[rounds / 4], ratio[3 * rounds / 4]);
    return 0;
}
