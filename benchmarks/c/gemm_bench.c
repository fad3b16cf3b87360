/* gemm_bench.c - GFLOP/s of fm_gemm on the MNIST training step's shapes, 1 and 2 threads.
 *
 * The step (batch 200, 784 -> 512 -> 256 -> 10) is 8 products, 481.5 MFLOP. Each is timed
 * alone (best-of-reps within a round, median over rounds, the thread counts interleaved
 * round by round because the cores are shared), then the 8 in sequence as one step.
 * % of peak uses fm_peak_gflops measured in the same run.
 *
 *   usage: gemm_bench [isa] [rounds]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"
#include "gemm.h"
#include "peak.h"
#include "threads.h"
#include "bench_util.h"

static float *buffer(size_t n)
{
    return bench_pattern(n, 1.0f);
}

typedef struct {
    const char *name;
    ptrdiff_t M, N, K;
    const float *A; ptrdiff_t rsa, csa;
    const float *B; ptrdiff_t rsb, csb;
    float *C; ptrdiff_t ldc;
    fm_epilogue epi;
} product;

static void run(const product *p)
{
    if (fm_gemm(p->M, p->N, p->K, p->A, p->rsa, p->csa, p->B, p->rsb, p->csb,
                p->C, p->ldc, &p->epi) != 0) {
        fprintf(stderr, "fm_gemm failed\n");
        exit(1);
    }
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
    const float lr = 1e-6f;
    fm_epilogue store = { FM_EPI_STORE, NULL, NULL, 0, 0, 0, 0, 0, NULL };
    fm_epilogue relu1 = store, relu2 = store, bias3 = store;
    fm_epilogue mask2 = store, mask1 = store, sgd = store;
    relu1.kind = FM_EPI_BIAS_RELU; relu1.bias = b1;
    relu2.kind = FM_EPI_BIAS_RELU; relu2.bias = b2;
    bias3.kind = FM_EPI_BIAS; bias3.bias = b3;
    mask2.kind = FM_EPI_MASK; mask2.mask = A2; mask2.ldm = D2;
    mask1.kind = FM_EPI_MASK; mask1.mask = A1; mask1.ldm = D1;
    sgd.kind = FM_EPI_SGD; sgd.lr = lr;

    /* The training step in order (dZ3 stands in for the loss gradient; dA2/dA1 for dZ2/dZ1). */
    product ps[] = {
        { "fwd1  200x512x784 +b relu", Mb, D1, D0, X, D0, 1, W1, D1, 1, A1, D1, relu1 },
        { "fwd2  200x256x512 +b relu", Mb, D2, D1, A1, D1, 1, W2, D2, 1, A2, D2, relu2 },
        { "fwd3  200x10x256  +b     ", Mb, D3, D2, A2, D2, 1, W3, D3, 1, Z3, D3, bias3 },
        { "dA2   200x256x10  W3^T m ", Mb, D2, D3, dZ3, D3, 1, W3, 1, D3, dA2, D2, mask2 },
        { "dW3   256x10x200  sgd    ", D2, D3, Mb, A2, 1, D2, dZ3, D3, 1, W3, D3, sgd },
        { "dA1   200x512x256 W2^T m ", Mb, D1, D2, dA2, D2, 1, W2, 1, D2, dA1, D1, mask1 },
        { "dW2   512x256x200 sgd    ", D1, D2, Mb, A1, 1, D1, dA2, D2, 1, W2, D2, sgd },
        { "dW1   784x512x200 sgd    ", D0, D1, Mb, X, 1, D0, dA1, D1, 1, W1, D1, sgd },
        { "pred1 1x512x784   +b relu", 1, D1, D0, X, D0, 1, W1, D1, 1, A1, D1, relu1 },
        { "pred  10000x512x784 relu ", Mbig, D1, D0, X, D0, 1, W1, D1, 1, A1, D1, relu1 },
    };
    const int n_step = 8, n_ps = (int)(sizeof ps / sizeof ps[0]);
    double step_flops = 0;
    for (int i = 0; i < n_step; i++)
        step_flops += 2.0 * ps[i].M * ps[i].N * ps[i].K;

    double peak[3];
    fm_set_num_threads(1);
    peak[1] = fm_peak_gflops(1, 0.3);
    fm_set_num_threads(2);
    peak[2] = fm_peak_gflops(2, 0.3);
    printf("isa %s, peak %.1f GFLOP/s (1 thread), %.1f (2 threads); step %.1f MFLOP\n",
           fm_isa_name(), peak[1], peak[2], step_flops * 1e-6);

    enum { MAXR = 64 };
    if (rounds > MAXR)
        rounds = MAXR;
    double t[16][3][MAXR];
    double tstep[3][MAXR];
    for (int r = 0; r < rounds; r++) {
        for (int th = 1; th <= 2; th++) {
            fm_set_num_threads(th);
            for (int i = 0; i < n_ps; i++) {
                int reps = ps[i].M >= Mbig ? 2 : 20;
                t[i][th][r] = best_time(ps, i, i + 1, reps);
            }
            tstep[th][r] = best_time(ps, 0, n_step, 20);
        }
    }
    printf("%-28s %9s %8s %6s   %9s %8s %6s  %6s\n", "product", "1T us", "GFLOP/s", "%peak",
           "2T us", "GFLOP/s", "%peak", "2T/1T");
    for (int i = 0; i <= n_ps; i++) {
        double med[3];
        for (int th = 1; th <= 2; th++) {
            double *s = i < n_ps ? t[i][th] : tstep[th];
            qsort(s, (size_t)rounds, sizeof(double), bench_cmp_double);
            med[th] = s[rounds / 2];
        }
        double flops = i < n_ps ? 2.0 * ps[i].M * ps[i].N * ps[i].K : step_flops;
        const char *name = i < n_ps ? ps[i].name : "STEP (8 products)";
        printf("%-28s %9.1f %8.1f %5.1f%%   %9.1f %8.1f %5.1f%%  %5.2fx\n", name,
               med[1] * 1e6, flops / med[1] * 1e-9, 100.0 * flops / med[1] * 1e-9 / peak[1],
               med[2] * 1e6, flops / med[2] * 1e-9, 100.0 * flops / med[2] * 1e-9 / peak[2],
               med[1] / med[2]);
    }
    return 0;
}
