"""The cohort draw: seeded, order-independent, gender-stratified, present persons excluded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idia.cohort import _allocate, cohort_summary, select_cohort


def _candidates(genders: dict[str, tuple[int, int]], seed: int = 0) -> pd.DataFrame:
    """Per gender (absent, present) persons, ids shuffled over the genders."""
    rows = []
    for gender, (absent, present) in genders.items():
        rows += [(gender, False)] * absent + [(gender, True)] * present
    rng = np.random.default_rng(seed)
    ids = rng.permutation(len(rows))
    return pd.DataFrame(
        {
            "person_id": [f"p{i:04d}" for i in ids],
            "name": [f"Person {i}" for i in ids],
            "gender": [g for g, _ in rows],
            "present": [p for _, p in rows],
            "present_reason": [
                f"classifier named this person on {3 + i % 4} retrieved faces (≥ 2 needed)"
                if p
                else "classifier named this person on 0 retrieved faces (≥ 2 needed)"
                for i, (_, p) in zip(ids, rows)
            ],
        }
    )


POOL = {"female": (37, 5), "male": (23, 4), "nonbinary": (6, 1)}


def test_every_candidate_once_with_exact_sizes_and_disjoint_groups():
    candidates = _candidates(POOL)
    cohort = select_cohort(candidates, 20, 15, seed=7)
    assert list(cohort.columns) == ["person_id", "name", "gender", "status", "reason"]
    assert sorted(cohort["person_id"]) == sorted(candidates["person_id"])
    assert cohort["person_id"].is_unique and cohort["person_id"].is_monotonic_increasing
    counts = cohort["status"].value_counts().to_dict()
    assert counts == {"member": 20, "non-member": 15, "unused": 66 - 35, "excluded": 10}
    merged = cohort.merge(candidates, on=["person_id", "name", "gender"])
    assert len(merged) == len(candidates)
    assert (merged["present"] == (merged["status"] == "excluded")).all()


def test_present_persons_are_excluded_with_their_reason():
    candidates = _candidates(POOL)
    cohort = select_cohort(candidates, 20, 15, seed=7).merge(candidates, on="person_id")
    excluded = cohort[cohort["status"] == "excluded"]
    assert excluded["present"].all() and len(excluded) == 10
    assert (excluded["reason"] == excluded["present_reason"]).all()
    assert excluded["reason"].str.contains("retrieved faces").all()
    drawn = cohort[cohort["status"] == "member"]
    assert set(drawn["reason"]) == {
        "absent from the base corpus; drawn as member (gender-stratified, seed 7)"
    }
    drawn = cohort[cohort["status"] == "non-member"]
    assert set(drawn["reason"]) == {
        "absent from the base corpus; drawn as non-member (gender-stratified, seed 7)"
    }
    unused = cohort[cohort["status"] == "unused"]
    assert set(unused["reason"]) == {"absent but not drawn: the cohort is full"}


def test_seeded_and_independent_of_row_order():
    candidates = _candidates(POOL)
    a = select_cohort(candidates, 20, 15, seed=7)
    shuffled = candidates.sample(frac=1, random_state=3).reset_index(drop=True)
    b = select_cohort(shuffled, 20, 15, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = select_cohort(candidates, 20, 15, seed=8)
    assert not a["status"].equals(c["status"])
    assert (a["status"] == "excluded").equals(c["status"] == "excluded")


@pytest.mark.parametrize(("n_members", "n_non_members"), [(20, 15), (33, 33), (1, 64), (7, 0)])
def test_stratified_by_gender(n_members, n_non_members):
    cohort = select_cohort(_candidates(POOL), n_members, n_non_members, seed=1)
    absent = {g: a for g, (a, _) in POOL.items()}
    total = sum(absent.values())
    table = pd.crosstab(cohort["gender"], cohort["status"])
    for gender, pool in absent.items():
        for status, size in (("member", n_members), ("non-member", n_non_members)):
            got = table.loc[gender].get(status, 0)
            assert abs(got - size * pool / total) < 1, (gender, status, got)


def test_allocation_keeps_every_share_within_one_and_every_total():
    rng = np.random.default_rng(0)
    for _ in range(300):
        pool = rng.integers(1, 40, size=rng.integers(1, 7))
        members = rng.integers(0, pool.sum() + 1)
        non_members = rng.integers(0, pool.sum() - members + 1)
        totals = np.array([members, non_members, pool.sum() - members - non_members])
        table = _allocate(pool, totals)
        assert (table.sum(axis=1) == pool).all() and (table.sum(axis=0) == totals).all()
        assert (np.abs(table - np.outer(pool, totals) / pool.sum()) < 1).all()


@pytest.mark.parametrize(
    ("pool", "totals"),
    [([2, 2, 2], [2, 2, 2]), ([3, 2, 3, 2, 2], [2, 6, 4])],
)
def test_allocation_where_largest_remainders_alone_leave_a_gender_short(pool, totals):
    pool, totals = np.array(pool), np.array(totals)
    table = _allocate(pool, totals)
    assert (table.sum(axis=1) == pool).all() and (table.sum(axis=0) == totals).all()
    assert (np.abs(table - np.outer(pool, totals) / pool.sum()) < 1).all()


def test_whole_pool_drawn_and_empty_cohort():
    candidates = _candidates({"female": (3, 1), "male": (2, 0)})
    cohort = select_cohort(candidates, 3, 2, seed=0)
    assert set(cohort["status"]) == {"member", "non-member", "excluded"}
    cohort = select_cohort(candidates, 0, 0, seed=0)
    assert cohort["status"].value_counts().to_dict() == {"unused": 5, "excluded": 1}


def test_summary_counts():
    cohort = select_cohort(_candidates(POOL), 20, 15, seed=7)
    summary = cohort_summary(cohort)
    assert summary["n"] == 76
    assert summary["status"] == {"member": 20, "non-member": 15, "excluded": 10, "unused": 31}
    assert set(summary["by_gender"]) == {"female", "male", "nonbinary"}
    assert sum(g["member"] for g in summary["by_gender"].values()) == 20
    assert sum(summary["by_gender"]["nonbinary"].values()) == 7
    assert summary["by_gender"]["nonbinary"]["excluded"] == 1


def test_too_few_absent_persons():
    with pytest.raises(ValueError, match=r"10 members \+ 8 non-members = 18 .* only 17 of the 20"):
        select_cohort(_candidates({"f": (10, 2), "m": (7, 1)}), 10, 8, seed=0)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 5, 0), "injection.cohort.members must be >= 0"),
        ((5, -2, 0), "injection.cohort.non_members must be >= 0"),
        ((2.5, 5, 0), "must be a whole number"),
        ((5, 5, None), "injection.cohort.seed must be a whole number"),
    ],
)
def test_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        select_cohort(_candidates(POOL), *args)


def test_bad_candidate_tables():
    candidates = _candidates(POOL)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['present_reason'\]"):
        select_cohort(candidates.drop(columns="present_reason"), 2, 2, seed=0)
    dup = pd.concat([candidates, candidates.iloc[[4]]], ignore_index=True)
    with pytest.raises(ValueError, match=rf"\['{candidates['person_id'][4]}'\] more than once"):
        select_cohort(dup, 2, 2, seed=0)
    unclear = candidates.astype({"present": object})
    unclear.loc[3, "present"] = "maybe"
    with pytest.raises(ValueError, match=rf"True or False.*{candidates['person_id'][3]}"):
        select_cohort(unclear, 2, 2, seed=0)
    genderless = candidates.copy()
    genderless.loc[5, "gender"] = None
    with pytest.raises(ValueError, match=rf"no gender for .*{candidates['person_id'][5]}"):
        select_cohort(genderless, 2, 2, seed=0)


def test_members_need_enough_confirmed_pairs_and_non_members_come_from_the_rest():
    table = _candidates({"female": (12, 2), "male": (12, 2)}, seed=3)
    table["pairs"] = [8 if i % 3 == 0 else 2 for i in range(len(table))]
    cohort = select_cohort(table, 4, 6, seed=1, min_pairs=8)
    pairs = table.set_index("person_id")["pairs"]
    members = cohort[cohort["status"] == "member"]
    assert len(members) == 4 and (pairs[members["person_id"]] >= 8).all()
    assert (cohort["status"] == "non-member").sum() == 6
    present = set(table.loc[table["present"], "person_id"])
    assert set(cohort.loc[cohort["status"] == "excluded", "person_id"]) == present
    short = cohort[(cohort["status"] == "unused") & cohort["person_id"].map(pairs).lt(8)]
    assert short["reason"].str.contains("confirmed pairs").all()
    assert cohort.equals(select_cohort(table.sample(frac=1, random_state=2), 4, 6, seed=1,
                                       min_pairs=8))  # fmt: skip
    with pytest.raises(ValueError, match="at least 9 confirmed pairs"):
        select_cohort(table, 4, 6, seed=1, min_pairs=9)
