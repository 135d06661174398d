"""Download image-caption shards with img2dataset, the same code path as a real LAION download.

In the embedded world the images sit on local disk. ``serve_directory`` puts them behind a
throwaway HTTP server on 127.0.0.1 (a free port, stopped on exit) so that img2dataset fetches
them over HTTP exactly as it would fetch the web; failed URLs are counted, never fatal.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 at a free port; yield the base URL; always shut down."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"cannot serve {root}: not a directory")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="idia-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def url_table(shard: str | Path, base_url: str) -> pd.DataFrame:
    """Turn a world shard (key, path, caption) into img2dataset's input (url, caption, key)."""
    table = pd.read_parquet(shard)
    missing = {"key", "path", "caption"} - set(table.columns)
    if missing:
        raise ValueError(f"{shard}: missing columns {sorted(missing)}; has {list(table.columns)}")
    return pd.DataFrame(
        {
            "url": base_url.rstrip("/") + "/" + table["path"].astype(str),
            "caption": table["caption"],
            "source_key": table["key"].astype(str),
        }
    )


def download_shard(
    urls: pd.DataFrame,
    out_dir: str | Path,
    *,
    processes: int = 1,
    threads: int = 16,
    timeout: int = 10,
    retries: int = 0,
) -> dict:
    """Download a table of (url, caption, source_key) into one webdataset shard.

    Writes ``out_dir/00000.tar`` and ``00000.parquet`` (every input row with its status) and
    returns img2dataset's counts. Failed URLs are counted, not fatal. Both files come out in key
    order (see :func:`canonical_order`), so the same URLs give the same shard.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset import download

    out_dir = Path(out_dir)
    n_rows = len(urls)
    if n_rows == 0:
        raise ValueError(f"no rows to download into {out_dir}")
    # Start from an empty folder (img2dataset's own "overwrite" mode deletes its temp files).
    if out_dir.exists():
        shutil.rmtree(out_dir)
    with tempfile.TemporaryDirectory(prefix="idia-urls-") as tmp:
        url_list = Path(tmp) / "urls.parquet"
        urls.to_parquet(url_list, index=False)
        download(
            url_list=str(url_list),
            output_folder=str(out_dir),
            input_format="parquet",
            url_col="url",
            caption_col="caption",
            save_additional_columns=["source_key"],
            output_format="webdataset",
            resize_mode="no",
            number_sample_per_shard=n_rows,
            processes_count=processes,
            thread_count=threads,
            timeout=timeout,
            retries=retries,
            compute_hash=None,
            extract_exif=False,
            disallowed_header_directives=[],
            incremental_mode="incremental",
            enable_wandb=False,
        )
    stats_path = out_dir / "00000_stats.json"
    if not stats_path.exists():
        raise RuntimeError(f"img2dataset wrote no stats in {out_dir}; see the log above")
    stats = json.loads(stats_path.read_text())
    canonical_order(out_dir / "00000.tar", out_dir / "00000.parquet")
    return {
        "rows": n_rows,
        "successes": int(stats.get("successes", 0)),
        "failed_to_download": int(stats.get("failed_to_download", 0)),
        "failed_to_resize": int(stats.get("failed_to_resize", 0)),
        "status_dict": stats.get("status_dict", {}),
    }


def iter_shard(tar_path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream the samples of a webdataset tar as (key, {extension: bytes}), one at a time.

    A sample's files sit next to each other in a webdataset tar; a key that comes back after
    other keys means the file is not one, and is an error.
    """
    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise FileNotFoundError(f"shard {tar_path} does not exist; run the rule that writes it")
    seen: set[str] = set()
    key, parts = None, {}
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
            parts[ext] = tar.extractfile(member).read()
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
