"""NUTS and ADVI (NumPyro) refereed by the exact posteriors: on the Beta-mixture GMM against the grid posterior,
on PPCA against the closed-form Gaussian and the closed-form mean-field optimum; label switching; bad input."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numpyro", reason="the approximate-inference extra is not installed (pip install -e '.[approx]')")

from identkit import approximate as A  # noqa: E402
from identkit.classical.gmm import BetaMixtureGMM, paper_datasets  # noqa: E402
from identkit.classical.ppca import PPCA, nonidentifiable_directions, reference_W  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return paper_datasets(2000)


@pytest.mark.parametrize("name", ["one_cluster", "overlapping"])
def test_nuts_and_advi_match_the_exact_posterior_of_alpha(data, name):
    d = data[name]
    m = d.model
    exact = m.posterior(d.x)
    kw = dict(mu=m.mu, sigma=m.sigma, prior=m.prior)
    r = A.nuts(A.gmm_model, d.x, chains=4, warmup=300, draws=400, seed=1, **kw)
    assert r.samples["alpha"].shape == (4, 400)
    assert float(r.r_hat["alpha"]) < 1.05 and float(r.ess["alpha"]) > 200 and r.info["divergences"] == 0
    # the Monte-Carlo error of the mean is sd / sqrt(ESS): allow 4 of them
    assert abs(float(r.mean("alpha")) - exact.mean()) < 4 * exact.sd() / np.sqrt(float(r.ess["alpha"]))
    assert float(r.sd("alpha")) == pytest.approx(exact.sd(), rel=0.15)
    q = A.advi(A.gmm_model, d.x, guide="mean-field", steps=3000, lr=0.05, draws=4000, seed=1, **kw)
    assert q.samples["alpha"].shape == (1, 4000) and not q.r_hat
    assert abs(float(q.mean("alpha")) - exact.mean()) < 0.25 * exact.sd()
    assert float(q.sd("alpha")) == pytest.approx(exact.sd(), rel=0.2)


def test_one_cluster_posterior_is_the_prior_for_every_method(data):
    """Collapse is a property of the model: exact, NUTS and ADVI all return Beta(5, 5) (sd 0.151)."""
    d = data["one_cluster"]
    prior_sd = np.sqrt(25 / (100 * 11))
    r = A.nuts(A.gmm_model, d.x, mu=d.model.mu, sigma=d.model.sigma, chains=2, warmup=300, draws=500, seed=2)
    assert float(r.sd("alpha")) == pytest.approx(prior_sd, rel=0.15)


def test_free_means_on_separated_data_give_two_labellings_that_chains_do_not_cross(data):
    d = data["separated"]
    init = {"alpha": np.array([1.7, 1.7, -1.7, -1.7]), "mu": np.array([[-10, 10], [-10, 10], [10, -10], [10, -10.0]])}
    r = A.nuts(A.gmm_model, d.x, sigma=d.model.sigma, free_means=True, chains=4, warmup=150, draws=150, seed=0,
               init_params=init)
    a = r.chain_means("alpha")
    assert np.allclose(a[:2], 0.85, atol=0.03) and np.allclose(a[2:], 0.15, atol=0.03)  # α ↔ 1 − α
    mu = r.chain_means("mu")
    assert np.allclose(mu[2:], mu[:2, ::-1], atol=0.2)  # (μ1, μ2) ↔ (μ2, μ1)
    assert float(r.r_hat["alpha"]) > 10  # R̂ flags the chains that disagree


def _ppca_point(case, sigma=1.0, n=3):
    model = PPCA(reference_W(case, D=5), sigma)
    x, _ = model.sample(n, seed=5)
    return model, x


def test_advi_on_ppca_matches_the_closed_form_meanfield_and_fullrank_optima():
    model, x = _ppca_point("repeated")
    mean, _ = model.posterior(x)
    _, mf_var = A.meanfield_gaussian(mean, model.posterior_cov)
    mf = A.advi(A.ppca_model, x, model.W, model.sigma, guide="mean-field", steps=4000, lr=0.02, draws=4000, seed=3)
    np.testing.assert_allclose(mf.mean("z"), mean, atol=0.1)
    np.testing.assert_allclose(mf.sd("z") ** 2, np.broadcast_to(mf_var, mean.shape), rtol=0.2)
    assert np.all(mf_var < np.diag(model.posterior_cov) / 2)  # mean-field underestimates the marginal variances
    fr = A.advi(A.ppca_model, x, model.W, model.sigma, guide="full-rank", steps=4000, lr=0.02, draws=4000, seed=3)
    np.testing.assert_allclose(fr.sd("z") ** 2, np.broadcast_to(np.diag(model.posterior_cov), mean.shape), rtol=0.25)


def test_nuts_on_ppca_recovers_the_collapsed_direction_that_meanfield_hides():
    model, x = _ppca_point("repeated", n=2)
    (u,) = nonidentifiable_directions(model.W)
    r = A.nuts(A.ppca_model, x, model.W, model.sigma, chains=2, warmup=400, draws=600, seed=4)
    assert np.var(r.flat("z") @ u, axis=0, ddof=1) == pytest.approx(np.ones(2), rel=0.2)  # the prior's N(0, 1)
    mean, _ = model.posterior(x)
    _, mf_var = A.meanfield_gaussian(mean, model.posterior_cov)
    assert float(u**2 @ mf_var) < 0.3  # the best mean-field q keeps a fifth of the prior's unit variance on u


def test_meanfield_gaussian_is_the_kl_optimum():
    cov = np.array([[2.0, 1.2], [1.2, 1.0]])
    m, v = A.meanfield_gaussian(np.zeros(2), cov)
    np.testing.assert_allclose(v, 1 / np.diag(np.linalg.inv(cov)))

    def kl(var):  # KL(N(0, diag var) || N(0, cov))
        P = np.linalg.inv(cov)
        return 0.5 * (np.sum(np.diag(P) * var) - 2 + np.log(np.linalg.det(cov)) - np.sum(np.log(var)))

    for delta in ([1.05, 1.0], [1.0, 0.95], [0.9, 1.1]):
        assert kl(v * np.array(delta)) > kl(v)
    with pytest.raises(ValueError, match="not positive definite"):
        A.meanfield_gaussian(np.zeros(2), [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="cov must be"):
        A.meanfield_gaussian(np.zeros(3), cov)


def test_bad_arguments_are_named():
    x = BetaMixtureGMM().sample(20, 0.5)
    with pytest.raises(ValueError, match="unknown ADVI family 'laplace'"):
        A.advi(A.gmm_model, x, guide="laplace")
    with pytest.raises(ValueError, match="chains"):
        A.nuts(A.gmm_model, x, chains=0)
    with pytest.raises(ValueError, match="no site 'beta'"):
        A.nuts(A.gmm_model, x, chains=1, warmup=5, draws=5).mean("beta")


def test_split_rhat_is_the_bda3_formula():
    """NumPyro's split R-hat against BDA3 §11.4 written out: half-chains, within and between variances."""
    from numpyro.diagnostics import split_gelman_rubin

    rng = np.random.default_rng(0)
    chains = rng.normal(size=(4, 200)) + np.array([0.0, 0.0, 0.0, 0.6])[:, None]  # one chain off
    pieces = np.concatenate([chains[:, :100], chains[:, 100:]])
    n = pieces.shape[1]
    W = pieces.var(axis=1, ddof=1).mean()
    rhat = np.sqrt(((n - 1) / n * W + pieces.mean(axis=1).var(ddof=1)) / W)
    assert float(split_gelman_rubin(chains)) == pytest.approx(rhat, rel=1e-12)
    assert rhat > 1.01  # the shifted chain is seen


def test_compare_functions_share_their_runs_and_check_the_budget():
    """The lesson's figure and its printout ask for the same runs: one computation, cached; a misspelt budget
    setting is an error, not ignored."""
    kw = dict(n=500, quick=True, chains=2, warmup=50, draws=50, advi_steps=100)
    first = A.compare_gmm(**kw)
    assert A.compare_gmm(**kw) is first
    assert list(first) == ["one_cluster", "overlapping", "separated"]
    c = first["overlapping"]
    assert c.nuts.samples["alpha"].shape == (2, 50) and c.exact_seconds > 0
    assert A.budget(True)["draws"] < A.budget(False)["draws"]
    with pytest.raises(ValueError, match="unknown budget setting"):
        A.compare_gmm(n=500, quick=True, chain=2)
    with pytest.raises(ValueError, match="draws"):
        A.compare_ppca(quick=True, draws=0)


def test_meanfield_on_repeated_columns_matches_the_lesson_closed_forms():
    """Lesson 04's formulas for W = [w, w]: 1/Λ_kk = σ²/(a + σ²), Σ_kk = (a + σ²)/(2a + σ²), u'Σu = 1."""
    model = PPCA(reference_W("repeated"), 1.5)
    a, s2 = float(model.W[:, 0] @ model.W[:, 0]), model.sigma**2
    _, mf_var = A.meanfield_gaussian(np.zeros(2), model.posterior_cov)
    np.testing.assert_allclose(mf_var, s2 / (a + s2), rtol=1e-12)
    np.testing.assert_allclose(np.diag(model.posterior_cov), (a + s2) / (2 * a + s2), rtol=1e-12)
    (u,) = nonidentifiable_directions(model.W)
    assert float(u @ model.posterior_cov @ u) == pytest.approx(1.0, rel=1e-12)
