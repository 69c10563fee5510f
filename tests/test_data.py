"""Data loaders on tiny files written here (never the real Fashion-MNIST/Omniglot files)."""
from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from identkit import data
from identkit.data import loaders

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
          np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """An independent IDX writer (struct-packed header + big-endian data)."""
    dt = arr.dtype if arr.dtype.itemsize == 1 else arr.dtype.newbyteorder(">")
    header = bytes([0, 0, _CODES[dt], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=dt).tobytes()


def write_idx(path, arr, compress=True):
    raw = idx_bytes(arr)
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)
    return raw


def tiny_fashion(folder, n_train=12, n_test=5, compress=True, seed=0):
    """Write the four files with the official names; return the arrays and the MD5s of their IDX bytes."""
    rng = np.random.default_rng(seed)
    arrays, md5 = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labs = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, arr in (("images", imgs), ("labels", labs)):
            stem = loaders.FASHION_MNIST_FILES[(split, kind)][0]
            path = folder / (stem + ".gz" if compress else stem)
            md5[(split, kind)] = hashlib.md5(write_idx(path, arr, compress)).hexdigest()
            arrays[(split, kind)] = arr
    return arrays, md5


@pytest.fixture(autouse=True)
def _fresh_cache():
    loaders._VERIFIED.clear()
    yield
    loaders._VERIFIED.clear()


# ------------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_roundtrip(tmp_path, dtype, compress):
    arr = (np.arange(2 * 3 * 4).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, arr, compress)
    out = data.read_idx(path)
    assert out.shape == arr.shape and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_read_idx_property(tmp_path_factory, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    arr = (rng.normal(size=shape) * 100).astype(dtype) if dtype != np.uint8 else \
        rng.integers(0, 256, size=shape).astype(np.uint8)
    path = tmp_path_factory.mktemp("idx") / "x.gz"
    write_idx(path, arr)
    np.testing.assert_array_equal(data.read_idx(path), arr)


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "missing.gz")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros(5, np.uint8))[:-1])
    with pytest.raises(ValueError, match="bytes"):
        data.read_idx(short)
    code = tmp_path / "code"
    code.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01a")
    with pytest.raises(ValueError, match="type code"):
        data.read_idx(code)


# ------------------------------------------------------------------------------------------- Fashion-MNIST
@pytest.mark.parametrize("compress", [True, False])
def test_load_fashion_mnist_tiny(tmp_path, compress):
    arrays, _ = tiny_fashion(tmp_path, compress=compress)
    for split, n in (("train", 12), ("test", 5)):
        x, y = data.load_fashion_mnist(split, path=tmp_path, verify=False)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (n, 784) and y.shape == (n,)
        np.testing.assert_array_equal(x.numpy(), arrays[(split, "images")].reshape(n, 784) / np.float32(255))
        np.testing.assert_array_equal(y.numpy(), arrays[(split, "labels")])
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_load_fashion_mnist_subset_is_seeded(tmp_path):
    arrays, _ = tiny_fashion(tmp_path)
    x1, y1 = data.load_fashion_mnist(path=tmp_path, n=5, seed=3, verify=False)
    x2, y2 = data.load_fashion_mnist(path=tmp_path, n=5, seed=3, verify=False)
    x3, _ = data.load_fashion_mnist(path=tmp_path, n=5, seed=4, verify=False)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    # every kept row is a row of the file, with its own label
    full = arrays[("train", "images")].reshape(12, 784) / np.float32(255)
    for row, lab in zip(x1.numpy(), y1.numpy()):
        i = int(np.flatnonzero((full == row).all(1))[0])
        assert arrays[("train", "labels")][i] == lab
    with pytest.raises(ValueError, match="n must be"):
        data.load_fashion_mnist(path=tmp_path, n=13, verify=False)


def test_fashion_mnist_subsets_binarise_the_evaluation_set_once(tmp_path):
    tiny_fashion(tmp_path)
    x, y, xe, ye = data.fashion_mnist_subsets(6, 4, seed=3, eval_seed=9, path=tmp_path, verify=False)
    train, train_y = data.load_fashion_mnist("train", path=tmp_path, n=6, seed=3, verify=False)
    test, test_y = data.load_fashion_mnist("test", path=tmp_path, n=4, seed=3, verify=False)
    assert torch.equal(x, train) and torch.equal(y, train_y) and torch.equal(ye, test_y)
    assert set(torch.unique(xe).tolist()) <= {0.0, 1.0}
    assert torch.equal(xe, data.binarize(test, 9))  # the same binary images every call
    assert torch.equal(xe, data.fashion_mnist_subsets(6, 4, 3, 9, path=tmp_path, verify=False)[2])


def test_checksum_rejects_and_accepts(tmp_path, monkeypatch):
    _, md5 = tiny_fashion(tmp_path)
    with pytest.raises(ValueError, match="MD5"):  # tiny files are not the official release
        data.load_fashion_mnist(path=tmp_path)
    patched = {k: (v[0], v[1], md5[k], v[3]) for k, v in loaders.FASHION_MNIST_FILES.items()}
    monkeypatch.setattr(loaders, "FASHION_MNIST_FILES", patched)
    with pytest.raises(ValueError, match="shape"):  # right bytes, but not 60 000 images
        data.load_fashion_mnist(path=tmp_path)
    patched = {k: (v[0], v[1], md5[k], a.shape) for (k, v), a in
               zip(patched.items(), [np.empty((12, 28, 28)), np.empty(12), np.empty((5, 28, 28)), np.empty(5)])}
    monkeypatch.setattr(loaders, "FASHION_MNIST_FILES", patched)
    x, _ = data.load_fashion_mnist("test", path=tmp_path)
    assert x.shape == (5, 784)


def test_official_checksums_recorded():
    # Zalando's published MD5s of the four .gz files (README of zalandoresearch/fashion-mnist).
    published = {"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                 "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
                 "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
                 "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"}
    assert {v[0]: v[1] for v in loaders.FASHION_MNIST_FILES.values()} == published


def test_missing_files_say_how_to_fix(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist(path=tmp_path / "nowhere")
    monkeypatch.setenv("IDENTKIT_FASHION_MNIST", str(tmp_path / "env"))
    assert data.fashion_mnist_dir() == tmp_path / "env"
    with pytest.raises(FileNotFoundError, match="IDENTKIT_FASHION_MNIST"):
        data.load_fashion_mnist()
    monkeypatch.delenv("IDENTKIT_FASHION_MNIST")
    assert data.fashion_mnist_dir() == data.DEFAULT_FASHION_MNIST_DIR


def test_env_var_path(tmp_path, monkeypatch):
    tiny_fashion(tmp_path)
    monkeypatch.setenv("IDENTKIT_FASHION_MNIST", str(tmp_path))
    x, _ = data.load_fashion_mnist("test", verify=False)
    assert x.shape == (5, 784)


def test_mismatched_images_and_labels(tmp_path):
    tiny_fashion(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="do not match"):
        data.load_fashion_mnist("test", path=tmp_path, verify=False)


def test_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("valid", path=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_omniglot(tmp_path / "x.mat", split="dev")


# ------------------------------------------------------------------------------------------------ Omniglot
def tiny_omniglot(path, n=6, n_test=3, seed=0, targets=True):
    rng = np.random.default_rng(seed)
    imgs = rng.random((n, 28, 28)).astype(np.float32)       # row-major images
    test = rng.random((n_test, 28, 28)).astype(np.float32)
    alph = rng.integers(0, 50, size=n)
    # chardata.mat stores each image column-major, as columns of a 784 × N array
    content = {"data": imgs.transpose(0, 2, 1).reshape(n, 784).T,
               "testdata": test.transpose(0, 2, 1).reshape(n_test, 784).T}
    if targets:
        content["target"] = np.eye(50)[alph].T
        content["testtarget"] = np.eye(50)[np.zeros(n_test, int)].T
    scipy.io.savemat(path, content)
    return imgs, test, alph


def test_load_omniglot(tmp_path):
    imgs, test, alph = tiny_omniglot(tmp_path / "chardata.mat")
    x, y = data.load_omniglot(tmp_path / "chardata.mat")
    assert x.shape == (6, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), imgs.reshape(6, 784))
    np.testing.assert_array_equal(y.numpy(), alph)
    # IWAE's own reshape of the same array agrees
    raw = scipy.io.loadmat(tmp_path / "chardata.mat")["data"]
    iwae = raw.T.reshape((-1, 28, 28)).reshape((-1, 784), order="F")
    np.testing.assert_array_equal(x.numpy(), iwae)
    xt, yt = data.load_omniglot(tmp_path / "chardata.mat", split="test")
    np.testing.assert_array_equal(xt.numpy(), test.reshape(3, 784))
    assert yt.tolist() == [0, 0, 0]
    xs, _ = data.load_dataset("omniglot", path=tmp_path / "chardata.mat", n=4, seed=1)
    assert xs.shape == (4, 784)


def test_load_omniglot_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="chardata.mat"):
        data.load_omniglot(tmp_path / "missing.mat")
    scipy.io.savemat(tmp_path / "nodata.mat", {"other": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="'data'"):
        data.load_omniglot(tmp_path / "nodata.mat")
    scipy.io.savemat(tmp_path / "shape.mat", {"data": np.zeros((10, 3))})
    with pytest.raises(ValueError, match="784"):
        data.load_omniglot(tmp_path / "shape.mat")
    scipy.io.savemat(tmp_path / "range.mat", {"data": np.full((784, 2), 2.0)})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.load_omniglot(tmp_path / "range.mat")
    tiny_omniglot(tmp_path / "notarget.mat", targets=False)
    _, y = data.load_omniglot(tmp_path / "notarget.mat")
    assert (y == -1).all()
    with pytest.raises(FileNotFoundError):
        data.load_dataset("omniglot")


# ------------------------------------------------------------------------------------------------- helpers
def test_binarize():
    x = torch.rand(400, 50, generator=torch.Generator().manual_seed(0))
    b1, b2 = data.binarize(x, 7), data.binarize(x, torch.Generator().manual_seed(7))
    assert torch.equal(b1, b2) and set(b1.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(b1, data.binarize(x, 8))
    assert abs(float(b1.mean() - x.mean())) < 0.01  # E[x̃] = x
    assert torch.equal(data.binarize(torch.ones(3, 2)), torch.ones(3, 2))
    assert torch.equal(data.binarize(torch.zeros(3, 2)), torch.zeros(3, 2))
    for bad in (torch.full((2, 2), 1.5), torch.full((2, 2), float("nan")), torch.ones(2, dtype=torch.long)):
        with pytest.raises(ValueError, match="x must"):
            data.binarize(bad)


def test_load_dataset_names(tmp_path):
    tiny_fashion(tmp_path)
    x, _ = data.load_dataset("Fashion-MNIST", split="test", path=tmp_path, verify=False)
    assert x.shape == (5, 784)
    with pytest.raises(ValueError, match="fashion-mnist.*omniglot"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="name"):
        data.load_dataset(3)
