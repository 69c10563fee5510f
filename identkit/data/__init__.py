"""Data sets of the paper, offline: Fashion-MNIST (IDX files from the Debian package), Omniglot (``chardata.mat``);
text: He et al.'s synthetic sentences (generated), Debian's fortunes, Yahoo and Yelp (read when a user has them).

See :mod:`identkit.data.loaders` and :mod:`identkit.data.text`. Nothing is downloaded unless a loader is called
with ``download=True``.
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
from .text import (
    DEFAULT_FORTUNES_DIR,
    REFERENCE_TEXT_SIZES,
    SPECIAL_TOKENS,
    SYNTHETIC_MEANS,
    SYNTHETIC_SIZES,
    TEXT_DATASETS,
    TEXT_SPLITS,
    YAHOO_YELP_SOURCE,
    TextData,
    Vocabulary,
    load_fortunes,
    load_text,
    load_yahoo,
    load_yelp,
    read_fortunes,
    synthetic_text,
    tokenize,
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
    # text
    "DEFAULT_FORTUNES_DIR",
    "REFERENCE_TEXT_SIZES",
    "SPECIAL_TOKENS",
    "SYNTHETIC_MEANS",
    "SYNTHETIC_SIZES",
    "TEXT_DATASETS",
    "TEXT_SPLITS",
    "YAHOO_YELP_SOURCE",
    "TextData",
    "Vocabulary",
    "load_fortunes",
    "load_text",
    "load_yahoo",
    "load_yelp",
    "read_fortunes",
    "synthetic_text",
    "tokenize",
]
