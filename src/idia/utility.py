"""Model utility (DESIGN §3, the paper's table 2): zero-shot accuracy and image-to-text retrieval.

Injecting identities must not buy the attack its success by ruining the model, so every trained
model also gets the two standard CLIP utility numbers: zero-shot top-1/top-5 on a labelled
evaluation set and image-to-text rank@1/@5 on held-out image-caption pairs. Both work on the
L2-normalized embeddings of ``idia.attack`` and share one rank rule: the true class (caption) is
ranked behind every other one that scores *at least* as high. Ties therefore never flatter a
model, and an all-equal (collapsed) model scores 0, not chance.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia.attack import encode_photos, encode_prompts
from idia.models import Clip

__all__ = [
    "IMAGE_EXTENSIONS",
    "METRIC_COLUMNS",
    "ZERO_SHOT_TEMPLATES",
    "evaluate_utility",
    "format_utility_markdown",
    "imagenet_classnames",
    "read_image_folder",
    "recall_at",
    "retrieval_ranks",
    "utility_table",
    "zero_shot_accuracy",
]

#: Default zero-shot prompts; one ``{}`` for the class name. Configs may pass their own (e.g. the
#: 80 ImageNet templates of the CLIP paper).
ZERO_SHOT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an illustration of a {}.",
    "a drawing of a {}.",
    "a photo of the {}.",
    "a rendering of a {}.",
)

#: Image files ``read_image_folder`` picks up (compared case-insensitively).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp"})

#: The metrics of the utility table, in the paper's column order.
METRIC_COLUMNS: tuple[str, ...] = ("zero_shot_top1", "zero_shot_top5", "i2t_rank1", "i2t_rank5")
_COUNT_COLUMNS: tuple[str, ...] = ("n_eval_images", "n_classes", "n_pairs")

#: ImageNet's class folders are WordNet ids (``n01440764``); ILSVRC-2012 has 1000 of them.
_WNID = re.compile(r"n\d{8}")
N_IMAGENET_CLASSES = 1000


# --------------------------------------------------------------------------------------------
# Evaluation data
# --------------------------------------------------------------------------------------------


def read_image_folder(
    root: str | os.PathLike, classnames: Mapping[str, str] | None = None
) -> tuple[list[str], np.ndarray, list[str]]:
    """An ImageNet-validation style folder → (image paths, int labels, class names).

    One sub-folder per class, classes in sorted folder order (label i = i-th folder), images in
    sorted file order. Hidden entries and files that are not images are ignored. ``classnames``
    maps folder names (e.g. WordNet ids) to the readable names the prompts use; without it
    ImageNet's WordNet-id folders get open_clip's names (:func:`imagenet_classnames`) and any
    other folder names are the class names.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"evaluation image folder {str(root)!r} does not exist; set the evaluation set's path "
            f"in the config or download it first"
        )
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not folders:
        raise ValueError(
            f"evaluation image folder {str(root)!r} has no class sub-folders; expected one "
            f"folder of images per class (ImageNet validation layout)"
        )
    if classnames is None:
        classnames = imagenet_classnames([p.name for p in folders], root)
    if classnames is not None:
        missing = [p.name for p in folders if p.name not in classnames]
        if missing:
            shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
            raise ValueError(
                f"{len(missing)} class folder(s) of {str(root)!r} have no readable name in the "
                f"class-name mapping: {shown}; add them to the mapping or remove the folders"
            )
    paths: list[str] = []
    labels: list[np.ndarray] = []
    names: list[str] = []
    for label, folder in enumerate(folders):
        images = sorted(
            str(p)
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not images:
            raise ValueError(
                f"class folder {str(folder)!r} holds no images "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add its images or remove the folder"
            )
        paths.extend(images)
        labels.append(np.full(len(images), label, dtype=np.int64))
        names.append(classnames[folder.name] if classnames is not None else folder.name)
    return paths, np.concatenate(labels), names


def imagenet_classnames(folders: Sequence[str], root: str | os.PathLike) -> dict[str, str] | None:
    """Readable class names for an evaluation folder given without a class-name table.

    ImageNet's validation set is one folder per WordNet id; its 1000 ids, sorted, are in the
    order of open_clip's ``IMAGENET_CLASSNAMES`` (the CLIP paper's names), so the i-th folder
    gets the i-th name and nobody has to obtain a names file. Folders that are not WordNet ids
    name their classes themselves (None: no mapping). WordNet-id folders that are not exactly
    the 1000 classes cannot be matched to those names by position: an error that says to give
    ``injection.utility.classnames``.
    """
    wnids = [name for name in folders if _WNID.fullmatch(name)]
    if not wnids:
        return None
    if len(wnids) != len(folders) or len(folders) != N_IMAGENET_CLASSES:
        raise ValueError(
            f"evaluation folder {str(root)!r} looks like ImageNet ({len(wnids)} WordNet-id "
            f"folders such as {wnids[0]!r}, {len(folders)} folders in all) but is not its "
            f"{N_IMAGENET_CLASSES} classes, so open_clip's ImageNet class names cannot be "
            "assigned by position; set injection.utility.classnames to a csv of folder,name rows"
        )
    from idia.compat import import_open_clip

    import_open_clip()  # open_clip's package imports torchvision: make that import work first
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return dict(zip(sorted(folders), IMAGENET_CLASSNAMES, strict=True))


# --------------------------------------------------------------------------------------------
# Metrics on embeddings
# --------------------------------------------------------------------------------------------


def _check_ks(ks: Sequence[int]) -> list[int]:
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks}")
    return ks


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32, copy=False)


def _true_ranks(
    query: np.ndarray, keys: np.ndarray, true_idx: np.ndarray, chunk_elems: int
) -> np.ndarray:
    """1-based rank of key ``true_idx[i]`` for query i: 1 + #other keys scoring >= the true one.

    Queries are processed in chunks of at most ``chunk_elems`` similarities, and the true score
    is read from the same matrix product as the others, so a tie is an exact tie.
    """
    for what, x in (("image", query), ("text/class", keys)):
        if not np.isfinite(x).all():
            raise ValueError(f"{what} embeddings contain NaN or infinite values")
    n = query.shape[0]
    ranks = np.empty(n, dtype=np.int64)
    step = max(1, int(chunk_elems) // max(1, keys.shape[0]))
    keys_t = np.ascontiguousarray(keys.T)
    for s in range(0, n, step):
        sim = query[s : s + step] @ keys_t  # [q, K]
        rows = np.arange(sim.shape[0])
        true = sim[rows, true_idx[s : s + step]]
        # the true key itself is counted by ">=", which supplies the "1 +"
        ranks[s : s + step] = (sim >= true[:, None]).sum(axis=1)
    return ranks


def zero_shot_accuracy(
    image_emb: np.ndarray,
    class_emb: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    ks: Sequence[int] = (1, 5),
    *,
    chunk_elems: int = 1 << 24,
) -> dict:
    """Top-k zero-shot accuracy with the CLIP recipe: per class, the mean prompt embedding.

    ``class_emb`` is ``[T, C, D]`` from ``encode_prompts`` (templates x classes; ``[C, D]`` is
    read as one template). Each class's classifier is the mean over templates, re-normalized.
    An image counts as top-k correct when its true class ranks <= k under the pessimistic tie
    rule (rank = 1 + #other classes scoring >= the true class). A k above the number of classes
    would be trivially 1.0 and is reported as None.
    """
    img = np.asarray(image_emb, dtype=np.float32)
    cls = np.asarray(class_emb, dtype=np.float32)
    if cls.ndim == 2:
        cls = cls[None]
    labels = np.asarray(labels)
    if img.ndim != 2 or cls.ndim != 3 or img.shape[1] != cls.shape[2]:
        raise ValueError(
            f"expected image_emb [N, D] and class_emb [T, C, D] with equal D, "
            f"got {img.shape} and {np.shape(class_emb)}"
        )
    n_images, n_classes = img.shape[0], cls.shape[1]
    if n_images == 0:
        raise ValueError("zero_shot_accuracy got no images")
    if labels.shape != (n_images,):
        raise ValueError(f"labels must have shape ({n_images},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(
            f"labels must index the {n_classes} classes (0..{n_classes - 1}), "
            f"got values in {labels.min()}..{labels.max()}"
        )
    ks = _check_ks(ks)
    classifier = _unit_rows(cls.mean(axis=0))  # [C, D]
    ranks = _true_ranks(img, classifier, labels.astype(np.int64), chunk_elems)
    out: dict = {f"top{k}": (float((ranks <= k).mean()) if k <= n_classes else None) for k in ks}
    out["n_images"] = int(n_images)
    out["n_classes"] = int(n_classes)
    return out


def retrieval_ranks(
    image_emb: np.ndarray, text_emb: np.ndarray, *, chunk_elems: int = 1 << 24
) -> np.ndarray:
    """Image-to-text rank of each pair: where caption i lands among all captions for image i.

    Ranks are 1-based, by cosine similarity, with the pessimistic tie rule
    rank_i = 1 + #{j != i : cos(image_i, caption_j) >= cos(image_i, caption_i)}; a duplicate of
    the true caption therefore pushes it down. ``text_emb`` may be ``[N, D]`` or ``[1, N, D]``
    (``encode_prompts`` with the template ``"{}"``). Images are processed in chunks of at most
    ``chunk_elems`` similarities, so 50k pairs never need the full N x N matrix.
    """
    img = np.asarray(image_emb, dtype=np.float32)
    txt = np.asarray(text_emb, dtype=np.float32)
    if txt.ndim == 3 and txt.shape[0] == 1:
        txt = txt[0]
    if img.ndim != 2 or txt.ndim != 2 or img.shape != txt.shape:
        raise ValueError(
            f"expected image_emb and text_emb of the same shape [N, D] (pair i = image i, "
            f"caption i), got {img.shape} and {np.shape(text_emb)}"
        )
    if img.shape[0] == 0:
        raise ValueError("retrieval_ranks got no image-caption pairs")
    if chunk_elems < 1:
        raise ValueError(f"chunk_elems must be >= 1, got {chunk_elems}")
    # cosine: the caption norms matter across captions; an image's norm scales its whole row
    return _true_ranks(img, _unit_rows(txt), np.arange(img.shape[0]), chunk_elems)


def recall_at(
    ranks: Sequence[int] | np.ndarray,
    ks: Sequence[int] = (1, 5),
    *,
    n_candidates: int | None = None,
) -> dict:
    """Share of queries whose true item ranks <= k, as ``{"rank@k": ...}``.

    ``n_candidates`` is the number of items each query ranked (default: ``len(ranks)``, as for
    ``retrieval_ranks``); a k above it would be trivially 1.0 and is reported as None.
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"recall_at needs a non-empty 1-d array of ranks, got shape {ranks.shape}")
    if ranks.min() < 1:
        raise ValueError(f"ranks are 1-based, got a rank of {ranks.min()}")
    ks = _check_ks(ks)
    n = ranks.size if n_candidates is None else int(n_candidates)
    return {f"rank@{k}": (float((ranks <= k).mean()) if k <= n else None) for k in ks}


# --------------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------------


def evaluate_utility(
    clip: Clip,
    *,
    eval_paths: Sequence | None,
    eval_labels: Sequence[int] | np.ndarray | None,
    classnames: Sequence[str] | None,
    pair_paths: Sequence | None,
    pair_captions: Sequence[str] | None,
    templates: Sequence[str] = ZERO_SHOT_TEMPLATES,
    batch_size: int = 256,
    num_workers: int = 0,
    precision: str = "fp32",
    progress: bool = False,
) -> dict:
    """The paper's table-2 numbers for one model.

    Zero-shot needs ``eval_paths`` (with ``eval_labels`` indexing ``classnames``), retrieval
    needs ``pair_paths`` with one caption each. A part whose images are None or empty is skipped:
    its metrics are None and ``notes`` says why. So is a metric whose k exceeds the classes or
    pairs. Every image, class prompt and caption is encoded exactly once.
    """
    out: dict = {
        "zero_shot_top1": None,
        "zero_shot_top5": None,
        "i2t_rank1": None,
        "i2t_rank5": None,
        "n_eval_images": 0,
        "n_classes": 0,
        "n_pairs": 0,
        "notes": [],
    }
    notes: list[str] = out["notes"]
    common: dict[str, Any] = {"device": clip.device, "precision": precision, "progress": progress}

    def texts(names: list[str], prompt_templates: list[str]) -> np.ndarray:
        return encode_prompts(
            clip.model, clip.tokenizer, names, prompt_templates, batch_size=batch_size, **common
        )

    def images(paths) -> np.ndarray:
        return encode_photos(
            clip.model, clip.preprocess, list(paths), batch_size=batch_size,
            num_workers=num_workers, **common,
        )  # fmt: skip

    if eval_paths is None or len(eval_paths) == 0:
        notes.append("zero-shot skipped: no labelled evaluation images")
    else:
        if eval_labels is None or classnames is None or len(classnames) == 0:
            raise ValueError(
                "zero-shot evaluation images were given without labels or class names; pass "
                "eval_labels and classnames (e.g. from read_image_folder)"
            )
        if len(eval_labels) != len(eval_paths):
            raise ValueError(
                f"{len(eval_paths)} evaluation images but {len(eval_labels)} labels; "
                f"they must pair up one to one"
            )
        class_emb = texts(list(classnames), list(templates))
        image_emb = images(eval_paths)
        acc = zero_shot_accuracy(image_emb, class_emb, np.asarray(eval_labels), ks=(1, 5))
        out["zero_shot_top1"], out["zero_shot_top5"] = acc["top1"], acc["top5"]
        out["n_eval_images"], out["n_classes"] = acc["n_images"], acc["n_classes"]
        if acc["top5"] is None:
            notes.append(f"zero-shot top-5 undefined: only {acc['n_classes']} classes")

    if pair_paths is None or len(pair_paths) == 0:
        notes.append("image-to-text retrieval skipped: no held-out image-caption pairs")
    else:
        if pair_captions is None or len(pair_captions) != len(pair_paths):
            n_cap = 0 if pair_captions is None else len(pair_captions)
            raise ValueError(
                f"{len(pair_paths)} retrieval images but {n_cap} captions; "
                f"they must pair up one to one"
            )
        # "{}" as the only template: each caption is encoded verbatim
        text_emb = texts([str(c) for c in pair_captions], ["{}"])
        image_emb = images(pair_paths)
        rec = recall_at(retrieval_ranks(image_emb, text_emb), ks=(1, 5))
        out["i2t_rank1"], out["i2t_rank5"] = rec["rank@1"], rec["rank@5"]
        out["n_pairs"] = len(pair_paths)
        if rec["rank@5"] is None:
            notes.append(f"image-to-text rank@5 undefined: only {len(pair_paths)} pairs")
    return out


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def utility_table(rows: list[dict]) -> pd.DataFrame:
    """One row per model (model, arch, n = injection level or None, metrics), by arch then n desc.

    Metrics that are None become NaN; models without an injection level (e.g. pretrained ones)
    come last within their architecture. Keys beyond the known columns are kept after them.
    """
    head = ["model", "arch", "n", *METRIC_COLUMNS, *_COUNT_COLUMNS]
    for i, row in enumerate(rows):
        missing = [k for k in ("model", "arch") if row.get(k) in (None, "")]
        if missing:
            raise ValueError(f"utility row {i} ({row!r}) lacks {', '.join(missing)}")
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in head))
    df = pd.DataFrame([{k: row.get(k) for k in head + extra} for row in rows], columns=head + extra)
    df["model"] = df["model"].astype(str)
    df["arch"] = df["arch"].astype(str)
    df["n"] = pd.array([None if _missing(v) else int(v) for v in df["n"]], dtype="Int64")
    for col in METRIC_COLUMNS:
        df[col] = np.array([np.nan if _missing(v) else float(v) for v in df[col]], np.float64)
    for col in _COUNT_COLUMNS:
        df[col] = pd.array([None if _missing(v) else int(v) for v in df[col]], dtype="Int64")
    df = df.sort_values(["arch", "n"], ascending=[True, False], na_position="last", kind="stable")
    return df.reset_index(drop=True)


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


_MD_HEADERS: tuple[tuple[str, str], ...] = (
    ("model", "Model"),
    ("arch", "Architecture"),
    ("n", "N"),
    ("zero_shot_top1", "Zero-shot top-1 (%)"),
    ("zero_shot_top5", "Zero-shot top-5 (%)"),
    ("i2t_rank1", "I2T rank@1 (%)"),
    ("i2t_rank5", "I2T rank@5 (%)"),
)


def _md_cell(col: str, v) -> str:
    if _missing(v):
        return "–"
    if col in METRIC_COLUMNS:
        return f"{100.0 * float(v):.1f}"
    if col == "n":
        return str(int(v))
    return str(v).replace("|", "\\|").replace("\n", " ")


def format_utility_markdown(df: pd.DataFrame) -> str:
    """The utility table as Markdown: metrics in percent with one decimal, "–" where undefined."""
    missing = [c for c, _ in _MD_HEADERS if c not in df.columns]
    if missing:
        raise ValueError(f"utility table lacks columns {missing}; build it with utility_table")
    lines = [
        "| " + " | ".join(h for _, h in _MD_HEADERS) + " |",
        "|" + "|".join("---" if c in ("model", "arch") else "---:" for c, _ in _MD_HEADERS) + "|",
    ]
    for rec in df.to_dict("records"):
        lines.append("| " + " | ".join(_md_cell(c, rec[c]) for c, _ in _MD_HEADERS) + " |")
    return "\n".join(lines) + "\n"


def write_utility_table(
    *,
    utility: Sequence[str | Path],
    models: Mapping[str, Mapping[str, Any]],
    table_out: str | Path,
    markdown_out: str | Path,
) -> pd.DataFrame:
    """The paper's table 2 over every model: each ``utility.json`` joined with its model's
    ``models`` entry (arch, n), written as csv and as Markdown (also logged)."""
    import json

    rows = []
    for path in utility:
        result = json.loads(Path(path).read_text())
        rows.append({**result, **models[result["model"]]})
    table = utility_table(rows)
    table.to_csv(table_out, index=False, float_format="%.4f")
    markdown = format_utility_markdown(table)
    Path(markdown_out).write_text(markdown + "\n")
    print(markdown)
    return table
