import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from idia.names import name_key
from idia.world import (
    DEFAULT_CAPTION_TEMPLATES,
    occurrence_counts,
    render_face,
    render_scene,
    sample_identity,
)
from idia.world import build_world as _build_world

SMALL = {
    "seed": 5,
    "n_identities": 10,
    "n_members": 5,
    "attack_photos": 3,
    "occurrences": {"min": 1, "max": 6},
    "n_generic": 25,
    "image_size": 64,
    "n_broken_urls": 3,
    "n_shards": 3,
    "caption_templates": DEFAULT_CAPTION_TEMPLATES,
}


def build_world(outdir, **overrides):
    return _build_world(outdir, **{**SMALL, **overrides})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    build_world(out)
    return out


def _corpus(out: Path) -> pd.DataFrame:
    parts = sorted((out / "corpus" / "urls").glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def test_build_is_deterministic(world, tmp_path):
    again = tmp_path / "again"
    build_world(again)
    files = sorted(p.relative_to(world) for p in world.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "identities.parquet":  # holds photo_dir paths under each outdir
            continue
        assert (world / rel).read_bytes() == (again / rel).read_bytes(), rel
    a = pd.read_parquet(world / "identities.parquet").drop(columns="photo_dir")
    b = pd.read_parquet(again / "identities.parquet").drop(columns="photo_dir")
    pd.testing.assert_frame_equal(a, b)


def test_other_seed_gives_other_world(world, tmp_path):
    build_world(tmp_path, seed=6)
    assert _corpus(tmp_path)["caption"].tolist() != _corpus(world)["caption"].tolist()


def test_tables_and_photos(world):
    ids = pd.read_parquet(world / "identities.parquet")
    assert ids["person_id"].tolist() == [f"p{i:04d}" for i in range(10)]
    assert set(ids["gender"]) == {"female", "male"}
    assert (ids["source"] == "world").all()
    for row in ids.itertuples():
        photos = sorted(Path(row.photo_dir).glob("*.jpg"))
        assert (
            [p.name for p in photos]
            == ["000.jpg", "001.jpg", "002.jpg"]
            == [f"{k:03d}.jpg" for k in range(row.n_photos)]
        )
    summary = json.loads((world / "world.json").read_text())
    assert summary["counts"]["members"] == 5
    assert summary["counts"]["corpus_pairs"] == len(_corpus(world))


def test_caption_counts_match_truth(world):
    truth = pd.read_parquet(world / "truth.parquet")
    corpus = _corpus(world)
    captions = [name_key(c) for c in corpus["caption"]]
    assert truth["member"].sum() == 5
    counts = [sum(name_key(n) in c for c in captions) for n in truth["name"]]
    assert counts == truth["occurrences"].tolist()
    assert (truth.loc[~truth["member"], "occurrences"] == 0).all()
    assert (truth.loc[truth["member"], "occurrences"] >= 1).all()
    assert truth["occurrences"].max() == 6
    genders = pd.read_parquet(world / "identities.parquet").set_index("person_id")["gender"]
    member_genders = genders[truth.loc[truth["member"], "person_id"]].value_counts()
    assert member_genders.max() - member_genders.min() <= 1


def test_corpus_images_and_broken_urls(world):
    corpus = _corpus(world)
    assert corpus["key"].is_unique
    exists = [(world / "corpus" / "images" / p).is_file() for p in corpus["path"]]
    assert len(exists) - sum(exists) == 3
    truth = pd.read_parquet(world / "truth.parquet")
    assert len(corpus) == 25 + 3 + truth["occurrences"].sum()
    sizes = [len(pd.read_parquet(p)) for p in sorted((world / "corpus" / "urls").glob("*"))]
    assert len(sizes) == 3 and sum(sizes) == len(corpus) and max(sizes) - min(sizes) <= 1


def test_occurrences_cover_the_range():
    counts = occurrence_counts(60, 1, 40)
    assert counts.min() == 1 and counts.max() == 40
    for lo, hi in [(1, 2), (3, 6), (7, 15), (16, 40)]:
        assert ((counts >= lo) & (counts <= hi)).sum() >= 5


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"n_members": 11}, "n_members"),
        ({"attack_photos": 0}, "attack_photos"),
        ({"caption_templates": ["a photo of someone"]}, "name"),
        ({"occurrences": {"min": 5, "max": 2}}, "min"),
        ({"n_shards": 0}, "n_shards"),
    ],
)
def test_invalid_arguments(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_world(tmp_path, **overrides)


def test_identities_are_visually_distinct():
    """Photos of one identity are closer to each other than to another identity's photos."""
    n_id, n_ph = 12, 6
    feats = np.zeros((n_id, n_ph, 32 * 32 * 3), np.float32)
    for i in range(n_id):
        params = sample_identity(np.random.default_rng([7, i]))
        for j in range(n_ph):
            img = render_face(params, np.random.default_rng([7, i, j]), 64)
            feats[i, j] = img[16:48, 16:48].reshape(-1) / 255.0  # the face centre
    within, between = [], []
    for i in range(n_id):
        for k in range(n_id):
            d = np.abs(feats[i][:, None] - feats[k][None]).mean(axis=-1)
            (within if i == k else between).append(
                d[~np.eye(n_ph, dtype=bool)].mean() if i == k else d.mean()
            )
    assert np.mean(within) < np.mean(between)


def test_render_face_is_deterministic_and_varies():
    params = sample_identity(np.random.default_rng(1))
    a = render_face(params, np.random.default_rng(2), 112)
    assert a.shape == (112, 112, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_face(params, np.random.default_rng(2), 112))
    assert not np.array_equal(a, render_face(params, np.random.default_rng(3), 112))


def test_scene_captions_have_varied_vocabulary():
    captions = [render_scene(np.random.default_rng([4, k]), 64)[1] for k in range(300)]
    words = set(" ".join(captions).split())
    colours = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown"}
    colours |= {"black", "white", "gray", "cyan"}
    assert len(words & colours) >= 10
    shapes = {"circle", "square", "triangle", "star", "ring", "cross", "diamond", "hexagon"}
    assert len({w.rstrip("s") for w in words} & shapes) + ("crosses" in words) >= 8
    assert {"two", "three", "left", "right"} <= words


def test_base_corpus_is_anonymized_and_plants_the_chosen_identities(tmp_path):
    from idia.world import SCENE_SHAPES, build_base

    summary = build_base(
        tmp_path, seed=4, n_identities=10, image_size=64,
        caption_templates=["a photo of {name}", "{name} in {city}"], n_generic=12, n_extras=3,
        extra_photos=2, n_planted=2, planted_photos=3, pairs_per_person=5, n_shards=2,
        eval_per_class=2, n_eval_pairs=4,
    )  # fmt: skip
    urls = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "urls").glob("*.parquet"))])
    assert len(urls) == 12 + 3 * 2 + 2 * 3 == summary["base_pairs"]
    assert all((tmp_path / "images" / p).is_file() for p in urls["path"])
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    assert sorted(truth.loc[truth["planted"], "person_id"]) == summary["planted_identities"]
    assert truth["base_photos"].sum() == 6
    # nobody is named in the base corpus; everyone is named in each of their own pairs
    keys = [name_key(n) for n in truth["name"]]
    assert not any(k in name_key(c) for c in urls["caption"] for k in keys)
    pairs = pd.read_parquet(tmp_path / "pairs.parquet")
    assert pairs.groupby("person_id").size().eq(5).all() and len(pairs) == 50
    names = truth.set_index("person_id")["name"]
    assert all(name_key(names[r.person_id]) in name_key(r.caption) for r in pairs.itertuples())
    classes = sorted(d.name for d in (tmp_path / "eval" / "classes").iterdir())
    assert classes == sorted(SCENE_SHAPES)
    assert len(pd.read_parquet(tmp_path / "eval" / "pairs.parquet")) == 4
    again = tmp_path / "again"
    build_base(
        again, seed=4, n_identities=10, image_size=64,
        caption_templates=["a photo of {name}", "{name} in {city}"], n_generic=12, n_extras=3,
        extra_photos=2, n_planted=2, planted_photos=3, pairs_per_person=5, n_shards=2,
        eval_per_class=2, n_eval_pairs=4,
    )  # fmt: skip
    first = sorted((tmp_path / "images").iterdir())
    assert [p.read_bytes() for p in first] == [
        (again / "images" / p.name).read_bytes() for p in first
    ]


def test_base_corpus_rejects_impossible_settings(tmp_path):
    from idia.world import build_base

    args = dict(
        seed=1, n_identities=3, image_size=64, caption_templates=["{name}"], n_generic=2,
        n_extras=0, extra_photos=0, planted_photos=1, pairs_per_person=2, n_shards=1,
        eval_per_class=1, n_eval_pairs=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match="n_planted=4 exceeds the 3 identities"):
        build_base(tmp_path, n_planted=4, **args)
