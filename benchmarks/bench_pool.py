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

ARCH_DIR = Path(__file__).resolve().parents[1] / "workflow" / "models" / "idia-vit-xs"
PHOTOS_PER_PERSON = 30


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
    a = ap.parse_args(argv)
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
