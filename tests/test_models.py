"""VAE, LIDVAE, GMVAE, IDGMVAE: shapes, densities against torch.distributions, ELBO ≤ log p(x) against exact
quadrature, gradients to every parameter, injectivity, and every ValueError."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import distributions as dist

from identkit.neural import models
from identkit.neural.models import GMVAE, IDGMVAE, LIDVAE, VAE

D, K, C, H = 10, 3, 2, 8


def make(name, likelihood="bernoulli", seed=0, **kw):
    if name in ("gmvae", "idgmvae"):
        kw.setdefault("n_clusters", C)
    return models.build_model(name, data_dim=kw.pop("data_dim", D), latent_dim=kw.pop("latent_dim", K), hidden=H,
                              likelihood=likelihood, seed=seed, **kw)


ALL = ["vae", "lidvae", "gmvae", "idgmvae"]


def data(b=5, seed=0):
    return torch.rand(b, D, generator=torch.Generator().manual_seed(seed)).bernoulli(
        generator=torch.Generator().manual_seed(seed + 1))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_shapes(name, likelihood):
    m, x = make(name, likelihood), data()
    assert (m.latent_dim, m.data_dim, m.likelihood) == (K, D, likelihood)
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (5, K)
    z = m.reparametrize(mu, logvar, 4, torch.Generator().manual_seed(0))
    assert z.shape == (4, 5, K)
    assert m.decode(z).shape == (4, 5, D) and m.decode(z[0]).shape == (5, D)
    assert m.log_likelihood(x, z).shape == (4, 5) and m.log_prior(z).shape == (4, 5)
    assert m.elbo(x, seed=0).shape == (5,)
    terms = m.loss_terms(x, torch.Generator().manual_seed(0))
    assert terms["rec"].shape == terms["kl"].shape == (5,)
    if name in ("vae", "lidvae"):
        assert terms["kl_per_dim"].shape == (5, K)
        torch.testing.assert_close(terms["kl_per_dim"].sum(-1), terms["kl"])
    else:
        p = m.cluster_posterior(x, samples=8, generator=0)
        assert p.shape == (5, C)
        torch.testing.assert_close(p.sum(-1), torch.ones(5))
        assert m.sample_prior(7, 0).shape == (7, K) and m.sample_prior(3, 0, cluster=1).shape == (3, K)
    assert torch.all(m.mean(z) >= 0) if likelihood == "bernoulli" else True


@pytest.mark.parametrize("name", ALL)
def test_elbo_is_rec_minus_beta_kl_and_seeded(name):
    m, x = make(name), data()
    t = m.loss_terms(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(m.elbo(x, 0.3, seed=3), t["rec"] - 0.3 * t["kl"])
    assert torch.equal(m.elbo(x, generator=torch.Generator().manual_seed(3)), m.elbo(x, seed=3))
    assert not torch.equal(m.elbo(x, seed=3), m.elbo(x, seed=4))


def test_standard_normal_prior_and_kl_match_torch_distributions():
    m, x = make("vae"), data()
    mu, logvar = m.encode(x)
    z = torch.randn(6, 5, K, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m.log_prior(z), dist.Normal(0.0, 1.0).log_prob(z).sum(-1))
    q = dist.Normal(mu, torch.exp(0.5 * logvar))
    torch.testing.assert_close(m.log_q(z, mu, logvar), q.log_prob(z).sum(-1))
    kl = m.kl_terms(mu, logvar, z)
    torch.testing.assert_close(kl["kl_per_dim"], dist.kl_divergence(q, dist.Normal(0.0, 1.0)))


@pytest.mark.parametrize("name", ["gmvae", "idgmvae"])
def test_mixture_prior_matches_torch_mixture(name):
    m = make(name)
    with torch.no_grad():
        m.log_gamma.copy_(torch.tensor([0.3, -0.5, 0.1]))
    comp = dist.Independent(dist.Normal(m.cluster_means(), torch.exp(0.5 * m.log_gamma)), 1)
    mix = dist.MixtureSameFamily(dist.Categorical(torch.full((C,), 1.0 / C)), comp)
    z = 2 * torch.randn(4, 6, K, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(m.log_prior(z), mix.log_prob(z))
    post = m.prior_cluster_probs(z)
    torch.testing.assert_close(post.sum(-1), torch.ones(4, 6))


def test_idgmvae_means_are_full_rank_rows_of_beta1():
    m = make("idgmvae", latent_dim=4, n_clusters=3)
    means = m.cluster_means()
    assert means.shape == (3, 4)
    sv = torch.linalg.svdvals(means.detach())
    assert float(sv.min()) >= 0.1 - 1e-5
    torch.testing.assert_close(torch.sort(sv).values, torch.sort(m.beta1.singular_values().detach()).values)


def test_mixture_mc_kl_is_unbiased_for_one_standard_component():
    # A one-component mixture at 0 with γ = 1 is N(0, I): the Monte-Carlo KL must average to the closed form.
    m = make("gmvae", n_clusters=1)
    with torch.no_grad():
        m.means.zero_()
    x = data()
    mu, logvar = m.encode(x)
    z = m.reparametrize(mu, logvar, 20000, 0)
    mc = m.kl_terms(mu, logvar, z)["kl"]
    exact = VAE.kl_terms(m, mu, logvar, z)["kl"]
    torch.testing.assert_close(mc, exact, atol=0.03, rtol=0.0)


# ------------------------------------------------------------- bounds against exact log p(x) by quadrature
def exact_log_marginal(m, x, half_width=7.0, n=801):
    """log p(x) = log ∫ p(x|z) p(z) dz on a grid (K = 1 or 2), an independent reference."""
    t = torch.linspace(-half_width, half_width, n)
    if m.latent_dim == 1:
        grid, dz = t[:, None], float(t[1] - t[0])
    else:
        t = torch.linspace(-half_width, half_width, 241)
        grid, dz = torch.cartesian_prod(t, t), float(t[1] - t[0]) ** 2
    with torch.no_grad():
        zz = grid[:, None, :].expand(-1, x.shape[0], -1)                      # (G, B, K)
        log_joint = m.log_likelihood(x, zz) + m.log_prior(zz)
    return torch.logsumexp(log_joint, 0) + math.log(dz)


def iw_bound(m, x, samples, seed):
    with torch.no_grad():
        mu, logvar = m.encode(x)
        z = m.reparametrize(mu, logvar, samples, seed)
        lw = m.log_likelihood(x, z) + m.log_prior(z) - m.log_q(z, mu, logvar)
    return torch.logsumexp(lw, 0) - math.log(samples)


@pytest.mark.parametrize("name,latent,kw", [("vae", 1, {}), ("lidvae", 1, {}), ("gmvae", 1, {"n_clusters": 3}),
                                            ("idgmvae", 2, {"n_clusters": 2})])
def test_elbo_below_iw_bound_below_exact_loglik(name, latent, kw):
    m = make(name, latent_dim=latent, data_dim=6, **kw)
    x = data()[:, :6]
    exact = exact_log_marginal(m, x)
    with torch.no_grad():
        elbo = m.elbo(x, seed=0, samples=4000)
    iw = iw_bound(m, x, 100_000, 1)
    assert torch.all(elbo <= iw + 1e-3)
    torch.testing.assert_close(iw, exact, atol=0.04, rtol=0.0)  # IW-LL is consistent (S = 1e5 draws)
    # ELBO gap = KL(q(z|x) ‖ p(z|x)) ≥ 0
    assert torch.all(elbo <= exact + 1e-3)


def test_cluster_posterior_matches_exact_quadrature():
    m = make("idgmvae", latent_dim=2, data_dim=6, n_clusters=2)
    with torch.no_grad():
        m.beta1.s_raw.fill_(2.0)  # well separated cluster means
    x = data()[:, :6]
    t = torch.linspace(-8, 8, 241)
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad():
        zz = grid[:, None, :].expand(-1, x.shape[0], -1)
        joint = torch.logsumexp(m.log_likelihood(x, zz).unsqueeze(-1) + m.component_log_prob(zz), 0)  # (B, C)
    exact = torch.softmax(joint, -1)
    est = m.cluster_posterior(x, samples=20000, generator=0)
    torch.testing.assert_close(est, exact, atol=0.03, rtol=0.0)


def test_gaussian_likelihood_matches_torch_normal():
    m = make("vae", "gaussian")
    with torch.no_grad():
        m.log_sigma.copy_(torch.linspace(-1, 1, D))
    x, z = torch.randn(5, D), torch.randn(3, 5, K)
    ref = dist.Normal(m.decode(z), torch.exp(m.log_sigma)).log_prob(x).sum(-1)
    torch.testing.assert_close(m.log_likelihood(x, z), ref)
    logits = m.decode(z)
    torch.testing.assert_close(make("vae").log_likelihood((x > 0).float(), z),
                               dist.Bernoulli(logits=make("vae").decode(z)).log_prob((x > 0).float()).sum(-1))
    assert logits.shape == (3, 5, D)


# ------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_gradient_reaches_every_parameter(name, likelihood):
    m = make(name, likelihood)
    x = data(8)
    (-m.elbo(x, seed=0, samples=2).mean()).backward()
    named = dict(m.named_parameters())
    for pname, p in named.items():
        if re.search(r"potential\.(a_out\.bias|A\.[1-9]\d*\.bias)$", pname):
            # ψ's constant c, and biases that only move the kinks of a piecewise-linear activation, do not
            # enter ∇ψ (almost everywhere): the Brenier map cannot depend on them.
            continue
        assert p.grad is not None, f"no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), pname
        assert float(p.grad.abs().sum()) > 0, f"zero gradient for {pname}"
    if name in ("lidvae", "idgmvae"):  # the pieces that the reference code failed to train
        for key in ("decoder.beta.s_raw", "decoder.beta.v_raw", "decoder.g1.potential.W_raw.0",
                    "decoder.g2.potential.W_raw.0", "decoder.g2.potential.w_out_raw"):
            assert key in named
    if name == "idgmvae":
        assert {"beta1.s_raw", "beta1.u_raw", "log_gamma"} <= set(named)


# ----------------------------------------------------------------------------------------- injectivity
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**20), lam=st.floats(0.05, 2.0), scale=st.floats(1e-3, 3.0))
def test_identifiable_decoder_is_injective(seed, lam, scale):
    m = LIDVAE(D, K, hidden=H, lam=lam, seed=seed)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(64, K, generator=g)
    z2 = z + scale * torch.randn(64, K, generator=g)
    with torch.no_grad():
        gap = (m.decode(z) - m.decode(z2)).norm(dim=-1) / (z - z2).norm(dim=-1)
    bound = m.decoder.injectivity_bound()
    assert bound >= lam * 0.1 * lam * (1 - 1e-6)
    assert float(gap.min()) >= bound * (1 - 1e-3)


def test_mlp_decoder_can_ignore_a_latent_dimension():
    # The contrast: an MLP decoder that zeroes the weights of z_0 maps a whole line to one point.
    m = VAE(D, K, hidden=H, seed=0)
    with torch.no_grad():
        m.decoder.net[0].weight[:, 0] = 0.0
    z = torch.randn(10, K)
    z2 = z.clone()
    z2[:, 0] += 5.0
    assert torch.equal(m.decode(z), m.decode(z2))


# ---------------------------------------------------------------------------------------- construction
def test_seeded_initialisation_and_config():
    state = torch.random.get_rng_state()
    a, b, c = VAE(D, K, hidden=H, seed=5), VAE(D, K, hidden=H, seed=5), VAE(D, K, hidden=H, seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert not torch.equal(a.decoder.net[0].weight, c.decoder.net[0].weight)
    assert a.config == {"data_dim": D, "latent_dim": K, "hidden": H, "likelihood": "bernoulli", "layers": 2,
                        "seed": 5}
    assert IDGMVAE(D, K, 2, hidden=H, lam=0.5).config["lam"] == 0.5


def test_value_errors():
    x = data()
    m = make("vae")
    with pytest.raises(ValueError, match="x must"):
        m.encode(torch.zeros(5, D + 1))
    with pytest.raises(ValueError, match="x must"):
        m.log_likelihood(torch.zeros(D), torch.zeros(1, 1, K))
    with pytest.raises(ValueError, match="z must"):
        m.decode(torch.zeros(4, K + 1))
    with pytest.raises(ValueError, match="z must"):
        m.log_prior(torch.zeros(4, K + 1))
    with pytest.raises(ValueError, match="beta"):
        m.elbo(x, beta=-1.0)
    with pytest.raises(ValueError, match="samples"):
        m.elbo(x, samples=0)
    with pytest.raises(ValueError, match="likelihood"):
        VAE(D, K, likelihood="poisson")
    with pytest.raises(ValueError, match="likelihood"):
        LIDVAE(D, K, likelihood=3)
    with pytest.raises(ValueError, match="latent_dim"):
        LIDVAE(3, 4)
    with pytest.raises(ValueError, match="latent_dim"):
        IDGMVAE(3, 4, 2)
    with pytest.raises(ValueError, match="n_clusters"):
        IDGMVAE(D, 3, 4)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="lam"):
            LIDVAE(D, K, lam=bad)
        with pytest.raises(ValueError, match="lam"):
            IDGMVAE(D, K, 2, lam=bad)
    with pytest.raises(ValueError, match="min_singular"):
        IDGMVAE(D, K, 2, min_singular=0.0)
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(D, 0)
    with pytest.raises(ValueError, match="hidden"):
        VAE(D, K, hidden=0)
    with pytest.raises(ValueError, match="n_clusters"):
        GMVAE(D, K, 0)
    with pytest.raises(ValueError, match="seed"):
        VAE(D, K, seed=-1)
    with pytest.raises(ValueError, match="name"):
        models.build_model("wae", data_dim=D, latent_dim=K)
    with pytest.raises(ValueError, match="cluster"):
        make("gmvae").sample_prior(2, 0, cluster=C)
    assert np.isfinite(float(m.elbo(x).mean().detach()))
