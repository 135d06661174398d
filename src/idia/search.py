"""Caption search: how often does each identity's name occur in a training corpus?

Track L decides membership by searching every caption of the training set for every name
(DESIGN §3). The paper did this with one substring scan per name; here one pass per parquet shard
counts all names at once. DuckDB reads the caption column (and nothing else) in streamed batches and
normalizes it; an Aho-Corasick automaton (``ahocorasick_rs``) finds every name in each batch in one
scan of its bytes, all names at once, so the cost is linear in the captions and almost independent
of the number of names.

- ``match="word"`` (default): literal, case- and accent-insensitive, on word boundaries. Captions
  and names are normalized and tokenized by the *same* SQL expression; a name matches a caption
  when its token sequence occurs contiguously in the caption's token sequence. Tokens are runs of
  letters/digits/underscore or single other (punctuation) characters, so ``"O'Brien"`` is
  ``o ' brien`` and ``"Samuel L. Jackson"`` does not match ``"Samuel L Jackson"``. The expression
  writes the tokens separated by exactly one space and pads the caption with a space at each end,
  so the name's tokens occur contiguously exactly when ``" " + name tokens + " "`` is a substring.
- ``match="paper"``: the original semantics, a case-sensitive plain substring test.

Names travel as data (automaton patterns and a registered table), never as SQL text, so no name
can be misread as a pattern or as SQL. A caption that mentions a name twice counts once; a caption
that mentions two overlapping names counts for both (the automaton reports overlapping matches).
"""

from __future__ import annotations

import glob
import itertools
import logging
import math
import re
import unicodedata
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ahocorasick_rs
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from idia.names import MIN_LETTERS, letters, usable_name

__all__ = [
    "MATCH_MODES",
    "NON_MEMBER",
    "gather_counts",
    "normalize",
    "occurrence_bins",
    "read_hits",
    "search_shard",
    "tokenize",
    "write_hits",
]

log = logging.getLogger(__name__)

MATCH_MODES = ("word", "paper")
NON_MEMBER = "non-member"
HIT_COLUMNS = ["person_id", "shard", "row"]

# Whitespace: exactly what Python's ``str.isspace`` accepts, spelled out so that RE2 (whose ``\s``
# is ASCII-only) and Python use the same set.
_WS_RANGES = [
    (0x09, 0x0D),
    (0x1C, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
]


def _re2_class(ranges: list[tuple[int, int]]) -> str:
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)


def _py_class(ranges: list[tuple[int, int]]) -> str:
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


_WS_RE2 = _re2_class(_WS_RANGES)
_WS_PY = _py_class(_WS_RANGES)
_WS_RUN_PY = re.compile(f"[{_WS_PY}]+")
_TOKEN_PY = re.compile(f"\\w+|[^\\w{_WS_PY}]")
# The same set without the plain space, which needs no rewriting before the split.
_WS_NOSPACE_RE2 = _WS_RE2.replace("\\x{1c}-\\x{20}", "\\x{1c}-\\x{1f}")
# A token character: a letter, a number or the underscore (RE2's ``\w`` is ASCII-only).
_PUNCT_RE2 = f"([^\\pL\\pN_{_WS_RE2}])"
# Whitespace to rewrite as one space: runs of two or more, and single characters other than " ".
_WS_COLLAPSE_RE2 = f"[{_WS_RE2}]{{2,}}|[{_WS_NOSPACE_RE2}]"


# The one definition of normalization and tokenization, applied to names and captions alike.
def _norm_sql(x: str) -> str:
    return f"strip_accents(lower({x}))"


def _spaced_sql(x: str) -> str:
    """The normalized tokens, separated by exactly one space (plus any one leading/trailing space).

    Tokens are runs of token characters and every other non-space character on its own: the
    punctuation is spaced out, then every run of two or more whitespace characters, and every
    whitespace character that is not a plain space, becomes one space. (Rewriting only those runs,
    not every single space, is what keeps this about three times faster than collapsing all runs.)
    """
    spaced = f"regexp_replace({_norm_sql(x)}, '{_PUNCT_RE2}', ' \\1 ', 'g')"
    return f"regexp_replace({spaced}, '{_WS_COLLAPSE_RE2}', ' ', 'g')"


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Mc", "Me"))
    return unicodedata.normalize("NFC", kept)


def normalize(text: str) -> str:
    """Python mirror of the DuckDB normalization (for messages and tests).

    Lower-cases character by character (as DuckDB does: no context-dependent final sigma),
    strips combining marks, and collapses whitespace.
    """
    lowered = "".join(c.lower() for c in text)
    return _WS_RUN_PY.sub(" ", _strip_marks(lowered)).strip(" ")


def tokenize(text: str) -> list[str]:
    """Python mirror of the DuckDB tokenization (``\\w`` is letters, numbers and ``_`` here)."""
    return _TOKEN_PY.findall(normalize(text))


def _connect(threads: int, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {"threads": max(1, int(threads))}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(config=config)
    # No progress bars: they would fill the rule logs of long per-shard searches.
    con.execute("SET enable_progress_bar = false")
    return con


#: A name with fewer letters than this (``!!!``, ``-``, ``A``) cannot name a person: searched in
#: LAION's captions it would match millions of them.
def unusable_names(names: pd.DataFrame) -> list[str]:
    """``person_id=… name=… (n letters)`` for every name with fewer than :data:`MIN_LETTERS`
    letters (a missing name has none); empty when every name can be searched."""
    bad = []
    for person, name in zip(names["person_id"], names["name"]):
        text = "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name)
        if not usable_name(text):
            bad.append(f"person_id={person!r} name={text!r} ({letters(text)} letter(s))")
    return bad


def _check_names(names: pd.DataFrame) -> pd.DataFrame:
    missing = {"person_id", "name"} - set(names.columns)
    if missing:
        raise ValueError(
            f"names table lacks column(s) {sorted(missing)}; it has {list(names.columns)}"
        )
    if names["person_id"].isna().any():
        raise ValueError("names table has person_id values that are missing (NaN/None)")
    if names["person_id"].duplicated().any():
        dup = names.loc[names["person_id"].duplicated(keep=False), "person_id"].tolist()
        raise ValueError(f"names table has duplicate person_id values: {dup}")
    bad = unusable_names(names)
    if bad:
        raise ValueError(
            f"names that are empty or have fewer than {MIN_LETTERS} letters would match a "
            "large share of all captions; give these persons their full names (e.g. "
            "'First Last') or remove them: " + "; ".join(bad)
        )
    return names[["person_id", "name"]].reset_index(drop=True)


def _duckdb_path(path: str | Path) -> str:
    """``path`` as DuckDB's readers take it: they expand ``*``, ``?`` and ``[...]`` as a glob,
    so ``q[1].parquet`` would read ``q1.parquet``; escaped, it names only itself."""
    return glob.escape(str(path))


def _parquet_schema(path: Path) -> pa.Schema:
    """The schema of a caption parquet, or an error naming the file and what to do."""
    try:
        return pq.read_schema(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"caption file not found: {path}") from None
    except (pa.ArrowException, OSError) as err:
        raise ValueError(
            f"{path} is not a readable parquet file ({path.stat().st_size} bytes: {err}); it was "
            "probably cut short while being written or downloaded: delete it and rerun the job "
            "that makes it"
        ) from None


def _patterns(con: duckdb.DuckDBPyConnection, names: pd.DataFrame, match: str) -> list[bytes]:
    """One automaton pattern per person (in ``names``' order), UTF-8 encoded.

    ``paper``: the name as given. ``word``: the name's tokens between single spaces, with a space
    at each end (see :func:`_spaced_sql`, which the captions go through as well).
    """
    if match == "paper":
        bad = names[names["name"].isna() | (names["name"].fillna("") == "")]
        if len(bad):
            raise ValueError(
                "empty or missing names (they would match every caption): "
                + ", ".join(f"person_id={p!r} name={n!r}" for p, n in bad.itertuples(index=False))
            )
        _raise_duplicates(names, names["name"], "identical")
        return [str(n).encode("utf-8") for n in names["name"]]
    con.register("_names_in", names)
    keys = con.execute(
        f"SELECT coalesce(trim({_spaced_sql('name')}, ' '), '') AS key FROM _names_in"
    ).df()["key"]
    con.unregister("_names_in")
    empty = names[(keys == "").to_numpy()]
    if len(empty):
        raise ValueError(
            "names that are empty after normalization (they would match every caption): "
            + ", ".join(f"person_id={p!r} name={n!r}" for p, n in empty.itertuples(index=False))
        )
    _raise_duplicates(names, keys, "equal after normalization")
    return [f" {k} ".encode() for k in keys]


def _raise_duplicates(names: pd.DataFrame, key: pd.Series, how: str) -> None:
    dup = key.duplicated(keep=False)
    if not dup.any():
        return
    groups = []
    for k, grp in names[dup].groupby(key[dup], sort=True):
        members = ", ".join(f"{p!r} ({n!r})" for p, n in grp[["person_id", "name"]].values)
        groups.append(f"{k!r}: {members}")
    raise ValueError(
        f"duplicate names ({how}); their counts could not be told apart — "
        "merge these persons or disambiguate their names: " + "; ".join(groups)
    )


def _caption_stats(
    con: duckdb.DuckDBPyConnection, path: str, col: str, caption_col: str
) -> tuple[int, int]:
    """(rows, NULL captions), from the parquet footer unless it lacks null counts."""
    meta = con.execute(
        """SELECT sum(row_group_num_rows), sum(stats_null_count), count(*),
                  count(stats_null_count)
           FROM parquet_metadata($path) WHERE path_in_schema = $col""",
        {"path": path, "col": caption_col},
    ).fetchall()[0]
    rows, nulls, groups, known = meta
    if groups and groups == known:
        return int(rows), int(nulls)
    rows, nulls = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {col} IS NULL) FROM read_parquet($path)",
        {"path": path},
    ).fetchall()[0]
    return int(rows), int(nulls)


def _matches(batch: pa.RecordBatch, automaton) -> tuple[np.ndarray, np.ndarray]:
    """(pattern index, caption row) of every match that lies inside one caption of ``batch``."""
    text = batch.column(1)
    if not pa.types.is_string(text.type):
        text = text.cast(pa.large_string())
    width = np.int32 if pa.types.is_string(text.type) else np.int64
    start = text.offset
    offsets = np.frombuffer(text.buffers()[1], dtype=width)[start : start + len(text) + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    found = automaton.find_matches_as_indexes(data, overlapping=True)
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    found = np.asarray(found, dtype=np.int64) + [0, offsets[0], offsets[0]]
    first = np.searchsorted(offsets, found[:, 1], side="right") - 1
    last = np.searchsorted(offsets, found[:, 2] - 1, side="right") - 1
    inside = first == last  # a match across two captions is no match (paper mode)
    rows = batch.column(0).to_numpy()
    return found[inside, 0], rows[first[inside]]


def _scan(batches: Iterator[pa.RecordBatch], automaton, threads: int) -> tuple[np.ndarray, ...]:
    """(pattern index, row) of all matches in the batches, ``threads`` batches at a time."""
    found = [(np.empty(0, np.int64), np.empty(0, np.int64))]
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(_matches, batch, automaton))
            if len(pending) > threads:  # at most ``threads`` batches wait in memory
                found.append(pending.popleft().result())
        found.extend(job.result() for job in pending)
    return tuple(np.concatenate(column) for column in zip(*found))


def search_shard(
    parquet_path: str | Path,
    names: pd.DataFrame,
    *,
    match: str = "word",
    caption_col: str = "caption",
    threads: int = 1,
    memory_limit: str | None = None,
    shard: str | None = None,
    batch_rows: int = 65_536,
) -> pd.DataFrame:
    """Find every (person, caption) pair where the caption mentions the person's name.

    Returns a DataFrame with columns ``person_id``, ``shard`` (``shard``, by default the file's
    stem; give it when shards share a file name in different folders) and ``row`` (the
    0-based row in the file), one row per distinct pair. ``df.attrs`` carries ``captions`` (rows in
    the file) and ``null_captions`` (rows skipped because the caption is NULL).

    The file is read in batches of ``batch_rows`` captions, so memory holds a few batches plus the
    hits (16 bytes each while searching), whatever the file's size. ``threads`` DuckDB threads read
    and normalize, and as many threads run the automaton over finished batches.
    """
    if match not in MATCH_MODES:
        raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
    path = Path(parquet_path)
    schema = _parquet_schema(path)
    if caption_col not in schema.names:
        raise ValueError(
            f"{path}: no caption column {caption_col!r}; the file has columns {schema.names}. "
            "Set the caption column name in the config."
        )
    ctype = schema.field(caption_col).type
    if not (pa.types.is_string(ctype) or pa.types.is_large_string(ctype)):
        raise ValueError(f"{path}: caption column {caption_col!r} holds {ctype}, not text")
    names = _check_names(names)
    con = _connect(threads, memory_limit)
    try:
        automaton = ahocorasick_rs.BytesAhoCorasick(_patterns(con, names, match))
        # The caption column is bound by name through a quoted identifier.
        col = '"' + caption_col.replace('"', '""') + '"'
        total, nulls = _caption_stats(con, _duckdb_path(path), col, caption_col)
        if total == 0:
            # a metadata shard never is: counting nobody in it would call its names non-members
            raise ValueError(
                f"{path} holds no rows (the columns {schema.names} but no captions): a caption "
                "metadata file is never empty, so it was written or downloaded wrong; delete it "
                "and rerun the job that makes it, or leave the file out of the config's list"
            )
        text = col if match == "paper" else f"' ' || {_spaced_sql(col)} || ' '"
        batches = con.sql(
            f"""SELECT file_row_number AS row, {text} AS text
                FROM read_parquet($path, file_row_number := true) WHERE {col} IS NOT NULL""",
            params={"path": _duckdb_path(path)},
        ).to_arrow_reader(batch_rows)
        person, row = _scan(batches, automaton, max(1, int(threads)))
    finally:
        con.close()
    ids = names["person_id"].to_numpy()
    by_id = pd.Series(ids).argsort(kind="stable").to_numpy()  # persons in person_id order
    rank = np.empty_like(by_id)
    rank[by_id] = np.arange(len(by_id))
    # Distinct (person, row) pairs as one sorted integer each: ordered by person_id, then row.
    width = max(total, 1)
    pairs = np.unique(rank[person] * width + row)
    hits = pd.DataFrame({"person_id": ids[by_id[pairs // width]], "row": pairs % width})
    hits.insert(1, "shard", shard or path.stem)
    hits = hits[HIT_COLUMNS]
    hits.attrs.update(captions=int(total), null_captions=int(nulls), match=match)
    if nulls:
        log.warning("%s: skipped %d of %d captions that are NULL", path, nulls, total)
    log.info("%s: %d hits for %d names in %d captions", path, len(hits), len(names), total)
    return hits


def write_hits(df: pd.DataFrame, path: str | Path) -> None:
    """Write a shard's hits as parquet, typed even when there are none."""
    missing = set(HIT_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"hits table lacks column(s) {sorted(missing)}; it has {list(df.columns)}")
    table = pa.Table.from_pandas(df[HIT_COLUMNS], preserve_index=False)
    fields = []
    for field in table.schema:
        if pa.types.is_null(field.type):  # an empty object column: the ids are strings
            field = field.with_type(pa.string())
        fields.append(field)
    table = table.cast(pa.schema(fields)).replace_schema_metadata(
        {k.encode(): str(v).encode() for k, v in df.attrs.items()}
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_hits(path: str | Path) -> pd.DataFrame:
    return pq.read_table(path, columns=HIT_COLUMNS).to_pandas()


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def occurrence_bins(
    edges: Sequence[float], labels: Sequence[str] | None = None
) -> list[tuple[float, float, str]]:
    """Bins ``[e_i, e_{i+1})`` over occurrence counts of members; the last edge may be ``inf``.

    Default labels read as integer ranges: ``"1–4"``, ``"5"``, ``"≥25"``.
    """
    edges = [float(e) for e in edges]
    if len(edges) < 2:
        raise ValueError(f"occurrence bin edges need at least two values, got {edges}")
    if any(math.isnan(e) for e in edges):
        raise ValueError(f"occurrence bin edges contain NaN: {edges}")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError(f"occurrence bin edges must increase strictly, got {edges}")
    if edges[0] <= 0:
        raise ValueError(
            f"the first occurrence bin edge must be > 0 (count 0 means non-member), got {edges}"
        )
    if labels is not None and len(labels) != len(edges) - 1:
        raise ValueError(
            f"{len(edges) - 1} occurrence bins need {len(edges) - 1} labels, got {list(labels)}"
        )
    bins = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        if labels is not None:
            label = str(labels[i])
        elif math.isinf(hi):
            label = f"≥{_fmt(lo)}"
        elif float(lo).is_integer() and float(hi).is_integer():
            label = _fmt(lo) if hi - lo == 1 else f"{_fmt(lo)}–{_fmt(hi - 1)}"
        else:
            label = f"[{_fmt(lo)}, {_fmt(hi)})"
        bins.append((lo, hi, label))
    return bins


def gather_counts(
    hit_paths: Sequence[str | Path],
    names: pd.DataFrame,
    bin_edges: Sequence[float],
    bin_labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per person: captions mentioning the name over all shards, membership and occurrence bin.

    Every person of ``names`` appears, with count 0 (bin ``"non-member"``, bin_index -1) when the
    name was never found.
    """
    names = _check_names(names)
    bins = occurrence_bins(bin_edges, bin_labels)
    frames = [read_hits(p) for p in hit_paths]
    frames = [f for f in frames if len(f)]
    if frames:
        hits = pd.concat(frames, ignore_index=True)
        known = set(names["person_id"])
        unknown = sorted({p for p in hits["person_id"] if p not in known}, key=str)
        if unknown:
            # The ids may have been written with another type (e.g. int ids read back as str).
            hits["person_id"] = hits["person_id"].astype(names["person_id"].dtype)
            unknown = sorted(set(hits["person_id"]) - known, key=str)
        if unknown:
            raise ValueError(
                f"hit files name person_id(s) not in the names table: {unknown[:10]}"
                " — were the hits computed from another identity table?"
            )
        counts = hits.drop_duplicates(HIT_COLUMNS).groupby("person_id").size()
    else:
        counts = pd.Series(dtype="int64")
    out = names.copy()
    out["count"] = out["person_id"].map(counts).fillna(0).astype("int64")
    out["member"] = out["count"] > 0
    lows = [b[0] for b in bins]
    highs = [b[1] for b in bins]
    index = []
    for c in out["count"]:
        if c == 0:
            index.append(-1)
            continue
        hit = [i for i, (lo, hi) in enumerate(zip(lows, highs)) if lo <= c < hi]
        if not hit:
            row = out[out["count"] == c].iloc[0]
            raise ValueError(
                f"occurrence count {c} (person_id={row['person_id']!r}, name={row['name']!r}) "
                f"lies outside every occurrence bin {[(b[0], b[1]) for b in bins]}; "
                "widen the bin edges (the last edge may be .inf)"
            )
        index.append(hit[0])
    out["bin_index"] = pd.Series(index, index=out.index, dtype="int64")
    out["bin"] = [NON_MEMBER if i < 0 else bins[i][2] for i in out["bin_index"]]
    return out[["person_id", "name", "count", "member", "bin", "bin_index"]]
