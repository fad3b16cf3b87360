"""The skip of every Dask test module when the ``[dask]`` extra is not installed."""
import pytest

REASON = 'the Dask tests need dask, distributed and dask-ml: pip install "fastmlp[dask]"'


def skip_without_dask():
    """Skips the calling test module unless dask, distributed and dask_ml import."""
    for name in ("dask", "distributed", "dask_ml"):
        pytest.importorskip(name, reason=REASON)
