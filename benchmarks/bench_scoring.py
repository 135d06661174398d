"""Scoring benchmark: the vectorized ``attack.sweep`` against a per-draw Python loop.

The loop is what the original notebooks did: for every person, k, draw and template, count the
k predictions with ``collections.Counter`` and check that the true name is the unique most
frequent one. Both methods use the same seeded photo subsets (``attack._draw_masks``), so their
score arrays and metrics tables must be equal. Also times ``stats.bootstrap`` (1000 replicates)
for three models' worth of persons.

    .venv/bin/python benchmarks/bench_scoring.py
    .venv/bin/python benchmarks/bench_scoring.py --persons 60 --draws 5
    .venv/bin/python benchmarks/bench_scoring.py --small      # seconds: the test suite runs it
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import numpy as np
import pandas as pd

from idia import attack, stats


def synthetic_predictions(
    n_persons: int, m: int, n_templates: int, n_cands: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predictions ``[n*m, T]`` in which each person has a "recognition strength".

    A photo/template predicts the true name with the person's probability (0.02 to 0.6 for the
    members, at most 0.1 for the non-members), else one of three per-person confusable names (so
    wrong names pile up too and ties occur) or a random name. Photos are shuffled across persons.
    """
    rng = np.random.default_rng(seed)
    true = rng.choice(n_cands, n_persons, replace=False)
    member = rng.random(n_persons) < 0.5
    strength = np.where(member, rng.uniform(0.02, 0.6, n_persons), rng.uniform(0, 0.1, n_persons))
    confusable = rng.integers(0, n_cands, (n_persons, 3))
    person = rng.permutation(np.repeat(np.arange(n_persons), m))
    shape = (person.size, n_templates)
    u = rng.random(shape)
    s = strength[person][:, None]
    pred = rng.integers(0, n_cands, shape)
    conf = confusable[person[:, None], rng.integers(0, 3, shape)]
    pred = np.where(u < s + 0.25, conf, pred)
    pred = np.where(u < s, true[person][:, None], pred)
    return pred.astype(np.int32), person, true, member


def loop_sweep(pred, person, true, ks, n_draws, seed) -> np.ndarray:
    """The notebooks' way, one Counter per (person, k, draw, template), on the same draws."""
    n = len(true)
    out = np.zeros((n, len(ks), n_draws), dtype=np.int16)
    order = np.argsort(person, kind="stable")
    n_t = pred.shape[1]
    for p in range(n):
        photos = pred[order[person[order] == p]]  # the person's photos in input order
        m = photos.shape[0]
        for ki, k in enumerate(ks):
            masks = attack._draw_masks(seed, p, k, m, n_draws)
            for d in range(n_draws):
                chosen = photos[masks[d]]
                score = 0
                for t in range(n_t):
                    top = Counter(chosen[:, t].tolist()).most_common(2)
                    if top[0][0] == true[p] and (len(top) == 1 or top[1][1] < top[0][1]):
                        score += 1
                out[p, ki, d] = score
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="seconds-long run on tiny sizes")
    ap.add_argument("--persons", type=int, default=120)
    ap.add_argument("--photos", type=int, default=30)
    ap.add_argument("--templates", type=int, default=21)
    ap.add_argument("--candidates", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.small:
        args.persons, args.photos, args.candidates, args.draws, args.boot = 12, 8, 100, 3, 100

    pred, person, true, member = synthetic_predictions(
        args.persons, args.photos, args.templates, args.candidates, args.seed
    )
    ks = list(range(1, args.photos + 1))
    print(
        f"{args.persons} persons × {args.photos} photos × {args.templates} templates, "
        f"{args.candidates} candidates, ks 1..{args.photos}, {args.draws} draws, seed {args.seed}"
    )

    t0 = time.perf_counter()
    fast = attack.sweep(pred, person, true, ks, args.draws, args.seed)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = loop_sweep(pred, person, true, ks, args.draws, args.seed)
    t_slow = time.perf_counter() - t0
    np.testing.assert_array_equal(fast, slow)
    pd.testing.assert_frame_equal(
        attack.metrics_table(fast, member, ks, 1), attack.metrics_table(slow, member, ks, 1)
    )
    print(f"scores equal ({fast.size} entries, mean {fast.mean():.2f}); metrics tables equal\n")

    # Bootstrap: three models' worth of identities, scored on all photos (finer score).
    rng = np.random.default_rng(args.seed)
    n_all = 3 * args.persons
    y = np.tile(member, 3)
    finer = np.tile(fast[:, -1, 0], 3) + rng.random(n_all)  # vote at k = m, ties broken
    t0 = time.perf_counter()
    for i in range(3):
        part = slice(i * args.persons, (i + 1) * args.persons)
        res = stats.bootstrap(finer[part], y[part], n_boot=args.boot, seed=args.seed)
    t_boot = time.perf_counter() - t0

    rows = [
        ("idia attack.sweep (vectorized)", t_fast, 1.0),
        ("per-draw Counter loop (notebooks)", t_slow, t_slow / t_fast),
        (f"stats.bootstrap, 3 × {args.persons} persons, {args.boot} reps", t_boot, float("nan")),
    ]
    print(f"| {'method':<48} | {'seconds':>8} | {'× ours':>7} |")
    print(f"|{'-' * 50}|{'-' * 9}:|{'-' * 8}:|")
    for name, sec, ratio in rows:
        r = "" if np.isnan(ratio) else f"{ratio:.1f}"
        print(f"| {name:<48} | {sec:8.3f} | {r:>7} |")
    print(
        f"\nlast model: AUC {res['auc']:.3f} [{res['auc_lo']:.3f}, {res['auc_hi']:.3f}], "
        f"TPR@1% FPR {res['tpr_at_fpr_0.01']:.3f} "
        f"[{res['tpr_at_fpr_0.01_lo']:.3f}, {res['tpr_at_fpr_0.01_hi']:.3f}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
