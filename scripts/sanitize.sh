#!/usr/bin/env bash
# Build fastmlp's extension with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# kernel and API tests under it (NumPy's recipe: the interpreter is not instrumented, so libasan
# is LD_PRELOADed; any report halts the process and fails the run).
#
#   scripts/sanitize.sh            the kernel, property, reliability and API tests (~6 min on 2 cores)
#   scripts/sanitize.sh --quick    a subset for CI (~2 min on 2 cores, most of it the build)
#   scripts/sanitize.sh [--quick] -- PYTEST_ARGS...   choose the tests yourself
#
# The build happens in a temporary copy of the checkout, so the normal in-place build is left
# alone. Needs gcc or clang with libasan/libubsan, Cython, NumPy, pytest and Hypothesis.
# Environment: CC (compiler), KEEP=1 keeps the temporary copy, SANITIZE_DIR=DIR uses DIR.
set -euo pipefail

quick=0
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "sanitize.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
cc="${CC:-cc}"

if ! "$python" -c "import Cython, numpy, pytest, hypothesis, setuptools" 2>/dev/null; then
    echo "sanitize.sh: $python needs Cython, NumPy, setuptools, pytest and Hypothesis" \
         "(pip install cython numpy setuptools pytest hypothesis)" >&2
    exit 2
fi
libasan="$("$cc" -print-file-name=libasan.so)"
if [ ! -e "$libasan" ]; then
    echo "sanitize.sh: $cc has no libasan.so ($libasan); install the compiler's sanitizer runtime" >&2
    exit 2
fi
libasan="$(readlink -f "$libasan")"

work="${SANITIZE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/fastmlp-sanitize.XXXXXX")}"
if [ -z "${KEEP:-}" ] && [ -z "${SANITIZE_DIR:-}" ]; then
    trap 'rm -rf "$work"' EXIT
fi

# The checkout's sources (tracked and new, not ignored): never its build outputs.
(cd "$repo" && git ls-files -co --exclude-standard -z -- setup.py pyproject.toml fastmlp src_c tests) |
    (cd "$repo" && xargs -0 cp --parents -t "$work")

echo "sanitize.sh: building with ASan+UBSan in $work" >&2
# -O1 as ASan recommends; --quick compiles at -O0, which builds about twice as fast.
opt=-O1
[ "$quick" = 1 ] && opt=-O0
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g $opt"
(cd "$work" && FASTMLP_EXTRA_CFLAGS="$flags" FASTMLP_EXTRA_LDFLAGS="-fsanitize=address,undefined" \
    "$python" setup.py -q build_ext --inplace --parallel "$(nproc 2>/dev/null || echo 2)" \
    --build-temp "$work/build" >"$work/build.log" 2>&1) || {
    tail -40 "$work/build.log" >&2
    echo "sanitize.sh: the sanitizer build failed" >&2
    exit 2
}

if [ ${#pytest_args[@]} -eq 0 ]; then
    if [ "$quick" = 1 ]; then
        # of tests/test_bf16.py the packers' edges and the blank-input runs (the whole file
        # takes over 15 minutes unoptimised)
        pytest_args=(tests/test_kernels.py tests/test_properties.py tests/test_reliability_input.py
                     tests/test_zero_columns.py tests/test_bf16.py
                     -k "not 200 and not 784 and (not test_bf16.py or runs or edge or negative_zero)")
    else
        pytest_args=(tests/test_kernels.py tests/test_properties.py tests/test_reference.py
                     tests/test_zero_columns.py tests/test_mlp.py tests/test_reliability_input.py
                     tests/test_reliability_training.py tests/test_reliability_files.py
                     tests/test_io.py tests/test_sklearn.py)
    fi
fi
existing=()
for a in "${pytest_args[@]}"; do
    case "$a" in
        tests/*.py) [ -e "$work/$a" ] && existing+=("$a") || echo "sanitize.sh: no $a, skipped" >&2 ;;
        *) existing+=("$a") ;;
    esac
done

# detect_leaks=0: CPython itself never frees some memory at exit. PYTHONMALLOC=malloc sends
# Python's own small allocations (PyMem_Malloc buffers of the extension) through ASan too.
# Reports also go to files (pytest's output capture would swallow them when a process halts).
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:log_path=$work/sanitizer${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/sanitizer${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONMALLOC=malloc
export PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}"
export FASTMLP_DATA="${FASTMLP_DATA:-$repo/../shared/data/mnist}"

cd "$work"
status=0
LD_PRELOAD="$libasan" "$python" -c "import fastmlp._core as c, sys; sys.exit(0 if c.__file__.startswith('$work') else 1)" || {
    echo "sanitize.sh: the sanitized extension is not the one imported" >&2
    exit 2
}
LD_PRELOAD="$libasan" "$python" -m pytest -q -p no:cacheprovider -x "${existing[@]}" || status=$?
if [ "$status" = 0 ] && [ "$quick" = 0 ] && [ -z "${FASTMLP_ISA:-}" ]; then
    # ASan does not see every access of the SIMD micro-kernels' intrinsics; the plain-C
    # generic kernels it sees completely.
    echo "sanitize.sh: the kernel tests again with FASTMLP_ISA=generic" >&2
    FASTMLP_ISA=generic LD_PRELOAD="$libasan" "$python" -m pytest -q -p no:cacheprovider -x \
        tests/test_kernels.py tests/test_properties.py || status=$?
fi
reports=("$work"/sanitizer.*)
if [ -e "${reports[0]}" ]; then
    cat "${reports[@]}" >&2
    [ "$status" = 0 ] && status=1
fi
if [ "$status" = 0 ]; then
    echo "sanitize.sh: clean (ASan + UBSan found nothing)"
else
    echo "sanitize.sh: FAILED (status $status): see the sanitizer report above" >&2
fi
exit "$status"
