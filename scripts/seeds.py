"""Run the default workflow on several world seeds and tabulate its headline numbers per seed.

    nice -n 19 python scripts/seeds.py --seeds 20240523 777 2024 --cores 2 --out /tmp/seeds
    python scripts/seeds.py --small --seeds 7 8 9 --out /tmp/seeds-tiny     # tests/config/tiny.yaml

One run answers for one world; a rate over 20 members moves by 0.05 per person. Each seed runs
in its own directory (``OUT/seed-S``, config ``OUT/seed-S/config.yaml``: the base config with
``world.seed`` replaced), so reruns only finish what is missing. The script then writes:

- ``OUT/seeds.csv``: per seed and model the members, non-members, TPR and FPR at k = k_max with
  95% Clopper–Pearson intervals over identities, the sd over photo draws and the vote AUC with
  its bootstrap interval (from ``results/stats/summary.csv``);
- ``OUT/filter.csv``: per seed and planted identity where the presence filter lost it:
  retrieval (no planted image retrieved), haar (retrieved, no face found), classifier (faces
  found, not named often or confidently enough), found, or found_elsewhere (marked present only
  because the classifier gave this name to faces of other people);
- ``OUT/seeds.md``: both tables and, per model, the mean and range over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"
TINY_CONFIG = ROOT / "tests" / "config" / "tiny.yaml"
STAGES = ("retrieval", "haar", "classifier", "found", "found_elsewhere")


def seed_config(base: dict, seed: int) -> dict:
    """The base config with only ``world.seed`` replaced (a copy: the base is left alone)."""
    if "world" not in base:
        raise ValueError("the base config has no `world:` section: seeds vary the embedded world")
    config = json.loads(json.dumps(base))
    config["world"]["seed"] = int(seed)
    return config


def run_seed(workdir: Path, config: dict, cores: int, extra: list[str]) -> None:
    """Snakemake on one seed's directory; a failure names the seed's log."""
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    log = workdir / "snakemake.log"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile),
           "--cores", str(cores), *extra]  # fmt: skip
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    with log.open("w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"snakemake failed for {workdir} (exit {done.returncode}); see {log}, fix the cause "
            "and rerun this script: finished seeds are not run again"
        )


def metric_rows(results: Path, seed: int) -> list[dict]:
    """Per model: TPR and FPR at the largest k with Clopper–Pearson intervals over identities."""
    from idia.stats import clopper_pearson

    if not (results / "attack" / "summary.csv").exists():
        print(f"seed {seed}: no results/attack/summary.csv yet; its attack rows are left out",
              file=sys.stderr)  # fmt: skip
        return []
    summary = pd.read_csv(results / "attack" / "summary.csv")
    stats_path = results / "stats" / "summary.csv"
    stats = pd.read_csv(stats_path).set_index("model") if stats_path.exists() else None
    rows = []
    for model in summary["model"]:
        metrics = pd.read_parquet(results / "attack" / model / "metrics.parquet")
        at_k = metrics[metrics["k"] == metrics["k"].max()]
        members = int(at_k["tp"].iloc[0] + at_k["fn"].iloc[0])
        non_members = int(at_k["fp"].iloc[0] + at_k["tn"].iloc[0])
        # draws at k = k_max may differ when photos > k_max: the interval is for the mean count
        tp, fp = int(round(at_k["tp"].mean())), int(round(at_k["fp"].mean()))
        tpr_lo, tpr_hi = clopper_pearson(tp, members)
        fpr_lo, fpr_hi = clopper_pearson(fp, non_members)
        row = {"seed": seed, "model": model, "k": int(at_k["k"].iloc[0]), "members": members,
               "non_members": non_members, "tp": tp, "tpr": tp / members, "tpr_lo": tpr_lo,
               "tpr_hi": tpr_hi, "tpr_sd_draws": float(at_k["tpr"].std(ddof=0)), "fp": fp,
               "fpr": fp / non_members, "fpr_lo": fpr_lo, "fpr_hi": fpr_hi}  # fmt: skip
        if stats is not None and model in stats.index:
            row["vote_auc"] = float(stats.loc[model, "vote_auc"])
            row["vote_auc_ci"] = stats.loc[model, "vote_auc_ci"]
        rows.append(row)
    return rows


def read_planted(results: Path) -> dict[str, str]:
    """Base-corpus file name (``000123.jpg``) → person_id of the planted study identity it shows,
    as the world published it (``results/world/base/planted.parquet``)."""
    path = results / "world" / "base" / "planted.parquet"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: this seed was run by code whose world did not publish which "
            "base images show which planted identity; rerun the seed with the current code "
            "(scripts/seeds.py without --collect-only) so that rule world_base writes it"
        )
    table = pd.read_parquet(path, columns=["file", "person_id"])
    return dict(zip(table["file"], table["person_id"]))


def downloaded(results: Path) -> pd.DataFrame:
    """Every base image img2dataset fetched: shard, key, caption and the world's file name."""
    frames = []
    for path in sorted((results / "base" / "download").glob("*/*.parquet")):
        table = pd.read_parquet(path, columns=["key", "url", "status", "caption"])
        frames.append(table.assign(shard=path.parent.name))
    if not frames:
        raise FileNotFoundError(f"no base corpus download tables under {results / 'base'}")
    table = pd.concat(frames, ignore_index=True)
    table = table[table["status"] == "success"]
    return table.assign(file=table["url"].str.rsplit("/", n=1).str[-1])


def exhaustive(results: Path, base: pd.DataFrame, haar: dict) -> pd.DataFrame:
    """Haar and the face classifier on the given base images whether retrieved or not: what an
    exhaustive filter would see. One row per crop (or per image without a face)."""
    from idia.download import iter_shard
    from idia.faces import face_crops, load_face_classifier, predict_faces

    classifier = load_face_classifier(results / "faces" / "classifier" / "classifier.pt")
    frames = []
    for shard, wanted in base.groupby("shard"):
        keys = set(wanted["key"])
        tars = sorted((results / "base" / "download" / shard).glob("*.tar"))
        samples = [(k, parts.get("jpg", b"")) for t in tars for k, parts in iter_shard(t)
                   if k in keys]  # fmt: skip
        crops, table = face_crops(samples, size=classifier.size, largest_only=False, **haar)
        table = table.rename(columns={"path": "key"}).assign(shard=shard)
        has = (table["crop_index"] >= 0).to_numpy()
        index, prob = predict_faces(classifier, crops[table.loc[has, "crop_index"].to_numpy()])
        table["predicted"] = None
        table["confidence"] = np.nan
        table.loc[has, "predicted"] = np.asarray(classifier.classes, object)[index]
        table.loc[has, "confidence"] = prob
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def filter_rows(results: Path, presence: dict, seed: int, haar: dict) -> list[dict]:
    """Per planted identity: how many of its base images were retrieved, showed a face to Haar,
    and were named by the classifier; the stage where the filter lost it (or ``found``)."""
    truth = pd.read_parquet(results / "world" / "base" / "truth.parquet")
    base = downloaded(results)
    base = base.assign(owner=base["file"].map(read_planted(results)))
    every = exhaustive(results, base[base["owner"].notna()], haar)
    retrieved = pd.read_parquet(results / "retrieval" / "retrieved.parquet")
    faces = pd.concat(
        pd.read_parquet(p) for p in sorted((results / "faces" / "shards").glob("*.parquet"))
    )
    summary = json.loads((results / "faces" / "filter.json").read_text())
    present = set(summary["present"])
    min_conf = float(presence["min_confidence"])
    rows = []
    for pid in truth.loc[truth["planted"], "person_id"]:
        mine = base[base["owner"] == pid][["shard", "key"]]
        hits = retrieved.merge(mine, on=["shard", "key"])
        seen = faces.merge(mine, on=["shard", "key"])
        crops = seen[seen["crop_index"] >= 0]
        named = crops[(crops["predicted"] == pid) & (crops["confidence"] >= min_conf)]
        wrong = crops[crops["predicted"] != pid]
        images_with_face = crops[["shard", "key"]].drop_duplicates()
        all_crops = every.merge(mine, on=["shard", "key"])
        all_crops = all_crops[all_crops["crop_index"] >= 0]
        all_named = all_crops[
            (all_crops["predicted"] == pid) & (all_crops["confidence"] >= min_conf)
        ]
        elsewhere = faces[(faces["predicted"] == pid) & (faces["confidence"] >= min_conf)]
        elsewhere = len(elsewhere) - len(named)  # faces of other people named as this one
        if pid in present and len(named) < int(presence["min_faces"]):
            stage = "found_elsewhere"  # present only thanks to faces of other people
        elif pid in present:
            stage = "found"
        elif hits.empty:
            stage = "retrieval"
        elif images_with_face.empty:
            stage = "haar"
        else:
            stage = "classifier"
        rows.append({
            "seed": seed, "person_id": pid, "base_images": len(mine),
            "retrieved": len(hits[["shard", "key"]].drop_duplicates()),
            "retrieved_by_own_photos": len(
                hits.loc[hits["person_id"] == pid, ["shard", "key"]].drop_duplicates()),
            "with_face": len(images_with_face), "crops": len(crops), "named": len(named),
            "named_low_confidence": int((crops["predicted"] == pid).sum() - len(named)),
            "named_other": len(wrong), "named_on_other_images": elsewhere, "stage": stage,
            "exhaustive_with_face": len(all_crops[["shard", "key"]].drop_duplicates()),
            "exhaustive_named": len(all_named),
            "exhaustive_found": len(all_named) >= int(presence["min_faces"]),
        })  # fmt: skip
    return rows


def filter_summary(results: Path, seed: int) -> dict:
    """The filter's own truth check (``results/faces/filter.json``) for one seed."""
    summary = json.loads((results / "faces" / "filter.json").read_text())
    keys = ("recall", "precision", "true_positives", "false_positives", "false_negatives",
            "retrieved_images", "faces")  # fmt: skip
    presence = pd.read_csv(results / "faces" / "presence.csv")
    wrong = presence.loc[presence["present"] & ~presence["planted"], "person_id"]
    return {"seed": seed, **{key: summary[key] for key in keys},
            "planted": len(summary["planted"]), "present": len(summary["present"]),
            "false_positive_ids": " ".join(sorted(wrong))}  # fmt: skip


def _interval(value: float, lo: float, hi: float) -> str:
    return f"{value:.2f} [{lo:.2f}, {hi:.2f}]"


def md_table(title: str, columns: list[str], rows: list[list]) -> list[str]:
    """A titled Markdown table."""
    lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def markdown(metrics: pd.DataFrame, filters: pd.DataFrame, stages: pd.DataFrame) -> str:
    """The tables as Markdown: per seed, the range over seeds, and the filter's misses."""
    per_seed = [
        [r.seed, r.model, r.members, r.non_members, _interval(r.tpr, r.tpr_lo, r.tpr_hi),
         _interval(r.fpr, r.fpr_lo, r.fpr_hi),
         f"{r.vote_auc:.3f} {r.vote_auc_ci}" if hasattr(r, "vote_auc") else "n/a"]
        for r in metrics.itertuples()
    ]  # fmt: skip
    over = [
        [model, len(g), f"{g.tpr.mean():.2f}", f"{g.tpr.min():.2f}–{g.tpr.max():.2f}",
         f"{g.fpr.mean():.2f}", f"{g.fpr.min():.2f}–{g.fpr.max():.2f}"]
        for model, g in (metrics.groupby("model", sort=False) if len(metrics) else [])
    ]  # fmt: skip
    missed = []
    for r in filters.itertuples():
        at = stages[stages["seed"] == r.seed]["stage"].value_counts()
        missed.append([r.seed, r.planted, r.true_positives, f"{r.recall:.2f}",
                       f"{r.precision:.2f}", r.false_positives, at.get("retrieval", 0),
                       at.get("haar", 0), at.get("classifier", 0),
                       at.get("found_elsewhere", 0)])  # fmt: skip
    persons = [
        [r.seed, r.person_id, r.base_images, r.retrieved, r.with_face, r.named,
         r.named_low_confidence, r.named_other, r.named_on_other_images, r.stage,
         r.exhaustive_with_face,
         r.exhaustive_named, r.exhaustive_found]
        for r in stages.itertuples()
    ]  # fmt: skip
    lines = [] if metrics.empty else md_table(
        "Attack at k = k_max, per seed (95% Clopper–Pearson over identities)",
        ["seed", "model", "members", "non-members", "TPR", "FPR", "vote AUC"], per_seed,
    )  # fmt: skip
    if over:
        lines += md_table(
            "Over seeds: mean and range",
            ["model", "seeds", "TPR mean", "TPR range", "FPR mean", "FPR range"], over,
        )  # fmt: skip
    lines += md_table(
        "Presence filter (planted identities in the base corpus)",
        ["seed", "planted", "found", "recall", "precision", "false positives",
         "missed at retrieval", "at Haar", "at classifier",
         "found only by others' faces"], missed,
    )  # fmt: skip
    lines += md_table(
        "Each planted identity",
        ["seed", "person", "base images", "retrieved", "with face", "named (≥ conf)",
         "named (< conf)", "named other", "others' faces named so", "stage",
         "exhaustive: with face", "named", "found"],
        persons,
    )  # fmt: skip
    return "\n".join(lines)


def collect(out: Path, seeds: list[int], configs: dict[int, dict]) -> dict[str, pd.DataFrame]:
    """Read every seed's results and write seeds.csv, filter.csv, filter_stages.csv, seeds.md."""
    metrics, filters, stages = [], [], []
    for seed in seeds:
        results = out / f"seed-{seed}" / "results"
        config = configs[seed]
        metrics += metric_rows(results, seed)
        if config.get("injection"):
            filters.append(filter_summary(results, seed))
            presence = config["injection"]["presence"]
            stages += filter_rows(results, presence, seed, config["haar"])
    tables = {"seeds": pd.DataFrame(metrics), "filter": pd.DataFrame(filters),
              "filter_stages": pd.DataFrame(stages, columns=None)}  # fmt: skip
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False, float_format="%.4f")
    if not tables["filter"].empty:
        text = markdown(tables["seeds"], tables["filter"], tables["filter_stages"])
        (out / "seeds.md").write_text(text)
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[20240523, 777, 2024])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="one folder per seed under it")
    parser.add_argument("--small", action="store_true", help="tests/config/tiny.yaml: minutes")
    parser.add_argument(
        "--configfile",
        type=Path,
        default=None,
        help="base config (default: config/config.yaml, or tiny with --small)",
    )
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="tabulate the seed folders already run; run nothing",
    )
    parser.add_argument("snakemake_args", nargs="*", help="after --: passed to Snakemake")
    a = parser.parse_args(argv)
    base_file = a.configfile or (TINY_CONFIG if a.small else DEFAULT_CONFIG)
    base = yaml.safe_load(base_file.read_text())
    configs = {seed: seed_config(base, seed) for seed in a.seeds}
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.collect_only:
        for seed in a.seeds:
            print(f"seed {seed}: running in {a.out / f'seed-{seed}'}", file=sys.stderr)
            run_seed(a.out / f"seed-{seed}", configs[seed], a.cores, a.snakemake_args)
    collect(a.out, a.seeds, configs)
    print((a.out / "seeds.md").read_text() if (a.out / "seeds.md").exists() else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
