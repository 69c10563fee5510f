"""Loaders for the image data sets of the paper: Fashion-MNIST (IDX files) and Omniglot (``chardata.mat``).

Nothing is downloaded at run time. Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist`` puts the four official ``*-ubyte.gz`` files under
``/usr/share/datasets/fashion-mnist/``), from a folder named by the environment variable
``IDENTKIT_FASHION_MNIST``, or from an explicit ``path``. An opt-in ``download=True`` fetches the official files
from Zalando's repository and checks their MD5.

Integrity: the MD5 of the *decompressed* IDX bytes is compared with the official values. The Debian package
re-compresses the files (its ``.gz`` lack the stored file name, so their MD5 differs from Zalando's published
``.gz`` checksums) but their contents are byte-identical to the official release; checking the decompressed
bytes accepts both and rejects anything else.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np
import scipy.io
import torch

from .. import config
from .._checks import check_int, check_seed

__all__ = [
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_URL",
    "DEFAULT_FASHION_MNIST_DIR",
    "DATASETS",
    "read_idx",
    "fashion_mnist_dir",
    "load_fashion_mnist",
    "load_omniglot",
    "binarize",
    "fashion_mnist_subsets",
    "load_dataset",
    "subsample",
]

#: Where the Debian package ``dataset-fashion-mnist`` installs the files.
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Official download location (used only with ``download=True``).
FASHION_MNIST_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
#: Official files: (split, kind) → (file stem, MD5 of the published .gz, MD5 of the decompressed IDX bytes,
#: shape of the array).
FASHION_MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                          "f4a8712d7a061bf5bd6d2ca38dc4d50a", (60000, 28, 28)),
    ("train", "labels"): ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe",
                          "9018921c3c673c538a1fc5bad174d6f9", (60000,)),
    ("test", "images"): ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79",
                         "8181f5470baa50b63fa0f6fddb340f0a", (10000, 28, 28)),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310",
                         "15d484375f8d13e6eb1aabb0c3f46965", (10000,)),
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
_ENV = "IDENTKIT_FASHION_MNIST"
_INSTALL_HINT = ("install the Debian package (`sudo apt-get install dataset-fashion-mnist`, or `make data`), "
                 f"or set {_ENV} to a folder holding the four official *-ubyte(.gz) files, or pass download=True "
                 "(fetches them from Zalando's repository)")

# IDX type codes (LeCun's format): third byte of the magic number.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SPLITS = ("train", "test")
_VERIFIED: dict[tuple, bool] = {}  # (path, size, mtime) → verified, so a process checks each file once


# -------------------------------------------------------------------------------------------------- IDX
def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open  # gzip magic number, whatever the suffix says
    with opener(path, "rb") as fh:
        return fh.read()


def _parse_idx(raw: bytes, name: str) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name} is not an IDX file (its magic number must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX data type code 0x{code:02X}")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{name}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{name}: IDX header announces shape {shape} ({expected} bytes) but the file holds "
                         f"{len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzip-compressed or raw, into a numpy array.

    Format: magic ``00 00 TT NN`` (TT the data type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64; NN the number of dimensions), NN big-endian uint32 sizes, then the data in C order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a well-formed IDX file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {path}")
    return _parse_idx(_read_bytes(path), str(path))


# ------------------------------------------------------------------------------------------- Fashion-MNIST
def fashion_mnist_dir(path: str | Path | None = None) -> Path:
    """The folder searched for Fashion-MNIST: ``path``, else ``$IDENTKIT_FASHION_MNIST``, else the Debian one."""
    if path is not None:
        return Path(path)
    env = os.environ.get(_ENV)
    return Path(env) if env else DEFAULT_FASHION_MNIST_DIR


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):  # official, decompressed, torchvision-style
        if (folder / name).is_file():
            return folder / name
    return None


def _download(folder: Path, stem: str, md5_gz: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (stem + ".gz")
    with urllib.request.urlopen(FASHION_MNIST_URL + stem + ".gz", timeout=60) as resp:  # noqa: S310 (https)
        payload = resp.read()
    got = hashlib.md5(payload).hexdigest()
    if got != md5_gz:
        raise ValueError(f"download of {stem}.gz has MD5 {got}, expected {md5_gz}; not saved")
    tmp = target.with_suffix(".gz.part")
    tmp.write_bytes(payload)
    tmp.replace(target)
    return target


def _load_official(folder: Path, split: str, kind: str, verify: bool, download: bool) -> np.ndarray:
    stem, md5_gz, md5_raw, shape = FASHION_MNIST_FILES[(split, kind)]
    file = _find(folder, stem)
    if file is None:
        if not download:
            raise FileNotFoundError(f"Fashion-MNIST file {stem}.gz not found in {folder}; {_INSTALL_HINT}")
        file = _download(folder, stem, md5_gz)
    raw = _read_bytes(file)
    if verify:
        st = file.stat()
        key = (str(file.resolve()), st.st_size, st.st_mtime_ns)
        if not _VERIFIED.get(key):
            got = hashlib.md5(raw).hexdigest()
            if got != md5_raw:
                raise ValueError(f"{file}: MD5 of the decompressed IDX data is {got}, expected the official "
                                 f"{md5_raw}; the file is corrupt or not Fashion-MNIST (pass verify=False to "
                                 "read it anyway)")
            _VERIFIED[key] = True
    arr = _parse_idx(raw, str(file))
    if verify and arr.shape != shape:
        raise ValueError(f"{file}: shape {arr.shape}, expected {shape}")
    return arr


def subsample(n_rows: int, n: int | None, seed: int) -> np.ndarray:
    """Row indices of a seeded random subset of size ``n`` (sorted), or all rows when ``n`` is None."""
    if n is None:
        return np.arange(n_rows)
    n = check_int(n, "n")
    if n > n_rows:
        raise ValueError(f"n must be <= the number of rows ({n_rows}), got {n}")
    return np.sort(np.random.default_rng(check_seed(seed)).choice(n_rows, size=n, replace=False))


def load_fashion_mnist(split: str = "train", path: str | Path | None = None, n: int | None = None,
                       seed: int = config.DEFAULT_SEED, *, verify: bool = True,
                       download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) as flat grey levels in [0, 1] and integer labels.

    Parameters
    ----------
    split : {"train", "test"}
        60 000 training or 10 000 test images.
    path : path, optional
        Folder with the four official files (``.gz`` or decompressed). Default: ``$IDENTKIT_FASHION_MNIST``,
        else ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
    n : int, optional
        Keep a seeded random subset of ``n`` rows (in their original order); all rows when None.
    seed : int
        Seed of the subset.
    verify : bool
        Check the MD5 of the decompressed bytes against the official release (once per file and process).
    download : bool
        Opt in to fetching missing files from Zalando's repository (MD5-checked). Never used by tests.

    Returns
    -------
    x : torch.Tensor, float32, shape (N, 784)
        Pixel intensities divided by 255, rows in C order (row-major 28 × 28).
    labels : torch.Tensor, int64, shape (N,)
        Class indices 0–9 (names in :data:`FASHION_MNIST_CLASSES`).

    Raises
    ------
    FileNotFoundError
        When the files are missing (the message says how to install them).
    ValueError
        Unknown split, failed checksum, malformed file, inconsistent images/labels.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    folder = fashion_mnist_dir(path)
    images = _load_official(folder, split, "images", verify, download)
    labels = _load_official(folder, split, "labels", verify, download)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    idx = subsample(images.shape[0], n, seed)
    x = torch.from_numpy(images[idx].reshape(len(idx), -1).astype(np.float32) / np.float32(255.0))
    return x, torch.from_numpy(labels[idx].astype(np.int64))


# ------------------------------------------------------------------------------------------------ Omniglot
def load_omniglot(path: str | Path, split: str = "train", n: int | None = None,
                  seed: int = config.DEFAULT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Omniglot as distributed in ``chardata.mat`` (Burda et al.'s IWAE code; also He et al.'s lagging VAE).

    The file holds ``data`` (784 × 24 345) and ``testdata`` (784 × 8 070) grey levels in [0, 1], each image
    stored column-major (Fortran order), plus ``target``/``testtarget`` (one-hot alphabet labels, 50 × N).
    Images are returned row-major like Fashion-MNIST (the transposition IWAE's ``reshape_data`` performs).
    No copy of Omniglot is available offline; pass the path of a ``chardata.mat`` you obtained.

    Parameters
    ----------
    path : path
        The ``chardata.mat`` file.
    split : {"train", "test"}
    n : int, optional
        Seeded random subset of ``n`` rows.
    seed : int

    Returns
    -------
    x : torch.Tensor, float32, (N, 784)
    labels : torch.Tensor, int64, (N,)
        Alphabet index (argmax of the one-hot target), −1 where the file has no targets.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Omniglot file at {path}; identkit ships none and cannot fetch it offline: "
                                "use chardata.mat from the IWAE repository (github.com/yburda/iwae, datasets/"
                                "OMNIGLOT) and pass its path")
    mat = scipy.io.loadmat(path)
    key, tkey = ("data", "target") if split == "train" else ("testdata", "testtarget")
    if key not in mat:
        raise ValueError(f"{path} has no {key!r} array (keys: {sorted(k for k in mat if not k.startswith('__'))})")
    data = np.asarray(mat[key], dtype=np.float32)
    if data.ndim != 2 or data.shape[0] != 784:
        raise ValueError(f"{path}: {key!r} must be 784 × N, got {data.shape}")
    if not np.all(np.isfinite(data)) or data.min() < 0 or data.max() > 1:
        raise ValueError(f"{path}: {key!r} must hold grey levels in [0, 1]")
    n_rows = data.shape[1]
    # IWAE: data.T.reshape((-1, 28, 28)).reshape((-1, 784), order="F"): each stored image is column-major.
    images = data.T.reshape(n_rows, 28, 28).transpose(0, 2, 1).reshape(n_rows, 784)
    if tkey in mat:
        t = np.asarray(mat[tkey])
        labels = t.argmax(0) if t.ndim == 2 and t.shape[1] == n_rows and t.shape[0] > 1 else t.reshape(-1)
        if labels.shape[0] != n_rows:
            raise ValueError(f"{path}: {tkey!r} has {labels.shape[0]} labels for {n_rows} images")
    else:
        labels = np.full(n_rows, -1)
    idx = subsample(n_rows, n, seed)
    return (torch.from_numpy(np.ascontiguousarray(images[idx])),
            torch.from_numpy(labels[idx].astype(np.int64)))


# ------------------------------------------------------------------------------------------------- helpers
def binarize(x: torch.Tensor, generator: torch.Generator | int | None = None) -> torch.Tensor:
    """Stochastic binarisation x̃_d ~ Bernoulli(x_d) (the paper's dynamic binarisation), same shape as ``x``.

    ``generator`` is a ``torch.Generator`` or an integer seed (default :data:`identkit.config.DEFAULT_SEED`).
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError("x must be a floating-point torch.Tensor of grey levels in [0, 1]")
    if not torch.isfinite(x).all() or (x < 0).any() or (x > 1).any():
        raise ValueError("x must hold finite grey levels in [0, 1]")
    if not isinstance(generator, torch.Generator):
        generator = torch.Generator().manual_seed(config.DEFAULT_SEED if generator is None
                                                  else check_seed(generator, "generator"))
    return torch.bernoulli(x, generator=generator)


#: Dataset names accepted by :func:`load_dataset` (aliases included).
DATASETS = {"fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
            "fmnist": "fashion-mnist", "omniglot": "omniglot"}



def fashion_mnist_subsets(n_train: int | None, n_eval: int | None, seed: int, eval_seed: int,
                          path: str | Path | None = None, verify: bool = True):
    """The training/evaluation data every Fashion-MNIST experiment uses: ``(x, y, x_eval, y_eval)``.

    ``x`` are ``n_train`` grey-level training images (seeded subsample, dynamically binarised later by the
    training loop); ``x_eval`` are ``n_eval`` test images binarised **once**, x̃ ~ Bernoulli(x) with
    ``eval_seed``, so every method is evaluated on the same binary images.
    """
    x, y = load_fashion_mnist("train", path=path, n=n_train, seed=seed, verify=verify)
    xt, yt = load_fashion_mnist("test", path=path, n=n_eval, seed=seed, verify=verify)
    return x, y, binarize(xt, eval_seed), yt

def load_dataset(name: str, split: str = "train", path: str | Path | None = None, n: int | None = None,
                 seed: int = config.DEFAULT_SEED, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the data set ``name`` ("fashion-mnist" or "omniglot"; case-insensitive aliases in :data:`DATASETS`).

    Returns ``(x, labels)`` as the specific loaders do; ``path`` is required for Omniglot.
    """
    key = DATASETS.get(name.lower()) if isinstance(name, str) else None
    if key is None:
        raise ValueError(f"name: unknown data set {name!r}; known: {', '.join(sorted(set(DATASETS.values())))} "
                         f"(aliases: {', '.join(sorted(DATASETS))})")
    if key == "fashion-mnist":
        return load_fashion_mnist(split, path=path, n=n, seed=seed, **kwargs)
    if path is None:
        raise FileNotFoundError("Omniglot needs path= (a chardata.mat); none is available offline")
    return load_omniglot(path, split=split, n=n, seed=seed, **kwargs)
