"""The posterior-collapse remedies the paper compares against, with the same encoder/decoder budget as the VAE.

Training variants (subclasses of :class:`identkit.neural.train.Method`, passed to ``fit(..., method=...)``):

* :class:`BetaVAE` — down-weighted KL: maximise E_q[log p(x|z)] − β KL(q(z|x) ‖ p(z)) (Higgins et al. 2017;
  the paper's row uses β = 0.2).
* :class:`FreeBits` — KL thresholding (Kingma et al. 2016; Li et al. 2019): the objective charges each latent
  dimension at least λ nats, Σ_k max(λ, (1/B) Σ_b KL_bk), so dimensions below the threshold get no KL gradient.
* :class:`LaggingEncoder` — He et al. (2019): while "aggressive", each training step first updates only the
  encoder on fresh minibatches (up to ``max_inner`` steps, stopped once the encoder loss stops improving), then
  takes one decoder step; aggressive training ends when the mutual information I_q(x; z) on a held-out batch
  stops rising between epochs, after which encoder and decoder are updated jointly as in a plain VAE.
* :class:`SemiAmortized` — Kim et al. (2018): the encoder's (μ, log σ²) initialise per-example variational
  parameters λ_0 that a few SGD steps on the per-example ELBO refine to λ_T; the decoder is trained on the ELBO
  at λ_T and the encoder on the ELBO at its own output λ_0 (see the class docstring for how this simplifies the
  paper, which back-propagates through the SVI steps).

Model variant (a :class:`identkit.neural.models.VAE` subclass):

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
from .train import Method, make_generator

__all__ = [
    "BetaVAE",
    "FreeBits",
    "LaggingEncoder",
    "SemiAmortized",
    "VampPrior",
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


def _apply_step(model, optimizer, clip_grad) -> float:
    """Clip the gradient norm (if ``clip_grad``) and step; return the pre-clip gradient norm."""
    params = [p for p in model.parameters() if p.grad is not None]
    if clip_grad is not None and clip_grad > 0 and params:
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip_grad))
    else:
        norm = float(torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params))) if params else 0.0
    if not math.isfinite(norm):
        raise FloatingPointError(f"non-finite gradient norm ({norm}); lower the learning rate or keep clipping on")
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
    """KL thresholding ("free bits"; Kingma et al. 2016, Li et al. 2019).

    loss = −(1/B) Σ_b E_q log p(x_b|z) + Σ_k max(λ, (1/B) Σ_b KL_bk),

    where KL_bk is example b's KL in latent dimension k (``loss_terms(x)["kl_per_dim"]``). The max is taken
    after averaging over the minibatch, per dimension; a dimension whose batch-averaged KL is below λ
    contributes the constant λ, hence no gradient pushing it further towards the prior.

    Parameters
    ----------
    lam : float
        Threshold λ > 0 in nats per latent dimension.
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


# ----------------------------------------------------------------------------------------------- lagging
class LaggingEncoder(Method):
    """Aggressive encoder training (He, Spokoyny, Neubig & Berg-Kirkpatrick 2019, "Lagging inference networks").

    While ``aggressive`` is on, each call of :meth:`train_step` on a minibatch x

    1. updates only the encoder parameters φ on −ELBO of fresh minibatches drawn from the training data (the
       first inner step uses x itself, as in the authors' code), for at most ``max_inner`` steps; every
       ``check_every`` inner steps the mean loss of that window is compared with the previous window's and the
       inner loop stops as soon as it did not decrease;
    2. takes one decoder step (all non-encoder parameters θ) on −ELBO(x).

    After each epoch (the :meth:`end_epoch` hook of :func:`~identkit.neural.train.fit`) the mutual information
    I_q(x; z) is estimated on a held-out batch (:func:`identkit.metrics.mutual_information`); aggressive
    training stops the first time it is lower than after the previous epoch. From then on each step updates φ
    and θ jointly on −ELBO (the plain VAE).

    Encoder-only (decoder-only) steps use the single optimiser that ``fit`` builds, with the other parameters'
    ``requires_grad`` switched off for the step: autograd computes no gradient for them and torch optimisers
    skip parameters whose gradient is ``None`` (no update, no state change). He et al. use separate SGD
    optimisers for encoder and decoder; sharing one keeps the optimiser identical to the other methods.
    Cost: up to ``max_inner`` + 1 gradient steps per outer step while aggressive (He et al. report ≈ 2–3× a
    VAE's total training time, as the aggressive phase usually ends within a few epochs).

    Parameters
    ----------
    heldout_x : tensor (M, D), optional
        Held-out rows for the MI check; default: the last min(N // 10, 500) training rows (still trained on).
    max_inner : int
        Maximum encoder steps per outer step (He et al.: 100).
    check_every : int
        Window length of the improvement check (He et al.: 15).
    binarize : bool
        Dynamic binarisation of fresh minibatches (x ~ Bernoulli(pixel intensities)), matching ``fit``; only
        for Bernoulli models.
    mi_seed : int
        Seed of the MI estimate's samples.
    train_x : tensor (N, D), optional
        Data the fresh minibatches are drawn from; ``fit`` supplies its ``train_x`` through :meth:`begin`.
    """

    name = "lagging"

    def __init__(self, heldout_x: torch.Tensor | None = None, *, max_inner: int = 100, check_every: int = 15,
                 binarize: bool = True, mi_seed: int = 0, train_x: torch.Tensor | None = None):
        self.max_inner = check_int(max_inner, "max_inner", minimum=1)
        self.check_every = check_int(check_every, "check_every", minimum=1)
        self.binarize = bool(binarize)
        self.mi_seed = check_int(mi_seed, "mi_seed", minimum=0)
        self.heldout_x = None if heldout_x is None else self._check_x(heldout_x, "heldout_x", minimum=2)
        self.train_x = None if train_x is None else self._check_x(train_x, "train_x")
        self.aggressive = True
        self.mi_history: list[float] = []
        self.inner_steps: list[int] = []  # encoder steps taken at each aggressive outer step
        self.aggressive_epochs = 0
        self._split = None

    @staticmethod
    def _check_x(x, name, minimum=1):
        if not torch.is_tensor(x) or x.ndim != 2 or x.shape[0] < minimum:
            raise ValueError(f"{name} must be a (N, D) tensor with N >= {minimum}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    # -- hooks ------------------------------------------------------------------------------------------
    def begin(self, model, train_x, generator) -> None:
        """Remember the training data (for fresh minibatches) and reset the aggressive phase."""
        self.train_x = self._check_x(train_x, "train_x")
        if self.heldout_x is None:
            self.heldout_x = train_x[-max(2, min(len(train_x) // 10, 500)):]
        self.aggressive, self.mi_history, self.inner_steps, self.aggressive_epochs = True, [], [], 0
        self._split = None

    def end_epoch(self, model, epoch: int = 0, history: dict | None = None) -> None:
        """Leave the aggressive phase once the held-out MI is lower than after the previous epoch."""
        if not self.aggressive:
            return
        self.aggressive_epochs += 1
        mi = self.heldout_mi(model)
        if self.mi_history and mi < self.mi_history[-1]:
            self.aggressive = False
        self.mi_history.append(mi)
        if history is not None:
            history.setdefault("heldout_mi", []).append(mi)

    def state_dict(self) -> dict:
        """The phase and its bookkeeping (restored when :func:`~identkit.neural.train.fit` resumes)."""
        return {"aggressive": self.aggressive, "mi_history": list(self.mi_history),
                "inner_steps": list(self.inner_steps), "aggressive_epochs": self.aggressive_epochs}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s values."""
        missing = set(self.state_dict()) - set(state)
        if missing:
            raise ValueError(f"state: LaggingEncoder state lacks {sorted(missing)}")
        self.aggressive, self.aggressive_epochs = bool(state["aggressive"]), int(state["aggressive_epochs"])
        self.mi_history, self.inner_steps = list(state["mi_history"]), list(state["inner_steps"])

    # -- pieces -----------------------------------------------------------------------------------------
    def _params(self, model, x):
        if self._split is None or self._split[0] is not model:
            self._split = (model, *encoder_parameters(model, x))
        return self._split[1], self._split[2]

    def _fresh_batch(self, model, size: int, generator: torch.Generator, device) -> torch.Tensor:
        if self.train_x is None:
            raise ValueError("train_x: LaggingEncoder needs training data (fit passes it via begin())")
        idx = torch.randint(len(self.train_x), (size,), generator=generator)
        xb = self.train_x[idx]
        if self.binarize and getattr(model, "likelihood", "bernoulli") == "bernoulli":
            xb = torch.bernoulli(xb, generator=generator)
        return xb.to(device)

    def heldout_mi(self, model) -> float:
        """I_q(x; z) on the held-out batch (aggregate posterior over the whole batch)."""
        from .. import metrics

        if self.heldout_x is None:
            raise ValueError("heldout_x: no held-out batch (pass one, or train with fit)")
        was_training = model.training
        model.eval()
        with torch.no_grad():
            dev = next(model.parameters()).device
            mu, logvar = model.encode(self.heldout_x.to(dev))
        model.train(was_training)
        return float(metrics.mutual_information(mu.cpu(), logvar.cpu(), seed=self.mi_seed))

    def encoder_steps(self, model, optimizer, x, generator, step: int = 0) -> int:
        """The aggressive inner loop: update only the encoder parameters; return the number of steps taken."""
        enc, dec = self._params(model, x)
        g = _generator(generator)
        xb, pre, cur, n = x, math.inf, 0.0, 0
        with _frozen(dec):  # no decoder gradients are computed (so the optimiser skips the decoder)
            for it in range(1, self.max_inner + 1):
                optimizer.zero_grad(set_to_none=True)
                loss = -model.elbo(xb, generator=g).mean()
                _check_finite(loss, step, "LaggingEncoder inner loop")
                loss.backward()
                _apply_step(model, optimizer, self.clip_grad)
                cur += _f(loss)
                n += 1
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
        enc, dec = self._params(model, x)
        inner = 0
        aggressive = self.aggressive
        if aggressive:
            inner = self.encoder_steps(model, optimizer, x, g, step)
            self.inner_steps.append(inner)
        optimizer.zero_grad(set_to_none=True)
        # the outer step of the aggressive phase moves the decoder only
        with _frozen(enc) if aggressive else contextlib.nullcontext():
            terms = model.loss_terms(x, g)
            rec, kl = terms["rec"], terms["kl"]
            loss = -(rec - kl).mean()
            _check_finite(loss, step, "LaggingEncoder")
            loss.backward()
            norm = _apply_step(model, optimizer, self.clip_grad)
        return {"loss": _f(loss), "rec": _f(rec.mean()), "kl": _f(kl.mean()), "elbo": -_f(loss),
                "aggressive": float(aggressive), "inner_steps": float(inner), "grad_norm": norm}

    def __repr__(self):
        return (f"LaggingEncoder(max_inner={self.max_inner}, check_every={self.check_every}, "
                f"aggressive={self.aggressive})")


# ----------------------------------------------------------------------------------------------- SA-VAE
class SemiAmortized(Method):
    """Semi-amortised VI (Kim, Wiseman, Miller, Sontag & Rush 2018), simplified.

    Per minibatch x:

    1. λ_0 = (μ_0, log σ²_0) = encode(x);
    2. λ_{t+1} = λ_t + η ĝ_t,  ĝ_t = clip(∇_λ ELBO_b(λ_t; θ)) per example, for t < T (``svi_steps``), where
       ELBO_b is the one-sample reparametrised per-example ELBO and θ (decoder) is held fixed; with momentum
       ``svi_momentum`` (Kim et al.: η = 1, momentum 0.5, per-example norm clip 5);
    3. loss = −(1/B) Σ_b ELBO_b(sg[λ_T]; θ) − (1/B) Σ_b ELBO_b(λ_0(φ); sg[θ]):
       the decoder θ is trained at the refined parameters, the encoder φ at its own output.

    Simplification: Kim et al. train φ through the SVI steps (d ELBO(λ_T)/dφ, needing Hessian–vector products,
    their "backprop through SVI"); here λ_T is treated as a constant, so the encoder receives the ordinary
    amortised gradient d ELBO(λ_0)/dφ. The decoder still sees better variational parameters than the encoder
    alone provides, which is the part of SA-VAE that counteracts posterior collapse; the encoder's own update is
    then that of a plain VAE. Evaluation (AU, KL, MI, LL) uses the encoder's λ_0 like every other method (the
    paper's SA-VAE numbers use refined parameters at test time too; ``refine`` is public for that).

    Parameters
    ----------
    svi_steps : int
        Number of refinement steps T ≥ 1.
    svi_lr : float
        Step size η > 0.
    svi_momentum : float
        Heavy-ball momentum in [0, 1).
    max_grad_norm : float or None
        Per-example norm clip of the SVI gradient (None: no clip).
    """

    name = "SA-VAE"

    def __init__(self, svi_steps: int = 10, svi_lr: float = 1.0, *, svi_momentum: float = 0.5,
                 max_grad_norm: float | None = 5.0):
        self.svi_steps = check_int(svi_steps, "svi_steps", minimum=1)
        self.svi_lr = check_positive(svi_lr, "svi_lr")
        if not 0.0 <= float(svi_momentum) < 1.0:
            raise ValueError(f"svi_momentum must lie in [0, 1), got {svi_momentum!r}")
        self.svi_momentum = float(svi_momentum)
        self.max_grad_norm = None if max_grad_norm is None else check_positive(max_grad_norm, "max_grad_norm")
        self._split = None

    def refine(self, model, x, generator=None, mu0=None, logvar0=None):
        """Run the T SVI steps from the encoder's output; return (μ_T, log σ²_T), detached, each (B, K)."""
        g = _generator(generator)
        if mu0 is None or logvar0 is None:
            with torch.no_grad():
                mu0, logvar0 = model.encode(x)
        lam = [mu0.detach().clone().requires_grad_(True), logvar0.detach().clone().requires_grad_(True)]
        vel = [torch.zeros_like(lam[0]), torch.zeros_like(lam[1])]
        with torch.enable_grad():
            for _ in range(self.svi_steps):
                elbo = gaussian_elbo(model, x, lam[0], lam[1], g).sum()  # Σ_b: ∂/∂λ_b is example b's gradient
                grads = torch.autograd.grad(elbo, lam)
                if self.max_grad_norm is not None:
                    norm = torch.sqrt(grads[0].pow(2).sum(-1, keepdim=True) + grads[1].pow(2).sum(-1, keepdim=True))
                    scale = torch.clamp(self.max_grad_norm / (norm + 1e-12), max=1.0)
                    grads = (grads[0] * scale, grads[1] * scale)
                with torch.no_grad():
                    for i in range(2):
                        vel[i] = self.svi_momentum * vel[i] + grads[i]
                        lam[i] += self.svi_lr * vel[i]  # gradient *ascent* on the ELBO
        return lam[0].detach(), lam[1].detach()

    def train_step(self, model, optimizer, x, step, generator):
        g = _generator(generator)
        if self._split is None or self._split[0] is not model:
            self._split = (model, *encoder_parameters(model, x))
        enc, dec = self._split[1], self._split[2]
        mu0, logvar0 = model.encode(x)
        mu_t, logvar_t = self.refine(model, x, g, mu0, logvar0)
        optimizer.zero_grad(set_to_none=True)
        elbo_ref = gaussian_elbo(model, x, mu_t, logvar_t, g)  # depends on θ only (λ_T is a constant)
        elbo_enc = gaussian_elbo(model, x, mu0, logvar0, g)  # gradient used for φ only
        loss_dec, loss_enc = -elbo_ref.mean(), -elbo_enc.mean()
        _check_finite(loss_dec, step, "SemiAmortized (decoder)")
        _check_finite(loss_enc, step, "SemiAmortized (encoder)")
        g_dec = torch.autograd.grad(loss_dec, dec, allow_unused=True, retain_graph=False) if dec else []
        g_enc = torch.autograd.grad(loss_enc, enc, allow_unused=True) if enc else []
        for p, gr in zip(dec, g_dec):
            p.grad = None if gr is None else gr
        for p, gr in zip(enc, g_enc):
            p.grad = None if gr is None else gr
        norm = _apply_step(model, optimizer, self.clip_grad)
        return {"loss": _f(loss_dec), "elbo": _f(elbo_enc.mean()), "elbo_refined": _f(elbo_ref.mean()),
                "svi_gain": _f((elbo_ref - elbo_enc).mean()), "grad_norm": norm}

    def __repr__(self):
        return f"SemiAmortized(svi_steps={self.svi_steps}, svi_lr={self.svi_lr:g})"


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
