/* optimizer.h - the update rule of one weight and its state: SGD with an L2 penalty, momentum
 * and Nesterov momentum, or Adam, fused into the store of the weight-gradient product
 * (ops/epilogue.h).
 * The struct is plain C; the rule below it needs a vec_<isa>.h included first.
 */
#ifndef FASTMLP_OPTIMIZER_H
#define FASTMLP_OPTIMIZER_H

/* The state buffers an update rule may keep beside each weight, each shaped like the weights:
 * momentum's velocity is state 0; Adam's two moments are states 0 and 1. */
enum { FM_OPT_STATES = 2 };

/* The update rules. SGD keeps state 0 (the velocity) with momentum, none without; Adam keeps
 * both. Adam's update does more than a micro-kernel's store should hold: the frame applies it
 * over each finished tile instead (fm_epilogue_inline, frame/gemm.h). */
enum fm_update_rule {
    FM_OPT_SGD = 0,    /* SGD, with momentum or Nesterov momentum when a velocity is given */
    FM_OPT_ADAM = 1    /* Adam, as scikit-learn's AdamOptimizer */
};

/* The optimiser step applied to every weight matrix and bias. Zero-initialised fields give
 * plain SGD; the fields Adam adds come after SGD's, which keep their places. */
typedef struct {
    float lr;
    float alpha;      /* L2 penalty on the weights (not the biases), 0 for none */
    float momentum;   /* used when a velocity (state 0) is given */
    int nesterov;
    int rule;         /* enum fm_update_rule */
    float beta_1;     /* Adam: the moments' decay rates, in [0, 1) */
    float beta_2;
    float epsilon;    /* Adam: > 0, keeps the step finite where the second moment is 0 */
    float lr_t;       /* Adam: the step's rate lr sqrt(1 - beta_2^t) / (1 - beta_1^t) for step
                         t >= 1, computed in double by the caller, once a step */
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

/* Adam's new weights for weights w and gradient acc; m, v: the first and second moments'
 * lanes (in, out). scikit-learn's AdamOptimizer, each line one or two roundings:
 *     g  = alpha != 0 ? alpha w + acc : acc                (fma)
 *     m' = beta_1 m + (1 - beta_1) g                       (mul, fma)
 *     v' = beta_2 v + (1 - beta_2) g g                     (mul, mul, fma)
 *     w' = w - lr_t m' / (sqrt(v') + epsilon)              (sqrt, add, div, fnma) */
FM_INLINE fm_vec adam_step(const fm_optimizer *o, fm_vec w, fm_vec acc, fm_vec *m, fm_vec *v)
{
    const fm_vec g = o->alpha != 0.0f ? v_fma(v_set1(o->alpha), w, acc) : acc;
    *m = v_fma(v_set1(o->beta_1), *m, v_mul(v_set1(1.0f - o->beta_1), g));
    *v = v_fma(v_set1(o->beta_2), *v, v_mul(v_set1(1.0f - o->beta_2), v_mul(g, g)));
    const fm_vec denom = v_add(v_sqrt(*v), v_set1(o->epsilon));
    return v_fnma(v_set1(o->lr_t), v_div(*m, denom), w);
}

#endif
