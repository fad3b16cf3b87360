"""Every ```python block of the README runs on its own as a script and prints what it says.

A block may be preceded by ``<!-- readme-test: WORDS -->``: ``mnist`` skips it without the MNIST
files, ``sklearn`` without scikit-learn, ``slow`` marks it slow. A ``print(...)`` line ending in
``# VALUE`` promises that VALUE appears in the output.
"""
import os
import re
import subprocess
import sys

import pytest

from mnist_data import needs_mnist
from reliability_util import python_env

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
BLOCK = re.compile(r"(?:<!-- readme-test: ([a-z ]+) -->\n)?```python\n(.*?)```", re.DOTALL)


def _have_sklearn():
    try:
        import sklearn  # noqa: F401
        return True
    except ImportError:
        return False


def _blocks():
    if not os.path.isfile(README):
        return [pytest.param(None, id="no-readme",
                             marks=pytest.mark.skip(reason="README.md is not beside tests/"))]
    with open(README, encoding="utf-8") as f:
        text = f.read()
    params = []
    for number, match in enumerate(BLOCK.finditer(text), start=1):
        words = set((match.group(1) or "").split())
        marks = []
        if "mnist" in words:
            marks.append(needs_mnist)
        if "sklearn" in words:
            marks.append(pytest.mark.skipif(not _have_sklearn(), reason="needs scikit-learn"))
        if "slow" in words:
            marks.append(pytest.mark.slow)
        line = text[:match.start(2)].count("\n") + 1
        params.append(pytest.param(match.group(2), id=f"block{number}-line{line}", marks=marks))
    return params


def test_the_readme_has_python_blocks():
    assert len(_blocks()) >= 4


@pytest.mark.parametrize("code", _blocks())
def test_readme_block_runs_as_a_script(code, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, env=python_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the block prints nothing"
    promised = re.findall(r"^\s*print\(.*\)\s*#\s*(\S+)\s*$", code, re.MULTILINE)
    for value in promised:
        assert value in result.stdout, (value, result.stdout[-2000:])


