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

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from . import config
from ._checks import as_finite_array, check_int, check_positive, check_seed

__all__ = ["Draws", "require_numpyro", "gmm_model", "ppca_model", "nuts", "advi", "meanfield_gaussian",
           "GUIDES", "GMMComparison", "PPCAComparison", "compare_gmm", "compare_label_switching", "compare_ppca",
           "budget"]

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



# ------------------------------------------------------------------------------------------------ refereed runs
def budget(quick: bool | None = None) -> dict:
    """The sampler and optimiser budget of lesson 04: NumPyro's defaults in full mode, a CI-sized one in quick mode.

    Full: 4 chains × (1 000 warm-up + 1 000 draws), 3 000 ADVI steps; quick: 4 × (300 + 300), 1 500 steps (enough
    for R̂ and the means, not for the tails).
    """
    if config.resolve_quick(quick):
        return dict(chains=4, warmup=300, draws=300, advi_steps=1500)
    return dict(chains=4, warmup=1000, draws=1000, advi_steps=3000)


@dataclass(frozen=True)
class GMMComparison:
    """One Beta-mixture data set at its generating θ: the exact posterior of α, NUTS and mean-field ADVI.

    Attributes
    ----------
    data : GMMDataset
        The data set (``identkit.classical.gmm.paper_datasets``).
    exact : GridPosterior
        p(α | x; θ) on identkit's 2 001-point grid (checked against quadrature in ``tests/test_gmm.py``).
    exact_seconds : float
        Wall time of the exact grid posterior.
    nuts, advi : Draws
        NUTS and mean-field ADVI on :func:`gmm_model` with the same θ and prior. (α is one number, so mean-field
        and full-rank ADVI are the same family here.)
    """

    data: object
    exact: object
    exact_seconds: float
    nuts: Draws
    advi: Draws


@functools.lru_cache(maxsize=4)
def _compare_gmm(n, seed, chains, warmup, draws, advi_steps):
    from .classical.gmm import paper_datasets

    out = {}
    for k, (name, d) in enumerate(paper_datasets(n, seed=seed).items()):
        m = d.model
        t0 = time.perf_counter()
        exact = m.posterior(d.x)
        t_exact = time.perf_counter() - t0
        kw = dict(mu=m.mu, sigma=m.sigma, prior=m.prior)
        r = nuts(gmm_model, d.x, chains=chains, warmup=warmup, draws=draws, seed=seed + k, **kw)
        q = advi(gmm_model, d.x, guide="mean-field", steps=advi_steps, lr=0.02, seed=seed + k, **kw)
        out[name] = GMMComparison(d, exact, t_exact, r, q)
    return out


def compare_gmm(n: int = 10_000, seed: int = config.DEFAULT_SEED, quick: bool | None = None,
                **overrides) -> dict[str, GMMComparison]:
    r"""Exact p(α | x; θ), NUTS and mean-field ADVI on each of the paper's three Beta-mixture data sets.

    The model is lesson 02's, α ~ Beta(5, 5) and x_i | α ~ α N(μ1, σ1²) + (1 − α) N(μ2, σ2²) at the generating θ;
    data set k's chains and ADVI take seed ``seed + k``. The budget is :func:`budget` (``quick``), updated by
    ``overrides`` (``chains``, ``warmup``, ``draws``, ``advi_steps``). Results are cached in memory per
    argument set, so a figure and a notebook cell that ask for the same runs share them.

    Returns
    -------
    dict name → :class:`GMMComparison` (``"one_cluster"``, ``"overlapping"``, ``"separated"``).
    """
    b = _budget(quick, overrides)
    return _compare_gmm(check_int(n, "n"), check_seed(seed), b["chains"], b["warmup"], b["draws"], b["advi_steps"])


def _budget(quick, overrides) -> dict:
    b = budget(quick)
    unknown = set(overrides) - set(b)
    if unknown:
        raise ValueError(f"unknown budget setting(s) {', '.join(sorted(unknown))}; use {', '.join(b)}")
    b.update({k: check_int(v, k) for k, v in overrides.items()})
    return b


@functools.lru_cache(maxsize=4)
def _compare_label_switching(n, seed, chains, warmup, draws, advi_steps):
    from .classical.gmm import paper_datasets

    d = paper_datasets(n, seed=seed)["separated"]
    kw = dict(sigma=d.model.sigma, prior=d.model.prior, free_means=True)
    r = nuts(gmm_model, d.x, chains=chains, warmup=warmup, draws=draws, seed=seed, **kw)
    # larger steps than for α alone (the means travel ~10 units from their start), twice the steps and 4 draws per
    # ELBO gradient (with one, q's scales were still 40 % too wide after 3 000 steps)
    q = advi(gmm_model, d.x, guide="mean-field", steps=2 * advi_steps, lr=0.1, elbo_particles=4, seed=seed, **kw)
    return d, r, q


def compare_label_switching(n: int = 10_000, seed: int = config.DEFAULT_SEED, quick: bool | None = None,
                            **overrides):
    r"""NUTS and mean-field ADVI on the separated data with the means free: μ_k ~ N(0, 10²), σ and the prior known.

    Swapping the labels, (α, μ1, μ2) ↦ (1 − α, μ2, μ1), leaves the likelihood and the prior unchanged (Beta(5, 5)
    and the two N(0, 10²) are symmetric), so the exact posterior is symmetric too: **E[α | x] = 1/2 and
    P(α > 1/2 | x) = 1/2 exactly**, with one mode near (0.85, −10, 10) and its mirror image. Each chain starts from
    NumPyro's default point (uniform in (−2, 2) on the unconstrained space, drawn from ``seed``) and stays in the
    mode it finds first: the modes are 20 apart in μ, about a thousand posterior sds, with essentially no mass
    between them. ADVI takes 2 × ``advi_steps`` steps with 4 draws per ELBO gradient.

    Returns
    -------
    (GMMDataset, Draws, Draws)
        The data set, NUTS's draws (sites ``"alpha"`` and ``"mu"``) and ADVI's.
    """
    b = _budget(quick, overrides)
    return _compare_label_switching(check_int(n, "n"), check_seed(seed), b["chains"], b["warmup"], b["draws"],
                                    b["advi_steps"])


@dataclass(frozen=True)
class PPCAComparison:
    """PPCA at known W and σ on ``n`` data points: the exact posterior, the best mean-field q, NUTS and ADVI.

    Attributes
    ----------
    ppca : PPCA
        The model (``reference_W(case)``, σ).
    x : ndarray of shape (n, D)
        Data drawn from the model.
    mean : ndarray of shape (n, K)
        Exact posterior means M⁻¹ Wᵀ x_i.
    cov : ndarray of shape (K, K)
        The exact posterior covariance σ² M⁻¹ (the same for every point).
    meanfield_var : ndarray of shape (K,)
        The closed-form optimum of mean-field VI, 1 / (Σ⁻¹)_kk (:func:`meanfield_gaussian`).
    nuts, meanfield, fullrank : Draws
        NUTS and mean-field / full-rank ADVI on :func:`ppca_model` (site ``"z"`` of shape (n, K)).
    """

    ppca: object
    x: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    meanfield_var: np.ndarray
    nuts: Draws
    meanfield: Draws
    fullrank: Draws


@functools.lru_cache(maxsize=4)
def _compare_ppca(case, n, sigma, seed, chains, warmup, draws, advi_steps):
    from .classical.ppca import PPCA, reference_W

    model = PPCA(reference_W(case, seed=seed), sigma)
    x, _ = model.sample(n, seed=seed + 1)
    mean, cov = model.posterior(x)
    _, mf_var = meanfield_gaussian(mean, cov)
    args = (x, model.W, model.sigma)
    r = nuts(ppca_model, *args, chains=chains, warmup=warmup, draws=draws, seed=seed)
    mf = advi(ppca_model, *args, guide="mean-field", steps=2 * advi_steps, lr=0.02, lr_final=0.05, seed=seed)
    fr = advi(ppca_model, *args, guide="full-rank", steps=2 * advi_steps, lr=0.02, lr_final=0.05, seed=seed)
    return PPCAComparison(model, x, mean, cov, mf_var, r, mf, fr)


def compare_ppca(case: str = "repeated", n: int = 20, sigma: float = 1.0, seed: int = config.DEFAULT_SEED,
                 quick: bool | None = None, **overrides) -> PPCAComparison:
    r"""Exact posterior, closed-form mean-field optimum, NUTS and ADVI (mean-field, full-rank) on PPCA.

    W = ``reference_W(case, seed=seed)`` (D = 5, K = 2), σ known, ``n`` points drawn with seed ``seed + 1``; the
    latent is the (n, K) array of local z_i. For ``case="repeated"`` (W = [w, w]) the likelihood sees only
    z1 + z2, so along u = (1, −1)/√2 the exact posterior is the prior N(0, 1) for every x_i, while the best
    mean-field q has variance uᵀ diag(v) u = v1/2 + v2/2 there (lesson 04). ADVI takes 2 × ``advi_steps`` Adam
    steps (2n latent dimensions, decreasing steps from 0.02 to 0.001).
    """
    b = _budget(quick, overrides)
    return _compare_ppca(str(case), check_int(n, "n"), check_positive(sigma, "sigma"), check_seed(seed),
                         b["chains"], b["warmup"], b["draws"], b["advi_steps"])
