"""Out-of-core training: dask_ml's Incremental runs partial_fit over the blocks of a dask array
that live on the workers, and the model equals, bit for bit, partial_fit over the same blocks
in order in one process."""
from dask_available import skip_without_dask

skip_without_dask()

# The rest needs the [dask] extra.
import warnings

import numpy as np
import pytest
from dask_ml.wrappers import Incremental
from distributed import get_task_stream, wait
from sklearn.base import clone
from sklearn.utils import check_random_state

from dask_helpers import labelled_blocks
from estimators import CLASSES, ESTIMATORS

N_BLOCKS = 6
ROWS_PER_BLOCK = 1000
#: Seeds the order in which Incremental visits the blocks.
BLOCK_ORDER_SEED = 3


@pytest.fixture(scope="module")
def blocks(client):
    """(X, y) of N_BLOCKS blocks generated and persisted on the workers."""
    X, y = labelled_blocks(N_BLOCKS, ROWS_PER_BLOCK, seed=1)
    X, y = client.persist([X, y])
    wait([X, y], timeout=60)
    return X, y


def _target(y, classifier):
    return y if classifier else y.astype(np.float64)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_incremental_equals_partial_fit_in_one_process(client, blocks, name):
    factory, classifier = ESTIMATORS[name]
    X, y = blocks
    y = _target(y, classifier)
    kwargs = {"classes": CLASSES} if classifier else {}
    # The blocks are on the workers, not in this process.
    assert all(client.who_has(X).values())

    wrapper = Incremental(factory(), shuffle_blocks=True, random_state=BLOCK_ORDER_SEED)
    with warnings.catch_warnings(), get_task_stream(client) as stream:
        warnings.simplefilter("ignore")   # scikit-learn's ConvergenceWarning per partial_fit
        wrapper.fit(X, y, **kwargs)
    distributed_model = wrapper.estimator_
    # One partial_fit per block, on the workers holding them: the model went from one worker
    # process to the other (pickled) on its way.
    fits = [task for task in stream.data
            if task["key"][0].startswith("fit-") and task["key"][1] >= 0]   # -1: the model
    assert len(fits) == N_BLOCKS
    assert len({task["worker"] for task in fits}) == 2

    # The same blocks, in the same order, in this process (on its own thread count).
    order = list(range(N_BLOCKS))
    check_random_state(BLOCK_ORDER_SEED).shuffle(order)
    assert order != sorted(order)          # the shuffled order is the one being compared
    local_model = clone(factory())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in order:
            local_model.partial_fit(X.blocks[i].compute(), y.blocks[i].compute(), **kwargs)

    for a, b in zip(distributed_model.coefs_ + distributed_model.intercepts_,
                    local_model.coefs_ + local_model.intercepts_):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)
    assert len(distributed_model.coefs_) == 2

    # One pass over the blocks learnt the task (the labels are a noisy linear map of X).
    X_test, y_test = labelled_blocks(1, 2000, seed=1)
    X_test, y_test = X_test.compute(), _target(y_test.compute(), classifier)
    score = distributed_model.score(X_test, y_test)
    assert score == local_model.score(X_test, y_test)
    assert score > (0.85 if classifier else 0.3)
