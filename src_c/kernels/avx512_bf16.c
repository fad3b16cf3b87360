/* avx512_bf16.c - the avx512 set's bf16 products on the CPU's own VDPBF16PS (AVX512_BF16:
 * Cooper Lake, Sapphire Rapids, Zen 4 and later): the same tiles and packing as the emulation
 * in avx512.c (kernels/pairs.h), with v_dot2_bf16 one instruction. ops/bf16.h says what it
 * computes; the emulation gives the same bits. Use it only when registry.c says the CPU has it.
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

/* Every function below is compiled for avx512_bf16 (clang has no "#pragma GCC target"). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,"  \
                                                    "avx512vl,fma,avx512bf16"))),  \
                             apply_to = function)
#else
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma,avx512bf16")
#endif

#define FM_NATIVE_BF16 1
#include "kernels/vec_avx512.h"

enum { TILE_MR_MAX = 12 };
enum { TILE_PREFETCH_A = 1, TILE_PREFETCH_C = 1, TILE_FEW_REGISTERS = 0 };

#include "kernels/tile.h"

enum { PROBE_CHAINS = 16 };   /* as avx512.c */
#include "kernels/probe.h"

/* avx512.c's float tile shapes: 6 x 64 for A by rows, 12 x 32 by columns */
enum { PAIRS_MR_ROWS = 6, PAIRS_NV_ROWS = 4, PAIRS_MR_COLUMNS = 12, PAIRS_NV_COLUMNS = 2 };
#include "kernels/pairs.h"

const fm_pairs_set fm_pairs_avx512_bf16 = PAIRS_SET("avx512_bf16 (VDPBF16PS)", 1);

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif /* x86 */
