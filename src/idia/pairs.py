"""Named image-caption pairs to inject, found in LAION by the caption search and confirmed by face.

The paper found its injection pairs with LAION-5B's kNN service, which is gone, and did not
publish them. Here the track L caption search already knows every LAION row whose caption names a
study identity: those rows' images are downloaded with img2dataset, and a pair is kept only when
the Haar cascade finds a face in it and the face classifier names the person with at least
``min_confidence``. Every pair keeps its LAION sample id, URL, caption and confidence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from idia.sources import LAION_COLUMNS_KEY, read_columns

PAIR_URL_COLUMNS = ["person_id", "url", "caption", "sample_id"]
#: pairs.parquet: the confirmed pairs, each with its image file and its LAION record
PAIR_COLUMNS = ["person_id", "path", "caption", "sample_id", "url", "confidence"]
#: checked.parquet: every downloaded candidate, confirmed or not, with the reason
CHECKED_COLUMNS = ["person_id", "sample_id", "url", "caption", "faces", "confidence",
                   "confirmed", "reason"]  # fmt: skip


def pair_urls(hits: pd.DataFrame, metadata: str | Path, columns: dict) -> pd.DataFrame:
    """The LAION rows the caption search found for each person: (person_id, url, caption, id).

    ``hits`` holds (person_id, row) with ``row`` the row number in the ``metadata`` parquet; a
    row that names two people is listed once for each. ``columns`` are the configured names
    of LAION's url, caption and key columns (``sources.laion.columns``).
    """
    if hits.empty:
        return pd.DataFrame(columns=PAIR_URL_COLUMNS)
    wanted = {role: columns[role] for role in ("url", "caption", "key")}
    table = read_columns(metadata, wanted, config_key=LAION_COLUMNS_KEY)
    rows = hits["row"].to_numpy(np.int64)
    if rows.max() >= table.num_rows:
        raise ValueError(
            f"{metadata}: the caption search found row {rows.max()}, but the file has "
            f"{table.num_rows} rows; were the hits computed from another version of it?"
        )
    taken = table.take(rows)
    return pd.DataFrame(
        {
            "person_id": hits["person_id"].to_numpy(),
            "url": taken.column(columns["url"]).to_pylist(),
            "caption": taken.column(columns["caption"]).to_pylist(),
            "sample_id": [str(v) for v in taken.column(columns["key"]).to_pylist()],
        }
    ).sort_values(["person_id", "sample_id"], kind="stable", ignore_index=True)


def confirm_pairs(
    samples: list[tuple[str, bytes]],
    meta: pd.DataFrame,
    classifier,
    haar: dict,
    min_confidence: float,
) -> pd.DataFrame:
    """Per downloaded sample (``meta``: key, person_id, ...): faces found, the classifier's
    confidence that one of them is the captioned person, and whether the pair is ``confirmed``.
    """
    from idia.faces import face_crops, predict_faces

    crops, faces = face_crops(samples, size=classifier.size, largest_only=False, **haar)
    faces = faces.rename(columns={"path": "key"})
    has_crop = (faces["crop_index"] >= 0).to_numpy()
    prob_of = np.full(len(faces), 0.0)
    named = np.full(len(faces), None, object)
    if has_crop.any():
        index, prob = predict_faces(classifier, crops[faces.loc[has_crop, "crop_index"].to_numpy()])
        named[has_crop] = np.asarray(classifier.classes, object)[index]
        prob_of[has_crop] = prob
    faces["named"] = named
    person = faces["key"].map(meta.set_index("key")["person_id"])
    # the classifier's confidence that this face is the person the caption names (0 otherwise)
    faces["prob"] = np.where(faces["named"].eq(person), prob_of, 0.0)
    faces["unreadable"] = faces["status"].eq("unreadable")
    per_key = faces.groupby("key").agg(
        faces=("crop_index", lambda c: int((c >= 0).sum())),
        confidence=("prob", "max"),
        unreadable=("unreadable", "any"),
    )
    out = meta.merge(per_key, left_on="key", right_index=True, how="left")
    out["faces"] = out["faces"].fillna(0).astype(int)
    out["confidence"] = out["confidence"].fillna(0.0)
    out["confirmed"] = out["confidence"] >= min_confidence
    out["reason"] = np.select(
        [out["confirmed"], out["unreadable"].fillna(False).astype(bool), out["faces"] == 0],
        ["confirmed", "unreadable image", "no face found"],
        default=f"the face classifier does not name this person with confidence >= "
        f"{min_confidence}",
    )
    return out.drop(columns=["unreadable"])


def confirm_shards(
    shards: list[tuple[str | Path, str | Path]],
    classifier,
    haar: dict,
    min_confidence: float,
    images: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The injection pairs from the downloaded candidate shards: (pairs, checked).

    ``shards`` are the (tar, parquet) pairs img2dataset wrote for :func:`pair_urls`'s table
    (with its ``person_id`` and ``sample_id`` kept). Each confirmed pair's image is written to
    ``images/<person_id>/<sample_id>.jpg``; ``pairs`` lists them with their LAION sample id,
    URL, caption and the classifier's confidence, ``checked`` every downloaded candidate with
    its reason, so that a pair left out is accounted for.
    """
    from idia.download import iter_shard

    images = Path(images)
    checked, kept = [], []
    for tar, parquet in shards:
        meta = pd.read_parquet(parquet)
        meta = meta.loc[meta["status"] == "success", ["key", *PAIR_URL_COLUMNS]]
        samples = [(key, parts.get("jpg", b"")) for key, parts in iter_shard(tar)]
        if not samples:
            continue
        result = confirm_pairs(samples, meta, classifier, haar, min_confidence)
        data = dict(samples)
        for row in result[result["confirmed"]].itertuples():
            path = images / row.person_id / f"{row.sample_id}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[row.key])
            kept.append({"person_id": row.person_id, "path": str(path), "caption": row.caption,
                         "sample_id": row.sample_id, "url": row.url,
                         "confidence": row.confidence})  # fmt: skip
        checked.append(result.drop(columns=["key"])[CHECKED_COLUMNS])
    checked_table = (
        pd.concat(checked, ignore_index=True) if checked else pd.DataFrame(columns=CHECKED_COLUMNS)
    )
    return pd.DataFrame(kept, columns=PAIR_COLUMNS), checked_table


def pairs_report(candidates: pd.DataFrame, checked: pd.DataFrame) -> pd.DataFrame:
    """Per person: LAION rows found by the search, downloaded, with a face, confirmed."""
    found = candidates.groupby("person_id").size().rename("found")
    downloaded = checked.groupby("person_id").size().rename("downloaded")
    with_face = checked[checked["faces"] > 0].groupby("person_id").size().rename("with_face")
    confirmed = checked[checked["confirmed"]].groupby("person_id").size().rename("confirmed")
    report = pd.concat([found, downloaded, with_face, confirmed], axis=1).fillna(0).astype(int)
    return report.reset_index().rename(columns={"index": "person_id"})
