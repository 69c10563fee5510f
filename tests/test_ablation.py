"""The injective-decoder ablation: its runner (a tiny quick run, resumed) and its committed records."""
import math

import pytest

from identkit import ablation, table


def test_quick_ablation_writes_rows_and_resumes(tmp_path):
    out = tmp_path / "abl.csv"
    rows = ablation.run_ablation(out, quick=True, variants=["vae", "center", "init_none"], progress=False)
    assert [r["variant"] for r in rows] == ["vae", "center", "init_none"]
    back = ablation.read_ablation(out)
    assert list(back[0]) == ablation.COLUMNS
    lid = back[1]
    assert lid["init_ratio"] == 1.0 and lid["activation"] == "leaky_relu" and lid["icnn_hidden"] is None
    # measured at the untrained encoder's posterior means (not the calibration's N(0, I) probes): the calibrated
    # start is nonlinear, the ICNNs' own start almost linear
    plain = back[2]
    assert lid["ratio_g1_init"] > 0.1 and lid["ratio_g2_init"] > 0.1
    assert plain["ratio_g1_init"] < lid["ratio_g1_init"] / 3 and plain["ratio_g2_init"] < lid["ratio_g2_init"] / 2
    assert math.isnan(back[0]["ratio_g1"]) and 0 <= lid["clipped"] <= 1
    again = ablation.run_ablation(out, quick=True, variants=["vae", "center", "init_none"], progress=False)  # resumed
    assert [r["elbo"] for r in again] == [r["elbo"] for r in back]
    with pytest.raises(ValueError, match="variant"):
        ablation.run_ablation(out, quick=True, variants=["nope"], progress=False)


def test_committed_ablation_has_three_seeds_per_variant_and_justifies_the_table_setting():
    rows = ablation.read_ablation()
    summary = {r["variant"]: r for r in ablation.summarise_ablation(rows)}
    assert set(summary) == set(ablation.VARIANTS) and all(r["n_seeds"] == 3 for r in summary.values())
    s = table.table_settings(quick=False)
    chosen = [name for name, v in ablation.VARIANTS.items() if v.get("model") == "lidvae"
              and (v["lam"], v["activation"], v["init_ratio"], v["icnn_hidden"], v["optimizer"])
              == (s.lid_lam, s.lid_activation, s.lid_init_ratio, None, s.optimizer)]
    assert chosen == ["softplus_init_0.3"]
    best = summary[chosen[0]]
    # the goal the choice rests on: most units active, at a fit no worse than the VAE's
    assert best["AU"] >= 0.95 and best["LL_vs_vae"] > 0 and best["elbo_vs_vae"] > 0
    fits = [r for r in summary.values() if r["variant"] != "vae" and r["LL_vs_vae"] > 0]
    assert best["AU"] == max(r["AU"] for r in fits)
    # and the decoder the previous table used (λ = 3, unscaled) fitted worse than the VAE
    assert summary["lam_3_init_none"]["elbo_vs_vae"] < -3
