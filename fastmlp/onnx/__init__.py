"""Export fitted fastmlp models to ONNX, for ONNX Runtime and any other ONNX engine.

- :func:`to_onnx` returns the ``onnx.ModelProto`` of a fitted ``fastmlp.MLP``,
  ``fastmlp.neural_network.MLPClassifier`` or ``MLPRegressor``; :func:`save_onnx` (and each
  estimator's ``save_onnx`` method) writes it to a file.
- ``import fastmlp.onnx`` also registers these estimators with skl2onnx (when skl2onnx is
  installed), so that ``skl2onnx.to_onnx`` converts a scikit-learn ``Pipeline`` that ends in
  one of them, for example ``StandardScaler`` -> ``fastmlp.MLP``.

The graph holds standard operators only: Gemm for each layer, Relu, Tanh, Sigmoid, LeakyRelu,
Gelu (Erf below opset 20) for the hidden activation, then Softmax, Sigmoid or Exp, and ArgMax
and Gather for the labels; no ZipMap. Needs the ``onnx`` extra: ``pip install
"fastmlp[onnx]"``.
"""
import os

from ._graph import DEFAULT_OPSET, MIN_OPSET, ModelGraph, describe, require_onnx

__all__ = ["to_onnx", "save_onnx", "require_onnx", "DEFAULT_OPSET"]


def to_onnx(model, *, target_opset=None, input_name="X", name=None):
    """The ONNX model of a fitted fastmlp estimator.

    Parameters
    ----------
    model : fastmlp.MLP, fastmlp.neural_network.MLPClassifier or MLPRegressor
        A fitted model.
    target_opset : int, optional
        The ONNX opset (of the default domain) to write, from 13; default
        :data:`DEFAULT_OPSET` (21). From opset 20 GELU is the ``Gelu`` operator, below it
        ``x (1 + Erf(x / sqrt 2)) / 2``.
    input_name : str
        The name of the graph's input.
    name : str, optional
        The graph's name (default: the estimator's class name).

    Returns
    -------
    onnx.ModelProto
        One input ``input_name``, float32 of shape (N, n_features_in_). A classifier has two
        outputs: ``label`` (N,), the predicted label in ``classes_``' type (int64, float64,
        bool or string), and ``probabilities`` (N, n_classes) float32, what ``predict_proba``
        returns (for ``fastmlp.MLP``, the softmax of its outputs whatever its loss); a
        multilabel drop-in classifier's ``label`` is its (N, n_classes) 0/1 int64 indicator
        matrix. A regressor has one output ``variable`` (N, n_outputs) float32.

    Notes
    -----
    The graph computes in float32, as fastmlp's core does: a model whose ``coefs_`` are float64
    (a drop-in estimator fitted on float64 data) is written with its weights cast to float32,
    which are the weights its own ``predict`` uses. The outputs agree with the estimator's to
    about 1e-6 (float32 rounding in a different order); ``decision_function`` is not exported.

    Raises
    ------
    ImportError
        Without the ``onnx`` package (``pip install "fastmlp[onnx]"``).
    NotFittedError
        If the model is not fitted.
    TypeError
        If the model is not one of fastmlp's estimators.
    ValueError
        If ``target_opset`` is below 13 or ``classes_`` cannot be ONNX labels.
    """
    require_onnx()
    opset = DEFAULT_OPSET if target_opset is None else int(target_opset)
    if opset < MIN_OPSET:
        raise ValueError(f"target_opset must be >= {MIN_OPSET}, got {target_opset!r}")
    spec = describe(model)
    return ModelGraph(opset).model(spec, input_name, name or type(model).__name__)


def save_onnx(model, path, **kwargs):
    """Write :func:`to_onnx`'s model of ``model`` to ``path``, atomically (a failure leaves
    any previous file intact).

    Parameters
    ----------
    model : fastmlp.MLP, fastmlp.neural_network.MLPClassifier or MLPRegressor
    path : str or os.PathLike
    **kwargs
        Passed to :func:`to_onnx` (``target_opset``, ``input_name``, ``name``).
    """
    from .._files import atomic_write
    data = to_onnx(model, **kwargs).SerializeToString()
    atomic_write(os.fspath(path), lambda f: f.write(data))


def _register():
    try:
        import skl2onnx  # noqa: F401
    except ImportError:
        return
    from ._skl2onnx import register
    register()


_register()
