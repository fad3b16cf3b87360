"""The compiled extension runs on any x86-64 CPU: AVX2 / FMA and AVX-512 instructions sit only in
the kernel files, reached only through the registry that probes the CPU (tests/isa_audit.py).

FASTMLP_ISA cannot prove this (it only selects among the sets the CPU has); reading the machine
code can. scripts/emulated_cpus.py runs the package on emulated CPUs without them.
"""
import os
import platform
import shutil
import subprocess

import pytest

from fastmlp import _core

from isa_audit import ISA_FILES, audit

pytestmark = [
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                       reason="the instruction audit reads x86-64 machine code"),
    pytest.mark.skipif(not (shutil.which("objdump") and shutil.which("readelf")),
                       reason="needs objdump and readelf (binutils)"),
]


def test_wide_instructions_only_in_the_kernel_files_behind_the_registry():
    result = audit(_core.__file__)
    assert result.violations == []
    summary = result.summary()
    assert summary["avx512.c"]["evex"] > 0 and summary["avx2.c"]["vex"] > 0
    assert {"avx2.c", "avx512.c"} <= set(summary) <= set(ISA_FILES)
    assert {"x86_has_avx2", "x86_has_avx512"} <= set(result.probes)


# The audit's own check: small libraries that break each rule, built like the extension.
LIBRARY = {
    "avx2.c": """
        #pragma GCC target("avx2,fma")
        #include <immintrin.h>
        typedef struct { void (*run)(float *); } fm_kernel_set;
        static void twice(float *x) { _mm256_storeu_ps(x, _mm256_add_ps(_mm256_loadu_ps(x),
                                                                        _mm256_loadu_ps(x))); }
        const fm_kernel_set fm_kernels_avx2 = { .run = twice };
        %s
    """,
    "registry.c": """
        #include <cpuid.h>
        typedef struct { void (*run)(float *); } fm_kernel_set;
        extern const fm_kernel_set fm_kernels_avx2;
        static const fm_kernel_set *sets[] = { &fm_kernels_avx2 };
        static int has_avx2(void) { unsigned a, b, c, d; __cpuid_count(7, 0, a, b, c, d);
                                    return (b >> 5) & 1; }
        void fm_dispatch_init(float *x) { if (has_avx2()) sets[0]->run(x); }
    """,
    "other.c": """
        %s
        float other(float *x) { return x[0] + x[1]; }
    """,
}


def _compiler(tmp_path):
    """A C compiler that works ($CC, else cc), or the test skips."""
    cc = shutil.which(os.environ.get("CC") or "cc")
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    if cc is None or subprocess.run([cc, "-c", str(probe), "-o", str(tmp_path / "probe.o")],
                                    capture_output=True).returncode != 0:
        pytest.skip("needs a C compiler to build the audit's test libraries")
    return cc


def _build(tmp_path, avx2_extra="", other_head="", other_flags=()):
    cc = _compiler(tmp_path)
    objects = []
    for name, text in LIBRARY.items():
        source = tmp_path / name
        source.write_text(text % (avx2_extra if name == "avx2.c" else other_head)
                          if "%s" in text else text)
        flags = list(other_flags) if name == "other.c" else []
        subprocess.run([cc, "-O2", "-fPIC", "-c", *flags, str(source), "-o",
                        str(source.with_suffix(".o"))], check=True, capture_output=True)
        objects.append(str(source.with_suffix(".o")))
    library = tmp_path / "lib.so"
    subprocess.run([cc, "-shared", *objects, "-o", str(library)], check=True,
                   capture_output=True)
    return str(library)


def test_the_audit_passes_a_library_that_keeps_the_rules(tmp_path):
    assert audit(_build(tmp_path)).violations == []


def test_the_audit_finds_avx2_built_into_an_ordinary_file(tmp_path):
    """What -march=native (or -mavx2) on the whole build leaves: VEX code outside the kernels."""
    library = _build(tmp_path, other_head="float wide(float *x, float *y) {"
                     " float s = 0; for (int i = 0; i < 64; i++) s += x[i] * y[i]; return s; }",
                     other_flags=["-mavx2", "-mfma", "-O3"])
    assert any("wide (global symbol)" in v and "vex" in v for v in audit(library).violations)


def test_the_audit_finds_a_kernel_reached_around_the_registry(tmp_path):
    """A global function in a kernel file: callable without the CPUID check."""
    library = _build(tmp_path, avx2_extra="void fm_leak(float *x) { twice(x); twice(x + 8); }")
    assert any("fm_leak" in v and "vex" in v for v in audit(library).violations)


def test_the_audit_finds_a_table_read_outside_the_registry(tmp_path):
    library = _build(tmp_path, other_head="""
        typedef struct { void (*run)(float *); } fm_kernel_set;
        extern const fm_kernel_set fm_kernels_avx2;
        void fm_shortcut(float *x) { fm_kernels_avx2.run(x); }""")
    assert any("fm_shortcut" in v and "reads fm_kernels_avx2" in v
               for v in audit(library).violations)
