"""Injection pairs from the caption search: the LAION rows named, read back by row number."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from idia.download import write_shard
from idia.faces import NARROW_RESNET, face_crops, train_face_classifier
from idia.pairs import (
    CHECKED_COLUMNS,
    PAIR_COLUMNS,
    PAIR_URL_COLUMNS,
    confirm_shards,
    pair_urls,
    pairs_report,
)
from idia.render import render_face, render_scene, sample_identity

COLUMNS = {"url": "URL", "caption": "TEXT", "key": "SAMPLE_ID"}


def test_pair_urls_takes_the_hit_rows_of_the_metadata(tmp_path):
    meta = tmp_path / "part-00000.parquet"
    urls = [f"http://x.test/{i}.jpg" for i in range(4)]
    pd.DataFrame({"SAMPLE_ID": [10, 11, 12, 13], "URL": urls,
                  "TEXT": ["Ann Lee at the premiere", "a cat", "Ann Lee and Bo Ek", "Bo Ek"],
                  "NSFW": ["UNLIKELY"] * 4}).to_parquet(meta)  # fmt: skip
    hits = pd.DataFrame({"person_id": ["ann", "ann", "bo", "bo"], "row": [0, 2, 2, 3]})
    table = pair_urls(hits, meta, COLUMNS)
    assert table.to_dict("list") == {
        "person_id": ["ann", "ann", "bo", "bo"],
        "url": ["http://x.test/0.jpg", "http://x.test/2.jpg", "http://x.test/2.jpg",
                "http://x.test/3.jpg"],
        "caption": ["Ann Lee at the premiere", "Ann Lee and Bo Ek", "Ann Lee and Bo Ek", "Bo Ek"],
        "sample_id": ["10", "12", "12", "13"],
    }  # fmt: skip
    assert pair_urls(hits.iloc[:0], meta, COLUMNS).empty
    with pytest.raises(ValueError, match="row 9"):
        pair_urls(pd.DataFrame({"person_id": ["ann"], "row": [9]}), meta, COLUMNS)


def test_pairs_report_counts_every_stage_per_person():
    found = pd.DataFrame({"person_id": ["a", "a", "a", "b"]})
    checked = pd.DataFrame({"person_id": ["a", "a", "b"], "faces": [1, 0, 2],
                            "confirmed": [True, False, False]})  # fmt: skip
    report = pairs_report(found, checked).set_index("person_id")
    assert report.loc["a"].tolist() == [3, 2, 1, 1]
    assert report.loc["b"].tolist() == [1, 1, 1, 0]


def test_laion_metadata_without_the_configured_column_names_the_file_column_and_key(tmp_path):
    from idia.sources import SourceError

    meta = tmp_path / "part-00000.parquet"  # relaion-style lower-case names
    pd.DataFrame(
        {"key": ["10"], "url": ["http://x.test/0.jpg"], "caption": ["Ann Lee"]}
    ).to_parquet(meta)
    hits = pd.DataFrame({"person_id": ["ann"], "row": [0]})
    with pytest.raises(SourceError) as err:
        pair_urls(hits, meta, COLUMNS)
    message = str(err.value)
    assert message.startswith(f"{meta}: no column 'URL' (`sources.laion.columns.url`), ")
    assert "'TEXT' (`sources.laion.columns.caption`)" in message
    assert "'SAMPLE_ID' (`sources.laion.columns.key`)" in message
    assert "the file has columns ['key', 'url', 'caption']" in message
    assert "Set `sources.laion.columns` in the config" in message
    named = pair_urls(hits, meta, {"url": "url", "caption": "caption", "key": "key"})
    assert named.loc[0, "url"] == "http://x.test/0.jpg" and named.loc[0, "sample_id"] == "10"


# --------------------------------------------------------------------------- confirm by face

HAAR = {"scale_factor": 1.1, "min_neighbors": 5, "min_size": 32}  # config/config.yaml's


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def people():
    """Two rendered identities whose photos the Haar cascade finds, and a face classifier
    trained on them: {person_id: [jpeg bytes]}, classifier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    photos: dict[str, list[bytes]] = {}
    crops, labels = [], []
    for identity in range(12):
        params = sample_identity(np.random.default_rng([5, identity]))
        jpegs = [_jpeg(render_face(params, np.random.default_rng([5, identity, j]))) for j in
                 range(12)]  # fmt: skip
        found, table = face_crops([(f"{j}", b) for j, b in enumerate(jpegs)], size=32, **HAAR)
        if len(found) < 10:
            continue
        pid = f"person-{identity}"
        photos[pid] = [jpegs[int(j)] for j in table.loc[table["crop_index"] >= 0, "path"]]
        crops.append(found)
        labels += [pid] * len(found)
        if len(photos) == 2:
            break
    classifier, _ = train_face_classifier(
        np.concatenate(crops), np.array(labels), arch=NARROW_RESNET, epochs=8, batch_size=8,
        test_fraction=0.2, progress=False,
    )  # fmt: skip
    yield photos, classifier
    torch.set_num_threads(threads)


def test_confirm_shards_keeps_confident_named_faces_and_accounts_for_the_rest(people, tmp_path):
    photos, classifier = people
    ann, bo = sorted(photos)
    scene = _jpeg(render_scene(np.random.default_rng([98, 0]), 112)[0])
    rows = [  # (person_id the caption names, image, download status)
        (ann, photos[ann][0], "success"),
        (bo, photos[bo][0], "success"),
        (bo, photos[ann][1], "success"),  # Ann's face under Bo's name
        (ann, scene, "success"),  # no face
        (bo, b"not an image", "success"),
        (ann, b"", "failed_to_download"),  # not in the tar: not checked, counted by the report
    ]
    meta = pd.DataFrame(
        {
            "key": [f"{i:09d}" for i in range(len(rows))],
            "person_id": [r[0] for r in rows],
            "sample_id": [str(1000 + i) for i in range(len(rows))],
            "url": [f"http://laion.test/{i}.jpg" for i in range(len(rows))],
            "caption": [f"caption {i} naming {r[0]}" for i, r in enumerate(rows)],
            "status": [r[2] for r in rows],
        }
    )
    tar, parquet = tmp_path / "00000.tar", tmp_path / "00000.parquet"
    write_shard(tar, [(k, {"jpg": r[1]}) for k, r in zip(meta["key"], rows) if r[2] == "success"])
    meta.to_parquet(parquet, index=False)

    pairs, checked = confirm_shards([(tar, parquet)], classifier, HAAR, 0.5, tmp_path / "images")
    assert list(checked.columns) == CHECKED_COLUMNS and list(pairs.columns) == PAIR_COLUMNS
    assert checked["sample_id"].tolist() == ["1000", "1001", "1002", "1003", "1004"]
    assert checked["url"].tolist() == [f"http://laion.test/{i}.jpg" for i in range(5)]
    assert checked["caption"].tolist() == meta["caption"].tolist()[:5]
    assert checked["reason"].tolist() == [
        "confirmed",
        "confirmed",
        "the face classifier does not name this person with confidence >= 0.5",
        "no face found",
        "unreadable image",
    ]
    assert checked["faces"].tolist()[:3] == [1, 1, 1] and checked["faces"].tolist()[3:] == [0, 0]
    assert checked["confidence"].tolist()[2:] == [0.0, 0.0, 0.0]
    confident = checked["confidence"].to_numpy()[:2]
    assert ((confident >= 0.5) & (confident <= 1.0)).all()
    # every kept pair: its image, LAION sample id, URL, caption and confidence
    assert pairs["sample_id"].tolist() == ["1000", "1001"]
    assert pairs["url"].tolist() == ["http://laion.test/0.jpg", "http://laion.test/1.jpg"]
    assert pairs["caption"].tolist() == meta["caption"].tolist()[:2]
    assert pairs["confidence"].tolist() == confident.tolist()
    assert [Path(p).read_bytes() for p in pairs["path"]] == [photos[ann][0], photos[bo][0]]
    assert pairs["path"].tolist() == [str(tmp_path / "images" / ann / "1000.jpg"),
                                      str(tmp_path / "images" / bo / "1001.jpg")]  # fmt: skip

    # above Bo's confidence: his pair is not kept, and checked says why
    threshold = float(confident[1]) + 1e-6
    assert threshold < 1.0
    again, checked = confirm_shards([(tar, parquet)], classifier, HAAR, threshold, tmp_path / "i2")
    assert bo not in set(again["person_id"])
    bo_row = checked.set_index("sample_id").loc["1001"]
    assert not bo_row["confirmed"] and bo_row["confidence"] == confident[1]
    assert bo_row["reason"] == (
        f"the face classifier does not name this person with confidence >= {threshold}"
    )
    candidates = meta[PAIR_URL_COLUMNS]  # what the caption search found: pair_urls's table
    report = pairs_report(candidates, checked).set_index("person_id")
    assert report.loc[ann].tolist() == [3, 2, 1, int(confident[0] >= threshold)]
    assert report.loc[bo].tolist() == [3, 3, 2, 0]
