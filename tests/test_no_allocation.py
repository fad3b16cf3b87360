"""A training step and a forward pass allocate nothing once warm (the near-peak issue's
"no heap allocation in the training step; all buffers made once").

`tests/c/count_allocations.c` is built against the C sources of this checkout with its own
malloc, calloc, realloc, aligned_alloc, memalign and posix_memalign, which count every call in
the process, on every thread (fastmlp's, libgomp's and the C library's) before handing it to
glibc's allocator. It makes sure the counter counts, warms each kind of call up, then counts the allocations of repeated training steps (plain SGD, Nesterov momentum with L2,
MSE, cross-entropy, a partial batch, shuffled rows) and forward passes (1, 7, 16, 200 and
3000 rows, with and without the NaN check): every count must be 0. Without the sources (an
installed copy alone), a C compiler or glibc, the test is skipped.
"""
import os
import platform
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from fastmlp import _core

SRC = Path(__file__).resolve().parent.parent / "src_c"
PROGRAM = Path(__file__).resolve().parent / "c" / "count_allocations.c"
AVAILABLE = _core.build_info()["isa_available"]


def compiler():
    configured = (sysconfig.get_config_var("CC") or "").split()
    for name in configured[:1] + ["cc", "gcc", "clang"]:
        if shutil.which(name):
            return name
    return None


@pytest.fixture(scope="module")
def count_allocations(tmp_path_factory):
    if not SRC.is_dir() or not PROGRAM.is_file():
        pytest.skip("the C sources are not next to the tests")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the counting allocator forwards to glibc's")
    cc = compiler()
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("alloc") / "count_allocations"
    sources = sorted(str(p) for p in SRC.rglob("*.c"))
    # -O1: the counts do not depend on the optimisation, and it compiles in a third of -O2's
    # time. With OpenMP where the compiler has it, as setup.py builds the package.
    cmd = [cc, "-O1", "-std=c11", "-fno-math-errno", f"-I{SRC}", str(PROGRAM), *sources,
           "-lm", "-o", str(exe)]
    built = subprocess.run(cmd[:1] + ["-fopenmp"] + cmd[1:], capture_output=True, text=True)
    if built.returncode != 0:
        built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return exe


# The generic kernels call fmaf from libm, hundreds of times slower: fewer calls there.
@pytest.mark.parametrize("isa,threads,repeats", [
    (isa, threads, 5) for isa in _core.ISAS if isa != "generic" for threads in (1, 2, 3)
] + [("generic", 2, 1)])
def test_steps_and_passes_allocate_nothing_once_warm(count_allocations, isa, threads, repeats):
    if isa not in AVAILABLE:
        pytest.skip(f"this CPU lacks {isa}")
    env = dict(os.environ, FASTMLP_ISA=isa)
    run = subprocess.run([str(count_allocations), str(threads), str(repeats)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(": 0 allocations in") == 14, run.stdout
