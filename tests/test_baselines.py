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
def _structured(n, seed=0):
    """Binary images of a 2-factor model (so a trained VAE has something to encode)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(2, D, generator=torch.Generator().manual_seed(99)) * 3
    p = torch.sigmoid(torch.randn(n, 2, generator=g) @ w)
    return torch.bernoulli(p, generator=g)


def _refine_by_hand(model, x, mu, lv, g, steps, lr, mom, clip, beta=1.0):
    """Kim et al.'s OptimN2N forward pass, written out (batch-mean loss, each gradient clipped, p_0 = −g_0)."""
    p_mu = p_lv = None
    for k in range(steps):
        mu, lv = mu.detach().requires_grad_(True), lv.detach().requires_grad_(True)
        z = mu + torch.exp(0.5 * lv) * torch.randn((1, *mu.shape), generator=g, dtype=mu.dtype)
        logits = model.decoder(z)[0]
        rec = (x * logits - torch.nn.functional.softplus(logits)).sum(-1)
        kl = 0.5 * (mu**2 + lv.exp() - lv - 1).sum(-1)
        gm, gl = torch.autograd.grad((-rec + beta * kl).mean(), (mu, lv))
        gm, gl = [t * min(1.0, clip / float(t.norm())) for t in (gm, gl)]
        p_mu = -gm if k == 0 else mom * p_mu - gm
        p_lv = -gl if k == 0 else mom * p_lv - gl
        mu, lv = mu + lr * p_mu, lv + lr * p_lv
    return mu.detach(), lv.detach()


def test_sa_vae_svi_is_kim_et_al_batch_averaged_momentum_rule():
    model, x = VAE(D, K, hidden=H, seed=4), _binary(30, 2)
    for clip in (5.0, 0.05):  # the clip inactive, then active in every step
        sa = B.SemiAmortized(svi_steps=6, svi_lr=1.0, svi_momentum=0.5, max_grad_norm=clip)
        mu0, lv0 = model.encode(x)
        got = sa.refine(model, x, torch.Generator().manual_seed(3), kl_weight=0.4)
        want = _refine_by_hand(model, x, mu0, lv0, torch.Generator().manual_seed(3), 6, 1.0, 0.5, clip, beta=0.4)
        assert torch.allclose(got[0], want[0], atol=1e-5) and torch.allclose(got[1], want[1], atol=1e-5)


def test_sa_vae_refinement_raises_the_elbo_of_a_trained_model():
    # 20 steps at lr 1 on the batch mean, from the encoder's output: the held-out ELBO rises (the per-example
    # step is lr/B; the summed-loss version, B times larger, had made it fall by 70 nats on Fashion-MNIST)
    model = VAE(D, K, hidden=H, seed=4)
    fit(model, _structured(600, 1), epochs=3, batch_size=100, seed=0, progress=False)
    x = _structured(100, 9)
    sa = B.SemiAmortized()
    assert sa.svi_steps == 20 and sa.svi_lr == 1.0 and sa.svi_momentum == 0.5 and sa.max_grad_norm == 5.0
    with torch.no_grad():
        mu0, lv0 = model.encode(x)
    mu_t, lv_t = sa.refine(model, x, torch.Generator().manual_seed(1))
    with torch.no_grad():  # many common-random-number samples: the comparison is not Monte-Carlo noise
        e0 = B.gaussian_elbo(model, x, mu0, lv0, torch.Generator().manual_seed(2), samples=4000)
        et = B.gaussian_elbo(model, x, mu_t, lv_t, torch.Generator().manual_seed(2), samples=4000)
    assert float((et - e0).mean()) > 1e-3  # small here (an easy 2-factor model, a per-example step of 0.01) ...
    assert bool(torch.all(et > e0))  # ... but every example's ELBO rose
    # and more so from a worse start (an amortisation gap to close)
    mu_b, lv_b = sa.refine(model, x, torch.Generator().manual_seed(1), mu0 + 1.0, lv0)
    with torch.no_grad():
        eb0 = B.gaussian_elbo(model, x, mu0 + 1.0, lv0, torch.Generator().manual_seed(2), samples=4000)
        ebt = B.gaussian_elbo(model, x, mu_b, lv_b, torch.Generator().manual_seed(2), samples=4000)
    assert float((ebt - eb0).mean()) > 0.5


def test_sa_vae_trains_the_encoder_through_the_svi_steps():
    # d loss(λ_T(φ)) / dφ by autograd (double backward) equals a central finite difference of the same
    # computation; and it is not the amortised gradient d ELBO(λ_0)/dφ (what "VAE + SVI" would use)
    torch.manual_seed(0)
    model, x = VAE(D, K, hidden=H, seed=6).double(), _binary(16, 3).double()
    sa = B.SemiAmortized(svi_steps=4, svi_lr=1.0, max_grad_norm=None, warmup_epochs=0)
    sa.clip_grad, sa.steps_per_epoch = None, 1
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step leaves the gradients behind
    sa.train_step(model, opt, x, 0, torch.Generator().manual_seed(11))
    w = model.encoder.net[0].weight
    got = w.grad.clone()

    def loss_at(delta, i, j):
        with torch.no_grad():
            w[i, j] += delta
        g = torch.Generator().manual_seed(11)
        mu0, lv0 = model.encode(x)
        mu_t, lv_t = sa.refine(model, x, g, mu0, lv0, create_graph=True)
        val = float(-B.gaussian_elbo(model, x, mu_t, lv_t, g).mean().detach())
        with torch.no_grad():
            w[i, j] -= delta
        return val

    for i, j in [(0, 0), (3, 5), (7, 11)]:
        fd = (loss_at(1e-6, i, j) - loss_at(-1e-6, i, j)) / 2e-6
        assert got[i, j].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)
    mu0, lv0 = model.encode(x)
    amortised = torch.autograd.grad(-B.gaussian_elbo(model, x, mu0, lv0, torch.Generator().manual_seed(11)).mean(), w)[0]
    assert not torch.allclose(got, amortised, rtol=0.1)


def test_sa_vae_kl_warm_up_is_kim_et_al_schedule():
    sa = B.SemiAmortized(warmup_epochs=10)
    sa.steps_per_epoch = 10
    assert sa.kl_weight(0) == pytest.approx(0.11)  # raised before the first step, from 0.1 by 1/(10·10)
    assert sa.kl_weight(88) == pytest.approx(0.99) and sa.kl_weight(89) == 1.0 and sa.kl_weight(500) == 1.0
    assert B.SemiAmortized(warmup_epochs=0).kl_weight(0) == 1.0


def test_refined_posterior_is_one_q_for_every_metric():
    from identkit import metrics

    model = VAE(D, K, hidden=H, seed=4)
    fit(model, _structured(300, 1), epochs=2, batch_size=50, seed=0, progress=False)
    sa = B.SemiAmortized(svi_steps=5)
    sa.batch_size = 50
    ref = sa.refined_posterior(model, seed=3)
    x = _data(120, 5)  # distinct rows (a repeated row is refined once, in the batch where it first appears)
    other = sa.refined_posterior(model, seed=3)
    a = ref.prepare(x).encode(x[:40])
    b = torch.cat([other.encode(x[:50])[0], other.encode(x[50:100])[0], other.encode(x[100:])[0]])
    assert torch.equal(a[0], b[:40])  # refined in batches of 50 of x's order, whatever the caller's batches
    assert torch.equal(ref.encode(x[30:70])[1], other.encode(x[30:70])[1])
    assert not torch.allclose(a[0], model.encode(x[:40])[0])
    res = metrics.collapse_metrics(ref, x, seed=0, samples=20, batch_size=50)
    mu, lv = metrics.encode_all(ref, x, batch_size=40)
    assert res["KL"] == pytest.approx(float(np.mean(metrics.kl_to_prior(mu, lv))), rel=1e-6)


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
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    enc, dec = B.encoder_parameters(model, x)
    assert {id(p) for p in enc} == {id(p) for p in model.encoder.parameters()}
    e0, d0 = _snapshot(enc), _snapshot(dec)
    n = lag.encoder_steps(model, opt, x, torch.Generator().manual_seed(1))
    assert 1 <= n <= 7
    assert all(torch.equal(a, p) for a, p in zip(d0, dec))
    assert any(not torch.equal(a, p) for a, p in zip(e0, enc))
    assert all(p.requires_grad for p in model.parameters())  # the freezes are undone


def test_lagging_aggressive_outer_step_clips_jointly_then_steps_only_the_decoder():
    model, x = VAE(D, K, hidden=H, seed=5), _binary(20)
    lag = B.LaggingEncoder()
    lag.begin(model, _data(40), torch.Generator().manual_seed(0))
    lag.clip_grad, lag.steps_per_epoch = 0.1, 2
    lag.encoder_steps = lambda *a, **k: 0  # isolate the outer update
    enc, dec = B.encoder_parameters(model, x)
    e0 = _snapshot(enc)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    d0 = _snapshot(dec)
    st = lag.train_step(model, opt, x, 0, torch.Generator().manual_seed(3))
    # by hand: the gradient of the warmed-up loss w.r.t. *all* parameters, one joint clip, decoder step only
    w = lag.kl_weight(0)
    assert w == pytest.approx(0.1 + 0.9 / 20)
    d1 = _snapshot(dec)
    for p, v in zip(dec, d0):
        p.data.copy_(v)
    terms = model.loss_terms(x, torch.Generator().manual_seed(3))
    grads = torch.autograd.grad(-(terms["rec"] - w * terms["kl"]).mean(), enc + dec)
    norm = torch.sqrt(sum(g.square().sum() for g in grads))
    assert st["grad_norm"] == pytest.approx(float(norm), rel=1e-5) and norm > 0.1
    for after, before, gr in zip(d1, d0, grads[len(enc):]):  # SGD, lr 1: the jointly clipped gradient
        assert torch.allclose(after, before - gr * 0.1 / norm, atol=1e-6)
    assert all(torch.equal(a, p) for a, p in zip(e0, enc))
    assert st["aggressive"] == 1.0


def test_lagging_stops_at_the_fifth_epoch_without_a_new_best_mi(monkeypatch):
    # He et al.'s counter is cumulative (never reset): the 5th epoch below the best so far ends the phase
    model = VAE(D, K, hidden=H, seed=5)
    lag = B.LaggingEncoder()
    lag.begin(model, _data(40), torch.Generator().manual_seed(0))
    mis = iter([0.5, 0.8, 0.7, 0.9, 0.6, 0.95, 0.85, 0.9, 0.91, 9.9])
    monkeypatch.setattr(lag, "heldout_mi", lambda m, seed=None: next(mis))
    for epoch in range(8):
        assert lag.aggressive
        lag.end_epoch(model, epoch, {})
    assert lag.not_improved == 4 and lag.best_mi == 0.95
    lag.end_epoch(model, 8, {})
    assert not lag.aggressive and lag.aggressive_epochs == 9
    lag.end_epoch(model, 9, {})  # no more checks once off
    assert lag.mi_history == [0.5, 0.8, 0.7, 0.9, 0.6, 0.95, 0.85, 0.9, 0.91]
    state = lag.state_dict()
    other = B.LaggingEncoder()
    other.load_state_dict(state)
    assert other.state_dict() == state


def test_lagging_heldout_mi_is_he_et_al_per_batch_estimate():
    from identkit import metrics

    model = VAE(D, K, hidden=H, seed=5)
    val = _binary(70, 4)
    lag = B.LaggingEncoder(heldout_x=val)
    lag.batch_size = 20
    with torch.no_grad():
        mu, lv = model.encode(val)
    assert lag.heldout_mi(model, seed=3) == pytest.approx(
        metrics.mutual_information(mu, lv, seed=3, batch_size=20), rel=1e-6)


def test_lagging_inner_loop_stops_when_the_window_loss_rises():
    model, x = VAE(D, K, hidden=H, seed=5), _binary(20)
    lag = B.LaggingEncoder(max_inner=100, check_every=2)
    lag.begin(model, _data(80), torch.Generator().manual_seed(0))
    lag.clip_grad = 5.0
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2)  # on noise-like data the loss soon stops improving
    n = lag.encoder_steps(model, opt, x, torch.Generator().manual_seed(1))
    assert n < 100 and n % 2 == 0


def test_lagging_with_fit_records_heldout_mi_and_resumes_exactly(tmp_path):
    def run(epochs, state):
        model = VAE(D, K, hidden=H, seed=5)
        lag = B.LaggingEncoder(heldout_x=_binary(30, 7), max_inner=3, check_every=2, warmup_epochs=1)
        hist = fit(model, _data(60), method=lag, epochs=epochs, batch_size=20, seed=0, progress=False,
                   optimizer="adam", resume=state)
        return model, lag, hist

    model, lag, hist = run(3, None)
    assert len(hist["heldout_mi"]) == 3 and np.all(np.isfinite(hist["heldout_mi"]))
    assert len(lag.inner_steps) == 9 and all(1 <= n <= 3 for n in lag.inner_steps)
    run(2, tmp_path / "s.pt")
    resumed, lag2, _ = run(3, tmp_path / "s.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed.state_dict().values()))
    assert lag2.state_dict() == lag.state_dict()


# ------------------------------------------------------------------------------------------------ KL threshold
def test_kl_threshold_drops_each_example_and_dimension_below_lambda():
    # Li et al.'s fb = 2: unlike free bits (batch mean), example 1's dimension 0 (KL 0 < λ) gets no gradient
    # although the batch mean of dimension 0 is above λ; example 0's gets the KL gradient
    mu = torch.tensor([[2.0 * math.sqrt(2.0), 0.1], [0.0, 0.1]])
    model = _fixed_model(mu, torch.zeros(2, 2))
    kt = B.KLThreshold(lam=1.0, pretrain_epochs=1, warmup_epochs=0)
    kt.steps_per_epoch = 1
    loss, st = kt.loss(model, _binary(2), 1, torch.Generator().manual_seed(0))  # step 1: thresholded phase
    loss.backward()
    g = model.encoder.mu.grad
    assert g[0, 0] == pytest.approx(float(mu[0, 0]) / 2, abs=1e-6)
    assert torch.all(g[1] == 0) and g[0, 1] == 0  # dimension 1 (KL 0.005) and example 1: dropped
    assert st["kept_fraction"] == pytest.approx(0.25) and st["kl_weight"] == 1.0
    loss0, st0 = kt.loss(model, _binary(2), 0, torch.Generator().manual_seed(0))  # pretraining: KL weight 0
    assert st0["kl_weight"] == 0.0


def test_kl_threshold_pretrains_an_autoencoder_then_resets_the_decoder():
    model = VAE(D, K, hidden=H, seed=5)
    kt = B.KLThreshold(lam=0.25, pretrain_epochs=2, warmup_epochs=1, reset_seed=4)
    seen = []
    orig = kt.end_epoch

    def spy(m, epoch, history):
        orig(m, epoch, history)
        seen.append((epoch, {k: v.clone() for k, v in m.decoder.state_dict().items()},
                     {k: v.clone() for k, v in m.encoder.state_dict().items()}))

    kt.end_epoch = spy
    hist = fit(model, _data(60), method=kt, epochs=kt.extra_epochs + 2, batch_size=20, seed=0, progress=False,
               optimizer="adam")
    assert hist["kl_weight"][:2] == [0.0, 0.0] and 0 < hist["kl_weight"][2] < 1 and hist["kl_weight"][3] == 1.0
    fresh = VAE(D, K, hidden=H, seed=5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        for m in fresh.decoder.modules():
            if m is not fresh.decoder and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    _, dec_after_reset, enc_after_pretrain = seen[1]
    assert all(torch.equal(dec_after_reset[k], v) for k, v in fresh.decoder.state_dict().items())
    assert not all(torch.equal(enc_after_pretrain[k], v) for k, v in fresh.encoder.state_dict().items())
    assert kt.reset_done and not kt.optimizer_reset_pending


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
    (lambda: B.LaggingEncoder(patience=0), "patience"),
    (lambda: B.LaggingEncoder(kl_start=1.5), "kl_start"),
    (lambda: B.SemiAmortized(warmup_epochs=-1), "warmup_epochs"),
    (lambda: B.KLThreshold(lam=0.0), "lam"),
    (lambda: B.KLThreshold(pretrain_epochs=0), "pretrain_epochs"),
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
