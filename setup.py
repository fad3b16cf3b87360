"""Builds fastmlp's compiled extension: the C kernels in src_c/ behind fastmlp/_core.pyx."""
import os
import subprocess
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

C_SOURCES = [
    "src_c/threads.c",
    "src_c/dispatch.c",
    "src_c/gemm.c",
    "src_c/pack.c",
    "src_c/peak.c",
    "src_c/ukernel_generic.c",
    "src_c/ukernel_avx2.c",
    "src_c/ukernel_avx512.c",
    "src_c/layers.c",
    "src_c/loss.c",
    "src_c/mlp_step.c",
    "src_c/sizes.c",
    "src_c/workspace.c",
    "src_c/finite.c",
    "src_c/zero_runs.c",
]


def compiler_accepts(flag):
    """Whether the C compiler accepts `flag` (to build with OpenMP only where it exists)."""
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            result = subprocess.run([cc, flag, src, "-o", os.path.join(tmp, "probe")],
                                    capture_output=True)
        except OSError:
            return False
        return result.returncode == 0


openmp = [] if os.environ.get("FASTMLP_NO_OPENMP") else (["-fopenmp"] if compiler_accepts("-fopenmp") else [])
if not openmp:
    print("fastmlp: building without OpenMP (single-threaded kernels)", file=sys.stderr)

extra_compile = ["-O3", "-std=c11", "-fno-math-errno", "-Wall", "-Wno-unused-function"] + openmp
extra_compile += os.environ.get("FASTMLP_EXTRA_CFLAGS", "").split()
extra_link = openmp + os.environ.get("FASTMLP_EXTRA_LDFLAGS", "").split()

extension = Extension(
    "fastmlp._core",
    sources=["fastmlp/_core.pyx"] + C_SOURCES,
    include_dirs=["src_c", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=extra_compile,
    extra_link_args=extra_link,
)

setup(ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}))
