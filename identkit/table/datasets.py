"""The registry of Table-1 data sets: what a data set must provide for the table machinery to run on it.

A data set is one :class:`TableDataset` (registered with :func:`register`): its settings type and quick/full
settings, its loaders, how a method key becomes a (model, training method), its methods and the paper's
reported row. Everything else (training jobs, records, resuming, re-evaluation, CSV/markdown, the CLI) is
shared (:mod:`identkit.table.runs`, :mod:`identkit.table.render`, :mod:`identkit.table.cli`). The image data set
is in :mod:`identkit.table.fashion_mnist`, the text ones in :mod:`identkit.table.text`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any, Callable

from .. import config

__all__ = ["DERIVED_ROWS", "METHOD_FIELDS", "MethodSettings", "TableDataset", "DATASETS", "register", "get_dataset",
           "dataset_of", "settings_key", "settings_json", "method_overrides", "method_settings", "training_method"]

#: The settings a per-method override (``MethodSettings.method_overrides``) may change: a method's own training
#: budget and parameters. Data, networks and evaluation stay those of the whole table, so its rows stay comparable.
METHOD_FIELDS = ("epochs", "optimizer", "lr", "clip_grad", "beta", "free_bits", "kl_threshold",
                 "kl_threshold_pretrain", "warmup_epochs", "lagging_max_inner", "lagging_check_every",
                 "lagging_patience", "svi_steps", "svi_lr", "lid_lam", "lid_activation", "lid_init_ratio")


def settings_key(settings) -> str:
    """A short hash of a settings dataclass: the cache folder name.

    Hashes every field except ``method_overrides`` (class-level constants are not fields): a per-method override
    changes that method's runs only, so it is kept in their records (checked when they are read), not in the
    folder name that the other methods' records share.
    """
    blob = json.dumps(_keyed_fields(settings), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _keyed_fields(settings) -> dict:
    fields = dataclasses.asdict(settings)
    fields.pop("method_overrides", None)
    return fields


def settings_json(settings) -> dict:
    """The fields of ``settings`` as written to a cache folder's ``settings.json`` (``method_overrides`` only when any)."""
    fields = _keyed_fields(settings)
    if getattr(settings, "method_overrides", ()):
        fields["method_overrides"] = [list(item) for item in settings.method_overrides]
    return fields


def method_overrides(settings, key: str) -> dict:
    """``{field: value}`` that ``settings.method_overrides`` sets for method ``key`` (empty when none)."""
    return {field: value for method, field, value in getattr(settings, "method_overrides", ()) if method == key}


def method_settings(settings, key: str):
    """``settings`` as method ``key`` trains and is evaluated with: its ``method_overrides`` applied."""
    own = method_overrides(settings, key)
    return dataclasses.replace(settings, **own) if own else settings


def _check_method_overrides(value) -> tuple:
    """``method_overrides`` as a tuple of ``(method, field, value)`` triples (lists from JSON accepted)."""
    if not isinstance(value, (tuple, list)):
        raise ValueError(f"method_overrides: expected (method, field, value) triples, got {value!r}")
    out, seen = [], set()
    for item in value:
        if not isinstance(item, (tuple, list)) or len(item) != 3 or not isinstance(item[0], str):
            raise ValueError(f"method_overrides: expected (method, field, value) triples, got {item!r}")
        method, field, val = item
        if field not in METHOD_FIELDS:
            raise ValueError(f"method_overrides: {method}'s field {field!r} cannot be set per method; allowed: "
                             f"{', '.join(METHOD_FIELDS)} (data, networks and evaluation are the whole table's)")
        if (method, field) in seen:
            raise ValueError(f"method_overrides: {method}.{field} is given twice")
        seen.add((method, field))
        out.append((method, field, val))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class MethodSettings:
    """The settings every data set's table shares: budget, optimiser, evaluation and the methods' parameters.

    A data set's settings dataclass extends this one with its data and network fields (and may change a
    default); all fields but ``method_overrides`` are hashed into the cache key (:func:`settings_key`, field
    order irrelevant).

    Attributes
    ----------
    epochs : int
    optimizer : {"adam", "rmsprop", "rmsprop_tf"}
    lr, clip_grad : float
        Learning rate and gradient-norm clip (5, the authors' codes' value). On the batch mean of per-example
        sums over pixels or tokens the gradient norm exceeds 5 on almost every step (the records'
        ``clipped_fraction``: 1.0 on Fashion-MNIST and fortunes, 0.73–1.0 on the synthetic text), so the clip
        acts as a cap on the step length rather than a guard against rare spikes; kept as the authors set it.
    iw_samples : int
        Importance samples S of the LL estimate.
    beta : float
        β of the β-VAE.
    free_bits : float
        Free-bits threshold λ (nats per dimension, of the batch mean; Kingma et al.).
    kl_threshold, kl_threshold_pretrain : float, int
        Li et al.'s per-example, per-dimension threshold λ (nats; their README's 8 nats over 32 dimensions) and
        their autoencoder pretraining epochs (added to ``epochs`` for that method).
    warmup_epochs : float
        KL warm-up of the methods whose authors use one (lagging, SA-VAE, KL thresholding), in epochs.
    lagging_max_inner, lagging_check_every, lagging_patience : int
        He et al.'s inner-loop cap, improvement window and stopping patience (image script: 99, 10, 5; text
        script: 99, 15, 1).
    svi_steps : int
    svi_lr : float
        SA-VAE refinement steps and step size (Kim et al.: 20 and 1).
    lid_lam : float
        Strong-monotonicity λ of the injective decoders' Brenier maps.
    lid_activation : str
        Activation of their ICNN layers ≥ 2.
    lid_init_ratio : float or None
        Initial size of their nonlinear parts relative to λu (None: the ICNNs' own, almost linear start).
    data_seed : int
        Seed of the data subsets (and of anything random in making the data), the same for all methods.
    eval_seed : int
        Base of the evaluation's Monte-Carlo seeds (:func:`identkit.table.evaluation_seed`), independent of the
        training seeds.
    method_overrides : tuple of (method, field, value)
        Settings of one method that differ from the table's (fields of :data:`METHOD_FIELDS`), e.g.
        ``(("sa_vae", "svi_steps", 5),)`` to fit a costly method into a budget. Not part of the cache key: they
        are written into the method's records and a record made with other overrides is refused when read.
    """

    epochs: int = 50
    optimizer: str = "adam"
    lr: float = 1e-3
    clip_grad: float = 5.0
    iw_samples: int = 500
    beta: float = 0.2
    free_bits: float = 0.1
    kl_threshold: float = 0.25
    kl_threshold_pretrain: int = 10
    warmup_epochs: float = 10.0
    lagging_max_inner: int = 99
    lagging_check_every: int = 10
    lagging_patience: int = 5
    svi_steps: int = 20
    svi_lr: float = 1.0
    lid_lam: float = 1.0
    lid_activation: str = "softplus"
    lid_init_ratio: float | None = 0.3
    data_seed: int = config.DEFAULT_SEED
    eval_seed: int = 7
    method_overrides: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "method_overrides", _check_method_overrides(self.method_overrides))

    def key(self) -> str:
        """A short hash of the settings (the cache folder name)."""
        return settings_key(self)


#: Rows derived from a method's records rather than trained on their own: SA-VAE evaluated at its refined
#: variational parameters (Kim et al.'s evaluation), beside the row at the encoder's output.
DERIVED_ROWS: dict[str, tuple[str, str, str]] = {"sa_vae_refined": ("sa_vae", "refined", "SA-VAE (refined q)")}


def training_method(key: str, settings, seed: int, val_x=None):
    """The :class:`identkit.neural.train.Method` of table method ``key`` (the same for every data set).

    Reads the settings fields every data set shares (``beta``, ``free_bits``, ``kl_threshold``,
    ``kl_threshold_pretrain``, ``warmup_epochs``, ``lagging_*``, ``svi_*``; ``kl_start`` where the settings have
    it, else the authors' 0.1). Keys without a training variant (the VAE and the model rows) train the plain ELBO.
    ``val_x``: the lagging encoder's validation rows.
    """
    from ..neural import baselines
    from ..neural.train import Method

    s = settings
    kl_start = getattr(s, "kl_start", 0.1)
    if key == "beta_vae":
        return baselines.BetaVAE(s.beta)
    if key == "free_bits":
        return baselines.FreeBits(s.free_bits)
    if key == "kl_threshold":
        return baselines.KLThreshold(s.kl_threshold, s.kl_threshold_pretrain, warmup_epochs=s.warmup_epochs,
                                     reset_seed=seed)
    if key == "lagging":
        return baselines.LaggingEncoder(val_x, max_inner=s.lagging_max_inner, check_every=s.lagging_check_every,
                                        patience=s.lagging_patience, warmup_epochs=s.warmup_epochs,
                                        kl_start=kl_start, mi_seed=seed)
    if key == "sa_vae":
        return baselines.SemiAmortized(s.svi_steps, s.svi_lr, warmup_epochs=s.warmup_epochs, kl_start=kl_start)
    return Method()


@dataclasses.dataclass(frozen=True)
class TableDataset:
    """One data set of Table 1.

    Attributes
    ----------
    name, title : str
        Key (``--dataset``, file names ``table1_<name>.{csv,md}``) and display name.
    unit : str
        What LL is per ("image", "document").
    settings_type : type
        Frozen dataclass of every setting of a run (hashed into the cache key); it has a ``dataset`` attribute.
    base_settings : callable(quick) → settings
        The quick (CI) or full settings.
    methods : dict
        Method key → label, in table order.
    paper, paper_labels : dict
        The paper's reported rows (label → metrics) and method key → paper label.
    twins : dict
        Identifiable method key → the non-identifiable key it is compared with.
    metrics : tuple of str
        Columns reported (mean ± sd over seeds).
    load : callable(settings) → (train_x, eval_x)
    load_validation : callable(settings) → val_x
        Held-out rows for methods that check progress (the lagging encoder); never the evaluation rows.
    data_dim : callable(settings, train_x) → int
        What the builder needs as the model's input size (pixels; vocabulary size).
    build : callable(key, settings, data_dim, seed, train_x, val_x) → (model, method)
    extra_metrics : callable(model, eval_x, settings, row) → dict, optional
        Data-set specific metrics added to each run's record (perplexity, recovery of a known latent).
    check_custom : callable(train_x, eval_x, settings) → (train_x, eval_x), optional
        Validates user-given tensors (and prepares them as the loaders would).
    describe : callable(settings) → str
        The settings sentence of the markdown table.
    relative_cost : dict
        Training time of a run relative to the VAE's (orders parallel jobs).
    results_dir : Path
        Where the committed paper-scale records are.
    derived_rows : dict
        Rows computed from another method's records: key → (base key, record field, label).
    paper_note : str
        The markdown table's footnote on the paper's values.
    """

    name: str
    title: str
    unit: str
    settings_type: type
    base_settings: Callable[[bool], Any]
    methods: dict
    paper: dict
    paper_labels: dict
    twins: dict
    metrics: tuple
    load: Callable
    load_validation: Callable
    data_dim: Callable
    build: Callable
    describe: Callable
    results_dir: Path
    relative_cost: dict = dataclasses.field(default_factory=dict)
    derived_rows: dict = dataclasses.field(default_factory=dict)
    extra_metrics: Callable | None = None
    check_custom: Callable | None = None
    paper_note: str = ""

    @property
    def csv_name(self) -> str:
        return f"table1_{self.name}.csv"

    @property
    def md_name(self) -> str:
        return f"table1_{self.name}.md"

    @property
    def csv_columns(self) -> list[str]:
        """Columns of the CSV: means, sds, counts, times, MI ceilings, the paper's four values."""
        return ["method", "label", *self.metrics, *(f"{m}_sd" for m in self.metrics), "AU_count", "n_seeds", "mode",
                "train_time_s", "eval_time_s", "MI_ceiling", "MI_batch_ceiling",
                "paper_AU", "paper_KL", "paper_MI", "paper_LL"]

    def check_method(self, key: str) -> str:
        if key not in self.methods:
            raise ValueError(f"method: unknown method {key!r} for {self.name}; known methods: {', '.join(self.methods)}")
        return key


DATASETS: dict[str, TableDataset] = {}


def register(dataset: TableDataset) -> TableDataset:
    """Add ``dataset`` to :data:`DATASETS` (by name) and return it."""
    DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> TableDataset:
    """The registered data set called ``name`` (``ValueError`` naming the known ones otherwise)."""
    for module in ("fashion_mnist", "text"):  # importing a data set's module registers it
        importlib.import_module(f"{__package__}.{module}")

    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset: unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_of(settings) -> TableDataset:
    """The data set a settings object belongs to (its ``dataset`` attribute)."""
    name = getattr(settings, "dataset", None)
    if name is None:
        raise ValueError(f"settings: {type(settings).__name__} names no data set (no `dataset` attribute)")
    return get_dataset(name)
