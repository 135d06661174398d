"""Paper mode end to end: `--configfile config/paper.yaml` plus a small overlay that points every
source at the embedded world's published files on 127.0.0.1 (as the internet would serve them)
and the pretrained models at a local weight file through open_clip's `pretrained=FILE` path.
The paper's own rules run, from the FaceScrub-format lists to the figures and the report, and
the numbers are checked against the world's truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from idia.world import BASE_HOST, WORLD_HOST, build_base, build_world
from idia.worldweb import start

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
WORLD = dict(
    seed=7, n_identities=12, n_members=8, attack_photos=6, occurrences={"min": 2, "max": 12},
    n_generic=40, image_size=64, n_broken_urls=2, n_shards=2,
    caption_templates=["a photo of {name}", "{name} at the premiere"], url_list_identities=1,
    faults={"dead_urls": 1, "bad_hashes": 1, "bad_boxes": 1, "malformed_lines": 1,
            "sparse_identities": 1},
)  # fmt: skip
BASE = dict(
    n_generic=20, n_extras=2, extra_photos=2, n_planted=2, planted_photos=2,
    eval_per_class=1, n_eval_pairs=5,
)  # fmt: skip
TINY_TRAIN = {"epochs": 1, "batch_size": 16, "lr": 0.001, "wd": 0.1, "warmup": 2, "seed": 0,
              "workers": 1, "precision": "fp32", "gpus": 0}  # fmt: skip


def _pretrained_file(folder: Path) -> Path:
    """A randomly initialised ViT-S-32 saved where a downloaded checkpoint would be."""
    import torch
    from safetensors.torch import save_file

    from idia.compat import import_open_clip

    torch.manual_seed(0)
    model = import_open_clip().create_model("ViT-S-32")
    path = folder / "vit-s-32.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _overlay(site: Path, weights: Path, reference: Path) -> dict:
    laion = [f"http://{WORLD_HOST}/laion/part-{i:05d}.parquet" for i in range(2)]
    pretrained = {"arch": "ViT-S-32", "pretrained": str(weights)}
    injected = {"arch": "idia-vit-xs", "train": TINY_TRAIN}
    return {
        "sources": {
            "facescrub": [str(site / "facescrub/facescrub_actors.txt"),
                          str(site / "facescrub/facescrub_actresses.txt")],  # fmt: skip
            "extra_identities": [str(site / "extra")],
            "laion": {"files": laion, "checksums": str(site / "web.sha256")},
            "cc3m": {"train": f"http://{BASE_HOST}/cc3m/Train_GCC-training.tsv",
                     "validation": f"http://{BASE_HOST}/cc3m/Validation_GCC-1.1.0-Validation.tsv",
                     "checksums": str(site / "base/web.sha256")},  # fmt: skip
            "names": {"first": f"http://{WORLD_HOST}/names/baby-names.csv",
                      "surnames": f"http://{WORLD_HOST}/names/census_surnames.csv",
                      "checksums": str(site / "web.sha256")},  # fmt: skip
        },
        "identities": {"shards": 2, "min_photos": 6},
        "download": {"processes": 1, "threads": 4, "timeout": 5, "retries": 0},
        "search": {"bin_edges": [1, 3, float("inf")], "reference": str(reference)},
        "candidates": {"size": 40},
        "models": {name: pretrained for name in ("vit-b-32", "vit-b-16", "vit-l-14")},
        "attack": {"k_max": 4, "draws": 3, "batch_size": 64, "device": "cpu"},
        "stats": {"n_boot": 200},
        "injection": {
            "base": {"shards": 2},
            "pairs": {"min_confidence": 0.3},
            "retrieval": {"k": 4, "nprobe": 4, "batch_size": 64},
            "face_classifier": {"arch": "resnet18", "input_size": 32, "epochs": 40,
                                "batch_size": 16, "lr": 0.002, "test_fraction": 0.2,
                                "gpus": 0},  # fmt: skip
            "presence": {"min_faces": 1, "min_confidence": 0.5},
            "cohort": {"members": 2, "non_members": 2, "seed": 7},
            "levels": [1],
            "shards": 1,
            "models": {name: injected for name in ("cc3m-rn50", "cc3m-vit-b-32", "cc3m-rn50x4")},
            # folders named by their classes; the held-out pairs come from the validation TSV
            "utility": {"eval_dir": str(site / "base/eval/classes")},
        },
    }


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory) -> tuple[Path, Path]:
    site = tmp_path_factory.mktemp("published")
    build_world(site, **WORLD)
    build_base(site / "base", seed=WORLD["seed"], n_identities=WORLD["n_identities"],
               image_size=WORLD["image_size"], caption_templates=WORLD["caption_templates"],
               **BASE)  # fmt: skip
    truth = pd.read_parquet(site / "truth.parquet")
    # A reference in the paper's format: the true counts, but one member's count is zeroed.
    reference = site / "reference_counts.csv"
    changed = truth[truth["member"]].iloc[0]["name"]
    counts = truth["occurrences"].where(truth["name"] != changed, 0)
    pd.DataFrame({"name": truth["name"], "count": counts,
                  "membership": ["member" if c else "non_member" for c in counts],
                  "bin": "-"}).to_csv(reference)  # fmt: skip
    work = tmp_path_factory.mktemp("paper")
    overlay = work / "overlay.yaml"
    overlay.write_text(
        yaml.safe_dump(_overlay(site, _pretrained_file(site), reference))
    )
    proxy, server = start({WORLD_HOST: site / "web", BASE_HOST: site / "base/web"},
                          log=work / "internet.log")  # fmt: skip
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1",
               http_proxy=proxy, HTTP_PROXY=proxy, no_proxy="", NO_PROXY="")  # fmt: skip
    try:
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
             "--directory", str(work), "--configfile", str(ROOT / "config/paper.yaml"),
             str(overlay), "--cores", "2"],
            capture_output=True, text=True, env=env, cwd=work,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    return work, site


def test_paper_rules_acquire_every_source_over_the_network(paper_run):
    work, site = paper_run
    log = (work / "internet.log").read_text()
    for url in (f"http://{WORLD_HOST}/laion/part-00001.parquet",
                f"http://{WORLD_HOST}/names/baby-names.csv", f"http://{WORLD_HOST}/faces/",
                f"http://{BASE_HOST}/cc3m/Train_GCC-training.tsv", f"http://{BASE_HOST}/img/",
                f"http://{BASE_HOST}/cc3m/Validation_GCC-1.1.0-Validation.tsv",
                f"http://{BASE_HOST}/val/"):
        assert url in log, url
    assert not (work / "results/world").exists()  # no world rule ran in paper mode


def test_membership_from_the_laion_format_search_matches_the_world(paper_run):
    work, site = paper_run
    truth = pd.read_parquet(site / "truth.parquet").set_index("person_id")
    counts = pd.read_parquet(work / "results/search/counts.parquet").set_index("person_id")
    assert sorted(counts.index) == sorted(truth.index)  # every identity accounted for
    assert (counts.loc[truth.index, "count"] == truth["occurrences"]).all()
    assert (counts.loc[truth.index, "member"] == truth["member"]).all()
    report = pd.read_csv(work / "results/identities/report.csv")
    assert set(report.loc[report["status"] == "kept", "person_id"]) == set(truth.index)
    assert (report["status"] == "excluded").sum() == 1  # the person listed with 2 photos


def test_counts_are_compared_with_the_reference(paper_run):
    work, _ = paper_run
    summary = json.loads((work / "results/search/reference_comparison.json").read_text())
    assert summary["matched"] == 12 and len(summary["membership_disagree"]) == 1
    assert summary["membership_agreement"] == pytest.approx(11 / 12)
    table = pd.read_csv(work / "results/search/reference_comparison.csv")
    assert table.iloc[0]["count_reference"] == 0 and table.iloc[0]["count"] > 0
    assert (work / "results/figures/reference_counts.pdf").read_bytes().startswith(b"%PDF")


def test_pretrained_and_injected_models_are_attacked(paper_run):
    work, _ = paper_run
    summary = pd.read_csv(work / "results/attack/summary.csv")
    assert set(summary["model"]) == {"vit-b-32", "vit-b-16", "vit-l-14", "cc3m-rn50-n1",
                                     "cc3m-vit-b-32-n1", "cc3m-rn50x4-n1"}  # fmt: skip
    cohort = pd.read_csv(work / "results/inject/cohort.csv")
    members = set(cohort.loc[cohort["status"] == "member", "person_id"])
    counts = pd.read_parquet(work / "results/inject/n1/counts.parquet").set_index("person_id")
    assert len(members) == 2 and all(counts.loc[p, "tagged"] == 1 for p in members)
    for name in ("metrics_vs_k", "tpr_heatmap"):
        assert (work / f"results/figures/vit-b-32/{name}.png").stat().st_size > 10_000
