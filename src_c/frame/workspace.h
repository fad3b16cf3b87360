/* workspace.h - one growable scratch buffer per thread, for packed operands too large for the
 * stack (a block of A packed into column panels: up to hundreds of KiB).
 *
 * The buffer belongs to the calling thread, grows to the largest size asked for and is reused
 * by every later call on that thread, so steady-state training allocates nothing. It is freed
 * when the thread exits. Calls from different threads never share a buffer.
 */
#ifndef FASTMLP_WORKSPACE_H
#define FASTMLP_WORKSPACE_H

#include <stddef.h>

/* A 64-byte aligned buffer of at least `bytes` bytes, private to this thread and valid until
 * its next call on this thread; NULL when it could not be allocated (the old buffer is kept). */
void *fm_thread_workspace(size_t bytes);

#endif
