/* threads.c - the thread count shared by every parallel kernel. */
#include "threads.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int requested_threads = 0;

void fm_set_num_threads(int n)
{
    requested_threads = n > 0 ? n : 0;
}

int fm_get_num_threads(void)
{
#ifdef _OPENMP
    return requested_threads > 0 ? requested_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

int fm_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
