r"""Text data sets of the paper's sequential experiments: He et al.'s synthetic data, Debian's fortunes, Yahoo, Yelp.

Every data set comes back as a :class:`TextData`: padded token ids ``<s> w_1 … w_L </s> <pad> …`` with the
lengths, the :class:`Vocabulary` they were made with, optional labels and (synthetic data only) the true latent
``z``. Nothing is downloaded.

* ``synthetic_text(split, seed=...)``: the synthetic data of He et al. (2019, §6), regenerated here from their
  generation script (the data themselves are only on a download link).
* ``load_text("fortunes", split)``: Debian's ``fortunes`` package (``apt-get install fortunes`` or ``make data``),
  about 15 000 short English texts in 43 named categories under ``/usr/share/games/fortunes``.
* ``load_text("yahoo" | "yelp", split, path=...)``: the files of Yang et al. (2017) as distributed with He et al.'s
  code, read when a user has them.

Token conventions (those of He et al.'s ``VocabEntry``, which the paper's reference code reuses): ids 0–3 are
``<pad>``, ``<s>``, ``</s>``, ``<unk>``; words follow from id 4. ``ids[i, :lengths[i]]`` is
``<s> w_1 … w_L </s>`` (``lengths`` counts both markers, as ``MonoTextData._to_tensor`` does) and the rest of the
row is ``<pad>``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .. import config
from .._checks import check_int, check_positive, check_seed

__all__ = [
    "SPECIAL_TOKENS",
    "TEXT_DATASETS",
    "TEXT_SPLITS",
    "DEFAULT_FORTUNES_DIR",
    "SYNTHETIC_MEANS",
    "SYNTHETIC_SIZES",
    "REFERENCE_TEXT_SIZES",
    "YAHOO_YELP_SOURCE",
    "Vocabulary",
    "TextData",
    "tokenize",
    "read_fortunes",
    "synthetic_text",
    "load_fortunes",
    "load_yahoo",
    "load_yelp",
    "load_text",
]

#: ``<pad>``, ``<s>``, ``</s>``, ``<unk>`` at ids 0, 1, 2, 3 (He et al.'s ``VocabEntry``).
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
_RESERVED = frozenset(SPECIAL_TOKENS[:3])  # may not occur in raw text; "<unk>" may (it maps to UNK_ID)
#: Names accepted by :func:`load_text`.
TEXT_DATASETS = ("fortunes", "synthetic", "yahoo", "yelp")
#: Canonical split names; "validation" and "val" are accepted for "valid".
TEXT_SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}
_POLICIES = ("drop", "raise")

DEFAULT_FORTUNES_DIR = Path("/usr/share/games/fortunes")
_FORTUNES_ENV = "IDENTKIT_FORTUNES"
_FORTUNES_HINT = ("install Debian's fortunes package (`make data`, or `sudo apt-get install fortunes`), or pass "
                  f"path= (or set {_FORTUNES_ENV}) to a folder of fortune files")
_CACHE_ENV = "IDENTKIT_CACHE_DIR"

#: Mixture means of the synthetic prior, in the reference's component order (``lm_lstm.py``'s ``gauss_dist``).
SYNTHETIC_MEANS = ((-2.0, -2.0), (2.0, 2.0), (-2.0, 2.0), (2.0, -2.0))
#: Synthetic split sizes: the reference script generates 20 000 sentences; the paper trains on 16 000.
SYNTHETIC_SIZES = {"train": 16000, "valid": 2000, "test": 2000}
#: Yahoo/Yelp documents used by the paper's reference code (first ones of each file, ``--subsample``).
REFERENCE_TEXT_SIZES = {"train": 30000, "valid": 10000, "test": 10000}
#: Where the Yahoo/Yelp files come from (He et al.'s ``prepare_data.py`` downloads these Google Drive ids).
YAHOO_YELP_SOURCE = {
    "yahoo": ("13azGlTuGdzWLCmgDmQPmvb_jcexVWX7i", "yahoo_data", "IDENTKIT_YAHOO"),
    "yelp": ("1FT49oLNV8syhmGXEgiK6XTjEfMNqqEJJ", "yelp_data", "IDENTKIT_YELP"),
}
_FILE_SPLIT = {"train": "train", "valid": "valid", "test": "test"}


# ------------------------------------------------------------------------------------------------ helpers
def _split_name(split) -> str:
    key = _SPLIT_ALIASES.get(split) if isinstance(split, str) else None
    if key is None:
        raise ValueError(f"split must be one of {TEXT_SPLITS} (aliases 'validation', 'val'), got {split!r}")
    return key


def _policy(value, name: str) -> str:
    if value not in _POLICIES:
        raise ValueError(f"{name} must be 'drop' or 'raise', got {value!r}")
    return value


def _file_stamp(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start}): not a text data file") from exc


# ---------------------------------------------------------------------------------------------- vocabulary
class Vocabulary:
    """A token ↔ id map: the four :data:`SPECIAL_TOKENS` at ids 0–3, then the words in order.

    Parameters
    ----------
    words : iterable of str
        The non-special tokens, in id order (``words[k]`` gets id ``k + 4``). Tokens must be non-empty, free of
        whitespace, unique and distinct from the specials.

    Notes
    -----
    ``vocab[token]`` returns the id, ``<unk>`` (3) for a token not in the vocabulary, as He et al.'s
    ``VocabEntry`` does; :meth:`decode` refuses ids outside ``0 … len(vocab) − 1``. Two vocabularies are equal
    when their token lists are; :meth:`to_dict` / :meth:`from_dict` serialise one to JSON-ready data.
    """

    specials = SPECIAL_TOKENS
    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID
    _FORMAT = "identkit.Vocabulary/1"

    def __init__(self, words: Iterable[str] = ()):
        words = tuple(words)
        for w in words:
            if not isinstance(w, str) or not w or any(ch.isspace() for ch in w):
                raise ValueError(f"words: every token must be a non-empty string without whitespace, got {w!r}")
            if w in SPECIAL_TOKENS:
                raise ValueError(f"words: {w!r} is a special token (ids 0-3 are {SPECIAL_TOKENS}); leave it out")
        tokens = SPECIAL_TOKENS + words
        index = {t: i for i, t in enumerate(tokens)}
        if len(index) != len(tokens):
            dup = next(t for t, c in Counter(words).items() if c > 1)
            raise ValueError(f"words: token {dup!r} appears more than once")
        self._tokens = tokens
        self._index = index

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]], *, max_size: int | None = None, min_count: int = 1,
              order: str = "frequency") -> "Vocabulary":
        """The vocabulary of tokenised ``documents``: tokens seen at least ``min_count`` times, at most ``max_size``
        entries in all (specials included), the rest left to ``<unk>``.

        Parameters
        ----------
        documents : iterable of sequences of str
            Training documents only (a vocabulary built on held-out text leaks it).
        max_size : int, optional
            Cap on ``len(vocab)``, the 4 specials included (so at most ``max_size − 4`` words). None: no cap.
        min_count : int
            Keep tokens with count ≥ ``min_count``.
        order : {"frequency", "first"}
            "frequency": by decreasing count, ties by the token's string (the cap keeps the most frequent);
            "first": by first appearance, as He et al.'s reader assigns ids (a ``defaultdict`` over the file).

        Raises
        ------
        ValueError
            On a reserved token (``<pad>``, ``<s>``, ``</s>``) inside a document, or bad sizes. ``<unk>`` in a
            document is allowed and never becomes a word.
        """
        if max_size is not None:
            max_size = check_int(max_size, "max_size", minimum=len(SPECIAL_TOKENS) + 1)
        min_count = check_int(min_count, "min_count", minimum=1)
        if order not in ("frequency", "first"):
            raise ValueError(f"order must be 'frequency' or 'first', got {order!r}")
        counts: Counter = Counter()
        first: dict[str, int] = {}
        for doc in documents:
            for tok in doc:
                if tok not in first:
                    if tok in _RESERVED:
                        raise ValueError(f"documents contain the reserved token {tok!r}; raw text may not hold "
                                         f"{sorted(_RESERVED)}")
                    first[tok] = len(first)
                counts[tok] += 1
        kept = [t for t in first if counts[t] >= min_count and t != "<unk>"]
        if order == "frequency":
            kept.sort(key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(SPECIAL_TOKENS)]
        return cls(kept)

    # mapping -------------------------------------------------------------------------------------------
    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens in id order (specials first)."""
        return self._tokens

    @property
    def words(self) -> tuple[str, ...]:
        """The non-special tokens in id order."""
        return self._tokens[len(SPECIAL_TOKENS):]

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token) -> bool:
        return token in self._index

    def __getitem__(self, token: str) -> int:
        return self._index.get(token, UNK_ID)

    def token(self, i: int) -> str:
        """The token with id ``i`` (``ValueError`` outside ``0 … len − 1``)."""
        return self.decode([i])[0]

    def encode(self, tokens: Iterable[str], *, add_markers: bool = False) -> list[int]:
        """Token ids, ``<unk>`` for tokens not in the vocabulary; with ``add_markers`` wrapped in ``<s> … </s>``."""
        ids = [self._index.get(t, UNK_ID) for t in tokens]
        return [BOS_ID, *ids, EOS_ID] if add_markers else ids

    def decode(self, ids, *, skip_specials: bool = False) -> list[str]:
        """Tokens of ``ids`` (ints, an array or a tensor); ``skip_specials`` drops ``<pad>``, ``<s>``, ``</s>``.

        Raises ``ValueError`` for ids outside ``0 … len(vocab) − 1`` (ids made with another vocabulary).
        """
        if torch.is_tensor(ids):
            arr = ids.detach().cpu().numpy()
        else:
            arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
        arr = arr.reshape(-1)
        if arr.size and (not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= len(self))
        if np.any(bad):
            raise ValueError(f"ids: {int(arr[bad][0])} is out of range for this vocabulary of {len(self)} tokens "
                             f"(ids 0..{len(self) - 1}); the ids were made with another vocabulary")
        out = [self._tokens[int(i)] for i in arr]
        return [t for t in out if t not in _RESERVED] if skip_specials else out

    # identity and serialisation ------------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self.words[:5])
        return f"Vocabulary({len(self)} tokens: 4 specials + [{head}{', …' if len(self.words) > 5 else ''}])"

    @property
    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the token list: a short name for this exact vocabulary."""
        return hashlib.sha256("\n".join(self._tokens).encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict:
        """JSON-ready form: ``{"format", "specials", "words"}``."""
        return {"format": self._FORMAT, "specials": list(SPECIAL_TOKENS), "words": list(self.words)}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        """Inverse of :meth:`to_dict`; ``ValueError`` on another format or other specials."""
        if not isinstance(data, dict) or data.get("format") != cls._FORMAT:
            raise ValueError(f"data is not a serialised Vocabulary (expected format {cls._FORMAT!r})")
        if tuple(data.get("specials", ())) != SPECIAL_TOKENS:
            raise ValueError(f"data has specials {data.get('specials')!r}, expected {list(SPECIAL_TOKENS)}")
        return cls(data["words"])


# ------------------------------------------------------------------------------------------------ container
@dataclass(frozen=True, eq=False)
class TextData:
    """One split of a text data set.

    Attributes
    ----------
    ids : torch.LongTensor, (n, T)
        Row i is ``<s> w_1 … w_L </s>`` followed by ``<pad>`` up to ``T = max_i lengths[i]``.
    lengths : torch.LongTensor, (n,)
        ``L_i + 2`` (both markers counted).
    vocab : Vocabulary
        The vocabulary of the training split; every id is below ``len(vocab)``.
    name, split : str
        Data set name and canonical split ("train", "valid" or "test").
    labels : torch.LongTensor (n,) or None
        Fortunes: category index into ``label_names``; Yelp: the integer label of the file; synthetic: the
        mixture component (index into :data:`SYNTHETIC_MEANS`); Yahoo: None.
    label_names : tuple of str or None
    z : torch.Tensor (n, 2) or None
        The true latent of each synthetic sentence (float32); None for real text.
    metadata : dict
        How the split was made (sources, settings, counts of dropped documents, ``<unk>`` rate, …).
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    vocab: Vocabulary
    name: str
    split: str
    labels: torch.Tensor | None = None
    label_names: tuple[str, ...] | None = None
    z: torch.Tensor | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        ids, lengths = self.ids, self.lengths
        if not isinstance(self.vocab, Vocabulary):
            raise ValueError(f"vocab must be a Vocabulary, got {type(self.vocab).__name__}")
        if not torch.is_tensor(ids) or ids.dtype != torch.long or ids.ndim != 2 or ids.shape[0] < 1:
            raise ValueError("ids must be a non-empty 2-D LongTensor (documents × positions)")
        n, width = ids.shape
        if not torch.is_tensor(lengths) or lengths.dtype != torch.long or lengths.shape != (n,):
            raise ValueError(f"lengths must be a LongTensor of shape ({n},)")
        if (lengths < 3).any() or (lengths > width).any():
            raise ValueError(f"lengths must lie in [3, {width}] (<s>, at least one token, </s>)")
        if ids.min() < 0 or ids.max() >= len(self.vocab):
            raise ValueError(f"ids must lie in [0, {len(self.vocab)}) for this vocabulary of {len(self.vocab)} "
                             f"tokens, got [{int(ids.min())}, {int(ids.max())}]: ids and vocab do not match")
        pos = torch.arange(width).expand(n, width)
        last = (lengths - 1).unsqueeze(1)
        inner = (pos > 0) & (pos < last)
        ok = ((ids[:, 0] == BOS_ID).all() and (ids.gather(1, last) == EOS_ID).all()
              and (ids[pos > last] == PAD_ID).all() and (ids[inner] > EOS_ID).all())
        if not ok:
            raise ValueError("ids rows must read <s> w_1 … w_L </s> <pad> … with no marker inside the words")
        if self.split not in TEXT_SPLITS:
            raise ValueError(f"split must be one of {TEXT_SPLITS}, got {self.split!r}")
        if self.labels is not None:
            if not torch.is_tensor(self.labels) or self.labels.dtype != torch.long or self.labels.shape != (n,):
                raise ValueError(f"labels must be a LongTensor of shape ({n},) or None")
            if self.label_names is not None and (self.labels.min() < 0
                                                 or self.labels.max() >= len(self.label_names)):
                raise ValueError(f"labels must index label_names (0..{len(self.label_names) - 1})")
        if self.z is not None and (not torch.is_tensor(self.z) or self.z.ndim != 2 or self.z.shape[0] != n):
            raise ValueError(f"z must be a tensor of shape ({n}, d) or None")

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def tokens(self, i: int) -> list[str]:
        """The words of document ``i`` (markers and padding removed)."""
        return self.vocab.decode(self.ids[i, 1: int(self.lengths[i]) - 1])

    def documents(self) -> list[list[int]]:
        """Word ids of every document, without markers (ragged)."""
        return [row[1: int(n) - 1] for row, n in zip(self.ids.tolist(), self.lengths.tolist())]


def _pack(docs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad word-id lists into ``<s> … </s> <pad>…`` rows; return (ids, lengths)."""
    lengths = np.fromiter((len(d) + 2 for d in docs), dtype=np.int64, count=len(docs))
    out = np.full((len(docs), int(lengths.max())), PAD_ID, dtype=np.int64)
    out[:, 0] = BOS_ID
    for i, d in enumerate(docs):
        out[i, 1: len(d) + 1] = d
        out[i, len(d) + 1] = EOS_ID
    return torch.from_numpy(out), torch.from_numpy(lengths)


def _check_vocab(vocab, expected: Vocabulary, what: str) -> Vocabulary:
    """``expected`` if ``vocab`` is None or equal to it, else a ``ValueError`` explaining the mismatch."""
    if vocab is None:
        return expected
    if not isinstance(vocab, Vocabulary):
        raise ValueError(f"vocab must be a Vocabulary or None, got {type(vocab).__name__}")
    if vocab != expected:
        diff = next((i for i, (a, b) in enumerate(zip(vocab.tokens, expected.tokens)) if a != b),
                    min(len(vocab), len(expected)))
        raise ValueError(f"vocab does not match the vocabulary of {what} ({len(vocab)} vs {len(expected)} tokens, "
                         f"first difference at id {diff}); ids would mean other words. Pass vocab=None, or the "
                         "vocab of the training split loaded with the same settings")
    return vocab


def _filter(docs, max_length, on_long, on_empty, where):
    """Apply the empty/over-long policies; return (kept indices, n_empty, n_long)."""
    keep, n_empty, n_long = [], 0, 0
    for i, doc in enumerate(docs):
        if len(doc) == 0:
            if on_empty == "raise":
                raise ValueError(f"{where(i)} is an empty document; pass on_empty='drop' to skip empty "
                                 "documents (they are counted in metadata['n_dropped_empty'])")
            n_empty += 1
        elif max_length is not None and len(doc) > max_length:
            if on_long == "raise":
                raise ValueError(f"{where(i)} has {len(doc)} tokens, over max_length={max_length}; pass "
                                 "on_long='drop' to skip such documents, or a larger max_length (documents "
                                 "are never truncated)")
            n_long += 1
        else:
            keep.append(i)
    return keep, n_empty, n_long


def _take(indices: list, n, default, split: str, what: str) -> list:
    """The first ``n`` of ``indices`` (``n`` None: all; "reference": at most the reference count)."""
    if n is None:
        return indices
    if n == "reference":
        if default is None:
            raise ValueError(f"n='reference' has no meaning for {what}; pass an integer or None")
        return indices[: default[split]]
    n = check_int(n, "n")
    if n > len(indices):
        raise ValueError(f"n must be <= the {len(indices)} documents of the {split} split of {what}, got {n}")
    return indices[:n]


# ----------------------------------------------------------------------------------------------- synthetic
def _torch_seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))  # < 2**63


def _generate_synthetic(seed: int, n: dict, length: int, vocab_size: int, hidden: int, embed: int,
                        weight_scale: float, z_weight_scale: float) -> dict:
    """Draw the random LSTM language model and sample every split (float64, one thread)."""
    dt = torch.float64
    streams = np.random.SeedSequence(seed).spawn(1 + len(TEXT_SPLITS))
    g = torch.Generator().manual_seed(_torch_seed(streams[0]))

    def uniform(*shape, scale=weight_scale):
        return (2.0 * torch.rand(*shape, generator=g, dtype=dt) - 1.0) * scale

    V, H, E, K = vocab_size, hidden, embed, 2
    emb = uniform(V, E)
    w_ih, w_hh, b_ih, b_hh = uniform(4 * H, E + K), uniform(4 * H, H), uniform(4 * H), uniform(4 * H)
    w_zc, w_hv, w_zv = uniform(H, K), uniform(V, H), uniform(V, K, scale=z_weight_scale)
    w_ix, w_iz = w_ih[:, :E], w_ih[:, E:]
    means = torch.tensor(SYNTHETIC_MEANS, dtype=dt)
    out = {}
    for s, split in enumerate(TEXT_SPLITS):
        gs = torch.Generator().manual_seed(_torch_seed(streams[1 + s]))
        m = n[split]
        comp = torch.randint(len(SYNTHETIC_MEANS), (m,), generator=gs)
        z = means[comp] + torch.randn(m, K, generator=gs, dtype=dt)
        words = torch.empty(m, length, dtype=torch.long)
        words[:, 0] = torch.randint(V, (m,), generator=gs)
        u = torch.rand(m, length - 1, generator=gs, dtype=dt)
        for lo in range(0, m, 2048):  # rows are independent; chunks bound the (rows × V) work arrays
            sl = slice(lo, min(lo + 2048, m))
            zc = z[sl]
            cell = zc @ w_zc.T
            h = torch.tanh(cell)
            gate_z = zc @ w_iz.T + b_ih + b_hh
            logit_z = zc @ w_zv.T
            x = words[sl, 0]
            for t in range(length - 1):
                i, f, gg, o = (emb[x] @ w_ix.T + gate_z + h @ w_hh.T).chunk(4, dim=1)
                cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(gg)
                h = torch.sigmoid(o) * torch.tanh(cell)
                cdf = torch.softmax(h @ w_hv.T + logit_z, dim=1).cumsum(dim=1)
                x = torch.searchsorted(cdf, (u[sl, t] * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
                x = x.clamp_max(V - 1)  # u·total can round up to total (probability ~1e-16)
                words[sl, t + 1] = x
        out[split] = {"words": words.numpy(), "z": z.numpy(), "component": comp.numpy()}
    return out


def _synthetic_settings(seed, n_train, n_valid, n_test, length, vocab_size, hidden, embed, weight_scale,
                        z_weight_scale) -> dict:
    return {"format": 1, "seed": check_seed(seed),
            "n": {"train": check_int(n_train, "n_train"), "valid": check_int(n_valid, "n_valid"),
                  "test": check_int(n_test, "n_test")},
            "length": check_int(length, "length", minimum=2), "vocab_size": check_int(vocab_size, "vocab_size"),
            "hidden": check_int(hidden, "hidden"), "embed": check_int(embed, "embed"),
            "weight_scale": check_positive(weight_scale, "weight_scale"),
            "z_weight_scale": check_positive(z_weight_scale, "z_weight_scale")}


@functools.lru_cache(maxsize=4)
def _synthetic_cached(key: str, cache_dir: str | None) -> tuple[dict, str]:
    settings = json.loads(key)
    source = "generated"
    file = None
    if cache_dir is not None:
        file = Path(cache_dir) / f"synthetic_text-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if file.is_file():
            try:
                with np.load(file, allow_pickle=False) as npz:
                    if str(npz["settings"]) == key:
                        data = {s: {k: npz[f"{s}_{k}"] for k in ("words", "z", "component")} for s in TEXT_SPLITS}
                        source = f"disk cache {file}"
            except (OSError, KeyError, ValueError):
                pass  # unreadable cache: regenerate and overwrite
    if source == "generated":
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the same bits whatever the caller's thread count
        try:
            data = _generate_synthetic(settings["seed"], settings["n"], settings["length"], settings["vocab_size"],
                                       settings["hidden"], settings["embed"], settings["weight_scale"],
                                       settings["z_weight_scale"])
        finally:
            torch.set_num_threads(threads)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_name(file.name + ".part.npz")
            np.savez_compressed(tmp, settings=np.array(key),
                                **{f"{s}_{k}": v for s in TEXT_SPLITS for k, v in data[s].items()})
            tmp.replace(file)
    for arrays in data.values():
        for v in arrays.values():
            v.setflags(write=False)
    return data, source


def synthetic_text(split: str = "train", seed: int = config.DEFAULT_SEED, *, n_train: int = 16000,
                   n_valid: int = 2000, n_test: int = 2000, length: int = 10, vocab_size: int = 1000,
                   hidden: int = 100, embed: int = 100, weight_scale: float = 1.0, z_weight_scale: float = 5.0,
                   n: int | None = None, vocab: Vocabulary | None = None,
                   cache_dir: str | Path | None = None) -> TextData:
    r"""The synthetic text of He et al. (2019, §6): sentences from a random LSTM conditioned on a 2-D latent.

    Generative process (He et al.'s ``synthetic-data/generate.py`` and ``lm_lstm.py``, jxhe/vae-lagging-encoder,
    last version before the folder was removed, commit 6c014aa):

    .. math::

        c \sim \mathrm{Unif}\{0,1,2,3\},\qquad z \mid c \sim \mathcal N(\mu_c, I_2),\qquad
        \mu \in \{(-2,-2), (2,2), (-2,2), (2,-2)\},

        c_0 = W_{zc} z,\quad h_0 = \tanh(c_0),\qquad x_1 \sim \mathrm{Unif}\{1,\dots,V\},

        (h_t, c_t) = \mathrm{LSTM}\big([E x_t;\, z],\ (h_{t-1}, c_{t-1})\big),\qquad
        x_{t+1} \sim \mathrm{Categorical}\big(\mathrm{softmax}(W_{hv} h_t + W_{zv} z)\big),\quad t = 1,\dots,L-1.

    So z enters three ways: the initial state, the input of every step (concatenated to the word embedding) and
    the output logits. All parameters (embedding E ∈ R^{V×100}, LSTM weights and both biases, W_{zc}, W_{hv})
    are drawn once from U(−a, a) with a = ``weight_scale`` = 1, and W_{zv} from U(−b, b) with
    b = ``z_weight_scale`` = 5: the reference's initialisers (its scale 5 followed 1 and 3 in earlier commits).
    At this scale z dominates the logits (entries of W_{zv}z have s.d. ≈ 9; those of W_{hv}h_t at most 5.8), so the
    words depend strongly on z: on the default data the plug-in mutual information between the component and
    the second word is about 1.2 nats of the possible log 4 ≈ 1.39 (see the tests).

    Choices where the paper is silent: the first word is uniform and independent of z, as in the reference
    script (its "randomly generated start token"), so sentences have L = 10 words of which 9 depend on z;
    the parameters are drawn from one seeded stream and each split's latents, first words and sampling
    uniforms from its own stream (``numpy.random.SeedSequence(seed).spawn``), so a split does not change when
    another's size does; the reference generated 20 000 sentences, here split 16 000 / 2 000 / 2 000 (its
    training config uses the test file as validation set). The sentences are a regeneration of the same
    process, not the reference's files (other seed and random streams).

    Vocabulary: the 4 specials then the words "0" … "999", so word w has id w + 4 (1 004 tokens, as in the
    paper's reference logs).

    Parameters
    ----------
    split : {"train", "valid", "test"}
    seed : int
        Seed of the language model and of every split.
    n_train, n_valid, n_test : int
        Split sizes (default 16 000 / 2 000 / 2 000).
    length : int
        Words per sentence (≥ 2; default 10).
    vocab_size, hidden, embed : int
        V = 1 000 words, LSTM state size 100, embedding size 100 (the reference's ``ni``).
    weight_scale, z_weight_scale : float
        Half-widths a and b of the uniform parameter draws (above).
    n : int, optional
        Keep the first ``n`` sentences of the split.
    vocab : Vocabulary, optional
        Checked against this data's vocabulary (``ValueError`` if they differ).
    cache_dir : path, optional
        Also keep the generated splits in ``cache_dir`` (default ``$IDENTKIT_CACHE_DIR``; none when unset).
        Within a process the splits are cached in memory either way.

    Returns
    -------
    TextData
        ``ids`` (n, L + 2), ``lengths`` all L + 2, ``labels`` the component c, ``label_names`` the means,
        ``z`` (n, 2) the true latents.

    Generation is deterministic given the arguments and independent of torch's thread count (float64, one
    thread, inverse-CDF sampling); the default 20 000 sentences take a few seconds on one core.
    """
    split = _split_name(split)
    settings = _synthetic_settings(seed, n_train, n_valid, n_test, length, vocab_size, hidden, embed,
                                   weight_scale, z_weight_scale)
    if cache_dir is None:
        cache_dir = os.environ.get(_CACHE_ENV) or None
    key = json.dumps(settings, sort_keys=True)
    data, source = _synthetic_cached(key, None if cache_dir is None else str(Path(cache_dir).resolve()))
    part = data[split]
    rows = _take(list(range(len(part["words"]))), n, None, split, "the synthetic data")
    words = part["words"][rows]
    m = len(rows)
    ids = torch.full((m, settings["length"] + 2), PAD_ID, dtype=torch.long)
    ids[:, 0], ids[:, -1] = BOS_ID, EOS_ID
    ids[:, 1:-1] = torch.from_numpy(words + len(SPECIAL_TOKENS))
    own = _synthetic_vocab(settings["vocab_size"])
    vocab = _check_vocab(vocab, own, "the synthetic data")
    meta = {"source": "He et al. 2019 synthetic data, regenerated (jxhe/vae-lagging-encoder synthetic-data/"
                      "generate.py, lm_lstm.py @ 6c014aa)",
            "settings": settings, "means": SYNTHETIC_MEANS, "first_word": "uniform, independent of z",
            "n_documents": m, "cache": source}
    return TextData(ids=ids, lengths=torch.full((m,), settings["length"] + 2, dtype=torch.long), vocab=vocab,
                    name="synthetic", split=split, labels=torch.from_numpy(part["component"][rows].astype(np.int64)),
                    label_names=tuple(f"({a:+g}, {b:+g})" for a, b in SYNTHETIC_MEANS),
                    z=torch.from_numpy(part["z"][rows].astype(np.float32)), metadata=meta)


@functools.lru_cache(maxsize=4)
def _synthetic_vocab(vocab_size: int) -> Vocabulary:
    return Vocabulary(str(w) for w in range(vocab_size))


# ------------------------------------------------------------------------------------------------ fortunes
_TOKEN_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str) -> list[str]:
    r"""Lower-case ``text`` and split it into words and punctuation.

    A token is a run of word characters (Unicode letters, digits, ``_``), possibly joined by inner apostrophes
    (``don't``, ``o'clock``), or any other single non-space character (``.``, ``"``, ``-``, …): the regular
    expression ``\w+(?:'\w+)*|[^\w\s]``. Whitespace, newlines included, only separates tokens.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return _TOKEN_RE.findall(text.lower())


def _fortunes_dir(path) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get(_FORTUNES_ENV)
    return Path(env) if env else DEFAULT_FORTUNES_DIR


def _fortune_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"no fortunes directory at {folder}; {_FORTUNES_HINT}")
    files = [p for p in sorted(folder.iterdir())
             if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".dat", ".u8"))]
    if not files:
        raise FileNotFoundError(f"{folder} holds no fortune files (only .dat/.u8 or sub-folders); {_FORTUNES_HINT}")
    return files


def read_fortunes(path: str | Path | None = None) -> tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]:
    """Every entry of a folder of fortune files, with its category.

    Format (``strfile``'s): entries are separated by lines holding only ``%`` (surrounding spaces allowed). A
    separator at the start of a file or right after another separator delimits nothing and is skipped (Debian's
    ``tao``, ``paradoxum`` and ``knghtbrd`` have such); an entry of blank lines is returned (as an empty text).
    The category of an entry is its file's name. The index files ``*.dat``, the ``*.u8`` copies, hidden files and
    sub-folders (Debian's ``off/``) are skipped; files must be UTF-8.

    Parameters
    ----------
    path : path, optional
        The folder (default ``$IDENTKIT_FORTUNES``, else ``/usr/share/games/fortunes``).

    Returns
    -------
    texts : tuple of str
        Entries in file order, files in name order (lines joined by ``\\n``).
    categories : tuple of int
        Index of each entry's category in ``names``.
    names : tuple of str
        Category (file) names, sorted.
    """
    folder = _fortunes_dir(path)
    files = _fortune_files(folder)
    return _read_fortunes_cached(str(folder), tuple(_file_stamp(f) for f in files))


@functools.lru_cache(maxsize=4)
def _read_fortunes_cached(folder: str, stamps: tuple):
    texts, cats, names = [], [], []
    for k, (file, _, _) in enumerate(stamps):
        names.append(Path(file).name)
        lines: list[str] = []
        for line in _read_utf8(Path(file)).splitlines() + ["%"]:
            if line.strip() == "%":
                if lines:
                    texts.append("\n".join(lines).strip())
                    cats.append(k)
                lines = []
            else:
                lines.append(line)
    return tuple(texts), tuple(cats), tuple(names)


@functools.lru_cache(maxsize=4)
def _fortunes_corpus(folder: str, stamps: tuple):
    texts, cats, names = _read_fortunes_cached(folder, stamps)
    return tuple(tuple(tokenize(t)) for t in texts), cats, names


def _fractions(fractions) -> tuple[float, float, float]:
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fractions must be three numbers (train, valid, test), got {fractions!r}") from exc
    if len(fr) != 3 or any(not np.isfinite(f) or f <= 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions!r}")
    return fr


def load_fortunes(split: str = "train", path: str | Path | None = None, *, n: int | None = None,
                  vocab: Vocabulary | None = None, max_length: int = 64, on_long: str = "drop",
                  on_empty: str = "raise", max_size: int = 5000, min_count: int = 2,
                  fractions: Sequence[float] = (0.8, 0.1, 0.1), split_seed: int = config.DEFAULT_SEED) -> TextData:
    """Debian's fortunes as a labelled text corpus: tokenised, split, with a capped training vocabulary.

    Steps: :func:`read_fortunes` (all categories), :func:`tokenize` each entry; a seeded permutation of all
    N entries (``numpy.random.default_rng(split_seed)``) gives the first ``round(0.8 N)`` to "train", the next
    ``round(0.1 N)`` to "valid" and the rest to "test" (``fractions``); within each split documents keep the
    permuted (random) order, so the first ``n`` are a random subset. The split is made before any filtering,
    so changing ``max_length`` never moves a document from one split to another. Then, in each split,
    documents of more than ``max_length`` tokens are dropped (``on_long="drop"``, counted in
    ``metadata["n_dropped_long"]``) or rejected (``on_long="raise"``); documents are never truncated. The
    vocabulary is built on the kept training documents only (:meth:`Vocabulary.build`, by frequency, tokens
    seen ``min_count`` times, at most ``max_size`` tokens with the specials); other tokens become ``<unk>``.

    With the defaults, the Debian corpus (43 categories, 15 217 entries) keeps 87 % of its entries
    (≤ 64 tokens) and the training vocabulary is capped at 5 000 tokens.

    Parameters
    ----------
    split : {"train", "valid", "test"}
    path : path, optional
        Folder of fortune files (default ``$IDENTKIT_FORTUNES``, else ``/usr/share/games/fortunes``).
    n : int, optional
        Keep the first ``n`` documents of the split (``ValueError`` if it has fewer).
    vocab : Vocabulary, optional
        Checked against the training vocabulary these settings produce (``ValueError`` if different).
    max_length : int
        Longest document kept, in tokens (markers not counted).
    on_long, on_empty : {"drop", "raise"}
        What to do with over-long and empty (blank) entries; both counted in the metadata when dropped.
    max_size, min_count : int
        Vocabulary cap (specials included) and minimum training count.
    fractions : three floats
        Train / valid / test shares of the permutation.
    split_seed : int
        Seed of the permutation.

    Returns
    -------
    TextData
        ``labels`` index ``label_names`` (the category file names, sorted).
    """
    split = _split_name(split)
    max_length = check_int(max_length, "max_length")
    on_long, on_empty = _policy(on_long, "on_long"), _policy(on_empty, "on_empty")
    fr = _fractions(fractions)
    split_seed = check_seed(split_seed, "split_seed")
    if max_size is not None:
        check_int(max_size, "max_size", minimum=len(SPECIAL_TOKENS) + 1)
    check_int(min_count, "min_count")
    folder = _fortunes_dir(path)
    files = _fortune_files(folder)
    stamps = tuple(_file_stamp(f) for f in files)
    docs, cats, names = _fortunes_corpus(str(folder), stamps)
    if not docs:
        raise ValueError(f"{folder}: the fortune files hold no entries (entries are separated by '%' lines)")
    total = len(docs)
    perm = np.random.default_rng(split_seed).permutation(total)
    n_tr, n_va = int(round(fr[0] * total)), int(round(fr[1] * total))
    bounds = {"train": (0, n_tr), "valid": (n_tr, n_tr + n_va), "test": (n_tr + n_va, total)}

    def split_docs(s):
        idx = perm[bounds[s][0]: bounds[s][1]].tolist()
        if not idx:
            raise ValueError(f"the {s} split of {total} fortunes is empty with fractions={fr}")
        where = lambda j: f"fortune {idx[j]} (category {names[cats[idx[j]]]!r})"  # noqa: E731
        keep, n_empty, n_long = _filter([docs[i] for i in idx], max_length, on_long, on_empty, where)
        if not keep:
            raise ValueError(f"no {s} fortune has at most max_length={max_length} tokens")
        return [idx[j] for j in keep], n_empty, n_long

    train = split_docs("train")
    own = _fortunes_vocab(str(folder), stamps, tuple(train[0]), max_size, min_count)
    vocab = _check_vocab(vocab, own, "the fortunes training split")
    kept, n_empty, n_long = train if split == "train" else split_docs(split)
    chosen = _take(kept, n, None, split, "fortunes")
    word_ids = [vocab.encode(docs[i]) for i in chosen]
    ids, lengths = _pack(word_ids)
    n_words = int(sum(len(d) for d in word_ids))
    n_unk = int(sum(d.count(UNK_ID) for d in word_ids))
    meta = {"source": str(folder), "n_corpus": total, "categories": names,
            "fractions": fr, "split_seed": split_seed, "n_split": bounds[split][1] - bounds[split][0],
            "n_documents": len(chosen), "n_dropped_long": n_long, "n_dropped_empty": n_empty,
            "max_length": max_length, "on_long": on_long, "on_empty": on_empty, "truncated": 0,
            "tokenizer": "lowercase; regex \\w+(?:'\\w+)*|[^\\w\\s]",
            "vocab_size": len(vocab), "vocab_max_size": max_size, "vocab_min_count": min_count,
            "vocab_fingerprint": vocab.fingerprint, "unk_rate": n_unk / max(n_words, 1)}
    return TextData(ids=ids, lengths=lengths, vocab=vocab, name="fortunes", split=split,
                    labels=torch.tensor([cats[i] for i in chosen], dtype=torch.long), label_names=names,
                    metadata=meta)


@functools.lru_cache(maxsize=8)
def _fortunes_vocab(folder: str, stamps: tuple, train_idx: tuple, max_size, min_count) -> Vocabulary:
    docs, _, _ = _fortunes_corpus(folder, stamps)
    return Vocabulary.build((docs[i] for i in train_idx), max_size=max_size, min_count=min_count)


# --------------------------------------------------------------------------------------------- Yahoo / Yelp
def _yy_hint(name: str) -> str:
    drive_id, folder, env = YAHOO_YELP_SOURCE[name]
    return (f"identkit cannot download them: they are the {name.capitalize()} corpus of Yang et al. (2017) as "
            f"distributed with He et al.'s code. Clone github.com/jxhe/vae-lagging-encoder and run `python "
            f"prepare_data.py --dataset {name}` there (it fetches the archive from Google Drive, file id "
            f"{drive_id}, into datasets/{folder}/), then pass path='<clone>/datasets/{folder}' or set {env}")


def _yy_file(name: str, split: str, path) -> Path:
    _, folder, env = YAHOO_YELP_SOURCE[name]
    if path is None:
        path = os.environ.get(env) or None
        if path is None:
            raise FileNotFoundError(f"{name}: no path given and {env} is unset; {_yy_hint(name)}")
    base = Path(path)
    stem = f"{name}.{_FILE_SPLIT[split]}.txt"
    for candidate in (base / stem, base / folder / stem, base / "datasets" / folder / stem):
        if candidate.is_file():
            return candidate
    if base.is_file():
        raise FileNotFoundError(f"{name}: path must be the folder holding {stem}, got the file {base}")
    raise FileNotFoundError(f"{name}: no {stem} in {base} (nor in {base / folder}); {_yy_hint(name)}")


_YELP_LINE = re.compile(r"(-?\d+)(?:[\t ](.*))?")  # label, then a tab or space and the text


@functools.lru_cache(maxsize=8)
def _read_lines_cached(stamp: tuple, labelled: bool):
    file = Path(stamp[0])
    docs, labels = [], []
    for lineno, line in enumerate(_read_utf8(file).splitlines(), start=1):
        if labelled:
            m = _YELP_LINE.fullmatch(line)
            if m is None:
                raise ValueError(f"{file}:{lineno}: a Yelp line must start with an integer label followed by a tab "
                                 f"or space, got {line[:60]!r}")
            labels.append(int(m.group(1)))
            text = m.group(2) or ""
        else:
            text = line
        toks = tuple(text.split())
        bad = _RESERVED.intersection(toks)
        if bad:
            raise ValueError(f"{file}:{lineno}: the reserved token {sorted(bad)[0]!r} occurs in the text")
        docs.append(toks)
    if not docs:
        raise ValueError(f"{file} is empty: one document per line expected")
    return tuple(docs), (tuple(labels) if labelled else None)


def _load_yahoo_yelp(name: str, split: str, path, n, vocab, max_length, on_long, on_empty, max_size,
                     min_count) -> TextData:
    split = _split_name(split)
    if max_length is not None:
        max_length = check_int(max_length, "max_length")
    on_long, on_empty = _policy(on_long, "on_long"), _policy(on_empty, "on_empty")
    if max_size is not None:
        check_int(max_size, "max_size", minimum=len(SPECIAL_TOKENS) + 1)
    check_int(min_count, "min_count")
    labelled = name == "yelp"
    train_file = _yy_file(name, "train", path)
    split_file = _yy_file(name, split, path)
    own = _yy_vocab(_file_stamp(train_file), labelled, max_length, on_long, on_empty, max_size, min_count)
    vocab = _check_vocab(vocab, own, f"{train_file}")
    docs, labels = _read_lines_cached(_file_stamp(split_file), labelled)
    where = lambda i: f"{split_file}:{i + 1}"  # noqa: E731
    keep, n_empty, n_long = _filter(docs, max_length, on_long, on_empty, where)
    if not keep:
        raise ValueError(f"{split_file}: no document left after the length and empty-document checks")
    chosen = _take(keep, n, REFERENCE_TEXT_SIZES, split, f"{split_file}")
    word_ids = [vocab.encode(docs[i]) for i in chosen]
    ids, lengths = _pack(word_ids)
    n_words = int(sum(len(d) for d in word_ids))
    meta = {"source": str(split_file), "train_file": str(train_file), "n_lines": len(docs),
            "n_documents": len(chosen), "n_available": len(keep), "n": n,
            "n_dropped_long": n_long, "n_dropped_empty": n_empty, "max_length": max_length, "on_long": on_long,
            "on_empty": on_empty, "truncated": 0, "tokenizer": "whitespace (files are pre-tokenised)",
            "vocab_size": len(vocab), "vocab_max_size": max_size, "vocab_min_count": min_count,
            "vocab_fingerprint": vocab.fingerprint,
            "unk_rate": sum(d.count(UNK_ID) for d in word_ids) / max(n_words, 1)}
    lab = torch.tensor([labels[i] for i in chosen], dtype=torch.long) if labelled else None
    return TextData(ids=ids, lengths=lengths, vocab=vocab, name=name, split=split, labels=lab, metadata=meta)


@functools.lru_cache(maxsize=8)
def _yy_vocab(stamp: tuple, labelled: bool, max_length, on_long, on_empty, max_size, min_count) -> Vocabulary:
    docs, _ = _read_lines_cached(stamp, labelled)
    keep, _, _ = _filter(docs, max_length, on_long, on_empty, lambda i: f"{stamp[0]}:{i + 1}")
    return Vocabulary.build((docs[i] for i in keep), max_size=max_size, min_count=min_count, order="first")


_YY_DOC = """{title} (Yang et al. 2017) as distributed with He et al.'s code: ``{stem}.{{train,valid,test}}.txt``.

    {format} The reference settings are the defaults: the vocabulary is every token of the *whole* training
    file (after the empty/length checks) plus the 4 specials, ids by first appearance (He et al.'s
    ``MonoTextData``; {size} tokens in the paper's logs), and the first 30 000 training / 10 000 validation and
    test documents are used (``n="reference"``, the lidvae code's ``--subsample``). No length cap by default
    (the reference has none); with ``max_length`` longer documents are dropped or rejected, never truncated.

    Parameters
    ----------
    split : {{"train", "valid", "test"}}
    path : path, optional
        Folder holding the three files, or a folder above it (``{stem}_data/`` or ``datasets/{stem}_data/``);
        default ``${env}``. Missing files raise ``FileNotFoundError`` saying how to obtain them.
    n : int, "reference" or None
        First ``n`` documents; "reference": at most 30 000 (train) / 10 000 (valid, test); None: all.
    vocab : Vocabulary, optional
        Checked against the vocabulary of the training file (``ValueError`` if different).
    max_length : int, optional
    on_long, on_empty : {{"drop", "raise"}}
        Empty lines raise by default (the reference skips them silently: pass ``on_empty="drop"``).
    max_size, min_count : optional
        Vocabulary cap (specials included) and minimum count; the reference uses neither.
    """


def load_yahoo(split: str = "train", path: str | Path | None = None, *, n: int | str | None = "reference",
               vocab: Vocabulary | None = None, max_length: int | None = None, on_long: str = "drop",
               on_empty: str = "raise", max_size: int | None = None, min_count: int = 1) -> TextData:
    return _load_yahoo_yelp("yahoo", split, path, n, vocab, max_length, on_long, on_empty, max_size, min_count)


def load_yelp(split: str = "train", path: str | Path | None = None, *, n: int | str | None = "reference",
              vocab: Vocabulary | None = None, max_length: int | None = None, on_long: str = "drop",
              on_empty: str = "raise", max_size: int | None = None, min_count: int = 1) -> TextData:
    return _load_yahoo_yelp("yelp", split, path, n, vocab, max_length, on_long, on_empty, max_size, min_count)


load_yahoo.__doc__ = _YY_DOC.format(
    title="Yahoo Answers", stem="yahoo", size="20 001", env="IDENTKIT_YAHOO",
    format="One document per line, tokens separated by spaces (already lower-cased and tokenised).")
load_yelp.__doc__ = _YY_DOC.format(
    title="Yelp reviews", stem="yelp", size="19 997", env="IDENTKIT_YELP",
    format="One document per line: an integer label, a tab (a space is accepted), then the tokens; the label is "
           "returned as ``labels`` (the file's integers, ``label_names`` None).")


# ---------------------------------------------------------------------------------------------- dispatcher
def load_text(name: str, split: str = "train", path: str | Path | None = None, **kwargs) -> TextData:
    """Load the text data set ``name`` ("fortunes", "synthetic", "yahoo" or "yelp"; case-insensitive).

    Dispatches to :func:`load_fortunes`, :func:`synthetic_text` (which takes no ``path``: its data are
    generated; pass ``cache_dir=`` for an on-disk cache), :func:`load_yahoo` or :func:`load_yelp`; ``kwargs``
    go to that function.
    """
    key = name.lower() if isinstance(name, str) else None
    if key not in TEXT_DATASETS:
        raise ValueError(f"name: unknown text data set {name!r}; known: {', '.join(TEXT_DATASETS)}")
    if key == "synthetic":
        if path is not None:
            raise ValueError("path: the synthetic data are generated, not read; pass cache_dir= for a disk cache")
        return synthetic_text(split, **kwargs)
    loader = {"fortunes": load_fortunes, "yahoo": load_yahoo, "yelp": load_yelp}[key]
    return loader(split, path, **kwargs)
