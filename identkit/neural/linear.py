"""A linear map R^in → R^out (in ≤ out) that has full column rank for every value of its parameters.

``y = x β`` with ``β = U diag(s) Vᵀ`` of shape ``(in, out)``:

* ``U`` (in × in) orthogonal and ``V`` (out × in) with orthonormal columns, each the Q factor of the QR
  decomposition of an unconstrained raw matrix (LAPACK's Householder QR, with the column signs fixed so that
  ``diag(R) ≥ 0``, which makes the map smooth). Householder QR returns orthonormal Q for *any* finite input,
  even a rank-deficient one, so orthogonality is not a constraint the optimiser could break;
* ``s = min_singular + softplus(s_raw)`` ≥ ``min_singular`` > 0.

Hence the singular values of β are exactly ``s`` and ``‖x β − x' β‖ ≥ min_singular · ‖x − x'‖``. The reference
implementations either project onto "full rank" with a no-op (TF) or never train β (PyTorch); here β is trained,
registered and saved like any weight.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_int, check_positive

__all__ = ["FullRankLinear", "orthonormal_columns"]


def orthonormal_columns(raw: torch.Tensor) -> torch.Tensor:
    """Matrix with orthonormal columns from an unconstrained ``(n, k)`` matrix (n ≥ k): ``Q · diag(sign diag R)``.

    ``raw = QR`` (reduced QR, ``torch.linalg.qr``); the sign fix (``+1`` where ``R_jj = 0``) picks the
    representative with ``diag(R) ≥ 0``. Differentiable in ``raw`` (where ``raw`` has full rank).
    """
    q, r = torch.linalg.qr(raw)
    sign = torch.where(r.diagonal() < 0, -1.0, 1.0).to(q.dtype)
    return q * sign


class FullRankLinear(nn.Module):
    """``y = x β (+ b)``, β = U diag(s) Vᵀ of shape (in, out), full column-rank by construction.

    The current β is the property :attr:`weight`, recomputed from the parameters.

    Parameters
    ----------
    in_features, out_features : int
        ``out_features ≥ in_features`` (an injective linear map cannot lower the dimension).
    min_singular : float
        Lower bound (> 0) on every singular value of β.
    bias : bool
        Add a learnable bias ``b`` (does not affect injectivity). Default False (the paper's ``βᵀ g1(z)``).
    """

    def __init__(self, in_features: int, out_features: int, min_singular: float = 0.1, bias: bool = False):
        super().__init__()
        self.in_features = check_int(in_features, "in_features")
        self.out_features = check_int(out_features, "out_features")
        if self.out_features < self.in_features:
            raise ValueError(
                f"out_features must be >= in_features for a full-rank (injective) map, got "
                f"in_features={in_features}, out_features={out_features}"
            )
        self.min_singular = check_positive(min_singular, "min_singular")
        self.u_raw = nn.Parameter(torch.empty(self.in_features, self.in_features))
        self.v_raw = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.s_raw = nn.Parameter(torch.empty(self.in_features))
        self.register_parameter("bias", nn.Parameter(torch.zeros(self.out_features)) if bias else None)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Random orthonormal factors (raw entries ~ N(0, 1/n), Haar-distributed Q) and singular values ≈ 1 (``s_raw = softplus⁻¹(1 − min)``)."""
        self.u_raw.normal_(0.0, 1.0 / math.sqrt(self.in_features))
        self.v_raw.normal_(0.0, 1.0 / math.sqrt(self.out_features))
        target = max(1.0 - self.min_singular, 0.1)
        self.s_raw.fill_(math.log(math.expm1(target)))
        if self.bias is not None:
            self.bias.zero_()

    def singular_values(self) -> torch.Tensor:
        """``s = min_singular + softplus(s_raw)``, shape (in_features,) (not sorted): the singular values of β."""
        return self.min_singular + F.softplus(self.s_raw)

    @property
    def weight(self) -> torch.Tensor:
        """β = U diag(s) Vᵀ, shape (in_features, out_features), recomputed from the parameters at every call."""
        u = orthonormal_columns(self.u_raw)
        v = orthonormal_columns(self.v_raw)
        return (u * self.singular_values()) @ v.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x β (+ b)`` for ``x`` of shape ``(…, in_features)``."""
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have last dimension {self.in_features}, got shape {tuple(x.shape)}")
        y = x @ self.weight
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"min_singular={self.min_singular:g}, bias={self.bias is not None}")
