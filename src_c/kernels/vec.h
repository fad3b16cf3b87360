/* vec.h - the vector interface that the math of fastmlp is written against.
 *
 * ops/ (activations, optimiser rules, the fused epilogue) and kernels/tile.h (the micro-kernels'
 * loops) use only these names; each instruction set supplies them in a header of its own, in
 * about 40 lines, and each translation unit includes exactly one:
 *
 *   vec_generic.h   one float a vector, portable C (the reference path and the fallback)
 *   vec_avx2.h      8 floats (AVX2 + FMA)
 *   vec_avx512.h    16 floats (AVX-512F/DQ/BW/VL)
 *
 * Types: fm_vec (FM_VL floats), fm_lanes (which lanes an edge tile keeps), fm_cmp (a lane-wise
 * comparison). Operations, each rounding exactly as IEEE 754 single precision says, so that
 * the same sequence of them gives the same bits on every instruction set:
 *
 *   v_lanes(n)                the lowest n lanes (n may be <= 0 or >= FM_VL)
 *   v_load, v_store           all lanes;  v_load_lanes, v_store_lanes  only the lanes given
 *                             (loads zero the others; neither touches memory outside them)
 *   v_broadcast(p), v_set1(x), v_zero()
 *   v_add, v_sub, v_mul, v_div, v_fma(a,b,c) = a*b+c and v_fnma(a,b,c) = c-a*b, each rounded once
 *   v_sqrt(a)                 the square root, rounded once (IEEE 754's sqrt)
 *   v_max(a,b) = a > b ? a : b,  v_min(a,b) = a < b ? a : b  (x86's order: NaN gives b)
 *   v_gt, v_lt (ordered), v_select(m, yes, no), v_abs, v_copysign(mag, sgn)
 *   v_exp2i(n)                2^n for integral n in [-126, 127]
 *   v_any_not_finite(v)       1 when a lane is NaN or infinite
 *   v_prefetch(p)             a hint; nothing on the portable path
 *
 * A new instruction set (ARM NEON, say) is its vec_<isa>.h, a kernels/<isa>.c that includes it
 * and tile.h and fills an fm_kernel_set, and one line in registry.c.
 */
#ifndef FASTMLP_VEC_H
#define FASTMLP_VEC_H
#endif
