/* step_bench.c - the training step and a 10,000-row forward pass as % of the peak measured
 * next to them, on 1 and 2 threads.
 *
 * On a shared machine the FMA throughput a core gets moves by 10-50% from one second to the
 * next, so a peak probed once and a step timed a minute later compare two different machines.
 * Here every measurement is bracketed by two short peak probes on the same thread count, and
 * each round's efficiency is the measurement's GFLOP/s over the mean of its two probes; the
 * median of those per-round efficiencies, with quartiles, is the result. The thread counts
 * alternate within each round (order swapped every round), so 2T/1T is also taken per round.
 *
 * What is timed is the package's own entry points (fm_train_step: one parallel region, loss
 * and bias updates included; fm_forward), on the MNIST network 784-512-256-10, MSE and SGD,
 * 10 consecutive steps per measurement, each on the next 200 rows of a 60,000-row array,
 * after one untimed step (an epoch's steps follow one another; these follow other work).
 * The flops counted are the products' only (481.5 MFLOP a step), as in the issue.
 *
 * A third measurement bounds what any way of splitting one step over two threads could gain:
 * two 1-thread steps at once, one per thread, each on a network of its own (nothing shared,
 * no barrier; its time a step is the inverse of the steps both threads make per second),
 * against the same 2-thread probes.
 * What they lose against one 1-thread step alone is the machine's (two cores on shared caches
 * and memory); what the 2-thread step loses against them is the split's.
 *
 *   usage: step_bench [ROUNDS]        FASTMLP_ISA picks the instruction set (default: best)
 *   STEP_ACTIVATION=tanh: the hidden layers' activation (default relu, the tutorial's);
 *   STEP_OPTIMIZER=adam: Adam's steps (beta_1 0.9, beta_2 0.999, epsilon 1e-8, its rate
 *   computed each step as the binding does) instead of plain SGD. The flops counted are the
 *   same: the products'.
 *   STEP_SIZES=784,100,10: the network's widths, input first (default the tutorial's);
 *   STEP_PRECISION=bf16: every product in bf16 (fm_net.bf16), against the bf16 peak probed
 *   around it (fm_peak_gflops_bf16) instead of the FP32 one.
 *   STEP_ONLY=2: nothing but ROUNDS training steps on that many threads, their mean time and
 *   the threads' round trip printed after: a run for `perf record`, without the probes.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/registry.h"
#include "fastmlp.h"
#include "kernels/peak.h"
#include "frame/threads.h"
#include "bench_util.h"

enum { MAX_ROUNDS = 500, STEPS = 10, SAMPLES = 60000, BATCH = BENCH_BATCH, FORWARD_ROWS = 10000 };

static const double PROBE_SECONDS = 0.02;

typedef struct {
    double t[MAX_ROUNDS];      /* seconds per call */
    double eff[MAX_ROUNDS];    /* GFLOP/s over the bracketing probes' mean */
    double peak[MAX_ROUNDS];   /* that mean */
} series;

typedef struct {
    const fm_net *net;
    const float *X;
    const int32_t *labels;
    float *out;
    float *const *scratch;
    ptrdiff_t scratch_rows;
    ptrdiff_t next;            /* first row of the next training batch */
} workload;

/* The update rule of every step (STEP_OPTIMIZER), and Adam's step count. */
static fm_optimizer step_opt = { .lr = 1e-5f };
static long adam_t;

/* STEP_PRECISION=bf16: the products in bf16, measured against the bf16 peak. */
static int step_bf16;

/* The peak of the products' precision on `threads` threads, probed for `seconds`. */
static double probe_peak(int threads, double seconds)
{
    return step_bf16 ? fm_peak_gflops_bf16(threads, seconds) : fm_peak_gflops(threads, seconds);
}

/* Runs n training steps, each on the next BATCH rows. */
static void run_steps(workload *w, int n)
{
    double loss;
    for (int s = 0; s < n; s++) {
        if (step_opt.rule == FM_OPT_ADAM) {   /* the binding's lr_t, in double */
            bench_adam_rate(&step_opt, ++adam_t);
        }
        if (fm_train_step(w->net, BATCH, w->X + w->next * w->net->sizes[0], w->labels + w->next, 0, &step_opt,
                          &loss) != 0)
            bench_fail("fm_train_step");
        w->next = (w->next + BATCH) % SAMPLES;
    }
}

/* Seconds per training step, the mean of STEPS consecutive steps. */
static double time_steps(workload *w)
{
    double t0 = bench_now();
    run_steps(w, STEPS);
    return (bench_now() - t0) / STEPS;
}

/* One untimed step before timed ones: the measurement before (the other thread count, whose
 * threads own other columns of the weights, or the 31 MB forward pass) leaves the caches as an
 * epoch has them only before its first step (measured, paired: 10 steps right after a
 * 10,000-row forward pass take 0.6% longer than after one more step). */
static void warm_steps(workload *w)
{
    run_steps(w, 1);
}

/* The second network of the pair measurement, and its data: the same rows, from the middle. */
static workload other;

/* Network i of the pair (w, then other): n steps, their time to seconds[i] (seconds may be
 * NULL). */
static void run_one_of_pair(workload *w, int i, int n, double *seconds)
{
    double t0 = bench_now();
    run_steps(i == 0 ? w : &other, n);
    if (seconds != NULL)
        seconds[i] = bench_now() - t0;
}

/* The pair: n 1-thread steps on each network at once, one network per thread. */
static void run_pair(workload *w, int n, double *seconds)
{
    fm_set_num_threads(1);
#ifdef _OPENMP
    #pragma omp parallel num_threads(2)
    run_one_of_pair(w, omp_get_thread_num(), n, seconds);
#else
    run_one_of_pair(w, 0, n, seconds);
    run_one_of_pair(w, 1, n, seconds);
#endif
}

/* Seconds per step of the pair: the steps both threads make per second, inverted. Each
 * thread's own time, not the wall time: a thread slowed by the rest of the machine would
 * otherwise set the pair's time alone, where the 2-thread step's schedule hands its work to
 * the other thread. */
static double time_pair(workload *w)
{
    double seconds[2];
    run_pair(w, STEPS, seconds);
    return 1.0 / (STEPS / seconds[0] + STEPS / seconds[1]);
}

static void warm_pair(workload *w)
{
    run_pair(w, 1, NULL);
}

static double time_forward(workload *w)
{
    double t0 = bench_now();
    if (fm_forward(w->net, FORWARD_ROWS, w->X, w->out, w->scratch, w->scratch_rows) != 0)
        bench_fail("fm_forward");
    return bench_now() - t0;
}

/* One bracketed measurement of `timed` on `threads` threads, stored as round r of s; `warm`
 * (or NULL) runs first, untimed. */
static void measure(series *s, int r, int threads, double flop, double (*timed)(workload *),
                    void (*warm)(workload *), workload *w)
{
    fm_set_num_threads(threads);
    if (warm != NULL)
        warm(w);
    double before = probe_peak(threads, PROBE_SECONDS);
    double t = timed(w);
    double after = probe_peak(threads, PROBE_SECONDS);
    s->t[r] = t;
    s->peak[r] = 0.5 * (before + after);
    s->eff[r] = flop / t * 1e-9 / s->peak[r];
}

static double quantile(const double *v, int n, int q4)   /* q4 / 4 quantile of n values */
{
    double sorted[MAX_ROUNDS];
    for (int i = 0; i < n; i++)
        sorted[i] = v[i];
    qsort(sorted, (size_t)n, sizeof(double), bench_cmp_double);
    return sorted[(n - 1) * q4 / 4];
}

static void report(const char *name, const series *s, int rounds, double flop)
{
    double t = quantile(s->t, rounds, 2);
    printf("%-22s %9.1f %8.1f %8.1f   %5.1f%% (%5.1f%%-%5.1f%%)\n", name, t * 1e6,
           flop / t * 1e-9, quantile(s->peak, rounds, 2), 100.0 * quantile(s->eff, rounds, 2),
           100.0 * quantile(s->eff, rounds, 1), 100.0 * quantile(s->eff, rounds, 3));
}

/* The network's activation, update rule and precision from STEP_ACTIVATION, STEP_OPTIMIZER and
 * STEP_PRECISION. */
static void configure(bench_mnist *m)
{
    const char *act = getenv("STEP_ACTIVATION"), *opt = getenv("STEP_OPTIMIZER");
    const char *precision = getenv("STEP_PRECISION");
    if (precision != NULL && strcmp(precision, "bf16") == 0)
        step_bf16 = 1;
    else if (precision != NULL && strcmp(precision, "fp32") != 0)
        bench_fail("STEP_PRECISION (fp32 or bf16)");
    m->net.bf16 = step_bf16;
    if (act != NULL && strcmp(act, "tanh") == 0)
        m->net.activation = FM_ACT_TANH;
    else if (act != NULL && strcmp(act, "relu") != 0)
        bench_fail("STEP_ACTIVATION (relu or tanh)");
    if (opt != NULL && strcmp(opt, "adam") == 0) {
        step_opt = bench_adam;
        bench_give_adam_state(m);
    } else if (opt != NULL && strcmp(opt, "sgd") != 0) {
        bench_fail("STEP_OPTIMIZER (sgd or adam)");
    }
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 41;
    rounds = rounds < 4 ? 4 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    if (getenv("FASTMLP_ISA") != NULL && fm_isa_set(getenv("FASTMLP_ISA")) != 0) {
        fprintf(stderr, "unknown or unsupported isa %s\n", getenv("FASTMLP_ISA"));
        return 1;
    }
    fm_dispatch_init();

    ptrdiff_t sizes[BENCH_MAX_LAYERS + 1];
    const int n_layers = bench_sizes("STEP_SIZES", sizes);
    static bench_mnist m;
    bench_net_make(&m, SAMPLES, sizes, n_layers);
    configure(&m);
    double step_flop = 0.0, forward_flop = 0.0;
    for (int l = 0; l < n_layers; l++) {
        double layer = 2.0 * (double)m.sizes[l] * (double)m.sizes[l + 1];
        step_flop += BATCH * layer * (l == 0 ? 2.0 : 3.0);   /* no input gradient for layer 0 */
        forward_flop += FORWARD_ROWS * layer;
    }
    if (getenv("STEP_ONLY") != NULL) {
        const int threads = atoi(getenv("STEP_ONLY"));
        const int steps = argc > 1 ? atoi(argv[1]) : 1000;
        fm_set_num_threads(threads);
        workload only = { &m.net, m.X, m.labels, NULL, NULL, 0, 0 };
        run_steps(&only, 1);
        double t0 = bench_now();
        run_steps(&only, steps);
        double us = (bench_now() - t0) / steps * 1e6;
        printf("%d steps on %d thread(s): %.1f us a step; round trip between 2 threads %.0f ns\n",
               steps, fm_get_num_threads(), us, bench_round_trip_ns());
        return 0;
    }
    fm_set_num_threads(2);
    ptrdiff_t scratch_rows = fm_forward_scratch_rows(&m.net, FORWARD_ROWS);
    float *scratch[BENCH_MAX_LAYERS];   /* one per hidden layer (fm_forward) */
    for (int l = 0; l + 1 < n_layers; l++)
        scratch[l] = bench_pattern((size_t)(scratch_rows * sizes[l + 1]), 1.0f);
    workload w = { &m.net, m.X, m.labels,
                   bench_pattern((size_t)(FORWARD_ROWS * sizes[n_layers]), 1.0f), scratch,
                   scratch_rows, 0 };

    static bench_mnist m2;
    bench_net_make(&m2, 1, sizes, n_layers);
    configure(&m2);
    other = (workload){ &m2.net, m.X, m.labels, NULL, NULL, 0, SAMPLES / 2 };

    static series step[3], pair, forward2;
    double speedup[MAX_ROUNDS], split_cost[MAX_ROUNDS];
    time_steps(&w);                                  /* warm-up: caches, the thread team */
    const double trip_before = bench_round_trip_ns();
    for (int r = 0; r < rounds; r++) {
        for (int h = 0; h < 2; h++) {
            int threads = (r & 1) ? 2 - h : 1 + h;   /* 1 then 2, or 2 then 1 */
            measure(&step[threads], r, threads, step_flop, time_steps, warm_steps, &w);
        }
        speedup[r] = step[1].t[r] / step[2].t[r];
        measure(&pair, r, 2, step_flop, time_pair, warm_pair, &w);
        split_cost[r] = step[2].t[r] / pair.t[r];
        measure(&forward2, r, 2, forward_flop, time_forward, NULL, &w);
    }

    const double trip_after = bench_round_trip_ns();
    printf("network");
    for (int l = 0; l <= n_layers; l++)
        printf("%c%td", l == 0 ? ' ' : '-', sizes[l]);
    printf(", batch %d\n", BATCH);
    printf("isa %s, %s, %d rounds; step %.1f MFLOP (%s, %s), forward of %d rows %.1f MFLOP\n",
           fm_isa_name(), step_bf16 ? "bf16 products" : "fp32", rounds, step_flop * 1e-6, fm_activation_names[m.net.activation],
           step_opt.rule == FM_OPT_ADAM ? "adam" : "sgd", FORWARD_ROWS, forward_flop * 1e-6);
    printf("%-22s %9s %8s %8s   %s\n", "(medians)", "us", "GFLOP/s", "peak",
           "% of the peak probed around it (quartiles)");
    report("train step, 1 thread", &step[1], rounds, step_flop);
    report("train step, 2 threads", &step[2], rounds, step_flop);
    report("two 1T steps at once", &pair, rounds, step_flop);
    report("forward 10000, 2 thr.", &forward2, rounds, forward_flop);
    printf("2T/1T of the step per round: median %.2fx (quartiles %.2fx-%.2fx)\n",
           quantile(speedup, rounds, 2), quantile(speedup, rounds, 1),
           quantile(speedup, rounds, 3));
    printf("2-thread step over the pair's time a step, per round: median %.3f (quartiles "
           "%.3f-%.3f)\n", quantile(split_cost, rounds, 2), quantile(split_cost, rounds, 1),
           quantile(split_cost, rounds, 3));
    printf("round trip of a cache line between the 2 threads: %.0f ns before, %.0f ns after "
           "(over 250: the cores are on different dies; the 2-thread step then loses 10-20%%)\n",
           trip_before, trip_after);
    return 0;
}
