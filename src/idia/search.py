"""Caption search: how often does each identity's name occur in a training corpus?

Track L decides membership by searching every caption of the training set for every name
(DESIGN §3). The paper did this with one substring scan per name; here one DuckDB pass per parquet
shard counts all names at once:

- ``match="word"`` (default): literal, case- and accent-insensitive, on word boundaries. Captions
  and names are normalized and tokenized by the *same* SQL expressions; a name matches a caption
  when its token sequence occurs contiguously in the caption's token sequence. Tokens are runs of
  letters/digits/underscore or single other (punctuation) characters, so ``"O'Brien"`` is
  ``o ' brien`` and ``"Samuel L. Jackson"`` does not match ``"Samuel L Jackson"``. The caption's
  token n-grams, for only the n present among the names, are hash-joined with the names, so the
  cost is linear in the captions and almost independent of the number of names.
- ``match="paper"``: the original semantics, a case-sensitive plain substring test.

Names travel as data (a registered table), never as SQL text, so no name can be misread as a
pattern or as SQL. A caption that mentions a name twice counts once; a caption that mentions two
overlapping names counts for both.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
_WS_RUN_RE2 = f"[{_WS_RE2}]+"


# The one definition of normalization and tokenization, applied to names and captions alike.
def _norm_sql(x: str) -> str:
    return f"strip_accents(lower({x}))"


def _tokens_sql(x: str) -> str:
    """Tokens: runs of token characters, and every other non-space character on its own.

    Spelled as "space out the punctuation, then split on spaces", which is about three times
    faster in DuckDB than ``regexp_extract_all`` with the equivalent pattern.
    """
    spaced = f"regexp_replace({_norm_sql(x)}, '{_PUNCT_RE2}', ' \\1 ', 'g')"
    spaces = f"regexp_replace({spaced}, '[{_WS_NOSPACE_RE2}]', ' ', 'g')"
    return f"list_filter(string_split({spaces}, ' '), lambda s: s <> '')"


def _normalize_sql(x: str) -> str:
    return f"trim(regexp_replace({_norm_sql(x)}, '{_WS_RUN_RE2}', ' ', 'g'), ' ')"


def _ngrams_sql(tokens: str, lengths: list[int]) -> str:
    """All contiguous k-token sequences for k in ``lengths``, tokens joined by one space."""
    parts = []
    for k in lengths:
        if k == 1:
            parts.append(tokens)
            continue
        joined = ", ".join(f"{tokens}[i + {j}]" if j else f"{tokens}[i]" for j in range(k))
        parts.append(
            f"list_transform(range(1, len({tokens}) - {k - 2}), lambda i: concat_ws(' ', {joined}))"
        )
    return parts[0] if len(parts) == 1 else f"list_concat({', '.join(parts)})"


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
    config: dict[str, str | int] = {"threads": max(1, int(threads))}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(config=config)
    # No progress bars: they would fill the rule logs of long per-shard searches.
    con.execute("SET enable_progress_bar = false")
    return con


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
    return names[["person_id", "name"]].reset_index(drop=True)


def _prepare_names(con: duckdb.DuckDBPyConnection, names: pd.DataFrame, match: str) -> list[int]:
    """Create the table ``_names`` in ``con``; return the sorted token lengths (word mode)."""
    names = _check_names(names)
    con.register("_names_in", names)
    if match == "paper":
        bad = names[names["name"].isna() | (names["name"].fillna("") == "")]
        if len(bad):
            raise ValueError(
                "empty or missing names (they would match every caption): "
                + ", ".join(f"person_id={p!r} name={n!r}" for p, n in bad.itertuples(index=False))
            )
        _raise_duplicates(names, names["name"], "identical")
        con.execute("CREATE TEMP TABLE _names AS SELECT person_id, name FROM _names_in")
        con.unregister("_names_in")
        return []
    prepared = con.execute(
        f"""SELECT person_id, name, {_tokens_sql("name")} AS tokens
            FROM _names_in"""
    ).df()
    con.unregister("_names_in")
    prepared["key"] = prepared["tokens"].map(lambda t: " ".join(t) if t is not None else "")
    empty = prepared[prepared["key"] == ""]
    if len(empty):
        raise ValueError(
            "names that are empty after normalization (they would match every caption): "
            + ", ".join(
                f"person_id={p!r} name={n!r}" for p, n in empty[["person_id", "name"]].values
            )
        )
    _raise_duplicates(prepared, prepared["key"], "equal after normalization")
    prepared["n"] = prepared["tokens"].map(len).astype("int64")
    con.register("_names_prepared", prepared[["person_id", "key", "n"]])
    con.execute("CREATE TEMP TABLE _names AS SELECT person_id, key, n FROM _names_prepared")
    con.unregister("_names_prepared")
    return sorted(int(n) for n in prepared["n"].unique())


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
    ).fetchone()
    rows, nulls, groups, known = meta
    if groups and groups == known:
        return int(rows), int(nulls)
    rows, nulls = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {col} IS NULL) FROM read_parquet($path)",
        {"path": path},
    ).fetchone()
    return int(rows), int(nulls)


def search_shard(
    parquet_path: str | Path,
    names: pd.DataFrame,
    *,
    match: str = "word",
    caption_col: str = "caption",
    threads: int = 1,
    memory_limit: str | None = None,
    shard: str | None = None,
) -> pd.DataFrame:
    """Find every (person, caption) pair where the caption mentions the person's name.

    Returns a DataFrame with columns ``person_id``, ``shard`` (``shard``, by default the file's
    stem; give it when shards share a file name in different folders) and ``row`` (the
    0-based row in the file), one row per distinct pair. ``df.attrs`` carries ``captions`` (rows in
    the file) and ``null_captions`` (rows skipped because the caption is NULL).
    """
    if match not in MATCH_MODES:
        raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
    path = Path(parquet_path)
    schema = pq.read_schema(path)
    if caption_col not in schema.names:
        raise ValueError(
            f"{path}: no caption column {caption_col!r}; the file has columns {schema.names}. "
            "Set the caption column name in the config."
        )
    ctype = schema.field(caption_col).type
    if not (pa.types.is_string(ctype) or pa.types.is_large_string(ctype)):
        raise ValueError(f"{path}: caption column {caption_col!r} holds {ctype}, not text")
    con = _connect(threads, memory_limit)
    try:
        lengths = _prepare_names(con, names, match)
        src = "read_parquet($path, file_row_number := true)"
        params = {"path": str(path)}
        # The caption column is bound by name through a quoted identifier.
        col = '"' + caption_col.replace('"', '""') + '"'
        total, nulls = _caption_stats(con, str(path), col, caption_col)
        if match == "paper":
            sql = f"""
                SELECT n.person_id, c.file_row_number AS row
                FROM (SELECT file_row_number, {col} AS caption FROM {src}
                      WHERE {col} IS NOT NULL) c
                JOIN _names n ON contains(c.caption, n.name)
            """
        else:
            tokens = _tokens_sql(col)
            sql = f"""
                WITH c AS (
                    SELECT file_row_number AS row, {tokens} AS t
                    FROM {src} WHERE {col} IS NOT NULL
                ),
                g AS (
                    SELECT row, unnest({_ngrams_sql("t", lengths)}) AS key FROM c
                )
                SELECT DISTINCT n.person_id, g.row FROM g JOIN _names n USING (key)
            """
        hits = con.execute(sql, params).df()
    finally:
        con.close()
    hits.insert(1, "shard", shard or path.stem)
    hits["row"] = hits["row"].astype("int64")
    hits = hits.sort_values(["person_id", "row"], kind="stable").reset_index(drop=True)
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
