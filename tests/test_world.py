import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idia.facescrub import person_id, read_facescrub, read_url_lists
from idia.names import name_key, read_census_surnames, read_ssa_first_names
from idia.render import DEFAULT_CAPTION_TEMPLATES, render_face, render_scene, sample_identity
from idia.sources import read_checksums
from idia.world import BASE_HOST, WORLD_HOST, occurrence_counts
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
    "url_list_identities": 2,
    "faults": {"dead_urls": 1, "bad_hashes": 1, "bad_boxes": 1, "malformed_lines": 1,
               "sparse_identities": 1},
}  # fmt: skip


def build_world(outdir, **overrides):
    return _build_world(outdir, **{**SMALL, **overrides})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    build_world(out)
    return out


def _corpus(out: Path) -> pd.DataFrame:
    parts = sorted((out / "web" / "laion").glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def _served(out: Path, url: str) -> Path:
    prefix = f"http://{WORLD_HOST}/"
    assert url.startswith(prefix), url
    return out / "web" / url[len(prefix):]


def _listed(out: Path) -> tuple[pd.DataFrame, list[dict]]:
    lists = [out / "facescrub" / f for f in ("facescrub_actors.txt", "facescrub_actresses.txt")]
    parts, bad = [], []
    for path in lists:
        rows, problems = read_facescrub(path)
        parts.append(rows)
        bad += problems
    rows, problems = read_url_lists(out / "extra")
    return pd.concat([*parts, rows], ignore_index=True), bad + problems


def test_build_is_deterministic(world, tmp_path):
    again = tmp_path / "again"
    build_world(again)
    files = sorted(p.relative_to(world) for p in world.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (world / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_other_seed_gives_other_world(world, tmp_path):
    build_world(tmp_path, seed=6)
    assert _corpus(tmp_path)["TEXT"].tolist() != _corpus(world)["TEXT"].tolist()


def test_identities_are_published_in_the_facescrub_and_url_list_formats(world):
    truth = pd.read_parquet(world / "truth.parquet")
    rows, bad = _listed(world)
    assert truth["person_id"].tolist() == [person_id(n) for n in truth["name"]]
    assert set(rows["gender"]) == {"female", "male"}
    assert [b["reason"].split(":")[0] for b in bad] == ["malformed line"]
    by_name = rows.groupby("name")
    for name in truth["name"]:  # every study identity has its attack photos, served
        good = by_name.get_group(name)
        good = good[good["url"].map(lambda u: _served(world, u).is_file())]
        assert len(good) >= 3
    assert (truth["listed_in"] == "extra").sum() == 2
    extra = rows[rows["source"].str.startswith("urls:")]
    assert set(extra["name"]) == set(truth.loc[truth["listed_in"] == "extra", "name"])
    listed = rows[rows["source"].str.startswith("facescrub:")]
    summary = json.loads((world / "world.json").read_text())
    sparse = summary["counts"]["sparse_identities"]
    assert len(sparse) == 1 and (listed["name"] == sparse[0]).sum() == 2
    assert sparse[0] not in set(truth["name"])
    # hashes and boxes: right for every photo but the planted faults
    outcomes = {"dead": 0, "hash": 0, "box": 0}
    for row in listed.itertuples():
        path = _served(world, row.url)
        if not path.is_file():
            outcomes["dead"] += 1
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != row.sha256:
            outcomes["hash"] += 1
            continue
        width, height = Image.open(path).size
        if row.x2 > width or row.y2 > height:
            outcomes["box"] += 1
            continue
        assert 0 <= row.x1 < row.x2 <= width and 0 <= row.y1 < row.y2 <= height
        assert (row.x2 - row.x1) * (row.y2 - row.y1) > 0.15 * width * height  # a face-sized box
    assert outcomes == {"dead": 1, "hash": 1, "box": 1}
    assert summary["counts"]["members"] == 5
    assert summary["counts"]["corpus_pairs"] == len(_corpus(world))


def test_metadata_and_name_lists_are_pinned(world):
    pins = read_checksums(world / "web.sha256")
    assert set(pins) == {"part-00000.parquet", "part-00001.parquet", "part-00002.parquet",
                         "baby-names.csv", "census_surnames.csv"}  # fmt: skip
    for name, pin in pins.items():
        path = next((world / "web").rglob(name))
        assert pin == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    female, male = read_ssa_first_names(world / "web" / "names" / "baby-names.csv", 1000)
    surnames = read_census_surnames(world / "web" / "names" / "census_surnames.csv", 1000)
    assert len(female) > 100 and len(male) > 100 and len(surnames) > 100
    assert female[0] != male[0] and surnames[0][0].isupper() and surnames[0][1:].islower()


def test_caption_counts_match_truth(world):
    truth = pd.read_parquet(world / "truth.parquet")
    corpus = _corpus(world)
    assert list(corpus.columns) == ["SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE",
                                    "NSFW", "similarity"]  # fmt: skip
    captions = [name_key(c) for c in corpus["TEXT"]]
    assert truth["member"].sum() == 5
    counts = [sum(name_key(n) in c for c in captions) for n in truth["name"]]
    assert counts == truth["occurrences"].tolist()
    assert (truth.loc[~truth["member"], "occurrences"] == 0).all()
    assert (truth.loc[truth["member"], "occurrences"] >= 1).all()
    assert truth["occurrences"].max() == 6
    rows, _ = _listed(world)
    genders = rows.drop_duplicates("name").set_index("name")["gender"]
    member_genders = genders[truth.loc[truth["member"], "name"]].value_counts()
    assert member_genders.max() - member_genders.min() <= 1


def test_corpus_images_and_broken_urls(world):
    corpus = _corpus(world)
    assert corpus["SAMPLE_ID"].is_unique
    exists = [_served(world, u).is_file() for u in corpus["URL"]]
    assert len(exists) - sum(exists) == 3
    truth = pd.read_parquet(world / "truth.parquet")
    assert len(corpus) == 25 + 3 + truth["occurrences"].sum()
    parts = sorted((world / "web" / "laion").glob("part-*.parquet"))
    sizes = [len(pd.read_parquet(p)) for p in parts]
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
        ({"url_list_identities": 11}, "url_list_identities"),
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
    from idia.download import read_caption_tsv
    from idia.world import SCENE_SHAPES, build_base

    summary = build_base(
        tmp_path, seed=4, n_identities=10, image_size=64,
        caption_templates=["a photo of {name}", "{name} in {city}"], n_generic=12, n_extras=3,
        extra_photos=2, n_planted=2, planted_photos=3,
        eval_per_class=2, n_eval_pairs=4,
    )  # fmt: skip
    urls = read_caption_tsv(tmp_path / "web" / "cc3m" / "Train_GCC-training.tsv")
    assert len(urls) == 12 + 3 * 2 + 2 * 3 == summary["base_pairs"]
    prefix = f"http://{BASE_HOST}/"
    assert all((tmp_path / "web" / u.removeprefix(prefix)).is_file() for u in urls["url"])
    published = {"Train_GCC-training.tsv", "Validation_GCC-1.1.0-Validation.tsv"}
    assert set(read_checksums(tmp_path / "web.sha256")) == published
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    assert sorted(truth.loc[truth["planted"], "person_id"]) == sorted(summary["planted_identities"])
    assert truth["base_photos"].sum() == 6
    # nobody is named in the base corpus
    keys = [name_key(n) for n in truth["name"]]
    assert not any(k in name_key(c) for c in urls["caption"] for k in keys)
    classes = sorted(d.name for d in (tmp_path / "eval" / "classes").iterdir())
    assert classes == sorted(SCENE_SHAPES)
    # the held-out pairs are published like CC3M's validation file, over served images
    held = read_caption_tsv(tmp_path / "web" / "cc3m" / "Validation_GCC-1.1.0-Validation.tsv")
    assert len(held) == 4 and not set(held["url"]) & set(urls["url"])
    assert all((tmp_path / "web" / u.removeprefix(prefix)).is_file() for u in held["url"])
    text = (tmp_path / "web" / "cc3m" / "Validation_GCC-1.1.0-Validation.tsv").read_text()
    assert text.count("\t") == 4  # caption<TAB>url, no header
    again = tmp_path / "again"
    build_base(
        again, seed=4, n_identities=10, image_size=64,
        caption_templates=["a photo of {name}", "{name} in {city}"], n_generic=12, n_extras=3,
        extra_photos=2, n_planted=2, planted_photos=3,
        eval_per_class=2, n_eval_pairs=4,
    )  # fmt: skip
    first = sorted((tmp_path / "web" / "img").iterdir())
    assert [p.read_bytes() for p in first] == [
        (again / "web" / "img" / p.name).read_bytes() for p in first
    ]
    for name in ("planted.parquet", "truth.parquet"):
        assert (tmp_path / name).read_bytes() == (again / name).read_bytes()


def test_base_corpus_publishes_which_images_show_which_planted_identity(tmp_path):
    from idia.download import read_caption_tsv
    from idia.world import HYPERNYMS, build_base

    build_base(
        tmp_path, seed=11, n_identities=8, image_size=32, caption_templates=["{name}"],
        n_generic=10, n_extras=2, extra_photos=2, n_planted=3, planted_photos=2,
        eval_per_class=1, n_eval_pairs=1,
    )  # fmt: skip
    planted = pd.read_parquet(tmp_path / "planted.parquet")
    assert list(planted.columns) == ["file", "person_id"]
    assert planted["file"].tolist() == sorted(planted["file"]) and planted["file"].is_unique
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    want = dict(truth.loc[truth["planted"], ["person_id", "base_photos"]].values)
    assert len(want) == 3 and planted["person_id"].value_counts().to_dict() == want
    tsv = read_caption_tsv(tmp_path / "web" / "cc3m" / "Train_GCC-training.tsv")
    captions = dict(zip(tsv["url"].str.rsplit("/", n=1).str[-1], tsv["caption"]))
    assert set(planted["file"]) <= set(captions)
    assert all(any(h in captions[f] for h in HYPERNYMS) for f in planted["file"])
    # no planted identity: an empty table with the same columns
    build_base(
        tmp_path / "none", seed=11, n_identities=8, image_size=32, caption_templates=["{name}"],
        n_generic=3, n_extras=0, extra_photos=0, n_planted=0, planted_photos=2,
        eval_per_class=1, n_eval_pairs=1,
    )  # fmt: skip
    empty = pd.read_parquet(tmp_path / "none" / "planted.parquet")
    assert empty.empty and list(empty.columns) == ["file", "person_id"]


def test_base_corpus_rejects_impossible_settings(tmp_path):
    from idia.world import build_base

    args = dict(
        seed=1, n_identities=3, image_size=64, caption_templates=["{name}"], n_generic=2,
        n_extras=0, extra_photos=0, planted_photos=1,
        eval_per_class=1, n_eval_pairs=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match="n_planted=4 exceeds the 3 identities"):
        build_base(tmp_path, n_planted=4, **args)
