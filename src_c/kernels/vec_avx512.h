/* vec_avx512.h - the vector interface (kernels/vec.h) on AVX-512: 16 floats, lanes as a k-mask. */
#ifndef FASTMLP_VEC_AVX512_H
#define FASTMLP_VEC_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define FM_INLINE static inline __attribute__((always_inline))

typedef __m512 fm_vec;
typedef __mmask16 fm_lanes;   /* which lanes of a vector an edge tile keeps */
typedef __mmask16 fm_cmp;     /* a lane-wise comparison's result */
#define FM_VL 16
/* masked loads and stores cost what plain ones do: edge or not, one form */
#define FM_MASKED_IS_CHEAP 1

FM_INLINE fm_lanes v_lanes(int n)
{
    return n <= 0 ? 0 : n >= 16 ? (fm_lanes)0xFFFF : (fm_lanes)((1u << n) - 1u);
}
FM_INLINE fm_vec v_load(const float *p) { return _mm512_loadu_ps(p); }
FM_INLINE fm_vec v_load_lanes(const float *p, fm_lanes mk) { return _mm512_maskz_loadu_ps(mk, p); }
FM_INLINE void v_store(float *p, fm_vec v) { _mm512_storeu_ps(p, v); }
FM_INLINE void v_store_lanes(float *p, fm_lanes mk, fm_vec v) { _mm512_mask_storeu_ps(p, mk, v); }
FM_INLINE fm_vec v_broadcast(const float *p) { return _mm512_set1_ps(*p); }
FM_INLINE fm_vec v_set1(float x) { return _mm512_set1_ps(x); }
FM_INLINE fm_vec v_zero(void) { return _mm512_setzero_ps(); }
FM_INLINE fm_vec v_add(fm_vec a, fm_vec b) { return _mm512_add_ps(a, b); }
FM_INLINE fm_vec v_sub(fm_vec a, fm_vec b) { return _mm512_sub_ps(a, b); }
FM_INLINE fm_vec v_mul(fm_vec a, fm_vec b) { return _mm512_mul_ps(a, b); }
FM_INLINE fm_vec v_div(fm_vec a, fm_vec b) { return _mm512_div_ps(a, b); }
FM_INLINE fm_vec v_sqrt(fm_vec a) { return _mm512_sqrt_ps(a); }
FM_INLINE fm_vec v_fma(fm_vec a, fm_vec b, fm_vec c) { return _mm512_fmadd_ps(a, b, c); }
FM_INLINE fm_vec v_fnma(fm_vec a, fm_vec b, fm_vec c) { return _mm512_fnmadd_ps(a, b, c); }
FM_INLINE fm_vec v_max(fm_vec a, fm_vec b) { return _mm512_max_ps(a, b); }   /* a > b ? a : b */
FM_INLINE fm_vec v_min(fm_vec a, fm_vec b) { return _mm512_min_ps(a, b); }   /* a < b ? a : b */
FM_INLINE fm_cmp v_gt(fm_vec a, fm_vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
FM_INLINE fm_cmp v_lt(fm_vec a, fm_vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
FM_INLINE fm_vec v_select(fm_cmp m, fm_vec yes, fm_vec no) { return _mm512_mask_blend_ps(m, no, yes); }
FM_INLINE fm_vec v_abs(fm_vec a) { return _mm512_abs_ps(a); }
FM_INLINE fm_vec v_copysign(fm_vec mag, fm_vec sgn)
{
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    /* (mag & ~sign) | (sgn & sign) */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(sign, _mm512_castps_si512(mag),
                                                         _mm512_castps_si512(sgn), 0xAC));
}
/* 2^n for integral n in [-126, 127], from the bits of n + 1.5 * 2^23. */
FM_INLINE fm_vec v_exp2i(fm_vec n)
{
    __m512i bits = _mm512_castps_si512(_mm512_add_ps(n, _mm512_set1_ps(12582912.0f)));
    bits = _mm512_sub_epi32(bits, _mm512_set1_epi32(0x4B400000 - 127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(bits, 23));
}
/* 1 when a lane is NaN or infinite. */
FM_INLINE int v_any_not_finite(fm_vec v)
{
    return _mm512_fpclass_ps_mask(v, 0x99) != 0;
}
FM_INLINE void v_prefetch(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }
/* x, or a zero of its sign in the lanes below the smallest normal float in magnitude. */
FM_INLINE fm_vec v_flush_subnormal(fm_vec x)
{
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
    const __m512 min_normal = _mm512_castsi512_ps(_mm512_set1_epi32(0x00800000));
    __mmask16 tiny = _mm512_cmp_ps_mask(_mm512_abs_ps(x), min_normal, _CMP_LT_OQ);
    return _mm512_mask_and_ps(x, tiny, x, sign);
}
#ifdef FM_NATIVE_BF16
/* The packing's rounding as one instruction (VCVTNE2PS2BF16), in a translation unit built for
 * it: the instruction rounds every float as ops/bf16.h's fm_bf16_bits does (to nearest even,
 * subnormals to zeros of their sign, NaNs made quiet; compared on all 2^32 floats). */
#define FM_VEC_BF16_PACK 1
/* The pairs (low[i], high[i]) of two vectors of floats, lane i the pair i. */
FM_INLINE fm_vec v_bf16_pairs(fm_vec low, fm_vec high)
{
    /* bf16 lanes 0-15: low's, 16-31: high's; then low[i] to lane 2i, high[i] to 2i + 1 */
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10,
                                                25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
                                                19, 3, 18, 2, 17, 1, 16, 0);
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(high, low);
    return _mm512_castsi512_ps(_mm512_permutexvar_epi16(interleave, both));
}
/* The pairs (x[2i], x[2i + 1]) of 2 FM_VL consecutive floats: first's, then second's. */
FM_INLINE fm_vec v_bf16_pairs_in_order(fm_vec first, fm_vec second)
{
    return _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(second, first));
}
#endif

/* acc plus the products of the bf16 pairs in a and b, each lane one pair (ops/bf16.h: the
 * order and the flushing of VDPBF16PS): the instruction itself in a translation unit built
 * for it (FM_NATIVE_BF16, kernels/avx512_bf16.c), else two FMAs. */
FM_INLINE fm_vec v_dot2_bf16(fm_vec acc, fm_vec a, fm_vec b)
{
#ifdef FM_NATIVE_BF16
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
#else
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512 ah = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), high));
    __m512 bh = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(b), high));
    __m512 al = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(a), 16));
    __m512 bl = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(b), 16));
    acc = v_flush_subnormal(_mm512_fmadd_ps(ah, bh, acc));
    return v_flush_subnormal(_mm512_fmadd_ps(al, bl, acc));
#endif
}

#endif
