"""The world's check of the caption search and the acquisition against what it planted."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from idia.checks import search_against_truth, truth_check

WORLD = {"counts": {"sparse_identities": ["Cy C"]}}
DOWNLOADS = {"successes": 9, "failed_to_download": 2}


def _truth() -> pd.DataFrame:
    return pd.DataFrame(
        {"person_id": ["p1", "p2"], "name": ["Ann A", "Bo B"], "occurrences": [3, 0],
         "member": [True, False]}
    )  # fmt: skip


def _counts(found=(3, 0)) -> pd.DataFrame:
    return pd.DataFrame(
        {"person_id": ["p1", "p2"], "name": ["Ann A", "Bo B"], "count": list(found),
         "member": [n > 0 for n in found]}
    )  # fmt: skip


def _acquired(excluded=("Cy C",)) -> pd.DataFrame:
    names = ["Ann A", "Bo B", "Cy C"]
    status = ["excluded" if n in excluded else "ok" for n in names]
    return pd.DataFrame({"name": names, "status": status})


def test_agreement_is_counted_and_a_mismatch_is_listed():
    ok = search_against_truth(_counts(), _truth(), DOWNLOADS, _acquired(), WORLD)
    assert (ok["counts_agree"], ok["membership_agrees"], ok["mismatches"]) == (2, 2, [])
    assert ok["identities_excluded_as_planned"] and ok["failed_urls"] == 2
    off = search_against_truth(_counts((3, 1)), _truth(), DOWNLOADS, _acquired(()), WORLD)
    assert off["mismatches"] == [
        {"person_id": "p2", "name_truth": "Bo B", "occurrences": 0, "count": 1}
    ]
    assert off["members_found"] == 2 and not off["identities_excluded_as_planned"]


def test_a_lost_identity_is_named():
    with pytest.raises(ValueError, match=r"1 world identities were lost .*\['p2'\]"):
        search_against_truth(_counts().iloc[:1], _truth(), DOWNLOADS, _acquired(), WORLD)


@pytest.mark.parametrize(
    ("found", "excluded", "error"),
    [((3, 0), ("Cy C",), None), ((3, 1), ("Cy C",), "caption search disagrees"),
     ((3, 0), (), r"acquisition excluded \[\], the world planned \['Cy C'\]")],
)  # fmt: skip
def test_truth_check_writes_the_comparison_then_fails_on_a_disagreement(
    tmp_path, found, excluded, error
):
    _counts(found).to_parquet(tmp_path / "counts.parquet")
    _truth().to_parquet(tmp_path / "truth.parquet")
    (tmp_path / "downloads.json").write_text(json.dumps(DOWNLOADS))
    _acquired(excluded).to_csv(tmp_path / "identities.csv", index=False)
    (tmp_path / "world.json").write_text(json.dumps(WORLD))
    paths = {
        "counts": tmp_path / "counts.parquet", "truth": tmp_path / "truth.parquet",
        "downloads": tmp_path / "downloads.json", "identities": tmp_path / "identities.csv",
        "world": tmp_path / "world.json", "out": tmp_path / "check.json",
    }  # fmt: skip
    if error is None:
        assert truth_check(**paths)["counts_agree"] == 2
    else:
        with pytest.raises(ValueError, match=error):
            truth_check(**paths)
    assert json.loads((tmp_path / "check.json").read_text())["identities"] == 2
