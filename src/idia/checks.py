"""Checks of a run against a known truth: the embedded world plants every identity's caption
count and the identities it leaves out, so the caption search and the acquisition can be held to
them exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def search_against_truth(
    counts: pd.DataFrame,
    truth: pd.DataFrame,
    downloads: dict,
    acquired: pd.DataFrame,
    world: dict,
) -> dict:
    """Compare the caption search's ``counts`` with the world's planted ``truth`` (one row per
    identity each) and the acquisition's exclusions (``acquired``: the identities report) with
    the ones the world planned (``world["counts"]["sparse_identities"]``).

    Returns the comparison; raises ValueError naming the identities when an identity was lost
    on the way to the counts. Named pairs whose image failed to download still carry their
    caption: the search counts captions, so found counts must equal planted counts whatever the
    downloads did.
    """
    both = truth.merge(counts, on="person_id", suffixes=("_truth", "_found"), validate="1:1")
    if len(both) != len(truth):
        lost = sorted(set(truth["person_id"]) - set(counts["person_id"]))
        raise ValueError(f"{len(lost)} world identities were lost on the way to the counts: {lost}")
    # Every study identity was acquired from the published lists; the people listed with too few
    # photos on purpose were excluded, and nobody else.
    excluded = set(acquired.loc[acquired["status"] == "excluded", "name"])
    expected_excluded = set(world["counts"]["sparse_identities"])
    wrong = both[both["occurrences"] != both["count"]]
    return {
        "identities": len(both),
        "members_truth": int(both["member_truth"].sum()),
        "members_found": int(both["member_found"].sum()),
        "membership_agrees": int((both["member_truth"] == both["member_found"]).sum()),
        "counts_agree": int(len(both) - len(wrong)),
        "mismatches": wrong[["person_id", "name_truth", "occurrences", "count"]].to_dict("records"),
        "downloaded": downloads["successes"],
        "failed_urls": downloads["failed_to_download"],
        "identities_excluded": sorted(excluded),
        "identities_excluded_as_planned": excluded == expected_excluded,
    }


def truth_check(
    *,
    counts: str | Path,
    truth: str | Path,
    downloads: str | Path,
    identities: str | Path,
    world: str | Path,
    out: str | Path,
) -> dict:
    """The world's check of the caption search and the acquisition: write the comparison (json,
    returned), then fail naming what disagrees."""
    from idia.smk import write_json

    planned = json.loads(Path(world).read_text())
    result = search_against_truth(
        pd.read_parquet(counts),
        pd.read_parquet(truth),
        json.loads(Path(downloads).read_text()),
        pd.read_csv(identities),
        planned,
    )
    write_json(out, result)
    excluded = result["identities_excluded"]
    print(
        f"caption search agrees with the world's truth for {result['counts_agree']}"
        f"/{result['identities']} identities; excluded at acquisition: {excluded}"
    )
    if result["mismatches"]:
        raise ValueError(f"caption search disagrees with the world's truth: {result['mismatches']}")
    if not result["identities_excluded_as_planned"]:
        raise ValueError(
            f"acquisition excluded {excluded}, the world planned "
            f"{sorted(set(planned['counts']['sparse_identities']))}"
        )
    return result
