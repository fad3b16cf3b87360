"""Kinds of the same work alternated in one process, block by block, and their per-round
ratios: on a shared machine only ratios of blocks run next to each other mean anything."""
import numpy as np


def alternate(blocks, rounds, warm=2, steps=10):
    """times[k, r]: seconds per call of blocks[k](steps) in round r. Each block first runs
    `warm` untimed calls, so it starts with the caches as the previous kind left them."""
    times = np.empty((len(blocks), rounds))
    for r in range(rounds):
        for k, block in enumerate(blocks):
            block(warm)
            times[k, r] = block(steps) / steps
    return times


def report(names, times, base, unit=1e6, unit_name="us"):
    """One line per kind: its median, and the median and quartiles of its per-round ratio to
    kind `base`."""
    for k, name in enumerate(names):
        ratio = times[k] / times[base]
        print(f"{name:34s} {np.median(times[k]) * unit:9.1f} {unit_name} (median); to "
              f"{names[base]}: {np.median(ratio):.3f} (quartiles "
              f"{np.percentile(ratio, 25):.3f}-{np.percentile(ratio, 75):.3f})")
