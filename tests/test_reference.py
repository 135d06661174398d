"""Our caption counts against the paper's published ones (idia.reference), on a table small
enough to work out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from idia.reference import compare_counts, read_reference


@pytest.fixture
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    ours = pd.DataFrame(
        {
            "person_id": ["p1", "p2", "p3", "p4"],
            "name": ["Ann Lee", "Bo Ek", "Zoé Müller", "Cy Dun"],
            "count": [99, 0, 9, 5],
        }
    )
    reference = pd.DataFrame(
        {"name": ["ann lee", "Bo Ek", "Zoe Muller", "Dee Fox"], "count": [9, 999, 9, 0]}
    )
    return ours, reference


def test_compare_counts_matches_names_and_sorts_by_how_far_apart(tables):
    table, summary = compare_counts(*tables)
    # log10((ours + 1) / (reference + 1)): Bo Ek 1/1000 → -3, Ann Lee 100/10 → 1, Zoé 10/10 → 0
    assert table["name"].tolist() == ["Bo Ek", "Ann Lee", "Zoé Müller"]
    assert table["person_id"].tolist() == ["p2", "p1", "p3"]
    assert table["log10_ratio"].tolist() == pytest.approx([-3.0, 1.0, 0.0])
    # the log-log figure plots count + 1 against count_reference + 1, one point per identity
    assert table["count"].tolist() == [0, 99, 9]
    assert table["count_reference"].tolist() == [999, 9, 9]
    assert table["member"].tolist() == [False, True, True]
    assert table["member_reference"].tolist() == [True, True, True]

    assert summary["identities_ours"] == 4 and summary["identities_reference"] == 4
    assert summary["matched"] == 3
    assert summary["only_ours"] == ["cy dun"] and summary["only_reference"] == ["dee fox"]
    assert summary["membership_agreement"] == pytest.approx(2 / 3)
    assert summary["membership_disagree"] == ["Bo Ek"]
    # ranks: ours (99, 0, 9) → (3, 1, 2); reference (9, 999, 9) → (1.5, 3, 1.5):
    # covariance -1.5 over sqrt(2 * 1.5)
    assert summary["spearman"] == pytest.approx(-1.5 / math.sqrt(3))
    assert summary["most_different"] == [
        {"name": "Bo Ek", "count": 0, "count_reference": 999},
        {"name": "Ann Lee", "count": 99, "count_reference": 9},
        {"name": "Zoé Müller", "count": 9, "count_reference": 9},
    ]


def test_no_rank_correlation_from_too_few_or_constant_counts(tables):
    ours, reference = tables
    _, summary = compare_counts(ours.iloc[:2], reference)
    assert summary["matched"] == 2 and summary["spearman"] is None
    _, summary = compare_counts(ours.assign(count=7), reference)
    assert summary["spearman"] is None and summary["membership_agreement"] == 1.0
    table, summary = compare_counts(ours.iloc[3:], reference)  # no name in common
    assert table.empty and summary["membership_agreement"] is None


def test_read_reference_keeps_name_and_count_and_names_missing_columns(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text("name,count,membership,bin\nAnn Lee,12,member,1\nBo Ek,0,non_member,0\n")
    table = read_reference(path)
    assert table.to_dict("list") == {"name": ["Ann Lee", "Bo Ek"], "count": [12, 0]}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,occurrences\nAnn Lee,12\n")
    with pytest.raises(ValueError, match=r"bad\.csv: a reference counts table needs \['count'\]"):
        read_reference(bad)


def test_the_shipped_paper_counts_read_as_its_548_identities():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "config" / "reference"
    table = read_reference(path / "laion400m_membership_counts.csv")
    assert len(table) == table["name"].nunique() == 548
    assert (table["count"] > 0).sum() == 540  # the paper's LAION-400M members
