"""The study's identities: a table (person_id, name, gender, photo_dir) and their photo folders."""

from __future__ import annotations

from pathlib import Path

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
    from idia.search import MIN_LETTERS, unusable_names

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
