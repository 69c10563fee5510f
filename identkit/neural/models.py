"""Variational autoencoders with classical and latent-identifiable decoders: VAE, LIDVAE, GMVAE, IDGMVAE.

Every model here follows one protocol (``latent_dim`` K, ``data_dim`` D, ``likelihood``):

* ``encode(x)`` → ``(mu, logvar)``: the diagonal Gaussian q(z|x) = N(mu, diag exp(logvar)), each (B, K);
* ``decode(z)`` → natural parameters (…, D) of p(x|z) (Bernoulli logits, or Gaussian means);
* ``log_likelihood(x, z)`` → (S, B) values of log p(x|z) for z of shape (S, B, K);
* ``log_prior(z)`` → (S, B) values of log p(z);
* ``loss_terms(x, generator)`` → dict with ``rec`` (B,) = E_q log p(x|z), ``kl`` (B,) = KL(q(z|x) ‖ p(z)) and,
  for the standard-normal prior, ``kl_per_dim`` (B, K);
* ``elbo(x, beta, generator)`` → (B,) = ``rec − beta·kl``.

The four models differ only in the decoder and the prior:

========  ===========================================  =====================================================
model     prior p(z)                                   decoder f(z) (natural parameters of p(x|z))
========  ===========================================  =====================================================
VAE       N(0, I)                                      MLP (not injective: z can be non-identifiable)
LIDVAE    N(0, I)                                      g2(βᵀ g1(z)): Brenier maps + full-rank β (injective)
GMVAE     (1/C) Σ_w N(μ_w, diag γ), μ_w free            MLP
IDGMVAE   (1/C) Σ_w N(β1ᵀ e_w, diag γ), β1 full rank   g2(β2ᵀ g1(z)) (injective)
========  ===========================================  =====================================================

Mixture priors: the discrete cluster w is summed out *exactly* inside the prior,
log p(z) = logsumexp_w log N(z; μ_w, diag γ) − log C, and the bound used is

.. math:: \\mathcal{L}(x) = \\mathbb{E}_{q(z\\mid x)}[\\log p(x\\mid z) + \\log p(z) - \\log q(z\\mid x)],

estimated with reparametrised draws of z only. This equals the ELBO of the family q(z|x) q(w|z) with the optimal
q(w|z) = p(w|z) (the responsibilities), so it is never looser than a bound with an amortised q(w|x); its KL part
KL(q(z|x) ‖ p(z)) has no closed form and is a Monte-Carlo estimate.
"""
from __future__ import annotations

import functools
import inspect
import math

import torch
from torch import nn

from .. import config
from .._checks import check_int, check_positive, check_seed
from .decoders import InjectiveDecoder, MLPDecoder, bernoulli_log_prob, gaussian_log_prob
from .linear import FullRankLinear
from .train import make_generator

__all__ = [
    "LIKELIHOODS",
    "GaussianEncoder",
    "LatentVariableModel",
    "VAE",
    "LIDVAE",
    "GMVAE",
    "IDGMVAE",
    "MODELS",
    "build_model",
]

LIKELIHOODS = ("bernoulli", "gaussian")
_LOG_2PI = math.log(2.0 * math.pi)


def _check_likelihood(likelihood) -> str:
    if not isinstance(likelihood, str) or likelihood.lower() not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return likelihood.lower()


class GaussianEncoder(nn.Module):
    """Amortised diagonal Gaussian q(z|x) = N(mu(x), diag exp(logvar(x))) computed by an MLP.

    ``x → [Linear → ReLU] × layers → Linear → (mu, logvar)``.

    Parameters
    ----------
    data_dim, latent_dim : int
        D and K.
    hidden : int
        Width of the hidden layers (the paper: 512).
    layers : int
        Number of hidden layers.
    """

    def __init__(self, data_dim: int, latent_dim: int, hidden: int = 512, layers: int = 2):
        super().__init__()
        dims = [check_int(data_dim, "data_dim")] + [check_int(hidden, "hidden")] * check_int(layers, "layers")
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        mods.append(nn.Linear(dims[-1], 2 * check_int(latent_dim, "latent_dim")))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each (B, K)."""
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


class LatentVariableModel(nn.Module):
    """Base class: Gaussian encoder, a decoder, a prior, the ELBO and its parts (see the module docstring).

    Subclasses build ``self.encoder`` and ``self.decoder`` and may override :meth:`log_prior` and
    :meth:`kl_terms`. The arguments a subclass's ``__init__`` was called with are recorded automatically in
    :attr:`config`, so :func:`identkit.neural.train.load_checkpoint` can rebuild any subclass (including
    baselines defined elsewhere) from them.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        sig = inspect.signature(init)

        @functools.wraps(init)
        def __init__(self, *args, **kw):
            if "_ik_config" not in self.__dict__:  # the outermost constructor records its arguments
                bound = sig.bind(self, *args, **kw)
                bound.apply_defaults()
                cfg = {}
                for name, param in sig.parameters.items():
                    if name == "self":
                        continue
                    if param.kind is inspect.Parameter.VAR_KEYWORD:
                        cfg.update(bound.arguments.get(name, {}))
                    elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                        if bound.arguments.get(name):
                            raise TypeError(f"{cls.__name__}: positional *args cannot be checkpointed")
                    else:
                        cfg[name] = bound.arguments[name]
                object.__setattr__(self, "_ik_config", cfg)
            init(self, *args, **kw)

        cls.__init__ = __init__

    def _setup(self, data_dim, latent_dim, hidden, likelihood, layers) -> None:
        self.data_dim = check_int(data_dim, "data_dim")
        self.latent_dim = check_int(latent_dim, "latent_dim")
        self.hidden = check_int(hidden, "hidden")
        self.layers = check_int(layers, "layers")
        self.likelihood = _check_likelihood(likelihood)
        if self.likelihood == "gaussian":
            # One learned observation noise scale per data dimension.
            self.log_sigma = nn.Parameter(torch.zeros(self.data_dim))

    @property
    def config(self) -> dict:
        """The constructor arguments of this model (what a checkpoint stores to rebuild it)."""
        return dict(self.__dict__.get("_ik_config", {}))

    # ------------------------------------------------------------------ shapes
    def _check_x(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        if not torch.is_tensor(x) or x.ndim != 2 or x.shape[-1] != self.data_dim:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{name} must be a tensor of shape (B, {self.data_dim}), got {shape}")
        return x

    def _check_z(self, z: torch.Tensor, name: str = "z") -> torch.Tensor:
        if not torch.is_tensor(z) or z.ndim < 1 or z.shape[-1] != self.latent_dim:
            shape = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
            raise ValueError(f"{name} must be a tensor of shape (..., {self.latent_dim}), got {shape}")
        return z

    # ------------------------------------------------------------------ protocol
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x) = N(mu, diag exp(logvar)): ``(mu, logvar)``, each (B, K)."""
        return self.encoder(self._check_x(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Natural parameters of p(x|z), shape (…, D): Bernoulli logits or Gaussian means."""
        return self.decoder(self._check_z(z))

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z], shape (…, D): ``sigmoid(logits)`` (Bernoulli) or the mean (Gaussian)."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over the D data dimensions: (S, B) for x (B, D) and z (S, B, K)."""
        x = self._check_x(x)
        params = self.decode(z)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, params)
        return gaussian_log_prob(x, params, self.log_sigma)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I) = −½ Σ_k (z_k² + log 2π), shape ``z.shape[:-1]``."""
        z = self._check_z(z)
        return -0.5 * (z.square() + _LOG_2PI).sum(-1)

    @staticmethod
    def log_q(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """log N(z; mu, diag exp(logvar)) summed over the latent dimension: (S, B) for z (S, B, K)."""
        return -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)

    @staticmethod
    def reparametrize(mu: torch.Tensor, logvar: torch.Tensor, samples: int = 1,
                      generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Draws z_s = mu + exp(logvar/2) ⊙ ε_s, ε_s ~ N(0, I) from ``generator``: shape (S, B, K)."""
        gen = make_generator(generator)
        eps = torch.randn((check_int(samples, "samples"),) + tuple(mu.shape), generator=gen,
                          device=gen.device, dtype=mu.dtype).to(mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def kl_terms(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> dict:
        """KL(q(z|x) ‖ N(0, I)) in closed form: per dimension ½(mu² + σ² − log σ² − 1), and its sum.

        Returns ``{"kl": (B,), "kl_per_dim": (B, K)}`` (``z`` is unused: the formula is exact).
        """
        per_dim = 0.5 * (mu.square() + logvar.exp() - logvar - 1.0)
        return {"kl": per_dim.sum(-1), "kl_per_dim": per_dim}

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator | int | None = None, *,
                   samples: int = 1) -> dict:
        """The two parts of the ELBO per example, with ``samples`` reparametrised draws of z.

        Returns
        -------
        dict
            ``rec`` (B,) = (1/S) Σ_s log p(x|z_s); ``kl`` (B,) = KL(q(z|x) ‖ p(z)); ``kl_per_dim`` (B, K) when
            the prior factorises; ``mu``, ``logvar`` (B, K) and ``z`` (S, B, K) for callers that reuse them.
        """
        mu, logvar = self.encode(x)
        z = self.reparametrize(mu, logvar, samples, generator)
        terms = {"rec": self.log_likelihood(x, z).mean(0)}
        terms.update(self.kl_terms(mu, logvar, z))
        terms.update(mu=mu, logvar=logvar, z=z)
        return terms

    def elbo(self, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | int | None = None, *,
             seed: int | None = None, samples: int = 1) -> torch.Tensor:
        """Per-example evidence lower bound E_q log p(x|z) − β KL(q(z|x) ‖ p(z)), shape (B,).

        Parameters
        ----------
        x : torch.Tensor, shape (B, D)
        beta : float
            Weight of the KL term (β = 1: the ELBO, a lower bound of log p(x)).
        generator : torch.Generator or int, optional
            Source of the reparametrisation noise (or a seed); ``seed`` is the keyword alternative.
            Default: a generator seeded with :data:`identkit.config.DEFAULT_SEED`.
        samples : int
            Number of draws averaged in the reconstruction term.
        """
        if beta < 0 or not math.isfinite(beta):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        gen = make_generator(generator, seed=seed)
        terms = self.loss_terms(x, gen, samples=samples)
        return terms["rec"] - beta * terms["kl"]

    def sample_prior(self, n: int, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """n draws from the prior p(z): (n, K)."""
        gen = make_generator(generator)
        return torch.randn(check_int(n, "n"), self.latent_dim, generator=gen, device=gen.device).to(self._device())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def extra_repr(self) -> str:
        return f"data_dim={self.data_dim}, latent_dim={self.latent_dim}, likelihood={self.likelihood!r}"


class VAE(LatentVariableModel):
    """Classical VAE: z ~ N(0, I_K), x | z ~ EF(f(z)) with an MLP decoder f (Kingma & Welling 2014).

    The MLP is not injective, so a latent dimension can be non-identifiable (f ignores it); then
    p(z_k|x) = p(z_k) and the posterior collapses (Wang, Blei & Cunningham 2021).

    Parameters
    ----------
    data_dim, latent_dim : int
        D and K.
    hidden : int
        Width of encoder and decoder hidden layers (the paper: 512).
    likelihood : {"bernoulli", "gaussian"}
        Bernoulli with logits (binary images) or Gaussian with a learned per-pixel scale.
    layers : int
        Hidden layers of encoder and decoder.
    seed : int
        Seeds the parameter initialisation (the global RNG is left untouched).
    """

    def __init__(self, data_dim: int, latent_dim: int, hidden: int = 512, likelihood: str = "bernoulli", *,
                 layers: int = 2, seed: int = config.DEFAULT_SEED):
        super().__init__()
        self._setup(data_dim, latent_dim, hidden, likelihood, layers)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(check_seed(seed))
            self.encoder = GaussianEncoder(self.data_dim, self.latent_dim, self.hidden, self.layers)
            self.decoder = self._make_decoder()

    def _make_decoder(self) -> nn.Module:
        return MLPDecoder(self.latent_dim, self.data_dim, hidden=self.hidden, layers=self.layers)


class LIDVAE(LatentVariableModel):
    """Latent-identifiable VAE: z ~ N(0, I_K), x | z ~ EF(g2(βᵀ g1(z))) (Wang, Blei & Cunningham 2021).

    g1: R^K → R^K and g2: R^D → R^D are Brenier maps (gradients of λ-strongly convex ICNN potentials) and β is a
    full-rank K × D matrix, so the decoder is injective and every latent dimension is identifiable: the
    likelihood of x changes with every direction of z, so p(z|x) ≠ p(z).

    Parameters
    ----------
    data_dim, latent_dim : int
        D ≥ K (an injective map R^K → R^D needs D ≥ K).
    hidden, layers : int
        Width/depth of the encoder MLP and of the decoder's ICNNs.
    likelihood : {"bernoulli", "gaussian"}
    lam : float
        λ > 0, the strong-convexity constant of both Brenier maps (‖g(u) − g(v)‖ ≥ λ‖u − v‖).
    min_singular : float
        Lower bound of β's singular values.
    icnn_hidden : int, optional
        Width of the decoder's ICNNs (default ``hidden // 2``, a parameter count close to the VAE's MLP).
    activation : {"leaky_relu", "softplus", "celu"}
        Activation of the ICNNs' layers ≥ 2.
    init_ratio : float, optional
        Initial size of the Brenier maps' nonlinear parts relative to ``λu`` (a calibrated, learnable output
        scale; see :class:`~identkit.neural.decoders.InjectiveDecoder`). None: unscaled ICNNs (almost linear
        at initialisation).
    seed : int
        Seeds the parameter initialisation.
    """

    def __init__(self, data_dim: int, latent_dim: int, hidden: int = 512, likelihood: str = "bernoulli", *,
                 lam: float = 0.1, layers: int = 2, min_singular: float = 0.1, icnn_hidden: int | None = None,
                 activation: str = "leaky_relu", init_ratio: float | None = None,
                 seed: int = config.DEFAULT_SEED):
        super().__init__()
        self._setup(data_dim, latent_dim, hidden, likelihood, layers)
        if self.latent_dim > self.data_dim:
            raise ValueError(f"latent_dim ({self.latent_dim}) must be <= data_dim ({self.data_dim}): "
                             "no map R^K → R^D with D < K is injective")
        self.lam = check_positive(lam, "lam")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(check_seed(seed))
            self.encoder = GaussianEncoder(self.data_dim, self.latent_dim, self.hidden, self.layers)
            self.decoder = InjectiveDecoder(self.latent_dim, self.data_dim, hidden=self.hidden, layers=self.layers,
                                            lam=self.lam, min_singular=min_singular, icnn_hidden=icnn_hidden,
                                            activation=activation, init_ratio=init_ratio)


class _MixturePriorModel(LatentVariableModel):
    """Shared parts of GMVAE/IDGMVAE: the mixture prior with w summed out, its MC KL and p(w|x)."""

    n_clusters: int

    def cluster_means(self) -> torch.Tensor:
        """The C × K matrix of component means μ_w."""
        raise NotImplementedError

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; μ_w, diag γ) for every cluster w: shape ``z.shape[:-1] + (C,)``."""
        z = self._check_z(z)
        diff = z.unsqueeze(-2) - self.cluster_means()  # (..., C, K)
        return -0.5 * (diff.square() * torch.exp(-self.log_gamma) + self.log_gamma + _LOG_2PI).sum(-1)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = logsumexp_w log N(z; μ_w, diag γ) − log C (w summed out exactly), shape ``z.shape[:-1]``."""
        return torch.logsumexp(self.component_log_prob(z), dim=-1) - math.log(self.n_clusters)

    def kl_terms(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> dict:
        """Monte-Carlo KL(q(z|x) ‖ p(z)) ≈ (1/S) Σ_s [log q(z_s|x) − log p(z_s)], shape (B,) (no per-dim split)."""
        return {"kl": (self.log_q(z, mu, logvar) - self.log_prior(z)).mean(0)}

    def prior_cluster_probs(self, z: torch.Tensor) -> torch.Tensor:
        """Responsibilities p(w|z) = N(z; μ_w, γ) / Σ_v N(z; μ_v, γ), shape ``z.shape[:-1] + (C,)``."""
        return torch.softmax(self.component_log_prob(z), dim=-1)

    @torch.no_grad()
    def cluster_posterior(self, x: torch.Tensor, samples: int = 100,
                          generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Importance-sampling estimate of the model's exact cluster posterior p(w|x), shape (B, C).

        p(w|x) ∝ p(w) ∫ p(x|z) N(z; μ_w, γ) dz. The integral is estimated with the defensive proposal
        r(z|x) = ½ q(z|x) + ½ p(z) (``samples`` draws, half from each part):
        (1/S) Σ_s p(x|z_s) N(z_s; μ_w, γ) / r(z_s|x). Since N(z; μ_w, γ) ≤ C p(z) ≤ 2C r(z|x), every weight is
        bounded by 2C p(x|z_s), so the estimate has finite variance whatever the encoder; it is consistent as
        S → ∞ and self-normalised over w (the same draws serve every cluster).
        """
        gen = make_generator(generator)
        samples = check_int(samples, "samples", minimum=2)
        mu, logvar = self.encode(x)
        s_q = samples // 2
        z_q = self.reparametrize(mu, logvar, s_q, gen)                                  # (S/2, B, K)
        z_p = self.sample_prior((samples - s_q) * x.shape[0], gen).reshape(samples - s_q, x.shape[0], -1)
        z = torch.cat([z_q, z_p], 0)                                                     # (S, B, K)
        log_r = torch.logaddexp(self.log_q(z, mu, logvar), self.log_prior(z)) - math.log(2.0)
        logw = (self.log_likelihood(x, z) - log_r).unsqueeze(-1)                         # (S, B, 1)
        joint = torch.logsumexp(logw + self.component_log_prob(z), dim=0)                # (B, C)
        return torch.softmax(joint, dim=-1)

    def sample_prior(self, n: int, generator: torch.Generator | int | None = None,
                     cluster: int | None = None) -> torch.Tensor:
        """n draws of z from the mixture prior (from component ``cluster`` when given): (n, K)."""
        gen = make_generator(generator)
        n = check_int(n, "n")
        if cluster is None:
            w = torch.randint(self.n_clusters, (n,), generator=gen, device=gen.device)
        else:
            if not isinstance(cluster, int) or not 0 <= cluster < self.n_clusters:
                raise ValueError(f"cluster must be an integer in [0, {self.n_clusters}), got {cluster!r}")
            w = torch.full((n,), cluster, dtype=torch.long)
        eps = torch.randn(n, self.latent_dim, generator=gen, device=gen.device).to(self._device())
        return self.cluster_means()[w.to(self._device())] + torch.exp(0.5 * self.log_gamma) * eps

    def _setup_mixture(self, n_clusters) -> None:
        self.n_clusters = check_int(n_clusters, "n_clusters")
        self.log_gamma = nn.Parameter(torch.zeros(self.latent_dim))  # shared diagonal covariance γ


class GMVAE(_MixturePriorModel):
    """Gaussian-mixture VAE: w ~ Cat(1/C), z | w ~ N(μ_w, diag γ), x | z ~ EF(f(z)), MLP decoder f.

    The component means μ_w are free parameters (they may coincide, making w non-identifiable) and f is an MLP
    (z may be non-identifiable). The cluster w is summed out exactly (see the module docstring).

    Parameters
    ----------
    data_dim, latent_dim : int
    n_clusters : int
        C, the number of mixture components.
    hidden, layers : int
    likelihood : {"bernoulli", "gaussian"}
    seed : int
    """

    def __init__(self, data_dim: int, latent_dim: int, n_clusters: int = 10, hidden: int = 512,
                 likelihood: str = "bernoulli", *, layers: int = 2, seed: int = config.DEFAULT_SEED):
        super().__init__()
        self._setup(data_dim, latent_dim, hidden, likelihood, layers)
        self._setup_mixture(n_clusters)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(check_seed(seed))
            # rows of norm ≈ 1, pairwise distances ≈ √2: the same scale as IDGMVAE's β1 at initialisation
            self.means = nn.Parameter(torch.randn(self.n_clusters, self.latent_dim) / math.sqrt(self.latent_dim))
            self.encoder = GaussianEncoder(self.data_dim, self.latent_dim, self.hidden, self.layers)
            self.decoder = MLPDecoder(self.latent_dim, self.data_dim, hidden=self.hidden, layers=self.layers)

    def cluster_means(self) -> torch.Tensor:
        """The free C × K means μ_w."""
        return self.means


class IDGMVAE(_MixturePriorModel):
    """Identifiable mixture VAE: w ~ Cat(1/C), z | w ~ N(β1ᵀ e_w, diag γ), x | z ~ EF(g2(β2ᵀ g1(z))).

    β1 is a full-rank C × K matrix (:class:`~identkit.neural.linear.FullRankLinear`), so the cluster means
    β1ᵀ e_w are affinely independent and distinct (w identifiable from z); the decoder is the injective
    :class:`~identkit.neural.decoders.InjectiveDecoder` (z identifiable from x). Needs D ≥ K ≥ C.

    Parameters
    ----------
    data_dim, latent_dim : int
    n_clusters : int
        C ≤ latent_dim.
    hidden, layers : int
    likelihood : {"bernoulli", "gaussian"}
    lam : float
        λ > 0 of the decoder's Brenier maps.
    min_singular : float
        Lower bound of the singular values of β1 and of the decoder's β2.
    icnn_hidden : int, optional
        Width of the decoder's ICNNs (default ``hidden // 2``).
    activation, init_ratio
        As for :class:`LIDVAE`.
    seed : int
    """

    def __init__(self, data_dim: int, latent_dim: int, n_clusters: int = 10, hidden: int = 512,
                 likelihood: str = "bernoulli", *, lam: float = 0.1, min_singular: float = 0.1, layers: int = 2,
                 icnn_hidden: int | None = None, activation: str = "leaky_relu", init_ratio: float | None = None,
                 seed: int = config.DEFAULT_SEED):
        super().__init__()
        self._setup(data_dim, latent_dim, hidden, likelihood, layers)
        self._setup_mixture(n_clusters)
        if self.latent_dim > self.data_dim:
            raise ValueError(f"latent_dim ({self.latent_dim}) must be <= data_dim ({self.data_dim}): "
                             "no map R^K → R^D with D < K is injective")
        if self.n_clusters > self.latent_dim:
            raise ValueError(f"n_clusters ({self.n_clusters}) must be <= latent_dim ({self.latent_dim}): "
                             "β1 maps R^C → R^K and is full rank only if K >= C")
        self.lam = check_positive(lam, "lam")
        min_singular = check_positive(min_singular, "min_singular")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(check_seed(seed))
            self.beta1 = FullRankLinear(self.n_clusters, self.latent_dim, min_singular=min_singular)
            self.encoder = GaussianEncoder(self.data_dim, self.latent_dim, self.hidden, self.layers)
            self.decoder = InjectiveDecoder(self.latent_dim, self.data_dim, hidden=self.hidden, layers=self.layers,
                                            lam=self.lam, min_singular=min_singular, icnn_hidden=icnn_hidden,
                                            activation=activation, init_ratio=init_ratio)

    def cluster_means(self) -> torch.Tensor:
        """μ_w = β1ᵀ e_w: the rows of β1 (C × K, full rank)."""
        return self.beta1.weight


#: Model classes by name (lower case).
MODELS = {"vae": VAE, "lidvae": LIDVAE, "gmvae": GMVAE, "idgmvae": IDGMVAE}


def build_model(name: str, **kwargs) -> LatentVariableModel:
    """Construct the model called ``name`` (one of :data:`MODELS`) with ``kwargs``."""
    if not isinstance(name, str) or name.lower() not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name.lower()](**kwargs)
