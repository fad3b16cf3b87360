"""The same training step (784-512-256-10, batch 200, MSE on one-hot, SGD at 0.001) in each
framework that fastmlp is compared with. Each contender is a callable running one epoch or one
step on fixed data, so the benchmarks time only the training arithmetic.
"""
import numpy as np

from fastmlp import MLPClassifier, _core
from fastmlp import reference as ref

SIZES = (784, 512, 256, 10)
BATCH = 200
LR = 0.001


# A small network, where the cost of a call rather than arithmetic sets the pace.
SMALL = (64, 32, 3)


def mnist_like(n=60000, seed=0, sizes=SIZES):
    """Random data with MNIST's shapes and value range (timing does not depend on the values),
    or those of another network's input and output widths."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], size=n).astype(np.int32)
    return X, y


def mnist_digits():
    """The real MNIST digits from FASTMLP_DATA, as the tutorial feeds them: 784 float32 values
    in [0, 1] a row. Returns the training rows, their labels and the test rows."""
    from fastmlp.datasets import load_mnist
    (x_train, y_train), (x_test, _) = load_mnist(download=False)
    X = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
    X_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0
    return X, y_train.astype(np.int32), X_test


def initial_weights(seed=0, sizes=SIZES):
    weights, biases = ref.init_params(list(sizes), np.random.default_rng(seed))
    return weights, biases


class FastmlpTrainer:
    """fastmlp's estimator holding the contenders' initial weights. Steps and epochs drive its
    network directly (the calls its fit makes, without fit's bookkeeping); predictions go
    through its public decision_function, the raw outputs as the others return them, with the
    input checks every user call pays."""
    name = "fastmlp"

    def __init__(self, n_threads=None, sizes=SIZES):
        weights, biases = initial_weights(sizes=sizes)
        params = [a for pair in zip(weights, biases) for a in pair]
        self.model = MLPClassifier(hidden_layer_sizes=sizes[1:-1], batch_size=BATCH, epochs=1,
                                   random_state=0)
        self.model.set_weights(params)          # builds the model from the weights' shapes
        self.net = _core.Network(sizes, BATCH)  # the network fit would train, batches of BATCH
        self.net.set_weights(params)
        self.n_threads = n_threads

    def step(self, X, y):
        return self.net.train_step(X, y, LR)

    def step_rows(self, X, y, rows):
        """A step on the shuffled batch X[rows]: the step's threads gather it."""
        return self.net.train_step_rows(X, y, rows, LR)

    def epoch(self, X, y):
        if self.n_threads:
            _core.set_num_threads(self.n_threads)
        for start in range(0, len(X), BATCH):
            self.net.train_step(X[start:start + BATCH], y[start:start + BATCH], LR)

    def predict(self, X):
        return self.model.decision_function(X)


class NumpyTrainer:
    name = "numpy reference"

    def __init__(self, n_threads=None, sizes=SIZES):
        self.weights, self.biases = initial_weights(sizes=sizes)

    def step(self, X, y):
        self.weights, self.biases, loss = ref.train_step(self.weights, self.biases, X, y, LR)
        return loss

    def step_rows(self, X, y, rows):
        return self.step(X[rows], y[rows])

    def epoch(self, X, y):
        for start in range(0, len(X), BATCH):
            self.step(X[start:start + BATCH], y[start:start + BATCH])

    def predict(self, X):
        return ref.forward(self.weights, self.biases, X)[-1]


class TorchTrainer:
    name = "pytorch"

    def __init__(self, n_threads=None, sizes=SIZES):
        import torch                      # optional: only the benchmarks use it
        self.torch = torch
        if n_threads:
            torch.set_num_threads(n_threads)
        weights, biases = initial_weights(sizes=sizes)
        layers = []
        for l, (w, b) in enumerate(zip(weights, biases)):
            linear = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w.T.copy()))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if l < len(weights) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.eye = torch.eye(sizes[-1])

    def step(self, X, y):
        torch = self.torch
        xb = torch.from_numpy(X)
        target = self.eye[torch.from_numpy(y).long()]
        self.opt.zero_grad(set_to_none=True)
        out = self.model(xb)
        loss = ((out - target) ** 2).sum() / xb.shape[0]
        loss.backward()
        self.opt.step()
        return loss.item()

    def step_rows(self, X, y, rows):
        return self.step(X[rows], y[rows])

    def epoch(self, X, y):
        for start in range(0, len(X), BATCH):
            self.step(X[start:start + BATCH], y[start:start + BATCH])

    def predict(self, X):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(X)).numpy()


class KerasTrainer:
    """The tutorial's own framework: Keras (3.x, on its PyTorch backend here, since TensorFlow
    is not installed), with the tutorial's loss, driven by model.fit over one epoch."""
    name = "keras"

    def __init__(self, n_threads=None):
        import os
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras                      # optional: only the benchmarks use it
        if n_threads and keras.backend.backend() == "torch":
            import torch
            torch.set_num_threads(n_threads)
        weights, biases = initial_weights()
        inputs = keras.Input((SIZES[0],))
        x = inputs
        for l, width in enumerate(SIZES[1:]):
            x = keras.layers.Dense(width, activation="relu" if l < len(SIZES) - 2 else None)(x)
        self.model = keras.Model(inputs, x)
        self.model.set_weights([a for pair in zip(weights, biases) for a in pair])
        self.model.compile(optimizer=keras.optimizers.SGD(LR),
                           loss=lambda t, p: keras.ops.sum(keras.ops.square(p - t), axis=-1))
        self.eye = np.eye(SIZES[-1], dtype=np.float32)

    def step(self, X, y):
        return self.model.train_on_batch(X, self.eye[y])

    def epoch(self, X, y):
        self.model.fit(X, self.eye[y], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    def predict(self, X):
        return self.model.predict_on_batch(X)


class OnnxRuntimePredictor:
    """The fastmlp model of the contenders' initial weights, exported with fastmlp.onnx and
    run by ONNX Runtime (the whole exported graph: labels and probabilities), its session on
    the same thread count as fastmlp's kernels. Predicts only: ONNX Runtime does not train."""
    name = "onnxruntime"

    def __init__(self, n_threads=None, sizes=SIZES):
        import onnxruntime                # optional: only the benchmarks use it
        from fastmlp.onnx import to_onnx
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = n_threads or _core.get_num_threads()
        options.inter_op_num_threads = 1
        proto = to_onnx(FastmlpTrainer(sizes=sizes).model)
        self.session = onnxruntime.InferenceSession(proto.SerializeToString(), options,
                                                    providers=["CPUExecutionProvider"])

    def predict(self, X):
        return self.session.run(None, {"X": X})


def _importable(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


def available_trainers():
    trainers = [FastmlpTrainer, NumpyTrainer]
    if _importable("torch"):
        trainers.append(TorchTrainer)
    if _importable("keras") and _importable("torch"):
        trainers.append(KerasTrainer)
    return trainers


def available_predictors():
    """The contenders that only predict."""
    if _importable("onnxruntime") and _importable("onnx"):
        return [OnnxRuntimePredictor]
    return []
