"""Argument checks shared by the package: each raises ``ValueError`` naming the argument; nothing is clipped."""
from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "as_finite_array",
    "check_positive",
    "check_unit_interval",
    "check_int",
    "check_psd",
    "check_seed",
]


def as_finite_array(x, name: str, *, ndim: int | tuple[int, ...] | None = None, dtype=float) -> np.ndarray:
    """Return ``x`` as a float array, raising ``ValueError`` if it is empty-shaped wrongly or not finite."""
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like, got {type(x).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_positive(value, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_unit_interval(x, name: str) -> np.ndarray:
    """Return ``x`` as a float array if every entry lies in [0, 1], else raise ``ValueError``."""
    arr = as_finite_array(x, name)
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{arr.min():g}, {arr.max():g}]")
    return arr


def check_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer ≥ ``minimum``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_psd(cov, name: str, *, strict: bool = True, tol: float = 1e-12) -> np.ndarray:
    """Return a symmetric (…, d, d) covariance; raise ``ValueError`` if it is not (positive) semidefinite."""
    c = as_finite_array(cov, name)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (or a stack of them), got shape {c.shape}")
    if not np.allclose(c, np.swapaxes(c, -1, -2), atol=1e-10, rtol=1e-8):
        raise ValueError(f"{name} must be symmetric")
    eig = np.linalg.eigvalsh(c)
    scale = max(1.0, float(np.max(np.abs(eig))))
    bad = eig <= tol * scale if strict else eig < -tol * scale
    if np.any(bad):
        kind = "positive definite" if strict else "positive semidefinite"
        raise ValueError(f"{name} must be {kind}; smallest eigenvalue {eig.min():.3g}")
    return c


def check_seed(seed, name: str = "seed") -> int:
    """Seeds are non-negative integers (every stochastic step in identkit takes one)."""
    return check_int(seed, name, minimum=0)


def check_token_ids(t, name: str):
    """``t`` unchanged if it is a tensor of integer token ids (a categorical model's data); else a ValueError
    naming ``name`` (floating, complex and boolean dtypes are refused: text enters as ``TextData.ids``)."""
    if t.is_floating_point() or t.is_complex() or str(t.dtype) == "torch.bool":
        raise ValueError(f"{name} must hold integer token ids (TextData.ids) for a categorical model, got {t.dtype}")
    return t
