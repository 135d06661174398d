"""The single-person audit (DESIGN §3): photos + a name + CLIP model(s) → verdict and evidence.

An auditor holds a folder of photos of one person and that person's name and asks whether a model
was trained on them. The audit runs the paper's attack with every photo (k = all), reports the
vote score against ``tau`` as the paper does, adds the calibrated decoy p-value of DESIGN §2.2,
and records what an outsider needs to check the claim: which model file (sha256), which candidate
pool and templates (sha256), which code (git commit, package versions). Photos never leave the
machine: the HTML page embeds them only when asked to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from idia.attack import PAPER_TEMPLATES, encode_photos, encode_prompts, load_image, predict
from idia.attack import template_correct as _template_correct
from idia.audit_page import namesake_outcome, printable, render_html, summary_lines
from idia.backends import Backend
from idia.faces import detect_faces
from idia.names import faker_name_lists, letters, name_key, usable_name
from idia.namesakes import DEFAULT_ALPHA, check_alpha, namesake_pool, namesake_scores
from idia.provenance import code_version, package_versions, sha256_file, sha256_lines
from idia.stats import decoy_pvalues

# printable, render_html and summary_lines live in idia.audit_page (how an audit is shown) and
# are part of this module's interface too: callers import the audit's whole surface from here.
__all__ = [
    "NO_FACE",
    "audit_person",
    "audit_provenance",
    "check_name",
    "check_tau",
    "collect_photos",
    "inspect_photos",
    "person_slug",
    "printable",
    "render_html",
    "run_audit",
    "sha256_lines",
    "summary_lines",
]

#: The problem text of a readable photo in which the Haar cascade finds no face.
NO_FACE = "no face detected"

#: Haar cascade settings of the workflow's default config (``haar:`` in config/config.yaml).
DEFAULT_HAAR = {"scale_factor": 1.1, "min_neighbors": 5, "min_size": 32}

_PACKAGES = (
    "idia",
    "torch",
    "open_clip_torch",
    "transformers",
    "numpy",
    "opencv-python-headless",
    "pillow",
)

#: Bytes of a person's folder name (file systems allow 255; the hash suffix needs 9 of them).
_SLUG_BYTES = 96


# --------------------------------------------------------------------------------------------
# Inputs checked at the edge
# --------------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    """The stripped name, or ValueError when it cannot name a person.

    A name of punctuation or one letter (``!!!``, ``-``, ``A``) would match millions of
    captions and any photo; the attack's answer for it means nothing.
    """
    stripped = str(name).strip()
    n_letters = letters(stripped)
    if not stripped:
        raise ValueError("the audited person's name is empty; pass the name, e.g. 'First Last'")
    if not usable_name(stripped):
        raise ValueError(
            f"the audited person's name {printable(stripped)!r} has {n_letters} letter(s); a name "
            "needs at least two letters (pass the person's full name, e.g. 'First Last')"
        )
    return stripped


def check_tau(tau: int, n_templates: int) -> int:
    """``tau`` as an int in ``1..n_templates``, or ValueError saying the valid range."""
    if isinstance(tau, bool) or int(tau) != tau or not 1 <= int(tau) <= n_templates:
        raise ValueError(
            f"tau must be a whole number between 1 and the number of templates ({n_templates}), "
            f"got {tau!r}: with tau = 0 every person is a member, above {n_templates} none is"
        )
    return int(tau)


def person_slug(name: str) -> str:
    """A folder name for ``name`` that no other name shares and any file system accepts.

    Accents fold to ASCII (``Zoë`` → ``zoe``), letters of other scripts stay, anything else
    becomes ``-``; a short hash of the whole name keeps apart names that fold alike (two
    Chinese names, ``Anna-Lee`` and ``Anna Lee``), and the readable part is cut to fit.
    """
    name = unicodedata.normalize("NFC", str(name).strip())
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch)
    )
    readable = re.sub(r"[\W_]+", "-", folded).strip("-").lower()
    readable = readable.encode("utf-8")[:_SLUG_BYTES].decode("utf-8", "ignore").strip("-")
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{readable or 'person'}-{digest}"


# --------------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------------


def inspect_photos(
    folder: str | Path, *, require_face: bool = False, haar: dict | None = None
) -> list[dict]:
    """One record per entry of ``folder`` (sorted): ``path``, ``faces``, ``used``, ``problem``.

    A file that does not decode is not used; a photo without a detected face is used unless
    ``require_face`` (the attack does not need a detected face: the paper's photos were
    face-filtered, a user's need not be, so the flag is a warning, not a verdict).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(
            f"photo folder {str(folder)!r} does not exist or is not a folder; pass the folder "
            "that holds the person's photos"
        )
    haar = {**DEFAULT_HAAR, **(haar or {})}
    records = []
    for path in sorted(folder.iterdir()):
        rec: dict = {
            "path": str(path),
            "file": path.name,
            "faces": None,
            "used": False,
            "problem": None,
        }
        records.append(rec)
        if path.is_symlink() and not path.exists():  # exists() follows links: dangling or a loop
            rec["problem"] = (
                "not a readable image: a symbolic link whose target does not exist or that "
                "loops; replace it with the photo or remove it"
            )
            continue
        if path.is_dir():
            rec["problem"] = "a sub-folder; photos in sub-folders are not audited"
            continue
        try:
            image = load_image(path)
        except (ValueError, OSError) as err:
            cause = err.__cause__
            if path.stat().st_size == 0:
                detail = "the file is empty (0 bytes)"
            else:
                detail = f"{type(cause).__name__}: {cause}" if cause else str(err)
            rec["problem"] = f"not a readable image: {detail}; replace or remove the file"
            continue
        rec["faces"] = int(len(detect_faces(np.asarray(image), **haar)))
        if rec["faces"] == 0:
            if require_face:
                rec["problem"] = f"{NO_FACE}; left out because a detected face is required"
                continue
            rec["problem"] = (
                f"{NO_FACE} by the Haar cascade; the attack still uses this photo, but check "
                "that it shows the person"
            )
        rec["used"] = True
    return records


def collect_photos(
    folder: str | Path, *, require_face: bool = False, haar: dict | None = None
) -> tuple[list[Path], list[dict]]:
    """The usable photos of ``folder`` and a ``{path, problem}`` record for every other finding.

    Nothing is dropped silently: unreadable files and sub-folders are problems and left out,
    photos without a detected face are problems and kept (unless ``require_face``). Raises
    ValueError naming the folder and every problem when no photo is usable.
    """
    return _split(inspect_photos(folder, require_face=require_face, haar=haar), folder)


def _split(records: list[dict], folder: str | Path) -> tuple[list[Path], list[dict]]:
    usable = [Path(r["path"]) for r in records if r["used"]]
    problems = [{"path": r["path"], "problem": r["problem"]} for r in records if r["problem"]]
    if not usable:
        listing = "".join(
            f"\n  {printable(Path(p['path']).name)}: {printable(p['problem'])}" for p in problems
        )
        raise ValueError(
            f"no usable photo in {printable(folder)!r}"
            + (f"; problems found:{listing}" if listing else " (the folder is empty)")
            + "\nAdd JPEG or PNG photos of the person to the folder and run the audit again."
        )
    return usable, problems


# --------------------------------------------------------------------------------------------
# The attack on one person
# --------------------------------------------------------------------------------------------


def _place_name(
    name: str, candidates: Sequence[str], decoy_mask
) -> tuple[list[str], int, np.ndarray]:
    """Candidates containing ``name`` exactly once, its index, and the decoy mask over them.

    A candidate equal to ``name`` up to case and accents *is* the name (it would be an unfair
    decoy), so it is replaced by ``name``; an absent name is appended at the end, where the
    first-index tie rule of the argmax cannot favour it.
    """
    cands = list(candidates)
    mask = None if decoy_mask is None else np.asarray(decoy_mask, dtype=bool).copy()
    if mask is not None and mask.shape != (len(cands),):
        raise ValueError(
            f"decoy_mask must have one entry per candidate ({len(cands)}), got {mask.shape}"
        )
    key = name_key(name)
    hits = [i for i, c in enumerate(cands) if name_key(c) == key]
    if hits:
        idx = hits[0]
        cands[idx] = name
        for j in reversed(hits[1:]):  # the same name twice would split its votes
            del cands[j]
            if mask is not None:
                mask = np.delete(mask, j)
    else:
        cands.append(name)
        idx = len(cands) - 1
        if mask is not None:
            mask = np.append(mask, False)
    if mask is None:
        mask = np.ones(len(cands), dtype=bool)
    mask[idx] = False
    if len(cands) < 2:
        raise ValueError("the candidate pool needs at least one name besides the audited person")
    return cands, idx, mask


def audit_person(
    photos: Sequence[str | Path],
    name: str,
    clip: Backend,
    *,
    candidates: Sequence[str],
    templates: Sequence[str] = PAPER_TEMPLATES,
    tau: int = 1,
    decoy_mask=None,
    batch_size: int = 256,
    namesakes: int = 0,
    namesake_seed: int = 0,
    name_lists: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> dict:
    """Run the attack on one person with all ``photos`` and one model.

    ``candidates`` is the pool the name competes with; the name is added when absent (see
    ``_place_name``). ``decoy_mask`` (over ``candidates``) picks the names the p-value compares
    with — by default every other candidate; pass only random filler names when the pool also
    holds other study identities the model may know. Prompts and photos are encoded once.
    With ``namesakes`` > 0 the result also holds the namesake test (:mod:`idia.namesakes`):
    the name ranked among that many near-misses drawn with ``namesake_seed`` from
    ``name_lists`` (first_female, first_male, surnames; default Faker's en_US lists), called
    passed when its p-value is at most ``alpha``.
    """
    name = check_name(name)
    alpha = check_alpha(alpha)
    photos = [Path(p) for p in photos]
    if not photos:
        raise ValueError(f"no photos to audit {name!r} with")
    templates = list(templates)
    tau = check_tau(tau, len(templates))
    cands, idx, decoys = _place_name(name, candidates, decoy_mask)
    text_emb = encode_prompts(
        clip.model, clip.tokenizer, cands, templates, device=clip.device, progress=False
    )
    image_emb = encode_photos(
        clip.model,
        clip.preprocess,
        photos,
        batch_size=batch_size,
        device=clip.device,
        progress=False,
    )
    n_photos, n_t = len(photos), len(templates)
    out = predict(image_emb, text_emb, np.full(n_photos, idx))
    pred, rank, margin = out["pred"], out["rank"], out["margin"]  # [P, T]

    counts = np.zeros((n_t, len(cands)), np.int64)  # votes per template and candidate
    np.add.at(counts, (np.tile(np.arange(n_t), n_photos), pred.ravel()), 1)
    top = counts.argmax(axis=1)  # lowest index among tied leaders
    top_votes = counts[np.arange(n_t), top]
    tied = (counts == top_votes[:, None]).sum(axis=1) > 1
    correct = _template_correct(pred.T, idx)  # [T]
    rows = [
        {
            "template": templates[t],
            "prediction": cands[top[t]],
            "votes": int(top_votes[t]),
            "tie": bool(tied[t]),
            "true_votes": int(counts[t, idx]),
            "correct": bool(correct[t]),
            "mean_rank": float(rank[:, t].mean()),
            "mean_margin": float(margin[:, t].mean()),
        }
        for t in range(n_t)
    ]
    vote_score = int(correct.sum())
    p_value = float(
        decoy_pvalues(image_emb, text_emb, np.zeros(n_photos, np.int64), np.array([idx]), decoys)[0]
    )
    if isinstance(namesakes, bool) or int(namesakes) != namesakes or namesakes < 0:
        raise ValueError(
            f"namesakes must be a whole number >= 0 (0: no namesake test), got {namesakes!r}"
        )
    namesake = None
    if namesakes > 0:
        namesake = _namesake_test(
            name, image_emb, clip, templates, namesakes, namesake_seed, name_lists, alpha
        )
    return {
        "model": clip.name,
        "name": name,
        "n_photos": n_photos,
        "n_templates": n_t,
        "n_candidates": len(cands),
        "n_decoys": int(decoys.sum()),
        "tau": int(tau),
        "vote_score": vote_score,
        "member": vote_score >= tau,
        "p_value": p_value,
        "mean_rank": float(rank.mean()),
        "mean_margin": float(margin.mean()),
        "top1_rate": float((pred == idx).mean()),
        "templates": rows,
        "photo_top1": {str(p): float((pred[i] == idx).mean()) for i, p in enumerate(photos)},
        "namesakes": namesake,
    }


def _namesake_test(
    name: str,
    image_emb: np.ndarray,
    clip: Backend,
    templates: Sequence[str],
    n: int,
    seed: int,
    name_lists: tuple[Sequence[str], Sequence[str], Sequence[str]] | None,
    alpha: float,
) -> dict:
    """The namesake test of one person and model, with the photos' embeddings already made."""
    lists = name_lists if name_lists is not None else faker_name_lists("en_US")
    names, kinds = namesake_pool(name, n, seed, *lists, allow_fewer=True)
    found: dict[str, int | str] = {"asked": int(n), "seed": int(seed)}
    if not names:
        empty = {**found, "n": 0, "p_value": None, "alpha": alpha, "passed": None}
        return {
            **empty,
            "outcome": namesake_outcome(empty),
            "note": f"no namesake of {name!r} can be formed (a single-token name without "
            "valid-looking one-letter edits): the namesake test does not apply",
        }
    if len(names) < n:
        found["note"] = (
            f"only {len(names)} namesakes of {name!r} exist ({n} asked): the smallest "
            f"possible namesake p-value is 1/{len(names) + 1}"
        )
    text_emb = encode_prompts(
        clip.model, clip.tokenizer, [*names, name], templates, device=clip.device, progress=False
    )
    scores = namesake_scores(image_emb, text_emb, kinds, alpha)
    return {
        **scores,
        "outcome": namesake_outcome(scores),
        **found,
        "sha256": sha256_lines(names),
        "names": [{"name": nm, "kind": kd} for nm, kd in zip(names, kinds)],
    }


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------


def _package_versions() -> dict[str, str]:
    return package_versions(_PACKAGES)


def _code_version() -> dict:
    """Commit and dirty flag of the repository holding this package, or "unknown" outside one."""
    return code_version(Path(__file__).resolve().parent)


def audit_provenance(
    clip_name: str,
    model_files: Sequence[str | Path] | None,
    candidates: Sequence[str],
    templates: Sequence[str],
    seed: int | None,
    *,
    candidates_source: str | None = None,
    tau: int | None = None,
    haar: dict | None = None,
) -> dict:
    """What an outsider needs to reproduce the verdict: model, inputs and code, each hashed."""
    files = [Path(f) for f in model_files or []]
    return {
        "model": clip_name,
        "model_files": [
            {"file": f.name, "sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files
        ],
        "model_files_note": None
        if files
        else "weight file not found locally; identify the model by its name and tag",
        "candidates": {
            "n": len(candidates),
            "sha256": sha256_lines(candidates),
            "source": candidates_source,
        },
        "templates": {"n": len(templates), "sha256": sha256_lines(templates)},
        "seeds": {"candidate_pool": seed},
        "tau": tau,
        "haar": {**DEFAULT_HAAR, **(haar or {})},
        "packages": _package_versions(),
        **_code_version(),
        "python": platform.python_version(),
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------
# The whole audit
# --------------------------------------------------------------------------------------------


def run_audit(
    photo_dir: str | Path,
    name: str,
    models: Sequence[Backend | tuple[Backend, Sequence[Path] | None]],
    *,
    candidates: Sequence[str],
    templates: Sequence[str] = PAPER_TEMPLATES,
    tau: int = 1,
    seed: int | None = None,
    candidates_source: str | None = None,
    decoy_mask=None,
    require_face: bool = False,
    haar: dict | None = None,
    namesakes: int = 0,
    namesake_seed: int = 0,
    name_lists: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> dict:
    """Audit one person against every model.

    A model is a loaded :class:`~idia.backends.Backend` (its ``files`` are hashed into the
    provenance) or a ``(backend, files)`` pair naming the files to hash. The name and ``tau``
    are checked before any photo is read. ``namesakes`` > 0 adds the namesake test, called
    passed at level ``alpha`` (see :func:`audit_person`).
    """
    name = check_name(name)
    tau = check_tau(tau, len(list(templates)))
    alpha = check_alpha(alpha)
    records = inspect_photos(photo_dir, require_face=require_face, haar=haar)
    usable, problems = _split(records, photo_dir)
    results = []
    for item in models:
        clip, files = item if isinstance(item, tuple) else (item, None)
        if files is None:
            files = list(getattr(clip, "files", None) or [])
        res = audit_person(
            usable,
            name,
            clip,
            candidates=candidates,
            templates=templates,
            tau=tau,
            decoy_mask=decoy_mask,
            namesakes=namesakes,
            namesake_seed=namesake_seed,
            name_lists=name_lists,
            alpha=alpha,
        )
        cands, _, _ = _place_name(name, candidates, decoy_mask)
        res["provenance"] = audit_provenance(
            clip.name,
            files,
            cands,
            list(templates),
            seed,
            candidates_source=candidates_source,
            tau=tau,
            haar=haar,
        )
        results.append(res)
    return {
        "name": name,
        "photo_dir": str(photo_dir),
        "photos": records,
        "problems": problems,
        "n_usable": len(usable),
        "tau": int(tau),
        "templates": list(templates),
        "models": results,
    }
