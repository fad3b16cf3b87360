/* vec_generic.h - the vector interface (kernels/vec.h) in portable C: one float a vector. Every
 * operation rounds as its SIMD counterpart does (fmaf rounds once, as a hardware FMA), so the
 * math written over the interface gives the same bits here as on every instruction set. */
#ifndef FASTMLP_VEC_GENERIC_H
#define FASTMLP_VEC_GENERIC_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FM_INLINE static inline

typedef float fm_vec;
typedef int fm_lanes;   /* 1: the one lane is kept */
typedef int fm_cmp;
#define FM_VL 1
/* one lane: nothing to mask */
#define FM_MASKED_IS_CHEAP 0

FM_INLINE fm_lanes v_lanes(int n) { return n > 0; }
FM_INLINE fm_vec v_load(const float *p) { return *p; }
FM_INLINE fm_vec v_load_lanes(const float *p, fm_lanes mk) { return mk ? *p : 0.0f; }
FM_INLINE void v_store(float *p, fm_vec v) { *p = v; }
FM_INLINE void v_store_lanes(float *p, fm_lanes mk, fm_vec v)
{
    if (mk)
        *p = v;
}
FM_INLINE fm_vec v_broadcast(const float *p) { return *p; }
FM_INLINE fm_vec v_set1(float x) { return x; }
FM_INLINE fm_vec v_zero(void) { return 0.0f; }
FM_INLINE fm_vec v_add(fm_vec a, fm_vec b) { return a + b; }
FM_INLINE fm_vec v_sub(fm_vec a, fm_vec b) { return a - b; }
FM_INLINE fm_vec v_mul(fm_vec a, fm_vec b) { return a * b; }
FM_INLINE fm_vec v_div(fm_vec a, fm_vec b) { return a / b; }
FM_INLINE fm_vec v_sqrt(fm_vec a) { return sqrtf(a); }
FM_INLINE fm_vec v_fma(fm_vec a, fm_vec b, fm_vec c) { return fmaf(a, b, c); }
FM_INLINE fm_vec v_fnma(fm_vec a, fm_vec b, fm_vec c) { return fmaf(-a, b, c); }
FM_INLINE fm_vec v_max(fm_vec a, fm_vec b) { return a > b ? a : b; }
FM_INLINE fm_vec v_min(fm_vec a, fm_vec b) { return a < b ? a : b; }
FM_INLINE fm_cmp v_gt(fm_vec a, fm_vec b) { return a > b; }
FM_INLINE fm_cmp v_lt(fm_vec a, fm_vec b) { return a < b; }
FM_INLINE fm_vec v_select(fm_cmp m, fm_vec yes, fm_vec no) { return m ? yes : no; }
FM_INLINE fm_vec v_abs(fm_vec a) { return fabsf(a); }
FM_INLINE fm_vec v_copysign(fm_vec mag, fm_vec sgn) { return copysignf(mag, sgn); }
/* 2^n for integral n in [-126, 127], from the bits of n + 1.5 * 2^23. */
FM_INLINE fm_vec v_exp2i(fm_vec n)
{
    float shifted = n + 12582912.0f;
    uint32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    bits = (bits - (0x4B400000u - 127u)) << 23;
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}
FM_INLINE int v_any_not_finite(fm_vec v) { return !isfinite(v); }
/* x, or a zero of its sign when x is below the smallest normal float in magnitude. */
FM_INLINE fm_vec v_flush_subnormal(fm_vec x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }
/* acc plus the products of the bf16 pairs in a and b, each lane one pair (ops/bf16.h: the
 * order and the flushing of VDPBF16PS). */
FM_INLINE fm_vec v_dot2_bf16(fm_vec acc, fm_vec a, fm_vec b)
{
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    uint32_t a_high = ua & 0xFFFF0000u, b_high = ub & 0xFFFF0000u;
    uint32_t a_low = ua << 16, b_low = ub << 16;
    float ah, bh, al, bl;
    memcpy(&ah, &a_high, sizeof ah);
    memcpy(&bh, &b_high, sizeof bh);
    memcpy(&al, &a_low, sizeof al);
    memcpy(&bl, &b_low, sizeof bl);
    acc = v_flush_subnormal(fmaf(ah, bh, acc));
    return v_flush_subnormal(fmaf(al, bl, acc));
}
FM_INLINE void v_prefetch(const void *p) { (void)p; }

#endif
