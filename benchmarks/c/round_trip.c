/* round_trip.c - prints the round trip of a cache line between two OpenMP threads, in whole ns
 * (bench_util.h): under about 150 when the two cores share an L3, 300 or more when they sit on
 * two dies. Scripts run a 2-thread measurement only while it reads low (sweep_one_l3.sh).
 *
 *   usage: round_trip
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>

#include "bench_util.h"

int main(void)
{
    printf("%.0f\n", bench_round_trip_ns());
    return 0;
}
