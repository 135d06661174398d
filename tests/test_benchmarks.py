"""Every benchmark's ``--small`` mode runs and prints what its README promises, so none rots.

Each script runs as a subprocess exactly as a user would start it; the assertions read its
printed rows (or the JSON it writes) and check that the numbers are there and make sense.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
NUMBER = r"([0-9][0-9,]*\.?[0-9]*)"


def _run(script: str, *args: str, timeout: int = 600) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--small", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{script} --small failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def _positive(text: str) -> float:
    value = float(text.replace(",", ""))
    assert math.isfinite(value) and value > 0, text
    return value


def test_bench_scoring_small():
    out = _run("bench_scoring.py")
    assert "scores equal" in out and "metrics tables equal" in out
    ours = re.search(rf"\| idia attack.sweep \(vectorized\)\s+\|\s+{NUMBER} \|\s+1.0 \|", out)
    loop = re.search(rf"\| per-draw Counter loop \(notebooks\)\s+\|\s+{NUMBER} \|\s+{NUMBER}", out)
    assert ours and loop, out
    _positive(ours.group(1))
    assert _positive(loop.group(2)) > 1  # the loop is slower than the vectorized sweep
    assert re.search(r"stats.bootstrap, 3 × 12 persons, 100 reps", out)


def test_bench_search_small():
    out = _run("bench_search.py")
    assert "all counts agree" in out
    for n in (50, 500):
        assert f"=== {n} names ===" in out
        assert f"planted truth (1 thr): {n}/{n} names agree" in out
    rows = re.findall(rf"idia search_shard \(word, 1 thr\)\s+{NUMBER}\s+{NUMBER}\s+\S+\s+1.0", out)
    assert len(rows) == 2, out
    for seconds, rate in rows:
        _positive(seconds)
        _positive(rate)
    loops = re.findall(rf"per-name pandas str.contains\s+{NUMBER}\s+{NUMBER}\s+\S+\s+{NUMBER}", out)
    assert len(loops) == 2 and all(_positive(r[2]) > 0 for r in loops), out


def test_bench_pool_small():
    out = _run("bench_pool.py")
    result = json.loads(out.strip().splitlines()[-1])
    steps = ("encode", "predict")
    assert set(result["ratios"]) == {f"{s}_{r}" for s in steps for r in ("time", "cpu", "memory")}
    for value in result["ratios"].values():
        assert math.isfinite(value) and value > 0
    whole, chunked, large = result["rows"]
    assert (whole["mode"], chunked["mode"], large["mode"]) == ("whole", "chunked", "chunked")
    assert whole["names"] == chunked["names"] == 300 and large["names"] == 1000
    assert whole["predict"]["digest"] == chunked["predict"]["digest"]  # same predictions
    for row in result["rows"]:
        for step in ("encode", "predict"):
            assert row[step]["rate"] > 0 and row[step]["peak_mb"] >= row[step]["start_mb"] > 0
        assert row["predict"]["device"] in ("cpu", "cuda")
    table = [line for line in out.splitlines() if line.startswith("| encode |")]
    assert len(table) == 3 and "| 21000 | chunked |" in table[-1]
    assert re.search(r"chunked / whole at 300 names: encode_time [0-9.]+", out)


@pytest.mark.e2e
def test_bench_pool_world_small(tiny_run: Path):
    """The pool-size benchmark on a finished run: at the run's own pool size (40 names) it
    reproduces the workflow's pool, predictions and confusion at tau; larger pools are the same
    draw continued, with every rate a proportion inside its interval."""
    config = BENCH.parent / "tests" / "config" / "tiny.yaml"
    results = str(tiny_run / "results")
    pools = ("--pools", "300", "40", "100")  # 40: the run's own pool size
    out = _run(
        "bench_pool.py", "--world", results, "--model", "tiny", "--config", str(config), *pools
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["model"] == "tiny" and result["templates"] == 21 and result["tau"] == 1
    rows = result["rows"]
    assert [r["names"] for r in rows] == [40, 100, 300]  # sorted, whatever the order given
    own = rows[0]
    assert own["same_pool_as_run"] is True
    assert own["pred_agreement_with_run"] >= 0.99  # same model, pool and photos as the predict job
    at_tau = json.loads((tiny_run / "results/stats/tiny/summary.json").read_text())["at_tau"]
    assert (own["tp"], own["fp"]) == (at_tau["tp"], at_tau["fp"])
    for r in rows:
        assert r["prompts"] == 21 * r["names"] and r["prompts_per_cpu_s"] > 0
        assert r["members"] == own["members"] > 0 and r["nonmembers"] == own["nonmembers"] > 0
        assert r["tpr"] == pytest.approx(r["tp"] / r["members"])
        assert r["fpr"] == pytest.approx(r["fp"] / r["nonmembers"])
        for rate in ("tpr", "fpr"):
            lo, hi = r[f"{rate}_ci"]
            assert 0 <= lo <= r[rate] <= hi <= 1 and hi - lo > 0
        for score in ("vote", "combined"):
            low, high = r[f"tpr_at_fpr0.01_{score}"], r[f"tpr_at_fpr0.05_{score}"]
            assert 0 <= low <= high <= 1  # a looser FPR never lowers the TPR
    table = [line for line in out.splitlines() if re.match(r"\| (40|100|300) \| ", line)]
    assert [line.split(" | ")[1] for line in table] == ["840", "2100", "6300"]


@pytest.mark.filterwarnings("ignore")
def test_bench_gpu_small(tmp_path):
    out = _run("bench_gpu.py", "--out", str(tmp_path))
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert json.loads(out[out.index("{") :]) == result
    (train,) = result["training"]
    assert train["batch"] == 16 and train["samples"] == 64
    assert train["seconds"] > 0 and train["images_per_s_wall"] > 0
    assert train["images_per_s_median_2nd_half"] > 0  # parsed from the trainer's own log
    (ceiling,) = result["ceiling"]  # training steps on device-resident tensors
    assert ceiling["batch"] == 16 and ceiling["images_per_s"] > 0
    (ratio,) = result["ratios"]
    assert ratio["trainer_over_ceiling"] == pytest.approx(
        train["images_per_s_median_2nd_half"] / ceiling["images_per_s"], abs=1e-3
    )
    (enc,) = result["encoders"]
    assert enc["prompts"] == 50 * 21 and enc["photos"] == 32
    assert enc["prompts_per_s"] > 0 and enc["photos_per_s"] > 0
    assert enc["photo_decoding"] == ("gpu" if result["device"] != "cpu" else "pil")
    # the trainer wrote its log and a checkpoint for its one epoch
    assert list(tmp_path.glob("runs-16/bench/checkpoints/epoch_1.pt"))


def test_bench_stages_small():
    out = _run("bench_stages.py")
    for label in ("decode a 512-px JPEG", "Haar cascade on it", "encode one image, RN50"):
        line = re.search(rf"{re.escape(label)}.*?{NUMBER} ms", out)
        assert line, out
        _positive(line.group(1))
    rows = re.findall(rf"^\| (.+?) \| {NUMBER} \| {NUMBER} ms \| {NUMBER} \|$", out, re.M)
    stages = [row[0] for row in rows]
    assert any(s.startswith("embed CC3M with RN50") for s in stages), out
    assert any(s.startswith("FAISS IVF") for s in stages), out
    # the LAION row multiplies by the paper's own hit total, read from config/reference
    assert any("1,388,667 caption hits" in s for s in stages), out
    for _, items, per_ms, hours in rows:
        # core-hours are the items times the per-item time: the table is its own arithmetic
        expected = _positive(items) * _positive(per_ms) / 1e3 / 3600
        assert float(hours.replace(",", "")) == pytest.approx(expected, rel=0.06, abs=0.06)
