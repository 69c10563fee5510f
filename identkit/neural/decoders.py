"""Decoders z ↦ natural parameters of p(x|z), and the exponential-family log-likelihood heads.

* :class:`MLPDecoder`: the classical (non-injective) decoder, an MLP.
* :class:`InjectiveDecoder`: Wang, Blei & Cunningham's injective decoder ``g2(g1(z) β)`` with ``g1``, ``g2``
  Brenier maps (λ-strongly monotone, hence injective) and β a :class:`FullRankLinear` (singular values ≥
  ``min_singular``). It is injective in ``z`` with the explicit bound

  .. math:: \\|\\mathrm{dec}(z) - \\mathrm{dec}(z')\\| \\ge λ_2\\, s_{\\min}\\, λ_1\\, \\|z - z'\\|.

  Since the natural parameter of an exponential family identifies the distribution, ``z ↦ p(x|z)`` is then
  injective: the latent variable is identifiable and the exact posterior cannot equal the prior (no posterior
  collapse in the sense of Wang et al.).

Parameter budget (latent K, data D, ``hidden`` h, ``layers`` L = 2): the MLP has
``Kh + h² + hD + 2h + D`` weights (K=64, D=784, h=512: 698,128). The injective decoder's ICNNs have width
``icnn_hidden`` (default ``h // 2``) so that the two budgets are comparable: each ICNN(d, w, 2) has
``2(dw + w) + w² + w + d + 1`` weights and β has ``K² + DK + K``; for K=64, D=784, h=512 (w=256) that is
99,137 + 468,497 + 54,336 = 621,970 ≈ 0.89× the MLP. Pass ``icnn_hidden=hidden`` for the paper's wider ICNNs
(≈ 2.1× the MLP).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_int, check_positive
from .icnn import BrenierMap
from .linear import FullRankLinear

__all__ = ["MLPDecoder", "InjectiveDecoder", "bernoulli_log_prob", "gaussian_log_prob"]

_LOG_2PI = math.log(2.0 * math.pi)


class MLPDecoder(nn.Module):
    """MLP ``z (…, K) → natural parameters (…, D)``: ``layers`` hidden ReLU layers of width ``hidden``.

    Parameters
    ----------
    latent_dim, data_dim : int
    hidden : int
        Width of the hidden layers.
    layers : int
        Number of hidden layers (≥ 1).
    """

    def __init__(self, latent_dim: int, data_dim: int, hidden: int = 512, layers: int = 2):
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim")
        self.data_dim = check_int(data_dim, "data_dim")
        self.hidden = check_int(hidden, "hidden")
        self.layers = check_int(layers, "layers")
        mods: list[nn.Module] = []
        width = self.latent_dim
        for _ in range(self.layers):
            mods += [nn.Linear(width, self.hidden), nn.ReLU()]
            width = self.hidden
        mods.append(nn.Linear(width, self.data_dim))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Natural parameters (logits or means) of shape ``(…, data_dim)``."""
        _check_last_dim(z, self.latent_dim, "z")
        return self.net(z)


class InjectiveDecoder(nn.Module):
    """Injective decoder ``z ↦ g2(g1(z) β)`` (Wang, Blei & Cunningham 2021, eq. 9), a drop-in for :class:`MLPDecoder`.

    ``g1 = BrenierMap(K)``, ``β = FullRankLinear(K, D)``, ``g2 = BrenierMap(D)``; every factor is injective, with
    ``‖dec(z) − dec(z')‖ ≥ λ·s_min·λ·‖z − z'‖`` (see :meth:`injectivity_bound`).

    Parameters
    ----------
    latent_dim, data_dim : int
        K and D, with ``data_dim ≥ latent_dim``.
    hidden : int
        The MLP width this decoder replaces; the ICNN width defaults to ``hidden // 2`` (comparable parameter
        count, see the module docstring).
    layers : int
        Hidden layers of each ICNN.
    lam : float
        Strong-monotonicity constant λ > 0 of both Brenier maps.
    min_singular : float
        Lower bound on the singular values of β.
    icnn_hidden : int, optional
        Override the ICNN width.
    activation : {"leaky_relu", "softplus", "celu"}
        Activation of the ICNNs' layers ≥ 2 (:data:`identkit.neural.icnn.ACTIVATIONS`).
    init_ratio : float, optional
        Size of the nonlinear parts at initialisation, ``‖e^{a}∇ψ(u)‖ / ‖λu‖`` (median over probe inputs): both
        maps get a learnable output scale (``BrenierMap(scaled=True)``), calibrated at construction on 256
        probes z ~ N(0, I) for g1 and on their images ``g1(z) β`` for g2. None: no scale, the ICNNs' own
        initialisation (whose nonlinear part is ≈ 0.05–0.3 % of ``λu``: the decoder starts almost linear).
    """

    def __init__(self, latent_dim: int, data_dim: int, hidden: int = 512, layers: int = 2, lam: float = 0.1,
                 min_singular: float = 0.1, icnn_hidden: int | None = None, activation: str = "leaky_relu",
                 init_ratio: float | None = None):
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim")
        self.data_dim = check_int(data_dim, "data_dim")
        self.hidden = check_int(hidden, "hidden")
        self.layers = check_int(layers, "layers")
        self.lam = check_positive(lam, "lam")
        if self.data_dim < self.latent_dim:
            raise ValueError(f"data_dim must be >= latent_dim for an injective decoder, got {data_dim} < {latent_dim}")
        width = max(self.hidden // 2, 1) if icnn_hidden is None else check_int(icnn_hidden, "icnn_hidden")
        self.icnn_hidden = width
        scaled = init_ratio is not None
        self.g1 = BrenierMap(self.latent_dim, width, self.layers, self.lam, activation=activation, scaled=scaled)
        self.beta = FullRankLinear(self.latent_dim, self.data_dim, min_singular=min_singular)
        self.g2 = BrenierMap(self.data_dim, width, self.layers, self.lam, activation=activation, scaled=scaled)
        if scaled:
            self.calibrate(check_positive(init_ratio, "init_ratio"))

    @torch.no_grad()
    def calibrate(self, ratio: float, probes: int = 256) -> tuple[float, float]:
        """Set g1's and g2's output scales so that each nonlinear part is ``ratio`` times ``λu`` at its inputs.

        Probes z ~ N(0, I_K) (``probes`` rows, from torch's global generator) for g1, ``g1(z) β`` for g2; see
        :meth:`identkit.neural.icnn.BrenierMap.calibrate`. Returns the two scales.
        """
        z = torch.randn(check_int(probes, "probes"), self.latent_dim, dtype=self.beta.s_raw.dtype)
        s1 = self.g1.calibrate(z, ratio)
        s2 = self.g2.calibrate(self.beta(self.g1(z)), ratio)
        return s1, s2

    def nonlinearity_ratios(self, z: torch.Tensor) -> tuple[float, float]:
        """``(‖∇ψ1‖/‖λ1 u‖ at u = z, ‖∇ψ2‖/‖λ2 u‖ at u = g1(z) β)``, medians over the rows of ``z`` (K columns)."""
        with torch.no_grad():
            z = z.reshape(-1, self.latent_dim)
            return self.g1.nonlinearity_ratio(z), self.g2.nonlinearity_ratio(self.beta(self.g1(z)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Natural parameters ``g2(g1(z) β)`` of shape ``(…, data_dim)``."""
        _check_last_dim(z, self.latent_dim, "z")
        lead = z.shape[:-1]
        h = self.g2(self.beta(self.g1(z.reshape(-1, self.latent_dim))))
        return h.reshape(*lead, self.data_dim)

    def injectivity_bound(self) -> float:
        """The constant ``c = λ1 · min(s) · λ2`` with ``‖dec(z) − dec(z')‖ ≥ c‖z − z'‖`` for all z, z'."""
        with torch.no_grad():
            return float(self.g1.lam * self.beta.singular_values().min() * self.g2.lam)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``Σ_d log Bernoulli(x_d; sigmoid(logits_d)) = Σ_d [x_d ℓ_d − softplus(ℓ_d)]``, broadcasting leading dims.

    Stable for any logits (the same value as ``−BCEWithLogits``); ``x`` may be fractional in [0, 1] (then it is
    the cross-entropy). Returns shape ``broadcast(x, logits).shape[:-1]``.
    """
    _check_same_last(x, logits, "logits")
    return (x * logits - F.softplus(logits)).sum(-1)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_sigma) -> torch.Tensor:
    """``Σ_d log N(x_d; mean_d, σ_d²)`` with ``σ = exp(log_sigma)`` (scalar or broadcastable), summed over the last dim.

    ``log N = −½((x − μ)/σ)² − log σ − ½ log 2π``.
    """
    _check_same_last(x, mean, "mean")
    log_sigma = torch.as_tensor(log_sigma, dtype=mean.dtype, device=mean.device)
    zsq = ((x - mean) * torch.exp(-log_sigma)).square()
    return (-0.5 * zsq - log_sigma - 0.5 * _LOG_2PI).sum(-1)


def _check_last_dim(t: torch.Tensor, dim: int, name: str) -> None:
    if t.ndim == 0 or t.shape[-1] != dim:
        raise ValueError(f"{name} must have last dimension {dim}, got shape {tuple(t.shape)}")


def _check_same_last(x: torch.Tensor, params: torch.Tensor, name: str) -> None:
    if x.ndim == 0 or params.ndim == 0 or x.shape[-1] != params.shape[-1]:
        raise ValueError(f"x and {name} must share the last (data) dimension, got {tuple(x.shape)} and "
                         f"{tuple(params.shape)}")
