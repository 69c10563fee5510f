"""Input-convex neural networks (ICNN) and the Brenier maps built from them.

An ICNN (Amos, Xu & Kolter 2017) is a network ψ: R^d → R that is convex in its input by construction:

.. math::

    z_1 = h_0(A_0 u + b_0), \\qquad
    z_{l+1} = h_l(W_l z_l + A_l u + b_l), \\qquad
    ψ(u) = w_L^\\top z_L + a_L^\\top u + c,

with every ``W_l`` (and ``w_L``) entrywise non-negative, ``h_0`` convex (the squared leaky ReLU) and every later
``h_l`` convex and non-decreasing (leaky ReLU, slope 0.2). A non-negative combination of convex functions is
convex and a convex non-decreasing function of a convex function is convex, so ψ is convex for *every* value of
the parameters.

Non-negativity is enforced by a softplus reparametrisation, ``W = softplus(W_raw) / fan_in``, not by clamping:
the reference implementation clamps at 0.01 from an initialisation below it, so its weights sit at the clamp and
never receive gradient. Here ``W_raw`` is unconstrained, ``∂W/∂W_raw = sigmoid(W_raw) / fan_in > 0`` everywhere,
and ``W_raw`` is initialised around ``softplus⁻¹(1)`` so that each unit of layer ``l+1`` starts as roughly the
*average* of the (non-negative) units of layer ``l``: deep ICNNs then keep their output scale at initialisation
instead of growing by a factor ``fan_in`` per layer.

A Brenier map is the gradient of a convex potential. :class:`BrenierMap` adds ``λu`` (λ > 0), i.e. it is the
gradient of the *strictly* (λ-strongly) convex potential ``ψ(u) + λ‖u‖²/2``:

.. math::

    g(u) = ∇ψ(u) + λu, \\qquad (g(u) - g(v))^\\top (u - v) \\ge λ \\|u - v\\|^2,

so ``‖g(u) − g(v)‖ ≥ λ‖u − v‖`` (Cauchy–Schwarz): ``g`` is injective with inverse Lipschitz constant ``1/λ``
(Kinoshita et al. 2023 use λ as the knob). Its Jacobian is the Hessian of ψ plus ``λI``: symmetric with every
eigenvalue ≥ λ. Without λ a convex potential may be flat along a direction or in a region, and its gradient map
then sends a whole line or region to a single point (see ``identkit.figures.brenier``).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_int, check_positive

__all__ = ["ACTIVATIONS", "ICNN", "BrenierMap", "monotonicity_margin"]

_SLOPE = 0.2  # leaky-ReLU negative slope (as in the reference code)
_SOFTPLUS_INV_ONE = math.log(math.expm1(1.0))  # softplus(x) = 1  ⇔  x ≈ 0.5413

#: Activations of ICNN layers ≥ 2 (each convex and non-decreasing). The leaky ReLU (the reference's) has a
#: kink, so the gradient map ∇ψ jumps across it; softplus (C^∞) and CELU (C¹) give a continuous Brenier map.
ACTIVATIONS = {
    "leaky_relu": lambda t: F.leaky_relu(t, _SLOPE),
    "softplus": F.softplus,
    "celu": F.celu,
}


def _check_activation(name) -> str:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name


class ICNN(nn.Module):
    """Input-convex network ψ: R^dim → R (Amos et al. 2017), convex in ``u`` for every parameter value.

    .. math::

        z_1 = \\mathrm{lrelu}(A_0 u + b_0)^2, \\quad
        z_{l+1} = \\mathrm{lrelu}(W_l z_l + A_l u + b_l)\\ (l = 1..L-1), \\quad
        ψ(u) = w_L^\\top z_L + a_L^\\top u + c,

    where ``W_l = softplus(W_raw_l) / hidden`` and ``w_L = softplus(w_raw_L) / hidden`` are entrywise > 0.

    Parameters
    ----------
    dim : int
        Input dimension ``d``.
    hidden : int
        Width of every hidden layer.
    layers : int
        Number of hidden layers ``L`` (≥ 1). Each hidden layer has a pass-through ``A_l u`` from the input.
    activation : {"leaky_relu", "softplus", "celu"}
        The convex non-decreasing ``h_l`` of layers ≥ 2 (:data:`ACTIVATIONS`); the first layer is always the
        squared leaky ReLU, whose derivative is continuous.

    Notes
    -----
    Parameter count: ``L·(dim·hidden + hidden) + (L−1)·hidden² + hidden + dim + 1``. All weights are
    registered (``nn.ModuleList``/``nn.Parameter``) so ``state_dict`` saves them.
    """

    def __init__(self, dim: int, hidden: int = 64, layers: int = 2, activation: str = "leaky_relu"):
        super().__init__()
        self.activation = _check_activation(activation)
        self.dim = check_int(dim, "dim")
        self.hidden = check_int(hidden, "hidden")
        self.layers = check_int(layers, "layers")
        # Pass-through affine maps of the input, one per hidden layer (unconstrained sign).
        self.A = nn.ModuleList([nn.Linear(self.dim, self.hidden) for _ in range(self.layers)])
        # Raw (unconstrained) hidden-to-hidden weights; the used weight is softplus(raw) / hidden ≥ 0.
        self.W_raw = nn.ParameterList(
            [nn.Parameter(torch.empty(self.hidden, self.hidden)) for _ in range(self.layers - 1)]
        )
        self.w_out_raw = nn.Parameter(torch.empty(self.hidden))
        self.a_out = nn.Linear(self.dim, 1)  # linear term a_Lᵀu + c (its gradient is a constant shift)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialise ``W_raw ~ N(softplus⁻¹(1), 0.3²)`` (so ``W ≈ 1/hidden``), ``A`` as ``nn.Linear``, ``a_L = 0``."""
        for lin in self.A:
            lin.reset_parameters()
        for raw in self.W_raw:
            raw.normal_(_SOFTPLUS_INV_ONE, 0.3)
        self.w_out_raw.normal_(_SOFTPLUS_INV_ONE, 0.3)
        self.a_out.weight.zero_()
        self.a_out.bias.zero_()

    def positive_weights(self) -> list[torch.Tensor]:
        """The non-negative weights actually used: ``[W_1, …, W_{L-1}, w_L]`` (each ``softplus(raw)/hidden``)."""
        return [F.softplus(raw) / self.hidden for raw in self.W_raw] + [F.softplus(self.w_out_raw) / self.hidden]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Return ψ(u) of shape ``(B,)`` for ``u`` of shape ``(B, dim)``."""
        if u.shape[-1] != self.dim:
            raise ValueError(f"u must have last dimension {self.dim}, got shape {tuple(u.shape)}")
        act = ACTIVATIONS[self.activation]
        z = F.leaky_relu(self.A[0](u), _SLOPE).square()  # convex (not monotone): applied to an affine map only
        for raw, lin in zip(self.W_raw, self.A[1:]):
            w = F.softplus(raw) / self.hidden
            z = act(F.linear(z, w) + lin(u))  # convex, non-decreasing ∘ (W ≥ 0)·convex
        w_out = F.softplus(self.w_out_raw) / self.hidden
        return z @ w_out + self.a_out(u).squeeze(-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, layers={self.layers}, activation={self.activation!r}"


class BrenierMap(nn.Module):
    """Strongly monotone map ``g(u) = ∇ψ(u) + λu`` with ψ an :class:`ICNN`: the gradient of a strictly convex potential.

    ``g`` satisfies ``(g(u) − g(v))ᵀ(u − v) ≥ λ‖u − v‖²`` for all ``u, v``, hence ``‖g(u) − g(v)‖ ≥ λ‖u − v‖``:
    it is injective, with Jacobian ``∇²ψ(u) + λI`` symmetric and eigenvalues ≥ λ.

    Parameters
    ----------
    dim : int
        Dimension of input and output.
    hidden, layers : int
        Width and depth of the potential's :class:`ICNN`.
    lam : float
        Strong-convexity constant λ > 0 (an inverse-Lipschitz bound of ``g``).
    activation : str
        Activation of the ICNN's layers ≥ 2 (see :class:`ICNN`).
    scaled : bool
        Give the potential a learnable output scale, ``g(u) = e^{a} ∇ψ(u) + λu`` with a scalar ``a``
        (``log_scale``). ``e^{a} ψ`` is again an ICNN (its output weights times ``e^{a} > 0``), so this is a
        reparametrisation of the same family that lets :meth:`calibrate` set the nonlinear part's initial size
        and lets the optimiser move it in one coordinate. False (default): ``a`` is absent (``e^{a} = 1``).

    Notes
    -----
    At the ICNN's own initialisation the nonlinear part is tiny next to ``λu`` (about 0.3 % of it for
    ``dim`` 64, width 256, λ = 3, and 0.05 % for ``dim`` 784): an unscaled map starts as the linear ``λu``.
    :meth:`calibrate` fixes that. The gradient is one ``torch.autograd.grad(ψ(u).sum(), u, create_graph=True)`` call (rows of ψ depend on
    their own row of ``u`` only, so the gradient of the sum is the per-row gradient). The graph is kept when
    grad mode is on, so losses of ``g(u)`` back-propagate to the ICNN weights (a gradient of a gradient). Under
    ``torch.no_grad()`` grad mode is switched on locally and the result is returned detached. Leading
    dimensions of ``u`` are flattened and restored.
    """

    def __init__(self, dim: int, hidden: int = 64, layers: int = 2, lam: float = 0.1, *,
                 activation: str = "leaky_relu", scaled: bool = False):
        super().__init__()
        self.lam = check_positive(lam, "lam")
        self.potential = ICNN(dim, hidden, layers, activation)
        self.dim = self.potential.dim
        self.log_scale = nn.Parameter(torch.zeros(())) if scaled else None

    def scale(self) -> torch.Tensor | float:
        """The output scale ``e^{a}`` of the potential (1.0 when the map is not ``scaled``)."""
        return 1.0 if self.log_scale is None else torch.exp(self.log_scale)

    def _scaled_potential(self, u: torch.Tensor) -> torch.Tensor:
        return self.potential(u) if self.log_scale is None else torch.exp(self.log_scale) * self.potential(u)

    def psi(self, u: torch.Tensor) -> torch.Tensor:
        """The strictly convex potential ``e^{a} ψ(u) + λ‖u‖²/2`` whose gradient is ``g``, shape ``(B,)``."""
        return self._scaled_potential(u) + 0.5 * self.lam * u.square().sum(-1)

    def nonlinearity_ratio(self, u: torch.Tensor) -> float:
        """Median over the rows of ``u`` of ``‖e^{a} ∇ψ(u)‖ / ‖λu‖``: the size of the nonlinear part."""
        u = _as_tensor(u, "u").reshape(-1, self.dim)
        with torch.no_grad():
            nonlinear = self(u) - self.lam * u
        return float((nonlinear.norm(dim=-1) / (self.lam * u.norm(dim=-1)).clamp_min(1e-30)).median())

    @torch.no_grad()
    def calibrate(self, u: torch.Tensor, ratio: float) -> float:
        """Set the output scale so that :meth:`nonlinearity_ratio` on the probe rows ``u`` equals ``ratio``.

        ``∇(e^{a}ψ) = e^{a}∇ψ`` is linear in ``e^{a}``, so one evaluation fixes it exactly:
        ``a ← a + log(ratio / current ratio)``. Needs ``scaled=True``. Returns the new scale ``e^{a}``.
        """
        if self.log_scale is None:
            raise ValueError("calibrate: this BrenierMap has no output scale; build it with scaled=True")
        ratio = check_positive(ratio, "ratio")
        current = self.nonlinearity_ratio(u)
        if not current > 0:
            raise ValueError("calibrate: ∇ψ vanishes on the probe rows u; use probes where the ICNN is not flat")
        self.log_scale += math.log(ratio / current)
        return float(torch.exp(self.log_scale))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Return ``g(u) = ∇ψ(u) + λu`` with the shape of ``u`` (``(…, dim)``)."""
        if u.ndim == 0 or u.shape[-1] != self.dim:
            raise ValueError(f"u must have last dimension {self.dim}, got shape {tuple(u.shape)}")
        lead = u.shape[:-1]
        flat = u.reshape(-1, self.dim)
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            # A leaf to differentiate with respect to, unless u already carries a graph we must extend.
            uu = flat if (keep_graph and flat.requires_grad) else flat.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._scaled_potential(uu).sum(), uu, create_graph=keep_graph)
        out = grad + self.lam * flat
        if not keep_graph:
            out = out.detach()
        return out.reshape(*lead, self.dim)

    def extra_repr(self) -> str:
        return f"lam={self.lam:g}, scaled={self.log_scale is not None}"


def monotonicity_margin(g, u, v) -> float:
    """Certificate of strong monotonicity on given pairs: ``min_i (g(u_i) − g(v_i))ᵀ(u_i − v_i) / ‖u_i − v_i‖²``.

    For a :class:`BrenierMap` this is ≥ λ for every pair (up to floating-point rounding); a value ``m > 0``
    certifies ``‖g(u_i) − g(v_i)‖ ≥ m‖u_i − v_i‖`` on these pairs.

    Parameters
    ----------
    g : callable
        Map from ``(B, d)`` tensors to ``(B, d)`` tensors.
    u, v : array-like or torch.Tensor, shape (B, d)
        Pairs of points, with ``u_i ≠ v_i``.

    Returns
    -------
    float
    """
    u = _as_tensor(u, "u")
    v = _as_tensor(v, "v")
    if u.ndim != 2 or u.shape != v.shape:
        raise ValueError(f"u and v must be (B, d) with equal shapes, got {tuple(u.shape)} and {tuple(v.shape)}")
    diff = u - v
    sq = diff.square().sum(-1)
    if torch.any(sq == 0):
        raise ValueError("u and v must differ in every row (‖u_i − v_i‖ = 0 for some i)")
    with torch.no_grad():
        gu, gv = g(u), g(v)
    ratio = ((gu - gv) * diff).sum(-1) / sq
    return float(ratio.min())


def _as_tensor(x, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.get_default_dtype())
    if not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    if not torch.all(torch.isfinite(t)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t.detach()
