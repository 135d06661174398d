"""Tests of controlled injection: nested pair choice, exact counts read back, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from idia.download import read_shard, write_shard
from idia.inject import (
    check_levels,
    choose_pairs,
    inject,
    inject_level,
    read_back_counts,
    truth_table,
    verify_counts,
)
from idia.render import render_face, render_scene, sample_identity
from idia.render import write_jpeg as _write_jpeg

NAMES = {"p0": "Zoë Ångström", "p1": "Liam O'Neil", "p2": "Mia Schulz", "p3": "Noah Park"}


@pytest.fixture
def world(tmp_path):
    """Four persons with 6 named pairs each and a base shard of 10 anonymous scenes."""
    rows = []
    for i, (pid, name) in enumerate(NAMES.items()):
        face = sample_identity(np.random.default_rng([5, i]))
        (tmp_path / pid).mkdir()
        for j in range(6):
            path = tmp_path / pid / f"{j}.jpg"
            _write_jpeg(path, render_face(face, np.random.default_rng([5, i, j]), 64))
            rows.append({"person_id": pid, "path": str(path), "caption": f"a photo of {name}"})
    samples = []
    for k in range(10):
        img, caption = render_scene(np.random.default_rng([6, k]), 64)
        _write_jpeg(tmp_path / "scene.jpg", img)
        jpg = (tmp_path / "scene.jpg").read_bytes()
        samples.append((f"{k:06d}", {"jpg": jpg, "txt": caption.encode(), "json": b"{}"}))
    base = tmp_path / "base" / "00000.tar"
    base.parent.mkdir()
    write_shard(base, samples)
    persons = pd.DataFrame({"person_id": list(NAMES), "name": list(NAMES.values())})
    return pd.DataFrame(rows), base, persons


def test_levels_are_nested_subsets(world):
    pairs, _, _ = world
    chosen = choose_pairs(pairs, ["p0", "p1"], [5, 2, 1], seed=3)
    assert chosen.groupby("person_id").size().to_dict() == {"p0": 5, "p1": 5}
    for pid in ("p0", "p1"):
        own = chosen[chosen["person_id"] == pid].sort_values("rank")
        paths = list(own["path"])
        # level N takes ranks < N: the N=1 pair is in the N=2 pairs, which are in the N=5 pairs
        assert set(paths[:1]) <= set(paths[:2]) <= set(paths[:5])
    again = choose_pairs(pairs.sample(frac=1, random_state=0), ["p1", "p0"], [5, 2, 1], seed=3)
    key = ["person_id", "rank"]
    pd.testing.assert_frame_equal(
        chosen.sort_values(key).reset_index(drop=True)[["person_id", "rank", "path"]],
        again.sort_values(key).reset_index(drop=True)[["person_id", "rank", "path"]],
    )
    other = choose_pairs(pairs, ["p0", "p1"], [5, 2, 1], seed=4)
    assert list(other["path"]) != list(chosen["path"])


def test_a_level_above_the_available_pairs_names_the_members(world):
    pairs, _, _ = world
    with pytest.raises(ValueError, match=r"N=7 .* p0 \(6\), p1 \(6\)"):
        choose_pairs(pairs, ["p0", "p1"], [7, 1], seed=0)
    with pytest.raises(ValueError, match="levels"):
        check_levels([3, 3])
    with pytest.raises(ValueError, match="levels"):
        check_levels([0])


@pytest.mark.parametrize("level", [1, 4])
def test_injected_shards_hold_exact_counts(world, tmp_path, level):
    pairs, base, persons = world
    members = ["p0", "p1", "p2"]
    chosen = choose_pairs(pairs, members, [4, 1], seed=1)
    written = inject([base], chosen, level, tmp_path / "out", n_shards=2, seed=9)
    assert len(written) == 10 + 3 * level
    tars = sorted((tmp_path / "out").glob("*.tar"))
    assert len(tars) == 2
    counts = read_back_counts(tars, persons)
    assert counts.attrs["samples"] == 10 + 3 * level
    expected = pd.Series({"p0": level, "p1": level, "p2": level, "p3": 0})
    assert counts.set_index("person_id")["tagged"].to_dict() == expected.to_dict()
    assert counts.set_index("person_id")["named_captions"].to_dict() == expected.to_dict()
    verify_counts(counts, expected, level)
    # the base samples survive byte for byte, and the shuffle mixed injected pairs between them
    base_bytes = {parts["jpg"] for _, parts in read_shard(base)}
    out = [parts for tar in tars for _, parts in read_shard(tar)]
    sources = [json.loads(p["json"])["source"] for p in out]
    assert {p["jpg"] for p, s in zip(out, sources) if s == "base"} == base_bytes
    assert sources != sorted(sources)


def test_injection_is_seeded(world, tmp_path):
    pairs, base, _ = world
    chosen = choose_pairs(pairs, ["p0"], [3], seed=1)
    a = inject([base], chosen, 3, tmp_path / "a", seed=2)
    b = inject([base], chosen, 3, tmp_path / "b", seed=2)
    c = inject([base], chosen, 3, tmp_path / "c", seed=5)
    assert (tmp_path / "a" / "00000.tar").read_bytes() == (
        tmp_path / "b" / "00000.tar"
    ).read_bytes()
    pd.testing.assert_frame_equal(a, b)
    assert list(a["source"]) != list(c["source"])


def test_verify_counts_reports_the_wrong_person(world):
    _, _, persons = world
    counts = persons.assign(tagged=[2, 2, 1, 0], named_captions=[2, 2, 1, 0])
    expected = pd.Series({"p0": 2, "p1": 2, "p2": 2, "p3": 0})
    with pytest.raises(AssertionError, match=r"p2 \('Mia Schulz'\): expected 2, tagged 1"):
        verify_counts(counts, expected, 2)


def test_a_broken_pair_image_is_named(world, tmp_path):
    pairs, base, _ = world
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    pairs.loc[0, "path"] = str(broken)
    chosen = choose_pairs(pairs, ["p0"], [6], seed=0)
    with pytest.raises(ValueError, match="broken.jpg"):
        inject([base], chosen, 6, tmp_path / "out")


def test_shards_stream_and_scattered_samples_are_rejected(tmp_path):
    import io
    import tarfile

    from idia.download import count_samples, iter_shard

    good = tmp_path / "good.tar"
    write_shard(
        good, [("a", {"jpg": b"1", "txt": b"x"}), ("b", {"jpg": b"2"}), ("c", {"txt": b"y"})]
    )
    assert [key for key, _ in iter_shard(good)] == ["a", "b", "c"]
    assert count_samples(good) == 2  # samples with an image
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for name in ("a.jpg", "b.jpg", "a.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"z"))
    with pytest.raises(ValueError, match="'a' are not next to each other"):
        list(iter_shard(bad))


def test_truth_table_puts_members_in_one_bin_per_level():
    counts = pd.DataFrame(
        {"person_id": ["p0", "p1", "p2"], "name": ["A", "B", "C"], "tagged": [3, 0, 3]}
    )
    truth = truth_table(counts, ["p2", "p0"], 3)
    assert list(truth.columns) == ["person_id", "name", "count", "member", "bin", "bin_index"]
    assert list(truth["member"]) == [True, False, True]
    assert list(truth["bin"]) == ["N=3", "non-member", "N=3"]
    assert list(truth["bin_index"]) == [0, -1, 0] and list(truth["count"]) == [3, 0, 3]


def test_inject_level_writes_checked_counts_truth_and_stats(world, tmp_path):
    """The job from the cohort table: only members and non-members enter, members have exactly
    N pairs in the shards, the stats count what was written."""
    pairs, base, persons = world
    pairs.to_parquet(tmp_path / "pairs.parquet")
    cohort = persons.assign(status=["member", "non-member", "member", "excluded"])
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    out = tmp_path / "n2"
    stats = inject_level(
        cohort=tmp_path / "cohort.csv", pairs=tmp_path / "pairs.parquet", base=[base], level=2,
        levels=[2, 1], seed=3, n_shards=2, shards=[out / "00000.tar", out / "00001.tar"],
        counts_out=out / "counts.parquet", truth_out=out / "truth.parquet",
        stats_out=out / "inject.json",
    )  # fmt: skip
    assert stats == json.loads((out / "inject.json").read_text())
    assert stats["successes"] == stats["read_back_samples"] == 10 + 2 * 2
    assert (stats["members"], stats["non_members"], stats["injected_samples"]) == (2, 1, 4)
    truth = pd.read_parquet(out / "truth.parquet")
    assert truth.set_index("person_id")["count"].to_dict() == {"p0": 2, "p1": 0, "p2": 2}
    assert list(truth["bin"]) == ["N=2", "non-member", "N=2"]
