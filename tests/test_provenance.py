"""Provenance manifests (idia.provenance), the chain back to raw inputs (idia.lineage) and
``idia provenance``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from idia import cli
from idia.attack import PAPER_TEMPLATES
from idia.lineage import chain
from idia.provenance import (
    PACKAGES,
    file_hash,
    manifest_path,
    path_hash,
    record,
    sha256_lines,
)


def test_small_file_is_hashed_in_full(tmp_path: Path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    h = file_hash(f, threshold=100)
    assert h == {"bytes": 5, "sha256": hashlib.sha256(b"hello").hexdigest(), "hash": "full"}


def test_big_file_is_hashed_partially_from_both_ends(tmp_path: Path):
    f = tmp_path / "big.bin"
    subprocess.run(["truncate", "-s", str(5 * 2**20), str(f)], check=True)  # sparse
    h = file_hash(f, threshold=1000)
    assert h["hash"] == "partial" and h["bytes"] == 5 * 2**20 and "mtime" in h
    assert h["sha256"] == hashlib.sha256(bytes(2 * 2**20)).hexdigest()
    # a change in the middle is not seen by design; a change at the end is
    with open(f, "r+b") as handle:
        handle.seek(5 * 2**20 - 1)
        handle.write(b"x")
    assert file_hash(f, threshold=1000)["sha256"] != h["sha256"]
    assert file_hash(f, threshold=10 * 2**20)["hash"] == "full"


def test_directory_summary_ignores_snakemake_marker_and_sees_changes(tmp_path: Path):
    d = tmp_path / "photos"
    (d / "p1").mkdir(parents=True)
    (d / "p1" / "0.jpg").write_bytes(b"abc")
    (d / "1.jpg").write_bytes(b"de")
    h = path_hash(d)
    assert h["directory"] and h["files"] == 2 and h["bytes"] == 5
    (d / ".snakemake_timestamp").write_text("")
    assert path_hash(d) == h
    (d / "p1" / "0.jpg").write_bytes(b"abd")
    assert path_hash(d)["sha256"] != h["sha256"]
    assert path_hash(tmp_path / "nope") == {"missing": True}


def _job(tmp_path: Path) -> SimpleNamespace:
    """A stand-in for the ``snakemake`` object a workflow script receives."""
    Path("results/models/m").mkdir(parents=True)
    Path("results/attack").mkdir(parents=True)
    Path("results/models/m/open_clip_model.safetensors").write_bytes(b"weights")
    Path("results/attack/candidates.parquet").write_bytes(b"pool")
    Path("src").mkdir()
    Path("src/attack.py").write_text("x = 1\n")
    Path("results/attack/m").mkdir()
    Path("results/attack/m/text_emb.npy").write_bytes(b"emb")
    return SimpleNamespace(
        rule="encode_prompts",
        input={
            "weights": "results/models/m/open_clip_model.safetensors",
            "candidates": "results/attack/candidates.parquet",
            "code": ["src/attack.py"],
        },
        output=["results/attack/m/text_emb.npy"],
        params=SimpleNamespace(model={"model_dir": "results/models/m"}, templates="paper"),
        wildcards={"model": "m"},
        log=["logs/attack/m/encode_prompts.log"],
    )


def test_record_writes_a_manifest_per_output(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = _job(tmp_path)
    (written,) = record(job)
    assert written == manifest_path("results/attack/m/text_emb.npy")
    assert written.as_posix().endswith(".provenance/results/attack/m/text_emb.npy.json")
    m = json.loads(written.read_text())
    assert m["rule"] == "encode_prompts" and m["wildcards"] == {"model": "m"}
    assert m["params"]["model"] == {"model_dir": "results/models/m"}
    roles = {e["path"]: e.get("role") for e in m["inputs"]}
    assert roles == {
        "results/models/m/open_clip_model.safetensors": "model",
        "results/attack/candidates.parquet": "candidate_pool",
        "src/attack.py": "code",
    }
    weights = next(e for e in m["inputs"] if e["role"] == "model")
    assert weights["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert m["outputs"][0]["sha256"] == hashlib.sha256(b"emb").hexdigest()
    assert m["templates_sha256"] == sha256_lines(list(PAPER_TEMPLATES))
    assert set(m["packages"]) == set(PACKAGES)
    assert m["log"] == ["logs/attack/m/encode_prompts.log"]
    for key in ("python", "git_commit", "git_dirty", "timestamp", "host"):
        assert key in m


def _two_jobs(tmp_path: Path, monkeypatch) -> None:
    """A raw file → rule make_a (seed 7) → a.txt → rule make_b → b.txt, recorded for real."""
    monkeypatch.chdir(tmp_path)
    Path("raw.txt").write_text("raw")
    Path("src").mkdir()
    Path("src/a.py").write_text("A = 1\n")
    Path("results").mkdir()
    Path("results/a.txt").write_text("a")
    record(
        SimpleNamespace(
            rule="make_a",
            input={"raw": "raw.txt", "code": "src/a.py"},
            output={"a": "results/a.txt"},
            params={"world": {"seed": 7, "n": 3}},
            wildcards={},
            log=[],
        )
    )
    Path("results/b.txt").write_text("b")
    record(
        SimpleNamespace(
            rule="make_b",
            input=["results/a.txt"],
            output=["results/b.txt"],
            params={"tau": 1},
            wildcards={"model": "m"},
            log=[],
        )
    )


def test_cli_prints_the_chain_to_the_raw_inputs(tmp_path: Path, monkeypatch, capsys):
    _two_jobs(tmp_path, monkeypatch)
    assert cli.main(["provenance", "results/b.txt"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("results/b.txt")
    assert "← rule make_b" in out and "model=m" in out and "tau=1" in out
    assert "← rule make_a" in out and "world.seed=7" in out
    assert "raw.txt" in out and "raw input (no manifest)" in out
    assert "src/a.py" not in out and "hidden" in out
    assert cli.main(["provenance", "results/b.txt", "--code"]) == 0
    assert "src/a.py" in capsys.readouterr().out


def test_cli_json_and_directory_lookup(tmp_path: Path, monkeypatch, capsys):
    _two_jobs(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path / "results")  # the working directory is found from PATH
    assert cli.main(["provenance", "b.txt", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    tree = data["tree"]
    assert tree["job"]["rule"] == "make_b" and data["problems"] == []
    (a,) = tree["inputs"]
    assert a["path"] == "results/a.txt" and a["job"]["rule"] == "make_a"
    assert a["job"]["params"]["world"]["seed"] == 7
    assert [c["path"] for c in a["inputs"]] == ["raw.txt"]


def test_changed_file_is_a_loud_mismatch(tmp_path: Path, monkeypatch, capsys):
    _two_jobs(tmp_path, monkeypatch)
    Path("raw.txt").write_text("edited")
    assert cli.main(["provenance", "results/b.txt"]) == 1
    captured = capsys.readouterr()
    assert "HASH MISMATCH" in captured.out and "raw.txt changed since rule make_a" in captured.out
    assert "changed since the workflow recorded them" in captured.err
    assert len(chain("results/b.txt")["problems"]) == 1


def test_rewritten_output_is_a_mismatch(tmp_path: Path, monkeypatch):
    _two_jobs(tmp_path, monkeypatch)
    Path("results/a.txt").write_text("rewritten")
    problems = chain("results/b.txt")["problems"]
    assert any("changed since rule make_b read it" in p for p in problems)
    assert any("changed since rule make_a wrote it" in p for p in problems)


def test_no_manifest_exits_2_with_advice(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("stray.csv").write_text("x")
    assert cli.main(["provenance", "stray.csv"]) == 2
    err = capsys.readouterr().err
    assert "no provenance manifest" in err and "run `snakemake` first" in err


def test_file_inside_a_directory_output_uses_its_manifest(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("results/photos/p1").mkdir(parents=True)
    Path("results/photos/p1/0.jpg").write_bytes(b"jpg")
    record(
        SimpleNamespace(
            rule="world",
            input=[],
            output={"photos": "results/photos"},
            params={"world": {"seed": 7}},
            wildcards={},
            log=[],
        )
    )
    result = chain("results/photos/p1/0.jpg")
    assert result["tree"]["job"]["rule"] == "world"


@pytest.mark.parametrize("bad", [{"a": {1, 2}}, {"a": Path("x")}])
def test_params_are_made_json_safe(tmp_path: Path, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    Path("o").write_text("o")
    (m,) = record(
        SimpleNamespace(rule="r", input=[], output=["o"], params=bad, wildcards={}, log=[])
    )
    json.loads(m.read_text())


def test_snakemake_source_cache_copy_is_recorded_as_the_original(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = tmp_path / "repo/workflow/models/a/config.json"
    original.parent.mkdir(parents=True)
    original.write_text("{}")
    cache = tmp_path / "cache/snakemake-runtime-cache/tmpab12/file"
    copy = Path(f"{cache}{tmp_path}/repo/workflow/rules/../models/a/config.json")
    copy.parent.mkdir(parents=True)
    copy.write_text("{}")
    Path("o").write_text("o")
    (m,) = record(
        SimpleNamespace(
            rule="r", input={"arch": str(copy)}, output=["o"], params={}, wildcards={}, log=[]
        )
    )
    (entry,) = json.loads(m.read_text())["inputs"]
    assert entry["path"] == "repo/workflow/models/a/config.json"  # relative to the run's folder


def _big_job(tmp_path: Path, monkeypatch) -> Path:
    """raw.bin (5 MiB, "big" under a 1000-byte partial-hash threshold) → rule make → out.txt."""
    import os

    from idia import provenance

    monkeypatch.setattr(provenance, "PARTIAL_THRESHOLD", 1000)
    monkeypatch.chdir(tmp_path)
    big = Path("raw.bin")
    big.write_bytes(bytes(range(256)) * (5 * 2**12))
    os.utime(big, (1_700_000_000, 1_700_000_000))
    Path("out.txt").write_text("out")
    job = SimpleNamespace(
        rule="make", input=["raw.bin"], output=["out.txt"], params={}, wildcards={}, log=[]
    )
    record(job)
    return big


def test_big_file_edited_in_the_middle_is_caught_by_its_mtime(tmp_path: Path, monkeypatch):
    big = _big_job(tmp_path, monkeypatch)
    (entry,) = json.loads(manifest_path("out.txt").read_text())["inputs"]
    assert entry["hash"] == "partial"
    assert chain("out.txt")["problems"] == []
    with open(big, "r+b") as handle:  # the same size, the same ends
        handle.seek(2 * 2**20)
        handle.write(b"edited")
    (problem,) = chain("out.txt")["problems"]
    assert problem.startswith("raw.bin changed since rule make read it")
    assert "only its first and last MiB are hashed" in problem and "IDIA_FULL_HASH=1" in problem


def test_full_hashes_on_request_verify_every_byte(tmp_path: Path, monkeypatch):
    import os

    monkeypatch.setenv("IDIA_FULL_HASH", "1")
    big = _big_job(tmp_path, monkeypatch)
    monkeypatch.delenv("IDIA_FULL_HASH")
    (entry,) = json.loads(manifest_path("out.txt").read_text())["inputs"]
    assert entry["hash"] == "full"
    assert entry["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    os.utime(big, (1_800_000_000, 1_800_000_000))  # a new mtime alone is no change in full
    assert chain("out.txt")["problems"] == []
    with open(big, "r+b") as handle:
        handle.seek(2 * 2**20)
        handle.write(b"edited")
    os.utime(big, (1_800_000_000, 1_800_000_000))
    (problem,) = chain("out.txt")["problems"]
    assert "changed since rule make read it (recorded sha256" in problem


def test_a_deleted_output_fails_the_command(tmp_path: Path, monkeypatch, capsys):
    _two_jobs(tmp_path, monkeypatch)
    Path("results/b.txt").unlink()
    assert cli.main(["provenance", "results/b.txt"]) == 1
    out = capsys.readouterr().out
    assert "results/b.txt is missing now (rule make_b wrote it)" in out
    Path("results/b.txt").write_text("b")
    Path("results/a.txt").unlink()  # an intermediate output: reported once, by its reader
    problems = chain("results/b.txt")["problems"]
    assert problems == ["results/a.txt is missing now (rule make_b read it)"]


def test_a_moved_clone_does_not_look_changed(tmp_path: Path, monkeypatch):
    import shutil

    clone = tmp_path / "clone"
    clone.mkdir()
    monkeypatch.chdir(clone)
    Path("src").mkdir()
    Path("src/a.py").write_text("A = 1\n")
    Path("o.txt").write_text("o")
    (manifest,) = record(
        SimpleNamespace(
            rule="r",
            input={"code": str(clone / "src/a.py")},  # Snakemake hands package sources absolute
            output=[str(clone / "o.txt")],
            params={},
            wildcards={},
            log=[str(clone / "logs/r.log")],
        )
    )
    recorded = json.loads(manifest.read_text())
    assert [e["path"] for e in recorded["inputs"] + recorded["outputs"]] == ["src/a.py", "o.txt"]
    assert recorded["log"] == ["logs/r.log"]
    moved = tmp_path / "elsewhere"
    shutil.move(clone, moved)
    monkeypatch.chdir(moved)
    assert chain("o.txt", code=True)["problems"] == []


def test_a_known_full_hash_is_recorded_only_while_the_size_matches(tmp_path: Path, monkeypatch):
    from idia import provenance

    monkeypatch.setattr(provenance, "PARTIAL_THRESHOLD", 1000)
    monkeypatch.chdir(tmp_path)
    big = Path("out.dat")
    big.write_bytes(bytes(range(256)) * (3 * 2**12))
    job = SimpleNamespace(rule="r", input=[], output=["./out.dat"], params={}, wildcards={}, log=[])
    full = hashlib.sha256(big.read_bytes()).hexdigest()
    (m,) = record(job, hashes={big: {"bytes": big.stat().st_size, "sha256": full}})
    (entry,) = json.loads(m.read_text())["outputs"]
    assert entry == {"path": "./out.dat", "bytes": 3 * 2**20, "sha256": full, "hash": "full"}
    # a stale hash (the file changed after it was computed) is not trusted: hashed anew
    (m,) = record(job, hashes={big: {"bytes": 5, "sha256": full}})
    (entry,) = json.loads(m.read_text())["outputs"]
    assert entry["hash"] == "partial" and entry["sha256"] != full
    with pytest.raises(ValueError, match="sha256"):
        record(job, hashes={big: {"bytes": 5}})
