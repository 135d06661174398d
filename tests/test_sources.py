"""Acquisition: fetching by URL, hub and path with pinned checksums; the public list formats."""

from __future__ import annotations

import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from idia.download import read_caption_tsv, split_rows
from idia.facescrub import HEADER, person_id, plan_downloads, read_facescrub, read_url_lists
from idia.names import read_census_surnames, read_ssa_first_names
from idia.sources import (
    Needed,
    SourceError,
    digest,
    fetch,
    file_name,
    missing_message,
    parquet_files,
    parse_hub,
    read_checksums,
    shipped,
    source_path,
)

REFERENCE = Path(__file__).resolve().parents[1] / "config" / "reference"


def test_fetch_over_the_proxy_verifies_the_pin_and_logs_the_request(web, tmp_path):
    root = tmp_path / "site"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("x,y\n1,2\n")
    (root / "data" / "empty.csv").write_text("")
    web({"files.idia.test": root})
    tmp = tmp_path
    pin = "sha256:" + hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    record = fetch("http://files.idia.test/data/a.csv", tmp / "out" / "a.csv", checksum=pin)
    assert record["size"] == 8 and record["pinned"] == pin
    assert (tmp / "out" / "a.csv").read_bytes() == b"x,y\n1,2\n"
    assert "127.0.0.1" in (tmp / "access.log").read_text()
    with pytest.raises(SourceError, match="pinned to"):
        fetch("http://files.idia.test/data/a.csv", tmp / "b.csv", checksum="sha256:" + "0" * 64)
    assert not (tmp / "b.csv").exists()  # a file that fails its pin is not kept
    with pytest.raises(SourceError, match="404"):
        fetch("http://files.idia.test/data/gone.csv", tmp / "gone.csv", retries=0)
    with pytest.raises(SourceError, match="empty"):
        fetch("http://files.idia.test/data/empty.csv", tmp / "empty.csv")


def test_git_blob_pins_and_checksum_files(tmp_path):
    f = tmp_path / "baby-names.csv"
    f.write_bytes(b"hello\n")
    # `git hash-object` of "hello\n"
    assert digest(f, "git-blob-sha1") == "ce013625030ba8dba906f756967f9e9ca394464a"
    sums = tmp_path / "SUMS"
    sums.write_text(f"# pins\n{'a' * 64}  part-00000.parquet\ngit-blob-sha1:{'b' * 40}  x.csv\n")
    pins = read_checksums(sums)
    assert pins == {
        "part-00000.parquet": "sha256:" + "a" * 64,
        "x.csv": "git-blob-sha1:" + "b" * 40,
    }
    sums.write_text("nothex  file\n")
    with pytest.raises(SourceError, match="SUMS:1"):
        read_checksums(sums)


def test_hub_locations_and_offline_hub_error(tmp_path, monkeypatch):
    hub = parse_hub("hf://datasets/laion/relaion400m/data/part-00001.parquet@v1")
    assert (hub.repo_type, hub.repo_id, hub.filename, hub.revision) == (
        "dataset", "laion/relaion400m", "data/part-00001.parquet", "v1")  # fmt: skip
    location = "hf://datasets/laion/relaion400m/data/part-00001.parquet"
    assert file_name(location) == "part-00001.parquet"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SourceError, match="not reachable"):
        fetch("hf://datasets/laion/relaion400m/part-00000.parquet", tmp_path / "p.parquet")


class _Gated(SimpleHTTPRequestHandler):
    """A hub endpoint that answers every file request the way a gated repository does."""

    def do_HEAD(self):  # noqa: N802
        self.send_response(401)
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("X-Error-Message", "Access to dataset is restricted.")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


def test_gated_hub_source_says_to_accept_the_terms_and_set_a_token(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gated)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        import importlib

        import huggingface_hub.constants

        importlib.reload(huggingface_hub.constants)
        with pytest.raises(SourceError, match="HF_TOKEN"):
            fetch("hf://datasets/laion/relaion400m/part-00000.parquet", tmp_path / "p.parquet")
    finally:
        server.shutdown()
        monkeypatch.undo()
        import importlib

        import huggingface_hub.constants

        importlib.reload(huggingface_hub.constants)


def test_missing_user_supplied_inputs_are_listed_in_one_message(tmp_path):
    (tmp_path / "here.txt").write_text("x")
    message = missing_message([
        Needed(str(tmp_path / "here.txt"), "fine"),
        Needed(str(tmp_path / "facescrub_actors.txt"), "request the FaceScrub zip"),
        Needed(str(tmp_path / "imagenet"), "download ImageNet"),
    ])  # fmt: skip
    assert message.startswith("2 input(s)")
    assert "request the FaceScrub zip" in message and "download ImageNet" in message
    assert "here.txt" not in message
    assert missing_message([Needed(str(tmp_path / "here.txt"), "fine")]) is None


def _facescrub(path: Path, lines: list[str]) -> Path:
    path.write_text("\t".join(HEADER) + "\n" + "".join(line + "\n" for line in lines))
    return path


def test_facescrub_lines_are_used_or_excluded_with_a_reason(tmp_path):
    sha = "a" * 64
    path = _facescrub(tmp_path / "facescrub_actresses.txt", [
        f"Ana Gómez\t1\t10\thttp://x.test/1.jpg\t1,2,30,40\t{sha}",
        f"Ana Gómez\t2\t11\thttp://x.test/2.jpg\t1,2,30,40\t{sha}",
        "Ana Gómez\t3\thttp://x.test/3.jpg\t1,2,3,4",            # malformed: 5 fields
        f"Bo O'Neil\t4\t12\thttp://x.test/4.jpg\t30,2,10,40\t{sha}",  # x2 < x1
        f"!!!\t5\t13\thttp://x.test/5.jpg\t1,2,30,40\t{sha}",        # no letters
        f"Bo O'Neil\t6\t14\tftp://x.test/6.jpg\t1,2,30,40\t{sha}",   # not http
        "Bo O'Neil\t7\t15\thttp://x.test/7.jpg\t1,2,30,40\tnothex",
    ])  # fmt: skip
    rows, bad = read_facescrub(path)
    assert list(rows["image_id"]) == ["1", "2"] and set(rows["gender"]) == {"female"}
    assert [b["line"] for b in bad] == [4, 5, 6, 7, 8]
    assert "malformed" in bad[0]["reason"] and "empty or negative" in bad[1]["reason"]
    assert "fewer than two letters" in bad[2]["reason"] and "http" in bad[3]["reason"]
    assert "sha256" in bad[4]["reason"]


def test_a_list_with_a_foreign_header_is_an_error(tmp_path):
    path = tmp_path / "facescrub_actors.txt"
    path.write_text("name,url\nA B,http://x.test/a.jpg\n")
    with pytest.raises(ValueError, match="FaceScrub columns"):
        read_facescrub(path)


def test_plan_merges_sources_and_excludes_duplicates(tmp_path):
    sha = "b" * 64
    actors = _facescrub(tmp_path / "facescrub_actors.txt", [
        f"Jörg Pilawa\t1\t1\thttp://x.test/j1.jpg\t0,0,9,9\t{sha}",
        f"Jörg Pilawa\t2\t2\thttp://x.test/j1.jpg\t0,0,9,9\t{sha}",   # same URL twice
    ])  # fmt: skip
    extra = tmp_path / "extra"
    (extra / "actors").mkdir(parents=True)
    (extra / "actresses").mkdir()
    (extra / "actors" / "Jorg_Pilawa.txt").write_text("http://x.test/other.jpg\n")  # same person
    (extra / "actresses" / "Karolina_Lodyga.txt").write_text(
        "http://x.test/k0.jpg\n\nnot a url\nhttp://x.test/k1.jpg\n"
    )
    plan, excluded = plan_downloads([actors], [extra])
    assert plan["name"].tolist() == ["Jörg Pilawa", "Karolina Lodyga", "Karolina Lodyga"]
    assert plan["row"].tolist() == [0, 1, 2] and plan["person_id"].str.len().gt(7).all()
    reasons = " | ".join(excluded["reason"])
    assert "duplicate name" in reasons and "listed twice" in reasons and "not http" in reasons
    assert person_id("Jörg Pilawa") != person_id("Jorg Pilawa")  # hashes keep them apart
    assert person_id("李小龍").startswith("person-")
    rows, _ = read_url_lists(extra)
    assert set(rows["gender"]) == {"male", "female"}


def test_the_papers_european_celebrities_parse(tmp_path):
    rows, bad = read_url_lists(REFERENCE / "european_celebs")
    assert rows["name"].nunique() == 18 and not bad
    assert "Bernhard Hoëcker" in set(rows["name"]) and "Johannes B. Kerner" in set(rows["name"])


def test_name_lists_in_their_public_formats(tmp_path):
    first = tmp_path / "baby-names.csv"
    first.write_text('"year","name","percent","sex"\n1880,"John",0.08,"boy"\n'
                     '1881,"William",0.05,"boy"\n1881,"John",0.01,"boy"\n'
                     '1880,"Mary",0.07,"girl"\n')  # fmt: skip
    assert read_ssa_first_names(first, 1000) == (["Mary"], ["John", "William"])
    assert read_ssa_first_names(first, 1) == (["Mary"], ["John"])
    surnames = read_census_surnames(REFERENCE / "census_2010_top1000_surnames.csv", 1000)
    assert len(surnames) == 1000 and surnames[:2] == ["Smith", "Johnson"]
    assert surnames[-1] == "Archer"  # the footer lines are not names
    with pytest.raises(ValueError, match="SSA baby-name format"):
        read_ssa_first_names(REFERENCE / "census_2010_top1000_surnames.csv", 10)


def test_cc3m_tsv_with_or_without_header(tmp_path):
    body = "a man on a bike\thttp://x.test/1.jpg\nan actor at the premiere\thttp://x.test/2.jpg\n"
    plain, headed = tmp_path / "plain.tsv", tmp_path / "headed.tsv"
    plain.write_text(body)
    headed.write_text("caption\turl\n" + body)
    for path in (plain, headed):
        table = read_caption_tsv(path)
        assert table["url"].tolist() == ["http://x.test/1.jpg", "http://x.test/2.jpg"]
    bad = tmp_path / "bad.tsv"
    bad.write_text(body + "no tab here\n")
    with pytest.raises(ValueError, match="bad.tsv:3"):
        read_caption_tsv(bad)
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_caption_tsv(tmp_path / "empty.tsv")
    parts = split_rows(pd.DataFrame({"x": range(5)}), 3)
    assert [len(p) for p in parts] == [2, 1, 2] or sum(len(p) for p in parts) == 5


def test_a_fetched_file_over_the_partial_threshold_gets_its_full_sha256_in_the_manifest(
    tmp_path, monkeypatch
):
    """fetch_source.py's two calls: fetch() hashes every byte, finish() records that hash."""
    import json
    import os
    from types import SimpleNamespace

    from idia import provenance
    from idia.lineage import chain
    from idia.smk import finish

    monkeypatch.setattr(provenance, "PARTIAL_THRESHOLD", 1000)
    monkeypatch.chdir(tmp_path)
    data = bytes(range(256)) * (3 * 2**12)  # 3 MiB: the partial hash would skip the middle MiB
    Path("upload.parquet").write_bytes(data)
    out = Path("resources/laion/part-00000.parquet")
    record = fetch("upload.parquet", out)
    job = SimpleNamespace(rule="fetch_laion", input=[], output=[str(out)], params={},
                          wildcards={}, log=[])  # fmt: skip
    finish(job)  # what the script recorded before: the partial hash of the ends
    assert json.loads(provenance.manifest_path(out).read_text())["outputs"][0]["hash"] == "partial"
    finish(job, hashes={out: {"bytes": record["size"], "sha256": record["sha256"]}})
    manifest = json.loads(provenance.manifest_path(out).read_text())
    (entry,) = manifest["outputs"]
    assert entry["hash"] == "full" and "mtime" not in entry
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() == record["sha256"]
    assert entry["bytes"] == len(data)
    # `idia provenance` checks every byte of it: an edit in the middle, mtime kept, is caught
    assert chain(str(out))["problems"] == []
    stat = out.stat()
    with open(out, "r+b") as handle:
        handle.seek(len(data) // 2)
        handle.write(b"edited")
    os.utime(out, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (problem,) = chain(str(out))["problems"]
    assert "changed since rule fetch_laion wrote it (recorded sha256" in problem


def test_read_columns_reads_only_those_asked_and_names_what_is_missing(tmp_path):
    from idia.sources import read_columns

    path = tmp_path / "urls.parquet"
    pd.DataFrame({"URL": ["u"], "TEXT": ["t"], "SAMPLE_ID": [7], "NSFW": ["x"]}).to_parquet(path)
    table = read_columns(path, {"url": "URL", "key": "SAMPLE_ID", "caption": "URL"})
    assert table.column_names == ["URL", "SAMPLE_ID"]  # each column once, in the order asked
    with pytest.raises(SourceError) as err:  # download.py's LAION download
        read_columns(path, {"url": "url", "caption": "TEXT"}, config_key="sources.laion.columns")
    assert str(err.value) == (
        f"{path}: no column 'url' (`sources.laion.columns.url`); the file has columns "
        "['URL', 'TEXT', 'SAMPLE_ID', 'NSFW']. Set `sources.laion.columns` in the config to this "
        "file's column names."
    )
    with pytest.raises(SourceError, match=r"no column 'row' \(keep\[0\]\).*Rerun the rule"):
        read_columns(path, {"url": "URL", "keep[0]": "row"})  # a table the workflow wrote


def test_a_local_folder_stands_for_its_parquet_files_in_name_order(tmp_path):
    folder = tmp_path / "laion"
    folder.mkdir()
    for name in ("part-00010.parquet", "part-00002.parquet", "notes.txt"):
        (folder / name).touch()
    (folder / "old.parquet").mkdir()  # not a file
    listed = ["hf://datasets/o/n/a.parquet", f"{folder}/", "b.parquet"]
    assert parquet_files(listed) == [
        "hf://datasets/o/n/a.parquet",
        str(folder / "part-00002.parquet"),
        str(folder / "part-00010.parquet"),
        "b.parquet",
    ]
    # a folder still to be made stays as written, for the missing-input message to list
    assert parquet_files([f"{tmp_path}/nope/"]) == [f"{tmp_path}/nope/"]
    (folder / "part-00002.parquet").unlink()
    (folder / "part-00010.parquet").unlink()
    with pytest.raises(SourceError, match=r"holds no \.parquet file"):
        parquet_files([f"{folder}/"])
    with pytest.raises(SourceError, match="only a local folder"):
        parquet_files(["hf://datasets/o/n/"])


def test_a_run_reads_remote_sources_from_resources_and_local_ones_as_shipped(tmp_path):
    project, run = tmp_path / "project", tmp_path / "run"
    (project / "config/reference").mkdir(parents=True)
    (project / "config/reference/surnames.csv").touch()
    (run / "mine").mkdir(parents=True)
    (run / "mine/names.csv").touch()
    url = "https://example.org/lists/baby-names.csv?raw=1"
    assert source_path("names", shipped(url, project, run)) == "resources/names/baby-names.csv"
    # the run's own file wins; a relative path only the project has is the project's copy
    assert shipped("mine/names.csv", project, run) == "mine/names.csv"
    shipped_copy = shipped("config/reference/surnames.csv", project, run)
    assert shipped_copy == str(project / "config/reference/surnames.csv")
    assert source_path("names", shipped_copy) == shipped_copy
    assert shipped("nowhere.csv", project, run) == "nowhere.csv"  # left for the missing list
