"""What the sdist and the wheel hold: the sdist carries what its build and its tests need, a
LICENSE and nothing else; the wheel carries the package without the extension's sources; the
sdist builds into a working wheel in a fresh virtual environment.

Builds from a copy of the checkout with the environment's setuptools (``--no-isolation``, so no
network), which must read an SPDX ``project.license`` (setuptools >= 77, in the ``test`` extra).
"""
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                     "*.so", ".hypothesis", ".pytest_cache", ".benchmarks",
                                     "_core.c")
# What a working checkout may hold besides its sources: none of it belongs in the sdist.
STRAYS = ["build/lib/fastmlp/mlp.py", "dist/fastmlp-0.0.0.tar.gz", "site/index.html",
          "fastmlp/_core.cpython-311-x86_64-linux-gnu.so", "src_c/kernels/avx2.o",
          "benchmarks/sweep.csv", "benchmarks/speeds.png", "mnist/train-images-idx3-ubyte.gz",
          "tests/data/train-images-idx3-ubyte.gz", "model.npz", "fastmlp/__pycache__/mlp.pyc"]
# Everything the sdist may hold, by pattern (fnmatch's * also matches "/").
SDIST_FILES = ["PKG-INFO", "setup.cfg", "setup.py", "pyproject.toml", "MANIFEST.in", "README.md",
               "LICENSE", "fastmlp.egg-info/*", "fastmlp/*.py", "fastmlp/*.pyx", "fastmlp/*.pxd",
               "fastmlp/*.pyi", "fastmlp/py.typed",
               "fastmlp/_core.c",   # Cython's translation of _core.pyx, made by the sdist build
               "src_c/*.c", "src_c/*.h", "tests/*.py", "tests/c/*.c", "tests/fuzz/corpus/*",
               "docs/*.md"]


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
    for stray in STRAYS:
        (source / stray).parent.mkdir(parents=True, exist_ok=True)
        (source / stray).write_bytes(b"not a source")
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


def _checkout_files(*folders):
    """The files under `folders` of the checkout, as sdist member names (no caches or builds)."""
    found = set()
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__pycache__"))]
            for name in filenames:
                if not name.endswith((".pyc", ".so", ".o")):
                    found.add(os.path.relpath(os.path.join(dirpath, name), ROOT).replace(os.sep, "/"))
    return found


def test_sdist_holds_every_source_the_build_and_the_tests_need(sdist):
    _, names = sdist
    needed = _checkout_files("src_c", "tests", "fastmlp") - {"fastmlp/_core.c"}
    needed |= {n for n in _checkout_files("docs") if n.endswith(".md")}   # test_docs_examples
    assert needed <= names, sorted(needed - names)


def test_sdist_holds_nothing_else(sdist):
    _, names = sdist
    folders = {n.rsplit("/", 1)[0] for n in names if "/" in n}
    files = names - folders
    stray = sorted(n for n in files if not any(fnmatch.fnmatch(n, p) for p in SDIST_FILES))
    assert stray == []
    assert not {s for s in STRAYS} & files


def _working_compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0]) if cc.split() else None


@pytest.mark.slow
@pytest.mark.skipif(_working_compiler() is None, reason="needs a C compiler to build the sdist")
def test_sdist_builds_a_working_wheel_in_a_fresh_venv(sdist, tmp_path):
    """pip builds the unpacked sdist in a new venv (its own isolated build environment, from the
    package index), then installs the wheel there and fits a model; the wheel holds the package,
    its compiled core and its metadata, no sources."""
    unpacked, _ = sdist
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
    built = subprocess.run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                            str(tmp_path / "wheels"), str(unpacked)],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("fastmlp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [n for n in names if re.fullmatch(r"fastmlp/_core\.[^/]*(so|pyd)", n)]
    assert {"fastmlp/__init__.py", "fastmlp/neural_network/__init__.py", "fastmlp/_core.pyi",
            "fastmlp/py.typed"} <= names
    assert not [n for n in names if n.endswith((".c", ".h", ".pyx", ".pxd", ".o"))]
    assert {n.split("/")[0] for n in names} == {"fastmlp", "fastmlp-0.1.0.dist-info"}
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    code = ("import numpy as np, fastmlp; X = np.eye(8, dtype=np.float32); "
            "m = fastmlp.MLP(hidden_layer_sizes=(16,), epochs=200, learning_rate=0.5, "
            "random_state=0).fit(X, np.arange(8) % 2); print(fastmlp.build_info()['isa'], "
            "m.score(X, np.arange(8) % 2))")
    run = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    isa, score = run.stdout.split()
    assert isa in fastmlp_isas() and float(score) == 1.0


def fastmlp_isas():
    from fastmlp import _core
    return _core.ISAS
