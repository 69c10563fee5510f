"""BetaMixtureGMM: exact likelihood, exact grid posterior of the global latent α, MLE, data sets, figures."""
import re

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from identkit.classical.gmm import (  # noqa: E402
    BetaMixtureGMM,
    MLEFit,
    QuadratureError,
    QuadraturePosterior,
    paper_datasets,
    quad_posterior_summary,
)

REF_THETA = {  # (μ, σ) the reference's R code used for each curve (tests/reference_data/README.md)
    "single": ((-0.5, -0.5), (1.0, 1.0)),
    "overlap": ((-0.75, 0.75), (1.0, 1.0)),
    "nonoverlap": ((-10.0, 10.0), (1.0, 1.0)),
}


def _read_r_vector(path, name="y"):
    text = path.read_text()
    body = re.search(rf"(?m)^{name} <-\s*c\(([^)]*)\)", text).group(1)
    return np.array([float(v) for v in body.replace("\n", "").split(",")])


def _naive_loglik(model, alpha, x):
    """Per-point Python loop, straight from the definition (independent of the vectorised code)."""
    total = 0.0
    for xi in x:
        p1 = stats.norm.logpdf(xi, model.mu[0], model.sigma[0])
        p2 = stats.norm.logpdf(xi, model.mu[1], model.sigma[1])
        with np.errstate(divide="ignore"):
            total += np.logaddexp(np.log(alpha) + p1, np.log1p(-alpha) + p2)
    return total


# ---------------------------------------------------------------- likelihood
@pytest.mark.parametrize("mu, sigma", [((-0.5, 0.5), (1.0, 1.0)), ((-10.0, 10.0), (1.0, 1.0)),
                                       ((0.0, 3.0), (0.5, 2.0)), ((-40.0, 40.0), (1.0, 1.0))])
def test_loglik_matches_naive_loop(mu, sigma):
    model = BetaMixtureGMM(mu, sigma)
    x = model.sample(40, 0.3, seed=1)
    alphas = np.array([0.0, 1e-300, 1e-250, 1e-12, 0.001, 0.3, 0.5, 0.85, 1 - 1e-12, 1 - 2**-52, 1.0])
    got = model.loglik(alphas, x)
    want = np.array([_naive_loglik(model, a, x) for a in alphas])
    assert got.shape == alphas.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    assert np.all(np.isfinite(got))  # α ∈ {0, 1} included: no NaN, no spurious −inf


def test_loglik_shapes_scalar_and_chunking():
    model = BetaMixtureGMM((-1.0, 2.0), (1.0, 0.7))
    x = model.sample(333, 0.4, seed=3)
    assert isinstance(model.loglik(0.4, x), float)
    grid = np.linspace(0, 1, 12).reshape(3, 4)
    ref = model.loglik(grid, x)
    assert ref.shape == (3, 4)
    for chunk in (1, 7, 333, 10_000):
        np.testing.assert_allclose(model.loglik(grid, x, chunk_size=chunk), ref, rtol=1e-13)


@pytest.mark.parametrize("name", list(REF_THETA))
def test_loglik_matches_reference_R_curves(reference_data, name):
    y = _read_r_vector(reference_data / f"{name}_gaussian.data.R")
    assert y.size == 10_000
    ref = np.loadtxt(reference_data / f"{name}_gaussian_ll_alphas_true.csv", delimiter=",", skiprows=1, usecols=1)
    mu, sigma = REF_THETA[name]
    got = BetaMixtureGMM(mu, sigma).loglik(np.linspace(0, 1, 1000), y) / y.size
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_one_cluster_loglik_is_exactly_constant():
    model = BetaMixtureGMM((-1.0, -1.0), (1.0, 1.0))
    x = model.sample(500, 0.5, seed=0)
    ll = model.loglik(np.linspace(0, 1, 101), x)
    assert np.all(ll == ll[0])
    assert ll[0] == pytest.approx(np.sum(stats.norm.logpdf(x, -1.0, 1.0)), rel=1e-14)


# ---------------------------------------------------------------- posterior
def test_posterior_integrates_to_one():
    d = paper_datasets(n=2000, seed=5)["overlapping"]
    post = d.model.posterior(d.x)
    assert integrate.trapezoid(post.density, post.grid) == pytest.approx(1.0, abs=1e-12)
    assert integrate.simpson(post.density, x=post.grid) == pytest.approx(1.0, abs=1e-6)
    assert post.grid[0] == 0.0 and post.grid[-1] == 1.0 and post.grid.size == 2001


def test_one_cluster_posterior_is_exactly_the_prior():
    d = paper_datasets(n=10_000, seed=11)["one_cluster"]
    post = d.model.posterior(d.x)
    beta = stats.beta.pdf(post.grid, 5, 5)
    beta /= integrate.trapezoid(beta, post.grid)  # the prior, normalised on the same grid
    np.testing.assert_allclose(post.density, beta, rtol=1e-10, atol=1e-10)
    assert abs(post.kl_to_prior()) < 1e-10
    assert post.mean() == pytest.approx(0.5, abs=1e-10)
    assert post.sd() == pytest.approx(np.sqrt(25 / (100 * 11)), abs=1e-6)  # Beta(5,5) sd (grid error ~1e-8)


@pytest.mark.parametrize("key, prior", [("overlapping", (5.0, 5.0)), ("separated", (5.0, 5.0)),
                                        ("overlapping", (2.0, 7.0)), ("one_cluster", (1.0, 3.0))])
def test_posterior_mean_sd_match_quad(key, prior):
    d = paper_datasets(n=120, seed=7)[key]
    model = d.model.with_params(prior=prior)
    post = model.posterior(d.x)
    shift = np.max(post.log_unnormalised)

    def unnorm(a):
        return np.exp(model.loglik(a, d.x) + stats.beta.logpdf(a, *prior) - shift)

    opts = dict(limit=200, epsabs=0, epsrel=1e-12, points=[post.mean()])
    z = integrate.quad(unnorm, 0, 1, **opts)[0]
    m = integrate.quad(lambda a: a * unnorm(a), 0, 1, **opts)[0] / z
    v = integrate.quad(lambda a: (a - m) ** 2 * unnorm(a), 0, 1, **opts)[0] / z
    assert post.mean() == pytest.approx(m, rel=1e-6)
    assert post.sd() == pytest.approx(np.sqrt(v), rel=1e-5)


def test_three_regimes():
    data = paper_datasets(n=10_000)
    posts = {k: d.model.posterior(d.x) for k, d in data.items()}
    kl = {k: p.kl_to_prior() for k, p in posts.items()}
    assert abs(kl["one_cluster"]) < 1e-10
    assert 0.5 < kl["overlapping"] and kl["separated"] > kl["overlapping"]
    assert posts["separated"].sd() < posts["overlapping"].sd() < 0.2 * posts["one_cluster"].sd()
    assert abs(posts["separated"].mean() - 0.85) < 4 * posts["separated"].sd()
    # small n: overlapping clusters leave α only weakly identified (posterior somewhat narrower than the prior)
    small = data["overlapping"].model.posterior(data["overlapping"].x[:50])
    assert 0.3 * posts["one_cluster"].sd() < small.sd() < posts["one_cluster"].sd()


_params = st.tuples(
    st.floats(-5, 5), st.floats(-5, 5),  # μ1, μ2
    st.floats(0.2, 3), st.floats(0.2, 3),  # σ1, σ2
    st.floats(1, 10), st.floats(1, 10),  # prior a, b (≥ 1: bounded density)
    st.floats(0, 1), st.integers(1, 150), st.integers(0, 2**31 - 1),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_params)
def test_property_posterior_normalised_kl_nonnegative_and_label_swap(p):
    m1, m2, s1, s2, a, b, alpha, n, seed = p
    model = BetaMixtureGMM((m1, m2), (s1, s2), prior=(a, b))
    x = model.sample(n, alpha, seed=seed)
    post = model.posterior(x, grid_size=401)
    assert np.all(np.isfinite(post.log_unnormalised[1:-1]))
    assert np.sum(np.exp(post.log_weights + post.log_density)) == pytest.approx(1.0, abs=1e-12)
    assert post.kl_to_prior() >= -1e-12
    assert 0.0 <= post.mean() <= 1.0
    # relabelling the components (and mirroring the prior) maps α → 1 − α
    swapped = BetaMixtureGMM((m2, m1), (s2, s1), prior=(b, a))
    g = np.linspace(0, 1, 51)
    np.testing.assert_allclose(swapped.loglik(g, x), model.loglik(1 - g, x), rtol=1e-10, atol=1e-8)
    if a == b:
        post2 = swapped.posterior(x, grid_size=401)
        np.testing.assert_allclose(post2.density, post.density[::-1], rtol=1e-7, atol=1e-10)
        assert post2.mean() == pytest.approx(1 - post.mean(), abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.floats(-3, 3), st.floats(0.3, 3), st.floats(1, 8), st.floats(1, 8), st.integers(1, 100),
       st.integers(0, 2**31 - 1))
def test_property_identical_components_give_the_prior(mu, sigma, a, b, n, seed):
    model = BetaMixtureGMM((mu, mu), (sigma, sigma), prior=(a, b))
    post = model.posterior(model.sample(n, 0.5, seed=seed), grid_size=301)
    np.testing.assert_allclose(post.density, post.prior_density, rtol=1e-10, atol=1e-12)
    assert abs(post.kl_to_prior()) < 1e-10


# ---------------------------------------------------------------- posterior by fitted quadrature
def _check_against_quad(model, x, *, tol=1e-10):
    post = model.posterior_quadrature(x, tol=tol)
    m, sd, log_z, kl = quad_posterior_summary(model, x, post.mode)
    assert isinstance(post, QuadraturePosterior)
    assert abs(post.mean - m) <= 1e-6 * sd
    assert abs(post.sd - sd) <= 1e-6 * sd
    assert post.log_evidence == pytest.approx(log_z, abs=1e-8)
    assert post.kl_to_prior == pytest.approx(kl, abs=1e-8)
    assert 0 <= post.error_bound <= tol and post.kl_error <= tol
    return post


@pytest.mark.parametrize("n", [10_000, 50])
@pytest.mark.parametrize("key", ["overlapping", "separated"])
def test_quadrature_posterior_matches_quad_on_paper_datasets(key, n):
    d = paper_datasets(n=n)[key]
    post = _check_against_quad(d.model, d.x)
    if n == 10_000:  # narrow posterior: a fitted rule of 24 nodes, against 2001 grid points
        assert post.rule == "Gauss (fitted Gaussian weight)" and post.n_evaluations <= 60
        assert 0 < post.interval[0] < post.mode < post.interval[1] < 1 and post.tail_mass < 1e-12


@pytest.mark.parametrize("mu, sigma, prior, n, alpha", [
    ((-0.5, 0.5), (1.0, 1.0), (2.0, 7.0), 400, 0.85),  # asymmetric prior, mode pulled away from 0.85
    ((-3.0, 3.0), (1.0, 1.0), (1.0, 1.0), 200, 1.0),  # uniform prior, all data from component 1: mode at α = 1
    ((-3.0, 3.0), (1.0, 1.0), (1.0, 1.0), 200, 0.0),  # ... from component 2: mode at α = 0
    ((-3.0, 3.0), (1.0, 1.0), (5.0, 5.0), 10_000, 1.0),  # Beta(5, 5), n = 10 000: mode at 1 − 4/n, interval hits 1
    ((0.0, 1.5), (0.5, 2.0), (5.0, 5.0), 2000, 0.3),  # unequal σ
    ((-1.0, 2.0), (1.0, 0.7), (3.0, 2.0), 3, 0.5),  # n = 3: wide posterior, the whole of [0, 1]
    ((-1.0, 1.0), (1.0, 1.0), (2.5, 1.5), 30, 0.9),  # non-integer prior powers at the ends (Gauss–Jacobi)
    ((-40.0, 40.0), (1.0, 1.0), (1.0, 3.0), 500, 0.02),  # |d_i| ~ 3000: e^{d} overflows, mode near 0
])
def test_quadrature_posterior_matches_quad_new_cases(mu, sigma, prior, n, alpha):
    model = BetaMixtureGMM(mu, sigma, prior=prior)
    x = model.sample(n, alpha, seed=17)
    post = _check_against_quad(model, x)
    # the mode maximises log prior + log likelihood (bounded scalar search on the log posterior)
    res = optimize.minimize_scalar(lambda a: -(model.loglik(a, x) + model.prior_logpdf(a)), bounds=(0, 1),
                                   method="bounded", options={"xatol": 1e-12})
    lp = model.loglik(post.mode, x) + model.prior_logpdf(post.mode)
    assert lp >= -res.fun - 1e-9
    if prior[0] == 1 and alpha == 0.0:
        assert post.mode == 0.0
    if prior[1] == 1 and alpha == 1.0:
        assert post.mode == 1.0


def test_quadrature_posterior_one_cluster_is_the_prior_in_closed_form():
    d = paper_datasets(n=10_000)["one_cluster"]
    post = d.model.posterior_quadrature(d.x)
    assert post.rule == "closed form" and post.n_evaluations == 0
    assert post.kl_to_prior == 0.0 and post.error_bound == 0.0
    assert post.mean == 0.5 and post.sd == pytest.approx(np.sqrt(25 / (100 * 11)), rel=1e-15)
    assert post.mode == 0.5
    assert post.log_evidence == pytest.approx(np.sum(stats.norm.logpdf(d.x, -1.0, 1.0)), rel=1e-14)
    g = np.linspace(0, 1, 101)
    np.testing.assert_allclose(post.density_on(g), stats.beta.pdf(g, 5, 5), rtol=1e-12, atol=1e-300)
    grid = d.model.posterior(d.x)  # the grid agrees (up to its trapezoid error)
    assert grid.sd() == pytest.approx(post.sd, rel=1e-6) and abs(grid.kl_to_prior()) < 1e-10


def test_quadrature_density_on_is_normalised_and_matches_the_grid():
    d = paper_datasets(n=10_000)["overlapping"]
    post = d.model.posterior_quadrature(d.x)
    opts = dict(limit=200, epsabs=0, epsrel=1e-12, points=[post.mode])
    assert integrate.quad(post.density_on, 0, 1, **opts)[0] == pytest.approx(1.0, abs=1e-9)
    grid = d.model.posterior(d.x)  # sd ≈ 0.0096 spans 19 grid steps: the trapezoid rule resolves it
    big = grid.density > 1e-6 * grid.density.max()
    np.testing.assert_allclose(post.density_on(grid.grid)[big], grid.density[big], rtol=1e-8)
    assert grid.mean() == pytest.approx(post.mean, abs=1e-8 * post.sd)
    assert grid.sd() == pytest.approx(post.sd, rel=1e-7)
    assert grid.kl_to_prior() == pytest.approx(post.kl_to_prior, abs=1e-7)
    assert isinstance(post.density_on(0.86), float) and post.density_on(0.0) == 0.0  # Beta(5, 5) vanishes at 0
    assert post.density_on(np.full((2, 3), 0.86)).shape == (2, 3)
    with pytest.raises(ValueError, match="alpha"):
        post.density_on(1.5)


def test_quadrature_posterior_result_is_frozen_and_keeps_a_copy_of_x():
    d = paper_datasets(n=200)["overlapping"]
    x = d.x.copy()
    post = d.model.posterior_quadrature(x)
    before = post.density_on(0.7)
    x[:] = 0.0
    assert post.density_on(0.7) == before
    with pytest.raises(AttributeError):
        post.mean = 0.0


def test_quadrature_posterior_rejects_bad_arguments():
    model = BetaMixtureGMM((-1.0, 1.0), (1.0, 1.0))
    x = model.sample(50, 0.5, seed=0)
    bad = [
        (lambda: model.posterior_quadrature(x, tol=0.0), "tol"),
        (lambda: model.posterior_quadrature(x, tol=-1e-8), "tol"),
        (lambda: model.posterior_quadrature(x, tol=np.nan), "tol"),
        (lambda: model.posterior_quadrature(x, tol=1.0), "tol"),
        (lambda: model.posterior_quadrature(x, tol="1e-8"), "tol"),
        (lambda: model.posterior_quadrature(x, max_nodes=23), "max_nodes"),
        (lambda: model.posterior_quadrature(x, max_nodes=100.0), "max_nodes"),
        (lambda: model.posterior_quadrature(np.r_[x, np.nan]), "x"), (lambda: model.posterior_quadrature([]), "x"),
        (lambda: model.posterior_quadrature(x[:, None]), "x"),
        (lambda: model.with_params(prior=(0.5, 5.0)).posterior_quadrature(x), "prior"),
    ]
    for call, match in bad:
        with pytest.raises(ValueError, match=match):
            call()
    # a tolerance below the rounding of the sums cannot be reached with 24 nodes: a clear error, naming the knobs
    with pytest.raises(QuadratureError, match="max_nodes=24") as info:
        model.posterior_quadrature(x, tol=1e-15, max_nodes=24)
    assert isinstance(info.value, ArithmeticError) and "tol=1e-15" in str(info.value)
    assert model.posterior_quadrature(x, tol=1e-6, max_nodes=256).error_bound <= 1e-6


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_params)
def test_property_quadrature_posterior_matches_quad_and_label_swap(p):
    m1, m2, s1, s2, a, b, alpha, n, seed = p
    model = BetaMixtureGMM((m1, m2), (s1, s2), prior=(a, b))
    x = model.sample(n, alpha, seed=seed)
    post = model.posterior_quadrature(x)
    if post.rule != "closed form":
        m, sd, log_z, kl = quad_posterior_summary(model, x, post.mode)
        assert abs(post.mean - m) <= 1e-6 * sd and abs(post.sd - sd) <= 1e-6 * sd
        assert post.log_evidence == pytest.approx(log_z, abs=1e-8)
        assert post.kl_to_prior == pytest.approx(kl, abs=1e-7)
    assert post.error_bound <= 1e-10 and post.kl_to_prior >= -1e-12
    assert post.interval[0] <= post.mode <= post.interval[1] and 0 < post.mean < 1
    # relabelling the components (and mirroring the prior) maps α → 1 − α
    swapped = BetaMixtureGMM((m2, m1), (s2, s1), prior=(b, a)).posterior_quadrature(x)
    assert swapped.mean == pytest.approx(1 - post.mean, abs=1e-9 * post.sd)
    assert swapped.sd == pytest.approx(post.sd, rel=1e-9)
    assert swapped.log_evidence == pytest.approx(post.log_evidence, abs=1e-9 * max(1.0, abs(post.log_evidence)))


# ---------------------------------------------------------------- sampling, data sets
def test_sample_reproducible_and_correct_fraction():
    model = BetaMixtureGMM((-10.0, 10.0), (1.0, 1.0))
    x1, x2 = model.sample(4000, 0.85, seed=42), model.sample(4000, 0.85, seed=42)
    assert x1.shape == (4000,)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(x1, model.sample(4000, 0.85, seed=43))
    frac = np.mean(x1 < 0)
    assert abs(frac - 0.85) < 4 * np.sqrt(0.85 * 0.15 / 4000)
    assert np.all(model.sample(100, 1.0, seed=0) < 0) and np.all(model.sample(100, 0.0, seed=0) > 0)


def test_paper_datasets():
    data = paper_datasets(n=500, seed=3)
    assert list(data) == ["one_cluster", "overlapping", "separated"]
    again = paper_datasets(n=500, seed=3)
    for k, d in data.items():
        assert d.x.shape == (500,)
        np.testing.assert_array_equal(d.x, again[k].x)
    assert data["one_cluster"].alpha is None and data["one_cluster"].model.mu == (-1.0, -1.0)
    assert data["overlapping"].model.mu == (-0.5, 0.5) and data["overlapping"].alpha == 0.85
    assert data["separated"].model.mu == (-10.0, 10.0) and data["separated"].alpha == 0.85
    assert abs(np.mean(data["one_cluster"].x) + 1) < 4 / np.sqrt(500)


# ---------------------------------------------------------------- maximum likelihood
def test_fit_mle_recovers_separated_mixture():
    d = paper_datasets(n=3000, seed=2)["separated"]
    fit = d.model.fit_mle(d.x)
    assert isinstance(fit, MLEFit)
    mu, sigma = fit
    np.testing.assert_allclose(mu, (-10, 10), atol=0.15)
    np.testing.assert_allclose(sigma, (1, 1), atol=0.1)
    assert abs(fit.alpha - 0.85) < 0.03 and not fit.alpha_fixed
    # it is a maximiser: at least as good as the generating θ, and its reported loglik is right
    fitted = d.model.with_params(mu, sigma)
    assert fit.loglik == pytest.approx(fitted.loglik(fit.alpha, d.x), rel=1e-12)
    assert fit.loglik >= d.model.loglik(0.85, d.x) - 1e-8
    fixed = d.model.fit_mle(d.x, alpha=0.85)
    assert fixed.alpha == 0.85 and fixed.alpha_fixed
    assert fixed.loglik >= d.model.loglik(0.85, d.x) - 1e-8 and fixed.loglik <= fit.loglik + 1e-8


def test_fit_mle_beats_the_one_gaussian_fit_and_is_deterministic():
    d = paper_datasets(n=1000, seed=4)["one_cluster"]
    fit = d.model.fit_mle(d.x, seed=9)
    one = BetaMixtureGMM((d.x.mean(),) * 2, (d.x.std(),) * 2)  # the single-Gaussian MLE, a mixture special case
    assert fit.loglik >= one.loglik(0.5, d.x) - 1e-6
    assert tuple(d.model.fit_mle(d.x, seed=9)) == tuple(fit)


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("kwargs, match", [
    (dict(sigma=(0.0, 1.0)), "sigma"), (dict(sigma=(1.0, -2.0)), "sigma"), (dict(sigma=(1.0,)), "sigma"),
    (dict(sigma=(1.0, np.inf)), "sigma"), (dict(mu=(np.nan, 0.0)), "mu"), (dict(mu=(1.0, 2.0, 3.0)), "mu"),
    (dict(mu=[[1.0, 2.0]]), "mu"), (dict(prior=(0.0, 5.0)), "prior"), (dict(prior=(5.0, -1.0)), "prior"),
    (dict(prior=5.0), "prior"),
])
def test_constructor_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BetaMixtureGMM(**kwargs)


def test_methods_reject_bad_arguments():
    model = BetaMixtureGMM((-1.0, 1.0), (1.0, 1.0))
    x = model.sample(20, 0.5, seed=0)
    bad = [
        (lambda: model.loglik(1.2, x), "alpha"), (lambda: model.loglik([-0.1, 0.5], x), "alpha"),
        (lambda: model.loglik(np.nan, x), "alpha"),
        (lambda: model.loglik(0.5, np.r_[x, np.nan]), "x"), (lambda: model.loglik(0.5, np.r_[x, np.inf]), "x"),
        (lambda: model.loglik(0.5, x[:, None]), "x"), (lambda: model.loglik(0.5, 1.0), "x"),
        (lambda: model.loglik(0.5, []), "x"), (lambda: model.loglik(0.5, x, chunk_size=0), "chunk_size"),
        (lambda: model.posterior(x, grid_size=2), "grid_size"),
        (lambda: model.posterior(x, grid_size=10.5), "grid_size"),
        (lambda: model.posterior(np.r_[x, np.nan]), "x"),
        (lambda: model.with_params(prior=(0.5, 5.0)).posterior(x), "prior"),
        (lambda: model.sample(0, 0.5, seed=0), "n"), (lambda: model.sample(10, 1.5, seed=0), "alpha"),
        (lambda: model.sample(10, [0.2, 0.3], seed=0), "alpha"), (lambda: model.sample(10, 0.5, seed=-1), "seed"),
        (lambda: model.fit_mle(x, alpha=2.0), "alpha"), (lambda: model.fit_mle(x, n_init=0), "n_init"),
        (lambda: model.fit_mle(x[:1]), "x"), (lambda: model.fit_mle(np.r_[x, np.inf]), "x"),
        (lambda: model.prior_logpdf(-0.5), "alpha"),
        (lambda: paper_datasets(n=0), "n"), (lambda: paper_datasets(seed=-3), "seed"),
    ]
    for call, match in bad:
        with pytest.raises(ValueError, match=match):
            call()


# ---------------------------------------------------------------- figures
def test_gmm_figures_draw():
    from identkit import figures

    reg = figures.registry()
    ours = [n for n, s in reg.items() if s.notebook == "02_beta_mixture_gmm"]
    assert set(ours) >= {"02_gmm_loglik", "02_gmm_posterior_true", "02_gmm_posterior_mle", "02_gmm_posterior_sd_vs_n"}
    fig = figures.make("02_gmm_posterior_true", quick=True, n=500)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum("KL(post ‖ prior)" in t for t in texts) == 3
    assert all(ax.get_xlim() == (0.0, 1.0) for ax in fig.axes[:3])  # α increases left to right
    plt.close(fig)
    fig = figures.make("02_gmm_loglik", quick=True, n=500)
    assert len(fig.axes) == 3
    plt.close(fig)
