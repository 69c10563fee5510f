"""The text data sets of Table 1: their settings and methods, a tiny synthetic table end to end (records, CSV with
perplexity and the recovery of the true latent, one (method, seed) piece at a time), and the registry's errors."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from identkit import metrics, table
from identkit.data.text import synthetic_text
from identkit.neural.sequence import IDSVAE, LSTMVAE
from identkit.neural.train import load_checkpoint
from identkit.table import text as T


def _tiny(**kw):
    base = dict(n_train=64, n_eval=40, n_val=32, epochs=1, iw_samples=5, hidden=8, embed_dim=6, icnn_hidden=16,
                kl_threshold_pretrain=1, warmup_epochs=1, lagging_max_inner=5, svi_steps=2)
    base.update(kw)
    return table.table_settings(True, dataset="synthetic", **base)


def test_text_settings_follow_the_reference_configurations():
    s = table.table_settings(False, dataset="synthetic")
    # He et al.'s synthetic configuration; the text lagging rules; the reference's ICNN width
    assert (s.latent_dim, s.embed_dim, s.hidden, s.batch_size, s.dropout_in, s.dropout_out) == (2, 50, 50, 16, .5, .5)
    assert (s.lagging_check_every, s.lagging_patience, s.lagging_max_inner) == (15, 1, 99)
    assert (s.warmup_epochs, s.kl_start, s.svi_steps, s.svi_lr, s.icnn_hidden) == (10.0, 0.1, 20, 1.0, 128)
    # SA-VAE alone takes fewer SVI steps on the CPU-sized tables (a per-method override)
    assert table.method_settings(s, "sa_vae").svi_steps == T.TEXT_SVI_STEPS_CPU < s.svi_steps
    assert table.method_settings(s, "vae") == s
    y = table.table_settings(False, dataset="yahoo")
    assert (y.latent_dim, y.embed_dim, y.hidden, y.batch_size, y.n_train, y.n_eval) == (32, 512, 1024, 32, 30000, 10000)
    keys = {table.table_settings(False, dataset=d).key() for d in T.TEXT_DATASET_NAMES}
    assert len(keys) == 4 and table.table_settings(False).key() not in keys
    with pytest.raises(ValueError, match="unknown text data set"):
        T.TextTableSettings(dataset="imdb")
    with pytest.raises(ValueError, match="unknown data set"):
        table.get_dataset("imdb")


def test_text_methods_build_the_lstm_vae_or_the_idsvae_with_their_authors_rules():
    s = _tiny()
    for key in T.TEXT_METHODS:
        model, method = table.build_method(key, s, 1004, seed=3)
        assert isinstance(model, IDSVAE if key == "idsvae" else LSTMVAE)
        assert model.latent_dim == s.latent_dim and model.hidden == s.hidden
    _, lag = table.build_method("lagging", s, 1004, seed=3)
    assert (lag.check_every, lag.patience, lag.kl_start) == (15, 1, 0.1)
    _, sa = table.build_method("sa_vae", s, 1004, seed=3)
    assert sa.kl_start == 0.1 and sa.svi_steps == s.svi_steps
    with pytest.raises(ValueError, match="unknown method 'vampprior' for synthetic"):
        table.build_method("vampprior", s, 1004, seed=3)


def test_tiny_synthetic_table_end_to_end(tmp_path):
    s = _tiny()
    rows = table.run_table(quick=True, settings=s, methods=["vae", "sa_vae", "idsvae"], progress=False,
                           outdir=tmp_path, cache_dir=tmp_path / "cache")
    assert [r["method"] for r in rows] == ["vae", "sa_vae", "sa_vae_refined", "idsvae"]
    csv_text = (tmp_path / "table1_synthetic.csv").read_text()
    assert csv_text.splitlines()[0].startswith("method,label,AU,KL,MI,MI_batch,LL,PPL,R2_z,")
    md = (tmp_path / "table1_synthetic.md").read_text()
    assert "synthetic text" in md and "-46.5" in md and "| IDSVAE |" in md
    (folder,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert json.loads((folder / "settings.json").read_text())["dataset"] == "synthetic"
    rec = json.loads((folder / "idsvae_seed20211206.json").read_text())
    assert rec["MI"] <= math.log(40) + 1e-9 and rec["MI_batch"] <= math.log(s.mi_batch_size) + 1e-9
    # perplexity is exp(-LL / predicted tokens): 11 per synthetic sentence (10 words and </s>)
    assert rec["PPL"] == pytest.approx(math.exp(-rec["LL"] / 11), rel=1e-9)
    assert rec["R2_z"] <= 1.0
    assert "PPL" in json.loads((folder / "sa_vae_seed20211206.json").read_text())["refined"]


def test_r2_of_the_true_latent_is_one_for_an_affine_image_and_near_zero_for_noise():
    s = _tiny()
    data = synthetic_text("test", seed=s.data_seed, n=s.n_eval)
    z = data.z.double()

    class Fake:  # a "model" whose posterior means are given
        latent_dim = 2
        likelihood = "categorical"

        def __init__(self, mu):
            self.mu = mu

        def encode(self, x):
            return self.mu[: len(x)], torch.zeros_like(self.mu[: len(x)])

    affine = z @ torch.tensor([[2.0, 1.0], [0.5, -3.0]], dtype=torch.float64) + 4.0
    assert T.text_metrics(Fake(affine), data.ids, s, {"LL": -50.0})["R2_z"] == pytest.approx(1.0, abs=1e-9)
    noise = torch.randn(len(z), 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(T.text_metrics(Fake(noise), data.ids, s, {"LL": -50.0})["R2_z"]) < 0.15


def test_text_metrics_add_the_decoder_only_fit_outside_the_synthetic_table():
    s = _tiny()
    data = synthetic_text("test", seed=s.data_seed, n=s.n_eval)
    model = LSTMVAE(len(data.vocab), latent_dim=s.latent_dim, embed_dim=6, hidden=8, seed=0).eval()
    on_fortunes = T.text_metrics(model, data.ids, dataclasses.replace(s, dataset="fortunes"), {"LL": -50.0})
    assert "R2_z" not in on_fortunes
    assert on_fortunes["LL_z0"] == pytest.approx(float(metrics.fixed_latent_loglik(model, data.ids).mean()))
    assert "LL_z0" not in T.text_metrics(model, data.ids, s, {"LL": -50.0})
    assert "LL_z0" in table.get_dataset("fortunes").metrics and "LL_z0" not in table.get_dataset("synthetic").metrics


def test_one_method_seed_piece_writes_its_record_and_the_table_assembles_from_the_pieces(tmp_path):
    s = _tiny(n_train=32)
    cache = tmp_path / "cache"
    for index in (0, 1):  # as two array jobs would
        table.run_table(quick=True, settings=s, methods=["vae"], seed_index=index, progress=False,
                        outdir=tmp_path, cache_dir=cache)
    assert not (tmp_path / "table1_synthetic.csv").exists()  # pieces write records, not the table
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("*.json") if p.name != "settings.json") == [
        "vae_seed20211206.json", "vae_seed20211207.json"]
    rows = table.run_table(quick=True, settings=s, methods=["vae"], seeds=2, train=False, progress=False,
                           outdir=tmp_path, cache_dir=cache)
    assert rows[0]["n_seeds"] == 2 and np.isfinite(rows[0]["LL_sd"])
    assert (tmp_path / "table1_synthetic.csv").exists()
    with pytest.raises(ValueError, match="settings are for 'synthetic'"):
        table.run_table(quick=True, settings=s, dataset="fortunes", progress=False, cache_dir=None)
    with pytest.raises(ValueError, match="reads its own data"):
        table.run_table(quick=True, settings=s, train_x=torch.zeros(2, 3), eval_x=torch.zeros(2, 3),
                        progress=False, cache_dir=None)


def test_fixed_latent_ll_is_added_to_the_records_from_their_saved_models(tmp_path):
    s = _tiny(n_train=32)
    cache = tmp_path / "cache"
    table.run_table(quick=True, settings=s, methods=["vae", "idsvae"], progress=False, outdir=tmp_path,
                    cache_dir=cache)
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    names = ["idsvae_seed20211206.json", "vae_seed20211206.json"]
    before = {n: json.loads((folder / n).read_text()) for n in names}
    assert sorted(p.name for p in table.add_fixed_latent_ll(folder, s, progress=False)) == names
    _, eval_x = table.load_table_data(s)
    for n in names:
        after = json.loads((folder / n).read_text())
        assert set(after) - set(before[n]) == {"LL_z0", "LL_z0_added"}
        assert {k: after[k] for k in before[n]} == before[n]  # nothing else changes
        model = load_checkpoint(folder / n.replace(".json", ".model.pt"))
        z0 = torch.zeros(1, len(eval_x), model.latent_dim)
        with torch.no_grad():
            want = float(model.log_likelihood(eval_x, z0).double().mean())
        assert after["LL_z0"] == pytest.approx(want, rel=1e-9)
    (folder / "vae_seed20211206.model.pt").unlink()
    with pytest.warns(RuntimeWarning, match="no saved model for vae_seed20211206.json"):
        assert len(table.add_fixed_latent_ll(folder, s, progress=False)) == 1
    with pytest.raises(ValueError, match="--add-fixed-latent-ll needs the run records"):
        table.main(["--dataset", "synthetic", "--quick", "--add-fixed-latent-ll", "--no-cache"])


def test_a_per_method_override_changes_that_method_only_and_is_checked_in_its_records(tmp_path):
    plain = _tiny(n_train=32)
    s = dataclasses.replace(plain, method_overrides=(("sa_vae", "svi_steps", 1),))
    assert s.key() == plain.key()  # the other methods' records keep their folder
    _, sa = table.build_method("sa_vae", s, 1004, seed=3)
    assert sa.svi_steps == 1 and plain.svi_steps == 2
    cache = tmp_path / "cache"
    table.run_table(quick=True, settings=s, methods=["vae", "sa_vae"], progress=False, outdir=tmp_path,
                    cache_dir=cache)
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    assert json.loads((folder / "sa_vae_seed20211206.json").read_text())["method_overrides"] == {"svi_steps": 1}
    assert "method_overrides" not in json.loads((folder / "vae_seed20211206.json").read_text())
    assert table.settings_from_json(json.loads((folder / "settings.json").read_text())) == s
    md = (tmp_path / "table1_synthetic.md").read_text()
    assert "SA-VAE svi_steps = 1" in md and "| SA-VAE (svi_steps 1) |" in md and "| SA-VAE (refined q) (svi_steps 1) |" in md
    # the VAE's record serves the plain settings; SA-VAE's, made with 1 step, is refused for 2
    rows = table.run_table(quick=True, settings=plain, methods=["vae"], train=False, progress=False,
                           outdir=tmp_path, cache_dir=cache)
    assert rows[0]["n_seeds"] == 1
    with pytest.raises(ValueError, match=r"trained with method_overrides \{'svi_steps': 1\}.*delete the record"):
        table.run_table(quick=True, settings=plain, methods=["sa_vae"], train=False, progress=False,
                        outdir=tmp_path, cache_dir=cache)
    assert table.parse_overrides(["sa_vae.svi_steps=3"], "synthetic") == {"method_overrides": (("sa_vae", "svi_steps", 3),)}
    with pytest.raises(ValueError, match="cannot be set per method"):
        dataclasses.replace(plain, method_overrides=(("sa_vae", "hidden", 4),))
    with pytest.raises(ValueError, match="given twice"):
        dataclasses.replace(plain, method_overrides=(("sa_vae", "svi_steps", 1), ("sa_vae", "svi_steps", 3)))
    with pytest.raises(ValueError, match="unknown method 'savae'"):
        table.parse_overrides(["savae.svi_steps=3"], "synthetic")


def test_settings_of_a_record_folder_are_read_back_as_their_data_set():
    s = _tiny()
    assert table.settings_from_json(dataclasses.asdict(s)) == s
    f = table.table_settings(False)
    assert table.settings_from_json(dataclasses.asdict(f)) == f


def test_a_table_the_paper_does_not_report_has_no_paper_columns():
    row = {"method": "vae", "label": "VAE", "mode": "full (3 seeds)", "n_seeds": 1, "train_time_s": 1.0,
           **{m: 0.5 for m in table.get_dataset("synthetic").metrics + table.get_dataset("fortunes").metrics}}
    with_paper = table.render_markdown([{**row, "paper_AU": 0.0, "paper_LL": -46.5}], dataset="synthetic")
    header = [line for line in with_paper.splitlines() if line.startswith("| method")][0]
    assert "paper AU" in header and "| 0.0 | — | — | -46.5 | 1 |" in with_paper
    assert "the paper's reported values" in with_paper.splitlines()[0]
    without = table.render_markdown([row], dataset="fortunes")
    lines = without.splitlines()
    header, rule, body = [i for i, line in enumerate(lines) if line.startswith("|")][:3]
    assert "paper" not in lines[header] and "paper's reported" not in lines[0]
    assert lines[header].count("|") == lines[rule].count("|") == lines[body].count("|")
    assert lines[body].endswith("| 0.5 | 0.5 | 1 |")  # PPL, LL_z0, then the training time
