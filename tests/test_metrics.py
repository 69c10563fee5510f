"""Collapse metrics against closed forms on a linear-Gaussian model whose posterior is known exactly.

Model: z ~ N(0, s²I_K), x | z ~ N(Az + b, σ²I_D), with A = Q diag(a) (orthonormal Q) so that the exact posterior
is diagonal and can serve as the encoder of the model protocol:

    q(z|x) = p(z|x) = N(Σ Aᵀ(x − b)/σ², Σ),   Σ = diag(1/(1/s² + a_k²/σ²)),
    log p(x) = log N(x; b, s²AAᵀ + σ²I),
    I(x; z) = ½ log det(I + s²AᵀA/σ²) = ½ Σ_k log(1 + s²a_k²/σ²).

A column with a_k = 0 is a latent dimension the decoder ignores (exactly collapsed).
"""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from identkit import metrics
from identkit.neural import gaussian_log_prob


class LinearGaussian(torch.nn.Module):
    """Exact linear-Gaussian model implementing the model protocol (float64), exact posterior as encoder."""

    likelihood = "gaussian"

    def __init__(self, a=(2.0, 0.8, 0.0), data_dim=6, sigma=0.5, prior_scale=1.0, seed=0, encoder_inflate=1.0):
        super().__init__()
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(data_dim, len(a))))
        self.register_buffer("A", torch.tensor(q * np.asarray(a)))
        self.register_buffer("b", torch.tensor(rng.normal(size=data_dim)))
        self.a = np.asarray(a, dtype=float)
        self.sigma, self.prior_scale = sigma, prior_scale
        self.latent_dim, self.data_dim = len(a), data_dim
        self.encoder_inflate = encoder_inflate  # > 1: a deliberately imperfect (too wide) proposal

    def post_var(self):
        return 1.0 / (1.0 / self.prior_scale**2 + self.a**2 / self.sigma**2)

    def encode(self, x):
        var = torch.tensor(self.post_var(), dtype=x.dtype)
        mu = (x - self.b) @ self.A / self.sigma**2 * var
        return mu, torch.log(var * self.encoder_inflate).expand_as(mu)

    def decode(self, z):
        return z @ self.A.T + self.b

    def log_likelihood(self, x, z):
        return gaussian_log_prob(x, self.decode(z), math.log(self.sigma))

    def log_prior(self, z):
        s = self.prior_scale
        return (-0.5 * (z / s).square() - math.log(s) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        z = self.prior_scale * torch.randn(n, self.latent_dim, generator=g, dtype=torch.float64)
        return self.decode(z) + self.sigma * torch.randn(n, self.data_dim, generator=g, dtype=torch.float64)

    def log_marginal(self, x):
        a = self.A.numpy()
        cov = self.prior_scale**2 * a @ a.T + self.sigma**2 * np.eye(self.data_dim)
        return stats.multivariate_normal(self.b.numpy(), cov).logpdf(np.asarray(x))

    def mutual_information(self):
        return 0.5 * float(np.sum(np.log1p(self.prior_scale**2 * self.a**2 / self.sigma**2)))


@pytest.fixture(scope="module")
def model():
    return LinearGaussian()


@pytest.fixture(scope="module")
def data(model):
    return model.sample(3000, seed=1)


# ------------------------------------------------------------------------------------- fixed-latent log-lik
def test_fixed_latent_loglik_is_the_decoder_density_at_the_held_latent(model, data):
    # x | z₀ ~ N(A z₀ + b, σ² I): scipy's density at the prior mean and at a given z₀
    x = data[:50]
    cov = model.sigma**2 * np.eye(model.data_dim)
    at_zero = stats.multivariate_normal(model.b.numpy(), cov).logpdf(x.numpy())
    got = metrics.fixed_latent_loglik(model, x, batch_size=16)
    assert got.shape == (50,) and got.dtype == np.float64
    np.testing.assert_allclose(got, at_zero, rtol=1e-10)
    z0 = np.array([0.5, -1.0, 2.0])
    mean = model.A.numpy() @ z0 + model.b.numpy()
    np.testing.assert_allclose(metrics.fixed_latent_loglik(model, x.numpy(), z=z0),
                               stats.multivariate_normal(mean, cov).logpdf(x.numpy()), rtol=1e-10)
    # the ignored third latent dimension (a_3 = 0) does not move it
    np.testing.assert_allclose(metrics.fixed_latent_loglik(model, x, z=[0.0, 0.0, 5.0]), at_zero, rtol=1e-10)


def test_fixed_latent_loglik_refuses_an_unknown_prior_mean_and_bad_latents(model, data):
    wide_prior = LinearGaussian(prior_scale=2.0)
    with pytest.raises(ValueError, match="not N\\(0, I\\)"):
        metrics.fixed_latent_loglik(wide_prior, data[:5])
    assert np.all(np.isfinite(metrics.fixed_latent_loglik(wide_prior, data[:5], z=[0.0, 0.0, 0.0])))
    with pytest.raises(ValueError, match="3 entries"):
        metrics.fixed_latent_loglik(model, data[:5], z=[0.0, 0.0])
    with pytest.raises(ValueError, match="z"):
        metrics.fixed_latent_loglik(model, data[:5], z=[0.0, float("nan"), 0.0])


# ---------------------------------------------------------------------------------------------- IW log-lik
def test_iw_loglik_is_exact_with_the_exact_posterior(model, data):
    # p(x, z)/p(z|x) = p(x) for every z: each importance weight equals p(x), so log-mean-exp is exact for any S.
    x = data[:200]
    exact = model.log_marginal(x)
    got = metrics.iw_loglik(model, x, samples=500, seed=3, batch_size=64, sample_chunk=128)
    assert got.shape == (200,) and got.dtype == np.float64
    np.testing.assert_allclose(got, exact, atol=1e-8)
    np.testing.assert_allclose(metrics.iw_loglik(model, x.numpy(), samples=7, sample_chunk=3), exact, atol=1e-8)


def test_iw_loglik_is_a_log_mean_exp_that_tightens_with_samples():
    # With a too-wide proposal the weights vary: E[IW_S] ≤ log p(x), increasing in S towards it.
    wide = LinearGaussian(encoder_inflate=4.0)
    x = wide.sample(300, seed=2)
    exact = float(np.mean(wide.log_marginal(x)))
    ll1 = float(np.mean(metrics.iw_loglik(wide, x, samples=1, seed=0)))
    ll20 = float(np.mean(metrics.iw_loglik(wide, x, samples=20, seed=0)))
    ll500 = float(np.mean(metrics.iw_loglik(wide, x, samples=500, seed=0)))
    assert ll1 < ll20 < ll500
    assert abs(exact - ll500) < 0.02  # tight at S = 500 (up to Monte-Carlo error over 300 rows)
    assert exact - ll1 > 0.5
    # seeded: the same seed gives the same numbers, another seed different ones
    np.testing.assert_array_equal(metrics.iw_loglik(wide, x[:10], samples=5, seed=4),
                                  metrics.iw_loglik(wide, x[:10], samples=5, seed=4))
    assert not np.array_equal(metrics.iw_loglik(wide, x[:10], samples=5, seed=4),
                              metrics.iw_loglik(wide, x[:10], samples=5, seed=5))


# ----------------------------------------------------------------------------------------------------- KL
def test_kl_matches_closed_form_gaussian_kl(model, data):
    mu, lv = metrics.encode_all(model, data[:100])
    cov = np.diag(np.exp(lv[0]))
    k = model.latent_dim
    for i in range(5):  # KL(N(μ, Σ) ‖ N(0, I)) = ½(tr Σ + μᵀμ − K − log det Σ)
        want = 0.5 * (np.trace(cov) + mu[i] @ mu[i] - k - np.linalg.slogdet(cov)[1])
        assert metrics.kl_to_prior(mu, lv)[i] == pytest.approx(want, rel=1e-12)
    tq = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * lv)))
    tp = torch.distributions.Normal(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    per_dim = torch.distributions.kl_divergence(tq, tp).numpy()
    np.testing.assert_allclose(metrics.kl_per_dimension(mu, lv), per_dim.mean(0), rtol=1e-12)
    np.testing.assert_allclose(metrics.kl_to_prior(mu, lv), per_dim.sum(1), rtol=1e-12)
    # the ignored dimension has posterior = prior: zero KL
    assert metrics.kl_per_dimension(mu, lv)[2] == pytest.approx(0.0, abs=1e-12)


def test_expected_kl_of_exact_posterior_equals_mutual_information(model, data):
    # E_x KL(p(z|x) ‖ p(z)) = I(x; z) for the exact posterior (MC over the 3000 x, SE ≈ 0.02).
    mu, lv = metrics.encode_all(model, data)
    assert float(np.mean(metrics.kl_to_prior(mu, lv))) == pytest.approx(model.mutual_information(), abs=0.08)


def test_collapse_metrics_kl_uses_monte_carlo_for_other_priors():
    # prior N(0, 2²I): KL(N(μ, σ²) ‖ N(0, s²)) = Σ_k [log(s/σ_k) + (σ_k² + μ_k²)/(2s²) − ½]
    m = LinearGaussian(prior_scale=2.0)
    x = m.sample(400, seed=5)
    mu, lv = metrics.encode_all(m, x)
    sd = np.exp(0.5 * lv)
    want = float(np.mean(np.sum(np.log(2.0 / sd) + (sd**2 + mu**2) / 8.0 - 0.5, axis=1)))
    res = metrics.collapse_metrics(m, x, seed=0, samples=500)
    # MC over 400 × 500 draws of log q − log p: per-draw sd ≈ 1.5, SE ≈ 0.003
    assert res["KL"] == pytest.approx(want, abs=0.02)
    assert res["KL"] != pytest.approx(float(np.mean(metrics.kl_to_prior(mu, lv))), abs=0.1)
    np.testing.assert_allclose(res["LL"], np.mean(m.log_marginal(x)), atol=1e-8)


# ----------------------------------------------------------------------------------------------------- MI
def test_mutual_information_of_exact_posterior_matches_closed_form(model, data):
    # Closed form ½ Σ log(1 + a_k²/σ²) = 2.0515 nats. The estimator's Monte-Carlo error is dominated by the
    # average of log q(z) over N·S = 3000 draws: sd of log N(z; 0, I) is √(K/2) ≈ 1.22, SE ≈ 0.022; the finite-N
    # mixture adds a bias of a few 0.01 (measured over seeds: mean −0.018, sd 0.008 at N = 3000). Tolerance 0.1.
    mu, lv = metrics.encode_all(model, data)
    truth = model.mutual_information()
    assert truth == pytest.approx(2.0514869, abs=1e-6)
    assert metrics.mutual_information(mu, lv, seed=0) == pytest.approx(truth, abs=0.1)
    # chunking changes nothing but memory
    assert metrics.mutual_information(mu[:500], lv[:500], seed=1, chunk_size=7) == pytest.approx(
        metrics.mutual_information(mu[:500], lv[:500], seed=1, chunk_size=4096), abs=1e-10)
    # more samples per row: same quantity
    assert metrics.mutual_information(mu[:1000], lv[:1000], seed=2, samples=3) == pytest.approx(truth, abs=0.12)


def test_mutual_information_is_exactly_zero_when_posterior_is_the_prior():
    # log q(z|x_i) − log (1/N) Σ_j q(z|x_j) = 0 term by term when all posteriors coincide (no Monte-Carlo error)
    n, k = 2000, 4
    assert abs(metrics.mutual_information(np.zeros((n, k)), np.zeros((n, k)), seed=0)) < 1e-12
    assert abs(metrics.mutual_information(np.ones((n, k)), np.full((n, k), -1.0), seed=3, batch_size=7)) < 1e-12


def test_mutual_information_never_exceeds_its_ceiling():
    # q(z|x_i) ≤ Σ_j q(z|x_j): every term, hence every estimate, is ≤ log N (≤ log B per batch), for any draw.
    # Sharp, well-separated posteriors sit at the ceiling, where He et al.'s closed-form-entropy estimate
    # scatters on both sides of it.
    rng = np.random.default_rng(0)
    n, k = 300, 8
    mu, lv = 10 * rng.standard_normal((n, k)), np.full((n, k), -4.0)
    for seed in range(20):
        assert metrics.mutual_information(mu, lv, seed=seed) <= math.log(n) + 1e-9  # rounding only
        assert metrics.mutual_information(mu, lv, seed=seed, batch_size=50) <= math.log(50) + 1e-9
    assert metrics.mutual_information(mu, lv, seed=0) == pytest.approx(math.log(n), abs=1e-6)
    he = [_he_et_al_mi(mu, lv, seed) for seed in range(20)]
    assert max(he) > math.log(n)  # the reference estimator does exceed it


def _he_et_al_mi(mu, lv, seed):
    """He et al. 2019's ``calc_mi`` (closed-form negative entropy; one draw per row), written independently."""
    mu_t, lv_t = torch.tensor(mu), torch.tensor(lv)
    n, k = mu_t.shape
    neg_entropy = (-0.5 * k * math.log(2 * math.pi) - 0.5 * (1 + lv_t).sum(-1)).mean()
    g = torch.Generator().manual_seed(seed)
    z = mu_t + torch.exp(0.5 * lv_t) * torch.randn(mu_t.shape, generator=g, dtype=torch.float64)
    dist = torch.distributions.Normal(mu_t.unsqueeze(0), torch.exp(0.5 * lv_t).unsqueeze(0))
    log_density = dist.log_prob(z.unsqueeze(1)).sum(-1)  # (N draws, N posteriors)
    log_qz = torch.logsumexp(log_density, dim=1) - math.log(n)
    return float(neg_entropy - log_qz.mean())


def test_mutual_information_agrees_with_he_et_al_in_expectation(model, data):
    # Same quantity, different control variate: the means over seeds agree to their standard errors, and the
    # sampled-entropy estimator has the smaller spread (its noise partly cancels).
    mu, lv = metrics.encode_all(model, data[:400])
    ours = np.array([metrics.mutual_information(mu, lv, seed=s) for s in range(60)])
    he = np.array([_he_et_al_mi(mu, lv, s) for s in range(60)])
    se = math.sqrt(ours.var(ddof=1) / 60 + he.var(ddof=1) / 60)
    assert abs(ours.mean() - he.mean()) < 4 * se
    assert ours.std() < he.std()


def test_mutual_information_per_batch_is_he_et_al_batch_average(model, data):
    # batch_size=B: batch-size-weighted mean of each consecutive batch's own estimate; the whole-set value is
    # batch_size=N; each batch's aggregate posterior caps it at log B, so it falls short of the whole-set value.
    mu, lv = metrics.encode_all(model, data[:2000])
    whole = metrics.mutual_information(mu, lv, seed=0)
    assert metrics.mutual_information(mu, lv, seed=0, batch_size=2000) == whole
    per_batch = metrics.mutual_information(mu, lv, seed=0, batch_size=20)
    assert per_batch < whole - 0.2 and per_batch <= math.log(20)
    # against the reference estimator applied batch by batch (uneven last batch: 2000 = 15·130 + 50)
    ref = [(len(mu[i:i + 130]), np.mean([_he_et_al_mi(mu[i:i + 130], lv[i:i + 130], s) for s in range(30)]))
           for i in range(0, 2000, 130)]
    want = sum(w * v for w, v in ref) / 2000
    got = np.mean([metrics.mutual_information(mu, lv, seed=s, batch_size=130) for s in range(5)])
    assert got == pytest.approx(want, abs=0.03)


# ----------------------------------------------------------------------------------------------------- AU
def test_active_units_counts_dimensions_by_variance():
    rng = np.random.default_rng(0)
    base = rng.standard_normal(500)
    base = (base - base.mean()) / base.std(ddof=1)  # unbiased variance exactly 1
    mu = np.stack([base * math.sqrt(v) for v in (0.5, 0.02, 0.011, 0.009, 0.0)], axis=1)
    assert metrics.active_units(mu) == 3
    assert metrics.active_units(mu, threshold=0.001) == 4
    assert metrics.active_units(mu, threshold=0.6) == 0
    assert metrics.active_units(torch.tensor(mu)) == 3
    # the mask says which: the three dimensions whose unbiased variance is at least 0.01
    assert metrics.active_mask(mu).tolist() == [True, True, True, False, False]
    assert metrics.active_mask(mu, threshold=0.001).tolist() == [True, True, True, True, False]


def test_collapse_metrics_on_linear_gaussian(model, data):
    res = metrics.collapse_metrics(model, data[:1000], seed=0, samples=500)
    assert set(res) >= {"AU", "AU_count", "KL", "MI", "MI_batch", "LL"}
    assert res["MI_ceiling"] == pytest.approx(math.log(1000)) and res["MI_batch_ceiling"] == pytest.approx(math.log(100))
    assert res["MI_batch"] < res["MI"] <= res["MI_ceiling"]
    # Var(μ_k) = (a_k²/σ²)/(1 + a_k²/σ²)² · ... > 0.01 for a = 2, 0.8; exactly 0 for the ignored dimension
    assert res["AU_count"] == 2 and res["AU"] == pytest.approx(2 / 3)
    mu, lv = metrics.encode_all(model, data[:1000])
    assert res["KL"] == pytest.approx(float(np.mean(metrics.kl_to_prior(mu, lv))), rel=1e-12)
    assert res["LL"] == pytest.approx(float(np.mean(model.log_marginal(data[:1000]))), abs=1e-8)
    assert res["MI"] == pytest.approx(model.mutual_information(), abs=0.15)
    assert model.training  # eval mode was restored


# ---------------------------------------------------------------------------------------- identifiability meter
def test_identifiability_meter_equals_fisher_closed_form(model, data):
    # ∂/∂z_k log N(x; Az + b, σ²I) = A_kᵀ(x − Az − b)/σ². Under the exact joint (x ~ p(x), z ~ p(z|x)) the
    # residual x − Az − b = ε ~ N(0, σ²I) is independent of z, so E[(A_kᵀε)²]/σ⁴ = ‖A_k‖²/σ² = a_k²/σ².
    # Conditionally on the sampled x it is exact too: with m = A_kᵀ(x − b − Aμ(x))/σ² and z − μ ~ N(0, Σ),
    # E_{q(z|x)}[·²] = m² + a_k⁴ Σ_kk/σ⁴ (A_kᵀA = a_k² e_kᵀ for orthogonal columns).
    x = data[:2000]
    got = metrics.identifiability_meter(model, x, samples=5, seed=0)
    sig2 = model.sigma**2
    fisher = model.a**2 / sig2
    assert got.shape == (3,)
    assert got[2] == 0.0  # the ignored dimension: exactly zero
    np.testing.assert_allclose(got[:2], fisher[:2], rtol=0.06)  # rel. SE √(2/(N·S)) = 0.014
    mu, _ = metrics.encode_all(model, x)
    resid = (x.numpy() - model.b.numpy()) @ model.A.numpy() - mu * model.a**2  # A_kᵀ(x − b) − a_k² μ_k
    conditional = np.mean((resid / sig2) ** 2, axis=0) + model.a**4 * model.post_var() / sig2**2
    np.testing.assert_allclose(got[:2], conditional[:2], rtol=0.03)  # z-sampling error only


def test_identifiability_meter_flags_a_collapsed_decoder_dimension_of_a_network():
    # A small nonlinear model: the decoder ignores z_1 (its first-layer weights are zero) → meter exactly 0 there.
    class Tiny(torch.nn.Module):
        latent_dim, data_dim, likelihood = 2, 5, "bernoulli"

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            from identkit.neural import MLPDecoder

            self.dec = MLPDecoder(2, 5, hidden=8)
            with torch.no_grad():
                self.dec.net[0].weight[:, 1] = 0.0

        def encode(self, x):
            return x[:, :2] * 0.5, torch.zeros(x.shape[0], 2)

        def log_likelihood(self, x, z):
            from identkit.neural import bernoulli_log_prob

            return bernoulli_log_prob(x, self.dec(z))

        def log_prior(self, z):
            return -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)

    x = (torch.rand(100, 5, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    got = metrics.identifiability_meter(Tiny(), x, samples=3, seed=1)
    assert got[1] == 0.0 and got[0] > 1e-3


# ------------------------------------------------------------------------------------------------ bad inputs
def test_value_errors():
    mu, lv = np.zeros((10, 3)), np.zeros((10, 3))
    with pytest.raises(ValueError, match="mu and logvar"):
        metrics.kl_to_prior(mu, lv[:, :2])
    with pytest.raises(ValueError, match="mu and logvar"):
        metrics.mutual_information(mu, lv[:5], seed=0)
    bad = mu.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="mu"):
        metrics.active_units(bad)
    with pytest.raises(ValueError, match="logvar"):
        metrics.kl_per_dimension(mu, np.full((10, 3), np.inf))
    with pytest.raises(ValueError, match="threshold"):
        metrics.active_units(mu, threshold=0.0)
    with pytest.raises(ValueError, match="threshold"):
        metrics.active_units(mu, threshold=-1.0)
    with pytest.raises(ValueError, match="mu"):
        metrics.active_units(mu[:1])
    with pytest.raises(ValueError, match="mu"):
        metrics.kl_to_prior(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="samples"):
        metrics.mutual_information(mu, lv, seed=0, samples=0)
    with pytest.raises(ValueError, match="seed"):
        metrics.mutual_information(mu, lv, seed=-1)
    model = LinearGaussian()
    x = model.sample(10, seed=0)
    with pytest.raises(ValueError, match="samples"):
        metrics.iw_loglik(model, x, samples=0)
    with pytest.raises(ValueError, match="samples"):
        metrics.identifiability_meter(model, x, samples=0)
    with pytest.raises(ValueError, match="x"):
        metrics.iw_loglik(model, x[:, :4])
    xn = x.clone()
    xn[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x"):
        metrics.identifiability_meter(model, xn)
    with pytest.raises(ValueError, match="threshold"):
        metrics.collapse_metrics(model, x, seed=0, threshold=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        metrics.iw_loglik(model, x, batch_size=0)


def test_perplexity_counts_words_and_end_marker_and_recovery_r2_is_a_least_squares_fit():
    # two rows: <s> a b </s> (3 predicted tokens) and <s> a </s> <pad> (2): 5 tokens, mean LL -4 per row
    x = torch.tensor([[1, 5, 6, 2], [1, 5, 2, 0]])
    assert metrics.perplexity(-4.0, x) == pytest.approx(np.exp(8.0 / 5.0))
    g = np.random.default_rng(0)
    z = g.normal(size=(200, 2))
    assert metrics.recovery_r2(z @ np.array([[2.0, 1.0], [0.5, -3.0]]) + 4.0, z) == pytest.approx(1.0, abs=1e-12)
    mu = z[:, :1] + 0.0  # the first coordinate only: R² = its share of the variance
    want = 1.0 - ((z[:, 1] - z[:, 1].mean()) ** 2).sum() / ((z - z.mean(0)) ** 2).sum()
    assert metrics.recovery_r2(mu, z) == pytest.approx(want, abs=0.02)
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.recovery_r2(mu[:10], z)
