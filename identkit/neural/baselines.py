"""The posterior-collapse remedies the paper compares against, with the same encoder/decoder budget as the VAE.

Training variants (subclasses of :class:`identkit.neural.train.Method`, passed to ``fit(..., method=...)``):

* :class:`BetaVAE` — down-weighted KL: maximise E_q[log p(x|z)] − β KL(q(z|x) ‖ p(z)) (Higgins et al. 2017;
  the paper's row uses β = 0.2).
* :class:`FreeBits` — Kingma et al. (2016)'s free bits: the objective charges each latent dimension at least τ
  nats of its batch-averaged KL, Σ_k max(τ, (1/B) Σ_b KL_bk).
* :class:`KLThreshold` — Li et al. (2019)'s recipe: autoencoder pretraining, a decoder reset, then a KL
  dropped per example and per dimension wherever it is below τ, with KL warm-up.
* :class:`LaggingEncoder` — He et al. (2019)'s image recipe: KL warm-up, aggressive encoder-only inner loops
  until the validation MI has failed to reach a new best in five epochs, then plain VAE training.
* :class:`SemiAmortized` — Kim et al. (2018): T SVI steps refine the encoder's output on the batch-averaged
  ELBO; the loss at the refined parameters is back-propagated through the SVI steps into the encoder.
  :class:`RefinedPosterior` evaluates a trained model at the refined parameters.

Each class's docstring says where it departs from its authors' code. Model variant (a
:class:`identkit.neural.models.VAE` subclass):

* :class:`VampPrior` — Tomczak & Welling (2018): p(z) = (1/M) Σ_m q(z | u_m) with learned pseudo-inputs u_m.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .. import config
from .._checks import check_int, check_positive, check_seed
from .models import VAE
from .train import Method, make_generator, tensor_sha256

__all__ = [
    "BetaVAE",
    "FreeBits",
    "KLThreshold",
    "LaggingEncoder",
    "SemiAmortized",
    "RefinedPosterior",
    "VampPrior",
    "linear_warmup",
    "encoder_parameters",
    "gaussian_elbo",
]


# ----------------------------------------------------------------------------------------------- helpers
def _generator(generator) -> torch.Generator:
    return make_generator(generator)


def encoder_parameters(model: nn.Module, x: torch.Tensor) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split ``model``'s parameters into (those ``model.encode`` uses, all others).

    The split is found by autograd reachability from ``encode(x)`` (so it holds for any model of the protocol,
    whatever its attribute names). For a VampPrior the pseudo-inputs feed the prior, not ``encode(x)``, so
    they count as "others" (model side), as in He et al.'s encoder/decoder split.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        mu, logvar = model.encode(x[:2])
        grads = torch.autograd.grad((mu.sum() + logvar.sum()), params, allow_unused=True)
    enc = [p for p, g in zip(params, grads) if g is not None]
    enc_ids = {id(p) for p in enc}
    return enc, [p for p in params if id(p) not in enc_ids]


def gaussian_elbo(model, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, generator=None,
                  samples: int = 1, beta: float = 1.0) -> torch.Tensor:
    """Per-example ELBO of ``model`` at explicit variational parameters (μ, log σ²), shape (B,).

    ELBO_b = (1/S) Σ_s log p(x_b | z_bs) − β KL(N(μ_b, diag σ_b²) ‖ p(z)),  z_bs = μ_b + σ_b ε_bs,
    with the KL from the model's own ``kl_terms`` (closed form ½ Σ_k (μ² + σ² − log σ² − 1) for the N(0, I)
    prior, the Monte-Carlo (1/S) Σ_s [log q(z_bs | x_b) − log p(z_bs)] for mixture/VampPrior priors).
    Differentiable in μ, log σ² and the model's parameters (reparametrisation trick).
    """
    z = model.reparametrize(mu, logvar, samples, _generator(generator))  # (S, B, K)
    rec = model.log_likelihood(x, z).mean(0)
    return rec - beta * model.kl_terms(mu, logvar, z)["kl"]


def _f(t) -> float:
    """A tensor (or number) as a python float, detached."""
    return float(t.detach()) if torch.is_tensor(t) else float(t)


def _apply_step(model, optimizer, clip_grad, hold=()) -> float:
    """Clip the gradient norm (if ``clip_grad``, jointly over every parameter with a gradient) and step; return the
    pre-clip norm. Parameters in ``hold`` count in the norm but are not stepped (their gradient is dropped)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if clip_grad is not None and clip_grad > 0 and params:
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip_grad))
    else:
        norm = float(torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params))) if params else 0.0
    if not math.isfinite(norm):
        raise FloatingPointError(f"non-finite gradient norm ({norm}); lower the learning rate or keep clipping on")
    for p in hold:
        p.grad = None
    optimizer.step()
    return norm


@contextlib.contextmanager
def _frozen(params):
    """Switch ``requires_grad`` off for ``params`` inside the block (restored after it, even on error)."""
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _check_finite(loss: torch.Tensor, step: int, what: str) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what}: non-finite loss {_f(loss)} at step {step}")


# ----------------------------------------------------------------------------------------------- β-VAE
class BetaVAE(Method):
    """β-VAE objective: loss = −(1/B) Σ_b [E_q log p(x_b|z) − β KL(q(z|x_b) ‖ p(z))].

    Parameters
    ----------
    beta : float
        KL weight β > 0 (the paper's baseline uses 0.2; β = 1 is the plain VAE).
    """

    name = "beta-VAE"

    def __init__(self, beta: float = 0.2):
        self.beta = check_positive(beta, "beta")

    def loss(self, model, x, step, generator):
        terms = model.loss_terms(x, generator)
        rec, kl = terms["rec"], terms["kl"]
        loss = -(rec - self.beta * kl).mean()
        return loss, {"loss": _f(loss), "rec": _f(rec.mean()), "kl": _f(kl.mean()),
                      "elbo": _f((rec - kl).mean())}

    def __repr__(self):
        return f"BetaVAE(beta={self.beta:g})"


# ----------------------------------------------------------------------------------------------- free bits
class FreeBits(Method):
    """Free bits (Kingma et al. 2016), the batch-mean form of KL thresholding (Li et al.'s is :class:`KLThreshold`).

    loss = −(1/B) Σ_b E_q log p(x_b|z) + Σ_k max(τ, (1/B) Σ_b KL_bk),

    where KL_bk is example b's KL in latent dimension k (``loss_terms(x)["kl_per_dim"]``). The max is taken
    after averaging over the minibatch, per dimension; a dimension whose batch-averaged KL is below τ
    contributes the constant τ, hence no gradient pushing it further towards the prior.

    Parameters
    ----------
    lam : float
        Threshold τ > 0 in nats per latent dimension.
    """

    name = "free-bits"

    def __init__(self, lam: float = 0.1):
        self.lam = check_positive(lam, "lam")

    def loss(self, model, x, step, generator):
        terms = model.loss_terms(x, generator)
        if terms.get("kl_per_dim") is None:
            raise ValueError("model: FreeBits needs loss_terms(...)['kl_per_dim'] (a factorised prior)")
        rec, kl_dim = terms["rec"], terms["kl_per_dim"]
        kl_bar = kl_dim.mean(0)  # (K,) batch-averaged KL per dimension
        loss = -rec.mean() + torch.clamp(kl_bar, min=self.lam).sum()
        kl = kl_dim.sum(-1)
        return loss, {"loss": _f(loss), "rec": _f(rec.mean()), "kl": _f(kl.mean()),
                      "elbo": _f((rec - kl).mean()),
                      "dims_below": int((kl_bar.detach() < self.lam).sum())}

    def __repr__(self):
        return f"FreeBits(lam={self.lam:g})"


# ----------------------------------------------------------------------------------------------- KL warm-up
def linear_warmup(step: int, steps_per_epoch: int, warmup_epochs: float, start: float, increment: float | None = None
                  ) -> float:
    """KL weight after ``step + 1`` increments of a linear warm-up: ``min(1, start + (step + 1) · r)``.

    ``r = increment`` per step when given (Kim et al.'s SA-VAE: ``1 / (warmup · steps_per_epoch)``), else
    ``(1 − start) / (warmup · steps_per_epoch)`` (He et al.'s and Li et al.'s scripts: the weight reaches 1 after
    ``warmup_epochs`` epochs). ``warmup_epochs = 0`` means no warm-up (weight 1). Both codes raise the weight
    *before* the step's computation, hence the ``+ 1``.
    """
    if warmup_epochs <= 0:
        return 1.0
    rate = (1.0 - start) / (warmup_epochs * steps_per_epoch) if increment is None else increment
    return min(1.0, start + (step + 1) * rate)


def _check_warmup(warmup_epochs, kl_start) -> tuple[float, float]:
    if not (isinstance(warmup_epochs, (int, float)) and math.isfinite(warmup_epochs) and warmup_epochs >= 0):
        raise ValueError(f"warmup_epochs must be a finite number >= 0, got {warmup_epochs!r}")
    if not (isinstance(kl_start, (int, float)) and 0.0 <= kl_start <= 1.0):
        raise ValueError(f"kl_start must lie in [0, 1], got {kl_start!r}")
    return float(warmup_epochs), float(kl_start)


def _check_x(x, name, minimum=1):
    if not torch.is_tensor(x) or x.ndim != 2 or x.shape[0] < minimum:
        raise ValueError(f"{name} must be a (N, D) tensor with N >= {minimum}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


# ----------------------------------------------------------------------------------------------- KL thresholding
class KLThreshold(Method):
    """KL thresholding as Li, He, Sun, … & Neubig (2019) train it: autoencoder pretraining, decoder reset, a
    per-example, per-dimension threshold ("A surprisingly effective fix for deep latent variable models of text").

    Three phases (the authors' recipe, bohanli/vae-pretraining-encoder: ``text_beta.py --beta 0``, then
    ``text_anneal_fb.py --reset_dec --kl_start 0 --warm_up 10 --fb 2``):

    1. ``pretrain_epochs`` epochs of the autoencoder objective (KL weight 0; z is still sampled),
       loss = −(1/B) Σ_b E_q log p(x_b|z);
    2. the decoder is re-initialised (``model.reset_decoder()`` when the model has one, as the text VAEs do with
       their authors' U(−0.01, 0.01); otherwise every module of ``model.decoder`` gets its ``reset_parameters``;
       the encoder is kept) and the optimiser's state is cleared (the authors build fresh optimisers);
    3. training with the thresholded KL ("fb = 2"),

       .. math:: \\mathcal L = -\\frac1B \\sum_b \\Big[\\mathbb E_q \\log p(x_b|z)
                 - w_t \\sum_k \\mathbb 1[\\mathrm{KL}_{bk} > τ]\\, \\mathrm{KL}_{bk}\\Big],

       where ``KL_bk`` is example b's KL in dimension k and ``w_t`` warms up linearly from 0 to 1 over
       ``warmup_epochs`` epochs (:func:`linear_warmup`). A KL term at or below τ is dropped (no gradient),
       per example and per dimension, unlike :class:`FreeBits`, which charges ``max(τ, batch mean)``.

    Where this departs from the authors' code: their models are LSTM language models trained with SGD and
    validation-based learning-rate decay; here every table method shares the optimiser and a fixed epoch budget,
    the pretraining runs for a fixed ``pretrain_epochs`` (theirs runs to early stopping), and the reset uses the
    decoder's own initialisation (theirs U(−0.01, 0.01) for the LSTM). Their README's threshold is
    ``target_kl = 8`` nats over 32 dimensions, i.e. τ = 0.25 nats per dimension (the default here).

    ``fit`` must run ``pretrain_epochs`` + the epochs of phase 3 (:attr:`extra_epochs` is ``pretrain_epochs``).

    Parameters
    ----------
    lam : float
        Per-dimension threshold τ > 0 (nats).
    pretrain_epochs : int
        Epochs of autoencoder pretraining (≥ 1).
    warmup_epochs : float
        KL warm-up of phase 3 (from weight 0; 0: no warm-up).
    reset_seed : int
        Seed of the decoder's re-initialisation.
    """

    name = "kl-threshold"

    def __init__(self, lam: float = 0.25, pretrain_epochs: int = 10, *, warmup_epochs: float = 10,
                 reset_seed: int = 0):
        self.lam = check_positive(lam, "lam")
        self.pretrain_epochs = check_int(pretrain_epochs, "pretrain_epochs", minimum=1)
        self.warmup_epochs, _ = _check_warmup(warmup_epochs, 0.0)
        self.reset_seed = check_seed(reset_seed)
        self.reset_done = False
        self.optimizer_reset_pending = False

    @property
    def extra_epochs(self) -> int:
        """Epochs ``fit`` must add to the table's budget: the pretraining."""
        return self.pretrain_epochs

    def begin(self, model, train_x, generator) -> None:
        if getattr(model, "kl_terms", None) is None:
            raise ValueError("model: KLThreshold needs a model of the identkit protocol")
        self.reset_done, self.optimizer_reset_pending = False, False

    def state_dict(self) -> dict:
        return {"reset_done": self.reset_done, "optimizer_reset_pending": self.optimizer_reset_pending}

    def load_state_dict(self, state: dict) -> None:
        self.reset_done = bool(state["reset_done"])
        self.optimizer_reset_pending = bool(state["optimizer_reset_pending"])

    def phase(self, step: int) -> str:
        """``"pretrain"`` for the first ``pretrain_epochs`` epochs' steps, else ``"threshold"``."""
        return "pretrain" if step < self.pretrain_epochs * self.steps_per_epoch else "threshold"

    def kl_weight(self, step: int) -> float:
        """0 while pretraining, then the linear warm-up from 0 (counted from the first thresholded step)."""
        if self.phase(step) == "pretrain":
            return 0.0
        return linear_warmup(step - self.pretrain_epochs * self.steps_per_epoch, self.steps_per_epoch,
                             self.warmup_epochs, 0.0)

    def end_epoch(self, model, epoch: int, history: dict) -> None:
        """After the last pretraining epoch: re-initialise the decoder (seeded) and flag the optimiser reset."""
        if epoch + 1 == self.pretrain_epochs and not self.reset_done:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.reset_seed)
                if hasattr(model, "reset_decoder"):  # a model with its own initialisation (the text VAEs)
                    model.reset_decoder()
                else:
                    for module in model.decoder.modules():
                        if module is not model.decoder and hasattr(module, "reset_parameters"):
                            module.reset_parameters()
            self.reset_done, self.optimizer_reset_pending = True, True

    def loss(self, model, x, step, generator):
        terms = model.loss_terms(x, generator)
        if terms.get("kl_per_dim") is None:
            raise ValueError("model: KLThreshold needs loss_terms(...)['kl_per_dim'] (a factorised prior)")
        rec, kl_dim = terms["rec"], terms["kl_per_dim"]
        w = self.kl_weight(step)
        mask = (kl_dim.detach() > self.lam).to(kl_dim.dtype)
        loss = -(rec - w * (mask * kl_dim).sum(-1)).mean()
        kl = kl_dim.sum(-1)
        return loss, {"loss": _f(loss), "rec": _f(rec.mean()), "kl": _f(kl.mean()), "elbo": _f((rec - kl).mean()),
                      "kl_weight": w, "kept_fraction": _f(mask.mean())}

    def train_step(self, model, optimizer, x, step, generator):
        if self.optimizer_reset_pending:
            optimizer.state.clear()  # the authors start phase 3 with fresh optimisers
            self.optimizer_reset_pending = False
        return super().train_step(model, optimizer, x, step, generator)

    def __repr__(self):
        return f"KLThreshold(lam={self.lam:g}, pretrain_epochs={self.pretrain_epochs})"


# ----------------------------------------------------------------------------------------------- lagging
class LaggingEncoder(Method):
    """Aggressive inference-network training (He, Spokoyny, Neubig & Berg-Kirkpatrick 2019), their image recipe.

    As in the authors' ``image.py`` (jxhe/vae-lagging-encoder): the KL weight ``w_t`` warms up linearly from
    ``kl_start`` = 0.1 to 1 over ``warmup_epochs`` = 10 epochs (:func:`linear_warmup`, per step), and while
    "aggressive" each outer step on a minibatch x

    1. updates only the encoder φ on the loss −(1/B) Σ_b [E_q log p(x_b|z) − w_t KL_b], first on x itself and
       then on fresh minibatches drawn without replacement from the training data (dynamically binarised), for
       at most ``max_inner`` steps (their loop ``while sub_iter < 100`` takes at most 99); every
       ``check_every`` = 10 steps the mean per-example loss of that window is compared with the previous
       window's, and the loop stops as soon as it rose;
    2. takes one decoder step on x: the loss's gradient with respect to *all* parameters is clipped jointly (as
       theirs), then only the decoder θ is stepped.

    After every epoch the mutual information is estimated on the held-out validation rows with He et al.'s
    per-minibatch estimator (:func:`identkit.metrics.mutual_information` with ``batch_size`` = the training
    batch size). An epoch whose MI is below the best so far counts against the aggressive phase; at the
    ``patience``-th such epoch (5; their counter is never reset, so the epochs need not be consecutive)
    aggressive training ends, and from then on each step updates φ and θ jointly, as a VAE.

    Where this departs from ``image.py``: one optimiser for both parts instead of two Adams (identical here:
    torch's Adam keeps per-parameter state and skips parameters without a gradient); a fixed epoch budget shared
    by every table method instead of their validation-based learning-rate decay, reloading and early stopping;
    the validation batches are taken in order (theirs are shuffled).

    Parameters
    ----------
    heldout_x : tensor (M, D), optional
        Validation rows for the MI check (binary images; not the evaluation set). Default: the last
        min(N // 10, 500) training rows, which are then still trained on; the table passes its own split.
    max_inner : int
        Maximum encoder steps per outer step (99 as in the authors' loop).
    check_every : int
        Window of the improvement check (10 for images; their text script uses 15 and stops at the first
        decrease of MI).
    patience : int
        Epochs with MI below the best so far after which the aggressive phase ends.
    kl_start, warmup_epochs : float
        The KL warm-up (0.1 and 10 in the authors' image command; ``warmup_epochs=0`` turns it off).
    binarize : bool
        Dynamic binarisation of fresh minibatches (Bernoulli models only), matching ``fit``.
    mi_seed : int
        Seed of the MI estimates' draws (epoch e uses ``mi_seed + e``).
    train_x : tensor (N, D), optional
        Data the fresh minibatches are drawn from; ``fit`` supplies its ``train_x`` through :meth:`begin`.
    """

    name = "lagging"

    def __init__(self, heldout_x: torch.Tensor | None = None, *, max_inner: int = 99, check_every: int = 10,
                 patience: int = 5, kl_start: float = 0.1, warmup_epochs: float = 10, binarize: bool = True,
                 mi_seed: int = 0, train_x: torch.Tensor | None = None):
        self.max_inner = check_int(max_inner, "max_inner", minimum=1)
        self.check_every = check_int(check_every, "check_every", minimum=1)
        self.patience = check_int(patience, "patience", minimum=1)
        self.warmup_epochs, self.kl_start = _check_warmup(warmup_epochs, kl_start)
        self.binarize = bool(binarize)
        self.mi_seed = check_seed(mi_seed)
        self.heldout_x = None if heldout_x is None else _check_x(heldout_x, "heldout_x", minimum=2)
        self.train_x = None if train_x is None else _check_x(train_x, "train_x")
        self._reset()
        self._split = None

    def _reset(self):
        self.aggressive = True
        self.mi_history: list[float] = []
        self.inner_steps: list[int] = []  # encoder steps taken at each aggressive outer step
        self.aggressive_epochs = 0
        self.best_mi = 0.0  # as theirs: an MI below 0 counts as not improved
        self.not_improved = 0

    # -- hooks ------------------------------------------------------------------------------------------
    def begin(self, model, train_x, generator) -> None:
        """Remember the training data (for fresh minibatches) and reset the aggressive phase."""
        self.train_x = _check_x(train_x, "train_x")
        if self.heldout_x is None:
            self.heldout_x = train_x[-max(2, min(len(train_x) // 10, 500)):]
        self._reset()
        self._split = None

    def kl_weight(self, step: int) -> float:
        """The warm-up weight w_t of step ``step``."""
        return linear_warmup(step, self.steps_per_epoch, self.warmup_epochs, self.kl_start)

    def end_epoch(self, model, epoch: int = 0, history: dict | None = None) -> None:
        """Count an epoch whose validation MI is below the best; end the aggressive phase at the ``patience``-th."""
        if not self.aggressive:
            return
        self.aggressive_epochs += 1
        mi = self.heldout_mi(model, seed=self.mi_seed + epoch)
        if mi < self.best_mi:
            self.not_improved += 1
            if self.not_improved >= self.patience:
                self.aggressive = False
        else:
            self.best_mi = mi
        self.mi_history.append(mi)
        if history is not None:
            history.setdefault("heldout_mi", []).append(mi)

    def state_dict(self) -> dict:
        """The phase and its bookkeeping (restored when :func:`~identkit.neural.train.fit` resumes)."""
        return {"aggressive": self.aggressive, "mi_history": list(self.mi_history),
                "inner_steps": list(self.inner_steps), "aggressive_epochs": self.aggressive_epochs,
                "best_mi": self.best_mi, "not_improved": self.not_improved}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s values."""
        missing = set(self.state_dict()) - set(state)
        if missing:
            raise ValueError(f"state: LaggingEncoder state lacks {sorted(missing)}")
        self.aggressive, self.aggressive_epochs = bool(state["aggressive"]), int(state["aggressive_epochs"])
        self.mi_history, self.inner_steps = list(state["mi_history"]), list(state["inner_steps"])
        self.best_mi, self.not_improved = float(state["best_mi"]), int(state["not_improved"])

    # -- pieces -----------------------------------------------------------------------------------------
    def _params(self, model, x):
        if self._split is None or self._split[0] is not model:
            self._split = (model, *encoder_parameters(model, x))
        return self._split[1], self._split[2]

    def _fresh_batch(self, model, size: int, generator: torch.Generator, device) -> torch.Tensor:
        if self.train_x is None:
            raise ValueError("train_x: LaggingEncoder needs training data (fit passes it via begin())")
        idx = torch.randperm(len(self.train_x), generator=generator)[:size]  # without replacement
        xb = self.train_x[idx]
        if self.binarize and getattr(model, "likelihood", "bernoulli") == "bernoulli":
            xb = torch.bernoulli(xb, generator=generator)
        return xb.to(device)

    def heldout_mi(self, model, seed: int | None = None) -> float:
        """He et al.'s per-minibatch I_q(x; z) on the validation rows (batches of the training batch size)."""
        from .. import metrics

        if self.heldout_x is None:
            raise ValueError("heldout_x: no held-out batch (pass one, or train with fit)")
        was_training = model.training
        model.eval()
        with torch.no_grad():
            dev = next(model.parameters()).device
            mu, logvar = model.encode(self.heldout_x.to(dev))
        model.train(was_training)
        return float(metrics.mutual_information(mu.cpu(), logvar.cpu(), seed=self.mi_seed if seed is None else seed,
                                                batch_size=self.batch_size))

    def _loss(self, model, x, w, g):
        terms = model.loss_terms(x, g)
        rec, kl = terms["rec"], terms["kl"]
        return -(rec - w * kl).mean(), rec, kl

    def encoder_steps(self, model, optimizer, x, generator, step: int = 0) -> int:
        """The aggressive inner loop: update only the encoder parameters; return the number of steps taken."""
        enc, dec = self._params(model, x)
        g = _generator(generator)
        w = self.kl_weight(step)
        xb, pre, cur, n = x, math.inf, 0.0, 0
        with _frozen(dec):  # no decoder gradients are computed (so the optimiser skips the decoder)
            for it in range(1, self.max_inner + 1):
                optimizer.zero_grad(set_to_none=True)
                loss, _, _ = self._loss(model, xb, w, g)
                _check_finite(loss, step, "LaggingEncoder inner loop")
                loss.backward()
                _apply_step(model, optimizer, self.clip_grad)
                cur += _f(loss) * len(xb)
                n += len(xb)
                xb = self._fresh_batch(model, len(x), g, x.device)
                if it % self.check_every == 0:
                    cur /= n
                    if pre - cur < 0:
                        return it
                    pre, cur, n = cur, 0.0, 0
        return self.max_inner

    # -- the update fit calls ---------------------------------------------------------------------------
    def train_step(self, model, optimizer, x, step, generator):
        g = _generator(generator)
        enc, _ = self._params(model, x)
        inner = 0
        aggressive = self.aggressive
        if aggressive:
            inner = self.encoder_steps(model, optimizer, x, g, step)
            self.inner_steps.append(inner)
        optimizer.zero_grad(set_to_none=True)
        w = self.kl_weight(step)
        loss, rec, kl = self._loss(model, x, w, g)
        _check_finite(loss, step, "LaggingEncoder")
        loss.backward()
        # clipped jointly, as theirs; the outer step of the aggressive phase moves the decoder only
        norm = _apply_step(model, optimizer, self.clip_grad, hold=enc if aggressive else ())
        return {"loss": _f(loss), "rec": _f(rec.mean()), "kl": _f(kl.mean()), "elbo": _f((rec - kl).mean()),
                "kl_weight": w, "aggressive": float(aggressive), "inner_steps": float(inner), "grad_norm": norm,
                "clipped": float(self.clip_grad is not None and norm > self.clip_grad)}

    def __repr__(self):
        return (f"LaggingEncoder(max_inner={self.max_inner}, check_every={self.check_every}, "
                f"patience={self.patience}, aggressive={self.aggressive})")


# ----------------------------------------------------------------------------------------------- SA-VAE
def _clip_by_norm(g: torch.Tensor, max_norm: float | None) -> torch.Tensor:
    """``g · min(1, max_norm / ‖g‖)`` with ‖·‖ the norm of the whole tensor (differentiable)."""
    if max_norm is None:
        return g
    return g * torch.clamp(max_norm / (g.norm() + 1e-12), max=1.0)


class SemiAmortized(Method):
    """Semi-amortised VAE (Kim, Wiseman, Miller, Sontag & Rush 2018), as their code (harvardnlp/sa-vae) trains it.

    Per minibatch x of size B, with the KL weight w_t of the warm-up:

    1. ν_0 = (μ_0, log σ²_0) = encode(x) (Kim et al. write λ; here λ is reserved for the Brenier maps);
    2. T steps of SVI with momentum on the **batch-averaged** loss
       ``L(ν) = −(1/B) Σ_b [log p(x_b|z_b) − w_t KL(N(μ_b, σ_b²) ‖ p(z))]``, one fresh draw z_b = μ_b + σ_b ε per
       step: ``g_k = (clip(∂L/∂μ), clip(∂L/∂ log σ²))`` (each clipped to norm ``max_grad_norm`` over the whole
       batch), ``p_k = m p_{k−1} − g_k`` (p_0 = −g_0), ``ν_{k+1} = ν_k + η p_k``;
    3. the training loss is ``L(ν_T)`` with a fresh draw, and its gradient flows to the decoder θ (directly and
       through the trajectory, whose steps depend on θ) **and to the encoder φ through the T steps**
       (``create_graph=True``: exact Hessian–vector products by double back-propagation). The encoder's own
       ELBO at ν_0 is not part of the loss (it is reported as ``elbo``).

    Warm-up (theirs): w starts at 0.1 and grows by 1/(``warmup_epochs`` · steps per epoch) before each step, so it
    reaches 1 after 0.9 · ``warmup_epochs`` epochs; it applies inside SVI too.

    Where this departs from their code: they differentiate through SVI with finite-difference Hessian–vector
    products (step 1e-5) and clip the backward quantities again (which, when a clip fires, makes their
    finite differences inexact); here autograd gives the exact derivative of the clipped forward computation.
    Their image model has a PixelCNN decoder, batch 50 and 100 epochs; here the table's MLP decoder, batch and
    epochs. Since the loss is a batch *mean*, the step on each example's ν is η/B (0.02 in their image setting,
    0.01 at B = 100).

    Evaluation: Kim et al. report their bounds at the refined parameters ν_T (the same T steps from the
    encoder's output, w = 1); :meth:`refined_posterior` wraps a trained model so that every metric of
    :mod:`identkit.metrics` sees ν_T; the table reports both.

    Parameters
    ----------
    svi_steps : int
        T (theirs: 20).
    svi_lr : float
        η (theirs: 1).
    svi_momentum : float
        m in [0, 1) (theirs: 0.5).
    max_grad_norm : float or None
        Clip of the μ- and the log σ²-gradient, each over the whole batch (theirs: 5).
    warmup_epochs : float
        KL warm-up length (theirs: 10; 0 turns it off).
    kl_start : float
        Initial KL weight (theirs: 0.1).
    """

    name = "SA-VAE"

    def __init__(self, svi_steps: int = 20, svi_lr: float = 1.0, *, svi_momentum: float = 0.5,
                 max_grad_norm: float | None = 5.0, warmup_epochs: float = 10, kl_start: float = 0.1):
        self.svi_steps = check_int(svi_steps, "svi_steps", minimum=1)
        self.svi_lr = check_positive(svi_lr, "svi_lr")
        if not 0.0 <= float(svi_momentum) < 1.0:
            raise ValueError(f"svi_momentum must lie in [0, 1), got {svi_momentum!r}")
        self.svi_momentum = float(svi_momentum)
        self.max_grad_norm = None if max_grad_norm is None else check_positive(max_grad_norm, "max_grad_norm")
        self.warmup_epochs, self.kl_start = _check_warmup(warmup_epochs, kl_start)

    def kl_weight(self, step: int) -> float:
        """Kim et al.'s warm-up: ``min(1, kl_start + (step + 1) / (warmup_epochs · steps_per_epoch))``."""
        if self.warmup_epochs <= 0:
            return 1.0
        return linear_warmup(step, self.steps_per_epoch, self.warmup_epochs, self.kl_start,
                             increment=1.0 / (self.warmup_epochs * self.steps_per_epoch))

    def refine(self, model, x, generator=None, mu0=None, logvar0=None, *, kl_weight: float = 1.0,
               create_graph: bool = False):
        """The T SVI steps from (μ_0, log σ²_0) (default: the encoder's output); return (μ_T, log σ²_T), (B, K).

        With ``create_graph=False`` the result is detached (evaluation); with ``True`` it stays a differentiable
        function of μ_0, log σ²_0 and the decoder's parameters (training).
        """
        g = _generator(generator)
        if mu0 is None or logvar0 is None:
            with torch.no_grad():
                mu0, logvar0 = model.encode(x)
        if create_graph:
            mu, lv = mu0, logvar0
        else:
            mu, lv = mu0.detach().requires_grad_(True), logvar0.detach().requires_grad_(True)
        p_mu = p_lv = None
        with torch.enable_grad():
            for k in range(self.svi_steps):
                loss = -gaussian_elbo(model, x, mu, lv, g, beta=kl_weight).mean()
                g_mu, g_lv = torch.autograd.grad(loss, (mu, lv), create_graph=create_graph)
                g_mu, g_lv = _clip_by_norm(g_mu, self.max_grad_norm), _clip_by_norm(g_lv, self.max_grad_norm)
                p_mu = -g_mu if k == 0 else self.svi_momentum * p_mu - g_mu
                p_lv = -g_lv if k == 0 else self.svi_momentum * p_lv - g_lv
                mu, lv = mu + self.svi_lr * p_mu, lv + self.svi_lr * p_lv
                if not create_graph:
                    mu, lv = mu.detach().requires_grad_(True), lv.detach().requires_grad_(True)
                    p_mu, p_lv = p_mu.detach(), p_lv.detach()
        if not create_graph:
            return mu.detach(), lv.detach()
        return mu, lv

    def train_step(self, model, optimizer, x, step, generator):
        g = _generator(generator)
        w = self.kl_weight(step)
        optimizer.zero_grad(set_to_none=True)
        mu0, logvar0 = model.encode(x)
        mu_t, logvar_t = self.refine(model, x, g, mu0, logvar0, kl_weight=w, create_graph=True)
        z = model.reparametrize(mu_t, logvar_t, 1, g)
        rec = model.log_likelihood(x, z).mean(0)
        kl = model.kl_terms(mu_t, logvar_t, z)["kl"]
        loss = -(rec - w * kl).mean()
        _check_finite(loss, step, "SemiAmortized")
        loss.backward()
        norm = _apply_step(model, optimizer, self.clip_grad)
        with torch.no_grad():
            elbo_enc = gaussian_elbo(model, x, mu0.detach(), logvar0.detach(), g)
        elbo_ref = (rec - kl).detach()
        return {"loss": _f(loss), "rec": _f(rec.mean()), "kl": _f(kl.mean()), "elbo": _f(elbo_enc.mean()),
                "elbo_refined": _f(elbo_ref.mean()), "svi_gain": _f((elbo_ref - elbo_enc).mean()),
                "kl_weight": w, "grad_norm": norm,
                "clipped": float(self.clip_grad is not None and norm > self.clip_grad)}

    def refined_posterior(self, model, seed: int = 0, batch_size: int | None = None) -> "RefinedPosterior":
        """``model`` with ``encode`` replaced by T SVI steps from the encoder's output (w = 1), for evaluation.

        The refinement batch size defaults to the training batch size (``fit`` sets it)."""
        return RefinedPosterior(model, self, seed=seed, batch_size=batch_size or self.batch_size)

    def __repr__(self):
        return f"SemiAmortized(svi_steps={self.svi_steps}, svi_lr={self.svi_lr:g}, momentum={self.svi_momentum:g})"


class RefinedPosterior(nn.Module):
    """A trained model whose ``encode(x)`` returns SA-VAE's refined ν_T instead of the encoder's ν_0.

    Follows the model protocol (``latent_dim``, ``data_dim``, ``likelihood``, ``encode``, ``log_likelihood``,
    ``log_prior``), so :func:`identkit.metrics.collapse_metrics` evaluates the refined q unchanged. Rows are
    refined in batches of ``batch_size`` (the step on each row is η / B, as in training), seeded by ``seed`` and
    the batch's bytes, and remembered: a row seen before gets the ν_T it got then, so AU, KL, MI and LL, which
    call ``encode`` on different batches, all see one and the same q. Pass the evaluation set to
    :meth:`prepare` first to fix which rows share a refinement batch.
    """

    def __init__(self, model, method: SemiAmortized, seed: int = 0, batch_size: int = 100):
        super().__init__()
        self.model, self.method = model, method
        self.seed = check_seed(seed)
        self.batch_size = check_int(batch_size, "batch_size")
        self.latent_dim, self.data_dim = model.latent_dim, model.data_dim
        self.likelihood = getattr(model, "likelihood", "bernoulli")
        self._memo: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _keys(x: torch.Tensor) -> list[bytes]:
        rows = x.detach().cpu().contiguous().numpy()
        return [r.tobytes() for r in rows]

    def _generator(self, x: torch.Tensor) -> torch.Generator:
        digest = bytes.fromhex(tensor_sha256(x))
        return torch.Generator().manual_seed((int.from_bytes(digest[:6], "little") + self.seed) % (2**63))

    def prepare(self, x: torch.Tensor) -> "RefinedPosterior":
        """Refine every new row of ``x`` (in its order, batches of ``batch_size``) and remember the results."""
        keys = self._keys(x)
        rows, seen = [], set()
        for i, k in enumerate(keys):  # first occurrence of every row not refined yet
            if k not in self._memo and k not in seen:
                seen.add(k)
                rows.append(i)
        for start in range(0, len(rows), self.batch_size):
            idx = rows[start:start + self.batch_size]
            xb = x[idx]
            mu, lv = self.method.refine(self.model, xb, self._generator(xb))
            for j, i in enumerate(idx):
                self._memo[keys[i]] = (mu[j], lv[j])
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ν_T = (μ_T, log σ²_T) for the rows of ``x``, each (B, K)."""
        self.prepare(x)
        pairs = [self._memo[k] for k in self._keys(x)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def log_likelihood(self, x, z):
        return self.model.log_likelihood(x, z)

    def log_prior(self, z):
        return self.model.log_prior(z)


# ----------------------------------------------------------------------------------------------- VampPrior
class VampPrior(VAE):
    """VAE with the variational mixture of posteriors prior (Tomczak & Welling 2018).

    p(z) = (1/M) Σ_m N(z; μ_φ(u_m), diag σ²_φ(u_m)): the encoder's own posteriors at M learned pseudo-inputs
    u_m = sigmoid(r_m) ∈ (0, 1)^D (so they live where the data do). KL(q(z|x) ‖ p(z)) has no closed form and
    is estimated with the reparametrised draws of the reconstruction term,
    KL ≈ (1/S) Σ_s [log q(z_s|x) − log p(z_s)] (no per-dimension split). Encoder, decoder and likelihood are the
    VAE's, so the parameter budget is the VAE's plus the M × D pseudo-input entries.

    Parameters
    ----------
    data_dim, latent_dim, hidden, likelihood, layers, seed
        As for :class:`identkit.neural.models.VAE`.
    n_pseudo : int
        Number M of pseudo-inputs (Tomczak & Welling use 500 on MNIST).
    pseudo_init : tensor (M, D), optional
        Initial pseudo-inputs in [0, 1] (e.g. M random training images; clipped to [1e-3, 1 − 1e-3] for the
        logit); default: 0.5 + 0.05 ε with ε ~ N(0, 1) drawn from ``seed``.
    """

    def __init__(self, data_dim: int, latent_dim: int, hidden: int = 512, likelihood: str = "bernoulli", *,
                 n_pseudo: int = 500, pseudo_init: torch.Tensor | None = None, layers: int = 2,
                 seed: int = config.DEFAULT_SEED):
        super().__init__(data_dim, latent_dim, hidden, likelihood, layers=layers, seed=seed)
        self.n_pseudo = check_int(n_pseudo, "n_pseudo")
        if pseudo_init is None:
            g = torch.Generator().manual_seed(check_seed(seed))
            init = 0.5 + 0.05 * torch.randn(self.n_pseudo, self.data_dim, generator=g)
        else:
            init = torch.as_tensor(pseudo_init, dtype=torch.float32)
            if init.shape != (self.n_pseudo, self.data_dim):
                raise ValueError(f"pseudo_init must have shape ({self.n_pseudo}, {self.data_dim}), "
                                 f"got {tuple(init.shape)}")
            if not torch.isfinite(init).all() or (init < 0).any() or (init > 1).any():
                raise ValueError("pseudo_init must be finite with values in [0, 1]")
        self.pseudo_logits = nn.Parameter(torch.logit(init.clamp(1e-3, 1 - 1e-3)))

    def pseudo_inputs(self) -> torch.Tensor:
        """The M pseudo-inputs u_m = sigmoid(r_m), shape (M, D)."""
        return torch.sigmoid(self.pseudo_logits)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = logsumexp_m log N(z; μ(u_m), diag σ²(u_m)) − log M, shape ``z.shape[:-1]``."""
        z = self._check_z(z)
        mu, logvar = self.encoder(self.pseudo_inputs())  # (M, K)
        lp = self.log_q(z.unsqueeze(-2), mu, logvar)  # (…, M)
        return torch.logsumexp(lp, dim=-1) - math.log(self.n_pseudo)

    def kl_terms(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> dict:
        """Monte-Carlo KL(q(z|x) ‖ p(z)) ≈ (1/S) Σ_s [log q(z_s|x) − log p(z_s)], shape (B,)."""
        return {"kl": (self.log_q(z, mu, logvar) - self.log_prior(z)).mean(0)}
