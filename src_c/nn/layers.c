/* layers.c - one dense layer's forward pass, input gradient and optimiser step, on fm_gemm. */
#include "kernels/vec_generic.h"

#include "nn/layers.h"
#include "ops/epilogue.h"

fm_product fm_forward_product(float *out, const float *X, const float *W, const float *b,
                              ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, int activation, int panels)
{
    fm_epilogue epi = { .kind = activation == FM_ACT_NONE ? FM_EPI_BIAS : FM_EPI_BIAS_ACT,
                        .bias = b, .activation = (enum fm_activation)activation };
    /* out (M x N) = X (M x K) W (K x N) */
    return (fm_product){ .M = M, .N = N, .K = K, .A = X, .rsa = K, .csa = 1, .B = W, .rsb = N,
                         .csb = 1, .C = out, .ldc = N, .epi = epi,
                         .panels = panels ? FM_PANELS_B : FM_PANELS_NONE };
}

fm_product fm_input_grad_product(float *dA_prev, const float *dZ, const float *W,
                                 const float *A_prev, int activation, ptrdiff_t M, ptrdiff_t K,
                                 ptrdiff_t N, int panels)
{
    fm_epilogue epi = { .kind = A_prev ? FM_EPI_ACT_GRAD : FM_EPI_STORE, .mask = A_prev,
                        .ldm = K, .activation = (enum fm_activation)activation };
    /* dA_prev (M x K) = dZ (M x N) W^T (N x K): W^T(n, k) = W[k*N + n] (row-major W) */
    return (fm_product){ .M = M, .N = K, .K = N, .A = dZ, .rsa = N, .csa = 1, .B = W, .rsb = 1,
                         .csb = N, .C = dA_prev, .ldc = K, .epi = epi,
                         .panels = panels ? FM_PANELS_BT : FM_PANELS_NONE };
}

fm_product fm_weight_update_product(float *W, float *const *state, const float *A_prev,
                                    const float *dZ, ptrdiff_t M, ptrdiff_t K, ptrdiff_t N,
                                    const fm_optimizer *opt, atomic_int *not_finite, int panels)
{
    fm_epilogue epi = { .kind = FM_EPI_UPDATE, .opt = *opt, .not_finite = not_finite };
    for (int s = 0; s < FM_OPT_STATES && state != NULL; s++)
        epi.state[s] = state[s];
    /* W (K x N) steps along A_prev^T (K x M) dZ (M x N): A_prev^T(k, i) = A_prev[i*K + k] */
    return (fm_product){ .M = K, .N = N, .K = M, .A = A_prev, .rsa = 1, .csa = K, .B = dZ,
                         .rsb = N, .csb = 1, .C = W, .ldc = N, .epi = epi,
                         .panels = panels ? FM_PANELS_C : FM_PANELS_NONE };
}

fm_product fm_weight_grad_product(float *gW, const float *A_prev, const float *dZ, ptrdiff_t M,
                                  ptrdiff_t K, ptrdiff_t N)
{
    fm_epilogue epi = { .kind = FM_EPI_STORE };
    /* gW (K x N, row-major) = A_prev^T (K x M) dZ (M x N): A_prev^T(k, i) = A_prev[i*K + k] */
    return (fm_product){ .M = K, .N = N, .K = M, .A = A_prev, .rsa = 1, .csa = K, .B = dZ,
                         .rsb = N, .csb = 1, .C = gW, .ldc = N, .epi = epi,
                         .panels = FM_PANELS_NONE };
}

void fm_bias_grad_share(float *gb, const float *dZ, ptrdiff_t M, ptrdiff_t N, int tid, int nth)
{
    /* Whole 16-float units per thread, as fm_bias_update_share; each column summed in
     * ascending row order, as the bias update sums it. */
    ptrdiff_t units = (N + 15) / 16;
    ptrdiff_t j0 = units * tid / nth * 16, j1 = units * (tid + 1) / nth * 16;
    if (j1 > N)
        j1 = N;
    for (ptrdiff_t j = j0; j < j1; j++)
        gb[j] = 0.0f;
    for (ptrdiff_t i = 0; i < M; i++) {
        const float *row = dZ + i * N;
        for (ptrdiff_t j = j0; j < j1; j++)
            gb[j] += row[j];
    }
}

/* Columns [j0, j1) of b step along the column sums of dZ. Rows outer, columns inner: the inner
 * loop runs along contiguous memory and vectorises, and every column's sum keeps its order
 * (so its bits). Columns go in chunks summed on the stack. */
static void bias_update_columns(float *b, float *const *state, const float *dZ, ptrdiff_t M,
                                ptrdiff_t N, ptrdiff_t j0, ptrdiff_t j1,
                                const fm_optimizer *opt, atomic_int *not_finite)
{
    enum { CHUNK = 1024 };
    float g[CHUNK];
    fm_epilogue epi = { .kind = FM_EPI_UPDATE, .opt = *opt, .not_finite = not_finite };
    for (int s = 0; s < FM_OPT_STATES && state != NULL; s++)
        epi.state[s] = state[s];
    epi.opt.alpha = 0.0f;   /* no L2 penalty on the biases */
    fm_tile tile = { .epi = &epi };
    for (int s = 0; s < FM_OPT_STATES; s++)
        tile.state[s] = epi.state[s];
    for (ptrdiff_t c0 = j0; c0 < j1; c0 += CHUNK) {
        ptrdiff_t nj = j1 - c0 < CHUNK ? j1 - c0 : CHUNK;
        for (ptrdiff_t j = 0; j < nj; j++)
            g[j] = 0.0f;
        for (ptrdiff_t i = 0; i < M; i++) {
            const float *row = dZ + i * N + c0;
            for (ptrdiff_t j = 0; j < nj; j++)
                g[j] += row[j];
        }
        for (ptrdiff_t j = 0; j < nj; j++)
            epilogue_vector(0, &epi, &tile, g[j], 0, c0 + j, b + c0 + j, 0, 1, 1, NULL);
    }
}

void fm_bias_update_share(float *b, float *const *state, const float *dZ, ptrdiff_t M,
                          ptrdiff_t N, const fm_optimizer *opt, atomic_int *not_finite,
                          int tid, int nth)
{
    /* Whole 16-float units per thread: no two threads write the same cache line of b. */
    ptrdiff_t units = (N + 15) / 16;
    ptrdiff_t j0 = units * tid / nth * 16, j1 = units * (tid + 1) / nth * 16;
    if (j1 > N)
        j1 = N;
    if (j0 < j1)
        bias_update_columns(b, state, dZ, M, N, j0, j1, opt, not_finite);
}

int fm_dense_forward(float *out, const float *X, const float *W, const float *b,
                     ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, int activation)
{
    fm_product p = fm_forward_product(out, X, W, b, M, K, N, activation, 0);
    return fm_product_run(&p);
}

int fm_dense_backward_input(float *dA_prev, const float *dZ, const float *W, const float *A_prev,
                            int activation, ptrdiff_t M, ptrdiff_t K, ptrdiff_t N)
{
    fm_product p = fm_input_grad_product(dA_prev, dZ, W, A_prev, activation, M, K, N, 0);
    return fm_product_run(&p);
}

int fm_dense_update(float *W, float *b, float *vW, float *vb,
                    const float *A_prev, const float *dZ,
                    ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, const fm_optimizer *opt)
{
    atomic_int not_finite;
    atomic_init(&not_finite, 0);
    fm_optimizer sgd = *opt;
    sgd.rule = FM_OPT_SGD;   /* the one rule whose state is at most a velocity */
    float *const state_W[FM_OPT_STATES] = { vW }, *const state_b[FM_OPT_STATES] = { vb };
    fm_product p = fm_weight_update_product(W, state_W, A_prev, dZ, M, K, N, &sgd, &not_finite,
                                            0);
    if (fm_product_run(&p) != 0)
        return FM_ERR_MEMORY;
    fm_bias_update_share(b, state_b, dZ, M, N, &sgd, &not_finite, 0, 1);
    return atomic_load(&not_finite) ? FM_ERR_NOT_FINITE : 0;
}
