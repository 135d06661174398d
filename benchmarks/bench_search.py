"""Benchmark the caption search against the paper's approach, GNU grep and ripgrep, same captions.

Run on purpose, not in the test suite:

    python benchmarks/bench_search.py --captions 10000000 --names 500 5000 50000
    python benchmarks/bench_search.py --captions 200000 --names 500 5000 --skip-loop   # quick

Synthetic captions are random lower-case vocabulary words with planted names (random case, some
with punctuation: ``O'Xyz``, ``Abc D. Efg``) at Zipf-like rates over the largest name list; the
smaller lists are its most popular prefixes, so every list is searched in the *same* text. Name
tokens and vocabulary are disjoint and first and last names come from disjoint word sets, so no
two names overlap and the planted counts are the truth. Methods:

1. ``idia.search.search_shard(match="word")``: one pass over the parquet file, all names at once
   (DuckDB reads and normalizes the caption column in batches, an Aho-Corasick automaton finds the
   names), with each of ``--threads`` (default 1; e.g. ``--threads 1 2`` for both). Run in a fresh
   interpreter so that its peak RSS (``VmHWM``) is its own.
2. the paper's approach: one pass over all captions per name. Emulated with pandas
   ``Series.str.contains(key, regex=False)`` over the captions normalized and tokenized once
   (tokens joined by spaces, padded with a space at each end) with the key ``" " + name tokens +
   " "``, so word boundaries hold and the counts are comparable. Timed on the first
   ``--paper-sample`` captions and at most ``--loop-names`` names, extrapolated linearly in both.
3. GNU grep and 4. ripgrep (``rg --threads 1``): ``-n -o -i -w -F -f names.txt captions.txt``
   on the raw captions (one per line, ``LC_ALL=C``), then ``sort -u | cut -d: -f2- | sort |
   uniq -c`` for per-name counts of distinct lines; peak RSS of the scanner from GNU ``time``.
   With ``-o`` both report non-overlapping matches only (at a position the leftmost, longest
   name wins and the scan resumes after it), so a caption naming two overlapping names counts
   for one of them only, and their ``-w`` has its own idea of a word; their counts are compared
   only on names without punctuation. The synthetic names never overlap, so overlap costs them
   no count here. When two probes on prefixes predict more than ``--max-scan-seconds`` for the
   whole text, the time is extrapolated from the probes. ripgrep: Debian's ``ripgrep`` package.

Two checks of the search itself: only the caption column is read (the same captions with an
unused wide column take the same time and RSS), and peak RSS at 1M captions vs the full size.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from idia.search import search_shard, tokenize

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))
CHUNK = 1_000_000
ROW_GROUP = 100_000


def _words(rng: np.random.Generator, n: int, lo: int, hi: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        w = "".join(rng.choice(LETTERS, rng.integers(lo, hi + 1)))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


def make_names(rng: np.random.Generator, n_names: int) -> tuple[list[str], list[str]]:
    """(vocabulary, names): disjoint word sets for captions, first names and last names."""
    taken: set[str] = set()
    vocab = _words(rng, 20000, 2, 10, taken)
    firsts = _words(rng, max(n_names, 50), 4, 8, taken)
    lasts = _words(rng, max(n_names, 50), 5, 9, taken)
    names: list[str] = []
    seen: set[str] = set()
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
    return vocab, names


def make_corpus(
    work: Path, n_captions: int, n_names: int, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Write ``captions.parquet`` and ``captions.txt`` chunk by chunk; return names and truth.

    The truth is the number of planted mentions per person (one per planted caption).
    """
    rng = np.random.default_rng(seed)
    vocab, names = make_names(rng, n_names)
    variants = [v for n in names for v in (n, n.lower(), n.upper())]
    dictionary = pa.array(vocab + variants)
    # Zipf-like popularity; about 30% of the captions mention someone.
    weights = 1.0 / np.arange(1, n_names + 1) ** 1.1
    weights /= weights.sum()
    counts = np.zeros(n_names, dtype=np.int64)
    schema = pa.schema([("caption", pa.string())])
    with (
        pq.ParquetWriter(work / "captions.parquet", schema) as pw,
        open(work / "captions.txt", "w") as txt,
    ):
        for start in range(0, n_captions, CHUNK):
            n = min(CHUNK, n_captions - start)
            lengths = rng.integers(5, 21, n)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
            idx = rng.integers(len(vocab), size=int(offsets[-1]))
            planted = np.flatnonzero(rng.random(n) < 0.3)
            who = rng.choice(n_names, size=len(planted), p=weights)
            where = rng.integers(0, lengths[planted])
            case = rng.integers(0, 3, len(planted))
            idx[offsets[planted] + where] = len(vocab) + 3 * who + case
            tokens = pc.take(dictionary, pa.array(idx))
            caps = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), tokens), " ")
            pw.write_table(pa.table({"caption": caps}, schema=schema), row_group_size=ROW_GROUP)
            txt.write("\n".join(caps.to_pylist()) + "\n")
            counts += np.bincount(who, minlength=n_names)
    names_df = pd.DataFrame({"person_id": np.arange(n_names), "name": names})
    return names_df, counts


def write_prefix(src: Path, dst: Path, n_rows: int, extra_bytes: int = 0, seed: int = 0) -> None:
    """The first ``n_rows`` captions of ``src``, optionally with a wide random ``extra`` column."""
    rng = np.random.default_rng(seed)
    pf = pq.ParquetFile(src)
    done = 0
    writer = None
    for batch in pf.iter_batches(batch_size=ROW_GROUP, columns=["caption"]):
        batch = batch.slice(0, n_rows - done)
        cols = {"caption": batch.column(0)}
        if extra_bytes:
            raw = rng.integers(0, 256, size=(len(batch), extra_bytes // 2), dtype=np.uint8)
            cols["extra"] = pa.array([r.tobytes().hex() for r in raw])
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(dst, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
        done += len(batch)
        if done >= n_rows:
            break
    writer.close()


def _peak_mb() -> float:
    """Peak RSS of this process in MB.

    ``VmHWM`` rather than ``ru_maxrss``: a process started by fork + exec inherits its parent's
    peak in ``ru_maxrss`` but not in ``VmHWM``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_ours(path: str, names: pd.DataFrame, threads: int, memory_limit: str | None):
    base = _peak_mb()  # the interpreter with pandas, pyarrow and duckdb imported
    t0 = time.perf_counter()
    hits = search_shard(path, names, match="word", threads=threads, memory_limit=memory_limit)
    dt = time.perf_counter() - t0
    return dt, hits["person_id"].to_numpy(), hits["row"].to_numpy(), base, _peak_mb()


def _in_child(fn, *args):
    """Run ``fn`` in a fresh interpreter, so that its peak RSS is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def scan(tool: str, pat: Path, txt: Path, out: Path) -> tuple[float, float, float, str]:
    """(scan seconds, count seconds, scanner peak RSS MB, ``uniq -c`` output)."""
    if tool == "grep":
        cmd = ["grep", "-n", "-o", "-i", "-w", "-F", "-f", str(pat), str(txt)]
    else:
        cmd = ["rg", "--no-config", "--threads", "1", "-n", "-o", "-i", "-w", "-F", "-f"]
        cmd += [str(pat), str(txt)]
    rss_file = out.with_suffix(".rss")
    # GNU time reports the scanner's own peak RSS (a child of Python would inherit Python's).
    if shutil.which("time"):
        cmd = [shutil.which("time"), "-f", "%M", "-o", str(rss_file), *cmd]
    env = dict(os.environ, LC_ALL="C")
    t0 = time.perf_counter()
    with open(out, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, env=env).returncode
    t_scan = time.perf_counter() - t0
    if rc not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed with exit status {rc}")
    rss = float(rss_file.read_text().split()[-1]) / 1024 if rss_file.exists() else float("nan")
    counted = out.with_suffix(".counts")
    pipe = f"sort -u '{out}' | cut -d: -f2- | sort | uniq -c > '{counted}'"
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", pipe], check=True, env=env)
    t_count = time.perf_counter() - t0
    text = counted.read_text()
    for f in (out, counted, rss_file):
        f.unlink(missing_ok=True)
    return t_scan, t_count, rss, text


def time_loop(txt: Path, names: pd.DataFrame, sample: int) -> tuple[float, float, pd.Series, int]:
    """The per-name loop on the first ``sample`` captions and the given names."""
    with open(txt) as fh:
        sub = [fh.readline().rstrip("\n") for _ in range(sample)]
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
    return t_norm, t_loop, pd.Series(counts, dtype="int64"), len(sub)


def parse_counts(text: str, names: pd.DataFrame) -> pd.Series:
    by_lower = {n.lower(): pid for pid, n in zip(names["person_id"], names["name"])}
    counts: Counter = Counter()
    for line in text.splitlines():
        n, _, matched = line.strip().partition(" ")
        pid = by_lower.get(matched.lower())
        if pid is not None:
            counts[pid] += int(n)
    return pd.Series(counts, dtype="int64")


def compare(label: str, ours: pd.Series, other: pd.Series, ids) -> int:
    bad = 0
    for pid in ids:
        a, b = int(ours.get(pid, 0)), int(other.get(pid, 0))
        if a != b:
            bad += 1
            if bad <= 5:
                print(f"  mismatch {label}: person {pid}: ours {a}, {label} {b}")
    print(f"  {label}: {len(ids) - bad}/{len(ids)} names agree")
    return bad


def print_table(n_captions: int, rows: list[tuple], t_ours: float) -> None:
    head = (
        f"{'method':44s} {'seconds':>9s} {'captions/s':>12s} {'/s per core':>12s} "
        f"{'x ours':>7s} {'peak RSS MB':>12s}"
    )
    print(head)
    print("-" * len(head))
    for label, sec, cores, rss, note in rows:
        rate = n_captions / sec
        rss_s = f"{rss:12,.0f}" if rss else f"{'':12s}"
        print(
            f"{label:44s} {sec:9.2f} {rate:12,.0f} {rate / cores:12,.0f} {sec / t_ours:7.1f} "
            + rss_s
            + (f"  ({note})" if note else "")
        )


def _counts(persons: np.ndarray, rows: np.ndarray, below: int) -> pd.Series:
    keep = rows < below
    return pd.Series(np.bincount(persons[keep])).pipe(lambda c: c[c > 0])


def _prefix_txt(txt: Path, n: int) -> Path:
    dst = txt.with_name(f"captions_{n}.txt")
    if not dst.exists():
        with open(txt) as src, open(dst, "w") as out:
            for _, line in zip(range(n), src):
                out.write(line)
    return dst


def run_list(args, work: Path, all_names: pd.DataFrame, truth: np.ndarray, k: int) -> int:
    names = all_names.iloc[:k].reset_index(drop=True)
    ids = list(names["person_id"])
    parquet, txt = work / "captions.parquet", work / "captions.txt"
    print(f"\n=== {k:,} names ===")
    rows, bad = [], 0
    for threads in args.threads:
        t, persons, rows_hit, base, rss = _in_child(
            _child_ours, str(parquet), names, threads, args.memory_limit
        )
        bad += compare(
            f"planted truth ({threads} thr)",
            _counts(persons, rows_hit, args.captions),
            pd.Series(truth[:k]),
            ids,
        )
        note = f"{base:.0f} MB of it: Python + imports"
        rows.append((f"idia search_shard (word, {threads} thr)", t, threads, rss, note))
    t_ours, rss_ours = rows[0][1], rows[0][3]  # the first thread count is the 1.0

    if not args.skip_loop:
        sample = min(args.paper_sample, args.captions)
        loop_names = names.iloc[: args.loop_names]
        t_norm, t_loop, paper, n_sub = time_loop(txt, loop_names, sample)
        bad += compare(
            f"per-name loop ({len(loop_names)} names, first {n_sub} captions)",
            _counts(persons, rows_hit, n_sub),
            paper,
            list(loop_names["person_id"]),
        )
        sc, sn = args.captions / n_sub, k / len(loop_names)
        note = f"extrapolated x{sc:g} captions"
        names_note = note + (f", x{sn:g} names" if sn > 1 else "")
        rows.append(("per-name pandas str.contains", (t_norm + t_loop * sn) * sc, 1, 0, names_note))
        rows.append(("  of which: normalize once", t_norm * sc, 1, 0, note))
        rows.append(("  of which: per-name loop", t_loop * sc * sn, 1, 0, names_note))

    plain = [p for p, n in zip(names["person_id"], names["name"]) if n.replace(" ", "").isalnum()]
    pat = work / f"names_{k}.txt"
    pat.write_text("\n".join(names["name"]) + "\n")
    for tool, label in (("grep", "GNU grep"), ("rg", "ripgrep")):
        if shutil.which(tool) is None:
            pkg = "ripgrep" if tool == "rg" else tool
            print(f"  {tool} not found: skipped (apt-get install -y {pkg})")
            continue
        # Two probes on prefixes give start-up and per-caption cost; the whole text is scanned
        # only if that predicts at most --max-scan-seconds, else the time is extrapolated.
        n1 = min(max(args.scan_probe // 50, 1000), args.captions)
        t1, *_ = scan(tool, pat, _prefix_txt(txt, n1), work / "o.txt")
        n_run = min(args.scan_probe, args.captions, max(2 * n1, int(n1 * 60 / max(t1, 1e-3))))
        t_scan, t_count, rss, counted = scan(tool, pat, _prefix_txt(txt, n_run), work / "o.txt")
        if n_run > n1:
            per = max(t_scan - t1, 0.0) / (n_run - n1)
        else:  # one probe only: no start-up cost to separate
            per, t1, n1 = t_scan / n_run, 0.0, 0
        t_full = t1 + per * (args.captions - n1)
        if n_run < args.captions and t_full <= args.max_scan_seconds:
            n_run = args.captions
            t_scan, t_count, rss, counted = scan(tool, pat, txt, work / "o.txt")
        if n_run < args.captions:
            probes = (
                f"{n1:,} and {n_run:,} captions: {t1:.1f}s, " if n1 else f"{n_run:,} captions: "
            )
            note = f"extrapolated from {probes}{t_scan:.1f}s"
            t_count *= args.captions / n_run
            t_scan = t_full
        else:
            note = ""
        bad += compare(
            f"{tool} (names without punctuation, first {n_run:,} captions)",
            _counts(persons, rows_hit, n_run),
            parse_counts(counted, names),
            plain,
        )
        rows.append((f"{label} -F -w -i -o (scan, 1 core)", t_scan, 1, rss, note))
        rows.append((f"{label} scan + sort|uniq -c counts", t_scan + t_count, 1, 0, note))
    print()
    print_table(args.captions, rows, t_ours)
    return bad, (t_ours, len(persons), rss_ours)


def check_io(args, work: Path, all_names: pd.DataFrame, full: tuple[float, int, float]) -> None:
    """Column projection (an extra wide column costs nothing) and peak RSS vs captions.

    ``full`` is (seconds, hits, peak RSS) of the full-size run with the same names.
    """
    n = min(1_000_000, args.captions)
    names = all_names.iloc[: min(args.names)].reset_index(drop=True)
    narrow, wide = work / "narrow.parquet", work / "wide.parquet"
    write_prefix(work / "captions.parquet", narrow, n)
    write_prefix(work / "captions.parquet", wide, n, extra_bytes=args.extra_bytes, seed=args.seed)
    print(f"\n=== I/O and memory ({len(names)} names, {args.threads[0]} thread(s)) ===")
    runs = [
        (f"{n:,} captions", narrow, n),
        (f"{n:,} captions + {args.extra_bytes} B/row unused column", wide, n),
    ]
    head = (
        f"{'file':50s} {'file MB':>8s} {'seconds':>8s} {'captions/s':>11s} {'hits':>10s} "
        f"{'peak RSS MB':>12s}"
    )
    print(head)
    print("-" * len(head))
    for label, path, count in runs:
        t, persons, _, _, rss = _in_child(
            _child_ours, str(path), names, args.threads[0], args.memory_limit
        )
        mb = path.stat().st_size / 2**20
        print(f"{label:50s} {mb:8,.0f} {t:8.2f} {count / t:11,.0f} {len(persons):10,} {rss:12,.0f}")
    if args.captions > n:
        t, hits, rss = full
        mb = (work / "captions.parquet").stat().st_size / 2**20
        label = f"{args.captions:,} captions (the {len(names)}-name run above)"
        print(f"{label:50s} {mb:8,.0f} {t:8.2f} {args.captions / t:11,.0f} {hits:10,} {rss:12,.0f}")
    narrow.unlink()
    wide.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="seconds-long run on tiny sizes")
    ap.add_argument("--captions", type=int, default=1_000_000)
    ap.add_argument("--names", type=int, nargs="+", default=[500, 5000, 50000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[1], help="threads for ours (first: the 1.0)"
    )
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit for ours")
    ap.add_argument("--skip-loop", action="store_true", help="skip the per-name loop")
    ap.add_argument("--skip-io", action="store_true", help="skip the I/O and memory check")
    ap.add_argument(
        "--paper-sample",
        type=int,
        default=20_000,
        help="captions on which the per-name loop is timed (then extrapolated)",
    )
    ap.add_argument(
        "--loop-names", type=int, default=500, help="names the per-name loop is timed on"
    )
    ap.add_argument(
        "--scan-probe",
        type=int,
        default=100_000,
        help="most captions grep/rg are probed on (and a tenth); the whole text only if the "
        "probes predict at most --max-scan-seconds",
    )
    ap.add_argument("--max-scan-seconds", type=float, default=300.0)
    ap.add_argument("--extra-bytes", type=int, default=512, help="width of the unused column")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    args = ap.parse_args(argv)
    if args.small:  # every method on a tiny corpus, so that the test suite exercises them
        args.captions, args.names, args.paper_sample, args.loop_names = 20_000, [50, 500], 2000, 50
        args.scan_probe, args.max_scan_seconds = 2000, 20.0
    args.names = sorted(set(args.names))

    work = args.out or Path(tempfile.mkdtemp(prefix="bench_search_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    all_names, truth = make_corpus(work, args.captions, max(args.names), args.seed)
    print(
        f"{args.captions:,} captions, name lists {args.names}, "
        f"{int(truth.sum()):,} planted mentions (generated in {time.perf_counter() - t0:.1f}s, "
        f"in {work}); ours with {args.threads} thread(s), {os.cpu_count()} cores"
    )
    bad = 0
    full = {}
    for k in args.names:
        b, full[k] = run_list(args, work, all_names, truth, k)
        bad += b
    if not args.skip_io:
        check_io(args, work, all_names, full[args.names[0]])
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'all counts agree' if not bad else f'{bad} count mismatches'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
