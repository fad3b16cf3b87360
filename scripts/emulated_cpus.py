"""Runs the installed fastmlp on emulated CPUs without AVX-512 (and without AVX) and checks that
each picks the kernels it can run and computes the bits of those kernels on the real CPU.

Under qemu-user (``qemu-x86_64 -cpu MODEL``, Debian's qemu-user package), CPUID reports the model's
features and an instruction it lacks raises SIGILL, as on the real CPU:
- Nehalem (SSE4.2, no AVX) must choose "generic";
- Haswell (AVX2 + FMA, no AVX-512) must choose "avx2".
Each fits a small network with each solver and predicts; the weights, the outputs and the labels
must equal, bit for bit, those of the same run here with FASTMLP_ISA forcing that set.

Usage: python scripts/emulated_cpus.py [--python PYTHON] [MODEL=ISA ...]
Exit status 0 when every model agrees, 1 on a mismatch, 2 when qemu-x86_64 is missing.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

MODELS = {"Nehalem": "generic", "Haswell-noTSX": "avx2"}

# The run: data from integer arithmetic (the same everywhere), a fit with each solver, predict.
CHILD = r"""
import hashlib, json
import numpy as np
import fastmlp

i, j = np.meshgrid(np.arange(400), np.arange(64), indexing="ij")
X = (((i * 7919 + j * 104729) % 251) / 250.0).astype(np.float32)
y = (np.arange(400) * 7919 % 251) * 10 // 251   # a function of the first feature
out = {"build_info": fastmlp.build_info(), "runs": {}}
for solver, activation in (("sgd", "relu"), ("adam", "tanh")):
    model = fastmlp.MLP(hidden_layer_sizes=(64, 32), epochs=2, batch_size=50, solver=solver,
                        activation=activation, loss="cross_entropy", learning_rate=0.01,
                        random_state=0)
    model.fit(X, y)
    digest = hashlib.sha256()
    for w in model.coefs_ + model.intercepts_:
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    # The network's outputs (the C forward pass) and labels; predict_proba's softmax is
    # NumPy's exp, whose bits NumPy itself chooses per CPU.
    digest.update(np.ascontiguousarray(model._outputs(X)).tobytes())
    digest.update(np.ascontiguousarray(model.predict(X)).tobytes())
    out["runs"][f"{solver}/{activation}"] = {"bits": digest.hexdigest(),
                                             "accuracy": float(model.score(X, y))}
print(json.dumps(out))
"""


def run(command, env):
    start = time.monotonic()
    # Run elsewhere than the checkout: "-c" puts the working directory first on sys.path.
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900,
                            cwd=tempfile.gettempdir())
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} {command[1]} ... failed ({result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]), time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter whose fastmlp to test (default: this one)")
    parser.add_argument("models", nargs="*", help="MODEL=ISA pairs (default: "
                        + " ".join(f"{m}={i}" for m, i in MODELS.items()) + ")")
    args = parser.parse_args()
    models = dict(m.split("=", 1) for m in args.models) if args.models else MODELS
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("qemu-x86_64 not found (apt-get install qemu-user): no emulated CPUs")
        return 2
    # An ELF executable (qemu-user cannot run a shell-script shim), by its own path, so that a
    # venv's interpreter still finds its pyvenv.cfg.
    python = shutil.which(args.python) or args.python
    env = {k: v for k, v in os.environ.items() if k != "FASTMLP_ISA"}
    failures = 0
    for model, isa in models.items():
        native, _ = run([python, "-c", CHILD], dict(env, FASTMLP_ISA=isa))
        if native["build_info"]["isa"] != isa:
            print(f"{model}: this CPU cannot run {isa} natively; nothing to compare against")
            failures += 1
            continue
        emulated, seconds = run([qemu, "-cpu", model, python, "-c", CHILD], env)
        info = emulated["build_info"]
        same = emulated["runs"] == native["runs"]
        ok = info["isa"] == isa and same
        failures += not ok
        print(f"{model}: chose {info['isa']} (available: {' '.join(info['isa_available'])}; "
              f"expected {isa}); {'the same bits as' if same else 'DIFFERENT bits from'} "
              f"FASTMLP_ISA={isa} on this CPU; {seconds:.0f} s emulated")
        for name, r in emulated["runs"].items():
            print(f"  {name}: accuracy {r['accuracy']:.4f}, sha256 {r['bits'][:16]}"
                  + ("" if r == native["runs"][name] else
                     f" (native {native['runs'][name]['bits'][:16]})"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
