"""Decoders: the injective decoder is injective in z with the composed rate λ1·s_min·λ2; likelihood heads are exact."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from identkit.neural import InjectiveDecoder, MLPDecoder, bernoulli_log_prob, gaussian_log_prob
from conftest import perturb_parameters


def _decoder(seed, k, d, lam, scramble=0.0, **kw):
    torch.manual_seed(seed)
    dec = InjectiveDecoder(k, d, hidden=16, layers=2, lam=lam, min_singular=0.2, **kw).double()
    return perturb_parameters(dec, scramble, seed + 7)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), extra=st.integers(0, 8), lam=st.floats(0.05, 2.0),
       scramble=st.sampled_from([0.0, 1.0]), init=st.sampled_from([{}, {"init_ratio": 0.3, "activation": "softplus"},
                                                                    {"init_ratio": 3.0, "activation": "celu"}]))
def test_injective_decoder_lower_bound(seed, k, extra, lam, scramble, init):
    dec = _decoder(seed, k, k + extra, lam, scramble, **init)
    gen = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(200, k, generator=gen, dtype=torch.float64)
    step = torch.where(torch.arange(200)[:, None] < 100, 1e-3, 2.0) * torch.randn(200, k, generator=gen,
                                                                                dtype=torch.float64)
    z2 = z + step
    c = dec.injectivity_bound()
    assert c == pytest.approx(lam * lam * float(dec.beta.singular_values().detach().min()))
    assert c >= lam * lam * 0.2
    with torch.no_grad():
        gap = (dec(z) - dec(z2)).norm(dim=1)
    assert torch.all(gap > 0)  # distinct z ↦ distinct natural parameters
    assert torch.all(gap >= c * step.norm(dim=1) * (1 - 1e-7))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), extra=st.integers(0, 6))
def test_injective_decoder_jacobian_has_full_column_rank(seed, k, extra):
    dec = _decoder(seed, k, k + extra, lam=0.3, scramble=1.0)
    z0 = torch.randn(k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda z: dec(z), z0)  # (D, K)
    assert jac.shape == (k + extra, k)
    s = torch.linalg.svdvals(jac)
    # J = J2 βᵀ J1 with σ_min(J1), σ_min(J2) ≥ λ and σ_min(β) ≥ s_min
    assert s.min() >= dec.injectivity_bound() * (1 - 1e-8)
    assert torch.linalg.matrix_rank(jac) == k


def test_mlp_decoder_can_ignore_a_dimension_injective_cannot():
    # The classical decoder may be constant in z_k (that is posterior collapse's non-identifiability);
    # zeroing the same weights in the injective decoder cannot make it constant in z.
    torch.manual_seed(0)
    mlp = MLPDecoder(3, 10, hidden=8)
    with torch.no_grad():
        mlp.net[0].weight[:, 2] = 0.0
    z = torch.randn(5, 3)
    z2 = z.clone()
    z2[:, 2] += 3.0
    assert torch.allclose(mlp(z), mlp(z2))
    dec = InjectiveDecoder(3, 10, hidden=8)
    with torch.no_grad():
        dec.g1.potential.A[0].weight[:, 2] = 0.0
        for lin in dec.g1.potential.A:
            lin.weight[:, 2] = 0.0
        dec.g1.potential.a_out.weight[:, 2] = 0.0
        assert (dec(z) - dec(z2)).norm(dim=1).min() >= dec.injectivity_bound() * 3.0 * (1 - 1e-5)


def test_shapes_and_leading_dims():
    torch.manual_seed(1)
    for dec in (MLPDecoder(4, 9, hidden=8), InjectiveDecoder(4, 9, hidden=8)):
        z = torch.randn(3, 5, 4)
        out = dec(z)
        assert out.shape == (3, 5, 9)
        assert torch.allclose(out.reshape(15, 9), dec(z.reshape(15, 4)), atol=1e-6)
        with torch.no_grad():
            assert torch.allclose(dec(z), out, atol=1e-6)
        with pytest.raises(ValueError, match="z"):
            dec(torch.randn(2, 5))


def test_parameter_counts_are_comparable_and_documented():
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    k, d, h = 64, 784, 512
    mlp, inj = MLPDecoder(k, d, h), InjectiveDecoder(k, d, h)
    assert n(mlp) == k * h + h * h + h * d + 2 * h + d == 698_128
    w = h // 2
    icnn = lambda dim: 2 * (dim * w + w) + w * w + w + dim + 1  # noqa: E731
    assert n(inj) == icnn(k) + icnn(d) + (k * k + d * k + k) == 621_970
    assert 0.75 < n(inj) / n(mlp) < 1.25
    wide = InjectiveDecoder(k, d, h, icnn_hidden=h)
    assert wide.icnn_hidden == h and 2.0 < n(wide) / n(mlp) < 2.2


def test_injective_decoder_trains_by_gradients_of_gradients():
    torch.manual_seed(2)
    dec = InjectiveDecoder(2, 12, hidden=16, lam=0.1)
    z = torch.randn(64, 2)
    x = (torch.rand(64, 12) < torch.sigmoid(3 * z @ torch.randn(2, 12))).float()
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    losses = []
    for step in range(40):
        loss = -bernoulli_log_prob(x, dec(z)).mean()
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            for name, p in dec.named_parameters():
                if name.endswith(("a_out.bias", "A.1.bias")):  # no effect on ∇ψ (constant / kink positions)
                    continue
                assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0, name
        opt.step()
    assert losses[-1] < 0.8 * losses[0]
    assert dec.beta.singular_values().min() >= 0.1


def test_injective_decoder_state_dict_round_trip():
    torch.manual_seed(3)
    dec = InjectiveDecoder(3, 7, hidden=8, lam=0.2)
    torch.manual_seed(4)
    other = InjectiveDecoder(3, 7, hidden=8, lam=0.2)
    z = torch.randn(5, 3)
    assert not torch.allclose(dec(z), other(z))
    other.load_state_dict(dec.state_dict())
    assert torch.equal(dec(z), other(z))


def test_decoder_bad_arguments():
    with pytest.raises(ValueError, match="data_dim"):
        InjectiveDecoder(5, 3)
    with pytest.raises(ValueError, match="lam"):
        InjectiveDecoder(2, 3, lam=0.0)
    with pytest.raises(ValueError, match="hidden"):
        MLPDecoder(2, 3, hidden=0)
    with pytest.raises(ValueError, match="layers"):
        MLPDecoder(2, 3, layers=0)


# ------------------------------------------------------------------------------------------ likelihood heads
def test_bernoulli_log_prob_matches_torch_distributions_and_broadcasts():
    gen = torch.Generator().manual_seed(5)
    logits = 4 * torch.randn(3, 6, 10, generator=gen, dtype=torch.float64)
    x = (torch.rand(6, 10, generator=gen, dtype=torch.float64) < 0.5).double()
    got = bernoulli_log_prob(x, logits)
    want = torch.distributions.Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum(-1)
    assert got.shape == (3, 6)
    assert torch.allclose(got, want, atol=1e-12)


def test_bernoulli_log_prob_is_stable_for_extreme_logits():
    logits = torch.tensor([[200.0, -200.0, 200.0, -200.0, 0.0]])
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0]])
    got = bernoulli_log_prob(x, logits)
    assert torch.isfinite(got).all()
    assert got.item() == pytest.approx(-400.0 - math.log(2.0), rel=1e-6)


def test_gaussian_log_prob_matches_scipy():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 5))
    mean = rng.normal(size=(2, 4, 5))
    log_sigma = rng.normal(size=5) * 0.5
    got = gaussian_log_prob(torch.tensor(x), torch.tensor(mean), torch.tensor(log_sigma)).numpy()
    want = stats.norm.logpdf(x[None], mean, np.exp(log_sigma)).sum(-1)
    assert got.shape == (2, 4)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    got_scalar = gaussian_log_prob(torch.tensor(x), torch.tensor(mean), -0.3).numpy()
    np.testing.assert_allclose(got_scalar, stats.norm.logpdf(x[None], mean, math.exp(-0.3)).sum(-1), rtol=1e-12)


def test_heads_reject_mismatched_data_dimension():
    with pytest.raises(ValueError, match="logits"):
        bernoulli_log_prob(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="mean"):
        gaussian_log_prob(torch.zeros(2, 3), torch.zeros(2, 4), 0.0)


def test_calibrated_decoder_starts_nonlinear_and_keeps_its_bound():
    # the ICNNs' own initialisation leaves g1, g2 almost linear (λu dominates); init_ratio sets both parts
    torch.manual_seed(0)
    plain = InjectiveDecoder(16, 200, hidden=64, lam=1.0)
    torch.manual_seed(0)
    dec = InjectiveDecoder(16, 200, hidden=64, lam=1.0, init_ratio=0.5, activation="softplus")
    z = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    r_plain = plain.nonlinearity_ratios(z)
    r = dec.nonlinearity_ratios(z)
    assert max(r_plain) < 0.05
    assert r[0] == pytest.approx(0.5, rel=0.15) and r[1] == pytest.approx(0.5, rel=0.15)  # fresh probes
    assert dec.injectivity_bound() == pytest.approx(float(dec.beta.singular_values().min().detach()), rel=1e-6)
    assert {"g1.log_scale", "g2.log_scale"} <= set(dec.state_dict())
    with pytest.raises(ValueError, match="init_ratio"):
        InjectiveDecoder(2, 3, init_ratio=0.0)
