"""fastmlp: fast multilayer perceptrons on the CPU."""
from . import datasets
from ._core import get_num_threads, have_openmp, set_num_threads
from .mlp import MLP

__version__ = "0.1.0"
__all__ = ["MLP", "datasets", "get_num_threads", "have_openmp", "set_num_threads", "__version__"]
