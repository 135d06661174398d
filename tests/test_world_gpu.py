"""config/world-gpu.yaml: the paper-shaped world for one GPU plans here (a dry run, seconds) and
its sizes can give the cohort it asks for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from idia.world import occurrence_counts

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "world-gpu.yaml"


def test_world_gpu_has_the_papers_shape():
    config = yaml.safe_load(CONFIG.read_text())
    world, injection = config["world"], config["injection"]
    assert sorted(injection["levels"], reverse=True) == [75, 50, 25, 10, 5, 1]
    cohort = injection["cohort"]
    assert cohort["members"] >= 100 and cohort["non_members"] >= 100
    assert world["n_identities"] >= 500 and world["n_identities"] - world["n_members"] >= 100
    archs = {m["arch"] for m in [*config["models"].values(), *injection["models"].values()]}
    assert archs == {"ViT-B-32"}
    # a member needs >= max(levels) confirmed pairs: the world must publish that many for
    # members + a margin for the planted (present) and for pairs the classifier rejects
    occ = world["occurrences"]
    counts = occurrence_counts(world["n_members"], occ["min"], occ["max"])
    eligible = int((counts >= max(injection["levels"])).sum())
    assert eligible >= cohort["members"] + world["base"]["n_planted"] + 20
    assert len(config["sources"]["laion"]["files"]) == world["shards"]


def test_world_gpu_dry_run_plans(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(CONFIG), "--cores", "16",
         "--scheduler", "greedy"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", done.stdout, re.MULTILINE))
    assert jobs["train_clip"] == "7"  # track L's ViT-B-32 + one per level
    assert jobs["inject_level"] == "6" and jobs["predict"] == "7"
    assert jobs["search_shard"] == "8" and jobs["faces_shard"] == "4"
