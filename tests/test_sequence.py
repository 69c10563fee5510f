"""Text VAEs (LSTMVAE, IDSVAE): the likelihood against an independent step-by-step reference and exact
normalisation, injectivity of the IDSVAE head in z at every position, β full rank, padding, the encoder's packing,
generation, fit/checkpoint/resume, every training method on text, and bad input."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from identkit import metrics
from identkit.data.text import BOS_ID, EOS_ID, PAD_ID, TextData, Vocabulary
from identkit.neural import baselines as B
from identkit.neural.sequence import IDSVAE, LSTMVAE, SUPPORT_OFFSET
from identkit.neural.train import fit, load_checkpoint, save_checkpoint

from conftest import perturb_parameters

V = 40  # ids 0-3 special, 36 words


def _docs(n: int, seed: int, min_len: int = 1, max_len: int = 6, vocab: int = V) -> torch.Tensor:
    """Random rows <s> w.. </s> <pad>.. of varying length (ids in the TextData layout)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    out = torch.full((n, max_len + 2), PAD_ID, dtype=torch.long)
    out[:, 0] = BOS_ID
    for i, L in enumerate(lengths.tolist()):
        out[i, 1:L + 1] = torch.randint(4, vocab, (L,), generator=g)
        out[i, L + 1] = EOS_ID
    return out


def _models(vocab=V, latent=3, hidden=8, seed=0, dropout=0.0):
    kw = dict(latent_dim=latent, embed_dim=6, hidden=hidden, dropout_in=dropout, dropout_out=dropout, seed=seed)
    return [LSTMVAE(vocab, **kw), IDSVAE(vocab, icnn_hidden=16, **kw)]


def _small(cls, seed):
    """A small model of class ``cls`` (dropout 0.5 on, as in training)."""
    kw = dict(latent_dim=2, embed_dim=6, hidden=8, seed=seed)
    return cls(V, icnn_hidden=16, **kw) if cls is IDSVAE else cls(V, **kw)


def _ids(model):
    return pytest.param(model, id=type(model).__name__)


def _reference_log_likelihood(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x|z) token by token with an LSTM cell built from the decoder's weights (no packing, no masking
    tricks): an independent implementation of the autoregressive factorisation, for z (B, K)."""
    lstm = model.decoder.lstm
    cell = torch.nn.LSTMCell(lstm.input_size, lstm.hidden_size)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(lstm, f"{name}_l0"))
    total = []
    for b in range(x.shape[0]):
        zb = z[b:b + 1]
        h, c = (s[0] for s in model._initial_state(zb))
        lp = torch.zeros(())
        for t in range(1, x.shape[1]):
            if int(x[b, t]) == PAD_ID:
                break
            emb = model.decoder.embed(x[b:b + 1, t - 1])
            inp = torch.cat([emb, zb], -1) if model.z_in_recurrence else emb
            h, c = cell(inp, (h, c))
            logits = model._head(h, zb)                          # (1, V - 2) over </s>, <unk>, words
            full = torch.full((1, model.vocab_size), -math.inf)
            full[:, SUPPORT_OFFSET:] = logits
            lp = lp - F.cross_entropy(full, x[b:b + 1, t])
        total.append(lp)
    return torch.stack(total)


# ------------------------------------------------------------------------------------------------ likelihood
@pytest.mark.parametrize("model", [_ids(m) for m in _models()])
def test_log_likelihood_matches_a_token_by_token_reference_on_ragged_rows(model):
    model.eval()
    perturb_parameters(model, 0.3, seed=1)  # away from the tiny initial weights, where everything is uniform
    x = _docs(7, seed=2)
    z = torch.randn(4, 7, model.latent_dim, generator=torch.Generator().manual_seed(3))
    got = model.log_likelihood(x, z)
    assert got.shape == (4, 7)
    for s in range(4):
        want = _reference_log_likelihood(model, x, z[s])
        assert torch.allclose(got[s], want, atol=1e-4), (got[s], want)


@pytest.mark.parametrize("model", [_ids(m) for m in _models()])
def test_fixed_latent_loglik_is_the_language_model_at_the_held_latent(model):
    # metrics.fixed_latent_loglik against the token-by-token reference at z = 0 and at one given z₀
    model.eval()
    perturb_parameters(model, 0.3, seed=4)
    x = _docs(9, seed=5)
    zero = torch.zeros(9, model.latent_dim)
    np.testing.assert_allclose(metrics.fixed_latent_loglik(model, x, batch_size=4),
                               _reference_log_likelihood(model, x, zero).detach().double().numpy(), atol=1e-4)
    z0 = torch.tensor([0.7, -1.2, 0.4])
    want = _reference_log_likelihood(model, x, z0.expand(9, 3)).detach().double().numpy()
    np.testing.assert_allclose(metrics.fixed_latent_loglik(model, x, z=z0.numpy()), want, atol=1e-4)


@pytest.mark.parametrize("model", [_ids(m) for m in _models(vocab=6, latent=1, hidden=2)])
def test_probabilities_of_all_documents_sum_to_one(model):
    # Vocabulary of 2 words (+ <unk>): every document of at most 3 tokens (the empty one too: the model may end
    # at once), plus the probability of the 4-token prefixes without </s> (the longer documents), sum to 1.
    model.eval()
    perturb_parameters(model, 0.5, seed=4)
    z = torch.tensor([[0.7]])
    words = (3, 4, 5)
    complete = [list(w) for L in range(0, 4) for w in itertools.product(words, repeat=L)]
    x = torch.full((len(complete), 5), PAD_ID, dtype=torch.long)
    x[:, 0] = BOS_ID
    for i, w in enumerate(complete):
        x[i, 1:len(w) + 1] = torch.tensor(w)
        x[i, len(w) + 1] = EOS_ID
    with torch.no_grad():
        p_complete = model.log_likelihood(x, z.expand(1, len(complete), 1)).exp().sum()
        prefixes = torch.tensor([[BOS_ID, *w, EOS_ID] for w in itertools.product(words, repeat=4)])
        logits = model.next_token_logits(prefixes, z.expand(len(prefixes), 1))       # (n, 5, V - 2)
        lp = torch.log_softmax(logits, -1)[:, :4].gather(-1, (prefixes[:, 1:5] - SUPPORT_OFFSET).unsqueeze(-1))
        p_longer = lp.squeeze(-1).sum(-1).exp().sum()
    assert float(p_complete + p_longer) == pytest.approx(1.0, abs=1e-5)
    assert 1e-3 < float(p_complete) < 0.999  # both parts matter: not a degenerate check


@pytest.mark.parametrize("model", [_ids(m) for m in _models()])
def test_padding_and_batch_company_do_not_change_a_rows_likelihood(model):
    model.eval()
    perturb_parameters(model, 0.3, seed=5)
    x = _docs(5, seed=6)
    z = torch.randn(2, 5, model.latent_dim)
    base = model.log_likelihood(x, z)
    wider = torch.cat([x, torch.full((5, 3), PAD_ID)], 1)
    assert torch.allclose(model.log_likelihood(wider, z), base, atol=1e-5)
    alone = torch.stack([model.log_likelihood(x[i:i + 1], z[:, i:i + 1])[:, 0] for i in range(5)], 1)
    assert torch.allclose(alone, base, atol=1e-5)
    # the encoder's packed last state is the state after the row's own </s>, whatever follows it
    mu, lv = model.encode(x)
    mu_w, lv_w = model.encode(wider)
    assert torch.allclose(mu, mu_w, atol=1e-6) and torch.allclose(lv, lv_w, atol=1e-6)
    mu_1, _ = model.encode(x[2:3, : int((x[2] != PAD_ID).sum())])
    assert torch.allclose(mu[2:3], mu_1, atol=1e-6)


# ------------------------------------------------------------------------------------------------ identifiability
@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_idsvae_head_is_injective_in_z_at_every_position(scale):
    model = IDSVAE(V, latent_dim=3, embed_dim=6, hidden=8, icnn_hidden=16, lam=0.5, dropout_in=0.0,
                   dropout_out=0.0, seed=7)
    perturb_parameters(model, scale, seed=8)  # for every parameter value, not only at initialisation
    model.eval()
    x = _docs(6, seed=9, min_len=5)
    g = torch.Generator().manual_seed(10)
    z, z2 = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g) * 0.1
    z2 = z + z2  # near pairs as well as far ones
    c = model.injectivity_bound()
    assert c > 0
    with torch.no_grad():
        h, _ = model.decoder.lstm(model.decoder.embed(x[:, :-1]), model._initial_state(z))
        for other in (z2, torch.randn(6, 3, generator=g)):
            e1 = model.natural_parameters(h, z.unsqueeze(1).expand(-1, h.shape[1], -1))
            e2 = model.natural_parameters(h, other.unsqueeze(1).expand(-1, h.shape[1], -1))
            dist = (e1 - e2).norm(dim=-1)                                             # (B, T)
            dz = (z - other).norm(dim=-1, keepdim=True).expand_as(dist)
            assert bool(torch.all(dist >= c * dz * (1 - 1e-4)))
            # distinct natural parameters of a minimal family: distinct next-token distributions
            p1 = torch.softmax(model._head(h, z.unsqueeze(1).expand(-1, h.shape[1], -1)), -1)
            p2 = torch.softmax(model._head(h, other.unsqueeze(1).expand(-1, h.shape[1], -1)), -1)
            assert bool(torch.all((p1 - p2).abs().sum(-1) > 0))


def test_idsvae_beta_is_full_rank_and_the_recurrence_never_sees_z():
    model = IDSVAE(V, latent_dim=3, embed_dim=6, hidden=8, icnn_hidden=16, seed=11).eval()
    beta = model.decoder.head.beta
    assert beta.weight.shape == (8 + 3, V - 3)
    assert int(torch.linalg.matrix_rank(beta.weight.detach())) == 11
    assert float(beta.singular_values().min().detach()) >= beta.min_singular
    # LSTM input is the embedding alone, initial state a constant: h_t is the same for every z
    assert model.decoder.lstm.input_size == 6
    x = _docs(4, seed=12)
    h1 = model._run_decoder(x[:, :-1], torch.zeros(4, 3))
    h2 = model._run_decoder(x[:, :-1], torch.randn(4, 3))
    assert torch.equal(h1, h2)
    with pytest.raises(ValueError, match="vocab_size - 3"):
        IDSVAE(10, latent_dim=3, hidden=8)


def test_lstm_vae_can_ignore_z_and_the_idsvae_cannot():
    # the theorem on text: zero the LSTM-VAE's z-weights and p(x|z) is the same for every z (z non-identifiable,
    # so the exact posterior equals the prior); the IDSVAE's likelihood varies with z for any parameters
    lstm_vae, idsvae = _models(latent=2)
    for m in (lstm_vae, idsvae):
        perturb_parameters(m, 0.3, seed=13)
        m.eval()
    with torch.no_grad():
        lstm_vae.decoder.init_state.weight.zero_()
        lstm_vae.decoder.lstm.weight_ih_l0[:, 6:].zero_()   # the columns that read z
    x = _docs(5, seed=14)
    z = torch.randn(10, 5, 2)
    with torch.no_grad():
        assert float(lstm_vae.log_likelihood(x, z).std(0).max()) < 1e-5
        assert float(idsvae.log_likelihood(x, z).std(0).min()) > 1e-3


# ------------------------------------------------------------------------------------------------ generation
@pytest.mark.parametrize("model", [_ids(m) for m in _models()])
def test_generate_returns_valid_documents_greedy_deterministic_sampling_seeded(model):
    perturb_parameters(model, 0.3, seed=15)
    z = torch.randn(6, model.latent_dim)
    ids = model.generate(z, max_length=7)
    assert torch.equal(ids, model.generate(z, max_length=7))
    vocab = Vocabulary([f"w{i}" for i in range(V - 4)])
    lengths = (ids != PAD_ID).sum(1)
    TextData(ids, lengths, vocab, "generated", "test")  # the TextData checks the layout
    assert int(lengths.max()) <= 9
    s1 = model.generate(z, max_length=7, greedy=False, generator=3)
    assert torch.equal(s1, model.generate(z, max_length=7, greedy=False, generator=3))
    assert not torch.equal(s1, model.generate(z, max_length=7, greedy=False, generator=4))
    # the greedy first word is the argmax of the model's own next-token distribution
    logits = model.next_token_logits(torch.tensor([[BOS_ID, 4, EOS_ID]] * 6), z)
    assert torch.equal(ids[:, 1], logits[:, 0].argmax(-1) + SUPPORT_OFFSET)


# ------------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("cls", [LSTMVAE, IDSVAE])
def test_fit_trains_on_token_ids_checkpoints_and_resumes_exactly(cls, tmp_path):
    x = _docs(96, seed=16)
    straight = _small(cls, 17)
    h = fit(straight, x, epochs=4, batch_size=16, seed=1, progress=False, optimizer="adam", lr=3e-3)
    assert h["elbo"][-1] > h["elbo"][0]  # the ELBO rises (dropout 0.5 is on)
    pieces = _small(cls, 17)
    state = tmp_path / "run.state.pt"
    fit(pieces, x, epochs=2, batch_size=16, seed=1, progress=False, optimizer="adam", lr=3e-3, resume=state)
    resumed = _small(cls, 17)
    fit(resumed, x, epochs=4, batch_size=16, seed=1, progress=False, optimizer="adam", lr=3e-3, resume=state)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)  # the dropout stream is part of the saved state
    path = save_checkpoint(straight, tmp_path / "m.pt")
    back = load_checkpoint(path)
    straight.eval()
    z = torch.randn(3, 5, 2)
    assert torch.equal(back.log_likelihood(x[:5], z), straight.log_likelihood(x[:5], z))


@pytest.mark.parametrize("method", [
    pytest.param(lambda: B.BetaVAE(0.2), id="beta_vae"),
    pytest.param(lambda: B.FreeBits(0.5), id="free_bits"),
    pytest.param(lambda: B.KLThreshold(0.25, pretrain_epochs=1, warmup_epochs=1), id="kl_threshold"),
    pytest.param(lambda: B.LaggingEncoder(check_every=15, patience=1), id="lagging"),
    pytest.param(lambda: B.SemiAmortized(svi_steps=3), id="sa_vae"),
])
@pytest.mark.parametrize("cls", [LSTMVAE, IDSVAE])
def test_every_training_method_runs_on_the_text_models(method, cls):
    x = _docs(64, seed=18)
    model = _small(cls, 19)
    h = fit(model, x, method=method(), epochs=2, batch_size=16, seed=2, progress=False)
    assert all(math.isfinite(v) for v in h["loss"])
    r = metrics.collapse_metrics(model, x[:32], samples=20, seed=3, mi_batch_size=16)
    assert math.isfinite(r["LL"]) and 0 <= r["AU"] <= 1 and r["MI_batch"] <= math.log(16) + 1e-9


def test_sa_vae_refinement_raises_the_elbo_of_a_trained_text_model():
    x = _docs(200, seed=20, vocab=12)  # few words: z has something to explain
    model = LSTMVAE(V, latent_dim=2, embed_dim=6, hidden=8, dropout_in=0.0, dropout_out=0.0, seed=21)
    fit(model, x, epochs=3, batch_size=20, seed=3, progress=False, optimizer="adam", lr=3e-3)
    model.eval()
    xb = x[:50]
    with torch.no_grad():
        mu0, lv0 = model.encode(xb)
    mu_b, lv_b = B.SemiAmortized().refine(model, xb, torch.Generator().manual_seed(1), mu0 + 1.0, lv0)
    with torch.no_grad():
        e0 = B.gaussian_elbo(model, xb, mu0 + 1.0, lv0, torch.Generator().manual_seed(2), samples=500)
        et = B.gaussian_elbo(model, xb, mu_b, lv_b, torch.Generator().manual_seed(2), samples=500)
    assert float((et - e0).mean()) > 0.1


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad, match", [
    (lambda x: x.float(), "integer tensor"),
    (lambda x: x[:, :2], "T >= 3"),
    (lambda x: torch.where(x == 5, V + 1, x), "vocab_size"),
    (lambda x: torch.cat([x[:, 1:], x[:, :1]], 1), "start"),
    (lambda x: torch.cat([x[:, :1], torch.full_like(x[:, :1], PAD_ID), x[:, 1:]], 1), "pads only"),
])
def test_bad_token_ids_raise_value_error(bad, match):
    model = _models()[0]
    x = _docs(4, seed=22)
    with pytest.raises(ValueError, match=match):
        model.log_likelihood(bad(x), torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match=match):
        model.encode(bad(x))


def test_bad_arguments_raise_value_error_naming_them():
    model = _models()[1]
    x = _docs(4, seed=23)
    with pytest.raises(ValueError, match="z must have shape"):
        model.log_likelihood(x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="dropout_in"):
        LSTMVAE(V, dropout_in=1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        LSTMVAE(3)
    with pytest.raises(ValueError, match="integer token ids"):
        fit(model, x.float(), epochs=1, progress=False)
    with pytest.raises(ValueError, match="integer token ids"):
        metrics.iw_loglik(model, x.float(), samples=2)
