"""img2dataset really downloads, through the world's proxy on 127.0.0.1; failures are counted."""

import hashlib
import tarfile
import threading
import urllib.request

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idia.download import download_shard

HOST = "corpus.idia.test"


@pytest.fixture
def corpus(tmp_path, web):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        Image.fromarray(np.full((16, 16, 3), 50 * i, np.uint8)).save(images / f"{i:03d}.jpg")
    table = pd.DataFrame(
        {
            "URL": [f"http://{HOST}/{i:03d}.jpg" for i in range(6)],  # 005.jpg does not exist
            "TEXT": [f"caption number {i}" for i in range(6)],
            "SAMPLE_ID": list(range(6)),
        }
    )
    web({HOST: images})
    return tmp_path, table


def test_proxy_serves_the_hosts_it_knows_and_404s_the_rest(corpus):
    tmp, _ = corpus
    with urllib.request.urlopen(f"http://{HOST}/000.jpg") as response:
        assert response.read()[:2] == b"\xff\xd8"
    for url in (f"http://{HOST}/../access.log", f"http://{HOST}/missing.jpg",
                "http://other.idia.test/000.jpg"):  # fmt: skip
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url)
    log = (tmp / "access.log").read_text()
    assert log.startswith("127.0.0.1 ") and f"http://{HOST}/000.jpg" in log


def test_img2dataset_download_counts_failures(corpus):
    tmp, table = corpus
    out = tmp / "out"
    stats = download_shard(table, out, url_col="URL", caption_col="TEXT",
                           keep_columns=["SAMPLE_ID"], threads=2, timeout=5)  # fmt: skip
    assert stats["rows"] == 6 and stats["successes"] == 5 and stats["failed_to_download"] == 1
    assert sum(stats["status_dict"].values()) >= 6
    with tarfile.open(out / "00000.tar") as tar:
        names = tar.getnames()
    assert sum(n.endswith(".jpg") for n in names) == 5
    assert sum(n.endswith(".txt") for n in names) == 5
    meta = pd.read_parquet(out / "00000.parquet")
    assert set(meta["caption"]) == {f"caption number {i}" for i in range(6)}  # img2dataset names it
    assert (meta["status"] == "success").sum() == 5
    assert sorted(meta["SAMPLE_ID"]) == list(range(6))
    assert not (out / "00000_stats.json").exists()  # timings and local paths are not kept


def test_original_bytes_and_their_hash_are_kept_on_request(corpus):
    tmp, table = corpus
    out = tmp / "raw"
    download_shard(table[["URL"]], out, url_col="URL", compute_hash="sha256", keep_bytes=True)
    meta = pd.read_parquet(out / "00000.parquet").set_index("key")
    with tarfile.open(out / "00000.tar") as tar:
        for member in tar:
            if member.name.endswith(".jpg"):
                data = tar.extractfile(member).read()
                key = member.name.split(".")[0]
                assert hashlib.sha256(data).hexdigest() == meta.loc[key, "sha256"]
                url = meta.loc[key, "url"]
                assert data == (tmp / "images" / url.rsplit("/", 1)[1]).read_bytes()


def test_an_empty_url_table_gives_an_empty_shard(corpus):
    tmp, table = corpus
    stats = download_shard(table.iloc[:0], tmp / "none", url_col="URL", caption_col="TEXT")
    assert stats["rows"] == 0 and stats["successes"] == 0
    with tarfile.open(tmp / "none" / "00000.tar") as tar:
        assert tar.getnames() == []
    assert pd.read_parquet(tmp / "none" / "00000.parquet").empty


def test_shards_are_byte_identical_whatever_order_the_threads_finish(corpus):
    tmp, table = corpus
    shards = []
    for run, threads in enumerate((1, 4)):
        out = tmp / f"out{run}"
        download_shard(table, out, url_col="URL", caption_col="TEXT", threads=threads)
        shards.append(((out / "00000.tar").read_bytes(), (out / "00000.parquet").read_bytes()))
    assert shards[0] == shards[1]
    with tarfile.open(tmp / "out0" / "00000.tar") as tar:
        names = tar.getnames()
    assert names == sorted(names, key=lambda n: (n.split(".")[0], n))
    assert threading.active_count() >= 1
