"""Every ```python block of the README runs on its own as a script and prints what it says.

A block may be preceded by ``<!-- readme-test: WORDS -->``: ``mnist`` skips it without the MNIST
files, ``sklearn`` without scikit-learn, ``slow`` marks it slow. A ``print(...)`` line ending in
``# VALUE`` promises that VALUE appears in the output.
"""
import os
import re

import pytest

from code_blocks import marks_for, run_block

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
BLOCK = re.compile(r"(?:<!-- readme-test: ([a-z ]+) -->\n)?```python\n(.*?)```", re.DOTALL)


def _blocks():
    if not os.path.isfile(README):
        return [pytest.param(None, id="no-readme",
                             marks=pytest.mark.skip(reason="README.md is not beside tests/"))]
    with open(README, encoding="utf-8") as f:
        text = f.read()
    params = []
    for number, match in enumerate(BLOCK.finditer(text), start=1):
        words = set((match.group(1) or "").split())
        marks = marks_for(words)
        line = text[:match.start(2)].count("\n") + 1
        params.append(pytest.param(match.group(2), id=f"block{number}-line{line}", marks=marks))
    return params


def test_the_readme_has_python_blocks():
    assert len(_blocks()) >= 4


@pytest.mark.parametrize("code", _blocks())
def test_readme_block_runs_as_a_script(code, tmp_path):
    run_block(code, tmp_path, must_print=True)
