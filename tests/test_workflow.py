"""The whole workflow, end to end, on a tiny world (tests/config/tiny.yaml): every stage runs for
real (img2dataset over 127.0.0.1, DuckDB, open_clip's trainer, the attack, the figures)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from tinyworld import ROOT, TINY, job_counts, planned_rules, snakemake

# Every test here runs Snakemake on the tiny world: the end-to-end tier (`make test-fast` skips it).
pytestmark = pytest.mark.e2e


def test_world_truth_is_recovered_by_search(tiny_run: Path):
    check = json.loads((tiny_run / "results/search/truth_check.json").read_text())
    assert check["identities"] == 12
    assert check["counts_agree"] == 12 and check["mismatches"] == []
    assert check["members_found"] == 8
    assert check["failed_urls"] == 2  # the world's broken URLs are counted, not fatal
    downloads = json.loads((tiny_run / "results/download/summary.json").read_text())
    assert downloads["successes"] + downloads["failed_to_download"] == downloads["rows"]


def test_every_source_is_acquired_over_127_0_0_1_and_every_person_accounted_for(tiny_run: Path):
    web = (tiny_run / "logs/world/web.log").read_text()
    for url in ("http://idia-world.test/laion/part-00000.parquet",
                "http://idia-world.test/names/baby-names.csv",
                "http://cc3m.idia-world.test/cc3m/Train_GCC-training.tsv",
                "http://cc3m.idia-world.test/cc3m/Validation_GCC-1.1.0-Validation.tsv",
                "http://idia-world.test/faces/", "http://idia-world.test/laion/img/",
                "http://cc3m.idia-world.test/img/",
                "http://cc3m.idia-world.test/val/"):  # fmt: skip
        assert any(line.startswith("127.0.0.1 ") and url in line for line in web.splitlines()), url
    fetched = pd.read_parquet(tiny_run / "resources/laion/part-00000.parquet")
    assert list(fetched.columns)[:3] == ["SAMPLE_ID", "URL", "TEXT"]
    log = tiny_run / "logs/sources/laion/part-00000.parquet.log"
    assert "checksum verified" in log.read_text()
    report = pd.read_csv(tiny_run / "results/identities/report.csv")
    truth = pd.read_parquet(tiny_run / "results/world/truth.parquet")
    kept = report[report["status"] == "kept"]
    assert sorted(kept["person_id"]) == sorted(truth["person_id"])  # every study identity
    (excluded,) = report[report["status"] == "excluded"].itertuples()
    assert "fewer than identities.min_photos=6" in excluded.reason and excluded.photos == 2
    # the faults the world published: counted with their reason, never fatal
    assert report["HTTP 404"].sum() == 1 and report["hash mismatch"].sum() == 1
    assert report["bbox_outside"].sum() == 1
    lines = pd.read_csv(tiny_run / "results/identities/excluded_lines.csv")
    assert lines["reason"].str.startswith("malformed line").sum() == 1
    listed_by_urls = truth.loc[truth["listed_in"] == "extra", "person_id"]
    assert (kept.set_index("person_id").loc[listed_by_urls, "crops"] == 0).all()  # no boxes
    crops = kept[~kept["person_id"].isin(listed_by_urls)]
    assert (crops["crops"] >= 5).all()
    for crop in (tiny_run / "results/identities/crops").rglob("*.jpg"):
        with Image.open(crop) as image:
            assert 20 <= image.width <= 64 and 20 <= image.height <= 64  # a face, not the photo
        break


def test_attack_tables_are_complete_and_consistent(tiny_run: Path):
    metrics = pd.read_parquet(tiny_run / "results/attack/tiny/metrics.parquet")
    assert sorted(metrics["k"].unique()) == [1, 2, 3, 4]
    assert metrics.groupby("k").size().eq(3).all()  # 3 draws per k
    assert ((metrics["tp"] + metrics["fn"]) == 8).all()
    assert ((metrics["fp"] + metrics["tn"]) == 4).all()
    rates = metrics[["accuracy", "tpr", "fnr", "fpr", "tnr"]]
    assert ((rates >= 0) & (rates <= 1)).all().all()
    assert (metrics["tpr"] + metrics["fnr"]).round(9).eq(1).all()
    scores = pd.read_parquet(tiny_run / "results/attack/tiny/scores.parquet")
    assert len(scores) == 12 * 4 * 3 and scores["score"].between(0, 21).all()
    pred = np.load(tiny_run / "results/attack/tiny/predictions.npz")
    photos = pd.read_parquet(tiny_run / "results/identities/identities.parquet")["n_photos"]
    assert pred["pred"].shape == (photos.sum(), 21) and pred["pred"].dtype.kind == "i"
    card = json.loads((tiny_run / "results/models/tiny/card.json").read_text())
    assert card["trainer"] == "open_clip_train.main" and card["samples"] > 0
    summary = pd.read_csv(tiny_run / "results/attack/summary.csv")
    assert list(summary["model"]) == ["tiny", "c-n2", "c-n1"]
    assert summary["non_members"].tolist() == [4, 2, 2]  # track L's truth, then the cohort's
    assert (tiny_run / "results/attack/headline.txt").read_text().startswith("idia: tiny")


def test_figures_are_real_images(tiny_run: Path):
    figures = tiny_run / "results/figures/tiny"
    for name in ("metrics_vs_k", "confusion", "rate_by_bin", "identities_per_bin", "tpr_heatmap"):
        with Image.open(figures / f"{name}.png") as image:
            assert image.width > 300 and image.height > 200
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # not a blank canvas
        assert (figures / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_nothing_to_do_on_a_second_run(tiny_run: Path):
    result = snakemake(tiny_run, "-n")
    assert planned_rules(result) == set(), result.stdout[-2000:]


def _tiny_config_with(tmp_path: Path, section: str, key: str, value) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config[section][key] = value
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_changing_an_attack_parameter_reruns_only_attack_and_figures(tiny_run: Path, tmp_path):
    changed = _tiny_config_with(tmp_path, "attack", "tau", 2)
    result = snakemake(tiny_run, "-n", configfile=changed)
    rules = planned_rules(result)
    assert "sweep" in rules and "attack_summary" in rules
    assert {r for r in rules if r.startswith("figure_")} >= {"figure_confusion"}
    assert not rules & {"world", "download_shard", "search_shard", "train_clip",
                        "encode_prompts", "encode_photos", "predict"}  # fmt: skip


def test_report_renders(tiny_run: Path):
    snakemake(tiny_run, "--report", "report.html")
    html = (tiny_run / "report.html").read_text()
    assert "metrics_vs_k.png" in html and "tiny" in html


def test_changing_a_world_parameter_reruns_everything_downstream(tiny_run: Path, tmp_path):
    changed = _tiny_config_with(tmp_path, "world", "seed", 8)
    rules = planned_rules(snakemake(tiny_run, "-n", configfile=changed))
    assert {"world", "download_shard", "search_shard", "train_clip", "encode_photos",
            "sweep", "figure_tpr_heatmap"} <= rules  # fmt: skip


def test_changing_the_base_corpus_reruns_only_track_c(tiny_run: Path, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["world"]["base"]["n_generic"] = 21
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    counts = job_counts(snakemake(tiny_run, "-n", configfile=changed))
    assert {"world_base", "download_base_shard", "embed_base_shard", "faces_shard", "cohort",
            "inject_level"} <= set(counts)  # fmt: skip
    assert counts["train_clip"] == 2  # the two injected models, not the track L model
    assert not set(counts) & {"world", "download_shard", "search_shard", "gather_counts"}


def test_unknown_config_key_is_an_error(tmp_path: Path):
    result = snakemake(tmp_path, "-n", "--config", "attak=2", check=False)
    assert result.returncode != 0
    assert "attak" in result.stdout + result.stderr


def test_paper_config_lists_what_to_obtain_then_plans_the_full_dag(tmp_path: Path):
    def plan() -> subprocess.CompletedProcess:
        return snakemake(tmp_path, "-n", configfile=ROOT / "config/paper.yaml", check=False)

    # Without the files a user obtains by hand: one message that lists each and how to get it.
    result = plan()
    assert result.returncode != 0
    message = result.stdout + result.stderr
    # (and a Hugging Face token, needed only when the LAION metadata is fetched)
    by_hand = ["resources/facescrub/facescrub_actors.txt",
               "resources/facescrub/facescrub_actresses.txt", "resources/imagenet/val"]  # fmt: skip
    assert f"{len(by_hand)} input(s) that you supply by hand are missing" in message
    assert all(path in message for path in by_hand)
    assert "facescrub.html" in message and "image-net.org" in message
    # With them in place (empty: a dry run only plans, it never reads them or the network),
    # every source is acquired by the workflow's own rules.
    for name in by_hand:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("val"):
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).touch()
    result = plan()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = job_counts(result)
    # LAION's 32 metadata files, the SSA names and CC3M's training and validation TSVs
    assert counts["fetch_source"] == 32 + 1 + 2
    assert counts["heldout_urls"] == counts["download_heldout"] == counts["heldout_pairs"] == 1
    assert counts["identity_plan"] == counts["identities"] == 1
    assert counts["download_identities"] == 32
    assert counts["search_shard"] == 32 and counts["gather_counts"] == 1
    # 3 pretrained models (track L) + the 18-model injection grid (track C)
    assert counts["encode_prompts"] == counts["encode_photos"] == counts["sweep"] == 3 + 18
    assert counts["train_clip"] == 18 and counts["inject_level"] == 6
    assert counts["base_urls"] == 1 and counts["download_base_shard"] == 332
    assert counts["embed_base_shard"] == counts["faces_shard"] == 332
    assert counts["build_index"] == counts["retrieve"] == counts["face_classifier"] == 1
    assert counts["figure_by_n"] == 3 and counts["utility"] == 21
    assert "world" not in counts and "world_base" not in counts
    assert "download_shard" not in counts  # pretrained models: LAION's images are not needed
    # LAION's metadata already on disk: a folder (trailing /) stands for its parquet files
    for part in ("part-00001.parquet", "part-00000.parquet"):
        (tmp_path / "laion" / part).parent.mkdir(exist_ok=True)
        (tmp_path / "laion" / part).touch()
    local = tmp_path / "local.yaml"
    local.write_text("sources: {laion: {files: [laion/]}}\n")
    paper = str(ROOT / "config/paper.yaml")  # the last --configfile is the one read
    result = snakemake(tmp_path, "-n", "--configfile", paper, str(local), check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = job_counts(result)
    assert counts["search_shard"] == 2 and counts["fetch_source"] == 1 + 2
    assert "laion/part-00000.parquet" in result.stdout + result.stderr


def test_person_level_statistics(tiny_run: Path):
    summary = pd.read_csv(tiny_run / "results/stats/summary.csv")
    assert list(summary["model"]) == ["tiny", "c-n2", "c-n1"]
    assert summary.loc[0, "members"] == 8 and summary.loc[0, "non_members"] == 4
    assert 0 <= summary.loc[0, "vote_auc"] <= 1
    assert "non-members" in summary.loc[0, "fpr_statement"]
    persons = pd.read_csv(tiny_run / "results/stats/tiny/persons.csv")
    assert len(persons) == 12 and persons["person_id"].is_unique
    assert persons["p_value"].between(0, 1, inclusive="right").all()
    assert persons["vote_score"].between(0, 21).all()
    assert (persons["called"] == (persons["vote_score"] >= 1)).all()
    for name in ("roc", "pvalue_qq"):
        assert (tiny_run / f"results/figures/tiny/{name}.pdf").read_bytes().startswith(b"%PDF")


def test_audit_target_reports_bad_files_and_audits_the_rest(tiny_run: Path, tmp_path: Path):
    truth = pd.read_parquet(tiny_run / "results/world/truth.parquet")
    member = truth[truth["member"]].iloc[0]
    photos = tmp_path / "photos"
    shutil.copytree(tiny_run / "results/identities/photos" / member["person_id"], photos)
    n_photos = len(list(photos.iterdir()))
    (photos / "notes.txt").write_text("not a photo")
    (photos / "broken.jpg").write_bytes(b"")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(photos / "blank.jpg")
    snakemake(tiny_run, "audit", "--config", f"audit_photos={photos}",
              f"audit_name={member['name']}", "audit_alpha=0.5")  # fmt: skip
    folders = list((tiny_run / "results/audit").iterdir())
    assert len(folders) == 1
    result = json.loads((folders[0] / "audit.json").read_text())
    problems = {Path(p["path"]).name: p["problem"] for p in result["problems"]}
    assert "notes.txt" in problems and "broken.jpg" in problems
    assert "no face" in problems.get("blank.jpg", "")
    assert result["n_usable"] == n_photos + 1  # the person's photos and the blank one, flagged
    (model,) = result["models"]
    assert 0 < model["p_value"] <= 1 and 0 <= model["vote_score"] <= 21
    assert model["namesakes"]["n"] > 0 and 0 < model["namesakes"]["p_value"] <= 1  # on by default
    # the config's alpha judges the namesake test; candidates.seed draws the namesakes
    assert model["namesakes"]["alpha"] == 0.5 and model["namesakes"]["seed"] == 1
    assert model["namesakes"]["passed"] == (model["namesakes"]["p_value"] <= 0.5)
    html = (folders[0] / "audit.html").read_text()
    assert html_escape(member["name"]) in html and "<img" not in html


def test_audit_without_photos_says_what_to_do(tiny_run: Path):
    result = snakemake(tiny_run, "audit", "-n", check=False)
    assert result.returncode != 0
    assert "audit_photos" in result.stdout + result.stderr


def test_provenance_chain_of_a_figure_reaches_the_world(tiny_run: Path):
    result = subprocess.run(
        [sys.executable, "-m", "idia.cli", "provenance", "results/figures/tiny/tpr_heatmap.png"],
        capture_output=True, text=True, cwd=tiny_run,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("results/figures/tiny/tpr_heatmap.png")
    for rule in ("figure_tpr_heatmap", "sweep", "predict", "train_clip", "download_shard"):
        assert f"← rule {rule}" in out
    assert "← rule world  world.seed=7" in out
    for shard in ("part-00000", "part-00001"):
        assert f"results/download/{shard}/00000.tar" in out
    assert "HASH MISMATCH" not in out
    weights = "results/models/tiny/open_clip_model.safetensors"
    as_json = subprocess.run(
        [sys.executable, "-m", "idia.cli", "provenance", "--json", weights],
        capture_output=True, text=True, cwd=tiny_run, check=True,
    )  # fmt: skip
    tree = json.loads(as_json.stdout)["tree"]
    assert tree["job"]["rule"] == "train_clip"
    assert {c["path"] for c in tree["inputs"]} >= {
        "results/download/part-00000/00000.tar",
        "results/download/part-00001/00000.tar",
    }


def test_track_c_filters_draws_a_cohort_and_injects_exact_counts(tiny_run: Path):
    from idia.download import read_shard
    from idia.retrieval import read_embeddings

    results = tiny_run / "results"
    # retrieval: the base corpus in clip-retrieval's layout, every downloaded image once
    emb, meta = read_embeddings(results / "retrieval/embeddings")
    downloaded = sum(
        json.loads((results / f"base/download/{s}/download.json").read_text())["successes"]
        for s in ("part-00000", "part-00001")
    )
    assert len(emb) == len(meta) == downloaded == 20 + 2 * 2 + 2 * 2
    # embedded 5 images at a time (retrieval.chunk): the same vectors as one pass over the shard
    from idia.attack import encode_photos
    from idia.models import load_clip

    clip = load_clip(model_dir=results / "models/tiny", device="cpu")
    tar = results / "base/download/part-00000/00000.tar"
    samples = read_shard(tar)
    whole = encode_photos(
        clip.model, clip.preprocess, [(k, p["jpg"]) for k, p in samples], progress=False
    )
    part = (meta["shard"] == "part-00000").to_numpy()
    assert meta.loc[part, "key"].tolist() == [k for k, _ in samples]
    np.testing.assert_allclose(emb[part], whole, atol=1e-5)
    index = json.loads((results / "retrieval/index/index.json").read_text())
    assert index["vectors"] == downloaded and index["factory"] == "Flat"
    # face filter: a decision with a reason for every identity, scored against the planted truth
    presence = pd.read_csv(results / "faces/presence.csv")
    assert len(presence) == 12 and presence["person_id"].is_unique
    assert presence["present_reason"].str.len().gt(0).all()
    face_filter = json.loads((results / "faces/filter.json").read_text())
    assert len(face_filter["planted"]) == 2
    assert {"precision", "recall", "true_positives"} <= set(face_filter)
    classifier = json.loads((results / "faces/classifier/report.json").read_text())
    assert 0 <= classifier["test_accuracy"] <= 1 and classifier["n_test"] >= 1
    # cohort: everyone listed with a reason, sizes exact, nobody flagged present is drawn
    cohort = pd.read_csv(results / "inject/cohort.csv")
    assert len(cohort) == 12 and cohort["reason"].str.len().gt(0).all()
    assert cohort["status"].value_counts()[["member", "non-member"]].tolist() == [2, 2]
    flagged = set(presence.loc[presence["present"] | ~presence["verifiable"], "person_id"])
    assert flagged <= set(cohort.loc[cohort["status"] == "excluded", "person_id"])
    members = set(cohort.loc[cohort["status"] == "member", "person_id"])
    drawn = members | set(cohort.loc[cohort["status"] == "non-member", "person_id"])
    # injection: the shards, read back here independently, hold exactly N pairs per member
    for n in (2, 1):
        tags = {}
        for _, parts in read_shard(results / f"inject/n{n}/00000.tar"):
            pid = json.loads(parts["json"]).get("person_id")
            if pid:
                tags[pid] = tags.get(pid, 0) + 1
        assert tags == dict.fromkeys(members, n)
        counts = pd.read_parquet(results / f"inject/n{n}/counts.parquet").set_index("person_id")
        assert set(counts.index) == drawn
        assert all(counts.loc[p, "tagged"] == (n if p in members else 0) for p in drawn)
    summary = pd.read_csv(results / "inject/summary.csv")
    assert list(summary["model"]) == ["c-n2", "c-n1"] and list(summary["n"]) == [2, 1]
    assert summary[["tpr", "fpr", "zero_shot_top1", "i2t_rank1"]].stack().between(0, 1).all()
    utility = pd.read_csv(results / "utility/utility.csv")
    assert set(utility["model"]) == {"tiny", "c-n2", "c-n1"}
    assert (utility["n_classes"] == 11).all() and (utility["n_pairs"] == 5).all()
    # the held-out pairs: acquired from the world's CC3M-format validation TSV
    heldout = json.loads((results / "heldout/report.json").read_text())
    assert heldout == {"rows": 5, "pairs": 5, "failed": {}}
    pairs = pd.read_parquet(results / "heldout/pairs.parquet")
    assert pairs["url"].str.startswith("http://cc3m.idia-world.test/val/").all()
    for name in ("rate_by_n", "tpr_heatmap_by_n"):
        assert (results / f"figures/c/{name}.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "section, key, value, message",
    [("attack", "tau", 22, "attack.tau=22 but the attack has 21 prompt templates"),
     ("identities", "min_photos", 2, "identities.min_photos=2 is below attack.k_max=4")],
)  # fmt: skip
def test_cross_field_config_errors_name_the_values(tmp_path, section, key, value, message):
    changed = _tiny_config_with(tmp_path, section, key, value)
    result = snakemake(tmp_path, "-n", configfile=changed, check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr


def test_a_changed_module_reruns_exactly_the_jobs_whose_scripts_import_it(tiny_run: Path):
    from idia.codedeps import script_modules

    module = ROOT / "src/idia/figures.py"
    users = {
        p.name for p in (ROOT / "workflow/scripts").glob("*.py")
        if "figures" in script_modules(p, ROOT / "src/idia")
    }  # fmt: skip
    assert users >= {"figure.py", "figure_by_n.py"}
    before = module.stat()
    os.utime(module, (before.st_atime, before.st_mtime + 3600))  # "edited": newer than outputs
    try:
        rules = planned_rules(snakemake(tiny_run, "-n"))
    finally:
        os.utime(module, (before.st_atime, before.st_mtime))
    assert rules - {"all", "figures"} and all(r.startswith("figure") for r in rules - {"all"})


def test_a_model_named_by_one_spec_string_is_planned_and_a_bad_one_refused(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["models"]["clip-b32"] = {"spec": "hf:openai/clip-vit-base-patch32"}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(config))
    counts = job_counts(snakemake(tmp_path, "-n", configfile=path))
    assert counts["encode_photos"] == counts["sweep"] == 4  # tiny, c-n2, c-n1 and the spec
    config["models"]["clip-b32"] = {"spec": "clip:ViT-B-32"}
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", configfile=path, check=False)
    assert result.returncode != 0 and "clip:ViT-B-32" in result.stdout + result.stderr
