"""The utility table's held-out image-caption pairs, acquired like the base corpus.

CC3M's validation TSV (or the world's copy of it) is downloaded with img2dataset; this module
turns the downloaded shard into image files and a pairs table for image-to-text retrieval. It
imports no model code, so a change to the attack or the models never reruns the extraction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from idia.download import iter_shard

__all__ = ["heldout_pairs"]


def heldout_pairs(
    tar: str | os.PathLike, table: pd.DataFrame, stats: Mapping, image_dir: str | os.PathLike
) -> tuple[pd.DataFrame, dict]:
    """The held-out image-caption pairs of one downloaded shard, for image-to-text retrieval.

    ``tar``, ``table`` and ``stats`` are img2dataset's shard, its per-row table and
    :func:`idia.download.download_shard`'s counts. Each downloaded image is written to
    ``image_dir/<key>.jpg`` (the utility encodes files, like the attack); the pairs table
    (key, url, caption, path) is in key order. Dead URLs are the rule in an old URL list, never
    an error: the report counts the listed rows, the pairs kept and the failures by reason.
    """
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    listed = table[table["status"] == "success"].set_index("key")
    rows = []
    for key, parts in iter_shard(Path(tar)):
        if key not in listed.index or "jpg" not in parts:
            continue
        path = image_dir / f"{key}.jpg"
        path.write_bytes(parts["jpg"])
        rows.append((key, listed.at[key, "url"], listed.at[key, "caption"], str(path)))
    pairs = pd.DataFrame(rows, columns=["key", "url", "caption", "path"])
    pairs = pairs.sort_values("key", kind="stable").reset_index(drop=True)
    failed = {reason: int(n) for reason, n in stats["status_dict"].items() if reason != "success"}
    missing = len(listed) - len(pairs)
    if missing:  # listed as downloaded, but no image in the shard
        failed["no image in the shard"] = missing
    report = {"rows": int(stats["rows"]), "pairs": len(pairs), "failed": failed}
    return pairs, report
