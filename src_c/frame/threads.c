/* threads.c - the thread count shared by every parallel kernel. */
#include "frame/threads.h"

#ifdef _OPENMP
#include <omp.h>
#include <pthread.h>
#endif

static int requested_threads = 0;

#ifdef _OPENMP
/* libgomp is not fork-safe: a child forked after the parent ran a parallel region hangs in
 * its first one. So a forked child runs every kernel on the calling thread. */
static int forked_child = 0;

static void mark_forked_child(void)
{
    forked_child = 1;
}

__attribute__((constructor)) static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, mark_forked_child);
}
#endif

void fm_set_num_threads(int n)
{
    requested_threads = n > 0 ? n : 0;
}

int fm_get_num_threads(void)
{
#ifdef _OPENMP
    if (forked_child)
        return 1;
    return requested_threads > 0 ? requested_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

int fm_threads_for(int n)
{
#ifdef _OPENMP
    if (forked_child)
        return 1;
#endif
    return n > 0 ? n : fm_get_num_threads();
}

int fm_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
