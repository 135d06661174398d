"""Embeddings in clip-retrieval's layout, FAISS index choice, building, searching, hit tables."""

from __future__ import annotations

import faiss
import numpy as np
import pandas as pd
import pytest

from idia import retrieval
from idia.retrieval import (
    build_index,
    embedding_paths,
    index_spec,
    read_embeddings,
    read_index,
    read_metadata,
    search,
    top_k_table,
    write_embedding_part,
    write_index,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, d: int, *, centers: int = 64, spread: float = 0.25, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    return _unit(c[rng.integers(centers, size=n)] + spread * rng.normal(size=(n, d)))


def _meta(n: int, part: str) -> pd.DataFrame:
    return pd.DataFrame({"key": [f"{part}-{i:03d}" for i in range(n)], "caption": f"part {part}"})


@pytest.fixture
def two_parts(tmp_path):
    rng = np.random.default_rng(1)
    raw = {"10": rng.normal(size=(5, 8)) * 3, "2": rng.normal(size=(3, 8))}
    for part, emb in raw.items():
        write_embedding_part(tmp_path, part, emb, _meta(len(emb), part))
    return tmp_path, raw


def test_round_trip_normalizes_and_reads_parts_in_natural_order(two_parts):
    root, raw = two_parts
    emb, meta = read_embeddings(root)
    assert emb.dtype == np.float32 and emb.shape == (8, 8)
    np.testing.assert_allclose(emb, _unit(np.vstack([raw["2"], raw["10"]])), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-6)
    assert list(meta.columns) == ["key", "caption", "part"]
    assert meta["part"].tolist() == ["2"] * 3 + ["10"] * 5
    assert meta["key"].tolist() == [f"2-{i:03d}" for i in range(3)] + [
        f"10-{i:03d}" for i in range(5)
    ]
    assert sorted(p.name for p in (root / "img_emb").iterdir()) == [
        "img_emb_10.npy",
        "img_emb_2.npy",
    ]


def test_read_given_parts_keeps_their_order(two_parts):
    root, raw = two_parts
    emb, meta = read_embeddings(root, ["10"])
    np.testing.assert_allclose(emb, _unit(raw["10"]), rtol=1e-6)
    emb, meta = read_embeddings(root, ["10", "2"])
    assert meta["part"].tolist() == ["10"] * 5 + ["2"] * 3
    with pytest.raises(FileNotFoundError, match="part '7'.*img_emb_7.npy"):
        read_embeddings(root, ["7"])
    with pytest.raises(ValueError, match="more than once"):
        read_embeddings(root, ["2", "2"])


def test_metadata_alone_matches_the_full_read(two_parts):
    root, _ = two_parts
    _, meta = read_embeddings(root, ["10", "2"])
    pd.testing.assert_frame_equal(read_metadata(root, ["10", "2"]), meta)
    with pytest.raises(FileNotFoundError, match="img_emb_7.npy"):
        read_metadata(root, ["7"])


def test_natural_order_of_shard_names(tmp_path):
    for part in ["part-10", "part-9", "part-00002"]:
        write_embedding_part(tmp_path, part, np.eye(2), _meta(2, part))
    _, meta = read_embeddings(tmp_path)
    assert meta["part"].unique().tolist() == ["part-00002", "part-9", "part-10"]


def test_reads_a_public_float16_folder(tmp_path):
    """LAION publishes img_emb_0.npy as float16 beside metadata_0.parquet."""
    emb_path, meta_path = embedding_paths(tmp_path, "0")
    emb_path.parent.mkdir()
    meta_path.parent.mkdir()
    x = _clustered(6, 16).astype(np.float16)
    np.save(emb_path, x)
    pd.DataFrame({"url": list("abcdef"), "caption": list("uvwxyz"), "similarity": 0.3}).to_parquet(
        meta_path
    )
    emb, meta = read_embeddings(tmp_path)
    assert emb.dtype == np.float32
    np.testing.assert_array_equal(emb, x.astype(np.float32))
    assert meta["url"].tolist() == list("abcdef") and set(meta["part"]) == {"0"}


@pytest.mark.parametrize(
    ("emb", "n_meta", "match"),
    [
        (np.ones((3, 4)), 2, "3 embeddings but 2 metadata rows"),
        (np.array([[1.0, 0], [0, 0], [0, 1]]), 3, r"row\(s\) 1 are all zeros"),
        (np.array([[1.0, np.nan], [0, 1]]), 2, r"row\(s\) 0 hold NaN"),
        (np.ones(4), 4, "2-D"),
        ([["a", "b"]], 1, "float32"),
    ],
)
def test_write_rejects_bad_parts_and_writes_nothing(tmp_path, emb, n_meta, match):
    with pytest.raises(ValueError, match=match):
        write_embedding_part(tmp_path, "0", emb, _meta(n_meta, "0"))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_write_leaves_no_temporary_files(tmp_path, monkeypatch):
    write_embedding_part(tmp_path, "0", np.eye(3), _meta(3, "0"))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == [
        "img_emb/img_emb_0.npy",
        "metadata/metadata_0.parquet",
    ]

    def broken(self, path, **kwargs):
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        write_embedding_part(tmp_path, "1", np.eye(3), _meta(3, "1"))
    assert not list(tmp_path.rglob("*1*"))


def test_write_rejects_reserved_column_and_bad_part_names(tmp_path):
    with pytest.raises(ValueError, match="column 'part'"):
        write_embedding_part(tmp_path, "0", np.eye(2), _meta(2, "0").assign(part="x"))
    with pytest.raises(ValueError, match="invalid part name"):
        write_embedding_part(tmp_path, "../0", np.eye(2), _meta(2, "0"))


def test_read_errors_name_the_files(two_parts):
    root, _ = two_parts
    with pytest.raises(FileNotFoundError, match="no embedding folder"):
        read_embeddings(root / "missing")
    emb_path, meta_path = embedding_paths(root, "2")

    meta_path.rename(meta_path.with_suffix(".bak"))
    with pytest.raises(FileNotFoundError, match=r"embeddings without .*metadata/ .*\['2'\]"):
        read_embeddings(root)
    meta_path.with_suffix(".bak").rename(meta_path)

    emb_path.rename(emb_path.with_suffix(".bak"))
    with pytest.raises(FileNotFoundError, match=r"metadata without .*img_emb/ .*\['2'\]"):
        read_embeddings(root)
    emb_path.with_suffix(".bak").rename(emb_path)

    np.save(emb_path, np.ones((4, 8), np.float32))
    with pytest.raises(
        ValueError, match=r"img_emb_2.npy has 4 rows but .*metadata_2.parquet has 3"
    ):
        read_embeddings(root)

    np.save(emb_path, np.ones((3, 6), np.float32))
    with pytest.raises(
        ValueError, match="img_emb_10.npy has dimension 8 but .*img_emb_2.npy has 6"
    ):
        read_embeddings(root)


def test_read_errors_for_empty_or_foreign_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder img_emb/"):
        read_embeddings(tmp_path)
    (tmp_path / "img_emb").mkdir()
    (tmp_path / "metadata").mkdir()
    with pytest.raises(FileNotFoundError, match="no parts found"):
        read_embeddings(tmp_path)


def test_index_spec_by_size_and_kind():
    assert index_spec(1000, 512) == "Flat"
    assert index_spec(200_000, 512) == "Flat"
    assert index_spec(1_000_000, 512) == "IVF4096,Flat"  # 4·sqrt(1e6) = 4000 -> 2^12
    assert index_spec(100_000_000, 768) == "IVF32768_HNSW32,PQ64"
    assert index_spec(100_000_000, 512, exact_max=10, hnsw_min=100) == "IVF32768_HNSW32,PQ64"
    assert index_spec(1000, 32, "ivf") == "IVF16,Flat"  # at most 1000 // 39 = 25 lists
    assert index_spec(10, 32, "ivf") == "IVF1,Flat"
    assert index_spec(10, 32, "hnsw") == "HNSW32,Flat"
    assert index_spec(10**9, 32, "flat") == "Flat"
    with pytest.raises(ValueError, match=r"one of \('auto', 'flat', 'ivf', 'hnsw'\)"):
        index_spec(10, 32, "pq")
    with pytest.raises(ValueError, match="n >= 1"):
        index_spec(0, 32)
    with pytest.raises(ValueError, match="exact_max"):
        index_spec(10, 32, exact_max=100, hnsw_min=10)


@pytest.mark.parametrize("d", [7, 32, 512, 768, 1024])
def test_index_specs_are_valid_factory_strings(d):
    for n in (50, 300_000, 50_000_000):
        spec = index_spec(n, d)
        faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
    m = int(index_spec(50_000_000, d).rsplit("PQ", 1)[1])
    assert d % m == 0 and m <= 64


def test_exact_index_finds_each_vector_itself():
    x = _clustered(500, 16, centers=500, spread=1.0)
    index = build_index(x * 2.5, "flat")  # normalized on the way in
    scores, ids = search(index, x, 3)
    np.testing.assert_array_equal(ids[:, 0], np.arange(500))
    np.testing.assert_allclose(scores[:, 0], 1, atol=1e-5)
    assert ids.dtype == np.int64 and scores.shape == (500, 3)


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)])


@pytest.fixture(scope="module")
def corpus():
    x = _clustered(20_000, 32)
    queries = _clustered(200, 32, seed=1)
    _, exact = search(build_index(x, "flat"), queries, 10)
    ivf = build_index(x, "ivf", seed=0, threads=1)
    return x, queries, exact, ivf


def test_ivf_reaches_high_recall_with_enough_probes(corpus):
    x, queries, exact, ivf = corpus
    assert faiss.extract_index_ivf(ivf).nlist == 512
    _, ids = search(ivf, queries, 10, nprobe=32)
    assert _recall(ids, exact) >= 0.9
    _, ids = search(ivf, queries, 10, nprobe=1)
    assert _recall(ids, exact) < 0.9  # the probes matter
    assert faiss.extract_index_ivf(ivf).nprobe == retrieval.default_nprobe(512) == 23
    _, ids = search(ivf, queries, 10)  # the index's own nprobe, untouched by the searches above
    assert _recall(ids, exact) >= 0.9


def test_index_round_trip_gives_identical_results(corpus, tmp_path):
    _, queries, _, ivf = corpus
    path = tmp_path / "index" / "image.index"
    write_index(ivf, path)
    assert [p.name for p in path.parent.iterdir()] == ["image.index"]
    back = read_index(path)
    for nprobe in (None, 8):
        a = search(ivf, queries, 10, nprobe=nprobe)
        b = search(back, queries, 10, nprobe=nprobe)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])


def test_same_seed_same_index_bytes(corpus):
    x, _, _, ivf = corpus
    again = build_index(x, "ivf", seed=0, threads=1)
    other = build_index(x, "ivf", seed=1, threads=1, train_size=5000)
    assert np.array_equal(faiss.serialize_index(again), faiss.serialize_index(ivf))
    assert not np.array_equal(faiss.serialize_index(other), faiss.serialize_index(ivf))


def test_compressed_index_for_the_largest_corpora():
    x = _clustered(10_000, 16)
    index = build_index(x, exact_max=100, hnsw_min=1000, threads=1)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    assert isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSWFlat)
    assert isinstance(ivf, faiss.IndexIVFPQ) and ivf.pq.M == 4
    _, ids = search(index, x[:200], 10, nprobe=16)
    assert np.mean((ids == np.arange(200)[:, None]).any(axis=1)) >= 0.8


def test_search_clamps_k_and_checks_queries():
    x = _clustered(5, 8)
    index = build_index(x, "flat")
    scores, ids = search(index, x[:2], 50, nprobe=4)  # nprobe: ignored by a flat index
    assert ids.shape == (2, 5) and sorted(ids[0]) == list(range(5))
    with pytest.raises(ValueError, match="dimension 4 but the index holds vectors of dimension 8"):
        search(index, np.ones((1, 4)), 3)
    with pytest.raises(ValueError, match=r"row\(s\) 1 are all zeros"):
        search(index, np.vstack([x[0], np.zeros(8)]), 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        search(index, x, 0)


def test_missing_slots_are_minus_one_with_score_minus_inf():
    x = _clustered(200, 8, centers=2, spread=0.01)
    index = build_index(x, "ivf", threads=1)  # 5 lists, the two clusters in few of them
    _, full = search(index, x[:1], 200, nprobe=5)
    scores, ids = search(index, x[:1], 200, nprobe=1)
    assert (full >= 0).all() and (ids < 0).any()
    assert np.isneginf(scores[ids < 0]).all() and np.isfinite(scores[ids >= 0]).all()


def test_read_index_names_the_missing_file_and_its_rule(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no FAISS index at .*nope.index.*build_index"):
        read_index(tmp_path / "nope.index")


def test_top_k_table_joins_metadata_and_skips_missing():
    meta = pd.DataFrame({"key": ["a", "b", "c"], "shard": ["s0", "s0", "s1"]})
    scores = np.array([[0.9, 0.5, -np.inf], [0.8, 0.7, 0.1]], np.float32)
    ids = np.array([[2, 0, -1], [1, 2, 0]], np.int64)
    hits = top_k_table(scores, ids, meta, ["q1", "q2"])
    assert list(hits.columns) == ["query_id", "rank", "score", "key", "shard"]
    assert hits["query_id"].tolist() == ["q1", "q1", "q2", "q2", "q2"]
    assert hits["rank"].tolist() == [0, 1, 0, 1, 2]
    assert hits["key"].tolist() == ["c", "a", "b", "c", "a"]
    assert hits["shard"].tolist() == ["s1", "s0", "s0", "s1", "s0"]
    np.testing.assert_allclose(hits["score"], [0.9, 0.5, 0.8, 0.7, 0.1])
    with pytest.raises(ValueError, match="beyond the 3 metadata rows"):
        top_k_table(scores, ids + 1, meta, ["q1", "q2"])
    with pytest.raises(ValueError, match="3 query ids for 2 rows"):
        top_k_table(scores, ids, meta, ["q1", "q2", "q3"])
    with pytest.raises(ValueError, match=r"\['score'\] clash"):
        top_k_table(scores, ids, meta.assign(score=1), ["q1", "q2"])


def test_use_gpu_true_without_gpu_is_an_error(monkeypatch):
    monkeypatch.setattr(retrieval, "gpu_count", lambda: 0)
    with pytest.raises(RuntimeError, match="use_gpu=True but faiss sees no GPU"):
        build_index(_clustered(100, 8), "flat", use_gpu=True)
    with pytest.raises(ValueError, match="use_gpu must be"):
        build_index(_clustered(100, 8), "flat", use_gpu="yes")


def test_gpu_trains_the_centroids_and_returns_a_cpu_index(corpus, monkeypatch):
    """With faiss-gpu the k-means assignments run on the GPUs; faked here by a CPU assigner."""
    x, queries, _, ivf = corpus
    cloned = []

    def to_all_gpus(index):
        cloned.append(index)
        return index

    monkeypatch.setattr(retrieval, "gpu_count", lambda: 2)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_all_gpus)
    built = build_index(x, "ivf", seed=0, threads=1)
    assert len(cloned) == 1 and isinstance(cloned[0], faiss.IndexFlatIP)
    assert faiss.extract_index_ivf(built).clustering_index is None
    np.testing.assert_array_equal(search(built, queries, 10)[1], search(ivf, queries, 10)[1])
