"""The products' precision ("fp32" or "bf16"): the one-time notice when bf16 is emulated."""
import warnings

from . import _core

_warned = False


def warn_if_emulated(precision):
    """Warn once per process when ``precision`` is "bf16" and this CPU has no bf16
    instructions: the exact emulation then runs, the same bits but slower than float32."""
    global _warned
    if precision != "bf16" or _warned:
        return
    info = _core.build_info()
    if info["bf16_native"]:
        return
    _warned = True
    warnings.warn(f"precision='bf16' runs an exact emulation on this CPU ({info['bf16']}): "
                  f"the same results as a CPU with AVX512_BF16, but slower than float32",
                  RuntimeWarning, stacklevel=4)
