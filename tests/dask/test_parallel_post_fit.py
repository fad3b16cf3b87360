"""Distributed prediction: dask_ml's ParallelPostFit predicts 1,000,000 rows generated on the
workers block by block; the results equal the in-process ones on the same blocks, and no
worker's memory grows by more than a bound far below what the whole array would take."""
from dask_available import skip_without_dask

skip_without_dask()

# The rest needs the [dask] extra.
import os
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from dask_ml.wrappers import ParallelPostFit

import dask_helpers
from dask_helpers import N_FEATURES, labelled_blocks
from estimators import ESTIMATORS

N_ROWS = 1_000_000
ROWS_PER_CHUNK = 25_000
#: Bytes of X as float64 (160 MB) and its float32 copy (80 MB): the least one worker would
#: hold to predict it in one piece, before the activations and the outputs.
WHOLE_X_BYTES = N_ROWS * N_FEATURES * (8 + 4)
#: The most a worker's peak resident memory may grow while predicting: a few chunks of data
#: and activations, plus its half of the outputs (held until gathered: 16 MB with
#: predict_proba's float64 probabilities).
PEAK_GROWTH_BOUND = 80 << 20


def _big_X():
    """1,000,000 x 20 float64, generated lazily where each chunk is computed."""
    return da.random.RandomState(7).standard_normal((N_ROWS, N_FEATURES),
                                                    chunks=(ROWS_PER_CHUNK, N_FEATURES))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_parallel_post_fit_equals_in_process_with_bounded_memory(client, name):
    factory, classifier = ESTIMATORS[name]
    X_train, y_train = dask.compute(*labelled_blocks(4, 1000, seed=2), scheduler="sync")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # scikit-learn's ConvergenceWarning
        model = factory().fit(X_train, y_train if classifier else y_train.astype(np.float64))
    wrapper = ParallelPostFit(model)

    X = _big_X()
    outputs = [wrapper.predict(X)]
    if classifier:
        outputs.append(wrapper.predict_proba(X))
    assert all(isinstance(out, da.Array) for out in outputs)

    # Imports and first allocations are not the data's: done before the measure.
    client.run(dask_helpers.warm_up, model)
    # The peak is reset and read through /proc (Linux); elsewhere only the results are checked.
    measure = os.path.exists("/proc/self/clear_refs")
    rss_before = client.run(dask_helpers.reset_peak_rss) if measure else None
    results = client.compute(outputs, sync=True)
    if measure:
        peak = client.run(dask_helpers.peak_rss)
        growth = {w: peak[w] - rss_before[w] for w in peak}
        assert PEAK_GROWTH_BOUND * 2.5 < WHOLE_X_BYTES
        assert all(g < PEAK_GROWTH_BOUND for g in growth.values()), growth

    # In process, chunk by chunk: the same chunks (the generator is seeded per chunk).
    methods = [model.predict] + ([model.predict_proba] if classifier else [])
    assert results[0].shape == (N_ROWS,)
    for (start,), block in zip(_chunk_starts(X), X.to_delayed().ravel()):
        chunk = block.compute(scheduler="sync")
        rows = slice(start, start + chunk.shape[0])
        for method, result in zip(methods, results):
            expected = method(chunk)
            assert result[rows].dtype == expected.dtype
            assert np.array_equal(result[rows], expected)


def _chunk_starts(X):
    starts = np.cumsum((0,) + X.chunks[0][:-1])
    return [(int(s),) for s in starts]
