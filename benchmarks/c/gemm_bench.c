/* gemm_bench.c - GFLOP/s of the MNIST training step's products, 1 and 2 threads.
 *
 * The step (batch 200, 784 -> 512 -> 256 -> 10) is 8 products, 481.5 MFLOP. Each is built as
 * the step builds it (layers.h: the weights in their column panels, the fused epilogues) and
 * run by fm_product_run, alone (best-of-reps within a round, median over rounds, the thread
 * counts interleaved round by round because the cores are shared), then the 8 in sequence.
 * The step itself (fm_train_step) is one parallel region with the loss and the bias updates:
 * step_bench.c times that. % of peak uses fm_peak_gflops measured in the same run.
 *
 *   usage: gemm_bench [isa] [rounds]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/registry.h"
#include "frame/gemm.h"
#include "nn/layers.h"
#include "kernels/peak.h"
#include "frame/threads.h"
#include "kernels/ukernel.h"
#include "bench_util.h"

static float *buffer(size_t n)
{
    return bench_pattern(n, 1.0f);
}

typedef struct {
    const char *name;
    fm_product p;
} product;

static void run(const product *p)
{
    if (fm_product_run(&p->p) != 0) {
        fprintf(stderr, "fm_product_run failed\n");
        exit(1);
    }
}

/* Best time of `reps` packings of fwd1's A (rows x k, stored by rows) into the column panels
 * of the set's "columns" kernel, row tiles balanced as the GEMM frame cuts them. */
static double best_pack_time(const fm_kernel_set *ks, float *dst, const float *A, ptrdiff_t rows,
                             ptrdiff_t k, int reps)
{
    const ptrdiff_t mr = ks->columns.mr, n_tiles = (rows + mr - 1) / mr;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        ptrdiff_t i = 0;
        for (ptrdiff_t it = 0; it < n_tiles; it++) {
            int mt = fm_tile_height(rows, n_tiles, it);
            ks->pack_a(dst + it * mr * k, mt, k, A + i * k, k);
            i += mt;
        }
        double t = bench_now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

/* Best time of `reps` runs of products[first..last). */
static double best_time(const product *ps, int first, int last, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        for (int i = first; i < last; i++)
            run(&ps[i]);
        double t = bench_now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc > 1 && fm_isa_set(argv[1]) != 0) {
        fprintf(stderr, "unknown or unsupported isa %s\n", argv[1]);
        return 1;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    const ptrdiff_t Mb = 200, D0 = 784, D1 = 512, D2 = 256, D3 = 10, Mbig = 10000;

    float *X = buffer(Mbig * D0), *W1 = buffer(D0 * D1), *W2 = buffer(D1 * D2);
    float *W3 = buffer(D2 * D3);
    float *b1 = buffer(D1), *b2 = buffer(D2), *b3 = buffer(D3);
    float *A1 = buffer(Mbig * D1), *A2 = buffer(Mbig * D2), *Z3 = buffer(Mbig * D3);
    float *dZ3 = buffer(Mb * D3), *dA2 = buffer(Mb * D2), *dA1 = buffer(Mb * D1);
    const fm_optimizer opt = { .lr = 1e-6f };

    /* The training step in order (dZ3 stands in for the loss gradient, dA2 and dA1 for dZ2 and
     * dZ1); then one sample and 10,000 samples through layer 1. */
    product ps[] = {
        { "fwd1  200x512x784 +b relu", fm_forward_product(A1, X, W1, b1, Mb, D0, D1, FM_ACT_RELU, 1) },
        { "fwd2  200x256x512 +b relu", fm_forward_product(A2, A1, W2, b2, Mb, D1, D2, FM_ACT_RELU, 1) },
        { "fwd3  200x10x256  +b     ", fm_forward_product(Z3, A2, W3, b3, Mb, D2, D3, FM_ACT_NONE, 1) },
        { "dA2   200x256x10  W3^T m ", fm_input_grad_product(dA2, dZ3, W3, A2, FM_ACT_RELU, Mb, D2, D3, 1) },
        { "dW3   256x10x200  sgd    ",
          fm_weight_update_product(W3, NULL, A2, dZ3, Mb, D2, D3, &opt, NULL, 1) },
        { "dA1   200x512x256 W2^T m ", fm_input_grad_product(dA1, dA2, W2, A1, FM_ACT_RELU, Mb, D1, D2, 1) },
        { "dW2   512x256x200 sgd    ",
          fm_weight_update_product(W2, NULL, A1, dA2, Mb, D1, D2, &opt, NULL, 1) },
        { "dW1   784x512x200 sgd    ",
          fm_weight_update_product(W1, NULL, X, dA1, Mb, D0, D1, &opt, NULL, 1) },
        { "pred1 1x512x784   +b relu", fm_forward_product(A1, X, W1, b1, 1, D0, D1, FM_ACT_RELU, 1) },
        { "pred  10000x512x784 relu ", fm_forward_product(A1, X, W1, b1, Mbig, D0, D1, FM_ACT_RELU, 1) },
    };
    const int n_step = 8, n_ps = (int)(sizeof ps / sizeof ps[0]);
    double step_flops = 0;
    for (int i = 0; i < n_step; i++)
        step_flops += 2.0 * ps[i].p.M * ps[i].p.N * ps[i].p.K;

    /* The peak: the highest of a probe per round and thread count (a probe is 50 ms of pure
     * FMAs; on a shared machine a single one can land in a busy moment and read low). */
    double peak[3] = { 0.0, 0.0, 0.0 };
    enum { MAXR = 64 };
    if (rounds > MAXR)
        rounds = MAXR;
    double t[16][3][MAXR];
    double tstep[3][MAXR], tpack[MAXR];
    const fm_kernel_set *ks = fm_kernels();
    float *apack = buffer((size_t)(Mb + ks->columns.mr) * D0);
    for (int r = 0; r < rounds; r++) {
        if (ks->pack_a != NULL)
            tpack[r] = best_pack_time(ks, apack, X, Mb, D0, 20);
        for (int th = 1; th <= 2; th++) {
            fm_set_num_threads(th);
            double probe = fm_peak_gflops(th, 0.05);
            if (probe > peak[th])
                peak[th] = probe;
            for (int i = 0; i < n_ps; i++) {
                int reps = ps[i].p.M >= Mbig ? 2 : 20;
                t[i][th][r] = best_time(ps, i, i + 1, reps);
            }
            tstep[th][r] = best_time(ps, 0, n_step, 20);
        }
    }
    printf("isa %s, peak %.1f GFLOP/s (1 thread), %.1f (2 threads), the highest of %d probes "
           "each; step %.1f MFLOP\n", fm_isa_name(), peak[1], peak[2], rounds, step_flops * 1e-6);
    printf("%-28s %9s %8s %6s   %9s %8s %6s  %6s\n", "product", "1T us", "GFLOP/s", "%peak",
           "2T us", "GFLOP/s", "%peak", "2T/1T");
    for (int i = 0; i <= n_ps; i++) {
        double med[3];
        for (int th = 1; th <= 2; th++) {
            double *s = i < n_ps ? t[i][th] : tstep[th];
            qsort(s, (size_t)rounds, sizeof(double), bench_cmp_double);
            med[th] = s[rounds / 2];
        }
        double flops = i < n_ps ? 2.0 * ps[i].p.M * ps[i].p.N * ps[i].p.K : step_flops;
        const char *name = i < n_ps ? ps[i].name : "STEP (8 products)";
        printf("%-28s %9.1f %8.1f %5.1f%%   %9.1f %8.1f %5.1f%%  %5.2fx\n", name,
               med[1] * 1e6, flops / med[1] * 1e-9, 100.0 * flops / med[1] * 1e-9 / peak[1],
               med[2] * 1e6, flops / med[2] * 1e-9, 100.0 * flops / med[2] * 1e-9 / peak[2],
               med[1] / med[2]);
    }
    if (ks->pack_a != NULL) {
        qsort(tpack, (size_t)rounds, sizeof(double), bench_cmp_double);
        double bytes = (double)(Mb * D0) * sizeof(float);
        printf("%-28s %9.1f %6.1f GB/s (1 thread: fwd1's A into %d-row panels)\n",
               "pack A 200x784", tpack[rounds / 2] * 1e6, bytes / tpack[rounds / 2] * 1e-9,
               ks->columns.mr);
    }
    return 0;
}
