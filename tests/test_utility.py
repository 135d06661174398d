"""Model utility (the paper's table 2): zero-shot accuracy, image-to-text retrieval, the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idia.heldout import heldout_pairs
from idia.utility import (
    ZERO_SHOT_TEMPLATES,
    evaluate_utility,
    format_utility_markdown,
    imagenet_classnames,
    read_image_folder,
    recall_at,
    retrieval_ranks,
    utility_table,
    write_utility_table,
    zero_shot_accuracy,
)

E = np.eye(3, dtype=np.float32)


def _unit(*v: float) -> np.ndarray:
    x = np.asarray(v, dtype=np.float32)
    return x / np.linalg.norm(x)


# --------------------------------------------------------------------------------------------
# zero-shot
# --------------------------------------------------------------------------------------------


def test_zero_shot_templates_have_one_placeholder():
    assert ZERO_SHOT_TEMPLATES
    assert all(t.count("{}") == 1 for t in ZERO_SHOT_TEMPLATES)


def test_zero_shot_perfect_classifier():
    rng = np.random.default_rng(0)
    classes = np.stack([_unit(*rng.standard_normal(8)) for _ in range(6)])  # [C, D]
    labels = np.tile(np.arange(6), 3)
    images = classes[labels] + 0.01 * rng.standard_normal((18, 8)).astype(np.float32)
    out = zero_shot_accuracy(images, classes[None], labels)
    assert out == {"top1": 1.0, "top5": 1.0, "n_images": 18, "n_classes": 6}


def test_zero_shot_known_confusion_and_k_above_classes():
    images = np.stack(
        [
            E[0],  # label 0: rank 1
            _unit(0, 0.6, 0.8),  # label 1: class 2 scores higher -> rank 2
            _unit(0.8, 0, 0.6),  # label 2: class 0 scores higher -> rank 2
            _unit(0.36, 0.48, 0.8),  # label 0: classes 2 and 1 score higher -> rank 3
        ]
    )
    out = zero_shot_accuracy(images, E[None], [0, 1, 2, 0], ks=(1, 2, 3, 5))
    assert out["top1"] == pytest.approx(0.25)
    assert out["top2"] == pytest.approx(0.75)
    assert out["top3"] == 1.0
    assert out["top5"] is None  # 5 > 3 classes: undefined, not a free 1.0
    assert (out["n_images"], out["n_classes"]) == (4, 3)


def test_zero_shot_uses_the_renormalized_mean_over_templates():
    # template 0: class 0 = e0, class 1 = e1; template 1: class 0 = e2, class 1 = e1.
    class_emb = np.stack([np.stack([E[0], E[1]]), np.stack([E[2], E[1]])])  # [T=2, C=2, D=3]
    image = _unit(0.5, 0.6, 0.6)[None]
    # first template only: 0.5 (class 0) < 0.6 (class 1) -> wrong
    assert zero_shot_accuracy(image, class_emb[:1], [0], ks=(1,))["top1"] == 0.0
    # plain mean without re-normalization: 0.55 < 0.6 -> still wrong; the recipe: 0.78 > 0.6
    assert zero_shot_accuracy(image, class_emb, [0], ks=(1,))["top1"] == 1.0


def test_zero_shot_ties_are_pessimistic():
    class_emb = np.stack([E[0], E[0], E[1]])[None]  # classes 0 and 1 are indistinguishable
    out = zero_shot_accuracy(E[:1], class_emb, [0], ks=(1, 2))
    assert out == {"top1": 0.0, "top2": 1.0, "n_images": 1, "n_classes": 3}


def test_zero_shot_chunking_does_not_change_the_result():
    rng = np.random.default_rng(1)
    images = rng.standard_normal((50, 16)).astype(np.float32)
    class_emb = rng.standard_normal((3, 12, 16)).astype(np.float32)
    labels = rng.integers(0, 12, 50)
    full = zero_shot_accuracy(images, class_emb, labels, ks=(1, 5))
    assert zero_shot_accuracy(images, class_emb, labels, ks=(1, 5), chunk_elems=1) == full
    classifier = class_emb.mean(0)
    classifier /= np.linalg.norm(classifier, axis=1, keepdims=True)
    ref_pred = (images @ classifier.T).argmax(1)
    assert full["top1"] == pytest.approx((ref_pred == labels).mean())


def test_zero_shot_rejects_bad_labels():
    with pytest.raises(ValueError, match="index the 3 classes"):
        zero_shot_accuracy(E, E[None], [0, 1, 3])
    with pytest.raises(ValueError, match="shape"):
        zero_shot_accuracy(E, E[None], [0, 1])


# --------------------------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------------------------


def test_retrieval_ranks_exact_with_pessimistic_ties():
    captions = np.stack([E[0], E[1], E[1], E[2]])  # captions 1 and 2 are identical
    images = np.stack([_unit(0.6, 0.8, 0), E[1], E[1], E[2]])
    ranks = retrieval_ranks(images, captions)
    # image 0: its caption scores 0.6, captions 1 and 2 score 0.8 -> 3
    # images 1 and 2: their caption ties with the other copy -> 2 each
    np.testing.assert_array_equal(ranks, [3, 2, 2, 1])
    np.testing.assert_array_equal(retrieval_ranks(images, captions[None]), ranks)  # [1, N, D]
    assert recall_at(ranks, ks=(1, 2, 3, 5)) == {
        "rank@1": 0.25,
        "rank@2": 0.75,
        "rank@3": 1.0,
        "rank@5": None,  # 5 > 4 captions
    }


def test_retrieval_ranks_use_cosine_not_dot_product():
    captions = np.stack([E[0], 3 * E[1]])  # a long caption vector must not win by its norm
    images = np.stack([_unit(0.8, 0.6, 0), E[1]])
    np.testing.assert_array_equal(retrieval_ranks(images, captions), [1, 1])


def test_retrieval_ranks_chunked_equal_unchunked_and_match_argsort():
    rng = np.random.default_rng(2)
    images = rng.standard_normal((97, 16)).astype(np.float32)
    texts = images + rng.standard_normal((97, 16)).astype(np.float32)
    full = retrieval_ranks(images, texts, chunk_elems=1 << 30)
    for chunk in (1, 97 * 5, 97 * 13 + 3):
        np.testing.assert_array_equal(retrieval_ranks(images, texts, chunk_elems=chunk), full)
    unit = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    order = np.argsort(-(images @ unit.T), axis=1)
    ref = np.argmax(order == np.arange(97)[:, None], axis=1) + 1
    np.testing.assert_array_equal(full, ref)
    assert 0 < recall_at(full)["rank@1"] < 1


def test_retrieval_ranks_rejects_mismatched_pairs_and_nan():
    with pytest.raises(ValueError, match="same shape"):
        retrieval_ranks(E, E[:2])
    bad = E.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        retrieval_ranks(bad, E)


def test_recall_at():
    ranks = np.array([1, 1, 2, 5, 6, 10, 3, 1, 7, 4])
    assert recall_at(ranks) == {"rank@1": 0.3, "rank@5": 0.7}
    assert recall_at(ranks, ks=(10, 11)) == {"rank@10": 1.0, "rank@11": None}
    assert recall_at(ranks, ks=(11,), n_candidates=100) == {"rank@11": 1.0}
    with pytest.raises(ValueError, match="1-based"):
        recall_at([0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        recall_at([])


# --------------------------------------------------------------------------------------------
# image folders
# --------------------------------------------------------------------------------------------


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_read_image_folder_sorted_classes_and_mapping(tmp_path):
    root = tmp_path / "val"
    for rel in ("n02/b.JPEG", "n02/a.png", "n01/z.jpg", "n01/notes.txt", "n01/.hidden.jpg",
                "n03/img.WebP", "n03/img.jpeg", ".cache/x.jpg"):  # fmt: skip
        _touch(root / rel)
    (root / "LOC_val_solution.csv").write_text("not a class\n")
    (root / "n02" / "sub.jpg").mkdir()  # a folder with an image suffix is no image

    paths, labels, names = read_image_folder(root)
    rel = [str(Path(p).relative_to(root)) for p in paths]
    assert rel == ["n01/z.jpg", "n02/a.png", "n02/b.JPEG", "n03/img.WebP", "n03/img.jpeg"]
    np.testing.assert_array_equal(labels, [0, 1, 1, 2, 2])
    assert labels.dtype == np.int64
    assert names == ["n01", "n02", "n03"]

    mapping = {"n03": "goldfish", "n01": "tench", "n02": "great white shark", "n99": "extra"}
    paths2, labels2, names2 = read_image_folder(root, mapping)
    assert (paths2, labels2.tolist()) == (paths, labels.tolist())
    assert names2 == ["tench", "great white shark", "goldfish"]


def test_read_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image_folder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    _touch(tmp_path / "flat" / "a.jpg")
    with pytest.raises(ValueError, match="no class sub-folders"):
        read_image_folder(tmp_path / "flat")

    root = tmp_path / "val"
    _touch(root / "n01" / "a.jpg")
    _touch(root / "n02" / "b.jpg")
    _touch(root / "n03" / "b.jpg")
    with pytest.raises(ValueError, match=r"2 class folder\(s\).*n02, n03"):
        read_image_folder(root, {"n01": "tench"})
    _touch(root / "n04" / "readme.txt")
    with pytest.raises(ValueError, match="n04.*holds no images"):
        read_image_folder(root)


def test_imagenet_wordnet_folders_get_open_clip_names_in_sorted_wnid_order(tmp_path):
    root = tmp_path / "val"
    wnids = [f"n{i:08d}" for i in range(1000)]
    for i in np.random.default_rng(0).permutation(1000):  # created in no particular order
        _touch(root / wnids[i] / "ILSVRC2012_val.JPEG")
    paths, labels, names = read_image_folder(root)
    assert len(paths) == 1000 and labels.tolist() == list(range(1000))
    # ImageNet's first and last classes (n01440764 tench ... n15075141 toilet paper)
    assert names[:3] == ["tench", "goldfish", "great white shark"]
    assert names[-1] == "toilet paper" and len(names) == 1000
    # a class-name table, when given, still decides
    _, _, given = read_image_folder(root, {w: w.upper() for w in wnids})
    assert given[0] == "N00000000"


def test_a_folder_that_looks_like_imagenet_but_is_not_its_1000_classes_needs_classnames(tmp_path):
    root = tmp_path / "val"
    for name in ("n01440764", "n01443537", "n01484850"):
        _touch(root / name / "a.jpg")
    with pytest.raises(ValueError, match=r"3 WordNet-id folders.*set injection.utility.classnames"):
        read_image_folder(root)
    read_image_folder(root, {"n01440764": "tench", "n01443537": "goldfish",
                             "n01484850": "great white shark"})  # fmt: skip
    # a WordNet id among folders named by their classes is suspicious too
    folders = [f"class{i}" for i in range(999)] + ["n01440764"]
    with pytest.raises(ValueError, match=r"1 WordNet-id folders.*1000 folders in all"):
        imagenet_classnames(folders, root)
    # folders named by their classes (the world's shapes) need no names
    assert imagenet_classnames(["circle", "n0144", "square"], root) is None


def test_heldout_pairs_keep_the_downloaded_images_and_count_failures_by_reason(tmp_path):
    from idia.download import write_shard

    tar = tmp_path / "00000.tar"
    write_shard(tar, [("000000002", {"jpg": b"two", "txt": b"c2"}),
                      ("000000000", {"jpg": b"zero", "txt": b"c0"}),
                      ("000000003", {"txt": b"c3"})])  # fmt: skip
    table = pd.DataFrame({
        "key": ["000000000", "000000001", "000000002", "000000003"],
        "url": [f"http://cc3m.test/val/{i}.jpg" for i in range(4)],
        "caption": ["c0", "c1", "c2", "c3"],
        "status": ["success", "failed_to_download", "success", "success"],
        "error_message": [None, "HTTP Error 404: Not Found", None, None],
    })  # fmt: skip
    stats = {"rows": 4, "status_dict": {"success": 3, "HTTP Error 404: Not Found": 1}}
    pairs, report = heldout_pairs(tar, table, stats, tmp_path / "images")
    assert pairs["key"].tolist() == ["000000000", "000000002"]
    assert pairs["caption"].tolist() == ["c0", "c2"]
    assert pairs["url"].tolist() == ["http://cc3m.test/val/0.jpg", "http://cc3m.test/val/2.jpg"]
    assert [Path(p).read_bytes() for p in pairs["path"]] == [b"zero", b"two"]
    failed = {"HTTP Error 404: Not Found": 1, "no image in the shard": 1}
    assert report == {"rows": 4, "pairs": 2, "failed": failed}
    # nothing downloaded: an empty table, never an error
    write_shard(tmp_path / "empty.tar", [])
    none, report = heldout_pairs(tmp_path / "empty.tar", table.iloc[:0], {"rows": 0,
                                 "status_dict": {}}, tmp_path / "none")  # fmt: skip
    assert none.empty and list(none.columns) == ["key", "url", "caption", "path"]
    assert report == {"rows": 0, "pairs": 0, "failed": {}}


# --------------------------------------------------------------------------------------------
# end to end with a tiny real open_clip model
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(model_dir):
    """The workflow's smallest architecture with random weights, loaded like a trained model."""
    import torch

    from idia.models import load_clip

    torch.set_num_threads(1)
    return load_clip(model_dir=model_dir, device="cpu")


SHAPES = ["circle", "square", "triangle", "star", "ring", "cross"]


def _images(tmp_path: Path):
    """Six classes with one or two images each, and six captioned pairs."""
    rng = np.random.default_rng(3)
    eval_root = tmp_path / "eval"
    for c, shape in enumerate(SHAPES):
        for j in range(1 + c % 2):
            (eval_root / shape).mkdir(parents=True, exist_ok=True)
            rgb = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(eval_root / shape / f"{j}.{'png' if j else 'jpg'}")
    pairs = []
    for i, shape in enumerate(SHAPES):
        path = tmp_path / "pairs" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(path)
        pairs.append((str(path), f"a red {shape} on a blue background"))
    return eval_root, pairs


def test_evaluate_utility_end_to_end(clip, tmp_path):
    eval_root, pairs = _images(tmp_path)
    paths, labels, names = read_image_folder(eval_root)
    kwargs = {
        "eval_paths": paths,
        "eval_labels": labels,
        "classnames": names,
        "pair_paths": [p for p, _ in pairs],
        "pair_captions": [c for _, c in pairs],
        "templates": ZERO_SHOT_TEMPLATES[:2],
        "batch_size": 4,  # several batches
    }
    out = evaluate_utility(clip, **kwargs)
    assert set(out) == {
        "zero_shot_top1",
        "zero_shot_top5",
        "i2t_rank1",
        "i2t_rank5",
        "n_eval_images",
        "n_classes",
        "n_pairs",
        "notes",
    }
    assert (out["n_eval_images"], out["n_classes"], out["n_pairs"]) == (9, 6, 6)
    for key in ("zero_shot_top1", "zero_shot_top5", "i2t_rank1", "i2t_rank5"):
        assert 0.0 <= out[key] <= 1.0
    assert out["zero_shot_top1"] <= out["zero_shot_top5"]
    assert out["i2t_rank1"] <= out["i2t_rank5"]
    assert out["notes"] == []
    assert evaluate_utility(clip, **kwargs) == out  # deterministic


def test_evaluate_utility_skips_missing_parts_with_notes(clip, tmp_path):
    eval_root, pairs = _images(tmp_path)
    only_pairs = evaluate_utility(
        clip,
        eval_paths=None,
        eval_labels=None,
        classnames=None,
        pair_paths=[p for p, _ in pairs[:3]],
        pair_captions=[c for _, c in pairs[:3]],
    )
    assert only_pairs["zero_shot_top1"] is None and only_pairs["zero_shot_top5"] is None
    assert only_pairs["n_eval_images"] == 0 and only_pairs["n_pairs"] == 3
    assert 0.0 <= only_pairs["i2t_rank1"] <= 1.0
    assert only_pairs["i2t_rank5"] is None  # 3 pairs: rank@5 undefined
    assert any("zero-shot skipped" in n for n in only_pairs["notes"])
    assert any("rank@5 undefined" in n for n in only_pairs["notes"])

    nothing = evaluate_utility(
        clip, eval_paths=[], eval_labels=[], classnames=[], pair_paths=[], pair_captions=[]
    )
    assert all(nothing[k] is None for k in ("zero_shot_top1", "i2t_rank1"))
    assert len(nothing["notes"]) == 2

    with pytest.raises(ValueError, match="3 retrieval images but 2 captions"):
        evaluate_utility(
            clip,
            eval_paths=None,
            eval_labels=None,
            classnames=None,
            pair_paths=[p for p, _ in pairs[:3]],
            pair_captions=["a", "b"],
        )


# --------------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------------


def _row(model, arch, n, top1, top5=0.5, r1=0.25, r5=None):
    return {
        "model": model,
        "arch": arch,
        "n": n,
        "zero_shot_top1": top1,
        "zero_shot_top5": top5,
        "i2t_rank1": r1,
        "i2t_rank5": r5,
        "n_eval_images": 10,
        "n_classes": 5,
        "n_pairs": 4,
    }


def test_utility_table_order_and_markdown():
    rows = [
        _row("vitb32_n1", "ViT-B-32", 1, 0.1),
        _row("rn50_n1", "RN50", 1, 0.2),
        _row("rn50_pre", "RN50", None, 0.3, top5=None),
        _row("rn50_n75", "RN50", 75, 0.45678),
        _row("vitb32_n75", "ViT-B-32", 75, 0.0),
    ]
    df = utility_table(rows)
    assert df["model"].tolist() == ["rn50_n75", "rn50_n1", "rn50_pre", "vitb32_n75", "vitb32_n1"]
    assert list(df.columns[:7]) == [
        "model",
        "arch",
        "n",
        "zero_shot_top1",
        "zero_shot_top5",
        "i2t_rank1",
        "i2t_rank5",
    ]
    assert df["n"].isna().tolist() == [False, False, True, False, False]
    assert np.isnan(df.loc[2, "zero_shot_top5"]) and np.isnan(df.loc[0, "i2t_rank5"])

    md = format_utility_markdown(df).splitlines()
    assert len(md) == 2 + 5
    assert md[0].startswith("| Model | Architecture | N | Zero-shot top-1 (%)")
    assert md[2] == "| rn50_n75 | RN50 | 75 | 45.7 | 50.0 | 25.0 | – |"
    assert md[4] == "| rn50_pre | RN50 | – | 30.0 | – | 25.0 | – |"
    assert md[5] == "| vitb32_n75 | ViT-B-32 | 75 | 0.0 | 50.0 | 25.0 | – |"


def test_utility_table_needs_model_and_arch():
    with pytest.raises(ValueError, match="row 1.*arch"):
        utility_table([_row("a", "RN50", 1, 0.1), {"model": "b", "zero_shot_top1": 0.2}])


def test_write_utility_table_joins_each_result_with_its_model(tmp_path):
    import json

    paths = []
    for model, top1 in (("c-n1", 0.1), ("c-n5", 0.2)):
        result = {
            k: v for k, v in _row(model, "ignored", None, top1).items() if k not in ("arch", "n")
        }
        (tmp_path / f"{model}.json").write_text(json.dumps(result))
        paths.append(tmp_path / f"{model}.json")
    models = {"c-n1": {"arch": "X", "n": 1}, "c-n5": {"arch": "X", "n": 5}}
    table = write_utility_table(
        utility=paths, models=models, table_out=tmp_path / "u.csv", markdown_out=tmp_path / "u.md"
    )
    assert table["model"].tolist() == ["c-n5", "c-n1"] and table["arch"].tolist() == ["X", "X"]
    assert pd.read_csv(tmp_path / "u.csv")["zero_shot_top1"].tolist() == [0.2, 0.1]
    assert (tmp_path / "u.md").read_text() == format_utility_markdown(table) + "\n"
