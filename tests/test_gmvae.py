"""GMVAE with the exact cluster posterior (identkit.classical.gmvae) and its torch twin (neural.exact_gmvae)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from identkit.classical.gmvae import (DEFAULT_ORDER, GMVAE, AffineDecoder, QuadratureError,
                                      affine_cluster_log_likelihood, affine_cluster_posterior, gauss_hermite_rule)

SEED = 1234


def _random_mixture(rng, K, d, scale=1.5):
    means = rng.normal(scale=scale, size=(K, d))
    B = rng.normal(size=(K, d, d))
    covs = 0.4 * B @ np.swapaxes(B, 1, 2) + 0.3 * np.eye(d)
    return means, covs


# ---------------------------------------------------------------------------------------------------------------
# closed form for affine decoders
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2])
def test_affine_quadrature_matches_closed_form(d):
    rng = np.random.default_rng(SEED + d)
    means, covs = _random_mixture(rng, 3, d)
    A, b = rng.normal(scale=0.7, size=(3, d)), rng.normal(size=3)
    g = GMVAE(means, covs, AffineDecoder(A, b), sigma=1.0)
    x, _, _ = g.sample(300, SEED)
    ll_ref = affine_cluster_log_likelihood(x, means, covs, A, b, 1.0)
    np.testing.assert_allclose(g.cluster_log_likelihood(x), ll_ref, atol=1e-8, rtol=0)
    np.testing.assert_allclose(g.cluster_posterior(x), affine_cluster_posterior(x, means, covs, A, b, 1.0),
                               atol=1e-8, rtol=0)
    assert g.quadrature_error(x) < 1e-8


def test_quadrature_matches_scipy_quad_nonlinear_d1():
    """An independent reference: adaptive quadrature of ∫ N(w; μ, s²) N(x; w + 0.5 sin w, σ²) dw."""
    f = lambda w: w + 0.5 * np.sin(w)  # noqa: E731
    g = GMVAE([[-1.0], [1.5]], [0.8, 0.5], f, sigma=0.7, order=120)
    xs = np.array([[-1.5], [0.1], [2.0]])
    ll = g.cluster_log_likelihood(xs)
    for i, x in enumerate(xs[:, 0]):
        for k, (mu, var) in enumerate([(-1.0, 0.8), (1.5, 0.5)]):
            ref, _ = integrate.quad(lambda w: stats.norm.pdf(w, mu, np.sqrt(var)) * stats.norm.pdf(x, f(w), 0.7),
                                    -15, 15, epsabs=0, epsrel=1e-12, limit=200)
            assert abs(ll[i, k] - np.log(ref)) < 1e-8


# ---------------------------------------------------------------------------------------------------------------
# exact properties
# ---------------------------------------------------------------------------------------------------------------
def test_posterior_rows_sum_to_one_and_kl_bounds():
    rng = np.random.default_rng(SEED)
    means, covs = _random_mixture(rng, 4, 2)
    g = GMVAE(means, covs, lambda w: np.stack([np.sin(w[:, 0]), w[:, 1], w[:, 0] * w[:, 1]], 1), 0.8, order=24)
    x, _, _ = g.sample(200, SEED)
    p = g.cluster_posterior(x)
    assert p.shape == (200, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    kl = g.kl_to_prior(x)
    assert np.all(kl >= 0) and np.all(kl <= np.log(4) + 1e-12)
    # KL = log K − H(p)
    H = -np.sum(p * np.log(p), axis=1)
    np.testing.assert_allclose(kl, np.log(4) - H, atol=1e-10)
    # log p(x) = logsumexp_k log p(x|k) − log K
    np.testing.assert_allclose(g.log_marginal(x), np.log(np.exp(g.cluster_log_likelihood(x)).mean(axis=1)),
                               rtol=1e-10)


@pytest.mark.parametrize("d", [1, 2])
def test_decoder_ignoring_w_gives_exactly_the_prior(d):
    rng = np.random.default_rng(SEED)
    means, covs = _random_mixture(rng, 3, d, scale=4.0)
    g = GMVAE(means, covs, lambda w: np.tile([0.3, -1.0], (w.shape[0], 1)), sigma=0.5)
    x = rng.normal(size=(100, 2)) * 3
    np.testing.assert_allclose(g.cluster_posterior(x), 1 / 3, atol=1e-12, rtol=0)
    np.testing.assert_allclose(g.kl_to_prior(x), 0.0, atol=1e-12)


def test_permuting_cluster_labels_permutes_posterior_columns():
    rng = np.random.default_rng(SEED)
    means, covs = _random_mixture(rng, 3, 2)
    f = lambda w: np.stack([w[:, 0] + 0.3 * w[:, 1] ** 2, np.tanh(w[:, 1])], 1)  # noqa: E731
    g = GMVAE(means, covs, f, 0.6, order=20)
    perm = np.array([2, 0, 1])
    gp = GMVAE(means[perm], covs[perm], f, 0.6, order=20)
    x, _, _ = g.sample(100, SEED)
    np.testing.assert_allclose(gp.cluster_posterior(x), g.cluster_posterior(x)[:, perm], atol=1e-13)


@pytest.mark.parametrize("fold", [np.abs, np.square])
def test_fold_decoder_with_symmetric_clusters_is_exactly_uniform(fold):
    # a mirror-symmetric fixed rule: exact symmetry, whatever the accuracy of the kinked |w| integrand
    g = GMVAE([[-2.0], [2.0]], [0.7, 0.7], fold, sigma=0.3, order=96)
    x, _, _ = g.sample(500, SEED)
    np.testing.assert_allclose(g.cluster_posterior(x), 0.5, atol=1e-12, rtol=0)
    # the same clusters with an injective decoder are nearly perfectly identified
    assert GMVAE([[-2.0], [2.0]], [0.7, 0.7], lambda w: w, 0.3).kl_to_prior(x).mean() > 0.5


def test_d2_decoder_of_the_other_coordinate_collapses_exactly():
    covs = np.stack([np.diag([0.5, 1.2])] * 2)
    g = GMVAE([[-3.0, 0.4], [3.0, 0.4]], covs, lambda w: np.stack([w[:, 1], np.sin(3 * w[:, 1])], 1), 0.4,
              order=16)
    x, _, _ = g.sample(300, SEED)
    np.testing.assert_allclose(g.cluster_posterior(x), 0.5, atol=1e-12, rtol=0)


def test_three_clusters_fold_merges_only_two():
    g = GMVAE([[-3.0], [0.0], [3.0]], [1.0, 1.0, 1.0], np.abs, 0.3, order=96)
    x, _, _ = g.sample(300, SEED)
    p = g.cluster_posterior(x)
    np.testing.assert_allclose(p[:, 0], p[:, 2], atol=1e-12, rtol=0)
    assert np.max(p[:, 1]) > 0.9  # the middle cluster stays identifiable


def test_quadrature_error_decreases_with_order():
    f = lambda w: np.stack([w[:, 0], 0.5 * w[:, 0] ** 2], 1)  # noqa: E731
    g = GMVAE([[-2.0], [1.0]], [1.0, 0.5], f, 0.7)
    x, _, _ = g.sample(200, SEED)
    errs = [g.quadrature_error(x, order=o) for o in (8, 16, 32, 64)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-5
    lm = [g.log_marginal_error(x, order=o) for o in (8, 16, 32, 64)]
    assert all(b < a for a, b in zip(lm, lm[1:])), lm


def test_gauss_hermite_rule_is_exact_for_polynomials_and_high_orders():
    for d in (1, 2):
        t, logw = gauss_hermite_rule(d, 10)
        w = np.exp(logw)
        np.testing.assert_allclose(w.sum(), np.pi ** (d / 2), rtol=1e-13)
        np.testing.assert_allclose((w * t[:, 0] ** 4).sum(), 0.75 * np.pi ** (d / 2), rtol=1e-12)
    t, logw = gauss_hermite_rule(1, 400)  # beyond numpy's hermgauss range
    assert np.all(np.isfinite(t)) and np.all(t[:, 0] == -t[::-1, 0])
    np.testing.assert_allclose(np.exp(logw).sum(), np.sqrt(np.pi), rtol=1e-12)


def test_sample_shapes_and_seeding():
    g = GMVAE([[0.0, 1.0], [2.0, 0.0]], np.stack([np.eye(2)] * 2), lambda w: w @ np.ones((2, 3)), 0.5, order=8)
    x, w, z = g.sample(50, 3)
    assert x.shape == (50, 3) and w.shape == (50, 2) and z.shape == (50,)
    x2, w2, z2 = g.sample(50, 3)
    assert np.array_equal(x, x2) and np.array_equal(z, z2)
    assert not np.array_equal(x, g.sample(50, 4)[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(K=st.integers(1, 4), d=st.integers(1, 2), sigma=st.floats(0.8, 3.0), seed=st.integers(0, 10_000),
       m=st.integers(1, 3))
def test_property_affine_agreement_and_normalisation(K, d, sigma, seed, m):
    rng = np.random.default_rng(seed)
    means, covs = _random_mixture(rng, K, d)
    A, b = rng.normal(scale=0.5, size=(m, d)), rng.normal(size=m)
    g = GMVAE(means, covs, AffineDecoder(A, b), sigma)  # the default, adaptive rule
    x, _, _ = g.sample(40, seed)
    p = g.cluster_posterior(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p, affine_cluster_posterior(x, means, covs, A, b, sigma), atol=1e-8)
    assert np.all(g.kl_to_prior(x) >= 0)


@settings(max_examples=20, deadline=None)
@given(mu=st.floats(0.5, 4.0), var=st.floats(0.2, 2.0), sigma=st.floats(0.2, 2.0), seed=st.integers(0, 10_000))
def test_property_symmetric_fold_is_uniform(mu, var, sigma, seed):
    g = GMVAE([[-mu], [mu]], [var, var], np.abs, sigma, order=32)
    x = np.random.default_rng(seed).normal(scale=3, size=(30, 1))
    np.testing.assert_allclose(g.cluster_posterior(x), 0.5, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# the default, adaptive rule: exact to its tolerance where the prior-centred rule is not
# ---------------------------------------------------------------------------------------------------------------
def _affine_issue_case(seed=0):
    """K = 3 in d = 2, means ~ N(0, 2²), covariances 0.5/1.0/1.5 I, m = 4, singular values 2.3 and 1.4."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=2.0, size=(3, 2))
    covs = np.stack([v * np.eye(2) for v in (0.5, 1.0, 1.5)])
    U, _ = np.linalg.qr(rng.normal(size=(4, 2)))
    V, _ = np.linalg.qr(rng.normal(size=(2, 2)))
    return means, covs, U @ np.diag([2.3, 1.4]) @ V.T, rng.normal(size=4)


def _quad_log_likelihood(x, mu, var, f, sigma, lo=-10.0, hi=10.0, pieces=40):
    """log ∫ N(w; μ, var) Π_j N(x_j; f_j(w), σ²) dw by scipy's adaptive quad on many sub-intervals (d = 1)."""
    def h(w):
        fw = f(np.array([[w]]))[0]
        return stats.norm.pdf(w, mu, np.sqrt(var)) * np.prod(stats.norm.pdf(x, fw, sigma))
    edges = np.linspace(lo, hi, pieces + 1)
    return np.log(sum(integrate.quad(h, a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
                      for a, b in zip(edges[:-1], edges[1:])))


def test_adaptive_default_meets_its_tolerance_where_the_prior_rule_does_not_affine_d2():
    means, covs, A, b = _affine_issue_case()
    g = GMVAE(means, covs, AffineDecoder(A, b), 0.6)
    x, _, _ = g.sample(300, SEED)
    closed = affine_cluster_posterior(x, means, covs, A, b, 0.6)
    assert np.max(np.abs(g.cluster_posterior(x) - closed)) < 1e-8
    np.testing.assert_allclose(g.log_marginal(x),
                               np.log(np.exp(affine_cluster_log_likelihood(x, means, covs, A, b, 0.6)).mean(1)),
                               atol=1e-8, rtol=0)
    assert g.quadrature_error(x) <= 1e-8 and g.log_marginal_error(x) <= 1e-8
    # the prior-centred rule of the old default order is visibly off on the same case
    fixed = GMVAE(means, covs, AffineDecoder(A, b), 0.6, order=DEFAULT_ORDER[2])
    assert np.max(np.abs(fixed.cluster_posterior(x) - closed)) > 1e-4


def test_adaptive_default_on_a_sharp_nonlinear_likelihood_matches_scipy_quad():
    """σ = 0.08 with a tanh/quadratic decoder: the likelihood is far narrower than the prior."""
    f = lambda w: np.stack([np.tanh(w[:, 0]), 0.5 * w[:, 0] ** 2], 1)  # noqa: E731
    g = GMVAE([[-1.0], [1.0]], [1.0, 1.0], f, 0.08)
    x, _, _ = g.sample(6, SEED)
    ll = g.cluster_log_likelihood(x)
    ref = np.array([[_quad_log_likelihood(xi, mu, 1.0, f, 0.08) for mu in (-1.0, 1.0)] for xi in x])
    np.testing.assert_allclose(ll, ref, atol=1e-8, rtol=0)
    post_ref = np.exp(ref - np.logaddexp(ref[:, :1], ref[:, 1:]))
    assert np.max(np.abs(g.cluster_posterior(x) - post_ref)) < 1e-8
    assert np.max(np.abs(GMVAE([[-1.0], [1.0]], [1.0, 1.0], f, 0.08, order=96).cluster_posterior(x) - post_ref)) > 0.1


def test_adaptive_rule_finds_both_modes_of_a_fold_within_one_cluster():
    """f(w) = w² with a broad cluster around 0.3: x ≈ a² has two modes ±a of comparable mass in one cluster."""
    f = lambda w: w ** 2  # noqa: E731
    g = GMVAE([[0.3], [2.5]], [1.5, 0.4], f, 0.15)
    x = np.array([[1.0], [2.2], [0.4], [4.0]])
    ll = g.cluster_log_likelihood(x)
    ref = np.array([[_quad_log_likelihood(xi, mu, var, f, 0.15) for mu, var in ((0.3, 1.5), (2.5, 0.4))]
                    for xi in x])
    np.testing.assert_allclose(ll, ref, atol=1e-8, rtol=0)


def test_adaptive_rule_d2_nonlinear_matches_a_fine_trapezoid():
    def f(w):
        return np.stack([w[:, 0] + 0.5 * np.sin(2 * w[:, 1]), w[:, 1] + 0.3 * w[:, 1] ** 3, w[:, 0] * w[:, 1]], 1)
    means, covs = np.array([[-1.0, 0.5], [1.2, -0.4]]), np.stack([np.diag([0.8, 0.5]), [[1.0, 0.3], [0.3, 0.6]]])
    g = GMVAE(means, covs, f, 0.12)
    x, _, _ = g.sample(3, SEED)
    u = np.linspace(-6, 6, 1201)
    W = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    fw = f(W)
    for i in range(3):
        for k in range(2):
            lh = stats.multivariate_normal(means[k], covs[k]).logpdf(W) + \
                stats.norm.logpdf(x[i], fw, 0.12).sum(1)
            ref = np.log(np.sum(np.exp(lh - lh.max()))) + lh.max() + 2 * np.log(u[1] - u[0])
            assert abs(g.cluster_log_likelihood(x[i:i + 1])[0, k] - ref) < 1e-7


def test_adaptive_rule_raises_naming_its_knobs_when_it_cannot_converge():
    f = lambda w: np.stack([np.tanh(w[:, 0]), 0.5 * w[:, 0] ** 2], 1)  # noqa: E731
    g = GMVAE([[-1.0], [1.0]], [1.0, 1.0], f, 0.08, max_order=8)
    with pytest.raises(QuadratureError, match="max_order=8.*tol"):
        g.cluster_posterior(g.sample(20, SEED)[0])
    with pytest.raises(ValueError, match="tol"):
        GMVAE([[-1.0], [1.0]], [1.0, 1.0], f, 0.08, tol=0.0)
    with pytest.raises(ValueError, match="max_order"):
        GMVAE([[-1.0], [1.0]], [1.0, 1.0], f, 0.08, max_order=1)


def test_adaptive_rule_of_a_constant_decoder_is_exactly_the_prior():
    g = GMVAE([[-1.0, 0.0], [2.0, 1.0]], np.stack([np.eye(2), 0.3 * np.eye(2)]),
              lambda w: np.tile([0.5, -0.2], (w.shape[0], 1)), 0.2)
    np.testing.assert_allclose(g.cluster_posterior(np.random.default_rng(1).normal(size=(20, 2))), 0.5,
                               atol=1e-14, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# ValueError paths
# ---------------------------------------------------------------------------------------------------------------
_MEANS, _COVS = [[-1.0], [1.0]], [[[1.0]], [[1.0]]]


@pytest.mark.parametrize("kwargs, name", [
    (dict(covs=[[[1.0]], [[-1.0]]]), "covs"),                                   # not PD
    (dict(covs=np.stack([[[1.0, 2.0], [2.0, 1.0]]] * 2), means=[[0, 0], [1, 1]]), "covs"),  # indefinite
    (dict(covs=[[[1.0, 0.5], [0.0, 1.0]]] * 2, means=[[0, 0], [1, 1]]), "covs"),  # not symmetric
    (dict(sigma=0.0), "sigma"), (dict(sigma=-1.0), "sigma"), (dict(sigma=np.nan), "sigma"),
    (dict(covs=[[[1.0]]] * 3), "covs"),                                          # K mismatch
    (dict(covs=[[[1.0, 0.0], [0.0, 1.0]]] * 2), "covs"),                          # d mismatch
    (dict(means=np.zeros((2, 3)), covs=np.stack([np.eye(3)] * 2)), "means"),      # d = 3
    (dict(means=[[np.nan], [1.0]]), "means"),
    (dict(decoder=lambda w: np.ones((w.shape[0] + 1, 1))), "decoder"),            # wrong rows
    (dict(decoder=lambda w: np.ones((w.shape[0], 1, 2))), "decoder"),             # wrong ndim
    (dict(decoder=lambda w: np.full((w.shape[0], 1), np.nan)), "decoder"),        # NaN
    (dict(decoder=lambda w: np.where(np.abs(w) > 3, np.inf, w)), "decoder"),      # inf at some nodes
    (dict(decoder=3.0), "decoder"),                                               # not callable
    (dict(order=0), "order"),
])
def test_constructor_errors_name_the_argument(kwargs, name):
    args = dict(means=_MEANS, covs=_COVS, decoder=lambda w: w, sigma=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        GMVAE(**args)


def test_x_and_method_errors():
    g = GMVAE([[-1.0, 0], [1.0, 0]], np.stack([np.eye(2)] * 2), lambda w: w, 1.0, order=8)
    with pytest.raises(ValueError, match="x"):
        g.cluster_posterior(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="x"):
        g.cluster_posterior(np.zeros(5))
    with pytest.raises(ValueError, match="x"):
        g.kl_to_prior([[np.nan, 0.0]])
    with pytest.raises(ValueError, match="order"):
        g.quadrature_error(np.zeros((2, 2)), order=-1)
    with pytest.raises(ValueError, match="seed"):
        g.sample(5, seed=-1)
    with pytest.raises(ValueError, match="n"):
        g.sample(0, seed=1)
    with pytest.raises(ValueError, match="b"):
        AffineDecoder(np.eye(2), np.zeros(3))
    with pytest.raises(ValueError, match="A"):
        affine_cluster_log_likelihood(np.zeros((2, 2)), [[0, 0]], [np.eye(2)], np.ones((2, 3)), None, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# torch: the exact marginal and a training smoke test
# ---------------------------------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


def test_torch_marginal_matches_numpy():
    from identkit.neural.exact_gmvae import GMVAEMLP, gh_log_marginal

    mlp = GMVAEMLP(2, 3, hidden=(16,), seed=SEED)
    rng = np.random.default_rng(SEED)
    means, covs = _random_mixture(rng, 3, 2)
    g = GMVAE(means, covs, mlp, 0.7, order=12)  # the torch module is wrapped to numpy float64
    x, _, _ = g.sample(64, SEED)
    lt = gh_log_marginal(x, mlp, means, covs, 0.7, order=12).detach().numpy()
    np.testing.assert_allclose(lt, g.log_marginal(x), atol=1e-10, rtol=0)


def test_torch_training_smoke_loss_decreases_and_is_seeded():
    from identkit.neural.exact_gmvae import fit_exact_gmvae

    x = np.random.default_rng(SEED).normal(size=(60, 2))
    means, covs = [[-2.0], [2.0]], [1.0, 1.0]
    kw = dict(order=12, hidden=(16,), seed=1, progress=False)
    fit = fit_exact_gmvae(x, means, covs, 0.7, steps=25, quick=False, **kw)
    assert fit.steps == 25 and fit.loglik.shape == (25,)
    assert fit.loglik[-1] > fit.loglik[0] + 0.2 and fit.loglik[-5:].mean() > fit.loglik[:5].mean()
    again = fit_exact_gmvae(x, means, covs, 0.7, steps=25, quick=False, **kw)
    np.testing.assert_array_equal(fit.loglik, again.loglik)
    quick = fit_exact_gmvae(x, means, covs, 0.7, steps=25, quick_steps=5, quick=True, **kw)
    assert quick.steps == 5


def test_torch_training_errors():
    from identkit.neural.exact_gmvae import GMVAEMLP, fit_exact_gmvae

    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="x"):
        fit_exact_gmvae(np.full((10, 2), np.nan), [[0.0]], [1.0], 1.0, steps=2, progress=False)
    with pytest.raises(ValueError, match="sigma"):
        fit_exact_gmvae(x, [[0.0]], [1.0], 0.0, steps=2, progress=False)
    with pytest.raises(ValueError, match="decoder"):
        fit_exact_gmvae(x, [[0.0]], [1.0], 1.0, decoder=GMVAEMLP(1, 3, hidden=(4,)), steps=2, progress=False)
    with pytest.raises(ValueError, match="activation"):
        GMVAEMLP(1, 2, activation="sigmoidish")
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit_exact_gmvae(np.full((10, 2), 1e200), [[0.0]], [1.0], 1e-100, steps=2, order=4, progress=False,
                        quick=False)


def test_kinked_fold_of_the_experiment_is_accurate_at_its_fixed_order():
    """The fold c(|z| − 3) is evaluated with the prior-centred rule of COLLAPSE_SETUP["fold_order"]: check its
    log p(x | z) on one-cluster data against scipy quad split at the kink w = 0 (both clusters give the same)."""
    from identkit.neural.exact_gmvae import COLLAPSE_SETUP, curve, fold_decoder

    x = GMVAE([[0.0]], [1.0], lambda w: curve(w[:, 0]), 0.4, order=64).sample(40, SEED)[0]
    g = GMVAE([[-3.0], [3.0]], [1.0, 1.0], fold_decoder, 0.4, order=COLLAPSE_SETUP["fold_order"])
    ll = g.cluster_log_likelihood(x)
    np.testing.assert_allclose(ll[:, 0], ll[:, 1], rtol=0, atol=1e-12)
    ref = np.empty(len(x))
    for i, xi in enumerate(x):
        def h(w, xi=xi):
            return stats.norm.pdf(w, 3.0) * np.prod(stats.norm.pdf(xi, fold_decoder(np.array([[w]]))[0], 0.4))
        ref[i] = np.log(sum(integrate.quad(h, a, b, epsabs=0, epsrel=1e-12, limit=400)[0]
                            for a, b in ((-12, -3), (-3, 0), (0, 3), (3, 12))))
    err = ll[:, 1] - ref
    assert np.max(np.abs(err)) < 2e-3 and abs(err.mean()) < 2e-5


def test_hand_made_decoders_of_the_experiment():
    """The fold decoder collapses exactly; the monotone one maps the bimodal prior onto N(0, 1)."""
    from identkit.neural.exact_gmvae import fold_decoder, monotone_decoder

    w = np.linspace(-8, 8, 2001)[:, None]
    u = monotone_decoder(w)[:, 0]
    assert np.all(np.diff(u) > 0)
    rng = np.random.default_rng(SEED)
    wz = np.where(rng.random(20000) < 0.5, -3.0, 3.0) + rng.normal(size=20000)
    assert stats.kstest(monotone_decoder(wz[:, None])[:, 0], "norm").pvalue > 1e-3
    g = GMVAE([[-3.0], [3.0]], [1.0, 1.0], fold_decoder, 0.4, order=128)  # kinked: a symmetric fixed rule
    np.testing.assert_allclose(g.cluster_posterior(g.sample(100, SEED)[0]), 0.5, atol=1e-12)


@pytest.mark.parametrize("order", [None, 24])
def test_evaluate_is_one_pass_of_the_separate_methods(order):
    f = lambda w: np.concatenate([w, 0.5 * w**2 - 1.0], axis=1)  # noqa: E731
    g = GMVAE([[-1.5], [1.5]], [1.0, 0.6], f, 0.3, order=order)
    x, _, _ = g.sample(200, SEED)
    ev = g.evaluate(x)
    np.testing.assert_array_equal(ev.log_likelihood, g.cluster_log_likelihood(x))
    np.testing.assert_allclose(ev.log_marginal, g.log_marginal(x), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ev.posterior, g.cluster_posterior(x), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ev.kl, g.kl_to_prior(x), rtol=0, atol=1e-14)
    assert ev.quadrature_error == pytest.approx(g.quadrature_error(x), rel=1e-9, abs=1e-15)
    assert ev.log_marginal_error == pytest.approx(g.log_marginal_error(x), rel=1e-9, abs=1e-15)
    assert np.isnan(g.evaluate(x, errors=False).quadrature_error) == (order is not None)


def test_collapse_fit_is_cached_and_restored_exactly(tmp_path, monkeypatch):
    """The lesson-05 fit is kept in the model cache: a second call loads it, bit for bit, without training."""
    import torch

    from identkit.neural import exact_gmvae

    monkeypatch.setenv("IDENTKIT_CACHE_DIR", str(tmp_path))
    x = GMVAE([[0.0]], [1.0], lambda w: exact_gmvae.curve(w[:, 0]), 0.4, order=32).sample(40, SEED)[0]
    args = dict(steps=5, seed=SEED, quick=True, progress=False)
    first = exact_gmvae._cached_collapse_fit(x, [[-3.0], [3.0]], [1.0, 1.0], 0.4, **args)
    assert len(list(tmp_path.glob("exact_gmvae-*.pt"))) == 1
    monkeypatch.setattr(exact_gmvae, "fit_exact_gmvae", lambda *a, **k: pytest.fail("trained again"))
    again = exact_gmvae._cached_collapse_fit(x, [[-3.0], [3.0]], [1.0, 1.0], 0.4, **args)
    np.testing.assert_array_equal(again.loglik, first.loglik)
    assert again.steps == first.steps == 60
    w = torch.linspace(-5, 5, 11, dtype=torch.float64)[:, None]
    with torch.no_grad():
        assert torch.equal(again.decoder(w), first.decoder(w))
