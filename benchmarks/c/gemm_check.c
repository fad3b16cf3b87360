/* gemm_check.c - correctness of fm_gemm on every instruction set and thread count.
 *
 * For each shape, stride layout (plain, A transposed, B transposed) and epilogue:
 *   1. the generic kernel on one thread is compared with a float64 reference:
 *        |C - ref| <= 2 * K * eps32 * sum_k |A(i,k) B(k,j)| + (epilogue terms)
 *   2. every other (ISA, threads) result must equal it bit for bit.
 * Exits 1 on the first failure (and says which), 0 when everything passed.
 *
 *   usage: gemm_check [quick]
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/registry.h"
#include "frame/gemm.h"
#include "frame/threads.h"

static unsigned long long rng_state = 88172645463325252ULL;

static float uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = uniform();
}

typedef struct {
    ptrdiff_t M, N, K;
    int layout;  /* 0: A, B row-major; 1: A given transposed; 2: B given transposed */
    int kind;
} problem;

static const char *kind_names[] = { "store", "bias", "bias_relu", "relu_grad", "sgd", "sgd_l2",
                                    "momentum", "nesterov", "bias_tanh", "tanh_grad", "adam" };
enum { N_KINDS = 11, KIND_ADAM = 10 };

/* Runs the product into C (initialised from C0) with the current ISA and thread count. */
static int run(const problem *pb, const float *Abuf, const float *Bbuf, const float *bias,
               const float *mask, const float *C0, const float *V0, const float *U0, float *C,
               float *V, float *U)
{
    ptrdiff_t M = pb->M, N = pb->N, K = pb->K;
    ptrdiff_t rsa = K, csa = 1, rsb = N, csb = 1;
    if (pb->layout == 1) { rsa = 1; csa = M; }
    if (pb->layout == 2) { rsb = 1; csb = K; }
    memcpy(C, C0, sizeof(float) * (size_t)(M * N));
    memcpy(V, V0, sizeof(float) * (size_t)(M * N));
    memcpy(U, U0, sizeof(float) * (size_t)(M * N));
    fm_epilogue e = { .kind = FM_EPI_STORE, .bias = bias, .mask = mask, .ldm = N + 3,
                      .activation = FM_ACT_RELU, .opt = { .lr = 0.01f } };
    switch (pb->kind) {
    case 0: e.kind = FM_EPI_STORE; break;
    case 1: e.kind = FM_EPI_BIAS; break;
    case 2: e.kind = FM_EPI_BIAS_ACT; break;
    case 3: e.kind = FM_EPI_ACT_GRAD; break;
    case 4: e.kind = FM_EPI_UPDATE; break;
    case 5: e.kind = FM_EPI_UPDATE; e.opt.alpha = 1e-3f; break;
    case 6: e.kind = FM_EPI_UPDATE; e.opt.momentum = 0.9f; e.state[0] = V; break;
    case 7: e.kind = FM_EPI_UPDATE; e.opt.momentum = 0.9f; e.state[0] = V; e.opt.nesterov = 1;
        break;
    case 8: e.kind = FM_EPI_BIAS_ACT; e.activation = FM_ACT_TANH; break;
    case 9: e.kind = FM_EPI_ACT_GRAD; e.activation = FM_ACT_TANH; break;
    case KIND_ADAM:   /* out of line (fm_epilogue_inline), with L2: moments in V and U */
        e.kind = FM_EPI_UPDATE;
        e.opt = (fm_optimizer){ .lr = 0.01f, .alpha = 1e-3f, .rule = FM_OPT_ADAM,
                                .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-8f,
                                .lr_t = 0.003f };
        e.state[0] = V;
        e.state[1] = U;
        break;
    }
    return fm_gemm(M, N, K, Abuf, rsa, csa, Bbuf, rsb, csb, C, N, &e);
}

/* Checks the generic result C against float64 (only kinds whose epilogue is a simple function
 * of acc are checked this way; the SGD kinds are checked through acc = (C0 - C)/lr for plain
 * SGD and otherwise only for bit-identity). */
static int check_reference(const problem *pb, const float *Abuf, const float *Bbuf,
                           const float *bias, const float *mask, const float *C0, const float *C)
{
    ptrdiff_t M = pb->M, N = pb->N, K = pb->K;
    ptrdiff_t rsa = K, csa = 1, rsb = N, csb = 1;
    if (pb->layout == 1) { rsa = 1; csa = M; }
    if (pb->layout == 2) { rsb = 1; csb = K; }
    const double eps = FLT_EPSILON;
    for (ptrdiff_t i = 0; i < M; i++) {
        for (ptrdiff_t j = 0; j < N; j++) {
            double ref = 0.0, mag = 0.0;
            for (ptrdiff_t k = 0; k < K; k++) {
                double t = (double)Abuf[i * rsa + k * csa] * (double)Bbuf[k * rsb + j * csb];
                ref += t;
                mag += fabs(t);
            }
            double tol = 2.0 * (double)(K + 1) * eps * mag + 1e-30;
            double got = C[i * N + j];
            switch (pb->kind) {
            case 1: ref += bias[j]; tol += eps * fabs(ref); break;
            case 2: ref += bias[j]; tol += eps * fabs(ref); ref = ref > 0 ? ref : 0; break;
            case 3: ref = mask[i * (N + 3) + j] > 0 ? ref : 0; break;
            case 8: /* tanh's slope is at most 1; its own error a few ulp of 1 */
                ref = tanh(ref + bias[j]);
                tol += eps * fabs((double)bias[j]) + 4.0 * eps;
                break;
            case 9: {
                double m = mask[i * (N + 3) + j], d = 1.0 - m * m;
                ref *= d;
                tol = tol * fabs(d) + 2.0 * eps * fabs(ref) + eps * fabs(got) + 1e-30;
                break;
            }
            case 4:
                ref = (double)C0[i * N + j] - 0.01 * ref;
                tol = 0.01 * tol + 2.0 * eps * fabs((double)C0[i * N + j]) + eps * 0.01 * mag;
                break;
            default:
                if ((pb->kind >= 5 && pb->kind <= 7) || pb->kind == KIND_ADAM)
                    continue;
            }
            if (fabs(got - ref) > tol) {
                printf("FAIL reference M=%td N=%td K=%td layout=%d %s at (%td,%td): got %.9g "
                       "want %.9g tol %.3g\n", M, N, K, pb->layout, kind_names[pb->kind], i, j,
                       got, ref, tol);
                return 1;
            }
        }
    }
    return 0;
}

static int check_problem(const problem *pb, const char **isas, int n_isas)
{
    ptrdiff_t M = pb->M, N = pb->N, K = pb->K;
    size_t na = (size_t)(M * K) + 1, nb = (size_t)(K * N) + 1, nc = (size_t)(M * N) + 1;
    float *Abuf = malloc(sizeof(float) * na), *Bbuf = malloc(sizeof(float) * nb);
    float *bias = malloc(sizeof(float) * (size_t)(N + 1));
    float *mask = malloc(sizeof(float) * (size_t)(M * (N + 3) + 1));
    float *C0 = malloc(sizeof(float) * nc), *V0 = malloc(sizeof(float) * nc);
    float *Cref = malloc(sizeof(float) * nc), *Vref = malloc(sizeof(float) * nc);
    float *C = malloc(sizeof(float) * nc), *V = malloc(sizeof(float) * nc);
    float *U0 = malloc(sizeof(float) * nc), *Uref = malloc(sizeof(float) * nc);
    float *U = malloc(sizeof(float) * nc);
    fill(Abuf, na);
    fill(Bbuf, nb);
    fill(bias, (size_t)N + 1);
    fill(mask, (size_t)(M * (N + 3)) + 1);
    fill(C0, nc);
    fill(V0, nc);
    fill(U0, nc);
    for (size_t i = 0; i < nc; i++)
        U0[i] = fabsf(U0[i]);   /* a second moment */
    int bad = 0;

    fm_isa_set("generic");
    fm_set_num_threads(1);
    if (run(pb, Abuf, Bbuf, bias, mask, C0, V0, U0, Cref, Vref, Uref) != 0) {
        printf("FAIL fm_gemm returned an error\n");
        bad = 1;
    }
    if (!bad)
        bad = check_reference(pb, Abuf, Bbuf, bias, mask, C0, Cref);
    for (int s = 0; s < n_isas && !bad; s++) {
        for (int th = 1; th <= 3 && !bad; th++) {
            fm_isa_set(isas[s]);
            fm_set_num_threads(th);
            if (run(pb, Abuf, Bbuf, bias, mask, C0, V0, U0, C, V, U) != 0) {
                printf("FAIL fm_gemm returned an error\n");
                bad = 1;
                break;
            }
            if (memcmp(C, Cref, sizeof(float) * (size_t)(M * N)) != 0 ||
                memcmp(V, Vref, sizeof(float) * (size_t)(M * N)) != 0 ||
                memcmp(U, Uref, sizeof(float) * (size_t)(M * N)) != 0) {
                ptrdiff_t at = 0;
                while (at < M * N && C[at] == Cref[at])
                    at++;
                printf("FAIL bits M=%td N=%td K=%td layout=%d %s isa=%s threads=%d at %td: "
                       "%.9g vs generic %.9g\n", M, N, K, pb->layout, kind_names[pb->kind],
                       isas[s], th, at, at < M * N ? C[at] : 0.0f,
                       at < M * N ? Cref[at] : 0.0f);
                bad = 1;
            }
        }
    }
    free(Abuf); free(Bbuf); free(bias); free(mask); free(C0); free(V0);
    free(Cref); free(Vref); free(C); free(V); free(U0); free(Uref); free(U);
    return bad;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    /* Every set this CPU runs (registry.h), from the space-separated list. */
    static char names[128];
    snprintf(names, sizeof names, "%s", fm_isa_available());
    const char *isas[16];
    int n_isas = 0;
    for (char *name = strtok(names, " "); name != NULL && n_isas < 16; name = strtok(NULL, " "))
        isas[n_isas++] = name;
    printf("available: %s\n", fm_isa_available());

    /* Awkward sizes: 1, around the tiles (MR 4/6/12/24, NR 16/32), primes, MNIST. */
    const ptrdiff_t small[] = { 1, 2, 5, 7, 11, 12, 13, 15, 16, 17, 23, 25, 31, 32, 33, 47, 65 };
    const int n_small = (int)(sizeof small / sizeof small[0]);
    const ptrdiff_t ks[] = { 0, 1, 3, 10, 37, 200, 401, 800 };
    const int n_ks = (int)(sizeof ks / sizeof ks[0]);
    long count = 0;
    for (int a = 0; a < n_small; a += quick ? 3 : 1) {
        for (int b = 0; b < n_small; b += quick ? 3 : 1) {
            for (int c = 0; c < n_ks; c++) {
                problem pb = { small[a], small[b], ks[c], (a + b + c) % 3, (a * 7 + b + c) % 8 };
                if (check_problem(&pb, isas, n_isas) != 0)
                    return 1;
                count++;
                /* Adam, out of line, on half of the shapes, in their layout */
                problem adam = { small[a], small[b], ks[c], pb.layout, KIND_ADAM };
                if ((a + b + c) % 2 == 0 && check_problem(&adam, isas, n_isas) != 0)
                    return 1;
                count += (a + b + c) % 2 == 0;
            }
        }
    }
    /* The MNIST shapes, every epilogue and layout. */
    const ptrdiff_t mnist[][3] = {
        { 200, 512, 784 }, { 200, 256, 512 }, { 200, 10, 256 },   /* forward */
        { 200, 256, 10 }, { 200, 512, 256 },                        /* input gradient */
        { 784, 512, 200 }, { 512, 256, 200 }, { 256, 10, 200 },     /* weight gradient */
        { 1, 512, 784 }, { 1, 10, 256 }, { 97, 130, 1000 },
        { 1001, 70, 300 }                                           /* A in several row blocks */
    };
    for (int s = 0; s < (int)(sizeof mnist / sizeof mnist[0]); s++) {
        for (int kind = 0; kind < N_KINDS; kind += quick ? 3 : 1) {
            for (int layout = 0; layout < 3; layout++) {
                problem pb = { mnist[s][0], mnist[s][1], mnist[s][2], layout, kind };
                if (check_problem(&pb, isas, n_isas) != 0)
                    return 1;
                count++;
            }
        }
    }
    printf("OK: %ld problems, isas:", count);
    for (int s = 0; s < n_isas; s++)
        printf(" %s", isas[s]);
    printf(", threads 1..3, bit-identical to generic\n");
    return 0;
}
