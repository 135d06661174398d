"""Read the identity sources in their public formats and plan their download.

- FaceScrub's ``facescrub_actors.txt`` / ``facescrub_actresses.txt``: tab-separated, one header
  line, ``name image_id face_id url bbox sha256``; ``bbox`` is ``x1,y1,x2,y2`` in pixels of the
  original image and ``sha256`` is of the raw downloaded bytes.
- Extra identities (the paper's European celebrities): a folder with ``actors/`` and
  ``actresses/``, one ``<First_Last>.txt`` per person holding one image URL per line.

Every line ends up either in the download plan or in the exclusions with its file, line number
and reason; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from idia.names import name_key, usable_name

HEADER = ["name", "image_id", "face_id", "url", "bbox", "sha256"]
GENDER_OF_FOLDER = {"actors": "male", "actresses": "female"}
PLAN_COLUMNS = [
    "row", "person_id", "name", "gender", "source", "image_id", "face_id", "url",
    "x1", "y1", "x2", "y2", "sha256",
]  # fmt: skip
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def person_id(name: str) -> str:
    """A stable, file-system-safe id for a name: an ASCII slug and a short hash of the name.

    The hash keeps names that fold to the same slug (accents, non-Latin scripts) apart.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", folded).strip("-").lower()[:40] or "person"
    return f"{slug}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:6]}"


def gender_of_list(path: str | Path) -> str:
    """FaceScrub's two lists are split by gender; the file name says which."""
    stem = Path(path).name.lower()
    if "actress" in stem:
        return "female"
    if "actor" in stem:
        return "male"
    return "unknown"


def _bbox(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"bbox {text!r} is not x1,y1,x2,y2")
    x1, y1, x2, y2 = (int(float(v)) for v in parts)
    if x2 <= x1 or y2 <= y1 or min(x1, y1) < 0:
        raise ValueError(f"bbox {text!r} is empty or negative")
    return x1, y1, x2, y2


def read_facescrub(path: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """One FaceScrub list as rows, plus the lines it could not use (file, line, reason)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty file; expected FaceScrub's header {' '.join(HEADER)}")
    header = [h.strip() for h in lines[0].split("\t")]
    if header != HEADER:
        raise ValueError(
            f"{path}: header is {header}, expected the FaceScrub columns {HEADER} separated by "
            "tabs. Is this facescrub_actors.txt / facescrub_actresses.txt from the FaceScrub zip?"
        )
    gender = gender_of_list(path)
    rows, bad = [], []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        reason = None
        if len(fields) != len(HEADER):
            reason = f"malformed line: {len(fields)} tab-separated fields, expected {len(HEADER)}"
        else:
            name, image_id, face_id, url, bbox, sha = (f.strip() for f in fields)
            try:
                box = _bbox(bbox)
            except ValueError as err:
                reason = str(err)
            if not reason and not usable_name(name):
                reason = f"name {name!r} has fewer than two letters"
            if not reason and not url.startswith(("http://", "https://")):
                reason = f"url {url!r} is not http(s)"
            if not reason and not _HEX64.match(sha.lower()):
                reason = f"sha256 {sha!r} is not 64 hex digits"
        if reason:
            bad.append({"file": str(path), "line": number, "name": fields[0].strip(),
                        "reason": reason})  # fmt: skip
            continue
        rows.append({
            "name": name, "gender": gender, "source": f"facescrub:{path.name}",
            "image_id": image_id, "face_id": face_id, "url": url,
            "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3], "sha256": sha.lower(),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=PLAN_COLUMNS[2:]), bad


def read_url_lists(folder: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """Per-person URL lists: ``<folder>/{actors,actresses}/<First_Last>.txt``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"extra identities folder {folder} does not exist")
    rows, bad = [], []
    files = sorted(p for sub in GENDER_OF_FOLDER for p in (folder / sub).glob("*.txt"))
    if not files:
        raise ValueError(f"{folder}: no <First_Last>.txt files under actors/ or actresses/")
    for path in files:
        name = path.stem.replace("_", " ").strip()
        gender = GENDER_OF_FOLDER[path.parent.name]
        if not usable_name(name):
            bad.append({"file": str(path), "line": 0, "name": name,
                        "reason": "file name has fewer than two letters"})  # fmt: skip
            continue
        index = 0
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            url = line.strip()
            if not url or url.startswith("#"):
                continue
            if not url.startswith(("http://", "https://")):
                bad.append({"file": str(path), "line": number, "name": name,
                            "reason": f"url {url[:80]!r} is not http(s)"})  # fmt: skip
                continue
            rows.append({
                "name": name, "gender": gender, "source": f"urls:{path.parent.name}",
                "image_id": str(index), "face_id": "", "url": url,
                "x1": -1, "y1": -1, "x2": -1, "y2": -1, "sha256": "",
            })  # fmt: skip
            index += 1
    return pd.DataFrame(rows, columns=PLAN_COLUMNS[2:]), bad


def plan_downloads(
    facescrub_lists: list[str | Path], url_folders: list[str | Path]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every usable line of every source as one download plan, and the excluded lines.

    A name that appears in two sources (equal up to case and accents) keeps the first source's
    lines; the other's are excluded with that reason. The same URL twice for one person is
    downloaded once.
    """
    parts, bad = [], []
    for path in facescrub_lists:
        table, problems = read_facescrub(path)
        parts.append(table)
        bad += problems
    for folder in url_folders:
        table, problems = read_url_lists(folder)
        parts.append(table)
        bad += problems
    plan = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PLAN_COLUMNS)
    keys = plan["name"].map(name_key)
    first_source = plan.groupby(keys, sort=False)["source"].transform("first")
    other = plan["source"] != first_source
    for row in plan[other].drop_duplicates(["name", "source"]).itertuples():
        bad.append({"file": row.source, "line": 0, "name": row.name,
                    "reason": "duplicate name: already listed in "
                              f"{first_source[row.Index]}; these lines are not used"})  # fmt: skip
    plan = plan[~other]
    repeated = plan.duplicated(["name", "url"])
    for row in plan[repeated].itertuples():
        bad.append({"file": row.source, "line": 0, "name": row.name,
                    "reason": f"url listed twice for this person: {row.url[:80]}"})  # fmt: skip
    plan = plan[~repeated].reset_index(drop=True)
    # one spelling per person: the first one listed
    plan["name"] = plan["name"].groupby(plan["name"].map(name_key)).transform("first")
    plan.insert(0, "person_id", plan["name"].map(person_id))
    plan.insert(0, "row", np.arange(len(plan), dtype=np.int64))
    excluded = pd.DataFrame(bad, columns=["file", "line", "name", "reason"])
    return plan[PLAN_COLUMNS], excluded
