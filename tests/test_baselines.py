"""The posterior-collapse baselines: each objective matches its definition on a tiny model."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from identkit.neural import baselines as B
from identkit.neural.models import VAE
from identkit.neural.train import fit, load_checkpoint, save_checkpoint

D, K, H = 12, 3, 16


def _data(n=40, seed=0):
    return torch.rand(n, D, generator=torch.Generator().manual_seed(seed))


def _binary(n=40, seed=0):
    return torch.bernoulli(_data(n, seed), generator=torch.Generator().manual_seed(seed + 1))


class _FixedEncoder(nn.Module):
    """q(z|x_b) = N(mu_b, diag exp(logvar_b)) with (mu, logvar) free leaf parameters (one row per example)."""

    def __init__(self, mu, logvar):
        super().__init__()
        self.mu, self.logvar = nn.Parameter(mu.clone()), nn.Parameter(logvar.clone())

    def forward(self, x):
        return self.mu, self.logvar


# ------------------------------------------------------------------------------------------------ β-VAE
def test_beta_vae_loss_is_rec_plus_beta_kl_by_hand():
    model, x = VAE(D, K, hidden=H, seed=1), _binary()
    loss, stats_ = B.BetaVAE(0.2).loss(model, x, 0, torch.Generator().manual_seed(7))
    # by hand, with the same noise: z = mu + σ ε, ε from a generator seeded 7
    mu, logvar = model.encode(x)
    eps = torch.randn((1, *mu.shape), generator=torch.Generator().manual_seed(7))
    z = mu + torch.exp(0.5 * logvar) * eps
    logits = model.decode(z)[0]
    rec = (x * logits - torch.nn.functional.softplus(logits)).sum(-1)
    kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(-1)
    expected = (-rec + 0.2 * kl).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6, abs=1e-5)
    assert stats_["elbo"] == pytest.approx(float((rec - kl).mean().detach()), rel=1e-6, abs=1e-5)


def test_beta_vae_with_beta_one_is_the_plain_vae_objective():
    from identkit.neural.train import Method

    model, x = VAE(D, K, hidden=H, seed=2), _binary()
    a, _ = B.BetaVAE(1.0).loss(model, x, 0, torch.Generator().manual_seed(3))
    b, _ = Method().loss(model, x, 0, torch.Generator().manual_seed(3))
    assert float(a.detach()) == pytest.approx(float(b.detach()), abs=1e-6)


# ------------------------------------------------------------------------------------------------ free bits
def _fixed_model(mu, logvar, zero_decoder=True):
    model = VAE(D, mu.shape[1], hidden=H, seed=3)
    model.encoder = _FixedEncoder(mu, logvar)
    if zero_decoder:  # logits independent of z: the reconstruction term has no gradient in (mu, logvar)
        last = model.decoder.net[-1]
        with torch.no_grad():
            last.weight.zero_()
    return model


def test_free_bits_gradient_is_zero_below_the_threshold_and_the_kl_gradient_above():
    n, lam = 6, 0.5
    mu = torch.zeros(n, 4)
    mu[:, :2] = 2.0  # batch-mean KL_k = 2 > λ in dims 0, 1
    mu[:, 2:] = 0.3  # KL_k = 0.045 < λ in dims 2, 3
    logvar = torch.zeros(n, 4)
    model = _fixed_model(mu, logvar)
    x = _binary(n)
    loss, st = B.FreeBits(lam).loss(model, x, 0, torch.Generator().manual_seed(0))
    loss.backward()
    g = model.encoder.mu.grad
    assert torch.all(g[:, 2:] == 0)  # under the threshold: no gradient at all
    # above: d/dmu_bk of (1/B) Σ_b ½ mu_bk² = mu_bk / B
    assert torch.allclose(g[:, :2], mu[:, :2] / n, atol=1e-6)
    assert st["dims_below"] == 2
    # the value: −rec + Σ_k max(λ, mean_b KL_bk)
    kl_bar = 0.5 * (mu**2).mean(0)
    rec = B.gaussian_elbo(model, x, mu, logvar, torch.Generator().manual_seed(0)) + kl_bar.sum()
    expected = -rec.mean() + torch.clamp(kl_bar, min=lam).sum()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)


def test_free_bits_thresholds_the_batch_mean_not_each_example():
    # example 0 has a large KL in dim 0, example 1 none: the batch mean (2.0) is above λ = 1, so both rows get
    # the ordinary KL gradient, although example 1's own KL is below λ
    mu = torch.tensor([[2.0 * math.sqrt(2.0)], [0.0]])
    model = _fixed_model(mu, torch.zeros(2, 1))
    loss, _ = B.FreeBits(1.0).loss(model, _binary(2), 0, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.allclose(model.encoder.mu.grad, mu / 2, atol=1e-6)


def test_free_bits_needs_a_factorised_kl():
    model = B.VampPrior(D, K, hidden=H, n_pseudo=4, seed=0)
    with pytest.raises(ValueError, match="kl_per_dim"):
        B.FreeBits(0.1).loss(model, _binary(), 0, torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------------ SA-VAE
def test_sa_vae_refinement_increases_the_per_example_elbo():
    x_grey = _data(200, 5)
    model = VAE(D, K, hidden=H, seed=4)
    fit(model, x_grey, epochs=2, batch_size=50, seed=0, progress=False)
    x = _binary(64, 9)
    sa = B.SemiAmortized(svi_steps=10, svi_lr=0.1)
    with torch.no_grad():
        mu0, lv0 = model.encode(x)
    mu0 = mu0 + 1.0  # an amortisation gap to close: start one unit off in every dimension
    mu_t, lv_t = sa.refine(model, x, torch.Generator().manual_seed(1), mu0, lv0)
    with torch.no_grad():  # many common-random-number samples: the comparison is not MC noise
        e0 = B.gaussian_elbo(model, x, mu0, lv0, torch.Generator().manual_seed(2), samples=2000)
        et = B.gaussian_elbo(model, x, mu_t, lv_t, torch.Generator().manual_seed(2), samples=2000)
    gain = et - e0
    assert torch.all(gain > 0.1)  # every example's ELBO rose
    # and the encoder's own output is its default starting point
    a, _ = sa.refine(model, x, torch.Generator().manual_seed(1))
    b, _ = sa.refine(model, x, torch.Generator().manual_seed(1), *model.encode(x))
    assert torch.equal(a, b)


def test_sa_vae_step_trains_the_decoder_at_refined_and_the_encoder_at_its_own_parameters():
    model, x = VAE(D, K, hidden=H, seed=6), _binary(16, 3)
    sa = B.SemiAmortized(svi_steps=3, svi_lr=0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: inspect the gradients the step leaves behind
    sa.train_step(model, opt, x, 0, torch.Generator().manual_seed(11))
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    # replay the same random stream by hand
    g = torch.Generator().manual_seed(11)
    mu0, lv0 = model.encode(x)
    mu_t, lv_t = sa.refine(model, x, g, mu0, lv0)
    loss_dec = -B.gaussian_elbo(model, x, mu_t, lv_t, g).mean()
    loss_enc = -B.gaussian_elbo(model, x, mu0, lv0, g).mean()
    dec = dict(model.decoder.named_parameters())
    enc = dict(model.encoder.named_parameters())
    gd = torch.autograd.grad(loss_dec, list(dec.values()))
    ge = torch.autograd.grad(loss_enc, list(enc.values()))
    for (n, _), gr in zip(dec.items(), gd):
        assert torch.allclose(got[f"decoder.{n}"], gr, atol=1e-6)
    for (n, _), gr in zip(enc.items(), ge):
        assert torch.allclose(got[f"encoder.{n}"], gr, atol=1e-6)
    assert model.decoder.net[-1].bias.grad.abs().sum() > 0 and model.encoder.net[0].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ VampPrior
def test_vampprior_log_prior_is_a_normalised_mixture_of_encoder_posteriors():
    model = B.VampPrior(D, 1, hidden=H, n_pseudo=5, seed=3)
    with torch.no_grad():
        mu, logvar = model.encoder(model.pseudo_inputs())
    mu, sd = mu.numpy()[:, 0].astype(float), np.exp(0.5 * logvar.numpy()[:, 0].astype(float))

    def density(z):
        with torch.no_grad():
            return float(model.log_prior(torch.tensor([[[z]]], dtype=torch.float32)).exp())

    lo, hi = float((mu - 12 * sd).min()), float((mu + 12 * sd).max())
    total, _ = integrate.quad(density, lo, hi, points=sorted(mu), limit=200)
    assert total == pytest.approx(1.0, abs=1e-4)
    zs = torch.linspace(lo, hi, 13).reshape(13, 1, 1)
    by_hand = np.log(np.mean(stats.norm.pdf(zs.numpy().reshape(-1, 1), mu, sd), axis=1))
    with torch.no_grad():
        got = model.log_prior(zs).numpy().reshape(-1)
    assert np.allclose(got, by_hand, atol=1e-4)


def test_vampprior_kl_is_the_monte_carlo_log_ratio_and_the_model_trains_and_checkpoints(tmp_path):
    model = B.VampPrior(D, K, hidden=H, n_pseudo=4, pseudo_init=_data(4, 8), seed=2)
    x = _binary(10)
    t = model.loss_terms(x, torch.Generator().manual_seed(0), samples=3)
    by_hand = (model.log_q(t["z"], t["mu"], t["logvar"]) - model.log_prior(t["z"])).mean(0)
    assert torch.allclose(t["kl"], by_hand) and "kl_per_dim" not in t
    hist = fit(model, _data(60), epochs=2, batch_size=20, seed=0, progress=False)
    assert np.all(np.isfinite(hist["elbo"]))
    path = save_checkpoint(model, tmp_path / "vamp.pt")
    back = load_checkpoint(path)
    assert isinstance(back, B.VampPrior)
    assert torch.equal(back.pseudo_inputs(), model.pseudo_inputs())


def test_vampprior_pseudo_inputs_are_trained():
    model = B.VampPrior(D, K, hidden=H, n_pseudo=4, seed=2)
    before = model.pseudo_inputs().detach().clone()
    fit(model, _data(60), epochs=1, batch_size=20, seed=0, progress=False)
    assert not torch.allclose(before, model.pseudo_inputs().detach())


# ------------------------------------------------------------------------------------------------ lagging
def _snapshot(params):
    return [p.detach().clone() for p in params]


def test_lagging_inner_loop_changes_only_encoder_parameters():
    model, x = VAE(D, K, hidden=H, seed=5), _binary(20)
    lag = B.LaggingEncoder(max_inner=7, check_every=3)
    lag.begin(model, _data(80), torch.Generator().manual_seed(0))
    lag.clip_grad = 5.0
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)
    enc, dec = B.encoder_parameters(model, x)
    assert {id(p) for p in enc} == {id(p) for p in model.encoder.parameters()}
    e0, d0 = _snapshot(enc), _snapshot(dec)
    n = lag.encoder_steps(model, opt, x, torch.Generator().manual_seed(1))
    assert 1 <= n <= 7
    assert all(torch.equal(a, p) for a, p in zip(d0, dec))
    assert any(not torch.equal(a, p) for a, p in zip(e0, enc))
    # the aggressive outer step: only the decoder moves after the inner loop
    lag.max_inner = 1
    lag.train_step(model, opt, x, 0, torch.Generator().manual_seed(2))
    e1 = _snapshot(enc)
    lag.encoder_steps = lambda *a, **k: 0  # isolate the outer update
    d1 = _snapshot(dec)
    lag.train_step(model, opt, x, 1, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, p) for a, p in zip(e1, enc))
    assert any(not torch.equal(a, p) for a, p in zip(d1, dec))
    assert all(p.requires_grad for p in model.parameters())  # the freezes are undone


def test_lagging_inner_loop_computes_no_decoder_gradients_and_unfreezes_on_error(monkeypatch):
    model, x = VAE(D, K, hidden=H, seed=5), _binary(20)
    lag = B.LaggingEncoder(max_inner=3, check_every=3)
    lag.begin(model, _data(80), torch.Generator().manual_seed(0))
    enc, dec = B.encoder_parameters(model, x)
    seen, step = [], B._apply_step

    def spy(m, optimizer, clip):  # at each inner step: decoder frozen (no gradient computed), encoder has one
        seen.append(([not p.requires_grad and p.grad is None for p in dec], [p.grad is not None for p in enc]))
        return step(m, optimizer, clip)

    monkeypatch.setattr(B, "_apply_step", spy)
    lag.encoder_steps(model, torch.optim.Adam(model.parameters()), x, torch.Generator().manual_seed(1))
    assert len(seen) == 3 and all(all(d) and all(e) for d, e in seen)
    assert all(p.requires_grad for p in model.parameters())
    model.elbo = lambda *a, **k: torch.tensor([float("nan")])  # the inner loop raises ...
    with pytest.raises(FloatingPointError, match="inner loop"):
        lag.encoder_steps(model, torch.optim.Adam(model.parameters()), x, torch.Generator().manual_seed(1))
    assert all(p.requires_grad for p in model.parameters())  # ... and the decoder is trainable again


def test_lagging_leaves_the_aggressive_phase_when_heldout_mi_drops_then_trains_jointly(monkeypatch):
    model, x = VAE(D, K, hidden=H, seed=5), _binary(20)
    lag = B.LaggingEncoder(max_inner=2, check_every=1)
    lag.begin(model, _data(40), torch.Generator().manual_seed(0))
    mis = iter([0.5, 0.8, 0.7, 9.9])
    monkeypatch.setattr(lag, "heldout_mi", lambda m: next(mis))
    for epoch in range(3):
        assert lag.aggressive
        lag.end_epoch(model, epoch, {})
    assert not lag.aggressive and lag.mi_history == [0.5, 0.8, 0.7] and lag.aggressive_epochs == 3
    lag.end_epoch(model, 3, {})  # no more checks once off
    assert lag.mi_history == [0.5, 0.8, 0.7]
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)
    enc, dec = B.encoder_parameters(model, x)
    e0, d0 = _snapshot(enc), _snapshot(dec)
    st = lag.train_step(model, opt, x, 0, torch.Generator().manual_seed(1))
    assert st["aggressive"] == 0.0 and st["inner_steps"] == 0.0
    assert any(not torch.equal(a, p) for a, p in zip(e0, enc)) and any(not torch.equal(a, p) for a, p in zip(d0, dec))


def test_lagging_inner_loop_stops_when_the_window_loss_rises():
    model, x = VAE(D, K, hidden=H, seed=5), _binary(20)
    lag = B.LaggingEncoder(max_inner=100, check_every=2)
    lag.begin(model, _data(80), torch.Generator().manual_seed(0))
    lag.clip_grad = 5.0
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)  # on noise-like data the loss soon stops improving
    n = lag.encoder_steps(model, opt, x, torch.Generator().manual_seed(1))
    assert n < 100 and n % 2 == 0


def test_lagging_with_fit_records_heldout_mi():
    pytest.importorskip("identkit.metrics")
    model = VAE(D, K, hidden=H, seed=5)
    lag = B.LaggingEncoder(max_inner=3, check_every=2)
    hist = fit(model, _data(60), method=lag, epochs=2, batch_size=20, seed=0, progress=False)
    assert len(hist["heldout_mi"]) >= 1 and np.all(np.isfinite(hist["heldout_mi"]))
    assert len(lag.inner_steps) >= 3 and all(1 <= n <= 3 for n in lag.inner_steps)


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("build, name", [
    (lambda: B.BetaVAE(0.0), "beta"),
    (lambda: B.BetaVAE(float("nan")), "beta"),
    (lambda: B.FreeBits(-1.0), "lam"),
    (lambda: B.SemiAmortized(0, 1.0), "svi_steps"),
    (lambda: B.SemiAmortized(3, 0.0), "svi_lr"),
    (lambda: B.SemiAmortized(3, 1.0, svi_momentum=1.0), "svi_momentum"),
    (lambda: B.SemiAmortized(3, 1.0, max_grad_norm=-1.0), "max_grad_norm"),
    (lambda: B.LaggingEncoder(max_inner=0), "max_inner"),
    (lambda: B.LaggingEncoder(check_every=0), "check_every"),
    (lambda: B.LaggingEncoder(heldout_x=torch.zeros(1, D)), "heldout_x"),
    (lambda: B.LaggingEncoder(train_x=torch.full((3, D), float("nan"))), "train_x"),
    (lambda: B.VampPrior(D, K, hidden=H, n_pseudo=0), "n_pseudo"),
    (lambda: B.VampPrior(D, K, hidden=H, n_pseudo=2, pseudo_init=torch.zeros(3, D)), "pseudo_init"),
    (lambda: B.VampPrior(D, K, hidden=H, n_pseudo=2, pseudo_init=torch.full((2, D), 2.0)), "pseudo_init"),
])
def test_bad_arguments_raise_value_error_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_lagging_without_data_says_so():
    lag = B.LaggingEncoder()
    with pytest.raises(ValueError, match="train_x"):
        lag._fresh_batch(VAE(D, K, hidden=H), 4, torch.Generator().manual_seed(0), "cpu")
