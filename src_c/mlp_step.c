/* mlp_step.c - a whole training step and a whole forward pass over every layer, in one call. */
#include <math.h>

#include "fastmlp.h"

int fm_forward(const fm_net *net, ptrdiff_t M, const float *X, float *out, float *const *scratch)
{
    const float *input = X;
    int last = net->n_layers - 1;
    for (int l = 0; l <= last; l++) {
        float *dest = l == last ? out : scratch[l];
        if (fm_dense_forward(dest, input, net->W[l], net->b[l], M,
                             net->sizes[l], net->sizes[l + 1], l != last) != 0)
            return -1;
        input = dest;
    }
    return 0;
}

int fm_train_step(const fm_net *net, ptrdiff_t M, const float *X, const int32_t *labels,
                  int loss_kind, const fm_optimizer *opt, double *loss)
{
    int L = net->n_layers;
    if (fm_forward(net, M, X, net->act[L - 1], net->act) != 0)
        return -1;

    ptrdiff_t n_out = net->sizes[L];
    *loss = loss_kind == FM_LOSS_CROSS_ENTROPY
        ? fm_cross_entropy_loss_grad(net->grad[L - 1], net->act[L - 1], labels, M, n_out)
        : fm_mse_loss_grad(net->grad[L - 1], net->act[L - 1], labels, M, n_out);
    /* A loss beyond float range means the float32 gradients are already meaningless. */
    if (!isfinite((float)*loss))
        return 0;

    /* Walk back: each layer's input gradient is taken before that layer's weights move. */
    for (int l = L - 1; l >= 0; l--) {
        const float *input = l == 0 ? X : net->act[l - 1];
        ptrdiff_t K = net->sizes[l], N = net->sizes[l + 1];
        if (l > 0 && fm_dense_backward_input(net->grad[l - 1], net->grad[l], net->W[l],
                                             net->act[l - 1], M, K, N) != 0)
            return -1;
        if (fm_dense_update(net->W[l], net->b[l], net->vW ? net->vW[l] : NULL,
                            net->vb ? net->vb[l] : NULL, input, net->grad[l], M, K, N, opt) != 0)
            return -1;
    }
    return 0;
}
