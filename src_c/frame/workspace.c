/* workspace.c - the per-thread scratch buffer behind workspace.h.
 *
 * A pthread key rather than _Thread_local: the key's destructor frees the buffer when an
 * OpenMP worker or a user's thread exits, so no thread leaves memory behind. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>

#include "frame/workspace.h"

typedef struct {
    size_t bytes;
    void *data;
} workspace;

static pthread_key_t workspace_key;
static pthread_once_t workspace_once = PTHREAD_ONCE_INIT;
static int workspace_key_made = 0;

static void release_workspace(void *p)
{
    workspace *w = p;
    free(w->data);
    free(w);
}

static void make_workspace_key(void)
{
    workspace_key_made = pthread_key_create(&workspace_key, release_workspace) == 0;
}

void *fm_thread_workspace(size_t bytes)
{
    pthread_once(&workspace_once, make_workspace_key);
    if (!workspace_key_made)
        return NULL;
    workspace *w = pthread_getspecific(workspace_key);
    if (w == NULL) {
        w = calloc(1, sizeof *w);
        if (w == NULL)
            return NULL;
        if (pthread_setspecific(workspace_key, w) != 0) {
            free(w);
            return NULL;
        }
    }
    if (w->bytes < bytes) {
        size_t rounded = (bytes + 63) / 64 * 64;
        void *data = aligned_alloc(64, rounded);
        if (data == NULL)
            return NULL;
        free(w->data);
        w->data = data;
        w->bytes = rounded;
    }
    return w->data;
}
