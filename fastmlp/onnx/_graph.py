"""The ONNX graph of a fitted fastmlp model, in standard ONNX operators.

:func:`describe` reads a fitted estimator into a :class:`NetworkSpec` (float32 weights, the
hidden activation, the output layer, the labels); :func:`emit_network` writes its nodes through
a small graph interface (``constant``, ``node``), so the standalone export
(:class:`ModelGraph`, which makes an ``onnx.ModelProto``) and the skl2onnx converter
(``_skl2onnx``) build the same graph. Nothing here imports ``onnx`` at module level: this
module loads without the extra.
"""
import math
from dataclasses import dataclass

import numpy as np

EXTRA_HINT = 'pip install "fastmlp[onnx]"'

#: The opset ``to_onnx`` writes unless told otherwise: 21 is the newest that every version the
#: extra allows (onnx >= 1.16, onnxruntime >= 1.18) reads, and it has the Gelu operator.
DEFAULT_OPSET = 21
#: The first opset with ``Gelu``; below it GELU is written with ``Erf``.
GELU_OPSET = 20
#: The oldest opset written: Softmax on one axis, ArgMax and Gemm as used here date from 13.
MIN_OPSET = 13

# Leaky ReLU's slope below 0, as the C core uses it (src_c/ops/activation.h, LEAKY_SLOPE).
LEAKY_SLOPE = 0.01

#: The outputs of the network's last layer, and what the graph computes from them.
#:  "logits": fastmlp.MLP; probabilities are the softmax, the label the argmax of the logits.
#:  "softmax": the drop-in's multiclass classifier (the same graph).
#:  "logistic_binary": one output p; probabilities [1 - p, p], label where p > 1/2.
#:  "logistic_multilabel": one sigmoid per class; the label is the 0/1 indicator matrix.
#:  "identity", "exp": the drop-in's regressor (squared error, Poisson); output "variable".
OUTPUTS = ("logits", "softmax", "logistic_binary", "logistic_multilabel", "identity", "exp")


def require_onnx():
    """The ``onnx`` module, or an ImportError naming the extra."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"exporting to ONNX needs the onnx package: {EXTRA_HINT} "
                          f"({exc})") from exc
    return onnx


@dataclass
class NetworkSpec:
    """What the ONNX graph of a fitted model holds.

    ``weights`` are ``[(W, b), ...]`` in float32, ``W`` of shape (n_in, n_out); ``activation``
    follows every layer but the last; ``output`` is one of :data:`OUTPUTS`; ``classes`` the
    label of each output column (classifiers), as :func:`label_array` types it.
    """
    weights: list
    activation: str
    output: str
    classes: object = None

    @property
    def n_features(self):
        return int(self.weights[0][0].shape[0])

    @property
    def n_outputs(self):
        return int(self.weights[-1][0].shape[1])

    @property
    def is_classifier(self):
        return self.output not in ("identity", "exp")


def label_array(classes):
    """``classes_`` as the label output's values: int64 for integers, float64 for floats,
    bool, or an object array of str for strings."""
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind in "iu":
        if kind == "u" and classes.size and classes.max() > np.iinfo(np.int64).max:
            raise ValueError("classes_ beyond int64 cannot be ONNX labels")
        return classes.astype(np.int64)
    if kind == "f":
        return classes.astype(np.float64)
    if kind == "b":
        return classes.astype(bool)
    if kind in "USO" and all(isinstance(c, str) for c in classes.tolist()):
        return np.array(classes.tolist(), dtype=object)
    raise ValueError(f"classes_ of dtype {classes.dtype} cannot be ONNX labels: the label "
                     f"output holds integers, floats, booleans or strings")


def describe(model):
    """The :class:`NetworkSpec` of a fitted ``fastmlp.MLP`` or ``fastmlp.neural_network``
    estimator (weights cast to float32, the precision the core computes in)."""
    from ..mlp import MLPClassifier as CoreMLP
    if isinstance(model, CoreMLP):
        model._check_fitted()
        weights = model.get_weights()
        layers = [(np.asarray(W, np.float32), np.asarray(b, np.float32))
                  for W, b in zip(weights[0::2], weights[1::2])]
        return NetworkSpec(layers, model._activation, "logits", label_array(model.classes_))
    dropin = _dropin_classes()
    if dropin and isinstance(model, dropin):
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(model)
        layers = [(np.asarray(W, np.float32), np.asarray(b, np.float32))
                  for W, b in zip(model.coefs_, model.intercepts_)]
        out = model.out_activation_
        if out in ("identity", "exp"):
            return NetworkSpec(layers, model.activation, out)
        if out == "softmax":
            kind = "softmax"
        elif model._label_binarizer.y_type_.startswith("multilabel"):
            kind = "logistic_multilabel"
        else:
            kind = "logistic_binary"
        return NetworkSpec(layers, model.activation, kind, label_array(model.classes_))
    raise TypeError(f"cannot export a {type(model).__name__} to ONNX: fastmlp exports "
                    f"fastmlp.MLP and fastmlp.neural_network's MLPClassifier and MLPRegressor")


def _dropin_classes():
    """The drop-in's classes, or () without scikit-learn."""
    try:
        from ..neural_network import MLPClassifier, MLPRegressor
    except ImportError:
        return ()
    return (MLPClassifier, MLPRegressor)


def emit_activation(graph, name, h):
    """The hidden activation ``name`` applied to ``h``; returns the result's name."""
    if name == "relu":
        return graph.node("Relu", [h])
    if name == "tanh":
        return graph.node("Tanh", [h])
    if name == "logistic":
        return graph.node("Sigmoid", [h])
    if name == "identity":
        return h
    if name == "leaky_relu":
        return graph.node("LeakyRelu", [h], alpha=LEAKY_SLOPE)
    if name == "gelu":
        if graph.opset >= GELU_OPSET:
            return graph.node("Gelu", [h], approximate="none")
        # x Phi(x) = x (1 + erf(x / sqrt 2)) / 2
        scaled = graph.node("Mul", [h, graph.constant("inv_sqrt2", np.float32(1 / math.sqrt(2)))])
        one_plus = graph.node("Add", [graph.node("Erf", [scaled]),
                                      graph.constant("one", np.float32(1))])
        return graph.node("Mul", [graph.node("Mul", [h, one_plus]),
                                  graph.constant("half", np.float32(0.5))])
    raise ValueError(f"no ONNX form for the activation {name!r}")


def emit_network(graph, spec, x, outputs):
    """The nodes of ``spec`` from the float32 input ``x`` to the named ``outputs``:
    ``{"label": ..., "probabilities": ...}`` for a classifier, ``{"variable": ...}`` for a
    regressor."""
    h = x
    last = len(spec.weights) - 1
    for layer, (W, b) in enumerate(spec.weights):
        h = graph.node("Gemm", [h, graph.constant(f"W{layer + 1}", W),
                                graph.constant(f"b{layer + 1}", b)])
        if layer < last:
            h = emit_activation(graph, spec.activation, h)
    if spec.output == "identity":
        graph.node("Identity", [h], output=outputs["variable"])
        return
    if spec.output == "exp":
        graph.node("Exp", [h], output=outputs["variable"])
        return
    if spec.output in ("logits", "softmax"):
        classes = graph.constant("classes", spec.classes)
        graph.node("Softmax", [h], output=outputs["probabilities"], axis=1)
        index = graph.node("ArgMax", [h], axis=1, keepdims=0)
        graph.node("Gather", [classes, index], output=outputs["label"], axis=0)
    elif spec.output == "logistic_binary":
        p = graph.node("Sigmoid", [h])
        q = graph.node("Sub", [graph.constant("one", np.float32(1)), p])
        probabilities = graph.node("Concat", [q, p], output=outputs["probabilities"], axis=1)
        # argmax of [1 - p, p] is 1 where p > 1/2 (1 - p is exact there), the drop-in's rule
        index = graph.node("ArgMax", [probabilities], axis=1, keepdims=0)
        classes = graph.constant("classes", spec.classes)
        graph.node("Gather", [classes, index], output=outputs["label"], axis=0)
    elif spec.output == "logistic_multilabel":
        p = graph.node("Sigmoid", [h], output=outputs["probabilities"])
        above = graph.node("Greater", [p, graph.constant("half", np.float32(0.5))])
        graph.node("Cast", [above], output=outputs["label"], to=7)   # TensorProto.INT64
    else:
        raise ValueError(f"unknown output layer {spec.output!r}")


class ModelGraph:
    """Collects nodes and initializers into an ``onnx.ModelProto``."""

    def __init__(self, opset):
        self.onnx = require_onnx()
        self.opset = opset
        self.nodes, self.initializers, self._names = [], [], set()

    def unique(self, hint):
        name, i = hint, 1
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def constant(self, hint, value):
        from onnx import numpy_helper
        name = self.unique(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, output=None, **attrs):
        out = self.unique(op.lower()) if output is None else output
        self._names.add(out)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=self.unique(op),
                                                     **attrs))
        return out

    def model(self, spec, input_name, graph_name):
        """The ModelProto: input ``input_name`` float32 (N, n_features); outputs ``label``
        and ``probabilities``, or ``variable``."""
        onnx = self.onnx
        helper, TensorProto = onnx.helper, onnx.TensorProto
        self._names.add(input_name)
        if spec.is_classifier:
            names = {"label": "label", "probabilities": "probabilities"}
        else:
            names = {"variable": "variable"}
        emit_network(self, spec, input_name, names)
        n = "N"
        if spec.is_classifier:
            label_type = helper.np_dtype_to_tensor_dtype(np.dtype(spec.classes.dtype)) \
                if spec.classes.dtype != object else TensorProto.STRING
            if spec.output == "logistic_multilabel":
                label_type, label_shape = TensorProto.INT64, [n, spec.n_outputs]
            else:
                label_shape = [n]
            n_prob = 2 if spec.output == "logistic_binary" else spec.n_outputs
            outputs = [helper.make_tensor_value_info("label", label_type, label_shape),
                       helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                     [n, n_prob])]
        else:
            outputs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT,
                                                     [n, spec.n_outputs])]
        inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                [n, spec.n_features])]
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="fastmlp",
                                  ir_version=helper.find_min_ir_version_for(opsets))
        from .. import __version__
        model.producer_version = __version__
        return model
