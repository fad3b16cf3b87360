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
    FM_ACT_LOGISTIC = 3,   /* 1 / (1 + e^-z) */
    FM_ACT_LEAKY_RELU = 4, /* z > 0 ? z : LEAKY_SLOPE z */
    FM_ACT_COUNT
};

/* The names the binding and the file formats use, by enum value. */
static const char *const fm_activation_names[FM_ACT_COUNT] = {
    [FM_ACT_RELU] = "relu",
    [FM_ACT_TANH] = "tanh",
    [FM_ACT_IDENTITY] = "identity",
    [FM_ACT_LOGISTIC] = "logistic",
    [FM_ACT_LEAKY_RELU] = "leaky_relu",
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

/* e^x for x in [EXP_LOWEST, 88.7] (callers clamp; NaN stays NaN), within 1 ulp of float64:
 * 2^n e^r with n = round(x / ln 2), |r| <= ln 2 / 2 (ln 2 in two parts, so r is exact), e^r by
 * its Taylor series to r^7. 2^n as 2^max(n, -126) 2^(n - max(n, -126)): the first product is
 * exact, so a result below float32's normal range rounds once, as a subnormal. */
static const float EXP_LOWEST = -104.0f;   /* e^x rounds to 0 below: 2^-150 and less */

FM_INLINE fm_vec v_exp(fm_vec x)
{
    const float LOG2E = 1.44269504f, LN2_HI = 0.693145752f, LN2_LO = 1.42860677e-6f;
    const fm_vec magic = v_set1(12582912.0f);                  /* 1.5 * 2^23: rounds to integer */
    const fm_vec n = v_sub(v_fma(x, v_set1(LOG2E), magic), magic);
    fm_vec r = v_fnma(n, v_set1(LN2_HI), x);
    r = v_fnma(n, v_set1(LN2_LO), r);
    fm_vec e = v_set1(1.0f / 5040.0f);
    e = v_fma(e, r, v_set1(1.0f / 720.0f));
    e = v_fma(e, r, v_set1(1.0f / 120.0f));
    e = v_fma(e, r, v_set1(1.0f / 24.0f));
    e = v_fma(e, r, v_set1(1.0f / 6.0f));
    e = v_fma(e, r, v_set1(0.5f));
    e = v_fma(e, r, v_set1(1.0f));
    e = v_fma(e, r, v_set1(1.0f));
    const fm_vec n_normal = v_max(v_set1(-126.0f), n);
    return v_mul(v_mul(e, v_exp2i(n_normal)), v_exp2i(v_sub(n, n_normal)));
}

/* tanh within 2 ulp of float64 (tests/test_activation_kernels.py). Below
 * TANH_SMALL in magnitude, x + x^3 P(x^2), P fitted for relative error on [0, TANH_SMALL];
 * above, 1 - 2 / (exp(2|x|) + 1) with the sign of x. Beyond TANH_SATURATES, tanh rounds to +-1
 * in float32. */
FM_INLINE fm_vec v_tanh(fm_vec x)
{
    const float TANH_SMALL = 0.625f, TANH_SATURATES = 10.0f;
    const fm_vec s = v_mul(x, x);
    fm_vec p = v_set1(0.002142952987924218f);
    p = v_fma(p, s, v_set1(-0.008177387528121471f));
    p = v_fma(p, s, v_set1(0.021700698882341385f));
    p = v_fma(p, s, v_set1(-0.05394676327705383f));
    p = v_fma(p, s, v_set1(0.1333320587873459f));
    p = v_fma(p, s, v_set1(-0.3333333134651184f));
    const fm_vec small = v_fma(p, v_mul(x, s), x);

    const fm_vec a = v_min(v_set1(TANH_SATURATES), v_abs(x));   /* NaN stays NaN */
    const fm_vec e = v_exp(v_add(a, a));
    const fm_vec one = v_set1(1.0f);
    const fm_vec large = v_sub(one, v_div(v_set1(2.0f), v_add(e, one)));
    return v_select(v_lt(a, v_set1(TANH_SMALL)), small, v_copysign(large, x));
}

/* The logistic function 1 / (1 + e^-x), within 2 ulp of float64: from e = e^-|x| in (0, 1],
 * u / (1 + e) with u = 1 for x >= 0 and u = e below, so that neither side cancels. The sum
 * d = 1 + e rounds, and so does the quotient q = u / d: their errors, d_err = (1 - d) + e and
 * u - q d (each exact), correct q by (u - q d - q d_err) / d, which leaves e^-|x|'s error. */
FM_INLINE fm_vec v_logistic(fm_vec x)
{
    const fm_vec one = v_set1(1.0f);
    const fm_vec e = v_exp(v_max(v_set1(EXP_LOWEST), v_sub(v_zero(), v_abs(x))));  /* NaN: NaN */
    const fm_vec u = v_select(v_lt(x, v_zero()), e, one);
    const fm_vec d = v_add(one, e);
    const fm_vec d_err = v_add(v_sub(one, d), e);
    const fm_vec q = v_div(u, d);
    const fm_vec rest = v_fnma(q, d_err, v_fnma(q, d, u));
    return v_add(q, v_div(rest, d));
}

/* Leaky ReLU's slope below 0: PyTorch's default negative_slope. */
static const float LEAKY_SLOPE = 0.01f;

/* f(z). */
FM_INLINE fm_vec activation_forward(enum fm_activation act, fm_vec z)
{
    switch (act) {
    case FM_ACT_TANH:
        return v_tanh(z);
    case FM_ACT_IDENTITY:
        return z;
    case FM_ACT_LOGISTIC:
        return v_logistic(z);
    case FM_ACT_LEAKY_RELU:
        return v_select(v_gt(z, v_zero()), z, v_mul(z, v_set1(LEAKY_SLOPE)));
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
    case FM_ACT_LOGISTIC:
        return v_mul(g, v_fnma(a, a, a));                      /* g a (1 - a) */
    case FM_ACT_LEAKY_RELU:   /* a has z's sign (a tiny negative z gives -0: not > 0) */
        return v_select(v_gt(a, v_zero()), g, v_mul(g, v_set1(LEAKY_SLOPE)));
    case FM_ACT_RELU:
    default:
        return v_select(v_gt(a, v_zero()), g, v_zero());       /* a > 0 ? g : 0 */
    }
}

#endif
