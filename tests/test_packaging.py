"""What the sdist and the wheel hold: the sdist carries what its tests need to run, and a LICENSE;
the wheel carries the package without the extension's sources.

Builds from a copy of the checkout with the environment's setuptools (``--no-isolation``, so no
network), which must read an SPDX ``project.license`` (setuptools >= 77, in the ``test`` extra).
"""
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                     "*.so", ".hypothesis", ".pytest_cache", ".benchmarks",
                                     "_core.c")


def _setuptools_reads_spdx_licenses():
    try:
        from build import ProjectBuilder  # noqa: F401  (a build/ folder imports as a namespace)
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


pytestmark = [
    pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, "setup.py")),
                       reason="needs the source tree (tests run from an installed copy)"),
    pytest.mark.skipif(not _setuptools_reads_spdx_licenses(),
                       reason='needs the "build" package and setuptools >= 77 (pip install ".[test]")'),
]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The unpacked sdist built from a copy of the checkout: its directory and member names."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                    str(work / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (archive,) = (work / "dist").glob("fastmlp-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(work / "unpacked", **safe)
    (unpacked,) = (work / "unpacked").iterdir()
    return unpacked, names


def test_sdist_holds_what_its_tests_need_and_the_license(sdist):
    _, names = sdist
    required = {"LICENSE", "README.md", "pyproject.toml", "setup.py", "fastmlp/_core.pyx",
                "tests/conftest.py", "tests/http_fixtures.py", "tests/reliability_util.py",
                "tests/mnist_data.py", "tests/c/count_allocations.c"}
    assert required <= names, sorted(required - names)
    assert {n for n in os.listdir(os.path.join(ROOT, "tests")) if n.endswith(".py")} <= {
        n.split("/", 1)[1] for n in names if n.startswith("tests/") and n.count("/") == 1}


def test_sdist_metadata_has_an_spdx_license(sdist):
    unpacked, _ = sdist
    metadata = (unpacked / "PKG-INFO").read_text()
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata


def test_wheel_package_leaves_out_the_extension_sources(sdist, tmp_path):
    """build_py copies exactly the package files a wheel gets (all but the compiled .so)."""
    unpacked, _ = sdist
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
                   cwd=unpacked, check=True, capture_output=True, timeout=300)
    files = set(os.listdir(tmp_path / "fastmlp"))
    assert {"__init__.py", "mlp.py", "cli.py", "_core.pyi", "py.typed"} <= files
    assert not {"_core.c", "_core.pyx", "_core.pxd"} & files
    assert {"__init__.py", "_engine.py", "_multilayer_perceptron.py"} <= set(
        os.listdir(tmp_path / "fastmlp" / "neural_network"))
    assert {"__init__.py", "_graph.py", "_skl2onnx.py"} <= set(
        os.listdir(tmp_path / "fastmlp" / "onnx"))
