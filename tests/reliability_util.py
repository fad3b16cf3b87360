"""Helpers of the reliability tests: child interpreters that import the same fastmlp as the tests."""
import os
import subprocess
import sys

import fastmlp


def python_env(**extra):
    """os.environ plus ``extra``, with the directory of the imported fastmlp first on PYTHONPATH
    (conftest sets PYTHONSAFEPATH, so a child would not find an uninstalled checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastmlp.__file__)))
    env = dict(os.environ, **extra)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root] + rest)
    return env


def run_python(args, timeout=180, check=True, **extra_env):
    """Run ``python ARGS`` (a list, or a script string for ``-c``); assert it exits 0 when
    ``check``. Returns the CompletedProcess."""
    if isinstance(args, str):
        args = ["-c", args]
    result = subprocess.run([sys.executable] + list(args), capture_output=True, text=True,
                            timeout=timeout, env=python_env(**extra_env))
    if check:
        assert result.returncode == 0, (f"exit {result.returncode}\n{result.stdout[-3000:]}\n"
                                        f"{result.stderr[-3000:]}")
    return result
