/* gemm_pairs.h - the frame's block for a bf16 product (fm_product.bf16): gemm.c hands it the
 * block that a float product's gemm_block would take. */
#ifndef FASTMLP_GEMM_PAIRS_H
#define FASTMLP_GEMM_PAIRS_H

#include "frame/gemm.h"
#include "kernels/ukernel.h"

/* C rows [m0, m1) x columns [n0, n1) of the bf16 product p with the set's pairs (ps) and its
 * float epilogue (ks). a_ready as gemm.c's gemm_block: in/out, 1 when this thread's workspace
 * already holds A's pairs for rows [m0, m1). Returns 0, or -1 when the workspace could not
 * grow. */
int fm_gemm_block_pairs(const fm_kernel_set *ks, const fm_pairs_set *ps, const fm_product *p,
                        const fm_hints *h, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0,
                        ptrdiff_t n1, int *a_ready);

#endif
