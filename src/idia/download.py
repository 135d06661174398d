"""Download image shards with img2dataset, the same code path as a real LAION or CC3M download.

Failed URLs are counted per reason, never fatal; the shard and its table come out in key order
so that the same URLs give the same bytes whatever order the download threads finish in.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd


def download_shard(
    urls: pd.DataFrame,
    out_dir: str | Path,
    *,
    url_col: str = "url",
    caption_col: str | None = None,
    keep_columns: Iterable[str] = (),
    processes: int = 1,
    threads: int = 16,
    timeout: int = 10,
    retries: int = 0,
    compute_hash: str | None = None,
    keep_bytes: bool = False,
    image_size: int | None = None,
    max_aspect_ratio: float | None = None,
) -> dict:
    """Download a table of URLs into one webdataset shard with img2dataset.

    Writes ``out_dir/00000.tar`` and ``00000.parquet`` (every input row with its status and
    error) and returns the counts, failures by reason included. ``keep_bytes`` keeps each
    file's original bytes (needed when a list pins their sha256, as FaceScrub's does);
    ``image_size`` shrinks larger images to that size, keeping the aspect ratio (the CC3M
    recipe: 512), and ``max_aspect_ratio`` drops images more elongated than that.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset import download

    out_dir = Path(out_dir)
    if out_dir.exists():  # start empty (img2dataset's "overwrite" mode deletes its temp files)
        shutil.rmtree(out_dir)
    keep_columns = list(keep_columns)
    if urls.empty:
        out_dir.mkdir(parents=True)
        write_shard(out_dir / "00000.tar", [])
        columns = ["key", "url", *(["caption"] if caption_col else []), *keep_columns,
                   "status", "error_message"]  # fmt: skip (img2dataset's own column names)
        pd.DataFrame(columns=columns).to_parquet(out_dir / "00000.parquet", index=False)
        return {"rows": 0, "successes": 0, "failed_to_download": 0, "failed_to_resize": 0,
                "status_dict": {}}  # fmt: skip
    options: dict = {"resize_mode": "no"}
    if image_size:
        options = {"resize_mode": "keep_ratio", "resize_only_if_bigger": True,
                   "image_size": int(image_size)}  # fmt: skip
    if max_aspect_ratio:
        options["max_aspect_ratio"] = float(max_aspect_ratio)
    if keep_bytes:
        options = {"resize_mode": "no", "disable_all_reencoding": True}
    with tempfile.TemporaryDirectory(prefix="idia-urls-") as tmp:
        url_list = Path(tmp) / "urls.parquet"
        urls.to_parquet(url_list, index=False)
        download(
            url_list=str(url_list),
            output_folder=str(out_dir),
            input_format="parquet",
            url_col=url_col,
            caption_col=caption_col,
            save_additional_columns=keep_columns or None,
            output_format="webdataset",
            number_sample_per_shard=len(urls),
            processes_count=processes,
            thread_count=threads,
            timeout=timeout,
            retries=retries,
            compute_hash=compute_hash,
            extract_exif=False,
            disallowed_header_directives=[],
            incremental_mode="incremental",
            enable_wandb=False,
            **options,
        )
    stats_path = out_dir / "00000_stats.json"
    if not stats_path.exists():
        raise RuntimeError(f"img2dataset wrote no stats in {out_dir}; see the log above")
    stats = json.loads(stats_path.read_text())
    canonical_order(out_dir / "00000.tar", out_dir / "00000.parquet")
    # the stats file holds timings and this machine's paths: keep only what identifies the data
    stats_path.unlink()
    return {
        "rows": len(urls),
        "successes": int(stats.get("successes", 0)),
        "failed_to_download": int(stats.get("failed_to_download", 0)),
        "failed_to_resize": int(stats.get("failed_to_resize", 0)),
        "status_dict": dict(sorted(stats.get("status_dict", {}).items())),
    }


def split_rows(table: pd.DataFrame, n_shards: int) -> list[pd.DataFrame]:
    """``table`` in ``n_shards`` contiguous blocks of (nearly) equal size, one per job."""
    bounds = np.linspace(0, len(table), n_shards + 1).round().astype(int)
    return [table.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def read_caption_tsv(path: str | Path) -> pd.DataFrame:
    """A CC3M-format file, ``caption<TAB>url`` per line, as a table (caption, url).

    CC3M's files have no header; a first line ``caption<TAB>url`` is skipped if present. A line
    without exactly one tab is an error that names it.
    """
    path = Path(path)
    captions, urls = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{number}: expected 'caption<TAB>url', found {len(fields)} "
                    f"tab-separated field(s): {line[:120]!r}"
                )
            if number == 1 and [f.strip().lower() for f in fields] == ["caption", "url"]:
                continue
            captions.append(fields[0])
            urls.append(fields[1].strip())
    if not urls:
        raise ValueError(f"{path}: no caption-URL pairs (empty file?)")
    return pd.DataFrame({"caption": captions, "url": urls})


def iter_shard(tar_path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream the samples of a webdataset tar as (key, {extension: bytes}), one at a time.

    A sample's files sit next to each other in a webdataset tar; a key that comes back after
    other keys means the file is not one, and is an error.
    """
    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise FileNotFoundError(f"shard {tar_path} does not exist; run the rule that writes it")
    seen: set[str] = set()
    key: str | None = None
    parts: dict[str, bytes] = {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            name, _, ext = member.name.partition(".")
            if name != key:
                if key is not None:
                    yield key, parts
                if name in seen:
                    raise ValueError(
                        f"{tar_path}: the files of sample {name!r} are not next to each other; "
                        "not a webdataset shard"
                    )
                seen.add(name)
                key, parts = name, {}
            data = tar.extractfile(member)
            if data is None:  # only links and special files have none, and isfile() skipped them
                raise ValueError(f"{tar_path}: cannot read member {member.name!r}")
            parts[ext] = data.read()
    if key is not None:
        yield key, parts


def read_shard(tar_path: str | Path) -> list[tuple[str, dict[str, bytes]]]:
    """All samples of a webdataset tar, in the tar's order (see :func:`iter_shard`)."""
    return list(iter_shard(tar_path))


def count_samples(tar_path: str | Path) -> int:
    """The number of samples with an image in a webdataset tar, from its headers alone."""
    with tarfile.open(tar_path) as tar:
        images = {m.name.partition(".")[0] for m in tar if m.isfile() and m.name.endswith(".jpg")}
    return len(images)


def write_shard(tar_path: str | Path, samples: Iterable[tuple[str, dict[str, bytes]]]) -> None:
    """Write samples as a webdataset tar with fixed member metadata (same samples, same bytes).

    Written to a temporary name and renamed, so an interrupted job never leaves half a shard.
    """
    tar_path = Path(tar_path)
    tmp = tar_path.with_suffix(".tar.tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, parts in samples:
            for ext in sorted(parts):
                data = parts[ext]
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, tar_path)


def canonical_order(tar_path: str | Path, parquet_path: str | Path) -> None:
    """Rewrite a downloaded shard in key order, with fixed member metadata.

    img2dataset writes samples in the order its download threads finish, which differs from run
    to run; the trainer then sees the data in another order and trains another model. Sorting by
    key (img2dataset's keys follow the input rows) makes the shard, and everything after it,
    reproducible whatever the thread count.
    """
    write_shard(tar_path, sorted(read_shard(tar_path), key=lambda sample: sample[0]))
    table = pd.read_parquet(parquet_path)
    if "key" in table.columns:
        table.sort_values("key", kind="stable").to_parquet(parquet_path, index=False)
