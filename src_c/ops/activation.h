/* activation.h - the hidden layers' activations: each a forward function and its derivative.
 *
 * Adding one is this file alone: an enum value, its name, its forward function and its
 * derivative (written from the activation's output, which is what a layer keeps), and whether
 * its forward is cheap enough to run inside the micro-kernel's store (else the frame applies
 * it to the finished tile, out of line: kernels/tile.h). The math is written over the vector
 * interface (kernels/vec.h), so it compiles once per instruction set and gives the same bits on
 * each. The part below the enum needs a vec_<isa>.h included first.
 */
#ifndef FASTMLP_ACTIVATION_H
#define FASTMLP_ACTIVATION_H

enum fm_activation {
    FM_ACT_NONE = -1,  /* a layer without one: the output layer (its epilogue adds the bias) */
    FM_ACT_RELU = 0,   /* max(z, 0) */
    FM_ACT_TANH = 1,   /* tanh(z) */
    FM_ACT_IDENTITY = 2,   /* z */
    FM_ACT_COUNT
};

/* The names the binding and the file formats use, by enum value. */
static const char *const fm_activation_names[FM_ACT_COUNT] = {
    [FM_ACT_RELU] = "relu",
    [FM_ACT_TANH] = "tanh",
    [FM_ACT_IDENTITY] = "identity",
};

/* Whether the forward function and the derivative run inside the micro-kernel's store (one
 * operation a vector); the others run over the finished tile in L1, so the kernel's code
 * stays small. */
static inline int fm_activation_cheap(enum fm_activation act)
{
    return act == FM_ACT_RELU;
}

#endif

#if defined(FM_VL) && !defined(FASTMLP_ACTIVATION_MATH)
#define FASTMLP_ACTIVATION_MATH

/* tanh within 2 ulp of float64 (tests/test_activation_kernels.py). Below
 * TANH_SMALL in magnitude, x + x^3 P(x^2), P fitted for relative error on [0, TANH_SMALL];
 * above, 1 - 2 / (exp(2|x|) + 1) with the sign of x, exp as 2^n e^r (|r| <= ln 2 / 2, e^r by
 * its Taylor series to r^7). Beyond TANH_SATURATES, tanh rounds to +-1 in float32. */
FM_INLINE fm_vec v_tanh(fm_vec x)
{
    const float TANH_SMALL = 0.625f, TANH_SATURATES = 10.0f;
    const float LOG2E = 1.44269504f, LN2_HI = 0.693145752f, LN2_LO = 1.42860677e-6f;
    const fm_vec s = v_mul(x, x);
    fm_vec p = v_set1(0.002142952987924218f);
    p = v_fma(p, s, v_set1(-0.008177387528121471f));
    p = v_fma(p, s, v_set1(0.021700698882341385f));
    p = v_fma(p, s, v_set1(-0.05394676327705383f));
    p = v_fma(p, s, v_set1(0.1333320587873459f));
    p = v_fma(p, s, v_set1(-0.3333333134651184f));
    const fm_vec small = v_fma(p, v_mul(x, s), x);

    const fm_vec a = v_min(v_set1(TANH_SATURATES), v_abs(x));   /* NaN stays NaN */
    const fm_vec z = v_add(a, a);
    const fm_vec magic = v_set1(12582912.0f);                  /* 1.5 * 2^23: rounds to integer */
    const fm_vec n = v_sub(v_fma(z, v_set1(LOG2E), magic), magic);
    fm_vec r = v_fnma(n, v_set1(LN2_HI), z);
    r = v_fnma(n, v_set1(LN2_LO), r);
    fm_vec e = v_set1(1.0f / 5040.0f);
    e = v_fma(e, r, v_set1(1.0f / 720.0f));
    e = v_fma(e, r, v_set1(1.0f / 120.0f));
    e = v_fma(e, r, v_set1(1.0f / 24.0f));
    e = v_fma(e, r, v_set1(1.0f / 6.0f));
    e = v_fma(e, r, v_set1(0.5f));
    e = v_fma(e, r, v_set1(1.0f));
    e = v_fma(e, r, v_set1(1.0f));
    e = v_mul(e, v_exp2i(n));
    const fm_vec one = v_set1(1.0f);
    const fm_vec large = v_sub(one, v_div(v_set1(2.0f), v_add(e, one)));
    return v_select(v_lt(a, v_set1(TANH_SMALL)), small, v_copysign(large, x));
}

/* f(z). */
FM_INLINE fm_vec activation_forward(enum fm_activation act, fm_vec z)
{
    switch (act) {
    case FM_ACT_TANH:
        return v_tanh(z);
    case FM_ACT_IDENTITY:
        return z;
    case FM_ACT_RELU:
    default:
        return v_max(z, v_zero());   /* z > 0 ? z : 0 (NaN -> 0) */
    }
}

/* f(z) for the cheap activations (fm_activation_cheap), the only ones a micro-kernel's store
 * applies; the others never reach it. */
FM_INLINE fm_vec activation_forward_cheap(enum fm_activation act, fm_vec z)
{
    (void)act;
    return v_max(z, v_zero());   /* FM_ACT_RELU */
}

/* dL/dz for the cheap activations (fm_activation_cheap) alone. */
FM_INLINE fm_vec activation_backward_cheap(enum fm_activation act, fm_vec g, fm_vec a)
{
    (void)act;
    return v_select(v_gt(a, v_zero()), g, v_zero());   /* FM_ACT_RELU: a > 0 ? g : 0 */
}

/* dL/dz = g * f'(z), from the activation's output a = f(z). */
FM_INLINE fm_vec activation_backward(enum fm_activation act, fm_vec g, fm_vec a)
{
    switch (act) {
    case FM_ACT_TANH:
        return v_mul(g, v_fnma(a, a, v_set1(1.0f)));           /* g (1 - a^2) */
    case FM_ACT_IDENTITY:
        return g;
    case FM_ACT_RELU:
    default:
        return v_select(v_gt(a, v_zero()), g, v_zero());       /* a > 0 ? g : 0 */
    }
}

#endif
