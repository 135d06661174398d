"""The study's identities: a table (person_id, name, gender, photo_dir) and their photo folders."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from idia.names import name_key

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
REQUIRED = ("person_id", "name", "photo_dir")


def read_identities(path: str | Path) -> pd.DataFrame:
    """Read and check the identities table; every problem names the row or the person."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"identities table not found: {path}")
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:  # the required columns as written: a person named "Nan" or an id "NA" stays itself
        table = pd.read_csv(path, converters={c: str for c in REQUIRED})
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; it has {list(table.columns)}")
    if table.empty:
        raise ValueError(f"{path}: no identities")
    table = table.reset_index(drop=True)  # row numbers below count from the first data row
    blank = {
        column: table[column].isna() | (table[column].astype(str).str.strip() == "")
        for column in REQUIRED
    }
    empty = [
        f"row {i + 1} (person_id={table.at[i, 'person_id']!r}, name={table.at[i, 'name']!r}): "
        f"empty {column}"
        for column in REQUIRED
        for i in table.index[blank[column].to_numpy()]
    ]
    if empty:
        raise ValueError(f"{path}: fill in or remove these rows: " + "; ".join(empty))
    table = table.astype({"person_id": str, "name": str, "photo_dir": str})
    from idia.names import MIN_LETTERS
    from idia.search import unusable_names

    short = unusable_names(table)
    if short:
        raise ValueError(
            f"{path}: names with fewer than {MIN_LETTERS} letters cannot name a person (in "
            "LAION's captions they would match millions); give the full name (e.g. 'First "
            "Last'): " + "; ".join(short)
        )
    dup_ids = table.loc[table["person_id"].duplicated(keep=False), "person_id"]
    if len(dup_ids):
        raise ValueError(f"{path}: duplicate person_id {sorted(set(dup_ids))}")
    keys = table["name"].map(name_key)
    if (keys == "").any():
        raise ValueError(f"{path}: empty name for {list(table.loc[keys == '', 'person_id'])}")
    dups = table[keys.duplicated(keep=False)]
    if len(dups):
        pairs = ", ".join(f"{r.person_id}={r.name!r}" for r in dups.itertuples())
        raise ValueError(
            f"{path}: duplicate names (equal up to case and accents): {pairs}. "
            "The attack needs one name per person; merge or rename them."
        )
    return table.reset_index(drop=True)


def photo_table(identities: pd.DataFrame) -> pd.DataFrame:
    """One row per photo: photo_index, person_id, person_index, path (sorted, stable)."""
    rows = []
    empty = []
    for person_index, person in enumerate(identities.itertuples()):
        folder = Path(person.photo_dir)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"photo folder of {person.person_id} ({person.name!r}) not found: {folder}"
            )
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            empty.append(f"{person.person_id} ({person.name!r}) in {folder}")
        rows += [(person.person_id, person_index, str(p)) for p in files]
    if empty:
        raise ValueError("no photos for: " + "; ".join(empty))
    table = pd.DataFrame(rows, columns=["person_id", "person_index", "path"])
    table.insert(0, "photo_index", range(len(table)))
    return table


def _reason(status: str | None, error: str | None) -> str:
    """img2dataset's per-URL error as a short, countable reason."""
    if status is None or (isinstance(status, float) and np.isnan(status)):
        return "not attempted"
    text = str(error or status)
    http = re.search(r"HTTP Error (\d+)", text)
    if http:
        return f"HTTP {http.group(1)}"
    if "timed out" in text.lower():
        return "timed out"
    return text.strip().splitlines()[0][:60] if text.strip() else str(status)


def _box_outside(rec: pd.Series, size: tuple[int, int]) -> str:
    """Why the list's face box cannot be cropped from an image of ``size``, or ""."""
    width, height = size
    if rec["x2"] >= 0 and (rec["x2"] > width or rec["y2"] > height):
        return f"bbox outside the image ({width}x{height})"
    return ""


def _write_photo(
    outcome: pd.DataFrame, at, data: bytes, image: tuple, photo_root: Path, crop_root: Path
) -> None:
    """Write one kept photo and, where the list's box lies inside it, the face crop."""
    from PIL import Image

    rec = outcome.loc[at]
    ext, _ = image
    folder = photo_root / rec["person_id"]
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{int(rec['row']):07d}"
    (folder / f"{stem}.{ext}").write_bytes(data)
    outcome.at[at, "photo"] = str(folder / f"{stem}.{ext}")
    if rec["x2"] < 0 or rec["crop"]:  # no box listed, or it lies outside (see _box_outside)
        return
    with Image.open(io.BytesIO(data)) as img:
        crop = img.convert("RGB").crop((rec["x1"], rec["y1"], rec["x2"], rec["y2"]))
    (crop_root / rec["person_id"]).mkdir(parents=True, exist_ok=True)
    crop.save(crop_root / rec["person_id"] / f"{stem}.jpg", quality=95)
    outcome.at[at, "crop"] = "ok"


def assemble_identities(
    plan: pd.DataFrame,
    shards: list[tuple[str | Path, str | Path]],
    photo_root: str | Path,
    crop_root: str | Path,
    *,
    min_photos: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The study's identities from their downloaded images: full photos and bounding-box crops.

    ``plan`` is the download plan (see :func:`idia.facescrub.plan_downloads`); ``shards`` the
    (tar, parquet) pairs img2dataset wrote for it, with the plan's ``row`` and img2dataset's
    ``sha256`` of the raw bytes. Returns (identities, per-person report, per-URL outcomes): a
    photo whose hash differs from the list's, that does not decode, or whose box falls outside
    it is counted with that reason; a person with fewer than ``min_photos`` photos is reported
    as excluded with that reason, never dropped silently.
    """
    from PIL import Image

    from idia.download import iter_shard

    status = pd.concat(
        [
            pd.read_parquet(parquet, columns=["key", "row", "status", "error_message", "sha256"])
            .assign(shard=i)
            for i, (_, parquet) in enumerate(shards)
        ],
        ignore_index=True,
    )
    outcome = plan.merge(status, on="row", how="left", validate="1:1")
    outcome["outcome"] = [
        "downloaded" if s == "success" else _reason(s, e)
        for s, e in zip(outcome["status"], outcome["error_message"])
    ]
    expected = outcome["sha256_x"].fillna("")
    mismatch = (outcome["outcome"] == "downloaded") & (expected != "") & (
        expected != outcome["sha256_y"].fillna("")
    )
    outcome.loc[mismatch, "outcome"] = "hash mismatch"
    outcome["crop"] = ""
    outcome["photo"] = ""
    by_key = {(int(s), str(k)): r for s, k, r in zip(status["shard"], status["key"], status["row"])}
    index_of_row = dict(zip(outcome["row"], outcome.index))
    photo_root, crop_root = Path(photo_root), Path(crop_root)
    # Two passes over the shards, so that at most one image is in memory at a time (the paper's
    # ~100k photos would not fit): the first decides what each image is, the second writes the
    # kept persons' photos and crops.
    images: dict[int, tuple[str, tuple[int, int]]] = {}
    for i, (tar, _) in enumerate(shards):
        for key, parts in iter_shard(tar):
            row = by_key.get((i, key))
            if row is None or "jpg" not in parts:
                continue
            at = index_of_row[row]
            if outcome.at[at, "outcome"] != "downloaded":
                continue
            try:
                with Image.open(io.BytesIO(parts["jpg"])) as img:
                    img.load()
                    fmt, size = (img.format or "jpeg").lower(), img.size
            except Exception:
                outcome.at[at, "outcome"] = "not an image"
                continue
            images[row] = ("jpg" if fmt == "jpeg" else fmt, size)
            # for every person, kept or not: an excluded person's report counts it too
            outcome.at[at, "crop"] = _box_outside(outcome.loc[at], size)
    outcome.loc[
        (outcome["outcome"] == "downloaded") & ~outcome["row"].isin(list(images)), "outcome"
    ] = "missing from shard"
    kept_rows = outcome["outcome"] == "downloaded"
    photos_per_person = outcome[kept_rows].groupby("person_id").size()
    people = outcome.drop_duplicates("person_id")[["person_id", "name", "gender", "source"]]
    n_photos = people["person_id"].map(photos_per_person).fillna(0).astype(int)
    keep = n_photos >= min_photos
    kept_people = set(people.loc[keep, "person_id"])

    for i, (tar, _) in enumerate(shards):
        for key, parts in iter_shard(tar):
            row = by_key.get((i, key))
            if row not in images:
                continue
            at = index_of_row[row]
            if outcome.at[at, "person_id"] in kept_people:
                _write_photo(outcome, at, parts["jpg"], images[row], photo_root, crop_root)

    counts = outcome.pivot_table(
        index="person_id", columns="outcome", values="row", aggfunc="count", fill_value=0
    )
    report = people.set_index("person_id").join(counts).fillna(0).reset_index()
    report.insert(4, "listed", report["person_id"].map(outcome.groupby("person_id").size()))
    report["photos"] = n_photos.to_numpy()
    crops = outcome[outcome["crop"] == "ok"].groupby("person_id").size()
    report["crops"] = report["person_id"].map(crops).fillna(0).astype(int)
    bad_box = outcome[outcome["crop"].str.startswith("bbox")].groupby("person_id").size()
    report["bbox_outside"] = report["person_id"].map(bad_box).fillna(0).astype(int)
    report["status"] = np.where(keep.to_numpy(), "kept", "excluded")
    report["reason"] = [
        "" if k else f"only {n} usable photos, fewer than identities.min_photos={min_photos}"
        for k, n in zip(keep, n_photos)
    ]
    identities = report[report["status"] == "kept"][["person_id", "name", "gender", "source"]]
    identities = identities.assign(
        photo_dir=[str(photo_root / p) for p in identities["person_id"]],
        crop_dir=[str(crop_root / p) for p in identities["person_id"]],
        n_photos=report.loc[report["status"] == "kept", "photos"].to_numpy(),
    ).reset_index(drop=True)
    urls = outcome[["row", "person_id", "name", "url", "outcome", "photo", "crop",
                    "x1", "y1", "x2", "y2"]]  # fmt: skip
    return identities, report, urls
