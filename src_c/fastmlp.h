/* fastmlp.h - the C kernels that the Python package calls.
 *
 * All matrices are C-contiguous float32, row-major; W has shape (n_in, n_out) as in X @ W + b.
 * The exception is a whole network's weights (fm_net), kept in gemm.h's column panels.
 * The Cython layer validates shapes and dtypes. The functions that index with values they are
 * given (labels, row numbers) check each one as they read it, so a buffer that another thread
 * changes after the binding's check cannot make them read or write out of bounds.
 * Functions returning int give 0 on success, FM_ERR_MEMORY when memory could not be allocated,
 * FM_ERR_NOT_FINITE where a NaN or an infinity arose (as each function says) and FM_ERR_INDEX
 * for a label or row number out of range.
 */
#ifndef FASTMLP_H
#define FASTMLP_H

#include <stddef.h>
#include <stdint.h>

#include "frame/threads.h"
#include "ops/activation.h"
#include "ops/optimizer.h"

enum fm_error { FM_ERR_MEMORY = -1, FM_ERR_NOT_FINITE = -2, FM_ERR_INDEX = -3 };

/* The losses: MSE and CROSS_ENTROPY on integer labels (the tutorial's), the others
 * scikit-learn's (sklearn/neural_network/_base.py) on float targets with sample weights. */
enum fm_loss_kind {
    FM_LOSS_MSE = 0,
    FM_LOSS_CROSS_ENTROPY = 1,
    FM_LOSS_SQUARED_ERROR = 2,   /* p = z           l = 0.5 mean_j (y - p)^2 */
    FM_LOSS_LOG = 3,             /* p = softmax(z)  l = -sum_j y log p */
    FM_LOSS_BINARY_LOG = 4,      /* p = logistic(z) l = -sum_j [y log p + (1 - y) log(1 - p)] */
    FM_LOSS_POISSON = 5          /* p = exp(z)      l = sum_j [xlogy(y, y / p) - y + p] */
};

/* What a step trains towards. kind MSE or CROSS_ENTROPY: labels (M), the loss the batch's
 * mean. The other kinds: Y (M x n_out, float targets), weights (M, >= 0, or NULL for all 1)
 * and scale (> 0, scikit-learn's 1 / the batch's weight sum); the loss is S = sum_i w_i l_i
 * (not divided), the output gradient (p - y) w_i scale, the gradient of S scale. p's
 * probabilities are clipped to [DBL_EPSILON, 1 - DBL_EPSILON] inside the logs. */
typedef struct {
    int kind;                  /* enum fm_loss_kind */
    const int32_t *labels;
    const float *Y;
    const float *weights;
    double scale;
} fm_targets;

/* ---- single-layer kernels ---- */

/* out (M x N) = f(X (M x K) @ W (K x N) + b), f the activation (ops/activation.h), none for
 * FM_ACT_NONE. */
int fm_dense_forward(float *out, const float *X, const float *W, const float *b,
                     ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, int activation);

/* dA_prev (M x K) = dZ (M x N) @ W^T, times the derivative of the activation whose output is
 * A_prev (A_prev NULL: as it is); for an activation that keeps z (fm_activation_keeps_z),
 * A_prev is the pre-activation z instead. */
int fm_dense_backward_input(float *dA_prev, const float *dZ, const float *W, const float *A_prev,
                            int activation, ptrdiff_t M, ptrdiff_t K, ptrdiff_t N);

/* In-place SGD step (opt->rule is not read): gradient of W is A_prev^T @ dZ (K x N), of b the
 * column sums of dZ. vW, vb: velocity buffers shaped like W and b, or NULL for plain SGD. Returns
 * FM_ERR_NOT_FINITE when a weight or bias it wrote is NaN or infinite. */
int fm_dense_update(float *W, float *b, float *vW, float *vb,
                    const float *A_prev, const float *dZ,
                    ptrdiff_t M, ptrdiff_t K, ptrdiff_t N, const fm_optimizer *opt);

/* Loss of out (M x N) against integer labels (M) in [0, N), and its gradient dout (M x N).
 * A label out of range gives a NaN loss and a zero gradient row, and reads nothing out of
 * bounds.
 * MSE: sum((out - onehot)^2) / M, dout = 2 (out - onehot) / M.
 * Cross-entropy: mean(-log softmax(out)[label]), dout = (softmax(out) - onehot) / M. */
double fm_mse_loss_grad(float *dout, const float *out, const int32_t *labels,
                        ptrdiff_t M, ptrdiff_t N);
double fm_cross_entropy_loss_grad(float *dout, const float *out, const int32_t *labels,
                                  ptrdiff_t M, ptrdiff_t N);

/* The same for `rows` rows of a batch of M (the gradient's 1/M is the batch's): writes their
 * gradient and returns the sum of their losses, not divided by M. Summing the rows' sums
 * gives the batch's loss up to the order of the additions. */
double fm_mse_rows_grad(float *dout, const float *out, const int32_t *labels,
                        ptrdiff_t rows, ptrdiff_t N, ptrdiff_t M);
double fm_cross_entropy_rows_grad(float *dout, const float *out, const int32_t *labels,
                                  ptrdiff_t rows, ptrdiff_t N, ptrdiff_t M);

/* The loss summed over rows [i0, i0 + rows) of out (M x N) against t's targets for those rows,
 * and its gradient written to the same rows of dout: for MSE and CROSS_ENTROPY the sum of the
 * rows' losses as fm_*_rows_grad (1 / M in the gradient), for the others the rows' part of S.
 * dout and out point at row i0; t's buffers at row 0. */
double fm_targets_rows_grad(float *dout, const float *out, const fm_targets *t, ptrdiff_t i0,
                            ptrdiff_t rows, ptrdiff_t N, ptrdiff_t M);

/* ---- the whole network ---- */

typedef struct {
    int n_layers;              /* number of dense layers, >= 1 */
    const ptrdiff_t *sizes;    /* n_layers + 1 widths: input, hidden..., output */
    float *const *W;           /* W[l]: sizes[l] x sizes[l+1], in gemm.h's column panels (the
                                  layout the forward product reads without packing) */
    float *const *b;           /* b[l]: sizes[l+1] */
    float *const *state_W[FM_OPT_STATES];  /* the update rule's state buffers like W (column
                                  panels too), each NULL when unused (ops/optimizer.h):
                                  momentum's velocity in state 0, Adam's moments in 0 and 1 */
    float *const *act;         /* act[l], l = 0..n_layers-1: output of layer l, max_batch x sizes[l+1] */
    float *const *grad;        /* grad[l]: gradient w.r.t. layer l's pre-activation, same shape */
    int activation;            /* the hidden layers' activation (enum fm_activation) */
    int n_threads;             /* threads for this network's calls; <= 0: fm_get_num_threads() */
    int check_finite;          /* nonzero: a training step checks the weights it wrote, and
                                  returns FM_ERR_NOT_FINITE if one is NaN or infinite */
    float *const *pre;         /* pre[l], l = 0..n_layers-2: hidden layer l's pre-activation z,
                                  like act[l], for an activation whose derivative needs it
                                  (fm_activation_keeps_z; a training step then requires it);
                                  for a layer with dropout, what its derivative reads: z, or
                                  f(z) before the drop when the output's sign does not tell
                                  (fm_activation_sign_only; fm_net_keeps_pre says which);
                                  else NULL */
    float *const *state_b[FM_OPT_STATES];  /* the same like b. Last but for dropout, so the
                                  fields above keep their offsets (benchmarks/c/ab_builds calls
                                  older builds) */
    const double *dropout;     /* NULL, or n_layers - 1 rates in [0, 1): a training step (and
                                  the gradient mode) drops each unit of hidden layer l's output
                                  with probability dropout[l] and scales the others by
                                  1 / (1 - dropout[l]) (ops/dropout.h); a forward pass never */
    uint64_t dropout_seed;     /* the masks' key */
    uint64_t dropout_step;     /* the step's number in the masks' counter (mod 2^32) */
    int bf16;                  /* nonzero: every product of the network's steps and passes in
                                  bf16 (frame/gemm_pairs.c), the rest in float */
} fm_net;

/* Whether a training step of net needs pre[l] for hidden layer l (fm_net.pre). */
static inline int fm_net_keeps_pre(const fm_net *net, int l)
{
    const enum fm_activation act = (enum fm_activation)net->activation;
    return fm_activation_keeps_z(act)
           || (net->dropout != NULL && net->dropout[l] > 0.0 && !fm_activation_sign_only(act));
}

/* 1 when none of the n floats at x is NaN or infinite, else 0. */
int fm_all_finite(const float *x, ptrdiff_t n);

/* out[i] = x[i] rounded to float32, for i < n, on fm_get_num_threads() threads (each writing a
 * contiguous part: fresh pages are made by the thread that touches them first). Returns 0, or
 * -1 when a value is infinite in float32 (beyond its range, or infinite already); out is
 * written all the same. */
int fm_float32_from_float64(float *out, const double *x, ptrdiff_t n);

/* 0 when every buffer of a network with these n_layers + 1 widths and batch size has a byte
 * size that fits in ptrdiff_t (every width and the batch >= 1), else -1. */
int fm_network_sizes_check(int n_layers, const ptrdiff_t *sizes, ptrdiff_t max_batch);

/* One training step on the batch X (M x sizes[0]) with labels (M), M <= the buffers' max_batch.
 * Writes the batch loss (computed before the update) to *loss. When it is not finite as a
 * float32 (NaN, infinite or beyond FLT_MAX) the weights are left untouched. Returns
 * FM_ERR_INDEX, the weights untouched, when a label is outside [0, sizes[n_layers]), and, with
 * net->check_finite, FM_ERR_NOT_FINITE when the update wrote a NaN or infinite weight or bias.
 * The update is opt's rule: SGD (momentum when net gives state 0), or Adam, for which net gives
 * both states of every W and b. */
int fm_train_step(const fm_net *net, ptrdiff_t M, const float *X, const int32_t *labels,
                  int loss_kind, const fm_optimizer *opt, double *loss);

/* fm_train_step on the rows rows[0..M) of X (n x sizes[0]) with their labels (labels[rows[i]],
 * labels of length n): a shuffled batch, without a copy made before the call. The team copies
 * those rows into batch (M x sizes[0]) and their labels into batch_labels (M), each thread its
 * share, then trains on them as fm_train_step does: the same bits as fm_train_step on a
 * gathered copy. A row number outside [0, n) is FM_ERR_INDEX, the weights untouched. */
int fm_train_step_rows(const fm_net *net, ptrdiff_t M, const float *X, const int32_t *labels,
                       ptrdiff_t n, const int64_t *rows, float *batch, int32_t *batch_labels,
                       int loss_kind, const fm_optimizer *opt, double *loss);

/* Buffers of M rows that a step gathers a shuffled batch into (fm_train_step_targets): those
 * its targets have (labels, or Y and, with weights, weights) and X. */
typedef struct {
    float *X;            /* M x sizes[0] */
    int32_t *labels;     /* M */
    float *Y;            /* M x sizes[n_layers] */
    float *weights;      /* M */
} fm_batch;

/* A training step towards any targets (fm_targets), on X (M x sizes[0]) or, with rows !=
 * NULL, on its rows rows[0..M) of n (t's buffers then of n rows), gathered first by the team
 * into batch. *loss: the mean for MSE / CROSS_ENTROPY, else S (fm_targets).
 * Otherwise as fm_train_step_rows: the same bits as on a gathered copy, and FM_ERR_INDEX for a
 * row number outside [0, n) or a label out of range, the weights untouched. */
int fm_train_step_targets(const fm_net *net, ptrdiff_t M, const float *X, const fm_targets *t,
                          ptrdiff_t n, const int64_t *rows, const fm_batch *batch,
                          const fm_optimizer *opt, double *loss);

/* The gradient mode (for L-BFGS): forward, loss and backward on X (M x sizes[0]), M <= the
 * buffers' max_batch, writing the gradient of the loss times t->scale (S scale, fm_targets;
 * for MSE / CROSS_ENTROPY the mean loss) with respect to every weight and bias: gW[l]
 * (sizes[l] x sizes[l+1], row-major) and gb[l] (sizes[l+1]), overwritten. No update, no L2.
 * *loss as fm_train_step_targets. The same bits on every path and thread count. */
int fm_gradient(const fm_net *net, ptrdiff_t M, const float *X, const fm_targets *t,
                float *const *gW, float *const *gb, double *loss);

/* The sum of the squares of every weight of every layer (not the biases), in double: the L2
 * term's sum. */
double fm_weights_sum_squares(const fm_net *net);

/* out (M x sizes[n_layers]) = the network's raw output for X (M x sizes[0]).
 * scratch[l], l = 0..n_layers-2: scratch_rows x sizes[l+1] buffers for the hidden activations,
 * scratch_rows >= 1. With fewer than fm_forward_scratch_rows(net, M) rows it still computes the
 * same bits, more slowly (in chunks of scratch_rows rows, layer by layer). */
int fm_forward(const fm_net *net, ptrdiff_t M, const float *X, float *out, float *const *scratch,
               ptrdiff_t scratch_rows);

/* fm_forward on an X not yet checked: returns FM_ERR_NOT_FINITE, out then undefined, when X
 * holds a NaN or an infinity. A pass of many rows checks each block of rows as the thread
 * computing it packs it for the first product, in the cache, instead of reading all of X from
 * memory once more. */
int fm_forward_finite(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                      float *const *scratch, ptrdiff_t scratch_rows);

/* The scratch rows fm_forward wants for M rows with the current thread count: M, or fewer for
 * a pass of many rows (a slot of rows per thread). */
ptrdiff_t fm_forward_scratch_rows(const fm_net *net, ptrdiff_t M);

#endif
