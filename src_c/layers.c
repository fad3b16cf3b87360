/* layers.c - one dense layer's forward pass, input gradient and optimiser step, on fm_gemm. */
#include "epilogue.h"
#include "fastmlp.h"
#include "gemm.h"

int fm_dense_forward(float *out, const float *X, const float *W, const float *b,
                     ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, int relu)
{
    fm_epilogue epi = { .kind = relu ? FM_EPI_BIAS_RELU : FM_EPI_BIAS, .bias = b };
    /* out (M x N) = X (M x K) W (K x N) */
    return fm_gemm(M, N, K, X, K, 1, W, N, 1, out, N, &epi);
}

int fm_dense_backward_input(float *dA_prev, const float *dZ, const float *W, const float *A_prev,
                            ptrdiff_t M, ptrdiff_t K, ptrdiff_t N)
{
    fm_epilogue epi = { .kind = A_prev ? FM_EPI_MASK : FM_EPI_STORE, .mask = A_prev, .ldm = K };
    /* dA_prev (M x K) = dZ (M x N) W^T (N x K): W^T(n, k) = W[k*N + n] */
    return fm_gemm(M, K, N, dZ, N, 1, W, 1, N, dA_prev, K, &epi);
}

/* b (N) steps along the column sums of dZ (M x N), each summed in ascending row order.
 * Rows outer, columns inner: the inner loop runs along contiguous memory and vectorises, and
 * every column's sum keeps its order (so its bits). Columns go in chunks summed on the stack. */
static void bias_update(float *b, float *vb, const float *dZ, ptrdiff_t M, ptrdiff_t N,
                        const fm_optimizer *opt)
{
    enum { CHUNK = 1024 };
    float g[CHUNK];
    fm_epilogue epi = { .kind = FM_EPI_SGD, .lr = opt->lr, .alpha = 0.0f,
                        .momentum = opt->momentum, .nesterov = opt->nesterov, .velocity = vb };
    for (ptrdiff_t j0 = 0; j0 < N; j0 += CHUNK) {
        ptrdiff_t nj = N - j0 < CHUNK ? N - j0 : CHUNK;
        for (ptrdiff_t j = 0; j < nj; j++)
            g[j] = 0.0f;
        for (ptrdiff_t i = 0; i < M; i++) {
            const float *row = dZ + i * N + j0;
            for (ptrdiff_t j = 0; j < nj; j++)
                g[j] += row[j];
        }
        for (ptrdiff_t j = 0; j < nj; j++)
            fm_epilogue_store(&epi, g[j], 0, j0 + j, b + j0 + j, vb ? vb + j0 + j : NULL);
    }
}

int fm_dense_update(float *W, float *b, float *vW, float *vb,
                    const float *A_prev, const float *dZ,
                    ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, const fm_optimizer *opt)
{
    fm_epilogue epi = { .kind = FM_EPI_SGD, .lr = opt->lr, .alpha = opt->alpha,
                        .momentum = opt->momentum, .nesterov = opt->nesterov, .velocity = vW };
    /* W (K x N) steps along A_prev^T (K x M) dZ (M x N): A_prev^T(k, i) = A_prev[i*K + k] */
    if (fm_gemm(K, N, M, A_prev, 1, K, dZ, N, 1, W, N, &epi) != 0)
        return -1;
    bias_update(b, vb, dZ, M, N, opt);
    return 0;
}
