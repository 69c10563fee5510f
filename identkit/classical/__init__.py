"""Classical latent-variable models with **exact** posteriors (numpy/scipy only).

* :class:`GridPosterior` — a normalised density on a 1-D grid (quadrature in log space).
* :class:`BetaMixtureGMM` — two-component Gaussian mixture with a Beta prior on the mixing weight α; its
  posterior on a grid (for plots) or, to a stated tolerance, by a Gauss rule fitted to it
  (:class:`QuadraturePosterior`).
* :class:`PPCA` — probabilistic PCA with its closed-form Gaussian posterior.
* :class:`GMVAE` — Gaussian-mixture VAE with the cluster posterior p(k|x) by adaptive Gauss–Hermite quadrature.
* :class:`QuadratureError` — raised when an adaptive rule cannot meet its tolerance (names the knob to turn).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "GridPosterior": "grid",
    "BetaMixtureGMM": "gmm",
    "GMMDataset": "gmm",
    "MLEFit": "gmm",
    "paper_datasets": "gmm",
    "quad_posterior_summary": "gmm",
    "QuadraturePosterior": "gmm",
    "PPCA": "ppca",
    "reference_W": "ppca",
    "nonidentifiable_directions": "ppca",
    "GMVAE": "gmvae",
    "AffineDecoder": "gmvae",
    "affine_cluster_posterior": "gmvae",
    "AdaptiveRule": "gmvae",
    "adaptive_rule": "gmvae",
    "QuadratureError": "grid",
    "DEFAULT_TOL": "gmvae",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # PEP 562: import submodules on first use
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
