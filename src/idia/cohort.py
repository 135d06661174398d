"""The cohort of the controlled-injection experiment: who is injected, who is held out.

Track C injects members into a base corpus and compares the attack on them with non-members
that no training caption names. Both must be absent from the base corpus: a person it already
shows would be a member whatever we inject, so the face filter's present persons are excluded,
with its reason. From the absent pool, members and non-members are drawn at random with a seed,
stratified by gender: each gender takes the same share of members, of non-members and of the
unused rest as it has of the pool, rounded so that every count is its exact share rounded down
or up and all totals are exact. The draw does not depend on the order of the input rows.
"""

from __future__ import annotations

import numbers
from collections import deque

import numpy as np
import pandas as pd

__all__ = ["STATUSES", "cohort_summary", "select_cohort"]

STATUSES = ("member", "non-member", "excluded", "unused")
CANDIDATE_COLUMNS = ["person_id", "name", "gender", "present", "present_reason"]
COHORT_COLUMNS = ["person_id", "name", "gender", "status", "reason"]
UNUSED_REASON = "absent but not drawn: the cohort is full"


def _check_size(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{key} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{key} must be >= 0, got {value}; set it in the config")
    return int(value)


def _ids(frame: pd.DataFrame, mask: pd.Series, limit: int = 10) -> str:
    ids = frame.loc[mask, "person_id"].tolist()
    return repr(ids[:limit]) + (f" ... ({len(ids)} in all)" if len(ids) > limit else "")


def _check_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    """The candidates sorted by person_id, so the draw is independent of the row order."""
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise ValueError(
            f"the candidates table lacks column(s) {missing}; it has {list(candidates.columns)}"
        )
    table = candidates[CANDIDATE_COLUMNS]
    if table["person_id"].isna().any():
        raise ValueError("the candidates table has missing person_id values")
    dup = table["person_id"].duplicated(keep=False)
    if dup.any():
        raise ValueError(
            f"the candidates table lists person_id(s) {sorted(set(table.loc[dup, 'person_id']))} "
            "more than once; each identity needs one row"
        )
    unclear = ~table["present"].isin([True, False])
    if unclear.any():
        raise ValueError(
            f"'present' must be True or False, but is not for person_id(s) "
            f"{_ids(table, unclear)}; rerun the presence decision"
        )
    if table["gender"].isna().any():
        raise ValueError(
            f"no gender for person_id(s) {_ids(table, table['gender'].isna())}; the draw is "
            "stratified by gender — give them one (e.g. 'unknown') in the identity table"
        )
    table = table.sort_values("person_id", kind="stable", ignore_index=True)
    return table.astype({"present": bool})


def _augment(
    up: np.ndarray, allowed: np.ndarray, row_need: np.ndarray, col_need: np.ndarray
) -> None:
    """Move round-ups along one alternating path so that a short row gains one and a short
    column gains one (Ford–Fulkerson on the bipartite graph rows × columns)."""
    rows, cols = up.shape
    came_from_col: dict[int, int | None] = {g: None for g in range(rows) if row_need[g] > 0}
    came_from_row: dict[int, int] = {}  # column -> row
    queue = deque(came_from_col)
    while queue:
        g = queue.popleft()
        for c in range(cols):
            if not allowed[g, c] or up[g, c] or c in came_from_row:
                continue
            came_from_row[c] = g
            if col_need[c] > 0:
                col_need[c] -= 1
                step: int | None = c
                while step is not None:  # round up (g, step), round down (g, where g came from)
                    g = came_from_row[step]
                    up[g, step] = True
                    step = came_from_col[g]
                    if step is not None:
                        up[g, step] = False
                row_need[g] -= 1
                return
            for g2 in range(rows):
                if up[g2, c] and g2 not in came_from_col:
                    came_from_col[g2] = c
                    queue.append(g2)
    raise RuntimeError("no stratified allocation found; this is a bug in idia.cohort")


def _allocate(pool: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Integer table [gender, status] for the shares pool[g] * totals[c] / sum(pool).

    Every cell is its share rounded down or up, rows sum to ``pool`` and columns to ``totals``
    (which sum to ``sum(pool)``); such a table always exists (controlled rounding of a two-way
    table). The largest remainders are rounded up first; augmenting paths repair the rows that
    this leaves short.
    """
    table, remainder = np.divmod(np.outer(pool, totals), pool.sum())
    row_need = pool - table.sum(axis=1)
    col_need = totals - table.sum(axis=0)
    allowed = remainder > 0
    up = np.zeros(table.shape, dtype=bool)
    for flat in np.argsort(-remainder, axis=None, kind="stable"):
        g, c = np.unravel_index(flat, table.shape)
        if allowed[g, c] and row_need[g] > 0 and col_need[c] > 0:
            up[g, c] = True
            row_need[g] -= 1
            col_need[c] -= 1
    while row_need.any():
        _augment(up, allowed, row_need, col_need)
    return table + up


def select_cohort(
    candidates: pd.DataFrame,
    n_members: int,
    n_non_members: int,
    seed: int,
    min_pairs: int | None = None,
) -> pd.DataFrame:
    """Draw members and non-members from the candidates absent from the base corpus.

    ``candidates`` has columns person_id, name, gender, present (bool) and present_reason.
    Returns every candidate, sorted by person_id, with person_id, name, gender, ``status``
    (member, non-member, excluded: present in the base corpus, unused: absent but not drawn)
    and a readable ``reason``. With ``min_pairs``, ``candidates`` also has ``pairs`` (the
    person's confirmed pairs to inject): only those with at least ``min_pairs`` can be members.
    """
    n_members = _check_size(n_members, "injection.cohort.members")
    n_non_members = _check_size(n_non_members, "injection.cohort.non_members")
    seed = _check_size(seed, "injection.cohort.seed")
    table = _check_candidates(candidates)
    if min_pairs is not None:
        pairs = candidates.set_index("person_id")["pairs"]
        return _select_with_pairs(
            table, pairs.reindex(table["person_id"]).fillna(0).astype(int).to_numpy(),
            n_members, n_non_members, seed, min_pairs,
        )  # fmt: skip
    absent = ~table["present"]
    n_absent = int(absent.sum())
    wanted = n_members + n_non_members
    if n_absent < wanted:
        raise ValueError(
            f"the cohort needs {n_members} members + {n_non_members} non-members = {wanted} "
            f"identities absent from the base corpus, but only {n_absent} of the "
            f"{len(table)} candidates are ({len(table) - n_absent} are present); lower "
            "injection.cohort.members / injection.cohort.non_members in the config, or add "
            "candidate identities"
        )
    pool = table.loc[absent, "gender"].value_counts().sort_index()
    counts = _allocate(
        pool.to_numpy(np.int64), np.array([n_members, n_non_members, n_absent - wanted])
    )
    rng = np.random.default_rng(seed)
    status = np.full(len(table), "excluded", dtype=object)
    for gender, (members, non_members, _) in zip(pool.index, counts):
        rows = np.flatnonzero(absent & (table["gender"] == gender))
        rows = rows[rng.permutation(len(rows))]
        status[rows[:members]] = "member"
        status[rows[members : members + non_members]] = "non-member"
        status[rows[members + non_members :]] = "unused"
    reasons = {
        s: f"absent from the base corpus; drawn as {s} (gender-stratified, seed {seed})"
        for s in ("member", "non-member")
    }
    reasons["unused"] = UNUSED_REASON
    cohort = table[["person_id", "name", "gender"]].assign(status=status)
    present_reason = table["present_reason"].fillna("present in the base corpus")
    cohort["reason"] = cohort["status"].map(reasons).fillna(present_reason)
    return cohort[COHORT_COLUMNS]


def _draw(table, mask, n_take, rng) -> np.ndarray:
    """Rows of ``mask`` drawn at random, ``n_take`` in all, gender-stratified."""
    pool = table.loc[mask, "gender"].value_counts().sort_index()
    counts = _allocate(pool.to_numpy(np.int64), np.array([n_take, int(mask.sum()) - n_take]))
    taken = []
    for gender, (take, _) in zip(pool.index, counts):
        rows = np.flatnonzero(mask & (table["gender"] == gender).to_numpy())
        taken += rows[rng.permutation(len(rows))][:take].tolist()
    return np.array(sorted(taken), dtype=np.int64)


def _select_with_pairs(table, pairs, n_members, n_non_members, seed, min_pairs) -> pd.DataFrame:
    """Members from the absent persons with enough pairs, then non-members from the rest."""
    absent = ~table["present"].to_numpy()
    eligible = absent & (pairs >= min_pairs)
    if eligible.sum() < n_members:
        raise ValueError(
            f"the cohort needs {n_members} members with at least {min_pairs} confirmed pairs "
            f"each (the largest injection level), but only {int(eligible.sum())} absent "
            "identities have that many; lower injection.cohort.members or the largest level in "
            "injection.levels, or lower injection.pairs.min_confidence"
        )
    if absent.sum() - n_members < n_non_members:
        raise ValueError(
            f"the cohort needs {n_members} + {n_non_members} identities absent from the base "
            f"corpus, but only {int(absent.sum())} of {len(table)} are; lower "
            "injection.cohort.members / injection.cohort.non_members"
        )
    rng = np.random.default_rng(seed)
    status = np.full(len(table), "excluded", dtype=object)
    status[absent] = "unused"
    status[_draw(table, eligible, n_members, rng)] = "member"
    rest = absent & (status != "member")
    status[_draw(table, rest, n_non_members, rng)] = "non-member"
    reasons = []
    for s, p, present_reason in zip(status, pairs, table["present_reason"]):
        if s == "excluded":
            reasons.append(present_reason if isinstance(present_reason, str)
                           else "present in the base corpus")  # fmt: skip
        elif s == "unused" and p < min_pairs:
            reasons.append(f"absent, but only {p} confirmed pairs (< {min_pairs}): not drawn")
        elif s == "unused":
            reasons.append(UNUSED_REASON)
        else:
            reasons.append(f"absent from the base corpus, {p} confirmed pairs; drawn as {s} "
                           f"(gender-stratified, seed {seed})")  # fmt: skip
    cohort = table[["person_id", "name", "gender"]].assign(status=status, reason=reasons)
    return cohort[COHORT_COLUMNS]


def cohort_summary(cohort: pd.DataFrame) -> dict:
    """Counts per status, and per gender and status (every status listed, zeros included)."""
    missing = {"gender", "status"} - set(cohort.columns)
    if missing:
        raise ValueError(f"the cohort table lacks column(s) {sorted(missing)}")
    unknown = sorted(set(cohort["status"]) - set(STATUSES))
    if unknown:
        raise ValueError(f"unknown status(es) {unknown} in the cohort table; known: {STATUSES}")
    by_gender = (
        pd.crosstab(cohort["gender"], cohort["status"])
        .reindex(columns=list(STATUSES), fill_value=0)
        .astype(int)
    )
    return {
        "n": len(cohort),
        "status": {s: int((cohort["status"] == s).sum()) for s in STATUSES},
        "by_gender": {
            str(g): {s: int(n) for s, n in row.items()} for g, row in by_gender.iterrows()
        },
    }
