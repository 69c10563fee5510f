"""The injective fix in torch: ICNN Brenier maps, full-rank linear maps, injective decoders, VAE models.

CPU is enough; CUDA is used when present (see :func:`identkit.neural.default_device`).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ICNN": "icnn",
    "BrenierMap": "icnn",
    "monotonicity_margin": "icnn",
    "FullRankLinear": "linear",
    "MLPDecoder": "decoders",
    "InjectiveDecoder": "decoders",
    "bernoulli_log_prob": "decoders",
    "gaussian_log_prob": "decoders",
    # models and training (vae developer)
    "VAE": "models",
    "LIDVAE": "models",
    "GMVAE": "models",
    "IDGMVAE": "models",
    # text (sequential) models
    "LSTMEncoder": "sequence",
    "LSTMVAE": "sequence",
    "IDSVAE": "sequence",
    "fit": "train",
    "Method": "train",
    "default_device": "train",
    "save_checkpoint": "train",
    "load_checkpoint": "train",
    "cached_fit": "train",
    "reproducible": "train",
    "build_model": "models",
    # exact maximum likelihood for the Gaussian-mixture VAE of lesson 05
    "GMVAEMLP": "exact_gmvae",
    "fit_exact_gmvae": "exact_gmvae",
    "gh_log_marginal": "exact_gmvae",
    "adapted_nodes": "exact_gmvae",
    "adapted_cluster_log_likelihood": "exact_gmvae",
    "collapse_experiment": "exact_gmvae",
    # baselines (table developer)
    "BetaVAE": "baselines",
    "FreeBits": "baselines",
    "KLThreshold": "baselines",
    "LaggingEncoder": "baselines",
    "SemiAmortized": "baselines",
    "RefinedPosterior": "baselines",
    "linear_warmup": "baselines",
    "VampPrior": "baselines",
    "encoder_parameters": "baselines",
    "gaussian_elbo": "baselines",
}
__all__ = list(_EXPORTS)


def __getattr__(name):  # PEP 562: import submodules (and torch) on first use
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
