/* convert.c - a float32 copy of float64 values, made on the library's threads.
 *
 * The drop-in classes copy a float64 X into float32 once a fit (188 MB for MNIST's training
 * set). The copy goes to fresh pages: the kernel makes each page at its first touch, one at a
 * time per thread, and that made most of the copy's time on one thread. Each thread here
 * touches (and converts) a contiguous part of its own. */
#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastmlp.h"
#include "frame/threads.h"

/* Values a thread converts at a time: a second thread pays from two of these. */
enum { CONVERT_CHUNK = 1 << 18 };

int fm_float32_from_float64(float *out, const double *x, ptrdiff_t n)
{
    int overflow = 0;
    const ptrdiff_t chunks = (n + CONVERT_CHUNK - 1) / CONVERT_CHUNK;
    int nth = fm_threads_for(0);
    nth = chunks < nth ? (int)(chunks > 0 ? chunks : 1) : nth;
    #pragma omp parallel for schedule(static) num_threads(nth) reduction(|:overflow)
    for (ptrdiff_t c = 0; c < chunks; c++) {
        const ptrdiff_t end = (c + 1) * CONVERT_CHUNK < n ? (c + 1) * CONVERT_CHUNK : n;
        int inf = 0;
        for (ptrdiff_t i = c * CONVERT_CHUNK; i < end; i++) {
            const float f = (float)x[i];   /* rounded to nearest, as NumPy's cast */
            out[i] = f;
            inf |= fabsf(f) == INFINITY;
        }
        overflow |= inf;
    }
    return overflow ? -1 : 0;
}
