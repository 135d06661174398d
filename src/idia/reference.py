"""Compare our caption counts with a published reference (the paper's LAION-400M counts).

The paper published, for each of its 548 identities, how many LAION-400M captions contain the
name (``name,count,membership,bin``; a case-sensitive substring search over the 2021 captions).
Today's hub copies of LAION are re-filtered, and the search may be ``word`` instead of
``paper``: counts differ. This module says by how much, and for whom.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from idia.names import name_key


def read_reference(path: str | Path) -> pd.DataFrame:
    """A reference counts table with at least ``name`` and ``count`` (membership derived)."""
    table = pd.read_csv(path)
    missing = {"name", "count"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: a reference counts table needs {sorted(missing)} columns")
    table = table[["name", "count"]].copy()
    table["count"] = table["count"].astype(np.int64)
    return table


def compare_counts(ours: pd.DataFrame, reference: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per identity in both tables (matched by name up to case and accents): both counts, both
    memberships and the log10 ratio; plus a summary (matched, membership agreement, rank
    correlation, the names that differ most). Names in only one table are counted, not hidden.
    """
    mine = ours.assign(key=ours["name"].map(name_key))
    theirs = reference.assign(key=reference["name"].map(name_key))
    both = mine.merge(theirs, on="key", suffixes=("", "_reference"), how="inner")
    table = pd.DataFrame(
        {
            "person_id": both["person_id"],
            "name": both["name"],
            "count": both["count"].astype(np.int64),
            "count_reference": both["count_reference"].astype(np.int64),
        }
    )
    table["member"] = table["count"] > 0
    table["member_reference"] = table["count_reference"] > 0
    table["log10_ratio"] = np.log10((table["count"] + 1) / (table["count_reference"] + 1))
    table = table.sort_values("log10_ratio", key=np.abs, ascending=False, kind="stable")
    agree = table["member"] == table["member_reference"]
    rho = (
        float(table["count"].rank().corr(table["count_reference"].rank()))
        if len(table) > 2 and table["count"].nunique() > 1
        else None
    )
    summary = {
        "identities_ours": len(ours),
        "identities_reference": len(reference),
        "matched": len(table),
        "only_ours": sorted(set(mine["key"]) - set(theirs["key"]))[:50],
        "only_reference": sorted(set(theirs["key"]) - set(mine["key"]))[:50],
        "membership_agreement": float(agree.mean()) if len(table) else None,
        "membership_disagree": table.loc[~agree, "name"].tolist(),
        "spearman": rho,
        "most_different": table.head(10)[["name", "count", "count_reference"]].to_dict("records"),
    }
    return table.reset_index(drop=True), summary


def plot_comparison(table: pd.DataFrame, png: str | Path, pdf: str | Path, title: str) -> None:
    """Log-log scatter of our counts against the reference's (count + 1), disagreements marked."""
    from idia.figures import _figure, _style, _title, save

    with _style():
        fig = _figure(5.2, 4.6)
        ax = fig.add_subplot(1, 1, 1)
        x, y = table["count_reference"] + 1, table["count"] + 1
        agree = table["member"] == table["member_reference"]
        ax.scatter(x[agree], y[agree], s=12, alpha=0.6, label="membership agrees")
        ax.scatter(x[~agree], y[~agree], s=22, marker="x", color="C3",
                   label="membership differs")  # fmt: skip
        top = max(float(x.max()), float(y.max()), 10.0) if len(table) else 10.0
        ax.plot([1, top], [1, top], color="0.5", lw=0.8, ls="--", label="equal counts")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("reference count + 1 (the paper's LAION-400M search)")
        ax.set_ylabel("our count + 1")
        ax.legend(loc="upper left", fontsize=8)
        _title(ax, title)
        save(fig, png, pdf)
