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

/* GELU's parts for y = |x| clamped to GELU_TAIL: e^(-y^2 / 2) = 2^n density and Phi(-y) =
 * 2^n density ratio, each part to about twice float's precision as hi + lo, so that v_gelu and
 * v_gelu_slope round once at the end; they apply 2^n last, so that a result below float32's
 * normal range rounds there alone. Beyond GELU_TAIL, Phi(-y) and y e^(-y^2 / 2) / sqrt(2 pi)
 * round to 0 in float32. */
static const float GELU_TAIL = 14.6f, GELU_MID = 0.560240984f;

/* A value to about twice float's precision: hi + lo, lo the smaller part. */
typedef struct {
    fm_vec hi, lo;
} fm_vec2;

/* a b: a.hi b.hi exactly as hi + lo (the FMA gives the product's rounding error), plus the
 * cross terms; a.lo b.lo, below 2^-44 relative, is left out. */
FM_INLINE fm_vec2 v2_mul(fm_vec2 a, fm_vec2 b)
{
    const fm_vec p = v_mul(a.hi, b.hi);
    const fm_vec p_err = v_fma(a.hi, b.hi, v_sub(v_zero(), p));
    return (fm_vec2){ p, v_fma(a.hi, b.lo, v_fma(a.lo, b.hi, p_err)) };
}

/* e^(-y^2 / 2) = 2^n (hi + lo) for y in [0, GELU_TAIL]: n in [-154, 0], hi + lo in [0.7, 1.42]
 * within 2^-25 relative. y^2 = sq + sq_err exactly (the FMA gives sq_err), n = round(-sq / 2 /
 * ln 2), r = -sq / 2 - n ln 2 - sq_err / 2 as r + r_err (ln 2 in two parts; the first
 * difference is exact), e^r = 1 + r + r^2 Q(r), Q fitted for relative error on |r| <= 0.347. */
FM_INLINE fm_vec2 exp_minus_half_square(fm_vec y, fm_vec *n)
{
    const float LOG2E = 1.44269504f, LN2_HI = 0.693145752f, LN2_LO = 1.42860677e-6f;
    const fm_vec magic = v_set1(12582912.0f);                  /* 1.5 * 2^23: rounds to integer */
    const fm_vec minus_half = v_set1(-0.5f), one = v_set1(1.0f);
    const fm_vec sq = v_mul(y, y);
    const fm_vec sq_err = v_fma(y, y, v_sub(v_zero(), sq));
    const fm_vec a = v_mul(sq, minus_half);
    *n = v_sub(v_fma(a, v_set1(LOG2E), magic), magic);
    const fm_vec r_hi = v_fnma(*n, v_set1(LN2_HI), a);
    const fm_vec r_lo = v_fnma(*n, v_set1(LN2_LO), v_mul(sq_err, minus_half));
    const fm_vec r = v_add(r_hi, r_lo);
    const fm_vec r_err = v_add(v_sub(r_hi, r), r_lo);
    fm_vec q = v_set1(1.386371558e-03f);
    q = v_fma(q, r, v_set1(8.367558010e-03f));
    q = v_fma(q, r, v_set1(4.166724160e-02f));
    q = v_fma(q, r, v_set1(1.666653305e-01f));
    q = v_fma(q, r, v_set1(0.5f));
    /* 1 + r as e1 + its exact rounding error (|r| < 1), the rest added, then renormalised */
    const fm_vec e1 = v_add(one, r);
    const fm_vec rest = v_add(v_add(v_sub(one, e1), r), v_fma(v_mul(r, r), q, r_err));
    const fm_vec e = v_add(e1, rest);
    return (fm_vec2){ e, v_add(v_sub(e1, e), rest) };
}

/* The ratio Phi(-y) / e^(-y^2 / 2) for y in [0, GELU_TAIL], in (0.027, 0.5] within 2^-25
 * relative: s P(s - GELU_MID), s = 1 / (1 + y / 2). s P(s) is the Mills ratio over sqrt(2 pi),
 * smooth in s on (0, 1]; P is fitted for relative error, its last two steps (and C0, C1)
 * carried as hi + lo. s and s - GELU_MID keep their rounding errors too: 1 ulp off in s moves
 * the ratio by up to 1.6 ulp. */
FM_INLINE fm_vec2 normal_tail_ratio(fm_vec y)
{
    const float C0_HI = 3.563450575e-01f, C0_LO = 9.846873539e-09f;
    const float C1_HI = 3.367480636e-01f, C1_LO = -1.082580070e-08f;
    const fm_vec one = v_set1(1.0f), mid = v_set1(GELU_MID);
    const fm_vec half_y = v_mul(y, v_set1(0.5f));
    const fm_vec d = v_add(one, half_y);
    const fm_vec d_err = v_sub(half_y, v_sub(d, one));              /* both differences exact */
    const fm_vec s = v_div(one, d);
    const fm_vec s_err = v_mul(s, v_fnma(s, d_err, v_fnma(s, d, one)));
    const fm_vec u = v_sub(s, mid);
    const fm_vec u_err = v_add(v_sub(s, v_add(u, mid)), s_err);    /* exact: s <= 2 mid */
    fm_vec p = v_set1(6.776636839e-02f);
    p = v_fma(p, u, v_set1(-3.145316988e-02f));
    p = v_fma(p, u, v_set1(-6.696858257e-02f));
    p = v_fma(p, u, v_set1(7.835724205e-02f));
    p = v_fma(p, u, v_set1(-7.210842334e-03f));
    p = v_fma(p, u, v_set1(-7.457331568e-02f));
    p = v_fma(p, u, v_set1(8.239933848e-02f));
    p = v_fma(p, u, v_set1(2.498697862e-02f));
    p = v_fma(p, u, v_set1(-1.441654414e-01f));
    p = v_fma(p, u, v_set1(3.119130619e-02f));
    /* p1 = C1 + u p, then p0 = C0 + (u + u_err) p1, each sum hi + lo (|C| the larger term) */
    const fm_vec t1 = v_mul(u, p);
    const fm_vec p1 = v_add(v_set1(C1_HI), t1);
    const fm_vec p1_err = v_add(v_add(v_sub(v_set1(C1_HI), p1), t1), v_set1(C1_LO));
    const fm_vec t0 = v_mul(u, p1);
    const fm_vec t0_err = v_fma(u, p1_err, v_fma(u_err, p1, v_fma(u, p1, v_sub(v_zero(), t0))));
    const fm_vec p0 = v_add(v_set1(C0_HI), t0);
    const fm_vec p0_err = v_add(v_add(v_sub(v_set1(C0_HI), p0), t0), v_add(t0_err, v_set1(C0_LO)));
    return v2_mul((fm_vec2){ s, s_err }, (fm_vec2){ p0, p0_err });
}

/* GELU's parts at x (above GELU_TAIL's definition). */
typedef struct {
    fm_vec y;          /* min(|x|, GELU_TAIL) (NaN stays NaN) */
    fm_vec n;          /* an integer in [-154, 0] */
    fm_vec2 density;   /* e^(-y^2 / 2) / 2^n */
    fm_vec2 ratio;     /* Phi(-y) / e^(-y^2 / 2) */
} gelu_parts;

FM_INLINE gelu_parts gelu_parts_of(fm_vec x)
{
    gelu_parts g;
    g.y = v_min(v_set1(GELU_TAIL), v_abs(x));
    g.density = exp_minus_half_square(g.y, &g.n);
    g.ratio = normal_tail_ratio(g.y);
    return g;
}

/* v where |x| < GELU_TAIL, else 0 (NaN: 0). */
FM_INLINE fm_vec gelu_tail(fm_vec x, fm_vec v)
{
    return v_select(v_lt(v_abs(x), v_set1(GELU_TAIL)), v, v_zero());
}

/* 2^n as 2^(n + 64) 2^-64 (n + 64 in float32's normal range): f 2^(n + 64) is exact for the f
 * here, so that f 2^n rounds once, as a subnormal below float32's normal range. */
static const float TWO_TO_MINUS_64 = 5.421010862e-20f;

/* GELU, x Phi(x), within 2 ulp of float64 where the result is normal and 2 steps of 2^-149
 * below (tests/test_activation_kernels.py): x Phi(-|x|) below 0, x (1 - Phi(-x)) above (1 -
 * Phi(-x) as hi + lo, whose difference is exact as Phi(-x) <= 1/2), each x times a hi + lo,
 * rounded once. Beyond -GELU_TAIL the result is 0; above GELU_TAIL it is x (+inf included). */
FM_INLINE fm_vec v_gelu(fm_vec x)
{
    const gelu_parts g = gelu_parts_of(x);
    const fm_vec2 tail = v2_mul(g.density, g.ratio);   /* Phi(-|x|) / 2^n */
    const fm_vec scale_64 = v_exp2i(v_add(g.n, v_set1(64.0f)));
    const fm_vec scale = v_mul(scale_64, v_set1(TWO_TO_MINUS_64));   /* 2^n, or 0 below 2^-149 */
    const fm_vec one = v_set1(1.0f);
    /* Phi(-x) above 0 (where 2^n, once subnormal, no longer moves x) */
    const fm_vec q = v_mul(tail.hi, scale);
    const fm_vec w = v_sub(one, q);
    const fm_vec w_err = v_sub(v_sub(v_sub(one, w), q), v_mul(tail.lo, scale));
    const fm_cmp negative = v_lt(x, v_zero());
    const fm_vec m = v_select(negative, tail.hi, w);
    const fm_vec m_err = v_select(negative, tail.lo, w_err);
    const fm_vec xc = v_min(v_set1(GELU_TAIL), v_max(v_set1(-GELU_TAIL), x));
    const fm_vec f = v_fma(x, m, v_mul(xc, m_err));
    const fm_vec below = v_mul(v_mul(f, scale_64), v_set1(TWO_TO_MINUS_64));
    return v_select(negative, gelu_tail(x, below), f);
}

/* GELU's derivative from z, Phi(z) + z phi(z), phi(z) = e^(-z^2 / 2) / sqrt(2 pi), within 1 eps
 * of float64 absolutely (tests/test_activation_kernels.py; near its zero, z = -0.7518, that is
 * many ulp). With y = |z| and D = Phi(-y) - y phi(y) = 2^n density (ratio - y / sqrt(2 pi)),
 * carried as hi + lo: D below 0, 1 - D above, each rounded once. */
FM_INLINE fm_vec v_gelu_slope(fm_vec z)
{
    const float INV_SQRT_2PI_HI = 3.989422917e-01f, INV_SQRT_2PI_LO = -1.133517014e-08f;
    const gelu_parts g = gelu_parts_of(z);
    const fm_vec yk = v_mul(g.y, v_set1(INV_SQRT_2PI_HI));
    const fm_vec yk_err = v_fma(g.y, v_set1(INV_SQRT_2PI_LO),
                                v_fma(g.y, v_set1(INV_SQRT_2PI_HI), v_sub(v_zero(), yk)));
    /* ratio - y / sqrt(2 pi) as hi + lo: TwoSum, as either term may be the larger */
    const fm_vec d = v_sub(g.ratio.hi, yk);
    const fm_vec d_yk = v_sub(g.ratio.hi, d);
    const fm_vec d_err = v_add(v_sub(g.ratio.hi, v_add(d, d_yk)), v_sub(d_yk, yk));
    const fm_vec2 diff =
        v2_mul(g.density, (fm_vec2){ d, v_sub(v_add(d_err, g.ratio.lo), yk_err) });
    const fm_vec scale_64 = v_exp2i(v_add(g.n, v_set1(64.0f)));
    const fm_vec scale = v_mul(scale_64, v_set1(TWO_TO_MINUS_64));   /* as in v_gelu */
    const fm_vec one = v_set1(1.0f);
    const fm_vec v = v_mul(diff.hi, scale);   /* D above 0, in [-0.13, 0.5] */
    const fm_vec above = v_sub(one, v);
    const fm_vec above_err = v_sub(v_sub(v_sub(one, above), v), v_mul(diff.lo, scale));
    const fm_vec below = v_mul(v_mul(v_add(diff.hi, diff.lo), scale_64), v_set1(TWO_TO_MINUS_64));
    return v_select(v_lt(z, v_zero()), gelu_tail(z, below), v_add(above, above_err));
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
