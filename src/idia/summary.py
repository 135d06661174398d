"""One table over every model: the attack's rates, track C's grid, the person-level statistics.

The rates come from :func:`idia.attack.summarize`, the one definition of "mean and sd over draws";
the tables here only pick a k and lay the models side by side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from idia.attack import RATE_COLUMNS, summarize

UTILITY_COLUMNS = ("zero_shot_top1", "zero_shot_top5", "i2t_rank1", "i2t_rank5")


def rates_at_k(
    metrics: pd.DataFrame, k: int | None = None, source: str = "metrics"
) -> pd.DataFrame:
    """:func:`idia.attack.summarize` at one ``k`` (default: the largest), indexed by rate
    (columns mean, sd, n, lo, hi); ``source`` names the table in the error for a k it lacks."""
    summary = summarize(metrics)
    k = int(summary["k"].max()) if k is None else k
    at_k = summary[summary["k"] == k].set_index("metric")
    if at_k.empty:
        raise ValueError(
            f"{source} has no rows at k={k} (it has k = {sorted(set(summary['k']))}); attack "
            "with k_max at least that"
        )
    return at_k


def attack_table(models: Sequence[str], metrics: Sequence[pd.DataFrame], tau: int) -> pd.DataFrame:
    """Per model: every rate's mean and sd over draws at the largest k, with the draws, the
    members and non-members behind them."""
    rows = []
    for model, table in zip(models, metrics):
        k = int(table["k"].max())
        at_k = rates_at_k(table, k, source=f"the metrics of {model}")
        row = {
            "model": model,
            "k": k,
            "draws": int((table["k"] == k).sum()),
            "tau": tau,
            "members": int(at_k.loc["tpr", "n"]),
            "non_members": int(at_k.loc["fpr", "n"]),
        }
        for metric in RATE_COLUMNS:
            row[f"{metric}_mean"] = at_k.loc[metric, "mean"]
            row[f"{metric}_sd"] = at_k.loc[metric, "sd"]
        rows.append(row)
    return pd.DataFrame(rows)


def headlines(table: pd.DataFrame) -> list[str]:
    """One line per model of :func:`attack_table`: the answer a reader looks for first."""
    return [
        f"idia: {r.model}: TPR {r.tpr_mean:.2f} ± {r.tpr_sd:.2f}, FPR {r.fpr_mean:.2f} ± "
        f"{r.fpr_sd:.2f} at k={r.k} photos ({r.members} members, {r.non_members} non-members, "
        f"tau={r.tau}); figures in results/figures/{r.model}/"
        for r in table.itertuples()
    ]


def attack_summary(
    *, models: Sequence[str], metrics: Sequence[str | Path], tau: int, table: str | Path,
    headline: str | Path,
) -> pd.DataFrame:  # fmt: skip
    """Write the attack's summary table (csv) and headline (text) over ``models``."""
    result = attack_table(models, [pd.read_parquet(p) for p in metrics], tau)
    result.to_csv(table, index=False, float_format="%.4f")
    lines = headlines(result)
    Path(headline).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def injection_table(
    metrics: Sequence[pd.DataFrame], utility: Sequence[dict], models: dict, names: Sequence[str],
    k: int,
) -> pd.DataFrame:  # fmt: skip
    """Track C's grid, one row per trained model (``names``; ``models``: name → arch, n): the
    attack's TPR and FPR at ``k`` photos and the model's utility, by arch and descending N."""
    rows = []
    for name, table, result in zip(names, metrics, utility):
        at_k = rates_at_k(table, k, source=f"the metrics of {name}")
        rows.append(
            {
                "model": name,
                "arch": models[name]["arch"],
                "n": models[name]["n"],
                "tpr": at_k.loc["tpr", "mean"],
                "tpr_sd": at_k.loc["tpr", "sd"],
                "fpr": at_k.loc["fpr", "mean"],
                "fpr_sd": at_k.loc["fpr", "sd"],
                "accuracy": at_k.loc["accuracy", "mean"],
                **{key: result[key] for key in UTILITY_COLUMNS},
            }
        )
    return pd.DataFrame(rows).sort_values(["arch", "n"], ascending=[True, False])


def injection_summary(
    *, metrics: Sequence[str | Path], utility: Sequence[str | Path], models: dict, k: int,
    face_filter: str | Path, classifier: str | Path, out: str | Path,
) -> pd.DataFrame:  # fmt: skip
    """Write track C's summary table (csv); each model is named by its metrics' folder."""
    table = injection_table(
        [pd.read_parquet(p) for p in metrics],
        [json.loads(Path(p).read_text()) for p in utility],
        models,
        [Path(p).parent.name for p in metrics],
        k,
    )
    table.to_csv(out, index=False, float_format="%.4f")
    print(table.to_string(index=False))
    filtered = json.loads(Path(face_filter).read_text())
    report = json.loads(Path(classifier).read_text())
    line = f"face classifier held-out accuracy {report['test_accuracy']:.3f}"
    if filtered.get("precision") is not None or filtered.get("recall") is not None:
        line += f"; presence filter precision {filtered['precision']}, recall {filtered['recall']}"
    print(line)
    return table


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:.3f}, {hi:.3f}]"


def stats_row(summary: dict) -> dict:
    """One model's person-level summary (``idia.stats.summarize_model`` + model) as a table row:
    AUC and TPR at low FPR with their intervals, the operating point tau, the FDR count, the
    non-members' p-value check and the FPR statement."""
    row = {
        "model": summary["model"],
        "members": summary["n_members"],
        "non_members": summary["n_nonmembers"],
    }
    for score in ("vote", "combined"):
        b = summary[score]
        row[f"{score}_auc"] = b["auc"]
        row[f"{score}_auc_ci"] = _interval(b["auc_lo"], b["auc_hi"])
        for level in ("0.01", "0.001"):
            key = f"tpr_at_fpr_{level}"
            row[f"{score}_{key}"] = b[key]
            row[f"{score}_{key}_ci"] = _interval(b[key + "_lo"], b[key + "_hi"])
    t = summary["at_tau"]
    row["tau"] = summary["tau"]
    row["tpr_at_tau"] = t["tpr"]
    row["tpr_at_tau_ci"] = _interval(t["tpr_lo"], t["tpr_hi"])
    row["fpr_at_tau"] = t["fpr"]
    row["fpr_at_tau_ci"] = _interval(t["fpr_lo"], t["fpr_hi"])
    row["bh_members"] = summary["n_bh_members"]
    row["nonmember_p_ks"] = summary["nonmember_pvalues"]["ks_stat"]
    row["nonmember_p_ks_pvalue"] = summary["nonmember_pvalues"]["ks_pvalue"]
    row["fpr_statement"] = summary["fpr_sentence"]
    return row


def stats_summary(*, summaries: Sequence[str | Path], out: str | Path) -> pd.DataFrame:
    """Write the person-level statistics of every model as one table (csv)."""
    table = pd.DataFrame([stats_row(json.loads(Path(p).read_text())) for p in summaries])
    table.to_csv(out, index=False, float_format="%.4f")
    return table
