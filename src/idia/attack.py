"""The Identity Inference Attack (DESIGN §2): embed, predict names, vote, decide, measure.

Everything after the embeddings works on integer prediction arrays, so the attack's statistics
(votes over random photo subsets, thousands of draws) are cheap array operations. The encoders
are duck-typed (``model.encode_image``, ``model.encode_text``, ``tokenizer(list[str])``,
``preprocess(PIL.Image)``) so that this module imports neither open_clip nor torchvision.
"""

from __future__ import annotations

import io
import mmap
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from idia.decode import TensorPreprocess, decode_batch, device_preprocess, read_encoded
from idia.stats import clopper_pearson
from idia.templates import PAPER_TEMPLATES

__all__ = [
    "PAPER_TEMPLATES",
    "decide",
    "encode_photos",
    "encode_prompts",
    "load_image",
    "metrics_table",
    "predict",
    "scores_long",
    "summarize",
    "sweep",
    "template_correct",
    "vote_scores",
]


#: Rates reported per (k, draw); ``summarize`` aggregates these over draws.
RATE_COLUMNS: tuple[str, ...] = ("accuracy", "tpr", "fnr", "fpr", "tnr")


# --------------------------------------------------------------------------------------------
# Embedding
# --------------------------------------------------------------------------------------------


def _progress(iterable, *, enabled: bool, total: int | None = None, desc: str = ""):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False)


def _autocast(device: str | torch.device, precision: str):
    """Mixed precision only on CUDA: on CPU, bf16 autocast changes the embeddings for no gain."""
    if precision not in ("fp32", "amp"):
        raise ValueError(f"precision must be 'fp32' or 'amp', got {precision!r}")
    dev = torch.device(device)
    if precision == "amp" and dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return nullcontext()


def _normalize(x: torch.Tensor) -> np.ndarray:
    x = x.float()
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return x.cpu().numpy().astype(np.float32, copy=False)


def _fill(template: str, name: str) -> str:
    return template.format(name)


def encode_prompts(
    model,
    tokenizer,
    names: Sequence[str],
    templates: Sequence[str],
    *,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    progress: bool = True,
    out: str | os.PathLike | None = None,
) -> np.ndarray:
    """L2-normalized text embeddings ``[T, C, D]`` of every template filled with every name.

    Each of the ``T * C`` prompts goes through the text encoder exactly once. The model must
    already sit on ``device``; only the tokens are moved there. Prompts are built batch by batch
    and each batch's vectors are written into one preallocated array, so memory holds one batch
    of prompts and one copy of the result; with ``out`` (a ``.npy`` path) the result is written
    straight into that file as a memory map and returned as one (read-only), so a pool of 10^5
    names × 21 templates never needs the whole array in memory.
    """
    names = list(names)
    templates = list(templates)
    if not names or not templates:
        raise ValueError(
            f"encode_prompts needs at least one name and one template "
            f"(got {len(names)} names, {len(templates)} templates)"
        )
    bad = [t for t in templates if t.count("{}") != 1]
    if bad:
        raise ValueError(
            f"every prompt template must contain exactly one '{{}}' placeholder for the name; "
            f"fix these templates in the config: {bad}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_names, n_prompts = len(names), len(templates) * len(names)
    starts = range(0, n_prompts, batch_size)
    emb: np.ndarray | None = None
    with ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        stack.enter_context(_autocast(device, precision))
        sink = stack.enter_context(open(out, "wb")) if out is not None else None
        for s in _progress(starts, enabled=progress, total=len(starts), desc="prompts"):
            stop = min(n_prompts, s + batch_size)
            batch = [_fill(templates[i // n_names], names[i % n_names]) for i in range(s, stop)]
            vecs = _normalize(model.encode_text(tokenizer(batch).to(device)))
            if s == 0:  # the width D is known after the first batch
                shape = (len(templates), n_names, vecs.shape[-1])
                if sink is None:
                    emb = np.empty(shape, np.float32)
                else:
                    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
                    np.lib.format.write_array_header_1_0(sink, header)
            if sink is None:
                assert emb is not None  # allocated at the first batch (s == 0)
                emb.reshape(n_prompts, -1)[s:stop] = vecs  # prompt i is [i // C, i % C]
            else:
                sink.write(vecs.astype("<f4", copy=False).tobytes())  # C order: appended
    if out is not None:
        return np.load(out, mmap_mode="r")
    assert emb is not None  # names and templates are not empty, so a first batch ran
    return emb


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open an image fully (not lazily) as RGB, with an error that names a bad file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"photo {str(path)!r} does not exist; check the photo paths in the identity table"
        )
    if path.stat().st_size == 0:
        raise ValueError(
            f"photo {str(path)!r} is empty (0 bytes); download it again or remove it from the "
            f"identity table"
        )
    return decode_image(path, str(path))


def decode_image(source, where: str) -> Image.Image:
    """An image (a path, or a file-like object) fully decoded as RGB; errors name ``where``."""
    try:
        with Image.open(source) as opened:
            opened.load()
            img: Image.Image = opened
            if img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(
            f"photo {where!r} is not a readable image ({type(err).__name__}: {err}); "
            f"download it again or remove it from the identity table"
        ) from err


class _PhotoDataset(torch.utils.data.Dataset):
    def __init__(self, paths: Sequence, preprocess):
        self.paths = list(paths)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        item = self.paths[i]
        if isinstance(item, tuple):  # (where, encoded bytes), e.g. a sample of a tar shard
            return self.preprocess(decode_image(io.BytesIO(item[1]), item[0]))
        return self.preprocess(load_image(item))


def encode_photos(
    model,
    preprocess,
    paths: Sequence,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    precision: str = "fp32",
    progress: bool = True,
) -> np.ndarray:
    """L2-normalized image embeddings ``[P, D]`` in the order of ``paths``.

    An item of ``paths`` is a file path or a ``(name, encoded bytes)`` pair.

    The model must already sit on ``device``. Decoding and preprocessing run in ``num_workers``
    DataLoader workers; a bad file stops the run with an error that names it.
    """
    paths = list(paths)
    if not paths:
        raise ValueError("encode_photos got no photo paths")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    on_device = device_preprocess(preprocess, device)
    if on_device is not None:  # CUDA: batched JPEG decoding and preprocessing on the GPU
        return _encode_on_device(model, on_device, paths, batch_size, device, precision,
                                 progress, num_workers)  # fmt: skip
    on_cuda = torch.device(device).type == "cuda"
    loader = torch.utils.data.DataLoader(
        _PhotoDataset(paths, preprocess),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=on_cuda,
    )
    chunks: list[np.ndarray] = []
    with torch.inference_mode(), _autocast(device, precision):
        for batch in _progress(loader, enabled=progress, total=len(loader), desc="photos"):
            batch = batch.to(device, non_blocking=on_cuda)
            chunks.append(_normalize(model.encode_image(batch)))
    return np.concatenate(chunks, axis=0)


def _encode_on_device(
    model,
    preprocess: TensorPreprocess,
    paths: list,
    batch_size: int,
    device,
    precision: str,
    progress: bool,
    threads: int,
) -> np.ndarray:
    """encode_photos' GPU path: files are read by threads one batch ahead, decoded together by
    nvJPEG and preprocessed as tensors (idia.decode), so no CPU worker decodes or resizes."""
    starts = range(0, len(paths), batch_size)
    chunks: list[np.ndarray] = []
    with ThreadPoolExecutor(max(1, threads)) as pool, torch.inference_mode():
        pending = [pool.submit(read_encoded, item) for item in paths[:batch_size]]
        for start in _progress(starts, enabled=progress, total=len(starts), desc="photos"):
            items = [future.result() for future in pending]
            ahead = paths[start + batch_size : start + 2 * batch_size]
            pending = [pool.submit(read_encoded, item) for item in ahead]
            batch = preprocess(decode_batch(items, device))
            with _autocast(device, precision):
                chunks.append(_normalize(model.encode_image(batch)))
    return np.concatenate(chunks, axis=0)


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


def _text_chunk(text_emb: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Candidates ``start:stop`` of ``[T, C, D]`` text embeddings as a float32 array in memory.

    ``text_emb`` may be a read-only memory map (``np.load(..., mmap_mode="r")``): only this
    slice is read from disk.
    """
    # a copy, always: a chunk that spans the whole map would otherwise stay a read-only view
    chunk = np.array(text_emb[:, start:stop], dtype=np.float32, order="C")
    mapped = getattr(text_emb, "_mmap", None)
    if mapped is not None and getattr(text_emb, "mode", None) == "r":
        # a read-only .npy map: drop the pages just read from this process's resident set
        mapped.madvise(mmap.MADV_DONTNEED)  # (they stay in the page cache for the next read)
    return chunk


def _true_similarity(
    img: torch.Tensor, text_emb: np.ndarray, true_idx: np.ndarray, step: int, device
) -> torch.Tensor:
    """cos(photo, its true name's prompt) ``[P, T]``, gathering only the true names' vectors."""
    n_photos = img.shape[0]
    out = torch.empty((n_photos, text_emb.shape[0]), dtype=torch.float32, device=device)
    for s in range(0, n_photos, step):
        vecs = np.ascontiguousarray(text_emb[:, true_idx[s : s + step]], dtype=np.float32)
        vecs_t = torch.from_numpy(vecs).to(device)  # [T, p, D]
        out[s : s + step] = torch.einsum("pd,tpd->pt", img[s : s + step], vecs_t)
    return out


def predict(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    true_idx: np.ndarray,
    *,
    chunk_elems: int = 1 << 24,
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """Per photo and template: predicted name, rank of the true name, and similarity margin.

    ``pred`` is the argmax over candidates (first index on ties, like ``torch.argmax``);
    ``rank`` counts the other candidates placed above the true name under the same tie rule, so
    ``rank == 0`` exactly when ``pred == true``; ``margin`` is cos(true) minus the largest
    cos(other) (> 0 means the true name wins outright). The logit scale does not change any of
    these, so it is left out.

    Memory is bounded whatever the pool size (10^5 names × 21 templates = 2.1M prompts): the
    candidates are read in chunks of at most ``chunk_elems // (T * D)`` names (``text_emb`` may
    be a memory map, so the whole ``[T, C, D]`` array never sits in memory), each chunk is
    compared with at most ``chunk_elems // (T * chunk)`` photos at a time, and only a running
    argmax, rank count and runner-up per (photo, template) are kept. The true name's similarity
    is computed once per photo and used for it in every chunk, so the three outputs agree
    exactly and do not depend on the chunk sizes. ``device`` is where the similarities are
    computed (``"cuda"`` on a GPU machine).
    """
    img = np.asarray(image_emb, dtype=np.float32)
    txt = text_emb if isinstance(text_emb, np.ndarray) else np.asarray(text_emb, np.float32)
    true_idx = np.asarray(true_idx)
    if img.ndim != 2 or txt.ndim != 3 or img.shape[1] != txt.shape[2]:
        raise ValueError(
            f"expected image_emb [P, D] and text_emb [T, C, D] with equal D, "
            f"got {img.shape} and {txt.shape}"
        )
    n_photos, dim = img.shape
    n_templates, n_cands, _ = txt.shape
    if true_idx.shape != (n_photos,):
        raise ValueError(f"true_idx must have shape ({n_photos},), got {true_idx.shape}")
    if n_photos and (true_idx.min() < 0 or true_idx.max() >= n_cands):
        raise ValueError(f"true_idx must index the {n_cands} candidate names (0..{n_cands - 1})")
    if n_cands < 2:
        raise ValueError("predict needs at least two candidate names")
    if chunk_elems < 1:
        raise ValueError(f"chunk_elems must be >= 1, got {chunk_elems}")
    true_idx = true_idx.astype(np.int64)
    dev = torch.device(device)
    c_step = max(1, min(n_cands, chunk_elems // (n_templates * dim)))
    p_step = max(1, chunk_elems // (n_templates * c_step))
    with torch.inference_mode():
        img_t = torch.from_numpy(img).to(dev)
        true_t = torch.from_numpy(true_idx).to(dev)
        s_true = _true_similarity(
            img_t, txt, true_idx, max(1, chunk_elems // (n_templates * dim)), dev
        )
        best = torch.full((n_photos, n_templates), -torch.inf, device=dev)
        pred = torch.zeros((n_photos, n_templates), dtype=torch.int64, device=dev)
        rank = torch.zeros((n_photos, n_templates), dtype=torch.int64, device=dev)
        other = torch.full((n_photos, n_templates), -torch.inf, device=dev)
        t_all = torch.arange(n_templates, device=dev)[None, :]
        for c0 in range(0, n_cands, c_step):
            c1 = min(n_cands, c0 + c_step)
            chunk = torch.from_numpy(_text_chunk(txt, c0, c1)).to(dev)
            flat = chunk.reshape(n_templates * (c1 - c0), dim).T  # [D, T*c]
            cand = torch.arange(c0, c1, device=dev)
            for s in range(0, n_photos, p_step):
                e = min(n_photos, s + p_step)
                sim = (img_t[s:e] @ flat).view(e - s, n_templates, c1 - c0)  # [p, T, c]
                t_idx, st = true_t[s:e], s_true[s:e]
                local = t_idx - c0
                rows = torch.nonzero((local >= 0) & (local < c1 - c0)).squeeze(1)
                at_true = (rows[:, None], t_all, local[rows][:, None])
                sim[at_true] = st[rows]  # the true name's similarity is the same in every chunk
                top, arg = sim.max(dim=2)
                better = top > best[s:e]  # strict: on a tie the earlier chunk's index stays
                best[s:e] = torch.where(better, top, best[s:e])
                pred[s:e] = torch.where(better, arg + c0, pred[s:e])
                ahead = (sim > st[..., None]) | (
                    (sim == st[..., None]) & (cand[None, None, :] < t_idx[:, None, None])
                )
                rank[s:e] += ahead.sum(dim=2)
                sim[at_true] = -torch.inf
                other[s:e] = torch.maximum(other[s:e], sim.amax(dim=2))
        margin = s_true - other
    return {
        "pred": pred.cpu().numpy().astype(np.int32),
        "rank": rank.cpu().numpy().astype(np.int32),
        "margin": margin.cpu().numpy().astype(np.float32),
    }


# --------------------------------------------------------------------------------------------
# Votes
# --------------------------------------------------------------------------------------------


def template_correct(preds: np.ndarray, true) -> np.ndarray:
    """Whether the true name is the *unique* most frequent prediction over the last axis.

    ``preds`` is ``[..., k]`` (k photos), ``true`` broadcasts against ``preds[..., 0]``.
    A tie at the top is not correct (DESIGN §2), nor is a true name that is never predicted.
    """
    preds = np.asarray(preds)
    true = np.asarray(true)
    if preds.ndim == 0:
        raise ValueError("preds must have a last axis of k predictions")
    counts = (preds[..., :, None] == preds[..., None, :]).sum(axis=-1)  # frequency of each entry
    is_true = preds == true[..., None]
    n_true = is_true.sum(axis=-1)
    n_other = np.where(is_true, 0, counts).max(axis=-1, initial=0)
    return (n_true > n_other) & (n_true > 0)


def vote_scores(preds: np.ndarray, true) -> int:
    """Score of one person: the number of correct templates for predictions ``[k, T]``."""
    preds = np.asarray(preds)
    if preds.ndim != 2:
        raise ValueError(f"vote_scores expects predictions [k, T], got shape {preds.shape}")
    return int(template_correct(preds.T, true).sum())


def _draw_uniforms(seed: int, person: int, k: int, n_draws: int, m: int) -> np.ndarray:
    """The random numbers behind the draws of one (person, k): ``[n_draws, m]`` in [0, 1).

    The generator is derived from (seed, person, k) alone, so a person's draws do not depend on
    which other persons or ks are processed, nor in which order.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, person, k]))
    return rng.random((n_draws, m))


def _draw_masks(
    seed: int, person: int, k: int, m: int, n_draws: int, *, clamp: bool = False
) -> np.ndarray:
    """Boolean ``[n_draws, m]``: each row marks a uniformly random k-subset of the m photos.

    Row d takes the photos holding the k smallest of m i.i.d. uniforms (a random permutation's
    first k). With ``clamp`` a k above m takes all photos.
    """
    if k > m:
        if not clamp:
            raise ValueError(f"person {person} has {m} photos, fewer than k = {k}")
        return np.ones((n_draws, m), dtype=bool)
    ranks = _draw_uniforms(seed, person, k, n_draws, m).argsort(axis=1).argsort(axis=1)
    return ranks < k


def _group_masks(seed: int, persons: np.ndarray, ks: list[int], n_draws: int, m: int):
    """``_draw_masks`` for many persons with m photos each, as one ``[g, K, D, m]`` array."""
    n_k = len(ks)
    drawn = [i for i, k in enumerate(ks) if k <= m]
    masks = np.ones((len(persons), n_k, n_draws, m), dtype=bool)  # k > m: clamped to all photos
    if drawn:
        u = np.stack(
            [
                np.stack([_draw_uniforms(seed, int(p), ks[i], n_draws, m) for i in drawn])
                for p in persons
            ]
        )  # [g, K', D, m]
        perm = u.argsort(axis=-1)
        ranks = np.empty_like(perm)
        np.put_along_axis(ranks, perm, np.arange(m), axis=-1)
        k_arr = np.asarray([ks[i] for i in drawn])[None, :, None, None]
        masks[:, drawn] = ranks < k_arr
    return masks


def _relabel(pred: np.ndarray, true: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Predictions ``[m, T]`` → (is_true ``[m, T]``, compact labels ``[m, T]``, #labels).

    Only wrong names predicted for at least two of the person's photos get a label 0..U-1
    (per template; U is the largest such count over templates); all other entries get -1.
    A wrong name seen once can never beat a true name with two votes, and a true name with
    one vote wins only in a one-photo subset, so the vote tensor needs just these labels.
    """
    m = pred.shape[0]
    is_true = pred == true
    eq = pred[:, None, :] == pred[None, :, :]  # [m, m, T]
    first = eq.argmax(axis=1)  # [m, T]: index of the first photo with the same prediction
    frequent = (eq.sum(axis=1) >= 2) & ~is_true
    is_first = (first == np.arange(m)[:, None]) & frequent
    order = np.cumsum(is_first, axis=0) - 1  # compact id at first occurrences
    label = np.take_along_axis(order, first, axis=0)
    label[~frequent] = -1
    n_labels = int(is_first.sum(axis=0).max(initial=0))
    return is_true, label, n_labels


def sweep(
    pred: np.ndarray,
    person_of_photo: np.ndarray,
    true_of_person: np.ndarray,
    ks: Sequence[int],
    n_draws: int,
    seed: int,
    short: str = "error",
    *,
    chunk_elems: int = 1 << 23,
) -> np.ndarray:
    """Scores ``int16 [n_persons, len(ks), n_draws]``: correct templates per person, k and draw.

    For every person, k and draw the attack uses a uniformly random k-subset (without
    replacement) of that person's photos, drawn from a generator seeded by
    ``SeedSequence([seed, person, k])`` — reproducible, and independent of the other persons.

    A person with fewer photos ``m`` than ``max(ks)``: with ``short="error"`` this raises a
    ValueError listing such persons; with ``short="clamp"`` every k > m uses all m photos (so
    all draws of such a k are identical). A person with no photos at all is always an error.

    Votes are counted as one batched matrix product per group of persons with equal photo
    count: draw masks ``[K*D, m]`` times one-hot predictions ``[m, T*U]`` (see ``_relabel``).
    """
    pred = np.asarray(pred)
    person_of_photo = np.asarray(person_of_photo)
    true_of_person = np.asarray(true_of_person)
    ks = [int(k) for k in ks]
    if short not in ("error", "clamp"):
        raise ValueError(f"short must be 'error' or 'clamp', got {short!r}")
    if pred.ndim != 2:
        raise ValueError(f"pred must be [photos, templates], got shape {pred.shape}")
    if person_of_photo.shape != (pred.shape[0],):
        raise ValueError(
            f"person_of_photo must have one entry per photo ({pred.shape[0]}), "
            f"got shape {person_of_photo.shape}"
        )
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks}")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    n_persons = len(true_of_person)
    if person_of_photo.size and (person_of_photo.min() < 0 or person_of_photo.max() >= n_persons):
        raise ValueError(f"person_of_photo must hold person indices 0..{n_persons - 1}")
    n_templates = pred.shape[1]
    counts = np.bincount(person_of_photo, minlength=n_persons)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"persons without photos (indices): {empty.tolist()}; remove them from the cohort"
        )
    k_max = max(ks)
    short_persons = np.flatnonzero(counts < k_max)
    if short_persons.size and short == "error":
        listing = ", ".join(f"{p} ({counts[p]} photos)" for p in short_persons)
        raise ValueError(
            f"{short_persons.size} person(s) have fewer photos than the largest k = {k_max}: "
            f"{listing}; lower the ks, add photos, or use short='clamp'"
        )
    # From here on a k above m can only mean short="clamp": _group_masks then takes all photos.
    n_k = len(ks)
    out = np.zeros((n_persons, n_k, n_draws), dtype=np.int16)
    order = np.argsort(person_of_photo, kind="stable")  # photos grouped by person, in input order
    starts = np.concatenate([[0], np.cumsum(counts)])
    for m in np.unique(counts):
        m = int(m)
        group = np.flatnonzero(counts == m)
        relabeled = [
            _relabel(pred[order[starts[p] : starts[p + 1]]], true_of_person[p]) for p in group
        ]
        n_u = max(r[2] for r in relabeled)
        per_person = n_k * n_draws * (m + n_templates * (n_u + 2))
        step = max(1, chunk_elems // per_person)
        for s in range(0, len(group), step):
            persons = group[s : s + step]
            part = relabeled[s : s + step]
            g = len(persons)
            mask = _group_masks(int(seed), persons, ks, n_draws, m)
            mask = mask.reshape(g, n_k * n_draws, m).astype(np.float32)  # [g, K*D, m]
            hit = np.stack([r[0] for r in part]).astype(np.float32)  # [g, m, T]
            n_true = mask @ hit  # [g, K*D, T]
            if n_u:
                label = np.stack([r[1] for r in part])  # [g, m, T]
                onehot = (label[..., None] == np.arange(n_u)).astype(np.float32)
                n_other = mask @ onehot.reshape(g, m, n_templates * n_u)
                n_other = n_other.reshape(g, -1, n_templates, n_u).max(axis=-1)
            else:
                n_other = np.zeros_like(n_true)
            single = mask.sum(axis=-1, keepdims=True) == 1  # one-photo subsets
            correct = (n_true > n_other) & ((n_true >= 2) | ((n_true == 1) & single))
            out[persons] = correct.sum(axis=-1).reshape(g, n_k, n_draws)
    return out


def decide(scores: np.ndarray, tau: int) -> np.ndarray:
    """Membership prediction: a person is called a member when ``score >= tau``."""
    return np.asarray(scores) >= tau


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def metrics_table(
    scores: np.ndarray,
    is_member: np.ndarray,
    ks: Sequence[int],
    tau: int,
    *,
    n_templates: int | None = None,
) -> pd.DataFrame:
    """Confusion counts and rates per (k, draw); a rate with an empty denominator is NaN.

    With ``n_templates`` (the attack's prompt templates), a ``tau`` outside ``1..n_templates``
    is an error: at 0 everyone is called a member, above ``n_templates`` no one, and the
    verdicts would look like results.
    """
    if n_templates is not None and (
        isinstance(tau, bool) or int(tau) != tau or not 1 <= tau <= n_templates
    ):
        raise ValueError(
            f"attack.tau = {tau!r} but the attack has {n_templates} prompt templates: a score "
            f"counts correct templates, so tau must be a whole number from 1 to {n_templates} "
            "(the paper: 1); set attack.tau in the config accordingly"
        )
    scores = np.asarray(scores)
    member = np.asarray(is_member, dtype=bool)
    if scores.ndim != 3 or scores.shape[0] != member.shape[0] or scores.shape[1] != len(ks):
        raise ValueError(
            f"scores must be [n_persons={member.shape[0]}, len(ks)={len(ks)}, draws], "
            f"got shape {scores.shape}"
        )
    called = decide(scores, tau)  # [n, K, D]
    mem = member[:, None, None]
    tp = (called & mem).sum(axis=0)
    fn = (~called & mem).sum(axis=0)
    fp = (called & ~mem).sum(axis=0)
    tn = (~called & ~mem).sum(axis=0)
    n_k, n_d = tp.shape
    df = pd.DataFrame(
        {
            "k": np.repeat(np.asarray(ks, dtype=np.int64), n_d),
            "draw": np.tile(np.arange(n_d, dtype=np.int64), n_k),
            "tp": tp.ravel().astype(np.int64),
            "fn": fn.ravel().astype(np.int64),
            "fp": fp.ravel().astype(np.int64),
            "tn": tn.ravel().astype(np.int64),
        }
    )
    pos = df["tp"].to_numpy() + df["fn"].to_numpy()
    neg = df["fp"].to_numpy() + df["tn"].to_numpy()
    df["accuracy"] = _ratio(df["tp"].to_numpy() + df["tn"].to_numpy(), pos + neg)
    df["tpr"] = _ratio(df["tp"].to_numpy(), pos)
    df["fnr"] = _ratio(df["fn"].to_numpy(), pos)
    df["fpr"] = _ratio(df["fp"].to_numpy(), neg)
    df["tnr"] = _ratio(df["tn"].to_numpy(), neg)
    return df


#: For each rate: the count columns of its numerator and of its denominator (identities).
_RATE_COUNTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "accuracy": (("tp", "tn"), ("tp", "fn", "fp", "tn")),
    "tpr": (("tp",), ("tp", "fn")),
    "fnr": (("fn",), ("tp", "fn")),
    "fpr": (("fp",), ("fp", "tn")),
    "tnr": (("tn",), ("fp", "tn")),
}


def summarize(metrics_df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per k and rate: mean and sd over draws, and a Clopper–Pearson interval over identities.

    The sd (ddof=1; 0 with a single draw) is the spread from the random photo subsets only: at
    k = all photos every draw is the same and it is 0. The uncertainty that matters for a claim
    about the model is over identities: ``n`` identities enter the rate's denominator and
    ``lo``/``hi`` is the exact (1 − alpha) binomial interval at the mean count of successes over
    draws (x̄ of n; x̄ is an integer when all draws agree).
    """
    ks = metrics_df["k"].to_numpy()
    rows = []
    for k in pd.unique(ks):
        at_k = metrics_df[ks == k]
        for metric in RATE_COLUMNS:
            num, den = _RATE_COUNTS[metric]
            n = int(at_k[list(den)].sum(axis=1).iloc[0])
            successes = float(at_k[list(num)].sum(axis=1).mean())
            lo, hi = clopper_pearson(successes, n, alpha) if n else (np.nan, np.nan)
            values = at_k[metric]
            sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            rows.append((k, metric, float(values.mean()), sd, n, lo, hi))
    out = pd.DataFrame(rows, columns=["k", "metric", "mean", "sd", "n", "lo", "hi"])
    return out.sort_values("k", kind="stable").reset_index(drop=True)


def scores_long(scores: np.ndarray, person_ids: Sequence, ks: Sequence[int]) -> pd.DataFrame:
    """Scores ``[n, K, D]`` as a long table (person_id, k, draw, score)."""
    scores = np.asarray(scores)
    n, n_k, n_d = scores.shape
    ids = np.asarray(person_ids)
    if ids.shape != (n,) or len(ks) != n_k:
        raise ValueError(
            f"scores of shape {scores.shape} need {n} person ids and {n_k} ks, "
            f"got {ids.shape[0] if ids.ndim else 0} and {len(ks)}"
        )
    return pd.DataFrame(
        {
            "person_id": np.repeat(ids, n_k * n_d),
            "k": np.tile(np.repeat(np.asarray(ks, dtype=np.int64), n_d), n),
            "draw": np.tile(np.arange(n_d, dtype=np.int64), n * n_k),
            "score": scores.ravel().astype(np.int64),
        }
    )


def true_name_per_person(person_index: np.ndarray, true_idx: np.ndarray) -> np.ndarray:
    """Each person's candidate index (persons 0..n-1), from the per-photo arrays."""
    person_index = np.asarray(person_index)
    out = np.zeros(int(person_index.max()) + 1, dtype=np.int64)
    out[person_index] = true_idx
    return out
