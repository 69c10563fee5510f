"""One training loop for every model of :mod:`identkit.neural`: seeds, tqdm, clipping, NaN stop, checkpoints.

The loop (:func:`fit`) maximises the evidence lower bound

.. math:: \\mathcal{L}(x) = \\mathbb{E}_{q(z\\mid x)}[\\log p(x\\mid z)] - \\mathrm{KL}(q(z\\mid x)\\,\\|\\,p(z))

by stochastic gradients on minibatches, with the paper's defaults (RMSprop, learning rate 1e-3, batch 100,
dynamic binarisation of the pixels). Everything random in a run (shuffling, binarisation, reparametrised
samples) comes from one ``torch.Generator`` seeded by ``seed``, so a CPU run is reproducible bit for bit.

Variants of the objective or of the update (β-VAE, free bits, lagging encoder, semi-amortised VI, ...) are
subclasses of :class:`Method`: override :meth:`Method.loss` for a new objective, or :meth:`Method.train_step`
for a new update (several optimiser steps per batch, extra optimisers, ...).
"""
from __future__ import annotations

import contextlib
import importlib
import math
import numbers
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import config
from .._checks import check_int, check_positive, check_seed, check_token_ids

__all__ = [
    "default_device",
    "make_generator",
    "make_optimizer",
    "TFRMSprop",
    "Method",
    "fit",
    "save_checkpoint",
    "load_checkpoint",
    "evaluate_elbo",
    "cached_fit",
    "cache_dir",
    "reproducible",
    "tensor_sha256",
    "CHECKPOINT_FORMAT",
    "TRAINING_STATE_FORMAT",
]

#: Version tag written into every checkpoint.
CHECKPOINT_FORMAT = "identkit-checkpoint-1"
#: Version tag of the training-state files that :func:`fit` writes and resumes from (``resume=``).
TRAINING_STATE_FORMAT = "identkit-training-state-1"


class TFRMSprop(torch.optim.Optimizer):
    """RMSprop as TensorFlow 1's ``tf.train.RMSPropOptimizer`` computes it (the paper's image code).

    .. math::

        m_t = ρ m_{t-1} + (1 - ρ) g_t^2, \\quad v_t = μ v_{t-1} + η\\, g_t / \\sqrt{m_t + ε}, \\quad
        θ_t = θ_{t-1} - v_t,

    with the mean square initialised to **1** (``m_0 = 1``) and ε *inside* the square root. PyTorch's
    ``RMSprop`` starts from ``m_0 = 0`` (with α = 0.99), so its first steps are ≈ ``1/sqrt(1 − α) = 10`` times
    larger (η/|g| · |g| ≈ η·10 for the first step) — enough to make injective decoders overflow.

    Parameters
    ----------
    params : iterable
    lr : float
        η.
    rho : float
        Decay ρ of the mean square (TF's ``decay``, default 0.9).
    momentum : float
        μ (the reference's sweeps use 0.5; TF's default is 0).
    eps : float
        ε (TF's default 1e-10).
    """

    def __init__(self, params, lr: float = 1e-3, rho: float = 0.9, momentum: float = 0.5, eps: float = 1e-10):
        lr = check_positive(lr, "lr")
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must lie in [0, 1), got {rho!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        super().__init__(params, dict(lr=lr, rho=float(rho), momentum=float(momentum), eps=check_positive(eps, "eps")))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p)
                    state["mom"] = torch.zeros_like(p)
                ms, mom = state["ms"], state["mom"]
                ms.mul_(group["rho"]).addcmul_(p.grad, p.grad, value=1.0 - group["rho"])
                mom.mul_(group["momentum"]).addcdiv_(p.grad, (ms + group["eps"]).sqrt(), value=group["lr"])
                p.sub_(mom)
        return loss


_OPTIMIZERS = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam, "sgd": torch.optim.SGD,
               "rmsprop_tf": TFRMSprop}


def default_device() -> torch.device:
    """``cuda`` when a GPU is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_generator(generator=None, *, seed: int | None = None, device="cpu") -> torch.Generator:
    """Return a ``torch.Generator``: ``generator`` itself, or a new one seeded by ``seed``.

    Parameters
    ----------
    generator : torch.Generator, int or None
        An existing generator (returned unchanged), an integer seed, or None.
    seed : int, optional
        Seed used when ``generator`` is None; :data:`identkit.config.DEFAULT_SEED` when both are None.
    device : str or torch.device
        Device of a newly created generator.
    """
    if isinstance(generator, torch.Generator):
        return generator
    if generator is not None:
        if seed is not None:
            raise ValueError("give either generator or seed, not both")
        seed = generator
    seed = config.DEFAULT_SEED if seed is None else check_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def make_optimizer(params, name: str = "rmsprop", lr: float = 1e-3) -> torch.optim.Optimizer:
    """Build the optimiser ``name`` ∈ {"rmsprop", "adam", "sgd", "rmsprop_tf"} over ``params`` with learning rate ``lr``.

    ``"rmsprop_tf"`` is :class:`TFRMSprop` (TF1's RMSprop: ρ 0.9, momentum 0.5, ε inside the root, mean
    square from 1), the optimiser of the paper's image code; ``"rmsprop"`` is PyTorch's.
    """
    if not isinstance(name, str) or name.lower() not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(_OPTIMIZERS)}, got {name!r}")
    return _OPTIMIZERS[name.lower()](params, lr=check_positive(lr, "lr"))


def _scalar(v) -> float:
    return float(v.detach()) if torch.is_tensor(v) else float(v)


class Method:
    """A training objective and update rule; the default is the plain VAE (maximise the mean ELBO).

    Subclasses override :meth:`loss` (objective) and/or :meth:`train_step` (update). :func:`fit` sets the
    attributes ``clip_grad`` (float or None), ``optimizer_name`` and ``lr`` before training starts and calls
    :meth:`begin` once and :meth:`end_epoch` after every epoch. It also sets ``batch_size`` and
    ``steps_per_epoch`` (⌈N / batch_size⌉), which KL warm-up schedules count in.
    """

    #: Short name used in tables and progress bars.
    name = "vae"
    clip_grad: float | None = None
    optimizer_name: str = "rmsprop"
    lr: float = 1e-3
    batch_size: int = 100
    steps_per_epoch: int = 1

    def loss(self, model, x: torch.Tensor, step: int, generator: torch.Generator):
        """Return ``(loss, stats)``: the negative mean ELBO −(1/B) Σ_b L(x_b) and a dict of floats.

        ``stats`` holds ``loss``, ``elbo``, ``rec`` (mean E_q log p(x|z)) and ``kl`` (mean KL(q‖p)).
        """
        terms = model.loss_terms(x, generator)
        elbo = terms["rec"] - terms["kl"]
        loss = -elbo.mean()
        return loss, {"loss": _scalar(loss), "elbo": _scalar(elbo.mean()), "rec": _scalar(terms["rec"].mean()),
                      "kl": _scalar(terms["kl"].mean())}

    def backward_and_step(self, model, optimizer, loss: torch.Tensor, step: int, params=None) -> float:
        """Check ``loss`` is finite, back-propagate, clip the gradient norm to ``clip_grad``, step; return the norm.

        Raises
        ------
        FloatingPointError
            If the loss or the gradient norm is NaN or infinite (names the step).
        """
        check_finite_loss(loss, step)
        loss.backward()
        params = [p for p in (model.parameters() if params is None else params) if p.grad is not None]
        if self.clip_grad is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.clip_grad)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])) \
                if params else torch.zeros(())
        if not torch.isfinite(norm):
            raise FloatingPointError(
                f"non-finite gradient norm ({float(norm)}) at step {step}; lower the learning rate, keep gradient "
                "clipping on, or check the model's parameters for NaN/inf")
        optimizer.step()
        return float(norm)

    def train_step(self, model, optimizer, x: torch.Tensor, step: int, generator: torch.Generator) -> dict:
        """One update on the batch ``x``: zero gradients, :meth:`loss`, backward, clip, optimiser step.

        Returns the stats dict of :meth:`loss` plus ``grad_norm`` (before clipping) and ``clipped`` (1.0 when the
        norm exceeded ``clip_grad``, so its epoch mean is the fraction of clipped steps).
        """
        optimizer.zero_grad(set_to_none=True)
        loss, stats = self.loss(model, x, step, generator)
        stats = dict(stats)
        stats["grad_norm"] = self.backward_and_step(model, optimizer, loss, step)
        stats["clipped"] = float(self.clip_grad is not None and stats["grad_norm"] > self.clip_grad)
        return stats

    def begin(self, model, train_x: torch.Tensor, generator: torch.Generator) -> None:
        """Hook called once before the first step (default: nothing)."""

    def end_epoch(self, model, epoch: int, history: dict) -> None:
        """Hook called after each epoch with the history so far (default: nothing)."""

    def state_dict(self) -> dict:
        """What the method changes while training (plain values), saved in :func:`fit`'s training state.

        Default: nothing (stateless objectives). A method that adapts during training (e.g. the lagging
        encoder's phase) returns it here and restores it in :meth:`load_state_dict`, so a resumed run continues
        exactly where it stopped.
        """
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (called after :meth:`begin` when :func:`fit` resumes)."""
        if state:
            raise ValueError(f"state: {type(self).__name__} keeps no training state, got keys {sorted(state)}")


def check_finite_loss(loss, step: int) -> None:
    """Raise ``FloatingPointError`` naming ``step`` if ``loss`` is NaN or infinite."""
    value = _scalar(loss)
    if not math.isfinite(value):
        raise FloatingPointError(
            f"non-finite loss ({value}) at step {step}; lower the learning rate, keep gradient clipping on, "
            "or check the model's parameters and the data for NaN/inf")


def _check_data(x, name: str, data_dim: int | None = None, tokens: bool = False) -> torch.Tensor:
    """``x`` as an (N, D) float tensor, or, for a categorical (text) model (``tokens``), as integer token ids."""
    if not torch.is_tensor(x):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, D), got {type(x).__name__}")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N >= 1, got {tuple(x.shape)}")
    if data_dim is not None and x.shape[1] != data_dim:
        raise ValueError(f"{name} has {x.shape[1]} columns but the model's data_dim is {data_dim}")
    if tokens:
        return check_token_ids(x, name)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.to(torch.get_default_dtype()) if not x.is_floating_point() else x


def fit(model: nn.Module, train_x: torch.Tensor, *, method: Method | None = None, epochs: int = 10,
        batch_size: int = 100, lr: float = 1e-3, optimizer: str = "rmsprop", seed: int = config.DEFAULT_SEED,
        clip_grad: float | None = 5.0, progress: bool = True, binarize: bool = True,
        eval_x: torch.Tensor | None = None, checkpoint: str | Path | None = None,
        device: str | torch.device | None = None, resume: str | Path | None = None) -> dict:
    """Train ``model`` on the rows of ``train_x`` by minibatch stochastic gradient ascent on the ELBO.

    Each epoch visits a fresh random permutation of the rows in batches of ``batch_size`` (the last, shorter
    batch is kept). For Bernoulli models with ``binarize=True`` each batch is dynamically binarised,
    x̃ ~ Bernoulli(x), as in the paper. The update is :meth:`Method.train_step` (default: the negative mean
    ELBO with one reparametrised sample, gradient norm clipped to ``clip_grad``, one optimiser step).

    Parameters
    ----------
    model : nn.Module
        A model following the protocol of :mod:`identkit.neural.models` (``loss_terms``, ``elbo``, ...).
    train_x : torch.Tensor, shape (N, D)
        Training data (grey levels in [0, 1] for Bernoulli models).
    method : Method, optional
        Objective/update rule; default :class:`Method` (plain ELBO).
    epochs, batch_size : int
        Number of passes over the data and minibatch size.
    lr : float
        Learning rate (paper: 1e-3).
    optimizer : {"rmsprop", "adam", "sgd", "rmsprop_tf"}
        Optimiser (paper: RMSprop).
    seed : int
        Seeds the one ``torch.Generator`` used for shuffling, binarisation and reparametrised samples.
    clip_grad : float or None
        Maximum global gradient norm (None: no clipping).
    progress : bool
        Show a tqdm bar over epochs.
    binarize : bool
        Dynamic binarisation of each batch (Bernoulli likelihoods only; ignored for Gaussian models).
    eval_x : torch.Tensor, optional
        Held-out rows; their mean ELBO is recorded after every epoch (binarised once, with a fixed seed).
    checkpoint : path, optional
        Where to write a checkpoint (:func:`save_checkpoint`) after every epoch.
    device : str or torch.device, optional
        Where to train; default: where the model's parameters are.
    resume : path, optional
        Training-state file for a run that may be interrupted. After every epoch the whole state of the run
        (parameters, optimiser state, the generator's state, the method's :meth:`Method.state_dict`, history,
        epoch) is written there atomically; when the file already exists, training continues from the epoch
        it records instead of starting afresh (``epochs`` may be larger than the stored run's: training is
        extended). A resumed run is bit-for-bit the run that was not interrupted (on the same device and thread
        count). The file is left in place at the end.

    Returns
    -------
    dict
        ``history`` with per-epoch means of every statistic the method reports (``loss``, ``elbo``, ``rec``,
        ``kl``, ``grad_norm``, ...), ``step_loss`` (every step), ``eval_elbo`` (when ``eval_x`` is given),
        ``epoch_seconds``, ``wall_seconds`` (wall time since the start of training at the end of each epoch,
        summed over resumed pieces), ``resumed_at`` (epochs at which the run was resumed) and the run's
        settings under ``settings``.

    Raises
    ------
    FloatingPointError
        When a loss or gradient norm turns NaN/inf (the message names the step).
    ValueError
        When ``resume`` names a state file of a different run (model, data or settings).
    """
    epochs = check_int(epochs, "epochs", minimum=0)
    batch_size = check_int(batch_size, "batch_size")
    seed = check_seed(seed)
    lr = check_positive(lr, "lr")
    if clip_grad is not None:
        clip_grad = check_positive(clip_grad, "clip_grad")
    method = Method() if method is None else method
    if not isinstance(method, Method):
        raise ValueError(f"method must be an identkit.neural.train.Method, got {type(method).__name__}")
    data_dim = getattr(model, "data_dim", None)
    tokens = getattr(model, "likelihood", None) == "categorical"
    train_x = _check_data(train_x, "train_x", data_dim, tokens)
    if eval_x is not None:
        eval_x = _check_data(eval_x, "eval_x", data_dim, tokens)
    bernoulli = getattr(model, "likelihood", "bernoulli") == "bernoulli"
    if bernoulli and ((train_x < 0).any() or (train_x > 1).any()):
        raise ValueError("train_x must lie in [0, 1] for a Bernoulli likelihood")

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    gen = torch.Generator().manual_seed(seed)  # CPU generator: shuffling, binarisation, noise (moved to device)
    opt = make_optimizer(model.parameters(), optimizer, lr)
    method.clip_grad, method.optimizer_name, method.lr = clip_grad, optimizer, lr
    method.batch_size, method.steps_per_epoch = batch_size, math.ceil(train_x.shape[0] / batch_size)
    method.begin(model, train_x, gen)

    if eval_x is not None and bernoulli and binarize:
        eval_x = torch.bernoulli(eval_x, generator=torch.Generator().manual_seed(seed + 1))
    history: dict[str, Any] = {"step_loss": [], "epoch_seconds": [], "wall_seconds": [], "resumed_at": [],
                               "settings": dict(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                                                seed=seed, clip_grad=clip_grad, binarize=binarize,
                                                method=getattr(method, "name", type(method).__name__))}
    if eval_x is not None:
        history["eval_elbo"] = []
    n = train_x.shape[0]
    step, first_epoch, wall_before = 0, 0, 0.0
    run_id = None
    if resume is not None:
        resume = Path(resume)
        run_id = _run_identity(model, method, train_x, history["settings"])
        if resume.exists():
            first_epoch, step = _load_training_state(resume, run_id, model, opt, gen, method, history)
            if first_epoch > epochs:
                raise ValueError(f"resume: {resume} holds a run already trained for {first_epoch} epochs, more than "
                                 f"epochs={epochs}")
            history["settings"]["epochs"] = epochs
            wall_before = history["wall_seconds"][-1] if history["wall_seconds"] else 0.0
            history["resumed_at"].append(first_epoch)
    t_start = time.perf_counter()
    bar = tqdm(range(first_epoch, epochs), desc=f"fit {type(model).__name__}", disable=not progress, leave=False,
               initial=first_epoch, total=epochs)
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        count = 0
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            xb = train_x[perm[start:start + batch_size]]
            if bernoulli and binarize:
                xb = torch.bernoulli(xb, generator=gen)
            stats = method.train_step(model, opt, xb.to(device), step, gen)
            loss_value = float(stats.get("loss", 0.0))
            check_finite_loss(loss_value, step)
            history["step_loss"].append(loss_value)
            m = xb.shape[0]
            for k, v in stats.items():
                if isinstance(v, numbers.Real) or (torch.is_tensor(v) and v.numel() == 1):
                    sums[k] = sums.get(k, 0.0) + m * _scalar(v)
            count += m
            step += 1
        for k, v in sums.items():
            history.setdefault(k, []).append(v / count)
        history["epoch_seconds"].append(time.perf_counter() - t0)
        if eval_x is not None:
            history["eval_elbo"].append(evaluate_elbo(model, eval_x, seed=seed + 2, batch_size=max(batch_size, 500)))
        if progress and "elbo" in sums:
            bar.set_postfix(elbo=f"{sums['elbo'] / count:.2f}")
        method.end_epoch(model, epoch, history)
        history["wall_seconds"].append(wall_before + time.perf_counter() - t_start)
        if checkpoint is not None:
            save_checkpoint(model, checkpoint, epoch=epoch + 1, seed=seed)
        if resume is not None:
            _save_training_state(resume, run_id, model, opt, gen, method, history, epoch + 1, step)
    model.eval()
    return history


# ------------------------------------------------------------------------------------------ training state
def tensor_sha256(x: torch.Tensor) -> str:
    """Hex SHA-256 of a tensor's values: its bytes in C order on the CPU, in its own dtype (shape not included).

    The one data fingerprint of the package: training-state identity, :func:`cached_fit`'s key and the
    Table-1 cache folder all use it.
    """
    import hashlib

    return hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _run_identity(model, method, train_x, settings: dict) -> dict:
    """What must match for a training-state file to belong to this run (model, method, data, settings)."""
    cls, mcls = type(model), type(method)
    changing = set(method.state_dict())  # what the method adapts while training is state, not identity
    hyper = sorted((k, v) for k, v in vars(method).items() if not k.startswith("_") and k not in changing
                   and (v is None or isinstance(v, (bool, int, float, str))))
    fixed = sorted((k, v) for k, v in settings.items() if k != "epochs")  # more epochs extend the run
    return {"model": f"{cls.__module__}.{cls.__qualname__}", "config": repr(sorted(_model_config(model).items())),
            "method": f"{mcls.__module__}.{mcls.__qualname__}{hyper}", "settings": repr(fixed),
            "data": tensor_sha256(train_x)[:16] + str(tuple(train_x.shape))}


def _save_training_state(path: Path, run_id: dict, model, optimizer, generator, method, history, epoch: int,
                         step: int) -> None:
    payload = {"format": TRAINING_STATE_FORMAT, "run": run_id, "epoch": epoch, "step": step,
               "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
               "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
               "method": method.state_dict(), "history": history}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: an interrupted save leaves the previous epoch's state


def _load_training_state(path: Path, run_id: dict, model, optimizer, generator, method, history) -> tuple[int, int]:
    """Load a state written by :func:`_save_training_state` into the run's objects; return (epoch, step)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != TRAINING_STATE_FORMAT:
        raise ValueError(f"resume: {path} is not an identkit training-state file")
    if payload["run"] != run_id:
        diff = sorted(k for k in run_id if payload["run"].get(k) != run_id[k])
        raise ValueError(f"resume: {path} belongs to a different run (its {', '.join(diff)} differ); delete it to "
                         "start afresh, or pass the matching model, data and settings")
    model.load_state_dict(payload["model"], strict=True)
    optimizer.load_state_dict(payload["optimizer"])  # moves the state to the parameters' device
    generator.set_state(payload["generator"])
    method.load_state_dict(payload["method"])
    history.clear()
    history.update(payload["history"])
    return int(payload["epoch"]), int(payload["step"])


@torch.no_grad()
def evaluate_elbo(model, x: torch.Tensor, *, seed: int = config.DEFAULT_SEED, batch_size: int = 500,
                  samples: int = 1) -> float:
    """Mean ELBO of the rows of ``x`` (no binarisation here), with ``samples`` reparametrised draws per row."""
    gen = torch.Generator().manual_seed(check_seed(seed))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(device)
        total += float(model.elbo(xb, generator=gen, samples=samples).sum())
    model.train(was_training)
    return total / x.shape[0]


# --------------------------------------------------------------------------------------------- checkpoints
def _model_config(model) -> dict:
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, dict):
        raise ValueError("model must expose its constructor arguments as a dict `model.config` "
                         "(every identkit model does) to be checkpointed")
    return dict(cfg)


def save_checkpoint(model: nn.Module, path: str | Path, *, optimizer: torch.optim.Optimizer | None = None,
                    **meta) -> Path:
    """Write ``model`` (class, constructor arguments, ``state_dict``) and ``meta`` to ``path``.

    Parameters
    ----------
    model : nn.Module
        An identkit model (it exposes ``config``, the arguments it was built with).
    path : path
        File to write (parent folders are created).
    optimizer : torch.optim.Optimizer, optional
        Its ``state_dict`` is stored too, so training can resume.
    **meta
        Plain values (numbers, strings, lists, dicts) stored beside the model, e.g. epoch or seed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cls = type(model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "module": cls.__module__,
        "class": cls.__qualname__,
        "config": _model_config(model),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: parallel test workers may share a cache
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved by :func:`save_checkpoint` and load its exact parameters.

    The returned model is in eval mode; ``model.checkpoint_meta`` holds the ``meta`` saved with it and, when
    the checkpoint holds optimiser state, ``model.checkpoint_optimizer_state`` holds it (pass it to the
    ``load_state_dict`` of an optimiser built over the returned model's parameters to resume training).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not an identkit checkpoint or names a class outside identkit.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"path: {path} is not an identkit checkpoint")
    module = payload["module"]
    if not (module == "identkit" or module.startswith("identkit.")):
        raise ValueError(f"path: checkpoint names class {module}.{payload['class']}, outside identkit")
    obj: Any = importlib.import_module(module)
    for part in payload["class"].split("."):
        obj = getattr(obj, part)
    model = obj(**payload["config"])
    model.load_state_dict(payload["state_dict"], strict=True)
    model.eval()
    model.checkpoint_meta = payload.get("meta", {})
    if "optimizer" in payload:
        model.checkpoint_optimizer_state = payload["optimizer"]
    return model


# ------------------------------------------------------------------------------------------ training cache
def cache_dir() -> Path | None:
    """Folder of cached trained models: ``$IDENTKIT_CACHE_DIR``, else ``<repo>/checkpoints/cache`` (git-ignored).

    ``IDENTKIT_CACHE=0`` turns the cache off (returns None).
    """
    import os

    if os.environ.get("IDENTKIT_CACHE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    env = os.environ.get("IDENTKIT_CACHE_DIR")
    return Path(env) if env else config.REPO_ROOT / "checkpoints" / "cache"


def _code_fingerprint() -> str:
    """Hash of the source files a trained model depends on (a code change invalidates the cache)."""
    import hashlib

    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("icnn.py", "linear.py", "decoders.py", "models.py", "sequence.py", "train.py"):
        f = here / name
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def reproducible(threads: int | None = None):
    """Run the block with a fixed torch thread count and deterministic algorithms; restore both afterwards.

    A CPU reduction split over t threads adds its partial sums in an order that depends on t, so the last bits
    of a trained model depend on the thread count. Inside this block the count is ``threads`` (default
    :data:`identkit.config.THREADS`, 2) whatever the machine has, and ``torch.use_deterministic_algorithms``
    is on (warn-only: an op without a deterministic kernel warns instead of failing). Runs are then
    bit-identical on CPUs with the same instruction set and the same torch build; other CPUs may round
    differently (their kernels differ), which is why the figure manifest marks trained figures as
    machine-dependent.
    """
    threads = config.THREADS if threads is None else check_int(threads, "threads")
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])


def cached_fit(model: nn.Module, train_x: torch.Tensor, *, tag: str = "model", directory: str | Path | None = None,
               **fit_kwargs) -> tuple[nn.Module, dict]:
    """:func:`fit` with a disk cache: reuse the checkpoint of an identical earlier run, else train and save one.

    The key hashes the model class and constructor arguments, the fit arguments, the training data's bytes and
    the source of :mod:`identkit.neural` (so any code change retrains). Loading restores the parameters
    exactly, so a cached run and a fresh run give identical models and histories. Training runs inside
    :func:`reproducible` (a fixed thread count, part of the key), so its bits do not depend on the machine's
    number of cores.

    Parameters
    ----------
    model : nn.Module
        A freshly constructed identkit model (its parameters are overwritten on a cache hit).
    train_x : torch.Tensor
    tag : str
        Readable prefix of the cache file name.
    directory : path, optional
        Cache folder; default :func:`cache_dir` (None there disables caching).
    **fit_kwargs
        Passed to :func:`fit` (``progress`` and ``checkpoint`` are not part of the key).

    Returns
    -------
    (model, history)
    """
    import hashlib
    import json

    folder = Path(directory) if directory is not None else cache_dir()
    if folder is None:
        with reproducible():
            return model, fit(model, train_x, **fit_kwargs)
    keyed = {k: v for k, v in fit_kwargs.items() if k not in ("progress", "checkpoint")}
    if keyed.get("method") is not None:
        m = keyed["method"]
        keyed["method"] = [type(m).__module__, type(m).__qualname__, sorted(map(str, vars(m).items()))]
    h = hashlib.sha256()
    h.update(json.dumps([type(model).__module__, type(model).__qualname__, _model_config(model),
                         {k: str(v) for k, v in sorted(keyed.items())}, _code_fingerprint(),
                         {"threads": config.THREADS}],
                        sort_keys=True, default=str).encode())
    h.update(str(tuple(train_x.shape)).encode())
    h.update(tensor_sha256(train_x).encode())
    path = folder / f"{tag}-{h.hexdigest()[:20]}.pt"
    if path.exists():
        try:
            loaded = load_checkpoint(path)
            model.load_state_dict(loaded.state_dict())
            model.eval()
            return model, loaded.checkpoint_meta["history"]
        except Exception:  # a corrupt or incompatible file: retrain and overwrite
            pass
    with reproducible():
        history = fit(model, train_x, **fit_kwargs)
    save_checkpoint(model, path, history=history)
    return model, history
