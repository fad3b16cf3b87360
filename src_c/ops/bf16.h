/* bf16.h - bfloat16, as the mixed-precision products (precision "bf16") use it.
 *
 * A bf16 is the high half of a float: sign, 8 exponent bits, 7 fraction bits. The products of
 * a bf16 network round each operand to bf16 as they pack it, multiply pairs of bf16 and add in
 * float, as x86's VDPBF16PS does; everything else (weights, biases, optimiser state, the
 * epilogue) stays in float.
 *
 * Rounding (fm_bf16_bits): to nearest, ties to even; a float below the smallest normal in
 * magnitude (zero or subnormal) becomes a zero of its sign; a NaN stays a NaN (made quiet);
 * a float that rounds past the largest bf16 becomes an infinity. So no packed bf16 is
 * subnormal, which is what VDPBF16PS assumes of its inputs (it treats them as zero).
 *
 * A pair is one 32-bit word holding the bf16 of steps 2q (low half) and 2q + 1 (high half) of
 * a product's K; an odd K's last pair has a zero high half. VDPBF16PS adds two pairs' products
 * to a float accumulator in this order (fm_bf16_dot2, and kernels/vec.h's v_dot2_bf16 on every
 * instruction set):
 *
 *     acc = flush(fma(a.high, b.high, acc))
 *     acc = flush(fma(a.low,  b.low,  acc))
 *
 * each product exact (8-bit significands), each sum rounded to nearest even, and flush()
 * turning a result below the smallest normal float in magnitude into a zero of its sign. The
 * accumulator is never subnormal itself: it starts at zero and only ever holds flushed
 * results. (Checked bit for bit against the instruction on AMD Zen 4 over random operands,
 * subnormal results included: tests/test_bf16.py runs the same comparison wherever the CPU has
 * the instruction.)
 */
#ifndef FASTMLP_BF16_H
#define FASTMLP_BF16_H

#include <stdint.h>
#include <string.h>

/* The smallest normal float's bits: results below it in magnitude are flushed. */
enum { FM_FLOAT_MIN_NORMAL_BITS = 0x00800000 };

/* x rounded to bf16 (see above), as the float bits with the low half zero. */
static inline uint32_t fm_bf16_bits(uint32_t u)
{
    if ((u & 0x7F800000u) == 0)                  /* zero or subnormal: a signed zero */
        return u & 0x80000000u;
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)         /* NaN: quiet, its payload's top kept */
        return (u | 0x00400000u) & 0xFFFF0000u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
}

static inline uint32_t fm_float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float fm_bits_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The pair of bf16 (low, high) as one word. */
static inline uint32_t fm_bf16_pair(float low, float high)
{
    return (fm_bf16_bits(fm_float_bits(low)) >> 16) | fm_bf16_bits(fm_float_bits(high));
}

#endif
