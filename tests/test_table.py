"""Table 1 machinery on a tiny synthetic data set (Fashion-MNIST is bypassed by passing tensors)."""
import csv
import dataclasses
import json
import math
import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from identkit import config, table  # noqa: E402
from identkit.__main__ import build_parser  # noqa: E402

TINY = dict(latent_dim=2, hidden=8, n_clusters=2, epochs=1, batch_size=20, iw_samples=8, n_pseudo=3,
            lagging_max_inner=2, lagging_check_every=1, svi_steps=2, kl_threshold_pretrain=1, n_val=4)


def _tiny_data(d=9):
    g = torch.Generator().manual_seed(0)
    train = torch.rand(40, d, generator=g)
    return train, torch.rand(12, d, generator=g)


def _settings():
    return table.table_settings(quick=True, **TINY)


def test_paper_row_is_the_reported_one():
    p = table.PAPER_FASHION_MNIST
    assert [p["VAE"][m] for m in "AU KL MI LL".split()] == [0.1, 0.2, 0.9, -258.8]
    assert [p["SA-VAE"][m] for m in "AU KL MI LL".split()] == [0.2, 0.3, 1.3, -252.2]
    assert [p["Lagging VAE"][m] for m in "AU KL MI LL".split()] == [0.4, 0.6, 1.6, -248.5]
    assert [p["β-VAE (0.2)"][m] for m in "AU KL MI LL".split()] == [0.6, 1.2, 2.4, -245.3]
    assert [p["LIDGMVAE"][m] for m in "AU KL MI LL".split()] == [1.0, 1.6, 2.6, -242.3]
    assert set(table.PAPER_LABELS.values()) == set(p)


def test_every_method_builds_with_the_same_encoder(tmp_path):
    s = _settings()
    sizes = set()
    for key in table.METHODS:
        model, method = table.build_method(key, s, 9, seed=1)
        sizes.add(sum(p.numel() for p in model.encoder.parameters()))
        assert model.latent_dim == s.latent_dim
    assert len(sizes) == 1  # one encoder budget for all methods


def test_second_lambda_rows_differ_from_their_model_row_only_in_lambda():
    s = _settings()
    for key, (base, lam) in table.INJECTIVE_LAMBDA_ROWS.items():
        model, _ = table.build_method(key, s, 9, seed=1)
        ref, _ = table.build_method(base, s, 9, seed=1)
        assert type(model) is type(ref) and lam != s.lid_lam
        assert model.decoder.g1.lam == lam and ref.decoder.g1.lam == s.lid_lam
        assert [n for n, _ in model.named_parameters()] == [n for n, _ in ref.named_parameters()]
        assert table.IDENTIFIABLE_TWINS[key] == table.IDENTIFIABLE_TWINS[base]


def test_run_table_on_tiny_data_writes_csv_markdown_and_uses_the_cache(tmp_path, monkeypatch):
    train, evalx = _tiny_data()
    cache = tmp_path / "cache"
    rows = table.run_table(quick=True, seeds=1, outdir=tmp_path, progress=False, train_x=train, eval_x=evalx,
                           settings=_settings(), cache_dir=cache)
    want = [m for k in table.METHODS for m in ([k, "sa_vae_refined"] if k == "sa_vae" else [k])]
    assert [r["method"] for r in rows] == want
    path = tmp_path / table.CSV_NAME
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == table.CSV_COLUMNS
        got = list(reader)
    assert len(got) == len(want)
    for r in got:
        for col in ("AU", "KL", "MI", "MI_batch", "LL", "train_time_s", "eval_time_s", "MI_ceiling"):
            assert math.isfinite(float(r[col])), (r["method"], col)
        assert all(math.isnan(float(r[f"{m}_sd"])) for m in ("AU", "KL", "MI", "LL"))  # one seed: no sd
        assert 0.0 <= float(r["AU"]) <= 1.0 and float(r["LL"]) < 0 and float(r["KL"]) >= -0.5
        assert int(r["n_seeds"]) == 1 and r["mode"] == "quick-custom (1 seed; no sd)"
    back = table.read_table(path)
    assert back[0]["label"] == "VAE" and back[0]["paper_LL"] == -258.8 and math.isnan(back[2]["paper_LL"])
    md = (tmp_path / table.MD_NAME).read_text()
    assert "| VAE |" in md and "-258.8" in md
    # a second run is served from the cache: no training at all
    assert len(list(cache.glob("*/*_seed*.json"))) == len(table.METHODS)
    monkeypatch.setattr(table.runs, "train_and_evaluate", lambda *a, **k: pytest.fail("cache not used"))
    again = table.run_table(quick=True, seeds=1, outdir=tmp_path / "b", progress=False, train_x=train,
                            eval_x=evalx, settings=_settings(), cache_dir=cache)
    assert [r["LL"] for r in again] == [r["LL"] for r in rows]


def test_parallel_jobs_give_the_serial_rows_and_fill_the_cache(tmp_path, monkeypatch):
    """--jobs N trains (method, seed) runs in spawned processes: same numbers as one process, same cache."""
    train, evalx = _tiny_data()
    kw = dict(quick=True, seeds=2, methods=["vae", "lidvae"], write=False, progress=False, train_x=train,
              eval_x=evalx, settings=_settings(), device="cpu")
    serial = table.run_table(cache_dir=tmp_path / "serial", **kw)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    with pytest.warns(RuntimeWarning, match="only 1 CPU"):  # 2 jobs on 1 usable CPU: said, not hidden
        parallel = table.run_table(cache_dir=tmp_path / "parallel", jobs=2, **kw)
    assert [r["method"] for r in parallel] == ["vae", "lidvae"]
    for a, b in zip(serial, parallel):
        for m in ("AU", "KL", "MI", "LL"):
            assert b[m] == pytest.approx(a[m], rel=1e-4, abs=1e-6), (a["method"], m)
    entries = sorted(p.name for p in (tmp_path / "parallel").glob("*/*_seed*.json"))
    assert len(entries) == 4 and all(json.loads(p.read_text())["device"] == "cpu"
                                      for p in (tmp_path / "parallel").glob("*/*_seed*.json"))


@pytest.mark.parametrize("method", ["lidvae", "lagging"])
def test_a_run_stopped_mid_way_resumes_from_its_last_epoch(tmp_path, monkeypatch, method):
    """Stop a (method, seed) run after epoch 2 of 3; started again, it resumes and gives the uninterrupted record."""
    from identkit.neural import train as train_mod

    data, evalx = _tiny_data()
    kw = dict(quick=True, seeds=1, methods=[method], write=False, progress=False, train_x=data, eval_x=evalx,
              settings=dataclasses.replace(_settings(), epochs=3), device="cpu")
    whole = table.run_table(cache_dir=tmp_path / "whole", **kw)[0]
    real_save = train_mod._save_training_state

    def save_then_stop(path, run_id, model, optimizer, generator, meth, history, epoch, step):
        real_save(path, run_id, model, optimizer, generator, meth, history, epoch, step)
        if epoch == 2:
            raise KeyboardInterrupt  # as if the session ended here

    monkeypatch.setattr(train_mod, "_save_training_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        table.run_table(cache_dir=tmp_path / "pieces", **kw)
    states = list((tmp_path / "pieces").glob(f"*/{method}_seed*.state.pt"))
    assert len(states) == 1 and not list((tmp_path / "pieces").glob(f"*/{method}_seed*.json"))
    monkeypatch.setattr(train_mod, "_save_training_state", real_save)
    resumed = table.run_table(cache_dir=tmp_path / "pieces", **kw)[0]
    for m in ("AU", "KL", "MI", "LL"):
        assert resumed[m] == whole[m], m
    record, ref = (json.loads(next((tmp_path / d).glob(f"*/{method}_seed*.json")).read_text())
                   for d in ("pieces", "whole"))
    assert record["resumed_at"] == [2] and "resumed_at" not in ref
    assert record["train_elbo"] == ref["train_elbo"] and record.get("aggressive_epochs") == ref.get("aggressive_epochs")
    assert not states[0].exists()  # the state is dropped once the record is written


def test_from_cache_assembles_finished_runs_without_training(tmp_path, monkeypatch):
    train, evalx = _tiny_data()
    kw = dict(quick=True, write=False, progress=False, train_x=train, eval_x=evalx, settings=_settings(),
              cache_dir=tmp_path)
    first = table.run_table(seeds=1, methods=["vae", "lidvae"], **kw)
    monkeypatch.setattr(table.runs, "train_and_evaluate", lambda *a, **k: pytest.fail("from-cache must not train"))
    with pytest.warns(RuntimeWarning, match="gmvae"):
        rows = table.run_table(seeds=3, methods=["vae", "gmvae", "lidvae"], train=False, **kw)
    assert [r["method"] for r in rows] == ["vae", "lidvae"] and all(r["n_seeds"] == 1 for r in rows)
    assert [r["LL"] for r in rows] == [r["LL"] for r in first]
    assert "finished runs so far" in rows[0]["mode"] and "up to 1 seed per method" in rows[0]["mode"]
    assert rows[0]["n_seeds"] == 1
    with pytest.raises(ValueError, match="cache"):
        table.run_table(seeds=1, methods=["vae"], train=False, **{**kw, "cache_dir": None})


@pytest.mark.parametrize("device", ["gpu0", "cuda:x", 3.5])
def test_bad_device_is_refused(device):
    train, evalx = _tiny_data()
    with pytest.raises(ValueError, match="device"):
        table.run_table(quick=True, seeds=1, methods=["vae"], write=False, progress=False, train_x=train,
                        eval_x=evalx, settings=_settings(), cache_dir=None, device=device)


def test_mean_and_sd_are_over_seeds(tmp_path, monkeypatch):
    fake = iter([{"AU": a, "AU_count": 1, "KL": 1.0, "MI": 2.0, "LL": -10.0 - a, "train_time_s": 1.0,
                  "eval_time_s": 0.5} for a in (0.0, 0.5, 1.0)])
    monkeypatch.setattr(table.runs, "train_and_evaluate", lambda *a, **k: next(fake))
    train, evalx = _tiny_data()
    (row,) = table.run_table(quick=True, seeds=3, methods=["vae"], write=False, progress=False, train_x=train,
                             eval_x=evalx, settings=_settings(), cache_dir=None)
    assert row["AU"] == pytest.approx(0.5) and row["AU_sd"] == pytest.approx(0.5)
    assert row["LL"] == pytest.approx(-10.5) and row["KL_sd"] == 0.0 and row["n_seeds"] == 3
    md = table.render_markdown([row])
    assert "| VAE | 3 | 0.50 ± 0.50 |" in md
    monkeypatch.setattr(table.runs, "train_and_evaluate", lambda *a, **k: {
        "AU": 0.0, "AU_count": 0, "KL": 1.0, "MI": 2.0, "LL": -10.0, "train_time_s": 1.0, "eval_time_s": 0.5})
    (one,) = table.run_table(quick=True, seeds=1, methods=["vae"], write=False, progress=False, train_x=train,
                             eval_x=evalx, settings=_settings(), cache_dir=None)
    assert "| VAE | 1 | 0.00 | 1.00 | 2.00 | — | -10.0 |" in table.render_markdown([one])  # one seed: no ±


def test_quick_run_never_overwrites_a_full_table(tmp_path, monkeypatch):
    monkeypatch.setattr(table.runs, "train_and_evaluate", lambda *a, **k: {
        "AU": 1.0, "AU_count": 2, "KL": 1.0, "MI": 1.0, "LL": -5.0, "train_time_s": 1.0, "eval_time_s": 1.0})
    train, evalx = _tiny_data()
    kw = dict(seeds=1, methods=["vae"], outdir=tmp_path, progress=False, train_x=train, eval_x=evalx,
              cache_dir=None)
    table.run_table(quick=False, settings=dataclasses.replace(table.table_settings(False)), **kw)
    assert table.read_table(tmp_path / table.CSV_NAME)[0]["mode"].startswith("full")
    table.run_table(quick=True, **kw)
    assert table.read_table(tmp_path / table.CSV_NAME)[0]["mode"].startswith("full")
    assert table.read_table(tmp_path / "table1_fashion_mnist_quick.csv")[0]["mode"].startswith("quick")


def test_figure_reads_the_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(table.runs, "train_and_evaluate", lambda *a, **k: {
        "AU": 0.5, "AU_count": 1, "KL": 1.0, "MI": 1.0, "MI_batch": 0.9, "LL": -5.0, "train_time_s": 1.0, "eval_time_s": 1.0})
    train, evalx = _tiny_data()
    table.run_table(quick=True, seeds=2, methods=["vae", "idgmvae"], outdir=tmp_path, progress=False,
                    train_x=train, eval_x=evalx, cache_dir=None)
    from identkit.figures.table import table1

    fig = table1(csv=tmp_path / table.CSV_NAME)
    assert len(fig.axes) == 5 and "ours" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["VAE", "IDGMVAE"]  # same n: no n
    plt.close(fig)
    rows = table.read_table(tmp_path / table.CSV_NAME)
    rows[1]["n_seeds"] = 1
    fig = table1(rows=rows)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["VAE (n=2)", "IDGMVAE (n=1)"]
    plt.close(fig)


def test_bad_arguments_raise_value_error():
    train, evalx = _tiny_data()
    with pytest.raises(ValueError, match="method"):
        table.run_table(quick=True, methods=["vae", "wae"], train_x=train, eval_x=evalx, write=False)
    with pytest.raises(ValueError, match="method"):
        table.build_method("nope", _settings(), 9, seed=0)
    with pytest.raises(ValueError, match="seeds"):
        table.run_table(quick=True, seeds=0, train_x=train, eval_x=evalx, write=False)
    with pytest.raises(ValueError, match="train_x and eval_x"):
        table.run_table(quick=True, train_x=train, write=False)
    with pytest.raises(ValueError, match="eval_x"):
        table.run_table(quick=True, train_x=train, eval_x=evalx * 3, write=False)
    with pytest.raises(ValueError, match="overrides"):
        table.table_settings(True, epochz=3)
    with pytest.raises(ValueError, match="overrides"):
        table.run_table(quick=True, train_x=train, eval_x=evalx, write=False, epochz=3)
    with pytest.raises(FileNotFoundError, match="identkit table"):
        table.read_table("/nonexistent/table.csv")


def test_cli_parses_and_dispatches(monkeypatch, tmp_path):
    args = build_parser().parse_args(["table", "--quick", "--seeds", "2", "--outdir", str(tmp_path),
                                      "--methods", "vae", "lidvae", "--set", "n_train=100", "--epochs", "1"])
    assert args.quick and args.seeds == 2 and args.methods == ["vae", "lidvae"] and args.set == ["n_train=100"]
    seen = {}
    monkeypatch.setattr(table.cli, "run_table", lambda **kw: seen.update(kw) or [])
    assert args.func(args) == 0
    assert seen["quick"] is True and seen["seeds"] == 2 and seen["n_train"] == 100 and seen["epochs"] == 1
    assert seen["cache_dir"] == table.CACHE_DIR
    args = build_parser().parse_args(["table", "--full", "--from-cache", "--cache-dir", str(tmp_path)])
    assert args.func(args) == 0
    assert seen["cache_dir"] == str(tmp_path) and seen["train"] is False and seen["quick"] is False
    assert seen["dataset"] == "fashion_mnist" and seen["seed_index"] is None
    # one (dataset, method, seed) piece, as a scheduler's array job launches it
    args = build_parser().parse_args(["table", "--dataset", "synthetic", "--methods", "idsvae", "--seed-index", "2",
                                      "--set", "hidden=32", "--set", "lid_activation=celu"])
    assert args.func(args) == 0
    assert seen["dataset"] == "synthetic" and seen["seed_index"] == 2 and seen["methods"] == ["idsvae"]
    assert seen["hidden"] == 32 and seen["lid_activation"] == "celu"
    with pytest.raises(ValueError, match="--methods"):
        args = build_parser().parse_args(["table", "--dataset", "synthetic", "--seed-index", "0"])
        args.func(args)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["table", "--dataset", "mnist"])
    assert table.parse_overrides(["lr=0.01", "n_eval=None"]) == {"lr": 0.01, "n_eval": None}
    with pytest.raises(ValueError, match="--set"):
        table.parse_overrides(["bogus=1"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["table", "--quick", "--full"])


def test_cache_dir_is_git_ignored():
    ignore = (config.REPO_ROOT / ".gitignore").read_text().split()
    assert "/runs/" in ignore and str(table.CACHE_DIR).startswith(str(config.REPO_ROOT / "runs"))


def test_settings_key_changes_with_the_settings():
    a, b = table.table_settings(True), table.table_settings(True, epochs=3)
    assert a.key() != b.key() and a.key() == table.table_settings(True).key()
    assert json.loads(json.dumps(dataclasses.asdict(a)))["latent_dim"] == 32


def test_commentary_reads_the_numbers():
    def row(key, au, ll):
        return {"method": key, "label": table.METHODS[key], "AU": au, "MI": 1.0, "LL": ll, "mode": "full (3 seeds)"}

    text = table.commentary([row("vae", 0.2, -250.0), row("lidvae", 1.0, -248.0), row("beta_vae", 0.6, -260.0)])
    assert "collapsed (AU < 50% of dims): VAE" in text
    assert "all dimensions active: LIDVAE" in text
    assert "LIDVAE vs VAE: AU 1.00 vs 0.20" in text and "(+2.0 nats); paper's goal" in text and ": met" in text
    # the goal needs both: AU >= 0.95 and an LL at most 1 nat below the twin
    for au, ll, verdict in ((0.94, -248.0, "not met"), (1.0, -251.1, "not met"), (0.95, -250.9, "met")):
        line = [t for t in table.commentary([row("vae", 0.2, -250.0), row("lidvae", au, ll)]).splitlines()
                if t.startswith("LIDVAE vs VAE")][0]
        assert line.endswith(f": {verdict}"), line
    assert "best LL: LIDVAE" in text and "quick mode" not in text
    assert "varies most" not in text  # no sd: one seed or no spread recorded
    rows = [dict(row("gmvae", 0.3, -250.0), AU_sd=0.4, n_seeds=3), dict(row("idgmvae", 0.5, -251.0), AU_sd=0.03,
                                                                         n_seeds=3)]
    assert "AU varies most across seeds: GMVAE (sd 0.40 over 3 seeds)" in table.commentary(rows)
    assert "held at 0" not in text  # no LL_z0 column
    text_rows = [{"method": "vae", "label": "VAE", "AU": 0.1, "MI": 0.03, "LL": -92.0, "mode": "full (3 seeds)"},
                 {"method": "idsvae", "label": "IDSVAE", "AU": 0.1, "MI": 0.9, "LL": -88.0, "LL_z0": -89.5,
                  "mode": "full (3 seeds)"}]
    assert ("IDSVAE with z held at 0 (a model that ignores z): LL_z0 -89.5, +2.5 nats against VAE's LL; using z adds "
            "the rest, +1.5 nats") in table.commentary(text_rows, dataset="fortunes")


@pytest.mark.parametrize("dataset", ["fashion_mnist", "synthetic", "fortunes"])
def test_committed_table_is_the_one_the_committed_full_mode_records_assemble(tmp_path, dataset):
    """figures/table1_<dataset>.csv holds no hand-edited number: it is what the committed records assemble."""
    import shutil
    import warnings

    spec = table.get_dataset(dataset)
    settings = table.table_settings(quick=False, dataset=dataset)
    csv = config.FIGURE_DIR / spec.csv_name
    folders = sorted(spec.results_dir.glob(f"{settings.key()}-*"))
    if dataset != "fashion_mnist" and not csv.exists():  # a text table is committed once its rows have their seeds
        pytest.skip(f"no committed {spec.csv_name} yet ({len(folders)} record folder(s) in {spec.results_dir.name})")
    assert len(folders) == 1, f"expected one folder of full-mode run records in {spec.results_dir}"
    assert json.loads((folders[0] / "settings.json").read_text()) == table.settings_json(settings)
    records = sorted(folders[0].glob("*_seed*.json"))
    if not records:  # the folder (settings.json) is committed when a rerun starts; its records as runs finish
        pytest.skip(f"the full-mode rerun of {folders[0].name} has no finished (method, seed) record yet")
    for path in records:
        rec = json.loads(path.read_text())
        assert path.name == f"{rec['method']}_seed{rec['seed']}.json" and rec["method"] in spec.methods
        # the whole-set MI is at most log N, the per-batch MI at most log B, for every draw
        assert 0 <= rec["AU"] <= 1 and rec["KL"] >= 0 and rec["MI"] <= rec["MI_ceiling"] + 1e-9
        assert rec["MI_batch"] <= math.log(settings.mi_batch_size) + 1e-9
        assert rec["MI_batch_ceiling"] == pytest.approx(math.log(settings.mi_batch_size))
        assert rec["LL"] < 0 and rec["AU"] == pytest.approx(rec["AU_count"] / settings.latent_dim)
    shutil.copytree(folders[0], tmp_path / folders[0].name)  # assembling rewrites settings.json: not in the repo
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # methods without a finished run yet
        rows = table.run_table(quick=False, seeds=3, cache_dir=tmp_path, train=False, write=False, progress=False,
                               dataset=dataset)
    committed = table.read_table(dataset=dataset)
    assert [r["method"] for r in committed] == [r["method"] for r in rows]
    for ours, disk in zip(rows, committed):
        assert disk["mode"] == ours["mode"] and disk["n_seeds"] == ours["n_seeds"]
        for m in (*spec.metrics, "train_time_s"):
            assert disk[m] == pytest.approx(ours[m], rel=1e-5, abs=1e-9, nan_ok=True)


def test_reevaluate_recomputes_the_metrics_from_the_saved_models(tmp_path):
    train, evalx = _tiny_data()
    cache = tmp_path / "cache"
    rows = table.run_table(quick=True, seeds=1, methods=["vae", "sa_vae"], progress=False, train_x=train,
                           eval_x=evalx, settings=_settings(), cache_dir=cache, write=False)
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    models = sorted(p.name for p in folder.glob("*.model.pt"))
    assert models == ["sa_vae_seed20211206.model.pt", "vae_seed20211206.model.pt"]
    rec = json.loads((folder / "vae_seed20211206.json").read_text())
    rec["MI"], rec["LL"] = 99.0, 0.0  # as if the metric code had changed
    (folder / "vae_seed20211206.json").write_text(json.dumps(rec))
    binary = torch.bernoulli(evalx.float(), generator=torch.Generator().manual_seed(_settings().data_seed))
    done = table.reevaluate(folder, _settings(), progress=False, data=(train, binary))
    assert len(done) == 2
    back = json.loads((folder / "vae_seed20211206.json").read_text())
    first = {r["method"]: r for r in rows}
    for m in ("AU", "KL", "MI", "MI_batch", "LL"):  # the same model and evaluation seed: the same numbers
        assert back[m] == pytest.approx(first["vae"][m], rel=1e-6, abs=1e-9)
    assert back["train_time_s"] == rec["train_time_s"] and "reevaluated" in back
    sa = json.loads((folder / "sa_vae_seed20211206.json").read_text())
    assert sa["refined"]["LL"] == pytest.approx(first["sa_vae_refined"]["LL"], rel=1e-6)
    (folder / "vae_seed20211206.model.pt").unlink()
    with pytest.warns(RuntimeWarning, match="no saved model"):
        table.reevaluate(folder, _settings(), progress=False, data=(train, binary))


def test_evaluation_seed_is_independent_of_the_training_seed():
    s = _settings()
    seeds = [table.evaluation_seed(s, k) for k in (1, 2, 3)]
    assert len(set(seeds)) == 3 and all(e not in (1, 2, 3) for e in seeds)
    assert table.evaluation_seed(s, 1) == table.evaluation_seed(s, 1)
    assert table.evaluation_seed(dataclasses.replace(s, eval_seed=8), 1) != seeds[0]
