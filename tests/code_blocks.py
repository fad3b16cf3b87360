"""What test_readme.py and test_docs_examples.py share: the marks a block's words ask for, and
running a block as a script with the checks of its output."""
import re
import subprocess
import sys

import pytest

from mnist_data import needs_mnist
from reliability_util import python_env

# A print(...) line ending in "# VALUE" promises that VALUE appears in the output.
PROMISE = re.compile(r"^\s*print\(.*\)\s*#\s*(\S+)\s*$", re.MULTILINE)


def have_sklearn():
    try:
        import sklearn  # noqa: F401
        return True
    except ImportError:
        return False


def marks_for(words):
    """The pytest marks of a block marked with these words: mnist, sklearn, slow."""
    marks = []
    if "mnist" in words:
        marks.append(needs_mnist)
    if "sklearn" in words:
        marks.append(pytest.mark.skipif(not have_sklearn(), reason="needs scikit-learn"))
    if "slow" in words:
        marks.append(pytest.mark.slow)
    return marks


def run_block(code, tmp_path, must_print):
    """Runs code as a script in tmp_path: it must succeed, print something when must_print,
    and print every value it promises."""
    script = tmp_path / "block.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, env=python_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    if must_print:
        assert result.stdout.strip(), "the block prints nothing"
    for value in PROMISE.findall(code):
        assert value in result.stdout, (value, result.stdout[-2000:])
