"""Runs each fuzz target of targets.py for a bounded time (FASTMLP_FUZZ_SECONDS, default 15)
on the seed corpus kept in tests/fuzz/corpus/, under an RSS limit: it passes when the fuzzer
finds no input that raises anything but ValueError, crashes, or exceeds the memory limit."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("atheris")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from reliability_util import python_env  # noqa: E402

SECONDS = int(os.environ.get("FASTMLP_FUZZ_SECONDS", "15"))
RSS_LIMIT_MB = 1024


@pytest.mark.parametrize("target", ["model", "checkpoint", "idx"])
def test_fuzz_target_raises_only_value_error(target, tmp_path):
    found = tmp_path / "corpus"
    found.mkdir()
    command = [sys.executable, os.path.join(HERE, "targets.py"), target,
               f"-max_total_time={SECONDS}", f"-rss_limit_mb={RSS_LIMIT_MB}",
               "-max_len=65536", "-timeout=10", f"-artifact_prefix={tmp_path}/",
               str(found), os.path.join(HERE, "corpus", target)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 120,
                            env=python_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                                           FASTMLP_FUZZ_SCRATCH=str(tmp_path)))
    assert result.returncode == 0, (f"the fuzzer found a failing input (kept in {tmp_path}):\n"
                                    f"{result.stderr[-4000:]}")
