"""Candidate pools of 10^5 names: prompts/s and peak memory of the attack's two pool-sized steps.

1. encoding the pool (21 templates × names prompts) with ``attack.encode_prompts``: *whole*
   holds every vector in memory and saves it at the end; *chunked* appends each batch to the
   ``.npy`` file (``out=``) as the ``encode_prompts`` job does;
2. predicting names for photos with ``attack.predict``: *whole* loads the text embeddings and
   compares all photos with all prompts in one similarity tensor (``chunk_elems`` above the
   tensor's size); *chunked* reads the ``.npy`` as a memory map, candidates in chunks
   (``chunk_elems`` = 2^24, the default), as the ``predict`` job does.

Both modes run side by side at a pool size where both fit (and must agree exactly), then the
chunked mode runs on the large pool. Each step runs in a fresh interpreter, so its peak RSS
(``ru_maxrss``) is its own; "start" is the RSS after imports and model creation.

The model is the tiny CLIP of ``workflow/models/idia-vit-xs`` with random weights (seeded):
encoding speed and memory do not depend on training. Photo embeddings are random unit vectors
(the similarity step does not depend on their content).

    .venv/bin/python benchmarks/bench_pool.py                 # 10^4 side by side, then 10^5
    .venv/bin/python benchmarks/bench_pool.py --small         # seconds: 300 vs 1,000 names

With ``--world RESULTS --model NAME`` it measures instead what the pool size does to the attack
on a finished run of the workflow: for each pool size (default 1,000 / 10,000 / 100,000 names:
the study identities, then random "First Last" fillers drawn by ``names.candidate_pool`` with
the config's seed and name lists, as the ``candidate_pool`` job draws them), the trained model
encodes the prompts (``attack.encode_prompts`` into a ``.npy``), ``attack.predict`` ranks the
pool for the model's own photo embeddings, and ``stats.person_scores`` scores every identity
over all of its photos (the vote of ``attack.template_correct`` and its margin-refined
``stats.combined_score``). It prints prompts per CPU-second, TPR and FPR at the config's tau
with Clopper–Pearson intervals, and TPR at FPR <= 1 % / 5 % over identities:

    .venv/bin/python benchmarks/bench_pool.py --world RUN/results --model world-vit
    .venv/bin/python benchmarks/bench_pool.py --world RUN/results --model tiny --small \\
        --config tests/config/tiny.yaml                      # pools of 100 and 300 names
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARCH_DIR = ROOT / "workflow" / "models" / "idia-vit-xs"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
PHOTOS_PER_PERSON = 30
WORLD_POOLS = (1_000, 10_000, 100_000)
WORLD_POOLS_SMALL = (100, 300)
FPR_LEVELS = (0.01, 0.05)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _cpu_s() -> float:
    """CPU seconds of this process (user + system): on a shared machine the wall time also
    counts the other jobs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pool(n_names: int) -> list[str]:
    from idia.names import candidate_pool, faker_name_lists

    female, male, surnames = faker_name_lists("en_US")
    return candidate_pool([], n_names, 0, female, male, surnames)


def worker_encode(n_names: int, mode: str, path: Path, batch_size: int) -> dict:
    """Encode the pool's prompts with the tiny model, whole or chunked; time and memory."""
    import torch

    from idia.attack import PAPER_TEMPLATES, encode_prompts
    from idia.compat import import_open_clip

    open_clip = import_open_clip()
    torch.manual_seed(0)
    name = f"local-dir:{ARCH_DIR}"
    model, _, _ = open_clip.create_model_and_transforms(name)
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    names = _pool(n_names)
    start_rss, start_cpu = _rss_mb(), _cpu_s()
    start = time.perf_counter()
    kw = {"batch_size": batch_size, "progress": False}
    if mode == "whole":
        np.save(path, encode_prompts(model, tokenizer, names, PAPER_TEMPLATES, **kw))
    else:
        encode_prompts(model, tokenizer, names, PAPER_TEMPLATES, out=path, **kw)
    seconds = time.perf_counter() - start
    prompts = len(PAPER_TEMPLATES) * n_names
    return {"seconds": seconds, "rate": prompts / seconds, "cpu_seconds": _cpu_s() - start_cpu,
            "start_mb": start_rss, "peak_mb": _rss_mb()}  # fmt: skip


def worker_predict(path: Path, mode: str, n_photos: int, chunk_elems: int, device: str) -> dict:
    """Predict names for random photo embeddings against the stored pool; time and memory."""
    import torch

    from idia.attack import predict
    from idia.models import pick_device

    device = pick_device(device)

    text = np.load(path, mmap_mode="r")
    n_templates, n_names, dim = text.shape
    rng = np.random.default_rng(0)
    img = rng.normal(size=(n_photos, dim)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    true = np.repeat(np.arange(n_photos // PHOTOS_PER_PERSON + 1), PHOTOS_PER_PERSON)[:n_photos]
    start_rss, start_cpu = _rss_mb(), _cpu_s()
    start = time.perf_counter()
    if mode == "whole":
        text = np.load(path)  # all of it in memory, one similarity tensor
        chunk_elems = n_photos * n_templates * n_names + 1
    out = predict(img, text, true, chunk_elems=chunk_elems, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    digest = int(out["pred"].astype(np.int64).sum() * 31 + out["rank"].astype(np.int64).sum())
    return {"seconds": seconds, "rate": n_photos * n_templates * n_names / seconds,
            "cpu_seconds": _cpu_s() - start_cpu, "start_mb": start_rss, "peak_mb": _rss_mb(),
            "digest": digest, "margin_sum": float(out["margin"].astype(np.float64).sum()),
            "device": device}  # fmt: skip


def _run(args: list[str], threads: int) -> dict:
    """One worker in a fresh interpreter (its own peak RSS); returns its JSON line."""
    cmd = [sys.executable, __file__, "--threads", str(threads), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"worker {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# --world: the pool size's effect on the attack of a finished run
# --------------------------------------------------------------------------------------------


def world_config(path: Path) -> dict:
    """The run's config with the schema's defaults filled in, as the workflow sees it."""
    import yaml
    from snakemake.utils import validate

    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found; pass the run's config with --config")
    config = yaml.safe_load(path.read_text())
    validate(config, str(SCHEMA), set_default=True)
    return config


def world_name_lists(run: Path, config: dict) -> tuple[list[str], list[str], list[str]]:
    """(female, male, surnames) from the run's name lists, read as the candidate_pool job does:
    a remote source from its download under ``resources/names/``, a local one as written."""
    from idia.names import read_census_surnames, read_ssa_first_names
    from idia.sources import shipped, source_path

    def where(location: str) -> Path:
        return run / source_path("names", shipped(location, ROOT, workdir=run))

    names = config["sources"]["names"]
    first, surnames = where(names["first"]), where(names["surnames"])
    for path in (first, surnames):
        if not path.is_file():
            raise FileNotFoundError(f"name list {path} not found; has the run downloaded it?")
    top = config["candidates"]["top"]
    female, male = read_ssa_first_names(first, top)
    return female, male, read_census_surnames(surnames, top)


def world_pool_row(
    *,
    clip,
    pool: list[str],
    templates: list[str],
    image: np.ndarray,
    true_idx: np.ndarray,
    person_index: np.ndarray,
    member: np.ndarray,
    config: dict,
    work: Path,
    keep: bool,
) -> dict:
    """One pool size: encode its prompts, predict, score every identity; rates and speed."""
    from idia.attack import encode_prompts, predict, true_name_per_person
    from idia.stats import auc, clopper_pearson, combined_score, person_scores, tpr_at_fpr

    attack = config["attack"]
    path = work / f"text-{len(pool)}.npy"
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    text = encode_prompts(clip.model, clip.tokenizer, pool, templates,
                          batch_size=attack["batch_size"], device=clip.device, progress=False,
                          out=path)  # fmt: skip
    encode_cpu, encode_wall = _cpu_s() - cpu0, time.perf_counter() - wall0
    cpu0 = _cpu_s()
    out = predict(image, text, true_idx, chunk_elems=attack["chunk_elems"], device=clip.device)
    predict_cpu = _cpu_s() - cpu0
    del text
    if not keep:
        path.unlink()
    true_of_person = true_name_per_person(person_index, true_idx)
    persons = person_scores(out["pred"], out["rank"], out["margin"], person_index,
                            true_of_person, len(member))  # fmt: skip
    vote = persons["vote_score"].to_numpy()
    scores = {"vote": vote, "combined": combined_score(vote, persons["mean_margin"].to_numpy())}
    called = vote >= attack["tau"]
    tp, fp = int((called & member).sum()), int((called & ~member).sum())
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    alpha = 1 - config["stats"]["ci"]
    prompts = len(templates) * len(pool)
    row = {
        "names": len(pool), "prompts": prompts,
        "encode_cpu_s": encode_cpu, "encode_wall_s": encode_wall,
        "prompts_per_cpu_s": prompts / max(encode_cpu, 1e-9), "predict_cpu_s": predict_cpu,
        "tp": tp, "fp": fp, "members": n_pos, "nonmembers": n_neg,
        "tpr": tp / n_pos, "tpr_ci": list(clopper_pearson(tp, n_pos, alpha)),
        "fpr": fp / n_neg, "fpr_ci": list(clopper_pearson(fp, n_neg, alpha)),
        "top1": float((out["rank"] == 0).mean()), "mean_vote": float(vote.mean()),
        "pred": out["pred"],
    }  # fmt: skip
    for name, score in scores.items():
        row[f"auc_{name}"] = auc(score, member)
        for level in FPR_LEVELS:
            row[f"tpr_at_fpr{level:g}_{name}"] = tpr_at_fpr(score, member, level)
    return row


def main_world(a: argparse.Namespace) -> int:
    """The attack of a finished run at several pool sizes; a table and a JSON line."""
    import pandas as pd
    import torch

    from idia.backends import load_backend
    from idia.identities import read_identities
    from idia.names import candidate_pool
    from idia.templates import config_templates

    torch.set_num_threads(a.threads)
    results = a.world.resolve()
    run = results.parent
    config = world_config(a.config or run / "config" / "config.yaml")
    attack_dir = results / "attack" / a.model
    model_dir = results / "models" / a.model
    truth = a.truth or results / "search" / "counts.parquet"
    for path in (attack_dir / "image_emb.npy", attack_dir / "photos.parquet", truth, model_dir):
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: --world needs a run whose attack on {a.model!r} has encoded "
                "its photos (snakemake ... encode_photos) and the truth table (--truth)"
            )
    templates = config_templates(config["attack"]["templates"])
    identities = read_identities(results / "identities" / "identities.parquet")
    study = list(identities["name"])
    female, male, surnames = world_name_lists(run, config)
    seed = config["candidates"]["seed"]
    pools = sorted(a.pools or (WORLD_POOLS_SMALL if a.small else WORLD_POOLS))
    largest = candidate_pool(study, pools[-1], seed, female, male, surnames)

    photos = pd.read_parquet(attack_dir / "photos.parquet")
    image = np.load(attack_dir / "image_emb.npy")
    # the study names lead every pool, in the identities' order
    index_of = dict(zip(identities["person_id"], range(len(identities))))
    missing = sorted(set(photos["person_id"]) - set(index_of))
    if missing:
        raise ValueError(f"photos of persons missing from {results}/identities: {missing[:5]}")
    true_idx = photos["person_id"].map(index_of).to_numpy(np.int64)
    person_index = photos["person_index"].to_numpy(np.int64)
    persons = photos.drop_duplicates("person_index").sort_values("person_index")
    counts = pd.read_parquet(truth).set_index("person_id")
    member = counts.loc[persons["person_id"], "member"].to_numpy(bool)
    clip = load_backend({"model_dir": str(model_dir)}, device=a.device)

    # The workflow's own pool and predictions, where a pool size equals the run's.
    run_pool = pd.read_parquet(results / "attack" / "candidates.parquet")["name"].tolist()
    run_pred_file = attack_dir / "predictions.npz"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = a.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in pools:
            pool = candidate_pool(study, size, seed, female, male, surnames)
            if pool != largest[:size]:
                raise AssertionError(f"the pool of {size} names is not a prefix of the largest")
            row = world_pool_row(clip=clip, pool=pool, templates=templates, image=image,
                                 true_idx=true_idx, person_index=person_index, member=member,
                                 config=config, work=work, keep=a.out is not None)  # fmt: skip
            pred = row.pop("pred")
            if size == len(run_pool):
                row["same_pool_as_run"] = pool == run_pool
                if run_pred_file.exists():
                    row["pred_agreement_with_run"] = float(
                        (np.load(run_pred_file)["pred"] == pred).mean()
                    )
            rows.append(row)
            print(f"pool {size}: {row['encode_cpu_s']:.1f} CPU s to encode", file=sys.stderr)
    attack, ci = config["attack"], config["stats"]["ci"]
    per_person = photos.groupby("person_index").size()
    print(f"model {a.model}, {len(templates)} templates, {len(persons)} identities "
          f"({int(member.sum())} members, {int((~member).sum())} non-members), "
          f"{len(photos)} photos (all of each person's: {per_person.min()}-{per_person.max()}; "
          f"k_max {attack['k_max']}), "
          f"tau {attack['tau']}, {ci:.0%} Clopper-Pearson, {a.threads} thread(s), "
          f"pools nested (each a prefix of the next)")  # fmt: skip
    print("| names | prompts | encode CPU s | prompts/CPU-s | predict CPU s | TPR@tau [CI] | "
          "FPR@tau [CI] | TPR@FPR<=1% vote / comb. | TPR@FPR<=5% vote / comb. | "
          "AUC vote / comb. |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['names']} | {r['prompts']} | {r['encode_cpu_s']:.1f} | "
              f"{r['prompts_per_cpu_s']:,.0f} | {r['predict_cpu_s']:.2f} | "
              f"{r['tpr']:.3f} [{r['tpr_ci'][0]:.3f}, {r['tpr_ci'][1]:.3f}] | "
              f"{r['fpr']:.3f} [{r['fpr_ci'][0]:.3f}, {r['fpr_ci'][1]:.3f}] | "
              f"{r['tpr_at_fpr0.01_vote']:.3f} / {r['tpr_at_fpr0.01_combined']:.3f} | "
              f"{r['tpr_at_fpr0.05_vote']:.3f} / {r['tpr_at_fpr0.05_combined']:.3f} | "
              f"{r['auc_vote']:.3f} / {r['auc_combined']:.3f} |")  # fmt: skip
    print(json.dumps({"model": a.model, "templates": len(templates), "tau": attack["tau"],
                      "threads": a.threads, "rows": rows}))  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="seconds-long run on tiny sizes")
    ap.add_argument("--compare-names", type=int, default=10_000, help="pool size for both modes")
    ap.add_argument("--names", type=int, default=100_000, help="large pool, chunked only")
    ap.add_argument("--photos", type=int, default=300, help="photos compared with the pool")
    ap.add_argument("--chunk-elems", type=int, default=1 << 24)
    ap.add_argument("--batch-size", type=int, default=1024, help="prompts per encoder batch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help="where predict runs: auto, cuda, cpu")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--worker", nargs=3, metavar=("STEP", "MODE", "ARG"), help=argparse.SUPPRESS)
    world = ap.add_argument_group("--world: the pool size's effect on a finished run's attack")
    world.add_argument("--world", type=Path, metavar="RESULTS", help="the run's results folder")
    world.add_argument("--model", help="a model of the run (results/models/NAME)")
    world.add_argument("--config", type=Path, help="the run's config (default: RESULTS/../config/"
                       "config.yaml)")  # fmt: skip
    world.add_argument("--truth", type=Path, help="members (RESULTS/search/counts.parquet)")
    world.add_argument("--pools", type=int, nargs="+", help="pool sizes (1000 10000 100000)")
    a = ap.parse_args(argv)
    if a.world:
        if not a.model:
            ap.error("--world needs --model NAME")
        return main_world(a)
    if a.worker:
        import torch

        torch.set_num_threads(a.threads)
        step, mode, arg = a.worker
        if step == "encode":
            n_names, path = arg.split(":", 1)
            result = worker_encode(int(n_names), mode, Path(path), a.batch_size)
        else:
            result = worker_predict(Path(arg), mode, a.photos, a.chunk_elems, a.device)
        print(json.dumps(result))
        return 0
    if a.small:
        a.compare_names, a.names, a.photos = 300, 1_000, 600
    with tempfile.TemporaryDirectory() as tmp:
        work = a.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        common = ["--photos", str(a.photos), "--chunk-elems", str(a.chunk_elems),
                  "--batch-size", str(a.batch_size), "--device", a.device]  # fmt: skip
        rows = []
        for n_names, modes in ((a.compare_names, ("whole", "chunked")), (a.names, ("chunked",))):
            for mode in modes:
                path = work / f"text-{n_names}-{mode}.npy"
                enc = _run([*common, "--worker", "encode", mode, f"{n_names}:{path}"], a.threads)
                pred = _run([*common, "--worker", "predict", mode, str(path)], a.threads)
                rows.append({"names": n_names, "mode": mode, "encode": enc, "predict": pred})
                path.unlink()
    whole, chunked, large = rows
    if whole["predict"]["digest"] != chunked["predict"]["digest"]:
        raise AssertionError("chunked and whole predictions differ")
    print(f"templates 21, photos {a.photos}, threads {a.threads}, chunk_elems {a.chunk_elems}, "
          f"predict on {whole['predict']['device']}")  # fmt: skip
    print("| step | names | prompts | mode | seconds | CPU s | per second | per CPU s | "
          "peak RSS MB | start MB |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        for step, unit in (("encode", "prompts"), ("predict", "sims")):
            r = row[step]
            per_cpu = r["rate"] * r["seconds"] / max(r["cpu_seconds"], 1e-9)
            print(f"| {step} | {row['names']} | {21 * row['names']} | {row['mode']} | "
                  f"{r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['rate']:,.0f} {unit} | "
                  f"{per_cpu:,.0f} | {r['peak_mb']:.0f} | {r['start_mb']:.0f} |")  # fmt: skip
    ratios = {}
    for step in ("encode", "predict"):
        w, c = whole[step], chunked[step]
        ratios[f"{step}_time"] = c["seconds"] / w["seconds"]
        ratios[f"{step}_cpu"] = max(c["cpu_seconds"], 1e-3) / max(w["cpu_seconds"], 1e-3)
        # memory above the step's start: what the step itself added
        ratios[f"{step}_memory"] = max(c["peak_mb"] - c["start_mb"], 1.0) / max(
            w["peak_mb"] - w["start_mb"], 1.0
        )
    print(f"chunked / whole at {a.compare_names} names: " + ", ".join(
        f"{k} {v:.2f}" for k, v in ratios.items()))  # fmt: skip
    print(f"pool {a.names}: encode {21 * a.names} prompts in {large['encode']['seconds']:.1f} s "
          f"({large['encode']['cpu_seconds']:.1f} CPU s; {large['encode']['rate']:,.0f} prompts/s,"
          f" peak RSS {large['encode']['peak_mb']:.0f}"
          f" MB); predict {a.photos} photos in {large['predict']['seconds']:.1f} s (peak RSS "
          f"{large['predict']['peak_mb']:.0f} MB)")  # fmt: skip
    print(json.dumps({"ratios": ratios, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
