"""The theorem on exact toys: KL(posterior‖prior) = 0 exactly when the likelihood is constant in z."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from identkit import theory
from identkit.classical.grid import GridPosterior

finite = st.floats(-6, 6, allow_nan=False)


@given(prior=st.lists(st.floats(0.05, 1.0), min_size=2, max_size=6), x=finite)
@settings(max_examples=60, deadline=None)
def test_constant_likelihood_gives_the_prior_exactly(prior, x):
    p = np.array(prior) / np.sum(prior)
    toy = theory.DiscreteToy(p)
    post = toy.posterior(x, 0.0)[0]
    np.testing.assert_allclose(post, p, rtol=0, atol=1e-12)
    kl = toy.kl_to_prior(x, 0.0)
    assert abs(kl[0]) <= 1e-10
    assert theory.is_collapsed(kl[0])
    assert theory.likelihood_spread(toy.loglik(x, 0.0))[0] == 0.0


@given(prior=st.lists(st.floats(0.05, 1.0), min_size=2, max_size=6), x=finite, s=st.floats(0.2, 4.0))
@settings(max_examples=60, deadline=None)
def test_identifiable_likelihood_moves_the_posterior(prior, x, s):
    p = np.array(prior) / np.sum(prior)
    toy = theory.DiscreteToy(p)
    assume(theory.likelihood_spread(toy.loglik(x, s))[0] > 1e-3)
    post = toy.posterior(x, s)[0]
    assert post.sum() == pytest.approx(1.0, abs=1e-12)
    # the converse direction of the theorem: a likelihood that varies in z moves the posterior off the prior
    assert toy.kl_to_prior(x, s)[0] > 1e-10
    assert not theory.is_collapsed(toy.kl_to_prior(x, s)[0])


def test_identifiability_is_a_property_of_the_data_too():
    # K = 2, x at the midpoint of the two likelihood means: p(x|z=0) = p(x|z=1) for this x, so the
    # posterior of this data point is its prior although the model is identifiable elsewhere.
    toy = theory.DiscreteToy([0.7, 0.3])
    assert theory.likelihood_spread(toy.loglik(0.0, 2.0))[0] == 0.0
    np.testing.assert_allclose(toy.posterior(0.0, 2.0)[0], [0.7, 0.3], atol=1e-15)
    assert toy.kl_to_prior(1.0, 2.0)[0] > 0.1


def test_log_posterior_matches_bayes_rule_by_hand():
    log_prior = np.log([0.2, 0.5, 0.3])
    log_lik = np.array([[-1.0, -2.0, -0.5], [0.0, 0.0, 0.0]])
    by_hand = np.exp(log_prior + log_lik)
    by_hand /= by_hand.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.exp(theory.log_posterior(log_prior, log_lik)), by_hand, rtol=1e-13)
    np.testing.assert_allclose(np.exp(theory.log_posterior(log_prior, log_lik))[1], [0.2, 0.5, 0.3], atol=1e-15)


def test_expected_kl_grows_with_strength():
    toy = theory.DiscreteToy()
    mi = [toy.expected_kl(s, n=3000, seed=1) for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert mi[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(mi) > 0)
    assert mi[-1] < stats.entropy(toy.prior)  # I(x; z) <= H(z)


@given(x=finite, s=st.floats(-3, 3), sigma=st.floats(0.3, 3))
@settings(max_examples=40, deadline=None)
def test_gaussian_toy_closed_form_equals_quadrature(x, s, sigma):
    toy = theory.GaussianToy(sigma)
    m, v = toy.posterior(x, s)
    grid = toy.grid_posterior(x, s)
    assert grid.mean() == pytest.approx(m[0], abs=1e-6)
    assert grid.sd() == pytest.approx(np.sqrt(v), rel=1e-6)
    assert grid.kl_to_prior() == pytest.approx(toy.kl_to_prior(x, s)[0], abs=1e-7)


def test_gaussian_toy_collapses_exactly_at_zero_strength():
    toy = theory.GaussianToy(0.7)
    xs = np.linspace(-5, 5, 21)
    assert np.max(np.abs(toy.kl_to_prior(xs, 0.0))) <= 1e-12
    assert abs(toy.grid_posterior(2.0, 0.0).kl_to_prior()) <= 1e-10
    # mutual information is the average KL over x ~ p(x): check by quadrature over x
    s = 1.3
    px_sd = np.sqrt(s**2 + 0.7**2)
    avg, _ = integrate.quad(lambda x: stats.norm.pdf(x, 0, px_sd) * toy.kl_to_prior(x, s)[0], -12, 12)
    assert avg == pytest.approx(toy.mutual_information(s), rel=1e-8)


def test_kl_gaussian_against_scipy_entropy_identity():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 3))
    s0 = a @ a.T + 0.5 * np.eye(3)
    m0 = rng.standard_normal(3)
    # KL(N0‖N(0,I)) = −H(N0) − E_N0[log N(0,I)]
    cross = 0.5 * (np.trace(s0) + m0 @ m0) + 1.5 * np.log(2 * np.pi)
    expected = -stats.multivariate_normal(m0, s0).entropy() + cross
    assert theory.kl_gaussian(m0, s0) == pytest.approx(expected, rel=1e-12)
    assert theory.kl_gaussian(m0, s0, m0, s0) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="cov0"):
        theory.kl_gaussian(m0, -s0)
    with pytest.raises(ValueError, match="shapes"):
        theory.kl_gaussian(m0, np.eye(2))


def test_population_likelihood_peaks_at_the_collapsed_model():
    deltas = np.linspace(-3, 3, 121)
    ll = theory.location_mixture_population_loglik(deltas, weight=0.7)
    assert deltas[np.argmax(ll)] == pytest.approx(0.0, abs=1e-12)
    assert ll.max() == pytest.approx(-0.5 * np.log(2 * np.pi * np.e), abs=1e-12)
    assert np.all(ll <= ll.max() + 1e-15)


def test_grid_posterior_normalisation_and_quadrature_against_quad():
    g = np.linspace(0, 1, 2001)
    log_un = stats.beta.logpdf(g[1:-1], 3, 7)
    log_un = np.concatenate([[-np.inf], log_un, [-np.inf]])
    post = GridPosterior(g, log_un, log_un)
    assert np.trapezoid(post.density, g) == pytest.approx(1.0, abs=1e-14)
    assert post.mean() == pytest.approx(0.3, abs=1e-6)
    assert post.sd() == pytest.approx(stats.beta(3, 7).std(), rel=1e-5)
    assert post.kl_to_prior() == pytest.approx(0.0, abs=1e-14)
    assert post.quantile(0.5) == pytest.approx(stats.beta(3, 7).median(), abs=1e-4)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.DiscreteToy([0.5, 0.6]), "prior"),
        (lambda: theory.DiscreteToy([1.0]), "prior"),
        (lambda: theory.DiscreteToy().loglik([np.nan], 1.0), "x"),
        (lambda: theory.GaussianToy(0.0), "sigma"),
        (lambda: theory.GaussianToy(-1.0), "sigma"),
        (lambda: theory.is_collapsed(-1.0), "posterior_kl"),
        (lambda: theory.is_collapsed(0.0, tol=0.0), "tol"),
        (lambda: theory.log_posterior([[0.0]], [0.0]), "log_prior"),
        (lambda: theory.log_posterior([0.0, 0.0], [0.0, 0.0, 0.0]), "log_lik"),
        (lambda: theory.log_posterior([0.0, np.nan], [0.0, 0.0]), "log_prior"),
        (lambda: theory.location_mixture_population_loglik(1.0, weight=1.0), "weight"),
        (lambda: GridPosterior([0, 1, 1], [0, 0, 0]), "grid"),
        (lambda: GridPosterior([0, 1, 2], [0, 0]), "log_unnormalised"),
        (lambda: GridPosterior([0, 1, 2], [-np.inf] * 3), "log_unnormalised"),
        (lambda: GridPosterior([0, 1, 2], [0, 0, 0]).kl_to_prior(), "log_prior"),
        (lambda: GridPosterior([0, 1, 2], [0, 0, 0]).quantile(1.5), "q"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
