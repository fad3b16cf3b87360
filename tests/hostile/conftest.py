"""Fixtures of the hostile suite: files built once per session, small enough to build fast."""
import io
import json
import zipfile

import numpy as np
import pytest


def deflated_zeros(archive, name, n_bytes, header):
    """Add member ``name`` to ``archive``: ``header`` then ``n_bytes`` zero bytes, deflated as
    they are written (never held in memory)."""
    chunk = bytes(1 << 20)
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as f:
        f.write(header)
        for _ in range(n_bytes // len(chunk)):
            f.write(chunk)


def npy_header(shape, dtype="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def small_model_file(path, **params):
    import fastmlp
    rng = np.random.default_rng(0)
    X = rng.random((40, 6), dtype=np.float32)
    kw = dict(hidden_layer_sizes=(5,), epochs=1, batch_size=8, random_state=0)
    kw.update(params)
    model = fastmlp.MLP(**kw).fit(X, np.arange(40) % 3)
    model.save(path)
    return model


def rewrite_header(src, dst, **changes):
    """Copy model file ``src`` to ``dst`` with header fields (or params, as ``params``) changed."""
    params = changes.pop("params", {})

    def change(text):
        header = json.loads(text)
        header.update(changes)
        header["params"].update(params)
        return json.dumps(header)
    return rewrite_header_text(src, dst, change)


def rewrite_header_text(src, dst, change):
    """Copy model file ``src`` to ``dst`` with its header's JSON text replaced by
    ``change(text)``."""
    with zipfile.ZipFile(src) as z:
        members = {name: z.read(name) for name in z.namelist()}
    text = np.load(io.BytesIO(members["header.npy"])).tobytes().decode()
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(change(text).encode(), np.uint8))
    members["header.npy"] = buffer.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


@pytest.fixture(scope="session")
def hostile_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="session")
def model_file(hostile_dir):
    path = hostile_dir / "good.npz"
    small_model_file(path)
    return path


@pytest.fixture(scope="session")
def momentum_checkpoint(hostile_dir):
    from fastmlp import checkpoint
    import fastmlp
    rng = np.random.default_rng(0)
    model = fastmlp.MLP(hidden_layer_sizes=(5,), epochs=1, batch_size=8, random_state=0,
                        momentum=0.9).fit(rng.random((40, 6), dtype=np.float32),
                                          np.arange(40) % 3)
    path = hostile_dir / "ck.npz"
    checkpoint.save_checkpoint(model, path)
    return path


@pytest.fixture(scope="session")
def model_zip_bomb(model_file, hostile_dir):
    """A model file of about 256 KB whose W1 (layer sizes [2**22, 16, 3]) inflates to 256 MiB."""
    path = hostile_dir / "bomb.npz"
    sizes = [2 ** 22, 16, 3]
    tmp = rewrite_header(model_file, hostile_dir / "bomb-header.npz", layer_sizes=sizes,
                         n_features_in=sizes[0], params={"hidden_layer_sizes": [16]})
    with zipfile.ZipFile(tmp) as z:
        header = z.read("header.npy")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.npy", header)
        deflated_zeros(z, "W1.npy", 4 * sizes[0] * sizes[1], npy_header(sizes[:2]))
        for name, shape in (("b1", (16,)), ("W2", (16, 3)), ("b2", (3,))):
            buffer = io.BytesIO()
            np.save(buffer, np.zeros(shape, np.float32))
            z.writestr(name + ".npy", buffer.getvalue())
    return path
