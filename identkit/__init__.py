"""identkit: posterior collapse as latent-variable non-identifiability, and its fix (LIDVAE).

Wang, Blei & Cunningham (NeurIPS 2021). Subpackages:

* :mod:`identkit.theory` — the theorem: non-identifiable at θ ⇔ p(z|x;θ) = p(z).
* :mod:`identkit.classical` — exact inference in classical models (Beta-mixture GMM, PPCA, GMVAE).
* :mod:`identkit.approximate` — NUTS and ADVI (NumPyro, an optional extra) refereed by those exact posteriors.
* :mod:`identkit.figures` — every figure of the tutorial, by name; ``python -m identkit figures``.
* :mod:`identkit.config` — quick mode, default seed, figure folder.
"""
from . import config

__version__ = "0.1.0"
__all__ = ["config", "__version__"]
