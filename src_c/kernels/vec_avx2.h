/* vec_avx2.h - the vector interface (kernels/vec.h) on AVX2 + FMA: 8 floats, lanes as an integer
 * mask for vmaskmov. */
#ifndef FASTMLP_VEC_AVX2_H
#define FASTMLP_VEC_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define FM_INLINE static inline __attribute__((always_inline))

typedef __m256 fm_vec;
typedef __m256i fm_lanes;
typedef __m256 fm_cmp;
#define FM_VL 8
/* vmaskmov is slow (its store microcode on AMD): plain loads and stores for whole vectors */
#define FM_MASKED_IS_CHEAP 0

FM_INLINE fm_lanes v_lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
FM_INLINE fm_vec v_load(const float *p) { return _mm256_loadu_ps(p); }
FM_INLINE fm_vec v_load_lanes(const float *p, fm_lanes mk) { return _mm256_maskload_ps(p, mk); }
FM_INLINE void v_store(float *p, fm_vec v) { _mm256_storeu_ps(p, v); }
FM_INLINE void v_store_lanes(float *p, fm_lanes mk, fm_vec v) { _mm256_maskstore_ps(p, mk, v); }
FM_INLINE fm_vec v_broadcast(const float *p) { return _mm256_broadcast_ss(p); }
FM_INLINE fm_vec v_set1(float x) { return _mm256_set1_ps(x); }
FM_INLINE fm_vec v_zero(void) { return _mm256_setzero_ps(); }
FM_INLINE fm_vec v_add(fm_vec a, fm_vec b) { return _mm256_add_ps(a, b); }
FM_INLINE fm_vec v_sub(fm_vec a, fm_vec b) { return _mm256_sub_ps(a, b); }
FM_INLINE fm_vec v_mul(fm_vec a, fm_vec b) { return _mm256_mul_ps(a, b); }
FM_INLINE fm_vec v_div(fm_vec a, fm_vec b) { return _mm256_div_ps(a, b); }
FM_INLINE fm_vec v_sqrt(fm_vec a) { return _mm256_sqrt_ps(a); }
FM_INLINE fm_vec v_fma(fm_vec a, fm_vec b, fm_vec c) { return _mm256_fmadd_ps(a, b, c); }
FM_INLINE fm_vec v_fnma(fm_vec a, fm_vec b, fm_vec c) { return _mm256_fnmadd_ps(a, b, c); }
FM_INLINE fm_vec v_max(fm_vec a, fm_vec b) { return _mm256_max_ps(a, b); }   /* a > b ? a : b */
FM_INLINE fm_vec v_min(fm_vec a, fm_vec b) { return _mm256_min_ps(a, b); }   /* a < b ? a : b */
FM_INLINE fm_cmp v_gt(fm_vec a, fm_vec b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
FM_INLINE fm_cmp v_lt(fm_vec a, fm_vec b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
FM_INLINE fm_vec v_select(fm_cmp m, fm_vec yes, fm_vec no) { return _mm256_blendv_ps(no, yes, m); }
FM_INLINE fm_vec v_abs(fm_vec a)
{
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}
FM_INLINE fm_vec v_copysign(fm_vec mag, fm_vec sgn)
{
    const fm_vec sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    return _mm256_or_ps(_mm256_andnot_ps(sign, mag), _mm256_and_ps(sign, sgn));
}
/* 2^n for integral n in [-126, 127], from the bits of n + 1.5 * 2^23. */
FM_INLINE fm_vec v_exp2i(fm_vec n)
{
    __m256i bits = _mm256_castps_si256(_mm256_add_ps(n, _mm256_set1_ps(12582912.0f)));
    bits = _mm256_sub_epi32(bits, _mm256_set1_epi32(0x4B400000 - 127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23));
}
/* 1 when a lane is NaN or infinite: x - x is NaN exactly then. */
FM_INLINE int v_any_not_finite(fm_vec v)
{
    return _mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(),
                                            _CMP_NEQ_UQ)) != 0;
}
FM_INLINE void v_prefetch(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }
/* x, or a zero of its sign in the lanes below the smallest normal float in magnitude. */
FM_INLINE fm_vec v_flush_subnormal(fm_vec x)
{
    const fm_vec sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const fm_vec min_normal = _mm256_castsi256_ps(_mm256_set1_epi32(0x00800000));
    fm_vec tiny = _mm256_cmp_ps(_mm256_andnot_ps(sign, x), min_normal, _CMP_LT_OQ);
    return _mm256_blendv_ps(x, _mm256_and_ps(x, sign), tiny);
}
/* acc plus the products of the bf16 pairs in a and b, each lane one pair (ops/bf16.h: the
 * order and the flushing of VDPBF16PS, emulated with two FMAs). */
FM_INLINE fm_vec v_dot2_bf16(fm_vec acc, fm_vec a, fm_vec b)
{
    const fm_vec high = _mm256_castsi256_ps(_mm256_set1_epi32((int)0xFFFF0000u));
    fm_vec al = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(a), 16));
    fm_vec bl = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(b), 16));
    acc = v_flush_subnormal(_mm256_fmadd_ps(_mm256_and_ps(a, high), _mm256_and_ps(b, high), acc));
    return v_flush_subnormal(_mm256_fmadd_ps(al, bl, acc));
}

#endif
