/* finite.c - whether every float of a buffer is finite: the input check on X, in one pass. */
#include <stdint.h>
#include <string.h>

#include "fastmlp.h"

int fm_all_finite(const float *x, ptrdiff_t n)
{
    /* A float is NaN or infinite exactly when its exponent bits are all ones. A test on the
     * bits vectorises without -ffast-math and reads the data once; NumPy's isfinite(X).all()
     * first writes a boolean array as large as X. */
    uint32_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bad |= (~bits & 0x7f800000u) == 0;
    }
    return bad == 0;
}
