/* activation.h - the hidden layers' activations: each a forward function and its derivative.
 *
 * Adding one is this file alone: an enum value, its name, its forward function and its
 * derivative (written from the activation's output, which is what a layer keeps, or from z for
 * one whose output does not determine it: fm_activation_keeps_z), and whether its forward is
 * cheap enough to run inside the micro-kernel's store (else the frame applies it to the
 * finished tile, out of line: kernels/tile.h). The math is written over the vector
 * interface (kernels/vec.h), so it compiles once per instruction set and gives the same bits on
 * each. The part below the enum needs a vec_<isa>.h included first.
 */
#ifndef FASTMLP_ACTIVATION_H
#define FASTMLP_ACTIVATION_H

enum fm_activation {
    FM_ACT_NONE = -1,      /* a layer without one: the output layer (its epilogue adds the bias) */
    FM_ACT_RELU = 0,       /* max(z, 0) */
    FM_ACT_TANH = 1,       /* tanh(z) */
    FM_ACT_IDENTITY = 2,   /* z */
    FM_ACT_LOGISTIC = 3,   /* 1 / (1 + e^-z) */
    FM_ACT_LEAKY_RELU = 4, /* z > 0 ? z : LEAKY_SLOPE z */
    FM_ACT_GELU = 5,       /* z Phi(z), Phi the standard normal CDF (erf's exact form) */
    FM_ACT_COUNT
};

/* The names the binding and the file formats use, by enum value. */
static const char *const fm_activation_names[FM_ACT_COUNT] = {
    [FM_ACT_RELU] = "relu",
    [FM_ACT_TANH] = "tanh",
    [FM_ACT_IDENTITY] = "identity",
    [FM_ACT_LOGISTIC] = "logistic",
    [FM_ACT_LEAKY_RELU] = "leaky_relu",
    [FM_ACT_GELU] = "gelu",
};

/* Whether the forward function and the derivative run inside the micro-kernel's store (one
 * operation a vector); the others run over the finished tile in L1, so the kernel's code
 * stays small. */
static inline int fm_activation_cheap(enum fm_activation act)
{
    return act == FM_ACT_RELU;
}

/* Whether the derivative needs the pre-activation z, which the output does not determine
 * (GELU is not monotonic): a training step then keeps z too (fm_net.pre), and the input
 * gradient's epilogue reads z where the others read the output. */
static inline int fm_activation_keeps_z(enum fm_activation act)
{
    return act == FM_ACT_GELU;
}

/* Whether the derivative is read from the output's sign alone (or not at all), which a dropout
 * layer's dropped output f(z) d keeps (d = 0 or 1 / (1 - p) >= 1, and a dropped unit's gradient
 * is 0 whatever the derivative): its input gradient then reads the output as without dropout.
 * The others keep f(z) before the drop (fm_net.pre). */
static inline int fm_activation_sign_only(enum fm_activation act)
{
    return act == FM_ACT_RELU || act == FM_ACT_LEAKY_RELU || act == FM_ACT_IDENTITY;
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

/* For y = |x|, e^(-y^2 / 2) and the ratio Phi(-y) / e^(-y^2 / 2), each within a few ulp of
 * float64 (e^(-y^2 / 2) down to subnormal results). The ratio is s P(s), s = 1 / (1 + y / 2):
 * s P(s) is the Mills ratio over sqrt(2 pi), smooth in s on (0, 1], P a polynomial in
 * s - GELU_MID fitted for relative error on y in [0, GELU_TAIL]. y^2 = hi + lo exactly (an FMA
 * gives lo), and e^(-y^2 / 2) = e^(-hi / 2) (1 - lo / 2): at y = 14 a rounded y^2 alone would
 * cost e^(-y^2 / 2) about 100 ulp. Beyond GELU_TAIL, Phi(-y) is below float32's range. */
static const float GELU_TAIL = 14.4f, GELU_MID = 0.560240984f;

FM_INLINE void gelu_parts(fm_vec x, fm_vec *ratio, fm_vec *density_exp)
{
    const fm_vec y = v_min(v_set1(GELU_TAIL), v_abs(x));   /* NaN stays NaN */
    const fm_vec hi = v_mul(y, y);
    const fm_vec lo = v_fma(y, y, v_sub(v_zero(), hi));
    const fm_vec e_hi = v_exp(v_max(v_set1(EXP_LOWEST), v_mul(hi, v_set1(-0.5f))));
    const fm_vec e = v_fnma(e_hi, v_mul(lo, v_set1(0.5f)), e_hi);
    const fm_vec s = v_div(v_set1(1.0f), v_fma(y, v_set1(0.5f), v_set1(1.0f)));
    const fm_vec u = v_sub(s, v_set1(GELU_MID));
    fm_vec p = v_set1(-3.345152363e-02f);
    p = v_fma(p, u, v_set1(6.628350168e-02f));
    p = v_fma(p, u, v_set1(-1.220978424e-02f));
    p = v_fma(p, u, v_set1(-6.617031246e-02f));
    p = v_fma(p, u, v_set1(7.421357185e-02f));
    p = v_fma(p, u, v_set1(-7.367467973e-03f));
    p = v_fma(p, u, v_set1(-7.416309416e-02f));
    p = v_fma(p, u, v_set1(8.241282403e-02f));
    p = v_fma(p, u, v_set1(2.496868558e-02f));
    p = v_fma(p, u, v_set1(-1.441659182e-01f));
    p = v_fma(p, u, v_set1(3.119160235e-02f));
    p = v_fma(p, u, v_set1(3.367480636e-01f));
    p = v_fma(p, u, v_set1(3.563450575e-01f));
    *ratio = v_mul(s, p);
    *density_exp = e;
}

/* v where |x| < GELU_TAIL, else 0 (NaN: 0). */
FM_INLINE fm_vec gelu_tail(fm_vec x, fm_vec v)
{
    return v_select(v_lt(v_abs(x), v_set1(GELU_TAIL)), v, v_zero());
}

/* GELU, x Phi(x), within 5 ulp of float64 where the result is normal and 10 steps of 2^-149
 * below (tests/test_activation_kernels.py): (x ratio) e^(-x^2 / 2) below 0 (e^(-x^2 / 2)
 * last, so that a result below float32's normal range rounds once), x - x Phi(-x) above (one
 * rounding; Phi(-x) <= 1/2). x is clamped to +-GELU_TAIL where Phi(-|x|) = 0 multiplies it,
 * so that the infinities give their limits, +inf and 0. */
FM_INLINE fm_vec v_gelu(fm_vec x)
{
    fm_vec ratio, e;
    gelu_parts(x, &ratio, &e);
    const fm_vec xc = v_min(v_set1(GELU_TAIL), v_max(v_set1(-GELU_TAIL), x));
    const fm_vec below = gelu_tail(x, v_mul(v_mul(xc, ratio), e));
    const fm_vec q = gelu_tail(x, v_mul(e, ratio));   /* Phi(-|x|) */
    return v_select(v_lt(x, v_zero()), below, v_fnma(xc, q, x));
}

/* GELU's derivative from z: Phi(z) + z phi(z), phi(z) = e^(-z^2 / 2) / sqrt(2 pi), z clamped
 * as in v_gelu. */
FM_INLINE fm_vec v_gelu_slope(fm_vec z)
{
    const float INV_SQRT_2PI = 0.398942280f;
    fm_vec ratio, e;
    gelu_parts(z, &ratio, &e);
    const fm_vec q = gelu_tail(z, v_mul(e, ratio));   /* Phi(-|z|) */
    const fm_vec zc = v_min(v_set1(GELU_TAIL), v_max(v_set1(-GELU_TAIL), z));
    const fm_vec cdf = v_select(v_lt(z, v_zero()), q, v_sub(v_set1(1.0f), q));
    return v_fma(zc, v_mul(e, v_set1(INV_SQRT_2PI)), cdf);
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
    case FM_ACT_GELU:
        return v_gelu(z);
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

/* dL/dz = g * f'(z), from the activation's output a = f(z), or from a = z itself for those
 * that keep it (fm_activation_keeps_z). */
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
    case FM_ACT_GELU:   /* a is z */
        return v_mul(g, v_gelu_slope(a));
    case FM_ACT_RELU:
    default:
        return v_select(v_gt(a, v_zero()), g, v_zero());       /* a > 0 ? g : 0 */
    }
}

#endif
