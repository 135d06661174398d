"""scripts/seeds.py: per-seed configs, the planted base images read from what the real world
writer published, and (e2e) the whole script on two seeds of the tiny world."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "tiny.yaml"


def _load_seeds():
    spec = importlib.util.spec_from_file_location("seeds", ROOT / "scripts" / "seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seeds = _load_seeds()


def test_seed_config_changes_only_the_seed():
    base = yaml.safe_load(TINY.read_text())
    config = seeds.seed_config(base, 777)
    assert config["world"]["seed"] == 777 and base["world"]["seed"] == 7
    config["world"]["seed"] = base["world"]["seed"]
    assert config == base
    with pytest.raises(ValueError, match="no `world:` section"):
        seeds.seed_config({"models": {}}, 1)


def _world_base(results: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tiny world's base corpus where a seed's run keeps it; its truth and its TSV rows."""
    from idia.download import read_caption_tsv
    from idia.world import build_base

    world = yaml.safe_load(TINY.read_text())["world"] | {"seed": seed}
    world["base"] = world["base"] | {"n_planted": 3, "planted_photos": 3, "n_extras": 3}
    out = results / "world" / "base"
    build_base(out, seed=seed, n_identities=world["n_identities"], image_size=32,
               caption_templates=world["caption_templates"], **world["base"])  # fmt: skip
    tsv = read_caption_tsv(out / "web/cc3m/Train_GCC-training.tsv")
    base = tsv.assign(file=tsv["url"].str.rsplit("/", n=1).str[-1])
    return pd.read_parquet(out / "truth.parquet"), base


@pytest.mark.parametrize("seed", [7, 777])
def test_read_planted_gives_each_planted_identity_its_base_images(tmp_path, seed):
    results = tmp_path / "results"
    truth, base = _world_base(results, seed)
    images = seeds.read_planted(results)
    assert len(images) == 9 and set(images) <= set(base["file"])
    counts = pd.Series(list(images.values())).value_counts().to_dict()
    assert counts == dict(truth.loc[truth["planted"], ["person_id", "base_photos"]].values)
    # the mapping is what filter_rows joins on: the downloaded file names of the TSV
    owner = base["file"].map(images)
    assert owner.notna().sum() == 9 and set(owner.dropna()) == set(counts)


def test_read_planted_names_the_missing_table(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"planted\.parquet is missing.*rerun the seed"):
        seeds.read_planted(tmp_path / "results")


@pytest.mark.e2e
def test_seeds_script_on_the_tiny_world(tiny_run, tmp_path):
    """Seed 7 is the tiny world's own: its folder starts as a copy of the session's tiny run,
    so the script finds that seed done (Snakemake plans nothing) and runs seed 8 only."""
    out = tmp_path / "seeds"
    shutil.copytree(tiny_run, out / "seed-7", symlinks=True)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "seeds.py"), "--small", "--seeds", "7", "8",
         "--cores", "2", "--out", str(out)],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = pd.read_csv(out / "seeds.csv")
    assert set(table["seed"]) == {7, 8} and set(table["model"]) == {"tiny", "c-n2", "c-n1"}
    assert (table["tpr_lo"] <= table["tpr"]).all() and (table["tpr"] <= table["tpr_hi"]).all()
    assert (table["fpr_lo"] <= table["fpr"]).all() and (table["fpr"] <= table["fpr_hi"]).all()
    assert (table["tpr_hi"] - table["tpr_lo"] > 0.2).all()  # a handful of persons: wide
    stages = pd.read_csv(out / "filter_stages.csv")
    assert len(stages) == 4 and set(stages["stage"]) <= set(seeds.STAGES)  # 2 planted × 2 seeds
    filters = pd.read_csv(out / "filter.csv").set_index("seed")
    for seed, group in stages.groupby("seed"):
        found = group["stage"].isin(["found", "found_elsewhere"]).sum()
        assert found == filters.loc[seed, "true_positives"]
    assert "## Presence filter" in (out / "seeds.md").read_text()
    assert (out / "seed-8" / "config.yaml").exists()
    assert "Nothing to be done" in (out / "seed-7" / "snakemake.log").read_text()
