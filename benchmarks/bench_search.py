"""Benchmark the caption search against the paper's approach and GNU grep, on the same captions.

Run on purpose, not in the test suite:

    python benchmarks/bench_search.py --captions 1000000 --names 500 --seed 0

Synthetic captions are random lower-case vocabulary words with planted names (random case, some
with punctuation: ``O'Xyz``, ``Abc D. Efg``) at Zipf-like rates; name tokens and vocabulary are
disjoint, so the planted counts are the truth. Methods:

1. ``idia.search.search_shard(match="word")``: one DuckDB pass over the parquet file, all names at
   once (n-gram hash join).
2. the paper's approach: one pass over all captions per name. Emulated with pandas
   ``Series.str.contains(key, regex=False)`` over the captions normalized and tokenized once
   (tokens joined by spaces, padded with a space at each end) with the key ``" " + name tokens +
   " "``, so word boundaries hold and the counts are comparable. The normalization is timed on its
   own. The per-name loop is timed on a subsample (``--paper-sample``) and extrapolated linearly.
3. GNU grep: ``grep -n -o -i -w -F -f names.txt captions.txt | sort -u | cut | sort | uniq -c``
   on the raw captions (one per line), which gives per-name counts of distinct lines. grep's ``-o``
   reports non-overlapping matches only, and ``-w`` has its own idea of a word: its counts are
   compared only on names without punctuation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from idia.search import search_shard, tokenize

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def _words(rng: np.random.Generator, n: int, lo: int, hi: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        w = "".join(rng.choice(LETTERS, rng.integers(lo, hi + 1)))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


def make_world(n_captions: int, n_names: int, seed: int) -> tuple[list[str], pd.DataFrame, Counter]:
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    vocab = np.array(_words(rng, 20000, 2, 10, taken))
    firsts = _words(rng, max(n_names, 50), 4, 8, taken)
    lasts = _words(rng, max(n_names, 50), 5, 9, taken)
    names = []
    seen = set()
    while len(names) < n_names:
        f = firsts[rng.integers(len(firsts))].title()
        last = lasts[rng.integers(len(lasts))].title()
        kind = rng.random()
        if kind < 0.05:
            name = f"{f} O'{last}"
        elif kind < 0.12:
            name = f"{f} {LETTERS[rng.integers(26)].upper()}. {last}"
        else:
            name = f"{f} {last}"
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    names_df = pd.DataFrame({"person_id": np.arange(n_names), "name": names})
    # Zipf-like popularity; about 30% of the captions mention someone.
    weights = 1.0 / np.arange(1, n_names + 1) ** 1.1
    weights /= weights.sum()
    lengths = rng.integers(5, 21, n_captions)
    words = vocab[rng.integers(len(vocab), size=int(lengths.sum()))]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    planted = rng.random(n_captions) < 0.3
    who = rng.choice(n_names, size=n_captions, p=weights)
    where = rng.integers(0, lengths)
    case = rng.integers(0, 3, n_captions)
    truth: Counter = Counter()
    captions = []
    for i in range(n_captions):
        ws = list(words[starts[i] : starts[i] + lengths[i]])
        if planted[i]:
            name = names[who[i]]
            name = (name, name.lower(), name.upper())[case[i]]
            ws.insert(int(where[i]), name)
            truth[int(who[i])] += 1
        captions.append(" ".join(ws))
    return captions, names_df, truth


def time_ours(path: Path, names: pd.DataFrame, threads: int) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    hits = search_shard(path, names, match="word", threads=threads)
    return time.perf_counter() - t0, hits


def time_paper(
    captions: list[str], names: pd.DataFrame, sample: int
) -> tuple[float, float, pd.Series, int]:
    sub = captions[:sample]
    t0 = time.perf_counter()
    text = pd.Series([" " + " ".join(tokenize(c)) + " " for c in sub])
    t_norm = time.perf_counter() - t0
    keys = [" " + " ".join(tokenize(n)) + " " for n in names["name"]]
    t0 = time.perf_counter()
    counts = {
        pid: int(text.str.contains(k, regex=False).sum())
        for pid, k in zip(names["person_id"], keys)
    }
    t_loop = time.perf_counter() - t0
    return t_norm, t_loop, pd.Series(counts), len(sub)


def time_grep(txt: Path, names: pd.DataFrame, work: Path) -> tuple[float, pd.Series] | None:
    if shutil.which("grep") is None:
        return None
    pat = work / "names.txt"
    pat.write_text("\n".join(names["name"]) + "\n")
    out = work / "grep_counts.txt"
    cmd = (
        f"grep -n -o -i -w -F -f '{pat}' '{txt}' | sort -u | cut -d: -f2- "
        f"| sort | uniq -c > '{out}'"
    )
    env = dict(os.environ, LC_ALL="C")
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, env=env)
    dt = time.perf_counter() - t0
    by_lower = {n.lower(): pid for pid, n in zip(names["person_id"], names["name"])}
    counts: Counter = Counter()
    for line in out.read_text().splitlines():
        n, _, matched = line.strip().partition(" ")
        pid = by_lower.get(matched.lower())
        if pid is not None:
            counts[pid] += int(n)
    return dt, pd.Series(counts, dtype="int64")


def compare(label: str, ours: pd.Series, other: pd.Series, ids) -> int:
    bad = 0
    for pid in ids:
        a, b = int(ours.get(pid, 0)), int(other.get(pid, 0))
        if a != b:
            bad += 1
            if bad <= 10:
                print(f"  mismatch {label}: person {pid}: ours {a}, {label} {b}")
    print(f"{label}: {len(ids) - bad}/{len(ids)} names agree")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captions", type=int, default=1_000_000)
    ap.add_argument("--names", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--paper-sample",
        type=int,
        default=50_000,
        help="captions on which the per-name loop is timed (then extrapolated)",
    )
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    args = ap.parse_args(argv)

    work = args.out or Path(tempfile.mkdtemp(prefix="bench_search_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    captions, names, truth = make_world(args.captions, args.names, args.seed)
    path = work / "captions.parquet"
    pq.write_table(pa.table({"caption": captions}), path, row_group_size=100_000)
    txt = work / "captions.txt"
    txt.write_text("\n".join(captions) + "\n")
    print(
        f"{args.captions} captions, {args.names} names, {sum(truth.values())} planted mentions "
        f"(generated in {time.perf_counter() - t0:.1f}s, in {work}); "
        f"{args.threads} threads for DuckDB, {os.cpu_count()} cores"
    )

    t_ours, hits = time_ours(path, names, args.threads)
    ours = hits.groupby("person_id").size()
    truth_s = pd.Series(truth, dtype="int64")
    ids = list(names["person_id"])
    compare("planted truth", ours, truth_s, ids)

    sample = min(args.paper_sample, args.captions)
    t_norm, t_loop, paper, n_sub = time_paper(captions, names, sample)
    ours_sub = hits[hits["row"] < n_sub].groupby("person_id").size()
    compare(f"per-name loop (first {n_sub} captions)", ours_sub, paper, ids)
    scale = args.captions / n_sub
    t_paper = (t_norm + t_loop) * scale

    rows = [("idia search_shard (DuckDB, word)", t_ours, args.threads, "")]
    note = "" if n_sub == args.captions else f"extrapolated x{scale:g} from {n_sub}"
    rows.append(("per-name pandas str.contains", t_paper, 1, note))
    rows.append(("  of which: normalize once", t_norm * scale, 1, note))
    rows.append(("  of which: per-name loop", t_loop * scale, 1, note))
    grep = time_grep(txt, names, work)
    if grep is not None:
        t_grep, grep_counts = grep
        plain = [
            p for p, n in zip(names["person_id"], names["name"]) if n.replace(" ", "").isalnum()
        ]
        compare("grep (names without punctuation)", ours, grep_counts, plain)
        rows.append(("GNU grep -F -w -i -o | sort | uniq -c", t_grep, 1, "counts per name"))

    print()
    head = f"{'method':40s} {'seconds':>9s} {'captions/s':>12s} {'/s per core':>12s} {'x ours':>7s}"
    print(head)
    print("-" * len(head))
    for label, sec, cores, note in rows:
        rate = args.captions / sec
        print(
            f"{label:40s} {sec:9.2f} {rate:12,.0f} {rate / cores:12,.0f} {sec / t_ours:7.1f}"
            + (f"  ({note})" if note else "")
        )
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
