/* optimizer.h - the update rule of one weight and its state: SGD with an L2 penalty, momentum
 * and Nesterov momentum, fused into the store of the weight-gradient product (ops/epilogue.h).
 * The struct is plain C; the rule below it needs a vec_<isa>.h included first.
 */
#ifndef FASTMLP_OPTIMIZER_H
#define FASTMLP_OPTIMIZER_H

/* The state buffers an update rule may keep beside each weight, each shaped like the weights:
 * momentum's velocity is state 0; Adam's two moments would be states 0 and 1. */
enum { FM_OPT_STATES = 2 };

/* The optimiser step applied to every weight matrix and bias. */
typedef struct {
    float lr;
    float alpha;      /* L2 penalty on the weights (not the biases), 0 for none */
    float momentum;   /* used when a velocity (state 0) is given */
    int nesterov;
} fm_optimizer;

#endif

#if defined(FM_VL) && !defined(FASTMLP_OPTIMIZER_MATH)
#define FASTMLP_OPTIMIZER_MATH

/* The new weights for weights w and gradient acc; vel: the velocity's lanes (in, out) or NULL
 * for plain SGD.
 *     g = alpha != 0 ? alpha w + acc : acc                 (one rounding: fma)
 *     plain SGD:   w' = w - lr g                           (fma)
 *     momentum:    t = -lr g;  v' = momentum v + t;  w' = w + (nesterov ? momentum v' + t : v') */
FM_INLINE fm_vec optimizer_step(const fm_optimizer *o, fm_vec w, fm_vec acc, fm_vec *vel)
{
    const fm_vec g = o->alpha != 0.0f ? v_fma(v_set1(o->alpha), w, acc) : acc;
    if (vel == NULL)
        return v_fma(v_set1(-o->lr), g, w);
    const fm_vec mom = v_set1(o->momentum);
    const fm_vec t = v_mul(v_set1(-o->lr), g);
    *vel = v_fma(mom, *vel, t);
    return v_add(w, o->nesterov ? v_fma(mom, *vel, t) : *vel);
}

#endif
