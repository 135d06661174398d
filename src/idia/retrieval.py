"""Image embeddings in clip-retrieval's on-disk layout, and a FAISS index to search them.

Track C asks which identities the base corpus already shows: each identity photo is a query
against the embeddings of the corpus images, and its nearest images go to the face filter. The
embeddings are stored the way clip-retrieval writes them and LAION publishes them::

    root/img_emb/img_emb_{part}.npy          float32 [n, d], rows L2-normalized
    root/metadata/metadata_{part}.parquet    n rows in the same order (key, shard, caption, ...)

so a public clip-retrieval folder reads as it is (LAION's float16 arrays are cast to float32).
The index scores by inner product, which on unit vectors is the cosine similarity CLIP is trained
for. ``index_spec`` chooses its structure by corpus size; see there.

Ids returned by ``search`` are rows of the concatenated parts, in ``read_embeddings`` order. Where
an approximate index finds fewer than ``k`` hits, faiss fills the row with id -1; ``search`` keeps
those -1 (with score -inf) and ``top_k_table`` drops them, so callers filter ``ids >= 0``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import ArrayLike

__all__ = [
    "KINDS",
    "build_index",
    "default_nprobe",
    "embedding_paths",
    "gpu_count",
    "index_spec",
    "read_embeddings",
    "read_index",
    "search",
    "top_k_table",
    "write_embedding_part",
    "write_index",
]

log = logging.getLogger(__name__)

KINDS = ("auto", "flat", "ivf", "hnsw")
EMB_DIR, EMB_PREFIX, EMB_SUFFIX = "img_emb", "img_emb_", ".npy"
META_DIR, META_PREFIX, META_SUFFIX = "metadata", "metadata_", ".parquet"
HIT_COLUMNS = ["query_id", "rank", "score"]
# faiss' k-means keeps at most 256 points per centroid: a larger training sample is only copied,
# never used. PQ trains 256 codewords per sub-quantizer, so it wants 256 * 256 points.
POINTS_PER_CENTROID = 256
PQ_TRAIN = 256 * POINTS_PER_CENTROID
# faiss warns below 39 training points per centroid.
MIN_POINTS_PER_CENTROID = 39


def embedding_paths(root: str | Path, part: str) -> tuple[Path, Path]:
    """The embedding array and the metadata table of one part."""
    part = str(part)
    if not part or part in (".", "..") or "/" in part or "\\" in part:
        raise ValueError(
            f"invalid part name {part!r}: use a plain name such as '0' or 'part-00000'"
        )
    root = Path(root)
    return (
        root / EMB_DIR / f"{EMB_PREFIX}{part}{EMB_SUFFIX}",
        root / META_DIR / f"{META_PREFIX}{part}{META_SUFFIX}",
    )


def _row_list(rows: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (f" ... ({len(rows)} in all)" if len(rows) > limit else "")


def _unit_rows(x: ArrayLike, what: str) -> np.ndarray:
    """A float32 copy of the 2-D array ``x`` with unit rows; errors name the offending rows."""
    try:
        arr = np.array(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} cannot be read as float32 numbers: {e}") from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{what} must be a 2-D array [n, d] with d >= 1, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise ValueError(f"{what}: row(s) {_row_list(bad)} hold NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{what}: row(s) {_row_list(zero)} are all zeros and have no direction; "
            "drop them (with their metadata rows) before indexing"
        )
    arr /= norms[:, None]
    return arr


def _as_unit(x: np.ndarray, what: str) -> np.ndarray:
    """``x`` itself when it already has unit float32 rows (no copy of a large corpus), else
    a normalized copy."""
    if (
        x.dtype == np.float32
        and x.ndim == 2
        and x.shape[1] > 0
        and x.flags.c_contiguous
        and np.all(np.abs(np.einsum("ij,ij->i", x, x) - 1) < 1e-4)
    ):
        return x
    return _unit_rows(x, what)


def _tmp(path: Path) -> Path:
    """A sibling temporary name that no part pattern matches."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_embedding_part(
    root: str | Path, part: str, embeddings: ArrayLike, metadata: pd.DataFrame
) -> None:
    """Write one part: the L2-normalized embeddings and their metadata rows, in the same order.

    Both files are written under temporary names and renamed into place, so an interrupted job
    leaves no half-written part behind.
    """
    emb_path, meta_path = embedding_paths(root, part)
    emb = _unit_rows(embeddings, f"embeddings of part {part!r}")
    if len(emb) != len(metadata):
        raise ValueError(
            f"part {part!r}: {len(emb)} embeddings but {len(metadata)} metadata rows; "
            "they must match one to one, in the same order"
        )
    if "part" in metadata.columns:
        raise ValueError(
            f"part {part!r}: the metadata has a column 'part', which read_embeddings adds "
            "itself; rename that column"
        )
    emb_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    emb_tmp, meta_tmp = _tmp(emb_path), _tmp(meta_path)
    try:
        with open(emb_tmp, "wb") as f:
            np.save(f, emb)
        metadata.to_parquet(meta_tmp, index=False)
        os.replace(meta_tmp, meta_path)
        os.replace(emb_tmp, emb_path)
    finally:
        emb_tmp.unlink(missing_ok=True)
        meta_tmp.unlink(missing_ok=True)


def _natural_key(name: str) -> tuple[list, str]:
    """Sort key under which "2" comes before "10" and "part-9" before "part-10"."""
    pieces = re.split(r"(\d+)", name)
    # re.split with a group alternates text and digits, so equal positions hold equal types.
    return [int(p) if i % 2 else p for i, p in enumerate(pieces)], name


def _find_parts(root: Path) -> list[str]:
    folders = {EMB_DIR: (EMB_PREFIX, EMB_SUFFIX), META_DIR: (META_PREFIX, META_SUFFIX)}
    found = {}
    for folder, (prefix, suffix) in folders.items():
        if not (root / folder).is_dir():
            raise FileNotFoundError(
                f"{root} has no folder {folder}/: not an embedding folder in clip-retrieval's "
                f"layout ({EMB_DIR}/{EMB_PREFIX}PART{EMB_SUFFIX} and "
                f"{META_DIR}/{META_PREFIX}PART{META_SUFFIX})"
            )
        found[folder] = {
            p.name[len(prefix) : -len(suffix)] for p in (root / folder).glob(f"{prefix}*{suffix}")
        }
    emb, meta = found[EMB_DIR], found[META_DIR]
    for what, orphans, other in (
        ("embeddings", emb - meta, META_DIR),
        ("metadata", meta - emb, EMB_DIR),
    ):
        if orphans:
            raise FileNotFoundError(
                f"{root}: {what} without a matching file in {other}/ for part(s) "
                f"{sorted(orphans, key=_natural_key)}; rerun the jobs that wrote those parts"
            )
    if not emb:
        raise FileNotFoundError(f"{root}: no parts found ({EMB_DIR}/ holds no {EMB_PREFIX}*.npy)")
    return sorted(emb, key=_natural_key)


def _open_part(root: Path, part: str) -> tuple[np.ndarray, Path, Path]:
    """The part's array, memory-mapped, checked against its metadata's row count."""
    emb_path, meta_path = embedding_paths(root, part)
    for path in (emb_path, meta_path):
        if not path.is_file():
            raise FileNotFoundError(f"part {part!r}: {path} is missing")
    try:
        emb = np.load(emb_path, mmap_mode="r")
    except ValueError as e:
        raise ValueError(f"{emb_path} is not a readable .npy array: {e}") from None
    if emb.ndim != 2 or not np.issubdtype(emb.dtype, np.floating):
        raise ValueError(f"{emb_path} holds {emb.dtype} {emb.shape}, not a float array [n, d]")
    try:
        rows = pq.ParquetFile(meta_path).metadata.num_rows
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"{meta_path} is not a readable parquet file: {e}") from None
    if rows != len(emb):
        raise ValueError(
            f"{emb_path} has {len(emb)} rows but {meta_path} has {rows}; each metadata row "
            "belongs to the embedding in the same position — rewrite this part"
        )
    return emb, emb_path, meta_path


def _read_parts(root: str | Path, parts: Sequence[str] | None) -> tuple[list, pd.DataFrame]:
    """Every requested part opened (memory-mapped, checked) and the joined metadata."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no embedding folder {root}; run the jobs that embed the corpus")
    if parts is None:
        parts = _find_parts(root)
    else:
        parts = [str(p) for p in parts]
        if not parts:
            raise ValueError(f"no parts of {root} requested")
        dup = sorted({p for p in parts if parts.count(p) > 1}, key=_natural_key)
        if dup:
            raise ValueError(f"part(s) {dup} requested more than once")
    # Check every part's shape before reading any data: a mismatch fails fast, not after hours.
    opened = [_open_part(root, part) for part in parts]
    first, first_path, _ = opened[0]
    for emb, emb_path, _ in opened[1:]:
        if emb.shape[1] != first.shape[1]:
            raise ValueError(
                f"{emb_path} has dimension {emb.shape[1]} but {first_path} has {first.shape[1]}: "
                "the parts were embedded by different models — re-embed them with one"
            )
    frames = []
    for part, (_, _, meta_path) in zip(parts, opened):
        frame = pd.read_parquet(meta_path)
        if "part" in frame.columns:
            raise ValueError(
                f"{meta_path} has a column 'part', which read_embeddings adds itself; rename it"
            )
        frames.append(frame.assign(part=part))
    return opened, pd.concat(frames, ignore_index=True)


def read_embeddings(
    root: str | Path, parts: Sequence[str] | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """All parts (or the given ones, in that order) as one float32 array and one metadata table.

    ``parts=None`` reads every part found, in natural order (``img_emb_2`` before
    ``img_emb_10``). The metadata gains a column ``part``; its row i describes embedding i. The
    arrays are returned as stored: the index normalizes them if they are not unit vectors.
    """
    opened, metadata = _read_parts(root, parts)
    d = opened[0][0].shape[1]
    out = np.empty((sum(len(emb) for emb, _, _ in opened), d), dtype=np.float32)
    start = 0
    for emb, _, _ in opened:
        out[start : start + len(emb)] = emb
        start += len(emb)
    return out, metadata


def read_metadata(root: str | Path, parts: Sequence[str] | None = None) -> pd.DataFrame:
    """The metadata of :func:`read_embeddings` without loading the vectors (same checks)."""
    return _read_parts(root, parts)[1]


def _nlist(n: int) -> int:
    """Inverted lists: about 4·sqrt(n) (the low end of faiss' advice, to keep training cheap),
    a power of two, with at least 39 training vectors per list."""
    target = 2 ** round(math.log2(4 * math.sqrt(n)))
    cap = max(1, n // MIN_POINTS_PER_CENTROID)
    return min(target, 1 << (cap.bit_length() - 1))


def _pq_bytes(d: int) -> int:
    """PQ sub-quantizers (one byte each): a divisor of d, at most 64 and at most d / 4."""
    cap = min(64, max(1, d // 4))
    return max(m for m in range(1, cap + 1) if d % m == 0)


def index_spec(
    n: int,
    d: int,
    kind: str = "auto",
    *,
    exact_max: int = 200_000,
    hnsw_min: int = 20_000_000,
) -> str:
    """The faiss ``index_factory`` string for ``n`` vectors of dimension ``d``.

    - ``"flat"``: exact search; a query costs n·d, fine up to a few hundred thousand images.
    - ``"ivf"``: ``IVF{nlist},Flat``; a query scans ``nprobe`` of ``nlist`` lists.
    - ``"hnsw"``: ``HNSW32,Flat``, a graph; fast queries, slow to build, no training.
    - ``"auto"``: flat up to ``exact_max`` vectors, IVF-Flat up to ``hnsw_min``, beyond that
      ``IVF{nlist}_HNSW32,PQ{m}``. At 100M+ vectors the float32 vectors alone (300 GB at
      d = 768) outgrow any node's memory; PQ keeps m bytes per vector (64 B: 6.4 GB for 100M),
      and the many lists are found through an HNSW graph over the centroids instead of a scan.
    """
    if kind not in KINDS:
        raise ValueError(f"index kind must be one of {KINDS}, got {kind!r}")
    if n < 1 or d < 1:
        raise ValueError(f"an index needs n >= 1 vectors of dimension d >= 1, got n={n}, d={d}")
    if exact_max > hnsw_min:
        raise ValueError(
            f"exact_max ({exact_max}) must not exceed hnsw_min ({hnsw_min}): flat search is for "
            "the smallest corpora, PQ compression for the largest"
        )
    if kind == "auto":
        if n <= exact_max:
            kind = "flat"
        elif n <= hnsw_min:
            kind = "ivf"
        else:
            return f"IVF{_nlist(n)}_HNSW32,PQ{_pq_bytes(d)}"
    return {"flat": "Flat", "ivf": f"IVF{_nlist(n)},Flat", "hnsw": "HNSW32,Flat"}[kind]


def gpu_count() -> int:
    """GPUs faiss can use: 0 with faiss-cpu (faiss-gpu ships the same module, with GPU code)."""
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return int(get_num_gpus()) if get_num_gpus is not None else 0


def _wants_gpu(use_gpu: bool | str) -> bool:
    if use_gpu not in (True, False, "auto"):
        raise ValueError(f"use_gpu must be True, False or 'auto', got {use_gpu!r}")
    gpus = gpu_count()
    if use_gpu is True and gpus == 0:
        raise RuntimeError(
            "use_gpu=True but faiss sees no GPU (faiss-cpu is installed, or CUDA finds no "
            "device); install faiss-gpu on a GPU node, or set use_gpu to 'auto' or False"
        )
    return gpus > 0 if use_gpu == "auto" else bool(use_gpu)


@contextmanager
def _omp_threads(threads: int | None) -> Iterator[None]:
    """faiss' OpenMP threads for the duration of the block (a process-wide setting)."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1 (or None for all cores), got {threads}")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _train(
    index: faiss.Index, x: np.ndarray, *, seed: int, train_size: int | None, gpu: bool
) -> None:
    # IVF is the only structure of index_spec's that needs training.
    # Any: faiss' stubs type the downcast as a plain Index, without the IVF attributes
    ivf: Any = faiss.downcast_index(faiss.extract_index_ivf(index))
    if isinstance(ivf, faiss.IndexIVFPQ):
        # Polysemous codes serve Hamming pre-filtering, which search never uses, and their
        # training takes ten times as long as the rest.
        ivf.do_polysemous_training = False  # type: ignore[attr-defined]  # not in the stub
    size = max(POINTS_PER_CENTROID * ivf.nlist, PQ_TRAIN) if train_size is None else train_size
    if size < 1:
        raise ValueError(f"train_size must be >= 1 (or None), got {train_size}")
    if size < len(x):
        rng = np.random.default_rng(seed)
        sample = x[np.sort(rng.choice(len(x), size=size, replace=False))]
    else:
        sample = x
    log.info("training on %d of %d vectors (%d lists)", len(sample), len(x), ivf.nlist)
    ivf.cp.seed = seed  # k-means initialization
    if not gpu:
        index.train(sample)
        return
    # The GPU does the costly step: the k-means assignments against the centroids, replicated
    # on every GPU. Lists are filled on the CPU afterwards, so the index never has to fit in GPU
    # memory, and an HNSW coarse quantizer (which faiss cannot clone to a GPU) works as well.
    assigner = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(index.d))
    ivf.clustering_index = assigner
    try:
        index.train(sample)
    finally:
        ivf.clustering_index = None


def default_nprobe(nlist: int) -> int:
    """Lists an IVF index scans per query unless told otherwise: about sqrt(nlist)."""
    return max(1, min(nlist, round(math.sqrt(nlist))))


def build_index(
    embeddings: ArrayLike,
    kind: str = "auto",
    *,
    exact_max: int = 200_000,
    hnsw_min: int = 20_000_000,
    seed: int = 0,
    use_gpu: bool | str = "auto",
    train_size: int | None = None,
    threads: int | None = None,
) -> faiss.Index:
    """An inner-product index over the (normalized) embeddings; ids are their row numbers.

    ``kind``, ``exact_max`` and ``hnsw_min`` choose the structure (``index_spec``). IVF indices
    train on ``train_size`` rows drawn with ``seed`` (default: 256 per list, as many as faiss'
    k-means would use, at least 65 536 for PQ codebooks) and scan ``default_nprobe(nlist)``
    lists per query unless ``search`` is told otherwise. ``use_gpu="auto"`` trains on the GPUs
    when faiss-gpu sees any; the index returned always lives on the CPU, ready for
    ``write_index``. ``threads`` caps faiss' CPU threads while building.
    """
    arr = np.asarray(embeddings)
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array [n, d], got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError("no embeddings to index")
    spec = index_spec(len(arr), arr.shape[1], kind, exact_max=exact_max, hnsw_min=hnsw_min)
    gpu = _wants_gpu(use_gpu)
    x = _as_unit(arr, "embeddings")
    index = faiss.index_factory(x.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    log.info("building %r over %d vectors of dimension %d", spec, len(x), x.shape[1])
    with _omp_threads(threads):
        if not index.is_trained:
            _train(index, x, seed=seed, train_size=train_size, gpu=gpu)
        index.add(x)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = default_nprobe(ivf.nlist)
    return index


def write_index(index: faiss.Index, path: str | Path) -> None:
    """Write a (CPU) index under a temporary name and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_index(path: str | Path) -> faiss.Index:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no FAISS index at {path}; the workflow rule build_index writes it (snakemake {path})"
        )
    return faiss.read_index(str(path))


def search(
    index: faiss.Index,
    queries: ArrayLike,
    k: int,
    *,
    nprobe: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (cosine similarities) and ids [n_queries, min(k, index.ntotal)], best first.

    Queries are normalized. ``nprobe``: lists scanned per query on an IVF index, for this search
    only (default: the index's own, which ``build_index`` sets); other indices ignore it. An id
    of -1 (score -inf) marks a slot the index could not fill; callers keep ``ids >= 0``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if index.ntotal == 0:
        raise ValueError("the index is empty: nothing to search")
    q = _unit_rows(queries, "queries")
    if q.shape[1] != index.d:
        raise ValueError(
            f"queries have dimension {q.shape[1]} but the index holds vectors of dimension "
            f"{index.d}: were they embedded by another model?"
        )
    params = None
    if nprobe is not None:
        if nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}")
        if faiss.try_extract_index_ivf(index) is not None:
            # faiss' stubs lack the keyword constructor its Python wrapper adds
            params = faiss.SearchParametersIVF(nprobe=int(nprobe))  # type: ignore[call-arg]
    scores, ids = index.search(q, min(int(k), index.ntotal), params=params)
    ids = ids.astype(np.int64, copy=False)
    scores[ids < 0] = -np.inf
    return scores, ids


def top_k_table(
    scores: np.ndarray, ids: np.ndarray, metadata: pd.DataFrame, query_ids: Sequence
) -> pd.DataFrame:
    """One row per hit: ``query_id``, ``rank`` (0-based), ``score`` and the hit's metadata.

    Row i of ``scores``/``ids`` belongs to ``query_ids[i]``; slots with id -1 are dropped.
    """
    scores, ids = np.asarray(scores), np.asarray(ids)
    if ids.ndim != 2 or scores.shape != ids.shape:
        raise ValueError(
            f"scores and ids must be 2-D arrays of one shape, got {scores.shape} and {ids.shape}"
        )
    if len(query_ids) != len(ids):
        raise ValueError(f"{len(query_ids)} query ids for {len(ids)} rows of search results")
    clash = sorted(set(HIT_COLUMNS) & set(metadata.columns))
    if clash:
        raise ValueError(f"metadata columns {clash} clash with the hit table's own; rename them")
    found = ids >= 0
    if found.any() and ids.max() >= len(metadata):
        raise ValueError(
            f"hit id {int(ids.max())} is beyond the {len(metadata)} metadata rows: the index and "
            "the metadata come from different embeddings — rebuild the index"
        )
    query, rank = np.nonzero(found)
    hits = pd.DataFrame(
        {
            "query_id": pd.Index(query_ids).take(query),
            "rank": rank.astype(np.int64),
            "score": scores[found],
        }
    )
    meta = metadata.iloc[ids[found]].reset_index(drop=True)
    return pd.concat([hits, meta], axis=1)
