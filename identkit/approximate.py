r"""What approximate inference sees: NUTS and ADVI (NumPyro) refereed by identkit's exact posteriors.

The reference code draws its posterior figures with HMC and with mean-field and full-rank ADVI. identkit has the
exact posteriors (:mod:`identkit.classical`), so it can check them:

* **NUTS** (Hoffman & Gelman 2014, NumPyro's implementation) with several chains, summarised by the split
  :math:`\hat R` and the effective sample size (ESS) of NumPyro's diagnostics (Gelman et al., BDA3 §11.4-11.5).
* **ADVI** (Kucukelbir et al. 2017): a Gaussian q on the unconstrained space (logit α for a weight), fitted by
  stochastic maximisation of the ELBO with Adam; *mean-field* (``AutoNormal``: a diagonal covariance) or
  *full-rank* (``AutoMultivariateNormal``: a Cholesky factor).

Two models:

* the Beta-mixture GMM of lesson 02: α ~ Beta(a, b), x_i | α ~ α N(μ1, σ1²) + (1 − α) N(μ2, σ2²), with θ known
  (:func:`gmm_model`) or with free means μ ~ N(0, s²) (``free_means=True``, where the two labellings of the
  components give two posterior modes);
* probabilistic PCA of lesson 03 with W, σ known: z_i ~ N(0, I_K), x_i | z_i ~ N(W z_i, σ² I) (:func:`ppca_model`),
  whose exact posterior is Gaussian with covariance Σ = σ² (WᵀW + σ² I)⁻¹. For a Gaussian target the best
  mean-field q is known in closed form (Bishop 2006, §10.1.2): the exact means and variances 1 / Λ_kk, Λ = Σ⁻¹
  (:func:`meanfield_gaussian`), an independent reference for the fitted ADVI.

NumPyro (and JAX) are an optional extra: ``pip install -e '.[approx]'``. JAX runs in float64 here
(``numpyro.enable_x64``) and on the CPU.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import config
from ._checks import as_finite_array, check_int, check_positive, check_seed

__all__ = ["Draws", "require_numpyro", "gmm_model", "ppca_model", "nuts", "advi", "meanfield_gaussian",
           "GUIDES"]

#: ADVI families: name → NumPyro autoguide class name.
GUIDES = {"mean-field": "AutoNormal", "full-rank": "AutoMultivariateNormal"}


def require_numpyro():
    """Import NumPyro (float64, CPU) or raise an ``ImportError`` that says how to install it."""
    try:
        import numpyro
    except ImportError as exc:  # an optional extra
        raise ImportError("identkit.approximate needs NumPyro and JAX: pip install -e '.[approx]' "
                          "(or pip install numpyro)") from exc
    numpyro.set_platform("cpu")
    numpyro.enable_x64()
    return numpyro


# ------------------------------------------------------------------------------------------------ models
def gmm_model(x, mu=(-1.0, 1.0), sigma=(1.0, 1.0), prior=(5.0, 5.0), free_means: bool = False,
              mean_scale: float = 10.0):
    r"""NumPyro model of the Beta-mixture GMM: α ~ Beta(a, b), x_i | α ~ α N(μ1, σ1²) + (1 − α) N(μ2, σ2²).

    The component labels are summed out: log p(x | α, μ) = Σ_i logsumexp(log α + log N(x_i; μ1, σ1²),
    log(1 − α) + log N(x_i; μ2, σ2²)), added with ``numpyro.factor``. With ``free_means`` the means are latent
    too, μ_k ~ N(0, ``mean_scale``²) i.i.d. (site ``"mu"``); otherwise they are the fixed ``mu``.
    """
    numpyro = require_numpyro()
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from jax.scipy.special import logsumexp

    alpha = numpyro.sample("alpha", dist.Beta(*prior))
    if free_means:
        mu = numpyro.sample("mu", dist.Normal(0.0, mean_scale).expand([2]).to_event(1))
    else:
        mu = jnp.asarray(mu)
    sd = jnp.asarray(sigma)
    comp = dist.Normal(mu, sd).log_prob(jnp.asarray(x)[:, None])  # (n, 2)
    logw = jnp.stack([jnp.log(alpha), jnp.log1p(-alpha)])
    numpyro.factor("loglik", logsumexp(comp + logw, axis=1).sum())


def ppca_model(x, W, sigma):
    r"""NumPyro model of PPCA with W (D × K) and σ known: z_i ~ N(0, I_K), x_i | z_i ~ N(W z_i, σ² I_D).

    One latent site ``"z"`` of shape (n, K): a local latent per data point, as in lesson 03.
    """
    numpyro = require_numpyro()
    import jax.numpy as jnp
    import numpyro.distributions as dist

    W = jnp.asarray(W)
    x = jnp.asarray(x)
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([x.shape[0], W.shape[1]]).to_event(2))
    numpyro.sample("x", dist.Normal(z @ W.T, sigma).to_event(2), obs=x)


# ------------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Draws:
    """Posterior draws of one inference method, with their cost and (for MCMC) convergence diagnostics.

    Attributes
    ----------
    method : str
        ``"NUTS"``, ``"ADVI (mean-field)"`` or ``"ADVI (full-rank)"``.
    samples : dict of str → ndarray
        Site → draws of shape (chains, draws) + the site's shape (one "chain" for ADVI).
    seconds : float
        Wall time of the inference (JAX compilation included: it is part of what a user waits for).
    r_hat, ess : dict of str → ndarray
        Split R̂ and effective sample size (over all chains) per site, NumPyro's estimators; empty for ADVI,
        whose draws are independent by construction.
    info : dict
        Method details (chains, warm-up, steps, final ELBO, divergences, …).
    """

    method: str
    samples: dict
    seconds: float
    r_hat: dict = field(default_factory=dict)
    ess: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def _site(self, name: str) -> np.ndarray:
        if name not in self.samples:
            raise ValueError(f"name: no site {name!r}; sites: {', '.join(self.samples)}")
        return self.samples[name]

    def flat(self, name: str) -> np.ndarray:
        """All draws of site ``name``, chains concatenated: shape (chains · draws) + the site's shape."""
        s = self._site(name)
        return s.reshape((-1,) + s.shape[2:])

    def mean(self, name: str) -> np.ndarray:
        """Posterior mean of site ``name`` over all draws."""
        return self.flat(name).mean(axis=0)

    def sd(self, name: str) -> np.ndarray:
        """Posterior standard deviation of site ``name`` over all draws."""
        return self.flat(name).std(axis=0, ddof=1)

    def chain_means(self, name: str) -> np.ndarray:
        """Mean of site ``name`` per chain: shape (chains,) + the site's shape (chains that disagree did not mix)."""
        return self._site(name).mean(axis=1)


# ------------------------------------------------------------------------------------------------ inference
def nuts(model, *args, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = config.DEFAULT_SEED,
         init_params: dict | None = None, progress: bool = False, **kwargs) -> Draws:
    """NUTS on ``model(*args, **kwargs)``: ``chains`` chains of ``warmup`` adaptation + ``draws`` kept iterations.

    Chains are vectorised (one JAX program advances all of them); each starts from NumPyro's default
    ``init_to_uniform`` point (uniform in (−2, 2) on the unconstrained space) drawn from ``seed``, unless
    ``init_params`` gives unconstrained starting values with a leading chain axis. Returns :class:`Draws` with
    split R̂ and ESS per site and the number of divergent transitions in ``info``.
    """
    require_numpyro()
    import jax
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS

    chains = check_int(chains, "chains")
    warmup, draws = check_int(warmup, "warmup"), check_int(draws, "draws")
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=draws, num_chains=chains, chain_method="vectorized",
                progress_bar=progress)
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(check_seed(seed)), *args, init_params=init_params,
             extra_fields=("diverging",), **kwargs)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    seconds = time.perf_counter() - t0
    r_hat = {k: np.asarray(split_gelman_rubin(v)) if chains > 1 else np.full(v.shape[2:], np.nan)
             for k, v in samples.items()}
    ess = {k: np.asarray(effective_sample_size(v)) for k, v in samples.items()}
    diverging = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return Draws("NUTS", samples, seconds, r_hat, ess,
                 dict(chains=chains, warmup=warmup, draws=draws, divergences=diverging, seed=seed))


def advi(model, *args, guide: str = "mean-field", steps: int = 5000, lr: float = 0.01, lr_final: float = 0.01,
         draws: int = 4000, elbo_particles: int = 1, seed: int = config.DEFAULT_SEED, progress: bool = False,
         **kwargs) -> Draws:
    r"""ADVI on ``model(*args, **kwargs)``: a Gaussian q on the unconstrained space, ELBO maximised by Adam.

    ``guide`` = ``"mean-field"`` (NumPyro ``AutoNormal``, diagonal covariance) or ``"full-rank"``
    (``AutoMultivariateNormal``). ``steps`` Adam steps on the reparameterised ELBO with ``elbo_particles`` draws
    per step (``Trace_ELBO``), of size η_t = ``lr`` · ``lr_final`` ^ (t / steps): a decreasing sequence, as
    stochastic optimisation needs to settle (Kucukelbir et al. also decrease theirs; a constant step leaves q's
    scales wandering by tens of per cent); then ``draws`` independent draws from the fitted q,
    mapped back to the constrained space. ``info`` holds the ELBO trace (its mean over the last 10 %, in nats)
    and the number of steps.
    """
    require_numpyro()
    import jax
    from numpyro.infer import SVI, Trace_ELBO, autoguide
    from numpyro.optim import Adam

    if guide not in GUIDES:
        raise ValueError(f"guide: unknown ADVI family {guide!r}; use one of {', '.join(GUIDES)}")
    steps, draws = check_int(steps, "steps"), check_int(draws, "draws")
    lr, lr_final = check_positive(lr, "lr"), check_positive(lr_final, "lr_final")
    q = getattr(autoguide, GUIDES[guide])(model)
    svi = SVI(model, q, Adam(lambda t: lr * lr_final ** (t / steps)), Trace_ELBO(num_particles=check_int(elbo_particles, "elbo_particles")))
    key_fit, key_draw = jax.random.split(jax.random.PRNGKey(check_seed(seed)))
    t0 = time.perf_counter()
    result = svi.run(key_fit, steps, *args, progress_bar=progress, **kwargs)
    post = q.sample_posterior(key_draw, result.params, *args, sample_shape=(draws,), **kwargs)
    samples = {k: np.asarray(v)[None] for k, v in post.items()}
    seconds = time.perf_counter() - t0
    losses = np.asarray(result.losses)
    tail = losses[-max(1, steps // 10):]
    return Draws(f"ADVI ({guide})", samples, seconds,
                 info=dict(steps=steps, lr=lr, lr_final=lr_final, elbo=float(-tail.mean()), elbo_trace=-losses, seed=seed))


def meanfield_gaussian(mean, cov) -> tuple[np.ndarray, np.ndarray]:
    r"""The optimal mean-field approximation of a Gaussian N(m, Σ): means m and variances 1 / Λ_kk, Λ = Σ⁻¹.

    argmin over q = Π_k N(m_k', v_k) of KL(q ‖ N(m, Σ)) is m' = m and v_k = 1 / (Σ⁻¹)_kk (Bishop 2006, §10.1.2):
    each factor matches the conditional precision, never the marginal variance Σ_kk ≥ 1 / Λ_kk (equality only
    for a diagonal Σ). Returns ``(mean, variances)``.
    """
    m = as_finite_array(mean, "mean", ndim=(1, 2))
    S = as_finite_array(cov, "cov", ndim=2)
    if S.shape[0] != S.shape[1] or S.shape[0] != m.shape[-1]:
        raise ValueError(f"cov must be ({m.shape[-1]}, {m.shape[-1]}) for means of shape {m.shape}, got {S.shape}")
    try:
        prec = np.linalg.inv(np.linalg.cholesky(S))
    except np.linalg.LinAlgError as exc:
        raise ValueError("cov: not positive definite; the mean-field optimum needs an invertible Σ") from exc
    lam_diag = np.sum(prec * prec, axis=0)  # diag(Σ⁻¹) = column sums of squares of L⁻¹
    return m, 1.0 / lam_diag
