/* layers.h - a dense layer's three products (forward, input gradient, weight update) and its
 * bias update, as pieces that fastmlp.h's whole-call kernels and the one-region training step
 * (nn/mlp_step.c) both schedule. Shapes and meaning as in fastmlp.h. */
#ifndef FASTMLP_LAYERS_H
#define FASTMLP_LAYERS_H

#include <stdatomic.h>

#include "fastmlp.h"
#include "frame/gemm.h"

/* In each product W (K x N), and its optimiser state, are row-major when panels == 0, or in
 * gemm.h's column panels when panels != 0 (a network's weights, fm_net). */

/* out (M x N) = f(X (M x K) W (K x N) + b), f the activation (ops/activation.h), or none
 * for FM_ACT_NONE. */
fm_product fm_forward_product(float *out, const float *X, const float *W, const float *b,
                              ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, int activation, int panels);

/* dA_prev (M x K) = dZ (M x N) W^T, times the derivative of A_prev's activation (from A_prev,
 * the activation's output), or as it is when A_prev is NULL. */
fm_product fm_input_grad_product(float *dA_prev, const float *dZ, const float *W,
                                 const float *A_prev, int activation, ptrdiff_t M, ptrdiff_t K,
                                 ptrdiff_t N, int panels);

/* W (K x N) steps along A_prev^T (K x M) dZ (M x N), with the rule's state buffers state[s]
 * shaped like W (ops/optimizer.h; each NULL when unused, or state NULL for none); not_finite:
 * NULL, or set to 1 when a weight it writes is NaN or infinite. */
fm_product fm_weight_update_product(float *W, float *const *state, const float *A_prev,
                                    const float *dZ,
                                    ptrdiff_t M, ptrdiff_t K, ptrdiff_t N,
                                    const fm_optimizer *opt, atomic_int *not_finite, int panels);

/* gW (K x N, row-major, overwritten) = A_prev^T (K x M) dZ (M x N): a weight gradient, for the
 * gradient mode (fm_gradient). */
fm_product fm_weight_grad_product(float *gW, const float *A_prev, const float *dZ, ptrdiff_t M,
                                  ptrdiff_t K, ptrdiff_t N);

/* Thread tid's share, among nth, of gb (N, overwritten) = the column sums of dZ (M x N), each
 * summed in ascending row order: the same bits for every split. */
void fm_bias_grad_share(float *gb, const float *dZ, ptrdiff_t M, ptrdiff_t N, int tid, int nth);

/* Thread tid's share, among nth, of b's step along the column sums of dZ (M x N): a range of
 * columns in units of 16 floats. Each column is summed in ascending row order whatever the
 * split, so every split gives the same bits. Synchronises nothing. state (shaped like b) and
 * not_finite as above. */
void fm_bias_update_share(float *b, float *const *state, const float *dZ, ptrdiff_t M,
                          ptrdiff_t N, const fm_optimizer *opt, atomic_int *not_finite,
                          int tid, int nth);

#endif
