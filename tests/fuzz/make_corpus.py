"""Writes the seed corpus of tests/fuzz/corpus/ (run from the repository root; the files are
kept in the repository, so this is needed only to change the seeds)."""
import gzip
import os

import numpy as np

import fastmlp
from fastmlp import checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.default_rng(0)
    X = rng.random((30, 4), dtype=np.float32)
    y = np.arange(30) % 3
    for name in ("model", "checkpoint", "idx"):
        os.makedirs(os.path.join(HERE, "corpus", name), exist_ok=True)
    plain = fastmlp.MLP(hidden_layer_sizes=(3,), epochs=2, batch_size=8, random_state=0).fit(X, y)
    plain.save(os.path.join(HERE, "corpus", "model", "small.npz"))
    strings = fastmlp.MLP(hidden_layer_sizes=(2,), epochs=1, random_state=0).fit(
        X, np.array(["a", "b", "c"])[y])
    strings.save(os.path.join(HERE, "corpus", "model", "string-classes.npz"))
    momentum = fastmlp.MLP(hidden_layer_sizes=(3,), epochs=1, batch_size=8, momentum=0.9,
                           random_state=0).fit(X, y)
    checkpoint.save_checkpoint(momentum, os.path.join(HERE, "corpus", "checkpoint", "momentum.npz"))
    checkpoint.save_checkpoint(plain, os.path.join(HERE, "corpus", "checkpoint", "plain.npz"))
    images = (np.arange(2 * 3 * 3) % 256).astype(np.uint8).reshape(2, 3, 3)
    labels = np.array([7, 1], np.uint8)
    for name, array, code in (("images", images, 3), ("labels", labels, 1)):
        raw = bytes([0, 0, 8, code]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        raw += array.tobytes()
        with open(os.path.join(HERE, "corpus", "idx", name), "wb") as f:
            f.write(raw)
        with open(os.path.join(HERE, "corpus", "idx", name + ".gz"), "wb") as f:
            f.write(gzip.compress(raw, mtime=0))


if __name__ == "__main__":
    main()
