"""Builds fastmlp's compiled extension: the C kernels in src_c/ behind fastmlp/_core.pyx."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from concurrent.futures import ThreadPoolExecutor

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Every C file under src_c/, by folder: frame/ (blocking, packing, threading), kernels/ (one
# file per instruction set, and the registry that picks one), ops/ (the math of epilogues and
# losses), nn/ (layers and the training step).
C_SOURCES = sorted(str(p) for p in Path("src_c").rglob("*.c"))


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

# -g0: no debug information in the shipped library (Python's own CFLAGS ask for -g);
# FASTMLP_EXTRA_CFLAGS come later and may ask for it again.
extra_compile = ["-O3", "-std=c11", "-fno-math-errno", "-Wall", "-Wno-unused-function",
                 "-g0"] + openmp
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

def slowest_first(source):
    """Sort key: the kernel files first, larger first. Each instruction set's kernels compile
    every tile variant and take most of a build; started first, they leave the quick files to
    fill the other cores."""
    return (Path(source).parent.name != "kernels", -Path(source).stat().st_size)


class ParallelBuildExt(build_ext):
    """Compiles the extension's sources side by side, one per core: each instruction set's
    kernels are a translation unit of their own, and the largest takes most of a build."""

    def build_extension(self, ext):
        compile_one = self.compiler.compile

        def compile_all(sources, *args, **kwargs):
            workers = max(1, min(len(sources), os.cpu_count() or 1))
            with ThreadPoolExecutor(workers) as pool:
                objects = pool.map(lambda source: compile_one([source], *args, **kwargs),
                                   sorted(sources, key=slowest_first))
                return [obj for group in objects for obj in group]

        self.compiler.compile = compile_all
        try:
            super().build_extension(ext)
        finally:
            del self.compiler.compile


setup(ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}),
      cmdclass={"build_ext": ParallelBuildExt})
