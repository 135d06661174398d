"""The paper's figures, drawn from the attack's tables.

Every function takes pandas tables, draws one figure in a shared house style and writes it as PNG
(150 dpi) and PDF. Figures are built on the object-oriented API with an explicit Agg canvas, so
importing this module never changes the caller's matplotlib backend or global state, and PDFs carry
no creation date, so the same tables give the same bytes.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

__all__ = [
    "METRICS",
    "PALETTE",
    "plot_confusion",
    "plot_identities_per_bin",
    "plot_metrics_vs_k",
    "plot_rate_by_bin",
    "plot_tpr_heatmap",
    "rates_by_bin",
    "save",
]

#: Okabe-Ito colours: distinguishable under the common colour-vision deficiencies.
PALETTE = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#8C8C8C",
}

#: Metric name -> (label, colour, marker, line style); markers and styles keep lines apart in print.
METRICS: dict[str, tuple[str, str, str, str]] = {
    "accuracy": ("Accuracy", PALETTE["black"], "o", "-"),
    "tpr": ("TPR (members detected)", PALETTE["blue"], "s", "-"),
    "fnr": ("FNR (members missed)", PALETTE["vermillion"], "v", "--"),
    "fpr": ("FPR (non-members flagged)", PALETTE["orange"], "^", "--"),
    "tnr": ("TNR (non-members cleared)", PALETTE["green"], "D", "-"),
}

#: Sequential colour map for rates in [0, 1]; perceptually uniform and colour-blind safe.
RATE_CMAP = "cividis"

K_LABEL = "Number of attack images per identity (k)"
RATE_LABEL = "Rate (fraction of identities)"
BIN_LABEL = "Name occurrences in training captions (bin)"
NON_MEMBER = "non-member"
MAX_ANNOTATED_COLUMNS = 12

_STYLE: dict[RcKeyType, float | str] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "pdf.fonttype": 42,  # embed TrueType so text stays text in the PDF
    "svg.fonttype": "none",
    "savefig.bbox": "tight",
}


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_STYLE):
        yield


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _title(ax, title: str) -> None:
    # Wrap each line on its own so that a caller's subtitle keeps its own line.
    lines = [textwrap.fill(line, width=72) for line in str(title).splitlines() or [""]]
    ax.set_title("\n".join(lines), loc="left")


def save(fig: Figure, png_path: str | Path, pdf_path: str | Path) -> None:
    """Write ``fig`` as PNG (150 dpi) and as PDF, creating parent folders."""
    with _style():
        for path in (png_path, pdf_path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png_path, format="png", dpi=150)
        # No creation date: identical tables give identical PDF bytes.
        fig.savefig(pdf_path, format="pdf", metadata={"CreationDate": None})


# --------------------------------------------------------------------------- validation helpers


def _require(df: pd.DataFrame, columns: Sequence[str], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{table} table lacks column(s) {missing}; it has {list(df.columns)}. "
            f"Pass the {table} table written by the attack stage."
        )


def _names(values: Sequence[object], limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _check_k(available: Sequence[int], k: int, table: str) -> None:
    if k not in set(available):
        raise ValueError(
            f"k={k} is not in the {table} table; available k: {sorted(set(available))}. "
            "Choose one of these or rerun the attack with k in attack.ks."
        )


def _bin_order(counts: pd.DataFrame) -> pd.DataFrame:
    """Member bins ordered by bin_index, with the number of identities in each."""
    members = counts[counts["member"].astype(bool)]
    order = (
        members.groupby(["bin_index", "bin"], sort=True)
        .size()
        .rename("n")
        .reset_index()
        .sort_values("bin_index", kind="stable")
    )
    clash = order["bin_index"].duplicated(keep=False) | order["bin"].duplicated(keep=False)
    if clash.any():
        raise ValueError(
            "counts table maps bin labels to bin indices inconsistently: "
            f"{order.loc[clash, ['bin', 'bin_index']].to_dict('records')}"
        )
    return order.reset_index(drop=True)


# --------------------------------------------------------------------------- pure helpers


def rates_by_bin(scores: pd.DataFrame, counts: pd.DataFrame, tau: int) -> pd.DataFrame:
    """TPR per occurrence bin, k and draw: the fraction of a bin's members with ``score >= tau``.

    Only members enter (non-members have no bin). Every member must have been scored at every
    (k, draw) the scores table holds, or a bin's rate would silently change its denominator.
    Returns columns ``bin, bin_index, k, draw, tpr`` sorted by bin_index, k and draw.
    """
    _require(scores, ["person_id", "k", "draw", "score"], "scores")
    _require(counts, ["person_id", "member", "bin", "bin_index"], "counts")

    dup = counts["person_id"].duplicated(keep=False)
    if dup.any():
        raise ValueError(
            "counts table lists person_id(s) more than once: "
            f"{_names(counts.loc[dup, 'person_id'].unique())}"
        )
    unknown = ~scores["person_id"].isin(counts["person_id"])
    if unknown.any():
        raise ValueError(
            "scores table has person_id(s) absent from the counts table: "
            f"{_names(scores.loc[unknown, 'person_id'].unique())}. "
            "Both tables must come from the same cohort."
        )
    dup = scores.duplicated(["person_id", "k", "draw"], keep=False)
    if dup.any():
        raise ValueError(
            "scores table has more than one score per (person_id, k, draw) for: "
            f"{_names(scores.loc[dup, 'person_id'].unique())}"
        )

    members = counts.loc[counts["member"].astype(bool), ["person_id", "bin", "bin_index"]]
    bad_bin = members["bin_index"] < 0
    if bad_bin.any():
        raise ValueError(
            "member(s) without an occurrence bin (bin_index < 0): "
            f"{_names(members.loc[bad_bin, 'person_id'])}"
        )
    unscored = ~members["person_id"].isin(scores["person_id"])
    if unscored.any():
        raise ValueError(
            "member(s) with an occurrence bin but no attack scores: "
            f"{_names(members.loc[unscored, 'person_id'])}. Attack every member, or drop them "
            "from the counts table."
        )

    merged = scores.merge(members, on="person_id", how="inner", validate="many_to_one")
    grid = scores[["k", "draw"]].drop_duplicates()
    per_person = merged.groupby("person_id").size()
    incomplete = per_person[per_person != len(grid)]
    if len(incomplete):
        raise ValueError(
            f"member(s) not scored at every one of the {len(grid)} (k, draw) pairs in the scores "
            f"table: {_names(incomplete.index)}"
        )

    merged["hit"] = (merged["score"].to_numpy() >= tau).astype(float)
    out = (
        merged.groupby(["bin_index", "bin", "k", "draw"], sort=True)["hit"]
        .mean()
        .rename("tpr")
        .reset_index()
    )
    out["k"] = out["k"].astype(int)
    out["bin_index"] = out["bin_index"].astype(int)
    return out[["bin", "bin_index", "k", "draw", "tpr"]].reset_index(drop=True)


def _clipped_err(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Asymmetric error bars for a rate: ±sd, cut at 0 and 1 where a rate cannot go."""
    mean = np.asarray(mean, dtype=float)
    sd = np.nan_to_num(np.asarray(sd, dtype=float))
    return np.vstack([np.minimum(sd, mean), np.minimum(sd, 1.0 - mean)]).clip(min=0.0)


def _interval_err(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Asymmetric error bars ``[2, n]`` that reach from ``lo`` to ``hi``; none where unknown."""
    mean = np.asarray(mean, dtype=float)
    below = np.nan_to_num(mean - np.asarray(lo, dtype=float))
    above = np.nan_to_num(np.asarray(hi, dtype=float) - mean)
    return np.vstack([below, above]).clip(min=0.0)


def _k_ticks(ks: np.ndarray, most: int = MAX_ANNOTATED_COLUMNS) -> tuple[np.ndarray, list[str]]:
    """Column positions and labels for at most ``most`` ticks, on round values of k."""
    if len(ks) <= most:
        return np.arange(len(ks)), [str(k) for k in ks]
    span = max(int(ks.max()) - int(ks.min()), 1)
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 10**9) if span / s < most)
    keep = (ks % step == 0) | (np.arange(len(ks)) == 0)
    return np.flatnonzero(keep), [str(k) for k in ks[keep]]


def _sd(values: pd.Series) -> float:
    # One draw has no spread; show none rather than NaN.
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


# --------------------------------------------------------------------------- figures


def plot_metrics_vs_k(
    summary: pd.DataFrame, png: str | Path, pdf: str | Path, title: str
) -> pd.DataFrame:
    """Accuracy, TPR, FNR, FPR and TNR against k: mean over draws, with two uncertainties.

    The band is the 95 % Clopper–Pearson interval over identities (``lo``/``hi`` of
    :func:`idia.attack.summarize`: x̄ successes of n identities), the uncertainty of a claim
    about the model; the error bars are ±sd over the random photo draws, which is 0 where every
    draw uses all photos. Returns the rows it plotted, in plotting order.
    """
    _require(summary, ["k", "metric", "mean", "sd", "lo", "hi"], "summary")
    unknown = sorted(set(summary["metric"]) - set(METRICS))
    if unknown:
        raise ValueError(f"summary table has unknown metric(s) {unknown}; known: {list(METRICS)}")
    present = [m for m in METRICS if m in set(summary["metric"])]
    if not present:
        raise ValueError("summary table is empty: nothing to plot")
    data = summary.sort_values(["metric", "k"], kind="stable")

    with _style():
        fig = _figure(6.4, 4.2)
        ax = fig.subplots()
        rows = []
        for metric in present:
            label, colour, marker, ls = METRICS[metric]
            d = data[data["metric"] == metric]
            k = d["k"].to_numpy(dtype=float)
            mean = d["mean"].to_numpy(dtype=float)
            lo, hi = d["lo"].to_numpy(dtype=float), d["hi"].to_numpy(dtype=float)
            ax.plot(k, mean, color=colour, marker=marker, ls=ls, label=label)
            if len(k) > 1:
                ax.fill_between(k, lo, hi, color=colour, alpha=0.15, lw=0)
            else:
                ax.errorbar(k, mean, yerr=_interval_err(mean, lo, hi), color=colour, capsize=4,
                            ls="none", alpha=0.5, lw=4)  # fmt: skip
            sd = d["sd"].to_numpy(dtype=float)
            ax.errorbar(k, mean, yerr=_clipped_err(mean, sd), color=colour, capsize=2,
                        ls="none", lw=1)  # fmt: skip
            rows.append(d)
        ks = np.sort(data["k"].unique())
        if len(ks) <= 15:
            ax.set_xticks(ks)
        ax.set_xlabel(K_LABEL)
        ax.set_ylabel(RATE_LABEL)
        ax.set_ylim(-0.03, 1.03)
        ax.legend(
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            title="mean over draws\nshade: 95 % Clopper–Pearson\nover identities\n"
            "bars: ± sd over draws",
        )
        _title(ax, title)
        save(fig, png, pdf)
    return pd.concat(rows, ignore_index=True)


def plot_confusion(
    metrics: pd.DataFrame, k: int, png: str | Path, pdf: str | Path, title: str
) -> pd.DataFrame:
    """2×2 confusion matrix at ``k``: counts and row-normalized rates, mean ± sd over draws.

    Returns a table with one row per cell: truth, predicted, count_mean, count_sd, rate_mean,
    rate_sd.
    """
    _require(metrics, ["k", "draw", "tp", "fn", "fp", "tn"], "metrics")
    _check_k(metrics["k"].tolist(), k, "metrics")
    at_k = metrics[metrics["k"] == k]
    cells = [("member", "member", "tp"), ("member", "non-member", "fn")]
    cells += [("non-member", "member", "fp"), ("non-member", "non-member", "tn")]
    row_total = {
        "member": at_k["tp"] + at_k["fn"],
        "non-member": at_k["fp"] + at_k["tn"],
    }
    records = []
    for truth, predicted, col in cells:
        total = row_total[truth].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = pd.Series(at_k[col].to_numpy(dtype=float) / total)
        records.append(
            {
                "truth": truth,
                "predicted": predicted,
                "count_mean": float(at_k[col].mean()),
                "count_sd": _sd(at_k[col].astype(float)),
                "rate_mean": float(rate.mean()),
                "rate_sd": _sd(rate),
            }
        )
    table = pd.DataFrame.from_records(records)
    grid = table["rate_mean"].to_numpy().reshape(2, 2)
    n_draws = at_k["draw"].nunique()

    with _style(), matplotlib.rc_context({"axes.grid": False}):
        fig = _figure(5.2, 4.4)
        ax = fig.subplots()
        image = ax.imshow(np.nan_to_num(grid), cmap=RATE_CMAP, vmin=0, vmax=1)
        for i, rec in enumerate(records):
            r, c = divmod(i, 2)
            shade = np.nan_to_num(grid[r, c])
            colour = "black" if shade > 0.6 else "white"
            text = (
                f"{rec['count_mean']:.1f} ± {rec['count_sd']:.1f}\n"
                f"{rec['rate_mean']:.1%} ± {rec['rate_sd']:.1%}"
            )
            ax.text(c, r, text, ha="center", va="center", color=colour, fontsize=10.5)
        ax.set_xticks([0, 1], ["member", "non-member"])
        ax.set_yticks([0, 1], ["member", "non-member"])
        ax.set_xlabel("Predicted by the attack")
        ax.set_ylabel("True membership")
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        cbar = fig.colorbar(image, ax=ax, shrink=0.85)
        cbar.set_label("Row-normalized rate")
        _title(ax, f"{title}\nk = {k} attack images, mean ± sd over {n_draws} draws")
        save(fig, png, pdf)
    return table


def plot_rate_by_bin(
    scores: pd.DataFrame,
    counts: pd.DataFrame,
    k: int,
    tau: int,
    png: str | Path,
    pdf: str | Path,
    title: str,
    bin_label: str = BIN_LABEL,
) -> pd.DataFrame:
    """TPR and FNR per occurrence bin at ``k`` (members only), mean over draws.

    Error bars are the 95 % Clopper–Pearson interval over the bin's identities (x̄ members
    detected of the bin's n, x̄ the mean over draws): with a handful of identities per bin it is
    wide even where the sd over photo draws is 0. Returns the plotted table: bin, n, tpr_mean,
    tpr_sd, fnr_mean, fnr_sd, tpr_lo, tpr_hi, fnr_lo, fnr_hi.
    """
    from idia.stats import clopper_pearson

    _require(scores, ["k"], "scores")
    _check_k(scores["k"].tolist(), k, "scores")
    rates = rates_by_bin(scores[scores["k"] == k], counts, tau)
    order = _bin_order(counts)
    rates["fnr"] = 1.0 - rates["tpr"]
    stats = (
        rates.groupby("bin_index", sort=True)
        .agg(
            tpr_mean=("tpr", "mean"),
            tpr_sd=("tpr", _sd),
            fnr_mean=("fnr", "mean"),
            fnr_sd=("fnr", _sd),
        )
        .reset_index()
    )
    table = order.merge(stats, on="bin_index", how="inner").sort_values("bin_index")
    table = table[["bin", "n", "tpr_mean", "tpr_sd", "fnr_mean", "fnr_sd"]].reset_index(drop=True)
    n = table["n"].to_numpy(dtype=float)
    for rate in ("tpr", "fnr"):
        successes = np.clip(table[f"{rate}_mean"].to_numpy(dtype=float) * n, 0.0, n)
        table[f"{rate}_lo"], table[f"{rate}_hi"] = clopper_pearson(successes, n)
    n_draws = rates["draw"].nunique()

    with _style():
        fig = _figure(max(5.0, 1.0 + 0.75 * len(table)) + 2.0, 4.2)
        ax = fig.subplots()
        x = np.arange(len(table))
        width = 0.38
        ax.bar(
            x - width / 2,
            table["tpr_mean"],
            width,
            yerr=_interval_err(table["tpr_mean"], table["tpr_lo"], table["tpr_hi"]),
            capsize=3,
            color=PALETTE["blue"],
            label="TPR (members detected)",
        )
        ax.bar(
            x + width / 2,
            table["fnr_mean"],
            width,
            yerr=_interval_err(table["fnr_mean"], table["fnr_lo"], table["fnr_hi"]),
            capsize=3,
            color=PALETTE["vermillion"],
            hatch="//",
            edgecolor="white",
            linewidth=0,
            label="FNR (members missed)",
        )
        ticks = [f"{b}\n(n = {n})" for b, n in zip(table["bin"].astype(str), table["n"])]
        ax.set_xticks(x, ticks, rotation=30 if len(table) > 6 else 0)
        ax.set_xlabel(bin_label)
        ax.set_ylabel(f"{RATE_LABEL}\nmean over {n_draws} draws, 95 % CI over identities")
        ax.set_ylim(0, 1.03)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.legend(
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            title="bars: 95 % Clopper–Pearson\nover the bin's n identities",
        )
        _title(ax, f"{title}\nk = {k} attack images, τ = {tau}")
        save(fig, png, pdf)
    return table


def plot_identities_per_bin(
    counts: pd.DataFrame,
    png: str | Path,
    pdf: str | Path,
    title: str,
    bin_label: str = BIN_LABEL,
) -> pd.DataFrame:
    """Bar chart of identities per occurrence bin, with the non-members as a last, grey bar.

    Returns the plotted table: bin, bin_index, n, member.
    """
    _require(counts, ["person_id", "member", "bin", "bin_index"], "counts")
    order = _bin_order(counts)
    order["member"] = True
    n_non = int((~counts["member"].astype(bool)).sum())
    table = pd.concat(
        [
            order,
            pd.DataFrame([{"bin_index": -1, "bin": NON_MEMBER, "n": n_non, "member": False}]),
        ],
        ignore_index=True,
    )[["bin", "bin_index", "n", "member"]]

    with _style():
        fig = _figure(max(5.0, 1.2 + 0.6 * len(table)), 4.0)
        ax = fig.subplots()
        x = np.arange(len(table))
        colours = [PALETTE["blue"] if m else PALETTE["grey"] for m in table["member"]]
        bars = ax.bar(x, table["n"], color=colours, width=0.7)
        bars[-1].set_hatch("..")
        bars[-1].set_edgecolor("white")
        ax.bar_label(bars, labels=[str(n) for n in table["n"]], padding=2, fontsize=8.5)
        ax.set_xticks(x, table["bin"].astype(str), rotation=30 if len(table) > 7 else 0)
        ax.set_xlabel(bin_label)
        ax.set_ylabel("Number of identities")
        ax.set_ylim(0, max(1, table["n"].max()) * 1.15)
        ax.grid(axis="x", visible=False)
        _title(ax, title)
        save(fig, png, pdf)
    return table


def plot_tpr_heatmap(
    scores: pd.DataFrame,
    counts: pd.DataFrame,
    tau: int,
    png: str | Path,
    pdf: str | Path,
    title: str,
    bin_label: str = BIN_LABEL,
) -> pd.DataFrame:
    """Heatmap of TPR (mean over draws): occurrence bins (members) × number of attack images.

    Returns the matrix: index ``bin`` in bin order, columns ``k`` ascending.
    """
    rates = rates_by_bin(scores, counts, tau)
    mean = rates.groupby(["bin_index", "bin", "k"], sort=True)["tpr"].mean().reset_index()
    matrix = mean.pivot(index=["bin_index", "bin"], columns="k", values="tpr").sort_index()
    matrix = matrix.reindex(sorted(matrix.columns), axis=1)
    matrix.index = pd.Index(matrix.index.get_level_values("bin"), name="bin")
    matrix.columns = pd.Index(matrix.columns.astype(int), name="k")
    n_rows, n_cols = matrix.shape
    annotate = n_cols <= MAX_ANNOTATED_COLUMNS

    with _style(), matplotlib.rc_context({"axes.grid": False}):
        width = max(4.8, 1.8 + 0.55 * n_cols) if annotate else 7.2
        fig = _figure(width, max(3.2, 1.4 + 0.4 * n_rows))
        ax = fig.subplots()
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(values, cmap=RATE_CMAP, vmin=0, vmax=1, origin="lower", aspect="auto")
        if annotate:
            for r in range(n_rows):
                for c in range(n_cols):
                    v = values[r, c]
                    colour = "black" if v > 0.6 else "white"
                    ax.text(c, r, f"{v:.2f}", ha="center", va="center", color=colour, fontsize=8)
        ax.set_xticks(*_k_ticks(matrix.columns.to_numpy()))
        ax.set_yticks(np.arange(n_rows), matrix.index.astype(str))
        ax.set_xlabel(K_LABEL)
        ax.set_ylabel(bin_label)
        cbar = fig.colorbar(image, ax=ax)
        cbar.set_label(f"TPR (mean over draws, τ = {tau})")
        _title(ax, title)
        save(fig, png, pdf)
    return matrix


# --------------------------------------------------------------------------- person-level evidence

_SCORES = {
    "vote_score": ("vote score (templates correct)", PALETTE["blue"], "-"),
    "combined_score": ("vote + margin tie-break", PALETTE["vermillion"], "--"),
}


def plot_roc(
    persons: pd.DataFrame,
    tau: int,
    png: str | Path,
    pdf: str | Path,
    title: str,
    intervals: dict[str, tuple[float, float]] | None = None,
):
    """ROC over identities, linear and log-log, for the vote score and the finer combined score.

    Every point of the vote curve is one tau (vote ≥ tau); the decision rule's tau is marked.
    ``intervals`` maps a score column to its AUC interval (bootstrap over identities) for the
    legend. On the log-log panel FPR 0 sits at half the smallest non-zero FPR the cohort can
    express (1 / non-members).
    """
    from idia.stats import auc, roc_curve

    _require(persons, ["is_member", *_SCORES], "persons")
    labels = persons["is_member"].to_numpy(bool)
    if labels.all() or not labels.any():
        raise ValueError("ROC needs both members and non-members among the persons")
    floor = 0.5 / max(1, int((~labels).sum()))
    with _style():
        fig = _figure(10, 4.4)
        ax_lin, ax_log = fig.subplots(1, 2)
        for column, (label, colour, style) in _SCORES.items():
            scores = persons[column].to_numpy(float)
            fpr, tpr, _ = roc_curve(scores, labels)
            area = auc(scores, labels)
            text = f"{label}: AUC {area:.3f}"
            if intervals and column in intervals:
                text += " [{:.3f}, {:.3f}]".format(*intervals[column])
            marker = "." if column == "vote_score" else None
            ax_lin.plot(fpr, tpr, style, color=colour, marker=marker, label=text)
            ax_log.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), style, color=colour,
                        marker=marker)  # fmt: skip
        called = persons["vote_score"].to_numpy() >= tau
        op = (called[~labels].mean(), called[labels].mean())
        for ax, point in ((ax_lin, op), (ax_log, tuple(max(v, floor) for v in op))):
            ax.plot(*point, "o", color=PALETTE["black"], label=f"decision rule (tau={tau})")
        ax_lin.plot([0, 1], [0, 1], ":", color=PALETTE["grey"], label="chance")
        ax_lin.set(xlabel="FPR (non-members flagged)", ylabel="TPR (members detected)",
                   xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))  # fmt: skip
        ax_lin.legend(loc="lower right")
        ax_log.set(xscale="log", yscale="log", xlabel="FPR (log)", ylabel="TPR (log)",
                   xlim=(floor * 0.8, 1.05), ylim=(floor * 0.8, 1.05))  # fmt: skip
        ax_log.axvline(1 / max(1, int((~labels).sum())), color=PALETTE["grey"], lw=0.8, ls=":")
        ax_log.set_title("log-log; dotted: 1 / non-members", loc="left", fontsize=9)
        _title(ax_lin, title)
    save(fig, png, pdf)
    return fig


def plot_pvalue_qq(persons: pd.DataFrame, png: str | Path, pdf: str | Path, title: str):
    """QQ plot of the p-values against Uniform(0, 1): non-members should lie on the diagonal."""
    from idia.stats import uniformity

    _require(persons, ["is_member", "p_value"], "persons")
    with _style():
        fig = _figure(5.6, 4.8)
        ax = fig.subplots()
        for member, (label, colour, marker) in {
            False: ("non-members", PALETTE["blue"], "o"),
            True: ("members", PALETTE["vermillion"], "^"),
        }.items():
            p = np.sort(persons.loc[persons["is_member"] == member, "p_value"].dropna().to_numpy())
            if not p.size:
                continue
            expected = (np.arange(1, p.size + 1) - 0.5) / p.size
            extra = ""
            if not member:
                ks = uniformity(p)
                extra = f" (KS {ks['ks_stat']:.3f}, p={ks['ks_pvalue']:.2g})"
            ax.plot(expected, p, marker, ms=3.5, color=colour, label=f"{label}{extra}", ls="none")
        ax.plot([0, 1], [0, 1], ":", color=PALETTE["grey"], label="uniform")
        ax.set(xlabel="expected p-value under H0 (uniform quantile)", ylabel="observed p-value",
               xlim=(0, 1), ylim=(0, 1.02))  # fmt: skip
        ax.legend(loc="upper left")
        _title(ax, title)
    save(fig, png, pdf)
    return fig


def stack_levels(
    levels: Sequence[int], scores: Sequence[pd.DataFrame], truths: Sequence[pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The injection grid's scores and truth tables (one pair per level N) as one study: a person
    becomes one identity per level (``person_id|N=n``) and the levels become the occurrence bins,
    ordered by N, so the paper's TPR-vs-occurrences plots become TPR-vs-injected-pairs."""
    if not len(levels) == len(scores) == len(truths):
        raise ValueError(
            f"{len(levels)} levels need as many score and truth tables, got {len(scores)} and "
            f"{len(truths)}"
        )
    order = {n: i for i, n in enumerate(sorted(levels))}
    all_scores, all_truths = [], []
    for n, score, truth in zip(levels, scores, truths):
        score, truth = score.copy(), truth.copy()
        score["person_id"] = score["person_id"] + f"|N={n}"
        truth["person_id"] = truth["person_id"] + f"|N={n}"
        truth["bin_index"] = truth["bin_index"].where(~truth["member"], order[n])
        all_scores.append(score)
        all_truths.append(truth)
    return pd.concat(all_scores, ignore_index=True), pd.concat(all_truths, ignore_index=True)


def plot_by_level(
    *,
    name: str,
    k: int,
    tau: int,
    levels: Sequence[int],
    scores: Sequence[str | Path],
    truths: Sequence[str | Path],
    rate: str | Path,
    rate_pdf: str | Path,
    heatmap: str | Path,
    heatmap_pdf: str | Path,
) -> pd.DataFrame:
    """One architecture of the injection grid: TPR / FNR by injected pairs at ``k`` photos and
    the TPR heatmap over photos x injected pairs, from each level's scores and truth tables.
    Returns (and logs) the rates by level."""
    stacked_scores, stacked_truths = stack_levels(
        list(levels),
        [pd.read_parquet(p) for p in scores],
        [pd.read_parquet(p) for p in truths],
    )
    label = "injected pairs per member (N)"
    table = plot_rate_by_bin(
        stacked_scores, stacked_truths, k, tau, png=rate, pdf=rate_pdf,
        title=f"{name}: TPR / FNR by injected pairs (k={k})", bin_label=label,
    )  # fmt: skip
    print(table.to_string(index=False))
    plot_tpr_heatmap(
        stacked_scores, stacked_truths, tau, png=heatmap, pdf=heatmap_pdf,
        title=f"{name}: TPR over attack photos x injected pairs", bin_label=label,
    )  # fmt: skip
    return table


# --------------------------------------------------------------------------------------------
# The registry: one figure of one model by name, as the figure rules draw it
# --------------------------------------------------------------------------------------------


def _table(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path) if str(path).endswith(".csv") else pd.read_parquet(path)


def _metrics_vs_k(inputs: Mapping[str, str], model: str, k: int, tau: int, png, pdf) -> None:
    title = f"{model}: IDIA vs attack photos (tau={tau})"
    plot_metrics_vs_k(_table(inputs["summary"]), title=title, png=png, pdf=pdf)


def _confusion(inputs: Mapping[str, str], model: str, k: int, tau: int, png, pdf) -> None:
    title = f"{model}: confusion at k={k}"
    plot_confusion(_table(inputs["metrics"]), k, title=title, png=png, pdf=pdf)


def _rate_by_bin(inputs: Mapping[str, str], model: str, k: int, tau: int, png, pdf) -> None:
    plot_rate_by_bin(
        _table(inputs["scores"]), _table(inputs["counts"]), k, tau,
        title=f"{model}: TPR / FNR by occurrences (k={k})", png=png, pdf=pdf,
    )  # fmt: skip


def _identities_per_bin(inputs: Mapping[str, str], model: str, k: int, tau: int, png, pdf) -> None:
    title = "Identities per occurrence bin"
    plot_identities_per_bin(_table(inputs["counts"]), title=title, png=png, pdf=pdf)


def _tpr_heatmap(inputs: Mapping[str, str], model: str, k: int, tau: int, png, pdf) -> None:
    plot_tpr_heatmap(
        _table(inputs["scores"]), _table(inputs["counts"]), tau,
        title=f"{model}: TPR over attack photos x occurrences", png=png, pdf=pdf,
    )  # fmt: skip


def _roc(inputs: Mapping[str, str], model: str, k: int, tau: int, png, pdf) -> None:
    summary = json.loads(Path(inputs["stats"]).read_text())
    intervals = {
        column: (summary[score]["auc_lo"], summary[score]["auc_hi"])
        for column, score in (("vote_score", "vote"), ("combined_score", "combined"))
    }
    plot_roc(
        _table(inputs["persons"]), tau, title=f"{model}: ROC over identities",
        intervals=intervals, png=png, pdf=pdf,
    )  # fmt: skip


def _pvalue_qq(inputs: Mapping[str, str], model: str, k: int, tau: int, png, pdf) -> None:
    title = f"{model}: p-values vs uniform"
    plot_pvalue_qq(_table(inputs["persons"]), title=title, png=png, pdf=pdf)


#: Each figure a model gets, by the name its rule passes: (inputs by name, model, k, tau, png,
#: pdf) → the PNG and PDF written. The inputs are the rule's named input files.
FIGURES: dict[str, Callable[..., object]] = {
    "metrics_vs_k": _metrics_vs_k,
    "confusion": _confusion,
    "rate_by_bin": _rate_by_bin,
    "identities_per_bin": _identities_per_bin,
    "tpr_heatmap": _tpr_heatmap,
    "roc": _roc,
    "pvalue_qq": _pvalue_qq,
}


def draw_figure(
    name: str,
    inputs: Mapping[str, str],
    *,
    model: str,
    k: int,
    tau: int,
    png: str | Path,
    pdf: str | Path,
) -> None:
    """Draw the registered figure ``name`` of ``model`` from its rule's named input files."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; the figures are {', '.join(FIGURES)}")
    FIGURES[name](inputs, model, k, tau, png, pdf)
