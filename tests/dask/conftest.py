"""The Dask cluster of these tests: one real ``LocalCluster`` of 2 worker processes (1 thread
each, behind the default nanny) for the whole session, and a deadline on every test so that a
hung cluster fails the run instead of blocking it."""
import signal

import pytest

#: Seconds a test (the cluster's start included) may take before it fails.
TEST_DEADLINE = 120


class DeadlineExceeded(Exception):
    """A test ran past TEST_DEADLINE seconds."""


def _deadline(signum, frame):
    raise DeadlineExceeded(f"a Dask test ran longer than {TEST_DEADLINE} s")


@pytest.fixture(autouse=True)
def deadline():
    """Interrupts the test (the main thread waiting on the cluster) after TEST_DEADLINE s."""
    previous = signal.signal(signal.SIGALRM, _deadline)
    signal.alarm(TEST_DEADLINE)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def client():
    """A client of a LocalCluster with 2 worker processes of 1 thread each; closed after the
    session."""
    import cloudpickle
    from distributed import Client, LocalCluster

    import dask_helpers
    from dask_helpers import CLUSTER_TIMEOUT

    # The workers unpickle the helpers' estimators and scorers by value: they need not import
    # the test directory.
    cloudpickle.register_pickle_by_value(dask_helpers)
    previous = signal.signal(signal.SIGALRM, _deadline)
    signal.alarm(CLUSTER_TIMEOUT)
    try:
        # ":0": the scheduler's HTTP server on a free port, never a fixed one another run holds.
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0", memory_limit="1GiB")
        client = Client(cluster, timeout=CLUSTER_TIMEOUT)
        client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    try:
        yield client
    finally:
        client.close(timeout=CLUSTER_TIMEOUT)
        cluster.close(timeout=CLUSTER_TIMEOUT)
