/* registry.h - the kernel sets, and which instruction set's micro-kernels fm_gemm uses.
 *
 * The CPU is probed once (CPUID, and XGETBV to check that the operating system saves the ymm /
 * zmm registers). The best available set is used unless the environment variable FASTMLP_ISA
 * (generic | avx2 | avx512) names another; a named set the CPU lacks falls back to the best one
 * and fm_isa_note() says so. Every set gives bit-identical results (see gemm.h).
 */
#ifndef FASTMLP_DISPATCH_H
#define FASTMLP_DISPATCH_H

#include "kernels/ukernel.h"

/* Probes the CPU and reads FASTMLP_ISA, once; later calls do nothing. Call it before any
 * parallel region that uses the kernels (fm_gemm and fm_isa_* call it themselves). */
void fm_dispatch_init(void);

/* The kernels in use. */
const fm_kernel_set *fm_kernels(void);

/* The bf16 products of the kernels in use: the CPU's own instructions where it has them
 * (AVX512_BF16 with the avx512 set), else their exact emulation with the set's FMAs (the same
 * bits). FASTMLP_BF16=emulate, or fm_bf16_set_emulated(1), asks for the emulation anyway. */
const fm_pairs_set *fm_pairs(void);
void fm_bf16_set_emulated(int emulated);

/* fm_pairs()'s name (e.g. "avx512_bf16 (VDPBF16PS)", "avx2 (emulated)") and whether it is
 * the CPU's own instructions. */
const char *fm_bf16_name(void);
int fm_bf16_native(void);

/* "generic", "avx2" or "avx512". */
const char *fm_isa_name(void);

/* Selects a set by name ("auto" or "" for the best available).
 * Returns 0 on success, 1 for an unknown name, 2 when this CPU lacks it (nothing changes). */
int fm_isa_set(const char *name);

/* Space-separated names of every set this build has, slowest first, e.g.
 * "generic avx2 avx512". */
const char *fm_isa_known(void);

/* Space-separated names of the supported sets, best last, e.g. "generic avx2 avx512". */
const char *fm_isa_available(void);

/* Why FASTMLP_ISA was not honoured ("" when it was, or was not set). */
const char *fm_isa_note(void);

/* The compiler that built the library, e.g. "gcc 12.2.0". */
const char *fm_compiler(void);

#endif
