"""img2dataset really downloads from a throwaway server on 127.0.0.1; failures are counted."""

import tarfile
import threading
import urllib.request

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idia.download import download_shard, serve_directory, url_table


@pytest.fixture
def corpus(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        Image.fromarray(np.full((16, 16, 3), 50 * i, np.uint8)).save(images / f"{i:03d}.jpg")
    table = pd.DataFrame(
        {
            "key": [f"{i:03d}" for i in range(6)],
            "path": [f"{i:03d}.jpg" for i in range(6)],  # 005.jpg does not exist
            "caption": [f"caption number {i}" for i in range(6)],
        }
    )
    table.to_parquet(tmp_path / "part-00000.parquet")
    return tmp_path


def test_server_serves_and_stops(corpus):
    before = threading.active_count()
    with serve_directory(corpus / "images") as base:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base}/000.jpg") as response:
            assert response.read()[:2] == b"\xff\xd8"
    assert threading.active_count() == before
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/000.jpg", timeout=2)


def test_img2dataset_download_counts_failures(corpus):
    out = corpus / "out"
    with serve_directory(corpus / "images") as base:
        urls = url_table(corpus / "part-00000.parquet", base)
        stats = download_shard(urls, out, processes=1, threads=2, timeout=5)
    assert stats["rows"] == 6 and stats["successes"] == 5 and stats["failed_to_download"] == 1
    with tarfile.open(out / "00000.tar") as tar:
        names = tar.getnames()
    assert sum(n.endswith(".jpg") for n in names) == 5
    assert sum(n.endswith(".txt") for n in names) == 5
    meta = pd.read_parquet(out / "00000.parquet")
    assert set(meta["caption"]) == {f"caption number {i}" for i in range(6)}
    assert (meta["status"] == "success").sum() == 5


def test_url_table_rejects_a_shard_without_paths(tmp_path):
    pd.DataFrame({"key": ["a"], "caption": ["x"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="bad.parquet.*path"):
        url_table(tmp_path / "bad.parquet", "http://127.0.0.1:1")


def test_shards_are_identical_whatever_order_the_threads_finish(corpus):
    # The same URLs give the same samples in the same order; only the URL's port (a free port
    # per run) differs, in the .json members and the url column.
    shards = []
    for run in range(2):
        out = corpus / f"out{run}"
        with serve_directory(corpus / "images") as base:
            download_shard(url_table(corpus / "part-00000.parquet", base), out, threads=4)
        with tarfile.open(out / "00000.tar") as tar:
            members = [
                (m.name, tar.extractfile(m).read())
                for m in tar.getmembers()
                if not m.name.endswith(".json")
            ]
        meta = pd.read_parquet(out / "00000.parquet").drop(columns=["url"])
        shards.append((members, meta))
    assert shards[0][0] == shards[1][0]
    names = [name for name, _ in shards[0][0]]
    assert names == sorted(names, key=lambda n: (n.split(".")[0], n))
    assert list(shards[0][1]["key"]) == sorted(shards[0][1]["key"])
    pd.testing.assert_frame_equal(shards[0][1], shards[1][1])
