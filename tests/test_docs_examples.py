"""Every ```python block of the pages in docs/ runs on its own as a script, as test_readme.py
runs the README's.

A block may be preceded by ``<!-- docs-test: WORDS -->`` (or ``readme-test:``): ``mnist`` skips
it without the MNIST files, ``sklearn`` without scikit-learn, ``slow`` marks it slow, and
``skip REASON`` leaves out a block that only shows a fragment (the reason is required). A
``print(...)`` line ending in ``# VALUE`` promises that VALUE appears in the output, and a
block that prints must print something. A block that is also in the README is left to
test_readme.py, which runs it already.
"""
import glob
import os
import re

import pytest

from code_blocks import have_sklearn, marks_for, run_block

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
BLOCK = re.compile(r"(?:<!-- (?:docs|readme)-test: (.+?) -->\n)?```python\n(.*?)```", re.DOTALL)
WORDS = {"mnist", "sklearn", "slow"}


def _readme_blocks():
    path = os.path.join(ROOT, "README.md")
    if not os.path.isfile(path):
        return set()
    with open(path, encoding="utf-8") as f:
        return {match.group(2) for match in BLOCK.finditer(f.read())}


def _pages():
    return sorted(glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True))


def _blocks():
    if not _pages():
        return [pytest.param(None, id="no-docs",
                             marks=pytest.mark.skip(reason="docs/ is not beside tests/"))]
    in_readme = _readme_blocks()
    params = []
    for page in _pages():
        with open(page, encoding="utf-8") as f:
            text = f.read()
        name = os.path.relpath(page, DOCS).replace(os.sep, "/")
        for match in BLOCK.finditer(text):
            code = match.group(2)
            line = text[:match.start(2)].count("\n") + 1
            words = (match.group(1) or "").split()
            marks = []
            if words[:1] == ["skip"]:
                reason = " ".join(words[1:])
                assert reason, f"{name}:{line}: 'skip' needs a reason"
                marks.append(pytest.mark.skip(reason=f"a fragment: {reason}"))
            else:
                unknown = set(words) - WORDS
                assert not unknown, f"{name}:{line}: unknown docs-test words {sorted(unknown)}"
            if code in in_readme:
                marks.append(pytest.mark.skip(reason="also in the README: test_readme.py runs it"))
            marks += marks_for(words)
            params.append(pytest.param(code, id=f"{name}-line{line}", marks=marks))
    return params


def test_the_docs_have_python_blocks():
    assert len(_blocks()) >= 10


@pytest.mark.parametrize("code", _blocks())
def test_docs_block_runs_as_a_script(code, tmp_path):
    run_block(code, tmp_path, must_print=re.search(r"^\s*print\(", code, re.MULTILINE))


# The modules whose docstrings have examples (the API reference shows them).
DOCTEST_MODULES = ["fastmlp._threading", "fastmlp.metrics",
                   "fastmlp.neural_network._multilayer_perceptron"]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name):
    import doctest
    import importlib
    import warnings
    if name.startswith("fastmlp.neural_network") and not have_sklearn():
        pytest.skip("needs scikit-learn")
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a short fit's ConvergenceWarning
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
