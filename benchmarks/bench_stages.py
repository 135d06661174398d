"""Per-item rates of the paper's heavy stages, and the full-scale estimates they give.

Measures, on this machine with ``--threads`` CPU threads (default 1, so the numbers are per
core): decoding a 512-px JPEG, the Haar cascade on it (``idia.faces.detect_faces`` with the
workflow's settings), image encoding per open_clip architecture (random weights: the speed of a
forward pass does not depend on them), and a FAISS IVF index (``idia.retrieval.build_index`` /
``search``) with the number of lists the paper's 3.3M CC3M vectors get. It then multiplies the
rates by the paper's item counts into the README's estimate table. The counts are those of the
sources (CC3M's rows, the paper's own LAION hit total from ``config/reference/``); the ones we
cannot know before a run (FaceScrub URLs still alive) are stated assumptions.

    .venv/bin/python benchmarks/bench_stages.py                    # ~2 min on one core
    .venv/bin/python benchmarks/bench_stages.py --threads 8 --archs ViT-L-14
    .venv/bin/python benchmarks/bench_stages.py --small            # seconds: the test suite runs it
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image

from idia import retrieval
from idia.compat import import_open_clip
from idia.faces import detect_faces
from idia.render import render_face, sample_identity

ROOT = Path(__file__).resolve().parents[1]
CC3M_ROWS = 3_318_333  # Train_GCC-training.tsv
FACESCRUB_URLS = 107_000  # both lists; many hosts are gone
ALIVE = 0.5  # assumed share of FaceScrub URLs that still answer (the paper's photos: queries)
RETRIEVAL_K = 50  # config/paper.yaml injection.retrieval.k
RETRIEVAL_DIM = 768  # ViT-L-14's embedding width (injection.retrieval.model)


def per_item(fn: Callable[[], object], items: int, repeat: int) -> float:
    """Seconds per item of ``fn`` (which handles ``items`` items), best of ``repeat`` after a
    warm-up call: the best run is the one least disturbed by other work on the machine."""
    fn()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / items


def photo(seed: int) -> tuple[np.ndarray, bytes]:
    """A 512-px photo of a rendered person (``idia.render``: a face on a textured background) and
    its JPEG bytes at quality 90, the size of a CC3M image after the download's resize."""
    rng = np.random.default_rng(seed)
    image = render_face(sample_identity(rng), rng, size=512)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return image, buffer.getvalue()


def encode_rate(arch: str, batch: int, repeat: int) -> float:
    """Seconds per 224-px image for open_clip ``arch``'s image tower (no gradients)."""
    open_clip = import_open_clip()
    model = open_clip.create_model(arch, pretrained=None).eval()
    size = model.visual.image_size
    size = size[0] if isinstance(size, tuple) else size
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        return per_item(lambda: model.encode_image(x), batch, repeat)


def faiss_rates(n: int, threads: int, seed: int) -> dict:
    """The paper's index (``retrieval.index_spec`` at 3.3M vectors) probed with ``n`` random unit
    vectors: training seconds per training vector, adding seconds per vector, and search seconds
    per query at nprobe 64 (its lists are ``CC3M_ROWS / n`` times shorter than at full scale)."""
    spec = retrieval.index_spec(CC3M_ROWS, RETRIEVAL_DIM)
    x = np.random.default_rng(seed).standard_normal((n, RETRIEVAL_DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    faiss = retrieval.faiss
    faiss.omp_set_num_threads(threads)
    index = faiss.index_factory(RETRIEVAL_DIM, spec, faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    index.train(x)
    trained = time.perf_counter() - start
    start = time.perf_counter()
    index.add(x)
    added = time.perf_counter() - start
    # a query compares with every centroid, then with the vectors of its nprobe lists; at n
    # probe vectors the lists are nearly empty, so time the comparisons on an exact index
    queries = x[: min(200, n)]
    flat = faiss.IndexFlatIP(RETRIEVAL_DIM)
    flat.add(x)
    per_pair = per_item(lambda: flat.search(queries, RETRIEVAL_K), len(queries) * n, 2)
    nlist = faiss.extract_index_ivf(index).nlist
    return {
        "spec": spec,
        "nlist": nlist,
        "n": n,
        "train_per_vector": trained / n,
        "add_per_vector": added / n,
        "per_comparison": per_pair,
    }


def estimates(rates: dict[str, float], encode: dict[str, float], fx: dict[str, float]) -> list:
    """(stage, items, per item, core-hours) at the paper's scale, from the measured rates."""
    hits = int(
        pd.read_csv(ROOT / "config/reference/laion400m_membership_counts.csv")["count"].sum()
    )
    queries = int(FACESCRUB_URLS * ALIVE)
    retrieved = queries * RETRIEVAL_K  # an upper bound: retrieved images overlap
    decode, haar = rates["decode"], rates["haar"]
    rows = [
        ("photos: decode (identities, injection reads)", CC3M_ROWS, decode),
        (
            f"LAION pairs: decode + Haar ({hits:,} caption hits, the paper's counts)",
            hits,
            decode + haar,
        ),
        (
            f"face filter: decode + Haar on retrieved images (<= {queries:,} x k={RETRIEVAL_K})",
            retrieved,
            decode + haar,
        ),
        (
            "face filter if it were exhaustive: decode + Haar on all of CC3M",
            CC3M_ROWS,
            decode + haar,
        ),
    ]
    for arch, seconds in encode.items():
        rows.append((f"embed CC3M with {arch} (retrieval uses ViT-L-14)", CC3M_ROWS, seconds))
    # k-means is linear in its sample: build_index trains on 256 vectors a list
    sample = min(CC3M_ROWS, retrieval.POINTS_PER_CENTROID * fx["nlist"])
    compared = fx["nlist"] + 64 * CC3M_ROWS / fx["nlist"]  # centroids + nprobe 64 full lists
    rows += [
        (
            f"FAISS {fx['spec']}: train on {sample:,} vectors (d={RETRIEVAL_DIM})",
            sample,
            fx["train_per_vector"],
        ),
        (f"FAISS {fx['spec']}: add CC3M", CC3M_ROWS, fx["add_per_vector"]),
        (
            f"FAISS search, {queries:,} queries, nprobe 64 (~{compared:,.0f} vectors each)",
            queries,
            fx["per_comparison"] * compared,
        ),
    ]
    return [(stage, n, per, n * per / 3600) for stage, n, per in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: per core)")
    parser.add_argument("--archs", nargs="+", default=["ViT-B-32", "RN50", "ViT-L-14"])
    parser.add_argument("--batch", type=int, default=4, help="images per encode call")
    parser.add_argument("--faiss-n", type=int, default=100_000, help="vectors in the FAISS probe")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="tiny sizes, seconds (for the tests)")
    args = parser.parse_args(argv)
    if args.small:
        args.archs, args.batch, args.faiss_n, args.repeat = ["RN50"], 2, 10_000, 1
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    image, jpeg = photo(args.seed)
    rates = {
        "decode": per_item(
            lambda: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")), 1, 10 * args.repeat
        ),
        "haar": per_item(lambda: detect_faces(image, 1.1, 5, 32), 1, 3 * args.repeat),
    }
    encode = {arch: encode_rate(arch, args.batch, args.repeat) for arch in args.archs}
    fx = faiss_rates(args.faiss_n, args.threads, args.seed)

    print(f"measured with {args.threads} thread(s); per item, best of {args.repeat}:")
    print(f"  decode a 512-px JPEG ({len(jpeg):,} B)  {rates['decode'] * 1e3:8.2f} ms")
    print(f"  Haar cascade on it                 {rates['haar'] * 1e3:8.2f} ms")
    for arch, seconds in encode.items():
        print(f"  encode one image, {arch:<16} {seconds * 1e3:8.1f} ms")
    print(
        f"  FAISS {fx['spec']} over {fx['n']:,}: train {fx['train_per_vector'] * 1e6:.0f}, add"
        f" {fx['add_per_vector'] * 1e6:.0f} us/vector; exact search"
        f" {fx['per_comparison'] * 1e9:.1f} ns a query-vector pair"
    )
    print("\nthe paper's scale (estimates: the rates above times the sources' item counts):\n")
    print("| stage | items | per item | core-hours |")
    print("|---|---:|---:|---:|")
    for stage, n, per, hours in estimates(rates, encode, fx):
        print(f"| {stage} | {n:,} | {per * 1e3:.2f} ms | {hours:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
