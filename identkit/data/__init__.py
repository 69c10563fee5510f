"""Data sets of the paper, offline: Fashion-MNIST (IDX files from the Debian package), Omniglot (``chardata.mat``).

See :mod:`identkit.data.loaders`. Nothing is downloaded unless a loader is called with ``download=True``.
"""
from __future__ import annotations

from .loaders import (
    DATASETS,
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    FASHION_MNIST_URL,
    binarize,
    fashion_mnist_subsets,
    fashion_mnist_dir,
    load_dataset,
    load_fashion_mnist,
    load_omniglot,
    read_idx,
    subsample,
)

__all__ = [
    "DATASETS",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_URL",
    "binarize",
    "fashion_mnist_subsets",
    "fashion_mnist_dir",
    "load_dataset",
    "load_fashion_mnist",
    "load_omniglot",
    "read_idx",
    "subsample",
]
