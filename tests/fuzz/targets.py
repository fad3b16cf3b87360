"""Fuzz targets of the three parsers of untrusted bytes: the model loader, the checkpoint
loader and the IDX reader. Each accepts any input or raises ValueError; anything else (another
exception, a crash, memory beyond the fuzzer's RSS limit) is a finding.

Run one with Atheris (coverage-guided)::

    python tests/fuzz/targets.py model -max_total_time=60 NEW_CORPUS_DIR tests/fuzz/corpus/model
"""
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["fastmlp", "zipfile", "json"]):
    import fastmlp.io
    from fastmlp import checkpoint, datasets

# Fuzzed files are small: a budget of 64 MiB keeps every input's allocations small too.
BUDGET = 64 << 20
# The loaders read files: each input is written to this one (in FASTMLP_FUZZ_SCRATCH, which
# the test sets to its temporary directory, or the system's).
_FILE = os.path.join(os.environ.get("FASTMLP_FUZZ_SCRATCH", tempfile.gettempdir()),
                     f"fastmlp-fuzz-{os.getpid()}.npz")


def _as_file(data):
    with open(_FILE, "wb") as f:
        f.write(data)
    return _FILE


def model(data):
    fastmlp.io.load(_as_file(data), max_bytes=BUDGET)


def checkpoint_file(data):
    checkpoint.load_checkpoint(_as_file(data), max_bytes=BUDGET)


def idx(data):
    datasets.read_idx(data, max_bytes=BUDGET)


TARGETS = {"model": model, "checkpoint": checkpoint_file, "idx": idx}


def main():
    target = TARGETS[sys.argv.pop(1)]

    def one_input(data):
        try:
            target(data)
        except ValueError:
            pass

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
