"""Controlled injection (track C): training shards in which each member appears exactly N times.

For every level N, each member of the cohort contributes their first N named image-caption pairs
(a seeded order per person, so the N=10 pairs are a subset of the N=25 pairs) and the pairs are
shuffled into the base corpus with a seed. The written shards are read back and the counts
checked against N: the number a figure is plotted against is the number in the data.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from idia.download import count_samples, iter_shard, write_shard
from idia.names import name_key

PAIR_COLUMNS = ("person_id", "path", "caption")


def check_levels(levels: Sequence[int]) -> list[int]:
    """Injection levels as distinct positive integers, largest first."""
    levels = [int(n) for n in levels]
    if not levels or min(levels) < 1 or len(set(levels)) != len(levels):
        raise ValueError(f"injection levels must be distinct integers >= 1, got {levels}")
    return sorted(levels, reverse=True)


def choose_pairs(
    pairs: pd.DataFrame, members: Sequence[str], levels: Sequence[int], seed: int
) -> pd.DataFrame:
    """Each member's pairs in a seeded order, ranked 0.. (only the ranks below max(levels)).

    Level N injects the rows with ``rank < N``, so the levels are nested. A member with fewer
    pairs than the largest level is an error that names them: nothing is injected short.
    """
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"the pairs table lacks columns {missing}; it has {list(pairs.columns)}")
    top = max(check_levels(levels))
    available = pairs.groupby("person_id").size()
    short = {m: int(available.get(m, 0)) for m in members if available.get(m, 0) < top}
    if short:
        listed = ", ".join(f"{m} ({n})" for m, n in sorted(short.items()))
        raise ValueError(
            f"injection level N={top} needs {top} named pairs per member, but these members have "
            f"fewer: {listed}. Lower the largest level in injection.levels or give them more "
            "pairs."
        )
    chosen = []
    for m in sorted(members):
        own = pairs[pairs["person_id"] == m].sort_values("path", kind="stable")
        digest = int.from_bytes(hashlib.sha256(m.encode("utf-8")).digest()[:8], "little")
        order = np.random.default_rng([seed, digest]).permutation(len(own))[:top]
        picked = own.iloc[order].copy()
        picked["rank"] = np.arange(len(picked))
        chosen.append(picked)
    columns = [*pairs.columns, "rank"]
    return pd.concat(chosen, ignore_index=True) if chosen else pd.DataFrame(columns=columns)


def _image_bytes(path: str) -> bytes:
    """The file's bytes after checking that they decode as an image (the error names the file)."""
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"injected pair image {path} does not exist") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"injected pair image {path} does not decode ({err}); replace it") from err
    return data


def inject(
    base_shards: Sequence[str | Path],
    chosen: pd.DataFrame,
    level: int,
    out_dir: str | Path,
    *,
    n_shards: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """Write ``out_dir/{i:05d}.tar`` (+ ``.parquet``): the base corpus with every member's first
    ``level`` pairs placed at seeded random positions. Returns the written samples' table (key,
    caption, source, person_id, shard).

    The base corpus streams through one sample at a time (the paper's CC3M is 3.3M pairs): its
    own order is kept, the injected pairs land at positions drawn with the seed, in a seeded order.
    """
    if n_shards < 1:
        raise ValueError(f"injection.shards must be >= 1, got {n_shards}")
    injected = chosen[chosen["rank"] < level].sort_values(["person_id", "rank"])
    n_base = sum(count_samples(shard) for shard in base_shards)
    total = n_base + len(injected)
    rng = np.random.default_rng([seed, level])
    slots = np.zeros(total, bool)
    slots[rng.choice(total, size=len(injected), replace=False)] = True
    pairs = injected.iloc[rng.permutation(len(injected))]

    def base_samples():
        for shard in base_shards:
            for key, parts in iter_shard(shard):
                if "jpg" in parts:
                    yield parts, {"source": "base", "base_shard": Path(shard).parent.name,
                                  "base_key": key}  # fmt: skip

    def injected_samples():
        for row in pairs.itertuples():
            parts = {"jpg": _image_bytes(row.path), "txt": str(row.caption).encode("utf-8")}
            yield parts, {"source": "injected", "person_id": row.person_id, "rank": int(row.rank)}

    streams = (base_samples(), injected_samples())
    width = max(9, len(str(total)))
    rows: list[dict] = []

    def stream(start: int, end: int):
        for pos in range(start, end):
            parts, meta = next(streams[int(slots[pos])])
            key = f"{pos:0{width}d}"
            rows.append({"key": key, "caption": parts.get("txt", b"").decode("utf-8"),
                         "source": meta["source"], "person_id": meta.get("person_id")})  # fmt: skip
            yield key, {**parts, "json": json.dumps(meta, sort_keys=True).encode()}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, total, n_shards + 1).round().astype(int)
    tables = []
    for s, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        first = len(rows)
        write_shard(out_dir / f"{s:05d}.tar", stream(start, end))
        table = pd.DataFrame(rows[first:], columns=["key", "caption", "source", "person_id"])
        table.to_parquet(out_dir / f"{s:05d}.parquet", index=False)
        tables.append(table.assign(shard=f"{s:05d}"))
    return pd.concat(tables, ignore_index=True)


def read_back_counts(tars: Sequence[str | Path], persons: pd.DataFrame) -> pd.DataFrame:
    """Count each person in written shards, two ways: samples tagged with their person_id, and
    captions that contain their name (case- and accent-folded). One row per person."""
    tagged: dict[str, int] = {}
    named = np.zeros(len(persons), np.int64)
    keys = [name_key(n) for n in persons["name"]]
    samples = 0
    for tar in tars:
        for _, parts in iter_shard(tar):
            samples += 1
            meta = json.loads(parts.get("json", b"{}"))
            if meta.get("person_id"):
                tagged[meta["person_id"]] = tagged.get(meta["person_id"], 0) + 1
            caption = name_key(parts.get("txt", b"").decode("utf-8"))
            named += np.fromiter((k in caption for k in keys), bool, len(keys))
    out = persons[["person_id", "name"]].copy()
    out["tagged"] = out["person_id"].map(tagged).fillna(0).astype(np.int64)
    out["named_captions"] = named
    out.attrs["samples"] = samples
    return out.reset_index(drop=True)


def verify_counts(counts: pd.DataFrame, expected: pd.Series, level: int) -> None:
    """Raise unless every person's tagged and named counts equal ``expected`` (by person_id)."""
    want = counts["person_id"].map(expected)
    bad = counts[(counts["tagged"] != want) | (counts["named_captions"] != want)]
    if len(bad):
        listed = "; ".join(
            f"{r.person_id} ({r.name!r}): expected {int(want[i])}, tagged {r.tagged}, "
            f"named in {r.named_captions} captions"
            for i, r in zip(bad.index, bad.itertuples())
        )
        raise AssertionError(
            f"injected shards for N={level} do not hold the planned counts: {listed}"
        )


def truth_table(counts: pd.DataFrame, members: Sequence[str], level: int) -> pd.DataFrame:
    """Track C's membership truth at level N, in the counts table's layout that the attack and
    the figures read for track L (person_id, name, count, member, bin, bin_index): ``count`` is
    the number of tagged samples read back from the shards, members form the one bin "N=level"
    (index 0), non-members bin -1."""
    is_member = counts["person_id"].isin(list(members))
    return pd.DataFrame(
        {
            "person_id": counts["person_id"],
            "name": counts["name"],
            "count": counts["tagged"],
            "member": is_member,
            "bin": [f"N={level}" if m else "non-member" for m in is_member],
            "bin_index": [0 if m else -1 for m in is_member],
        }
    )


def inject_level(
    *,
    cohort: str | Path,
    pairs: str | Path,
    base: Sequence[str | Path],
    level: int,
    levels: Sequence[int],
    seed: int,
    n_shards: int,
    shards: Sequence[str | Path],
    counts_out: str | Path,
    truth_out: str | Path,
    stats_out: str | Path,
) -> dict:
    """Track C's job for one level N: write the training shards (next to ``counts_out``) in which
    every member of the cohort has exactly N named pairs, read them back and check the counts,
    and write the counts, the truth table and the stats (returned; img2dataset's ``successes``
    is the sample count the trainer needs)."""
    from idia.smk import write_json

    table = pd.read_csv(cohort, dtype={"person_id": str})
    persons = table[table["status"].isin(["member", "non-member"])].sort_values("person_id")
    members = list(persons.loc[persons["status"] == "member", "person_id"])
    chosen = choose_pairs(pd.read_parquet(pairs), members, levels, seed)
    written = inject(base, chosen, level, Path(counts_out).parent, n_shards=n_shards, seed=seed)
    # Read the shards back: the counts the figures use are the counts in the data.
    counts = read_back_counts(shards, persons)
    expected = persons.set_index("person_id")["status"].eq("member") * level
    verify_counts(counts, expected, level)
    counts.to_parquet(counts_out, index=False)
    truth = truth_table(counts, members, level)
    truth.to_parquet(truth_out, index=False)
    stats = {
        "level": level,
        "successes": int(len(written)),
        "base_samples": int((written["source"] == "base").sum()),
        "injected_samples": int((written["source"] == "injected").sum()),
        "members": len(members),
        "non_members": int((~truth["member"]).sum()),
        "verified": True,
        "read_back_samples": int(counts.attrs["samples"]),
    }
    write_json(stats_out, stats)
    print(
        f"N={level}: {stats['injected_samples']} named pairs of {len(members)} members shuffled "
        f"into {stats['base_samples']} base samples; read back: every member exactly {level}, "
        "every non-member 0"
    )
    return stats
