"""Probabilistic PCA: the closed-form posterior against brute force, scipy and the paper's R output; the theorem."""
import re

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import logsumexp

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from identkit import figures  # noqa: E402
from identkit.classical.ppca import PPCA, nonidentifiable_directions, reference_W  # noqa: E402

RNG = np.random.default_rng(7)
W_FULL = reference_W("full_rank")
W_ZERO = reference_W("zero_column")
W_REP = reference_W("repeated")


def _r_vector(text: str, name: str) -> np.ndarray:
    """The numbers of ``name <- structure(c(...), .Dim = ...)`` in an R dump() file."""
    m = re.search(rf"^{name} <-\s*structure\(c\(([^)]*)\)", text, flags=re.M)
    assert m, f"{name} not found in the R dump"
    return np.array([float(v) for v in m.group(1).split(",")])


# ---------------------------------------------------------------- the theorem: unseen coordinate = prior
@pytest.mark.parametrize("sigma", [0.05, 0.1, 1.0, 7.0])
def test_zero_column_posterior_is_the_prior_exactly(sigma):
    model = PPCA(W_ZERO, sigma)
    x = np.vstack([model.sample(200, seed=3)[0], 50.0 * RNG.standard_normal((20, 5)), np.zeros(5)])
    mean, cov = model.posterior(x)
    assert np.all(mean[:, 1] == 0.0)
    assert cov[1, 1] == pytest.approx(1.0, abs=1e-14)
    assert cov[0, 1] == 0.0 and cov[1, 0] == 0.0
    mkl = model.marginal_kl_to_prior(x)
    assert np.max(np.abs(mkl[:, 1])) < 1e-12
    assert np.all(mkl[:, 0] > 1e-3)  # the identifiable coordinate does move away from the prior
    # and the joint KL is exactly the KL of z₁'s marginal (z₂ independent of z₁ and equal to its prior)
    np.testing.assert_allclose(model.kl_to_prior(x), mkl[:, 0], rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(D=st.integers(1, 6), K=st.integers(2, 4), col=st.integers(0, 3),
       sigma=st.floats(0.05, 20.0), seed=st.integers(0, 2**16))
def test_any_zero_column_collapses(D, K, col, sigma, seed):
    col = col % K
    rng = np.random.default_rng(seed)
    W = 3.0 * rng.standard_normal((D, K))
    W[:, col] = 0.0
    model = PPCA(W, sigma)
    x = 5.0 * rng.standard_normal((10, D))
    mean, cov = model.posterior(x)
    assert np.all(mean[:, col] == 0.0)
    assert abs(cov[col, col] - 1.0) < 1e-12
    assert np.all(np.delete(cov[col], col) == 0.0)
    assert np.max(np.abs(model.marginal_kl_to_prior(x)[:, col])) < 1e-12


def test_repeated_columns_collapse_a_direction_not_a_coordinate():
    null = nonidentifiable_directions(W_REP)
    np.testing.assert_allclose(null, [[1 / np.sqrt(2), -1 / np.sqrt(2)]], atol=1e-12)
    assert nonidentifiable_directions(W_FULL).shape == (0, 2)
    np.testing.assert_allclose(nonidentifiable_directions(W_ZERO), [[0.0, 1.0]], atol=1e-12)
    model = PPCA(W_REP, 1.0)
    x, _ = model.sample(100, seed=4)
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    mean, sd = model.marginal_posterior(x, directions=np.vstack([u, null[0]]))
    np.testing.assert_allclose(mean[:, 1], 0.0, atol=1e-12)
    assert sd[1] == pytest.approx(1.0, abs=1e-12)
    assert sd[0] < 0.5
    kl = model.marginal_kl_to_prior(x, directions=np.vstack([u, null[0]]))
    assert np.max(np.abs(kl[:, 1])) < 1e-12
    assert np.all(model.marginal_kl_to_prior(x)[:, :] > 0)  # neither coordinate collapses fully
    assert 0.5 < np.sqrt(model.posterior_cov[0, 0]) < 1.0


# ---------------------------------------------------------------- closed form vs independent computations
@pytest.mark.parametrize("W, sigma", [(W_FULL, 1.0), (W_FULL, 0.5), (W_ZERO, 1.0), (W_REP, 2.0)])
def test_posterior_matches_brute_force_quadrature(W, sigma):
    """Grid posterior ∝ N(z; 0, I) · exp(log p(x | z)) on [−6, 6]², normalised; compare mean and covariance."""
    model = PPCA(W, sigma)
    x = model.sample(3, seed=11)[0][2]
    g = np.linspace(-6, 6, 601)
    Z1, Z2 = np.meshgrid(g, g)
    Z = np.column_stack([Z1.ravel(), Z2.ravel()])
    logp = stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(Z) + model.loglik(x, Z)
    w = np.exp(logp - logsumexp(logp))
    m = w @ Z
    c = (Z - m).T @ ((Z - m) * w[:, None])
    mean, cov = model.posterior(x)
    np.testing.assert_allclose(m, mean, atol=1e-4)
    np.testing.assert_allclose(c, cov, atol=1e-4)


def test_loglik_matches_scipy_and_chunking():
    model = PPCA(W_FULL, 0.7)
    x = model.sample(13, seed=2)[0]
    z = 1.5 * RNG.standard_normal((17, 2))
    ll = model.loglik(x, z)
    assert ll.shape == (13, 17)
    ref = np.array([[stats.multivariate_normal(W_FULL @ zb, 0.49 * np.eye(5)).logpdf(xa) for zb in z] for xa in x])
    np.testing.assert_allclose(ll, ref, rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(model.loglik(x, z, chunk_elements=7), ll)  # chunked = unchunked
    assert model.loglik(x[0], z).shape == (17,)
    assert model.loglik(x, z[0]).shape == (13,)
    assert np.ndim(model.loglik(x[0], z[0])) == 0


def test_log_marginal_matches_scipy():
    model = PPCA(W_REP, 0.3)  # rank-deficient W: C = WWᵀ + σ²I is still PD
    x = model.sample(50, seed=5)[0]
    ref = stats.multivariate_normal(np.zeros(5), W_REP @ W_REP.T + 0.09 * np.eye(5)).logpdf(x)
    np.testing.assert_allclose(model.log_marginal(x), ref, rtol=1e-12)
    assert model.log_marginal(x[0]) == pytest.approx(ref[0], rel=1e-12)


def test_reference_surface_from_the_paper(reference_data):
    """The R surface: Σ over 500 recycled zeros of log N(0; (Wz)_d, 1) = 100 · log p(x = 0 | z), σ = 1."""
    text = (reference_data / "twod_ppca.data.R").read_text()
    W = _r_vector(text, "w").reshape(2, 5).T  # .Dim c(5, 2), column-major
    ref = np.loadtxt(reference_data / "twod_ppca_ll_zs_true.csv", delimiter=",", skiprows=1, usecols=1)
    g = np.linspace(-2, 2, 50)
    Z1, Z2 = np.meshgrid(g, g)  # ravel: z₁ fastest, like expand.grid
    Z = np.column_stack([Z1.ravel(), Z2.ravel()])
    surface = 100.0 * PPCA(W, 1.0).loglik(np.zeros(5), Z)
    np.testing.assert_allclose(surface, ref, rtol=1e-10)
    # the reference's axes: with z₁ and z₂ swapped the surface does not match
    assert np.max(np.abs(100.0 * PPCA(W, 1.0).loglik(np.zeros(5), Z[:, ::-1]) - ref)) > 1.0


# ---------------------------------------------------------------- collapse grows with σ
def test_kl_decreases_monotonically_in_sigma_for_fixed_x():
    x = PPCA(W_FULL, 1.0).sample(20, seed=8)[0]
    sigmas = np.geomspace(0.02, 50, 120)
    kl = np.array([PPCA(W_FULL, s).kl_to_prior(x) for s in sigmas])  # (n_sigma, n)
    assert np.all(np.diff(kl, axis=0) < 0)
    mkl = np.array([PPCA(W_FULL, s).marginal_kl_to_prior(x) for s in sigmas])
    assert np.all(np.diff(mkl, axis=0) < 0)
    sd = np.array([np.sqrt(np.diag(PPCA(W_FULL, s).posterior_cov)) for s in sigmas])
    assert np.all(np.diff(sd, axis=0) > 0) and np.all(sd < 1)
    assert kl[-1].max() < 0.05  # approaching non-identifiable: the posterior approaches the prior


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), s1=st.floats(0.05, 10.0), ratio=st.floats(1.01, 10.0))
def test_kl_larger_at_smaller_sigma(seed, s1, ratio):
    rng = np.random.default_rng(seed)
    W = 2.0 * rng.standard_normal((5, 2))
    x = 3.0 * rng.standard_normal((4, 5))
    assert np.all(PPCA(W, s1).kl_to_prior(x) > PPCA(W, s1 * ratio).kl_to_prior(x))


def test_expected_kl_is_mutual_information_and_matches_monte_carlo():
    model = PPCA(W_FULL, 1.0)
    x = model.sample(40_000, seed=9)[0]
    mkl = model.marginal_kl_to_prior(x)
    se = mkl.std(axis=0) / np.sqrt(len(x))
    assert np.all(np.abs(mkl.mean(axis=0) - model.expected_kl_to_prior()) < 5 * se)
    kl = model.kl_to_prior(x)
    assert abs(kl.mean() - model.mutual_information()) < 5 * kl.std() / np.sqrt(len(x))
    # law of total variance: Σ + Cov_x(μ) = I exactly, with Cov_x(μ) = A C Aᵀ
    A = np.linalg.solve(W_FULL.T @ W_FULL + np.eye(2), W_FULL.T)
    C = W_FULL @ W_FULL.T + np.eye(5)
    np.testing.assert_allclose(model.posterior_cov + A @ C @ A.T, np.eye(2), atol=1e-12)


# ---------------------------------------------------------------- properties over random parameters
@settings(max_examples=50, deadline=None)
@given(D=st.integers(1, 7), K=st.integers(1, 4), sigma=st.floats(0.01, 30.0), scale=st.floats(0.0, 5.0),
       seed=st.integers(0, 2**16))
def test_random_models_are_consistent(D, K, sigma, scale, seed):
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((D, K))
    model = PPCA(W, sigma)
    x, z = model.sample(6, seed=seed)
    x2, z2 = model.sample(6, seed=seed)
    assert x.shape == (6, D) and z.shape == (6, K)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(z, z2)
    mean, cov = model.posterior(x)
    assert mean.shape == (6, K) and cov.shape == (K, K)
    np.testing.assert_array_equal(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0
    assert np.all(np.diag(cov) <= 1 + 1e-12)  # observing x never widens a coordinate beyond the prior
    assert np.all(model.kl_to_prior(x) >= -1e-12)
    assert np.all(model.marginal_kl_to_prior(x) >= -1e-12)
    # Bayes' rule ties all four densities together: log p(x|z) + log p(z) − log p(z|x) = log p(x)
    zq = rng.standard_normal((3, K))
    lhs = model.loglik(x, zq) + model.log_prior(zq)[None, :] - model.posterior_logpdf(zq, x)
    np.testing.assert_allclose(lhs, np.repeat(model.log_marginal(x)[:, None], 3, axis=1),
                               rtol=1e-8, atol=1e-6 * (1 + np.abs(lhs).max()))


def test_sample_matches_the_model_moments():
    model = PPCA(W_FULL, 0.8)
    x, z = model.sample(60_000, seed=10)
    np.testing.assert_allclose(np.cov(x.T), W_FULL @ W_FULL.T + 0.64 * np.eye(5), atol=0.25)
    np.testing.assert_allclose(np.cov(z.T), np.eye(2), atol=0.03)
    assert not np.array_equal(model.sample(5, seed=1)[0], model.sample(5, seed=2)[0])


def test_single_point_shapes():
    model = PPCA(W_FULL, 1.0)
    x = model.sample(4, seed=1)[0]
    mean, cov = model.posterior(x[1])
    np.testing.assert_array_equal(mean, model.posterior(x)[0][1])
    assert np.ndim(model.kl_to_prior(x[1])) == 0
    assert model.marginal_kl_to_prior(x[1]).shape == (2,)
    assert model.marginal_kl_to_prior(x, directions=[0.6, 0.8]).shape == (4, 1)


def test_reference_W_cases():
    assert np.all(W_ZERO[:, 1] == 0) and np.array_equal(W_ZERO[:, 0], W_FULL[:, 0])
    assert np.array_equal(W_REP[:, 0], W_REP[:, 1])
    assert np.linalg.matrix_rank(W_FULL) == 2
    np.testing.assert_array_equal(reference_W("full_rank", seed=3), reference_W("full_rank", seed=3))
    assert reference_W("full_rank", D=8).shape == (8, 2)


# ---------------------------------------------------------------- every ValueError path
@pytest.mark.parametrize("W, sigma, match", [
    (W_FULL, 0.0, "sigma"), (W_FULL, -1.0, "sigma"), (W_FULL, float("nan"), "sigma"), (W_FULL, np.inf, "sigma"),
    (W_FULL, True, "sigma"), (W_FULL, "1", "sigma"),
    (np.ones(5), 1.0, "W"), (np.ones((2, 2, 2)), 1.0, "W"), (np.full((5, 2), np.nan), 1.0, "W"),
    (np.ones((0, 2)), 1.0, "W"), (np.ones((5, 0)), 1.0, "W"), ([["a", "b"]], 1.0, "W"),
])
def test_constructor_rejects_bad_arguments(W, sigma, match):
    with pytest.raises(ValueError, match=match):
        PPCA(W, sigma)


def test_methods_reject_bad_arguments():
    model = PPCA(W_FULL, 1.0)
    good_x, good_z = np.zeros((3, 5)), np.zeros((3, 2))
    for bad_x in (np.zeros((3, 4)), np.zeros(4), np.zeros((2, 3, 5)), np.full((3, 5), np.nan),
                  np.zeros((0, 5)), np.array([[np.inf] * 5])):
        for call in (model.posterior, model.kl_to_prior, model.marginal_kl_to_prior, model.log_marginal,
                     lambda v: model.loglik(v, good_z), lambda v: model.posterior_logpdf(good_z, v)):
            with pytest.raises(ValueError, match="x"):
                call(bad_x)
    for bad_z in (np.zeros((3, 3)), np.zeros(5), np.full((2, 2), np.nan), np.zeros((0, 2))):
        with pytest.raises(ValueError, match="z"):
            model.loglik(good_x, bad_z)
        with pytest.raises(ValueError, match="z"):
            model.log_prior(bad_z)
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n"):
            model.sample(n, seed=0)
    with pytest.raises(ValueError, match="seed"):
        model.sample(3, seed=-1)
    with pytest.raises(ValueError, match="chunk_elements"):
        model.loglik(good_x, good_z, chunk_elements=0)
    for d in ([1.0, 1.0], [[1.0, 0.0, 0.0]], [np.nan, 1.0], [0.0, 0.0]):
        with pytest.raises(ValueError, match="directions"):
            model.marginal_kl_to_prior(good_x, directions=d)
        with pytest.raises(ValueError, match="directions"):
            model.expected_kl_to_prior(directions=d)
    with pytest.raises(ValueError, match="sigma"):
        model.with_sigma(0.0)


def test_helpers_reject_bad_arguments():
    with pytest.raises(ValueError, match="case"):
        reference_W("diagonal")
    with pytest.raises(ValueError, match="D"):
        reference_W("full_rank", D=1)
    with pytest.raises(ValueError, match="scale"):
        reference_W("full_rank", scale=0.0)
    with pytest.raises(ValueError, match="seed"):
        reference_W("full_rank", seed=-2)
    with pytest.raises(ValueError, match="W"):
        nonidentifiable_directions(np.ones(3))
    with pytest.raises(ValueError, match="rtol"):
        nonidentifiable_directions(W_FULL, rtol=-1.0)


# ---------------------------------------------------------------- figures render (quick mode)
PPCA_FIGURES = ["03_ppca_loglik_surface", "03_ppca_posterior", "03_ppca_sigma_marginals",
                "03_ppca_collapse_curve", "03_ppca_repeated_columns"]


@pytest.mark.parametrize("name", PPCA_FIGURES)
def test_figures_render(name):
    spec = figures.registry()[name]
    assert spec.notebook == "03_probabilistic_pca"
    fig = figures.make(name, quick=True)
    try:
        assert len(fig.axes) >= 2
    finally:
        plt.close(fig)
