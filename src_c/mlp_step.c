/* mlp_step.c - a whole training step and a whole forward pass over every layer, in one call.
 *
 * Each call is one OpenMP parallel region: the team computes every product in turn, each
 * thread its share (fm_product_share), with a barrier only where a product reads what the
 * previous one wrote. A training step of an L-layer network has 2L barriers:
 *
 *   forward    layer 0 | layer 1 | ... | layer L-1 |          each reads the one before
 *   loss       thread 0 alone (M x n_out: tiny)   |
 *   backward   input gradient of layer L-1         |          W[L-1] read before it moves
 *              update L-1, input gradient of L-2   |          (independent: no barrier between)
 *              ...
 *              update 1, update 0                             the region's end joins them
 *
 * Each product has its own schedule (gemm.h): the threads take its chunks in turn, so one
 * thread slowed by the rest of the machine does not hold the team up at the next barrier.
 * Which thread computes which element never changes a result (gemm.h), so the step's bits do
 * not depend on the thread count or the schedule.
 */
#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "dispatch.h"
#include "layers.h"

/* Schedules for a step's products (3 per layer); layers beyond use fixed shares. */
enum { MAX_SCHEDULES = 96 };

typedef struct {
    fm_schedule s[MAX_SCHEDULES];
} step_schedules;

static void reset_schedules(step_schedules *ss)
{
    for (int i = 0; i < MAX_SCHEDULES; i++)
        fm_schedule_reset(&ss->s[i]);
}

/* Schedule number i, or NULL (fixed shares) when there are not that many. */
static fm_schedule *schedule(step_schedules *ss, int i)
{
    return ss != NULL && i < MAX_SCHEDULES ? &ss->s[i] : NULL;
}

/* A barrier of the enclosing team; nothing when the caller runs alone. */
static void team_barrier(int nth)
{
    if (nth > 1) {
#ifdef _OPENMP
        #pragma omp barrier
#endif
    }
}

/* Thread tid's part of fm_forward. Returns 0, or -1 when a buffer could not be allocated. */
static int forward_share(const fm_net *net, ptrdiff_t M, const float *X, float *out,
                         float *const *scratch, step_schedules *ss, int tid, int nth)
{
    int failed = 0;
    const float *input = X;
    int last = net->n_layers - 1;
    for (int l = 0; l <= last; l++) {
        float *dest = l == last ? out : scratch[l];
        fm_product p = fm_forward_product(dest, input, net->W[l], net->b[l], M,
                                          net->sizes[l], net->sizes[l + 1], l != last, 1);
        failed |= fm_product_share(&p, tid, nth, schedule(ss, l)) != 0;
        team_barrier(nth);
        input = dest;
    }
    return failed ? -1 : 0;
}

/* Thread tid's part of fm_train_step. *loss and *skip are shared: thread 0 writes them before
 * a barrier, every thread reads *skip after it. */
static int train_share(const fm_net *net, ptrdiff_t M, const float *X, const int32_t *labels,
                       int loss_kind, const fm_optimizer *opt, double *loss, int *skip,
                       step_schedules *ss, int tid, int nth)
{
    int L = net->n_layers;
    int failed = forward_share(net, M, X, net->act[L - 1], net->act, ss, tid, nth) != 0;

    if (tid == 0) {
        ptrdiff_t n_out = net->sizes[L];
        *loss = loss_kind == FM_LOSS_CROSS_ENTROPY
            ? fm_cross_entropy_loss_grad(net->grad[L - 1], net->act[L - 1], labels, M, n_out)
            : fm_mse_loss_grad(net->grad[L - 1], net->act[L - 1], labels, M, n_out);
        /* A loss beyond float range means the float32 gradients are already meaningless. */
        *skip = failed || !isfinite((float)*loss);
    }
    team_barrier(nth);
    if (*skip)
        return failed ? -1 : 0;

    /* Walk back: each layer's input gradient is taken before that layer's weights move. */
    for (int l = L - 1; l >= 0; l--) {
        const float *input = l == 0 ? X : net->act[l - 1];
        ptrdiff_t K = net->sizes[l], N = net->sizes[l + 1];
        if (l > 0) {
            fm_product p = fm_input_grad_product(net->grad[l - 1], net->grad[l], net->W[l],
                                                 net->act[l - 1], M, K, N, 1);
            failed |= fm_product_share(&p, tid, nth, schedule(ss, L + l)) != 0;
            team_barrier(nth);
        }
        fm_product u = fm_weight_update_product(net->W[l], net->vW ? net->vW[l] : NULL,
                                                input, net->grad[l], M, K, N, opt, 1);
        failed |= fm_product_share(&u, tid, nth, schedule(ss, 2 * L + l)) != 0;
        fm_bias_update_share(net->b[l], net->vb ? net->vb[l] : NULL, net->grad[l], M, N, opt,
                             tid, nth);
    }
    return failed ? -1 : 0;
}

int fm_forward(const fm_net *net, ptrdiff_t M, const float *X, float *out, float *const *scratch)
{
    fm_dispatch_init();
    int nth = fm_get_num_threads();
    int failed = 0;
#ifdef _OPENMP
    if (nth > 1) {
        step_schedules ss;
        reset_schedules(&ss);
        #pragma omp parallel num_threads(nth) reduction(|:failed)
        failed |= forward_share(net, M, X, out, scratch, &ss, omp_get_thread_num(),
                                omp_get_num_threads()) != 0;
        return failed ? -1 : 0;
    }
#endif
    return forward_share(net, M, X, out, scratch, NULL, 0, 1);
}

int fm_train_step(const fm_net *net, ptrdiff_t M, const float *X, const int32_t *labels,
                  int loss_kind, const fm_optimizer *opt, double *loss)
{
    fm_dispatch_init();
    int nth = fm_get_num_threads();
    int failed = 0, skip = 0;
#ifdef _OPENMP
    if (nth > 1) {
        step_schedules ss;
        reset_schedules(&ss);
        #pragma omp parallel num_threads(nth) reduction(|:failed)
        failed |= train_share(net, M, X, labels, loss_kind, opt, loss, &skip, &ss,
                              omp_get_thread_num(), omp_get_num_threads()) != 0;
        return failed ? -1 : 0;
    }
#endif
    return train_share(net, M, X, labels, loss_kind, opt, loss, &skip, NULL, 0, 1);
}
