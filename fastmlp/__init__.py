"""fastmlp: fast multilayer perceptrons on the CPU."""
from . import datasets
from ._core import build_info, get_num_threads, have_openmp
from ._threading import peak_gflops, set_num_threads
from .io import load
from .mlp import MLP, MLPClassifier, NotFittedError, StopTraining

__version__ = "0.1.0"
__all__ = ["MLP", "MLPClassifier", "NotFittedError", "StopTraining", "load", "datasets",
           "get_num_threads", "have_openmp", "set_num_threads", "build_info", "peak_gflops",
           "__version__"]
