"""fastmlp's estimators as skl2onnx operators: a parser, a shape calculator and a converter
each, registered by :func:`register` (which ``import fastmlp.onnx`` calls).

The parser declares the outputs without ZipMap (the semantics of skl2onnx's
``zipmap=False``): ``label`` and ``probabilities`` for a classifier, ``variable`` for a
regressor. The converter writes the same nodes as :func:`fastmlp.onnx.to_onnx`
(``_graph.emit_network``), after a Cast when the pipeline hands over doubles.
"""
import numpy as np
from onnx import TensorProto, numpy_helper
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import (BooleanTensorType, DoubleTensorType, FloatTensorType,
                                        Int64TensorType, StringTensorType)

from ._graph import describe, emit_network

# skl2onnx's alias of each estimator class (set by register).
_ALIASES = {}


class _ContainerGraph:
    """The graph interface of ``_graph.emit_network`` over skl2onnx's scope and container."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container
        self.opset = container.target_opset

    def constant(self, hint, value):
        name = self.scope.get_unique_variable_name(hint)
        value = np.asarray(value)
        if value.dtype == object:   # strings: make_tensor encodes them
            self.container.add_initializer(name, TensorProto.STRING, list(value.shape),
                                           value.tolist())
        else:
            tensor = numpy_helper.from_array(value, name)
            self.container.add_initializer(name, tensor.data_type, list(value.shape), tensor)
        return name

    def node(self, op, inputs, output=None, **attrs):
        out = self.scope.get_unique_variable_name(op.lower()) if output is None else output
        self.container.add_node(op, inputs, [out],
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return out


def _label_type(spec):
    if spec.output == "logistic_multilabel":
        return Int64TensorType
    kind = spec.classes.dtype.kind
    return {"i": Int64TensorType, "f": DoubleTensorType, "b": BooleanTensorType}.get(
        kind, StringTensorType)


def parse(scope, model, inputs, custom_parsers=None):
    """Declare the operator of ``model`` and its outputs (no ZipMap)."""
    operator = scope.declare_local_operator(_ALIASES[type(model)], model)
    operator.inputs = inputs
    spec = describe(model)
    if spec.is_classifier:
        operator.outputs.append(scope.declare_local_variable("label", _label_type(spec)()))
        operator.outputs.append(scope.declare_local_variable("probabilities",
                                                             FloatTensorType()))
    else:
        operator.outputs.append(scope.declare_local_variable("variable", FloatTensorType()))
    return operator.outputs


def calculate_shapes(operator):
    """Output types and shapes: (N,) labels or (N, n_classes) for a multilabel model,
    (N, n_classes) probabilities, (N, n_outputs) values."""
    spec = describe(operator.raw_operator)
    n = operator.inputs[0].get_first_dimension()
    if spec.is_classifier:
        multilabel = spec.output == "logistic_multilabel"
        operator.outputs[0].type = _label_type(spec)([n, spec.n_outputs] if multilabel else [n])
        n_prob = 2 if spec.output == "logistic_binary" else spec.n_outputs
        operator.outputs[1].type = FloatTensorType([n, n_prob])
    else:
        operator.outputs[0].type = FloatTensorType([n, spec.n_outputs])


def convert(scope, operator, container):
    """The nodes of the estimator, from its input (cast to float32) to its outputs."""
    spec = describe(operator.raw_operator)
    graph = _ContainerGraph(scope, container)
    x = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, FloatTensorType):
        x = graph.node("Cast", [x], to=TensorProto.FLOAT)
    names = [v.full_name for v in operator.outputs]
    keys = ("label", "probabilities") if spec.is_classifier else ("variable",)
    emit_network(graph, spec, x, dict(zip(keys, names)))


def register():
    """Register ``fastmlp.MLP`` (and ``fastmlp.MLPClassifier``) and, with scikit-learn, the
    drop-in ``MLPClassifier`` and ``MLPRegressor`` with skl2onnx."""
    from ..mlp import MLP, MLPClassifier
    from ._graph import _dropin_classes
    classes = {MLPClassifier: "FastmlpMLPClassifier", MLP: "FastmlpMLP"}
    dropin = _dropin_classes()
    if dropin:
        classes[dropin[0]] = "FastmlpNeuralNetworkMLPClassifier"
        classes[dropin[1]] = "FastmlpNeuralNetworkMLPRegressor"
    for cls, alias in classes.items():
        _ALIASES[cls] = alias
        update_registered_converter(cls, alias, calculate_shapes, convert, parser=parse,
                                    options={"zipmap": [False]})
