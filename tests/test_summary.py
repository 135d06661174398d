"""The tables over every model: rates at one k from idia.attack.summarize, side by side."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from idia.attack import metrics_table
from idia.summary import (
    attack_summary,
    attack_table,
    injection_summary,
    rates_at_k,
    stats_row,
    stats_summary,
)


def _metrics(seed: int, draws: int = 3) -> pd.DataFrame:
    """4 members, 4 non-members, scores per (person, k, draw) at k = 1, 2."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, size=(8, 2, draws))
    return metrics_table(scores, np.arange(8) < 4, ks=[1, 2], tau=1)


def test_attack_table_is_the_mean_and_sd_over_draws_at_the_largest_k():
    metrics = _metrics(0)
    table = attack_table(["a"], [metrics], tau=1)
    at_2 = metrics[metrics["k"] == 2]
    row = table.iloc[0]
    assert (row["k"], row["draws"], row["members"], row["non_members"]) == (2, 3, 4, 4)
    for rate in ("accuracy", "tpr", "fnr", "fpr", "tnr"):
        assert row[f"{rate}_mean"] == at_2[rate].mean()
        assert row[f"{rate}_sd"] == pytest.approx(at_2[rate].std(ddof=1))


def test_a_single_draw_has_sd_zero_and_a_missing_k_is_named():
    at_k = rates_at_k(_metrics(1, draws=1), 1)
    assert (at_k["sd"] == 0).all()
    with pytest.raises(
        ValueError, match=r"the metrics of m has no rows at k=5 \(it has k = \[1, 2\]"
    ):
        rates_at_k(_metrics(1), 5, source="the metrics of m")


def test_attack_summary_writes_table_and_headline(tmp_path):
    for i in range(2):
        _metrics(i).to_parquet(tmp_path / f"m{i}.parquet")
    table = attack_summary(
        models=["b", "a"], metrics=[tmp_path / "m0.parquet", tmp_path / "m1.parquet"], tau=1,
        table=tmp_path / "summary.csv", headline=tmp_path / "headline.txt",
    )  # fmt: skip
    assert list(pd.read_csv(tmp_path / "summary.csv")["model"]) == ["b", "a"]
    lines = (tmp_path / "headline.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"idia: b: TPR {table['tpr_mean'][0]:.2f} ± ")
    assert "at k=2 photos (4 members, 4 non-members, tau=1)" in lines[0]


def test_injection_summary_orders_by_arch_then_descending_n(tmp_path):
    models = {"x-n1": {"arch": "x", "n": 1}, "x-n5": {"arch": "x", "n": 5},
              "a-n1": {"arch": "a", "n": 1}}  # fmt: skip
    metrics, utility = [], []
    for i, name in enumerate(models):
        (tmp_path / name).mkdir()
        _metrics(i).to_parquet(tmp_path / name / "metrics.parquet")
        metrics.append(tmp_path / name / "metrics.parquet")
        keys = ("zero_shot_top1", "zero_shot_top5", "i2t_rank1", "i2t_rank5")
        (tmp_path / name / "utility.json").write_text(json.dumps(dict.fromkeys(keys, i / 10)))
        utility.append(tmp_path / name / "utility.json")
    (tmp_path / "filter.json").write_text(json.dumps({"precision": 1.0, "recall": 0.5}))
    (tmp_path / "report.json").write_text(json.dumps({"test_accuracy": 0.9}))
    table = injection_summary(
        metrics=metrics, utility=utility, models=models, k=1, face_filter=tmp_path / "filter.json",
        classifier=tmp_path / "report.json", out=tmp_path / "summary.csv",
    )  # fmt: skip
    assert list(table["model"]) == ["a-n1", "x-n5", "x-n1"]
    at_1 = _metrics(1)[lambda t: t["k"] == 1]
    row = table.set_index("model").loc["x-n5"]
    assert row["tpr"] == at_1["tpr"].mean() and row["zero_shot_top1"] == 0.1
    assert list(pd.read_csv(tmp_path / "summary.csv")["model"]) == ["a-n1", "x-n5", "x-n1"]


def _stats(model: str) -> dict:
    score = {"auc": 0.9, "auc_lo": 0.8, "auc_hi": 0.95}
    for level in ("0.01", "0.001"):
        key = f"tpr_at_fpr_{level}"
        score |= {key: 0.5, key + "_lo": 0.25, key + "_hi": 0.75}
    return {
        "model": model, "n_members": 4, "n_nonmembers": 6, "vote": score, "combined": score,
        "tau": 1, "at_tau": {"tpr": 0.5, "tpr_lo": 0.1, "tpr_hi": 0.9, "fpr": 0.0,
                             "fpr_lo": 0.0, "fpr_hi": 0.4},
        "n_bh_members": 2, "nonmember_pvalues": {"ks_stat": 0.2, "ks_pvalue": 0.7},
        "fpr_sentence": "0 false positives",
    }  # fmt: skip


def test_stats_row_formats_every_interval(tmp_path):
    row = stats_row(_stats("m"))
    assert row["vote_auc_ci"] == "[0.800, 0.950]"
    assert row["combined_tpr_at_fpr_0.001_ci"] == "[0.250, 0.750]"
    assert row["fpr_at_tau_ci"] == "[0.000, 0.400]" and row["bh_members"] == 2
    (tmp_path / "s.json").write_text(json.dumps(_stats("m")))
    stats_summary(summaries=[tmp_path / "s.json"], out=tmp_path / "summary.csv")
    assert pd.read_csv(tmp_path / "summary.csv")["fpr_statement"].tolist() == ["0 false positives"]
