"""Run one hostile case in a child interpreter under memory, CPU and wall-clock limits.

A case is Python source. Whatever it raises is reported as data, and so are its peak resident
memory and its exit: a crash (a signal), a hang (the timeout) or a blow-up (the memory limit)
fails the test that ran it, never the test run itself.
"""
import json
import os
import resource
import subprocess
import sys
import textwrap
from dataclasses import dataclass

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
from reliability_util import python_env  # noqa: E402

_MARK = "HOSTILE-OUTCOME:"
# The child reports what its case raised and its own peak RSS (VmHWM, else ru_maxrss; KiB).
_WRAPPER = """
import json, resource, sys
if {hide_sklearn}:
    sys.modules["sklearn"] = None          # a faster import; no case depends on scikit-learn
outcome = {{"exception": None, "message": ""}}
try:
    exec(compile({code!r}, "<hostile case>", "exec"), {{"__name__": "__hostile__"}})
except BaseException as exc:
    outcome = {{"exception": type(exc).__name__, "message": str(exc)[:4000]}}
def peak_rss_kib():
    # VmHWM is this process's own peak; ru_maxrss would also count the parent's, which Linux
    # carries across fork and exec.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome["peak_rss_mb"] = peak_rss_kib() / 1024
sys.stdout.flush()
print({mark!r} + json.dumps(outcome), flush=True)
"""


@dataclass
class Outcome:
    returncode: int
    exception: str
    message: str
    peak_rss_mb: float
    stdout: str
    stderr: str

    def expect(self, exception=None, max_rss_mb=None, match=None):
        """Assert the case raised ``exception`` (None: nothing), stayed under ``max_rss_mb``
        of peak resident memory, and its message contains ``match``."""
        assert self.exception == (exception.__name__ if isinstance(exception, type) else exception), (
            f"raised {self.exception}: {self.message}\n{self.stderr[-2000:]}")
        if match is not None:
            assert match in self.message, self.message
        if max_rss_mb is not None:
            assert self.peak_rss_mb <= max_rss_mb, (
                f"peak RSS {self.peak_rss_mb:.0f} MB > {max_rss_mb} MB")
        return self


def run_limited(code, *, memory_mb=1024, cpu_seconds=30, timeout=30, threads=2,
                hide_sklearn=True, **env):
    """Run ``code`` in a child under ``RLIMIT_AS = memory_mb`` MiB and ``RLIMIT_CPU``; returns
    its :class:`Outcome`. Fails (an assertion) if the child crashed, was killed, hung, or
    printed no outcome."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    wrapper = _WRAPPER.format(code=textwrap.dedent(code), mark=_MARK, hide_sklearn=hide_sklearn)
    child_env = python_env(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1", **env)
    try:
        result = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                                timeout=timeout, env=child_env, preexec_fn=limit)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the case hung (no exit within {timeout} s)\n{exc.stderr}") from None
    assert result.returncode >= 0, (f"the case crashed (signal {-result.returncode})\n"
                                    f"{result.stderr[-3000:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith(_MARK)]
    assert lines, (f"the case exited {result.returncode} without an outcome\n"
                   f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    outcome = json.loads(lines[-1][len(_MARK):])
    return Outcome(result.returncode, outcome["exception"], outcome["message"],
                   outcome["peak_rss_mb"], result.stdout, result.stderr)
