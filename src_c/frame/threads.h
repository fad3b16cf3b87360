/* threads.h - the number of OpenMP threads fastmlp's kernels use. */
#ifndef FASTMLP_THREADS_H
#define FASTMLP_THREADS_H

/* n <= 0 restores the default (omp_get_max_threads(), which honours OMP_NUM_THREADS). */
void fm_set_num_threads(int n);
int fm_get_num_threads(void);
/* The threads a call that asks for n (<= 0: fm_get_num_threads()) runs on: n, but 1 in a
 * process forked from one that ran a parallel region (libgomp is not fork-safe). */
int fm_threads_for(int n);
/* 1 when the library was compiled with OpenMP, else 0. */
int fm_have_openmp(void);

#endif
