"""The training loop: reproducibility, binarisation, clipping, NaN stop, checkpoints, argument checks."""
from __future__ import annotations

import pytest
import torch

from identkit.neural import models, train
from identkit.neural.models import GMVAE, IDGMVAE, LIDVAE, VAE

D, K, H = 12, 3, 8


def tiny_data(n=40, seed=0):
    return torch.rand(n, D, generator=torch.Generator().manual_seed(seed))


def states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


BUILDERS = {
    "vae": lambda: VAE(D, K, hidden=H, seed=1),
    "lidvae": lambda: LIDVAE(D, K, hidden=H, lam=0.5, seed=1),
    "gmvae": lambda: GMVAE(D, K, 2, hidden=H, seed=1),
    "idgmvae": lambda: IDGMVAE(D, K, 2, hidden=H, seed=1),
    "vae-gaussian": lambda: VAE(D, K, hidden=H, likelihood="gaussian", seed=1),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_seeded_training_is_bitwise_reproducible(name):
    x = tiny_data()
    runs = []
    for seed in (3, 3, 4):
        m = BUILDERS[name]()
        h = train.fit(m, x, epochs=2, batch_size=16, seed=seed, progress=False)
        runs.append((m, h))
    (m1, h1), (m2, h2), (m3, h3) = runs
    assert states_equal(m1, m2) and h1["step_loss"] == h2["step_loss"]
    assert not states_equal(m1, m3) and h1["step_loss"] != h3["step_loss"]
    assert len(h1["step_loss"]) == 2 * 3 and len(h1["elbo"]) == 2  # ceil(40/16) = 3 steps per epoch


@pytest.mark.parametrize("name", list(BUILDERS))
def test_checkpoint_round_trip_is_exact(tmp_path, name):
    x = tiny_data()
    m = BUILDERS[name]()
    opt = train.make_optimizer(m.parameters())
    train.fit(m, x, epochs=1, batch_size=20, seed=0, progress=False)
    path = train.save_checkpoint(m, tmp_path / "sub" / "m.pt", optimizer=opt, epoch=1, note="tiny")
    m2 = train.load_checkpoint(path)
    assert type(m2) is type(m) and m2.config == m.config
    assert states_equal(m, m2)
    assert m2.checkpoint_meta == {"epoch": 1, "note": "tiny"}
    assert "state" in m2.checkpoint_optimizer_state
    with torch.no_grad():
        assert torch.equal(m.elbo(x, seed=5), m2.elbo(x, seed=5))
        assert torch.equal(m.encode(x)[0], m2.encode(x)[0])
        z = torch.randn(4, K)
        assert torch.equal(m.decode(z), m2.decode(z))
    # training resumes identically from the checkpoint
    h1 = train.fit(m, x, epochs=1, batch_size=20, seed=9, progress=False)
    h2 = train.fit(m2, x, epochs=1, batch_size=20, seed=9, progress=False)
    assert h1["step_loss"] == h2["step_loss"] and states_equal(m, m2)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an identkit checkpoint"):
        train.load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="config"):
        train.save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "lin.pt")

    class Local(VAE):  # a subclass outside the identkit package is not rebuilt from a file
        pass

    m = Local(D, K, hidden=H)
    train.save_checkpoint(m, tmp_path / "local.pt")
    with pytest.raises(ValueError, match="outside identkit"):
        train.load_checkpoint(tmp_path / "local.pt")


def test_fit_writes_checkpoints_each_epoch(tmp_path):
    m = VAE(D, K, hidden=H, seed=0)
    train.fit(m, tiny_data(), epochs=2, batch_size=20, seed=0, progress=False, checkpoint=tmp_path / "c.pt")
    m2 = train.load_checkpoint(tmp_path / "c.pt")
    assert m2.checkpoint_meta["epoch"] == 2 and states_equal(m, m2)


def test_nan_in_parameters_stops_with_floating_point_error():
    m = VAE(D, K, hidden=H, seed=0)
    with torch.no_grad():
        m.decoder.net[0].weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="step 0"):
        train.fit(m, tiny_data(), epochs=1, batch_size=20, seed=0, progress=False)


def test_nan_loss_later_names_the_step():
    class Explodes(train.Method):
        def loss(self, model, x, step, generator):
            loss, stats = super().loss(model, x, step, generator)
            return (loss * float("inf") if step == 3 else loss), stats

    with pytest.raises(FloatingPointError, match="step 3"):
        train.fit(VAE(D, K, hidden=H), tiny_data(), method=Explodes(), epochs=3, batch_size=20, progress=False)


def test_nonfinite_gradient_is_caught():
    m = VAE(D, K, hidden=H, seed=0)
    x = tiny_data(8)
    opt = train.make_optimizer(m.parameters())
    meth = train.Method()
    loss = -m.elbo(x, seed=0).mean()
    loss = loss + 0.0 * m.encoder.net[0].weight.sum() * float("inf")  # finite value? no: 0·inf = nan
    with pytest.raises(FloatingPointError):
        meth.backward_and_step(m, opt, loss, 7)


class Recorder(train.Method):
    """Records every batch and the post-clipping gradient norm."""

    def __init__(self):
        self.batches, self.norms = [], []

    def train_step(self, model, optimizer, x, step, generator):
        self.batches.append(x.clone())
        optimizer.zero_grad()
        loss, stats = self.loss(model, x, step, generator)
        loss = loss * 1e4  # make the raw gradient norm large
        self.backward_and_step(model, optimizer, loss, step)
        params = [p for p in model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))))
        return stats


def test_dynamic_binarisation_and_clipping():
    x = tiny_data()
    rec = Recorder()
    train.fit(VAE(D, K, hidden=H), x, method=rec, epochs=2, batch_size=10, seed=0, progress=False, clip_grad=0.5)
    assert all(set(b.unique().tolist()) <= {0.0, 1.0} for b in rec.batches)
    assert not torch.equal(rec.batches[0], rec.batches[4])  # a fresh binarisation each epoch
    assert max(rec.norms) <= 0.5 * (1 + 1e-4)
    assert rec.clip_grad == 0.5
    # binarize=False: the batches are rows of x; a Gaussian model is never binarised
    for model, kw in ((VAE(D, K, hidden=H), {"binarize": False}), (VAE(D, K, hidden=H, likelihood="gaussian"), {})):
        rec = Recorder()
        train.fit(model, x, method=rec, epochs=1, batch_size=10, seed=0, progress=False, **kw)
        rows = torch.cat(rec.batches)
        assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, x.tolist()))


def patterned(n, seed):
    """Two prototype images (left half on, or right half on) with pixel probabilities 0.9/0.1."""
    bit = torch.randint(0, 2, (n, 1), generator=torch.Generator().manual_seed(seed)).float()
    left = (torch.arange(D) < D // 2).float()
    return 0.1 + 0.8 * (bit * left + (1 - bit) * (1 - left))


def test_training_increases_the_elbo_and_records_eval():
    x = patterned(200, 0)
    m = VAE(D, K, hidden=16, seed=0)
    h = train.fit(m, x, epochs=15, batch_size=50, lr=3e-3, seed=0, progress=False, eval_x=patterned(50, 1))
    assert h["elbo"][-1] > h["elbo"][0] + 0.5
    assert len(h["eval_elbo"]) == 15 and h["eval_elbo"][-1] > h["eval_elbo"][0]
    assert {"loss", "elbo", "rec", "kl", "grad_norm", "epoch_seconds", "settings"} <= set(h)
    assert not m.training


def test_hooks_are_called():
    class Hooks(train.Method):
        name = "hooks"

        def __init__(self):
            self.calls = []

        def begin(self, model, train_x, generator):
            self.calls.append(("begin", train_x.shape[0]))

        def end_epoch(self, model, epoch, history):
            self.calls.append(("end", epoch, len(history["elbo"])))

    meth = Hooks()
    h = train.fit(VAE(D, K, hidden=H), tiny_data(), method=meth, epochs=2, batch_size=40, progress=False)
    assert meth.calls == [("begin", 40), ("end", 0, 1), ("end", 1, 2)]
    assert h["settings"]["method"] == "hooks"


def test_fit_argument_errors():
    m, x = VAE(D, K, hidden=H), tiny_data()
    bad = x.clone()
    bad[0, 0] = float("nan")
    cases = [
        (dict(train_x=bad), "train_x"),
        (dict(train_x=x[:, :5]), "train_x"),
        (dict(train_x=x * 2), r"\[0, 1\]"),
        (dict(train_x=x.numpy()), "train_x"),
        (dict(train_x=x, epochs=-1), "epochs"),
        (dict(train_x=x, batch_size=0), "batch_size"),
        (dict(train_x=x, lr=0.0), "lr"),
        (dict(train_x=x, optimizer="lbfgs"), "optimizer"),
        (dict(train_x=x, clip_grad=-1.0), "clip_grad"),
        (dict(train_x=x, seed=-2), "seed"),
        (dict(train_x=x, method="vae"), "method"),
        (dict(train_x=x, eval_x=torch.zeros(3, D + 1)), "eval_x"),
    ]
    for kw, match in cases:
        with pytest.raises(ValueError, match=match):
            train.fit(m, kw.pop("train_x"), progress=False, **kw)


def test_generators_and_device():
    a = torch.randn(3, generator=train.make_generator(5))
    b = torch.randn(3, generator=train.make_generator(seed=5))
    assert torch.equal(a, b)
    g = torch.Generator()
    assert train.make_generator(g) is g
    with pytest.raises(ValueError):
        train.make_generator(1, seed=2)
    with pytest.raises(ValueError, match="seed"):
        train.make_generator(-1)
    assert train.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert isinstance(train.make_optimizer(VAE(D, K, hidden=H).parameters(), "adam", 1e-2), torch.optim.Adam)
    assert models.build_model("VAE", data_dim=D, latent_dim=K).latent_dim == K


# ------------------------------------------------------------------------------ resumable training state
def _lagging():
    from identkit.neural.baselines import LaggingEncoder

    return LaggingEncoder(max_inner=4, check_every=2, mi_seed=0)


@pytest.mark.parametrize("name,method", [("vae", None), ("lidvae", None), ("idgmvae", None), ("vae", _lagging)])
def test_resumed_training_is_the_uninterrupted_run(tmp_path, name, method):
    """Train 1 epoch, stop, resume in a new model and method up to 3: bit-identical to 3 epochs in one go."""
    x = tiny_data()
    kw = dict(batch_size=16, seed=5, progress=False, lr=3e-3)
    ref_method = method() if method else None
    ref = BUILDERS[name]()
    h_ref = train.fit(ref, x, epochs=3, method=ref_method, **kw)
    state = tmp_path / "run.state.pt"
    first = BUILDERS[name]()
    h1 = train.fit(first, x, epochs=1, method=method() if method else None, resume=state, **kw)
    assert state.exists() and h1["resumed_at"] == [] and len(h1["wall_seconds"]) == 1
    fresh = BUILDERS[name]()
    with torch.no_grad():  # the stored parameters overwrite whatever the model holds
        for p in fresh.parameters():
            p.add_(1.0)
    resumed_method = method() if method else None
    h2 = train.fit(fresh, x, epochs=3, method=resumed_method, resume=state, **kw)
    assert states_equal(ref, fresh)
    assert h2["step_loss"] == h_ref["step_loss"] and h2["elbo"] == h_ref["elbo"]
    assert h2["resumed_at"] == [1] and len(h2["wall_seconds"]) == 3
    assert h2["wall_seconds"][0] == h1["wall_seconds"][0] and h2["wall_seconds"] == sorted(h2["wall_seconds"])
    if method:
        assert resumed_method.state_dict() == ref_method.state_dict()
        assert len(resumed_method.mi_history) == ref_method.aggressive_epochs == resumed_method.aggressive_epochs
    # a finished run resumed with the same epochs trains nothing and returns the same model
    again = BUILDERS[name]()
    train.fit(again, x, epochs=3, method=method() if method else None, resume=state, **kw)
    assert states_equal(again, ref)


def test_resume_refuses_a_state_of_another_run(tmp_path):
    x = tiny_data()
    state = tmp_path / "s.pt"
    train.fit(VAE(D, K, hidden=H, seed=0), x, epochs=2, batch_size=20, seed=0, progress=False, resume=state)
    for kw, what in [(dict(seed=1), "settings"), (dict(lr=2e-3), "settings"), (dict(train_x=tiny_data(seed=1)), "data"),
                     (dict(model=VAE(D, K + 1, hidden=H)), "config"), (dict(model=LIDVAE(D, K, hidden=H)), "model"),
                     (dict(method=_lagging()), "method")]:
        args = dict(model=VAE(D, K, hidden=H, seed=0), train_x=x, epochs=2, batch_size=20, seed=0) | kw
        with pytest.raises(ValueError, match=f"different run.*{what}"):
            train.fit(args.pop("model"), args.pop("train_x"), progress=False, resume=state, **args)
    with pytest.raises(ValueError, match="already trained for 2 epochs"):
        train.fit(VAE(D, K, hidden=H, seed=0), x, epochs=1, batch_size=20, seed=0, progress=False, resume=state)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an identkit training-state"):
        train.fit(VAE(D, K, hidden=H), x, epochs=1, batch_size=20, seed=0, progress=False, resume=tmp_path / "other.pt")


def test_stateless_method_rejects_a_state():
    with pytest.raises(ValueError, match="keeps no training state"):
        train.Method().load_state_dict({"aggressive": True})
    train.Method().load_state_dict({})


def test_tensor_sha256_is_the_digest_of_the_values_in_c_order():
    import hashlib

    import numpy as np

    x = tiny_data()
    ref = hashlib.sha256(np.ascontiguousarray(x.numpy()).tobytes()).hexdigest()
    assert train.tensor_sha256(x) == ref
    # a transposed copy laid out in Fortran order has the same values, so the same digest
    assert train.tensor_sha256(x.t().contiguous().t()) == ref
    y = x.clone()
    y[3, 5] = torch.nextafter(y[3, 5], torch.tensor(2.0))  # one value, one ulp
    assert train.tensor_sha256(y) != ref
    assert train.tensor_sha256(x.double()) != ref  # the dtype's bytes are hashed


def test_reproducible_fixes_threads_and_determinism_and_restores_them():
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with train.reproducible(threads=1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    with pytest.raises(RuntimeError, match="inside"):
        with train.reproducible(threads=1):
            raise RuntimeError("inside")
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    with pytest.raises(ValueError, match="threads"):
        with train.reproducible(threads=0):
            pass


def test_threads_setting_reads_identkit_threads():
    from identkit import config

    assert config.threads_setting({}) == 1 and config.threads_setting({"IDENTKIT_THREADS": "3"}) == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="IDENTKIT_THREADS"):
            config.threads_setting({"IDENTKIT_THREADS": bad})


def test_tf_rmsprop_is_tensorflow_1s_update():
    # m_0 = 1, ε inside the square root, heavy-ball momentum: three steps by hand on f(θ) = Σ c θ²
    from identkit.neural.train import TFRMSprop, make_optimizer

    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    c = torch.tensor([3.0, 0.5], dtype=torch.float64)
    opt = make_optimizer([theta], "rmsprop_tf", lr=0.1)
    assert isinstance(opt, TFRMSprop)
    th, ms, mom = theta.detach().clone(), torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for _ in range(3):
        opt.zero_grad()
        (c * theta**2).sum().backward()
        opt.step()
        grad = 2 * c * th
        ms = 0.9 * ms + 0.1 * grad**2
        mom = 0.5 * mom + 0.1 * grad / torch.sqrt(ms + 1e-10)
        th = th - mom
        assert torch.allclose(theta.detach(), th, atol=1e-12)
    # PyTorch's RMSprop (m_0 = 0) takes a first step ~ lr/sqrt(1 - α) = 10 lr; TF1's from m_0 = 1 does not
    p1, p2 = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    for p, name in ((p1, "rmsprop"), (p2, "rmsprop_tf")):
        o = make_optimizer([p], name, lr=0.01)
        (0.05 * p**2).sum().backward()  # gradient 0.1
        o.step()
    assert 1 - p1.item() == pytest.approx(0.1, rel=1e-3) and 1 - p2.item() < 0.002
    with pytest.raises(ValueError, match="rho"):
        TFRMSprop([theta], rho=1.0)
