"""GPU throughput of the parts that need one: CLIP training with open_clip's trainer fed from
webdataset shards, against the compute ceiling, and the attack's encoders (prompts/s, photos/s).

- ceiling: training steps (forward, CLIP loss, backward, AdamW) on tensors already on the device,
  no data loading: the most images/s the trainer could reach with this model and batch;
- trainer: open_clip's own trainer on webdataset shards of JPEGs (its logged rate, 2nd half);
- ratio: trainer / ceiling at the same batch and precision (issue 13's goal: >= 0.9);
- encoders: prompts/s and photos/s of the attack's encoders (on CUDA photos are decoded and
  preprocessed on the GPU, idia.decode; elsewhere by PIL).

    python benchmarks/bench_gpu.py --out /tmp/bench-gpu            # on a CUDA machine
    python benchmarks/bench_gpu.py --small                         # seconds, on any machine

Synthetic data (random-noise JPEGs, random captions): throughput does not depend on content.
Prints a table and writes it as JSON under --out (default: a temporary folder). ``--small``
runs the same code path (shards, open_clip's trainer, both encoders) on tiny sizes with the tiny
CLIP of ``workflow/models/idia-vit-xs`` (32 px images), on the GPU if there is one, else on the
CPU, so that the script is exercised by the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image

ARCH_DIR = Path(__file__).resolve().parents[1] / "workflow" / "models" / "idia-vit-xs"
WORDS = ["red", "blue", "green", "photo", "person", "city", "street", "dog", "cat", "car",
         "house", "tree", "sky", "river", "night"]  # fmt: skip


def _jpeg(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _write_shard(args: tuple[Path, int, int, int]) -> str:
    path, start, count, size = args
    rng = np.random.default_rng(start)
    with tarfile.open(path, "w") as tar:
        for i in range(start, start + count):
            caption = " ".join(rng.choice(WORDS, 8)).encode()
            for suffix, data in (("jpg", _jpeg(i, size)), ("txt", caption)):
                info = tarfile.TarInfo(f"{i:09d}.{suffix}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def make_shards(folder: Path, samples: int, shards: int, size: int, workers: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    per = samples // shards
    jobs = [(folder / f"{s:05d}.tar", s * per, per, size) for s in range(shards)]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_write_shard, jobs))


def bench_training(shards, samples, logs, model, batch, epochs, workers, precision, device):
    from idia.trainer import run_training, trainer_args

    args = trainer_args(
        shards=shards, num_samples=samples, model=model, logs=str(logs), name="bench",
        epochs=epochs, batch_size=batch, lr=5e-4, wd=0.1, warmup=10, seed=0, workers=workers,
        precision=precision, device=device,
    )  # fmt: skip
    Path(logs).mkdir(parents=True, exist_ok=True)
    log = Path(logs) / "train.log"
    with log.open("w") as out:
        seconds = run_training(args, gpus=1 if device == "cuda" else 0, out=out)
    rates = [float(r) for r in re.findall(r"Batch \(t\): [\d.]+, ([\d.]+)/s,", log.read_text())]
    steady = rates[len(rates) // 2 :] or rates
    return {"model": model, "batch": batch, "precision": precision, "seconds": round(seconds, 1),
            "samples": samples * epochs,
            "images_per_s_median_2nd_half": round(statistics.median(steady), 1) if steady else None,
            "images_per_s_wall": round(samples * epochs / seconds, 1)}  # fmt: skip


def bench_ceiling(model_name, batch, steps, precision, device):
    """Images/s of training steps on device-resident random tensors: the trainer's ceiling."""
    import torch

    from idia.compat import import_open_clip

    open_clip = import_open_clip()
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms(model_name, device=device, output_dict=True)
    model.train()
    size = model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    images = torch.randn(batch, 3, size, size, device=device)
    texts = open_clip.get_tokenizer(model_name)(["a photo of a person"] * batch).to(device)
    loss_fn = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.1)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if precision == "amp_bf16"
                else torch.autocast("cuda") if precision == "amp" else nullcontext())  # fmt: skip

    def step():
        with autocast:
            out = model(images, texts)
            loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    warmup = max(2, steps // 5)
    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"model": model_name, "batch": batch, "precision": precision, "steps": steps,
            "images_per_s": round(batch * steps / seconds, 1)}  # fmt: skip


def bench_encoders(model_name, n_names, n_photos, photo_dir, device, precision, workers):
    import torch

    from idia.attack import PAPER_TEMPLATES, encode_photos, encode_prompts
    from idia.compat import import_open_clip
    from idia.decode import device_preprocess

    open_clip = import_open_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    names = [f"{WORDS[i % 14].title()} {WORDS[(i * 7) % 14].title()}son{i}" for i in range(n_names)]
    paths = sorted(photo_dir.glob("*.jpg"))[:n_photos]

    def timed(fn):
        fn()  # warm-up: kernels, cuDNN autotune
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    templates = list(PAPER_TEMPLATES)
    kw = {"device": device, "precision": precision, "progress": False}
    t_text = timed(lambda: encode_prompts(model, tokenizer, names, templates, **kw))
    t_img = timed(lambda: encode_photos(model, preprocess, paths, num_workers=workers, **kw))
    prompts = n_names * len(PAPER_TEMPLATES)
    decoding = "gpu" if device_preprocess(preprocess, device) is not None else "pil"
    return {"model": model_name, "precision": precision, "prompts": prompts,
            "prompts_per_s": round(prompts / t_text, 1), "photos": len(paths),
            "photos_per_s": round(len(paths) / t_img, 1), "photo_decoding": decoding}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--small", action="store_true", help="tiny sizes and model: seconds")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto (cuda if there is one), cuda, cpu")
    a = parser.parse_args(argv)
    if a.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            return run(a, Path(tmp))
    return run(a, a.out)


def run(a: argparse.Namespace, out: Path) -> int:
    import torch

    from idia.models import pick_device

    device = pick_device(a.device)
    # --small: the tiny CLIP at its 32 px; otherwise ViT-B-32 at 224 px (tiny sizes on a CPU)
    model = f"local-dir:{ARCH_DIR}" if a.small else "ViT-B-32"
    small = a.small or device == "cpu"
    workers = 1 if a.small else a.workers
    size = 32 if a.small else 224
    samples, shards = (64, 2) if a.small else (256, 2) if small else (32768, 16)
    data = out / "shards"
    start = time.perf_counter()
    tar_paths = make_shards(data, samples, shards, size, workers)
    photos = out / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for i in range(32 if a.small else 64 if small else 4096):
        (photos / f"{i:05d}.jpg").write_bytes(_jpeg(10**6 + i, size + size // 7))
    print(f"data: {samples} samples in {shards} shards, {time.perf_counter() - start:.0f} s",
          file=sys.stderr)  # fmt: skip
    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
               "torch": torch.__version__, "ceiling": [], "training": [], "ratios": [],
               "encoders": []}  # fmt: skip
    precision = "amp_bf16" if device == "cuda" else "fp32"
    steps = 5 if a.small else 10 if small else 50
    for batch in [16] if a.small else [32] if small else [256, 512]:
        ceiling = bench_ceiling(model, batch, steps, precision, device)
        train = bench_training(tar_paths, samples, out / f"runs-{batch}", model, batch, 1,
                               workers, precision, device)  # fmt: skip
        results["ceiling"].append(ceiling)
        results["training"].append(train)
        rate = train["images_per_s_median_2nd_half"]
        results["ratios"].append({"batch": batch, "trainer_over_ceiling": round(
            rate / ceiling["images_per_s"], 3) if rate else None})  # fmt: skip
    enc_precision = "amp" if device == "cuda" else "fp32"
    n_names, n_photos = (50, 32) if a.small else (50, 64) if small else (1000, 4096)
    results["encoders"].append(
        bench_encoders(model, n_names, n_photos, photos, device, enc_precision, workers)
    )
    (out / "bench_gpu.json").write_text(json.dumps(results, indent=2))
    for ceiling, train, ratio in zip(results["ceiling"], results["training"], results["ratios"]):
        print(f"batch {ceiling['batch']}: ceiling {ceiling['images_per_s']} img/s, trainer "
              f"{train['images_per_s_median_2nd_half']} img/s, ratio "
              f"{ratio['trainer_over_ceiling']}", file=sys.stderr)  # fmt: skip
    for enc in results["encoders"]:
        print(f"encoders: {enc['prompts_per_s']} prompts/s, {enc['photos_per_s']} photos/s "
              f"(decoding: {enc['photo_decoding']})", file=sys.stderr)  # fmt: skip
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
